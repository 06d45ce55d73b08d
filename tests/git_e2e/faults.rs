//! Faults a real server meets, end to end: a disk that fills up under a push and a publish, and
//! a repository damaged from outside. What is promised: the push is refused with a clear
//! message or the publish fails and says so (on the push and on `/readyz`), refs and the served
//! snapshot stay consistent, nothing half-written is left, and the server heals by itself once
//! the fault is gone.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// A small tmpfs mounted for one test (unmounted when dropped). The tests run as root, as the
/// suite does on its machine.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    fn mount(path: &Path, megabytes: u32) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(path)
            .output()
            .unwrap();
        assert_success(&out, &["mount (the fault tests need root)"]);
        SmallDisk { path: path.to_path_buf() }
    }

    /// Fill it up but for `spare` bytes: a file written until the disk refuses, then shortened.
    fn fill(&self, spare: u64) -> PathBuf {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5au8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n as u64,
            }
        }
        let _ = f.flush();
        f.set_len(written.saturating_sub(spare)).unwrap();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Wait (at most a minute) until `/readyz` answers as `done` wants; its last answer.
fn readyz_until(http: u16, done: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let started = Instant::now();
    loop {
        let (status, _, body) = http_get(http, "/readyz");
        if done(status, &body) || started.elapsed() > Duration::from_secs(60) {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Words that do not compress away: a page's text for a pack that stays about its size.
fn prose(seed: u64, words: usize) -> String {
    let mut x = seed | 1;
    (0..words)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (0..3 + x % 7).map(|i| (b'a' + ((x >> (i * 5)) % 26) as u8) as char).collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_full_disk_refuses_the_push_or_defers_the_publish_and_the_server_heals() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&tmp.path().join("disk"), 48);
    let data = disk.path.join("data");
    let server = Server::binary_at(&data, &["--empty"]);
    let http = server.http_port.unwrap();
    let site = local_repo(&server, tmp.path(), "site", 0);
    std::fs::write(site.join("site.toml"), "title = \"Full disk\"\nbase_url = \"http://127.0.0.1\"\n").unwrap();
    commit_file(&server, &site, "content/_index.md", "+++\ntitle = \"Home\"\n+++\nFirst.\n");
    server.git_ok(&site, &["push", "-q", "origin", "main"]);
    readyz_until(http, |s, _| s == 200);
    let served = rev(&server, &site, "HEAD");

    // A push whose pack does not fit: refused, nothing moved, nothing left.
    let filler = disk.fill(256 * 1024);
    let big: Vec<u8> = prose(7, 400_000).into_bytes();
    std::fs::create_dir_all(site.join("static")).unwrap();
    std::fs::write(site.join("static/big.txt"), &big).unwrap();
    server.git_ok(&site, &["add", "-A"]);
    server.git_ok(&site, &["commit", "-qm", "a big file"]);
    let refs = server.server_refs();
    let out = server.git_out(&site, &["push", "origin", "main"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "a push larger than the disk went in: {err}");
    assert!(err.contains("No space left on device") || err.contains("disk is full"), "{err}");
    assert_eq!(server.server_refs(), refs, "refs moved by a refused push");
    server.assert_repository_sound();
    let (status, _, body) = http_get(http, "/readyz");
    assert_eq!((status, body), (200, format!("ready {served}\n")), "a refused push is no fault");
    server.git_ok(&site, &["reset", "-q", "--hard", "HEAD~1"]);

    // A push that fits, but whose publish (every page indexed: site.toml changed) does not: the
    // push says so, `/readyz` too, and the site keeps serving the last commit it published.
    std::fs::write(site.join("site.toml"), "title = \"Full disk, again\"\nbase_url = \"http://127.0.0.1\"\n").unwrap();
    for i in 0..40 {
        let text = prose(i, 600);
        let page = format!("+++\ntitle = \"Page {i}\"\ndate = 2026-01-01\n+++\n{text}\n");
        std::fs::create_dir_all(site.join("content/notes")).unwrap();
        std::fs::write(site.join(format!("content/notes/page-{i}.md")), page).unwrap();
    }
    server.git_ok(&site, &["add", "-A"]);
    server.git_ok(&site, &["commit", "-qm", "forty pages"]);
    let head = rev(&server, &site, "HEAD");
    let out = server.git_out(&site, &["push", "origin", "main"]);
    let err = stderr(&out);
    assert!(out.status.success(), "the pack fits: {err}");
    assert!(err.contains("error: main not published") && err.contains("tries again"), "{err}");
    assert_eq!(server.server_refs().split(' ').next(), Some(head.as_str()));
    let (status, body) = readyz_until(http, |_, b| b.contains("failed"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("not ready: publishing main {head} failed")), "{body}");
    assert!(body.contains(&format!("serving {served}")), "{body}");
    let (status, _, home) = http_get(http, "/");
    assert_eq!(status, 200);
    assert!(home.contains("Full disk") && !home.contains("Full disk, again"), "{home}");
    let leftovers: Vec<_> = std::fs::read_dir(data.join("index")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(
        leftovers.iter().all(|n| n.to_string_lossy().ends_with(".sqlite")
            || n.to_string_lossy().ends_with("-wal")
            || n.to_string_lossy().ends_with("-shm")
            || n == "images"),
        "{leftovers:?}"
    );

    // Space returns: the server publishes the head by itself.
    std::fs::remove_file(&filler).unwrap();
    let (status, body) = readyz_until(http, |s, _| s == 200);
    assert_eq!((status, body), (200, format!("ready {head}\n")));
    let (status, _, page) = http_get(http, "/notes/page-3/");
    assert_eq!(status, 200, "{page}");
    assert!(http_get(http, "/").2.contains("Full disk, again"));
    server.assert_repository_sound();
    // And pushes work again.
    commit_file(&server, &site, "content/after.md", "+++\ntitle = \"After\"\n+++\nBack.\n");
    let out = server.git_out(&site, &["push", "origin", "main"]);
    assert_success(&out, &["push"]);
    assert!(stderr(&out).contains("remote: published main"), "{}", stderr(&out));
    drop(server);
}

#[test]
fn a_damaged_repository_is_reported_on_readyz() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = Server::binary_at(&data, &[]);
    let http = server.http_port.unwrap();
    assert_eq!(http_get(http, "/readyz").0, 200);
    let clone = server.clone(tmp.path(), "site", &[]);
    commit_file(
        &server,
        &clone,
        "content/blog/kept.md",
        "+++\ntitle = \"Kept\"\ndate = 2026-01-02\n+++\nStill here.\n",
    );
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let head = rev(&server, &clone, "HEAD");
    server.kill9();

    // A flipped byte in a pack's index, found when the server starts: in the entry of the
    // pushed page's blob, which serving from the index does not need. (The first entry of the
    // largest index, as before, was now and then the head commit, whose ids vary with the
    // clock: the server could then build no snapshot at all, seen once in a loaded run.)
    let blob = rev(&server, &clone, "HEAD:content/blog/kept.md");
    let pack_dir = server.repo_dir.join("objects/pack");
    let (idx, mut bytes, at) = std::fs::read_dir(&pack_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .find_map(|idx| {
            let bytes = std::fs::read(&idx).unwrap();
            // Version 2: an 8-byte header, the fan-out table (its last entry the count), then
            // the sorted ids.
            let count = u32::from_be_bytes(bytes[1028..1032].try_into().unwrap()) as usize;
            let at = (0..count).map(|i| 1032 + 20 * i).find(|&at| hex(&bytes[at..at + 20]) == blob)?;
            Some((idx, bytes, at + 5))
        })
        .expect("the pushed blob in one of the packs");
    bytes[at] ^= 0x01;
    std::fs::write(&idx, &bytes).unwrap();
    let server = Server::binary_at(&data, &[]);
    let http = server.http_port.unwrap();
    // (Until it serves: the damage can be reported before the start has loaded the snapshot.)
    let (status, body) = readyz_until(http, |s, b| s == 503 && b.contains("serving "));
    assert_eq!(status, 503, "{body}");
    let name = idx.file_name().unwrap().to_string_lossy().into_owned();
    assert!(body.contains("not ready: repository damaged") && body.contains(&format!("{name}: damaged")), "{body}");
    assert!(body.contains(&format!("serving {head}")), "{body}");
    // The last good snapshot serves: the index was built before the damage.
    let (status, _, page) = http_get(http, "/blog/kept/");
    assert_eq!(status, 200);
    assert!(page.contains("Still here."), "{page}");
    // Repaired (the byte put back), the next start is ready again.
    bytes[at] ^= 0x01;
    std::fs::write(&idx, &bytes).unwrap();
    drop(server);
    let mut server = Server::binary_at(&data, &[]);
    let (status, body) = readyz_until(server.http_port.unwrap(), |s, _| s == 200);
    assert_eq!((status, body), (200, format!("ready {head}\n")));
    server.assert_repository_sound();

    // Objects gone: every pack moved away (a restore that missed them), so main names a commit
    // that is not there. Found at start and named; with no commit to read the theme and the
    // configuration from, there is no snapshot to serve until they are back (no panic: the
    // server answers).
    server.kill9();
    let aside = tmp.path().join("aside");
    std::fs::rename(&pack_dir, &aside).unwrap();
    std::fs::create_dir_all(&pack_dir).unwrap();
    let server = Server::binary_at(&data, &[]);
    let http = server.http_port.unwrap();
    let (status, body) = readyz_until(http, |s, b| s == 503 && b.contains("publishing main failed"));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("refs/heads/main names {head}")) && body.contains("missing"), "{body}");
    assert!(body.contains("publishing main failed"), "{body}");
    assert_eq!(http_get(http, "/healthz").0, 200);
    drop(server);
    std::fs::remove_dir(&pack_dir).unwrap();
    std::fs::rename(&aside, &pack_dir).unwrap();
    let server = Server::binary_at(&data, &[]);
    let (status, body) = readyz_until(server.http_port.unwrap(), |s, _| s == 200);
    assert_eq!((status, body), (200, format!("ready {head}\n")));
}

/// Mount directory `from` at `to` (a bind mount), read-only or writable, in place of what was
/// mounted there. A mount cannot be made read-only while files on it are open for writing (the
/// server's index is), so the test swaps mounts: from then on every file opened there is on a
/// read-only mount, as after the kernel remounts a failing disk read-only.
fn bind(from: &Path, to: &Path, read_only: bool) {
    let _ = Command::new("umount").arg("-l").arg(to).stderr(std::process::Stdio::null()).status();
    let out = Command::new("mount").arg("--bind").arg(from).arg(to).output().unwrap();
    assert_success(&out, &["mount --bind"]);
    if read_only {
        let out = Command::new("mount").args(["-o", "remount,bind,ro"]).arg(to).output().unwrap();
        assert_success(&out, &["mount -o remount,bind,ro"]);
    }
}

#[test]
fn a_read_only_or_vanished_data_dir_is_reported_while_the_site_keeps_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&tmp.path().join("disk"), 64);
    let stored = disk.path.join("stored");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&stored).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    bind(&stored, &data, false);
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0).stderr(std::process::Stdio::null()).status();
        }
    }
    let _unmount = Unmount(&data);
    let server = Server::binary_at(&data, &[]);
    let http = server.http_port.unwrap();
    assert_eq!(readyz_until(http, |s, _| s == 200).0, 200);
    let clone = server.clone(tmp.path(), "site", &[]);
    for i in 0..7 {
        let page = format!("+++\ntitle = \"Note {i}\"\ndate = 2026-01-0{}\n+++\nNote number {i}.\n", i + 1);
        commit_file(&server, &clone, &format!("content/blog/note-{i}.md"), &page);
    }
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let served = rev(&server, &clone, "HEAD");
    assert_eq!(readyz_until(http, |s, b| s == 200 && b.contains(&served)).0, 200);
    // Pages served from here on were never requested before: nothing of them is cached.
    let pages = |from: usize| {
        for i in from..from + 2 {
            let (status, _, page) = http_get(http, &format!("/blog/note-{i}/"));
            assert_eq!(status, 200, "note {i}: {page}");
            assert!(page.contains(&format!("Note number {i}.")), "{page}");
        }
    };
    commit_file(&server, &clone, "content/blog/later.md", "+++\ntitle = \"Later\"\n+++\nLater.\n");

    // Read-only: said on `/readyz`, pages keep serving, a push is refused and says why.
    bind(&stored, &data, true);
    let (status, body) = readyz_until(http, |s, _| s == 503);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("not ready: data directory {} cannot be written", data.display())), "{body}");
    assert!(body.contains(&format!("serving {served}")), "{body}");
    pages(0);
    let refs = server.server_refs();
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "a push went into a read-only data directory: {err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert_eq!(server.server_refs(), refs);
    // Writable again: ready, and the push goes in.
    bind(&stored, &data, false);
    let (status, body) = readyz_until(http, |s, _| s == 200);
    assert_eq!((status, body), (200, format!("ready {served}\n")));
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push once writable"]);
    let served = rev(&server, &clone, "HEAD");
    assert!(stderr(&out).contains("remote: published main"), "{}", stderr(&out));

    // Vanished (the volume unmounted: an empty directory where it was): the same.
    let _ = Command::new("umount").arg("-l").arg(&data).status();
    let (status, body) = readyz_until(http, |s, _| s == 503);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(&format!("not ready: repository {} is gone", server.repo_dir.display())), "{body}");
    assert!(body.contains(&format!("serving {served}")), "{body}");
    pages(2);
    commit_file(&server, &clone, "content/blog/lost.md", "+++\ntitle = \"Lost\"\n+++\nLost.\n");
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success(), "a push went into a vanished data directory: {}", stderr(&out));
    // Back: ready again, and pushes work.
    bind(&stored, &data, false);
    let (status, body) = readyz_until(http, |s, _| s == 200);
    assert_eq!((status, body), (200, format!("ready {served}\n")));
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push once back"]);
    pages(4);
    server.assert_repository_sound();
}
