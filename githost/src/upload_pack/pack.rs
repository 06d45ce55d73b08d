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
        let compression = gix::zlib::Compression::BEST_SPEED;
        // Where each object is stored. gix's `count::objects` decodes every object fully (delta
        // chains applied) just to learn this; the location only needs the entry itself.
        let mut counts = Vec::with_capacity(objects.len());
        let mut buf = Vec::new();
        for id in objects {
            let location = db.location_by_oid(&id, &mut buf).map_err(Error::odb)?;
            counts.push(output::Count::from_data(id, location));
        }
        let entries = output::entry::iter_from_counts(
            counts,
            db.clone(),
            Box::new(gix::progress::Discard),
            output::entry::iter_from_counts::Options {
                thread_limit: None,
                mode: output::entry::iter_from_counts::Mode::PackCopyAndBaseObjects,
                allow_thin_pack: self.thin,
                chunk_size: 64,
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
