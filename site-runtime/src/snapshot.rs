//! A snapshot: what one request is served from — a commit, its configuration, its compiled
//! theme, and the index connections — plus the cache of pages rendered from it.
//!
//! Snapshots are immutable and shared (`Arc`); publishing builds a new one and swaps it in
//! atomically (see [`crate::site`]). The index file is shared by successive snapshots of a
//! branch, so each request checks, inside its read transaction, that the index reflects the
//! snapshot's commit ([`Snapshot::read`]); during the instant between an index commit and the
//! swap, the request simply retries on the new snapshot. No request ever mixes two commits.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use rusqlite::{Connection, OpenFlags};

use crate::config::SiteConfig;
use crate::error::Result;
use crate::index::read::DocRow;
use crate::theme::Theme;

/// A rendered response body, cached per snapshot.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Arc<Vec<u8>>,
    /// Strong validator: a hash of the body.
    pub etag: String,
    /// A permanent redirect target instead of a body.
    pub location: Option<String>,
}

/// Read-only connections to a branch's index file.
pub struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

/// How much of the index file a reading connection maps (SQLite's `mmap_size`).
const MMAP_BYTES: i64 = 1 << 30;

impl Pool {
    /// Connections to the index at `path`.
    pub fn new(path: PathBuf) -> Self {
        Pool { path, idle: Mutex::new(Vec::new()) }
    }

    fn take(&self) -> Result<Connection> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Pages read through a shared memory map rather than a read() copy into each
        // connection's own cache: on a 100,000-page site a third of a section's first request
        // was the kernel copying index pages (address space only; the pages are the page cache's).
        conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
        Ok(conn)
    }

    /// Run `f` in a read transaction, if the index reflects `commit`.
    pub fn read_at<T>(&self, commit: ObjectId, f: impl FnOnce(&Connection) -> Result<T>) -> Result<Read<T>> {
        let mut conn = self.take()?;
        let result = (|| {
            let tx = conn.transaction()?;
            let indexed: String = tx.query_row("SELECT value FROM meta WHERE key = 'commit'", [], |r| r.get(0))?;
            if ObjectId::from_hex(indexed.as_bytes()).ok() != Some(commit) {
                return Ok(Read::Stale);
            }
            let value = f(&tx)?;
            tx.finish()?;
            Ok(Read::Done(value))
        })();
        self.give_back(conn);
        result
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 16 {
            idle.push(conn);
        }
    }
}

/// Everything a request is served from.
pub struct Snapshot {
    pub commit: ObjectId,
    /// When it was published (seconds since the epoch).
    pub published_at: i64,
    pub config: SiteConfig,
    pub theme: Theme,
    /// Sections by URL (for `get_section`).
    pub sections: Arc<BTreeMap<String, DocRow>>,
    /// The main menu of each language, by code, as templates see it (`site.menu`).
    pub menus: Menus,
    /// Resized images (`/processed_images/…`).
    pub images: Arc<crate::images::ImageStore>,
    /// The site's languages (from `config`).
    pub languages: crate::content::language::Languages,
    /// Plugins and theme scripts, compiled for this commit.
    pub extensions: Arc<crate::extensions::Extensions>,
    /// The edge's policy as the theme extends it, sent with every response of this snapshot;
    /// `None` when the theme extends nothing.
    pub content_security_policy: Option<axum::http::HeaderValue>,
    pub(crate) pool: Arc<Pool>,
    pub(crate) repo: gix::ThreadSafeRepository,
    /// When the next scheduled page appears or an expiring one goes, as of the publish.
    pub(crate) next_publication: Option<i64>,
    cache: Mutex<Cache>,
}

/// The main menus of a snapshot: each language's, by code, made once per publish (a site of a
/// thousand top-level sections has a thousand entries in every page it renders).
pub type Menus = Arc<HashMap<String, minijinja::Value>>;

struct Cache {
    entries: HashMap<String, Rendered>,
    /// When the next scheduled page appears: the cache is dropped then.
    valid_until: Option<i64>,
}

/// The outcome of [`Snapshot::read`].
pub enum Read<T> {
    Done(T),
    /// The index already reflects a newer commit: use the newer snapshot.
    Stale,
}

impl Snapshot {
    #[allow(clippy::too_many_arguments)] // one call site, every part named
    pub(crate) fn new(
        commit: ObjectId,
        config: SiteConfig,
        theme: Theme,
        sections: Arc<BTreeMap<String, DocRow>>,
        menus: Menus,
        extensions: Arc<crate::extensions::Extensions>,
        pool: Arc<Pool>,
        repo: gix::ThreadSafeRepository,
        next_publication: Option<i64>,
        images: Arc<crate::images::ImageStore>,
    ) -> Self {
        let languages = config.languages();
        Snapshot {
            commit,
            published_at: jiff::Timestamp::now().as_second(),
            config,
            theme,
            sections,
            languages,
            images,
            menus,
            extensions,
            content_security_policy: None,
            pool,
            repo,
            next_publication,
            cache: Mutex::new(Cache { entries: HashMap::new(), valid_until: next_publication }),
        }
    }

    /// This snapshot, sending `policy` as its Content-Security-Policy.
    pub(crate) fn with_content_security_policy(mut self, policy: Option<axum::http::HeaderValue>) -> Self {
        self.content_security_policy = policy;
        self
    }

    /// Run `f` in a read transaction on the index, if the index reflects this snapshot.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<Read<T>> {
        self.pool.read_at(self.commit, f)
    }

    /// A cached response for `key`, if still valid at `now`.
    pub fn cached(&self, key: &str, now: i64) -> Option<Rendered> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.valid_until.is_some_and(|t| now >= t) {
            cache.entries.clear();
            cache.valid_until = None;
            return None;
        }
        cache.entries.get(key).cloned()
    }

    /// Take over the cached responses of `previous` that `keep` accepts (a publish that left
    /// them as they were); the number taken.
    pub(crate) fn carry_from(&self, previous: &Snapshot, keep: impl Fn(&str, &Rendered) -> bool) -> usize {
        let now = jiff::Timestamp::now().as_second();
        let old = previous.cache.lock().unwrap_or_else(|p| p.into_inner());
        if old.valid_until.is_some_and(|t| now >= t) {
            return 0;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept = 0;
        for (key, rendered) in old.entries.iter() {
            if keep(key, rendered) {
                cache.entries.insert(key.clone(), rendered.clone());
                kept += 1;
            }
        }
        kept
    }

    /// Remember a response for `key`; `next_publication` (from the same read) bounds its life.
    pub fn remember(&self, key: String, rendered: Rendered, next_publication: Option<i64>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.entries.len() >= 50_000 {
            cache.entries.clear(); // crude bound on memory; a hot site refills quickly
        }
        if let Some(t) = next_publication {
            cache.valid_until = Some(cache.valid_until.map_or(t, |v| v.min(t)));
        }
        cache.entries.insert(key, rendered);
    }

    /// The bytes of blob `id` (assets).
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        let repo = self.repo.to_thread_local();
        crate::source::read_blob(&repo, id)
    }

    /// Pages cached so far (for tests and metrics).
    pub fn cache_len(&self) -> usize {
        self.cache.lock().map(|c| c.entries.len()).unwrap_or(0)
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot").field("commit", &self.commit).field("theme", &self.theme).finish()
    }
}
