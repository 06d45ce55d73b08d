//! WhisperCMS Desktop's backend: every screen and action, as answers to requests on the app's
//! own `wcms://` scheme. The window (`main.rs`, Tauri) only forwards requests here; no network
//! port is opened and the web view has no other way to the files, Git or keys.
//!
//! - `wcms://localhost/…`: the app's screens (HTML rendered by [`screens`]), its two assets, and
//!   its actions (`POST /api/…`, called by `assets/app.js`, answered in JSON: `go` to navigate,
//!   `html` to show, `error` to explain);
//! - `wcms://preview/…`: the site itself, rendered from the folder by the server's own runtime
//!   ([`desktop_core::preview`]), shown in the editor's preview frame and the media library.
//!
//! Handling is plain Rust without a window, so the screens are tested without a display.

mod screens;
pub mod settings;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use desktop_core::preview::Preview;
use desktop_core::Workspace;
use githost::client::{Connection, HostKeyPolicy, HttpConnection, HttpOptions, Remote, RemoteUrl, SshOptions, Token};
use tokio::sync::Mutex;

pub use settings::Settings;

/// The origin of the app's own screens.
pub const APP_ORIGIN: &str = "wcms://localhost";

/// A request from the web view.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// `localhost` (the app) or `preview` (the site).
    pub host: String,
    pub path: String,
    pub query: String,
    pub body: Vec<u8>,
    /// The web view loads this as a page: a form it submitted itself, not the app's script
    /// asking (which says `Accept: application/json`). An action's answer is then a page
    /// ([`screens::answer`]).
    pub navigation: bool,
    /// The origin of the page that sent it (`wcms://localhost` for the app's own screens): the
    /// `Origin` header, else the `Referer`'s scheme and host (WebKit sends a same-origin fetch
    /// with a `Referer` only); `None` when it says neither.
    pub sender: Option<String>,
}

impl Request {
    /// The query's fields.
    pub fn query(&self) -> HashMap<String, String> {
        form(self.query.as_bytes())
    }

    /// The body's fields (a form post).
    pub fn form(&self) -> HashMap<String, String> {
        form(&self.body)
    }
}

/// The answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn html(body: String) -> Response {
        Response { status: 200, content_type: "text/html; charset=utf-8".into(), body: body.into_bytes() }
    }

    pub(crate) fn json(value: serde_json::Value) -> Response {
        Response { status: 200, content_type: "application/json".into(), body: value.to_string().into_bytes() }
    }

    /// An action's answer: go to `path`.
    pub(crate) fn go(path: &str) -> Response {
        Response::json(serde_json::json!({ "go": path }))
    }

    /// An action's answer: why it could not be done, in words for the person.
    pub(crate) fn refused(message: impl std::fmt::Display) -> Response {
        Response::json(serde_json::json!({ "error": message.to_string() }))
    }

    pub(crate) fn error(status: u16, message: &str) -> Response {
        Response { status, content_type: "text/plain; charset=utf-8".into(), body: message.as_bytes().to_vec() }
    }
}

/// An open site and its preview.
pub(crate) struct Session {
    pub(crate) ws: Workspace,
    /// Opened on first use (or by the warm-up thread the app starts), not before the first
    /// screen: opening the runtime's index and theme is most of a start's time.
    preview: std::sync::Mutex<Option<Arc<Preview>>>,
}

impl Session {
    /// The site's preview, opened now if it is not yet.
    pub(crate) fn preview(&self) -> anyhow::Result<Arc<Preview>> {
        let mut slot = self.preview.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = &*slot {
            return Ok(p.clone());
        }
        let p = Arc::new(Preview::open(&self.ws)?);
        *slot = Some(p.clone());
        Ok(p)
    }
}

/// The app's state.
pub struct App {
    settings_path: PathBuf,
    settings: Mutex<Settings>,
    session: Mutex<Option<Arc<Session>>>,
    /// The extension fetched and shown last, until it is added or another is fetched.
    pub(crate) offer: Mutex<Option<desktop_core::extensions::Offer>>,
    /// A publish asked for while the server was unreachable: the branch it goes to, tried
    /// again by [`App::retry_pending`] until it gets an answer.
    pub(crate) pending: Mutex<Option<String>>,
    /// What the last publish tried in the background came to, for the status line.
    last_retry: Mutex<Option<String>>,
}

/// Parse an `application/x-www-form-urlencoded` body or query.
fn form(bytes: &[u8]) -> HashMap<String, String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default().into_iter().collect()
}

/// `~/x` → the home folder's `x`.
pub(crate) fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

impl App {
    /// The app with the settings at `settings_path` (the site they name is opened).
    /// This computer's age identity for the site's secrets (`age.key` beside the settings,
    /// made on first start, 0600), installed as the process's keyring. Call it first in `main`:
    /// it sets environment variables, so no other thread may exist yet.
    pub fn install_secrets_keyring(settings_path: &std::path::Path) -> anyhow::Result<&'static secrets::Keyring> {
        let path = settings_path.with_file_name("age.key");
        let (identity, _) = secrets::Identity::load_or_generate(&path)?;
        Ok(secrets::Keyring::install(vec![identity])?)
    }

    pub fn new(settings_path: PathBuf) -> anyhow::Result<App> {
        let settings = Settings::load(&settings_path)?;
        let app = App {
            settings_path,
            settings: Mutex::new(settings.clone()),
            session: Mutex::new(None),
            offer: Mutex::new(None),
            pending: Mutex::new(None),
            last_retry: Mutex::new(None),
        };
        if let Some(site) = &settings.site {
            match Self::open_session(site) {
                Ok(s) => *app.session.try_lock()? = Some(s),
                Err(e) => {
                    tracing::warn!(site = %site.display(), error = %e, "the site folder of the settings cannot be opened")
                }
            }
        }
        Ok(app)
    }

    /// Open the site in `dir`; its preview starts opening on a thread of its own.
    fn open_session(dir: &std::path::Path) -> anyhow::Result<Arc<Session>> {
        let ws = Workspace::open(dir)?;
        let session = Arc::new(Session { ws, preview: std::sync::Mutex::new(None) });
        Self::warm_up(session.clone());
        Ok(session)
    }

    pub(crate) async fn session(&self) -> Option<Arc<Session>> {
        self.session.lock().await.clone()
    }

    /// Open the site in `folder` and remember it with `settings`.
    pub(crate) async fn adopt(&self, mut settings: Settings, folder: PathBuf) -> anyhow::Result<()> {
        let session = Self::open_session(&folder)?;
        settings.site = Some(folder);
        settings.save(&self.settings_path)?;
        *self.settings.lock().await = settings;
        *self.session.lock().await = Some(session);
        Ok(())
    }

    /// Open the preview on a thread of its own, so that it is ready when the editor asks.
    fn warm_up(session: Arc<Session>) {
        std::thread::spawn(move || {
            if let Err(e) = session.preview() {
                tracing::warn!(error = %e, "the preview could not be opened");
            }
        });
    }

    /// Where a key made by the app goes: beside its settings (`~/.config/whispercms/id_ed25519`),
    /// apart from the person's own `~/.ssh` keys.
    pub(crate) fn new_key_path(&self) -> PathBuf {
        self.settings_path.parent().map(|d| d.join("id_ed25519")).unwrap_or_else(|| PathBuf::from("id_ed25519"))
    }

    pub(crate) async fn settings(&self) -> Settings {
        self.settings.lock().await.clone()
    }

    /// Answer one request.
    pub async fn handle(&self, request: Request) -> Response {
        // The preview frame shows the site, whose pages, theme and plugins any writer pushed: a
        // script there could post to the app's actions (add a person, set a secret, publish).
        // Only the app's own screens may.
        if request.host != "preview" && request.method != "GET" && request.sender.as_deref() != Some(APP_ORIGIN) {
            tracing::warn!(path = %request.path, sender = ?request.sender, "refused an action not sent by the app's screens");
            return Response::error(403, "refused: only the app's own screens can do this");
        }
        let result = if request.host == "preview" {
            self.preview(&request).await
        } else if request.navigation && request.method == "POST" {
            self.submitted(&request).await
        } else {
            self.app(&request).await
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(path = %request.path, error = %e, "request failed");
            Response::error(500, &e.to_string())
        })
    }

    /// A form the web view submitted itself: asked first if it carries a question, then done,
    /// its answer shown as a page.
    async fn submitted(&self, request: &Request) -> anyhow::Result<Response> {
        let form = request.form();
        if let Some(question) = screens::answer::question(&form) {
            return Ok(screens::answer::confirm(&request.path, question, &form));
        }
        Ok(screens::answer::as_page(self.app(request).await?))
    }

    async fn preview(&self, request: &Request) -> anyhow::Result<Response> {
        let Some(s) = self.session().await else { return Ok(Response::error(404, "no site is open")) };
        let session = s.clone();
        let preview = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<Preview>> {
            let preview = session.preview()?;
            preview.refresh(&session.ws)?;
            Ok(preview)
        })
        .await??;
        // `_preview` only makes the frame reload (see assets/app.js); the site never sees it.
        let query: Vec<&str> =
            request.query.split('&').filter(|p| !p.is_empty() && !p.starts_with("_preview=")).collect();
        let target =
            if query.is_empty() { request.path.clone() } else { format!("{}?{}", request.path, query.join("&")) };
        let answer = preview.get(&target).await?;
        Ok(Response { status: answer.status, content_type: answer.content_type, body: answer.body })
    }

    /// Try again a publish asked for offline (the window calls this every half minute). Returns
    /// what happened, when something was tried.
    pub async fn retry_pending(&self) -> Option<String> {
        let branch = self.pending.lock().await.clone()?;
        let s = self.session().await?;
        let said = match screens::publish::send(self, &s, &branch, None).await {
            Ok(screens::publish::Sent::Offline(_)) => return None, // still offline: nothing new to say
            Ok(screens::publish::Sent::Answered(desktop_core::sync::Published::Done { .. }, _)) => {
                format!("Back online: your saves were published ({branch}).")
            }
            Ok(screens::publish::Sent::Answered(desktop_core::sync::Published::UpToDate, _)) => {
                *self.pending.lock().await = None;
                format!("Back online: {branch} already had your saves.")
            }
            Ok(screens::publish::Sent::Answered(..)) => {
                *self.pending.lock().await = None;
                "Back online, but the server did not take your saves: open Publish to see why.".to_string()
            }
            Err(e) => {
                *self.pending.lock().await = None;
                format!("Publishing in the background failed: {e}. Open Publish to try again.")
            }
        };
        tracing::info!(branch, outcome = %said, "background publish");
        *self.last_retry.lock().await = Some(said.clone());
        Some(said)
    }

    /// The line at the bottom of every screen: what is kept here and what is published.
    pub(crate) async fn status_line(&self, s: &Session) -> String {
        let changes = s.ws.changes().map(|c| c.len()).unwrap_or(0);
        let unpublished = s.ws.unpublished("main").unwrap_or(0);
        if let Some(said) = self.last_retry.lock().await.take() {
            return said;
        }
        if self.pending.lock().await.is_some() {
            return format!("Offline — {unpublished} save(s) will publish when you are back.");
        }
        match (changes, unpublished) {
            (0, 0) => "In sync: everything is published.".into(),
            (c, 0) => format!("{c} change(s) kept on this computer, not published yet."),
            (0, u) => format!("{u} save(s) waiting to be published."),
            (c, u) => format!("{c} change(s) and {u} save(s) waiting to be published."),
        }
    }

    async fn app(&self, r: &Request) -> anyhow::Result<Response> {
        let asset = |content_type: &str, body: &[u8]| Response {
            status: 200,
            content_type: content_type.into(),
            body: body.to_vec(),
        };
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/app.css") => return Ok(asset("text/css", include_bytes!("../assets/app.css"))),
            ("GET", "/app.js") => return Ok(asset("text/javascript", include_bytes!("../assets/app.js"))),
            ("GET", "/welcome") => return screens::welcome::show(self).await,
            ("POST", "/api/setup") => return screens::welcome::setup(self, &r.form()).await,
            ("POST", "/api/key") => return screens::welcome::new_key(self, &r.form()).await,
            ("POST", "/api/host-key") => return screens::welcome::host_key(&r.form()).await,
            _ => {}
        }
        let Some(s) = self.session().await else { return screens::welcome::show(self).await };
        let s = &*s;
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/api/status") => Ok(Response::json(serde_json::json!({ "status": self.status_line(s).await }))),
            ("GET", "/") | ("GET", "/pages") => screens::pages::show(self, s, &r.query()).await,
            ("GET", "/edit") => screens::editor::show(self, s, &r.query()).await,
            ("POST", "/api/page") => screens::editor::keep(self, s, &r.form()).await,
            ("POST", "/api/new") => screens::editor::create(s, &r.form()),
            ("POST", "/api/move") => screens::editor::move_to(s, &r.form()),
            ("POST", "/api/delete") => screens::editor::delete(s, &r.form()),
            ("POST", "/api/upload") => screens::media::upload(s, &r.query(), &r.body),
            ("GET", "/media") => screens::media::show(self, s).await,
            ("POST", "/api/save") => screens::publish::save(self, s, &r.form()).await,
            ("GET", "/publish") => screens::publish::show(self, s).await,
            ("POST", "/api/publish") => screens::publish::publish(self, s, &r.form()).await,
            ("GET", "/review") => screens::review::show(self, s).await,
            ("POST", "/api/review/publish") => screens::review::publish(self, s).await,
            ("GET", "/conflicts") => screens::publish::conflicts(self, s, &r.query()).await,
            ("POST", "/api/resolve") => screens::publish::resolve(self, s, &r.form()).await,
            ("GET", "/history") => screens::history::show(self, s).await,
            ("GET", "/history/save") => screens::history::save(self, s, &r.query()).await,
            ("POST", "/api/undo") => screens::history::undo(self, s, &r.form()).await,
            ("POST", "/api/restore") => screens::history::restore(self, s, &r.form()).await,
            ("GET", "/site") => screens::site::show(self, s).await,
            ("POST", "/api/site") => screens::site::change(s, &r.form()),
            ("POST", "/api/person") => screens::site::person(s, &r.form()),
            ("POST", "/api/secret") => screens::site::secret(s, &r.form()),
            ("POST", "/api/extension") => screens::extensions::inspect(self, s, &r.form()).await,
            ("POST", "/api/extension/add") => screens::extensions::add(self, s, &r.form()).await,
            _ => Ok(Response::error(404, "no such screen")),
        }
    }
}

/// Connect to the settings' server.
pub(crate) async fn connect(settings: &Settings) -> anyhow::Result<Remote> {
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
