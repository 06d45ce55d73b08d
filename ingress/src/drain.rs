//! Draining on shutdown: the flag every request checks (new requests are answered 503 once it is
//! set), the signal hyper's HTTP/1 connections wait on, and the count of those connections.
//!
//! On the signal a connection finishes the answer it is sending, however long the client takes
//! to read it (within the watchdog's limits), then closes; an idle one closes at once. Shutdown
//! waits for the count to reach zero (and for the requests in flight on Pingora's own sessions),
//! up to `shutdown_timeout_secs`, before Pingora stops its runtimes — which would cut whatever
//! they still carry.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The edge's draining state.
pub struct Drain {
    flag: AtomicBool,
    signal: tokio::sync::watch::Sender<bool>,
    connections: Arc<AtomicUsize>,
}

impl Default for Drain {
    fn default() -> Self {
        Drain {
            flag: AtomicBool::new(false),
            signal: tokio::sync::watch::channel(false).0,
            connections: Arc::default(),
        }
    }
}

/// One open connection of hyper's, counted until dropped.
pub struct Counted(Arc<AtomicUsize>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drain {
    /// Whether the edge is shutting down. (Sequentially consistent with the in-flight counts:
    /// see [`crate::metrics::Metrics::in_flight`].)
    pub fn is_draining(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Start draining: new requests are refused, hyper's connections told to close.
    pub fn start(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.signal.send_replace(true);
    }

    /// Resolves once draining has started (at once if it has).
    pub async fn started(&self) {
        let mut signal = self.signal.subscribe();
        let _ = signal.wait_for(|draining| *draining).await;
    }

    /// Count a connection while the returned guard lives.
    pub fn count(&self) -> Counted {
        self.connections.fetch_add(1, Ordering::SeqCst);
        Counted(self.connections.clone())
    }

    /// hyper's connections still open.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_are_counted_while_open_and_told_when_draining_starts() {
        let drain = Arc::new(Drain::default());
        let (a, b) = (drain.count(), drain.count());
        assert_eq!(drain.connections(), 2);
        drop(a);
        assert_eq!(drain.connections(), 1);
        let waiting = tokio::spawn({
            let drain = drain.clone();
            async move { drain.started().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished() && !drain.is_draining());
        drain.start();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert!(drain.is_draining());
        // A connection that starts waiting afterwards is told at once.
        tokio::time::timeout(std::time::Duration::from_secs(5), drain.started()).await.unwrap();
        drop(b);
        assert_eq!(drain.connections(), 0);
    }
}
