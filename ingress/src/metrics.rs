//! Metrics of the edge in the Prometheus text format: requests by status, a latency histogram,
//! requests refused by the rate limiter and by validation, connections refused over the
//! per-address cap. The server adds its own lines (the
//! snapshot commit, the last publish) when it serves `/metrics` on its admin listener.
//!
//! Plain atomics rather than a metrics crate: a handful of counters, rendered in one function.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Counters, shared by all requests.
pub struct Metrics {
    by_status: [AtomicU64; 600],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    latency_micros_sum: AtomicU64,
    rate_limited: AtomicU64,
    refused: AtomicU64,
    connections_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_status: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_micros_sum: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Count one finished request.
    pub fn observe(&self, status: u16, seconds: f64) {
        if let Some(c) = self.by_status.get(status as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_micros_sum.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
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
        for (status, c) in self.by_status.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                out.push_str(&format!("whispercms_http_requests_total{{status=\"{status}\"}} {n}\n"));
            }
        }
        out.push_str("# HELP whispercms_http_request_duration_seconds Time from request to response at the edge.\n");
        out.push_str("# TYPE whispercms_http_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            out.push_str(&format!("whispercms_http_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += self.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        out.push_str(&format!("whispercms_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}\n"));
        let sum = self.latency_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        out.push_str(&format!("whispercms_http_request_duration_seconds_sum {sum}\n"));
        out.push_str(&format!("whispercms_http_request_duration_seconds_count {cumulative}\n"));
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
        m.observe(200, 0.02);
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
}
