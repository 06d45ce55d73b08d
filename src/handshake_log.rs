//! Pingora logs every failed TLS handshake of a client at ERROR: port scanners, clients that do
//! not trust the certificate, plain HTTP sent to the TLS port. That is the client's doing, and a
//! public server sees it all day. This layer lets one such line through per minute (so a
//! misconfigured certificate still shows in the log) and counts all of them for `/metrics`
//! (`whispercms_tls_handshake_failures_total`).
//!
//! Written here because the lines come from Pingora's `log` macros through `tracing-log`, and no
//! filter of `tracing-subscriber` looks at an event's message: the layer reads it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Failed TLS handshakes of clients since the start.
pub static FAILURES: AtomicU64 = AtomicU64::new(0);

/// The minute (since the epoch) of the last line let through, plus one (0: none yet).
static LAST_LOGGED_MINUTE: AtomicU64 = AtomicU64::new(0);

/// Where Pingora logs them, and how each line begins.
const TARGET: &str = "pingora_core::services::listening";
const PREFIXES: [&str; 2] = ["Downstream handshake error", "Downstream handshake timeout"];

/// The layer (see the module doc).
pub struct QuietHandshakeFailures;

/// The two fields of a `log` record that say what it is.
#[derive(Default)]
struct Record {
    target: String,
    message: String,
}

impl Visit for Record {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "log.target" {
            self.target = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        }
    }
}

/// Whether a record of `target` saying `message` is a client's failed handshake.
fn is_handshake_failure(target: &str, message: &str) -> bool {
    target == TARGET && PREFIXES.iter().any(|p| message.starts_with(p))
}

/// Count a failure; whether to let its line through (the first in the minute `minute`).
fn count(minute: u64) -> bool {
    FAILURES.fetch_add(1, Ordering::Relaxed);
    let last = LAST_LOGGED_MINUTE.load(Ordering::Relaxed);
    last != minute + 1
        && LAST_LOGGED_MINUTE.compare_exchange(last, minute + 1, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

impl<S: Subscriber> Layer<S> for QuietHandshakeFailures {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        // Records from the `log` crate all come through one callsite per level, target "log".
        if event.metadata().target() != "log" {
            return true;
        }
        let mut record = Record::default();
        event.record(&mut record);
        if !is_handshake_failure(&record.target, &record.message) {
            return true;
        }
        let minute = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60);
        count(minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pingoras_handshake_failures_are_quieted() {
        assert!(is_handshake_failure(TARGET, "Downstream handshake error from 1.2.3.4:5: TLSHandshakeFailure"));
        assert!(is_handshake_failure(TARGET, "Downstream handshake timeout"));
        assert!(!is_handshake_failure(TARGET, "Accept() failed Too many open files"), "a server problem stays");
        assert!(!is_handshake_failure("other", "Downstream handshake error"));
    }

    #[test]
    fn one_line_a_minute_goes_through_and_all_are_counted() {
        let before = FAILURES.load(Ordering::Relaxed);
        let passed: Vec<bool> = [7, 7, 7, 8, 8].into_iter().map(count).collect();
        assert_eq!(passed, [true, false, false, true, false]);
        assert_eq!(FAILURES.load(Ordering::Relaxed) - before, 5);
    }
}
