//! What the edge does with every request, however it then reaches the site: turn it away while
//! draining, validate it ([`crate::validate`]), limit each client address's rate, pick the live
//! site or the preview (by listener port or `Host`), hold the preview to its credential, and —
//! once answered — log and count it. Responses get security headers and the request id.
//!
//! It works on Pingora's server session, so the in-process server ([`crate::in_process`]) and the
//! loopback proxy ([`crate::proxy`]) share it.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::CONTENT_SECURITY_POLICY;
use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::{Error, Result};
use pingora_limits::rate::Rate;

use crate::metrics::Metrics;
use crate::preview::{self, PreviewGate, PreviewKeys};
use crate::validate::{self, Refusal};
use crate::Config;

/// The edge's configuration and state, shared by its worker threads.
pub struct Edge {
    pub config: Config,
    /// The live site.
    pub live: Upstream,
    /// The preview, if there is one.
    pub preview: Option<Upstream>,
    pub keys: Arc<PreviewKeys>,
    pub gate: Arc<dyn PreviewGate>,
    pub metrics: Arc<Metrics>,
    rate: Rate,
    /// The security headers of every response, built once.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The default Content-Security-Policy, if any.
    csp: Option<HeaderValue>,
    /// Requests between [`Edge::begin`] and [`Edge::finish`].
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// Set when shutting down: new requests are turned away, those in flight finish.
    pub(crate) draining: Arc<AtomicBool>,
}

/// A site behind the edge.
#[derive(Clone)]
pub struct Upstream {
    /// Called in-process.
    pub router: axum::Router,
    /// Proxied to with `upstream = "loopback"`.
    pub address: SocketAddr,
}

/// Per-request state.
pub struct RequestCtx {
    /// The request id, sent to the site and back to the client as `x-request-id`.
    pub(crate) id: HeaderValue,
    started: Instant,
    pub(crate) client: Option<IpAddr>,
    pub(crate) to_preview: bool,
    pub(crate) body_limit: usize,
    pub(crate) body_seen: usize,
    refused: bool,
}

/// The request header the id travels in, to the site and back to the client.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random request id: 16 lowercase hex digits. (Written by hand because `format!` cost more
/// than everything else `begin` does.)
fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u64>();
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&digits).unwrap_or(HeaderValue::from_static("0"))
}

impl RequestCtx {
    /// The request id, for logs.
    pub(crate) fn id(&self) -> &str {
        self.id.to_str().unwrap_or_default()
    }
}

impl Edge {
    pub fn new(
        config: Config,
        live: Upstream,
        preview: Option<Upstream>,
        keys: Arc<PreviewKeys>,
        gate: Arc<dyn PreviewGate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let mut headers = vec![
            (HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff")),
            (HeaderName::from_static("referrer-policy"), HeaderValue::from_static("strict-origin-when-cross-origin")),
            (HeaderName::from_static("x-frame-options"), HeaderValue::from_static("SAMEORIGIN")),
        ];
        if config.tls.is_some() {
            headers.push((
                HeaderName::from_static("strict-transport-security"),
                HeaderValue::from_static("max-age=31536000"),
            ));
        }
        // [`Config::check`] refuses a policy that is not a header value when the settings load.
        let csp = Some(config.content_security_policy.as_str())
            .filter(|c| !c.is_empty())
            .and_then(|c| HeaderValue::from_str(c).ok());
        Edge {
            headers,
            csp,
            config,
            live,
            preview,
            keys,
            gate,
            metrics,
            rate: Rate::new(Duration::from_secs(1)),
            in_flight: Arc::default(),
            draining: Arc::default(),
        }
    }

    /// The site a request goes to, as decided by [`Edge::admit`].
    pub(crate) fn upstream(&self, ctx: &RequestCtx) -> &Upstream {
        match (ctx.to_preview, &self.preview) {
            (true, Some(p)) => p,
            _ => &self.live,
        }
    }

    /// A request has arrived (its header is read). Every `begin` is paired with a
    /// [`Edge::finish`].
    pub(crate) fn begin(&self) -> RequestCtx {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        RequestCtx {
            id: request_id(),
            started: Instant::now(),
            client: None,
            to_preview: false,
            body_limit: 0,
            body_seen: 0,
            refused: false,
        }
    }

    /// Everything that decides whether a request may reach the site. `Ok(true)` when the edge
    /// answered it itself (refused, rate limited, a preview redirect); `Ok(false)` lets it through,
    /// with `ctx` saying where to and how large its body may be.
    pub(crate) async fn admit(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Result<bool> {
        ctx.client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        if self.draining.load(Ordering::SeqCst) {
            session.set_keepalive(None);
            let mut headers = vec![("retry-after", "1".to_string())];
            if !session.is_http2() {
                headers.push(("connection", "close".to_string())); // HTTP/2 forbids the header
            }
            self.respond(session, ctx, 503, &headers, "the server is restarting; try again\n").await?;
            return Ok(true);
        }
        let limits = &self.config.limits;
        let req = session.req_header();
        if let Err(r) = validate::method(req.method.as_str()) {
            return self.refuse(session, ctx, r).await;
        }
        if let Err(r) = validate::headers(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())), limits) {
            return self.refuse(session, ctx, r).await;
        }
        let raw_target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        ctx.body_limit = match validate::target(raw_target, limits) {
            Ok(path) => limits.body_limit(&path),
            Err(r) => return self.refuse(session, ctx, r).await,
        };
        if let Some(ip) = ctx.client {
            let seen = self.rate.observe(&ip, 1);
            if seen > self.config.rate_limit.requests_per_second as isize {
                self.metrics.rate_limited();
                ctx.refused = true;
                tracing::info!(id = ctx.id(), client = %ip, "rate limited");
                self.respond(session, ctx, 429, &[("retry-after", "1".into())], "too many requests; slow down\n")
                    .await?;
                return Ok(true);
            }
        }
        let content_length =
            session.req_header().headers.get("content-length").map(|v| v.to_str().map(str::parse::<usize>));
        match content_length {
            Some(Ok(Ok(n))) if n > ctx.body_limit => {
                return self.refuse(session, ctx, Refusal { status: 413, reason: "request body too large" }).await
            }
            Some(Ok(Ok(_))) | None => {}
            Some(_) => return self.refuse(session, ctx, Refusal { status: 400, reason: "bad content-length" }).await,
        }
        session.set_read_timeout(Some(Duration::from_secs(self.config.client_timeout_secs)));
        ctx.to_preview = self.wants_preview(session);
        if ctx.to_preview {
            if self.preview.is_none() {
                self.respond(session, ctx, 404, &[], "no preview is served here\n").await?;
                return Ok(true);
            }
            if let Some(done) = self.preview_access(session, ctx).await? {
                return Ok(done);
            }
        }
        Ok(false)
    }

    /// Which site a request goes to: the preview if it came in on the preview listener or names
    /// the preview host.
    fn wants_preview(&self, session: &ServerSession) -> bool {
        let port_match = match (self.config.preview_listen, session.server_addr().and_then(|a| a.as_inet())) {
            (Some(p), Some(local)) => local.port() == p.port(),
            _ => false,
        };
        let host_match = self.config.preview_host.as_deref().is_some_and(|want| {
            let host = session.req_header().headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
            host.rsplit_once(':').map_or(host, |(h, _)| h).eq_ignore_ascii_case(want)
        });
        port_match || host_match
    }

    /// The headers every response gets: the security headers, the default Content-Security-Policy
    /// unless the site sent its own (`has_csp`), and the request id.
    fn response_headers<'a>(
        &'a self,
        has_csp: bool,
        id: &'a HeaderValue,
    ) -> impl Iterator<Item = (HeaderName, HeaderValue)> + 'a {
        let csp = self.csp.as_ref().filter(|_| !has_csp).map(|csp| (CONTENT_SECURITY_POLICY, csp.clone()));
        self.headers.iter().cloned().chain(csp).chain([(X_REQUEST_ID, id.clone())])
    }

    /// Security headers on a response built by Pingora (which keeps header case).
    pub(crate) fn secure(&self, resp: &mut ResponseHeader, id: &HeaderValue) -> Result<()> {
        let has_csp = resp.headers.contains_key(CONTENT_SECURITY_POLICY);
        for (name, value) in self.response_headers(has_csp, id) {
            resp.insert_header(name, value)?;
        }
        Ok(())
    }

    /// Security headers on a response from the site, before it becomes Pingora's: straight into
    /// its header map, without [`ResponseHeader::insert_header`]'s re-parsing of every name
    /// (which cost more than the rest of the edge's own work on a request).
    pub(crate) fn secure_map(&self, headers: &mut axum::http::HeaderMap, id: &HeaderValue) {
        let has_csp = headers.contains_key(CONTENT_SECURITY_POLICY);
        headers.reserve(self.headers.len() + 2);
        for (name, value) in self.response_headers(has_csp, id) {
            headers.insert(name, value);
        }
    }

    /// Answer from the edge itself, header and body in one write.
    pub(crate) async fn respond(
        &self,
        session: &mut ServerSession,
        ctx: &RequestCtx,
        status: u16,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> Result<()> {
        let mut resp = ResponseHeader::build(status, Some(8))?;
        resp.insert_header("content-type", "text/plain; charset=utf-8")?;
        resp.insert_header("content-length", body.len().to_string())?;
        resp.insert_header("cache-control", "no-store")?;
        for (name, value) in headers {
            resp.insert_header(*name, value.as_str())?;
        }
        self.secure(&mut resp, &ctx.id)?;
        let tasks = if session.req_header().method == "HEAD" {
            vec![HttpTask::Header(Box::new(resp), true)]
        } else {
            let body = Bytes::copy_from_slice(body.as_bytes());
            vec![HttpTask::Header(Box::new(resp), false), HttpTask::Body(Some(body), true)]
        };
        session.response_duplex_vec(tasks).await?;
        Ok(())
    }

    async fn refuse(&self, session: &mut ServerSession, ctx: &mut RequestCtx, refusal: Refusal) -> Result<bool> {
        ctx.refused = true;
        self.metrics.refused();
        tracing::info!(id = ctx.id(), status = refusal.status, reason = refusal.reason, "request refused at the edge");
        self.respond(session, ctx, refusal.status, &[], &format!("{}\n", refusal.reason)).await?;
        Ok(true)
    }

    /// Check the preview credential; `Ok(None)` lets the request through.
    async fn preview_access(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Result<Option<bool>> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let query = session.req_header().uri.query().unwrap_or("").to_string();
        let from_link = preview::token_from_query(&query);
        let from_cookie = session
            .req_header()
            .headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| preview::token_from_cookies(c).map(str::to_string));
        let Some(token) = from_link.clone().or(from_cookie) else {
            let body = "This is the preview of the site; open the preview link you were given.\n";
            self.respond(session, ctx, 401, &[], body).await?;
            return Ok(Some(true));
        };
        let verdict = self
            .keys
            .verify(&token, now)
            .map_err(|e| e.to_string())
            .and_then(|user| self.gate.allows(&user).map(|()| user));
        match verdict {
            Err(reason) => {
                tracing::info!(id = ctx.id(), %reason, "preview refused");
                self.respond(session, ctx, 403, &[], &format!("preview refused: {reason}\n")).await?;
                Ok(Some(true))
            }
            Ok(user) if from_link.is_some() => {
                // Keep the token in a cookie and drop it from the address bar.
                let rest = preview::query_without_token(&query);
                let path = session.req_header().uri.path().to_string();
                let location = if rest.is_empty() { path } else { format!("{path}?{rest}") };
                let secure = if self.config.tls.is_some() { "; Secure" } else { "" };
                let cookie = format!("{}={token}; Path=/; HttpOnly; SameSite=Lax{secure}", preview::COOKIE);
                tracing::info!(id = ctx.id(), %user, "preview link used");
                self.respond(session, ctx, 303, &[("location", location), ("set-cookie", cookie)], "").await?;
                Ok(Some(true))
            }
            Ok(_) => Ok(None),
        }
    }

    /// Count a body chunk against the request's limit.
    pub(crate) fn count_body(&self, ctx: &mut RequestCtx, chunk: &[u8]) -> Result<()> {
        ctx.body_seen += chunk.len();
        if ctx.body_seen > ctx.body_limit {
            return Err(Error::explain(pingora::ErrorType::HTTPStatus(413), "request body too large"));
        }
        Ok(())
    }

    /// The request is over: log and count it.
    pub(crate) fn finish(&self, session: &ServerSession, error: Option<&Error>, ctx: &RequestCtx) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.metrics.observe(status, elapsed.as_secs_f64());
        let req = session.req_header();
        tracing::info!(
            target: "whispercms::access",
            id = ctx.id(),
            client = %ctx.client.map(|c| c.to_string()).unwrap_or_default(),
            method = %req.method,
            path = %req.uri.path(),
            status,
            site = if ctx.to_preview { "preview" } else { "live" },
            micros = elapsed.as_micros() as u64,
            refused = ctx.refused,
            error = %error.map(|e| e.to_string()).unwrap_or_default(),
        );
    }
}
