//! The site's secrets (`secrets/`) from the writer's computer: which files and keys there are,
//! and setting a value — decrypted and encrypted here with the writer's own age identity (the
//! `age` of their entry in `access/users.toml`), never the server's. Files are encrypted with
//! the rule the CLI uses (`secrets::recipients`), then saved and published like any change; the
//! server checks them at push. Values are never shown back: only which keys exist.

use std::path::Path;

use secrets::{Document, Format, Keyring};

use crate::workspace::Workspace;
use crate::{Error, Result};

/// One file of `secrets/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// `secrets/mail.yaml`.
    pub path: String,
    /// Its keys (dot-separated paths to values) when this computer can open it.
    pub keys: Vec<String>,
    /// Whether the writer's identity opens it.
    pub readable: bool,
    /// Why not, when it cannot be opened or read.
    pub problem: Option<String>,
}

/// Every file under `secrets/`, with its keys when `keyring` opens it.
pub fn list(ws: &Workspace, keyring: Option<&'static Keyring>) -> Vec<SecretFile> {
    let dir = ws.dir().join(secrets::DIR);
    secrets::recipients::files_in(&dir)
        .into_iter()
        .map(|file| {
            let path = relative(ws, &file);
            let opened = read(&file).and_then(|doc| {
                let doc = doc.ok_or_else(|| secrets::Error::invalid_text("gone"))?;
                match keyring {
                    Some(k) => doc.decrypt(k).map(Some),
                    None => Ok(None),
                }
            });
            match opened {
                Ok(Some(tree)) => SecretFile { path, keys: keys_of(&tree), readable: true, problem: None },
                Ok(None) => SecretFile { path, keys: Vec::new(), readable: false, problem: None },
                Err(e) => SecretFile { path, keys: Vec::new(), readable: false, problem: Some(e.to_string()) },
            }
        })
        .collect()
}

/// Set `key` of `secrets/<name>` (made when missing) to `value`, encrypted to the site's
/// recipients and the writer's own.
pub fn set(ws: &Workspace, name: &str, key: &str, value: &str, keyring: &'static Keyring) -> Result<()> {
    let path = format!("{}/{}", secrets::DIR, name.trim_start_matches("secrets/"));
    let (_, format) = secrets::store::name_of(&path).map_err(|e| page_error(&path, e))?;
    let file = ws.dir().join(&path);
    let old = read(&file).map_err(|e| page_error(&path, e))?;
    let plain = match &old {
        Some(doc) => doc.plaintext(keyring).map_err(|e| page_error(&path, e))?,
        None => zeroize::Zeroizing::new(String::new()),
    };
    let text = secrets::document::set_value(format, &plain, key, value).map_err(|e| page_error(&path, e))?;
    let users = crate::people::list(ws)?;
    let people: Vec<secrets::recipients::Person> = users
        .iter()
        .map(|u| secrets::recipients::Person { age: u.age.as_deref(), admin: u.roles.iter().any(|r| r == "admin") })
        .collect();
    let neighbours: Vec<Vec<String>> = match old {
        Some(_) => Vec::new(),
        None => secrets::recipients::files_in(&ws.dir().join(secrets::DIR))
            .iter()
            .filter_map(|f| read(f).ok().flatten())
            .map(|d| d.recipients().to_vec())
            .collect(),
    };
    let existing = old.as_ref().map(Document::recipients);
    let recipients = secrets::recipients::choose(existing, &neighbours, &[], &keyring.recipients(), &people);
    let doc = match &old {
        Some(old) => old.update(keyring, &text, &recipients),
        None => Document::encrypt(format, &text, &recipients),
    }
    .map_err(|e| page_error(&path, e))?;
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).map_err(Error::fs(parent))?;
    }
    let tmp = file.with_extension("tmp~");
    std::fs::write(&tmp, doc.text()).map_err(Error::fs(&tmp))?;
    std::fs::rename(&tmp, &file).map_err(Error::fs(&file))?;
    Ok(())
}

fn page_error(path: &str, e: secrets::Error) -> Error {
    Error::Page { path: path.to_string(), reason: e.to_string() }
}

fn relative(ws: &Workspace, file: &Path) -> String {
    file.strip_prefix(ws.dir()).unwrap_or(file).to_string_lossy().replace('\\', "/")
}

fn read(file: &Path) -> secrets::Result<Option<Document>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(secrets::Error::Io { path: file.into(), source }),
    };
    let format =
        Format::of_path(&file.to_string_lossy()).ok_or_else(|| secrets::Error::invalid_text("not a secrets file"))?;
    Document::parse(format, &text).map(Some)
}

/// Dot-separated paths to every value.
fn keys_of(tree: &secrets::SecretTree) -> Vec<String> {
    fn walk(prefix: &str, node: &secrets::SecretTree, out: &mut Vec<String>) {
        match node {
            secrets::SecretTree::Map(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk("", tree, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn values_are_set_listed_by_key_and_encrypted_to_the_admins() {
        let (_tmp, ws) = fixture::site();
        let me = secrets::Identity::generate();
        let keyring = Keyring::install(vec![me.clone()]).unwrap();
        let server = secrets::Identity::generate();
        // The server's recipient comes from a file already there.
        let existing = Document::encrypt(Format::Yaml, "a: b\n", &[server.recipient()]).unwrap();
        std::fs::create_dir_all(ws.dir().join("secrets")).unwrap();
        std::fs::write(ws.dir().join("secrets/other.yaml"), existing.text()).unwrap();
        set(&ws, "webhooks.yaml", "contact.url", "https://hooks.example.org/x", keyring).unwrap();
        set(&ws, "webhooks.yaml", "contact.token", "tok-1234567", keyring).unwrap();
        let text = std::fs::read_to_string(ws.dir().join("secrets/webhooks.yaml")).unwrap();
        assert!(!text.contains("tok-1234567") && text.contains(&server.recipient()) && text.contains(&me.recipient()));
        let files = list(&ws, Some(keyring));
        let webhooks = files.iter().find(|f| f.path == "secrets/webhooks.yaml").unwrap();
        assert_eq!(webhooks.keys, ["contact.token", "contact.url"]);
        let other = files.iter().find(|f| f.path == "secrets/other.yaml").unwrap();
        assert!(
            !other.readable && other.problem.as_deref().is_some_and(|p| p.contains("not encrypted to")),
            "{other:?}"
        );
        assert!(!format!("{files:?}").contains("tok-1234567"));
        assert!(set(&ws, "notes.md", "a", "b", keyring).is_err());
        assert!(set(&ws, "webhooks.yaml", "sops", "b", keyring).is_err());
    }
}
