//! The site folder as Git sees it, and back.
//!
//! [`scan`] hashes the folder into [`Files`] (path → blob), writing the blobs Git lacks; a stat
//! cache in `.git/whispercms/stat-cache` (size, modification time, id) lets it skip files that
//! did not change, so scanning a 10,000-page site after one edit reads one file. [`write_tree`]
//! turns [`Files`] into tree objects, [`files_of`] a tree back into [`Files`], [`diff`] says what
//! differs, and [`checkout`] makes the folder hold a tree's files (after a clone, or when
//! someone else's published change arrives), then resets Git's index to it so that `git status`
//! in the folder agrees with the app.
//!
//! Why not git's index for the stat cache: gix reads it, but keeping its stat data true after
//! our own writes is the index's whole complexity; this cache is ours alone, and the index is
//! rewritten from the tree after each save (its stat data left empty, which git refreshes).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bstr::ByteSlice;
use gix::objs::tree::{Entry, EntryKind, EntryMode};
use gix::ObjectId;

use crate::{Error, Result};

/// A file as Git stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct File {
    /// Blob, executable blob or symbolic link.
    pub kind: EntryKind,
    /// The blob.
    pub id: ObjectId,
}

/// Every file of a tree or of the folder, by path (`/`-separated, relative to the site).
pub type Files = BTreeMap<String, File>;

/// One difference between two [`Files`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new file.
    Added(String),
    /// A file whose content (or kind) changed.
    Modified(String),
    /// A file no longer there.
    Deleted(String),
}

impl Change {
    /// The file's path.
    pub fn path(&self) -> &str {
        match self {
            Change::Added(p) | Change::Modified(p) | Change::Deleted(p) => p,
        }
    }
}

/// Files a cached hash is trusted for: same size and modification time, and that time at least
/// this long before the cache was written (an edit within the same clock tick is not missed).
pub(crate) const RACY_NANOS: i128 = 2_000_000_000;

/// What the stat cache remembers of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime: i128,
    kind: EntryKind,
    id: ObjectId,
}

fn cache_path(git_dir: &Path) -> PathBuf {
    git_dir.join("whispercms/stat-cache")
}

/// Read the stat cache; a missing or damaged one is empty (it is only a cache).
fn load_cache(git_dir: &Path) -> HashMap<String, Stat> {
    let Ok(text) = std::fs::read_to_string(cache_path(git_dir)) else { return HashMap::new() };
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(5, ' ');
        let (Some(size), Some(mtime), Some(mode), Some(id), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let kind = match mode {
            "100644" => EntryKind::Blob,
            "100755" => EntryKind::BlobExecutable,
            "120000" => EntryKind::Link,
            _ => continue,
        };
        if let (Ok(size), Ok(mtime), Ok(id)) = (size.parse(), mtime.parse(), ObjectId::from_hex(id.as_bytes())) {
            out.insert(path.to_string(), Stat { size, mtime, kind, id });
        }
    }
    out
}

/// Write the stat cache (through a temporary file of its own: two screens scan at once, e.g.
/// a screen and its status line, and a shared temporary name made one of them fail with the
/// other's rename).
fn save_cache(git_dir: &Path, cache: &BTreeMap<String, Stat>) -> Result<()> {
    let path = cache_path(git_dir);
    let dir = path.parent().unwrap_or(git_dir);
    std::fs::create_dir_all(dir).map_err(Error::fs(dir))?;
    let now = now_nanos();
    let mut text = String::new();
    for (p, s) in cache {
        if now - s.mtime < RACY_NANOS {
            continue; // could still change within the same tick: hash it again next time
        }
        let mode = match s.kind {
            EntryKind::BlobExecutable => "100755",
            EntryKind::Link => "120000",
            _ => "100644",
        };
        text.push_str(&format!("{} {} {mode} {} {p}\n", s.size, s.mtime, s.id));
    }
    let tmp = temporary_beside(&path);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(Error::fs(&path))
}

/// A name for a temporary file beside `path`, unique to this write (process and count), ending
/// in `.whispercms-tmp` so a scan never takes it for a file of the site. (Not `tempfile`: its
/// files are made `0600`, and a page written through one would keep that mode.)
pub(crate) fn temporary_beside(path: &Path) -> PathBuf {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.whispercms-tmp", std::process::id()))
}

pub(crate) fn now_nanos() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

pub(crate) fn mtime_nanos(meta: &std::fs::Metadata) -> i128 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos() as i128).unwrap_or(0)
}

/// Whether a name in the folder is left out of the site: Git's own directory, and the app's
/// temporary files (an interrupted atomic write).
fn skipped(name: &str) -> bool {
    name == ".git" || name.ends_with(".whispercms-tmp")
}

/// Hash the folder `dir` into [`Files`], writing the blobs Git does not have yet.
pub fn scan(repo: &gix::Repository, dir: &Path) -> Result<Files> {
    let git_dir = repo.git_dir().to_path_buf();
    let cache = load_cache(&git_dir);
    let mut fresh = BTreeMap::new();
    let mut files = Files::new();
    let mut stack = vec![(dir.to_path_buf(), String::new())];
    while let Some((folder, prefix)) = stack.pop() {
        for entry in std::fs::read_dir(&folder).map_err(Error::fs(&folder))? {
            let entry = entry.map_err(Error::fs(&folder))?;
            let Ok(name) = entry.file_name().into_string() else {
                tracing::warn!(folder = %folder.display(), "a file name that is not UTF-8 is left out of the site");
                continue;
            };
            if skipped(&name) || name.contains('\n') {
                continue;
            }
            let path = entry.path();
            let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let meta = std::fs::symlink_metadata(&path).map_err(Error::fs(&path))?;
            let kind = if meta.file_type().is_symlink() {
                EntryKind::Link
            } else if meta.is_dir() {
                stack.push((path, rel));
                continue;
            } else if is_executable(&meta) {
                EntryKind::BlobExecutable
            } else {
                EntryKind::Blob
            };
            let (size, mtime) = (meta.len(), mtime_nanos(&meta));
            let id = match cache.get(&rel) {
                Some(s) if s.size == size && s.mtime == mtime && s.kind == kind => s.id,
                _ => {
                    let bytes = if kind == EntryKind::Link {
                        let target = std::fs::read_link(&path).map_err(Error::fs(&path))?;
                        target.to_string_lossy().into_owned().into_bytes()
                    } else {
                        std::fs::read(&path).map_err(Error::fs(&path))?
                    };
                    repo.write_blob(&bytes).map_err(Error::git)?.detach()
                }
            };
            fresh.insert(rel.clone(), Stat { size, mtime, kind, id });
            files.insert(rel, File { kind, id });
        }
    }
    // Only a cache: a scan that could not keep it is still right, and the next one hashes again.
    if let Err(e) = save_cache(&git_dir, &fresh) {
        tracing::warn!(error = %e, "the folder's stat cache was not written");
    }
    Ok(files)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Write the trees of `files`; the root tree's id.
pub fn write_tree(repo: &gix::Repository, files: &Files) -> Result<ObjectId> {
    // Group by directory: each directory's entries, deepest directories written first.
    let mut dirs: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    for (path, file) in files {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        dirs.entry(dir.to_string()).or_default().push(Entry {
            mode: EntryMode::from(file.kind),
            filename: name.into(),
            oid: file.id,
        });
        // Make sure every ancestor directory exists, so it is written and linked.
        let mut d = dir;
        while let Some((parent, _)) = d.rsplit_once('/') {
            dirs.entry(parent.to_string()).or_default();
            d = parent;
        }
        if !dir.is_empty() {
            dirs.entry(dir.to_string()).or_default();
        }
    }
    let mut names: Vec<String> = dirs.keys().cloned().collect();
    names.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count() + usize::from(!d.is_empty())));
    for dir in names {
        let mut entries = dirs.remove(&dir).unwrap_or_default();
        entries.sort();
        let id = repo.write_object(gix::objs::Tree { entries }).map_err(Error::git)?.detach();
        if dir.is_empty() {
            return Ok(id);
        }
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir.as_str()));
        dirs.entry(parent.to_string()).or_default().push(Entry {
            mode: EntryMode::from(EntryKind::Tree),
            filename: name.into(),
            oid: id,
        });
    }
    Err(Error::Git("no root tree was written".into()))
}

/// Every file of the tree `id`.
pub fn files_of(repo: &gix::Repository, id: ObjectId) -> Result<Files> {
    let mut files = Files::new();
    let mut stack = vec![(id, String::new())];
    while let Some((tree, prefix)) = stack.pop() {
        let tree = repo.find_tree(tree).map_err(Error::git)?;
        let decoded = tree.decode().map_err(Error::git)?;
        for e in &decoded.entries {
            let name = e.filename.to_str().map_err(|_| Error::Git(format!("a file name in {prefix}/ is not UTF-8")))?;
            let path = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            match e.mode.kind() {
                EntryKind::Tree => stack.push((e.oid.to_owned(), path)),
                EntryKind::Commit => {} // a submodule: not part of the site
                kind => {
                    files.insert(path, File { kind, id: e.oid.to_owned() });
                }
            }
        }
    }
    Ok(files)
}

/// The text of `path` in `files` (`None`: not there, or not UTF-8 text).
pub fn text_at(repo: &gix::Repository, files: &Files, path: &str) -> Result<Option<String>> {
    let Some(f) = files.get(path) else { return Ok(None) };
    let blob = repo.find_blob(f.id).map_err(Error::git)?;
    Ok(String::from_utf8(blob.data.clone()).ok())
}

/// What changed from `old` to `new`, in path order.
pub fn diff(old: &Files, new: &Files) -> Vec<Change> {
    let mut out = Vec::new();
    for (path, file) in new {
        match old.get(path) {
            None => out.push(Change::Added(path.clone())),
            Some(o) if o != file => out.push(Change::Modified(path.clone())),
            Some(_) => {}
        }
    }
    out.extend(old.keys().filter(|p| !new.contains_key(*p)).map(|p| Change::Deleted(p.clone())));
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

/// What changed from the tree `old` to the tree `new` (either may be none: empty), in path
/// order. Subtrees with the same id are skipped unread, so the cost follows the change, not the
/// site's size.
pub fn diff_trees(repo: &gix::Repository, old: Option<ObjectId>, new: Option<ObjectId>) -> Result<Vec<Change>> {
    fn entries(repo: &gix::Repository, tree: Option<ObjectId>) -> Result<BTreeMap<String, (EntryKind, ObjectId)>> {
        let mut out = BTreeMap::new();
        if let Some(id) = tree {
            let tree = repo.find_tree(id).map_err(Error::git)?;
            for e in &tree.decode().map_err(Error::git)?.entries {
                let name = e.filename.to_str().map_err(|_| Error::Git("a file name is not UTF-8".into()))?;
                out.insert(name.to_string(), (e.mode.kind(), e.oid.to_owned()));
            }
        }
        Ok(out)
    }
    fn walk(
        repo: &gix::Repository,
        prefix: &str,
        old: Option<ObjectId>,
        new: Option<ObjectId>,
        out: &mut Vec<Change>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let (a, b) = (entries(repo, old)?, entries(repo, new)?);
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for name in names {
            let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            let tree = |e: Option<&(EntryKind, ObjectId)>| e.filter(|(k, _)| *k == EntryKind::Tree).map(|(_, id)| *id);
            let file = |e: Option<&(EntryKind, ObjectId)>| {
                e.filter(|(k, _)| !matches!(k, EntryKind::Tree | EntryKind::Commit)).copied()
            };
            let (ea, eb) = (a.get(name), b.get(name));
            walk(repo, &path, tree(ea), tree(eb), out)?;
            match (file(ea), file(eb)) {
                (None, Some(_)) => out.push(Change::Added(path)),
                (Some(_), None) => out.push(Change::Deleted(path)),
                (Some(x), Some(y)) if x != y => out.push(Change::Modified(path)),
                _ => {}
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(repo, "", old, new, &mut out)?;
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

/// Make the folder `dir`, which holds `from`, hold `to` instead: changed files rewritten (each
/// atomically), removed ones deleted with the folders they leave empty.
pub fn checkout(repo: &gix::Repository, dir: &Path, from: &Files, to: &Files) -> Result<()> {
    for change in diff(from, to) {
        let path = change.path();
        if path.split('/').any(|c| c.is_empty() || c == "." || c == ".." || c == ".git") {
            return Err(Error::Git(format!("refusing to write the unsafe path {path:?}")));
        }
        let target = dir.join(path);
        match change {
            Change::Deleted(_) => {
                match std::fs::remove_file(&target) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::fs(&target)(e)),
                    _ => {}
                }
                let mut parent = target.parent();
                while let Some(p) = parent.filter(|p| *p != dir) {
                    if std::fs::remove_dir(p).is_err() {
                        break; // not empty
                    }
                    parent = p.parent();
                }
            }
            Change::Added(_) | Change::Modified(_) => {
                let file = to[path];
                let blob = repo.find_blob(file.id).map_err(Error::git)?;
                write_file(&target, &blob.data, file.kind)?;
            }
        }
    }
    Ok(())
}

/// Write `bytes` to `path` atomically (a temporary beside it, then a rename).
pub fn write_file(path: &Path, bytes: &[u8], kind: EntryKind) -> Result<()> {
    let parent = path.parent().ok_or_else(|| Error::NotASite(format!("{} has no folder", path.display())))?;
    std::fs::create_dir_all(parent).map_err(Error::fs(parent))?;
    if kind == EntryKind::Link {
        #[cfg(unix)]
        {
            let _ = std::fs::remove_file(path);
            let target = String::from_utf8_lossy(bytes).into_owned();
            return std::os::unix::fs::symlink(target, path).map_err(Error::fs(path));
        }
    }
    // The rename replaces a file or a link there; the old one is never removed first, so a
    // scan running meanwhile sees the old content or the new, never no file.
    let tmp = temporary_beside(path);
    let mut f = std::fs::File::create(&tmp).map_err(Error::fs(&tmp))?;
    f.write_all(bytes).and_then(|()| f.sync_data()).map_err(Error::fs(&tmp))?;
    #[cfg(unix)]
    if kind == EntryKind::BlobExecutable {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::fs(path)(e)
    })
}

/// Reset Git's index to `tree`, so that `git status` in the folder agrees with the last save.
pub fn reset_index(repo: &gix::Repository, tree: ObjectId) -> Result<()> {
    let mut index = repo.index_from_tree(&tree).map_err(Error::git)?;
    index.write(Default::default()).map_err(Error::git)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, gix::Repository) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = gix::init(tmp.path()).unwrap();
        (tmp, repo)
    }

    /// Two screens of the app scan the folder at once (a screen and its status line) while an
    /// autosave rewrites a page: every scan succeeds and sees the page. (The stat cache's shared
    /// temporary name failed one scan with the other's rename, seen in the window test; a page
    /// was removed before its new content was renamed into place.)
    #[test]
    fn scans_and_writes_at_once_never_fail_or_miss_a_file() {
        let (tmp, repo) = repo();
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("content")).unwrap();
        std::fs::write(dir.join("site.toml"), "title = \"x\"\n").unwrap();
        write_file(&dir.join("content/a.md"), b"0", EntryKind::Blob).unwrap();
        std::thread::scope(|s| {
            let writer = s.spawn(|| {
                for i in 0..300 {
                    write_file(&dir.join("content/a.md"), format!("{i}").as_bytes(), EntryKind::Blob).unwrap();
                }
            });
            for _ in 0..2 {
                let repo = gix::open(repo.git_dir()).unwrap();
                let dir = &dir;
                s.spawn(move || {
                    for _ in 0..150 {
                        let files = scan(&repo, dir).unwrap();
                        assert!(files.contains_key("content/a.md"), "{:?}", files.keys());
                    }
                });
            }
            writer.join().unwrap();
        });
        let left: Vec<_> = std::fs::read_dir(dir.join("content")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["a.md"], "no temporary file is left behind");
    }

    #[test]
    fn scan_write_and_read_back() {
        let (tmp, repo) = repo();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("content/blog/2024")).unwrap();
        std::fs::write(dir.join("site.toml"), "title = \"x\"\n").unwrap();
        std::fs::write(dir.join("content/blog/2024/a.md"), "a").unwrap();
        std::fs::write(dir.join("content/blog.md"), "b").unwrap(); // sorts beside the folder `blog`
        std::fs::write(dir.join("content/.x.md.whispercms-tmp"), "half").unwrap();
        let files = scan(&repo, dir).unwrap();
        assert_eq!(files.keys().collect::<Vec<_>>(), ["content/blog.md", "content/blog/2024/a.md", "site.toml"]);
        let tree = write_tree(&repo, &files).unwrap();
        assert_eq!(files_of(&repo, tree).unwrap(), files);
        // git agrees on the tree (its own order and hashing).
        let out = std::process::Command::new("git")
            .args(["ls-tree", "-r", "--name-only", &tree.to_string()])
            .current_dir(dir)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "content/blog.md\ncontent/blog/2024/a.md\nsite.toml\n");
        let fsck = std::process::Command::new("git").args(["fsck", "--strict"]).current_dir(dir).output().unwrap();
        assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stderr));
    }

    #[test]
    fn a_change_is_seen_even_within_the_same_second() {
        let (tmp, repo) = repo();
        let page = tmp.path().join("page.md");
        std::fs::write(&page, "one").unwrap();
        let first = scan(&repo, tmp.path()).unwrap();
        std::fs::write(&page, "two").unwrap(); // same size, likely the same mtime tick
        let second = scan(&repo, tmp.path()).unwrap();
        assert_eq!(diff(&first, &second), vec![Change::Modified("page.md".into())]);
    }

    #[test]
    fn checkout_moves_the_folder_between_trees() {
        let (tmp, repo) = repo();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("content/old")).unwrap();
        std::fs::write(dir.join("content/old/gone.md"), "gone").unwrap();
        std::fs::write(dir.join("keep.md"), "keep").unwrap();
        let from = scan(&repo, dir).unwrap();
        let mut to = from.clone();
        to.remove("content/old/gone.md");
        let id = repo.write_blob(b"new").unwrap().detach();
        to.insert("content/new/page.md".into(), File { kind: EntryKind::Blob, id });
        let (a, b) = (write_tree(&repo, &from).unwrap(), write_tree(&repo, &to).unwrap());
        assert_eq!(diff_trees(&repo, Some(a), Some(b)).unwrap(), diff(&from, &to), "trees agree with files");
        assert_eq!(diff_trees(&repo, None, Some(a)).unwrap().len(), from.len());
        assert!(diff_trees(&repo, Some(a), Some(a)).unwrap().is_empty());
        checkout(&repo, dir, &from, &to).unwrap();
        assert!(!dir.join("content/old").exists(), "an emptied folder goes too");
        assert_eq!(std::fs::read_to_string(dir.join("content/new/page.md")).unwrap(), "new");
        assert_eq!(scan(&repo, dir).unwrap(), to);
        // A hostile path in a tree is never written.
        let mut evil = to.clone();
        evil.insert("../escape.md".into(), File { kind: EntryKind::Blob, id });
        assert!(checkout(&repo, dir, &to, &evil).is_err());
        assert!(!tmp.path().parent().unwrap().join("escape.md").exists());
    }
}
