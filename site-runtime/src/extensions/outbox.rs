//! Outbound webhooks: where plugins' side effects leave the server. A plugin calls
//! `webhook(name, payload)`; the payload is queued here and the call returns at once. A
//! background task delivers each one: an HTTP(S) `POST` of the JSON (with
//! `Authorization: Bearer` when the webhook has a token), retried with backoff, or a JSON file
//! written into a directory (for the demo, and for sites that hand messages to another process).
//!
//! Where a webhook goes is a secret of the site: `secrets/webhooks.{yaml,json,toml}` in the
//! repository, one entry per name with `url` and an optional `token`, encrypted (see the
//! `secrets` crate) and read with the snapshot it belongs to ([`WebhookOutbox::outbox_for`]),
//! so a push that changes it takes effect with the next snapshot. The server's settings may
//! still name targets (`[webhooks.<name>]`): a `dir`, or — deprecated, logged at start — a
//! `url` and `token`; the site's entry wins. Nothing of a target reaches a script, and the log
//! names webhooks, never their addresses.
//!
//! Endpoints (`http_send(name, payload)`, capability `outbound.http:<name>`) are APIs a plugin
//! may call without holding their key: `secrets/endpoints.*` names each one's `url`, the
//! `header` that carries the key (default `Authorization`), its `value`, and optionally the
//! `method` (POST, PUT or PATCH); the server sends the plugin's JSON there with that header.
//!
//! Mail (`mail_send`) goes the same way: `secrets/mail.*` read per snapshot ([`super::mail`]),
//! messages queued here and sent by the same task. At most [`CONCURRENT`] deliveries run at
//! once, so one endpoint that times out does not hold up the others.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use gix::ObjectId;
use secrets::{Keyring, Secret, SecretTree, Store};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::host::{Outbound, Outbox};
use super::mail::{Mail, MailConfig};

/// Deliveries waiting at most; beyond that `webhook()` fails (and the plugin can say so).
const QUEUE: usize = 1024;
/// Attempts per HTTP delivery, and the wait before each retry.
const BACKOFF: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(25)];
/// Deliveries in flight at once.
const CONCURRENT: usize = 8;
/// Time limit of one HTTP attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The secrets document that names webhooks.
pub const WEBHOOKS: &str = "webhooks";

/// One `[webhooks.<name>]` of the settings: exactly one of `url` and `dir`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// `http(s)://host[:port]/path` to POST the JSON to (deprecated here: keep it in the
    /// site's `secrets/webhooks.yaml`).
    pub url: Option<String>,
    /// A directory to write one JSON file per delivery into.
    pub dir: Option<PathBuf>,
    /// Sent as `Authorization: Bearer <token>` (deprecated here, as `url`).
    pub token: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("dir", &self.dir)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Check a webhook address; the error names `what` and never repeats the address.
fn check_url(what: &str, url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url.parse().map_err(|_| format!("{what}: not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(()),
        _ => Err(format!("{what}: expected http(s)://host[:port]/path")),
    }
}

impl Target {
    /// Check a target from the settings; the error says what is wrong.
    pub fn check(&self, name: &str) -> Result<(), String> {
        if !super::manifest::is_name(name) {
            return Err(format!("webhooks.{name}: the name must be lowercase letters, digits, '-' or '_'"));
        }
        match (&self.url, &self.dir) {
            (Some(url), None) => check_url(&format!("webhooks.{name}.url"), url),
            (None, Some(_)) => Ok(()),
            _ => Err(format!("webhooks.{name}: give exactly one of url and dir")),
        }
    }

    fn destination(&self) -> Option<Destination> {
        match (&self.url, &self.dir) {
            (Some(url), _) => {
                Some(Destination::http(Secret::new(url.clone()), self.token.as_ref().map(|t| Secret::new(t.clone()))))
            }
            (None, Some(dir)) => Some(Destination::Dir(dir.clone())),
            (None, None) => None,
        }
    }
}

/// Where one webhook or endpoint delivers.
#[derive(Debug, Clone)]
enum Destination {
    Http { url: Secret, method: hyper::Method, header: Option<(hyper::header::HeaderName, Secret)> },
    Dir(PathBuf),
}

impl Destination {
    /// A webhook: POST, with `Authorization: Bearer <token>` when there is a token.
    fn http(url: Secret, token: Option<Secret>) -> Destination {
        let header = token.map(|t| (hyper::header::AUTHORIZATION, Secret::new(format!("Bearer {}", t.expose()))));
        Destination::Http { url, method: hyper::Method::POST, header }
    }
}

/// The entries of `secrets/<document>`: a map of names, each a map of `allowed` keys with a
/// `url`, made into a [`Destination`] by `make` (given the entry's label for messages, the entry
/// and its checked URL). Entries that are not right are returned as problems, never with their
/// values.
fn destinations_of(
    tree: &SecretTree,
    document: &str,
    allowed: &[&str],
    make: impl Fn(&str, &SecretTree, &Secret) -> Result<Destination, String>,
) -> (BTreeMap<String, Destination>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut problems = Vec::new();
    let SecretTree::Map(map) = tree else {
        return (out, vec![format!("secrets/{document}: expected a map of names")]);
    };
    for (name, entry) in map {
        let what = format!("secrets/{document}: {name}");
        let checked = (|| {
            if !super::manifest::is_name(name) {
                return Err(format!("{what}: the name must be lowercase letters, digits, '-' or '_'"));
            }
            let SecretTree::Map(fields) = entry else { return Err(format!("{what}: expected {}", allowed.join(", "))) };
            if let Some(other) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(format!("{what}: unknown key {other} ({})", allowed.join(", ")));
            }
            let url = entry.value(&["url"]).ok_or_else(|| format!("{what}: needs a url"))?;
            check_url(&format!("{what}.url"), url.expose())?;
            make(&what, entry, url)
        })();
        match checked {
            Ok(d) => drop(out.insert(name.clone(), d)),
            Err(e) => problems.push(e),
        }
    }
    (out, problems)
}

/// The webhooks of `secrets/webhooks.*`: `url` and an optional bearer `token` each.
fn webhooks_of(tree: &SecretTree) -> (BTreeMap<String, Destination>, Vec<String>) {
    destinations_of(tree, WEBHOOKS, &["url", "token"], |_, entry, url| {
        Ok(Destination::http(url.clone(), entry.value(&["token"]).cloned()))
    })
}

/// The endpoints of `secrets/endpoints.*` (see the module doc).
fn endpoints_of(tree: &SecretTree) -> (BTreeMap<String, Destination>, Vec<String>) {
    destinations_of(tree, ENDPOINTS, &["url", "header", "value", "method"], |what, entry, url| {
        let header = match entry.value(&["header"]) {
            None => hyper::header::AUTHORIZATION,
            Some(h) => hyper::header::HeaderName::from_bytes(h.expose().as_bytes())
                .map_err(|_| format!("{what}.header: not a header name"))?,
        };
        use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING, USER_AGENT};
        if [HOST, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING, CONNECTION, USER_AGENT].contains(&header) {
            return Err(format!("{what}.header: {header} is set by the server"));
        }
        let value = entry.value(&["value"]).ok_or_else(|| format!("{what}: needs the header's value"))?;
        hyper::header::HeaderValue::from_str(value.expose())
            .map_err(|_| format!("{what}.value: not a valid header value (one line of text)"))?;
        let method = match entry.value(&["method"]).map(|m| m.expose().to_ascii_uppercase()).as_deref() {
            None | Some("POST") => hyper::Method::POST,
            Some("PUT") => hyper::Method::PUT,
            Some("PATCH") => hyper::Method::PATCH,
            Some(_) => return Err(format!("{what}.method: POST, PUT or PATCH")),
        };
        Ok(Destination::Http { url: url.clone(), method, header: Some((header, value.clone())) })
    })
}

/// The secrets document that names endpoints.
pub const ENDPOINTS: &str = "endpoints";

/// Problems with a decrypted `secrets/<name>` document that one of the outbox's services reads
/// (webhooks, endpoints, mail), for validation at push; other documents have none.
pub fn problems_of(name: &str, tree: &SecretTree) -> Vec<String> {
    match name {
        WEBHOOKS => webhooks_of(tree).1,
        ENDPOINTS => endpoints_of(tree).1,
        super::mail::DOCUMENT => MailConfig::from_tree(tree).err().into_iter().collect(),
        _ => Vec::new(),
    }
}

struct Delivery {
    /// The webhook's name, or `mail`.
    name: String,
    what: What,
    /// The snapshot's secrets, to keep them out of what is logged.
    secrets: Arc<Store>,
}

enum What {
    Webhook { destination: Destination, payload: serde_json::Value },
    Mail { config: Arc<MailConfig>, mail: Mail },
}

/// The server's outbox: the targets of the settings, the keyring secrets open with, and the
/// queue to the delivery task. Each snapshot gets its own [`Outbox`] from it.
pub struct WebhookOutbox {
    settings: BTreeMap<String, Target>,
    keyring: Option<&'static Keyring>,
    queue: mpsc::Sender<Delivery>,
}

impl WebhookOutbox {
    /// Start the delivery task on the current Tokio runtime.
    pub fn start(settings: BTreeMap<String, Target>, keyring: Option<&'static Keyring>) -> Arc<Self> {
        for (name, target) in &settings {
            if target.url.is_some() || target.token.is_some() {
                tracing::warn!(
                    webhook = %name,
                    "settings.toml: [webhooks.{name}] url and token are deprecated; keep them encrypted in the \
                     site's secrets/webhooks.yaml (see the README's Secrets section)"
                );
            }
        }
        let (queue, mut rx) = mpsc::channel::<Delivery>(QUEUE);
        tokio::spawn(async move {
            let sequence = AtomicU64::new(0);
            let slots = Arc::new(tokio::sync::Semaphore::new(CONCURRENT));
            while let Some(d) = rx.recv().await {
                let n = sequence.fetch_add(1, Ordering::Relaxed);
                let Ok(slot) = slots.clone().acquire_owned().await else { break };
                tokio::spawn(async move {
                    deliver(d, n).await;
                    drop(slot);
                });
            }
        });
        Arc::new(WebhookOutbox { settings, keyring, queue })
    }

    /// The secrets of `commit`, decrypted; what cannot be opened is logged and left out.
    fn secrets_at(&self, repo: &gix::Repository, commit: ObjectId) -> Store {
        let Some(keyring) = self.keyring else { return Store::default() };
        let files = match crate::source::files_under(repo, commit, secrets::DIR) {
            Ok(files) => files,
            Err(e) => {
                tracing::error!(%commit, error = %e, "cannot list secrets/");
                return Store::default();
            }
        };
        let mut texts = Vec::new();
        for (path, blob) in files {
            match crate::source::read_blob(repo, blob).map(String::from_utf8) {
                Ok(Ok(text)) => texts.push((format!("{}/{path}", secrets::DIR), text)),
                _ => tracing::error!(%commit, path, "a secrets file cannot be read as text"),
            }
        }
        let (store, problems) = Store::load(texts.iter().map(|(p, t)| (p.as_str(), t.as_str())), keyring);
        for (path, e) in problems {
            tracing::error!(%commit, path, error = %e, "a secrets file cannot be used");
        }
        store
    }
}

impl Outbound for WebhookOutbox {
    fn outbox_for(&self, repo: &gix::Repository, commit: ObjectId) -> Arc<dyn Outbox> {
        self.outbox_with(self.secrets_at(repo, commit), &commit.to_string())
    }
}

impl WebhookOutbox {
    /// The outbox of a snapshot whose secrets are `store`.
    fn outbox_with(&self, store: Store, commit: &str) -> Arc<dyn Outbox> {
        let store = Arc::new(store);
        let mut destinations: BTreeMap<String, Destination> =
            self.settings.iter().filter_map(|(name, t)| Some((name.clone(), t.destination()?))).collect();
        if let Some(tree) = store.document(WEBHOOKS) {
            let (hooks, problems) = webhooks_of(tree);
            for p in problems {
                tracing::error!(commit, "{p}");
            }
            destinations.extend(hooks);
        }
        let mut endpoints = BTreeMap::new();
        if let Some(tree) = store.document(ENDPOINTS) {
            let problems;
            (endpoints, problems) = endpoints_of(tree);
            for p in problems {
                tracing::error!(commit, "{p}");
            }
        }
        let mail = store.document(super::mail::DOCUMENT).and_then(|tree| match MailConfig::from_tree(tree) {
            Ok(config) => Some(Arc::new(config)),
            Err(e) => {
                tracing::error!(commit, "{e}");
                None
            }
        });
        Arc::new(CommitOutbox { destinations, endpoints, mail, secrets: store, queue: self.queue.clone() })
    }
}

/// The outbox of one snapshot.
struct CommitOutbox {
    destinations: BTreeMap<String, Destination>,
    endpoints: BTreeMap<String, Destination>,
    mail: Option<Arc<MailConfig>>,
    secrets: Arc<Store>,
    queue: mpsc::Sender<Delivery>,
}

impl Outbox for CommitOutbox {
    fn send(&self, name: &str, payload: serde_json::Value) -> Result<(), String> {
        let destination =
            self.destinations.get(name).ok_or_else(|| format!("the server has no webhook named {name:?}"))?;
        let what = What::Webhook { destination: destination.clone(), payload };
        let delivery = Delivery { name: name.to_string(), what, secrets: self.secrets.clone() };
        self.queue.try_send(delivery).map_err(|_| format!("webhook {name}: too many deliveries waiting; try later"))
    }

    fn request(&self, endpoint: &str, payload: serde_json::Value) -> Result<(), String> {
        let destination =
            self.endpoints.get(endpoint).ok_or_else(|| format!("the site has no endpoint named {endpoint:?}"))?;
        let what = What::Webhook { destination: destination.clone(), payload };
        let delivery = Delivery { name: endpoint.to_string(), what, secrets: self.secrets.clone() };
        self.queue
            .try_send(delivery)
            .map_err(|_| format!("endpoint {endpoint}: too many deliveries waiting; try later"))
    }

    fn mail(&self, subject: &str, text: &str, to: Option<&str>, reply_to: Option<&str>) -> Result<(), String> {
        let config = self.mail.clone().ok_or("the site has no mail settings (secrets/mail.yaml)")?;
        let mail = config.message(subject, text, to, reply_to)?;
        let delivery =
            Delivery { name: "mail".into(), what: What::Mail { config, mail }, secrets: self.secrets.clone() };
        self.queue.try_send(delivery).map_err(|_| "mail: too many deliveries waiting; try later".to_string())
    }
}

async fn deliver(d: Delivery, sequence: u64) {
    let (destination, payload) = match &d.what {
        What::Webhook { destination, payload } => (destination, payload),
        What::Mail { config, mail } => return deliver_mail(&d, config, mail).await,
    };
    let (url, method, header) = match destination {
        Destination::Dir(dir) => {
            match write_file(dir, &d.name, payload, sequence) {
                Ok(path) => tracing::info!(webhook = %d.name, path = %path.display(), "webhook delivered to a file"),
                Err(e) => tracing::error!(webhook = %d.name, error = %e, "webhook delivery to a file failed"),
            }
            return;
        }
        Destination::Http { url, method, header } => (url, method, header),
    };
    let body = payload.to_string();
    for (attempt, wait) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
        tokio::time::sleep(wait).await;
        let header = header.as_ref().map(|(name, value)| (name, value.expose()));
        let sent = post(url.expose(), method, header, &body);
        match tokio::time::timeout(ATTEMPT_TIMEOUT, sent).await {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tracing::info!(webhook = %d.name, status, attempt, "webhook delivered");
                return;
            }
            Ok(Ok(status)) if (400..500).contains(&status) && status != 429 => {
                tracing::error!(webhook = %d.name, status, "webhook refused the delivery; not retried");
                return;
            }
            Ok(Ok(status)) => tracing::warn!(webhook = %d.name, status, attempt, "webhook delivery failed"),
            Ok(Err(e)) => {
                let error = d.secrets.redact(&e).replace(url.expose(), "[redacted]");
                tracing::warn!(webhook = %d.name, %error, attempt, "webhook delivery failed")
            }
            Err(_) => tracing::warn!(webhook = %d.name, attempt, "webhook delivery timed out"),
        }
    }
    tracing::error!(webhook = %d.name, "webhook delivery given up after retries");
}

/// Send a mail, retried with the webhooks' backoff; errors are logged without secrets.
async fn deliver_mail(d: &Delivery, config: &MailConfig, mail: &Mail) {
    for (attempt, wait) in std::iter::once(Duration::ZERO).chain(BACKOFF).enumerate() {
        tokio::time::sleep(wait).await;
        match config.send(mail).await {
            Ok(()) => {
                tracing::info!(attempt, "mail sent");
                return;
            }
            Err(e) => tracing::warn!(error = %d.secrets.redact(&e), attempt, "mail not sent"),
        }
    }
    tracing::error!("mail given up after retries");
}

/// Write the payload as `<dir>/<millis>-<seq>-<name>.json`, atomically (temporary file, rename).
fn write_file(
    dir: &std::path::Path,
    name: &str,
    payload: &serde_json::Value,
    sequence: u64,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let millis = jiff::Timestamp::now().as_millisecond();
    let path = dir.join(format!("{millis}-{sequence:06}-{name}.json"));
    let tmp = dir.join(format!(".{millis}-{sequence:06}-{name}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(payload)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// TLS for webhooks: the system's roots (`SSL_CERT_FILE` is honoured), built once.
fn tls() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().unwrap_or_default());
        if roots.is_empty() {
            return Err("no trusted CA certificates found (install ca-certificates)".into());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    });
    config.clone().map(tokio_rustls::TlsConnector::from)
}

/// One HTTP/1.1 request with a JSON body over a fresh connection (TLS for `https://`), with
/// the secret `header` if any; returns the status.
async fn post(
    url: &str,
    method: &hyper::Method,
    header: Option<(&hyper::header::HeaderName, &str)>,
    body: &str,
) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|_| "not a URL".to_string())?;
    let host = uri.host().ok_or("no host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
    let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or(host.clone());
    let mut request = hyper::Request::builder()
        .method(method.clone())
        .uri(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::USER_AGENT, "WhisperCMS-webhook/1");
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body.to_string())))
        .map_err(|_| "the request cannot be made (a bad header value?)".to_string())?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
        let stream = tls()?.connect(name, stream).await.map_err(|e| format!("TLS: {e}"))?;
        send(hyper_util::rt::TokioIo::new(stream), request).await
    } else {
        send(hyper_util::rt::TokioIo::new(stream), request).await
    }
}

async fn send<S>(io: S, request: hyper::Request<http_body_util::Full<hyper::body::Bytes>>) -> Result<u16, String>
where
    S: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// This test process's keyring (one identity), shared by the tests that need one.
    pub(crate) fn keyring() -> &'static Keyring {
        static RING: OnceLock<&'static Keyring> = OnceLock::new();
        RING.get_or_init(|| Keyring::install(vec![secrets::Identity::generate()]).unwrap())
    }

    #[test]
    fn targets_are_checked() {
        let t = |url: Option<&str>, dir: Option<&str>| Target {
            url: url.map(Into::into),
            dir: dir.map(Into::into),
            token: Some("s3cret".into()),
        };
        assert!(t(Some("http://127.0.0.1:9000/hook"), None).check("contact").is_ok());
        assert!(t(Some("https://hooks.example.org/x"), None).check("contact").is_ok());
        assert!(t(None, Some("/tmp/x")).check("contact").is_ok());
        let err = t(Some("ftp://user:pw@x/"), None).check("contact").unwrap_err();
        assert!(err.contains("expected http(s)") && !err.contains("pw@x"), "{err}");
        assert!(t(Some("http://x/"), Some("/tmp")).check("contact").unwrap_err().contains("exactly one"));
        assert!(t(None, None).check("contact").is_err());
        assert!(t(None, Some("/tmp")).check("Bad Name").is_err());
        assert!(!format!("{:?}", t(Some("http://x/"), None)).contains("s3cret"));
    }

    #[test]
    fn webhooks_documents_are_read_strictly() {
        let ring = keyring();
        let text =
            "contact:\n  url: https://hooks.example.org/T1/abc\n  token: tok-123456\nbad name:\n  url: http://x/\n\
                    nourl:\n  token: x\nftp:\n  url: ftp://x/\nextra:\n  url: http://x/\n  header: x\n";
        let doc = secrets::Document::encrypt(secrets::Format::Yaml, text, &ring.recipients()).unwrap();
        let tree = doc.decrypt(ring).unwrap();
        let (hooks, problems) = webhooks_of(&tree);
        assert_eq!(hooks.keys().collect::<Vec<_>>(), ["contact"]);
        let Destination::Http { method, header: Some((name, value)), .. } = &hooks["contact"] else { panic!() };
        assert_eq!(
            (method, name, value.expose()),
            (&hyper::Method::POST, &hyper::header::AUTHORIZATION, "Bearer tok-123456")
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("http://x/") && !p.contains("ftp://x/")), "{problems:?}");
    }

    #[test]
    fn endpoints_documents_are_read_strictly() {
        let ring = keyring();
        let text = r#"{"news": {"url": "https://api.example.org/v1/subscribers", "header": "X-Api-Key", "value": "key-123456", "method": "put"},
            "plain": {"url": "http://127.0.0.1:9/x", "value": "Token t"},
            "Bad": {"url": "http://x/", "value": "v"},
            "nohost": {"url": "mailto:x", "value": "v"},
            "hostheader": {"url": "http://x/", "header": "Host", "value": "v"},
            "ctl": {"url": "http://x/", "value": "a\u007fX-Evil: 1"},
            "getter": {"url": "http://x/", "value": "v", "method": "GET"},
            "extra": {"url": "http://x/", "value": "v", "body": "b"}}"#;
        let doc = secrets::Document::encrypt(secrets::Format::Json, text, &ring.recipients()).unwrap();
        let tree = doc.decrypt(ring).unwrap();
        let (endpoints, problems) = endpoints_of(&tree);
        assert_eq!(endpoints.keys().collect::<Vec<_>>(), ["news", "plain"]);
        let Destination::Http { method, header: Some((name, value)), .. } = &endpoints["news"] else { panic!() };
        assert_eq!((method, name.as_str(), value.expose()), (&hyper::Method::PUT, "x-api-key", "key-123456"));
        let Destination::Http { header: Some((name, _)), .. } = &endpoints["plain"] else { panic!() };
        assert_eq!(name, hyper::header::AUTHORIZATION);
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(problems.iter().all(|p| !p.contains("X-Evil") && !p.contains("http://x/")), "{problems:?}");
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
        let outbox = WebhookOutbox::start(targets, None).outbox_with(Store::default(), "test");
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
