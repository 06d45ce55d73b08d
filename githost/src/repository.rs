//! One hosted bare repository on disk: opening or creating it, handles to its object database,
//! and the lock that serializes ref transactions.
//!
//! A [`Repository`] is shared by all sessions; each request takes a thread-local
//! [`gix::Repository`] from it ([`Repository::local`]). The object store underneath is shared, so
//! packs are memory-mapped once and a pack moved in by a push is seen by the next lookup.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs2::FileExt;

use crate::error::{Error, Result};

/// The branch an empty repository's `HEAD` points at.
pub const DEFAULT_BRANCH: &str = "main";

/// The file whose lock serializes ref transactions (and moving a push's pack in).
pub(crate) const LOCK_FILE: &str = "whispercms.lock";

/// A bare repository served by this host.
pub struct Repository {
    name: String,
    git_dir: PathBuf,
    /// The object store every handle shares; replaced by [`Repository::reopen`].
    shared: std::sync::RwLock<gix::ThreadSafeRepository>,
    /// Index slots of the store ([`PACK_SLOTS`]; fewer in tests).
    slots: u16,
    /// Bumped after every ref transaction (see [`Repository::refs_changed`]).
    ref_generation: tokio::sync::watch::Sender<u64>,
    /// The current reader epoch: every reader holds a clone ([`Repository::reader`]); pack
    /// maintenance starts a new epoch when it installs a pack and removes the packs it replaced
    /// once the old epoch has no holder left.
    readers: std::sync::Mutex<Arc<()>>,
    /// Wakes the pack-maintenance thread, once started ([`Repository::start_maintenance`]).
    maintenance: std::sync::OnceLock<std::sync::mpsc::SyncSender<()>>,
}

/// Held by a request that reads the object store (a fetch, a push): packs in use when it began
/// stay on disk until it is dropped.
#[must_use]
pub struct ReaderGuard(#[allow(dead_code)] Arc<()>);

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository").field("name", &self.name).field("git_dir", &self.git_dir).finish()
    }
}

/// Index slots of the object store: how many pack indices a handle can hold at once. gix sizes
/// this at open from the packs on disk (minimum 32) and fails lookups once more packs arrive than
/// it has slots — and every push adds a pack to a repository that lives for months. A fixed,
/// generous number is what gix recommends for servers. Each slot costs a few dozen bytes.
pub const PACK_SLOTS: u16 = 4096;

/// How every handle on a served repository is opened: isolated from the user's and the system's
/// Git configuration, with [`PACK_SLOTS`] index slots.
pub fn open_options() -> gix::open::Options {
    options_with_slots(PACK_SLOTS)
}

fn options_with_slots(slots: u16) -> gix::open::Options {
    gix::open::Options::isolated().object_store_slots(gix::odb::store::init::Slots::Given(slots))
}

/// Bytes of delta bases each repository handle keeps decoded (git's default is 96 MiB a process).
const PACK_CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Repository {
    /// Open the bare repository at `git_dir`, creating it (with `HEAD` → `refs/heads/main`) if the
    /// directory does not exist yet. Leftover quarantine directories of interrupted pushes are
    /// removed on open.
    pub fn open_or_init(name: impl Into<String>, git_dir: impl Into<PathBuf>) -> Result<Self> {
        Self::open_or_init_with_slots(name, git_dir, PACK_SLOTS)
    }

    /// [`Repository::open_or_init`] with a store of `slots` index slots.
    pub(crate) fn open_or_init_with_slots(
        name: impl Into<String>,
        git_dir: impl Into<PathBuf>,
        slots: u16,
    ) -> Result<Self> {
        let git_dir = git_dir.into();
        if !git_dir.join("HEAD").is_file() {
            std::fs::create_dir_all(&git_dir).map_err(Error::fs(&git_dir))?;
            gix::init_bare(&git_dir).map_err(Error::odb)?;
            let head = git_dir.join("HEAD");
            std::fs::write(&head, format!("ref: refs/heads/{DEFAULT_BRANCH}\n")).map_err(Error::fs(head))?;
        }
        let shared = gix::open_opts(&git_dir, options_with_slots(slots)).map_err(Error::odb)?;
        let repo = Repository {
            name: name.into(),
            git_dir,
            shared: std::sync::RwLock::new(shared.into_sync()),
            slots,
            ref_generation: tokio::sync::watch::Sender::new(0),
            readers: std::sync::Mutex::new(Arc::new(())),
            maintenance: std::sync::OnceLock::new(),
        };
        crate::quarantine::remove_stale(&repo.objects_dir())?;
        crate::maintenance::remove_debris(&repo.objects_dir())?;
        Ok(repo)
    }

    /// Open the object store afresh; handles taken from now on see the disk as it is, handles
    /// taken before keep the old store until they are dropped. Maintenance does this after it
    /// removes packs (see there why), and the host after a panic inside gix, which may have left
    /// the store's slot map inconsistent.
    pub fn reopen(&self) -> Result<()> {
        let fresh = gix::open_opts(&self.git_dir, options_with_slots(self.slots)).map_err(Error::odb)?.into_sync();
        *self.shared.write().unwrap_or_else(|p| p.into_inner()) = fresh;
        tracing::debug!(repository = %self.name, "object store opened afresh");
        Ok(())
    }

    /// The name clients address the repository by (`site` for `site.git`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The repository's directory (a bare repository: `HEAD`, `objects/`, `refs/`).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// `objects/` inside the repository.
    pub fn objects_dir(&self) -> PathBuf {
        self.git_dir.join("objects")
    }

    /// A handle for use on the current thread.
    pub fn local(&self) -> gix::Repository {
        let mut repo = self.shared.read().unwrap_or_else(|p| p.into_inner()).to_thread_local();
        // Packs are large and reused across requests; an object cache helps tree walks.
        repo.object_cache_size_if_unset(4 * 1024 * 1024);
        // gix's default delta-base cache holds 64 entries searched one by one: 10% of the CPU
        // of a full push. A hash map capped by memory (what git's `core.deltaBaseCacheLimit`
        // selects) finds a base at once.
        repo.objects
            .set_pack_cache(|| Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(PACK_CACHE_BYTES)));
        repo
    }

    /// Tell watchers ([`Repository::subscribe`]) that refs moved, and wake maintenance. Called
    /// after every ref transaction of this process (a follower's fetch, a bundle); a push does
    /// the two apart ([`Repository::notify_watchers`], [`Repository::wake_maintenance`]).
    pub fn refs_changed(&self) {
        self.notify_watchers();
        self.wake_maintenance();
    }

    /// Tell watchers ([`Repository::subscribe`]) that refs moved.
    pub fn notify_watchers(&self) {
        self.ref_generation.send_modify(|g| *g += 1);
    }

    /// Wake the maintenance thread, if it runs. A push wakes it once its post-receive hook
    /// (the publish) is done: a whole repack after a large first push otherwise took a core from
    /// that push's publish (3 s of a 100,000-page site's 22 s).
    pub fn wake_maintenance(&self) {
        if let Some(wake) = self.maintenance.get() {
            let _ = wake.try_send(()); // a wake-up already pending covers this one
        }
    }

    /// Keep this repository's packs consolidated in the background from now on (see
    /// [`crate::maintenance`]): a first run now, then one after each ref transaction.
    pub fn start_maintenance(self: &Arc<Self>) -> Result<()> {
        let (wake, woken) = std::sync::mpsc::sync_channel(1);
        if self.maintenance.set(wake).is_err() {
            return Ok(()); // already running
        }
        crate::maintenance::spawn(Arc::downgrade(self), woken)?;
        if let Some(wake) = self.maintenance.get() {
            let _ = wake.try_send(());
        }
        Ok(())
    }

    /// Mark the caller as a reader of the object store until the guard is dropped.
    pub fn reader(&self) -> ReaderGuard {
        ReaderGuard(self.readers.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Start a new reader epoch; returns the previous one, whose strong count falls to one when
    /// its last reader is done.
    pub(crate) fn new_reader_epoch(&self) -> Arc<()> {
        std::mem::replace(&mut *self.readers.lock().unwrap_or_else(|e| e.into_inner()), Arc::new(()))
    }

    /// A receiver that wakes when refs move in this process.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.ref_generation.subscribe()
    }

    /// Take the repository's ref-transaction lock, waiting for other writers (also in other
    /// processes). Held for the short time in which objects are moved in and refs updated.
    pub fn lock(&self) -> Result<RepoLock> {
        let path = self.git_dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(Error::fs(&path))?;
        file.lock_exclusive().map_err(Error::fs(&path))?;
        Ok(RepoLock { file })
    }
}

/// An exclusive lock on a repository's refs; released on drop.
pub struct RepoLock {
    file: File,
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_bare_repository_with_head_on_main() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::open_or_init("site", dir.path().join("site.git")).unwrap();
        let head = std::fs::read_to_string(repo.git_dir().join("HEAD")).unwrap();
        assert_eq!(head, "ref: refs/heads/main\n");
        // Opening again keeps it.
        let again = Repository::open_or_init("site", dir.path().join("site.git")).unwrap();
        assert_eq!(again.git_dir(), repo.git_dir());
    }
}
