//! The WhisperCMS Desktop window: Tauri 2 (WebKitGTK on Linux) showing `wcms://localhost/`.
//! Every request of the web view on the `wcms` scheme goes to [`desktop_app::App`]; the app
//! allows no Tauri commands and opens no network port.
//!
//! `whispercms-desktop [--settings FILE]` (default: `~/.config/whispercms/desktop.toml`).

use std::sync::Arc;

use desktop_app::{App, Request, Settings};
use tauri::http;

/// The app's own pages: scripts and styles from the app only; frames only of the preview.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: wcms:; \
                   frame-src wcms://preview; connect-src 'self'; form-action 'self'; base-uri 'none'";

/// WebKitGTK's caches are sized for a browser; the app shows a few local screens and one
/// preview, so it asks for the document viewer's (no memory cache of past pages) and no
/// back/forward page cache.
#[cfg(target_os = "linux")]
fn lighten(window: &tauri::WebviewWindow) {
    use webkit2gtk::{CacheModel, SettingsExt as _, WebContextExt as _, WebViewExt};
    let done = window.with_webview(|webview| {
        let view = webview.inner();
        if let Some(context) = view.context() {
            context.set_cache_model(CacheModel::DocumentViewer);
        }
        if let Some(settings) = WebViewExt::settings(&view) {
            settings.set_enable_page_cache(false);
        }
    });
    if let Err(e) = done {
        tracing::warn!(error = %e, "the web view's caches could not be set");
    }
}

#[cfg(not(target_os = "linux"))]
fn lighten(_window: &tauri::WebviewWindow) {}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WHISPERCMS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let settings_path = match args.iter().position(|a| a == "--settings") {
        Some(i) => args.get(i + 1).map(Into::into).ok_or_else(|| anyhow::anyhow!("--settings needs a file"))?,
        None => Settings::default_path(),
    };
    // Before any thread: the keyring is handed to the secrets library through the environment.
    if let Err(e) = App::install_secrets_keyring(&settings_path) {
        tracing::warn!(error = %e, "no key for the site's secrets on this computer");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let app = Arc::new(App::new(settings_path)?);
    let handle = runtime.handle().clone();
    // A publish asked for offline goes out by itself once the server answers again.
    let retrying = app.clone();
    runtime.spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(30));
        loop {
            every.tick().await;
            retrying.retry_pending().await;
        }
    });
    tauri::Builder::default()
        .register_asynchronous_uri_scheme_protocol("wcms", move |_ctx, request, responder| {
            let app = app.clone();
            let uri = request.uri().clone();
            let from_script = request
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("application/json"));
            let header = |name: http::header::HeaderName| {
                request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
            };
            let sender = header(http::header::ORIGIN).or_else(|| {
                let referer = header(http::header::REFERER)?.parse::<http::Uri>().ok()?;
                Some(format!("{}://{}", referer.scheme_str()?, referer.host()?))
            });
            let request = Request {
                method: request.method().to_string(),
                host: uri.host().unwrap_or("localhost").to_string(),
                path: uri.path().to_string(),
                query: uri.query().unwrap_or("").to_string(),
                body: request.into_body(),
                navigation: !from_script,
                sender,
            };
            let is_app = request.host != "preview";
            handle.spawn(async move {
                let answer = app.handle(request).await;
                let mut response = http::Response::builder()
                    .status(answer.status)
                    .header(http::header::CONTENT_TYPE, answer.content_type);
                if is_app {
                    response = response.header("Content-Security-Policy", CSP);
                }
                match response.body(answer.body) {
                    Ok(r) => responder.respond(r),
                    Err(e) => responder.respond(http::Response::new(e.to_string().into_bytes())),
                }
            });
        })
        .setup(|app| {
            let url = tauri::WebviewUrl::CustomProtocol("wcms://localhost/".parse()?);
            let window = tauri::WebviewWindowBuilder::new(app, "main", url)
                .title("WhisperCMS Desktop")
                .inner_size(1280.0, 800.0)
                .min_inner_size(900.0, 600.0)
                .build()?;
            lighten(&window);
            Ok(())
        })
        .run(tauri::generate_context!())?;
    Ok(())
}
