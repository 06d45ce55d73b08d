//! Keep-alive packets for a push the server is quiet on. Once the pack is in, indexing it, the
//! checks and the publish can take seconds to minutes with nothing to say, and an idle timeout —
//! ours (`idle_timeout`), a NAT's, a load balancer's — would cut the push in the middle. git's
//! receive-pack sends an empty band-1 packet after every `receive.keepAlive` (5 s) of silence;
//! this does the same.
//!
//! [`KeepAlive`] is the writer under the side-band framing: every packet goes out whole under its
//! lock, so a keep-alive never lands inside another packet, and [`KeepAlive::run`] (on a thread
//! of its own) writes one whenever nothing was written for the interval.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An empty packet on band 1: the client's demultiplexer adds nothing to the report it reads.
pub(crate) const PACKET: &[u8] = b"0005\x01";

/// git's default `receive.keepAlive`.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5);

/// A writer shared with a keep-alive thread.
pub(crate) struct KeepAlive<W: Write> {
    shared: Arc<(Mutex<State<W>>, Condvar)>,
}

struct State<W> {
    out: W,
    last_write: Instant,
    stopped: bool,
}

impl<W: Write> KeepAlive<W> {
    pub(crate) fn new(out: W) -> Self {
        let state = State { out, last_write: Instant::now(), stopped: false };
        KeepAlive { shared: Arc::new((Mutex::new(state), Condvar::new())) }
    }

    /// Another handle on the same writer, for [`KeepAlive::run`].
    pub(crate) fn handle(&self) -> Self {
        KeepAlive { shared: self.shared.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, State<W>> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write a keep-alive (and flush) after every `interval` without a write, until
    /// [`KeepAlive::stop`]. A failed write ends it: the protocol thread sees the same error.
    pub(crate) fn run(&self, interval: Duration) {
        let (lock, wake) = &*self.shared;
        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if state.stopped {
                return;
            }
            let quiet = state.last_write.elapsed();
            if quiet >= interval {
                if state.out.write_all(PACKET).and_then(|()| state.out.flush()).is_err() {
                    return;
                }
                state.last_write = Instant::now();
                continue;
            }
            state = wake.wait_timeout(state, interval - quiet).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// End [`KeepAlive::run`]; nothing is written by it after this returns.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.shared.1.notify_all();
    }
}

impl<W: Write> Write for KeepAlive<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.lock();
        state.last_write = Instant::now();
        state.out.write(buf)
    }

    /// One packet, whole, under the lock.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        state.last_write = Instant::now();
        state.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.lock().out.flush()
    }
}

/// The interval for a connection that is closed after `idle_timeout` of silence: git's, or a
/// third of the timeout when that is shorter.
pub(crate) fn interval(idle_timeout: Duration) -> Duration {
    INTERVAL.min(idle_timeout / 3).max(Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that records what reached it, flushed or not.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<u8>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_keepalives_only_while_quiet_and_never_after_stop() {
        let seen = Recorder::default();
        let mut writer = KeepAlive::new(seen.clone());
        let handle = writer.handle();
        let interval = Duration::from_millis(50);
        std::thread::scope(|scope| {
            scope.spawn(|| handle.run(interval));
            // Busy: a packet every 10 ms for 200 ms, so no keep-alive is due.
            for _ in 0..20 {
                writer.write_all(b"0009\x01data").unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
            let busy = seen.0.lock().unwrap().clone();
            assert!(!busy.windows(PACKET.len()).any(|w| w == PACKET), "a keep-alive while busy");
            // Quiet for 300 ms: keep-alives, each whole, between whole packets.
            std::thread::sleep(Duration::from_millis(300));
            writer.stop();
        });
        let all = seen.0.lock().unwrap().clone();
        let tail = &all[20 * 9..];
        assert!(tail.len() >= 2 * PACKET.len(), "keep-alives while quiet: {tail:?}");
        assert!(tail.chunks(PACKET.len()).all(|c| c == PACKET), "{tail:?}");
        // Stopped: nothing more.
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(seen.0.lock().unwrap().len(), all.len());
    }

    #[test]
    fn the_interval_fits_inside_the_idle_timeout() {
        assert_eq!(interval(Duration::from_secs(300)), INTERVAL);
        assert_eq!(interval(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(interval(Duration::ZERO), Duration::from_millis(100));
    }
}
