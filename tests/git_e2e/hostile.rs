//! Hostile input: malformed pkt-lines, truncated, corrupt and incomplete packs, bad ref names.
//! Each is refused with a message, and the repository is left exactly as it was.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::*;

const ZERO: &str = "0000000000000000000000000000000000000000";

fn pkt(line: &str) -> Vec<u8> {
    let mut v = format!("{:04x}", line.len() + 4).into_bytes();
    v.extend_from_slice(line.as_bytes());
    v
}

/// A pack of `revs` made by `git pack-objects` in `repo` (`--revs`: with everything reachable).
fn pack_objects(repo: &Path, input: &str, revs: bool) -> Vec<u8> {
    let mut cmd = Command::new("git");
    cmd.current_dir(repo).args(["pack-objects", "--stdout", "-q"]);
    if revs {
        cmd.arg("--revs");
    }
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn push_payload(refname: &str, new: &str, pack: &[u8]) -> Vec<u8> {
    let mut p = pkt(&format!("{ZERO} {new} {refname}\0report-status\n"));
    p.extend_from_slice(b"0000");
    p.extend_from_slice(pack);
    p
}

struct Fixture {
    server: Server,
    _tmp: tempfile::TempDir,
    src: std::path::PathBuf,
    head: String,
}

fn fixture() -> Fixture {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 3);
    let head = rev(&server, &src, "HEAD");
    Fixture { server, _tmp: tmp, src, head }
}

fn assert_untouched(server: &Server) {
    assert_eq!(server.server_refs(), "", "no ref may appear");
    let packs = std::fs::read_dir(server.repo_dir.join("objects/pack")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(packs, 0, "no object may be stored");
    server.assert_repository_sound();
}

#[test]
fn garbage_pkt_lines_are_refused() {
    let f = fixture();
    for service in ["git-receive-pack 'site.git'", "git-upload-pack 'site.git'"] {
        for garbage in [&b"zzzz this is not a pkt-line"[..], b"0003", b"ffff\x00\x01\x02", b"0009want x0000"] {
            let out = f.server.ssh_raw(service, garbage);
            assert!(!out.status.success(), "{service} accepted {garbage:?}");
            assert!(stderr(&out).contains("fatal:"), "a clear message: {}", stderr(&out));
        }
    }
    assert_untouched(&f.server);
}

#[test]
fn a_valid_push_over_the_raw_channel_works() {
    // The control for the tests below: the same payload shape with a good pack is accepted.
    let f = fixture();
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), true);
    let out = f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload("refs/heads/main", &f.head, &pack));
    assert_success(&out, &["raw push"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok refs/heads/main"));
    assert!(f.server.server_refs().contains(&f.head));
    f.server.assert_repository_sound();
}

#[test]
fn truncated_packs_are_refused() {
    let f = fixture();
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), true);
    for cut in [4, 12, pack.len() / 2, pack.len() - 1] {
        let out =
            f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload("refs/heads/main", &f.head, &pack[..cut]));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!text.contains("ok refs/heads/main"), "truncated at {cut} accepted: {text}");
    }
    assert_untouched(&f.server);
}

#[test]
fn corrupt_packs_are_refused() {
    let f = fixture();
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), true);
    for at in [0, 5, 13, pack.len() / 2, pack.len() - 3] {
        let mut bad = pack.clone();
        bad[at] ^= 0x5a;
        let out = f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload("refs/heads/main", &f.head, &bad));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("ok refs/heads/main"), "corruption at {at} accepted");
        assert!(stdout.contains("unpack ") || stderr(&out).contains("fatal"), "reported: {stdout}");
    }
    assert_untouched(&f.server);
}

#[test]
fn packs_missing_objects_are_refused() {
    let f = fixture();
    // Only the commit, without its tree and parents.
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), false);
    let out = f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload("refs/heads/main", &f.head, &pack));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("missing object"), "{stdout}");
    assert!(stdout.contains("ng refs/heads/main"), "{stdout}");
    assert_untouched(&f.server);
}

#[test]
fn bad_ref_names_are_refused() {
    let f = fixture();
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), true);
    for name in
        ["refs/heads/../x", "refs/heads/a..b", "HEAD", "refs/heads/x.lock", "refs/heads/a b", "main", "refs/heads/"]
    {
        let out = f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload(name, &f.head, &pack));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(&format!("ok {name}")), "{name} accepted");
        assert!(stdout.contains(&format!("ng {name}")) || stderr(&out).contains("fatal"), "{name}: {stdout}");
    }
    assert_untouched(&f.server);
}

#[test]
fn a_tree_on_a_branch_is_refused() {
    let f = fixture();
    let tree = rev(&f.server, &f.src, "HEAD^{tree}");
    let pack = pack_objects(&f.src, &format!("{}\n", f.head), true);
    let out = f.server.ssh_raw("git-receive-pack 'site.git'", &push_payload("refs/heads/main", &tree, &pack));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ng refs/heads/main a branch must point at a commit"), "{stdout}");
    assert_untouched(&f.server);
}

#[test]
fn a_killed_push_leaves_no_quarantine_after_restart() {
    let server = Server::binary();
    let data_dir = server.data_dir.clone();
    // Simulate a crash in the middle of a push: a quarantine directory is on disk.
    let stale = server.repo_dir.join("objects/incoming-crashed");
    std::fs::create_dir_all(stale.join("pack")).unwrap();
    std::fs::write(stale.join("pack/tmp_pack_x"), b"PACK partial").unwrap();
    server.stop();
    let restarted = Server::binary_at(&data_dir, &["--empty"]);
    assert!(!stale.exists(), "the stale quarantine is removed on start");
    restarted.assert_repository_sound();
}

/// Run git in `dir` with `input` on its stdin; its stdout.
fn git_with_input(server: &Server, dir: &Path, args: &[&str], input: &[u8]) -> String {
    let mut child = server.git(dir).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_success(&out, args);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Objects `git fsck` refuses are refused at push with git's message id, as a git server with
/// `receive.fsckObjects` refuses them, and nothing is stored: a tree naming `.GIT` (a `.git` on a
/// case-insensitive file system, which a clone would check out over its own repository) and a
/// `.gitmodules` whose URL `git submodule` would run as an option.
#[test]
fn objects_git_fsck_refuses_are_refused_at_push() {
    let f = fixture();
    let blob = f.server.git_ok(&f.src, &["rev-parse", "HEAD:file0.txt"]).trim().to_string();
    let mut tree = b"100644 .GIT\0".to_vec();
    tree.extend((0..20).map(|i| u8::from_str_radix(&blob[2 * i..2 * i + 2], 16).unwrap()));
    let tree = git_with_input(&f.server, &f.src, &["hash-object", "--literally", "-t", "tree", "-w", "--stdin"], &tree);
    let commit = f.server.git_ok(&f.src, &["commit-tree", &tree, "-p", "HEAD", "-m", "dot git"]).trim().to_string();
    let out = f.server.git_out(&f.src, &["push", "origin", &format!("{commit}:refs/heads/main")]);
    assert!(!out.status.success(), "a tree with .GIT was accepted");
    assert!(stderr(&out).contains("hasDotgit"), "{}", stderr(&out));
    assert_untouched(&f.server);

    std::fs::write(
        f.src.join(".gitmodules"),
        "[submodule \"x\"]\n\tpath = x\n\turl = --upload-pack=touch /tmp/pwned\n",
    )
    .unwrap();
    f.server.git_ok(&f.src, &["add", ".gitmodules"]);
    f.server.git_ok(&f.src, &["commit", "-q", "-m", "submodule"]);
    let out = f.server.git_out(&f.src, &["push", "origin", "HEAD:refs/heads/main"]);
    assert!(!out.status.success(), "a .gitmodules with an option for a URL was accepted");
    assert!(stderr(&out).contains("gitmodulesUrl"), "{}", stderr(&out));
    assert_untouched(&f.server);

    // The same history without them goes in: the checks refuse only what git refuses.
    f.server.git_ok(&f.src, &["reset", "-q", "--hard", "HEAD~1"]);
    f.server.git_ok(&f.src, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    f.server.assert_repository_sound();
}
