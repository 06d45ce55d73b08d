//! Negotiation state of one fetch: which of the client's `have`s we share, and whether we know
//! enough to stop asking ("ready").

use std::collections::HashSet;

use gix::ObjectId;

use super::commits::Commits;
use crate::error::Result;

/// How many commits one "can we stop?" probe may visit per want, so a hostile client cannot
/// make negotiation walk the whole history on every round.
const READY_PROBE_BUDGET: usize = 10_000;

/// What both sides have in common, learnt from the client's `have` lines.
pub struct Negotiation {
    wants: Vec<ObjectId>,
    satisfied: HashSet<ObjectId>,
    common: Vec<ObjectId>,
    common_set: HashSet<ObjectId>,
    oldest_common: i64,
}

impl Negotiation {
    /// Start with the client's `wants` (tags already peeled to commits where possible).
    pub fn new(wants: Vec<ObjectId>) -> Self {
        Negotiation {
            wants,
            satisfied: HashSet::new(),
            common: Vec::new(),
            common_set: HashSet::new(),
            oldest_common: i64::MAX,
        }
    }

    /// Record a `have`. Returns whether we have that commit too (it is common).
    pub fn have(&mut self, commits: &mut Commits<'_>, id: ObjectId) -> Result<bool> {
        let Some(info) = commits.try_get(id)? else { return Ok(false) };
        let time = info.time;
        if self.common_set.insert(id) {
            self.common.push(id);
            self.oldest_common = self.oldest_common.min(time);
        }
        Ok(true)
    }

    /// The common commits found so far.
    pub fn common(&self) -> &[ObjectId] {
        &self.common
    }

    /// Whether every want reaches a common commit, so more `have`s would not shrink the pack
    /// much: git's `ok_to_give_up`, with commits older than the oldest common one not searched.
    pub fn ready(&mut self, commits: &mut Commits<'_>) -> Result<bool> {
        if self.common.is_empty() {
            return Ok(false);
        }
        for want in self.wants.clone() {
            if self.satisfied.contains(&want) {
                continue;
            }
            if self.reaches_common(commits, want)? {
                self.satisfied.insert(want);
            } else {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn reaches_common(&self, commits: &mut Commits<'_>, want: ObjectId) -> Result<bool> {
        let mut seen = HashSet::new();
        let mut stack = vec![want];
        while let Some(id) = stack.pop() {
            if self.common_set.contains(&id) {
                return Ok(true);
            }
            if !seen.insert(id) || seen.len() > READY_PROBE_BUDGET {
                continue;
            }
            let Some(info) = commits.try_get(id)? else { continue };
            if info.time < self.oldest_common {
                continue;
            }
            stack.extend(info.parents.iter().copied());
        }
        Ok(false)
    }
}
