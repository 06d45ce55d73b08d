//! Packet lines, the framing of every Git protocol conversation.
//!
//! Reading is built on `gix-packetline`'s streaming reader; this module adds the two things the
//! server side needs on top: a typed [`Packet`] that borrows from the reader's buffer, and clear
//! errors for hostile input (bad length prefixes, oversized lines, truncated streams) that name
//! what was wrong instead of surfacing a bare `io::Error`. Writing is `gix-packetline`'s encoders
//! behind small helpers that keep call sites to one line.
//!
//! A packet reader never reads past the packet it returns, so after the command list of a push the
//! underlying stream is positioned exactly at the start of the pack (see [`PktReader::into_inner`]).

use std::io::{self, Read, Write};

use gix_packetline::blocking_io::{encode, StreamingPeekableIter};
use gix_packetline::PacketLineRef;

/// The largest payload of one packet line (65520 bytes minus the 4-byte length prefix).
pub const MAX_DATA_LEN: usize = 65516;

/// One packet as read from the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A data line (`0005a` and longer). The payload is returned as-is, including any `\n`.
    Data(&'a [u8]),
    /// `0000`: the end of a message section.
    Flush,
    /// `0001`: section delimiter (protocol v2).
    Delim,
    /// `0002`: end of a response (protocol v2, stateless transports).
    ResponseEnd,
}

impl<'a> Packet<'a> {
    /// The payload of a data line without its trailing newline, if this is a data line.
    pub fn line(&self) -> Option<&'a [u8]> {
        match self {
            Packet::Data(d) => Some(d.strip_suffix(b"\n").unwrap_or(d)),
            _ => None,
        }
    }
}

/// What can go wrong reading packet lines.
#[derive(Debug, thiserror::Error)]
pub enum PktError {
    /// The peer closed the stream in the middle of a conversation.
    #[error("unexpected end of stream: the client hung up")]
    Eof,
    /// The bytes on the wire are not a packet line.
    #[error("malformed packet line: {0}")]
    Malformed(String),
    /// Reading from or writing to the transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads packet lines from a byte stream, one at a time.
pub struct PktReader<R: Read> {
    inner: StreamingPeekableIter<R>,
}

impl<R: Read> PktReader<R> {
    /// Wrap `read`; no bytes are consumed until the first [`read`](Self::read).
    pub fn new(read: R) -> Self {
        // No delimiters: flush/delim packets are returned as packets, never end the iteration.
        PktReader { inner: StreamingPeekableIter::new(read, &[], false) }
    }

    /// Read the next packet. `Ok(None)` means the peer closed the stream cleanly between packets.
    pub fn read_opt(&mut self) -> Result<Option<Packet<'_>>, PktError> {
        match self.inner.read_line() {
            None => Ok(None),
            Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Some(Err(e)) => Err(PktError::Io(e)),
            Some(Ok(Err(e))) => Err(PktError::Malformed(e.to_string())),
            Some(Ok(Ok(line))) => Ok(Some(match line {
                PacketLineRef::Data(d) => Packet::Data(d),
                PacketLineRef::Flush => Packet::Flush,
                PacketLineRef::Delimiter => Packet::Delim,
                PacketLineRef::ResponseEnd => Packet::ResponseEnd,
            })),
        }
    }

    /// The payload of the next packet if it is a data line, without consuming it; `None` for a
    /// flush, delimiter or response-end. The end of the stream is an error.
    pub fn peek_data(&mut self) -> Result<Option<&[u8]>, PktError> {
        match self.inner.peek_line() {
            None => Err(PktError::Eof),
            Some(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => Err(PktError::Eof),
            Some(Err(e)) => Err(PktError::Io(e)),
            Some(Ok(Err(e))) => Err(PktError::Malformed(e.to_string())),
            Some(Ok(Ok(PacketLineRef::Data(d)))) => Ok(Some(d)),
            Some(Ok(Ok(_))) => Ok(None),
        }
    }

    /// Read the next packet; the end of the stream is an error ([`PktError::Eof`]).
    pub fn read(&mut self) -> Result<Packet<'_>, PktError> {
        self.read_opt()?.ok_or(PktError::Eof)
    }

    /// The underlying stream, positioned right after the last packet returned.
    pub fn into_inner(self) -> R {
        self.inner.into_inner()
    }

    /// Mutable access to the underlying stream, positioned right after the last packet returned.
    pub fn get_mut(&mut self) -> &mut R {
        self.inner.inner_mut()
    }

    /// Run `read_data` over the band-1 payload of a side-band stream that ends with a flush
    /// (a pack, a push's status report). Band 2 (progress) and band 3 (a fatal error) go to
    /// `on_message(is_error, text)`. Afterwards the reader returns flushes as packets again.
    pub fn with_sideband_data<T>(
        &mut self,
        on_message: impl FnMut(bool, &[u8]) -> std::ops::ControlFlow<()>,
        read_data: impl FnOnce(&mut dyn io::BufRead) -> T,
    ) -> T {
        self.inner.reset_with(&[PacketLineRef::Flush]);
        let outcome = {
            let mut data = self.inner.as_read_with_sidebands(on_message);
            read_data(&mut data)
        };
        self.inner.reset_with(&[]);
        outcome
    }
}

/// Write one data line. Lines longer than [`MAX_DATA_LEN`] are a programming error of the caller
/// and are reported as `InvalidInput`.
pub fn write_data(out: &mut impl Write, data: &[u8]) -> io::Result<()> {
    encode::data_to_write(data, out).map(drop)
}

/// Write one text line: `text` followed by `\n`.
pub fn write_text(out: &mut impl Write, text: impl AsRef<[u8]>) -> io::Result<()> {
    encode::text_to_write(text.as_ref(), out).map(drop)
}

/// Write a flush packet (`0000`).
pub fn write_flush(out: &mut impl Write) -> io::Result<()> {
    encode::flush_to_write(out).map(drop)
}

/// Write a delimiter packet (`0001`).
pub fn write_delim(out: &mut impl Write) -> io::Result<()> {
    encode::delim_to_write(out).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(input: &[u8]) -> Vec<Result<Option<Vec<u8>>, String>> {
        let mut r = PktReader::new(input);
        let mut out = Vec::new();
        loop {
            match r.read_opt() {
                Ok(None) => break,
                Ok(Some(Packet::Data(d))) => out.push(Ok(Some(d.to_vec()))),
                Ok(Some(_)) => out.push(Ok(None)),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn reads_data_flush_and_delim() {
        let got = packets(b"0009hello00000001000ahello\n");
        assert_eq!(got, vec![Ok(Some(b"hello".to_vec())), Ok(None), Ok(None), Ok(Some(b"hello\n".to_vec()))]);
    }

    #[test]
    fn strips_only_one_trailing_newline() {
        let mut r = PktReader::new(&b"0008ab\n\n"[..]);
        assert_eq!(r.read().unwrap().line(), Some(&b"ab\n"[..]));
    }

    #[test]
    fn refuses_non_hex_length() {
        let got = packets(b"zzzzhello");
        assert!(matches!(got.last(), Some(Err(_))), "{got:?}");
    }

    #[test]
    fn refuses_length_below_header_size() {
        // 0003 is not a valid length (0000-0002 are special, 0004 is an empty line).
        let got = packets(b"0003");
        assert!(matches!(got.last(), Some(Err(_))), "{got:?}");
    }

    #[test]
    fn truncated_payload_is_end_of_stream_not_a_panic() {
        let mut r = PktReader::new(&b"0010abc"[..]);
        assert!(matches!(r.read(), Err(PktError::Eof)));
    }

    #[test]
    fn garbage_does_not_panic() {
        for input in [&b"\xff\xff\xff\xff"[..], b"ffff", b"0004", b"00", b"fff0", b"\0\0\0\0"] {
            let _ = packets(input);
        }
    }

    #[test]
    fn leaves_stream_positioned_after_last_packet() {
        let mut r = PktReader::new(&b"0009hello0000PACKrest"[..]);
        assert_eq!(r.read().unwrap(), Packet::Data(b"hello"));
        assert_eq!(r.read().unwrap(), Packet::Flush);
        let mut rest = Vec::new();
        r.into_inner().read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"PACKrest");
    }

    #[test]
    fn writes_what_it_reads() {
        let mut buf = Vec::new();
        write_text(&mut buf, "want abc").unwrap();
        write_delim(&mut buf).unwrap();
        write_flush(&mut buf).unwrap();
        assert_eq!(buf, b"000dwant abc\n00010000");
    }
}
