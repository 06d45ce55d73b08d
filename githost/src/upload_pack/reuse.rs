//! Clones served from a stored pack: when the client has nothing and wants everything that a
//! whole repack stored (see [`crate::maintenance`]), the pack's reusable region — exactly the
//! objects reachable from the refs of that moment, deltas and all — is copied to the client
//! verbatim, without walking the history or deciding a single object. Only what was pushed since
//! (the commits between those refs and today's) is planned and appended, deltas against the
//! region's objects allowed (they are in the same pack). This is git's pack reuse; git needs a
//! reachability bitmap to know the region is exact, we know it from how the pack was written.

use std::collections::{BinaryHeap, HashSet};
use std::io::{Read, Seek, SeekFrom, Write};

use gix::ObjectId;

use super::commits::Commits;
use super::pack::{write_pack, Entries, PackOptions};
use super::plan::{plan, Request};
use crate::error::{Error, Result};
use crate::maintenance::{self, Reuse};
use crate::pack_writer::PackWriter;
use crate::refs::{self, RefEntry};
use crate::sideband::SidebandWriter;

/// Send the pack `req` asks for: reusing a stored pack when it can, planned otherwise.
pub(super) fn send_pack(
    repo: &gix::Repository,
    commits: &mut Commits<'_>,
    req: &Request,
    refs: &[RefEntry],
    options: PackOptions,
    out: &mut SidebandWriter<impl Write>,
) -> Result<()> {
    if let Some(base) = reusable(repo, commits, req, options)? {
        return send_reusing(repo, commits, req, refs, options, base, out);
    }
    let planned = plan(commits, req, refs)?;
    write_pack(repo, planned.objects, &planned.client_has, options, out)
}

/// A stored pack whose region can be sent as it is.
struct Base {
    reuse: Reuse,
    index: gix_pack::index::File,
    data: std::fs::File,
}

fn reusable(
    repo: &gix::Repository,
    commits: &mut Commits<'_>,
    req: &Request,
    options: PackOptions,
) -> Result<Option<Base>> {
    let fresh = req.common.is_empty() && req.client_shallow.is_empty() && req.deepen.is_none();
    if !fresh || !options.ofs_delta {
        return Ok(None);
    }
    let packs = maintenance::packs(&repo.git_dir().join("objects"))?;
    let Some(pack) = packs.into_iter().filter(|p| p.reuse.is_some()).max_by_key(|p| p.objects) else {
        return Ok(None);
    };
    let Some(reuse) = pack.reuse.clone() else { return Ok(None) };
    if !covered(repo, commits, &req.wants, &reuse.tips)? {
        return Ok(None);
    }
    // Opened files stay readable if maintenance replaces the pack meanwhile; one that is gone
    // already just means no reuse this time.
    let (Ok(mut data), Ok(index)) =
        (std::fs::File::open(pack.path("pack")), gix_pack::index::File::at(pack.path("idx"), gix::hash::Kind::Sha1))
    else {
        return Ok(None);
    };
    let mut header = [0u8; 12];
    let len = data.metadata().map(|m| m.len()).unwrap_or(0);
    if data.read_exact(&mut header).is_err()
        || &header[..8] != b"PACK\x00\x00\x00\x02"
        || u32::from_be_bytes([header[8], header[9], header[10], header[11]]) < reuse.objects
        || len < reuse.end + 20
        || index.num_objects() < reuse.objects
    {
        tracing::warn!(pack = %pack.stem.display(), "a stored pack does not match its reuse record; not reused");
        return Ok(None);
    }
    Ok(Some(Base { reuse, index, data }))
}

/// Whether every tip of the stored region is reachable from `wants`: wanted itself, or a commit
/// that a wanted commit descends from (a branch pushed since).
fn covered(repo: &gix::Repository, commits: &mut Commits<'_>, wants: &[ObjectId], tips: &[ObjectId]) -> Result<bool> {
    let wanted: HashSet<ObjectId> = wants.iter().copied().collect();
    let mut open: HashSet<ObjectId> = tips.iter().copied().filter(|t| !wanted.contains(t)).collect();
    if open.is_empty() {
        return Ok(true);
    }
    let mut oldest = i64::MAX;
    for t in &open {
        match commits.try_get(*t)? {
            Some(info) => oldest = oldest.min(info.time),
            None => return Ok(false), // a tag or tree no longer wanted
        }
    }
    let mut buf = Vec::new();
    let mut queue = BinaryHeap::new();
    let mut seen = HashSet::new();
    for w in wants {
        let id = refs::peel_tag(&repo.objects, *w, &mut buf)?.unwrap_or(*w);
        if let Some(info) = commits.try_get(id)? {
            queue.push((info.time, id));
        }
    }
    // Newest first; nothing older than the oldest open tip can lead to it (clock skew only
    // costs the reuse, never correctness). Bounded, like any walk a client can cause.
    while let Some((time, id)) = queue.pop() {
        if time < oldest || seen.len() > 200_000 {
            break;
        }
        if !seen.insert(id) {
            continue;
        }
        if open.remove(&id) && open.is_empty() {
            return Ok(true);
        }
        for p in commits.get(id)?.parents.clone() {
            if let Some(info) = commits.try_get(p)? {
                queue.push((info.time, p));
            }
        }
    }
    Ok(false)
}

fn send_reusing(
    repo: &gix::Repository,
    commits: &mut Commits<'_>,
    req: &Request,
    refs: &[RefEntry],
    options: PackOptions,
    mut base: Base,
    out: &mut SidebandWriter<impl Write>,
) -> Result<()> {
    // What was pushed since the region was written: the walk stops at its tips.
    let mut buf = Vec::new();
    let mut common = Vec::new();
    for tip in &base.reuse.tips {
        common.push(refs::peel_tag(&repo.objects, *tip, &mut buf)?.unwrap_or(*tip));
    }
    let since = Request { wants: req.wants.clone(), common, include_tag: req.include_tag, ..Default::default() };
    // The region, not the whole stored pack: after it come objects no ref reached when it was
    // written, which a later push may have made reachable again (a deleted branch pushed back).
    let (index, end) = (&base.index, base.reuse.end);
    let in_region = |id: &ObjectId| index.lookup(id).is_some_and(|i| index.pack_offset_at_index(i) < end);
    let extra: Vec<ObjectId> = plan(commits, &since, refs)?.objects.into_iter().filter(|id| !in_region(id)).collect();
    let region = base.reuse.objects;
    let total = u32::try_from(extra.len())
        .ok()
        .and_then(|n| n.checked_add(region))
        .ok_or_else(|| Error::LimitExceeded("too many objects".into()))?;
    if options.progress {
        out.progress(&format!("Enumerating objects: {total}, done.\n"))?;
    }
    let buffered = std::io::BufWriter::with_capacity(crate::sideband::MAX_BAND_PAYLOAD, &mut *out);
    let mut pack = PackWriter::new(buffered, total, false)?;
    base.data.seek(SeekFrom::Start(12))?;
    pack.raw(&mut base.data, base.reuse.end - 12)?;
    let extra_set: HashSet<ObjectId> = extra.iter().copied().collect();
    let in_pack = |id: &ObjectId| extra_set.contains(id) || in_region(id);
    Entries { thin: true, ofs_delta: true, may_refer_to: &in_pack }.append(repo, extra, &mut pack)?;
    pack.finish()?;
    if options.progress {
        out.progress(&format!("Total {total} (reused {region} from a stored pack)\n"))?;
    }
    Ok(())
}
