//! The access rules of a working tree (a checkout of the site) rather than of a commit, for
//! `whispercms-server policy check`: site owners test who may do what under their edited
//! `access/users.toml` and `policies/*.cedar` before they push them.

use std::path::Path;

use crate::authz::{Authz, POLICY_DIR};
use crate::problem::Problem;
use crate::users::{self, User};

/// The users and policies of a checkout.
pub struct CheckoutAccess {
    pub authz: Authz,
    pub users: Vec<User>,
}

impl CheckoutAccess {
    /// The roles of user `id`, if the checkout lists the user.
    pub fn roles_of(&self, id: &str) -> Option<&[String]> {
        self.users.iter().find(|u| u.id == id).map(|u| u.roles.as_slice())
    }
}

/// Read `dir/access/users.toml` (optional) and `dir/policies/**/*.cedar`, with the checks a push
/// would make. Every problem is returned, each with its file.
pub fn load(dir: &Path) -> Result<CheckoutAccess, Vec<Problem>> {
    let mut problems = Vec::new();
    let users = match std::fs::read_to_string(dir.join(users::PATH)) {
        Ok(text) => users::parse(&text).unwrap_or_else(|e| {
            problems.push(Problem::new(users::PATH, e));
            Vec::new()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            problems.push(Problem::new(users::PATH, e.to_string()));
            Vec::new()
        }
    };
    let mut files = Vec::new();
    if let Err(e) = policy_files(dir, &dir.join(POLICY_DIR), &mut files) {
        problems.push(Problem::new(POLICY_DIR, e.to_string()));
    }
    files.sort();
    let authz = match Authz::with_site_policies(&files) {
        Ok(a) => a,
        Err(mut p) => {
            problems.append(&mut p);
            return Err(problems);
        }
    };
    if let Err(m) = users::check_roles(&users, &authz.roles()) {
        problems.push(Problem::new(users::PATH, m));
    }
    if problems.is_empty() {
        Ok(CheckoutAccess { authz, users })
    } else {
        Err(problems)
    }
}

/// Every `*.cedar` under `at`, as (path relative to `root` with `/`, text).
fn policy_files(root: &Path, at: &Path, out: &mut Vec<(String, String)>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(at) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            policy_files(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "cedar") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let rel: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            out.push((rel.join("/"), std::fs::read_to_string(&path)?));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Resource;

    #[test]
    fn a_checkout_answers_with_its_own_policies() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("access")).unwrap();
        std::fs::create_dir_all(dir.path().join("policies/team")).unwrap();
        std::fs::write(dir.path().join("access/users.toml"), "[[user]]\nid = \"dora\"\nroles = [\"designer\"]\n")
            .unwrap();
        // Without the policy that names it, the role is unknown.
        let problems = load(dir.path()).err().unwrap();
        assert!(problems[0].to_string().contains("unknown role \"designer\""), "{problems:?}");
        std::fs::write(
            dir.path().join("policies/team/design.cedar"),
            "permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"change\", resource)\n\
             when { resource in WhisperCMS::Area::\"theme\" };\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("policies/README.md"), "not a policy").unwrap();
        let access = load(dir.path()).unwrap();
        let roles = access.roles_of("dora").unwrap().to_vec();
        let v =
            access.authz.explain("dora", &roles, "change", Resource::Path { path: "themes/t/a.html", branch: "admin" });
        assert!(v.allowed);
        assert_eq!(v.policies, ["policies/team/design.cedar#1"]);
    }
}
