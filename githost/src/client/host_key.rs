//! Pinning the server's host key: an OpenSSH `known_hosts` file (plain or hashed host names, as
//! `ssh` writes them; read by russh's parser) or one `SHA256:…` fingerprint from the settings.
//! An unknown or changed key refuses the connection, and the error shows the key's fingerprint
//! so the person can compare it with the one the server's operator published.

use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey};

use super::ClientError;

/// How the server's host key is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key must be listed for the host in this OpenSSH `known_hosts` file.
    KnownHosts(PathBuf),
    /// The key's SHA-256 fingerprint must be this (`SHA256:…`, as `ssh-keygen -lf` prints it).
    Fingerprint(String),
}

/// How OpenSSH names a host in `known_hosts`: `host` for port 22, else `[host]:port`.
pub fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// The `SHA256:…` fingerprint of `key`.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

impl HostKeyPolicy {
    /// Check `key`, shown by `host` (`known_hosts` naming: `host` or `[host]:port`).
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), ClientError> {
        let shown = fingerprint(key);
        let name = known_hosts_name(host, port);
        match self {
            HostKeyPolicy::Fingerprint(expected) => {
                let expected = expected.trim();
                if expected == shown {
                    Ok(())
                } else {
                    Err(ClientError::HostKeyChanged {
                        host: name,
                        fingerprint: shown,
                        expected: format!("the settings pin {expected}"),
                    })
                }
            }
            HostKeyPolicy::KnownHosts(path) => match russh::keys::check_known_hosts_path(host, port, key, path) {
                Ok(true) => Ok(()),
                Ok(false) => Err(ClientError::UnknownHostKey {
                    host: name,
                    fingerprint: shown,
                    pinned_by: path.display().to_string(),
                }),
                Err(russh::keys::Error::KeyChanged { line }) => Err(ClientError::HostKeyChanged {
                    host: name,
                    fingerprint: shown,
                    expected: format!("{}:{line} lists another key", path.display()),
                }),
                Err(e) => Err(ClientError::Ssh(format!("reading {}: {e}", path.display()))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PrivateKey;

    fn key() -> PublicKey {
        PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap().public_key().clone()
    }

    #[test]
    fn fingerprint_pin_accepts_only_that_key() {
        let (a, b) = (key(), key());
        let pin = HostKeyPolicy::Fingerprint(fingerprint(&a));
        assert!(pin.check("h", 2222, &a).is_ok());
        let err = pin.check("h", 2222, &b).unwrap_err().to_string();
        assert!(err.contains("CHANGED") && err.contains(&fingerprint(&b)) && err.contains("[h]:2222"), "{err}");
    }

    #[test]
    fn known_hosts_unknown_changed_and_known() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let (a, b) = (key(), key());
        let line =
            format!("# a comment\n[h]:2222 {}\nother.example {}\n", a.to_openssh().unwrap(), b.to_openssh().unwrap());
        std::fs::write(&path, line).unwrap();
        let policy = HostKeyPolicy::KnownHosts(path.clone());
        assert!(policy.check("h", 2222, &a).is_ok());
        let changed = policy.check("h", 2222, &b).unwrap_err();
        assert!(matches!(changed, ClientError::HostKeyChanged { .. }), "{changed}");
        let unknown = policy.check("new.example", 22, &a).unwrap_err();
        assert!(matches!(unknown, ClientError::UnknownHostKey { .. }), "{unknown}");
        assert!(unknown.to_string().contains(&fingerprint(&a)));
        // A missing file knows no host.
        let missing = HostKeyPolicy::KnownHosts(dir.path().join("nope"));
        assert!(matches!(missing.check("h", 2222, &a), Err(ClientError::UnknownHostKey { .. })));
    }

    #[test]
    fn garbage_known_hosts_is_an_error_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, "[h]:2222 ssh-ed25519 !!!notbase64\n\0\0\n").unwrap();
        assert!(HostKeyPolicy::KnownHosts(path).check("h", 2222, &key()).is_err());
    }
}
