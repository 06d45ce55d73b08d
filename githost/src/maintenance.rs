//! Pack maintenance: every push moves a pack into the repository; this keeps their number
//! bounded, in the background, so that push number 10,000 costs what push number 1 did.
//!
//! **What it does.** Packs are weighed by object count. As in `git repack --geometric=2`, the
//! smallest packs that break a doubling progression are rolled up into one, so that at most
//! [`MAX_PACKS`] remain. When the roll-up would take in the largest pack too, when the other packs
//! hold a tenth as many objects as the largest, or when the largest pack was never written by us
//! (an imported history), the repository is repacked whole: every object reachable from the refs
//! first, in one region a clone can copy verbatim (recorded in a `pack-<hash>.reuse` file beside
//! the pack; see `upload_pack::reuse`), then every other object of the old packs. Entries and deltas are copied, never recompressed or re-deltified.
//!
//! **What it promises.**
//! - No object ever becomes unreachable from every pack: the new pack (written to a temporary
//!   name, synced, renamed into place `.pack` before `.idx`, directory synced) holds every object
//!   of the packs it replaces before any of them is removed. Objects are never dropped, even
//!   unreachable ones: a push being checked may be relying on one.
//! - `kill -9` at any instant leaves either the old packs, or the old and the new (duplicates,
//!   harmless, merged by the next run); temporary files are removed when the repository opens.
//! - Nothing waits for it: pushes and fetches go on while it runs (it takes no lock). Replaced
//!   packs are removed only once every reader that started before the new pack was in place has
//!   finished ([`crate::repository::Repository::reader`]).

use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;
use gix::ObjectId;

use crate::error::{Error, Result};
use crate::pack_writer::{write_index, PackWriter};
use crate::repository::Repository;
use crate::upload_pack::commits::Commits;
use crate::upload_pack::pack::Entries;
use crate::upload_pack::plan;

/// At most this many packs remain after maintenance.
pub const MAX_PACKS: usize = 10;

/// Each kept pack holds at least this many times the objects of all smaller ones together.
const FACTOR: u64 = 2;

/// A whole repack once the other packs hold this fraction (1/N) of the objects of the largest
/// pack (normally its reusable region, give or take objects no ref reaches; counting the whole
/// pack bounds what the repacks copy): a clone copies the region as it is but plans and writes
/// everything pushed since object by object, so that part is kept small (after 2,000 one-file
/// pushes left to the geometric rule alone, a clone was 11% slower than one of the same history
/// freshly imported). Each object is copied about N times over a repository's life, in the background.
const WHOLE_AFTER: u64 = 10;

/// Prefix of the temporary files a repack writes in `objects/pack/`.
const TMP_PREFIX: &str = ".tmp-repack-";

/// One pack of the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct PackFile {
    /// `objects/pack/pack-<hash>` without an extension.
    pub stem: PathBuf,
    /// Objects in the pack (from its index).
    pub objects: u32,
    /// The region a clone may copy, when a whole repack wrote the pack.
    pub reuse: Option<Reuse>,
}

impl PackFile {
    /// The file of the pack with extension `ext` (`pack`, `idx`, `reuse`).
    pub fn path(&self, ext: &str) -> PathBuf {
        self.stem.with_extension(ext)
    }
}

/// The start of a pack that holds exactly the objects reachable from `tips` (the refs when it
/// was written), each delta's base before it: `objects` entries from byte 12 to `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reuse {
    pub objects: u32,
    pub end: u64,
    pub tips: Vec<ObjectId>,
}

impl Reuse {
    const MAGIC: &'static str = "whispercms-reuse 1";

    fn to_text(&self) -> String {
        let mut s = format!("{}\nobjects {}\nend {}\n", Self::MAGIC, self.objects, self.end);
        for t in &self.tips {
            s.push_str(&format!("tip {t}\n"));
        }
        s
    }

    /// Parse a `.reuse` file; anything unexpected means "not reusable".
    pub fn parse(text: &str) -> Option<Reuse> {
        let mut lines = text.lines();
        if lines.next()? != Self::MAGIC {
            return None;
        }
        let objects = lines.next()?.strip_prefix("objects ")?.parse().ok()?;
        let end = lines.next()?.strip_prefix("end ")?.parse().ok()?;
        let tips = lines
            .map(|l| l.strip_prefix("tip ").and_then(|h| ObjectId::from_hex(h.as_bytes()).ok()))
            .collect::<Option<Vec<_>>>()?;
        (end >= 12 && !tips.is_empty()).then_some(Reuse { objects, end, tips })
    }
}

/// The repository's packs: every `pack-*.idx` with its `.pack`, largest first.
pub fn packs(objects_dir: &Path) -> Result<Vec<PackFile>> {
    let dir = objects_dir.join("pack");
    let read = match std::fs::read_dir(&dir) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::fs(&dir)(e)),
    };
    let mut out = Vec::new();
    for entry in read {
        let path = entry.map_err(Error::fs(&dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if !(name.starts_with("pack-") && name.ends_with(".idx")) {
            continue;
        }
        let stem = path.with_extension("");
        if !stem.with_extension("pack").is_file() {
            continue;
        }
        // A pack removed by a concurrent run between listing and reading is simply skipped.
        let Ok(objects) = index_object_count(&path) else { continue };
        let reuse = std::fs::read_to_string(stem.with_extension("reuse")).ok().and_then(|t| Reuse::parse(&t));
        out.push(PackFile { stem, objects, reuse });
    }
    out.sort_by(|a, b| b.objects.cmp(&a.objects).then_with(|| a.stem.cmp(&b.stem)));
    Ok(out)
}

/// The object count of a version 2 pack index: the last entry of its fan-out table.
fn index_object_count(idx: &Path) -> std::io::Result<u32> {
    let mut head = [0u8; 8 + 256 * 4];
    std::fs::File::open(idx)?.read_exact(&mut head)?;
    if &head[..8] != b"\xfftOc\x00\x00\x00\x02" {
        return Err(std::io::Error::other("not a version 2 pack index"));
    }
    Ok(u32::from_be_bytes([head[1028], head[1029], head[1030], head[1031]]))
}

/// What a maintenance run should do.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    Nothing,
    /// Roll these (the smallest) packs up into one.
    RollUp(Vec<PackFile>),
    /// Repack everything (these are all the packs) with a reusable region.
    Whole(Vec<PackFile>),
}

/// Decide from the packs (largest first, as [`packs`] lists them).
pub fn decide(packs: &[PackFile]) -> Work {
    let Some(largest) = packs.first() else { return Work::Nothing };
    if largest.reuse.is_none() {
        // An imported history (or an old data dir): one whole repack gives clones their region.
        return Work::Whole(packs.to_vec());
    }
    let since: u64 = packs[1..].iter().map(|p| u64::from(p.objects)).sum();
    if since > 0 && since * WHOLE_AFTER >= u64::from(largest.objects) {
        return Work::Whole(packs.to_vec());
    }
    // Smallest first; `split` = how many of the smallest are rolled up.
    let ascending: Vec<&PackFile> = packs.iter().rev().collect();
    let n = ascending.len();
    let mut split = 0;
    for i in (1..n).rev() {
        if u64::from(ascending[i].objects) < FACTOR * u64::from(ascending[i - 1].objects) {
            split = i + 1;
            break;
        }
    }
    if split > 0 {
        let mut rolled: u64 = ascending[..split].iter().map(|p| u64::from(p.objects)).sum();
        while split < n && u64::from(ascending[split].objects) < FACTOR * rolled {
            rolled += u64::from(ascending[split].objects);
            split += 1;
        }
    }
    // Keep the count bounded even when sizes happen to double.
    split = split.max((n + 1).saturating_sub(MAX_PACKS));
    match split {
        0 | 1 => Work::Nothing,
        s if s >= n => Work::Whole(packs.to_vec()),
        s => Work::RollUp(ascending[..s].iter().map(|p| (*p).clone()).collect()),
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Packs replaced (and removed once their readers finished).
    pub replaced: usize,
    /// The new pack, if one was written.
    pub written: Option<PackFile>,
}

/// Run one step of maintenance now, on this thread: decide, repack, install, then remove the
/// replaced packs once the readers that might use them are gone.
pub fn run_once(repo: &Repository) -> Result<Report> {
    // Held while temporary files exist, so that another process opening the repository never
    // takes them for debris.
    let lock_path = repo.git_dir().join(LOCK_FILE);
    let lock = lock_file(&lock_path)?;
    lock.lock_exclusive().map_err(Error::fs(&lock_path))?;
    let work = decide(&packs(&repo.objects_dir())?);
    let (old, whole) = match work {
        Work::Nothing => return Ok(Report::default()),
        Work::RollUp(old) => (old, false),
        Work::Whole(old) => (old, true),
    };
    let started = std::time::Instant::now();
    let written = repack(repo, &old, whole)?;
    drop(lock);
    let retired: Vec<PackFile> = old.into_iter().filter(|p| p.stem != written.stem).collect();
    // Readers that began before the new pack was in place may hold the old ones.
    let epoch = repo.new_reader_epoch();
    while std::sync::Arc::strong_count(&epoch) > 1 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    for p in &retired {
        // The index first: without it no reader looks for the pack.
        for ext in ["idx", "pack", "reuse", "keep", "rev", "bitmap"] {
            let path = p.path(ext);
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a replaced pack file");
                }
            }
        }
    }
    // A store that watches packs vanish keeps their index slots (while any clone runs, gix marks
    // them garbage instead of freeing them); once it has gone round all its slots, gix-odb 0.87
    // may put a new pack into the slot of one vanishing in the same look at the disk, and then
    // panics ("if the generation changed, the slot index must have changed for sure"; seen in a
    // 30-minute soak after ~4,000 packs had come and gone) and never sees a new pack again. A
    // fresh store from here on sees only packs that are added; requests already running finish
    // on the old one.
    repo.reopen()?;
    tracing::info!(
        repository = repo.name(),
        whole,
        replaced = retired.len(),
        objects = written.objects,
        ms = started.elapsed().as_millis() as u64,
        "packs consolidated"
    );
    Ok(Report { replaced: retired.len(), written: Some(written) })
}

/// Run maintenance until there is nothing left to do (a few steps at most).
pub fn run(repo: &Repository) -> Result<()> {
    for _ in 0..4 {
        if run_once(repo)?.written.is_none() {
            break;
        }
    }
    Ok(())
}

/// Write one pack holding every object of `old` (and, for a whole repack, every object reachable
/// from the refs, in a reusable region first) and install it. Returns the new pack.
fn repack(repo: &Repository, old: &[PackFile], whole: bool) -> Result<PackFile> {
    let local = repo.local();
    let pack_dir = repo.objects_dir().join("pack");
    let mut reachable: Vec<ObjectId> = Vec::new();
    let mut tips: Vec<ObjectId> = Vec::new();
    if whole {
        let refs = crate::refs::list(&local)?;
        let mut seen = HashSet::new();
        tips = refs.iter().map(|r| r.id).filter(|id| seen.insert(*id)).collect();
        if !tips.is_empty() {
            let mut commits = Commits::new(&local);
            let req = plan::Request { wants: tips.clone(), ..Default::default() };
            reachable = plan::plan(&mut commits, &req, &refs)?.objects;
        }
    }
    let in_region: HashSet<ObjectId> = reachable.iter().copied().collect();
    let mut rest: Vec<ObjectId> = Vec::new();
    let mut in_rest: HashSet<ObjectId> = HashSet::new();
    for p in old {
        let index = gix_pack::index::File::at(p.path("idx"), gix::hash::Kind::Sha1)
            .map_err(|e| Error::Odb(format!("{}: {e}", p.path("idx").display())))?;
        for entry in index.iter() {
            if !in_region.contains(&entry.oid) && in_rest.insert(entry.oid) {
                rest.push(entry.oid);
            }
        }
    }
    let total = u32::try_from(reachable.len() + rest.len())
        .map_err(|_| Error::LimitExceeded("too many objects to repack".into()))?;
    let region_objects = reachable.len() as u32;

    let tmp = |suffix: &str| {
        tempfile::Builder::new().prefix(TMP_PREFIX).suffix(suffix).tempfile_in(&pack_dir).map_err(Error::fs(&pack_dir))
    };
    let pack_tmp = tmp(".pack")?;
    let mut pack = PackWriter::new(BufWriter::with_capacity(1 << 20, pack_tmp.as_file()), total, true)?;
    Entries { thin: false, ofs_delta: true, may_refer_to: &|_| false }.append(&local, reachable, &mut pack)?;
    let end = pack.position();
    // Objects outside the region may be deltas against any object of the new pack.
    let in_pack = |id: &ObjectId| in_region.contains(id) || in_rest.contains(id);
    Entries { thin: true, ofs_delta: true, may_refer_to: &in_pack }.append(&local, rest, &mut pack)?;
    let (hash, out, index) = pack.finish()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all().map_err(Error::fs(pack_tmp.path()))?;

    let stem = pack_dir.join(format!("pack-{hash}"));
    let new = PackFile {
        stem: stem.clone(),
        objects: total,
        reuse: whole.then_some(Reuse { objects: region_objects, end, tips }).filter(|r| !r.tips.is_empty()),
    };
    let reuse_tmp = match &new.reuse {
        Some(reuse) => {
            let mut f = tmp(".reuse")?;
            f.write_all(reuse.to_text().as_bytes()).map_err(Error::fs(f.path()))?;
            f.as_file().sync_all().map_err(Error::fs(f.path()))?;
            Some(f)
        }
        None => None,
    };
    let persist = |f: tempfile::NamedTempFile, to: PathBuf| f.persist(&to).map_err(|e| Error::fs(&to)(e.error));
    if stem.with_extension("idx").is_file() {
        // The very same pack is in place already (a pack that was already in this order, such as
        // an imported history): it only lacked its reuse record.
        if let Some(f) = reuse_tmp {
            persist(f, stem.with_extension("reuse"))?;
        }
        return Ok(new);
    }
    let idx_tmp = tmp(".idx")?;
    write_index(index, hash, BufWriter::new(idx_tmp.as_file()))?;
    idx_tmp.as_file().sync_all().map_err(Error::fs(idx_tmp.path()))?;
    // The data first, the index last: a reader that finds the index finds everything.
    persist(pack_tmp, stem.with_extension("pack"))?;
    if let Some(f) = reuse_tmp {
        persist(f, stem.with_extension("reuse"))?;
    }
    persist(idx_tmp, stem.with_extension("idx"))?;
    std::fs::File::open(&pack_dir).and_then(|d| d.sync_all()).map_err(Error::fs(&pack_dir))?;
    Ok(new)
}

/// The lock a repack holds in the repository's directory (see [`remove_debris`]).
const LOCK_FILE: &str = "whispercms-maintenance.lock";

fn lock_file(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path).map_err(Error::fs(path))
}

/// Remove what an interrupted repack left in `objects/pack/`: temporary files, and a pack whose
/// index never arrived. Skipped while another process repacks or moves a push's pack in (it
/// holds the maintenance lock or the ref lock): its files in flight are not debris.
pub fn remove_debris(objects_dir: &Path) -> Result<()> {
    let dir = objects_dir.join("pack");
    let Ok(read) = std::fs::read_dir(&dir) else { return Ok(()) };
    let mut debris = Vec::new();
    for entry in read {
        let path = entry.map_err(Error::fs(&dir))?.path();
        if is_debris(&path) {
            debris.push(path);
        }
    }
    // Locks only when there is something to remove: every repository opened (a desktop
    // checkout too) would otherwise get a lock file and two lock calls for nothing.
    if debris.is_empty() {
        return Ok(());
    }
    let git_dir = objects_dir.parent().unwrap_or(objects_dir);
    let maintenance = lock_file(&git_dir.join(LOCK_FILE))?;
    let refs = lock_file(&git_dir.join(crate::repository::LOCK_FILE))?;
    if maintenance.try_lock_exclusive().is_err() || refs.try_lock_exclusive().is_err() {
        tracing::debug!("another process is writing packs; leaving objects/pack/ as it is");
        return Ok(());
    }
    for path in debris {
        // Checked again under the locks: a push may have moved its index in meanwhile.
        if is_debris(&path) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::info!(path = %path.display(), "removed what an interrupted repack left"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::fs(&path)(e)),
            }
        }
    }
    Ok(())
}

/// A repack's temporary file, or a pack or reuse record without its index.
fn is_debris(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let orphan = name.starts_with("pack-")
        && (name.ends_with(".pack") || name.ends_with(".reuse"))
        && !path.with_extension("idx").exists();
    name.starts_with(TMP_PREFIX) || orphan
}

/// Make the calling thread yield the CPU to everything else of the server (nice 10): a whole
/// repack of a large site runs right after its initial push, and at equal priority it took a
/// core from the publish of that same push (24.7 s instead of 22.3 s at 100,000 pages). Linux
/// keeps the nice value per thread; elsewhere this does nothing.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
        let result = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the pack maintenance thread's priority");
        }
    }
}

/// The background thread of one repository: wakes after each ref transaction
/// ([`Repository::refs_changed`]) and runs [`run`]. Ends when the repository is dropped.
pub(crate) fn spawn(repo: std::sync::Weak<Repository>, wake: std::sync::mpsc::Receiver<()>) -> Result<()> {
    std::thread::Builder::new()
        .name("pack-maintenance".into())
        .spawn(move || {
            lower_priority();
            while wake.recv().is_ok() {
                let Some(repo) = repo.upgrade() else { return };
                if let Err(e) = run(&repo) {
                    tracing::warn!(repository = repo.name(), error = %e, "pack maintenance failed; will retry after the next push");
                }
            }
        })
        .map(|_| ())
        .map_err(Error::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(objects: u32, reuse: bool) -> PackFile {
        PackFile {
            stem: PathBuf::from(format!("pack-{objects}")),
            objects,
            reuse: reuse.then(|| Reuse { objects, end: 12, tips: vec![ObjectId::null(gix::hash::Kind::Sha1)] }),
        }
    }

    fn sizes(work: &Work) -> Vec<u32> {
        match work {
            Work::Nothing => vec![],
            Work::RollUp(p) | Work::Whole(p) => p.iter().map(|p| p.objects).collect(),
        }
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(&[]), Work::Nothing);
        // An imported pack (not ours) is repacked whole once; ours alone is left.
        assert!(matches!(decide(&[pack(5000, false)]), Work::Whole(_)));
        assert_eq!(decide(&[pack(5000, true)]), Work::Nothing);
        // A geometric progression is left alone.
        assert_eq!(decide(&[pack(5000, true), pack(100, false), pack(40, false), pack(10, false)]), Work::Nothing);
        // Small pushes are rolled up, the large pack kept.
        let work = decide(&[pack(5000, true), pack(6, false), pack(5, false), pack(5, false)]);
        assert_eq!(sizes(&work), vec![5, 5, 6]);
        assert!(matches!(work, Work::RollUp(_)));
        // Once the rest weighs a tenth of the largest, everything is repacked.
        let work = decide(&[pack(5000, true), pack(300, false), pack(150, false), pack(50, false)]);
        assert!(matches!(work, Work::Whole(ref p) if p.len() == 4), "{work:?}");
        let work = decide(&[pack(5000, true), pack(299, false), pack(150, false), pack(50, false)]);
        assert!(matches!(work, Work::RollUp(ref p) if p.len() == 3), "{work:?}");
        // Never more than MAX_PACKS, even along a doubling progression.
        let many: Vec<PackFile> =
            (0..14).rev().map(|i| if i == 13 { pack(1 << 20, true) } else { pack(1 << (i + 1), false) }).collect();
        let work = decide(&many);
        assert_eq!(sizes(&work).len(), 5, "{work:?}");
    }

    #[test]
    fn reuse_files_parse_strictly() {
        let r = Reuse { objects: 3, end: 400, tips: vec![ObjectId::null(gix::hash::Kind::Sha1)] };
        assert_eq!(Reuse::parse(&r.to_text()), Some(r.clone()));
        for bad in ["", "whispercms-reuse 2\nobjects 3\nend 400\ntip 00\n", "whispercms-reuse 1\nobjects x\n"] {
            assert_eq!(Reuse::parse(bad), None, "{bad:?}");
        }
        let no_tips = "whispercms-reuse 1\nobjects 3\nend 400\n";
        assert_eq!(Reuse::parse(no_tips), None);
        let garbage_tip = format!("{}tip zz\n", r.to_text());
        assert_eq!(Reuse::parse(&garbage_tip), None);
    }
}

#[cfg(test)]
mod repack_tests {
    use super::*;
    use crate::test_git::git;

    fn all_objects(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = git(dir, &["cat-file", "--batch-all-objects", "--batch-check=%(objectname)"])
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    /// A repository lives for months and sees packs come and go thousands of times, while clones
    /// in progress keep gix's store from reusing the slots of removed packs. Here a store of 8
    /// slots sees 60 pushes, each consolidated by maintenance while a clone holds a handle.
    /// Without a fresh store after each consolidation, gix panics within these pushes, as it did
    /// in the soak ("if the generation changed, the slot index must have changed for sure").
    #[test]
    fn packs_come_and_go_more_often_than_the_store_has_slots() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("w");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        let repo = Repository::open_or_init_with_slots("w", work.join(".git"), 8).unwrap();
        let mut clone = None;
        for i in 0..60 {
            std::fs::write(work.join("f.txt"), format!("edit {i}\n").repeat(i + 1)).unwrap();
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", &format!("c{i}")]);
            git(&work, &["repack", "-q", "-d"]); // like a push: one more pack
            let head = ObjectId::from_hex(git(&work, &["rev-parse", "HEAD"]).trim().as_bytes()).unwrap();
            // Looking up a new pack's object makes the store read the disk again.
            assert!(repo.local().find_object(head).is_ok(), "push {i}: the new commit is not found");
            // A clone, running while maintenance replaces packs, keeps its packs in place.
            let mut handle = repo.local().objects.clone().into_inner();
            handle.prevent_pack_unload();
            clone = Some(handle);
            run(&repo).unwrap();
            assert!(repo.local().find_object(head).is_ok(), "push {i}: lost after maintenance");
        }
        drop(clone);
    }

    /// Twelve packs of a repository made by git (one per commit, plus an unreachable blob) are
    /// consolidated: every object is kept, git finds the result sound, and the whole repack
    /// records a reusable region that holds exactly the reachable objects.
    #[test]
    fn consolidates_git_made_packs_without_losing_an_object() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("w");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for i in 0..12 {
            std::fs::write(work.join(format!("f{}.txt", i % 4)), format!("line {i}\n").repeat(50 + i)).unwrap();
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", &format!("c{i}")]);
            if i == 5 {
                // A branch of delta-compressed edits, then deleted: unreachable objects with
                // deltas between them, written after the reachable region.
                git(&work, &["checkout", "-q", "-b", "gone"]);
                for j in 0..4 {
                    let text: String =
                        (0..300).map(|l| format!("line {l} of the gone branch, edit {}\n", l * j % 7)).collect();
                    std::fs::write(work.join("gone.txt"), text).unwrap();
                    git(&work, &["add", "-A"]);
                    git(&work, &["commit", "-qm", &format!("gone {j}")]);
                }
                git(&work, &["repack", "-q"]);
                git(&work, &["checkout", "-q", "main"]);
                git(&work, &["branch", "-qD", "gone"]);
                git(&work, &["tag", "-a", "v1", "-m", "release"]);
                std::fs::write(work.join("dangling"), "never committed\n").unwrap();
                git(&work, &["hash-object", "-w", "dangling"]);
                std::fs::remove_file(work.join("dangling")).unwrap();
            }
            git(&work, &["repack", "-q"]);
        }
        let git_dir = work.join(".git");
        let before = all_objects(&work);
        assert!(packs(&git_dir.join("objects")).unwrap().len() >= 12);
        let deltas = git(
            &work,
            &["verify-pack", "-v", packs(&git_dir.join("objects")).unwrap()[0].path("idx").to_str().unwrap()],
        );
        assert!(deltas.contains("chain length"), "the test needs deltas in the packs");

        let repo = Repository::open_or_init("w", &git_dir).unwrap();
        run(&repo).unwrap();
        let after = packs(&git_dir.join("objects")).unwrap();
        assert_eq!(after.len(), 1, "{after:?}");
        let reuse = after[0].reuse.clone().expect("a whole repack records its region");
        assert_eq!(all_objects(&work), before, "no object lost or added");
        git(&work, &["fsck", "--strict", "--no-progress", "--no-dangling"]);
        git(&work, &["verify-pack", after[0].path("idx").to_str().unwrap()]);
        let reachable = git(&work, &["rev-list", "--objects", "--all"]).lines().count();
        assert_eq!(reuse.objects as usize, reachable, "the region is exactly the reachable objects");
        assert_eq!(reuse.tips.len(), 2, "main and the tag");
        // Nothing left to do, and no debris.
        assert!(run_once(&repo).unwrap().written.is_none());
        let names: Vec<String> = std::fs::read_dir(git_dir.join("objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(TMP_PREFIX)), "{names:?}");
    }
}
