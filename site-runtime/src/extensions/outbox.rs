//! Outbound webhooks: where plugins' side effects leave the server. A plugin calls
//! `webhook(name, payload)`; the payload is queued here and the call returns at once. A
//! background task delivers each one: an HTTP `POST` of the JSON (with `Authorization: Bearer`
//! when the target has a token), retried with backoff, or a JSON file written into a directory
//! (for the demo, and for sites that hand messages to another process). Targets, URLs and tokens
//! come from the server's settings (`[webhooks.<name>]`) and never reach a script.
//!
//! HTTP only for now: an `https://` target is refused when the settings are read (terminate TLS
//! in a relay on the same host until the outbox speaks it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::host::Outbox;

/// Deliveries waiting at most; beyond that `webhook()` fails (and the plugin can say so).
const QUEUE: usize = 1024;
/// Attempts per HTTP delivery, and the wait before each retry.
const BACKOFF: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(25)];
/// Time limit of one HTTP attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[webhooks.<name>]` of the settings: exactly one of `url` and `dir`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `http://host:port/path` to POST the JSON to.
    pub url: Option<String>,
    /// A directory to write one JSON file per delivery into.
    pub dir: Option<PathBuf>,
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl Target {
    /// Check a target from the settings; the error says what is wrong.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if !super::manifest::is_name(name) {
            return Err(format!("webhooks.{name}: the name must be lowercase letters, digits, '-' or '_'"));
        }
        match (&self.url, &self.dir) {
            (Some(url), None) => {
                let uri: hyper::Uri = url.parse().map_err(|e| format!("webhooks.{name}.url: {e}"))?;
                match uri.scheme_str() {
                    Some("http") if uri.host().is_some() => Ok(()),
                    Some("https") => Err(format!(
                        "webhooks.{name}.url: https is not supported yet; point it at an HTTP relay on this host"
                    )),
                    _ => Err(format!("webhooks.{name}.url: expected http://host[:port]/path")),
                }
            }
            (None, Some(_)) => Ok(()),
            _ => Err(format!("webhooks.{name}: give exactly one of url and dir")),
        }
    }
}

struct Delivery {
    name: String,
    target: Target,
    payload: serde_json::Value,
}

/// The server's outbox: targets by name and the queue to the delivery task.
pub struct WebhookOutbox {
    targets: BTreeMap<String, Target>,
    queue: mpsc::Sender<Delivery>,
}

impl WebhookOutbox {
    /// Start the delivery task on the current Tokio runtime.
    pub fn start(targets: BTreeMap<String, Target>) -> Arc<Self> {
        let (queue, mut rx) = mpsc::channel::<Delivery>(QUEUE);
        tokio::spawn(async move {
            let sequence = AtomicU64::new(0);
            while let Some(d) = rx.recv().await {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                deliver(d, n).await;
            }
        });
        Arc::new(WebhookOutbox { targets, queue })
    }
}

impl Outbox for WebhookOutbox {
    fn send(&self, name: &str, payload: serde_json::Value) -> Result<(), String> {
        let target = self.targets.get(name).ok_or_else(|| format!("the server has no webhook named {name:?}"))?;
        let delivery = Delivery { name: name.to_string(), target: target.clone(), payload };
        self.queue.try_send(delivery).map_err(|_| format!("webhook {name}: too many deliveries waiting; try later"))
    }
}

async fn deliver(d: Delivery, sequence: u64) {
    if let Some(dir) = &d.target.dir {
        match write_file(dir, &d, sequence) {
            Ok(path) => tracing::info!(webhook = %d.name, path = %path.display(), "webhook delivered to a file"),
            Err(e) => tracing::error!(webhook = %d.name, error = %e, "webhook delivery to a file failed"),
        }
        return;
    }
    let Some(url) = &d.target.url else { return };
    let body = d.payload.to_string();
    for (attempt, wait) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
        tokio::time::sleep(wait).await;
        match tokio::time::timeout(ATTEMPT_TIMEOUT, post(url, d.target.token.as_deref(), &body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tracing::info!(webhook = %d.name, status, attempt, "webhook delivered");
                return;
            }
            Ok(Ok(status)) if (400..500).contains(&status) && status != 429 => {
                tracing::error!(webhook = %d.name, status, "webhook refused the delivery; not retried");
                return;
            }
            Ok(Ok(status)) => tracing::warn!(webhook = %d.name, status, attempt, "webhook delivery failed"),
            Ok(Err(e)) => tracing::warn!(webhook = %d.name, error = %e, attempt, "webhook delivery failed"),
            Err(_) => tracing::warn!(webhook = %d.name, attempt, "webhook delivery timed out"),
        }
    }
    tracing::error!(webhook = %d.name, "webhook delivery given up after retries");
}

/// Write the payload as `<dir>/<millis>-<seq>-<name>.json`, atomically (temporary file, rename).
fn write_file(dir: &std::path::Path, d: &Delivery, sequence: u64) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let millis = jiff::Timestamp::now().as_millisecond();
    let path = dir.join(format!("{millis}-{sequence:06}-{}.json", d.name));
    let tmp = dir.join(format!(".{millis}-{sequence:06}-{}.tmp", d.name));
    std::fs::write(&tmp, serde_json::to_vec_pretty(&d.payload)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// One HTTP/1.1 POST over a fresh connection; returns the status.
async fn post(url: &str, token: Option<&str>, body: &str) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host);
    let mut request = hyper::Request::post(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "WhisperCMS-webhook/1");
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_checked() {
        let t = |url: Option<&str>, dir: Option<&str>| Target {
            url: url.map(Into::into),
            dir: dir.map(Into::into),
            token: None,
        };
        assert!(t(Some("http://127.0.0.1:9000/hook"), None).check("contact").is_ok());
        assert!(t(None, Some("/tmp/x")).check("contact").is_ok());
        assert!(t(Some("https://example.org/"), None).check("contact").unwrap_err().contains("https is not supported"));
        assert!(t(Some("ftp://x/"), None).check("contact").is_err());
        assert!(t(Some("http://x/"), Some("/tmp")).check("contact").unwrap_err().contains("exactly one"));
        assert!(t(None, None).check("contact").is_err());
        assert!(t(None, Some("/tmp")).check("Bad Name").is_err());
    }

    #[tokio::test]
    async fn delivers_to_files_and_over_http() {
        let tmp = tempfile::tempdir().unwrap();
        // A one-shot HTTP receiver.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (got_tx, mut got_rx) = mpsc::channel::<String>(1);
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 4096];
            let mut text = String::new();
            while !text.contains("\"hi\"") {
                let n = s.read(&mut buf).await.unwrap();
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            got_tx.send(text).await.unwrap();
        });
        let targets = BTreeMap::from([
            ("files".to_string(), Target { url: None, dir: Some(tmp.path().join("out")), token: None }),
            (
                "http".to_string(),
                Target { url: Some(format!("http://127.0.0.1:{port}/hook")), dir: None, token: Some("s3cret".into()) },
            ),
        ]);
        let outbox = WebhookOutbox::start(targets);
        outbox.send("files", serde_json::json!({"msg": "hello"})).unwrap();
        outbox.send("http", serde_json::json!({"msg": "hi"})).unwrap();
        assert!(outbox.send("nope", serde_json::json!({})).unwrap_err().contains("no webhook named"));
        let request = tokio::time::timeout(Duration::from_secs(10), got_rx.recv()).await.unwrap().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
        assert!(request.to_ascii_lowercase().contains("authorization: bearer s3cret"), "{request}");
        let delivered = || -> Vec<PathBuf> {
            std::fs::read_dir(tmp.path().join("out"))
                .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
                .unwrap_or_default()
        };
        for _ in 0..100 {
            if delivered().len() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let file = delivered().pop().expect("one delivery");
        assert!(file.to_string_lossy().ends_with("-files.json"));
        assert!(std::fs::read_to_string(file).unwrap().contains("hello"));
    }
}
