//! Who may do what, decided by Cedar: the schema and default policies in `policies/` (compiled
//! into the server) plus the site's own `policies/**/*.cedar`, evaluated for every ref update of
//! a push and every path it changes.
//!
//! A site's policies are added on top of the defaults (a `forbid` can narrow them, a `permit`
//! widen them, e.g. for a new role); each policy is known by its `@id(...)` or, without one, by
//! `FILE#N`. Pushes are decided by the policies of the live `main`, never by the pushed ones.
//!
//! Entities are built per request: the user (in its roles), the branch, and the path (in its
//! area: content, static, theme, plugin, config, access, policy, secret, other). A refusal
//! names the user, the roles, the action, the ref or path — and the policies that decided,
//! when a `forbid` did; otherwise that no policy permits it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy, PolicyId, PolicySet,
    Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use crate::problem::{line_of, Problem};

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

/// The compiled policies: the defaults plus, for a site, its `policies/*.cedar`.
#[derive(Debug)]
pub struct Authz {
    schema: Schema,
    policies: PolicySet,
    /// No policy can tell two paths of one area apart (none reads a path's `path`, names a
    /// `Path`, or is a template): a path's decision is its area's.
    paths_decided_by_area: bool,
}

/// The directory of a site's own policies.
pub const POLICY_DIR: &str = "policies";

/// From this many paths on, [`Authz::check_paths`] decides them on every core.
const PARALLEL_PATHS: usize = 2_000;

/// The answer to one request and the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed?
    pub allowed: bool,
    /// The policies (by id) that decided: the permits that allowed it, or the forbids that
    /// denied it (empty when nothing permits it).
    pub policies: Vec<String>,
    /// One line for people: `denied: alice (editor) may not change site.toml on admin (…)`.
    pub explanation: String,
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
    let ty = ENTITY_TYPES.get(kind).ok_or_else(|| format!("no entity type {kind}"))?;
    Ok(EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id)))
}

/// The schema's entity types, parsed once: a push of 100,000 pages names 200,000 entities, and
/// parsing the type's name for each ran the Cedar parser that often.
static ENTITY_TYPES: std::sync::LazyLock<HashMap<&'static str, EntityTypeName>> = std::sync::LazyLock::new(|| {
    ["User", "Role", "Branch", "Area", "Path", "Plugin", "Capability"]
        .into_iter()
        .map(|kind| {
            let name = EntityTypeName::from_str(&format!("WhisperCMS::{kind}"))
                .unwrap_or_else(|e| unreachable!("a fixed entity type name always parses: {e}"));
            (kind, name)
        })
        .collect()
});

fn schema() -> Result<Schema, String> {
    Schema::from_cedarschema_str(SCHEMA).map(|(s, _)| s).map_err(|e| format!("schema: {e}"))
}

/// The first line a diagnostic points at in `text`, if it points anywhere.
fn diagnostic_line(d: &dyn Diagnostic, text: &str) -> Option<usize> {
    let offset = d.labels()?.map(|l| l.offset()).min()?;
    Some(line_of(text, offset))
}

/// Parse one policy file, giving each policy its `@id` or `FILE#N`. Problems name the line.
fn parse_file(path: &str, text: &str) -> Result<Vec<Policy>, Vec<Problem>> {
    let set = PolicySet::from_str(text).map_err(|errors| {
        errors
            .iter()
            .map(|e| match diagnostic_line(e, text) {
                Some(line) => Problem::new(path, format!("line {line}: {e}")),
                None => Problem::new(path, e.to_string()),
            })
            .collect::<Vec<_>>()
    })?;
    if set.templates().next().is_some() {
        return Err(vec![Problem::new(
            path,
            "policy templates (?principal, ?resource) are not supported; write each policy out",
        )]);
    }
    // `PolicySet` numbers policies in source order as policy0, policy1, …
    let mut policies: Vec<&Policy> = set.policies().collect();
    policies.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(usize::MAX));
    Ok(policies
        .into_iter()
        .enumerate()
        .map(|(n, p)| {
            let id = p.annotation("id").map(str::to_string).unwrap_or_else(|| format!("{path}#{}", n + 1));
            p.new_id(PolicyId::new(id))
        })
        .collect())
}

impl Authz {
    /// The schema and the default policies, validated against each other.
    pub fn with_defaults() -> Result<Self, String> {
        Self::with_policies(DEFAULT_POLICIES)
    }

    /// The schema with `policies` (Cedar text) instead of the defaults, validated.
    pub fn with_policies(policies: &str) -> Result<Self, String> {
        Self::with_site_policies_replacing_defaults(&[("policies.cedar".to_string(), policies.to_string())], false)
            .map_err(|problems| problems.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; "))
    }

    /// The defaults plus a site's policy `files` (path, Cedar text), each parsed and validated
    /// against the schema. Every problem names its file and line.
    pub fn with_site_policies(files: &[(String, String)]) -> Result<Self, Vec<Problem>> {
        Self::with_site_policies_replacing_defaults(files, true)
    }

    fn with_site_policies_replacing_defaults(files: &[(String, String)], defaults: bool) -> Result<Self, Vec<Problem>> {
        let schema = schema().map_err(|e| vec![Problem::new("policies/whispercms.cedarschema", e)])?;
        let builtin = ("(built-in) policies/default.cedar".to_string(), DEFAULT_POLICIES.to_string());
        let mut problems = Vec::new();
        let mut set = PolicySet::new();
        let mut origin: HashMap<String, usize> = HashMap::new();
        let sources: Vec<&(String, String)> = defaults.then_some(&builtin).into_iter().chain(files).collect();
        for (i, (path, text)) in sources.iter().enumerate() {
            let policies = match parse_file(path, text) {
                Ok(p) => p,
                Err(mut p) => {
                    problems.append(&mut p);
                    continue;
                }
            };
            for policy in policies {
                let id = policy.id().to_string();
                if let Some(&other) = origin.get(&id) {
                    problems.push(Problem::new(
                        path.as_str(),
                        format!("policy id {id:?} is already used by {}", sources[other].0),
                    ));
                    continue;
                }
                if let Err(e) = set.add(policy) {
                    problems.push(Problem::new(path.as_str(), e.to_string()));
                    continue;
                }
                origin.insert(id, i);
            }
        }
        let result = Validator::new(schema.clone()).validate(&set, ValidationMode::default());
        for e in result.validation_errors() {
            let Some(&i) = origin.get(&e.policy_id().to_string()) else { continue };
            let (path, text) = sources[i];
            let message = match diagnostic_line(e, text) {
                Some(line) => format!("line {line}: {e}"),
                None => e.to_string(),
            };
            problems.push(Problem::new(path.as_str(), format!("does not match the schema: {message}")));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let paths_decided_by_area = !tells_paths_apart(&set);
        Ok(Authz { schema, policies: set, paths_decided_by_area })
    }

    /// The defaults plus the `policies/**/*.cedar` of `commit`.
    pub fn load(repo: &gix::Repository, commit: gix::ObjectId) -> Result<Self, Vec<Problem>> {
        Self::with_site_policies(&site_policy_files(repo, commit)?)
    }

    /// Every role a policy names (`Role::"x"`), the defaults' included.
    pub fn roles(&self) -> BTreeSet<String> {
        self.policies
            .policies()
            .flat_map(|p| p.entity_literals())
            .filter(|uid| uid.type_name().to_string() == "WhisperCMS::Role")
            .map(|uid| uid.id().unescaped().to_string())
            .collect()
    }

    /// May `user` (in `roles`) do `action` to `resource`? `Err` carries the explanation.
    pub fn check(&self, user: &str, roles: &[String], action: &str, resource: Resource<'_>) -> Result<(), String> {
        let verdict = self.explain(user, roles, action, resource);
        if verdict.allowed {
            Ok(())
        } else {
            Err(verdict.explanation)
        }
    }

    /// Decide and explain whether `user` (in `roles`) may do `action` to `resource`.
    pub fn explain(&self, user: &str, roles: &[String], action: &str, resource: Resource<'_>) -> Verdict {
        let who = if roles.is_empty() { format!("{user} (no role)") } else { format!("{user} ({})", roles.join(", ")) };
        let target = match resource {
            Resource::Branch(name) => format!("branch {name}"),
            Resource::Path { path, branch } => format!("{path} on {branch}"),
        };
        let response = match self.request(user, roles, action, resource) {
            Ok((request, entities)) => Authorizer::new().is_authorized(&request, &self.policies, &entities),
            Err(e) => {
                return Verdict {
                    allowed: false,
                    policies: Vec::new(),
                    explanation: format!("denied: {who} may not {action} {target} ({e})"),
                }
            }
        };
        let mut policies: Vec<String> = response.diagnostics().reason().map(|p| p.to_string()).collect();
        policies.sort();
        let allowed = response.decision() == Decision::Allow;
        let explanation = match (allowed, policies.is_empty()) {
            (true, _) => format!("allowed: {who} may {action} {target} (permitted by {})", policies.join(", ")),
            (false, true) => format!("denied: {who} may not {action} {target} (no policy permits it)"),
            (false, false) => format!("denied: {who} may not {action} {target} (forbidden by {})", policies.join(", ")),
        };
        Verdict { allowed, policies, explanation }
    }

    /// [`check`](Self::check) of `action` on every path of `paths` on `branch`: the
    /// explanations of the denied ones, in order. One entity set serves many paths (the user,
    /// roles, areas and the paths of a thread's share; building and validating it per path was
    /// most of a large push's authorization time), so only the evaluation is per path. A policy
    /// sees the same principal, resource, its area and context as with `check`; only an entity
    /// literal naming another pushed path could see that path's attributes here.
    pub fn check_paths(&self, user: &str, roles: &[String], action: &str, branch: &str, paths: &[&str]) -> Vec<String> {
        let denial = |path: &str| self.check(user, roles, action, Resource::Path { path, branch }).err();
        if self.paths_decided_by_area {
            // The first path of each area decides for the area (9 evaluations for a whole
            // site's 100,000 paths, where evaluating each was 1.5 s of both cores); a denied
            // area's paths are each explained, and so decided, on their own.
            let mut allowed_in: HashMap<&str, bool> = HashMap::new();
            return paths
                .iter()
                .filter(|path| !*allowed_in.entry(area_of(path)).or_insert_with(|| denial(path).is_none()))
                .filter_map(|path| denial(path))
                .collect();
        }
        // A whole site's paths (100,000 on a first push) are decided on every core, each
        // thread with the entity set of its share of them (making one set of 100,000 paths was
        // a second of a single core).
        let threads =
            if paths.len() < PARALLEL_PATHS { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
        let chunk = paths.len().div_ceil(threads).max(1);
        let denied: Vec<Vec<&str>> = std::thread::scope(|scope| {
            let workers: Vec<_> = paths
                .chunks(chunk)
                .map(|part| {
                    let denied = scope.spawn(move || self.denied_among(user, roles, action, branch, part));
                    (part, denied)
                })
                .collect();
            workers
                .into_iter()
                .map(|(part, w)| {
                    // A share whose set cannot be made (a name Cedar refuses, a path twice):
                    // each of its paths is decided on its own, which says what is wrong.
                    w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)).unwrap_or_else(|| part.to_vec())
                })
                .collect()
        });
        denied.into_iter().flatten().filter_map(denial).collect()
    }

    /// Which of `paths` are denied, decided with one entity set for them all; `None` when that
    /// set or the requests cannot be made.
    fn denied_among<'p>(
        &self,
        user: &str,
        roles: &[String],
        action: &str,
        branch: &str,
        paths: &[&'p str],
    ) -> Option<Vec<&'p str>> {
        let (principal, mut entities) = Self::principal(user, roles).ok()?;
        let mut areas = BTreeSet::new();
        let mut resources = Vec::with_capacity(paths.len());
        for path in paths {
            let (area, path_entity) = Self::path_entity(path).ok()?;
            if areas.insert(area.clone()) {
                entities.push(Entity::new_no_attrs(area, HashSet::new()));
            }
            resources.push(path_entity.uid());
            entities.push(path_entity);
        }
        let entities = self.entities_of_one_shape(entities).ok()?;
        let (action, context) = (Self::action(action).ok()?, Self::branch_context(branch).ok()?);
        // Every request has the same principal, action, context and resource type: if the
        // first is valid for the schema, all are, and the others skip that check.
        let first = resources.first()?;
        Request::new(principal.clone(), action.clone(), first.clone(), context.clone(), Some(&self.schema)).ok()?;
        let authorizer = Authorizer::new();
        let allowed = |resource: &EntityUid| {
            Request::new(principal.clone(), action.clone(), resource.clone(), context.clone(), None)
                .is_ok_and(|r| authorizer.is_authorized(&r, &self.policies, &entities).decision() == Decision::Allow)
        };
        Some(paths.iter().zip(&resources).filter(|(_, r)| !allowed(r)).map(|(p, _)| *p).collect())
    }

    /// The entity set of `entities` — the principal and its roles, then areas and paths, all
    /// built here with one shape per type — with the schema's actions. Checking every entity
    /// against the schema was half of a 100,000-path push's authorization (1.25 s of 2.4 s):
    /// the entities up to the first path are checked, which covers every type and shape, and
    /// the rest are taken as they are.
    fn entities_of_one_shape(&self, entities: Vec<Entity>) -> Result<Entities, String> {
        let first_path = entities.iter().position(|e| e.uid().type_name().basename() == "Path");
        let sample = first_path.map_or(entities.len(), |i| i + 1);
        Entities::from_entities(entities[..sample].iter().cloned(), Some(&self.schema)).map_err(|e| e.to_string())?;
        let actions = self.schema.action_entities().map_err(|e| e.to_string())?;
        Entities::from_entities(entities.into_iter().chain(actions.iter().cloned()), None).map_err(|e| e.to_string())
    }

    /// May plugin `unit` (which declared `declared`) use `capability`? `Err` explains.
    pub fn check_capability(&self, unit: &str, declared: &[String], capability: &str) -> Result<(), String> {
        let response = self
            .capability_request(unit, declared, capability)
            .map(|(request, entities)| Authorizer::new().is_authorized(&request, &self.policies, &entities));
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(format!("plugin {unit} may not use {capability} ({e})")),
        };
        if response.decision() == Decision::Allow {
            return Ok(());
        }
        let mut policies: Vec<String> = response.diagnostics().reason().map(|p| p.to_string()).collect();
        policies.sort();
        let why = if policies.is_empty() {
            "no policy grants it".to_string()
        } else {
            format!("forbidden by {}", policies.join(", "))
        };
        Err(format!("plugin {unit} may not use {capability} ({why})"))
    }

    fn capability_request(
        &self,
        unit: &str,
        declared: &[String],
        capability: &str,
    ) -> Result<(Request, Entities), String> {
        let principal = uid("Plugin", unit)?;
        let declared =
            RestrictedExpression::new_set(declared.iter().map(|d| RestrictedExpression::new_string(d.clone())));
        let plugin =
            Entity::new(principal.clone(), HashMap::from([("declared".to_string(), declared)]), HashSet::new())
                .map_err(|e| e.to_string())?;
        let resource = uid("Capability", capability)?;
        let attrs = HashMap::from([("name".to_string(), RestrictedExpression::new_string(capability.to_string()))]);
        let cap = Entity::new(resource.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?;
        let entities = Entities::from_entities([plugin, cap], Some(&self.schema)).map_err(|e| e.to_string())?;
        let action = EntityUid::from_str("WhisperCMS::Action::\"use\"").map_err(|e| e.to_string())?;
        let request = Request::new(principal, action, resource, Context::empty(), Some(&self.schema))
            .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// The Cedar request and entities for one question.
    fn request(
        &self,
        user: &str,
        roles: &[String],
        action: &str,
        resource: Resource<'_>,
    ) -> Result<(Request, Entities), String> {
        let (principal, mut entities) = Self::principal(user, roles)?;
        let (resource_uid, context) = match resource {
            Resource::Branch(name) => {
                let r = uid("Branch", name)?;
                let attrs = HashMap::from([("name".to_string(), RestrictedExpression::new_string(name.to_string()))]);
                entities.push(Entity::new(r.clone(), attrs, HashSet::new()).map_err(|e| e.to_string())?);
                (r, Context::empty())
            }
            Resource::Path { path, branch } => {
                let (area, path_entity) = Self::path_entity(path)?;
                entities.push(Entity::new_no_attrs(area, HashSet::new()));
                let r = path_entity.uid();
                entities.push(path_entity);
                (r, Self::branch_context(branch)?)
            }
        };
        let entities = Entities::from_entities(entities, Some(&self.schema)).map_err(|e| e.to_string())?;
        let request = Request::new(principal, Self::action(action)?, resource_uid, context, Some(&self.schema))
            .map_err(|e| e.to_string())?;
        Ok((request, entities))
    }

    /// The user `user` as a principal, and its entities: itself, in its roles, and the roles.
    fn principal(user: &str, roles: &[String]) -> Result<(EntityUid, Vec<Entity>), String> {
        let principal = uid("User", user)?;
        let mut entities = Vec::new();
        let role_uids: HashSet<EntityUid> = roles.iter().map(|r| uid("Role", r)).collect::<Result<_, _>>()?;
        for r in &role_uids {
            entities.push(Entity::new_no_attrs(r.clone(), HashSet::new()));
        }
        let attrs = HashMap::from([("name".to_string(), RestrictedExpression::new_string(user.to_string()))]);
        entities.push(Entity::new(principal.clone(), attrs, role_uids).map_err(|e| e.to_string())?);
        Ok((principal, entities))
    }

    /// A changed path's entity (its `path` attribute, in its area) and its area's uid.
    fn path_entity(path: &str) -> Result<(EntityUid, Entity), String> {
        let area = uid("Area", area_of(path))?;
        let r = uid("Path", path)?;
        let attrs = HashMap::from([("path".to_string(), RestrictedExpression::new_string(path.to_string()))]);
        let entity = Entity::new(r, attrs, HashSet::from([area.clone()])).map_err(|e| e.to_string())?;
        Ok((area, entity))
    }

    /// The context of a path's request: the branch it changes on.
    fn branch_context(branch: &str) -> Result<Context, String> {
        Context::from_pairs([("branch".to_string(), RestrictedExpression::new_string(branch.to_string()))])
            .map_err(|e| e.to_string())
    }

    fn action(action: &str) -> Result<EntityUid, String> {
        EntityUid::from_str(&format!("WhisperCMS::Action::{action:?}")).map_err(|e| e.to_string())
    }
}

/// Could `policies` decide two paths of one area differently? Only a policy that reads the
/// path (`resource.path`), names a path (`WhisperCMS::Path::"…"`, `resource is WhisperCMS::Path`)
/// or is a template (whose links may name one) can: the principal, action and context are the
/// same for every path of a push, and a path's only parent is its area. Any policy whose JSON
/// form says "path" in any case counts, which errs towards deciding path by path. The JSON form,
/// not the text: the text keeps escapes as written, and `resource["p\u{61}th"]` reads the path.
fn tells_paths_apart(policies: &PolicySet) -> bool {
    policies.templates().next().is_some()
        || policies
            .policies()
            .any(|p| p.to_json().map_or(true, |json| json.to_string().to_ascii_lowercase().contains("path")))
}

/// The site's policy files of `commit`: every `policies/**/*.cedar`, as (path, text).
pub fn site_policy_files(repo: &gix::Repository, commit: gix::ObjectId) -> Result<Vec<(String, String)>, Vec<Problem>> {
    let git = |e: site_runtime::Error| vec![Problem::new(POLICY_DIR, format!("could not read: {e}"))];
    let mut files = Vec::new();
    for (rel, blob) in site_runtime::source::files_under(repo, commit, POLICY_DIR).map_err(git)? {
        if !rel.ends_with(".cedar") {
            continue;
        }
        let path = format!("{POLICY_DIR}/{rel}");
        let bytes = site_runtime::source::read_blob(repo, blob).map_err(git)?;
        match String::from_utf8(bytes) {
            Ok(text) => files.push((path, text)),
            Err(_) => return Err(vec![Problem::new(path, "not UTF-8 text")]),
        }
    }
    files.sort();
    Ok(files)
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
    fn paths_checked_together_are_decided_as_one_by_one() {
        let a = site(&[(
            "policies/blog.cedar",
            "@id(\"no-drafts\") forbid (principal, action == WhisperCMS::Action::\"change\", resource) \
             when { resource.path like \"content/drafts/*\" };",
        )])
        .unwrap();
        let paths = [
            "content/blog/x.md",
            "content/drafts/y.md",
            "static/a.png",
            "themes/t/theme.toml",
            "site.toml",
            "secrets/a.yaml",
            "other/file",
            "content/\"quoted\".md",
        ];
        for who in [&["admin"][..], &["editor"], &["publisher"], &["reader"], &[], &["editor", "publisher"]] {
            for branch in ["main", "admin", "preview/x"] {
                let one_by_one: Vec<String> = paths
                    .iter()
                    .filter_map(|p| a.check("u", &roles(who), "change", Resource::Path { path: p, branch }).err())
                    .collect();
                assert_eq!(
                    a.check_paths("u", &roles(who), "change", branch, &paths),
                    one_by_one,
                    "{who:?} on {branch}"
                );
            }
        }
        // Enough paths to be decided on every core: the same denials, in the same order.
        let many: Vec<String> = (0..3 * PARALLEL_PATHS)
            .map(|i| paths[i % paths.len()].replace('.', &format!("-{i}.")))
            .filter(|p| !p.contains('"'))
            .collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut mixed = 0;
        for who in [&["editor"][..], &["publisher"]] {
            for branch in ["main", "admin"] {
                let one_by_one: Vec<String> = many
                    .iter()
                    .filter_map(|p| a.check("u", &roles(who), "change", Resource::Path { path: p, branch }).err())
                    .collect();
                mixed += usize::from(!one_by_one.is_empty() && one_by_one.len() < many.len());
                assert_eq!(a.check_paths("u", &roles(who), "change", branch, &many), one_by_one, "{who:?} on {branch}");
            }
        }
        assert!(mixed > 0, "some denied and some allowed in one batch");
        // A path twice fails the batch (one entity per uid); each path is then decided on its
        // own, and only denials are returned.
        assert!(a.check_paths("u", &roles(&["admin"]), "change", "main", &["a", "a"]).is_empty());
        assert_eq!(a.check_paths("u", &roles(&["editor"]), "change", "admin", &["a", "a"]).len(), 2);
    }

    #[test]
    fn paths_are_decided_by_area_only_while_no_policy_tells_two_apart() {
        let paths = ["content/a.md", "content/b.md", "static/x.png", "site.toml", "themes/t/x.html", "other"];
        let check = |a: &Authz, who: &[&str], branch: &str| {
            let one_by_one: Vec<String> = paths
                .iter()
                .filter_map(|p| a.check("u", &roles(who), "change", Resource::Path { path: p, branch }).err())
                .collect();
            assert_eq!(a.check_paths("u", &roles(who), "change", branch, &paths), one_by_one, "{who:?} on {branch}");
            one_by_one.len()
        };
        let by_area = [
            Authz::with_defaults().unwrap(),
            site(&[(
                "policies/themes.cedar",
                "@id(\"no-themes\") forbid (principal, action, resource) when { resource in WhisperCMS::Area::\"theme\" };",
            )])
            .unwrap(),
        ];
        for a in &by_area {
            assert!(a.paths_decided_by_area);
            for who in [&["admin"][..], &["editor"], &["publisher"], &[]] {
                for branch in ["main", "admin"] {
                    check(a, who, branch);
                }
            }
        }
        // Policies that can tell two content paths apart are evaluated path by path.
        for text in [
            "@id(\"b\") forbid (principal, action == WhisperCMS::Action::\"change\", resource == WhisperCMS::Path::\"content/b.md\");",
            "@id(\"b\") forbid (principal, action == WhisperCMS::Action::\"change\", resource) when { resource.path == \"content/b.md\" };",
            "@id(\"b\") forbid (principal, action == WhisperCMS::Action::\"change\", resource) when { resource has path && resource[\"path\"] like \"*/b.md\" };",
            // An escape in the text: only the parsed policy says "path".
            "@id(\"b\") forbid (principal, action == WhisperCMS::Action::\"change\", resource) when { resource[\"p\\u{61}th\"] == \"content/b.md\" };",
        ] {
            let a = site(&[("policies/b.cedar", text)]).unwrap();
            assert!(!a.paths_decided_by_area, "{text}");
            assert_eq!(check(&a, &["admin"], "main"), 1, "{text}");
        }
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

    fn site(files: &[(&str, &str)]) -> Result<Authz, Vec<Problem>> {
        let files: Vec<(String, String)> = files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect();
        Authz::with_site_policies(&files)
    }

    #[test]
    fn site_policies_add_roles_on_top_of_the_defaults() {
        let designers = "// Designers own the theme.\n\
            permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"change\", resource)\n\
            when { resource in WhisperCMS::Area::\"theme\" };\n\
            permit (principal in WhisperCMS::Role::\"designer\", action == WhisperCMS::Action::\"push\", resource)\n\
            when { resource.name == \"admin\" };\n";
        let a = site(&[("policies/design.cedar", designers)]).unwrap();
        let theme = Resource::Path { path: "themes/t/templates/base.html", branch: "admin" };
        let verdict = a.explain("dora", &roles(&["designer"]), "change", theme);
        assert!(verdict.allowed, "{verdict:?}");
        assert_eq!(verdict.policies, ["policies/design.cedar#1"]);
        assert!(a.check("dora", &roles(&["designer"]), "push", Resource::Branch("admin")).is_ok());
        assert!(a.check("dora", &roles(&["designer"]), "push", Resource::Branch("main")).is_err());
        // The defaults still hold.
        assert!(a.check("root", &roles(&["admin"]), "push", Resource::Branch("main")).is_ok());
        let known = a.roles();
        for r in ["admin", "editor", "publisher", "reader", "designer"] {
            assert!(known.contains(r), "{r} in {known:?}");
        }
    }

    #[test]
    fn explanations_name_the_deciding_policies() {
        let a = Authz::with_defaults().unwrap();
        let v =
            a.explain("ed", &roles(&["editor"]), "change", Resource::Path { path: "content/a.md", branch: "admin" });
        assert_eq!(
            v.explanation,
            "allowed: ed (editor) may change content/a.md on admin (permitted by editor-content)"
        );
        let forbid = "@id(\"freeze\")\nforbid (principal, action, resource is WhisperCMS::Branch) when { resource.name == \"main\" };";
        let b = site(&[("policies/freeze.cedar", forbid)]).unwrap();
        let v = b.explain("root", &roles(&["admin"]), "push", Resource::Branch("main"));
        assert!(!v.allowed);
        assert_eq!(v.explanation, "denied: root (admin) may not push branch main (forbidden by freeze)");
    }

    #[test]
    fn broken_site_policies_are_reported_with_file_and_line() {
        let problems = site(&[
            ("policies/a.cedar", "// fine\npermit (principal, action, resource)\nwhen { resource.name == };\n"),
            ("policies/b.cedar", "\n\npermit (principal, action == WhisperCMS::Action::\"fly\", resource);\n"),
            ("policies/c.cedar", "@id(\"admin-all\")\npermit (principal, action, resource);\n"),
            ("policies/d.cedar", "permit (principal == ?principal, action, resource);\n"),
        ])
        .unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|p| p.starts_with("policies/a.cedar: line 3: ")), "{text:#?}");
        assert!(
            text.iter().any(|p| p.starts_with("policies/b.cedar: does not match the schema: line 3: ")),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|p| p.contains("policies/c.cedar: policy id \"admin-all\" is already used by (built-in)")),
            "{text:#?}"
        );
        assert!(text.iter().any(|p| p.starts_with("policies/d.cedar: policy templates")), "{text:#?}");
    }

    #[test]
    fn hostile_policy_text_is_an_error_not_a_panic() {
        for text in [
            "\u{0}",
            "permit (",
            "))))",
            "@id(\"x\") @id(\"y\") permit (principal, action, resource);",
            &"(".repeat(10_000),
        ] {
            let _ = site(&[("policies/x.cedar", text)]);
        }
        assert!(site(&[("policies/x.cedar", "permit (principal, action, resource) when { 1 + \"a\" };")]).is_err());
    }

    #[test]
    fn plugins_use_what_they_declared_and_side_effects_need_a_policy() {
        let a = Authz::with_defaults().unwrap();
        let declared = roles(&["content.read", "outbound.webhook:contact"]);
        assert!(a.check_capability("search", &declared, "content.read").is_ok());
        assert!(a
            .check_capability("search", &declared, "http.route")
            .unwrap_err()
            .contains("forbidden by plugins-undeclared"));
        let err = a.check_capability("contact-form", &declared, "outbound.webhook:contact").unwrap_err();
        assert_eq!(err, "plugin contact-form may not use outbound.webhook:contact (no policy grants it)");
        let grant = "@id(\"contact\")\npermit (principal == WhisperCMS::Plugin::\"contact-form\", \
                     action == WhisperCMS::Action::\"use\", resource == WhisperCMS::Capability::\"outbound.webhook:contact\");\n\
                     permit (principal, action == WhisperCMS::Action::\"use\", resource);";
        let b = site(&[("policies/plugins.cedar", grant)]).unwrap();
        assert!(b.check_capability("contact-form", &declared, "outbound.webhook:contact").is_ok());
        assert!(b.check_capability("other", &declared, "outbound.webhook:contact").is_ok(), "the catch-all permit");
        // Undeclared stays forbidden even under a catch-all permit.
        assert!(b
            .check_capability("other", &declared, "outbound.webhook:spam")
            .unwrap_err()
            .contains("plugins-undeclared"));
    }

    #[test]
    fn paths_fall_in_areas() {
        assert_eq!(area_of("content/a.md"), "content");
        assert_eq!(area_of("site.toml"), "config");
        assert_eq!(area_of("themes/x/a"), "theme");
        assert_eq!(area_of("README.md"), "other");
    }
}
