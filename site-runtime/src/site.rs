//! A served branch: its index, its current snapshot, and publishing a new commit.
//!
//! [`Site::publish`] compiles the extensions and the theme, brings the index to a commit
//! (incrementally), and swaps
//! the new snapshot in with one atomic pointer store; requests in flight finish on the snapshot
//! they started with. Publishing is serialized per site; readers never wait for it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use gix::ObjectId;

use crate::config::SiteConfig;
use crate::error::{Error, Result};
use crate::extensions::{self, Extensions};
use crate::index::{self, Index, Progress};
use crate::snapshot::{Pool, Snapshot};
use crate::theme::Theme;

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    pub commit: ObjectId,
    pub stats: index::UpdateStats,
    /// Total time: index, theme, swap.
    pub millis: u128,
    /// What extensions reported (failed `on_publish` handlers).
    pub notes: Vec<String>,
}

/// At most this many changed pages are rendered ahead after a publish.
const WARM_PAGES: usize = 200;

/// One branch of a site repository, served.
pub struct Site {
    branch: String,
    git_dir: PathBuf,
    /// Index slots of the object stores opened ([`crate::source::PACK_SLOTS`]; fewer in tests).
    slots: u16,
    /// The object store of the latest publish: each publish opens its own ([`Site::open_store`]).
    repo: ArcSwap<gix::ThreadSafeRepository>,
    index: Mutex<Index>,
    pool: Arc<Pool>,
    current: ArcSwapOption<Snapshot>,
    /// Limits and services of the extensions of every snapshot to come.
    extension_options: ArcSwap<extensions::Options>,
    /// The edge's base Content-Security-Policy, which a theme may extend.
    base_csp: ArcSwap<String>,
    /// Resized images (derived, beside the index).
    images: Arc<crate::images::ImageStore>,
    /// Held for a whole publish, so that publishes of one branch never interleave and the one
    /// that runs last serves the newest head (see [`Site::refresh`]).
    publishing: Mutex<()>,
    /// A line about where the served commits come from, shown by `/readyz` (a follower's state:
    /// its last fetch failed, a fetched commit was refused).
    status_note: ArcSwapOption<String>,
    /// Why the branch's head is not what is served: the last publish failed (a full disk, a
    /// read-only data directory, a damaged repository). `/readyz` answers 503 with it until a
    /// publish succeeds; [`Site::refresh_or_retry`] keeps trying meanwhile.
    publish_fault: ArcSwapOption<String>,
    /// What the server's checks from outside found wrong, by check ([`Site::set_fault`]).
    faults: Mutex<BTreeMap<&'static str, Arc<String>>>,
    /// Whether a retry thread runs ([`Site::refresh_or_retry`]).
    retrying: std::sync::atomic::AtomicBool,
}

/// The first and the longest wait between two tries of a failed publish.
const RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(500);
const RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl Site {
    /// Serve `branch` of the repository at `git_dir`, with its index at `index_path`.
    pub fn open(git_dir: &Path, branch: &str, index_path: PathBuf) -> Result<Self> {
        Self::open_with_slots(git_dir, branch, index_path, crate::source::PACK_SLOTS)
    }

    fn open_with_slots(git_dir: &Path, branch: &str, index_path: PathBuf, slots: u16) -> Result<Self> {
        let repo = Self::open_store(git_dir, slots)?;
        let index = Index::open(&index_path)?;
        let images_dir = index_path.parent().map_or_else(|| PathBuf::from("images"), |d| d.join("images"));
        Ok(Site {
            branch: branch.to_string(),
            git_dir: git_dir.to_path_buf(),
            slots,
            repo: ArcSwap::from_pointee(repo),
            index: Mutex::new(index),
            pool: Arc::new(Pool::new(index_path)),
            current: ArcSwapOption::empty(),
            publishing: Mutex::new(()),
            extension_options: ArcSwap::from_pointee(extensions::Options::default()),
            base_csp: ArcSwap::from_pointee(String::new()),
            images: Arc::new(crate::images::ImageStore::new(images_dir)),
            status_note: ArcSwapOption::empty(),
            publish_fault: ArcSwapOption::empty(),
            faults: Mutex::default(),
            retrying: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// What keeps this site from being ready, if anything: what the server's checks found (the
    /// data directory cannot be written, the repository is damaged), then a failed publish. The
    /// last good snapshot keeps serving meanwhile.
    pub fn faults(&self) -> Vec<Arc<String>> {
        let faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        faults.values().cloned().chain(self.publish_fault.load_full()).collect()
    }

    /// Record (or clear, with `None`) what the server's `check` found wrong. The caller logs it.
    pub fn set_fault(&self, check: &'static str, fault: Option<String>) {
        let mut faults = self.faults.lock().unwrap_or_else(|p| p.into_inner());
        match fault {
            Some(f) => faults.insert(check, Arc::new(f)),
            None => faults.remove(check),
        };
    }

    /// [`Site::refresh`], and when it fails, the failure recorded for `/readyz` and a thread
    /// that tries again (after 0.5 s, then twice as long each time, at most 30 s apart) until
    /// the head is served: a full disk or a read-only data directory heals by itself once the
    /// operator fixes it.
    pub fn refresh_or_retry(self: &Arc<Self>, progress: &mut dyn FnMut(Progress)) -> Result<Option<Published>> {
        let result = self.refresh(progress);
        if let Err(e) = &result {
            self.publish_failed(e);
            self.retry_in_background();
        }
        result
    }

    fn publish_failed(&self, e: &Error) {
        let head = self.branch_head().ok().flatten().map(|h| format!(" {h}")).unwrap_or_default();
        self.publish_fault.store(Some(Arc::new(format!("publishing {}{head} failed: {e}", self.branch))));
    }

    fn retry_in_background(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.retrying.swap(true, Ordering::SeqCst) {
            return;
        }
        let site = Arc::downgrade(self);
        let spawned = std::thread::Builder::new().name("publish-retry".into()).spawn(move || {
            let mut wait = RETRY_FIRST;
            loop {
                std::thread::sleep(wait);
                let Some(site) = site.upgrade() else { return };
                match site.refresh(&mut |_| {}) {
                    Ok(_) => {
                        tracing::info!(branch = %site.branch, "published after an earlier failure");
                        site.retrying.store(false, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(branch = %site.branch, error = %e, retry_in_s = wait.as_secs_f32(), "publish failed again");
                        site.publish_failed(&e);
                    }
                }
                wait = (wait * 2).min(RETRY_MAX);
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the publish retry");
            self.retrying.store(false, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Set (or clear) the line `/readyz` adds about this site's source.
    pub fn set_status_note(&self, note: Option<String>) {
        self.status_note.store(note.map(Arc::new));
    }

    /// The line `/readyz` adds, if any.
    pub fn status_note(&self) -> Option<Arc<String>> {
        self.status_note.load_full()
    }

    /// The branch served.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The snapshot serving now, if any commit was published.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.current.load_full()
    }

    /// The claims on `urls` recorded in the index, if the index reflects `commit` (the branch's
    /// value before a push); `None` when it does not, and the caller must look at the tree.
    pub fn claims_on(&self, commit: ObjectId, urls: &[&str]) -> Result<Option<Vec<crate::urls::Claim>>> {
        self.read_at(commit, |conn| {
            let mut out = Vec::new();
            for url in urls {
                out.extend(crate::index::read::claims(conn, url)?);
            }
            Ok(out)
        })
    }

    /// `f` over the index, if the index reflects `commit`; `None` when it does not (the caller
    /// then reads the tree).
    pub fn read_at<T>(
        &self,
        commit: ObjectId,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T>,
    ) -> Result<Option<T>> {
        let Some(snap) = self.snapshot().filter(|s| s.commit == commit) else { return Ok(None) };
        Ok(match snap.read(f)? {
            crate::snapshot::Read::Done(value) => Some(value),
            crate::snapshot::Read::Stale => None,
        })
    }

    /// Set the limits and services of extensions, from the next publish on.
    pub fn set_extension_options(&self, options: extensions::Options) {
        self.extension_options.store(Arc::new(options));
    }

    /// A fresh object store on the repository. Every publish takes one, so no store lives
    /// through more than one publish's worth of packs coming and going: a store that watches
    /// packs vanish keeps their index slots, and once it has gone round all of them gix-odb 0.87
    /// may panic ("if the generation changed, the slot index must have changed for sure") and
    /// never see a new pack again. Opening one costs well under a millisecond.
    fn open_store(git_dir: &Path, slots: u16) -> Result<gix::ThreadSafeRepository> {
        Ok(gix::open_opts(git_dir, crate::source::open_options_with_slots(slots)).map_err(Error::git)?.into_sync())
    }

    /// Set the Content-Security-Policy the edge sends, from the next publish on: a snapshot whose
    /// theme extends it sends the extended policy with its responses (the edge keeps a site's
    /// own policy).
    pub fn set_content_security_policy(&self, base: &str) {
        self.base_csp.store(Arc::new(base.to_string()));
    }

    /// The commit the branch points at in the repository now, if it exists.
    pub fn branch_head(&self) -> Result<Option<ObjectId>> {
        let repo = self.repo.load().to_thread_local();
        let name = format!("refs/heads/{}", self.branch);
        match repo.try_find_reference(name.as_str()).map_err(Error::git)? {
            Some(mut r) => Ok(Some(r.peel_to_id().map_err(Error::git)?.detach())),
            None => Ok(None),
        }
    }

    /// Publish the branch's current head if it differs from what is served (start-up, or after a
    /// push). Returns what was published, if anything.
    ///
    /// The head is read once no other publish of this branch runs. Two pushes whose
    /// post-receive hooks run in the other order therefore still end with the newer head served:
    /// the later publish reads the newer head, the earlier finds it already served.
    pub fn refresh(&self, progress: &mut dyn FnMut(Progress)) -> Result<Option<Published>> {
        let _publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(head) = self.branch_head()? else { return Ok(None) };
        if self.snapshot().is_some_and(|s| s.commit == head) {
            self.publish_fault.store(None);
            return Ok(None);
        }
        self.publish_locked(head, progress).map(Some)
    }

    /// Index `commit`, build its snapshot and make it the one served (whether or not it is the
    /// branch's head: [`Site::refresh`] is what follows the branch).
    pub fn publish(&self, commit: ObjectId, progress: &mut dyn FnMut(Progress)) -> Result<Published> {
        let _publishing = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        self.publish_locked(commit, progress)
    }

    fn publish_locked(&self, commit: ObjectId, progress: &mut dyn FnMut(Progress)) -> Result<Published> {
        let started = std::time::Instant::now();
        let shared = Self::open_store(&self.git_dir, self.slots)?;
        self.repo.store(Arc::new(shared.clone()));
        let repo = shared.to_thread_local();
        let config = SiteConfig::at(&repo, commit)?;
        // Extensions and theme first: either failing to compile refuses the publish before the
        // index moves, and the previous snapshot keeps serving.
        let content: Arc<dyn extensions::ContentHost> = Arc::new(extensions::host::IndexHost {
            pool: self.pool.clone(),
            commit,
            lang: config.default_language.clone(),
        });
        let options = self.extension_options.load_full();
        let ext = Arc::new(Extensions::load(&repo, commit, &config, &options, Some(content))?);
        let section_cell: crate::theme::Sections = Arc::default();
        let images = crate::theme::ImageFunction { store: self.images.clone(), repo: shared.clone(), commit };
        let theme = Theme::load(&repo, commit, &config, section_cell.clone(), &ext, Some(images))?;
        let csp = theme.content_security_policy(&self.base_csp.load());
        let csp = csp.and_then(|c| axum::http::HeaderValue::try_from(c).ok());
        let loaded = started.elapsed();
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        // What a push of a few pages leaves as it was, decided on the old index: the pages and
        // listings that do not show them (kept cached), the sections and the menus.
        let previous = self.snapshot().filter(|p| p.commit != commit);
        let plan = match &previous {
            Some(prev) if index.commit()? == Some(prev.commit) => {
                crate::carry::plan(&repo, index.connection(), prev.commit, commit, config.languages())?
            }
            _ => None,
        };
        let planned = started.elapsed();
        let stats = index.update(&repo, commit, progress)?;
        let indexed = started.elapsed();
        let now = jiff::Timestamp::now().as_second();
        let conn = index.connection();
        let plan = match plan {
            Some(plan) if !stats.full => plan.after(conn)?,
            _ => None,
        };
        // What to render ahead: the pages this publish changed or, after a full build (which
        // lists none), the pages with pictures for the built-in figure to resize.
        let warm: Vec<String> = if stats.full {
            index::read::referrer_urls(conn, index::read::RefKind::Shortcode, "figure", WARM_PAGES)?
        } else {
            stats.changed.iter().take(WARM_PAGES).cloned().collect()
        };
        let next = index::read::next_publication(conn, now)?;
        // Pages below the top level changed, and nothing scheduled has appeared or gone since the
        // last publish: the sections and the menus are the last snapshot's (reading them took
        // two thirds of a one-page publish at 100,000 pages, a thousand top-level sections).
        let unchanged = plan
            .as_ref()
            .and(previous.as_ref())
            .filter(|prev| prev.next_publication.is_none_or(|t| now < t))
            .map(|prev| (prev.sections.clone(), prev.menus.clone()));
        let (sections, menus) = match unchanged {
            Some(kept) => {
                debug_assert!(
                    listings_of(conn, &config, now).is_ok_and(|fresh| fresh == kept),
                    "sections and menus kept over a publish of pages below the top level differ from the index's"
                );
                kept
            }
            None => listings_of(conn, &config, now)?,
        };
        let _ = section_cell.set(sections.clone());
        let taxonomies = config.taxonomies.clone();
        let stand_alone = ext.is_empty() && theme.pages_stand_alone();
        let snapshot = Snapshot::new(
            commit,
            config,
            theme,
            sections,
            menus,
            ext.clone(),
            self.pool.clone(),
            shared,
            next,
            self.images.clone(),
        )
        .with_content_security_policy(csp);
        if let (Some(plan), Some(prev), true) = (plan, &previous, stand_alone) {
            let plan = plan.with_ancestors(|url| snapshot.sections.get(url).map(|s| s.section.clone()));
            let is_section = |url: &str| snapshot.sections.contains_key(url);
            let kept = snapshot.carry_from(prev, |key, rendered| plan.keeps(key, rendered, is_section, &taxonomies));
            tracing::debug!(kept, "cached pages carried over");
        }
        let snapshot = Arc::new(snapshot);
        self.current.store(Some(snapshot.clone()));
        drop(index);
        // Those pages are rendered now, off the request path: their resized images are made and
        // the first reader gets them from the cache. The first publish of the process also loads
        // the syntax definitions there.
        let prepare = crate::render::highlight::needs_preparing();
        if !warm.is_empty() || prepare {
            let spawned = std::thread::Builder::new().name("warm-pages".into()).spawn(move || {
                if prepare {
                    crate::render::highlight::prepare();
                }
                crate::http::warm(&snapshot, &warm)
            });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "could not start rendering the changed pages ahead");
            }
        }
        let mut notes = Vec::new();
        if !ext.is_empty() {
            let change = serde_json::json!({
                "branch": self.branch, "commit": commit.to_string(), "full": stats.full,
                "pages": stats.changed, "removed": stats.removed,
            });
            notes = ext.on_publish(&change);
        }
        self.publish_fault.store(None);
        let millis = started.elapsed().as_millis();
        // Where the time went: the theme, templates and extensions loaded; what may stay cached
        // decided; the index updated; the rest (listings of sections and menus, the swap).
        let us = |d: std::time::Duration| d.as_micros() as u64;
        tracing::info!(
            branch = %self.branch, %commit, ms = millis as u64, load_us = us(loaded),
            plan_us = us(planned - loaded), index_us = us(indexed - planned),
            rest_us = us(started.elapsed() - indexed), "published"
        );
        Ok(Published { commit, stats, millis, notes })
    }

    /// Files that could not be indexed at the served commit.
    pub fn problems(&self) -> Result<Vec<(String, String)>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).problems()
    }
}

type Listings = (Arc<BTreeMap<String, index::read::DocRow>>, crate::snapshot::Menus);

/// The sections by URL and each language's main menu, read from the index at `conn`.
fn listings_of(conn: &rusqlite::Connection, config: &SiteConfig, now: i64) -> Result<Listings> {
    let sections: BTreeMap<String, index::read::DocRow> =
        index::read::sections(conn)?.into_iter().map(|s| (s.url.clone(), s)).collect();
    let mut menus = std::collections::HashMap::new();
    let languages = config.languages();
    for lang in languages.all() {
        let home = format!("{}/", languages.prefix(&lang));
        let menu = minijinja::Value::from(minijinja::value::Serde(index::read::menu(conn, &home, now)?));
        menus.insert(lang, menu);
    }
    Ok((Arc::new(sections), Arc::new(menus)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .args(["-c", "user.name=T", "-c", "user.email=t@e", "-c", "init.defaultBranch=main"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A work tree at `dir/site` holding the starter site, in a repository without commits.
    fn starter_repository(dir: &Path) -> std::path::PathBuf {
        let work = dir.join("site");
        for (path, text) in crate::starter::FILES {
            let p = work.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(&work, &["init", "-q"]);
        work
    }

    /// A publish counts as removed the pages that are gone, not the pages it changed (every
    /// edit was reported to the pusher as "1 removed").
    #[test]
    fn an_edit_is_not_counted_as_a_removal() {
        let tmp = tempfile::tempdir().unwrap();
        let work = starter_repository(tmp.path());
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-qm", "start"]);
        let site = Site::open(&work.join(".git"), "main", tmp.path().join("index.sqlite")).unwrap();
        site.refresh(&mut |_| {}).unwrap();
        let publish = |message: &str| {
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", message]);
            site.refresh(&mut |_| {}).unwrap().unwrap().stats
        };
        std::fs::write(work.join("content/about.md"), "+++\ntitle = \"About, edited\"\n+++\nNew.\n").unwrap();
        let edited = publish("edit");
        assert_eq!((edited.documents, edited.removed), (1, 0));
        std::fs::write(work.join("content/about.md"), "+++\ntitle = \n+++\nbroken\n").unwrap();
        let broken = publish("break");
        assert_eq!((broken.documents, broken.removed, broken.problems), (0, 1, 1));
        std::fs::remove_file(work.join("content/blog/writing-offline.md")).unwrap();
        let removed = publish("remove");
        assert_eq!((removed.documents, removed.removed), (0, 1));
    }

    /// A site lives through thousands of pushes, each adding a pack, and pack maintenance
    /// replacing them. Here stores of 8 slots see 60 pushes, a geometric repack after every
    /// third, and every push is served. With one store for the site's whole life, publish 10
    /// failed: the store did not find the new head ("object could not be found"), with two packs
    /// on disk.
    #[test]
    fn serves_every_push_while_packs_come_and_go_more_often_than_a_store_has_slots() {
        let tmp = tempfile::tempdir().unwrap();
        let work = starter_repository(tmp.path());
        let site = Site::open_with_slots(&work.join(".git"), "main", tmp.path().join("index.sqlite"), 8).unwrap();
        for i in 0..60 {
            std::fs::write(work.join("content/about.md"), format!("+++\ntitle = \"About {i}\"\n+++\nEdit {i}.\n"))
                .unwrap();
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", &format!("edit {i}")]);
            git(&work, &["repack", "-q", "-d"]);
            if i % 3 == 1 {
                git(&work, &["repack", "-q", "-d", "--geometric=2"]);
            }
            let head = ObjectId::from_hex(git(&work, &["rev-parse", "HEAD"]).as_bytes()).unwrap();
            if let Err(e) = site.refresh(&mut |_| {}) {
                panic!("publish {i}: {e}");
            }
            assert_eq!(site.snapshot().map(|s| s.commit), Some(head), "publish {i}");
        }
    }
}
