//! The problems the server would refuse, found before anything is sent: the folder as it is
//! becomes a commit nobody references, and the server's own validation (`hooks`) looks at what
//! differs from what the server has — the same parsers, the same messages, the same files and
//! lines.

pub use hooks::validate::Problem;

use crate::worktree;
use crate::{Error, Result, Workspace};

impl Workspace {
    /// What the server would refuse if the folder were published to `branch` now (empty: all
    /// good). Works offline: "what the server has" is what it had at the last fetch or publish.
    pub fn check(&self, branch: &str) -> Result<Vec<Problem>> {
        let repo = self.local();
        let files = worktree::scan(&repo, self.dir())?;
        let tree = worktree::write_tree(&repo, &files)?;
        let signature = gix::actor::Signature {
            name: "WhisperCMS Desktop".into(),
            email: "desktop@localhost".into(),
            time: gix::date::Time::now_utc(),
        };
        let mut buf = gix::date::parse::TimeBuf::default();
        let parents: Vec<gix::ObjectId> = self.head()?.into_iter().collect();
        // (Validation reads commits; this one is never referenced and Git's gc removes it.)
        let commit = repo
            .new_commit_as(
                signature.to_ref(&mut buf),
                signature.to_ref(&mut Default::default()),
                "check",
                tree,
                parents,
            )
            .map_err(Error::git)?
            .id;
        let base = self.remote_tip(branch)?;
        Ok(hooks::validate::validate(&repo, base, commit)?)
    }
}
