//! *Save*: the folder as it is becomes a commit of the working branch (autosave calls it as the
//! user types; nothing is sent anywhere). And the history of those saves.

use gix::ObjectId;

use crate::worktree;
use crate::{Error, Result, Workspace};

/// Who saves: the name and address commits carry (from the app's settings).
#[derive(Debug, Clone)]
pub struct Author {
    /// The person's name.
    pub name: String,
    /// Their e-mail address.
    pub email: String,
}

impl Author {
    /// The app itself, for commits that only exist to be read (a check, the preview).
    pub(crate) fn app() -> Author {
        Author { name: "WhisperCMS Desktop".into(), email: "desktop@localhost".into() }
    }
}

/// Write a commit of `tree` by `author` now; no ref moves.
pub(crate) fn write_commit(
    repo: &gix::Repository,
    author: &Author,
    message: &str,
    tree: ObjectId,
    parents: impl IntoIterator<Item = ObjectId>,
) -> Result<ObjectId> {
    let signature = gix::actor::Signature {
        name: author.name.as_str().into(),
        email: author.email.as_str().into(),
        time: gix::date::Time::now_local_or_utc(),
    };
    let commit = repo
        .new_commit_as(
            signature.to_ref(&mut Default::default()),
            signature.to_ref(&mut Default::default()),
            message,
            tree,
            parents,
        )
        .map_err(Error::git)?;
    Ok(commit.id)
}

/// One save in the history.
#[derive(Debug, Clone)]
pub struct Saved {
    /// The commit.
    pub id: ObjectId,
    /// Its first line.
    pub summary: String,
    /// Who.
    pub author: String,
    /// When (seconds since 1970).
    pub time: i64,
}

impl Workspace {
    /// Commit the folder as it is on the working branch; `None` when nothing changed since the
    /// last save.
    pub fn save(&self, message: &str, author: &Author) -> Result<Option<ObjectId>> {
        let repo = self.local();
        let head = self.head()?;
        let files = worktree::scan(&repo, self.dir())?;
        let tree = worktree::write_tree(&repo, &files)?;
        if let Some(head) = head {
            if self.tree_of(head)? == tree {
                return Ok(None);
            }
        }
        let commit = write_commit(&repo, author, message, tree, head)?;
        let branch = format!("refs/heads/{}", self.branch()?);
        self.move_ref(&branch, head, commit, &format!("commit: {}", message.lines().next().unwrap_or("")))?;
        worktree::reset_index(&repo, tree)?;
        Ok(Some(commit))
    }

    /// The save `id` (any commit of the repository: ours, or one fetched from the server).
    pub fn saved(&self, id: ObjectId) -> Result<Saved> {
        let repo = self.local();
        let commit = repo.find_commit(id).map_err(Error::git)?;
        let decoded = commit.decode().map_err(Error::git)?;
        Ok(Saved {
            id,
            summary: decoded.message_summary().to_string(),
            author: decoded.author().map(|a| a.name.to_string()).unwrap_or_default(),
            time: decoded.committer().map(|c| c.seconds()).unwrap_or_default(),
        })
    }

    /// The saves of the working branch, newest first, at most `limit`.
    pub fn history(&self, limit: usize) -> Result<Vec<Saved>> {
        let Some(head) = self.head()? else { return Ok(Vec::new()) };
        let repo = self.local();
        let mut out = Vec::new();
        let walk = repo.rev_walk([head]).all().map_err(Error::git)?;
        for info in walk.take(limit) {
            out.push(self.saved(info.map_err(Error::git)?.id)?);
        }
        Ok(out)
    }
}
