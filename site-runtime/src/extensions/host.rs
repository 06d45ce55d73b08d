//! Host functions: the only way a script reaches outside the sandbox. Each call carries the
//! identity of the unit (plugin or theme) that made it, and each function that reads the site
//! or has a side effect asks [`Capabilities`] first (Cedar in the server, against the plugin's
//! name, the capabilities its manifest declares and the site's policies).
//!
//! | function                        | capability               |
//! |---------------------------------|--------------------------|
//! | `settings()`                    | —                        |
//! | `log(message)`                  | —                        |
//! | `escape_html(text)`             | —                        |
//! | `site_page(url)`                | `content.read`           |
//! | `site_pages(section, limit)`    | `content.read`           |
//! | `site_search(query, limit)`     | `content.read`           |
//! | `site_sections()`               | `content.read`           |
//! | `site_terms(taxonomy)`          | `content.read`           |
//! | `site_term_pages(tax, slug, n)` | `content.read`           |
//! | `webhook(name, payload)`        | `outbound.webhook:<name>`|
//! | `http_send(endpoint, payload)`  | `outbound.http:<name>`   |
//! | `mail_send(message)`            | `mail.send`              |
//!
//! Webhooks are queued to the snapshot's [`Outbox`] (made by the server's [`Outbound`] from the
//! commit's `secrets/`): the URL and token never reach the script, and the call returns at once
//! with `true` or an error that names the webhook, never where it goes.

use std::sync::Arc;

use gix::ObjectId;
use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext};

use crate::error::Result;
use crate::index::read;
use crate::snapshot::{Pool, Read};

/// Read-only access to the index of one commit, for `content.read`.
pub trait ContentHost: Send + Sync {
    /// The document at `url`, published now.
    fn page(&self, url: &str) -> Result<Option<serde_json::Value>>;
    /// Pages of the section at `url` (`/` for every dated page), newest first, without content.
    fn pages(&self, section: &str, limit: usize) -> Result<Vec<serde_json::Value>>;
    /// Full-text search.
    fn search(&self, query: &str, limit: usize) -> Result<Vec<serde_json::Value>>;
    /// Every section, without content.
    fn sections(&self) -> Result<Vec<serde_json::Value>>;
    /// Terms of a taxonomy with their page counts.
    fn terms(&self, taxonomy: &str) -> Result<Vec<serde_json::Value>>;
    /// Pages with a term, newest first, without content.
    fn term_pages(&self, taxonomy: &str, slug: &str, limit: usize) -> Result<Vec<serde_json::Value>>;
}

/// Decides whether unit `unit` (a plugin name, or `theme:<name>`) that declared `declared`
/// may use `capability` now.
pub trait Capabilities: Send + Sync {
    fn check(&self, unit: &str, declared: &[String], capability: &str) -> std::result::Result<(), String>;
}

/// Queues outbound webhook deliveries.
pub trait Outbox: Send + Sync {
    /// Queue `payload` for the webhook `name`; an error if the server has no such webhook.
    fn send(&self, name: &str, payload: serde_json::Value) -> std::result::Result<(), String>;
    /// Queue `payload` for the site's endpoint `endpoint` (the server adds its secret header).
    fn request(&self, endpoint: &str, payload: serde_json::Value) -> std::result::Result<(), String> {
        let _ = payload;
        Err(format!("the site has no endpoint named {endpoint:?}"))
    }
    /// Queue a mail to one of the site's recipients (`to`: `None` for the first); an error if
    /// the site has no mail settings or the message breaks a rule (see [`super::mail`]).
    fn mail(
        &self,
        subject: &str,
        text: &str,
        to: Option<&str>,
        reply_to: Option<&str>,
    ) -> std::result::Result<(), String> {
        let _ = (subject, text, to, reply_to);
        Err("the site has no mail settings (secrets/mail.yaml)".into())
    }
}

/// Makes the [`Outbox`] of each snapshot: the server's, with the secrets of that commit.
pub trait Outbound: Send + Sync {
    fn outbox_for(&self, repo: &gix::Repository, commit: ObjectId) -> Arc<dyn Outbox>;
}

/// No side effects leave (tests, validation, the desktop's preview).
pub struct NoOutbound;

impl Outbound for NoOutbound {
    fn outbox_for(&self, _repo: &gix::Repository, _commit: ObjectId) -> Arc<dyn Outbox> {
        Arc::new(NoOutbox)
    }
}

/// Capabilities without a policy engine: a unit may use what it declared, except side effects
/// (outbound webhooks, mail), which need a site policy to grant them. The server replaces this with
/// its Cedar policies.
pub struct DeclaredOnly;

impl Capabilities for DeclaredOnly {
    fn check(&self, unit: &str, declared: &[String], capability: &str) -> std::result::Result<(), String> {
        if !declared.iter().any(|d| d == capability) {
            return Err(format!("{unit} did not declare the capability {capability}"));
        }
        if capability.starts_with("outbound.") || capability.starts_with("mail.") {
            return Err(format!("no policy grants {unit} the capability {capability}"));
        }
        Ok(())
    }
}

/// No webhooks configured.
pub struct NoOutbox;

impl Outbox for NoOutbox {
    fn send(&self, name: &str, _payload: serde_json::Value) -> std::result::Result<(), String> {
        Err(format!("the server has no webhook named {name:?}"))
    }
}

/// What the host functions can reach, for one snapshot.
pub struct Services {
    pub content: Option<Arc<dyn ContentHost>>,
    pub capabilities: Arc<dyn Capabilities>,
    pub outbox: Arc<dyn Outbox>,
}

/// The identity of the running unit, passed to host functions as the call's tag.
#[derive(Clone)]
pub(crate) struct CallEnv {
    pub unit: Arc<UnitInfo>,
    pub services: Arc<Services>,
}

/// What host functions know of a unit.
pub(crate) struct UnitInfo {
    /// Plugin name, or `theme:<name>`.
    pub id: String,
    pub declared: Vec<String>,
    pub settings: Dynamic,
}

type HostResult = std::result::Result<Dynamic, Box<EvalAltResult>>;

fn env(ctx: &NativeCallContext) -> std::result::Result<CallEnv, Box<EvalAltResult>> {
    ctx.tag()
        .and_then(|t| t.read_lock::<CallEnv>().map(|e| e.clone()))
        .ok_or_else(|| "host function called outside a plugin call".into())
}

fn allowed(env: &CallEnv, capability: &str) -> std::result::Result<(), Box<EvalAltResult>> {
    env.services.capabilities.check(&env.unit.id, &env.unit.declared, capability).map_err(|e| {
        tracing::warn!(unit = %env.unit.id, capability, reason = %e, "capability denied");
        format!("capability denied: {e}").into()
    })
}

fn content(env: &CallEnv) -> std::result::Result<Arc<dyn ContentHost>, Box<EvalAltResult>> {
    allowed(env, "content.read")?;
    env.services.content.clone().ok_or_else(|| "the site's content is not available here".into())
}

fn to_dynamic<T: serde::Serialize>(value: T) -> HostResult {
    rhai::serde::to_dynamic(value)
}

fn host_error(e: crate::Error) -> Box<EvalAltResult> {
    format!("site: {e}").into()
}

/// Register the host functions on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn("settings", |ctx: NativeCallContext| -> HostResult { Ok(env(&ctx)?.unit.settings.clone()) });
    engine.register_fn("log", |ctx: NativeCallContext, message: &str| -> HostResult {
        let env = env(&ctx)?;
        tracing::info!(target: "whispercms::plugin", unit = %env.unit.id, "{message}");
        Ok(Dynamic::UNIT)
    });
    engine.register_fn("escape_html", |text: &str| -> String { crate::theme::html_escape(text) });
    engine.register_fn(
        "site_term_pages",
        |ctx: NativeCallContext, taxonomy: &str, slug: &str, limit: i64| -> HostResult {
            let host = content(&env(&ctx)?)?;
            to_dynamic(host.term_pages(taxonomy, slug, limit.clamp(0, 1000) as usize).map_err(host_error)?)
        },
    );
    engine.register_fn("site_page", |ctx: NativeCallContext, url: &str| -> HostResult {
        let host = content(&env(&ctx)?)?;
        to_dynamic(host.page(url).map_err(host_error)?)
    });
    engine.register_fn("site_pages", |ctx: NativeCallContext, section: &str, limit: i64| -> HostResult {
        let host = content(&env(&ctx)?)?;
        to_dynamic(host.pages(section, limit.clamp(0, 1000) as usize).map_err(host_error)?)
    });
    engine.register_fn("site_search", |ctx: NativeCallContext, query: &str, limit: i64| -> HostResult {
        let host = content(&env(&ctx)?)?;
        to_dynamic(host.search(query, limit.clamp(0, 200) as usize).map_err(host_error)?)
    });
    engine.register_fn("site_sections", |ctx: NativeCallContext| -> HostResult {
        let host = content(&env(&ctx)?)?;
        to_dynamic(host.sections().map_err(host_error)?)
    });
    engine.register_fn("site_terms", |ctx: NativeCallContext, taxonomy: &str| -> HostResult {
        let host = content(&env(&ctx)?)?;
        to_dynamic(host.terms(taxonomy).map_err(host_error)?)
    });
    engine.register_fn("webhook", |ctx: NativeCallContext, name: &str, payload: Dynamic| -> HostResult {
        let env = env(&ctx)?;
        allowed(&env, &format!("outbound.webhook:{name}"))?;
        let payload: serde_json::Value = rhai::serde::from_dynamic(&payload)?;
        env.services.outbox.send(name, payload).map_err(|e| -> Box<EvalAltResult> { e.into() })?;
        tracing::info!(unit = %env.unit.id, webhook = name, "webhook queued");
        Ok(Dynamic::TRUE)
    });
    engine.register_fn("http_send", |ctx: NativeCallContext, endpoint: &str, payload: Dynamic| -> HostResult {
        let env = env(&ctx)?;
        allowed(&env, &format!("outbound.http:{endpoint}"))?;
        let payload: serde_json::Value = rhai::serde::from_dynamic(&payload)?;
        env.services.outbox.request(endpoint, payload).map_err(|e| -> Box<EvalAltResult> { e.into() })?;
        tracing::info!(unit = %env.unit.id, endpoint, "request queued");
        Ok(Dynamic::TRUE)
    });
    engine.register_fn("mail_send", |ctx: NativeCallContext, message: rhai::Map| -> HostResult {
        let env = env(&ctx)?;
        allowed(&env, "mail.send")?;
        let field = |key: &str| -> std::result::Result<Option<String>, Box<EvalAltResult>> {
            match message.get(key) {
                None => Ok(None),
                Some(v) if v.is_unit() => Ok(None),
                Some(v) => v
                    .clone()
                    .into_string()
                    .map(Some)
                    .map_err(|t| format!("mail: `{key}` must be a string, not {t}").into()),
            }
        };
        if let Some(other) = message.keys().find(|k| !["subject", "text", "to", "reply_to"].contains(&k.as_str())) {
            return Err(format!("mail: unknown field `{other}` (subject, text, to, reply_to)").into());
        }
        let subject = field("subject")?.unwrap_or_default();
        let text = field("text")?.unwrap_or_default();
        let (to, reply_to) = (field("to")?, field("reply_to")?);
        env.services
            .outbox
            .mail(&subject, &text, to.as_deref(), reply_to.as_deref())
            .map_err(|e| -> Box<EvalAltResult> { e.into() })?;
        tracing::info!(unit = %env.unit.id, "mail queued");
        Ok(Dynamic::TRUE)
    });
}

/// [`ContentHost`] over a branch's index at one commit.
pub(crate) struct IndexHost {
    pub pool: Arc<Pool>,
    pub commit: ObjectId,
    /// The language plugins read in (the site's default).
    pub(crate) lang: String,
}

impl IndexHost {
    fn read<T>(&self, f: impl FnOnce(&rusqlite::Connection, i64) -> Result<T>) -> Result<T> {
        let now = jiff::Timestamp::now().as_second();
        match self.pool.read_at(self.commit, |conn| f(conn, now))? {
            Read::Done(v) => Ok(v),
            Read::Stale => Err(crate::Error::Git(format!("the site moved on from {}", self.commit))),
        }
    }
}

/// A page for scripts: everything but the rendered content (which listings do not need).
fn summary(mut doc: read::DocRow) -> serde_json::Value {
    doc.content = String::new();
    serde_json::to_value(doc).unwrap_or_default()
}

impl ContentHost for IndexHost {
    fn page(&self, url: &str) -> Result<Option<serde_json::Value>> {
        self.read(|conn, now| {
            let doc = read::document(conn, url, now)?;
            Ok(doc.map(|d| read::with_terms(conn, d)).transpose()?.map(|d| serde_json::to_value(d).unwrap_or_default()))
        })
    }

    fn pages(&self, section: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        self.read(|conn, now| {
            let (pages, _) = if section == "/" {
                read::dated_pages(conn, &self.lang, limit, 0, now)?
            } else {
                read::section_pages(conn, section, None, limit, 0, now)?
            };
            Ok(pages.into_iter().map(summary).collect())
        })
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        self.read(|conn, now| {
            let hits = read::search(conn, query, &self.lang, limit, now)?;
            Ok(hits.into_iter().map(|h| serde_json::to_value(h).unwrap_or_default()).collect())
        })
    }

    fn sections(&self) -> Result<Vec<serde_json::Value>> {
        self.read(|conn, _| Ok(read::sections(conn)?.into_iter().map(summary).collect()))
    }

    fn terms(&self, taxonomy: &str) -> Result<Vec<serde_json::Value>> {
        self.read(|conn, now| {
            let terms = read::terms(conn, taxonomy, &self.lang, now)?;
            Ok(terms.into_iter().map(|t| serde_json::to_value(t).unwrap_or_default()).collect())
        })
    }

    fn term_pages(&self, taxonomy: &str, slug: &str, limit: usize) -> Result<Vec<serde_json::Value>> {
        self.read(|conn, now| {
            let (pages, _) = read::term_pages(conn, taxonomy, slug, &self.lang, limit, 0, now)?;
            Ok(pages.into_iter().map(summary).collect())
        })
    }
}
