//! `upstream = "loopback"`: Pingora's proxy in front of the site's loopback listener. The edge's
//! rules ([`crate::edge`]) run in `request_filter`; the request then travels over a second HTTP
//! connection. Kept for deployments that run the site apart from the edge, and as the
//! benchmark's measure of what the in-process call saves.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::prelude::{HttpPeer, Session};
use pingora::proxy::ProxyHttp;
use pingora::{Error, Result};

use crate::edge::{Edge, RequestCtx, X_REQUEST_ID};

/// The proxy (a Pingora `ProxyHttp`).
pub struct Loopback {
    pub edge: Edge,
}

#[async_trait]
impl ProxyHttp for Loopback {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> Self::CTX {
        self.edge.begin()
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut Self::CTX) -> Result<bool> {
        self.edge.admit_session(session.as_downstream_mut(), ctx).await
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut Self::CTX,
    ) -> Result<()> {
        match body {
            Some(b) => self.edge.count_body(ctx, b),
            None => Ok(()),
        }
    }

    async fn upstream_peer(&self, _session: &mut Session, ctx: &mut Self::CTX) -> Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.edge.upstream(ctx).address, false, String::new());
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
        upstream.insert_header(X_REQUEST_ID, ctx.id.clone())?;
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
        self.edge.secure(resp, &ctx.id)
    }

    async fn logging(&self, session: &mut Session, error: Option<&Error>, ctx: &mut Self::CTX) {
        self.edge.finish_session(session.as_downstream(), error, ctx);
    }
}
