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
    /// Anything else, for themes and plugins.
    pub extra: BTreeMap<String, serde_json::Value>,
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
        Ok(config)
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
    }
}
