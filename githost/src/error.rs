//! The crate's error type.

use std::path::PathBuf;

use crate::pktline::PktError;

/// Everything that can go wrong while hosting a repository or serving one Git request.
///
/// Protocol errors carry a message meant for the person at the other end of `git`; they are
/// sent to the client (as `ERR`, on side-band 3 or as `remote:` lines) as well as logged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The client broke the protocol: a malformed line, a missing section, an unknown capability.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Framing of the byte stream was broken.
    #[error(transparent)]
    Pkt(#[from] PktError),
    /// The client asked for a repository we do not host.
    #[error("repository '{0}' not found")]
    NoSuchRepository(String),
    /// The client wants an object we do not have (or may not reach).
    #[error("not our ref {0}")]
    NotOurRef(String),
    /// The received pack could not be read, indexed or verified.
    #[error("bad pack: {0}")]
    BadPack(String),
    /// A configured limit was exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The object database could not be read.
    #[error("object database: {0}")]
    Odb(String),
    /// A reference could not be read or written.
    #[error("refs: {0}")]
    Refs(String),
    /// A file-system operation on the repository failed.
    #[error("{path}: {source}")]
    Fs {
        /// The file or directory involved.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Writing to or reading from the client failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Wrap a `gix` error (or any displayable error) as an object database error.
    pub(crate) fn odb(e: impl std::fmt::Display) -> Self {
        Error::Odb(e.to_string())
    }

    /// Wrap a `gix` reference error.
    pub(crate) fn refs(e: impl std::fmt::Display) -> Self {
        Error::Refs(e.to_string())
    }

    /// Attach a path to an I/O error.
    pub(crate) fn fs(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Fs { path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
