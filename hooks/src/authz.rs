//! Who may do what, decided by Cedar: the schema and default policies in `policies/` (compiled
//! into the server), evaluated for every ref update of a push and every path it changes.
//!
//! Entities are built per request: the user (in its roles), the branch, and the path (in its
//! area: content, static, theme, plugin, config, access, policy, secret, other). A refusal
//! names the user, the roles, the action, the ref or path — and the policies that decided,
//! when a `forbid` did; otherwise that no policy permits it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema, ValidationMode, Validator,
};

/// The schema shipped with the server.
pub const SCHEMA: &str = include_str!("../../policies/whispercms.cedarschema");
/// The default policies shipped with the server.
pub const DEFAULT_POLICIES: &str = include_str!("../../policies/default.cedar");

/// What is being authorized.
#[derive(Debug, Clone, Copy)]
pub enum Resource<'a> {
    /// A branch (or tag: `tags/<name>`), by short name.
    Branch(&'a str),
    /// A path changed on a branch.
    Path { path: &'a str, branch: &'a str },
}

/// The compiled policies.
pub struct Authz {
    schema: Schema,
    policies: PolicySet,
}

/// The area a repository path belongs to.
pub fn area_of(path: &str) -> &'static str {
    match path.split('/').next().unwrap_or("") {
        "content" => "content",
        "static" => "static",
        "themes" => "theme",
        "plugins" => "plugin",
        "access" => "access",
        "policies" => "policy",
        "secrets" => "secret",
        _ if path == "site.toml" => "config",
        _ => "other",
    }
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(&format!("WhisperCMS::{kind}")).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

impl Authz {
    /// The schema and the default policies, validated against each other.
    pub fn with_defaults() -> Result<Self, String> {
        Self::with_policies(DEFAULT_POLICIES)
    }

    /// The schema with `policies` (Cedar text), validated.
    pub fn with_policies(policies: &str) -> Result<Self, String> {
        let (schema, _) = Schema::from_cedarschema_str(SCHEMA).map_err(|e| format!("schema: {e}"))?;
        let policies = PolicySet::from_str(policies).map_err(|e| format!("policies: {e}"))?;
        let result = Validator::new(schema.clone()).validate(&policies, ValidationMode::default());
        if !result.validation_passed() {
            let errors: Vec<String> = result.validation_errors().map(|e| e.to_string()).collect();
            return Err(format!("policies do not match the schema: {}", errors.join("; ")));
        }
        Ok(Authz { schema, policies })
    }

    /// May `user` (in `roles`) do `action` to `resource`? `Err` carries the explanation.
    pub fn check(&self, user: &str, roles: &[String], action: &str, resource: Resource<'_>) -> Result<(), String> {
        let principal = uid("User", user)?;
        let mut entities = Vec::new();
        let role_uids: HashSet<EntityUid> = roles.iter().map(|r| uid("Role", r)).collect::<Result<_, _>>()?;
        for r in &role_uids {
            entities.push(Entity::new_no_attrs(r.clone(), HashSet::new()));
        }
        let attrs = HashMap::from([("name".to_string(), RestrictedExpression::new_string(user.to_string()))]);
        entities.push(Entity::new(principal.clone(), attrs, role_uids).map_err(|e| e.to_string())?);
        let (resource_uid, context) = match resource {
            Resource::Branch(name) => {
                let r = uid("Branch", name)?;
                let attrs = HashMap::from([("name".to_string(), RestrictedExpression::new_string(name.to_string()))]);
                entities.push(Entity::new(r.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?);
                (r, Context::empty())
            }
            Resource::Path { path, branch } => {
                let area = uid("Area", area_of(path))?;
                entities.push(Entity::new_no_attrs(area.clone(), HashSet::new()));
                let r = uid("Path", path)?;
                let attrs = HashMap::from([("path".to_string(), RestrictedExpression::new_string(path.to_string()))]);
                entities.push(Entity::new(r.clone(), attrs, HashSet::from([area])).map_err(|e| e.to_string())?);
                let context =
                    Context::from_pairs([("branch".to_string(), RestrictedExpression::new_string(branch.to_string()))])
                        .map_err(|e| e.to_string())?;
                (r, context)
            }
        };
        let action_uid = EntityUid::from_str(&format!("WhisperCMS::Action::{action:?}")).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let request = Request::new(principal, action_uid, resource_uid, context, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.policies, &entities);
        if response.decision() == Decision::Allow {
            return Ok(());
        }
        let target = match resource {
            Resource::Branch(name) => format!("branch {name}"),
            Resource::Path { path, branch } => format!("{path} on {branch}"),
        };
        let who = if roles.is_empty() { format!("{user} (no role)") } else { format!("{user} ({})", roles.join(", ")) };
        // Name policies by their `@id(...)` annotation when they have one.
        let forbids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|p| {
                self.policies
                    .policy(p)
                    .and_then(|x| x.annotation("id"))
                    .map(str::to_string)
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        let why = if forbids.is_empty() {
            "no policy permits it".to_string()
        } else {
            format!("forbidden by {}", forbids.join(", "))
        };
        Err(format!("denied: {who} may not {action} {target} ({why})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn schema_and_default_policies_validate() {
        Authz::with_defaults().unwrap();
    }

    #[test]
    fn the_default_role_matrix() {
        let a = Authz::with_defaults().unwrap();
        let allowed = |who: &[&str], action: &str, res: Resource<'_>| a.check("u", &roles(who), action, res).is_ok();
        let path = |p, b| Resource::Path { path: p, branch: b };
        // admin: anything
        for action in ["read", "push", "create", "delete", "force-push"] {
            assert!(allowed(&["admin"], action, Resource::Branch("main")), "{action}");
        }
        assert!(allowed(&["admin"], "change", path("themes/x/templates/base.html", "main")));
        // editor: content and static on admin and preview/*, never main, never themes
        assert!(allowed(&["editor"], "push", Resource::Branch("admin")));
        assert!(allowed(&["editor"], "create", Resource::Branch("preview/alice")));
        assert!(allowed(&["editor"], "force-push", Resource::Branch("preview/alice")));
        assert!(!allowed(&["editor"], "force-push", Resource::Branch("admin")));
        assert!(!allowed(&["editor"], "push", Resource::Branch("main")));
        assert!(allowed(&["editor"], "change", path("content/blog/x.md", "admin")));
        assert!(allowed(&["editor"], "change", path("static/img/a.png", "preview/x")));
        for p in [
            "themes/t/theme.toml",
            "plugins/p/plugin.toml",
            "access/users.toml",
            "policies/x.cedar",
            "secrets/a.yaml",
            "site.toml",
        ] {
            assert!(!allowed(&["editor"], "change", path(p, "admin")), "{p}");
        }
        assert!(!allowed(&["editor"], "change", path("content/x.md", "main")));
        // publisher: also main
        assert!(allowed(&["publisher"], "push", Resource::Branch("main")));
        assert!(allowed(&["publisher"], "change", path("content/x.md", "main")));
        assert!(!allowed(&["publisher"], "change", path("themes/t/x.html", "main")));
        assert!(!allowed(&["publisher"], "force-push", Resource::Branch("main")));
        // reader: read only; nobody without a role
        assert!(allowed(&["reader"], "read", Resource::Branch("main")));
        assert!(!allowed(&["reader"], "push", Resource::Branch("preview/x")));
        assert!(!allowed(&[], "read", Resource::Branch("main")));
    }

    #[test]
    fn refusals_name_user_action_target_and_reason() {
        let a = Authz::with_defaults().unwrap();
        let err = a
            .check(
                "alice",
                &roles(&["editor"]),
                "change",
                Resource::Path { path: "themes/hello/templates/base.html", branch: "admin" },
            )
            .unwrap_err();
        assert_eq!(
            err,
            "denied: alice (editor) may not change themes/hello/templates/base.html on admin (no policy permits it)"
        );
        let forbidding = format!("{DEFAULT_POLICIES}\n@id(\"no-friday\")\nforbid (principal, action == WhisperCMS::Action::\"push\", resource);\n");
        let b = Authz::with_policies(&forbidding).unwrap();
        let err = b.check("root", &roles(&["admin"]), "push", Resource::Branch("main")).unwrap_err();
        assert!(err.contains("forbidden by no-friday"), "{err}");
    }

    #[test]
    fn policies_that_do_not_match_the_schema_are_refused() {
        let bad = "permit (principal, action == WhisperCMS::Action::\"fly\", resource);";
        assert!(Authz::with_policies(bad).is_err());
        assert!(Authz::with_policies("permit (principal, action, resource) when { resource.colour == 1 };").is_err());
        assert!(Authz::with_policies("this is not cedar").is_err());
    }

    #[test]
    fn paths_fall_in_areas() {
        assert_eq!(area_of("content/a.md"), "content");
        assert_eq!(area_of("site.toml"), "config");
        assert_eq!(area_of("themes/x/a"), "theme");
        assert_eq!(area_of("README.md"), "other");
    }
}
