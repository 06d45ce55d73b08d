//! The review board: every save in one of three columns, mapped honestly onto Git —
//! *Draft* (saved on this computer, on neither of the server's branches), *In review* (on the
//! server's `admin`, which its preview serves, not yet on `main`) and *Live* (on `main`) — and
//! the one move between columns that is not a plain publish: *Publish what is in review*
//! (the server's `admin` pushed to `main`, a fast-forward the server authorizes like any push).
//! The columns are as last fetched: offline they show what was seen.

use std::collections::HashSet;

use githost::client::Transport;
use gix::ObjectId;

use crate::save::Saved;
use crate::sync::Published;
use crate::{Error, Result, Workspace};

/// Saves shown at most per column.
pub const SHOWN: usize = 50;

/// The three columns, newest first in each.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Saved here, not sent anywhere.
    pub draft: Vec<Saved>,
    /// On `admin`, not on `main`.
    pub in_review: Vec<Saved>,
    /// On `main` (the last [`SHOWN`]).
    pub live: Vec<Saved>,
}

impl Workspace {
    /// Commits reachable from `tips`, newest first (at most `limit`), leaving out `except`.
    fn reachable(&self, tips: &[ObjectId], except: &HashSet<ObjectId>, limit: usize) -> Result<Vec<ObjectId>> {
        if tips.is_empty() {
            return Ok(Vec::new());
        }
        let repo = self.local();
        let walk = repo
            .rev_walk(tips.iter().copied())
            .sorting(gix::revision::walk::Sorting::ByCommitTime(Default::default()))
            .all()
            .map_err(Error::git)?;
        let mut out = Vec::new();
        for info in walk {
            let id = info.map_err(Error::git)?.id;
            if except.contains(&id) {
                continue;
            }
            out.push(id);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    /// Every commit reachable from `tip` (none for `None`).
    fn all_of(&self, tip: Option<ObjectId>) -> Result<HashSet<ObjectId>> {
        let Some(tip) = tip else { return Ok(HashSet::new()) };
        let repo = self.local();
        let mut out = HashSet::new();
        for info in repo.rev_walk([tip]).all().map_err(Error::git)? {
            out.insert(info.map_err(Error::git)?.id);
        }
        Ok(out)
    }

    /// The board as last fetched.
    pub fn board(&self) -> Result<Board> {
        let (main, admin) = (self.remote_tip("main")?, self.remote_tip("admin")?);
        let on_main = self.all_of(main)?;
        let mut on_server = on_main.clone();
        on_server.extend(self.all_of(admin)?);
        let saved = |ids: Vec<ObjectId>| ids.into_iter().map(|id| self.saved(id)).collect::<Result<Vec<_>>>();
        Ok(Board {
            draft: saved(self.reachable(&self.head()?.into_iter().collect::<Vec<_>>(), &on_server, SHOWN)?)?,
            in_review: saved(self.reachable(&admin.into_iter().collect::<Vec<_>>(), &on_main, SHOWN)?)?,
            live: saved(self.reachable(&main.into_iter().collect::<Vec<_>>(), &HashSet::new(), SHOWN)?)?,
        })
    }

    /// Publish what is in review: the server's `admin` (as last fetched) pushed to its `main`.
    /// `Behind` when `main` has moved past what `admin` holds (review again after catching up).
    pub async fn publish_review(&self, remote: &impl Transport) -> Result<Published> {
        let admin = self.remote_tip("admin")?.ok_or_else(|| Error::NotASite("nothing is in review".into()))?;
        self.publish_commit(remote, "main", admin).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{author, site};

    #[test]
    fn saves_sort_into_draft_review_and_live() {
        let (_tmp, ws) = site();
        let author = author();
        let first = ws.head().unwrap().unwrap();
        ws.move_ref("refs/remotes/origin/main", None, first, "test").unwrap();
        std::fs::write(ws.dir().join("content/a.md"), "a").unwrap();
        let reviewed = ws.save("In review", &author).unwrap().unwrap();
        ws.move_ref("refs/remotes/origin/admin", None, reviewed, "test").unwrap();
        std::fs::write(ws.dir().join("content/b.md"), "b").unwrap();
        let draft = ws.save("Draft", &author).unwrap().unwrap();
        let board = ws.board().unwrap();
        let ids = |v: &[Saved]| v.iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(ids(&board.draft), [draft]);
        assert_eq!(ids(&board.in_review), [reviewed]);
        assert_eq!(ids(&board.live), [first]);
        assert_eq!(board.in_review[0].summary, "In review");
    }
}
