//! The problems the server would refuse, found before anything is sent: the folder as it is
//! becomes a commit nobody references, and the server's own validation (`hooks`) looks at what
//! differs from what the server has — the same parsers, the same messages, the same files and
//! lines.

pub use hooks::validate::Problem;

use crate::worktree;
use crate::{Result, Workspace};

impl Workspace {
    /// What the server would refuse if the folder were published to `branch` now (empty: all
    /// good). Works offline: "what the server has" is what it had at the last fetch or publish.
    pub fn check(&self, branch: &str) -> Result<Vec<Problem>> {
        let repo = self.local();
        let files = worktree::scan(&repo, self.dir())?;
        let tree = worktree::write_tree(&repo, &files)?;
        // (Validation reads commits; this one is never referenced and Git's gc removes it.)
        let commit = crate::save::write_commit(&repo, &crate::save::Author::app(), "check", tree, self.head()?)?;
        let base = self.remote_tip(branch)?;
        Ok(hooks::validate::validate(&repo, base, commit)?)
    }
}
