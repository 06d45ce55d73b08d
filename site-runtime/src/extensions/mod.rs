//! Extensions: Rhai plugins (`plugins/<name>/`, enabled in `site.toml`) and theme scripts
//! (`themes/<name>/*.rhai`), compiled once per snapshot and swapped with it, so a request sees
//! one consistent set. Every call runs in the [`sandbox`] with the limits of [`Limits`]; a
//! failing call is logged with the unit's name and skipped (filters), answered with a clean
//! error (routes) or reported (events), and a unit that keeps failing is disabled for the rest
//! of its snapshot. What scripts can reach is in [`host`].
//!
//! What a plugin implements (declared in [`manifest`], checked against the script at load):
//! - filters `page_html(html, page)` and `head(page)`;
//! - shortcodes in Markdown (`{{ name(key="value") }}` and the other syntaxes of
//!   [`crate::content::shortcodes`]): `shortcode_<name>(args, page)`;
//! - template functions (also usable as filters) for themes;
//! - the event `on_publish(change)`;
//! - routes: `handler(request)` returning `#{ status, headers, body | json | html | template }`.

pub mod host;
pub mod mail;
pub mod manifest;
pub mod memory;
pub mod outbox;
pub mod sandbox;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use gix::ObjectId;
use rhai::{Dynamic, Engine, Scope, AST};

use crate::config::SiteConfig;
use crate::error::{Error, Result};
use crate::source;

pub use host::{Capabilities, ContentHost, DeclaredOnly, NoOutbound, NoOutbox, Outbound, Outbox, Services};
pub use manifest::PluginManifest;
pub use sandbox::{Limits, Stopped};

use host::{CallEnv, UnitInfo};

/// How a site's extensions run: limits, and the services host functions reach.
#[derive(Clone)]
pub struct Options {
    pub limits: Limits,
    pub capabilities: Arc<dyn Capabilities>,
    /// Side effects: each snapshot's outbox is made from its commit.
    pub outbound: Arc<dyn Outbound>,
}

impl Default for Options {
    fn default() -> Self {
        Options { limits: Limits::default(), capabilities: Arc::new(DeclaredOnly), outbound: Arc::new(NoOutbound) }
    }
}

/// One compiled script: a plugin or a theme's scripts.
struct Unit {
    info: Arc<UnitInfo>,
    ast: AST,
    manifest: Option<PluginManifest>,
    /// Template functions it provides.
    functions: Vec<String>,
    failures: AtomicU32,
    disabled: AtomicBool,
}

/// A plugin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRef {
    unit: usize,
    handler: String,
    /// The plugin's name.
    pub plugin: String,
}

/// What a route handler answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A body with its content type.
    Body { status: u16, headers: Vec<(String, String)>, content_type: String, body: Vec<u8> },
    /// A theme template to render with `context` (merged with the usual `site`).
    Template { status: u16, headers: Vec<(String, String)>, template: String, context: serde_json::Value },
}

/// The compiled extensions of one snapshot.
pub struct Extensions {
    engine: Engine,
    limits: Limits,
    units: Vec<Unit>,
    services: Arc<Services>,
    /// Template function name → unit.
    functions: HashMap<String, usize>,
    /// (method, path) → route.
    routes: HashMap<(String, String), RouteRef>,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").field("units", &self.names()).finish()
    }
}

/// Headers a route may set (anything else is dropped with a warning): no cookies, no security
/// headers a plugin could weaken.
const ROUTE_HEADERS: &[&str] = &["cache-control", "content-language", "location", "vary", "etag", "last-modified"];

impl Extensions {
    /// No extensions.
    pub fn none() -> Self {
        let limits = Limits::default();
        let options = Options::default();
        Extensions {
            engine: sandbox::engine(&limits),
            limits,
            units: Vec::new(),
            services: Arc::new(Services {
                content: None,
                capabilities: options.capabilities,
                outbox: Arc::new(NoOutbox),
            }),
            functions: HashMap::new(),
            routes: HashMap::new(),
        }
    }

    /// Compile the plugins `config` enables and the active theme's scripts at `commit`. The first
    /// problem is the error; [`check`] lists them all.
    pub fn load(
        repo: &gix::Repository,
        commit: ObjectId,
        config: &SiteConfig,
        options: &Options,
        content: Option<Arc<dyn ContentHost>>,
    ) -> Result<Self> {
        let (ext, mut problems) = compile(repo, commit, config, options, content)?;
        match problems.is_empty() {
            true => Ok(ext),
            false => Err(problems.swap_remove(0)),
        }
    }

    /// Names of the loaded units (plugins, and `theme:<name>`).
    pub fn names(&self) -> Vec<String> {
        self.units.iter().map(|u| u.info.id.clone()).collect()
    }

    /// Whether there is nothing to run.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Units disabled after failing repeatedly.
    pub fn disabled(&self) -> Vec<String> {
        self.units.iter().filter(|u| u.disabled.load(Ordering::Relaxed)).map(|u| u.info.id.clone()).collect()
    }

    /// Call `function` of unit `index` in the sandbox, counting failures.
    fn call(&self, index: usize, function: &str, args: Vec<Dynamic>) -> std::result::Result<Dynamic, Stopped> {
        let unit = &self.units[index];
        if unit.disabled.load(Ordering::Relaxed) {
            return Err(Stopped::Failed(format!("{} is disabled after repeated failures", unit.info.id)));
        }
        let tag = CallEnv { unit: unit.info.clone(), services: self.services.clone() };
        let options = rhai::CallFnOptions::new().eval_ast(false).rewind_scope(true).with_tag(tag);
        let mut scope = Scope::new();
        let result = sandbox::with_deadline(&self.limits, || {
            self.engine.call_fn_with_options::<Dynamic>(options, &mut scope, &unit.ast, function, args)
        });
        match &result {
            Ok(_) => unit.failures.store(0, Ordering::Relaxed),
            Err(e) => {
                let failures = unit.failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(unit = %unit.info.id, function, error = %e, failures, "extension call failed");
                if failures >= self.limits.failures_before_disable && !unit.disabled.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        unit = %unit.info.id,
                        failures,
                        "extension disabled for this snapshot after repeated failures; push a fix to enable it again"
                    );
                }
            }
        }
        result
    }

    fn plugins_with<'a>(&'a self, pick: impl Fn(&PluginManifest) -> bool + 'a) -> impl Iterator<Item = usize> + 'a {
        self.units.iter().enumerate().filter(move |(_, u)| u.manifest.as_ref().is_some_and(&pick)).map(|(i, _)| i)
    }

    /// The HTML of shortcode `name` from the plugin that declares it, if one does (a failing
    /// call gives nothing). The plugin gets the named arguments with `_positional` and `_body`
    /// added when the call has them (Hugo's positional arguments, the text between the tags).
    pub fn shortcode(
        &self,
        name: &str,
        args: &serde_json::Value,
        positional: &[serde_json::Value],
        body: Option<&str>,
        page: &serde_json::Value,
    ) -> Option<String> {
        let unit = self.plugins_with(|m| m.shortcodes.iter().any(|s| s == name)).next()?;
        let mut args = args.clone();
        if let Some(map) = args.as_object_mut() {
            if !positional.is_empty() {
                map.insert("_positional".into(), serde_json::Value::from(positional.to_vec()));
            }
            if let Some(body) = body {
                map.insert("_body".into(), serde_json::Value::from(body));
            }
        }
        let args = rhai::serde::to_dynamic(&args).unwrap_or(Dynamic::UNIT);
        let page = rhai::serde::to_dynamic(page).unwrap_or(Dynamic::UNIT);
        match self.call(unit, &format!("shortcode_{name}"), vec![args, page]) {
            Ok(out) => Some(out.to_string()),
            Err(_) => Some(String::new()),
        }
    }

    /// Whether a plugin declares shortcode `name`.
    pub fn has_shortcode(&self, name: &str) -> bool {
        self.plugins_with(|m| m.shortcodes.iter().any(|s| s == name)).next().is_some()
    }

    /// The page's HTML after every `page_html` filter (a failing filter is skipped).
    pub fn page_html(&self, html: String, page: &serde_json::Value) -> String {
        if self.units.is_empty() {
            return html;
        }
        let page_dyn = rhai::serde::to_dynamic(page).unwrap_or(Dynamic::UNIT);
        let mut html = html;
        let filters: Vec<usize> = self.plugins_with(|m| m.filters.iter().any(|f| f == "page_html")).collect();
        for unit in filters {
            match self.call(unit, "page_html", vec![html.clone().into(), page_dyn.clone()]) {
                Ok(out) if out.is_string() => html = out.to_string(),
                Ok(_) => tracing::warn!(unit = %self.units[unit].info.id, "page_html returned no string; skipped"),
                Err(_) => {}
            }
        }
        html
    }

    /// HTML the `head` filters add at the end of `<head>`.
    pub fn head_html(&self, page: &serde_json::Value) -> String {
        let mut out = String::new();
        let units: Vec<usize> = self.plugins_with(|m| m.filters.iter().any(|f| f == "head")).collect();
        if units.is_empty() {
            return out;
        }
        let page_dyn = rhai::serde::to_dynamic(page).unwrap_or(Dynamic::UNIT);
        for unit in units {
            if let Ok(html) = self.call(unit, "head", vec![page_dyn.clone()]) {
                if html.is_string() {
                    out.push_str(&html.to_string());
                }
            }
        }
        out
    }

    /// Template functions provided by plugins and the theme.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.functions.keys().cloned().collect();
        names.sort();
        names
    }

    /// Call template function `name`.
    pub fn call_function(
        &self,
        name: &str,
        args: Vec<serde_json::Value>,
    ) -> std::result::Result<serde_json::Value, String> {
        let unit = *self.functions.get(name).ok_or_else(|| format!("no template function {name}"))?;
        let args = args.iter().map(|a| rhai::serde::to_dynamic(a).unwrap_or(Dynamic::UNIT)).collect();
        let out = self.call(unit, name, args).map_err(|e| format!("{}: {name}: {e}", self.units[unit].info.id))?;
        rhai::serde::from_dynamic(&out).map_err(|e| format!("{}: {name}: {e}", self.units[unit].info.id))
    }

    /// The plugin route for `method` (`HEAD` as `GET`) and `path`, if any.
    pub fn route(&self, method: &str, path: &str) -> Option<&RouteRef> {
        let method = if method == "HEAD" { "GET" } else { method };
        self.routes.get(&(method.to_string(), path.to_string()))
    }

    /// Whether a plugin serves `path` with any method.
    pub fn serves_path(&self, path: &str) -> bool {
        self.routes.keys().any(|(_, p)| p == path)
    }

    /// Run a route's handler with `request`; the route's capabilities (`http.route`, and
    /// `form.submit` for a POST) are checked first.
    pub fn handle(&self, route: &RouteRef, request: serde_json::Value) -> std::result::Result<Reply, String> {
        let unit = &self.units[route.unit];
        self.services.capabilities.check(&unit.info.id, &unit.info.declared, "http.route")?;
        if request.get("method").and_then(|m| m.as_str()) == Some("POST") {
            self.services.capabilities.check(&unit.info.id, &unit.info.declared, "form.submit")?;
        }
        let request = rhai::serde::to_dynamic(&request).map_err(|e| e.to_string())?;
        let out = self.call(route.unit, &route.handler, vec![request]).map_err(|e| e.to_string())?;
        let reply: serde_json::Value = rhai::serde::from_dynamic(&out).map_err(|e| e.to_string())?;
        reply_from(&unit.info.id, reply)
    }

    /// Run every `on_publish` handler after a publish; returns one line per failure.
    pub fn on_publish(&self, change: &serde_json::Value) -> Vec<String> {
        let units: Vec<usize> = self.plugins_with(|m| m.events.iter().any(|e| e == "on_publish")).collect();
        let change = rhai::serde::to_dynamic(change).unwrap_or(Dynamic::UNIT);
        units
            .into_iter()
            .filter_map(|u| {
                self.call(u, "on_publish", vec![change.clone()])
                    .err()
                    .map(|e| format!("plugin {}: on_publish failed: {e}", self.units[u].info.id))
            })
            .collect()
    }
}

/// Turn a handler's map into a [`Reply`].
fn reply_from(unit: &str, reply: serde_json::Value) -> std::result::Result<Reply, String> {
    let serde_json::Value::Object(map) = reply else {
        return Err(format!("{unit}: a route handler must return a map like #{{ json: … }}"));
    };
    let status = match map.get("status") {
        None => 200,
        Some(s) => {
            s.as_u64().filter(|s| (200..=599).contains(s)).ok_or_else(|| format!("{unit}: bad status {s}"))? as u16
        }
    };
    let mut headers = Vec::new();
    if let Some(h) = map.get("headers").and_then(|h| h.as_object()) {
        for (name, value) in h {
            let lower = name.to_ascii_lowercase();
            match value.as_str() {
                Some(v) if ROUTE_HEADERS.contains(&lower.as_str()) && !v.contains(['\r', '\n']) => {
                    headers.push((lower, v.to_string()))
                }
                _ => tracing::warn!(unit, header = %name, "route header not allowed; dropped"),
            }
        }
    }
    let body = |content_type: &str, body: Vec<u8>| Reply::Body {
        status,
        headers: headers.clone(),
        content_type: content_type.into(),
        body,
    };
    if let Some(json) = map.get("json") {
        return Ok(body("application/json", serde_json::to_vec(json).map_err(|e| e.to_string())?));
    }
    if let Some(html) = map.get("html").and_then(|h| h.as_str()) {
        return Ok(body("text/html; charset=utf-8", html.as_bytes().to_vec()));
    }
    if let Some(template) = map.get("template").and_then(|t| t.as_str()) {
        let context = map.get("context").cloned().unwrap_or(serde_json::Value::Null);
        return Ok(Reply::Template { status, headers, template: template.to_string(), context });
    }
    if let Some(text) = map.get("body").and_then(|b| b.as_str()) {
        return Ok(body("text/plain; charset=utf-8", text.as_bytes().to_vec()));
    }
    Err(format!("{unit}: a route handler must return one of json, html, template or body"))
}

/// Every problem with the extensions `config` enables at `commit`: manifests, scripts (with
/// file and line), hooks the manifests name but the scripts lack, settings `site.toml`
/// overrides. For validation at push.
pub fn check(repo: &gix::Repository, commit: ObjectId, config: &SiteConfig) -> Result<Vec<Error>> {
    Ok(compile(repo, commit, config, &Options::default(), None)?.1)
}

/// The shortcodes the plugins `config` enables declare at `commit` (from their manifests; a
/// broken manifest is reported by [`check`]).
pub fn declared_shortcodes(repo: &gix::Repository, commit: ObjectId, config: &SiteConfig) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for name in config.plugins.iter().filter(|n| manifest::is_name(n)) {
        let path = format!("plugins/{name}/plugin.toml");
        let Some(blob) = source::blob_at(repo, commit, &path)? else { continue };
        let Ok(text) = text_at(repo, blob, &path) else { continue };
        if let Ok(m) = manifest::parse(&path, name, &text) {
            names.extend(m.shortcodes);
        }
    }
    Ok(names)
}

/// Compile everything; problems are collected, Git errors end it.
fn compile(
    repo: &gix::Repository,
    commit: ObjectId,
    config: &SiteConfig,
    options: &Options,
    content: Option<Arc<dyn ContentHost>>,
) -> Result<(Extensions, Vec<Error>)> {
    let mut engine = sandbox::engine(&options.limits);
    host::register(&mut engine);
    let mut problems = Vec::new();
    let mut units = Vec::new();
    for name in &config.plugins {
        match load_plugin(&engine, repo, commit, config, name) {
            Ok(Some(unit)) => units.push(unit),
            Ok(None) => {}
            Err(Error::Content { path, message }) => problems.push(Error::Content { path, message }),
            Err(e) => return Err(e),
        }
    }
    for (name, _) in config.plugin_settings.iter() {
        if !config.plugins.contains(name) {
            problems.push(Error::content(
                crate::config::PATH,
                format!("plugin_settings.{name}: no such plugin is enabled (plugins = [...])"),
            ));
        }
    }
    if let Some(theme) = &config.theme {
        match load_theme_scripts(&engine, repo, commit, theme) {
            Ok(Some(unit)) => units.push(unit),
            Ok(None) => {}
            Err(Error::Content { path, message }) => problems.push(Error::Content { path, message }),
            Err(e) => return Err(e),
        }
    }
    let mut functions = HashMap::new();
    let mut routes = HashMap::new();
    for (i, unit) in units.iter().enumerate() {
        for f in &unit.functions {
            if crate::theme::BUILTIN_FUNCTIONS.contains(&f.as_str()) {
                problems.push(Error::content(&unit.info.id, format!("template function {f} is built in")));
            } else if let Some(other) = functions.insert(f.clone(), i) {
                let other = &units[other].info.id;
                problems
                    .push(Error::content(&unit.info.id, format!("template function {f} is also provided by {other}")));
            }
        }
        for r in unit.manifest.iter().flat_map(|m| &m.routes) {
            for method in &r.methods {
                let route = RouteRef { unit: i, handler: r.handler.clone(), plugin: unit.info.id.clone() };
                if let Some(other) = routes.insert((method.clone(), r.path.clone()), route) {
                    problems.push(Error::content(
                        &unit.info.id,
                        format!("route {method} {} is also served by {}", r.path, other.plugin),
                    ));
                }
            }
        }
    }
    // Only a snapshot that will serve (it has content) opens the commit's secrets.
    let outbox = match content {
        Some(_) if !units.is_empty() => options.outbound.outbox_for(repo, commit),
        _ => Arc::new(NoOutbox) as Arc<dyn Outbox>,
    };
    let services = Arc::new(Services { content, capabilities: options.capabilities.clone(), outbox });
    Ok((Extensions { engine, limits: options.limits, units, services, functions, routes }, problems))
}

fn text_at(repo: &gix::Repository, blob: ObjectId, path: &str) -> Result<String> {
    String::from_utf8(source::read_blob(repo, blob)?).map_err(|_| Error::content(path, "not UTF-8 text"))
}

fn compile_script(engine: &Engine, path: &str, text: &str) -> Result<AST> {
    engine.compile(text).map_err(|e| match e.position().line() {
        Some(line) => Error::content(path, format!("line {line}: {}", e.err_type())),
        None => Error::content(path, e.err_type().to_string()),
    })
}

/// The script functions of `ast` by name, with their parameter counts.
fn script_functions(ast: &AST) -> BTreeMap<String, Vec<usize>> {
    let mut out: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for f in ast.iter_functions() {
        out.entry(f.name.to_string()).or_default().push(f.params.len());
    }
    out
}

fn load_plugin(
    engine: &Engine,
    repo: &gix::Repository,
    commit: ObjectId,
    config: &SiteConfig,
    name: &str,
) -> Result<Option<Unit>> {
    let dir = format!("plugins/{name}");
    let manifest_path = format!("{dir}/plugin.toml");
    if !manifest::is_name(name) {
        return Err(Error::content(
            crate::config::PATH,
            format!("plugin name {name:?} is not a plugin directory name"),
        ));
    }
    let Some(blob) = source::blob_at(repo, commit, &manifest_path)? else {
        return Err(Error::content(
            crate::config::PATH,
            format!("plugin {name:?} is enabled but {manifest_path} is missing"),
        ));
    };
    let manifest = manifest::parse(&manifest_path, name, &text_at(repo, blob, &manifest_path)?)?;
    let script_path = format!("{dir}/{}", manifest.entry);
    let Some(script_blob) = source::blob_at(repo, commit, &script_path)? else {
        return Err(Error::content(&manifest_path, format!("entry {} is missing", manifest.entry)));
    };
    let ast = compile_script(engine, &script_path, &text_at(repo, script_blob, &script_path)?)?;
    let defined = script_functions(&ast);
    let needs = |function: &str, params: usize, why: &str| -> Result<()> {
        match defined.get(function) {
            Some(arities) if arities.contains(&params) => Ok(()),
            _ => Err(Error::content(
                &manifest_path,
                format!("{why} needs `fn {function}` with {params} parameter(s) in {}", manifest.entry),
            )),
        }
    };
    for f in &manifest.filters {
        let params = if f == "page_html" { 2 } else { 1 };
        needs(f, params, &format!("filter {f}"))?;
    }
    for s in &manifest.shortcodes {
        needs(&format!("shortcode_{s}"), 2, &format!("shortcode {s}"))?;
    }
    for e in &manifest.events {
        needs(e, 1, &format!("event {e}"))?;
    }
    for r in &manifest.routes {
        needs(&r.handler, 1, &format!("route {}", r.path))?;
    }
    for f in &manifest.functions {
        if !defined.contains_key(f) {
            return Err(Error::content(&manifest_path, format!("function {f} is not defined in {}", manifest.entry)));
        }
    }
    let settings = merged_settings(name, &manifest, config)?;
    let info = UnitInfo {
        id: name.to_string(),
        declared: manifest.capabilities.clone(),
        settings: rhai::serde::to_dynamic(&settings).map_err(|e| Error::content(&manifest_path, e))?,
    };
    Ok(Some(Unit {
        info: Arc::new(info),
        ast,
        functions: manifest.functions.clone(),
        manifest: Some(manifest),
        failures: AtomicU32::new(0),
        disabled: AtomicBool::new(false),
    }))
}

/// The manifest's settings with `site.toml`'s `[plugin_settings.<name>]` on top: only known
/// keys, each of the default's type.
fn merged_settings(name: &str, manifest: &PluginManifest, config: &SiteConfig) -> Result<serde_json::Value> {
    let mut settings = manifest.settings.clone();
    let Some(overrides) = config.plugin_settings.get(name) else { return Ok(settings.into()) };
    for (key, value) in overrides {
        let fail = |m: String| Err(Error::content(crate::config::PATH, format!("plugin_settings.{name}.{key}: {m}")));
        let Some(default) = settings.get(key) else {
            let known: Vec<&str> = manifest.settings.keys().map(String::as_str).collect();
            return fail(format!("unknown setting (the plugin has: {})", known.join(", ")));
        };
        if std::mem::discriminant(default) != std::mem::discriminant(value) && !default.is_null() {
            return fail(format!("expected a value like the default {default}"));
        }
        settings.insert(key.clone(), value.clone());
    }
    Ok(settings.into())
}

/// `themes/<name>/*.rhai`: every public function becomes a template function and filter; theme
/// scripts may read the site's content.
fn load_theme_scripts(engine: &Engine, repo: &gix::Repository, commit: ObjectId, theme: &str) -> Result<Option<Unit>> {
    let dir = format!("themes/{theme}");
    let scripts: Vec<(String, ObjectId)> = source::files_under(repo, commit, &dir)?
        .into_iter()
        .filter(|(rel, _)| rel.ends_with(".rhai") && !rel.contains('/'))
        .collect();
    if scripts.is_empty() {
        return Ok(None);
    }
    let mut ast = AST::empty();
    for (rel, blob) in scripts {
        let path = format!("{dir}/{rel}");
        ast += compile_script(engine, &path, &text_at(repo, blob, &path)?)?;
    }
    let mut functions: Vec<String> =
        ast.iter_functions().filter(|f| f.access == rhai::FnAccess::Public).map(|f| f.name.to_string()).collect();
    functions.sort();
    functions.dedup();
    let info =
        UnitInfo { id: format!("theme:{theme}"), declared: vec!["content.read".into()], settings: Dynamic::UNIT };
    Ok(Some(Unit {
        info: Arc::new(info),
        ast,
        manifest: None,
        functions,
        failures: AtomicU32::new(0),
        disabled: AtomicBool::new(false),
    }))
}
