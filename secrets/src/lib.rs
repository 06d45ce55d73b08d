//! Secrets kept with the site: `secrets/**.{yaml,json,toml}` in the site repository are ROPS
//! documents (the SOPS format: keys in clear, every value `ENC[AES256_GCM,…]`, a MAC over all
//! values), their data key encrypted with [age] to the server's recipient and to the people
//! allowed to change them.
//!
//! - [`identity`]: the server's (or a person's) age identity file, and the [`Keyring`] the
//!   process decrypts with;
//! - [`document`]: one ROPS document — inspected without a key (recipients, values all
//!   encrypted), decrypted with the MAC verified, written, edited, re-keyed;
//! - [`value`]: decrypted values ([`Secret`]: zeroized on drop, never printed);
//! - [`store`]: every document of a commit by name, what the server's services read from;
//! - [`recipients`]: who a file is encrypted to; [`file`]: documents in a checkout (read,
//!   write, set one value), for the CLI and the desktop app.
//!
//! Nothing here hands a value to a plugin: the consumers (webhooks, outbound HTTP, mail) take
//! what they need by name and only the bytes they send leave the process.
//!
//! [age]: https://age-encryption.org

pub mod document;
pub mod file;
pub mod identity;
pub mod recipients;
pub mod store;
pub mod value;

pub use document::{Document, Format};
pub use identity::{Identity, Keyring};
pub use store::Store;
pub use value::{Secret, SecretTree};

/// The folder of the site repository that holds secrets.
pub const DIR: &str = "secrets";

/// What went wrong with a secrets document or key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document is not what it must be; `line` when one can be named.
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Invalid { line: Option<usize>, message: String },
    /// None of the keys this process holds opens the document.
    #[error("not encrypted to {recipients}; it is encrypted to {found}")]
    NotForUs { recipients: String, found: String },
    /// The values do not match the document's MAC (changed by hand, or damaged).
    #[error("the MAC does not verify: a value was changed without re-encrypting the file, or the file is damaged")]
    Mac,
    /// Decryption or encryption failed for another reason.
    #[error("{0}")]
    Crypto(String),
    /// An identity or recipient that cannot be read.
    #[error("{0}")]
    Key(String),
    #[error("{path}: {source}")]
    Io { path: std::path::PathBuf, source: std::io::Error },
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid { line: None, message: message.into() }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
