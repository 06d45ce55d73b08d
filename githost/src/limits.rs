//! Bounds on what one client may cost the server.
//!
//! Every number here is a guard against a hostile or broken client, with defaults generous enough
//! that no ordinary site ever meets them. They are configurable (`[limits]` in `settings.toml`).

use std::time::Duration;

/// Resource limits for pushes and sessions.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest pack a single push may send, in bytes.
    pub max_pack_bytes: u64,
    /// Largest single object (after delta resolution), in bytes.
    pub max_object_bytes: u64,
    /// Longest delta chain accepted in a pushed pack.
    pub max_delta_depth: u32,
    /// Threads used to index a received pack.
    pub index_threads: usize,
    /// A session with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// No session may last longer than this.
    pub session_timeout: Duration,
    /// Concurrent connections accepted from one IP address.
    pub max_connections_per_ip: usize,
    /// Concurrent authenticated connections in total.
    pub max_connections: usize,
    /// Concurrent connections not yet authenticated (counted apart, so that strangers holding
    /// connections open cannot lock users out: OpenSSH's `MaxStartups`).
    pub max_unauthenticated: usize,
    /// A connection not authenticated this long after it opened is closed (OpenSSH's
    /// `LoginGraceTime`).
    pub login_grace: Duration,
    /// Memory all clones and fetches together may use to make packs; past it, further ones
    /// wait their turn ([`crate::budget`]).
    pub pack_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pack_bytes: 2 * 1024 * 1024 * 1024,
            max_object_bytes: 100 * 1024 * 1024,
            max_delta_depth: 1000,
            index_threads: 2,
            idle_timeout: Duration::from_secs(300),
            session_timeout: Duration::from_secs(3600),
            max_connections_per_ip: 32,
            max_connections: 512,
            max_unauthenticated: 64,
            login_grace: Duration::from_secs(30),
            pack_memory_bytes: 256 * 1024 * 1024,
        }
    }
}
