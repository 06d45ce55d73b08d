//! A small cache of parsed commits (tree, parents, commit time) for the walks of one request.
//!
//! Walks visit a commit several times (negotiation, reachability, enumeration); parsing it once
//! and keeping the three fields we need is cheaper than going back to the pack each time.

use std::collections::HashMap;

use gix::objs::FindExt;
use gix::ObjectId;

use crate::error::{Error, Result};

/// What the walks need to know about a commit.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The commit's root tree.
    pub tree: ObjectId,
    /// Parent commits, in order.
    pub parents: Vec<ObjectId>,
    /// Committer time, seconds since the epoch (used to order walks newest first).
    pub time: i64,
}

/// Parsed commits of one request.
pub struct Commits<'r> {
    repo: &'r gix::Repository,
    cache: HashMap<ObjectId, CommitInfo>,
    buf: Vec<u8>,
}

impl<'r> Commits<'r> {
    /// An empty cache over `repo`.
    pub fn new(repo: &'r gix::Repository) -> Self {
        Commits { repo, cache: HashMap::new(), buf: Vec::new() }
    }

    /// The repository walked.
    pub fn repo(&self) -> &'r gix::Repository {
        self.repo
    }

    /// The commit `id`, or `None` if it does not exist or is not a commit.
    pub fn try_get(&mut self, id: ObjectId) -> Result<Option<&CommitInfo>> {
        if !self.cache.contains_key(&id) {
            let Ok(mut iter) = self.repo.objects.find_commit_iter(&id, &mut self.buf) else {
                return Ok(None);
            };
            let tree = iter.tree_id().map_err(Error::odb)?;
            let parents: Vec<ObjectId> = iter.parent_ids().collect();
            let time = iter.committer().map_err(Error::odb)?.time().map_err(Error::odb)?.seconds;
            self.cache.insert(id, CommitInfo { tree, parents, time });
        }
        Ok(self.cache.get(&id))
    }

    /// The commit `id`; a missing commit is an error (the repository is corrupt).
    pub fn get(&mut self, id: ObjectId) -> Result<&CommitInfo> {
        self.try_get(id)?.ok_or_else(|| Error::Odb(format!("commit {id} is missing")))
    }
}
