//! Reading a site straight from Git objects: what changed between two commits (a tree diff with
//! `gix-diff`), and blob contents, one at a time or many over all cores ([`map_parallel`], and
//! [`stream_parallel`] for a consumer that works while they are read). No checkout on disk is
//! ever made.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use gix::diff::tree::recorder::Change as Recorded;
use gix::objs::FindExt;
use gix::ObjectId;

use crate::error::{Error, Result};

/// How the site runtime opens the repository: isolated from the user's and the system's Git
/// configuration, with a fixed number of pack index slots, because every push adds a pack and
/// gix otherwise sizes the slots from the packs present at open. The Git host opens its handle
/// the same way (`githost::repository::open_options`; this crate does not depend on the host).
pub fn open_options() -> gix::open::Options {
    open_options_with_slots(PACK_SLOTS)
}

/// Index slots of a store opened by [`open_options`].
pub const PACK_SLOTS: u16 = 4096;

/// [`open_options`] with `slots` index slots (fewer in tests).
pub(crate) fn open_options_with_slots(slots: u16) -> gix::open::Options {
    gix::open::Options::isolated().object_store_slots(gix::odb::store::init::Slots::Given(slots))
}

/// A file that changed between two commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Added or modified: the file now has blob `blob`.
    Upsert {
        /// Repository path.
        path: String,
        /// The new content.
        blob: ObjectId,
    },
    /// Removed.
    Delete {
        /// Repository path.
        path: String,
    },
}

impl Change {
    /// The path the change is about.
    pub fn path(&self) -> &str {
        match self {
            Change::Upsert { path, .. } | Change::Delete { path } => path,
        }
    }
}

/// The root tree of `commit`.
pub fn tree_of(repo: &gix::Repository, commit: ObjectId) -> Result<ObjectId> {
    let mut buf = Vec::new();
    let mut iter = repo.objects.find_commit_iter(&commit, &mut buf).map_err(Error::git)?;
    iter.tree_id().map_err(Error::git)
}

/// Files (blobs and symlinks; not submodules) that differ between the trees of two commits;
/// `old = None` lists every file of `new` as added (a full build).
pub fn changes(repo: &gix::Repository, old: Option<ObjectId>, new: ObjectId) -> Result<Vec<Change>> {
    let new_tree = tree_of(repo, new)?;
    let old_tree = old.map(|c| tree_of(repo, c)).transpose()?;
    let (mut lhs_buf, mut rhs_buf) = (Vec::new(), Vec::new());
    let lhs = match old_tree {
        Some(t) => repo.objects.find_tree_iter(&t, &mut lhs_buf).map_err(Error::git)?,
        None => gix::objs::TreeRefIter::from_bytes(&[], gix::hash::Kind::Sha1),
    };
    let rhs = repo.objects.find_tree_iter(&new_tree, &mut rhs_buf).map_err(Error::git)?;
    let mut recorder = gix::diff::tree::Recorder::default();
    gix::diff::tree(lhs, rhs, gix::diff::tree::State::default(), &repo.objects, &mut recorder).map_err(Error::git)?;
    let mut out = Vec::with_capacity(recorder.records.len());
    for change in recorder.records {
        match change {
            Recorded::Addition { entry_mode, oid, path, .. } if is_file(entry_mode) => {
                out.push(Change::Upsert { path: path_string(&path)?, blob: oid });
            }
            Recorded::Deletion { entry_mode, path, .. } if is_file(entry_mode) => {
                out.push(Change::Delete { path: path_string(&path)? });
            }
            Recorded::Modification { previous_entry_mode, entry_mode, oid, path, .. } => {
                match (is_file(previous_entry_mode), is_file(entry_mode)) {
                    (_, true) => out.push(Change::Upsert { path: path_string(&path)?, blob: oid }),
                    (true, false) => out.push(Change::Delete { path: path_string(&path)? }),
                    (false, false) => {}
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn is_file(mode: gix::objs::tree::EntryMode) -> bool {
    mode.is_blob_or_symlink()
}

fn path_string(path: &[u8]) -> Result<String> {
    std::str::from_utf8(path)
        .map(str::to_owned)
        .map_err(|_| Error::content(String::from_utf8_lossy(path), "path is not UTF-8"))
}

/// The content of blob `id`.
pub fn read_blob(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    repo.objects.find_blob(&id, &mut buf).map_err(Error::git)?;
    Ok(buf)
}

/// The blob at `path` in `commit`, if there is one.
pub fn blob_at(repo: &gix::Repository, commit: ObjectId, path: &str) -> Result<Option<ObjectId>> {
    let mut tree = tree_of(repo, commit)?;
    let mut buf = Vec::new();
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        let t = repo.objects.find_tree(&tree, &mut buf).map_err(Error::git)?;
        let Some(entry) = t.entries.iter().find(|e| e.filename == part) else { return Ok(None) };
        let id = entry.oid.to_owned();
        let is_tree = entry.mode.is_tree();
        if parts.peek().is_none() {
            return Ok((!is_tree).then_some(id));
        }
        if !is_tree {
            return Ok(None);
        }
        tree = id;
    }
    Ok(None)
}

/// Every file under directory `dir` (no trailing slash) of `commit`, as (path relative to `dir`,
/// blob id). Empty if the directory does not exist.
pub fn files_under(repo: &gix::Repository, commit: ObjectId, dir: &str) -> Result<Vec<(String, ObjectId)>> {
    let mut tree = tree_of(repo, commit)?;
    let mut buf = Vec::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        let t = repo.objects.find_tree(&tree, &mut buf).map_err(Error::git)?;
        match t.entries.iter().find(|e| e.filename == part && e.mode.is_tree()) {
            Some(e) => tree = e.oid.to_owned(),
            None => return Ok(Vec::new()),
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), tree)];
    while let Some((prefix, id)) = stack.pop() {
        let t = repo.objects.find_tree(&id, &mut buf).map_err(Error::git)?;
        for e in &t.entries {
            let name = std::str::from_utf8(e.filename).map_err(|_| Error::content(dir, "file name is not UTF-8"))?;
            let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            if e.mode.is_tree() {
                stack.push((path, e.oid.to_owned()));
            } else if e.mode.is_blob_or_symlink() {
                out.push((path, e.oid.to_owned()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Below this many items, [`map_parallel`] stays on the calling thread (threads cost more than
/// they save on a small push).
pub const PARALLEL_THRESHOLD: usize = 64;

/// Delta bases kept per thread of [`map_parallel`]: a site's documents are stored as deltas of
/// each other, and gix's default 64-entry cache re-inflated the same bases over and over (half
/// the time of a full index build went to zlib; with this cache, 2.4× less wall time on the
/// 10,000-page benchmark site under load). Freed when the work ends.
const BASE_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// `repo` with a delta-base cache for reading many blobs.
pub fn with_base_cache(repo: &gix::Repository) -> gix::Repository {
    let mut repo = repo.clone();
    repo.objects.set_pack_cache(|| Box::new(gix::odb::pack::cache::lru::MemoryCappedHashmap::new(BASE_CACHE_BYTES)));
    repo
}

/// `f` over `items`, in their order, on up to all cores (at most 8), each thread with its own
/// handle on `repo` and a delta-base cache ([`with_base_cache`]); on this thread below
/// [`PARALLEL_THRESHOLD`] items. `doing` names the work for the error if a thread panics.
pub fn map_parallel<I: Sync, T: Send>(
    repo: &gix::Repository,
    items: &[I],
    doing: &'static str,
    f: impl Fn(&gix::Repository, &I) -> T + Sync,
) -> Result<Vec<T>> {
    // This thread only gathers: every core computes.
    stream(repo, items, doing, f, false, |results| results.collect())
}

/// Items a thread of [`stream_parallel`] takes at a time: consecutive ones, so that documents
/// stored as deltas of each other find their bases in that thread's cache.
const STREAM_BATCH: usize = 32;

/// [`map_parallel`] as a stream: `consume` pulls `f`'s results in the order of `items` while
/// the other threads compute the next ones. A consumer slower than them (the index's writer)
/// then overlaps with them instead of waiting for all, and only a few batches are held at once
/// (a full build of 100,000 pages held every parsed page, HTML and all, before writing the
/// first). A thread that panics ends the stream with [`Error::Panicked`]; when `consume` returns
/// early, the threads stop after their current batch.
pub fn stream_parallel<I: Sync, T: Send, R>(
    repo: &gix::Repository,
    items: &[I],
    doing: &'static str,
    f: impl Fn(&gix::Repository, &I) -> T + Sync,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<T>>) -> R,
) -> R {
    // The consumer keeps a core busy too (a thread per core starved the index's writer: a full
    // build of 100,000 pages took 14.4 s that way, 12 s with one core left to it).
    stream(repo, items, doing, f, true, consume)
}

/// [`stream_on`] with a thread per core (one fewer when `consumer_busy`), or on this thread
/// for few items or one core.
fn stream<I: Sync, T: Send, R>(
    repo: &gix::Repository,
    items: &[I],
    doing: &'static str,
    f: impl Fn(&gix::Repository, &I) -> T + Sync,
    consumer_busy: bool,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<T>>) -> R,
) -> R {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if items.len() < PARALLEL_THRESHOLD || cores == 1 {
        let repo = with_base_cache(repo);
        return consume(&mut items.iter().map(|item| Ok(f(&repo, item))));
    }
    stream_on(if consumer_busy { cores - 1 } else { cores }, repo, items, doing, f, consume)
}

/// [`stream_parallel`] on `threads` threads besides the consumer's.
fn stream_on<I: Sync, T: Send, R>(
    threads: usize,
    repo: &gix::Repository,
    items: &[I],
    doing: &'static str,
    f: impl Fn(&gix::Repository, &I) -> T + Sync,
    consume: impl FnOnce(&mut dyn Iterator<Item = Result<T>>) -> R,
) -> R {
    let (next, due, stop, f) = (AtomicUsize::new(0), AtomicUsize::new(0), AtomicBool::new(false), &f);
    // Bounded twice: a thread ahead of the consumer waits to send, and one whose batch is far
    // ahead of the batch due (held up by a slow one) waits before making it.
    let (tx, rx) = mpsc::sync_channel::<(usize, Vec<T>)>(threads * 2);
    let window = threads * 4;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (tx, repo, next, due, stop) = (tx.clone(), with_base_cache(repo), &next, &due, &stop);
                s.spawn(move || {
                    // A panic here stops the others: the stream ends at the missing batch anyway.
                    let _stop_on_panic = StopOnPanic(stop);
                    while !stop.load(Ordering::Relaxed) {
                        let start = next.fetch_add(STREAM_BATCH, Ordering::Relaxed);
                        if start >= items.len() {
                            break;
                        }
                        let batch = &items[start..items.len().min(start + STREAM_BATCH)];
                        while start / STREAM_BATCH >= due.load(Ordering::Relaxed) + window {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            std::thread::sleep(std::time::Duration::from_micros(200));
                        }
                        let results = batch.iter().map(|item| f(&repo, item)).collect();
                        if tx.send((start / STREAM_BATCH, results)).is_err() {
                            break; // the consumer is gone
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let batches = items.len().div_ceil(STREAM_BATCH);
        let mut in_order = InOrder {
            rx,
            early: BTreeMap::new(),
            next: 0,
            due: &due,
            batches,
            current: Vec::new().into_iter(),
            doing,
            ended: false,
        };
        let out = consume(&mut in_order);
        stop.store(true, Ordering::Relaxed);
        drop(in_order); // a thread waiting to send gets an error and ends
        for w in workers {
            // A panic was reported to `consume` as a missing batch (or did not matter to it).
            let _ = w.join();
        }
        out
    })
}

/// The batches of [`stream_parallel`]'s threads, which arrive in any order, as one sequence in
/// the items' order.
struct InOrder<'a, T> {
    rx: mpsc::Receiver<(usize, Vec<T>)>,
    /// Batches that came before the one due.
    early: BTreeMap<usize, Vec<T>>,
    /// The batch due next, and where the threads see it.
    next: usize,
    due: &'a AtomicUsize,
    batches: usize,
    current: std::vec::IntoIter<T>,
    doing: &'static str,
    ended: bool,
}

/// Sets the flag when the thread it lives on unwinds.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

impl<T> Iterator for InOrder<'_, T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(Ok(item));
            }
            if self.ended || self.next == self.batches {
                return None;
            }
            if let Some(batch) = self.early.remove(&self.next) {
                self.next += 1;
                self.due.store(self.next, Ordering::Relaxed);
                self.current = batch.into_iter();
                continue;
            }
            match self.rx.recv() {
                Ok((i, batch)) => {
                    self.early.insert(i, batch);
                }
                // Every thread has ended and the batch due never came: one panicked.
                Err(mpsc::RecvError) => {
                    self.ended = true;
                    return Some(Err(Error::Panicked(self.doing)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, gix::Repository) {
        let dir = tempfile::tempdir().unwrap();
        let repo = gix::init_bare(dir.path()).unwrap();
        (dir, repo)
    }

    #[test]
    fn a_stream_gives_every_result_in_the_items_order() {
        let (_dir, repo) = repo();
        for n in [0, 1, PARALLEL_THRESHOLD - 1, PARALLEL_THRESHOLD, 10_007] {
            let items: Vec<usize> = (0..n).collect();
            // Uneven work, so that the threads' batches arrive out of order.
            let f = |_: &gix::Repository, &i: &usize| {
                if i % 97 == 0 {
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
                i * 2
            };
            let want: Vec<usize> = items.iter().map(|i| i * 2).collect();
            let got: Vec<usize> =
                stream_parallel(&repo, &items, "testing", f, |results| results.collect::<Result<_>>()).unwrap();
            assert_eq!(got, want, "{n} items");
            for threads in [1, 3] {
                let got: Vec<usize> =
                    stream_on(threads, &repo, &items, "testing", f, |results| results.collect::<Result<_>>()).unwrap();
                assert_eq!(got, want, "{n} items on {threads} threads");
            }
        }
    }

    #[test]
    fn a_consumer_that_stops_early_stops_the_threads() {
        let (_dir, repo) = repo();
        let items: Vec<usize> = (0..100_000).collect();
        let calls = AtomicUsize::new(0);
        let f = |_: &gix::Repository, &i: &usize| {
            calls.fetch_add(1, Ordering::Relaxed);
            i
        };
        let first: Vec<usize> =
            stream_on(3, &repo, &items, "testing", f, |results| results.take(5).collect::<Result<_>>().unwrap());
        assert_eq!(first, vec![0, 1, 2, 3, 4]);
        // At most the batches in the channel and those in hand when it stopped.
        assert!(calls.load(Ordering::Relaxed) < 2_000, "{} items computed", calls.load(Ordering::Relaxed));
    }

    #[test]
    fn threads_wait_for_a_slow_batch_instead_of_running_ahead() {
        let (_dir, repo) = repo();
        let items: Vec<usize> = (0..100_000).collect();
        let calls = AtomicUsize::new(0);
        let f = |_: &gix::Repository, &i: &usize| {
            if i == 0 {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            calls.fetch_add(1, Ordering::Relaxed)
        };
        let computed = stream_on(3, &repo, &items, "testing", f, |results| {
            results.next().unwrap().unwrap();
            calls.load(Ordering::Relaxed)
        });
        // The window (4 batches a thread) and what is in hand, not the 100,000 items.
        assert!(computed < 1_000, "{computed} items computed while the first was slow");
    }

    #[test]
    fn a_thread_that_panics_ends_the_stream_with_an_error() {
        let (_dir, repo) = repo();
        let items: Vec<usize> = (0..5_000).collect();
        let calls = AtomicUsize::new(0);
        let f = |_: &gix::Repository, &i: &usize| {
            calls.fetch_add(1, Ordering::Relaxed);
            assert!(i != 3_000, "a bug in f");
            i
        };
        let results: Vec<Result<usize>> = stream_on(3, &repo, &items, "testing", f, |results| results.collect());
        let (last, before) = results.split_last().unwrap();
        assert!(matches!(last, Err(Error::Panicked("testing"))), "{last:?}");
        let before: Vec<usize> = before.iter().map(|r| *r.as_ref().unwrap()).collect();
        assert_eq!(before, (0..before.len()).collect::<Vec<_>>());
        assert!(before.len() <= 3_000);
        assert!(calls.load(Ordering::Relaxed) < 4_000, "the other threads went on: {}", calls.load(Ordering::Relaxed));
    }
}
