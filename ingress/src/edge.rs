//! What the edge does with every request, however it then reaches the site: turn it away while
//! draining, validate it ([`crate::validate`]), limit each client address's rate, pick the live
//! site or the preview (by listener port or `Host`), hold the preview to its credential, and —
//! once answered — log and count it. Responses get security headers and the request id.
//!
//! Admission works on the request head alone ([`Edge::admit`]), so every front end shares it:
//! hyper's HTTP/1 ([`crate::http1`]), Pingora's sessions for HTTP/2 ([`crate::in_process`]) and
//! the loopback proxy ([`crate::proxy`]).

use std::fmt::Display;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION,
    RETRY_AFTER, SET_COOKIE,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::{Error, Result};
use pingora_limits::rate::Rate;

use crate::drain::Drain;
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
    /// Shutting down: new requests are turned away, those in flight finish.
    pub(crate) drain: Arc<Drain>,
}

/// A site behind the edge.
#[derive(Clone)]
pub struct Upstream {
    /// Called in-process.
    pub router: axum::Router,
    /// Proxied to with `upstream = "loopback"`.
    pub address: SocketAddr,
}

/// A request's head, as the edge sees it (Pingora's request header dereferences to it).
pub(crate) type RequestParts = axum::http::request::Parts;

/// What the edge needs to know of a request's connection.
pub(crate) struct Peer {
    pub(crate) client: Option<IpAddr>,
    /// The port the request came in on (the preview may have a listener of its own).
    pub(crate) local_port: Option<u16>,
}

/// The edge's own answer to a request (a refusal, a redirect): a short plain text.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: String,
    /// Close the connection after it (the request's body, if any, is not read).
    pub(crate) close: bool,
}

impl Answer {
    pub(crate) fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer { status, headers: Vec::new(), body: body.into(), close: false }
    }

    pub(crate) fn closing(mut self) -> Answer {
        self.close = true;
        self
    }
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
/// The client's address, for the site (whatever the client sent is replaced).
pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A random request id: 16 lowercase hex digits. (Written by hand because `format!` cost more
/// than everything else `begin` does; the digits are the value's own shared allocation, so the
/// copies into the request and the response are reference counts, not copies.)
fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = rand::random::<u64>();
    let mut digits = [0u8; 16];
    for (i, d) in digits.iter_mut().enumerate() {
        *d = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_maybe_shared(Bytes::from_owner(digits)).unwrap_or(HeaderValue::from_static("0"))
}

/// A client's address in the access log (`-` when unknown), written without a `String` of its own.
struct ClientForLog(Option<IpAddr>);

impl Display for ClientForLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(ip) => Display::fmt(ip, f),
            None => f.write_str("-"),
        }
    }
}

/// The client's address as an `X-Forwarded-For` value (formatted once per connection).
pub(crate) fn forwarded_for(client: Option<IpAddr>) -> Option<HeaderValue> {
    client.and_then(|c| HeaderValue::try_from(c.to_string()).ok())
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
            drain: Arc::default(),
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
        self.metrics.began();
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

    /// Everything that decides whether a request may reach the site: `None` lets it through,
    /// with `ctx` saying where to and how large its body may be; otherwise the edge's own answer
    /// (refused, rate limited, a preview redirect). Works on the request head alone, so every
    /// front end (Pingora's sessions, hyper's HTTP/1) shares it.
    pub(crate) fn admit(&self, req: &RequestParts, peer: &Peer, ctx: &mut RequestCtx) -> Option<Answer> {
        ctx.client = peer.client;
        if self.drain.is_draining() {
            let mut answer = Answer::text(503, "the server is restarting; try again\n").closing();
            answer.headers.push((RETRY_AFTER, HeaderValue::from_static("1")));
            return Some(answer);
        }
        let limits = &self.config.limits;
        if let Err(r) = validate::method(req.method.as_str()) {
            return Some(self.refuse(ctx, r));
        }
        if let Err(r) = validate::headers(req.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())), limits) {
            return Some(self.refuse(ctx, r));
        }
        let raw_target = req.uri.path_and_query().map_or("/", |p| p.as_str());
        ctx.body_limit = match validate::target(raw_target, limits) {
            Ok(path) => limits.body_limit(&path),
            Err(r) => return Some(self.refuse(ctx, r)),
        };
        if let Some(ip) = ctx.client {
            let seen = self.rate.observe(&ip, 1);
            if seen > self.config.rate_limit.requests_per_second as isize {
                self.metrics.rate_limited();
                ctx.refused = true;
                tracing::info!(id = ctx.id(), client = %ip, "rate limited");
                let mut answer = Answer::text(429, "too many requests; slow down\n");
                answer.headers.push((RETRY_AFTER, HeaderValue::from_static("1")));
                return Some(answer);
            }
        }
        let content_length = req.headers.get(CONTENT_LENGTH).map(|v| v.to_str().map(str::parse::<usize>));
        match content_length {
            Some(Ok(Ok(n))) if n > ctx.body_limit => {
                return Some(self.refuse(ctx, Refusal { status: 413, reason: "request body too large" }).closing())
            }
            Some(Ok(Ok(_))) | None => {}
            Some(_) => return Some(self.refuse(ctx, Refusal { status: 400, reason: "bad content-length" }).closing()),
        }
        ctx.to_preview = self.wants_preview(req, peer);
        if ctx.to_preview {
            if self.preview.is_none() {
                return Some(Answer::text(404, "no preview is served here\n"));
            }
            return self.preview_access(req, ctx);
        }
        None
    }

    /// [`Edge::admit`] on a Pingora session, answering there. `Ok(true)` when answered.
    pub(crate) async fn admit_session(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Result<bool> {
        let peer = Peer {
            client: session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip()),
            local_port: session.server_addr().and_then(|a| a.as_inet()).map(|a| a.port()),
        };
        let Some(answer) = self.admit(session.req_header(), &peer, ctx) else {
            session.set_read_timeout(Some(self.config.client_timeout()));
            return Ok(false);
        };
        self.respond(session, ctx, answer).await?;
        Ok(true)
    }

    /// Which site a request goes to: the preview if it came in on the preview listener or names
    /// the preview host.
    fn wants_preview(&self, req: &RequestParts, peer: &Peer) -> bool {
        let port_match = match (self.config.preview_listen, peer.local_port) {
            (Some(p), Some(local)) => local == p.port(),
            _ => false,
        };
        let host_match = self.config.preview_host.as_deref().is_some_and(|want| {
            let host = req.headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            host.rsplit_once(':').map_or(host, |(h, _)| h).eq_ignore_ascii_case(want)
        });
        port_match || host_match
    }

    /// Security headers on a response from the site, before it goes out: straight into its
    /// header map (this runs on every response). The default Content-Security-Policy only where
    /// the site sent none; the request id.
    pub(crate) fn secure_map(&self, headers: &mut HeaderMap, id: &HeaderValue) {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some(csp) = &self.csp {
            headers.entry(CONTENT_SECURITY_POLICY).or_insert_with(|| csp.clone());
        }
        headers.insert(X_REQUEST_ID, id.clone());
    }

    /// The same headers on a response Pingora's proxy read from the site (which keeps header
    /// case, so they go in through [`ResponseHeader::insert_header`]).
    pub(crate) fn secure(&self, resp: &mut ResponseHeader, id: &HeaderValue) -> Result<()> {
        let mut added = HeaderMap::new();
        if let Some(csp) = resp.headers.get(CONTENT_SECURITY_POLICY) {
            added.insert(CONTENT_SECURITY_POLICY, csp.clone());
        }
        self.secure_map(&mut added, id);
        for (name, value) in &added {
            resp.insert_header(name.clone(), value.clone())?;
        }
        Ok(())
    }

    /// The call of the site itself, for the in-process servers: the request (its body read)
    /// with the request id and the client's address, the site's router, the security headers.
    pub(crate) async fn call_site(
        &self,
        mut parts: RequestParts,
        body: Bytes,
        ctx: &RequestCtx,
        forwarded_for: Option<&HeaderValue>,
    ) -> axum::response::Response {
        use tower::ServiceExt;
        parts.headers.insert(X_REQUEST_ID, ctx.id.clone());
        if let Some(client) = forwarded_for {
            parts.headers.insert(X_FORWARDED_FOR, client.clone());
        }
        let body = if body.is_empty() { axum::body::Body::empty() } else { axum::body::Body::from(body) };
        let request = axum::http::Request::from_parts(parts, body);
        let mut response = match self.upstream(ctx).router.clone().oneshot(request).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        self.secure_map(response.headers_mut(), &ctx.id);
        response
    }

    /// The head of the edge's own answer (`Connection: close` only where HTTP/1 allows it).
    fn answer_head(&self, answer: &Answer, ctx: &RequestCtx, http2: bool) -> axum::http::response::Parts {
        let (mut head, ()) = axum::http::Response::new(()).into_parts();
        head.status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = &mut head.headers;
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(answer.body.len()));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if answer.close && !http2 {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        }
        for (name, value) in &answer.headers {
            headers.append(name.clone(), value.clone());
        }
        self.secure_map(headers, &ctx.id);
        head
    }

    /// The edge's own answer as a response of the `http` crate (for hyper).
    pub(crate) fn answer_response(&self, answer: Answer, ctx: &RequestCtx) -> axum::response::Response {
        let head = self.answer_head(&answer, ctx, false);
        axum::response::Response::from_parts(head, axum::body::Body::from(answer.body))
    }

    /// Answer on a Pingora session, header and body in one write.
    pub(crate) async fn respond(&self, session: &mut ServerSession, ctx: &RequestCtx, answer: Answer) -> Result<()> {
        if answer.close {
            session.set_keepalive(None);
        }
        let resp = Box::new(ResponseHeader::from(self.answer_head(&answer, ctx, session.is_http2())));
        let tasks = if session.req_header().method == Method::HEAD {
            vec![HttpTask::Header(resp, true)]
        } else {
            vec![HttpTask::Header(resp, false), HttpTask::Body(Some(Bytes::from(answer.body)), true)]
        };
        session.response_duplex_vec(tasks).await?;
        Ok(())
    }

    /// A refusal: counted, logged, answered.
    pub(crate) fn refuse(&self, ctx: &mut RequestCtx, refusal: Refusal) -> Answer {
        ctx.refused = true;
        self.metrics.refused();
        tracing::info!(id = ctx.id(), status = refusal.status, reason = refusal.reason, "request refused at the edge");
        Answer::text(refusal.status, format!("{}\n", refusal.reason))
    }

    /// Check the preview credential; `None` lets the request through.
    fn preview_access(&self, req: &RequestParts, ctx: &mut RequestCtx) -> Option<Answer> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let query = req.uri.query().unwrap_or("");
        let from_link = preview::token_from_query(query);
        let from_cookie = req
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| preview::token_from_cookies(c).map(str::to_string));
        let Some(token) = from_link.clone().or(from_cookie) else {
            return Some(Answer::text(401, "This is the preview of the site; open the preview link you were given.\n"));
        };
        let verdict = self
            .keys
            .verify(&token, now)
            .map_err(|e| e.to_string())
            .and_then(|user| self.gate.allows(&user).map(|()| user));
        match verdict {
            Err(reason) => {
                tracing::info!(id = ctx.id(), %reason, "preview refused");
                Some(Answer::text(403, format!("preview refused: {reason}\n")))
            }
            Ok(user) if from_link.is_some() => {
                // Keep the token in a cookie and drop it from the address bar.
                let rest = preview::query_without_token(query);
                let path = req.uri.path();
                let location = if rest.is_empty() { path.to_string() } else { format!("{path}?{rest}") };
                let secure = if self.config.tls.is_some() { "; Secure" } else { "" };
                let cookie = format!("{}={token}; Path=/; HttpOnly; SameSite=Lax{secure}", preview::COOKIE);
                tracing::info!(id = ctx.id(), %user, "preview link used");
                let mut answer = Answer::text(303, "");
                for (name, value) in [(LOCATION, location), (SET_COOKIE, cookie)] {
                    // Both are built from a path and a token that were valid header text.
                    let value = HeaderValue::try_from(value).ok()?;
                    answer.headers.push((name, value));
                }
                Some(answer)
            }
            Ok(_) => None,
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
    pub(crate) fn finish(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        error: Option<&dyn Display>,
        ctx: &RequestCtx,
    ) {
        let elapsed = ctx.started.elapsed();
        self.metrics.observe(status, elapsed.as_secs_f64());
        // Written with `%`, not `?`: the id is hex and a URI's path printable ASCII without
        // spaces (the http crate checks it), so neither needs the quoting and escaping `?` does,
        // which was a third of the line's cost. No `error` field when there is none.
        tracing::info!(
            target: "whispercms::access",
            id = %ctx.id(),
            client = %ClientForLog(ctx.client),
            method = %method,
            path = %path,
            status,
            site = %if ctx.to_preview { "preview" } else { "live" },
            micros = elapsed.as_micros() as u64,
            refused = ctx.refused,
            error = error.map(tracing::field::display),
        );
    }

    /// [`Edge::finish`] for a Pingora session.
    pub(crate) fn finish_session(&self, session: &ServerSession, error: Option<&Error>, ctx: &RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let req = session.req_header();
        self.finish(&req.method, req.uri.path(), status, error.map(|e| e as &dyn Display), ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_address_is_logged_as_itself_or_a_dash() {
        assert_eq!(ClientForLog(Some(IpAddr::from([192, 0, 2, 7]))).to_string(), "192.0.2.7");
        assert_eq!(ClientForLog(Some("2001:db8::1".parse().unwrap())).to_string(), "2001:db8::1");
        assert_eq!(ClientForLog(None).to_string(), "-");
    }

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_differ() {
        let ids: Vec<HeaderValue> = (0..100).map(|_| request_id()).collect();
        for id in &ids {
            let id = id.to_str().unwrap();
            assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{id}");
        }
        let mut unique: Vec<_> = ids.iter().map(|id| id.as_bytes()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        // A copy is the same value.
        assert_eq!(ids[0].clone(), ids[0]);
    }
}
