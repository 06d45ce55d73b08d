//! The slow-client watchdog of the HTTP/1 connections hyper serves ([`crate::http1`]): a client
//! must send each request head within `client_timeout_secs` of the connection opening or of the
//! last byte of the previous response going out (which also bounds how long a keep-alive
//! connection stays idle), and must keep taking a response: a connection whose writes make no
//! progress for that long is closed too.
//!
//! Why not hyper's `header_read_timeout`: it arms a tokio timer for every request (a boxed
//! sleep, an entry in the timer wheel, the time driver woken to clear it): about 2,000
//! instructions of the edge's 8,000 over Axum served straight. Here each request costs two
//! atomic stores: one thread ([`Watchdog::start`]) advances a coarse clock every
//! [`TICK`] and looks over the open connections, waking those that are overdue. A timeout
//! therefore fires up to two ticks late. The body of a request has its own deadline in
//! [`crate::http1`].
//!
//! Once a response is handed to hyper, a stall in writing it is the client's: the site's bodies
//! are whole in memory by then. (Were a body ever streamed from a slow producer, a gap in it
//! longer than the timeout would count against the client; the deadline would then have to
//! follow the body's end rather than the handing over.)

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How often the clock advances and the connections are looked over.
pub const TICK: Duration = Duration::from_millis(100);

/// `Deadline::head_since` while a request is being answered (no head is awaited).
const ANSWERING: u64 = u64::MAX;

/// The watchdog: a coarse clock and the connections it watches.
pub struct Watchdog {
    shared: Arc<Shared>,
}

struct Shared {
    started: Instant,
    /// Milliseconds since `started`, as of the last tick.
    now_ms: AtomicU64,
    timeout_ms: u64,
    connections: Mutex<Vec<Weak<Deadline>>>,
}

/// One connection's deadlines, shared between its task and the watchdog.
pub struct Deadline {
    shared: Arc<Shared>,
    /// When the wait for the next request head began (coarse ms), or [`ANSWERING`].
    head_since: AtomicU64,
    /// When a write last made progress (coarse ms).
    last_write: AtomicU64,
    /// Whether any request head has arrived on the connection.
    had_request: AtomicBool,
    expired: AtomicBool,
    /// The connection's task, woken when the deadline expires.
    waker: AtomicWaker,
}

impl Watchdog {
    /// A watchdog closing connections that keep it waiting `timeout`, with its thread running
    /// (the thread ends once the watchdog and all its connections are dropped).
    pub fn start(timeout: Duration) -> io::Result<Watchdog> {
        let shared = Arc::new(Shared {
            started: Instant::now(),
            now_ms: AtomicU64::new(0),
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            connections: Mutex::default(),
        });
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new().name("edge watchdog".into()).spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(shared) => shared.tick(),
                None => return,
            }
        })?;
        Ok(Watchdog { shared })
    }

    /// Watch a new connection: from now, its first request head is awaited.
    pub fn watch(&self) -> Arc<Deadline> {
        let now = self.shared.now();
        let deadline = Arc::new(Deadline {
            shared: self.shared.clone(),
            head_since: AtomicU64::new(now),
            last_write: AtomicU64::new(now),
            had_request: AtomicBool::new(false),
            expired: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        self.shared.lock().push(Arc::downgrade(&deadline));
        deadline
    }
}

impl Shared {
    fn now(&self) -> u64 {
        self.now_ms.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Deadline>>> {
        // The list stays valid whatever a panicking holder did: it only pushes and retains.
        self.connections.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Advance the clock; expire the connections that are overdue, forget the closed ones.
    fn tick(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let before = self.now_ms.swap(now, Ordering::Relaxed);
        // This thread was held up (a loaded machine, a paused VM): what was stamped meanwhile got
        // the stale time `before`, and would look older than it is.
        let late = now.saturating_sub(before) > 2 * TICK.as_millis() as u64;
        self.lock().retain(|weak| match weak.upgrade() {
            Some(deadline) => {
                if late {
                    deadline.restamp(before, now);
                }
                if deadline.overdue(now) {
                    deadline.expire();
                }
                true
            }
            None => false,
        });
    }
}

impl Deadline {
    /// A request head has arrived: no deadline while it is answered.
    pub fn answering(&self) {
        self.head_since.store(ANSWERING, Ordering::Relaxed);
        self.had_request.store(true, Ordering::Relaxed);
    }

    /// Whether the connection has yet to bring its first request (it may be sending its head).
    pub fn before_first_request(&self) -> bool {
        !self.had_request.load(Ordering::Relaxed)
    }

    /// The response is handed over: the next head is awaited from now (or from the response's
    /// last write).
    pub fn answered(&self) {
        self.head_since.store(self.shared.now(), Ordering::Relaxed);
    }

    /// Whether the client has kept the connection waiting too long at `now`: no request head
    /// (nor progress taking the last response) within the timeout.
    fn overdue(&self, now: u64) -> bool {
        let head_since = self.head_since.load(Ordering::Relaxed);
        let since = head_since.max(self.last_write.load(Ordering::Relaxed));
        head_since != ANSWERING && now.saturating_sub(since) >= self.shared.timeout_ms
    }

    /// Times stamped `stale` become `now` (see [`Shared::tick`]).
    fn restamp(&self, stale: u64, now: u64) {
        for stamp in [&self.head_since, &self.last_write] {
            let _ = stamp.compare_exchange(stale, now, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    fn expire(&self) {
        if !self.expired.swap(true, Ordering::AcqRel) {
            tracing::debug!("slow client: connection closed");
            self.waker.wake();
        }
    }

    fn is_expired(&self) -> bool {
        self.expired.load(Ordering::Acquire)
    }

    /// The connection's I/O, watched.
    pub fn watched<T>(self: Arc<Self>, io: T) -> Watched<T> {
        Watched { io, deadline: self }
    }
}

/// A connection's I/O under its [`Deadline`]: once the deadline has expired, every read and
/// write fails with `TimedOut` (hyper then ends the connection).
pub struct Watched<T> {
    io: T,
    deadline: Arc<Deadline>,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the client kept the connection waiting too long")
}

impl<T> Watched<T> {
    /// `poll` unless expired; when it is pending, the task is woken on expiry too.
    fn watch<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut T, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        if self.deadline.is_expired() {
            return Poll::Ready(Err(timed_out()));
        }
        let result = poll(&mut self.io, cx);
        if result.is_pending() {
            self.deadline.waker.register(cx.waker());
            // Expired between the check and the registration: nobody would wake us.
            if self.deadline.is_expired() {
                return Poll::Ready(Err(timed_out()));
            }
        }
        result
    }

    fn wrote(&self, result: &Poll<io::Result<usize>>) {
        if let Poll::Ready(Ok(n)) = result {
            if *n > 0 {
                self.deadline.last_write.store(self.deadline.shared.now(), Ordering::Relaxed);
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.watch(cx, |io, cx| Pin::new(io).poll_read(cx, buf))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = self.watch(cx, |io, cx| Pin::new(io).poll_write(cx, buf));
        self.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.watch(cx, |io, cx| Pin::new(io).poll_write_vectored(cx, bufs));
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch(cx, |io, cx| Pin::new(io).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // (TLS sends its close notice here: a client taking nothing cannot hold it open either.)
        self.watch(cx, |io, cx| Pin::new(io).poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TIMEOUT: Duration = Duration::from_millis(300);

    /// `io`, or a failed test if the watchdog never ends it.
    async fn within<R>(io: impl std::future::Future<Output = R>) -> R {
        tokio::time::timeout(TIMEOUT * 10, io).await.expect("the watchdog did not end the wait")
    }

    #[tokio::test]
    async fn a_connection_sending_no_head_is_closed_after_the_timeout() {
        let watchdog = Watchdog::start(TIMEOUT).unwrap();
        let (server, mut client) = tokio::io::duplex(64);
        let mut watched = watchdog.watch().watched(server);
        client.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0; 64];
        assert_eq!(watched.read(&mut buf).await.unwrap(), 8, "a read that has data is served");
        let error = within(watched.read(&mut buf)).await.expect_err("no more of the head comes: timed out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(watched.write(b"x").await.is_err(), "an expired connection stays expired");
    }

    #[test]
    fn overdue_counts_from_the_later_of_the_head_wait_and_the_last_write() {
        // (Stamps set by hand: when a deadline falls is decided here, not by the clock.)
        let watchdog = Watchdog::start(TIMEOUT).unwrap();
        let deadline = watchdog.watch();
        deadline.head_since.store(1_000, Ordering::Relaxed);
        deadline.last_write.store(0, Ordering::Relaxed);
        assert!(!deadline.overdue(1_299) && deadline.overdue(1_300), "the timeout after the wait began");
        deadline.last_write.store(2_000, Ordering::Relaxed);
        assert!(!deadline.overdue(2_299) && deadline.overdue(2_300), "a later write (the answer going out) counts");
        deadline.answering();
        assert!(!deadline.overdue(u64::MAX), "no deadline while answering");
    }

    #[tokio::test]
    async fn no_deadline_while_answering_and_the_next_head_is_awaited_from_the_answer() {
        let watchdog = Watchdog::start(TIMEOUT).unwrap();
        let (server, mut client) = tokio::io::duplex(64);
        let deadline = watchdog.watch();
        let mut watched = deadline.clone().watched(server);
        deadline.answering();
        // A slow answer (three timeouts long) does not expire the connection.
        tokio::time::sleep(TIMEOUT * 3).await;
        assert!(!deadline.is_expired());
        deadline.answered();
        watched.write_all(b"response").await.unwrap();
        let mut buf = [0; 8];
        client.read_exact(&mut buf).await.unwrap();
        let error = within(watched.read(&mut buf)).await.expect_err("no next head");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_client_that_stops_taking_the_response_is_cut_off_and_one_that_takes_it_is_not() {
        let watchdog = Watchdog::start(TIMEOUT).unwrap();
        // A slow reader: 16 bytes every 50 ms, the whole response in about three timeouts.
        let (server, mut client) = tokio::io::duplex(16);
        let deadline = watchdog.watch();
        deadline.answered();
        let mut watched = deadline.watched(server);
        let reader = tokio::spawn(async move {
            let mut total = 0;
            let mut buf = [0; 16];
            while total < 16 * 20 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                total += client.read(&mut buf).await.unwrap();
            }
            client // kept open, but read no more
        });
        watched.write_all(&[b'x'; 16 * 20]).await.expect("a slow but steady reader gets it all");
        let _client = reader.await.unwrap();
        let error = within(watched.write_all(&[b'x'; 16 * 20])).await.expect_err("nobody reads: cut off");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn a_late_tick_does_not_count_its_delay_against_the_connections() {
        let watchdog = Watchdog::start(Duration::from_secs(1)).unwrap();
        // The clock last advanced at 5,000 ms, then its thread was held up until 60,000 ms: one
        // connection was stamped at 5,000 (perhaps during the delay), another at 4,000.
        let (recent, older) = (watchdog.watch(), watchdog.watch());
        for (deadline, at) in [(&recent, 5_000), (&older, 4_000)] {
            deadline.head_since.store(at, Ordering::Relaxed);
            deadline.last_write.store(at, Ordering::Relaxed);
            deadline.restamp(5_000, 60_000);
        }
        assert!(!recent.overdue(60_000), "the delay does not count against it");
        assert!(recent.overdue(61_000), "then its time runs as usual");
        assert!(older.overdue(60_000), "stamped before: as old as it is");
    }

    #[test]
    fn the_thread_ends_with_the_watchdog_and_closed_connections_are_forgotten() {
        let watchdog = Watchdog::start(TIMEOUT).unwrap();
        let kept = watchdog.watch();
        drop(watchdog.watch());
        watchdog.shared.tick();
        assert_eq!(watchdog.shared.lock().len(), 1);
        let weak = Arc::downgrade(&watchdog.shared);
        drop((watchdog, kept));
        std::thread::sleep(TICK * 3);
        assert!(weak.upgrade().is_none(), "nothing holds the watchdog's state any more");
    }
}
