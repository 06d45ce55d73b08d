//! The access rules in force: the users (`access/users.toml`) and the policies (defaults plus
//! `policies/**/*.cedar`) of the live `main`, loaded together at start and after every push
//! that moves `main`. A file that cannot be read keeps the previous rules and is reported.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::authz::Authz;
use crate::users::RepoKeys;

/// Users and policies of the live site.
pub struct LiveAccess {
    /// Users, their keys and roles (also the SSH endpoint's key authorizer).
    pub keys: Arc<RepoKeys>,
    authz: ArcSwap<Authz>,
    /// The commit of `main` the rules were loaded from; held while loading.
    loaded: Mutex<Option<gix::ObjectId>>,
}

impl LiveAccess {
    /// `keys` with the default policies.
    pub fn new(keys: Arc<RepoKeys>) -> Result<Self, String> {
        let authz = Authz::with_defaults().map_err(|e| format!("built-in policies: {e}"))?;
        Ok(LiveAccess { keys, authz: ArcSwap::from_pointee(authz), loaded: Mutex::new(None) })
    }

    /// The policies in force.
    pub fn authz(&self) -> Arc<Authz> {
        self.authz.load_full()
    }

    /// Follow `main`: load the users and policies of the commit it points at now, unless they are
    /// loaded already. Reading the head while holding the lock means concurrent pushes end with
    /// the newest rules, whatever order their post-receive hooks run in. Returns warnings for
    /// the pusher (what could not be loaded and stays as it was; also logged).
    pub fn follow_main(&self, repo: &gix::Repository) -> Vec<String> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let head = match repo.try_find_reference("refs/heads/main") {
            Ok(Some(mut r)) => r.peel_to_id().ok().map(|id| id.detach()),
            Ok(None) => None,
            Err(e) => return vec![format!("warning: could not read main ({e}); the access rules stay as they were")],
        };
        let Some(head) = head else { return Vec::new() };
        if *loaded == Some(head) {
            return Vec::new();
        }
        *loaded = Some(head);
        self.load(repo, head)
    }

    /// Load the users and policies of `commit` (see [`LiveAccess::follow_main`]).
    fn load(&self, repo: &gix::Repository, commit: gix::ObjectId) -> Vec<String> {
        let mut warnings = Vec::new();
        match self.keys.load(repo, commit) {
            Ok(n) => tracing::info!(users = n, "access/users.toml loaded"),
            Err(e) => {
                tracing::error!(error = %e, "access/users.toml unreadable; the previous users stay in force");
                warnings.push(format!("warning: {e}; the previous users stay in force"));
            }
        }
        match Authz::load(repo, commit) {
            Ok(authz) => {
                self.authz.store(Arc::new(authz));
                tracing::info!("policies loaded");
            }
            Err(problems) => {
                for p in problems {
                    tracing::error!(problem = %p, "policies unreadable; the previous policies stay in force");
                    warnings.push(format!("warning: {p}; the previous policies stay in force"));
                }
            }
        }
        warnings
    }
}

/// Plugins' capabilities are decided by the live policies, like everything else.
impl site_runtime::extensions::Capabilities for LiveAccess {
    fn check(&self, unit: &str, declared: &[String], capability: &str) -> Result<(), String> {
        self.authz().check_capability(unit, declared, capability)
    }
}
