//! At most `max_connections_per_ip` open connections from one client address: a client that
//! opens hundreds of idle connections cannot starve the others. The rate limit counts requests;
//! this counts connections, which a slow or silent client holds without making requests. A
//! connection over the cap is closed at once (before any HTTP is read) and counted in the
//! metrics.
//!
//! A wrapper around the edge's Pingora application, because Pingora's connection filter sees
//! connections open but not close.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;

use crate::metrics::Metrics;

/// Open connections by client address.
#[derive(Debug, Default)]
pub struct Counts {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection, counted until dropped.
pub struct Slot<'a> {
    counts: &'a Counts,
    ip: IpAddr,
}

impl Counts {
    /// Count a connection from `ip`, unless `max` are open already.
    pub fn acquire(&self, ip: IpAddr, max: usize) -> Option<Slot<'_>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { counts: self, ip })
    }

    /// Connections open from `ip`.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.open.lock().map(|o| o.get(&ip).copied().unwrap_or(0)).unwrap_or(0)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// An application whose connections are capped per client address.
pub struct PerAddressCap<A> {
    pub inner: Arc<A>,
    pub max: usize,
    pub counts: Counts,
    pub metrics: Arc<Metrics>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for PerAddressCap<A> {
    async fn process_new(self: &Arc<Self>, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let peer = stream.get_socket_digest().and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let _slot = match peer {
            Some(ip) => match self.counts.acquire(ip, self.max) {
                Some(slot) => Some(slot),
                None => {
                    self.metrics.connection_refused();
                    tracing::info!(client = %ip, max = self.max, "too many connections from one address; closed");
                    return None;
                }
            },
            None => None,
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_releases_on_drop() {
        let counts = Counts::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let first = counts.acquire(a, 2).unwrap();
        let second = counts.acquire(a, 2).unwrap();
        assert!(counts.acquire(a, 2).is_none(), "a third from the same address");
        assert!(counts.acquire(b, 2).is_some(), "another address is not affected");
        drop(first);
        assert_eq!(counts.open(a), 1);
        let third = counts.acquire(a, 2);
        assert!(third.is_some());
        drop((second, third));
        assert_eq!(counts.open(a), 0);
        assert!(counts.open.lock().unwrap().is_empty(), "no entry left behind");
    }
}
