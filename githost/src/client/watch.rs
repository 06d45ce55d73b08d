//! The follower's side of `whispercms-watch-refs` (see [`crate::watch`]): the command runs on a
//! channel of an open connection, and [`RefWatch::next`] returns each ref list the server sends.
//! It is read asynchronously (no thread is parked for a watch that may last hours), and dropping
//! the watch closes its channel, which ends the command on the server. A remote that does not
//! know the command (any plain Git server) ends it with an error at once, which tells the caller
//! to poll instead.

use bstr::{BString, ByteSlice};
use gix::ObjectId;
use gix_packetline::decode::{self, Stream};
use gix_packetline::PacketLineRef;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};

use super::ssh::Connection;
use super::{ClientError, Result};

/// A ref list as the watch sends it.
pub type RefList = Vec<(BString, ObjectId)>;

/// Most bytes of stderr kept for the error message.
const MAX_STDERR: usize = 4096;

/// Ref lists as they arrive; the first is the state when the watch began.
pub struct RefWatch {
    read: ChannelReadHalf,
    write: Option<ChannelWriteHalf<Msg>>,
    buf: Vec<u8>,
    list: RefList,
    stderr: Vec<u8>,
}

impl RefWatch {
    /// Start watching over `connection`.
    pub async fn start(connection: &Connection) -> Result<RefWatch> {
        let channel = connection.exec(crate::watch::PROGRAM, false).await?;
        let (read, write) = channel.split();
        Ok(RefWatch { read, write: Some(write), buf: Vec::new(), list: RefList::new(), stderr: Vec::new() })
    }

    /// The next ref list. An error ends the watch: [`ClientError::WatchEnded`] when the remote
    /// closed it cleanly (reconnect), [`ClientError::Remote`] with its message when it does not
    /// support watching (poll instead).
    pub async fn next(&mut self) -> Result<RefList> {
        loop {
            if let Some(list) = self.parse()? {
                return Ok(list);
            }
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => self.buf.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                    let room = MAX_STDERR.saturating_sub(self.stderr.len());
                    self.stderr.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close | ChannelMsg::ExitStatus { .. }) | None => {
                    let said = self.stderr.trim().as_bstr().to_string();
                    return Err(if said.is_empty() { ClientError::WatchEnded } else { ClientError::Remote(said) });
                }
                Some(_) => {}
            }
        }
    }

    /// Take complete packets from the buffer; a flush completes a list.
    fn parse(&mut self) -> Result<Option<RefList>> {
        loop {
            let (line, consumed) = match decode::streaming(&self.buf) {
                Ok(Stream::Incomplete { .. }) => return Ok(None),
                Ok(Stream::Complete { line, bytes_consumed }) => (line, bytes_consumed),
                Err(e) => return Err(ClientError::Protocol(format!("malformed watch packet: {e}"))),
            };
            let finished = match line {
                PacketLineRef::Flush => true,
                PacketLineRef::Data(d) => {
                    let entry = parse_line(d)?;
                    if self.list.len() >= super::advertisement::MAX_REFS {
                        return Err(ClientError::Protocol("too many refs in a watch list".into()));
                    }
                    self.list.push(entry);
                    false
                }
                other => return Err(ClientError::Protocol(format!("unexpected {other:?} in a watch"))),
            };
            self.buf.drain(..consumed);
            if finished {
                return Ok(Some(std::mem::take(&mut self.list)));
            }
        }
    }
}

impl Drop for RefWatch {
    fn drop(&mut self) {
        if let (Some(write), Ok(runtime)) = (self.write.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                let _ = write.eof().await;
                let _ = write.close().await;
            });
        }
    }
}

/// `<id> <name>` with a valid ref name.
fn parse_line(data: &[u8]) -> Result<(BString, ObjectId)> {
    let line = data.strip_suffix(b"\n").unwrap_or(data);
    let parsed = (line.len() > 41 && line[40] == b' ')
        .then(|| ObjectId::from_hex(&line[..40]).ok())
        .flatten()
        .filter(|_| crate::refs::validate_name(line[41..].as_bstr()).is_ok());
    match parsed {
        Some(id) => Ok((line[41..].into(), id)),
        None => Err(ClientError::Protocol(format!("malformed watch line {:?}", line.as_bstr()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_refuses_garbage() {
        let a = "1".repeat(40);
        let (name, _) = parse_line(format!("{a} refs/heads/main\n").as_bytes()).unwrap();
        assert_eq!(name, "refs/heads/main");
        for bad in [
            format!("{a}refs/heads/main"),
            format!("{a} ../etc"),
            "zz refs/heads/x".into(),
            format!("{a} HEAD"),
            String::new(),
        ] {
            assert!(parse_line(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }
}
