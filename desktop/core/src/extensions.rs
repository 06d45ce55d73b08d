//! Extensions from a Git source: a plugin or theme fetched from its own repository, shown with
//! its manifest and **the capabilities it asks for** before anything is added, then vendored
//! into `plugins/<name>/` or `themes/<name>/` with its source and commit recorded in
//! `SOURCE.toml` beside it. The server never fetches code: what runs there is what the site's
//! history holds, reviewed and published like any other change.
//!
//! A source is a repository whose top level is the extension (`plugin.toml` or `theme.toml`
//! beside its files), fetched at its default branch with `githost`'s client into a temporary
//! bare repository that [`Offer`] keeps until it is vendored or dropped.

use gix::ObjectId;
use site_runtime::extensions::manifest;
use site_runtime::theme;

use crate::worktree::{self, Files};
use crate::{Error, Result, Workspace};

/// The file recording where a vendored extension came from.
pub const SOURCE_FILE: &str = "SOURCE.toml";

/// Largest extension vendored (files together): an extension is code and templates, not media.
pub const MAX_BYTES: u64 = 20 * 1024 * 1024;

/// A plugin or a theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `plugins/<name>/`, with `plugin.toml`.
    Plugin,
    /// `themes/<name>/`, with `theme.toml`.
    Theme,
}

impl Kind {
    /// The site folder extensions of this kind live in.
    pub fn folder(self) -> &'static str {
        match self {
            Kind::Plugin => "plugins",
            Kind::Theme => "themes",
        }
    }
}

/// What a capability lets a plugin do, in words for the person deciding.
pub fn explain(capability: &str) -> String {
    match capability.split_once(':') {
        Some(("outbound.http", name)) => {
            format!("call the site's \"{name}\" service with its key (the key stays in the site's secrets)")
        }
        Some(("outbound.webhook", name)) => {
            format!("send data to the site's \"{name}\" webhook (its address is kept in the site's secrets)")
        }
        _ => match capability {
            "content.read" => "read every page of the site".into(),
            "http.route" => "answer visitors' requests at addresses of its own".into(),
            "form.submit" => "receive what visitors type into forms".into(),
            "mail.send" => "send email to the site's own addresses (set in the site's secrets)".into(),
            other => format!("{other} (unknown to this app)"),
        },
    }
}

/// An extension fetched and inspected, not added yet.
pub struct Offer {
    /// Plugin or theme.
    pub kind: Kind,
    /// Its name (the folder it goes in).
    pub name: String,
    /// Its version, as its manifest says.
    pub version: String,
    /// What it says it does.
    pub description: String,
    /// The capabilities it asks for (plugins; a theme asks for none but may widen the site's
    /// Content-Security-Policy, listed in `csp`).
    pub capabilities: Vec<String>,
    /// Sources a theme adds to the Content-Security-Policy, as `directive: source`.
    pub csp: Vec<String>,
    /// Where it was fetched from.
    pub url: String,
    /// The commit fetched.
    pub commit: ObjectId,
    /// Its files, as they will be written under the folder.
    pub files: Files,
    /// Whether the site has an extension of that name already (adding replaces it).
    pub replaces: bool,
    repo: std::sync::Arc<githost::Repository>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Offer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offer")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("commit", &self.commit)
            .finish()
    }
}

/// Fetch the extension at `url` through `remote` (a connection to that URL) and inspect it.
pub async fn fetch(ws: &Workspace, remote: &impl githost::client::Transport, url: &str) -> Result<Offer> {
    let dir = tempfile::tempdir().map_err(Error::fs(std::env::temp_dir()))?;
    let git_dir = dir.path().join("source.git");
    let (repo, _) = githost::client::clone(remote, "extension", &git_dir, githost::Limits::default()).await?;
    let local = repo.local();
    let head = match githost::refs::head(&local)? {
        githost::refs::Head::Symbolic { target, .. } => githost::refs::resolve(&local, target.as_ref())?,
        _ => None,
    };
    let commit = match head {
        Some(c) => c,
        None => ["refs/heads/main", "refs/heads/master"]
            .into_iter()
            .find_map(|r| githost::refs::resolve(&local, r.into()).ok().flatten())
            .ok_or_else(|| Error::NotASite(format!("{url} has no branch to take the extension from")))?,
    };
    let tree = site_runtime::source::tree_of(&local, commit)?;
    let files = worktree::files_of(&local, tree)?;
    let read = |path: &str| -> Result<Option<Vec<u8>>> {
        match files.get(path) {
            Some(f) => Ok(Some(local.find_blob(f.id).map_err(Error::git)?.data.clone())),
            None => Ok(None),
        }
    };
    let bad = |reason: String| Error::Page { path: url.to_string(), reason };
    let (kind, name, version, description, capabilities, csp) = if let Some(bytes) = read("plugin.toml")? {
        let text = String::from_utf8(bytes).map_err(|_| bad("plugin.toml is not UTF-8".into()))?;
        // The folder's name must be the manifest's: read the name first, then check it all.
        let name = toml_name(&text).ok_or_else(|| bad("plugin.toml has no name".into()))?;
        let m = manifest::parse("plugin.toml", &name, &text).map_err(|e| bad(e.to_string()))?;
        (Kind::Plugin, m.name, m.version, m.description, m.capabilities, Vec::new())
    } else if let Some(bytes) = read("theme.toml")? {
        let m = theme::parse_manifest("theme.toml", &bytes).map_err(|e| bad(e.to_string()))?;
        let csp = m
            .content_security_policy
            .iter()
            .flat_map(|(d, sources)| sources.get_ref().iter().map(move |s| format!("{d}: {s}")))
            .collect();
        (Kind::Theme, m.name, m.version, m.description, Vec::new(), csp)
    } else {
        return Err(bad("neither plugin.toml nor theme.toml at the top of the repository: not an extension".into()));
    };
    if !valid_name(&name) {
        return Err(bad(format!("{name:?} cannot be a folder name (lowercase letters, digits, '-' or '_')")));
    }
    let mut size = 0;
    for (path, f) in &files {
        if f.kind == gix::objs::tree::EntryKind::Link {
            return Err(bad(format!("{path} is a symbolic link; an extension's files must be plain files")));
        }
        size += local.find_header(f.id).map_err(Error::git)?.size();
    }
    if size > MAX_BYTES {
        return Err(bad(format!(
            "its files take {} MB, more than the {} MB an extension may",
            size >> 20,
            MAX_BYTES >> 20
        )));
    }
    let replaces = ws.dir().join(kind.folder()).join(&name).exists();
    drop(local);
    Ok(Offer {
        kind,
        name,
        version,
        description,
        capabilities,
        csp,
        url: url.to_string(),
        commit,
        files,
        replaces,
        repo,
        _dir: dir,
    })
}

/// The `name = "…"` of a manifest, if it has one.
fn toml_name(text: &str) -> Option<String> {
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    doc.get("name")?.as_str().map(str::to_string)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

impl Offer {
    /// Write the extension into the site folder (replacing one of the same name), with
    /// `SOURCE.toml`; for a plugin, enable it. Returns the folder (`plugins/<name>`).
    pub fn vendor(&self, ws: &Workspace) -> Result<String> {
        let folder = format!("{}/{}", self.kind.folder(), self.name);
        let target = ws.dir().join(&folder);
        let local = self.repo.local();
        // Write beside, then swap: a failure half-way leaves the old version in place.
        let staging = ws.dir().join(format!("{}/.{}.whispercms-tmp", self.kind.folder(), self.name));
        let _ = std::fs::remove_dir_all(&staging);
        for (path, f) in &self.files {
            if path.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c == ".git") {
                return Err(Error::Git(format!("refusing the unsafe path {path:?}")));
            }
            let blob = local.find_blob(f.id).map_err(Error::git)?;
            worktree::write_file(&staging.join(path), &blob.data, f.kind)?;
        }
        let mut record = toml_edit::DocumentMut::new();
        record.insert("url", toml_edit::value(self.url.as_str()));
        record.insert("commit", toml_edit::value(self.commit.to_string()));
        record.insert("version", toml_edit::value(self.version.as_str()));
        let text = format!(
            "# Where this {} came from: added by WhisperCMS Desktop on {}. Update it from the app,\n\
             # not by hand, so that this stays true.\n{record}",
            match self.kind {
                Kind::Plugin => "plugin",
                Kind::Theme => "theme",
            },
            jiff::Timestamp::now().strftime("%Y-%m-%d"),
        );
        worktree::write_file(&staging.join(SOURCE_FILE), text.as_bytes(), gix::objs::tree::EntryKind::Blob)?;
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(Error::fs(&target))?;
        }
        std::fs::rename(&staging, &target).map_err(Error::fs(&target))?;
        if self.kind == Kind::Plugin {
            crate::site::set_plugin_enabled(ws, &self.name, true)?;
        }
        Ok(folder)
    }
}

/// Where a vendored extension came from, if it records it.
pub fn source_of(ws: &Workspace, kind: Kind, name: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(ws.dir().join(kind.folder()).join(name).join(SOURCE_FILE)).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    Some((doc.get("url")?.as_str()?.to_string(), doc.get("commit")?.as_str()?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_explained_and_names_checked() {
        assert!(explain("http.route").contains("requests"));
        assert!(explain("outbound.webhook:contact").contains("\"contact\""));
        assert!(explain("root.shell").contains("unknown"));
        assert!(valid_name("reading-time") && !valid_name("../x") && !valid_name("Big") && !valid_name(""));
        assert_eq!(toml_name("name = \"toc\"\nversion = \"1\"\n").as_deref(), Some("toc"));
        assert_eq!(toml_name("version = 1"), None);
    }
}
