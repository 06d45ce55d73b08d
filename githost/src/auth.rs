//! Who is connecting: principals and the public keys that authenticate them.
//!
//! The SSH endpoint asks a [`KeyAuthorizer`] whether a verified public key belongs to somebody.
//! [`AuthorizedKeys`] is the implementation backed by an OpenSSH `authorized_keys`-style list;
//! the CMS layer provides another that reads keys from the site repository.

use std::path::Path;

use russh::keys::{HashAlg, PublicKey};

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's id (from the key's comment or the CMS's user list).
    pub id: String,
    /// The SHA-256 fingerprint of the key they authenticated with.
    pub key_fingerprint: String,
}

/// Maps a verified public key to a principal.
pub trait KeyAuthorizer: Send + Sync {
    /// The principal owning `key`, or `None` to refuse the key. `ssh_user` is the user name the
    /// client sent (usually `git`); it is informational only.
    fn authorize(&self, ssh_user: &str, key: &PublicKey) -> Option<Principal>;
}

/// A fixed list of keys, as in OpenSSH's `authorized_keys`.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    keys: Vec<(PublicKey, String)>,
}

/// A line of an authorized-keys list that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{source_name}:{line}: {message}")]
pub struct KeyListError {
    /// The file (or other source) the line came from.
    pub source_name: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl AuthorizedKeys {
    /// Parse `authorized_keys` text: one key per line (`[options] type base64 [comment]`), blank
    /// lines and `#` comments ignored. The principal's id is the key's comment, or
    /// `key-<line>` when there is none. Options are ignored: access is decided by hooks.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, KeyListError> {
        let mut keys = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| KeyListError { source_name: source_name.into(), line: i + 1, message };
            let start = find_key_start(line).ok_or_else(|| err("no public key found on this line".into()))?;
            let key = PublicKey::from_openssh(&line[start..]).map_err(|e| err(format!("not a public key: {e}")))?;
            let id = if key.comment().is_empty() { format!("key-{}", i + 1) } else { key.comment().to_string() };
            keys.push((key, id));
        }
        Ok(AuthorizedKeys { keys })
    }

    /// Read and parse an `authorized_keys` file.
    pub fn from_file(path: &Path) -> Result<Self, KeyListError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyListError {
            source_name: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Add one key for principal `id`.
    pub fn add(&mut self, key: PublicKey, id: impl Into<String>) {
        self.keys.push((key, id.into()));
    }

    /// Add all keys of `other`.
    pub fn extend(&mut self, other: AuthorizedKeys) {
        self.keys.extend(other.keys);
    }

    /// The keys with the principal id each one maps to.
    pub fn into_entries(self) -> Vec<(PublicKey, String)> {
        self.keys
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Byte offset of the key type in an authorized_keys line, skipping any leading options.
fn find_key_start(line: &str) -> Option<usize> {
    const TYPES: [&str; 4] = ["ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-"];
    let mut offset = 0;
    for token in line.split(' ') {
        if TYPES.iter().any(|t| token.starts_with(t)) {
            return Some(offset);
        }
        offset += token.len() + 1;
    }
    None
}

impl KeyAuthorizer for AuthorizedKeys {
    fn authorize(&self, _ssh_user: &str, key: &PublicKey) -> Option<Principal> {
        self.keys
            .iter()
            .find(|(k, _)| k.key_data() == key.key_data())
            .map(|(_, id)| Principal { id: id.clone(), key_fingerprint: key.fingerprint(HashAlg::Sha256).to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOkNnfZmDjRq8i1kW0pyFBb/5n5F1dyi8y0yXKA4Egt alice@example";

    #[test]
    fn parses_keys_with_options_and_comments() {
        let text = format!("# team\n\ncommand=\"x\",no-pty {ED}\n");
        let keys = AuthorizedKeys::parse(&text, "test").unwrap();
        assert_eq!(keys.len(), 1);
        let key = PublicKey::from_openssh(ED).unwrap();
        let p = keys.authorize("git", &key).unwrap();
        assert_eq!(p.id, "alice@example");
        assert!(p.key_fingerprint.starts_with("SHA256:"));
    }

    #[test]
    fn reports_the_line_of_a_broken_key() {
        let err = AuthorizedKeys::parse("\nssh-ed25519 !!!notbase64 bob\n", "keys.txt").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.to_string().starts_with("keys.txt:2:"), "{err}");
        let err = AuthorizedKeys::parse("hello world\n", "keys.txt").unwrap_err();
        assert!(err.message.contains("no public key"));
    }

    #[test]
    fn refuses_unknown_keys() {
        let keys = AuthorizedKeys::parse(ED, "t").unwrap();
        let other = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
        assert!(keys.authorize("git", other.public_key()).is_none());
    }
}
