//! Age identities and the keyring a process decrypts with.
//!
//! An identity file is what `age-keygen` writes (comment lines, then one
//! `AGE-SECRET-KEY-1…` line), so the same file works with `age` and `sops`. The server's is
//! generated on first start with mode 0600 and never leaves the machine.
//!
//! The `rops` crate takes its private keys from the environment (`ROPS_AGE`) and from a key
//! file; it has no parameter for them. [`Keyring::install`] therefore puts the process's
//! identities there once, at start, before any other thread exists, and points rops's key file
//! at `/dev/null` so no stray `~/.config/rops/age_keys` is ever used. Code that decrypts takes
//! the `&'static Keyring` that `install` returns, so it cannot run before. A process that
//! starts others (the CLI's `$EDITOR`) removes `ROPS_AGE` from their environment
//! ([`Keyring::ENV`]).

use std::io::Write;
use std::path::Path;
use std::sync::OnceLock;

use secrecy::ExposeSecret;

use crate::{Error, Result};

/// One age X25519 identity.
#[derive(Clone)]
pub struct Identity(age::x25519::Identity);

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.recipient())
    }
}

impl Identity {
    /// A new random identity.
    pub fn generate() -> Self {
        Identity(age::x25519::Identity::generate())
    }

    /// Parse an identity file's text: `#` comments and blank lines, then exactly one key.
    pub fn parse(text: &str) -> Result<Self> {
        let mut keys = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
        let key = keys.next().ok_or_else(|| Error::Key("no AGE-SECRET-KEY-1… line".into()))?;
        if keys.next().is_some() {
            return Err(Error::Key("more than one key; give the server one identity".into()));
        }
        key.parse::<age::x25519::Identity>()
            .map(Identity)
            .map_err(|_| Error::Key("not an age X25519 identity (AGE-SECRET-KEY-1…)".into()))
    }

    /// Read an identity file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Identity::parse(&text).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// Read the identity at `path`, or write a new one there (mode 0600, parent made) when
    /// there is none. `true` when it was generated.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool)> {
        if path.exists() {
            return Identity::load(path).map(|i| (i, false));
        }
        let identity = Identity::generate();
        let io = |source| Error::Io { path: path.into(), source };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let _ = std::fs::remove_file(&tmp);
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(identity.file_text().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok((identity, true))
    }

    /// The identity file's text, as `age-keygen` writes it.
    pub fn file_text(&self) -> String {
        let created =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        format!(
            "# created: {created} (seconds since 1970)\n# public key: {}\n{}\n",
            self.recipient(),
            self.0.to_string().expose_secret()
        )
    }

    /// The public recipient (`age1…`) to encrypt to.
    pub fn recipient(&self) -> String {
        self.0.to_public().to_string()
    }

    fn secret_key(&self) -> String {
        self.0.to_string().expose_secret().to_string()
    }
}

/// Check an `age1…` recipient.
pub fn parse_recipient(text: &str) -> Result<age::x25519::Recipient> {
    text.trim().parse().map_err(|e: &str| Error::Key(format!("{:?} is not an age recipient (age1…): {e}", text.trim())))
}

/// The identities this process decrypts with, installed once.
#[derive(Debug)]
pub struct Keyring {
    identities: Vec<Identity>,
}

static INSTALLED: OnceLock<Keyring> = OnceLock::new();

impl Keyring {
    /// The environment variable rops reads private keys from.
    pub const ENV: &'static str = "ROPS_AGE";
    const KEY_FILE_ENV: &'static str = "ROPS_AGE_KEY_FILE";

    /// Make `identities` the ones this process decrypts with. Call it once, at start, before
    /// other threads exist (it sets environment variables). A second call with the same
    /// recipients returns the installed keyring; with others it is an error.
    pub fn install(identities: Vec<Identity>) -> Result<&'static Keyring> {
        let wanted: Vec<String> = identities.iter().map(Identity::recipient).collect();
        let mut fresh = false;
        let ring = INSTALLED.get_or_init(|| {
            fresh = true;
            let keys: Vec<String> = identities.iter().map(Identity::secret_key).collect();
            // SAFETY of the environment: the caller installs before starting threads (the
            // server and the CLI do it first thing in `main`); Rust's own accesses are locked.
            std::env::set_var(Self::ENV, keys.join(","));
            std::env::set_var(Self::KEY_FILE_ENV, "/dev/null");
            Keyring { identities }
        });
        if !fresh && ring.recipients() != wanted {
            return Err(Error::Key("another set of identities is already installed in this process".into()));
        }
        Ok(ring)
    }

    /// The installed keyring, if any.
    pub fn installed() -> Option<&'static Keyring> {
        INSTALLED.get()
    }

    /// The recipients of the installed identities.
    pub fn recipients(&self) -> Vec<String> {
        self.identities.iter().map(Identity::recipient).collect()
    }

    /// The first identity (the server's own, in the server).
    pub fn primary(&self) -> Option<&Identity> {
        self.identities.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_files_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/age.key");
        let (made, generated) = Identity::load_or_generate(&path).unwrap();
        assert!(generated);
        let (again, generated) = Identity::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(made.recipient(), again.recipient());
        assert!(made.recipient().starts_with("age1"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&format!("# public key: {}", made.recipient())));
        assert!(!format!("{made:?}").contains("AGE-SECRET-KEY"));
    }

    #[test]
    fn hostile_identity_files() {
        assert!(Identity::parse("").is_err());
        assert!(Identity::parse("# only a comment\n").is_err());
        assert!(Identity::parse("AGE-SECRET-KEY-1NOTAKEY").is_err());
        let a = Identity::generate().secret_key();
        let b = Identity::generate().secret_key();
        assert!(Identity::parse(&format!("{a}\n{b}\n")).unwrap_err().to_string().contains("more than one"));
        assert!(Identity::parse(&format!("\n# c\n  {a}  \n")).is_ok());
        assert!(parse_recipient("age1nope").is_err());
        assert!(parse_recipient(&Identity::generate().recipient()).is_ok());
    }
}
