//! Publishing and catching up, over `githost`'s client (SSH or HTTPS).
//!
//! - [`fetch`]: the server's branches as `refs/remotes/origin/*` (what "the server has" means
//!   everywhere else, offline included).
//! - [`Workspace::publish`]: push the working branch's last save to a branch of the server,
//!   with a lease on what we last saw there, so someone else's publish is never overwritten. A
//!   refusal comes back as the server's words, split into problems per file.
//! - [`Workspace::catch_up`]: bring others' published changes into the folder: a fast-forward
//!   when we have nothing of our own, our saves replayed on top of theirs when the two touch
//!   different files, and the files both changed named when they do not.

use std::collections::HashSet;

use githost::client::{
    fetch::fetch as client_fetch, push, FetchRequest, PushCommand, PushRequest, RefSpec, RefStatus, Transport,
};
use gix::ObjectId;

use crate::check::Problem;
use crate::save::Author;
use crate::worktree::{self, Change, Files};
use crate::{Error, Result, Workspace};

/// Fetch every branch of the server into `refs/remotes/origin/*` (branches gone there go here
/// too).
pub async fn fetch(ws: &Workspace, remote: &impl Transport) -> Result<githost::client::FetchOutcome> {
    let spec = RefSpec::parse("+refs/heads/*:refs/remotes/origin/*")?;
    let mut request = FetchRequest::new(vec![spec]);
    request.prune = true;
    Ok(client_fetch(remote, ws.repository().clone(), request, githost::Limits::default()).await?)
}

/// How a publish ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The server took it (and said `messages`, e.g. `published main … in 12 ms`).
    Done {
        /// The commit now on the server's branch.
        commit: ObjectId,
        /// What the server said.
        messages: Vec<String>,
    },
    /// The server's branch already had it.
    UpToDate,
    /// Someone else published first: catch up, then publish again.
    Behind,
    /// The server refused: `problems` per file where it named files, `reason` as it said it.
    Refused {
        /// The server's reason for the branch.
        reason: String,
        /// Problems it named with a file (and line).
        problems: Vec<Problem>,
        /// Everything it said.
        messages: Vec<String>,
    },
}

/// How catching up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaughtUp {
    /// Nothing new on the server.
    UpToDate,
    /// The folder now has the server's changes (`changed` files); our own saves, if any, were
    /// replayed on top.
    Updated {
        /// Files the server's changes touched.
        changed: Vec<String>,
        /// Whether our saves were replayed on top of theirs.
        replayed: bool,
    },
    /// We and the server changed the same files: nothing was changed here; these need a choice.
    Conflict {
        /// Files both sides changed.
        paths: Vec<String>,
    },
    /// The folder has unsaved changes: save first.
    Unsaved,
}

impl Workspace {
    /// How many saves of the working branch the server's `branch` does not have yet (as last
    /// seen): what a publish would send.
    pub fn unpublished(&self, branch: &str) -> Result<usize> {
        let Some(head) = self.head()? else { return Ok(0) };
        let theirs = self.remote_tip(branch)?;
        let repo = self.local();
        // Only the saves since the server's tip are walked (gix hides what `theirs` reaches), so
        // the status line costs the unpublished saves, not the whole history.
        let walk = repo.rev_walk([head]).with_hidden(theirs).all().map_err(Error::git)?;
        let mut count = 0;
        for info in walk {
            info.map_err(Error::git)?;
            count += 1;
        }
        Ok(count)
    }

    /// Push the last save of the working branch to the server's `branch` (`main` publishes,
    /// `admin` sends for review).
    pub async fn publish(&self, remote: &impl Transport, branch: &str) -> Result<Published> {
        let head = self.head()?.ok_or_else(|| Error::NotASite("nothing is saved yet".into()))?;
        self.publish_commit(remote, branch, head).await
    }

    /// Push `head` (a save of ours, or what is in review) to the server's `branch`, with a lease
    /// on what we last saw there.
    pub async fn publish_commit(&self, remote: &impl Transport, branch: &str, head: ObjectId) -> Result<Published> {
        let theirs = self.remote_tip(branch)?;
        if theirs == Some(head) {
            return Ok(Published::UpToDate);
        }
        let name = format!("refs/heads/{branch}");
        let mut command = PushCommand::update(name.as_str(), head);
        // A lease: what we last saw there. Someone else's newer publish is never overwritten.
        command.expect = Some(theirs);
        if let Some(theirs) = theirs {
            if !githost::refs::is_ancestor_objects(&self.local().objects, theirs, head)? {
                return Ok(Published::Behind);
            }
        }
        let outcome = push::push(remote, self.repository().clone(), PushRequest::new(vec![command])).await?;
        let status = outcome.refs.first().map(|(_, s)| s.clone()).unwrap_or(RefStatus::Ok);
        match status {
            RefStatus::Ok => {
                self.move_ref(&format!("refs/remotes/origin/{branch}"), theirs, head, "publish")?;
                Ok(Published::Done { commit: head, messages: outcome.messages })
            }
            RefStatus::UpToDate => Ok(Published::UpToDate),
            RefStatus::Rejected(_) => Ok(Published::Behind),
            RefStatus::RemoteRejected(reason) if reason.contains("stale") || reason.contains("fetch first") => {
                Ok(Published::Behind)
            }
            RefStatus::RemoteRejected(reason) => {
                let problems = problems_in(&outcome.messages);
                Ok(Published::Refused { reason, problems, messages: outcome.messages })
            }
        }
    }

    /// Bring the server's `branch` into the working branch and the folder (see the module).
    pub async fn catch_up(&self, remote: &impl Transport, branch: &str, author: &Author) -> Result<CaughtUp> {
        fetch(self, remote).await?;
        let Some(theirs) = self.remote_tip(branch)? else { return Ok(CaughtUp::UpToDate) };
        if !self.changes()?.is_empty() {
            return Ok(CaughtUp::Unsaved);
        }
        let repo = self.local();
        let ours = self.head()?;
        let from = self.saved_files()?;
        let their_files = worktree::files_of(&repo, self.tree_of(theirs)?)?;
        let local_branch = format!("refs/heads/{}", self.branch()?);
        let Some(ours) = ours else {
            worktree::checkout(&repo, self.dir(), &from, &their_files)?;
            self.move_ref(&local_branch, None, theirs, "catch up")?;
            worktree::reset_index(&repo, self.tree_of(theirs)?)?;
            return Ok(CaughtUp::Updated { changed: paths(&worktree::diff(&from, &their_files)), replayed: false });
        };
        if githost::refs::is_ancestor_objects(&repo.objects, theirs, ours)? {
            return Ok(CaughtUp::UpToDate);
        }
        if githost::refs::is_ancestor_objects(&repo.objects, ours, theirs)? {
            worktree::checkout(&repo, self.dir(), &from, &their_files)?;
            self.move_ref(&local_branch, Some(ours), theirs, "catch up: fast-forward")?;
            worktree::reset_index(&repo, self.tree_of(theirs)?)?;
            return Ok(CaughtUp::Updated { changed: paths(&worktree::diff(&from, &their_files)), replayed: false });
        }
        // Both moved: replay our changes since the common save on top of theirs, if they do not
        // touch the same files.
        let base = merge_base(&repo, ours, theirs)?;
        let base_files = match base {
            Some(b) => worktree::files_of(&repo, self.tree_of(b)?)?,
            None => Files::new(),
        };
        let mine = worktree::diff(&base_files, &from);
        let theirs_changed = worktree::diff(&base_files, &their_files);
        let touched: HashSet<&str> = theirs_changed.iter().map(Change::path).collect();
        let both: Vec<String> =
            mine.iter().map(Change::path).filter(|p| touched.contains(p)).map(String::from).collect();
        if !both.is_empty() {
            return Ok(CaughtUp::Conflict { paths: both });
        }
        let mut merged = their_files.clone();
        for change in &mine {
            match change {
                Change::Deleted(p) => {
                    merged.remove(p);
                }
                Change::Added(p) | Change::Modified(p) => {
                    merged.insert(p.clone(), from[p]);
                }
            }
        }
        let tree = worktree::write_tree(&repo, &merged)?;
        let summaries = self.history(50)?;
        let mut message = String::from("My changes, on top of what was published meanwhile\n\n");
        for s in summaries.iter().take_while(|s| Some(s.id) != base) {
            message.push_str(&format!("- {}\n", s.summary));
        }
        let commit = crate::save::write_commit(&repo, author, &message, tree, [theirs])?;
        worktree::checkout(&repo, self.dir(), &from, &merged)?;
        self.move_ref(&local_branch, Some(ours), commit, "catch up: replay")?;
        worktree::reset_index(&repo, tree)?;
        Ok(CaughtUp::Updated { changed: paths(&theirs_changed), replayed: true })
    }
}

fn paths(changes: &[Change]) -> Vec<String> {
    changes.iter().map(|c| c.path().to_string()).collect()
}

/// The newest commit both `a` and `b` descend from, if any.
pub(crate) fn merge_base(repo: &gix::Repository, a: ObjectId, b: ObjectId) -> Result<Option<ObjectId>> {
    let mut of_b = HashSet::new();
    for info in repo.rev_walk([b]).all().map_err(Error::git)? {
        of_b.insert(info.map_err(Error::git)?.id);
    }
    for info in repo.rev_walk([a]).all().map_err(Error::git)? {
        let id = info.map_err(Error::git)?.id;
        if of_b.contains(&id) {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The problems a server's refusal names, one per `  <file>: <what>` line (the format of the
/// server's validation and authorization messages).
pub fn problems_in(messages: &[String]) -> Vec<Problem> {
    messages
        .iter()
        .filter_map(|line| {
            let line = line.strip_prefix("remote:").unwrap_or(line);
            let rest = line.strip_prefix("  ")?.trim_start();
            let (path, message) = rest.split_once(": ")?;
            let looks_like_a_file = !path.is_empty()
                && !path.contains(' ')
                && (path.contains('/') || path.contains('.'))
                && !path.starts_with("refs/");
            looks_like_a_file.then(|| Problem::new(path, message.trim()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_read_from_the_servers_words() {
        let lines: Vec<String> = [
            "refs/heads/main: 2 problem(s), nothing was stored:",
            "  site.toml: line 3: unknown field `base_urll`",
            "  content/blog/bad.md: date: \"someday\" is not a date",
            "remote:   content/x.md: title: expected a string",
            "  not a problem line",
            "published main in 3 ms",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        let problems = problems_in(&lines);
        assert_eq!(
            problems,
            vec![
                Problem::new("site.toml", "line 3: unknown field `base_urll`"),
                Problem::new("content/blog/bad.md", "date: \"someday\" is not a date"),
                Problem::new("content/x.md", "title: expected a string"),
            ]
        );
    }
}
