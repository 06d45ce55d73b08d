//! The quarantine: where a pushed pack waits until the push is accepted.
//!
//! A push's pack is indexed into `objects/incoming-XXXXXX/pack/` (thin packs are completed with
//! bases from the main store), checked (limits, connectivity), shown to the pre-receive hook
//! through an object database that sees the quarantine *and* the main store (via
//! `info/alternates`), and only then moved into `objects/pack/`. Dropping a [`Quarantine`]
//! without [`Quarantine::migrate`] deletes it, so a refused or failed push leaves the object store
//! as it was; a crash leaves a directory that [`remove_stale`] deletes on the next start.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::objs::{Find, FindHeader};
use gix::ObjectId;
use gix_pack as pack;

use crate::error::{Error, Result};
use crate::fsck::{self, Kind};
use crate::limits::Limits;

const PREFIX: &str = "incoming-";

/// Delete quarantine directories left behind by a crash or kill during an earlier push.
pub fn remove_stale(objects_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(objects_dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(PREFIX) {
            tracing::info!(path = %entry.path().display(), "removing quarantine left by an interrupted push");
            std::fs::remove_dir_all(entry.path()).map_err(Error::fs(entry.path()))?;
        }
    }
    Ok(())
}

/// A received pack that is not yet part of the repository.
pub struct Quarantine {
    dir: tempfile::TempDir,
    main_objects: PathBuf,
    /// The indexed pack, if the push carried any objects.
    bundle: Option<pack::Bundle>,
    files: Vec<PathBuf>,
    /// Sees the quarantine and the main store.
    objects: gix::odb::Handle,
}

/// What was received.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackStats {
    /// Objects in the pack after thin-pack completion.
    pub objects: u32,
    /// Bytes read from the client.
    pub bytes: u64,
}

impl Quarantine {
    /// Create an empty quarantine inside `main_objects` (the repository's `objects/`).
    pub fn new(main_objects: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir_in(main_objects).map_err(Error::fs(main_objects))?;
        let info = dir.path().join("info");
        std::fs::create_dir_all(dir.path().join("pack")).map_err(Error::fs(dir.path()))?;
        std::fs::create_dir_all(&info).map_err(Error::fs(&info))?;
        let main_abs = main_objects.canonicalize().map_err(Error::fs(main_objects))?;
        let alternates = info.join("alternates");
        std::fs::write(&alternates, format!("{}\n", main_abs.display())).map_err(Error::fs(&alternates))?;
        let objects = gix::odb::at(dir.path(), gix::hash::Kind::Sha1).map_err(Error::fs(dir.path()))?;
        Ok(Quarantine { dir, main_objects: main_abs, bundle: None, files: Vec::new(), objects })
    }

    /// The quarantine directory (for logs and tests).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// An object database over the quarantined objects and the repository's own.
    pub fn objects(&self) -> &gix::odb::Handle {
        &self.objects
    }

    /// Read a pack from `input` and index it into the quarantine, completing a thin pack with
    /// bases from `main` and enforcing `limits` (pack size while reading, object size while
    /// resolving, delta depth after indexing).
    pub fn receive(&mut self, input: &mut dyn Read, main: gix::odb::Handle, limits: &Limits) -> Result<PackStats> {
        let mut counted = CountingRead { inner: input, read: 0, limit: limits.max_pack_bytes, limit_hit: false };
        let outcome = {
            let mut reader: Box<dyn BufRead> = Box::new(io::BufReader::with_capacity(64 * 1024, &mut counted));
            pack::Bundle::write_to_directory(
                &mut reader,
                Some(&self.dir.path().join("pack")),
                &mut gix::progress::Discard,
                &AtomicBool::new(false),
                Some(main),
                gix::hash::Kind::Sha1,
                pack::bundle::write::Options {
                    thread_limit: Some(limits.index_threads),
                    alloc_limit_bytes: Some(limits.max_object_bytes as usize),
                    ..Default::default()
                },
            )
        };
        let bytes = counted.read;
        let outcome = match outcome {
            Ok(o) => o,
            Err(_) if counted.limit_hit => {
                return Err(Error::LimitExceeded(format!(
                    "pack exceeds the maximum push size of {} bytes",
                    limits.max_pack_bytes
                )))
            }
            Err(e) => {
                let text = format!("{e:#}");
                // gix reports the allocation limit as a resource-exhaustion error.
                if text.to_lowercase().contains("allocation") {
                    return Err(Error::LimitExceeded(format!(
                        "an object exceeds the maximum object size of {} bytes",
                        limits.max_object_bytes
                    )));
                }
                return Err(Error::BadPack(text));
            }
        };
        if let Some(keep) = &outcome.keep_path {
            let _ = std::fs::remove_file(keep);
        }
        if outcome.index.num_objects == 0 {
            // `git push` of refs to objects we already have sends an empty pack: nothing to keep.
            return Ok(PackStats { objects: 0, bytes });
        }
        let (Some(data_path), Some(index_path)) = (outcome.data_path, outcome.index_path) else {
            return Err(Error::BadPack("pack was indexed but not written".into()));
        };
        let bundle = pack::Bundle::at(&index_path, gix::hash::Kind::Sha1).map_err(|e| Error::BadPack(e.to_string()))?;
        self.files = vec![data_path, index_path];
        check_delta_depth(&bundle, limits.max_delta_depth)?;
        let stats = PackStats { objects: outcome.index.num_objects, bytes };
        self.bundle = Some(bundle);
        // The odb handle was created before the pack existed; it refreshes on a miss, but a new
        // handle makes the pack visible right away.
        self.objects = gix::odb::at(self.dir.path(), gix::hash::Kind::Sha1).map_err(Error::fs(self.dir.path()))?;
        Ok(stats)
    }

    /// Ids of all objects in the received pack.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        match &self.bundle {
            Some(b) => b.index.iter().map(|e| e.oid).collect(),
            None => Vec::new(),
        }
    }

    /// Verify every object of the pack as `git index-pack --strict` would ([`fsck`]: headers,
    /// identities, tree entries and their order, `.gitmodules` and `.gitattributes`), within the
    /// size limit, each once, and that everything it links to exists (in the pack or the
    /// repository) with the kind the link says. The repository's store is closed under
    /// references because every push passed this check, so this makes the union closed too, and
    /// any new ref tip that exists is fully connected.
    pub fn check_connectivity(&self, limits: &Limits) -> Result<()> {
        let Some(bundle) = &self.bundle else { return Ok(()) };
        let db = &self.objects;
        // Every object's kind and size from its header alone: blobs, the bulk of a push, are
        // never decompressed here (indexing already verified their hashes).
        let mut kinds = Vec::with_capacity(bundle.index.num_objects() as usize);
        let mut previous = None;
        for entry in bundle.index.iter() {
            let id = entry.oid;
            if previous == Some(id) {
                return Err(Error::BadPack(format!("object {id} appears twice in the pack")));
            }
            previous = Some(id);
            let header = db
                .try_header(&id)
                .map_err(|e| Error::BadPack(format!("object {id}: {e}")))?
                .ok_or_else(|| Error::BadPack(format!("object {id} missing from its own pack")))?;
            if header.size > limits.max_object_bytes {
                return Err(Error::LimitExceeded(format!(
                    "object {id} is {} bytes, over the maximum object size of {} bytes",
                    header.size, limits.max_object_bytes
                )));
            }
            kinds.push(header.kind);
        }
        let kind_of = |id: &ObjectId| -> Result<Option<Kind>> {
            match bundle.index.lookup(id) {
                Some(at) => Ok(kinds.get(at as usize).copied()),
                None => Ok(db.try_header(id).map_err(|e| Error::BadPack(format!("object {id}: {e}")))?.map(|h| h.kind)),
            }
        };
        let must_be = |from: &str, id: ObjectId, kind: Kind| -> Result<()> {
            match kind_of(&id)? {
                Some(found) if found == kind => Ok(()),
                Some(found) => {
                    Err(Error::BadPack(format!("{from} links to {id} as a {kind:?}, but it is a {found:?}")))
                }
                None => Err(Error::BadPack(format!("{from} references missing object {id}"))),
            }
        };
        let mut buf = Vec::new();
        let mut links = Vec::new();
        let mut specials = Vec::new();
        for (entry, &kind) in bundle.index.iter().zip(&kinds) {
            if kind == Kind::Blob {
                continue;
            }
            let id = entry.oid;
            let data = db
                .try_find(&id, &mut buf)
                .map_err(|e| Error::BadPack(format!("object {id}: {e}")))?
                .ok_or_else(|| Error::BadPack(format!("object {id} missing from its own pack")))?;
            let what = format!("{kind:?} {id}").to_lowercase();
            let refused = |e: fsck::Invalid| Error::BadPack(format!("{what}: {e}"));
            match kind {
                Kind::Commit => {
                    let commit = fsck::commit(data.data).map_err(refused)?;
                    must_be(&what, commit.tree, Kind::Tree)?;
                    for parent in commit.parents {
                        must_be(&what, parent, Kind::Commit)?;
                    }
                }
                Kind::Tree => {
                    links.clear();
                    fsck::tree(data.data, &mut links).map_err(refused)?;
                    for link in &links {
                        must_be(&what, link.id, link.kind)?;
                        if let Some(special) = link.special {
                            specials.push((link.id, special));
                        }
                    }
                }
                Kind::Tag => {
                    let (target, target_kind) = fsck::tag(data.data).map_err(refused)?;
                    must_be(&what, target, target_kind)?;
                }
                Kind::Blob => {}
            }
        }
        // The blobs trees name `.gitmodules` or `.gitattributes` (in the pack or already
        // stored), each read once.
        specials.sort_unstable_by_key(|(id, special)| (*id, *special as u8));
        specials.dedup();
        for (id, special) in specials {
            let data = db
                .try_find(&id, &mut buf)
                .map_err(|e| Error::BadPack(format!("object {id}: {e}")))?
                .ok_or_else(|| Error::BadPack(format!("blob {id} is missing")))?;
            let checked = match special {
                fsck::Special::Gitmodules => fsck::gitmodules(data.data),
                fsck::Special::Gitattributes => fsck::gitattributes(data.data),
            };
            checked.map_err(|e| Error::BadPack(format!("blob {id}: {e}")))?;
        }
        Ok(())
    }

    /// Move the received pack into the repository. Call with the repository lock held, right
    /// before the ref transaction. The `.pack` is moved before its `.idx`, so a concurrent reader
    /// never sees an index without its data.
    pub fn migrate(self) -> Result<()> {
        let pack_dir = self.main_objects.join("pack");
        std::fs::create_dir_all(&pack_dir).map_err(Error::fs(&pack_dir))?;
        // Data reaches the disk before any ref can point at it (git's `core.fsync` default).
        for file in &self.files {
            std::fs::File::open(file).and_then(|f| f.sync_all()).map_err(Error::fs(file))?;
        }
        for file in &self.files {
            let Some(name) = file.file_name() else { continue };
            let target = pack_dir.join(name);
            if target.exists() {
                continue; // the same pack was received before
            }
            std::fs::rename(file, &target).map_err(Error::fs(&target))?;
        }
        std::fs::File::open(&pack_dir).and_then(|d| d.sync_all()).map_err(Error::fs(&pack_dir))?;
        Ok(())
    }
}

/// Refuse packs whose delta chains are longer than `max`: resolving them costs time and memory
/// proportional to the depth, on every read.
fn check_delta_depth(bundle: &pack::Bundle, max: u32) -> Result<()> {
    let mut depth_at: HashMap<u64, u32> = HashMap::new();
    let mut offsets: Vec<u64> = bundle.index.iter().map(|e| e.pack_offset).collect();
    offsets.sort_unstable();
    for &offset in &offsets {
        // Walk to the first base whose depth is known, then fill in the chain on the way back.
        let mut chain = Vec::new();
        let mut current = offset;
        let base_depth = loop {
            if let Some(d) = depth_at.get(&current) {
                break *d;
            }
            let entry = bundle.pack.entry(current).map_err(|e| Error::BadPack(e.to_string()))?;
            chain.push(current);
            if chain.len() as u32 > max + 1 {
                return Err(Error::LimitExceeded(format!("a delta chain is deeper than the maximum of {max}")));
            }
            current = match entry.header {
                pack::data::entry::Header::OfsDelta { base_distance } => {
                    pack::data::entry::Header::verified_base_pack_offset(current, base_distance)
                        .ok_or_else(|| Error::BadPack(format!("delta at offset {current} points outside the pack")))?
                }
                pack::data::entry::Header::RefDelta { base_id } => match bundle.index.lookup(base_id) {
                    Some(i) => bundle.index.pack_offset_at_index(i),
                    None => break 0, // base in the main store: counts as a full object here
                },
                _ => {
                    depth_at.insert(current, 0);
                    chain.pop();
                    break 0;
                }
            };
        };
        for (i, off) in chain.iter().rev().enumerate() {
            let depth = base_depth + i as u32 + 1;
            if depth > max {
                return Err(Error::LimitExceeded(format!(
                    "a delta chain is {depth} deep, deeper than the maximum of {max}"
                )));
            }
            depth_at.insert(*off, depth);
        }
    }
    Ok(())
}

/// A reader that counts bytes and fails once more than `limit` were read.
struct CountingRead<'a> {
    inner: &'a mut dyn Read,
    read: u64,
    limit: u64,
    limit_hit: bool,
}

impl Read for CountingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            self.limit_hit = true;
            return Err(io::Error::other("push exceeds the maximum pack size"));
        }
        Ok(n)
    }
}
