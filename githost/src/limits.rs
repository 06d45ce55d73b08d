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
    /// Concurrent connections in total.
    pub max_connections: usize,
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
            pack_memory_bytes: 256 * 1024 * 1024,
        }
    }
}
