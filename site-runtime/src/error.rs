//! The crate's error type.

/// What can go wrong building or serving a site.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the site could not be understood; names the file (and line when known).
    #[error("{path}: {message}")]
    Content {
        /// Path of the file in the repository.
        path: String,
        /// What is wrong, with the line when the parser knows it.
        message: String,
    },
    /// Reading Git objects failed.
    #[error("git: {0}")]
    Git(String),
    /// The SQLite index failed.
    #[error("index: {0}")]
    Index(#[from] rusqlite::Error),
    /// A worker thread of a parallel read panicked (a bug: its part of the work is lost).
    #[error("a worker thread panicked while {0}")]
    Panicked(&'static str),
    /// A file-system operation failed.
    #[error("{path}: {source}")]
    Fs {
        /// The file or directory involved.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn content(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Error::Content { path: path.into(), message: message.to_string() }
    }

    pub(crate) fn git(e: impl std::fmt::Display) -> Self {
        Error::Git(e.to_string())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A `toml` error on one line: `line N: what is wrong` (the line computed from the error's span
/// in `source`), without the multi-line source excerpt `toml` renders.
pub(crate) fn toml_message(e: &toml::de::Error, source: &str) -> String {
    match e.span() {
        Some(span) => {
            format!("line {}: {}", line_at(source, span.start), e.message())
        }
        None => e.message().to_string(),
    }
}

/// The 1-based line of byte `offset` in `source`.
pub(crate) fn line_at(source: &str, offset: usize) -> usize {
    source.get(..offset).map_or(1, |before| before.matches('\n').count() + 1)
}
