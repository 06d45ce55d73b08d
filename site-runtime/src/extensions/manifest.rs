//! `plugins/<name>/plugin.toml`: what a plugin is, which hooks it implements, the routes it
//! serves, the capabilities it asks for and its settings (with defaults a site overrides in
//! `site.toml` under `[plugin_settings.<name>]`). Unknown keys, wrong types and missing fields
//! are refused with the line; everything else it names is checked against the script once that
//! is compiled ([`super::load`]).

use serde::Deserialize;

use crate::error::{toml_message, Error, Result};

/// Capabilities the server implements. `outbound.webhook:<name>` and `outbound.http:<name>`
/// name one of the site's webhooks or endpoints (kept in its `secrets/`).
pub const CAPABILITIES: &[&str] =
    &["content.read", "http.route", "form.submit", "outbound.webhook:<name>", "outbound.http:<name>", "mail.send"];

/// Filters a plugin may implement, with the Rhai function each needs.
pub const FILTERS: &[(&str, &str)] = &[
    ("page_html", "fn page_html(html, page) -> the page's HTML after Markdown"),
    ("head", "fn head(page) -> HTML to add at the end of <head>"),
];

/// Events a plugin may handle.
pub const EVENTS: &[(&str, &str)] = &[("on_publish", "fn on_publish(change) -> called after each publish")];

/// One HTTP route a plugin serves.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact site-relative path, e.g. `/api/search`.
    pub path: String,
    /// `GET` (default; `HEAD` follows), `POST`.
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// The Rhai function handling it: `fn handler(request) -> response`.
    pub handler: String,
}

fn default_methods() -> Vec<String> {
    vec!["GET".into()]
}

fn default_entry() -> String {
    "main.rhai".into()
}

/// A parsed `plugin.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginManifest {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
    /// The script, relative to the plugin's directory.
    #[serde(default = "default_entry")]
    pub entry: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// `page_html`, `head`.
    #[serde(default)]
    pub filters: Vec<String>,
    /// Shortcodes usable from Markdown as `{{ name(key="value") }}`: `fn shortcode_<name>(args, page)`.
    #[serde(default)]
    pub shortcodes: Vec<String>,
    /// Template functions (and filters) for themes: script functions of these names.
    #[serde(default)]
    pub functions: Vec<String>,
    /// `on_publish`.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Settings and their defaults.
    #[serde(default)]
    pub settings: serde_json::Map<String, serde_json::Value>,
}

/// Letters, digits, `-` and `_`, starting with a letter: plugin, webhook and shortcode names.
pub fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && s.len() <= 64
}

/// A Rhai function name.
fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// Whether `capability` is one the server implements.
pub fn is_capability(capability: &str) -> bool {
    match capability.strip_prefix("outbound.webhook:").or_else(|| capability.strip_prefix("outbound.http:")) {
        Some(name) => is_name(name),
        None => CAPABILITIES.contains(&capability),
    }
}

/// Parse `plugin.toml` of the plugin in directory `dir_name`; every structural problem is an
/// error naming the file (and line, for syntax and type errors).
pub fn parse(path: &str, dir_name: &str, text: &str) -> Result<PluginManifest> {
    let m: PluginManifest = toml::from_str(text).map_err(|e| Error::content(path, toml_message(&e, text)))?;
    let fail = |message: String| Err(Error::content(path, message));
    if m.name != dir_name {
        return fail(format!("name {:?} must be the plugin's directory name {dir_name:?}", m.name));
    }
    if !is_name(&m.name) {
        return fail(format!("name {:?} must be lowercase letters, digits, '-' or '_'", m.name));
    }
    if m.version.trim().is_empty() {
        return fail("version must not be empty".into());
    }
    if !m.entry.ends_with(".rhai") || m.entry.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
        return fail(format!("entry {:?} must be a .rhai file inside the plugin's directory", m.entry));
    }
    for c in &m.capabilities {
        if !is_capability(c) {
            return fail(format!("unknown capability {c:?} (known: {})", CAPABILITIES.join(", ")));
        }
    }
    for f in &m.filters {
        if !FILTERS.iter().any(|(name, _)| name == f) {
            let known: Vec<&str> = FILTERS.iter().map(|(n, _)| *n).collect();
            return fail(format!("unknown filter {f:?} (known: {})", known.join(", ")));
        }
    }
    for e in &m.events {
        if !EVENTS.iter().any(|(name, _)| name == e) {
            let known: Vec<&str> = EVENTS.iter().map(|(n, _)| *n).collect();
            return fail(format!("unknown event {e:?} (known: {})", known.join(", ")));
        }
    }
    for s in &m.shortcodes {
        if !is_identifier(s) {
            return fail(format!("shortcode {s:?} must be a name of letters, digits and '_'"));
        }
    }
    for f in &m.functions {
        if !is_identifier(f) {
            return fail(format!("function {f:?} must be a name of letters, digits and '_'"));
        }
    }
    if !m.routes.is_empty() && !m.capabilities.iter().any(|c| c == "http.route") {
        return fail("routes need the capability \"http.route\"".into());
    }
    for r in &m.routes {
        // Canonical, as the edge hands paths to the site: a route the edge would refuse (`//`,
        // `.` or `..` segments, control characters) could never be called.
        let segments: Vec<&str> = r.path.split('/').skip(1).collect();
        let last = segments.len().saturating_sub(1);
        let canonical =
            segments.iter().enumerate().all(|(i, p)| *p != "." && *p != ".." && (i == last || !p.is_empty()));
        if !r.path.starts_with('/')
            || r.path.contains(['?', '#', '%', '\\'])
            || r.path.chars().any(char::is_control)
            || !canonical
        {
            return fail(format!("route path {:?} must be a plain absolute path like \"/api/search\"", r.path));
        }
        if crate::urls::RESERVED.contains(&r.path.as_str()) {
            return fail(format!("route path {:?} is the server's own", r.path));
        }
        if r.methods.is_empty() {
            return fail(format!("route {:?}: methods must not be empty", r.path));
        }
        for method in &r.methods {
            match method.as_str() {
                "GET" => {}
                "POST" if m.capabilities.iter().any(|c| c == "form.submit") => {}
                "POST" => return fail(format!("route {:?}: POST needs the capability \"form.submit\"", r.path)),
                other => return fail(format!("route {:?}: method {other:?} is not one of GET, POST", r.path)),
            }
        }
        if !is_identifier(&r.handler) {
            return fail(format!("route {:?}: handler {:?} must be a function name", r.path, r.handler));
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "contact"
version = "1.0.0"
description = "A contact form."
capabilities = ["http.route", "form.submit", "outbound.webhook:contact"]
filters = ["head"]
functions = ["contact_link"]

[[route]]
path = "/contact/send"
methods = ["POST"]
handler = "send"

[settings]
subject = "Hello"
"#;

    #[test]
    fn reads_a_manifest() {
        let m = parse("plugins/contact/plugin.toml", "contact", GOOD).unwrap();
        assert_eq!(m.entry, "main.rhai");
        assert_eq!(m.routes[0].handler, "send");
        assert_eq!(m.settings["subject"], "Hello");
    }

    #[test]
    fn refuses_broken_manifests_with_the_reason() {
        let cases: &[(&str, &str)] = &[
            ("name = \"contact\"\n", "missing field `version`"),
            ("name = \"contact\"\nversion = \"1\"\ncolour = 1\n", "line 3: unknown field `colour`"),
            ("name = \"contact\"\nversion = 1\n", "line 2: invalid type"),
            ("name = \"other\"\nversion = \"1\"\n", "must be the plugin's directory name"),
            ("name = \"contact\"\nversion = \"1\"\nentry = \"../x.rhai\"\n", "inside the plugin's directory"),
            ("name = \"contact\"\nversion = \"1\"\ncapabilities = [\"fs.write\"]\n", "unknown capability \"fs.write\""),
            ("name = \"contact\"\nversion = \"1\"\ncapabilities = [\"outbound.webhook:\"]\n", "unknown capability"),
            ("name = \"contact\"\nversion = \"1\"\nfilters = [\"body\"]\n", "unknown filter \"body\""),
            ("name = \"contact\"\nversion = \"1\"\nevents = [\"on_boot\"]\n", "unknown event"),
            ("name = \"contact\"\nversion = \"1\"\n[[route]]\npath = \"/x\"\nhandler = \"h\"\n", "need the capability \"http.route\""),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/x\"\nmethods = [\"POST\"]\nhandler = \"h\"\n",
                "POST needs the capability \"form.submit\"",
            ),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/rss.xml\"\nhandler = \"h\"\n",
                "is the server's own",
            ),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/a/../b\"\nhandler = \"h\"\n",
                "plain absolute path",
            ),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/a//b\"\nhandler = \"h\"\n",
                "plain absolute path",
            ),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/a/./b\"\nhandler = \"h\"\n",
                "plain absolute path",
            ),
            (
                "name = \"contact\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/a\\tb\"\nhandler = \"h\"\n",
                "plain absolute path",
            ),
            ("name = \"contact\"\nversion = \"1\"\nfunctions = [\"x y\"]\n", "must be a name"),
            ("\u{0}", "line 1"),
        ];
        for (text, expected) in cases {
            let err = parse("plugins/contact/plugin.toml", "contact", text).unwrap_err().to_string();
            assert!(err.starts_with("plugins/contact/plugin.toml: "), "{err}");
            assert!(err.contains(expected), "{text:?}: expected {expected:?} in {err}");
        }
    }
}
