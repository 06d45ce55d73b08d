//! The access rules in force: the users (`access/users.toml`) and the policies (defaults plus
//! `policies/**/*.cedar`) of the live `main`, loaded together at start and after every push
//! that moves `main`. A file that cannot be read keeps the previous rules and is reported.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::authz::Authz;
use crate::users::RepoKeys;

/// Users and policies of the live site.
pub struct LiveAccess {
    /// Users, their keys and roles (also the SSH endpoint's key authorizer).
    pub keys: Arc<RepoKeys>,
    authz: ArcSwap<Authz>,
}

impl LiveAccess {
    /// `keys` with the default policies.
    pub fn new(keys: Arc<RepoKeys>) -> Result<Self, String> {
        let authz = Authz::with_defaults().map_err(|e| format!("built-in policies: {e}"))?;
        Ok(LiveAccess { keys, authz: ArcSwap::from_pointee(authz) })
    }

    /// The policies in force.
    pub fn authz(&self) -> Arc<Authz> {
        self.authz.load_full()
    }

    /// Load the users and policies of `commit`; returns warnings for the pusher (what could not
    /// be loaded and stays as it was; also logged).
    pub fn reload(&self, repo: &gix::Repository, commit: gix::ObjectId) -> Vec<String> {
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
