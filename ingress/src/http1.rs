//! The edge's HTTP/1 server (with `upstream = "in-process"`, the default): hyper's HTTP/1 codec
//! on the connections Pingora accepts (and decrypts, with TLS), the edge's admission
//! ([`crate::edge`]) on every request, then the site's Axum router called in-process. HTTP/2
//! connections (ALPN `h2`) go on to Pingora's own sessions ([`crate::in_process`]), as do all
//! connections with `http1 = "pingora"`.
//!
//! Why hyper for HTTP/1 and not Pingora's session: Pingora builds a new session for every request
//! (fresh buffers, header maps that keep each name's case, a re-parse of every header it adds),
//! which took the edge to 45k instructions per request against 24k for Axum served straight —
//! 40–50% of direct throughput lost on the benchmark. hyper (the codec Axum itself serves with)
//! keeps its buffers per connection: 30k. See `scripts/bench-edge-instructions.sh`.
//!
//! Slow clients: a request head must arrive within `client_timeout_secs`, and a response be taken
//! with some progress in every such period ([`crate::watchdog`], which also closes a keep-alive
//! connection idle that long); a body must arrive within the same time in all.

use std::convert::Infallible;
use std::sync::Arc;

use async_trait::async_trait;
use std::fmt::Display;

use axum::http::{HeaderValue, Method, Request, Uri};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Body as _, Incoming};
use hyper_util::rt::TokioIo;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;

use crate::edge::{forwarded_for, Answer, Peer, RequestCtx};
use crate::in_process::InProcess;
use crate::validate::Refusal;
use crate::watchdog::{Deadline, Watchdog};

/// The HTTP/1 server (a Pingora application taking whole connections).
pub struct Http1 {
    /// Where HTTP/2 connections go; it also holds the edge.
    pub pingora: Arc<InProcess>,
    /// Closes the connections of slow clients.
    pub watchdog: Watchdog,
}

/// What the edge knows of a connection, for each of its requests.
struct Connection {
    /// The server, held once per connection: a clone per request would pull the one shared
    /// reference count from core to core.
    app: Arc<Http1>,
    peer: Peer,
    /// The client's address as an `X-Forwarded-For` value, formatted once.
    forwarded_for: Option<HeaderValue>,
    deadline: Arc<Deadline>,
}

#[async_trait]
impl ServerApp for Http1 {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.pingora.process_new(stream, shutdown).await;
        }
        let config = &self.pingora.edge.config;
        let digest = stream.get_socket_digest();
        let inet = |a: Option<&pingora::protocols::l4::socket::SocketAddr>| a.and_then(|a| a.as_inet()).copied();
        let peer = Peer {
            client: inet(digest.as_ref().and_then(|d| d.peer_addr())).map(|a| a.ip()),
            local_port: inet(digest.as_ref().and_then(|d| d.local_addr())).map(|a| a.port()),
        };
        let deadline = self.watchdog.watch();
        let io = TokioIo::new(deadline.clone().watched(stream));
        let connection = Arc::new(Connection {
            app: self.clone(),
            forwarded_for: forwarded_for(peer.client),
            peer,
            deadline: deadline.clone(),
        });
        let service = hyper::service::service_fn(move |request| {
            let connection = connection.clone();
            async move { Ok::<_, Infallible>(Http1::serve(connection, request).await) }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            // The watchdog's instead: see `crate::watchdog`.
            .header_read_timeout(None)
            // hyper's own limit sits above the edge's: the edge decides (and logs and counts).
            .max_headers(config.limits.max_headers.saturating_add(1).max(100));
        let serving = builder.serve_connection(io, service);
        tokio::pin!(serving);
        // Counted until closed, and closed once the edge drains: shutdown waits for the answer in
        // progress to be sent. (A connection opened while draining is neither: its requests are
        // answered 503, and it ends with the edge, when Pingora shuts down — which it does only
        // after the edge has drained, so one signal is watched, never both.)
        let drain = &self.pingora.edge.drain;
        // Counted first, then checked: a drain that starts in between sees the count.
        let counted = Some(drain.count()).filter(|_| !drain.is_draining());
        let drain = counted.as_ref().map(|_| drain.clone());
        let mut stopping = shutdown.clone();
        let stopped = async move {
            match drain {
                Some(drain) => drain.started().await,
                None => {
                    let _ = stopping.wait_for(|stop| *stop).await;
                }
            }
        };
        let result = tokio::select! {
            // The connection first: it is what wakes this task, request after request.
            biased;
            result = serving.as_mut() => result,
            () = stopped => {
                if deadline.before_first_request() {
                    // Nothing to finish. (hyper would wait for a first head it has begun to read,
                    // holding the shutdown up as long as the client likes.)
                    Ok(())
                } else {
                    // Finish the answer in progress, if any, then close.
                    serving.as_mut().graceful_shutdown();
                    serving.await
                }
            }
        };
        drop(counted);
        if let Err(e) = result {
            // A request hyper's parser refused (it has answered 400, 414 or 431 itself) counts as
            // refused at the edge, as the edge's own refusals do.
            if e.is_parse() || e.is_parse_too_large() {
                self.pingora.edge.metrics.refused();
            }
            tracing::debug!(error = %e, "HTTP/1 connection ended");
        }
        None
    }
}

/// A request being answered, finished (counted, logged, its connection's wait for the next
/// request head begun) when dropped: at the end of [`Http1::serve`] with its response's status,
/// or with the request's future if the client left first and hyper dropped it — as 499 then,
/// nginx's "client closed request" (500 if the site panicked), and not left in flight.
struct Answering {
    connection: Arc<Connection>,
    method: Method,
    uri: Uri,
    ctx: RequestCtx,
    /// The response's status, once there is a response.
    status: Option<u16>,
}

impl Drop for Answering {
    fn drop(&mut self) {
        let edge = &self.connection.app.pingora.edge;
        let (status, error): (u16, Option<&dyn Display>) = match self.status {
            Some(status) => (status, None),
            // The site panicked (hyper ends the connection).
            None if std::thread::panicking() => (500, Some(&"the site panicked")),
            None => (499, Some(&"the client left before the answer")),
        };
        edge.finish(&self.method, self.uri.path(), status, error, &self.ctx);
        self.connection.deadline.answered();
    }
}

impl Http1 {
    /// One request: admitted, then answered by the site (or by the edge itself).
    async fn serve(connection: Arc<Connection>, request: Request<Incoming>) -> Response {
        connection.deadline.answering();
        let ctx = connection.app.pingora.edge.begin();
        let (parts, body) = request.into_parts();
        let (method, uri) = (parts.method.clone(), parts.uri.clone());
        let mut answering = Answering { method, uri, ctx, status: None, connection };
        let Answering { connection, ctx, .. } = &mut answering;
        let (app, edge) = (&connection.app, &connection.app.pingora.edge);
        let response = match edge.admit(&parts, &connection.peer, ctx) {
            Some(answer) => edge.answer_response(answer, ctx),
            None => match app.call_site(parts, body, ctx, connection).await {
                Ok(response) => response,
                Err(answer) => edge.answer_response(answer, ctx),
            },
        };
        answering.status = Some(response.status().as_u16());
        drop(answering);
        response
    }

    /// Read the body (within its limit and the client timeout) and call the site.
    async fn call_site(
        &self,
        parts: axum::http::request::Parts,
        body: Incoming,
        ctx: &mut RequestCtx,
        connection: &Connection,
    ) -> Result<Response, Answer> {
        let edge = &self.pingora.edge;
        let body = if body.is_end_stream() {
            Bytes::new()
        } else {
            // Polling the body is what sends `100 Continue` to a client that asked: only now,
            // with the request admitted (its declared length within the limit).
            let limited = Limited::new(body, ctx.body_limit).collect();
            match tokio::time::timeout(edge.config.client_timeout(), limited).await {
                Ok(Ok(collected)) => collected.to_bytes(),
                Ok(Err(e)) if e.is::<LengthLimitError>() => {
                    return Err(edge.refuse(ctx, Refusal { status: 413, reason: "request body too large" }).closing())
                }
                Ok(Err(e)) => {
                    tracing::debug!(id = ctx.id(), error = %e, "unreadable request body");
                    return Err(Answer::text(400, "unreadable request body\n").closing());
                }
                Err(_) => return Err(Answer::text(408, "request body not received in time\n").closing()),
            }
        };
        Ok(edge.call_site(parts, body, ctx, connection.forwarded_for.as_ref()).await)
    }
}
