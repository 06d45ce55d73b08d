//! The Pingora edge: each request is validated ([`crate::validate`]), rate limited per client
//! address, routed to the live site or the preview (by listener port or `Host`), held to a
//! preview credential when it goes to the preview, then handed to the site: by default the Axum
//! router is called in-process (no second HTTP hop, no wake-up of another runtime: on two cores
//! that hop cost three quarters of the throughput); with `upstream = "loopback"` it is proxied to
//! the site's loopback listener instead. Responses get security headers and the request id;
//! every request is logged and counted.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::{HttpPeer, Session};
use pingora::protocols::http::HttpTask;
use pingora::proxy::ProxyHttp;
use pingora::{Error, ErrorType, Result};
use pingora_limits::rate::Rate;

use crate::metrics::Metrics;
use crate::preview::{self, PreviewGate, PreviewKeys};
use crate::validate::{self, Refusal};
use crate::Config;

/// What the proxy needs besides its configuration.
pub struct Edge {
    pub config: Config,
    /// The live site: its router, and its loopback listener.
    pub live: Upstream,
    /// The preview, if there is one.
    pub preview: Option<Upstream>,
    pub keys: Arc<PreviewKeys>,
    pub gate: Arc<dyn PreviewGate>,
    pub metrics: Arc<Metrics>,
    rate: Rate,
    /// Requests between `new_ctx` and `logging`.
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

impl Edge {
    pub fn new(
        config: Config,
        live: Upstream,
        preview: Option<Upstream>,
        keys: Arc<PreviewKeys>,
        gate: Arc<dyn PreviewGate>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Edge {
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
}

/// Per-request state.
pub struct RequestCtx {
    id: String,
    started: Instant,
    client: Option<IpAddr>,
    to_preview: bool,
    body_limit: usize,
    body_seen: usize,
    refused: bool,
}

fn request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Edge {
    /// Which site a request goes to: the preview if it came in on the preview listener or names
    /// the preview host.
    fn wants_preview(&self, session: &Session) -> bool {
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

    /// Security headers on every response.
    fn secure(&self, resp: &mut ResponseHeader, id: &str) -> Result<()> {
        resp.insert_header("x-content-type-options", "nosniff")?;
        resp.insert_header("referrer-policy", "strict-origin-when-cross-origin")?;
        resp.insert_header("x-frame-options", "SAMEORIGIN")?;
        if resp.headers.get("content-security-policy").is_none() {
            resp.insert_header("content-security-policy", self.config.content_security_policy.as_str())?;
        }
        if self.config.tls.is_some() {
            resp.insert_header("strict-transport-security", "max-age=31536000")?;
        }
        resp.insert_header("x-request-id", id)?;
        Ok(())
    }

    /// Answer from the edge itself.
    async fn respond(
        &self,
        session: &mut Session,
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
        let head_only = session.req_header().method == "HEAD";
        session.write_response_header(Box::new(resp), head_only).await?;
        if !head_only {
            session.write_response_body(Some(Bytes::copy_from_slice(body.as_bytes())), true).await?;
        }
        Ok(())
    }

    async fn refuse(&self, session: &mut Session, ctx: &mut RequestCtx, refusal: Refusal) -> Result<bool> {
        ctx.refused = true;
        self.metrics.refused();
        tracing::info!(id = %ctx.id, status = refusal.status, reason = refusal.reason, "request refused at the edge");
        self.respond(session, ctx, refusal.status, &[], &format!("{}\n", refusal.reason)).await?;
        Ok(true)
    }

    /// Check the preview credential; `Ok(None)` lets the request through.
    async fn preview_access(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Option<bool>> {
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
                tracing::info!(id = %ctx.id, %reason, "preview refused");
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
                tracing::info!(id = %ctx.id, %user, "preview link used");
                self.respond(session, ctx, 303, &[("location", location), ("set-cookie", cookie)], "").await?;
                Ok(Some(true))
            }
            Ok(_) => Ok(None),
        }
    }
}

impl Edge {
    /// Call the site's router with this request and write its response.
    async fn serve_in_process(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let upstream = match (ctx.to_preview, &self.preview) {
            (true, Some(p)) => p,
            _ => &self.live,
        };
        // The body, within its limit (the limit was checked against Content-Length already;
        // chunked bodies are counted here).
        let mut body = Vec::new();
        while let Some(chunk) = session.read_request_body().await? {
            body.extend_from_slice(&chunk);
            if body.len() > ctx.body_limit {
                return Err(Error::explain(ErrorType::HTTPStatus(413), "request body too large"));
            }
        }
        let head = session.req_header();
        let mut request = axum::http::Request::builder().method(head.method.clone()).uri(head.uri.clone());
        for (name, value) in head.headers.iter() {
            request = request.header(name, value);
        }
        let request = request
            .header("x-request-id", ctx.id.as_str())
            .body(axum::body::Body::from(body))
            .map_err(|e| Error::explain(ErrorType::InternalError, e.to_string()))?;
        let response = match upstream.router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, mut body) = response.into_parts();
        let mut resp = ResponseHeader::build(parts.status.as_u16(), Some(parts.headers.len() + 8))?;
        for (name, value) in parts.headers.iter() {
            resp.append_header(name.clone(), value.clone())?;
        }
        self.secure(&mut resp, &ctx.id)?;
        let head_only = session.req_header().method == "HEAD";
        if head_only {
            session.write_response_header(Box::new(resp), true).await?;
            return Ok(());
        }
        // A page (the common case) goes out with its header in one write: one wake-up of the
        // client instead of three. Bodies of unknown or large size are streamed.
        let small = parts
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n <= 256 * 1024);
        if small {
            let data = body.collect().await.map_err(|e| Error::explain(ErrorType::InternalError, e.to_string()))?;
            let tasks = vec![HttpTask::Header(Box::new(resp), false), HttpTask::Body(Some(data.to_bytes()), true)];
            session.write_response_tasks(tasks).await?;
            return Ok(());
        }
        session.write_response_header(Box::new(resp), false).await?;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Error::explain(ErrorType::InternalError, e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                session.write_response_body(Some(data), false).await?;
            }
        }
        session.write_response_body(None, true).await?;
        Ok(())
    }
}

#[async_trait]
impl ProxyHttp for Edge {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
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

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        ctx.client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
        if self.draining.load(Ordering::SeqCst) {
            session.set_keepalive(None);
            let headers = [("retry-after", "1".to_string()), ("connection", "close".to_string())];
            self.respond(session, ctx, 503, &headers, "the server is restarting; try again\n").await?;
            return Ok(true);
        }
        let limits = &self.config.limits;
        let req = session.req_header();
        let method = req.method.as_str().to_string();
        let raw_target = req.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let headers = validate::headers(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())), limits);
        let content_length = req.headers.get("content-length").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let Err(r) = validate::method(&method) {
            return self.refuse(session, ctx, r).await;
        }
        if let Err(r) = headers {
            return self.refuse(session, ctx, r).await;
        }
        let path = match validate::target(&raw_target, limits) {
            Ok(p) => p,
            Err(r) => return self.refuse(session, ctx, r).await,
        };
        if let Some(ip) = ctx.client {
            let seen = self.rate.observe(&ip, 1);
            if seen > self.config.rate_limit.requests_per_second as isize {
                self.metrics.rate_limited();
                ctx.refused = true;
                tracing::info!(id = %ctx.id, client = %ip, "rate limited");
                self.respond(session, ctx, 429, &[("retry-after", "1".into())], "too many requests; slow down\n")
                    .await?;
                return Ok(true);
            }
        }
        ctx.body_limit = limits.body_limit(&path);
        if let Some(len) = content_length {
            match len.parse::<usize>() {
                Ok(n) if n > ctx.body_limit => {
                    return self.refuse(session, ctx, Refusal { status: 413, reason: "request body too large" }).await
                }
                Ok(_) => {}
                Err(_) => {
                    return self.refuse(session, ctx, Refusal { status: 400, reason: "bad content-length" }).await
                }
            }
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
        if self.config.upstream == crate::UpstreamMode::InProcess {
            self.serve_in_process(session, ctx).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        if let Some(b) = body {
            ctx.body_seen += b.len();
            if ctx.body_seen > ctx.body_limit {
                return Err(Error::explain(ErrorType::HTTPStatus(413), "request body too large"));
            }
        }
        Ok(())
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        let addr = match (ctx.to_preview, &self.preview) {
            (true, Some(p)) => p.address,
            _ => self.live.address,
        };
        let mut peer = HttpPeer::new(addr, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(2));
        peer.options.read_timeout = Some(Duration::from_secs(30));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut pingora::http::RequestHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        upstream.insert_header("x-request-id", ctx.id.as_str())?;
        if let Some(ip) = ctx.client {
            upstream.insert_header("x-forwarded-for", ip.to_string())?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        self.secure(resp, &ctx.id)
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut Self::CTX) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let elapsed = ctx.started.elapsed();
        self.metrics.observe(status, elapsed.as_secs_f64());
        let req = session.req_header();
        tracing::info!(
            target: "whispercms::access",
            id = %ctx.id,
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
