//! Bridging an SSH channel to the blocking protocol code.
//!
//! The pack protocol runs on a blocking thread with `Read`/`Write`; russh channels are async.
//! Two small tasks pump bytes between them through bounded queues:
//!
//! - the *reader* forwards channel data to the protocol thread and turns the client's EOF into
//!   end-of-stream; when the client closes the channel or the connection drops, it cancels;
//! - the *writer* sends what the protocol thread wrote, one chunk at a time, and gives up when a
//!   chunk cannot be sent within the stall timeout (a client that stopped reading) or on cancel.
//!
//! Either way the blocked side of the protocol thread gets an error (`BrokenPipe` or EOF) instead
//! of waiting forever, so a vanished client never pins a thread. Queues are bounded, so a fast
//! producer waits for a slow consumer (back-pressure) without unbounded buffering.

use std::io::{self, Read, Write};
use std::time::Duration;

use russh::server::Msg;
use russh::{Channel, ChannelMsg, ChannelWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Chunks buffered in each direction.
pub(crate) const QUEUE: usize = 16;

/// The largest chunk a write queues: so the queue holds at most `QUEUE` × 64 KiB however large
/// the protocol's writes are. With side-band each write is one packet of at most 64 KiB, but a
/// client that asks for no side-band gets the pack's entries written as they come, and a queue
/// of sixteen 4 MB entries held 64 MB for a client that stopped reading.
pub(crate) const MAX_CHUNK: usize = 64 * 1024;

/// The blocking end that reads what the client sends.
pub struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl ChannelReader {
    /// A reader of the chunks sent into `rx`; the end of the queue is the end of the stream.
    pub(crate) fn new(rx: mpsc::Receiver<Vec<u8>>) -> Self {
        ChannelReader { rx, current: Vec::new(), pos: 0 }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The blocking end whose writes go to the client's stdout.
pub struct ChannelWriter {
    tx: mpsc::Sender<Vec<u8>>,
}

impl ChannelWriter {
    /// A writer whose writes are queued into `tx`; dropping it ends the queue.
    pub(crate) fn new(tx: mpsc::Sender<Vec<u8>>) -> Self {
        ChannelWriter { tx }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(MAX_CHUNK);
        self.tx
            .blocking_send(buf[..n].to_vec())
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client is gone or stopped reading"))?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The two pump tasks of one channel.
pub struct Pump {
    reader: JoinHandle<()>,
    writer: JoinHandle<ChannelWriteHalf<Msg>>,
}

impl Pump {
    /// Wait until everything written was sent (or given up), and return the channel's write half
    /// for the exit status.
    pub async fn finish(self) -> Option<ChannelWriteHalf<Msg>> {
        let half = self.writer.await.ok();
        self.reader.abort();
        half
    }
}

/// Split `channel` into blocking streams and the tasks that feed them. `stall` bounds how long a
/// single write may wait for the client to take data.
pub fn bridge(channel: Channel<Msg>, stall: Duration) -> (ChannelReader, ChannelWriter, Pump) {
    let (mut read_half, write_half) = channel.split();
    let (in_tx, in_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let (cancel_tx, cancel_rx) = watch::channel(false);

    let reader = tokio::spawn(async move {
        let mut in_tx = Some(in_tx);
        loop {
            match read_half.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if let Some(tx) = &in_tx {
                        if tx.send(data.to_vec()).await.is_err() {
                            in_tx = None; // the protocol is done reading; keep watching for close
                        }
                    }
                }
                Some(ChannelMsg::Eof) => in_tx = None,
                Some(ChannelMsg::Close) | None => {
                    let _ = cancel_tx.send(true);
                    return;
                }
                Some(_) => {}
            }
        }
    });

    let writer = tokio::spawn(async move {
        let mut cancelled = cancel_rx;
        loop {
            let chunk = tokio::select! {
                chunk = out_rx.recv() => chunk,
                _ = cancelled.changed() => None,
            };
            let Some(chunk) = chunk else { break };
            // Owned bytes, cut into packets of the client's largest size. (`data` copies through
            // an 8 KiB buffer, one SSH packet each: OpenSSH's client then grew its channel buffer
            // 8 KiB at a time, each time a new allocation and a copy of all it held. That was
            // 130,000-200,000 page faults and a third of a second in the client's `ssh` for a
            // 4 MB clone, against 55,000-67,000 from sshd's 32 KiB packets.)
            let sent = tokio::select! {
                r = tokio::time::timeout(stall, write_half.data_bytes(chunk)) => matches!(r, Ok(Ok(()))),
                _ = cancelled.changed() => false,
            };
            if !sent {
                tracing::info!("client stopped taking data; ending the request");
                break;
            }
        }
        // Dropping the receiver makes any pending or later write of the protocol thread fail.
        drop(out_rx);
        write_half
    });

    (ChannelReader::new(in_rx), ChannelWriter::new(out_tx), Pump { reader, writer })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// However large a write, the queue holds chunks of at most 64 KiB.
    #[test]
    fn large_writes_are_queued_in_bounded_chunks() {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let reader = std::thread::spawn(move || {
            let mut sizes = Vec::new();
            while let Some(chunk) = rx.blocking_recv() {
                sizes.push(chunk.len());
            }
            sizes
        });
        let mut writer = ChannelWriter::new(tx);
        writer.write_all(&vec![7u8; 4 << 20]).unwrap();
        drop(writer);
        let sizes = reader.join().unwrap();
        assert_eq!(sizes.iter().sum::<usize>(), 4 << 20);
        assert!(sizes.iter().all(|&n| n <= MAX_CHUNK), "{:?}", &sizes[..4]);
    }
}
