//! The site's secrets (`secrets/`) from the writer's computer: which files and keys there are,
//! and setting a value — decrypted and encrypted here with the writer's own age identity (the
//! `age` of their entry in `access/users.toml`), never the server's. Files are encrypted with
//! the rule the CLI uses (`secrets::recipients`), then saved and published like any change; the
//! server checks them at push. Values are never shown back: only which keys exist.

use secrets::Keyring;

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
    secrets::recipients::files_in(&ws.dir().join(secrets::DIR))
        .into_iter()
        .map(|file| {
            let path = file.strip_prefix(ws.dir()).unwrap_or(&file).to_string_lossy().replace('\\', "/");
            let opened = secrets::file::read(&file).and_then(|doc| match (doc, keyring) {
                (Some(doc), Some(k)) => doc.decrypt(k).map(Some),
                _ => Ok(None),
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
    let problem = |e: secrets::Error| Error::Page { path: path.clone(), reason: e.to_string() };
    secrets::store::name_of(&path).map_err(problem)?;
    let users = crate::people::list(ws)?;
    let people = hooks::users::secrets_people(&users);
    let dir = ws.dir().join(secrets::DIR);
    secrets::file::set(&ws.dir().join(&path), key, value, &dir, &[], keyring, &people).map_err(problem)?;
    Ok(())
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
    use secrets::{Document, Format};

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
