//! The site's settings (`site.toml`), its themes and its plugins, as the settings screens show
//! and change them.
//!
//! `site.toml` is read the way the server reads it ([`SiteConfig::parse`]: an unknown key is an
//! error with its line) and changed through `toml_edit`, so a setting changed in a form leaves
//! the owner's comments, key order and other keys as they were.

use site_runtime::config::SiteConfig;
use site_runtime::extensions::manifest::{self, PluginManifest};
use site_runtime::theme::{self, ThemeManifest};

use crate::pages::put;
use crate::worktree;
use crate::{Error, Result, Workspace};

/// The general settings a form edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct General {
    /// The site's name.
    pub title: String,
    /// One line about it.
    pub description: String,
    /// Where it is published (`https://example.org`).
    pub base_url: String,
    /// Its language (`en`).
    pub default_language: String,
    /// Pages per listing page.
    pub paginate_by: usize,
}

/// A theme the site can use.
#[derive(Debug, Clone)]
pub struct ThemeInfo {
    /// Its folder name under `themes/`; `None` is the default theme built into the server.
    pub name: Option<String>,
    /// Its `theme.toml`, when it has a readable one.
    pub manifest: Option<ThemeManifest>,
    /// Whether the site uses it.
    pub active: bool,
    /// Why its manifest could not be read.
    pub problem: Option<String>,
}

/// A plugin of the site (a folder under `plugins/`).
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Its folder name.
    pub name: String,
    /// Its `plugin.toml`, when readable.
    pub manifest: Option<PluginManifest>,
    /// Whether `site.toml` enables it.
    pub enabled: bool,
    /// Its settings: the manifest's defaults, with the site's own values over them.
    pub settings: Vec<Setting>,
    /// Why its manifest could not be read.
    pub problem: Option<String>,
}

/// One plugin setting.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Its key.
    pub key: String,
    /// Its value now.
    pub value: serde_json::Value,
    /// Whether the site sets it (otherwise it is the plugin's default).
    pub set_by_site: bool,
}

const PATH: &str = site_runtime::config::PATH;

fn read(ws: &Workspace, path: &str) -> Result<Option<String>> {
    let file = ws.dir().join(path);
    match std::fs::read_to_string(&file) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::fs(file)(e)),
    }
}

/// `site.toml` as the server reads it (defaults when the site has none).
pub fn config(ws: &Workspace) -> Result<SiteConfig> {
    Ok(read(ws, PATH)?.map(|t| SiteConfig::parse(&t)).transpose()?.unwrap_or_default())
}

/// `site.toml` open for editing (empty when the site has none).
fn edit(ws: &Workspace) -> Result<toml_edit::DocumentMut> {
    let text = read(ws, PATH)?.unwrap_or_default();
    text.parse().map_err(|e| Error::Page { path: PATH.into(), reason: format!("{e}") })
}

/// Write `doc` as `site.toml`, refusing what the server would not read.
fn write(ws: &Workspace, doc: &toml_edit::DocumentMut) -> Result<()> {
    let text = doc.to_string();
    SiteConfig::parse(&text)?;
    worktree::write_file(&ws.dir().join(PATH), text.as_bytes(), gix::objs::tree::EntryKind::Blob)
}

/// The general settings now.
pub fn general(ws: &Workspace) -> Result<General> {
    let c = config(ws)?;
    Ok(General {
        title: c.title,
        description: c.description,
        base_url: c.base_url,
        default_language: c.default_language,
        paginate_by: c.paginate_by,
    })
}

/// Change the general settings (only the keys whose value differs are written).
pub fn set_general(ws: &Workspace, g: &General) -> Result<()> {
    let now = general(ws)?;
    let mut doc = edit(ws)?;
    let t = doc.as_table_mut();
    if g.title != now.title {
        put(t, "title", g.title.as_str());
    }
    if g.description != now.description {
        put(t, "description", g.description.as_str());
    }
    if g.base_url != now.base_url {
        put(t, "base_url", g.base_url.as_str());
    }
    if g.default_language != now.default_language {
        put(t, "default_language", g.default_language.as_str());
    }
    if g.paginate_by != now.paginate_by {
        put(t, "paginate_by", g.paginate_by as i64);
    }
    write(ws, &doc)
}

/// Folders directly under `dir` (`themes`, `plugins`), in name order.
fn folders(ws: &Workspace, dir: &str) -> Result<Vec<String>> {
    let root = ws.dir().join(dir);
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries {
            let e = e.map_err(Error::fs(&root))?;
            if e.path().is_dir() {
                if let Ok(name) = e.file_name().into_string() {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The themes: the built-in default first, then `themes/*`.
pub fn themes(ws: &Workspace) -> Result<Vec<ThemeInfo>> {
    let active = config(ws)?.theme;
    let mut out = vec![ThemeInfo { name: None, manifest: None, active: active.is_none(), problem: None }];
    for name in folders(ws, "themes")? {
        let path = format!("themes/{name}/theme.toml");
        let (manifest, problem) = match std::fs::read(ws.dir().join(&path)) {
            Ok(bytes) => match theme::parse_manifest(&path, &bytes) {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(_) => (None, Some(format!("{path} is missing"))),
        };
        out.push(ThemeInfo { active: active.as_deref() == Some(name.as_str()), name: Some(name), manifest, problem });
    }
    Ok(out)
}

/// Use the theme `name` (`None`: the built-in default).
pub fn set_theme(ws: &Workspace, name: Option<&str>) -> Result<()> {
    if let Some(n) = name {
        if !folders(ws, "themes")?.iter().any(|f| f == n) {
            return Err(Error::Page { path: format!("themes/{n}"), reason: "no such theme in the site".into() });
        }
    }
    let mut doc = edit(ws)?;
    match name {
        Some(n) => put(doc.as_table_mut(), "theme", n),
        None => {
            doc.remove("theme");
        }
    }
    write(ws, &doc)
}

/// The plugins under `plugins/`, with whether they are enabled and their settings.
pub fn plugins(ws: &Workspace) -> Result<Vec<PluginInfo>> {
    let config = config(ws)?;
    let mut out = Vec::new();
    for name in folders(ws, "plugins")? {
        let path = format!("plugins/{name}/plugin.toml");
        let (manifest, problem) = match std::fs::read_to_string(ws.dir().join(&path)) {
            Ok(text) => match manifest::parse(&path, &name, &text) {
                Ok(m) => (Some(m), None),
                Err(e) => (None, Some(e.to_string())),
            },
            Err(_) => (None, Some(format!("{path} is missing"))),
        };
        let own = config.plugin_settings.get(&name);
        let mut settings: Vec<Setting> = manifest
            .as_ref()
            .map(|m| {
                m.settings
                    .iter()
                    .map(|(k, v)| match own.and_then(|o| o.get(k)) {
                        Some(mine) => Setting { key: k.clone(), value: mine.clone(), set_by_site: true },
                        None => Setting { key: k.clone(), value: v.clone(), set_by_site: false },
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (k, v) in own.into_iter().flatten() {
            if !settings.iter().any(|s| &s.key == k) {
                settings.push(Setting { key: k.clone(), value: v.clone(), set_by_site: true });
            }
        }
        out.push(PluginInfo { enabled: config.plugins.contains(&name), name, manifest, settings, problem });
    }
    Ok(out)
}

/// Enable or disable the plugin `name` (its folder stays; only `site.toml`'s list changes).
pub fn set_plugin_enabled(ws: &Workspace, name: &str, enabled: bool) -> Result<()> {
    if !folders(ws, "plugins")?.iter().any(|f| f == name) {
        return Err(Error::Page { path: format!("plugins/{name}"), reason: "no such plugin in the site".into() });
    }
    let mut list = config(ws)?.plugins;
    match (enabled, list.iter().position(|p| p == name)) {
        (true, None) => list.push(name.to_string()),
        (false, Some(i)) => {
            list.remove(i);
        }
        _ => return Ok(()),
    }
    let mut doc = edit(ws)?;
    put(doc.as_table_mut(), "plugins", list.iter().map(String::as_str).collect::<toml_edit::Array>());
    write(ws, &doc)
}

/// Set a plugin setting from the text a form gives, typed like the plugin's default for it
/// (a number stays a number, a flag a flag).
pub fn set_plugin_setting(ws: &Workspace, name: &str, key: &str, text: &str) -> Result<()> {
    let bad = |reason: String| Error::Page { path: PATH.into(), reason };
    let plugin = plugins(ws)?
        .into_iter()
        .find(|p| p.name == name)
        .ok_or_else(|| bad(format!("no plugin {name:?} in the site")))?;
    let current =
        plugin.settings.iter().find(|s| s.key == key).ok_or_else(|| bad(format!("{name} has no setting {key:?}")))?;
    let text = text.trim();
    let value: toml_edit::Value = match &current.value {
        serde_json::Value::Bool(_) => match text {
            "true" | "on" | "yes" => true.into(),
            "false" | "off" | "no" | "" => false.into(),
            _ => return Err(bad(format!("{key} is yes or no"))),
        },
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
            text.parse::<i64>().map_err(|_| bad(format!("{key} is a whole number")))?.into()
        }
        serde_json::Value::Number(_) => text.parse::<f64>().map_err(|_| bad(format!("{key} is a number")))?.into(),
        serde_json::Value::String(_) => text.into(),
        _ => return Err(bad(format!("{key} is a list or table: edit site.toml as text"))),
    };
    let mut doc = edit(ws)?;
    let settings = doc
        .entry("plugin_settings")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| bad("plugin_settings is not a table".into()))?;
    let table = settings
        .entry(name)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| bad(format!("plugin_settings.{name} is not a table")))?;
    put(table, key, value);
    write(ws, &doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture::site;

    #[test]
    fn general_settings_change_and_the_rest_of_the_file_stays() {
        let (_tmp, ws) = site();
        let path = ws.dir().join(PATH);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("# Our site\n{}", text.replace("paginate_by = 5", "paginate_by = 5 # five")))
            .unwrap();
        let mut g = general(&ws).unwrap();
        assert_eq!(g.title, "Whisper Notes");
        g.title = "Notes \"from\" the shed".into();
        g.paginate_by = 7;
        set_general(&ws, &g).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert!(after.starts_with("# Our site\ntitle = 'Notes \"from\" the shed'\n"), "{after}");
        assert!(after.contains("paginate_by = 7 # five"), "{after}");
        assert!(after.contains("[plugin_settings.reading-time]"));
        assert_eq!(general(&ws).unwrap(), g);
        // What the server would refuse is never written.
        g.paginate_by = 0;
        assert!(set_general(&ws, &g).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), after);
    }

    #[test]
    fn plugins_enable_disable_and_typed_settings() {
        let (_tmp, ws) = site();
        let list = plugins(&ws).unwrap();
        let rt = list.iter().find(|p| p.name == "reading-time").unwrap();
        assert!(rt.enabled);
        assert_eq!(rt.settings, [Setting { key: "words_per_minute".into(), value: 220.into(), set_by_site: true }]);
        set_plugin_enabled(&ws, "toc", false).unwrap();
        assert!(!config(&ws).unwrap().plugins.contains(&"toc".to_string()));
        set_plugin_enabled(&ws, "toc", true).unwrap();
        assert_eq!(config(&ws).unwrap().plugins.last().map(String::as_str), Some("toc"));
        assert!(set_plugin_enabled(&ws, "nope", true).is_err());
        set_plugin_setting(&ws, "reading-time", "words_per_minute", "250").unwrap();
        assert_eq!(config(&ws).unwrap().plugin_settings["reading-time"]["words_per_minute"], 250);
        assert!(set_plugin_setting(&ws, "reading-time", "words_per_minute", "fast").is_err());
        assert!(set_plugin_setting(&ws, "reading-time", "unknown", "1").is_err());
        let author = crate::fixture::author();
        ws.save("settings", &author).unwrap();
        assert_eq!(ws.check("main").unwrap(), vec![]);
    }

    #[test]
    fn themes_listed_and_chosen() {
        let (_tmp, ws) = site();
        let dir = ws.dir().join("themes/plain");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("theme.toml"), "name = \"plain\"\ndescription = \"Just text\"\n").unwrap();
        std::fs::create_dir_all(ws.dir().join("themes/broken")).unwrap();
        let list = themes(&ws).unwrap();
        assert_eq!(list.len(), 3);
        assert!(list[0].active && list[0].name.is_none());
        assert!(list[1].problem.is_some(), "broken has no theme.toml");
        set_theme(&ws, Some("plain")).unwrap();
        assert_eq!(config(&ws).unwrap().theme.as_deref(), Some("plain"));
        assert!(set_theme(&ws, Some("../../etc")).is_err());
        set_theme(&ws, None).unwrap();
        assert_eq!(config(&ws).unwrap().theme, None);
    }
}
