//! The headless core of WhisperCMS Desktop: everything the app does, without a window.
//!
//! The site is a Git repository in a folder of the user's (a normal clone: `git` works there
//! too). The core reads and writes the files of that folder and moves Git underneath:
//!
//! - [`workspace`]: an open site folder: its branch, its saves, what the server had;
//! - [`setup`]: a new site folder, cloned from a server (SSH or HTTPS, with `githost`'s client)
//!   or started from the starter site;
//! - [`worktree`]: the folder as a Git tree (hashing only files whose size or time changed), what
//!   changed since the last save, and writing a commit's files into the folder;
//! - [`pages`]: the content tree, and pages read and written with their front matter kept as
//!   written (`toml_edit`: comments, order and unknown keys survive an edit);
//! - [`media`]: pictures and files imported beside a page or into `static/`, scaled down when
//!   they are large photos, and listed with the pages that use them;
//! - [`site`]: the site's settings (`site.toml`), themes and plugins, changed through
//!   `toml_edit`; [`people`]: who may publish (`access/users.toml`), with their keys and roles;
//! - [`conflict`]: the files both this computer and the server changed, both versions side by
//!   side, and the person's choice joined as a merge save;
//! - [`extensions`]: a plugin or theme fetched from its own Git repository, its manifest and
//!   the capabilities it asks for shown first, then vendored with its source recorded;
//! - [`review`]: the review board — Draft (here), In review (the server's `admin`), Live
//!   (`main`) — and publishing what is in review;
//! - [`save`]: *Save* — a commit of the folder as it is — and the history;
//! - [`history`]: what a save changed, *Undo this change* and *Restore* of a removed page,
//!   each a new save on top;
//! - [`preview`]: the folder rendered by the server's own runtime, offline;
//! - [`check`]: the problems the server would refuse, found with the server's own validation
//!   (`hooks`) before anything is sent;
//! - [`sync`]: *Publish* (push to `main`) or *Send for review* (push to `admin`), fetching what
//!   others published, and the server's refusal turned into problems per file.
//!
//! No network is touched except by [`sync`] and [`workspace::Workspace::clone_from`]; everything
//! else works offline.

pub mod check;
pub mod conflict;
pub mod extensions;
pub mod history;
pub mod media;
pub mod pages;
pub mod people;
pub mod preview;
pub mod review;
pub mod save;
pub mod secrets;
pub mod setup;
pub mod site;
pub mod sync;
pub mod workspace;
pub mod worktree;

pub use workspace::Workspace;

/// What the unit tests share: a new site from the starter, and its writer.
#[cfg(test)]
pub(crate) mod fixture {
    use crate::save::Author;
    use crate::Workspace;

    /// The writer of the tests' saves.
    pub fn author() -> Author {
        Author { name: "Ada".into(), email: "ada@example.org".into() }
    }

    /// A new site from the starter, in a temporary folder kept as long as the first value.
    pub fn site() -> (tempfile::TempDir, Workspace) {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Workspace::create_from_starter(tmp.path().join("site"), &author()).unwrap();
        (tmp, ws)
    }
}

/// What can go wrong, in words for the person using the app.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder of the site could not be read or written.
    #[error("{path}: {source}")]
    Fs {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The folder is not a site the app can open.
    #[error("{0}")]
    NotASite(String),
    /// A page could not be understood or changed.
    #[error("{path}: {reason}")]
    Page {
        /// The page's path in the site (`content/blog/post.md`).
        path: String,
        /// Why.
        reason: String,
    },
    /// The Git repository underneath.
    #[error("git: {0}")]
    Git(String),
    /// Talking to the server.
    #[error(transparent)]
    Remote(#[from] githost::client::ClientError),
    /// The site's own files (through the runtime that reads them as the server does).
    #[error(transparent)]
    Site(#[from] site_runtime::Error),
}

impl Error {
    /// A closure making an [`Error::Fs`] for `path`.
    pub(crate) fn fs(path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Fs { path, source }
    }

    /// A Git error from anything printable.
    pub(crate) fn git(e: impl std::fmt::Display) -> Error {
        Error::Git(e.to_string())
    }
}

impl From<githost::Error> for Error {
    fn from(e: githost::Error) -> Self {
        Error::Git(e.to_string())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
