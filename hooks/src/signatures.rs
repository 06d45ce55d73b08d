//! Signed commits as the authority of a follower of a remote we do not control (`trust =
//! "signatures"` in `[follow]`).
//!
//! Every commit a ref update brings (reachable from the new value and not from the old one, or
//! for a new branch not from the live `main`) must carry an SSH signature (git's
//! `gpg.format = ssh`, namespace `git`) that verifies, by a key listed in `access/users.toml`;
//! the key's user must be allowed by the Cedar policies to change every path that commit changes
//! (against its first parent), and the signer of the new tip to move the branch (push,
//! force-push, create). The users and policies are those of the live `main` before the update,
//! as for a push: a commit cannot authorize itself by adding its signer.

use std::collections::HashSet;

use githost::keys::{PublicKey, SshSig};
use githost::{KeyAuthorizer, RefUpdate, UpdateKind};
use gix::ObjectId;

use crate::authz::{Authz, Resource};
use crate::users::RepoKeys;

/// Most commits one update may bring under signature trust (each is verified and diffed).
pub const MAX_COMMITS: usize = 10_000;

/// Check every commit `update` brings. `base` is where a new branch starts (the live `main`);
/// commits reachable from `trusted` (the operator's `trust_from`: history from before signing
/// began) are taken as they are. `Err` lists every problem found, one line each.
pub fn check(
    repo: &gix::Repository,
    update: &RefUpdate,
    base: Option<ObjectId>,
    trusted: Option<ObjectId>,
    keys: &RepoKeys,
    authz: &Authz,
) -> Result<(), Vec<String>> {
    if update.kind == UpdateKind::Delete || !update.name.starts_with(b"refs/heads/") {
        return Ok(());
    }
    let branch = crate::branch_name(&update.name);
    let old = (!update.old.is_null()).then_some(update.old).or(base);
    let known: Vec<ObjectId> = old.into_iter().chain(trusted).collect();
    let commits = new_commits(repo, &known, update.new).map_err(|e| vec![e])?;
    let mut problems = Vec::new();
    for (i, id) in commits.iter().enumerate() {
        match signer(repo, *id, keys) {
            Err(why) => problems.push(format!("commit {id}: {why}")),
            Ok(user) => {
                let roles = keys.roles_of(&user);
                if i == 0 {
                    let action = match update.kind {
                        UpdateKind::Create => "create",
                        UpdateKind::NonFastForward => "force-push",
                        _ => "push",
                    };
                    if let Err(e) = authz.check(&user, &roles, action, Resource::Branch(&branch)) {
                        problems.push(format!("commit {id}: {e}"));
                    }
                }
                match changed_paths(repo, *id) {
                    Err(e) => problems.push(format!("commit {id}: {e}")),
                    Ok(paths) => {
                        for path in paths {
                            if let Err(e) =
                                authz.check(&user, &roles, "change", Resource::Path { path: &path, branch: &branch })
                            {
                                problems.push(format!("commit {id}: {e}"));
                            }
                        }
                    }
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Commits reachable from `new` and not from any of `old`, newest first (the tip is first).
fn new_commits(repo: &gix::Repository, old: &[ObjectId], new: ObjectId) -> Result<Vec<ObjectId>, String> {
    let mut known: HashSet<ObjectId> = HashSet::new();
    {
        let mut stack = old.to_vec();
        while let Some(id) = stack.pop() {
            if !known.insert(id) {
                continue;
            }
            if let Ok(c) = repo.find_commit(id) {
                stack.extend(c.parent_ids().map(|p| p.detach()));
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![new];
    while let Some(id) = stack.pop() {
        if known.contains(&id) || !seen.insert(id) {
            continue;
        }
        let c = repo.find_commit(id).map_err(|e| format!("commit {id} cannot be read: {e}"))?;
        out.push(id);
        if out.len() > MAX_COMMITS {
            return Err(format!("more than {MAX_COMMITS} new commits to verify in one update"));
        }
        stack.extend(c.parent_ids().map(|p| p.detach()));
    }
    Ok(out)
}

/// The user whose key signed commit `id`, if the signature verifies.
fn signer(repo: &gix::Repository, id: ObjectId, keys: &RepoKeys) -> Result<String, String> {
    let commit = repo.find_commit(id).map_err(|e| format!("cannot be read: {e}"))?;
    let (signature, signed) = commit
        .signature()
        .map_err(|e| format!("malformed: {e}"))?
        .ok_or_else(|| "not signed (sign commits with an SSH key: git config gpg.format ssh)".to_string())?;
    let sig =
        SshSig::from_pem(signature.as_ref() as &[u8]).map_err(|_| "signed, but not with an SSH key".to_string())?;
    if sig.namespace() != "git" {
        return Err(format!("an SSH signature for {:?}, not for git commits", sig.namespace()));
    }
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(Default::default());
    let user = keys
        .authorize("git", &key)
        .ok_or_else(|| format!("signed by {fingerprint}, a key not listed in access/users.toml"))?
        .id;
    key.verify("git", signed.to_bstring().as_ref(), &sig)
        .map_err(|_| format!("the signature by {user} ({fingerprint}) does not verify"))?;
    Ok(user)
}

/// The paths commit `id` changes against its first parent (all of them for a root commit).
fn changed_paths(repo: &gix::Repository, id: ObjectId) -> Result<Vec<String>, String> {
    let commit = repo.find_commit(id).map_err(|e| e.to_string())?;
    let parent = commit.parent_ids().next().map(|p| p.detach());
    let changes = site_runtime::source::changes(repo, parent, id).map_err(|e| e.to_string())?;
    let mut paths: Vec<String> = changes.iter().map(|c| c.path().to_string()).collect();
    paths.dedup();
    Ok(paths)
}
