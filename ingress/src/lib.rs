//! The edge of WhisperCMS: Pingora is the only public HTTP listener. Every request is admitted
//! by [`edge`]: validated ([`validate`]), rate limited per client address, routed to the live
//! site (`main`) or the preview (`admin`, behind a signed link checked by [`preview`]); responses
//! get security headers and request ids; every request is logged and counted ([`metrics`]). The
//! site's Axum router is then called in-process (HTTP/1 by hyper on Pingora's connections:
//! [`http1`], the default; HTTP/2 by Pingora's sessions: [`in_process`]) or proxied to on
//! loopback ([`proxy`]).
//!
//! Pingora runs its own runtimes; [`Ingress::start`] runs its server on a thread of its own and
//! [`Ingress::stop`] shuts it down gracefully (no new connections, in-flight requests finish).

pub mod certificate;
pub mod connections;
pub mod drain;
pub mod edge;
pub mod http1;
pub mod in_process;
pub mod metrics;
pub mod preview;
pub mod proxy;
pub mod validate;
pub mod watchdog;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::listeners::tls::TlsSettings;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use pingora::services::listening::Service;
use serde::Deserialize;

pub use edge::{Edge, Upstream};
pub use metrics::Metrics;
pub use preview::{PreviewGate, PreviewKeys};
pub use validate::RequestLimits;

/// `[ingress]` of the settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The public address of the live site (the server's `[http] listen`).
    #[serde(skip)]
    pub listen: SocketAddr,
    /// A second public address serving the preview, if any (`[http] preview_listen`).
    #[serde(skip)]
    pub preview_listen: Option<SocketAddr>,
    /// Requests for this host name (on any listener) go to the preview.
    pub preview_host: Option<String>,
    /// Certificate and key (PEM) to serve HTTPS instead of HTTP.
    pub tls: Option<Tls>,
    pub limits: RequestLimits,
    pub rate_limit: RateLimit,
    /// Seconds a client may take to send a request header (in all), or its body (in all with
    /// hyper's HTTP/1, between two reads with Pingora's sessions); also how long an idle
    /// keep-alive connection stays open, and (hyper's HTTP/1) how long a client may take
    /// nothing of a response.
    pub client_timeout_secs: u64,
    /// Sent unless the site sends its own (a theme may extend it: the site then sends this
    /// policy with the theme's additions); empty sends none.
    pub content_security_policy: String,
    /// Worker threads of the proxy.
    pub threads: usize,
    /// Open connections one client address may hold; more are closed at once.
    pub max_connections_per_ip: usize,
    /// Seconds in-flight requests get to finish on shutdown.
    pub shutdown_timeout_secs: u64,
    /// How requests reach the site: its router called in-process (default), or proxied to its
    /// loopback listener.
    pub upstream: UpstreamMode,
    /// Which HTTP/1 server the in-process edge runs (HTTP/2 is always Pingora's).
    pub http1: Http1Server,
}

/// See [`Config::http1`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Http1Server {
    /// hyper's codec on Pingora's connections ([`http1`]): the fast one.
    #[default]
    Hyper,
    /// Pingora's own HTTP/1 session ([`in_process`]): about twice the CPU per request.
    Pingora,
}

/// See [`Config::upstream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamMode {
    #[default]
    InProcess,
    Loopback,
}

/// TLS certificate and key paths.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Requests per second one client address may make.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    pub requests_per_second: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { requests_per_second: 200 }
    }
}

/// The default Content-Security-Policy: the site's own scripts, styles and images; inline styles
/// (themes use them); no framing by other sites; forms post to the site only.
pub const DEFAULT_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'";

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            preview_listen: None,
            preview_host: None,
            tls: None,
            limits: RequestLimits::default(),
            rate_limit: RateLimit::default(),
            client_timeout_secs: 30,
            content_security_policy: DEFAULT_CSP.to_string(),
            threads: 2,
            max_connections_per_ip: 256,
            shutdown_timeout_secs: 10,
            upstream: UpstreamMode::InProcess,
            http1: Http1Server::Hyper,
        }
    }
}

impl Config {
    /// [`Config::client_timeout_secs`] as a duration (at least a second).
    pub fn client_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.client_timeout_secs.max(1))
    }

    /// Problems a parser cannot see: a Content-Security-Policy that cannot be sent as a header.
    pub fn check(&self) -> Result<(), String> {
        if axum::http::HeaderValue::from_str(&self.content_security_policy).is_err() {
            return Err(
                "ingress.content_security_policy: not a valid header value (a line break or control character?)".into(),
            );
        }
        Ok(())
    }
}

/// Errors starting the edge.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("starting a thread of the edge: {0}")]
    Thread(#[from] std::io::Error),
}

/// Resolves when the application asks the edge to stop and the requests in flight have
/// finished, their answers sent (or the shutdown timeout passed). Pingora's own grace period is a
/// fixed sleep, so the draining happens here ([`drain`]): new requests are answered 503 meanwhile.
struct StopWatch {
    stop: tokio::sync::watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    drain: Arc<drain::Drain>,
    timeout: std::time::Duration,
}

#[async_trait]
impl ShutdownSignalWatch for StopWatch {
    async fn recv(&self) -> ShutdownSignal {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|stop| *stop).await;
        self.drain.start();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let busy = || (self.metrics.in_flight(), self.drain.connections());
        while busy() != (0, 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (requests, connections) = busy();
        if (requests, connections) != (0, 0) {
            tracing::warn!(requests, connections, "shutdown timeout: requests and answers still in flight are cut");
        }
        ShutdownSignal::GracefulTerminate
    }
}

/// `inner` with its connections capped per client address.
fn capped<A>(inner: A, config: &Config, metrics: Arc<Metrics>) -> connections::PerAddressCap<A> {
    connections::PerAddressCap {
        inner: Arc::new(inner),
        max: config.max_connections_per_ip.max(1),
        counts: Default::default(),
        metrics,
    }
}

/// The edge's Pingora service: `app` on `listeners`.
fn service<A: pingora::apps::ServerApp + Send + Sync + 'static>(app: A, listeners: Vec<ListenerConfig>) -> Service<A> {
    let mut service = Service::new("whispercms edge".to_string(), app);
    listeners.into_iter().for_each(|l| service.add_listener(l));
    service
}

/// A running edge.
pub struct Ingress {
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The TLS certificate every listener serves, if TLS is on.
    certificate: Option<Arc<certificate::Certificate>>,
}

impl Ingress {
    /// Start the proxy in front of `live` (and `preview`), on the addresses of `edge.config`.
    pub fn start(edge: Edge) -> Result<Self, Error> {
        let config = edge.config.clone();
        let drain = edge.drain.clone();
        // Draining happens in `StopWatch`; Pingora's own grace period is a fixed sleep.
        let hyper_http1 = config.upstream == UpstreamMode::InProcess && config.http1 == Http1Server::Hyper;
        let conf = ServerConf {
            threads: config.threads.max(1),
            // Measured on the benchmark: hyper's connections do best on a work-stealing runtime
            // (23% below direct throughput against 35%); Pingora's sessions on one single-threaded
            // runtime per thread, each connection staying on one (5-10% less CPU).
            work_stealing: hyper_http1,
            grace_period_seconds: Some(0),
            graceful_shutdown_timeout_seconds: Some(1),
            ..Default::default()
        };
        let mut server = Server::new_with_opt_and_conf(None, conf);
        server.bootstrap();
        let mut listeners = vec![ListenerConfig::tcp(config.listen.to_string())];
        listeners.extend(config.preview_listen.map(|a| ListenerConfig::tcp(a.to_string())));
        let buffers = if hyper_http1 {
            // hyper buffers its reads and gathers its writes itself: a second buffer below it
            // only copies.
            L4BufferSettings::unbuffered()
        } else {
            // A write buffer that holds a whole page: Pingora's default (one segment) sends a
            // response header and its body in two syscalls, waking the client twice.
            L4BufferSettings::default().write(64 * 1024)
        };
        // One certificate for every listener, read at each handshake: SIGHUP reloads it.
        let certificate = match &config.tls {
            Some(tls) => Some(Arc::new(certificate::Certificate::load(&tls.cert, &tls.key)?)),
            None => None,
        };
        let mut configured = Vec::new();
        for listener in listeners {
            let mut listener = listener.l4_buffer(buffers);
            if let Some(certificate) = &certificate {
                // The paths are unused: a certificate resolver is set.
                let mut settings = TlsSettings::intermediate("", "").map_err(|e| Error::Tls(e.to_string()))?;
                settings.set_cert_resolver(certificate.clone());
                // HTTP/2 for clients that offer it (ALPN); HTTP/1.1 for the rest.
                settings.enable_h2();
                listener = listener.tls(settings);
            }
            configured.push(listener);
        }
        let metrics = edge.metrics.clone();
        let stop_metrics = metrics.clone();
        match config.upstream {
            UpstreamMode::InProcess if config.http1 == Http1Server::Hyper => {
                let watchdog = watchdog::Watchdog::start(config.client_timeout())?;
                let app = http1::Http1 { pingora: Arc::new(in_process::InProcess { edge }), watchdog };
                server.add_service(service(capped(app, &config, metrics), configured));
            }
            UpstreamMode::InProcess => {
                let app = in_process::InProcess { edge };
                server.add_service(service(capped(app, &config, metrics), configured));
            }
            UpstreamMode::Loopback => {
                let mut proxy = pingora::proxy::HttpProxy::new(proxy::Loopback { edge }, server.configuration.clone());
                proxy.handle_init_modules();
                server.add_service(service(capped(proxy, &config, metrics), configured));
            }
        }
        let (stop, rx) = tokio::sync::watch::channel(false);
        let thread = std::thread::Builder::new().name("edge".into()).spawn(move || {
            let watch = StopWatch {
                stop: rx,
                metrics: stop_metrics,
                drain,
                timeout: std::time::Duration::from_secs(config.shutdown_timeout_secs),
            };
            server.run(RunArgs { shutdown_signal: Box::new(watch) })
        })?;
        Ok(Ingress { stop, thread: Some(thread), certificate })
    }

    /// The TLS certificate the listeners serve, if TLS is on: [`certificate::Certificate::reload`]
    /// gives new connections a renewed one (SIGHUP), open ones keep theirs.
    pub fn certificate(&self) -> Option<Arc<certificate::Certificate>> {
        self.certificate.clone()
    }

    /// Stop accepting, let in-flight requests finish (up to the shutdown timeout), and return.
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
