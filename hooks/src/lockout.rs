//! Lock-out protection: a push to `main` that would leave nobody in `access/users.toml` able to
//! change `access/` and `policies/` (push to `main` and change those files) is refused, because
//! the only way to fix it afterwards would be the server's bootstrap key.
//!
//! Checked with the users and policies the push would put in force. A site that has no users at
//! all (administered by the bootstrap keys alone) is left alone until it gains some.

use gix::ObjectId;

use crate::authz::{Authz, Resource};
use crate::users::{users_at, User};

/// The files someone must still be able to change: the users file, every policy file of `new`,
/// and a new policy file.
fn guarded_paths(repo: &gix::Repository, new: ObjectId) -> Vec<String> {
    let mut paths = vec![crate::users::PATH.to_string()];
    if let Ok(files) = crate::authz::site_policy_files(repo, new) {
        paths.extend(files.into_iter().map(|(p, _)| p));
    }
    paths.push(format!("{}/site.cedar", crate::authz::POLICY_DIR));
    paths.dedup();
    paths
}

/// May `user` push `main` and change every one of `paths` on it under `authz`?
fn can_administer(authz: &Authz, user: &User, paths: &[String]) -> bool {
    authz.check(&user.id, &user.roles, "push", Resource::Branch("main")).is_ok()
        && paths
            .iter()
            .all(|p| authz.check(&user.id, &user.roles, "change", Resource::Path { path: p, branch: "main" }).is_ok())
}

/// Why moving `main` from `old` to `new` would lock everyone out, if it would. Files that do not
/// parse are validation's to report, not this check's.
pub fn check(repo: &gix::Repository, old: Option<ObjectId>, new: ObjectId) -> Option<String> {
    let users = users_at(repo, new).ok()?;
    let authz = Authz::load(repo, new).ok()?;
    if users.is_empty() {
        let had_users = old.and_then(|o| users_at(repo, o).ok()).is_some_and(|u| !u.is_empty());
        return had_users.then(|| {
            format!(
                "lock-out protection: this push removes every user from {}; keep at least one who may change \
                 access/ and policies/ on main",
                crate::users::PATH
            )
        });
    }
    let paths = guarded_paths(repo, new);
    if users.iter().any(|u| can_administer(&authz, u, &paths)) {
        return None;
    }
    Some(format!(
        "lock-out protection: after this push nobody in {} could push main and change {}; keep at least one \
         user (e.g. an admin) who can",
        crate::users::PATH,
        paths.join(", ")
    ))
}
