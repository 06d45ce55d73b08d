//! Front matter: the metadata block at the top of a Markdown file.
//!
//! `+++` fences TOML (Zola, Hugo), `---` fences YAML (Hugo, Jekyll). Both tools' names are
//! accepted where they overlap: `updated`/`lastmod`, `path`/`url`, `extra`/`params`, `tags` and
//! `categories` beside `[taxonomies]`, `publish_date`/`publishDate`, `expiry_date`/`expiryDate`. Unknown top-level keys are kept in `extra`, as Hugo keeps
//! them in `.Params`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;

/// What a content file declares about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FrontMatter {
    pub title: Option<String>,
    pub description: Option<String>,
    pub date: Option<Timestamp>,
    pub updated: Option<Timestamp>,
    /// Not on the site before this (Hugo's `publishDate`; `date` when absent).
    pub publish_date: Option<Timestamp>,
    /// Off the site from this moment (Hugo's `expiryDate`).
    pub expiry_date: Option<Timestamp>,
    pub draft: bool,
    /// `false`: no page of its own (Zola's `render`); a section's pages are still listed.
    pub render: bool,
    /// Section only: its pages are also listed in the parent section (Zola's `transparent`).
    pub transparent: bool,
    /// `false`: left out of search (Zola's `in_search_index`).
    pub in_search_index: bool,
    /// Section only: anchor links on its pages' headings: `left`, `right`, `heading` or `none`.
    pub insert_anchor_links: Option<String>,
    /// Section only: answer its URL with a redirect there (Zola's `redirect_to`).
    pub redirect_to: Option<String>,
    pub slug: Option<String>,
    pub path: Option<String>,
    pub aliases: Vec<String>,
    pub weight: Option<i64>,
    pub template: Option<String>,
    /// Taxonomy name → terms (`tags` and `categories` folded in).
    pub taxonomies: BTreeMap<String, Vec<String>>,
    pub summary: Option<String>,
    /// Section only: how to sort its pages (`date`, `weight`, `title`, `slug`, `none`).
    pub sort_by: Option<String>,
    /// Section only: pages per listing page.
    pub paginate_by: Option<usize>,
    /// Section only: template for its pages.
    pub page_template: Option<String>,
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for FrontMatter {
    /// What a file without front matter declares: rendered and searchable, nothing else.
    fn default() -> Self {
        FrontMatter {
            title: None,
            description: None,
            date: None,
            updated: None,
            publish_date: None,
            expiry_date: None,
            draft: false,
            render: true,
            transparent: false,
            in_search_index: true,
            insert_anchor_links: None,
            redirect_to: None,
            slug: None,
            path: None,
            aliases: Vec::new(),
            weight: None,
            template: None,
            taxonomies: BTreeMap::new(),
            summary: None,
            sort_by: None,
            paginate_by: None,
            page_template: None,
            extra: BTreeMap::new(),
        }
    }
}

/// Why a front matter block was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FrontMatterError(pub String);

/// A front matter block: its syntax and its text between the fences.
pub type Block<'a> = (Format, &'a str);

/// Split `text` into front matter and body. Returns `(None, text)` when the file has none.
pub fn split(text: &str) -> Result<(Option<Block<'_>>, &str), FrontMatterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (fence, format) in [("+++", Format::Toml), ("---", Format::Yaml)] {
        let Some(rest) = text.strip_prefix(fence) else { continue };
        let Some(rest) = rest.strip_prefix("\r\n").or_else(|| rest.strip_prefix('\n')) else { continue };
        // The closing fence must be alone on its line.
        let mut offset = 0;
        for line in rest.split_inclusive('\n') {
            if line.trim_end_matches(['\r', '\n']) == fence {
                let body = &rest[offset + line.len()..];
                return Ok((Some((format, &rest[..offset])), body));
            }
            offset += line.len();
        }
        return Err(FrontMatterError(format!("front matter opened with {fence} is never closed")));
    }
    Ok((None, text))
}

/// The syntax of a front matter block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Raw {
    title: Option<String>,
    description: Option<String>,
    date: Option<RawDate>,
    #[serde(alias = "lastmod")]
    updated: Option<RawDate>,
    #[serde(alias = "publishDate", alias = "publishdate")]
    publish_date: Option<RawDate>,
    #[serde(alias = "expiryDate", alias = "expirydate")]
    expiry_date: Option<RawDate>,
    draft: bool,
    render: Option<bool>,
    transparent: bool,
    in_search_index: Option<bool>,
    insert_anchor_links: Option<String>,
    redirect_to: Option<String>,
    slug: Option<String>,
    #[serde(alias = "url")]
    path: Option<String>,
    aliases: Vec<String>,
    weight: Option<i64>,
    template: Option<String>,
    tags: Vec<String>,
    categories: Vec<String>,
    taxonomies: BTreeMap<String, Vec<String>>,
    summary: Option<String>,
    sort_by: Option<String>,
    paginate_by: Option<usize>,
    page_template: Option<String>,
    #[serde(alias = "params")]
    extra: BTreeMap<String, serde_json::Value>,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

/// A date as TOML (native datetime) or YAML/TOML (string) gives it.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawDate {
    Toml(toml::value::Datetime),
    Text(String),
}

/// Parse a front matter block.
pub fn parse(format: Format, block: &str) -> Result<FrontMatter, FrontMatterError> {
    let raw: Raw = match format {
        Format::Toml => toml::from_str(block).map_err(|e| FrontMatterError(crate::error::toml_message(&e, block)))?,
        Format::Yaml if block.trim().is_empty() => Raw::default(),
        Format::Yaml => serde_yaml_ng::from_str(block).map_err(|e| FrontMatterError(e.to_string()))?,
    };
    let date = raw.date.map(|d| parse_date(&d, "date")).transpose()?;
    let updated = raw.updated.map(|d| parse_date(&d, "updated")).transpose()?;
    let publish_date = raw.publish_date.map(|d| parse_date(&d, "publish_date")).transpose()?;
    let expiry_date = raw.expiry_date.map(|d| parse_date(&d, "expiry_date")).transpose()?;
    if let Some(anchors) = &raw.insert_anchor_links {
        if !matches!(anchors.as_str(), "left" | "right" | "heading" | "none") {
            return Err(FrontMatterError(format!(
                "insert_anchor_links must be left, right, heading or none, not {anchors:?}"
            )));
        }
    }
    if let Some(to) = &raw.redirect_to {
        if to.trim().is_empty() || to.chars().any(|c| c.is_control() || c == ' ') {
            return Err(FrontMatterError(format!("redirect_to {to:?} is not a URL or path")));
        }
    }
    for (name, value) in [("template", &raw.template), ("page_template", &raw.page_template)] {
        if let Some(t) = value {
            if t.is_empty() || t.contains("..") || t.starts_with('/') || t.contains('\\') {
                return Err(FrontMatterError(format!("{name} {t:?} is not a template name (e.g. docs.html)")));
            }
        }
    }
    let mut taxonomies = raw.taxonomies;
    if !raw.tags.is_empty() {
        taxonomies.entry("tags".into()).or_default().extend(raw.tags);
    }
    if !raw.categories.is_empty() {
        taxonomies.entry("categories".into()).or_default().extend(raw.categories);
    }
    for terms in taxonomies.values_mut() {
        terms.retain(|t| !t.trim().is_empty());
        terms.dedup();
    }
    if let Some(sort) = &raw.sort_by {
        if !matches!(sort.as_str(), "date" | "weight" | "title" | "slug" | "none") {
            return Err(FrontMatterError(format!("sort_by must be date, weight, title, slug or none, not {sort:?}")));
        }
    }
    let mut extra = raw.rest;
    extra.extend(raw.extra);
    Ok(FrontMatter {
        title: raw.title,
        description: raw.description,
        date,
        updated,
        publish_date,
        expiry_date,
        draft: raw.draft,
        render: raw.render.unwrap_or(true),
        transparent: raw.transparent,
        in_search_index: raw.in_search_index.unwrap_or(true),
        insert_anchor_links: raw.insert_anchor_links,
        redirect_to: raw.redirect_to,
        slug: raw.slug,
        path: raw.path,
        aliases: raw.aliases,
        weight: raw.weight,
        template: raw.template,
        taxonomies,
        summary: raw.summary,
        sort_by: raw.sort_by,
        paginate_by: raw.paginate_by.filter(|n| *n > 0),
        page_template: raw.page_template,
        extra,
    })
}

/// Accept `2024-05-01`, `2024-05-01T10:00:00`, `2024-05-01 10:00:00` (taken as UTC) and any
/// RFC 3339 timestamp with an offset.
fn parse_date(raw: &RawDate, field: &str) -> Result<Timestamp, FrontMatterError> {
    let text = match raw {
        RawDate::Toml(d) => d.to_string(),
        RawDate::Text(s) => s.trim().to_string(),
    };
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = text.replacen(' ', "T", 1);
    if let Ok(dt) = civil.parse::<jiff::civil::DateTime>() {
        if let Ok(ts) = jiff::tz::TimeZone::UTC.to_timestamp(dt) {
            return Ok(ts);
        }
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        if let Ok(ts) = jiff::tz::TimeZone::UTC.to_timestamp(d.to_datetime(jiff::civil::Time::midnight())) {
            return Ok(ts);
        }
    }
    Err(FrontMatterError(format!("{field}: {text:?} is not a date (expected e.g. 2024-05-01 or 2024-05-01T10:00:00Z)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fm(text: &str) -> FrontMatter {
        let (block, _) = split(text).unwrap();
        let (format, block) = block.unwrap();
        parse(format, block).unwrap()
    }

    #[test]
    fn reads_toml_front_matter_with_zola_names() {
        let m = fm("+++\ntitle = \"Hello\"\ndate = 2024-05-01\nupdated = 2024-05-02T10:00:00Z\n[taxonomies]\ntags = [\"rust\", \"web\"]\n[extra]\nhero = \"x.jpg\"\n+++\nbody");
        assert_eq!(m.title.as_deref(), Some("Hello"));
        assert_eq!(m.date.unwrap().to_string(), "2024-05-01T00:00:00Z");
        assert_eq!(m.updated.unwrap().to_string(), "2024-05-02T10:00:00Z");
        assert_eq!(m.taxonomies["tags"], ["rust", "web"]);
        assert_eq!(m.extra["hero"], "x.jpg");
    }

    #[test]
    fn reads_yaml_front_matter_with_hugo_names() {
        let m = fm("---\ntitle: Hi\nlastmod: 2024-05-03 08:00:00\ntags: [a, b]\ncategories: [news]\nurl: /custom/\nparams:\n  color: red\nauthor: Ann\ndraft: true\n---\nbody");
        assert_eq!(m.updated.unwrap().to_string(), "2024-05-03T08:00:00Z");
        assert_eq!(m.taxonomies["tags"], ["a", "b"]);
        assert_eq!(m.taxonomies["categories"], ["news"]);
        assert_eq!(m.path.as_deref(), Some("/custom/"));
        assert_eq!(m.extra["color"], "red");
        assert_eq!(m.extra["author"], "Ann");
        assert!(m.draft);
    }

    #[test]
    fn reads_visibility_keys_of_both_tools() {
        let m = fm("---\npublishDate: 2030-01-01\nexpiryDate: 2031-01-01T00:00:00Z\n---\n");
        assert_eq!(m.publish_date.unwrap().to_string(), "2030-01-01T00:00:00Z");
        assert_eq!(m.expiry_date.unwrap().to_string(), "2031-01-01T00:00:00Z");
        assert!(m.render && m.in_search_index && !m.transparent);
        let m = fm("+++\nrender = false\ntransparent = true\nin_search_index = false\ninsert_anchor_links = \"right\"\nredirect_to = \"docs/intro\"\nsort_by = \"slug\"\n+++\n");
        assert!(!m.render && m.transparent && !m.in_search_index);
        assert_eq!(m.insert_anchor_links.as_deref(), Some("right"));
        assert_eq!(m.redirect_to.as_deref(), Some("docs/intro"));
        assert!(m.extra.is_empty(), "{:?}", m.extra);
    }

    #[test]
    fn files_without_front_matter_are_all_body() {
        let (block, body) = split("# Title\n\ntext").unwrap();
        assert!(block.is_none());
        assert_eq!(body, "# Title\n\ntext");
        // A thematic break later in the file is not front matter.
        assert!(split("text\n---\nmore").unwrap().0.is_none());
    }

    #[test]
    fn hostile_front_matter_is_refused_with_a_reason() {
        for text in [
            "+++\ntitle = \"never closed\"\n",
            "---\ntitle: [unclosed\n---\n",
            "+++\ntitle = 42\n+++\n",
            "+++\ndate = \"yesterday\"\n+++\n",
            "+++\nsort_by = \"random\"\n+++\n",
            "---\n- just\n- a list\n---\n",
            "+++\n[taxonomies]\ntags = \"not a list\"\n+++\n",
            "+++\ninsert_anchor_links = \"top\"\n+++\n",
            "+++\nredirect_to = \"a b\"\n+++\n",
            "+++\ntemplate = \"../../etc/passwd\"\n+++\n",
            "---\nexpiryDate: soon\n---\n",
        ] {
            let result = split(text).and_then(|(b, _)| match b {
                Some((f, b)) => parse(f, b).map(drop),
                None => Ok(()),
            });
            assert!(result.is_err(), "accepted {text:?}");
        }
    }

    #[test]
    fn crlf_and_bom_are_fine() {
        let m = fm("\u{feff}+++\r\ntitle = \"x\"\r\n+++\r\nbody");
        assert_eq!(m.title.as_deref(), Some("x"));
    }
}
