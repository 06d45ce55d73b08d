//! A content file turned into what the index stores: a page or a section with its URL, metadata
//! and rendered HTML. Derived only from the file itself, so re-indexing one file is exact.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::front_matter::{self, FrontMatter};
use super::language::{Languages, Placed};
use super::markdown::{self, Heading, Link};
use super::shortcodes::{self, Call};
use crate::error::{Error, Result};

/// Pages list under sections; sections are `_index.md` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Page,
    Section,
}

impl Kind {
    /// The name stored in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Page => "page",
            Kind::Section => "section",
        }
    }
}

/// A parsed content file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Repository path, e.g. `content/blog/hello.md`.
    pub path: String,
    pub kind: Kind,
    /// Site-relative URL with slashes on both ends, e.g. `/blog/hello/`.
    pub url: String,
    /// URL of the section the document belongs to (`/` for top-level pages; for a section, its
    /// parent section; empty for the root section).
    pub section: String,
    pub meta: FrontMatter,
    pub html: String,
    pub summary_html: Option<String>,
    pub toc: Vec<Heading>,
    pub word_count: usize,
    pub text: String,
    /// Shortcode calls; the HTML holds a placeholder for each ([`shortcodes`]).
    pub calls: Vec<Call>,
    /// Links to other documents (`@/…`).
    pub links: Vec<Link>,
    /// Its language's code.
    pub lang: String,
    /// What its translations share: the path it would have in the default language.
    pub translation_key: String,
}

impl Document {
    /// The date used for ordering and feeds.
    pub fn date(&self) -> Option<Timestamp> {
        self.meta.date
    }

    /// The title, falling back to the URL's last component.
    pub fn title(&self) -> String {
        self.meta.title.clone().unwrap_or_else(|| {
            self.url.trim_end_matches('/').rsplit('/').next().filter(|s| !s.is_empty()).unwrap_or("Home").to_string()
        })
    }

    /// Taxonomy terms, per taxonomy.
    pub fn taxonomies(&self) -> &BTreeMap<String, Vec<String>> {
        &self.meta.taxonomies
    }
}

/// Whether `path` is a content document (`content/**.md`).
pub fn is_document(path: &str) -> bool {
    path.starts_with("content/") && path.ends_with(".md")
}

/// A content file's place and what it names outside itself, without its HTML: what push
/// validation needs of every pushed document. [`outline`] refuses exactly what [`parse`]
/// refuses (front matter, placement, shortcode syntax, code block options).
#[derive(Debug, Clone)]
pub struct Outline {
    pub path: String,
    pub url: String,
    pub meta: FrontMatter,
    pub calls: Vec<Call>,
    pub links: Vec<Link>,
}

/// The content file at `path` read up to its Markdown: front matter, place, shortcodes found.
struct Read {
    meta: FrontMatter,
    location: Location,
    first_line: usize,
    scanned: shortcodes::Scanned,
}

fn read(path: &str, source: &str, languages: &Languages) -> Result<Read> {
    let (block, body) = front_matter::split(source).map_err(|e| Error::content(path, e))?;
    let meta = match block {
        Some((format, block)) => front_matter::parse(format, block).map_err(|e| Error::content(path, e))?,
        None => FrontMatter::default(),
    };
    let location = locate(path, &meta, languages)?;
    let first_line = source[..source.len() - body.len()].matches('\n').count() + 1;
    let dir = path.strip_prefix("content/").and_then(|p| p.rsplit_once('/')).map_or("", |(d, _)| d);
    let scanned = shortcodes::scan(body, dir, first_line).map_err(|e| Error::content(path, e))?;
    Ok(Read { meta, location, first_line, scanned })
}

/// The outline of the content file at `path` of a site with `languages` (see [`Outline`]).
pub fn outline(path: &str, source: &str, languages: &Languages) -> Result<Outline> {
    let Read { meta, location, first_line, scanned } = read(path, source, languages)?;
    let (links, problems) = markdown::check(&scanned.markdown, first_line);
    if let Some((line, message)) = problems.first() {
        return Err(Error::content(path, format!("line {line}: {message}")));
    }
    Ok(Outline { path: path.to_string(), url: location.url, meta, calls: scanned.calls, links })
}

/// Parse the content file at `path` (repository path under `content/`) of a site with
/// `languages`.
pub fn parse(path: &str, source: &str, languages: &Languages) -> Result<Document> {
    let Read { meta, location, first_line, scanned } = read(path, source, languages)?;
    let Location { kind, url, section, placed } = location;
    let rendered = markdown::render(&scanned.markdown, first_line);
    if let Some((line, message)) = rendered.problems.first() {
        return Err(Error::content(path, format!("line {line}: {message}")));
    }
    let summary_html = rendered.summary_html.or_else(|| meta.summary.as_ref().map(|s| markdown::to_html(s)));
    Ok(Document {
        path: path.to_string(),
        kind,
        url,
        section,
        meta,
        html: rendered.html,
        summary_html,
        toc: rendered.toc,
        word_count: rendered.word_count,
        text: rendered.text,
        calls: scanned.calls,
        links: rendered.links,
        lang: placed.lang,
        translation_key: placed.key,
    })
}

/// URL of a directory of `content/` (`blog/2024` → `/blog/2024/`), each component slugified.
pub fn dir_url(dir: &str) -> String {
    let mut url = String::from("/");
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        url.push_str(&slug_component(part));
        url.push('/');
    }
    url
}

/// Slugify one URL component, keeping already-safe names as they are.
pub fn slug_component(part: &str) -> String {
    let safe = part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' || c == '.');
    if safe && !part.starts_with('.') {
        part.to_string()
    } else {
        slug::slugify(part)
    }
}

/// Where a document is: its kind, URL, section URL and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub kind: Kind,
    pub url: String,
    pub section: String,
    pub placed: Placed,
}

/// Kind, URL, section URL and language of the document at `path`.
pub fn locate(path: &str, meta: &FrontMatter, languages: &Languages) -> Result<Location> {
    if !path.starts_with("content/") {
        return Err(Error::content(path, "not under content/"));
    }
    let placed = languages.place(path).map_err(|e| Error::content(path, e))?;
    let rel = placed.rel.as_str();
    let (dir, file) = match rel.rsplit_once('/') {
        Some((d, f)) => (d, f),
        None => ("", rel),
    };
    let parent = |d: &str| match d.rsplit_once('/') {
        Some((p, _)) => dir_url(p),
        None => "/".to_string(),
    };
    let (kind, mut url, section) = match file {
        "_index.md" => (Kind::Section, dir_url(dir), if dir.is_empty() { String::new() } else { parent(dir) }),
        "index.md" if !dir.is_empty() => (Kind::Page, dir_url(dir), parent(dir)),
        _ => {
            let stem = file.strip_suffix(".md").unwrap_or(file);
            (Kind::Page, format!("{}{}/", dir_url(dir), slug_component(stem)), dir_url(dir))
        }
    };
    if kind == Kind::Page {
        if let Some(slug) = &meta.slug {
            let s = slug::slugify(slug);
            if s.is_empty() {
                return Err(Error::content(path, format!("slug {slug:?} has no usable characters")));
            }
            let trimmed = url.trim_end_matches('/');
            let base = &trimmed[..trimmed.rfind('/').map(|i| i + 1).unwrap_or(0)];
            url = format!("{base}{s}/");
        }
    }
    if let Some(custom) = &meta.path {
        url = normalize_url(custom).map_err(|e| Error::content(path, e))?;
        if !placed.prefix.is_empty() && url.starts_with(&format!("{}/", placed.prefix)) {
            url = url[placed.prefix.len()..].to_string();
        }
    }
    // Translations live under their language's prefix: `/fr/blog/post/`.
    let url = format!("{}{url}", placed.prefix);
    let section = if section.is_empty() { section } else { format!("{}{section}", placed.prefix) };
    Ok(Location { kind, url, section, placed })
}

/// Normalize a site-relative URL path from front matter (`path`, `aliases`): one leading
/// slash, no `..`, no empty components, no query or fragment, no control characters.
pub fn normalize_url(raw: &str) -> std::result::Result<String, String> {
    let raw = raw.trim();
    if raw.chars().any(|c| c.is_control() || c == '?' || c == '#' || c == '\\' || c == '%') {
        return Err(format!("url {raw:?} may not contain control characters, '?', '#', '%' or '\\\\'"));
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return Err(format!("url {raw:?} may not contain '.' or '..' components"));
    }
    let mut url = String::from("/");
    for p in parts {
        url.push_str(p);
        url.push('/');
    }
    // A file-like last component (`feed.xml`) keeps no trailing slash.
    if url.len() > 1 && raw.rsplit('/').next().is_some_and(|last| last.contains('.')) {
        url.pop();
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str, text: &str) -> Document {
        parse(path, text, &Languages::default()).unwrap()
    }

    #[test]
    fn translations_live_under_their_language() {
        let langs = Languages { default: "en".into(), others: vec!["fr".into()] };
        let fr = parse("content/blog/hello.fr.md", "", &langs).unwrap();
        assert_eq!((fr.url.as_str(), fr.section.as_str(), fr.lang.as_str()), ("/fr/blog/hello/", "/fr/blog/", "fr"));
        assert_eq!(fr.translation_key, "content/blog/hello.md");
        let home = parse("content/_index.fr.md", "", &langs).unwrap();
        assert_eq!((home.url.as_str(), home.section.as_str()), ("/fr/", ""));
        let section = parse("content/fr/blog/_index.md", "", &langs).unwrap();
        assert_eq!((section.url.as_str(), section.section.as_str()), ("/fr/blog/", "/fr/"));
        let custom = parse("content/a.fr.md", "+++\npath = \"/fr/b\"\n+++\n", &langs).unwrap();
        assert_eq!(custom.url, "/fr/b/");
        assert!(parse("content/a.de.md", "", &langs).is_err());
    }

    #[test]
    fn urls_follow_the_content_tree() {
        assert_eq!(doc("content/_index.md", "").url, "/");
        assert_eq!(doc("content/about.md", "").url, "/about/");
        let post = doc("content/blog/hello.md", "");
        assert_eq!((post.url.as_str(), post.section.as_str()), ("/blog/hello/", "/blog/"));
        let bundle = doc("content/blog/trip/index.md", "");
        assert_eq!((bundle.url.as_str(), bundle.section.as_str()), ("/blog/trip/", "/blog/"));
        let section = doc("content/blog/_index.md", "");
        assert_eq!((section.kind, section.url.as_str(), section.section.as_str()), (Kind::Section, "/blog/", "/"));
        assert_eq!(doc("content/My Notes/First Post.md", "").url, "/my-notes/first-post/");
    }

    #[test]
    fn slug_and_path_override_the_url() {
        assert_eq!(doc("content/blog/x.md", "+++\nslug = \"Hello There\"\n+++\n").url, "/blog/hello-there/");
        assert_eq!(doc("content/blog/x.md", "+++\npath = \"elsewhere/deep\"\n+++\n").url, "/elsewhere/deep/");
        assert_eq!(doc("content/x.md", "---\nurl: /feed.xml\n---\n").url, "/feed.xml");
    }

    #[test]
    fn hostile_paths_are_refused() {
        for custom in ["../../etc", "/a/../b", "/a?b", "/a#b", "/a%2e%2e/", "/a\0b", "/a\\b"] {
            let text = format!("+++\npath = {custom:?}\n+++\n");
            assert!(parse("content/x.md", &text, &Languages::default()).is_err(), "accepted {custom:?}");
        }
        assert!(parse("content/x.md", "+++\nslug = \"!!!\"\n+++\n", &Languages::default()).is_err());
    }

    #[test]
    fn errors_name_the_file() {
        let err = parse("content/blog/bad.md", "+++\ntitle = \n+++\n", &Languages::default()).unwrap_err().to_string();
        assert!(err.starts_with("content/blog/bad.md: "), "{err}");
        assert!(err.contains("line"), "{err}");
    }
}
