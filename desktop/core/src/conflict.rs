//! When this computer and the server both changed the same files since their last common save:
//! both versions side by side, and the person's choice per file.
//!
//! [`Workspace::conflicts`] lists those files with the text of the common save, of ours and of
//! theirs (as last fetched: offline it shows what the last publish attempt brought).
//! [`Workspace::resolve`] joins the two sides as a merge save with both as parents — every
//! other file merged as [`catch_up`](Workspace::catch_up) does, each file both changed taken
//! from the side chosen — so neither side's history is lost and the next publish is a
//! fast-forward of the server's branch.

use std::collections::{BTreeMap, HashSet};

use gix::ObjectId;

use crate::save::{write_commit, Author};
use crate::worktree::{self, Change, Files};
use crate::{Error, Result, Workspace};

/// One file both sides changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// Its path in the site.
    pub path: String,
    /// Its text in the last common save (`None`: not there, or not text).
    pub base: Option<String>,
    /// Its text here (`None`: deleted here, or not text).
    pub mine: Option<String>,
    /// Its text on the server (`None`: deleted there, or not text).
    pub theirs: Option<String>,
}

/// Which version of a file to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// This computer's.
    Mine,
    /// The server's.
    Theirs,
}

/// Both sides, their common save, and what each changed since.
struct Sides {
    ours: ObjectId,
    theirs: ObjectId,
    mine: Files,
    their_files: Files,
    base_files: Files,
    my_changes: Vec<Change>,
    their_changes: Vec<Change>,
}

impl Workspace {
    /// The two sides when both moved since their common save; `None` when one contains the
    /// other (nothing to choose).
    fn sides(&self, branch: &str) -> Result<Option<Sides>> {
        let (Some(ours), Some(theirs)) = (self.head()?, self.remote_tip(branch)?) else { return Ok(None) };
        let repo = self.local();
        if githost::refs::is_ancestor_objects(&repo.objects, theirs, ours)?
            || githost::refs::is_ancestor_objects(&repo.objects, ours, theirs)?
        {
            return Ok(None);
        }
        let base = crate::sync::merge_base(&repo, ours, theirs)?;
        let base_files = match base {
            Some(b) => worktree::files_of(&repo, self.tree_of(b)?)?,
            None => Files::new(),
        };
        let mine = worktree::files_of(&repo, self.tree_of(ours)?)?;
        let their_files = worktree::files_of(&repo, self.tree_of(theirs)?)?;
        let my_changes = worktree::diff(&base_files, &mine);
        let their_changes = worktree::diff(&base_files, &their_files);
        Ok(Some(Sides { ours, theirs, mine, their_files, base_files, my_changes, their_changes }))
    }

    /// The files both this computer's saves and the server's `branch` changed since their
    /// common save, differently (as last fetched).
    pub fn conflicts(&self, branch: &str) -> Result<Vec<Conflict>> {
        let Some(s) = self.sides(branch)? else { return Ok(Vec::new()) };
        let repo = self.local();
        let text = |files: &Files, path: &str| worktree::text_at(&repo, files, path);
        let theirs: HashSet<&str> = s.their_changes.iter().map(Change::path).collect();
        let mut out = Vec::new();
        for path in s.my_changes.iter().map(Change::path).filter(|p| theirs.contains(p)) {
            if s.mine.get(path) == s.their_files.get(path) {
                continue; // both made the same change
            }
            out.push(Conflict {
                path: path.to_string(),
                base: text(&s.base_files, path)?,
                mine: text(&s.mine, path)?,
                theirs: text(&s.their_files, path)?,
            });
        }
        Ok(out)
    }

    /// Join the server's `branch` into the working branch with `choices` for the files both
    /// changed (each must have one), as a merge save by `author`; the folder follows. Refused,
    /// nothing touched, when the folder has unsaved changes or a choice is missing.
    pub fn resolve(&self, branch: &str, choices: &BTreeMap<String, Choice>, author: &Author) -> Result<ObjectId> {
        if !self.changes()?.is_empty() {
            return Err(Error::NotASite("save the folder's changes first".into()));
        }
        let s = self.sides(branch)?.ok_or_else(|| Error::NotASite("there is nothing to join".into()))?;
        let conflicted: Vec<String> = self.conflicts(branch)?.into_iter().map(|c| c.path).collect();
        if let Some(missing) = conflicted.iter().find(|p| !choices.contains_key(*p)) {
            return Err(Error::Page { path: missing.clone(), reason: "choose which version to keep".into() });
        }
        // Theirs, with our changes on top; for the files both changed, the chosen side.
        let mut merged = s.their_files.clone();
        for change in &s.my_changes {
            let path = change.path();
            let take_mine = match choices.get(path) {
                Some(c) if conflicted.iter().any(|p| p == path) => *c == Choice::Mine,
                _ => true,
            };
            if !take_mine {
                continue;
            }
            match s.mine.get(path) {
                Some(f) => merged.insert(path.to_string(), *f),
                None => merged.remove(path),
            };
        }
        let repo = self.local();
        let tree = worktree::write_tree(&repo, &merged)?;
        let mut message = format!("Join what was published on {branch} meanwhile\n\n");
        for (path, choice) in choices.iter().filter(|(p, _)| conflicted.contains(p)) {
            let kept = match choice {
                Choice::Mine => "kept this computer's version",
                Choice::Theirs => "kept the server's version",
            };
            message.push_str(&format!("- {path}: {kept}\n"));
        }
        let commit = write_commit(&repo, author, &message, tree, [s.ours, s.theirs])?;
        worktree::checkout(&repo, self.dir(), &s.mine, &merged)?;
        let local_branch = format!("refs/heads/{}", self.branch()?);
        self.move_ref(&local_branch, Some(s.ours), commit, "join")?;
        worktree::reset_index(&repo, tree)?;
        Ok(commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixture::author;

    fn write(ws: &Workspace, path: &str, text: &str) {
        worktree::write_file(&ws.dir().join(path), text.as_bytes(), gix::objs::tree::EntryKind::Blob).unwrap();
    }

    /// A site whose `origin/main` moved on (another writer's save) while we saved too.
    fn diverged() -> (tempfile::TempDir, Workspace, ObjectId) {
        let (tmp, ws) = crate::fixture::site();
        let base = ws.head().unwrap().unwrap();
        // Theirs: about changed, a new page.
        write(&ws, "content/about.md", "+++\ntitle = \"Theirs\"\n+++\n");
        write(&ws, "content/their-page.md", "+++\ntitle = \"T\"\n+++\n");
        let theirs = ws.save("Their edit", &Author { name: "Bob".into(), email: "bob@x".into() }).unwrap().unwrap();
        ws.move_ref("refs/remotes/origin/main", None, theirs, "test").unwrap();
        // Back to the base, then ours: about changed too, and another page.
        let repo = ws.local();
        let now = ws.saved_files().unwrap();
        let base_files = worktree::files_of(&repo, ws.tree_of(base).unwrap()).unwrap();
        worktree::checkout(&repo, ws.dir(), &now, &base_files).unwrap();
        ws.move_ref("refs/heads/main", Some(theirs), base, "test").unwrap();
        write(&ws, "content/about.md", "+++\ntitle = \"Mine\"\n+++\n");
        write(&ws, "content/my-page.md", "+++\ntitle = \"M\"\n+++\n");
        ws.save("My edit", &author()).unwrap().unwrap();
        (tmp, ws, theirs)
    }

    #[test]
    fn both_versions_are_shown_and_the_choice_is_a_merge_save() {
        let (_tmp, ws, theirs) = diverged();
        let conflicts = ws.conflicts("main").unwrap();
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!(c.path, "content/about.md");
        assert!(c.mine.as_deref().unwrap().contains("Mine") && c.theirs.as_deref().unwrap().contains("Theirs"));
        assert!(c.base.as_deref().unwrap().contains("About"));
        // A choice is needed for every file both changed.
        assert!(ws.resolve("main", &BTreeMap::new(), &author()).is_err());
        let ours = ws.head().unwrap().unwrap();
        let choices = BTreeMap::from([("content/about.md".to_string(), Choice::Theirs)]);
        let joined = ws.resolve("main", &choices, &author()).unwrap();
        assert!(std::fs::read_to_string(ws.dir().join("content/about.md")).unwrap().contains("Theirs"));
        assert!(ws.dir().join("content/my-page.md").exists() && ws.dir().join("content/their-page.md").exists());
        assert!(ws.changes().unwrap().is_empty());
        let repo = ws.local();
        let parents: Vec<ObjectId> = repo.find_commit(joined).unwrap().parent_ids().map(|p| p.detach()).collect();
        assert_eq!(parents, [ours, theirs], "neither side's history is lost");
        assert!(ws.conflicts("main").unwrap().is_empty(), "joined: a publish is a fast-forward now");
        assert!(ws.history(1).unwrap()[0].summary.starts_with("Join what was published"));
    }

    #[test]
    fn keeping_mine_and_unsaved_edits_refused() {
        let (_tmp, ws, _) = diverged();
        write(&ws, "content/my-page.md", "unsaved");
        let choices = BTreeMap::from([("content/about.md".to_string(), Choice::Mine)]);
        assert!(ws.resolve("main", &choices, &author()).is_err(), "unsaved edits first");
        ws.save("More", &author()).unwrap();
        ws.resolve("main", &choices, &author()).unwrap();
        assert!(std::fs::read_to_string(ws.dir().join("content/about.md")).unwrap().contains("Mine"));
        assert!(ws.dir().join("content/their-page.md").exists());
    }
}
