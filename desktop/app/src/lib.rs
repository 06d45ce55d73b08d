//! WhisperCMS Desktop's backend: every screen and action, as answers to requests on the app's
//! own `wcms://` scheme. The window (`main.rs`, Tauri) only forwards requests here; no network
//! port is opened and the web view has no other way to the files, Git or keys.
//!
//! - `wcms://localhost/…`: the app's screens (HTML rendered by [`views`]), its two assets, and
//!   its actions (`POST /api/…`, called by `assets/app.js`);
//! - `wcms://preview/…`: the site itself, rendered from the folder by the server's own runtime
//!   ([`desktop_core::preview`]), shown in the editor's preview frame.
//!
//! Handling is plain Rust without a window, so the screens are tested without a display.

pub mod settings;
pub mod views;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use desktop_core::pages::{Page, Value};
use desktop_core::preview::Preview;
use desktop_core::Workspace;
use githost::client::{Connection, HostKeyPolicy, HttpConnection, HttpOptions, Remote, RemoteUrl, SshOptions, Token};
use tokio::sync::Mutex;

pub use settings::Settings;

/// A request from the web view.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// `localhost` (the app) or `preview` (the site).
    pub host: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    fn html(body: String) -> Response {
        Response { status: 200, content_type: "text/html; charset=utf-8".into(), body: body.into_bytes() }
    }

    fn json(value: serde_json::Value) -> Response {
        Response { status: 200, content_type: "application/json".into(), body: value.to_string().into_bytes() }
    }

    fn error(status: u16, message: &str) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8".into(), body: message.as_bytes().to_vec() }
    }
}

/// An open site and its preview.
struct Session {
    ws: Workspace,
    preview: Preview,
}

/// The app's state.
pub struct App {
    settings_path: PathBuf,
    settings: Mutex<Settings>,
    session: Mutex<Option<Arc<Session>>>,
}

/// Parse an `application/x-www-form-urlencoded` body or query.
fn form(bytes: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default().into_iter().collect()
}

/// `~/x` → the home folder's `x`.
fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

impl App {
    /// The app with the settings at `settings_path` (the site they name is opened).
    pub fn new(settings_path: PathBuf) -> anyhow::Result<App> {
        let settings = Settings::load(&settings_path)?;
        let app = App { settings_path, settings: Mutex::new(settings.clone()), session: Mutex::new(None) };
        if let Some(site) = &settings.site {
            match Self::open_session(site) {
                Ok(s) => *app.session.try_lock()? = Some(Arc::new(s)),
                Err(e) => {
                    tracing::warn!(site = %site.display(), error = %e, "the site folder of the settings cannot be opened")
                }
            }
        }
        Ok(app)
    }

    fn open_session(dir: &std::path::Path) -> anyhow::Result<Session> {
        let ws = Workspace::open(dir)?;
        let preview = Preview::open(&ws)?;
        Ok(Session { ws, preview })
    }

    async fn session(&self) -> Option<Arc<Session>> {
        self.session.lock().await.clone()
    }

    /// Answer one request.
    pub async fn handle(&self, request: Request) -> Response {
        let result = if request.host == "preview" { self.preview(&request).await } else { self.app(&request).await };
        result.unwrap_or_else(|e| {
            tracing::warn!(path = %request.path, error = %e, "request failed");
            Response::error(500, &e.to_string())
        })
    }

    async fn preview(&self, request: &Request) -> anyhow::Result<Response> {
        let Some(s) = self.session().await else { return Ok(Response::error(404, "no site is open")) };
        let session = s.clone();
        tokio::task::spawn_blocking(move || session.preview.refresh(&session.ws)).await??;
        // `_preview` only makes the frame reload (see assets/app.js); the site never sees it.
        let query: Vec<&str> =
            request.query.split('&').filter(|p| !p.is_empty() && !p.starts_with("_preview=")).collect();
        let target =
            if query.is_empty() { request.path.clone() } else { format!("{}?{}", request.path, query.join("&")) };
        let answer = s.preview.get(&target).await?;
        Ok(Response { status: answer.status, content_type: answer.content_type, body: answer.body })
    }

    async fn status_line(&self, s: &Session) -> String {
        let changes = s.ws.changes().map(|c| c.len()).unwrap_or(0);
        let unpublished = s.ws.unpublished("main").unwrap_or(0);
        match (changes, unpublished) {
            (0, 0) => "In sync: everything is published.".into(),
            (c, 0) => format!("{c} change(s) kept on this computer, not published yet."),
            (0, u) => format!("{u} save(s) waiting to be published."),
            (c, u) => format!("{c} change(s) and {u} save(s) waiting to be published."),
        }
    }

    async fn app(&self, r: &Request) -> anyhow::Result<Response> {
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/app.css") => {
                return Ok(Response {
                    status: 200,
                    content_type: "text/css".into(),
                    body: include_bytes!("../assets/app.css").to_vec(),
                })
            }
            ("GET", "/app.js") => {
                return Ok(Response {
                    status: 200,
                    content_type: "text/javascript".into(),
                    body: include_bytes!("../assets/app.js").to_vec(),
                })
            }
            ("GET", "/welcome") => return self.welcome().await,
            ("POST", "/api/setup") => return self.setup(&form(&r.body)).await,
            _ => {}
        }
        let Some(s) = self.session().await else { return self.welcome().await };
        let status = self.status_line(&s).await;
        let query = form(r.query.as_bytes());
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/") | ("GET", "/pages") => {
                let list = desktop_core::pages::list(&s.ws)?;
                let q = query.get("q").cloned().unwrap_or_default();
                Ok(Response::html(views::page("Pages", "pages", &status, views::pages(&list, &q))))
            }
            ("GET", "/edit") => {
                let path = query.get("path").cloned().unwrap_or_default();
                let page = Page::read(&s.ws, &path)?;
                let text = page.to_text();
                let url = site_url(&path, &text);
                let problems: Vec<_> = s.ws.check("main")?.into_iter().filter(|p| p.path == path).collect();
                let e = views::Editor {
                    title: page.get("title").unwrap_or_default(),
                    date: page.get("date").unwrap_or_default(),
                    draft: page.get("draft").as_deref() == Some("true"),
                    tags: page.get_list("tags").unwrap_or_default().join(", "),
                    body: page.body.trim_start_matches('\n').to_string(),
                    yaml: page.yaml().map(str::to_string),
                    preview_url: format!("wcms://preview{url}"),
                    problems,
                    path,
                };
                Ok(Response::html(views::page(&e.title.clone(), "pages", &status, views::editor(e))))
            }
            ("POST", "/api/page") => self.write_page(&s, &form(&r.body)).await,
            ("POST", "/api/new") => {
                let f = form(&r.body);
                let page = Page::new_in(
                    &s.ws,
                    f.get("section").map(String::as_str).unwrap_or("content"),
                    f.get("title").map(String::as_str).unwrap_or(""),
                )?;
                page.write(&s.ws)?;
                Ok(Response::json(serde_json::json!({ "edit": format!("/edit?path={}", page.path) })))
            }
            ("POST", "/api/save") => {
                let f = form(&r.body);
                let message =
                    f.get("message").filter(|m| !m.trim().is_empty()).cloned().unwrap_or_else(|| "Edits".into());
                let author = self.settings.lock().await.author();
                let saved = s.ws.save(&message, &author)?;
                Ok(Response::json(
                    serde_json::json!({ "saved": saved.map(|c| c.to_string()), "status": self.status_line(&s).await }),
                ))
            }
            ("GET", "/publish") => {
                let changes: Vec<String> =
                    s.ws.changes()?
                        .iter()
                        .map(|c| match c {
                            desktop_core::worktree::Change::Added(p) => format!("New: {p}"),
                            desktop_core::worktree::Change::Modified(p) => format!("Changed: {p}"),
                            desktop_core::worktree::Change::Deleted(p) => format!("Removed: {p}"),
                        })
                        .collect();
                let problems = s.ws.check("main")?;
                let view = views::publish(&changes, s.ws.unpublished("main")?, &problems);
                Ok(Response::html(views::page("Publish", "publish", &status, view)))
            }
            ("POST", "/api/publish") => self.publish(&s, &form(&r.body)).await,
            ("GET", "/history") => {
                Ok(Response::html(views::page("History", "history", &status, views::history(&s.ws.history(200)?))))
            }
            _ => Ok(Response::error(404, "no such screen")),
        }
    }

    async fn welcome(&self) -> anyhow::Result<Response> {
        let settings = self.settings.lock().await.clone();
        let status = if self.session().await.is_some() { "A site is open." } else { "No site open yet." };
        Ok(Response::html(views::page("Your site", "welcome", status, views::welcome(&settings))))
    }

    /// The wizard's answer: clone the site (or start a new one), remember it, open it.
    async fn setup(&self, f: &HashMap<String, String>) -> anyhow::Result<Response> {
        let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let Some(folder) = get("folder").map(|p| expand(&p)) else {
            return Ok(Response::json(serde_json::json!({ "error": "Choose a folder for the site." })));
        };
        let mut settings = self.settings.lock().await.clone();
        settings.name = get("name").unwrap_or_default();
        settings.email = get("email").unwrap_or_default();
        let outcome = if get("how").as_deref() == Some("new") {
            Workspace::create_from_starter(&folder, &settings.author()).map(drop).map_err(anyhow::Error::from)
        } else {
            settings.remote = get("remote");
            settings.key = get("key").map(|k| expand(&k));
            settings.host_key_fingerprint = get("fingerprint");
            match (settings.remote.clone(), connect(&settings).await) {
                (Some(url), Ok(remote)) => {
                    Workspace::clone_from(&remote, &url, &folder).await.map(drop).map_err(anyhow::Error::from)
                }
                (None, _) => Err(anyhow::anyhow!("Give the server's address.")),
                (_, Err(e)) => Err(e),
            }
        };
        if let Err(e) = outcome {
            return Ok(Response::json(serde_json::json!({ "error": e.to_string() })));
        }
        settings.site = Some(folder.clone());
        settings.save(&self.settings_path)?;
        *self.settings.lock().await = settings;
        *self.session.lock().await = Some(Arc::new(Self::open_session(&folder)?));
        Ok(Response::json(serde_json::json!({ "go": "/pages" })))
    }

    /// Autosave of the editor: the page written to disk (not committed), its problems.
    async fn write_page(&self, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
        let path = f.get("path").cloned().unwrap_or_default();
        let mut page = Page::read(&s.ws, &path)?;
        if page.yaml().is_none() {
            if let Some(t) = f.get("title") {
                page.set("title", Value::Text(t.clone()))?;
            }
            match f.get("date").map(|d| d.trim()).filter(|d| !d.is_empty()) {
                Some(d) => page.set("date", Value::Date(d.to_string()))?,
                None => page.remove("date"),
            }
            page.set("draft", Value::Bool(f.get("draft").is_some()))?;
            let tags: Vec<String> = f
                .get("tags")
                .map(|t| t.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default();
            if tags.is_empty() {
                page.remove("tags");
            } else {
                page.set("tags", Value::List(tags))?;
            }
        }
        if let Some(body) = f.get("body") {
            page.body = format!("\n{}", body.trim_start_matches('\n'));
        }
        page.write(&s.ws)?;
        let problems: Vec<_> = s.ws.check("main")?.into_iter().filter(|p| p.path == path).collect();
        let rendered = views::problem_list(&problems);
        use leptos::prelude::RenderHtml as _;
        Ok(Response::json(serde_json::json!({
            "saved": true,
            "url": format!("wcms://preview{}", site_url(&path, &page.to_text())),
            "problems": rendered.to_html(),
            "status": self.status_line(s).await,
        })))
    }

    /// Save what is unsaved, then publish to `branch`; catch up once if someone published first.
    async fn publish(&self, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
        let settings = self.settings.lock().await.clone();
        let branch = if f.get("branch").map(String::as_str) == Some("admin") { "admin" } else { "main" };
        let message = f
            .get("message")
            .filter(|m| !m.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| "Edits from WhisperCMS Desktop".into());
        s.ws.save(&message, &settings.author())?;
        let remote = match connect(&settings).await {
            Ok(r) => r,
            Err(e) => {
                let text = format!("Offline: your changes are saved on this computer and will publish when the server is reachable ({e}).");
                return Ok(Response::json(
                    serde_json::json!({ "html": format!("<p class=\"problems\">{}</p>", escape(&text)), "status": self.status_line(s).await }),
                ));
            }
        };
        let mut outcome = s.ws.publish(&remote, branch).await?;
        if outcome == desktop_core::sync::Published::Behind {
            if let desktop_core::sync::CaughtUp::Updated { .. } =
                s.ws.catch_up(&remote, branch, &settings.author()).await?
            {
                outcome = s.ws.publish(&remote, branch).await?;
            }
        }
        if let Remote::Ssh(c) = remote {
            c.close().await;
        }
        Ok(Response::json(
            serde_json::json!({ "html": views::published(&outcome), "status": self.status_line(s).await }),
        ))
    }
}

/// Connect to the settings' server.
async fn connect(settings: &Settings) -> anyhow::Result<Remote> {
    let url = settings.remote.as_deref().ok_or_else(|| anyhow::anyhow!("no server is set"))?;
    let url = RemoteUrl::parse(url)?;
    if url.is_http() {
        let token = settings.token_file.as_deref().map(Token::from_file).transpose()?;
        return Ok(Remote::Http(HttpConnection::connect(&url, HttpOptions { token, ..HttpOptions::default() }).await?));
    }
    let key = settings.key.clone().ok_or_else(|| anyhow::anyhow!("no SSH key is set"))?;
    let fingerprint = settings
        .host_key_fingerprint
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the server's key fingerprint is not set"))?;
    Ok(Remote::Ssh(Connection::connect(&url, &SshOptions::new(key, HostKeyPolicy::Fingerprint(fingerprint))).await?))
}

/// The URL the site serves the page at `path` (its text as it is now).
fn site_url(path: &str, text: &str) -> String {
    site_runtime::content::document::parse(path, text).map(|d| d.url).unwrap_or_else(|_| "/".into())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
