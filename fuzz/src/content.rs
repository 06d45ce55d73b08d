//! Targets of what a push carries for the site: front matter, Markdown with shortcodes (what the
//! push checks find against what the site renders), `site.toml`, `plugin.toml`, `theme.toml`.

use site_runtime::content::document;
use site_runtime::content::front_matter;
use site_runtime::content::language::Languages;
use site_runtime::theme::csp;
use site_runtime::SiteConfig;

/// A URL the site will answer: absolute, canonical (no `.`, `..` or empty segment), nothing a
/// browser or the edge would read differently.
fn assert_site_url(url: &str, what: &str) {
    assert!(url.starts_with('/'), "{what}: {url:?} is not absolute");
    assert!(
        !url.chars().any(|c| c.is_control() || matches!(c, '?' | '#' | '\\' | '%')),
        "{what}: {url:?} has a character the edge refuses or reads differently"
    );
    let inner = url.trim_start_matches('/');
    let inner = inner.strip_suffix('/').unwrap_or(inner);
    if !inner.is_empty() {
        for segment in inner.split('/') {
            assert!(!segment.is_empty() && segment != "." && segment != "..", "{what}: {url:?} is not canonical");
        }
    }
    let limits = ingress::RequestLimits::default();
    let served = ingress::validate::target(url, &limits);
    assert!(
        served.as_deref().is_ok_and(|path| path == url),
        "{what}: the edge does not pass {url:?} through unchanged: {served:?}"
    );
}

/// Front matter, TOML or YAML: no panic, and every URL it sets (`path`, `aliases`) that the
/// site accepts is a canonical site URL.
pub fn front_matter(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok((Some((format, block)), _body)) = front_matter::split(text) else { return };
    let Ok(meta) = front_matter::parse(format, block) else { return };
    for raw in meta.path.iter().chain(&meta.aliases) {
        if let Ok(url) = document::normalize_url(raw) {
            assert_site_url(&url, "front matter URL");
        }
    }
}

fn languages() -> [Languages; 2] {
    let french = Languages { default: "en".into(), others: vec!["fr".into()] };
    [Languages::default(), french]
}

/// A content file: the outline push checks read and the document the site renders agree (both
/// accept or both refuse; same URL, links and shortcode calls), and its URL is a canonical one.
pub fn markdown(data: &[u8]) {
    let Some(source) = crate::text(data) else { return };
    for (path, languages) in [("content/blog/post.md", &languages()[0]), ("content/fr/docs/_index.md", &languages()[1])]
    {
        let outline = document::outline(path, source, languages);
        let parsed = document::parse(path, source, languages);
        match (outline, parsed) {
            (Ok(outline), Ok(doc)) => {
                assert_eq!(outline.url, doc.url, "outline and render place {path} differently");
                assert_eq!(outline.links, doc.links, "outline and render find different links");
                assert_eq!(outline.calls, doc.calls, "outline and render find different shortcodes");
                assert_site_url(&doc.url, "document URL");
            }
            (Err(_), Err(_)) => {}
            (outline, parsed) => panic!(
                "push checks and the site disagree on {path}: outline {:?}, render {:?}",
                outline.err(),
                parsed.err()
            ),
        }
    }
}

/// `site.toml`: no panic; a configuration accepted gives languages and a base URL.
pub fn site_toml(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    if let Ok(config) = SiteConfig::parse(text) {
        let languages = config.languages();
        assert!(!languages.others.contains(&languages.default), "the default language is listed twice");
        let _ = config.base();
    }
}

/// `plugin.toml`: an accepted manifest's entry stays inside the plugin's directory and each of
/// its routes is a path the edge passes through unchanged (else the route could never be called).
pub fn plugin_toml(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok(manifest) = site_runtime::extensions::manifest::parse("plugins/fuzz/plugin.toml", "fuzz", text) else {
        return;
    };
    assert!(
        !manifest.entry.starts_with('/') && manifest.entry.split('/').all(|p| !p.is_empty() && p != "." && p != ".."),
        "entry {:?} leaves the plugin's directory",
        manifest.entry
    );
    for route in &manifest.routes {
        assert_site_url(&route.path, "plugin route");
    }
}

/// `theme.toml`: an accepted manifest's CSP additions all pass the CSP check, and the policy
/// they make is one header value (no line breaks, no directive smuggled in by a source).
pub fn theme_toml(data: &[u8]) {
    let Ok(manifest) = site_runtime::theme::parse_manifest("themes/fuzz/theme.toml", data) else { return };
    let additions: std::collections::BTreeMap<String, Vec<String>> = manifest
        .content_security_policy
        .iter()
        .map(|(directive, sources)| (directive.clone(), sources.get_ref().clone()))
        .collect();
    for (directive, sources) in &additions {
        assert!(csp::check(directive, sources).is_ok(), "accepted {directive} sources fail the CSP check");
    }
    crate::edge::assert_policy(&csp::merge(crate::edge::BASE_POLICY, &additions), &additions);
}
