//! Pack maintenance end to end: many pushes leave a bounded number of packs, clones copy the
//! stored pack and still pass `git fsck --strict`, and `kill -9` at any moment of a repack loses
//! nothing and leaves no debris.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Wait until the server's repository has at most `max` packs (maintenance runs in the
/// background after each push); returns the count seen last.
fn settle(server: &Server, max: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (packs, names) = server.pack_files();
        let busy = names.iter().any(|n| n.starts_with(".tmp-repack-"));
        if (packs <= max && !busy) || Instant::now() > deadline {
            return packs;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until maintenance is quiet: no repack temporary, and the pack directory unchanged for
/// half a second (at most 60 s).
fn quiet(server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = server.pack_files().1;
    let mut since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let names = server.pack_files().1;
        if names != last || names.iter().any(|n| n.starts_with(".tmp-repack-")) {
            last = names;
            since = Instant::now();
        } else if since.elapsed() >= Duration::from_millis(500) {
            return;
        }
    }
}

fn clone_mirror(server: &Server, dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let out = server.git_out(dir, &["clone", "--progress", "--mirror", &server.url(), name]);
    assert_success(&out, &["clone --mirror"]);
    let path = dir.join(name);
    server.git_ok(&path, &["fsck", "--strict", "--no-progress", "--no-dangling"]);
    (path, stderr(&out))
}

fn refs_of(server: &Server, repo: &Path) -> String {
    server.git_ok(repo, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

#[test]
fn many_pushes_leave_few_packs_and_clones_reuse_the_stored_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::binary();
    let work = local_repo(&server, tmp.path(), "work", 1);
    server.git_ok(&work, &["push", "-q", "origin", "HEAD:main"]);
    for i in 0..40 {
        commit_file(&server, &work, &format!("pages/p{}.md", i % 7), &format!("version {i}\n"));
        if i % 10 == 9 {
            server.git_ok(&work, &["tag", "-a", &format!("v{i}"), "-m", "release"]);
        }
        server.git_ok(&work, &["push", "-q", "--follow-tags", "origin", "HEAD:main"]);
    }
    let packs = settle(&server, githost::maintenance::MAX_PACKS);
    assert!(packs <= githost::maintenance::MAX_PACKS, "41 pushes left {packs} packs");

    // A whole repack is forced by removing its record (as after an upgrade).
    whole_repack_after_push(&server, &work, "pages/last.md");
    let (clone, progress) = clone_mirror(&server, tmp.path(), "m1.git");
    assert!(progress.contains("from a stored pack"), "the clone did not reuse the stored pack: {progress}");
    assert_eq!(refs_of(&server, &clone), server.server_refs());

    // Pushed after the repack: reused region plus what is new, still one sound pack.
    commit_file(&server, &work, "pages/newer.md", "newer\n");
    server.git_ok(&work, &["push", "-q", "origin", "HEAD:main", "HEAD~3:refs/heads/side"]);
    let (clone, progress) = clone_mirror(&server, tmp.path(), "m2.git");
    assert_eq!(refs_of(&server, &clone), server.server_refs());
    assert!(progress.contains("remote:"), "{progress}");
    // A fetch into an older clone (not a fresh clone: no reuse) brings it level.
    server.git_ok(&tmp.path().join("m1.git"), &["fetch", "-q", "origin", "+refs/*:refs/*"]);
    assert_eq!(refs_of(&server, &tmp.path().join("m1.git")), server.server_refs());
    // A single-branch clone does not want every stored tip: planned as usual.
    let out =
        server.git_out(tmp.path(), &["clone", "--progress", "--single-branch", "--no-tags", &server.url(), "one"]);
    assert_success(&out, &["single-branch clone"]);
    assert!(!stderr(&out).contains("from a stored pack"), "{}", stderr(&out));
    server.git_ok(&tmp.path().join("one"), &["fsck", "--strict", "--no-progress"]);
    quiet(&server);
    server.assert_repository_sound();
}

/// Force a whole repack (as after an upgrade: the reuse record removed, then a push wakes
/// maintenance) and wait until its pack with a reusable region is in place.
fn whole_repack_after_push(server: &Server, work: &Path, file: &str) {
    quiet(server);
    for n in server.pack_files().1.iter().filter(|n| n.ends_with(".reuse")) {
        std::fs::remove_file(server.repo_dir.join("objects/pack").join(n)).unwrap();
    }
    commit_file(server, work, file, "pushed to wake maintenance\n");
    server.git_ok(work, &["push", "-q", "origin", "HEAD:main"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.pack_files().1.iter().any(|n| n.ends_with(".reuse")) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    quiet(server);
}

/// A whole repack keeps objects no ref reached at that moment after the clone region of its pack.
/// When a later push makes such an object reachable again (a deleted branch pushed back), a clone
/// that copies the region must still send it: it is in the stored pack, but not in the region.
#[test]
fn a_clone_gets_what_a_push_made_reachable_again_after_a_repack() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::binary();
    let work = local_repo(&server, tmp.path(), "work", 2);
    server.git_ok(&work, &["push", "-q", "origin", "HEAD:main"]);
    commit_file(&server, &work, "pages/aside.md", "only on a branch that is deleted, then pushed back\n");
    let aside = server.git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string();
    server.git_ok(&work, &["push", "-q", "origin", "HEAD:refs/heads/aside"]);
    server.git_ok(&work, &["push", "-q", "origin", ":refs/heads/aside"]);
    server.git_ok(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    // The repack's region holds what main reaches; the aside commit goes after it.
    whole_repack_after_push(&server, &work, "pages/later.md");
    server.git_ok(&work, &["push", "-q", "origin", &format!("{aside}:refs/heads/back")]);
    let (clone, progress) = clone_mirror(&server, tmp.path(), "m.git");
    assert!(progress.contains("from a stored pack"), "the clone did not reuse the stored pack: {progress}");
    assert_eq!(refs_of(&server, &clone), server.server_refs());
    server.git_ok(&clone, &["cat-file", "-e", &format!("{aside}:pages/aside.md")]);
}

/// A `git fast-import` stream of `commits` commits editing a few files (thousands of objects:
/// a repack that takes long enough to be interrupted).
fn history(commits: usize) -> String {
    let mut s = String::new();
    for c in 0..commits {
        s.push_str(&format!(
            "commit refs/heads/main\ncommitter T <t@e> {} +0000\ndata 3\nc{}\n",
            1_600_000_000 + c,
            c % 10
        ));
        for f in 0..3 {
            let body: String = (0..40).map(|l| format!("line {l} of file {f}, edited in {}\n", c + l * f)).collect();
            s.push_str(&format!("M 100644 inline dir{}/f{f}.txt\ndata {}\n{body}\n", c % 20, body.len()));
        }
    }
    s
}

#[test]
fn kill_9_during_repacks_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut server = Server::binary_at(&data, &["--empty"]);
    server.git_ok(&src, &["init", "-q", "-b", "main"]);
    let mut import = std::process::Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(&src)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    import.stdin.take().unwrap().write_all(history(4000).as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    // Each restart listens on a new port: push to the address, not a remote.
    server.git_ok(&src, &["push", "-q", &server.url(), "main"]);

    // Each round: a push (a new pack, maintenance woken), the reuse record removed so that the
    // next start repacks the whole history, a restart, and SIGKILL at a different moment.
    let mut mid_repack = 0;
    for round in 0..10u64 {
        mid_repack += server.pack_files().1.iter().any(|n| n.starts_with(".tmp-repack-")) as usize;
        server.kill9();
        for name in server.pack_files().1.iter().filter(|n| n.ends_with(".reuse")) {
            let _ = std::fs::remove_file(server.repo_dir.join("objects/pack").join(name));
        }
        server = Server::binary_at(&data, &["--empty"]);
        commit_file(&server, &src, &format!("round{round}.txt"), "x\n");
        server.git_ok(&src, &["push", "-q", &server.url(), "main"]);
        // Every other round waits for a repack to be under way first, so that kills land inside
        // one however fast the machine is (on a loaded one, fixed delays all fell before the
        // repack began).
        if round % 2 == 0 {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !server.pack_files().1.iter().any(|n| n.starts_with(".tmp-repack-")) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        std::thread::sleep(Duration::from_millis(round * 30));
    }
    mid_repack += server.pack_files().1.iter().any(|n| n.starts_with(".tmp-repack-")) as usize;
    server.kill9();
    assert!(mid_repack > 0, "no kill landed during a repack; the test proves nothing");
    let killed: Vec<String> = server.pack_files().1.into_iter().filter(|n| n.starts_with(".tmp-repack-")).collect();

    // After a restart: no debris, every object there, the history intact, clones sound. The
    // restarted server may repack at once: what is checked is that the killed one's temporaries
    // are gone, and `git fsck` runs once maintenance is quiet (it removes the packs it replaced,
    // which a `git fsck` reading at that moment sees vanish).
    let server = Server::binary_at(&data, &["--empty"]);
    quiet(&server);
    let (_, names) = server.pack_files();
    let debris: Vec<&String> = killed.iter().filter(|n| names.contains(n)).collect();
    assert!(debris.is_empty(), "left after a restart: {debris:?}");
    assert_eq!(rev(&server, &src, "HEAD"), server.server_refs().split(' ').next().unwrap());
    server.assert_repository_sound();
    let packs = settle(&server, githost::maintenance::MAX_PACKS);
    assert!(packs <= githost::maintenance::MAX_PACKS);
    let (_, names) = server.pack_files();
    assert!(
        names.iter().all(|n| !n.ends_with(".pack") || names.contains(&n.replace(".pack", ".idx"))),
        "a pack without its index: {names:?}"
    );
    quiet(&server);
    server.assert_repository_sound();
    let (clone, _) = clone_mirror(&server, tmp.path(), "after.git");
    assert_eq!(refs_of(&server, &clone), server.server_refs());
}
