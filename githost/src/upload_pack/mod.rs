//! `git-upload-pack`: the server side of `git clone`, `git fetch` and `git ls-remote`.
//!
//! Both wire protocols are served: v0/v1 ([`v0`]: ref advertisement, then want/have negotiation
//! with `multi_ack_detailed`) and v2 ([`v2`]: a capability advertisement followed by `ls-refs`
//! and `fetch` commands). They share the negotiation state ([`negotiation`]), the pack planning
//! ([`plan`]: what the client lacks, shallow boundaries), the pack writer ([`pack`]) and the
//! reuse of a stored pack for clones ([`reuse`]).

pub(crate) mod commits;
mod negotiation;
pub(crate) mod pack;
pub(crate) mod plan;
mod reuse;
mod v0;
mod v2;

use std::collections::HashSet;
use std::io::{Read, Write};

use gix::ObjectId;

use crate::error::{Error, Result};
use crate::protocol::ProtocolVersion;
use crate::refs::{self, RefEntry};
use crate::repository::Repository;

pub use plan::Deepen;

/// Everything an upload-pack session needs besides its streams.
pub struct UploadPack<'a> {
    /// The repository served.
    pub repo: &'a Repository,
    /// The protocol version the client asked for.
    pub version: ProtocolVersion,
    /// The host's memory budget for pack generation (none: unbounded).
    pub budget: Option<&'a crate::budget::MemoryBudget>,
}

/// A share of `budget` for one pack generation, if there is a budget.
fn share(budget: Option<&crate::budget::MemoryBudget>) -> Option<crate::budget::Share<'_>> {
    budget.map(|b| b.take(crate::budget::PACK_SHARE))
}

impl UploadPack<'_> {
    /// Run one clone/fetch conversation over `input`/`output`.
    pub fn serve(&self, input: impl Read, output: impl Write) -> Result<()> {
        let _reading = self.repo.reader();
        match self.version {
            ProtocolVersion::V2 => v2::serve(self.repo, self.budget, input, output),
            v => v0::serve(self.repo, v, self.budget, input, output),
        }
    }
}

/// Check that every want is something we advertise (a ref tip or a peeled tag), or — for a
/// client racing a push that moved a ref after it listed refs — reachable from one.
fn check_wants(repo: &gix::Repository, wants: &[ObjectId], refs: &[RefEntry]) -> Result<()> {
    let tips: HashSet<ObjectId> = refs.iter().flat_map(|r| std::iter::once(r.id).chain(r.peeled)).collect();
    let mut head_and_tips = tips.clone();
    if let Ok(refs::Head::Detached(id)) = refs::head(repo) {
        head_and_tips.insert(id);
    }
    let unknown: Vec<ObjectId> = wants.iter().copied().filter(|w| !head_and_tips.contains(w)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut commits = commits::Commits::new(repo);
    let mut seen = HashSet::new();
    let mut stack: Vec<ObjectId> = head_and_tips.into_iter().collect();
    let mut missing: HashSet<ObjectId> = unknown.into_iter().collect();
    while let Some(id) = stack.pop() {
        if missing.is_empty() {
            break;
        }
        if !seen.insert(id) {
            continue;
        }
        missing.remove(&id);
        if let Some(info) = commits.try_get(id)? {
            stack.extend(info.parents.iter().copied());
        }
    }
    match missing.into_iter().next() {
        None => Ok(()),
        Some(id) => Err(Error::NotOurRef(id.to_string())),
    }
}

/// The commits behind `wants` (tags peeled), for the negotiation's "ready" check.
fn peeled_wants(repo: &gix::Repository, wants: &[ObjectId]) -> Result<Vec<ObjectId>> {
    let mut buf = Vec::new();
    wants.iter().map(|w| Ok(refs::peel_tag(&repo.objects, *w, &mut buf)?.unwrap_or(*w))).collect()
}
