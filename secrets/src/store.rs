//! Every secrets document of one commit, decrypted, by name: `secrets/mail.yaml` is `mail`,
//! `secrets/a/b.json` is `a/b`. Built when a commit is published and swapped with its
//! snapshot, so a push that changes `secrets/` takes effect with the next snapshot.

use std::collections::BTreeMap;

use crate::document::{Document, Format};
use crate::identity::Keyring;
use crate::value::{Secret, SecretTree};
use crate::{Error, Result, DIR};

/// The decrypted documents of one commit.
#[derive(Debug, Default)]
pub struct Store {
    documents: BTreeMap<String, SecretTree>,
}

/// The name of a secrets file (`secrets/a/b.yaml` → `a/b`) and its format; an error for a
/// path under `secrets/` that cannot hold a document.
pub fn name_of(path: &str) -> Result<(String, Format)> {
    let rest =
        path.strip_prefix(DIR).and_then(|r| r.strip_prefix('/')).ok_or_else(|| Error::invalid("not under secrets/"))?;
    let format = Format::of_path(rest)
        .ok_or_else(|| Error::invalid("only ROPS documents (.yaml, .yml, .json, .toml) may be kept under secrets/"))?;
    let stem = &rest[..rest.rfind('.').unwrap_or(rest.len())];
    if stem.is_empty() || stem.split('/').any(|s| s.is_empty() || s.starts_with('.')) {
        return Err(Error::invalid("a secrets file needs a name, and no part of its path may start with '.'"));
    }
    Ok((stem.to_string(), format))
}

impl Store {
    /// Decrypt every `(path, text)` given. Documents that fail are left out and returned with
    /// their error (push validation keeps such files out; at start an identity may have
    /// changed).
    pub fn load<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        keyring: &'static Keyring,
    ) -> (Store, Vec<(String, Error)>) {
        let mut store = Store::default();
        let mut problems = Vec::new();
        for (path, text) in files {
            let opened = name_of(path).and_then(|(name, format)| {
                if store.documents.contains_key(&name) {
                    return Err(Error::invalid(format!("another file of secrets/ is also named {name}")));
                }
                Ok((name, Document::parse(format, text)?.decrypt(keyring)?))
            });
            match opened {
                Ok((name, tree)) => {
                    store.documents.insert(name, tree);
                }
                Err(e) => problems.push((path.to_string(), e)),
            }
        }
        (store, problems)
    }

    /// The document named `name`.
    pub fn document(&self, name: &str) -> Option<&SecretTree> {
        self.documents.get(name)
    }

    /// The value `key` (dot-separated path) of document `name`.
    pub fn value(&self, name: &str, key: &str) -> Option<&Secret> {
        let path: Vec<&str> = key.split('.').collect();
        self.documents.get(name)?.value(&path)
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    /// `text` with every secret value in it (of 4 bytes or more) replaced by `[redacted]`: for
    /// anything that goes back to a script or into a log after it met a secret (a reply body,
    /// an error message).
    pub fn redact(&self, text: &str) -> String {
        let mut values: Vec<&str> =
            self.documents.values().flat_map(SecretTree::values).map(Secret::expose).filter(|v| v.len() >= 4).collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_string();
        for v in values {
            if out.contains(v) {
                out = out.replace(v, "[redacted]");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::tests::keys;

    #[test]
    fn names_and_lookups() {
        assert_eq!(name_of("secrets/mail.yaml").unwrap(), ("mail".to_string(), Format::Yaml));
        assert_eq!(name_of("secrets/a/b.json").unwrap().0, "a/b");
        for bad in
            ["secrets/README.md", "secrets/.hidden.yaml", "secrets/a/.b/c.yaml", "secrets/.yaml", "content/x.yaml"]
        {
            assert!(name_of(bad).is_err(), "{bad}");
        }
        let (ids, ring) = keys();
        let server = ids[0].recipient();
        let mail =
            Document::encrypt(Format::Yaml, "smtp:\n  password: hunter2-pw\n", std::slice::from_ref(&server)).unwrap();
        let other = Document::encrypt(Format::Yaml, "a: b\n", &[ids[2].recipient()]).unwrap();
        let twin = Document::encrypt(Format::Json, "{\"x\": \"y\"}", &[server]).unwrap();
        let files = [
            ("secrets/mail.yaml", mail.text()),
            ("secrets/other.yaml", other.text()),
            ("secrets/mail.json", twin.text()),
        ];
        let (store, problems) = Store::load(files, ring);
        assert_eq!(store.value("mail", "smtp.password").unwrap().expose(), "hunter2-pw");
        assert!(store.value("mail", "smtp.user").is_none());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().any(|(p, e)| p == "secrets/mail.json" && e.to_string().contains("also named mail")));
        assert_eq!(store.redact("got hunter2-pw back, hunter2-pw!"), "got [redacted] back, [redacted]!");
        assert!(!format!("{store:?}").contains("hunter2"));
    }
}
