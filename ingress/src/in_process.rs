//! The edge's HTTP server for `upstream = "in-process"` (the default): Pingora's HTTP/1 and TLS
//! sessions, with the site's Axum router called as a function — no second HTTP hop, no wake-up
//! of another runtime, none of the proxy's per-request state machine (on two cores the loopback
//! hop cost half the throughput, the proxy machinery another third of what was left).
//!
//! It also owns the slow-client rule for request headers: each header must arrive within
//! `client_timeout_secs` in all. (Pingora's proxy gives every single read 60 s, so a client
//! trickling one byte a minute would hold its connection for ever.) An idle keep-alive
//! connection is closed after the same time.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderValue, Method};
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::protocols::http::{HttpTask, ServerSession};
use pingora::server::ShutdownWatch;
use pingora::{Error, ErrorType, Result};

use crate::edge::{forwarded_for, Answer, Edge, RequestCtx};

/// Responses up to this size are collected and written with their header in one write.
const ONE_WRITE: usize = 256 * 1024;

/// The in-process server (a Pingora HTTP application).
pub struct InProcess {
    pub edge: Edge,
}

/// What the edge keeps for a connection from one request to the next (Pingora carries it as the
/// connection's user context).
struct Connection {
    /// The client's address as an `X-Forwarded-For` value, formatted once.
    forwarded_for: Option<HeaderValue>,
}

impl Connection {
    fn of(session: &mut ServerSession) -> Box<Connection> {
        let kept = session.take_connection_user_context().and_then(|c| c.downcast::<Connection>().ok());
        kept.unwrap_or_else(|| {
            let client = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
            Box::new(Connection { forwarded_for: forwarded_for(client) })
        })
    }
}

#[async_trait]
impl HttpServerApp for InProcess {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        let edge = &self.edge;
        let deadline = edge.config.client_timeout();
        // The deadline below bounds the wait for the next request and the reading of its header;
        // Pingora's own timer on the same read would be a second one (`Some(0)`: no timer).
        session.set_keepalive(Some(0));
        // Requests a client sends before reading the answers are answered in order (without
        // this, Pingora closes the connection and drops them).
        session.set_pipelining_enabled(true);
        let mut stopping = shutdown.clone();
        let read = tokio::select! {
            biased;
            read = tokio::time::timeout(deadline, session.read_request()) => read,
            _ = stopping.wait_for(|stop| *stop) => return None,
        };
        match read {
            Err(_) => {
                tracing::debug!("request header not received in time; connection closed");
                return None;
            }
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return None,
            Ok(Err(e)) => {
                if e.etype == ErrorType::InvalidHTTPHeader {
                    let _ = session.respond_error(400).await;
                }
                tracing::debug!(error = %e, "unreadable request");
                return None;
            }
        }
        let connection = Connection::of(&mut session);
        // Pingora has set keep-alive from the request (off for HTTP/1.0 without `keep-alive`, or
        // `Connection: close`); only a shutdown turns it off here. (Setting it again would turn
        // it back on for an HTTP/1.0 client, which then waits for a close that never comes.)
        if *shutdown.borrow() {
            session.set_keepalive(None);
        }
        let mut ctx = edge.begin();
        let result = self.handle(&mut session, &mut ctx, &connection).await;
        if let Err(e) = &result {
            if session.response_written().is_none() {
                // The client's fault says why; the server's does not show its insides.
                let (status, why) = match e.etype {
                    ErrorType::HTTPStatus(s) => (s, reason(e)),
                    ErrorType::ReadTimedout => (408, reason(e)),
                    ErrorType::InternalError => (500, "internal error".to_string()),
                    _ => (400, reason(e)),
                };
                let _ = edge.respond(&mut session, &ctx, Answer::text(status, format!("{why}\n")).closing()).await;
            }
        }
        edge.finish_session(&session, result.as_ref().err().map(|e| e.as_ref()), &ctx);
        if result.is_err() {
            return None;
        }
        let mut persistent = HttpPersistentSettings::for_session(&session);
        persistent.set_user_context(connection);
        match session.finish().await {
            Ok(Some(stream)) => Some(ReusedHttpStream::from_reusable_stream(stream, persistent)),
            _ => None,
        }
    }
}

/// The request, moved out of the session for the site: only its method and target stay behind,
/// for the access log and for the response (a HEAD has no body). Moving saves copying every
/// header.
fn take_request(session: &mut ServerSession) -> axum::http::request::Parts {
    let header = session.req_header();
    let (mut stub, ()) = axum::http::Request::new(()).into_parts();
    stub.method = header.method.clone();
    stub.uri = header.uri.clone();
    stub.version = header.version;
    std::mem::replace(session.req_header_mut(), RequestHeader::from(stub)).into()
}

/// What to tell the client about `e`: its explanation, or its type when it has none.
fn reason(e: &Error) -> String {
    e.context.as_ref().map_or_else(|| e.etype.as_str().to_string(), |c| c.to_string())
}

impl InProcess {
    /// Admit the request, call the router, write its response.
    async fn handle(&self, session: &mut ServerSession, ctx: &mut RequestCtx, connection: &Connection) -> Result<()> {
        use http_body_util::BodyExt;
        if self.edge.admit_session(session, ctx).await? {
            return Ok(());
        }
        // A client that asks before sending its body (curl does above 1 KiB) is told to go on
        // only now that the request is admitted (its declared length within the limit).
        let expects = session.req_header().headers.get("expect").and_then(|v| v.to_str().ok());
        if expects.is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
            session.write_continue_response().await?;
        }
        let mut body = Vec::new();
        // (Asked first: reading an absent body still sets up a read timer.)
        while !session.is_body_done() {
            let Some(chunk) = session.read_request_body().await? else { break };
            self.edge.count_body(ctx, &chunk)?;
            body.extend_from_slice(&chunk);
        }
        let parts = take_request(session);
        let response = self.edge.call_site(parts, body.into(), ctx, connection.forwarded_for.as_ref()).await;
        let (parts, mut body) = response.into_parts();
        let length = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let resp = ResponseHeader::from(parts);
        if session.req_header().method == Method::HEAD {
            session.response_duplex_vec(vec![HttpTask::Header(Box::new(resp), true)]).await?;
            return Ok(());
        }
        let internal = |e: axum::Error| Error::explain(ErrorType::InternalError, e.to_string());
        // A page (the common case) goes out with its header in one write: one wake-up of the
        // client instead of two. Bodies of unknown or large size are streamed.
        if length.is_some_and(|n: usize| n <= ONE_WRITE) {
            let data = body.collect().await.map_err(internal)?.to_bytes();
            let tasks = vec![HttpTask::Header(Box::new(resp), false), HttpTask::Body(Some(data), true)];
            session.response_duplex_vec(tasks).await?;
            return Ok(());
        }
        session.write_response_header(Box::new(resp)).await?;
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(internal)?.into_data() {
                session.write_response_body(data, false).await?;
            }
        }
        session.finish_body().await?;
        Ok(())
    }
}
