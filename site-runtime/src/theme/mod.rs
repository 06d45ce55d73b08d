//! Themes: Jinja2 templates (minijinja, auto-escaping on) and static files.
//!
//! The default theme is compiled into the server. A site theme (`themes/<name>/` in the site
//! repository, named by `site.toml`) is loaded from Git objects on top of it, so a theme only
//! needs the templates it changes. Templates see `site`, `page`/`section`, `paginator`, terms,
//! the functions `get_url` and `get_section`, and the filters `date`, `truncate`, `slugify`,
//! `markdown` and `json` beside minijinja's own. `theme.toml` may add sources to the
//! Content-Security-Policy ([`csp`]).

pub mod csp;
mod filters;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gix::ObjectId;
use minijinja::{Environment, Value};
use serde::Deserialize;

use crate::config::SiteConfig;
use crate::error::{Error, Result};
use crate::extensions::Extensions;
use crate::index::read::DocRow;
use crate::source;

/// Instructions one render may execute: a template that loops forever is stopped with an
/// error instead of pinning a thread. Generous: a 100-item listing uses well under 1%.
const TEMPLATE_FUEL: u64 = 5_000_000;

/// Template functions the server defines; extensions may not redefine them.
pub const BUILTIN_FUNCTIONS: &[&str] = &["get_url", "get_section", "range", "dict", "debug", "namespace"];

/// The templates of the built-in theme.
const DEFAULT_TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../themes/default/templates/base.html")),
    ("index.html", include_str!("../../themes/default/templates/index.html")),
    ("section.html", include_str!("../../themes/default/templates/section.html")),
    ("page.html", include_str!("../../themes/default/templates/page.html")),
    ("taxonomy_list.html", include_str!("../../themes/default/templates/taxonomy_list.html")),
    ("taxonomy_single.html", include_str!("../../themes/default/templates/taxonomy_single.html")),
    ("search.html", include_str!("../../themes/default/templates/search.html")),
    ("404.html", include_str!("../../themes/default/templates/404.html")),
    ("partials/page_summary.html", include_str!("../../themes/default/templates/partials/page_summary.html")),
    ("partials/pagination.html", include_str!("../../themes/default/templates/partials/pagination.html")),
    ("anchor-link.html", include_str!("../../themes/default/templates/anchor-link.html")),
    ("shortcodes/youtube.html", include_str!("../../themes/default/templates/shortcodes/youtube.html")),
    ("shortcodes/vimeo.html", include_str!("../../themes/default/templates/shortcodes/vimeo.html")),
    ("shortcodes/figure.html", include_str!("../../themes/default/templates/shortcodes/figure.html")),
    ("shortcodes/gist.html", include_str!("../../themes/default/templates/shortcodes/gist.html")),
    ("shortcodes/details.html", include_str!("../../themes/default/templates/shortcodes/details.html")),
];

/// The URL of the highlighting stylesheet every theme gets ([`crate::render::highlight`]).
pub const HIGHLIGHT_CSS: &str = "/highlight.css";

/// The static files of the built-in theme.
const DEFAULT_STATIC: &[(&str, &[u8])] = &[("/style.css", include_bytes!("../../themes/default/static/style.css"))];

/// `theme.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThemeManifest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub author: String,
    #[serde(default)]
    pub license: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub extra: BTreeMap<String, serde_json::Value>,
    /// Sources the theme adds to the edge's Content-Security-Policy, by directive ([`csp`]).
    #[serde(default)]
    pub content_security_policy: BTreeMap<String, toml::Spanned<Vec<String>>>,
}

impl ThemeManifest {
    /// The Content-Security-Policy additions, without their places in the file.
    pub fn csp_additions(&self) -> BTreeMap<String, Vec<String>> {
        self.content_security_policy.iter().map(|(d, s)| (d.clone(), s.get_ref().clone())).collect()
    }
}

/// The sections `get_section` looks up: filled once the index of the same commit is built
/// (the theme is compiled first, so a broken theme refuses a publish before the index moves).
pub type Sections = Arc<std::sync::OnceLock<Arc<BTreeMap<String, DocRow>>>>;

/// A static file of a theme.
#[derive(Debug, Clone)]
pub enum ThemeFile {
    /// Compiled into the server.
    Embedded(&'static [u8]),
    /// Made when the theme loads (the highlighting stylesheet).
    Generated(Arc<[u8]>),
    /// A blob of the site repository.
    Blob(ObjectId),
}

/// A compiled theme, ready to render.
pub struct Theme {
    name: String,
    /// What `theme.toml` adds to the Content-Security-Policy.
    csp_additions: BTreeMap<String, Vec<String>>,
    env: Environment<'static>,
    statics: HashMap<String, ThemeFile>,
    /// Templates the site's theme has (beside the built-in ones).
    own: std::collections::HashSet<String>,
    /// No template shows other documents through `get_section` or prints `site.commit`: a
    /// page's HTML depends on that page (and the site's shared parts) alone.
    stand_alone: bool,
}

impl std::fmt::Debug for Theme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Theme").field("name", &self.name).finish()
    }
}

impl Theme {
    /// The theme `site.toml` names at `commit` (over the built-in one), with `sections` for
    /// `get_section`.
    pub fn load(
        repo: &gix::Repository,
        commit: ObjectId,
        config: &SiteConfig,
        sections: Sections,
        extensions: &Arc<Extensions>,
        images: Option<ImageFunction>,
    ) -> Result<Self> {
        let mut env = base_environment(config, sections, extensions);
        if let Some(images) = images {
            env.add_function("resize_image", images.function());
        }
        let mut statics: HashMap<String, ThemeFile> =
            DEFAULT_STATIC.iter().map(|(url, bytes)| (url.to_string(), ThemeFile::Embedded(bytes))).collect();
        let mut name = "default".to_string();
        let mut csp_additions = embed_sources();
        let mut own = std::collections::HashSet::new();
        let mut stand_alone = true;
        statics.insert(HIGHLIGHT_CSS.into(), highlight_stylesheet(config)?);
        if let Some(theme) = &config.theme {
            let dir = format!("themes/{theme}");
            let manifest_path = format!("{dir}/theme.toml");
            let manifest_blob = source::blob_at(repo, commit, &manifest_path)?.ok_or_else(|| {
                Error::content(crate::config::PATH, format!("theme {theme:?} not found: no {manifest_path}"))
            })?;
            let manifest = parse_manifest(&manifest_path, &source::read_blob(repo, manifest_blob)?)?;
            for (directive, sources) in manifest.csp_additions() {
                let list = csp_additions.entry(directive).or_default();
                list.extend(sources.into_iter().filter(|s| !list.contains(s)).collect::<Vec<_>>());
            }
            name = manifest.name;
            for (rel, blob) in source::files_under(repo, commit, &format!("{dir}/templates"))? {
                if !rel.ends_with(".html") && !rel.ends_with(".xml") && !rel.ends_with(".txt") {
                    continue;
                }
                let path = format!("{dir}/templates/{rel}");
                let text = String::from_utf8(source::read_blob(repo, blob)?)
                    .map_err(|_| Error::content(&path, "template is not UTF-8"))?;
                stand_alone &= !(text.contains("get_section") || text.contains("commit"));
                env.add_template_owned(rel.clone(), text).map_err(|e| Error::content(&path, template_error(&e)))?;
                own.insert(rel);
            }
            for (rel, blob) in source::files_under(repo, commit, &format!("{dir}/static"))? {
                statics.insert(format!("/{rel}"), ThemeFile::Blob(blob));
            }
        }
        Ok(Theme { name, csp_additions, env, statics, own, stand_alone })
    }

    /// The built-in theme alone (no repository needed).
    pub fn builtin(config: &SiteConfig, sections: Sections) -> Self {
        let env = base_environment(config, sections, &Arc::new(Extensions::none()));
        let mut statics: HashMap<String, ThemeFile> =
            DEFAULT_STATIC.iter().map(|(url, bytes)| (url.to_string(), ThemeFile::Embedded(bytes))).collect();
        if let Ok(css) = highlight_stylesheet(config) {
            statics.insert(HIGHLIGHT_CSS.into(), css);
        }
        Theme {
            name: "default".into(),
            csp_additions: embed_sources(),
            env,
            statics,
            own: Default::default(),
            stand_alone: true,
        }
    }

    /// The theme's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `base` extended with the theme's additions; `None` when the theme adds nothing (the edge
    /// then sends `base` itself) or there is no base policy.
    pub fn content_security_policy(&self, base: &str) -> Option<String> {
        (!self.csp_additions.is_empty() && !base.trim().is_empty()).then(|| csp::merge(base, &self.csp_additions))
    }

    /// Whether a template exists.
    pub fn has_template(&self, name: &str) -> bool {
        self.env.get_template(name).is_ok()
    }

    /// Whether each page's HTML depends only on that page and the site's shared parts (no
    /// template reads other documents or the commit), so a publish may keep unchanged pages.
    pub fn pages_stand_alone(&self) -> bool {
        self.stand_alone
    }

    /// Whether the site's theme has template `name` itself (not only the built-in one).
    pub fn has_own_template(&self, name: &str) -> bool {
        self.own.contains(name)
    }

    /// Render template `name` with `context`.
    pub fn render(&self, name: &str, context: Value) -> std::result::Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| template_error(&e))?;
        template.render(context).map_err(|e| template_error(&e))
    }

    /// A static file of the theme, by URL.
    pub fn static_file(&self, url: &str) -> Option<&ThemeFile> {
        self.statics.get(url)
    }
}

/// What `resize_image` needs: the store of resized images and the commit's files.
pub struct ImageFunction {
    pub store: Arc<crate::images::ImageStore>,
    pub repo: gix::ThreadSafeRepository,
    pub commit: ObjectId,
}

impl ImageFunction {
    /// Zola's `resize_image(path, width, height, op="fill", format="auto", quality=75)`: a map
    /// with `url`, `width`, `height`, `orig_width`, `orig_height`. A failure (no such file, not
    /// an image) is logged and gives the original's URL with no sizes, so a page still renders.
    fn function(
        self,
    ) -> impl Fn(Option<String>, minijinja::value::Kwargs) -> std::result::Result<Value, minijinja::Error>
           + Send
           + Sync
           + 'static {
        move |path: Option<String>, kwargs: minijinja::value::Kwargs| {
            let bad = |m: String| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, m);
            let path = match path {
                Some(p) => p,
                None => kwargs.get::<String>("path")?,
            };
            let width: Option<u32> = kwargs.get("width")?;
            let height: Option<u32> = kwargs.get("height")?;
            let op: Option<String> = kwargs.get("op")?;
            let format: Option<String> = kwargs.get("format")?;
            let quality: Option<u8> = kwargs.get("quality")?;
            kwargs.assert_all_used()?;
            let op = crate::images::Op::parse(op.as_deref().unwrap_or("fill")).map_err(bad)?;
            let quality = quality.unwrap_or(75).clamp(1, 100);
            let request =
                crate::images::Request { width, height, op, format: format.unwrap_or_else(|| "auto".into()), quality };
            let repo = self.repo.to_thread_local();
            let mut last = String::new();
            for candidate in crate::images::candidates(&path) {
                match self.store.resize(&repo, self.commit, &candidate, &request) {
                    Ok(resized) => return Ok(Value::from(minijinja::value::Serde(resized))),
                    Err(e) => last = e,
                }
            }
            tracing::warn!(%path, error = %last, "resize_image failed");
            let url = if path.starts_with('/') { path.clone() } else { format!("/{path}") };
            Ok(
                minijinja::context! { url => url, width => 0, height => 0, orig_width => 0, orig_height => 0, error => last },
            )
        }
    }
}

/// Where the built-in `youtube` and `vimeo` shortcodes' players come from: every theme's policy
/// allows framing these two (and nothing else it does not declare).
fn embed_sources() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        "frame-src".to_string(),
        vec!["https://www.youtube-nocookie.com".to_string(), "https://player.vimeo.com".to_string()],
    )])
}

/// The highlighting stylesheet for `site.toml`'s `[markdown]` themes.
/// Made once per pair of themes: loading the theme set and writing the CSS cost every publish
/// about 7 ms.
fn highlight_stylesheet(config: &SiteConfig) -> Result<ThemeFile> {
    type Made = std::sync::Mutex<HashMap<(String, Option<String>), Arc<[u8]>>>;
    static MADE: std::sync::LazyLock<Made> = std::sync::LazyLock::new(Default::default);
    let m = &config.markdown;
    let key = (m.highlight_theme.clone(), m.highlight_theme_dark.clone());
    if let Some(css) = MADE.lock().ok().and_then(|made| made.get(&key).cloned()) {
        return Ok(ThemeFile::Generated(css));
    }
    let css = crate::render::highlight::stylesheet(&m.highlight_theme, m.highlight_theme_dark.as_deref())
        .map_err(|e| Error::content(crate::config::PATH, e))?;
    let css: Arc<[u8]> = Arc::from(css.into_bytes());
    if let Ok(mut made) = MADE.lock() {
        made.insert(key, css.clone());
    }
    Ok(ThemeFile::Generated(css))
}

/// The names of the templates a site has at `commit` with `config`: the built-in ones and its
/// theme's (`themes/<name>/templates/…`), without compiling them.
pub fn template_names(
    repo: &gix::Repository,
    commit: ObjectId,
    config: &SiteConfig,
) -> Result<std::collections::BTreeSet<String>> {
    let mut names: std::collections::BTreeSet<String> = DEFAULT_TEMPLATES.iter().map(|(n, _)| n.to_string()).collect();
    if let Some(theme) = &config.theme {
        for (rel, _) in source::files_under(repo, commit, &format!("themes/{theme}/templates"))? {
            names.insert(rel);
        }
    }
    Ok(names)
}

/// Escape text for HTML content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Parse `theme.toml`; errors name the file and line.
pub fn parse_manifest(path: &str, bytes: &[u8]) -> Result<ThemeManifest> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::content(path, "not UTF-8"))?;
    let manifest: ThemeManifest =
        toml::from_str(text).map_err(|e| Error::content(path, crate::error::toml_message(&e, text)))?;
    if manifest.name.trim().is_empty() {
        return Err(Error::content(path, "name must not be empty"));
    }
    for (directive, sources) in &manifest.content_security_policy {
        if let Err(why) = csp::check(directive, sources.get_ref()) {
            let line = crate::error::line_at(text, sources.span().start);
            return Err(Error::content(path, format!("line {line}: content_security_policy: {why}")));
        }
    }
    Ok(manifest)
}

/// A template error with its template name and line, on one line.
fn template_error(e: &minijinja::Error) -> String {
    let mut text = match (e.line(), e.detail()) {
        (Some(line), Some(detail)) => format!("line {line}: {}: {detail}", e.kind()),
        (Some(line), None) => format!("line {line}: {}", e.kind()),
        _ => e.to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A template function or filter backed by an extension: arguments and result cross as JSON.
fn extension_function(
    extensions: Arc<Extensions>,
    name: String,
) -> impl Fn(minijinja::value::Rest<Value>) -> std::result::Result<Value, minijinja::Error> + Send + Sync + 'static {
    move |args: minijinja::value::Rest<Value>| {
        let args: Vec<serde_json::Value> = args.iter().map(|a| serde_json::to_value(a).unwrap_or_default()).collect();
        extensions
            .call_function(&name, args)
            .map(|v| Value::from(minijinja::value::Serde(v)))
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
    }
}

fn base_environment(config: &SiteConfig, sections: Sections, extensions: &Arc<Extensions>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    // Limits so a template cannot loop the server forever.
    env.set_recursion_limit(64);
    env.set_fuel(Some(TEMPLATE_FUEL));
    filters::register(&mut env);
    // Escape like Jinja2's MarkupSafe (& < > " '), not also `/` as minijinja does by default:
    // URLs in attributes stay readable and nothing unsafe gets through.
    env.set_formatter(|out, state, value| {
        if matches!(state.auto_escape(), minijinja::AutoEscape::Html) && !value.is_safe() {
            if let Some(text) = value.as_str() {
                return out.write_str(&html_escape(text)).map_err(minijinja::Error::from);
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    let base = config.base().to_string();
    env.add_function("get_url", move |path: String| -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path
        } else {
            format!("{base}/{}", path.trim_start_matches('/'))
        }
    });
    env.add_function("get_section", move |url: String| -> Value {
        let key = if url.ends_with('/') { url } else { format!("{url}/") };
        let sections = sections.get().map(|s| s.get(&key).cloned()).unwrap_or_default();
        sections.map(|s| Value::from(minijinja::value::Serde(s))).unwrap_or(Value::UNDEFINED)
    });
    for name in extensions.function_names() {
        env.add_function(name.clone(), extension_function(extensions.clone(), name.clone()));
        env.add_filter(name.clone(), extension_function(extensions.clone(), name));
    }
    for (name, source) in DEFAULT_TEMPLATES {
        // The built-in templates are tested; failing here is a build error, not input.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!(template = name, error = %e, "built-in template does not compile");
        }
    }
    env
}

/// Check that a template compiles, the way [`Theme::load`] would compile it; the error names
/// the line.
pub fn check_template(name: &str, source: &str) -> std::result::Result<(), String> {
    let mut env = Environment::new();
    env.add_template_owned(name.to_string(), source.to_string()).map_err(|e| template_error(&e))
}
