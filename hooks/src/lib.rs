//! The CMS's side of a push: [`validate`] before anything is stored (pre-receive), [`publish`]
//! after the refs moved (post-receive). [`Governance`] plugs both into the Git host.
//!
//! [`authz`] decides with Cedar who may read, push, create, delete or force-push which branch
//! and change which paths; [`users`] says who is who; [`access`] holds both as the live `main`
//! has them; [`lockout`] refuses a push that would leave nobody able to administer the site;
//! [`signatures`] decides fetched commits by their SSH signatures, for followers that trust
//! signatures rather than their remote.

pub mod access;
pub mod authz;
pub mod checkout;
pub mod leaks;
pub mod lockout;
pub mod problem;
pub mod publish;
pub mod references;
pub mod signatures;
pub mod users;
pub mod validate;

use std::sync::Arc;

use githost::{Hooks, PostReceiveContext, PreReceive, Principal, PushContext, Service, UpdateKind};

pub use publish::Publisher;

/// The hooks the server runs on every push.
pub struct Governance {
    /// Publishes `main` and `admin`.
    pub publisher: Publisher,
    /// The users and policies in force (those of the live `main`).
    pub access: Arc<access::LiveAccess>,
    /// The server's secrets keyring: pushed `secrets/` documents must open with it.
    pub secrets: Option<&'static secrets::Keyring>,
}

/// The commit `main` points at now (before the push), if any.
fn live_main(repo: &gix::Repository) -> Option<gix::ObjectId> {
    let mut r = repo.try_find_reference("refs/heads/main").ok()??;
    r.peel_to_id().ok().map(|id| id.detach())
}

/// The short name policies see for a ref: `main`, `preview/x`; tags as `tags/v1`.
pub fn branch_name(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.strip_prefix("refs/heads/") {
        Some(b) => b.to_string(),
        None => name.strip_prefix("refs/").unwrap_or(&name).to_string(),
    }
}

/// Branches that hold a site and are validated: the live site, the preview and working
/// branches. Other refs (tags, other branches) are stored as they are.
pub fn is_site_branch(name: &[u8]) -> bool {
    name == b"refs/heads/main" || name == b"refs/heads/admin" || name.starts_with(b"refs/heads/preview/")
}

/// Why one ref update is refused.
enum Refusal {
    /// Cedar said no: one line per denied action or path.
    Denied(Vec<String>),
    /// Files that would break the site, all of them.
    Invalid(Vec<validate::Problem>),
    /// Anything else (an unreadable commit, lock-out).
    Other(String),
}

impl Governance {
    /// Decide one ref update: the branch action, each changed path, then (on site branches) the
    /// files themselves and, on `main`, lock-out protection.
    fn check_update(
        &self,
        push: &PushContext<'_>,
        update: &githost::RefUpdate,
        roles: &[String],
        authz: &authz::Authz,
    ) -> Result<(), Refusal> {
        let user = &push.principal.id;
        let branch = branch_name(&update.name);
        let action = match update.kind {
            UpdateKind::Create => "create",
            UpdateKind::Delete => "delete",
            UpdateKind::FastForward => "push",
            UpdateKind::NonFastForward => "force-push",
        };
        authz.check(user, roles, action, authz::Resource::Branch(&branch)).map_err(|e| Refusal::Denied(vec![e]))?;
        // Tags and other refs point at history that branches already brought in: only the ref
        // itself is authorized. Paths are checked where they change, on branches.
        if update.kind == UpdateKind::Delete || !update.name.starts_with(b"refs/heads/") {
            return Ok(());
        }
        let unreadable = |e: site_runtime::Error| Refusal::Other(format!("could not read the pushed commit: {e}"));
        // A new branch is compared with the live `main` it (normally) starts from, so that
        // creating `preview/x` from main with one new page changes one path, not the whole tree.
        let old = (!update.old.is_null()).then_some(update.old);
        let base = old.or_else(|| live_main(push.repo));
        let changes_from_base = site_runtime::source::changes(push.repo, base, update.new).map_err(unreadable)?;
        let changes = &changes_from_base;
        let mut paths: Vec<&str> = changes.iter().map(|c| c.path()).collect();
        paths.dedup();
        let denied = authz.check_paths(user, roles, "change", &branch, &paths);
        if !denied.is_empty() {
            return Err(Refusal::Denied(denied));
        }
        self.check_content(push.repo, update, old, base, &changes_from_base)
    }

    /// The part of a ref update's decision that does not depend on who made it: on site
    /// branches, every changed file validated as the runtime will read it, and on `main`,
    /// lock-out protection. `changes_from_base` is the diff from `base` that authorization
    /// looked at.
    fn check_content(
        &self,
        repo: &gix::Repository,
        update: &githost::RefUpdate,
        old: Option<gix::ObjectId>,
        base: Option<gix::ObjectId>,
        changes_from_base: &[site_runtime::source::Change],
    ) -> Result<(), Refusal> {
        if !is_site_branch(&update.name) || update.kind == UpdateKind::Delete {
            return Ok(());
        }
        let unreadable = |e: site_runtime::Error| Refusal::Other(format!("could not read the pushed commit: {e}"));
        let branch = branch_name(&update.name);
        // Validation looks at every file of a new branch, and at what changed otherwise: the
        // same diff authorization used.
        let all;
        let changes = match (old, base) {
            (Some(_), _) | (None, None) => changes_from_base,
            (None, Some(_)) => {
                all = site_runtime::source::changes(repo, None, update.new).map_err(unreadable)?;
                &all
            }
        };
        let served = self.publisher.site_for(&branch);
        let update_ = validate::Update {
            repo,
            old,
            new: update.new,
            changes,
            pushed: changes_from_base,
            served: served.as_deref(),
            secrets: self.secrets,
        };
        let problems =
            validate::validate_update(&update_).map_err(|e| Refusal::Other(format!("could not validate: {e}")))?;
        if !problems.is_empty() {
            return Err(Refusal::Invalid(problems));
        }
        if branch == "main" && changes.iter().any(|c| governs_access(c.path())) {
            if let Some(why) = lockout::check(repo, old, update.new) {
                return Err(Refusal::Other(why));
            }
        }
        Ok(())
    }

    /// With `trust = "signatures"`: every commit `update` brings must be signed by a user whose
    /// roles allow what it changes, under the live rules (see [`signatures`]); commits reachable
    /// from `trusted` (history from before signing began) are exempt.
    pub fn vet_signatures(
        &self,
        repo: &gix::Repository,
        update: &githost::RefUpdate,
        trusted: Option<gix::ObjectId>,
    ) -> Result<(), Vec<String>> {
        let base = if update.old.is_null() { live_main(repo) } else { None };
        signatures::check(repo, update, base, trusted, &self.access.keys, &self.access.authz())
    }

    /// Decide a ref update that a follower fetched (see `follow` in the server): nobody pushed
    /// it here, so no Cedar decision about a pusher; the same validation and lock-out rules as a
    /// push. `repo` sees the fetched objects (still in quarantine). `Err` holds the lines that say
    /// why, for the log.
    pub fn vet_fetched(&self, repo: &gix::Repository, update: &githost::RefUpdate) -> Result<(), Vec<String>> {
        let old = (!update.old.is_null()).then_some(update.old);
        let outcome = if update.kind == UpdateKind::Delete || !update.name.starts_with(b"refs/heads/") {
            Ok(())
        } else {
            let base = old.or_else(|| live_main(repo));
            match site_runtime::source::changes(repo, base, update.new) {
                Ok(changes) => self.check_content(repo, update, old, base, &changes),
                Err(e) => Err(Refusal::Other(format!("could not read the fetched commit: {e}"))),
            }
        };
        outcome.map_err(|refusal| match refusal {
            Refusal::Denied(lines) => lines,
            Refusal::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            Refusal::Other(why) => vec![why],
        })
    }
}

/// Whether `path` is part of the access rules (users or policies).
fn governs_access(path: &str) -> bool {
    path == users::PATH || path.starts_with("policies/")
}

/// "first (and N more, see above)"
fn summary(lines: &[String]) -> String {
    match lines {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} (and {} more, see above)", rest.len()),
        [] => String::new(),
    }
}

impl Hooks for Governance {
    fn authorize(&self, principal: &Principal, _repository: &str, service: Service) -> Result<(), String> {
        // Reading needs `read` on the live branch; pushing is decided per ref in pre-receive,
        // but a principal who may not even read is turned away at once.
        let roles = self.access.keys.roles_of(&principal.id);
        let checked = self.access.authz().check(&principal.id, &roles, "read", authz::Resource::Branch("main"));
        match (service, checked) {
            (_, Ok(())) => Ok(()),
            (Service::ReceivePack, Err(_)) if !roles.is_empty() => Ok(()),
            (_, Err(e)) => Err(e),
        }
    }

    fn pre_receive(&self, push: &PushContext<'_>) -> PreReceive {
        let mut verdict = PreReceive::accept();
        let roles = self.access.keys.roles_of(&push.principal.id);
        // One set of rules for the whole push, even if `main` moves meanwhile.
        let authz = self.access.authz();
        for update in push.updates {
            let reason = match self.check_update(push, update, &roles, &authz) {
                Ok(()) => continue,
                Err(Refusal::Denied(lines)) => {
                    verdict.messages.extend(lines.iter().cloned());
                    summary(&lines)
                }
                Err(Refusal::Invalid(problems)) => {
                    verdict.messages.push(format!(
                        "{}: {} problem(s), nothing was stored:",
                        String::from_utf8_lossy(&update.name),
                        problems.len()
                    ));
                    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                    verdict.messages.extend(lines.iter().map(|p| format!("  {p}")));
                    summary(&lines)
                }
                Err(Refusal::Other(why)) => {
                    verdict.messages.push(why.clone());
                    why
                }
            };
            verdict.refused.push((update.name.clone(), reason));
        }
        verdict
    }

    fn post_receive(&self, push: &PostReceiveContext<'_>) -> Vec<String> {
        let mut messages = Vec::new();
        // The access rules follow `main` first, so that the publish report comes last.
        if push.updates.iter().any(|u| u.name == b"refs/heads/main".as_slice() && u.kind != UpdateKind::Delete) {
            messages.extend(self.access.follow_main(push.repo));
        }
        messages.extend(self.publisher.post_receive(push));
        messages
    }
}
