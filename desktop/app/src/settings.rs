//! The app's own settings (`desktop.toml` in the user's configuration folder): which site folder
//! is open, how to reach its server, and who the writer is. Written by the first-run wizard.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `desktop.toml`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The site folder (a Git clone).
    pub site: Option<PathBuf>,
    /// The server, `ssh://git@host:port/site.git` (or `https://…`).
    pub remote: Option<String>,
    /// SSH: the private key the writer publishes with.
    pub key: Option<PathBuf>,
    /// SSH: the server's host key fingerprint (`SHA256:…`), pinned on first connect.
    pub host_key_fingerprint: Option<String>,
    /// HTTPS: a file holding the token.
    pub token_file: Option<PathBuf>,
    /// The writer's name, on their saves.
    #[serde(default)]
    pub name: String,
    /// The writer's e-mail address.
    #[serde(default)]
    pub email: String,
}

impl Settings {
    /// Where the settings live: `$XDG_CONFIG_HOME/whispercms/desktop.toml`, else
    /// `~/.config/whispercms/desktop.toml`.
    pub fn default_path() -> PathBuf {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("whispercms/desktop.toml")
    }

    /// Read `path`; a missing file is the first run (empty settings).
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(anyhow::anyhow!("{}: {e}", path.display())),
        }
    }

    /// Write to `path` (atomically).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, toml::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    /// The author of saves.
    pub fn author(&self) -> desktop_core::save::Author {
        let name = if self.name.trim().is_empty() { "WhisperCMS writer".to_string() } else { self.name.clone() };
        let email = if self.email.trim().is_empty() { "writer@localhost".to_string() } else { self.email.clone() };
        desktop_core::save::Author { name, email }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hostile_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cfg/desktop.toml");
        assert_eq!(Settings::load(&path).unwrap(), Settings::default(), "first run");
        let s = Settings { site: Some("/s".into()), name: "Ada".into(), ..Default::default() };
        s.save(&path).unwrap();
        assert_eq!(Settings::load(&path).unwrap(), s);
        std::fs::write(&path, "site = 3\n").unwrap();
        assert!(Settings::load(&path).unwrap_err().to_string().contains("desktop.toml"));
        std::fs::write(&path, "unknown = 1\n").unwrap();
        assert!(Settings::load(&path).is_err());
    }
}
