//! `access/users.toml`: who may connect, with which SSH keys, in which roles.
//!
//! The file lives in the site repository, so changing who has access is a commit like any other
//! (one the default policies let only admins push). The SSH endpoint looks keys up in the file
//! of the live `main` ([`RepoKeys`]), reloaded whenever `main` moves, plus the
//! bootstrap keys from `settings.toml` so that an empty repository can receive its first push.
//! Roles are checked against the roles the policies name ([`check_roles`]) at push.

use std::collections::HashSet;
use std::sync::Arc;

use arc_swap::ArcSwap;
use githost::auth::{KeyAuthorizer, Principal};
use githost::keys::PublicKey;
use serde::Deserialize;

/// The path of the file in the site repository.
pub const PATH: &str = "access/users.toml";

/// One person.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Short id, used in logs and policies: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// OpenSSH public keys (`ssh-ed25519 AAAA… comment`).
    #[serde(default)]
    pub keys: Vec<String>,
    /// Roles: `admin`, `publisher`, `editor`, `reader`, or one a site policy names.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Their age recipient (`age1…`), so that `secrets/` files are also encrypted to them and
    /// they can edit secrets on their own computer.
    #[serde(default)]
    pub age: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default, rename = "user")]
    users: Vec<User>,
}

/// Parse and check `access/users.toml`; errors name the line (and user) and what is wrong.
pub fn parse(text: &str) -> Result<Vec<User>, String> {
    let file: File = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => format!("line {}: {}", text[..span.start.min(text.len())].matches('\n').count() + 1, e.message()),
        None => e.message().to_string(),
    })?;
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for u in &file.users {
        if u.id.is_empty() || !u.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(format!("user id {:?} must be letters, digits, '-', '_' or '.'", u.id));
        }
        if !ids.insert(u.id.as_str()) {
            return Err(format!("user {:?} is listed twice", u.id));
        }
        for role in &u.roles {
            if role.is_empty() || !role.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(format!("user {:?}: role {role:?} must be letters, digits, '-', '_' or '.'", u.id));
            }
        }
        if let Some(age) = &u.age {
            secrets::identity::parse_recipient(age).map_err(|e| format!("user {:?}: {e}", u.id))?;
        }
        for key in &u.keys {
            let parsed = PublicKey::from_openssh(key.trim())
                .map_err(|e| format!("user {:?}: not an OpenSSH public key ({e}): {key:.40}", u.id))?;
            if !keys.insert(parsed.key_data().clone()) {
                return Err(format!("user {:?}: this key already belongs to another user", u.id));
            }
        }
    }
    Ok(file.users)
}

/// `users` as the secrets recipient rule sees them: their age recipient, and whether admin.
pub fn secrets_people(users: &[User]) -> Vec<secrets::recipients::Person<'_>> {
    users
        .iter()
        .map(|u| secrets::recipients::Person { age: u.age.as_deref(), admin: u.roles.iter().any(|r| r == "admin") })
        .collect()
}

/// Every role of `users` must be one the policies name (`known`): a typo in a role would
/// otherwise silently grant nothing.
pub fn check_roles(users: &[User], known: &std::collections::BTreeSet<String>) -> Result<(), String> {
    for u in users {
        if let Some(role) = u.roles.iter().find(|r| !known.contains(r.as_str())) {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(format!(
                "user {:?}: unknown role {role:?} (the policies know: {}; a site policy in policies/*.cedar \
                 can add a role)",
                u.id,
                known.join(", ")
            ));
        }
    }
    Ok(())
}

/// The users of `commit` (none if it has no `access/users.toml`).
pub fn users_at(repo: &gix::Repository, commit: gix::ObjectId) -> Result<Vec<User>, String> {
    let Some(blob) = site_runtime::source::blob_at(repo, commit, PATH).map_err(|e| e.to_string())? else {
        return Ok(Vec::new());
    };
    let bytes = site_runtime::source::read_blob(repo, blob).map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| format!("{PATH}: not UTF-8"))?;
    parse(text).map_err(|e| format!("{PATH}: {e}"))
}

struct Entry {
    key: PublicKey,
    user: String,
}

/// Keys from the live site's `access/users.toml` plus bootstrap keys.
pub struct RepoKeys {
    bootstrap: Vec<Entry>,
    users: ArcSwap<Vec<Entry>>,
    roles: ArcSwap<std::collections::HashMap<String, Vec<String>>>,
}

impl RepoKeys {
    /// `bootstrap` keys (from settings) always authenticate, as the given user id.
    pub fn new(bootstrap: Vec<(PublicKey, String)>) -> Self {
        RepoKeys {
            bootstrap: bootstrap.into_iter().map(|(key, user)| Entry { key, user }).collect(),
            users: ArcSwap::from_pointee(Vec::new()),
            roles: ArcSwap::from_pointee(Default::default()),
        }
    }

    /// Replace the repository's users (after `main` moved).
    pub fn set_users(&self, users: &[User]) {
        let entries = users
            .iter()
            .flat_map(|u| {
                u.keys
                    .iter()
                    .filter_map(|k| PublicKey::from_openssh(k.trim()).ok())
                    .map(|key| Entry { key, user: u.id.clone() })
            })
            .collect();
        self.users.store(Arc::new(entries));
        self.roles.store(Arc::new(users.iter().map(|u| (u.id.clone(), u.roles.clone())).collect()));
    }

    /// The roles of user `id`: from `access/users.toml`, and `admin` for a bootstrap key's user
    /// (bootstrap keys exist to administer the site).
    pub fn roles_of(&self, id: &str) -> Vec<String> {
        let mut roles = self.roles.load().get(id).cloned().unwrap_or_default();
        if self.bootstrap.iter().any(|e| e.user == id) && !roles.iter().any(|r| r == "admin") {
            roles.push("admin".into());
        }
        roles
    }

    /// Load the users of `commit` of `repo` (none if the file is missing; an unreadable file
    /// keeps the previous list and is reported).
    pub fn load(&self, repo: &gix::Repository, commit: gix::ObjectId) -> Result<usize, String> {
        let users = users_at(repo, commit)?;
        self.set_users(&users);
        Ok(users.len())
    }
}

impl KeyAuthorizer for RepoKeys {
    fn authorize(&self, _ssh_user: &str, key: &PublicKey) -> Option<Principal> {
        let users = self.users.load();
        let found = users.iter().chain(self.bootstrap.iter()).find(|e| e.key.key_data() == key.key_data())?;
        Some(Principal { id: found.user.clone(), key_fingerprint: key.fingerprint(Default::default()).to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHOkNnfZmDjRq8i1kW0pyFBb/5n5F1dyi8y0yXKA4Egt alice@laptop";

    #[test]
    fn reads_users() {
        let users =
            parse(&format!("[[user]]\nid = \"alice\"\nname = \"Alice\"\nroles = [\"editor\"]\nkeys = [\"{KEY}\"]\n"))
                .unwrap();
        assert_eq!(users[0].roles, ["editor"]);
        let age = secrets::Identity::generate().recipient();
        let with_age = parse(&format!("[[user]]\nid = \"alice\"\nroles = [\"admin\"]\nage = \"{age}\"\n")).unwrap();
        assert_eq!(with_age[0].age.as_deref(), Some(age.as_str()));
        let keys = RepoKeys::new(Vec::new());
        keys.set_users(&users);
        let key = PublicKey::from_openssh(KEY).unwrap();
        assert_eq!(keys.authorize("git", &key).unwrap().id, "alice");
    }

    #[test]
    fn refuses_broken_user_files() {
        for (text, expected) in [
            ("[[user]]\nid = \"a\"\nrole = [\"admin\"]\n", "line 3: unknown field `role`"),
            ("[[user]]\nid = \"a\"\nroles = [\"god mode\"]\n", "role \"god mode\" must be"),
            ("[[user]]\nid = \"a b\"\n", "must be letters"),
            ("[[user]]\nid = \"a\"\n[[user]]\nid = \"a\"\n", "listed twice"),
            ("[[user]]\nid = \"a\"\nkeys = [\"ssh-ed25519 nonsense\"]\n", "not an OpenSSH public key"),
            ("[[user]]\nid = \"a\"\nage = \"age1nope\"\n", "user \"a\": \"age1nope\" is not an age recipient"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
        let dup = format!("[[user]]\nid = \"a\"\nkeys = [\"{KEY}\"]\n[[user]]\nid = \"b\"\nkeys = [\"{KEY}\"]\n");
        assert!(parse(&dup).unwrap_err().contains("already belongs"));
    }
}
