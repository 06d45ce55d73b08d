//! Metrics of the edge in the Prometheus text format: requests by status, a latency histogram,
//! requests in flight, requests refused by the rate limiter and by validation, connections
//! refused over the per-address cap. The server adds its own lines (the snapshot commit, the last
//! publish) when it serves `/metrics` on its admin listener.
//!
//! Plain atomics rather than a metrics crate: a handful of counters, rendered in one function.
//! The counters every request touches are kept per worker thread ([`Shard`]) and summed when
//! rendered: one shared set would have its cache lines pulled from core to core on every request.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Shards of the per-request counters; threads beyond this many share them.
const SHARDS: usize = 8;

/// Counters, shared by all requests.
pub struct Metrics {
    shards: Box<[Shard; SHARDS]>,
    rate_limited: AtomicU64,
    refused: AtomicU64,
    connections_refused: AtomicU64,
}

/// The per-request counters of one worker thread (or a few), on cache lines of their own.
#[repr(align(128))]
struct Shard {
    by_status: [AtomicU64; 600],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_micros_sum: AtomicU64,
    began: AtomicU64,
    finished: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_micros_sum: AtomicU64::new(0),
            began: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
            rate_limited: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

/// The shard of the current thread: threads take shards in turn, on their first request.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

impl Metrics {
    fn shard(&self) -> &Shard {
        &self.shards[shard_index()]
    }

    /// A request has arrived; every call is paired with an [`Metrics::observe`] of its answer.
    /// (Sequentially consistent, with the edge's draining flag: see [`Metrics::in_flight`].)
    pub fn began(&self) {
        self.shard().began.fetch_add(1, Ordering::SeqCst);
    }

    /// Count one finished request.
    pub fn observe(&self, status: u16, seconds: f64) {
        let shard = self.shard();
        if let Some(c) = shard.by_status.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        shard.latency_micros_sum.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        shard.finished.fetch_add(1, Ordering::SeqCst);
    }

    /// Requests begun and not yet finished. Never less than the true number: the finished
    /// counts are read before the begun ones, and a request begins before it finishes.
    pub fn in_flight(&self) -> u64 {
        let finished: u64 = self.shards.iter().map(|s| s.finished.load(Ordering::SeqCst)).sum();
        let began: u64 = self.shards.iter().map(|s| s.began.load(Ordering::SeqCst)).sum();
        began.saturating_sub(finished)
    }

    fn sum(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards.iter().map(|s| counter(s).load(Ordering::Relaxed)).sum()
    }

    /// Count a request refused by the rate limiter.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a request refused by validation, or one the HTTP parser could not read.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Count a connection closed over the per-address cap.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP whispercms_http_requests_total Requests answered at the edge, by status.\n");
        out.push_str("# TYPE whispercms_http_requests_total counter\n");
        for status in 0..600 {
            let n = self.sum(|s| &s.by_status[status]);
            if n > 0 {
                out.push_str(&format!("whispercms_http_requests_total{{status=\"{status}\"}} {n}\n"));
            }
        }
        out.push_str("# HELP whispercms_http_request_duration_seconds Time from request to response at the edge.\n");
        out.push_str("# TYPE whispercms_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.sum(|s| &s.buckets[i]);
            out.push_str(&format!("whispercms_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += self.sum(|s| &s.buckets[BUCKETS.len()]);
        out.push_str(&format!("whispercms_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n"));
        let sum = self.sum(|s| &s.latency_micros_sum) as f64 / 1e6;
        out.push_str(&format!("whispercms_http_request_duration_seconds_sum {sum}\n"));
        out.push_str(&format!("whispercms_http_request_duration_seconds_count {cumulative}\n"));
        out.push_str("# HELP whispercms_http_requests_in_flight Requests arrived and not yet answered.\n");
        out.push_str("# TYPE whispercms_http_requests_in_flight gauge\n");
        out.push_str(&format!("whispercms_http_requests_in_flight {}\n", self.in_flight()));
        out.push_str("# HELP whispercms_http_rate_limited_total Requests refused with 429.\n");
        out.push_str("# TYPE whispercms_http_rate_limited_total counter\n");
        out.push_str(&format!("whispercms_http_rate_limited_total {}\n", self.rate_limited.load(Ordering::Relaxed)));
        out.push_str(
            "# HELP whispercms_http_refused_total Requests refused by validation (or unparsable) before the site.\n",
        );
        out.push_str("# TYPE whispercms_http_refused_total counter\n");
        out.push_str(&format!("whispercms_http_refused_total {}\n", self.refused.load(Ordering::Relaxed)));
        out.push_str("# HELP whispercms_http_connections_refused_total Connections closed over the per-address cap.\n");
        out.push_str("# TYPE whispercms_http_connections_refused_total counter\n");
        let refused = self.connections_refused.load(Ordering::Relaxed);
        out.push_str(&format!("whispercms_http_connections_refused_total {refused}\n"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.observe(200, 0.0004);
        // Counted on another thread (another shard): summed all the same.
        std::thread::scope(|s| {
            s.spawn(|| m.observe(200, 0.02));
        });
        m.observe(404, 9.0);
        m.rate_limited();
        m.connection_refused();
        let text = m.render();
        assert!(text.contains("whispercms_http_requests_total{status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("whispercms_http_requests_total{status=\"404\"} 1\n"));
        assert!(text.contains("whispercms_http_request_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("whispercms_http_request_duration_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("whispercms_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("whispercms_http_rate_limited_total 1\n"));
        assert!(text.contains("whispercms_http_connections_refused_total 1\n"));
    }

    #[test]
    fn requests_in_flight_are_those_begun_and_not_finished_on_any_thread() {
        let m = Metrics::default();
        m.began();
        m.began();
        assert_eq!(m.in_flight(), 2);
        // One finishes on another thread than it began on (a task moved between workers).
        std::thread::scope(|s| {
            s.spawn(|| m.observe(200, 0.001));
        });
        assert_eq!(m.in_flight(), 1);
        assert!(m.render().contains("whispercms_http_requests_in_flight 1\n"));
        m.observe(200, 0.001);
        assert_eq!(m.in_flight(), 0);
    }
}
