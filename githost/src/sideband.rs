//! Side-band multiplexing of a response stream (`side-band-64k`).
//!
//! Once a client asked for side-band, everything the server sends in the pack or status phase is
//! wrapped in packet lines whose first byte names a band: 1 = data (pack bytes, report-status),
//! 2 = progress and messages (printed by `git` as `remote: …`), 3 = a fatal error. Without
//! side-band the data goes out raw and progress is dropped, as `git` itself does.

use std::io::{self, Write};

use crate::pktline;

/// The largest payload of a side-band-64k packet: a packet line's maximum minus the band byte.
pub(crate) const MAX_BAND_PAYLOAD: usize = pktline::MAX_DATA_LEN - 1;

/// A writer that frames data on band 1 when side-band is on, and passes it through otherwise.
pub struct SidebandWriter<W: Write> {
    out: W,
    enabled: bool,
    /// Scratch buffer so that each packet (prefix, band, payload) is one `write_all`.
    frame: Vec<u8>,
}

impl<W: Write> SidebandWriter<W> {
    /// Wrap `out`; `enabled` is whether the client negotiated `side-band-64k`.
    pub fn new(out: W, enabled: bool) -> Self {
        SidebandWriter { out, enabled, frame: Vec::with_capacity(MAX_BAND_PAYLOAD + 5) }
    }

    /// Whether data is being framed in bands.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Send a human-readable progress message on band 2 (dropped without side-band).
    /// `git` prints it as `remote: <text>`; include the trailing `\n` or `\r` yourself.
    pub fn progress(&mut self, text: &str) -> io::Result<()> {
        if self.enabled {
            for chunk in text.as_bytes().chunks(MAX_BAND_PAYLOAD) {
                self.band(2, chunk)?;
            }
        }
        Ok(())
    }

    /// Send a fatal error on band 3; the client stops reading after it.
    pub fn fatal(&mut self, text: &str) -> io::Result<()> {
        if self.enabled {
            let text = &text.as_bytes()[..text.len().min(MAX_BAND_PAYLOAD)];
            self.band(3, text)?;
        }
        self.out.flush()
    }

    /// The wrapped writer, for packets that go outside the bands (like the closing flush).
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.out
    }

    fn band(&mut self, band: u8, payload: &[u8]) -> io::Result<()> {
        debug_assert!(!payload.is_empty() && payload.len() <= MAX_BAND_PAYLOAD);
        self.frame.clear();
        let len = payload.len() + 5;
        self.frame.extend_from_slice(format!("{len:04x}").as_bytes());
        self.frame.push(band);
        self.frame.extend_from_slice(payload);
        self.out.write_all(&self.frame)
    }
}

impl<W: Write> Write for SidebandWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.enabled {
            return self.out.write(buf);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = buf.len().min(MAX_BAND_PAYLOAD);
        self.band(1, &buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{Packet, PktReader};

    #[test]
    fn frames_large_writes_into_bounded_band_packets() {
        let data = vec![7u8; MAX_BAND_PAYLOAD * 2 + 10];
        let mut w = SidebandWriter::new(Vec::new(), true);
        w.write_all(&data).unwrap();
        w.progress("hello\n").unwrap();
        let bytes = w.out;
        let mut r = PktReader::new(&bytes[..]);
        let mut got = Vec::new();
        let mut progress = Vec::new();
        while let Some(p) = r.read_opt().unwrap() {
            let Packet::Data(d) = p else { panic!("unexpected {p:?}") };
            assert!(d.len() <= pktline::MAX_DATA_LEN);
            match d[0] {
                1 => got.extend_from_slice(&d[1..]),
                2 => progress.extend_from_slice(&d[1..]),
                b => panic!("band {b}"),
            }
        }
        assert_eq!(got, data);
        assert_eq!(progress, b"hello\n");
    }

    #[test]
    fn passes_through_without_sideband() {
        let mut w = SidebandWriter::new(Vec::new(), false);
        w.write_all(b"PACK").unwrap();
        w.progress("dropped").unwrap();
        assert_eq!(w.out, b"PACK");
    }
}
