//! Targets of who may do what: `access/users.toml` and a site's Cedar policies.

use hooks::authz::{Authz, Resource};

/// `access/users.toml`: no panic; users accepted have ids the policies can name.
pub fn users_toml(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok(users) = hooks::users::parse(text) else { return };
    for user in &users {
        assert!(
            !user.id.is_empty() && user.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "user id {:?} accepted",
            user.id
        );
    }
    let roles = ["admin", "publisher", "editor", "reader"].into_iter().map(String::from).collect();
    let _ = hooks::users::check_roles(&users, &roles);
}

/// A site's `policies/*.cedar`: no panic in parsing, schema checks or decisions (a policy that
/// locks the administrators out is the lock-out check's to refuse, at push).
pub fn cedar_policies(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let Ok(authz) = Authz::with_site_policies(&[("policies/fuzz.cedar".to_string(), text.to_string())]) else {
        return;
    };
    let roles = authz.roles().into_iter().collect::<Vec<_>>();
    for action in ["read", "push", "create", "delete", "force-push"] {
        let _ = authz.check("ada", &roles, action, Resource::Branch("main"));
        let _ = authz.explain("ada", &["editor".to_string()], action, Resource::Branch("preview/x"));
    }
    let _ =
        authz.check_paths("ada", &roles, "change", "main", &["content/a.md", "access/users.toml", "policies/x.cedar"]);
}
