//! A site folder: a normal Git clone (`<dir>/.git`) whose files the app edits.
//!
//! The branch the user works on is `HEAD`'s (`main` unless they chose otherwise); what the
//! server has is remembered as `refs/remotes/origin/<branch>` after each fetch or publish, as
//! `git` would, and the server's address as the `origin` remote in `.git/config`, so `git pull`
//! and `git push` in the folder work too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gix::ObjectId;

use crate::worktree::{self, Files};
use crate::{Error, Result};

/// An open site folder.
pub struct Workspace {
    dir: PathBuf,
    repo: Arc<githost::Repository>,
}

impl Workspace {
    /// Open the site in `dir` (a folder with a `.git` of its own).
    pub fn open(dir: impl Into<PathBuf>) -> Result<Workspace> {
        let dir = dir.into();
        let git_dir = dir.join(".git");
        if !git_dir.join("HEAD").is_file() {
            return Err(Error::NotASite(format!(
                "{} is not a site folder (no .git in it): clone a site or create a new one",
                dir.display()
            )));
        }
        let repo = Arc::new(githost::Repository::open_or_init("site", &git_dir)?);
        Ok(Workspace { dir, repo })
    }

    /// Move `name` from `old` (`None`: must not exist) to `new`, or fail if someone else moved
    /// it meanwhile.
    pub(crate) fn move_ref(&self, name: &str, old: Option<ObjectId>, new: ObjectId, why: &str) -> Result<()> {
        let full = githost::refs::validate_name(name.as_bytes().into()).map_err(Error::Git)?;
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        let cas = githost::refs::Cas { name: full, old: old.unwrap_or(null), new };
        githost::refs::apply(&self.local(), &[cas], why).map_err(Error::Git)
    }

    /// The site folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The Git repository underneath (for the client's fetch and push).
    pub fn repository(&self) -> &Arc<githost::Repository> {
        &self.repo
    }

    /// A handle on the repository for this thread.
    pub fn local(&self) -> gix::Repository {
        self.repo.local()
    }

    /// The branch the user works on (`main` unless they switched).
    pub fn branch(&self) -> Result<String> {
        match githost::refs::head(&self.local())? {
            githost::refs::Head::Symbolic { target, .. } => {
                Ok(String::from_utf8_lossy(target.strip_prefix(b"refs/heads/").unwrap_or(&target)).into_owned())
            }
            _ => Err(Error::NotASite("HEAD is detached; switch to a branch with git first".into())),
        }
    }

    /// The last save of the working branch, if any.
    pub fn head(&self) -> Result<Option<ObjectId>> {
        let name = format!("refs/heads/{}", self.branch()?);
        Ok(githost::refs::resolve(&self.local(), name.as_bytes().into())?)
    }

    /// What the server's `branch` was when last seen (fetch or publish).
    pub fn remote_tip(&self, branch: &str) -> Result<Option<ObjectId>> {
        let name = format!("refs/remotes/origin/{branch}");
        Ok(githost::refs::resolve(&self.local(), name.as_bytes().into())?)
    }

    /// The tree of `commit`.
    pub fn tree_of(&self, commit: ObjectId) -> Result<ObjectId> {
        Ok(site_runtime::source::tree_of(&self.local(), commit)?)
    }

    /// The files of the last save (none before the first).
    pub fn saved_files(&self) -> Result<Files> {
        match self.head()? {
            Some(head) => worktree::files_of(&self.local(), self.tree_of(head)?),
            None => Ok(Files::new()),
        }
    }

    /// What changed in the folder since the last save.
    pub fn changes(&self) -> Result<Vec<worktree::Change>> {
        let now = worktree::scan(&self.local(), &self.dir)?;
        Ok(worktree::diff(&self.saved_files()?, &now))
    }
}
