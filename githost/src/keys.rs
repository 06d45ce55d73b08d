//! SSH key files: the server's host key and generated user keys, in OpenSSH format, mode 0600.

use std::io::Write;
use std::path::Path;

use russh::keys::ssh_key::LineEnding;
pub use russh::keys::ssh_key::SshSig;
use russh::keys::Algorithm;
pub use russh::keys::{PrivateKey, PublicKey};

use crate::error::{Error, Result};

/// Load the ed25519 private key at `path`, or generate one and write it (0600) if the file does
/// not exist. A `.pub` file with the public key is written beside a generated key.
pub fn load_or_generate(path: &Path, comment: &str) -> Result<PrivateKey> {
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(Error::fs(path))?;
        return PrivateKey::from_openssh(text.as_bytes())
            .map_err(|e| Error::Fs { path: path.into(), source: std::io::Error::other(e.to_string()) });
    }
    let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Error::Fs { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    key.set_comment(comment);
    let private = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::Fs { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::Fs { path: path.into(), source: std::io::Error::other(e.to_string()) })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::fs(dir))?;
    }
    write_private(path, private.as_bytes())?;
    let pub_path = path.with_extension("pub");
    std::fs::write(&pub_path, format!("{public}\n")).map_err(Error::fs(&pub_path))?;
    Ok(key)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(Error::fs(path))?;
    file.write_all(bytes).map_err(Error::fs(path))?;
    file.sync_all().map_err(Error::fs(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_and_reloads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/host_ed25519");
        let a = load_or_generate(&path, "host").unwrap();
        let b = load_or_generate(&path, "host").unwrap();
        assert_eq!(a.public_key().key_data(), b.public_key().key_data());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(path.with_extension("pub").exists());
    }

    #[test]
    fn refuses_a_corrupt_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad");
        std::fs::write(&path, "not a key").unwrap();
        assert!(load_or_generate(&path, "x").is_err());
    }
}
