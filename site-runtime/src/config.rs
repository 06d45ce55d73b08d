//! `site.toml`: the site's own configuration, pushed with the content.
//!
//! Unknown keys are refused (a typo must not silently fall back to a default) with the line and
//! the expected keys, which `toml`'s errors carry. Free-form values go under `[extra]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The path of the configuration in the site repository.
pub const PATH: &str = "site.toml";

/// The parsed `site.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// The site's name.
    pub title: String,
    /// One line about the site (used in feeds and `<meta>`).
    pub description: String,
    /// Absolute URL the site is published at, e.g. `https://example.com`.
    pub base_url: String,
    /// Language of the content, e.g. `en`.
    pub default_language: String,
    /// The theme under `themes/<name>/`; `None` uses the default theme built into the server.
    pub theme: Option<String>,
    /// Pages per listing page.
    pub paginate_by: usize,
    /// Taxonomies pages can be classified by (Zola's `[[taxonomies]]` tables or plain names).
    #[serde(deserialize_with = "taxonomy_names")]
    pub taxonomies: Vec<String>,
    /// Plugins to load from `plugins/<name>/`.
    pub plugins: Vec<String>,
    /// Settings of enabled plugins over their manifests' defaults: `[plugin_settings.<name>]`.
    pub plugin_settings: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// How Markdown is rendered: `[markdown]`.
    pub markdown: MarkdownConfig,
    /// Languages beside `default_language`: `[languages.<code>]` (Zola's and Hugo's tables).
    pub languages: BTreeMap<String, LanguageConfig>,
    /// Anything else, for themes and plugins.
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One `[languages.<code>]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageConfig {
    /// The language's name in itself, for language switchers (`Français`).
    #[serde(alias = "languageName")]
    pub name: Option<String>,
    /// The site's title in this language.
    pub title: Option<String>,
    /// The site's description in this language.
    pub description: Option<String>,
    /// Order in language lists (lower first; then by code).
    pub weight: Option<i64>,
    /// Hugo's per-language content directory (`content/fr`): accepted when it is the one this
    /// server reads (`content/<code>`).
    #[serde(alias = "contentDir")]
    pub content_dir: Option<String>,
    #[serde(alias = "params")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `[markdown]` of `site.toml` (Zola's names).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MarkdownConfig {
    /// Highlight fenced code blocks.
    pub highlight_code: bool,
    /// The highlighting colours (a theme of `crate::render::highlight::theme_names`).
    pub highlight_theme: String,
    /// The colours when the reader's system prefers a dark scheme; empty: the same as light.
    #[serde(deserialize_with = "empty_is_none")]
    pub highlight_theme_dark: Option<String>,
}

impl Default for MarkdownConfig {
    fn default() -> Self {
        MarkdownConfig {
            highlight_code: true,
            highlight_theme: "InspiredGitHub".into(),
            highlight_theme_dark: Some("base16-ocean.dark".into()),
        }
    }
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    let text = Option::<String>::deserialize(d)?;
    Ok(text.filter(|t| !t.trim().is_empty()))
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            title: "A WhisperCMS site".into(),
            description: String::new(),
            base_url: "http://127.0.0.1:8080".into(),
            default_language: "en".into(),
            theme: None,
            paginate_by: 10,
            taxonomies: vec!["tags".into(), "categories".into()],
            plugins: Vec::new(),
            plugin_settings: BTreeMap::new(),
            markdown: MarkdownConfig::default(),
            languages: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

impl SiteConfig {
    /// Parse `site.toml` text; errors name the file and line.
    pub fn parse(text: &str) -> Result<Self> {
        let config: SiteConfig =
            toml::from_str(text).map_err(|e| Error::content(PATH, crate::error::toml_message(&e, text)))?;
        if config.paginate_by == 0 {
            return Err(Error::content(PATH, "paginate_by must be at least 1"));
        }
        for t in &config.taxonomies {
            if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                return Err(Error::content(PATH, format!("taxonomy name {t:?} must be letters, digits, '-' or '_'")));
            }
        }
        if !crate::content::language::valid_code(&config.default_language) {
            return Err(Error::content(
                PATH,
                format!("default_language {:?} is not a language code (e.g. en, pt-br)", config.default_language),
            ));
        }
        for (code, language) in &config.languages {
            if !crate::content::language::valid_code(code) {
                return Err(Error::content(PATH, format!("[languages.{code}]: not a language code (e.g. fr, pt-br)")));
            }
            if config.taxonomies.contains(code) {
                return Err(Error::content(PATH, format!("[languages.{code}]: also the name of a taxonomy")));
            }
            if let Some(dir) = &language.content_dir {
                if dir.trim_end_matches('/') != format!("content/{code}") {
                    return Err(Error::content(
                        PATH,
                        format!("[languages.{code}] content_dir must be \"content/{code}\" (or left out), not {dir:?}"),
                    ));
                }
            }
        }
        let m = &config.markdown;
        for (key, theme) in
            [("highlight_theme", Some(&m.highlight_theme)), ("highlight_theme_dark", m.highlight_theme_dark.as_ref())]
        {
            let Some(theme) = theme else { continue };
            if !crate::render::highlight::theme_names().iter().any(|n| n.eq_ignore_ascii_case(theme)) {
                let known = crate::render::highlight::theme_names().join(", ");
                return Err(Error::content(PATH, format!("[markdown] {key}: unknown theme {theme:?}; known: {known}")));
            }
        }
        Ok(config)
    }

    /// The configuration at `commit`: its `site.toml`, or the defaults when it has none.
    pub fn at(repo: &gix::Repository, commit: gix::ObjectId) -> Result<SiteConfig> {
        match crate::source::blob_at(repo, commit, PATH)? {
            Some(blob) => {
                let bytes = crate::source::read_blob(repo, blob)?;
                let text = std::str::from_utf8(&bytes).map_err(|_| Error::content(PATH, "not UTF-8 text"))?;
                SiteConfig::parse(text)
            }
            None => Ok(SiteConfig::default()),
        }
    }

    /// The site's languages: the default one and those of `[languages]` (by weight, then code).
    /// A `[languages.<default>]` table only describes the default language.
    pub fn languages(&self) -> crate::content::language::Languages {
        let mut others: Vec<(&String, &LanguageConfig)> =
            self.languages.iter().filter(|(code, _)| **code != self.default_language).collect();
        others.sort_by_key(|(code, l)| (l.weight.unwrap_or(0), (*code).clone()));
        crate::content::language::Languages {
            default: self.default_language.clone(),
            others: others.into_iter().map(|(code, _)| code.clone()).collect(),
        }
    }

    /// `base_url` without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// Accept `["tags"]` and Zola's `[{ name = "tags" }]`.
fn taxonomy_names<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Name(String),
        Table { name: String },
    }
    let items: Vec<Item> = Vec::deserialize(d)?;
    Ok(items
        .into_iter()
        .map(|i| match i {
            Item::Name(n) | Item::Table { name: n } => n,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(SiteConfig::parse("").unwrap(), SiteConfig::default());
    }

    #[test]
    fn reads_zola_and_plain_taxonomies() {
        let c = SiteConfig::parse("taxonomies = [{ name = \"tags\" }, \"series\"]\n").unwrap();
        assert_eq!(c.taxonomies, ["tags", "series"]);
    }

    #[test]
    fn reads_languages_of_both_tools() {
        let c = SiteConfig::parse(
            "default_language = \"en\"\n[languages.fr]\ntitle = \"Mon site\"\nname = \"Français\"\n\
             [languages.de]\nlanguageName = \"Deutsch\"\nweight = -1\ncontentDir = \"content/de\"\n[languages.de.params]\nx = 1\n",
        )
        .unwrap();
        assert_eq!(c.languages().others, ["de", "fr"]);
        assert_eq!(c.languages["de"].name.as_deref(), Some("Deutsch"));
        assert_eq!(c.languages["fr"].title.as_deref(), Some("Mon site"));
    }

    #[test]
    fn unknown_keys_name_the_file_and_line() {
        let err = SiteConfig::parse("title = \"x\"\nbase_urll = \"y\"\n").unwrap_err().to_string();
        assert!(err.starts_with("site.toml:") && err.contains("line 2") && err.contains("base_urll"), "{err}");
    }

    #[test]
    fn hostile_values_are_refused() {
        assert!(SiteConfig::parse("paginate_by = 0").is_err());
        assert!(SiteConfig::parse("paginate_by = -1").is_err());
        assert!(SiteConfig::parse("taxonomies = [\"../x\"]").is_err());
        assert!(SiteConfig::parse("title = [1, 2]").is_err());
        assert!(SiteConfig::parse("[[[").is_err());
        assert!(SiteConfig::parse("[markdown]\nhighlight_theme = \"nope\"")
            .unwrap_err()
            .to_string()
            .contains("InspiredGitHub"));
        assert!(SiteConfig::parse("[markdown]\nhighlight = true").is_err());
        let c = SiteConfig::parse("[markdown]\nhighlight_theme = \"nord\"\nhighlight_theme_dark = \"\"").unwrap();
        assert_eq!(c.markdown.highlight_theme_dark, None);
        assert!(SiteConfig::parse("[languages.\"../x\"]").is_err());
        assert!(SiteConfig::parse("default_language = \"English\"").is_err());
        assert!(SiteConfig::parse("[languages.fr]\nlocale = \"fr_FR\"").is_err());
        assert!(SiteConfig::parse("[languages.fr]\ncontentDir = \"french\"").is_err());
    }
}
