//! The CMS's side of a push: [`validate`] before anything is stored (pre-receive), [`publish`]
//! after the refs moved (post-receive). [`Governance`] plugs both into the Git host.
//!
//! [`authz`] decides with Cedar who may read, push, create, delete or force-push which branch
//! and change which paths; [`users`] says who is who.

pub mod authz;
pub mod publish;
pub mod users;
pub mod validate;

use std::sync::Arc;

use githost::{Hooks, PostReceiveContext, PreReceive, Principal, PushContext, Service, UpdateKind};

pub use publish::Publisher;

/// The hooks the server runs on every push.
pub struct Governance {
    /// Publishes `main` and `admin`.
    pub publisher: Publisher,
    /// The policies.
    pub authz: authz::Authz,
    /// Users and their roles.
    pub keys: Arc<users::RepoKeys>,
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

impl Governance {
    /// Every authorization problem of one ref update: the branch action, then each changed path.
    fn authorize_update(&self, push: &PushContext<'_>, update: &githost::RefUpdate, roles: &[String]) -> Vec<String> {
        let user = &push.principal.id;
        let branch = branch_name(&update.name);
        let action = match update.kind {
            UpdateKind::Create => "create",
            UpdateKind::Delete => "delete",
            UpdateKind::FastForward => "push",
            UpdateKind::NonFastForward => "force-push",
        };
        if let Err(e) = self.authz.check(user, roles, action, authz::Resource::Branch(&branch)) {
            return vec![e];
        }
        // Tags and other refs point at history that branches already brought in: only the ref
        // itself is authorized. Paths are checked where they change, on branches.
        if update.kind == UpdateKind::Delete || !update.name.starts_with(b"refs/heads/") {
            return Vec::new();
        }
        // A new branch is compared with the live `main` it (normally) starts from, so that
        // creating `preview/x` from main with one new page changes one path, not the whole tree.
        let old = if update.old.is_null() { live_main(push.repo) } else { Some(update.old) };
        let changes = match site_runtime::source::changes(push.repo, old, update.new) {
            Ok(c) => c,
            Err(e) => return vec![format!("could not read the pushed commit: {e}")],
        };
        let mut denied = Vec::new();
        let mut paths: Vec<&str> = changes.iter().map(|c| c.path()).collect();
        paths.dedup();
        for path in paths {
            if let Err(e) = self.authz.check(user, roles, "change", authz::Resource::Path { path, branch: &branch }) {
                denied.push(e);
            }
        }
        denied
    }
}

/// Branches that hold a site and are validated: the live site, the preview and working
/// branches. Other refs (tags, other branches) are stored as they are.
pub fn is_site_branch(name: &[u8]) -> bool {
    name == b"refs/heads/main" || name == b"refs/heads/admin" || name.starts_with(b"refs/heads/preview/")
}

impl Hooks for Governance {
    fn authorize(&self, principal: &Principal, _repository: &str, service: Service) -> Result<(), String> {
        // Reading needs `read` on the live branch; pushing is decided per ref in pre-receive,
        // but a principal who may not even read is turned away at once.
        let roles = self.keys.roles_of(&principal.id);
        let checked = self.authz.check(&principal.id, &roles, "read", authz::Resource::Branch("main"));
        match (service, checked) {
            (_, Ok(())) => Ok(()),
            (Service::ReceivePack, Err(_)) if !roles.is_empty() => Ok(()),
            (_, Err(e)) => Err(e),
        }
    }

    fn pre_receive(&self, push: &PushContext<'_>) -> PreReceive {
        let mut verdict = PreReceive::accept();
        let roles = self.keys.roles_of(&push.principal.id);
        for update in push.updates {
            let denied = self.authorize_update(push, update, &roles);
            if !denied.is_empty() {
                for d in &denied {
                    verdict.messages.push(d.clone());
                }
                let reason = if denied.len() == 1 {
                    denied[0].clone()
                } else {
                    format!("{} (and {} more, see above)", denied[0], denied.len() - 1)
                };
                verdict.refused.push((update.name.clone(), reason));
                continue;
            }
        }
        for update in push.updates {
            if verdict.refused.iter().any(|(n, _)| *n == update.name) {
                continue;
            }
            if update.kind == UpdateKind::Delete || !is_site_branch(&update.name) {
                continue;
            }
            let old = (!update.old.is_null()).then_some(update.old);
            match validate::validate(push.repo, old, update.new) {
                Ok(problems) if problems.is_empty() => {}
                Ok(problems) => {
                    verdict.messages.push(format!(
                        "{}: {} problem(s), nothing was stored:",
                        update.name,
                        problems.len()
                    ));
                    for p in &problems {
                        verdict.messages.push(format!("  {p}"));
                    }
                    let first = &problems[0];
                    let reason = if problems.len() == 1 {
                        first.to_string()
                    } else {
                        format!("{first} (and {} more, see above)", problems.len() - 1)
                    };
                    verdict.refused.push((update.name.clone(), reason));
                }
                Err(e) => verdict.refused.push((update.name.clone(), format!("could not validate: {e}"))),
            }
        }
        verdict
    }

    fn post_receive(&self, push: &PostReceiveContext<'_>) -> Vec<String> {
        self.publisher.post_receive(push)
    }
}
