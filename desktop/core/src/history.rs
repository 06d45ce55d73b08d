//! What a save changed, *Undo this change* (a revert) and *Restore* of a removed page.
//!
//! Each is a new save on top of the history, never a rewrite of it: what was published stays
//! published until the undo itself is published, and the undo can be undone.

use std::collections::HashSet;

use gix::ObjectId;

use crate::save::{write_commit, Author};
use crate::worktree::{self, Change, Files};
use crate::{Error, Result, Workspace};

/// One file a save changed, with the text of both sides when both are text.
#[derive(Debug, Clone)]
pub struct FileChange {
    /// What happened to the file.
    pub change: Change,
    /// The lines as they were and as they became (`None` for binary files or a side that does
    /// not exist).
    pub before: Option<String>,
    /// See `before`.
    pub after: Option<String>,
}

/// One line of a change, as shown: kept, removed or added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// In both versions.
    Same(String),
    /// Only in the old version.
    Removed(String),
    /// Only in the new version.
    Added(String),
    /// Unchanged lines left out between two changes.
    Gap,
}

/// Lines of context kept around each change.
const CONTEXT: usize = 3;

impl FileChange {
    /// The change line by line (Myers' diff, through `similar`), unchanged runs shortened to
    /// [`CONTEXT`] lines around each change; `None` for a binary file.
    pub fn lines(&self) -> Option<Vec<Line>> {
        let before = self.before.as_deref().or(matches!(self.change, Change::Added(_)).then_some(""))?;
        let after = self.after.as_deref().or(matches!(self.change, Change::Deleted(_)).then_some(""))?;
        let diff = similar::TextDiff::from_lines(before, after);
        let mut out = Vec::new();
        for (i, group) in diff.grouped_ops(CONTEXT).iter().enumerate() {
            if i > 0 {
                out.push(Line::Gap);
            }
            for op in group {
                for change in diff.iter_changes(op) {
                    let text = change.value().trim_end_matches('\n').to_string();
                    out.push(match change.tag() {
                        similar::ChangeTag::Equal => Line::Same(text),
                        similar::ChangeTag::Delete => Line::Removed(text),
                        similar::ChangeTag::Insert => Line::Added(text),
                    });
                }
            }
        }
        Some(out)
    }
}

/// How an undo ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undo {
    /// The change is undone by this new save.
    Done(ObjectId),
    /// These files changed again after that save: undoing it would throw those later edits
    /// away, so nothing was done.
    ChangedSince(Vec<String>),
    /// The save changed nothing (or its undo is already in place).
    Nothing,
}

/// A page the history remembers and the folder no longer has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Its path in the site.
    pub path: String,
    /// The save that removed it.
    pub removed_in: ObjectId,
    /// The last save that had it (what a restore brings back).
    pub last_seen: ObjectId,
    /// When it was removed (seconds since 1970).
    pub time: i64,
}

/// How many past saves [`Workspace::removed_pages`] looks through.
const REMOVED_DEPTH: usize = 1000;

impl Workspace {
    fn first_parent(&self, commit: ObjectId) -> Result<Option<ObjectId>> {
        let repo = self.local();
        let c = repo.find_commit(commit).map_err(Error::git)?;
        let parent = c.parent_ids().next().map(|p| p.detach());
        Ok(parent)
    }

    /// The trees before and after `commit` (before: its first parent's, or none).
    fn trees_around(&self, commit: ObjectId) -> Result<(Option<ObjectId>, ObjectId)> {
        let before = self.first_parent(commit)?.map(|p| self.tree_of(p)).transpose()?;
        Ok((before, self.tree_of(commit)?))
    }

    /// The files `commit` changed, with their text on both sides.
    pub fn changes_in(&self, commit: ObjectId) -> Result<Vec<FileChange>> {
        let repo = self.local();
        let (before, after) = self.trees_around(commit)?;
        let changes = worktree::diff_trees(&repo, before, Some(after))?;
        let old = before.map(|t| worktree::files_of(&repo, t)).transpose()?.unwrap_or_default();
        let new = worktree::files_of(&repo, after)?;
        let text = |files: &Files, path: &str| worktree::text_at(&repo, files, path);
        changes
            .into_iter()
            .map(|change| {
                let path = change.path().to_string();
                Ok(FileChange { before: text(&old, &path)?, after: text(&new, &path)?, change })
            })
            .collect()
    }

    /// Undo what `commit` changed, as a new save by `author`. Unsaved edits are saved first.
    /// Refused (nothing touched) when a file it changed was changed again later.
    pub fn undo(&self, commit: ObjectId, author: &Author) -> Result<Undo> {
        let repo = self.local();
        let summary = {
            let c = repo.find_commit(commit).map_err(Error::git)?;
            let decoded = c.decode().map_err(Error::git)?;
            decoded.message_summary().to_string()
        };
        self.save("Edits", author)?;
        let head = self.head()?.ok_or_else(|| Error::NotASite("nothing is saved yet".into()))?;
        let (before, after) = self.trees_around(commit)?;
        let old = before.map(|t| worktree::files_of(&repo, t)).transpose()?.unwrap_or_default();
        let new = worktree::files_of(&repo, after)?;
        let now = self.saved_files()?;
        let mut target = now.clone();
        let mut changed_since = Vec::new();
        for change in worktree::diff(&old, &new) {
            let path = change.path();
            if now.get(path) != new.get(path) {
                changed_since.push(path.to_string());
                continue;
            }
            match old.get(path) {
                Some(f) => target.insert(path.to_string(), *f),
                None => target.remove(path),
            };
        }
        if !changed_since.is_empty() {
            return Ok(Undo::ChangedSince(changed_since));
        }
        if target == now {
            return Ok(Undo::Nothing);
        }
        let message = format!("Undo \"{summary}\"\n\nThis reverts commit {commit}.\n");
        let id = self.commit_files(head, &now, &target, &message, author)?;
        Ok(Undo::Done(id))
    }

    /// Pages (under `content/`) removed in the last saves and not in the folder now, newest
    /// removal first; each once.
    pub fn removed_pages(&self) -> Result<Vec<Removed>> {
        let Some(head) = self.head()? else { return Ok(Vec::new()) };
        let repo = self.local();
        let present: HashSet<String> = self.saved_files()?.into_keys().collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let walk = repo.rev_walk([head]).first_parent_only().all().map_err(Error::git)?;
        for info in walk.take(REMOVED_DEPTH) {
            let info = info.map_err(Error::git)?;
            let Some(parent) = info.parent_ids.first().copied() else { break };
            let commit = repo.find_commit(info.id).map_err(Error::git)?;
            let time = commit.time().map(|t| t.seconds).unwrap_or_default();
            let changes = worktree::diff_trees(&repo, Some(self.tree_of(parent)?), Some(self.tree_of(info.id)?))?;
            for change in changes {
                let Change::Deleted(path) = change else { continue };
                let page = path.starts_with("content/") && path.ends_with(".md");
                if page && !present.contains(&path) && seen.insert(path.clone()) {
                    out.push(Removed { path, removed_in: info.id, last_seen: parent, time });
                }
            }
        }
        Ok(out)
    }

    /// Bring back the page at `path` as it was in `from` (with the other files of its page
    /// bundle, when it is a bundle's `index.md`), as a new save. Unsaved edits are saved first.
    pub fn restore(&self, path: &str, from: ObjectId, author: &Author) -> Result<ObjectId> {
        let repo = self.local();
        self.save("Edits", author)?;
        let head = self.head()?.ok_or_else(|| Error::NotASite("nothing is saved yet".into()))?;
        let then = worktree::files_of(&repo, self.tree_of(from)?)?;
        let now = self.saved_files()?;
        if !then.contains_key(path) {
            return Err(Error::Page { path: path.into(), reason: "that save does not have this page".into() });
        }
        if now.contains_key(path) {
            return Err(Error::Page { path: path.into(), reason: "the page is already there".into() });
        }
        let bundle = path.strip_suffix("/index.md").map(|dir| format!("{dir}/"));
        let mut target = now.clone();
        for (p, f) in &then {
            let in_bundle = bundle.as_deref().is_some_and(|b| p.starts_with(b));
            if (p == path || in_bundle) && !now.contains_key(p) {
                target.insert(p.clone(), *f);
            }
        }
        self.commit_files(head, &now, &target, &format!("Restore {path}"), author)
    }

    /// Make `target` the next save after `head` (whose files are `now`, as the folder is):
    /// commit, move the branch, and write the difference into the folder.
    pub(crate) fn commit_files(
        &self,
        head: ObjectId,
        now: &Files,
        target: &Files,
        message: &str,
        author: &Author,
    ) -> Result<ObjectId> {
        let repo = self.local();
        let tree = worktree::write_tree(&repo, target)?;
        let id = write_commit(&repo, author, message, tree, [head])?;
        worktree::checkout(&repo, self.dir(), now, target)?;
        let branch = format!("refs/heads/{}", self.branch()?);
        self.move_ref(&branch, Some(head), id, &format!("commit: {}", message.lines().next().unwrap_or("")))?;
        worktree::reset_index(&repo, tree)?;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture::{author, site};

    fn write(ws: &Workspace, path: &str, text: &str) {
        worktree::write_file(&ws.dir().join(path), text.as_bytes(), gix::objs::tree::EntryKind::Blob).unwrap();
    }

    #[test]
    fn a_save_shows_its_changes_and_undoes_them() {
        let (_tmp, ws) = site();
        let about = "content/about.md";
        let was = std::fs::read_to_string(ws.dir().join(about)).unwrap();
        write(&ws, about, "+++\ntitle = \"About us\"\n+++\nNew text.\n");
        write(&ws, "content/new.md", "+++\ntitle = \"New\"\n+++\n");
        let edit = ws.save("Rewrite about", &author()).unwrap().unwrap();
        let changes = ws.changes_in(edit).unwrap();
        let paths: Vec<_> = changes.iter().map(|c| c.change.clone()).collect();
        assert_eq!(paths, [Change::Modified(about.into()), Change::Added("content/new.md".into())]);
        assert_eq!(changes[0].before.as_deref(), Some(was.as_str()));
        assert!(changes[0].after.as_deref().unwrap().contains("New text."));
        assert_eq!(changes[1].before, None);
        let lines = changes[0].lines().unwrap();
        assert!(lines.contains(&Line::Added("New text.".into())), "{lines:?}");
        assert!(lines.iter().any(|l| matches!(l, Line::Removed(_))));
        assert!(changes[1].lines().unwrap().iter().all(|l| matches!(l, Line::Added(_))));

        // A later save of another file does not stand in the way.
        write(&ws, "content/other.md", "+++\ntitle = \"Other\"\n+++\n");
        ws.save("Other", &author()).unwrap();
        let Undo::Done(undo) = ws.undo(edit, &author()).unwrap() else { panic!("not undone") };
        assert_eq!(std::fs::read_to_string(ws.dir().join(about)).unwrap(), was);
        assert!(!ws.dir().join("content/new.md").exists());
        assert!(ws.dir().join("content/other.md").exists());
        assert!(ws.changes().unwrap().is_empty(), "the folder is the undo's save");
        assert_eq!(ws.history(1).unwrap()[0].summary, "Undo \"Rewrite about\"");
        // git agrees with the folder.
        let status =
            std::process::Command::new("git").args(["status", "--porcelain"]).current_dir(ws.dir()).output().unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "");
        // Undoing twice: nothing left to undo; undoing the undo brings the change back.
        assert_eq!(ws.undo(edit, &author()).unwrap(), Undo::ChangedSince(vec![about.into(), "content/new.md".into()]));
        assert!(matches!(ws.undo(undo, &author()).unwrap(), Undo::Done(_)));
        assert!(ws.dir().join("content/new.md").exists());
    }

    #[test]
    fn an_undo_never_throws_away_a_later_edit() {
        let (_tmp, ws) = site();
        let about = "content/about.md";
        write(&ws, about, "+++\ntitle = \"One\"\n+++\n");
        let first = ws.save("One", &author()).unwrap().unwrap();
        write(&ws, about, "+++\ntitle = \"Two\"\n+++\n"); // unsaved: the undo saves it first
        let head = ws.head().unwrap();
        assert_eq!(ws.undo(first, &author()).unwrap(), Undo::ChangedSince(vec![about.into()]));
        assert_eq!(std::fs::read_to_string(ws.dir().join(about)).unwrap(), "+++\ntitle = \"Two\"\n+++\n");
        assert_ne!(ws.head().unwrap(), head, "the unsaved edit was saved, not lost");
    }

    #[test]
    fn a_removed_page_is_listed_and_restored() {
        let (_tmp, ws) = site();
        let about = "content/about.md";
        let text = std::fs::read_to_string(ws.dir().join(about)).unwrap();
        std::fs::remove_file(ws.dir().join(about)).unwrap();
        let removal = ws.save("Remove about", &author()).unwrap().unwrap();
        let removed = ws.removed_pages().unwrap();
        assert_eq!(removed.len(), 1);
        assert_eq!((removed[0].path.as_str(), removed[0].removed_in), (about, removal));
        ws.restore(about, removed[0].last_seen, &author()).unwrap();
        assert_eq!(std::fs::read_to_string(ws.dir().join(about)).unwrap(), text);
        assert!(ws.removed_pages().unwrap().is_empty());
        assert!(ws.restore(about, removed[0].last_seen, &author()).is_err(), "already there");
        assert!(ws.restore("content/never.md", removed[0].last_seen, &author()).is_err());
    }
}
