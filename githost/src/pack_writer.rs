//! Writing pack data and its index: the header, entries (copied from our packs or compressed
//! anew), runs of another pack's entries copied verbatim, and the trailer — keeping each entry's
//! offset and CRC-32 so that the index can be written without reading the pack back.
//!
//! gix's `FromEntriesIter` writes a pack but forgets where each entry went, and its index writer
//! builds an index by decoding the pack again (resolving every delta to learn the ids, the cost
//! of `git index-pack`). A repack knows every id, offset and CRC as it writes, so it writes the
//! index directly ([`write_index`], the version 2 format of git's `pack-format.txt`).

use std::io::{self, Read, Write};

use gix::ObjectId;
use gix_pack::data::output;

/// Where one object went in a written pack.
#[derive(Debug, Clone, Copy)]
pub struct IndexEntry {
    pub id: ObjectId,
    pub offset: u64,
    pub crc32: u32,
}

/// A pack being written to `out`.
pub struct PackWriter<W: Write> {
    out: W,
    hasher: gix::hash::Hasher,
    written: u64,
    /// Offsets of the entries written by [`PackWriter::entry`], in order: what an offset delta's
    /// `object_index` refers to.
    offsets: Vec<u64>,
    /// Kept for [`write_index`] when asked for.
    index: Option<Vec<IndexEntry>>,
    scratch: Vec<u8>,
}

impl<W: Write> PackWriter<W> {
    /// Start a pack of `objects` entries. With `keep_index`, every entry's place is remembered
    /// for [`PackWriter::finish`] to return.
    pub fn new(out: W, objects: u32, keep_index: bool) -> io::Result<Self> {
        let mut w = PackWriter {
            out,
            hasher: gix::hash::hasher(gix::hash::Kind::Sha1),
            written: 0,
            offsets: Vec::new(),
            index: keep_index.then(Vec::new),
            scratch: Vec::with_capacity(32),
        };
        let header = gix_pack::data::header::encode(gix_pack::data::Version::V2, objects);
        w.put(&header)?;
        Ok(w)
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.written
    }

    /// Entries written by [`PackWriter::entry`] so far (the index the next one gets).
    pub fn entries(&self) -> usize {
        self.offsets.len()
    }

    /// Copy `len` bytes of already-encoded entries (another pack's, from just after its header)
    /// verbatim. Their offset deltas stay valid when they land at the offset they had there.
    pub fn raw(&mut self, mut from: impl Read, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut left = len;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = from.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the pack being copied ended early"));
            }
            self.put(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Write one entry. A `DeltaRef { object_index }` refers to the `object_index`-th entry
    /// written by this method.
    pub fn entry(&mut self, entry: &output::Entry) -> io::Result<()> {
        let start = self.written;
        let header = entry.to_entry_header(gix_pack::data::Version::V2, |index| start - self.offsets[index]);
        self.scratch.clear();
        header.write_to(entry.decompressed_size as u64, &mut self.scratch)?;
        let scratch = std::mem::take(&mut self.scratch);
        self.put(&scratch)?;
        self.put(&entry.compressed_data)?;
        if let Some(index) = &mut self.index {
            let mut crc = crc32fast::Hasher::new();
            crc.update(&scratch);
            crc.update(&entry.compressed_data);
            index.push(IndexEntry { id: entry.id, offset: start, crc32: crc.finalize() });
        }
        self.scratch = scratch;
        self.offsets.push(start);
        Ok(())
    }

    /// Write the trailer (the SHA-1 of everything before it) and flush. Returns the pack's
    /// checksum, the writer, and with `keep_index` the entries' places.
    pub fn finish(mut self) -> io::Result<(ObjectId, W, Vec<IndexEntry>)> {
        let digest = self.hasher.try_finalize().map_err(|e| io::Error::other(e.to_string()))?;
        self.out.write_all(digest.as_slice())?;
        self.out.flush()?;
        Ok((digest, self.out, self.index.unwrap_or_default()))
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Write a version 2 pack index of `entries` (any order) for the pack whose checksum is `pack`.
pub fn write_index(mut entries: Vec<IndexEntry>, pack: ObjectId, out: impl Write) -> io::Result<()> {
    entries.sort_unstable_by_key(|e| e.id);
    let mut w = io::BufWriter::new(HashingWrite { out, hasher: gix::hash::hasher(gix::hash::Kind::Sha1) });
    w.write_all(b"\xfftOc")?;
    w.write_all(&2u32.to_be_bytes())?;
    let mut fanout = [0u32; 256];
    for e in &entries {
        fanout[e.id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for count in fanout {
        total += count;
        w.write_all(&total.to_be_bytes())?;
    }
    for e in &entries {
        w.write_all(e.id.as_bytes())?;
    }
    for e in &entries {
        w.write_all(&e.crc32.to_be_bytes())?;
    }
    // Offsets past 2 GiB go to a table of 64-bit offsets, named by index with the top bit set.
    let mut large = Vec::new();
    for e in &entries {
        if e.offset < 0x8000_0000 {
            w.write_all(&(e.offset as u32).to_be_bytes())?;
        } else {
            w.write_all(&(0x8000_0000u32 | large.len() as u32).to_be_bytes())?;
            large.push(e.offset);
        }
    }
    for offset in large {
        w.write_all(&offset.to_be_bytes())?;
    }
    w.write_all(pack.as_slice())?;
    let HashingWrite { mut out, hasher } = w.into_inner().map_err(|e| e.into_error())?;
    let digest = hasher.try_finalize().map_err(|e| io::Error::other(e.to_string()))?;
    out.write_all(digest.as_slice())?;
    out.flush()
}

struct HashingWrite<W: Write> {
    out: W,
    hasher: gix::hash::Hasher,
}

impl<W: Write> Write for HashingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
