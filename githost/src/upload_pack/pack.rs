//! Streaming a pack of planned objects to the client.
//!
//! Built on `gix_pack::data::output`: objects are located (their pack entries, without decoding
//! them: gix's `count` would resolve every delta chain just to learn that), turned into entries that
//! copy existing compressed data and deltas straight out of our packs (`iter_from_counts`, no
//! recompression for packed objects), and written by [`PackWriter`] into the side-band writer
//! chunk by chunk — the pack is never held in memory whole. Repacks ([`crate::maintenance`])
//! append entries the same way ([`Entries`]).

use std::collections::HashSet;
use std::io::Write;

use gix::objs::FindExt;
use gix::ObjectId;
use gix_pack::data::output;
use gix_pack::Find as _;

use crate::error::{Error, Result};
use crate::pack_writer::PackWriter;
use crate::sideband::SidebandWriter;

/// Objects gix turns into entries at once (a chunk, per thread).
const CHUNK: usize = 64;

/// A stored whole object this large or larger is written on its own, before the others (see
/// [`Entries::append`]).
const LARGE_ENTRY: usize = 1 << 20;

/// How the client wants its pack.
#[derive(Debug, Clone, Copy)]
pub struct PackOptions {
    /// Deltas may refer to objects not in the pack (the client has them).
    pub thin: bool,
    /// The client understands offset deltas (otherwise deltas name their base by id).
    pub ofs_delta: bool,
    /// Send progress messages on band 2.
    pub progress: bool,
}

/// Write a pack with `objects` (each once, all present) to `out`. With a thin pack, deltas may
/// only refer to objects in `client_has`; other deltas whose base is not in the pack are sent
/// as whole objects.
pub fn write_pack(
    repo: &gix::Repository,
    objects: Vec<ObjectId>,
    client_has: &HashSet<ObjectId>,
    options: PackOptions,
    out: &mut SidebandWriter<impl Write>,
) -> Result<()> {
    let total = objects.len();
    if options.progress {
        out.progress(&format!("Enumerating objects: {total}, done.\n"))?;
    }
    let num_entries = u32::try_from(total).map_err(|_| Error::LimitExceeded("too many objects".into()))?;
    // Entries are written a header and a few bytes at a time: gather them into whole side-band
    // packets, or every write would be a packet (and an SSH message, and a read and a write in the
    // client's ssh and git).
    let buffered = std::io::BufWriter::with_capacity(crate::sideband::MAX_BAND_PAYLOAD, &mut *out);
    let mut pack = PackWriter::new(buffered, num_entries, false)?;
    let entries =
        Entries { thin: options.thin, ofs_delta: options.ofs_delta, may_refer_to: &|id| client_has.contains(id) };
    entries.append(repo, objects, &mut pack)?;
    pack.finish()?;
    if options.progress {
        out.progress(&format!("Total {total} (reused from packs)\n"))?;
    }
    Ok(())
}

/// How objects become pack entries.
pub(crate) struct Entries<'a> {
    /// Deltas may name bases outside the objects appended (by id).
    pub thin: bool,
    /// Deltas may name their base by offset (otherwise by id).
    pub ofs_delta: bool,
    /// With `thin`, the bases outside the appended objects a delta may keep; other deltas are
    /// sent as whole objects.
    pub may_refer_to: &'a dyn Fn(&ObjectId) -> bool,
}

impl Entries<'_> {
    /// Append `objects` (each once, all present) to `pack`, copying stored entries and deltas
    /// out of our packs without recompressing them.
    pub fn append(
        &self,
        repo: &gix::Repository,
        objects: Vec<ObjectId>,
        pack: &mut PackWriter<impl Write>,
    ) -> Result<()> {
        let mut db = repo.objects.clone().into_inner();
        // Pack locations found while counting must stay valid while entries are copied out.
        db.prevent_pack_unload();
        // Where each object is stored. gix's `count::objects` decodes every object fully (delta
        // chains applied) just to learn this; the location only needs the entry itself.
        let mut counts = Vec::with_capacity(objects.len());
        let mut buf = Vec::new();
        for id in objects {
            let location = db.location_by_oid(&id, &mut buf).map_err(Error::odb)?;
            counts.push(output::Count::from_data(id, location));
        }
        // gix turns entries into memory `CHUNK` at a time, two or three chunks in flight: 64
        // photos of 4 MB would be a quarter of a gigabyte held for one clone (a stalled fetch
        // of twelve held 75 MB). Large whole objects are written first, one at a time, copied
        // out of the pack as they are stored; gix makes the rest as before, and a delta against
        // one of them names its base by id (allowed within a pack).
        let mut written: HashSet<ObjectId> = HashSet::new();
        let mut rest = Vec::with_capacity(counts.len());
        for count in counts {
            let large = count.entry_pack_location.as_ref().filter(|l| l.entry_size >= LARGE_ENTRY);
            let Some(entry) = large.and_then(|l| db.entry_by_location(l)) else {
                rest.push(count);
                continue;
            };
            // Given no bases and no base ids, gix copies out a whole object and declines a delta
            // (whose base may come later: it goes with the rest).
            let no_base = Some(|_, _| Ok(None));
            match output::Entry::from_pack_entry(entry, &count, &[], 0, no_base, Default::default()) {
                Some(Ok(e)) => {
                    pack.entry(&e)?;
                    written.insert(count.id);
                }
                Some(Err(e)) => return Err(Error::odb(e)),
                None => rest.push(count),
            }
        }
        if written.is_empty() {
            return self.append_counts(&db, rest, pack);
        }
        let earlier = |id: &ObjectId| written.contains(id) || (self.thin && (self.may_refer_to)(id));
        Entries { thin: true, ofs_delta: self.ofs_delta, may_refer_to: &earlier }.append_counts(&db, rest, pack)
    }

    /// Append the objects of `counts` (located in `db`), in the order gix gives them.
    fn append_counts(
        &self,
        db: &gix::odb::HandleArc,
        counts: Vec<output::Count>,
        pack: &mut PackWriter<impl Write>,
    ) -> Result<()> {
        let compression = gix::zlib::Compression::BEST_SPEED;
        let mut buf = Vec::new();
        let entries = output::entry::iter_from_counts(
            counts,
            db.clone(),
            Box::new(gix::progress::Discard),
            output::entry::iter_from_counts::Options {
                thread_limit: None,
                mode: output::entry::iter_from_counts::Mode::PackCopyAndBaseObjects,
                allow_thin_pack: self.thin,
                chunk_size: CHUNK,
                version: Default::default(),
                compression,
            },
        )
        .map_err(Error::odb)?;
        // Entries come in out of order from worker threads; the pack needs them in sequence.
        let mut ids_by_index: Vec<ObjectId> = Vec::new();
        // gix numbers a delta's base among these objects; the writer among all it wrote (a
        // repack appends twice to one pack).
        let first = pack.entries();
        for chunk in gix::parallel::InOrderIter::from(entries) {
            let entries: Vec<output::Entry> = chunk.map_err(Error::odb)?;
            for mut e in entries {
                ids_by_index.push(e.id);
                match e.kind {
                    // Without `ofs-delta` a delta must name its base by id.
                    output::entry::Kind::DeltaRef { object_index } if !self.ofs_delta => {
                        e.kind = output::entry::Kind::DeltaOid { id: ids_by_index[object_index] };
                    }
                    output::entry::Kind::DeltaRef { object_index } => {
                        e.kind = output::entry::Kind::DeltaRef { object_index: first + object_index };
                    }
                    // gix makes a thin delta of any stored delta whose base is not among the
                    // objects; the client may lack that base (another branch, below its shallow
                    // boundary).
                    output::entry::Kind::DeltaOid { id } if !(self.may_refer_to)(&id) => {
                        let data = db.find(&e.id, &mut buf).map_err(Error::odb)?;
                        e = output::Entry::from_data(&output::Count::from_data(e.id, None), &data, compression)
                            .map_err(Error::odb)?;
                    }
                    _ => {}
                }
                if e.is_invalid() {
                    return Err(Error::Odb(format!("object {} vanished while its pack was written", e.id)));
                }
                pack.entry(&e)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_git::{git, git_with_input};
    use std::path::Path;

    /// Bytes that do not compress, distinct for distinct seeds (as `tests/git_e2e`'s `noise`;
    /// `seed | 1` made seeds 0 and 1 the same).
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Large entries go one at a time, the small ones between them in runs, and deltas whose
    /// base went in an earlier run name it by id: the pack is whole and sound for git, with
    /// offset deltas and without, and no larger than git's (the deltas kept).
    #[test]
    fn packs_with_large_entries_are_sound_for_git() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("w");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let mut big = noise(1, 3 << 20);
        for round in 0..3u8 {
            // A large file edited a little each time (git stores deltas against a large base),
            // another large file, and small text files around them.
            big[1000 * usize::from(round) + 17] ^= 0xff;
            std::fs::write(work.join("photo.bin"), &big).unwrap();
            std::fs::write(work.join(format!("other-{round}.bin")), noise(u64::from(round) + 9, 2 << 20)).unwrap();
            for i in 0..20 {
                let text = format!("page {i}, round {round}\n").repeat(40 + i);
                std::fs::write(work.join(format!("page-{i}.md")), text).unwrap();
            }
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", &format!("round {round}")]);
        }
        git(&work, &["repack", "-q", "-a", "-d", "-f", "--depth=20"]);
        let objects: Vec<ObjectId> = git(&work, &["rev-list", "--objects", "--all"])
            .lines()
            .map(|l| ObjectId::from_hex(&l.as_bytes()[..40]).unwrap())
            .collect();
        let verbose = git(&work, &["verify-pack", "-v", &pack_index(&work.join(".git"))]);
        assert!(
            verbose.lines().any(|l| l.contains(" blob ")
                && l.split_whitespace().nth(3).is_some_and(|s| s.parse::<usize>().unwrap_or(0) >= LARGE_ENTRY)),
            "a large entry"
        );
        assert!(verbose.contains("chain length"), "deltas");
        let repo = gix::open(work.join(".git")).unwrap();
        for ofs_delta in [true, false] {
            let mut out = SidebandWriter::new(Vec::new(), false);
            let options = PackOptions { thin: false, ofs_delta, progress: false };
            write_pack(&repo, objects.clone(), &HashSet::new(), options, &mut out).unwrap();
            let target = tmp.path().join(format!("target-{ofs_delta}"));
            git(tmp.path(), &["init", "-q", "--bare", target.to_str().unwrap()]);
            git_with_input(&target, &["index-pack", "--strict", "--stdin"], out.inner_mut());
            // Deltas were kept, not sent as whole objects: about the size of git's pack.
            let stored = std::fs::metadata(pack_index(&work.join(".git")).replace(".idx", ".pack")).unwrap().len();
            let sent = out.inner_mut().len() as u64;
            assert!(sent < stored + stored / 10, "sent {sent} bytes, git's pack has {stored}");
            let got = git(&target, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"]);
            assert_eq!(got.lines().count(), objects.len(), "ofs_delta {ofs_delta}");
        }
    }

    fn pack_index(git_dir: &Path) -> String {
        let dir = git_dir.join("objects/pack");
        let idx = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        idx.to_string_lossy().into_owned()
    }
}
