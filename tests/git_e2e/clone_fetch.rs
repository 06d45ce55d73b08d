//! Clone and fetch: both protocol versions, shallow, tags, long histories.

use crate::support::*;

const VERSIONS: [&str; 2] = ["protocol.version=0", "protocol.version=2"];

#[test]
fn clones_an_empty_repository() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    for (i, v) in VERSIONS.iter().enumerate() {
        let out = server.git_out(tmp.path(), &["-c", v, "clone", &server.url(), &format!("empty{i}")]);
        assert_success(&out, &["clone"]);
        assert!(stderr(&out).contains("empty repository"), "{}", stderr(&out));
    }
    server.assert_repository_sound();
}

/// `git clone --filter=blob:none` (a partial clone, which some tools ask for by default) is
/// answered with the whole repository: the server does not advertise filters, git warns that the
/// filter is ignored, and in protocol v0 sends the `filter` capability anyway.
#[test]
fn a_partial_clone_gets_everything() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 3);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    for (i, v) in VERSIONS.iter().enumerate() {
        let name = format!("partial{i}");
        let out = server.git_out(tmp.path(), &["-c", v, "clone", "--filter=blob:none", &server.url(), &name]);
        assert_success(&out, &["clone --filter", v]);
        assert_eq!(std::fs::read_to_string(tmp.path().join(&name).join("file2.txt")).unwrap(), "content 2\n");
    }
    server.assert_repository_sound();
}

#[test]
fn clone_reproduces_every_ref_and_tree() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 5);
    server.git_ok(&src, &["checkout", "-q", "-b", "feature"]);
    commit_file(&server, &src, "dir/sub/deep.md", "deep\n");
    server.git_ok(&src, &["tag", "-a", "v1.0", "-m", "release"]);
    server.git_ok(&src, &["tag", "light"]);
    server.git_ok(&src, &["push", "-q", "origin", "main", "feature", "--tags"]);

    for (i, v) in VERSIONS.iter().enumerate() {
        let name = format!("clone{i}");
        server.git_ok(tmp.path(), &["-c", v, "clone", "-q", "--mirror", &server.url(), &name]);
        let clone = tmp.path().join(&name);
        let refs = |dir: &std::path::Path| server.git_ok(dir, &["for-each-ref", "--format=%(objectname) %(refname)"]);
        let expected: String =
            refs(&src).lines().filter(|l| !l.contains("refs/remotes/")).map(|l| format!("{l}\n")).collect();
        assert_eq!(refs(&clone), expected, "{v}");
        for r in ["main", "feature", "v1.0^{}"] {
            assert_eq!(rev(&server, &clone, &format!("{r}^{{tree}}")), rev(&server, &src, &format!("{r}^{{tree}}")));
        }
        server.git_ok(&clone, &["fsck", "--strict", "--no-progress"]);
        // HEAD follows the server's HEAD (symref).
        assert_eq!(server.git_ok(&clone, &["symbolic-ref", "HEAD"]).trim(), "refs/heads/main");
    }
    server.assert_repository_sound();
}

#[test]
fn fetch_gets_only_the_new_commit() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 20);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    for (i, v) in VERSIONS.iter().enumerate() {
        let clone = server.clone(tmp.path(), &format!("c{i}"), &["-c", v]);
        commit_file(&server, &src, &format!("new{i}.txt"), &format!("fresh {i}\n"));
        server.git_ok(&src, &["push", "-q", "origin", "main"]);
        let out = server.git_out(&clone, &["-c", v, "fetch", "origin"]);
        assert_success(&out, &["fetch"]);
        assert_eq!(rev(&server, &clone, "origin/main"), rev(&server, &src, "main"));
        // The negotiation found the common commit: the fetch brought exactly the new commit,
        // its tree and the new blob (git unpacks small fetches into loose objects).
        let count = server.git_ok(&clone, &["count-objects", "-v"]);
        assert!(count.lines().any(|l| l == "count: 3"), "{v}: {count}");
        server.git_ok(&clone, &["gc", "-q"]);
        server.git_ok(&clone, &["fsck", "--strict", "--no-progress"]);
    }
    server.assert_repository_sound();
}

#[test]
fn shallow_clone_then_deepen_then_unshallow() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 10);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    for (i, v) in VERSIONS.iter().enumerate() {
        let clone = server.clone(tmp.path(), &format!("shallow{i}"), &["-c", v, "--depth", "1"]);
        let count = |c: &std::path::Path| server.git_ok(c, &["rev-list", "--count", "HEAD"]).trim().to_string();
        assert_eq!(count(&clone), "1", "{v}");
        assert!(clone.join(".git/shallow").exists());
        server.git_ok(&clone, &["-c", v, "fetch", "-q", "--deepen", "3"]);
        assert_eq!(count(&clone), "4", "{v} after --deepen 3");
        server.git_ok(&clone, &["-c", v, "fetch", "-q", "--depth", "6"]);
        assert_eq!(count(&clone), "6", "{v} after --depth 6");
        server.git_ok(&clone, &["-c", v, "fetch", "-q", "--unshallow"]);
        assert_eq!(count(&clone), "10", "{v} after --unshallow");
        assert!(!clone.join(".git/shallow").exists());
        server.git_ok(&clone, &["fsck", "--strict", "--no-progress"]);
    }
    server.assert_repository_sound();
}

#[test]
fn fetch_follows_annotated_tags() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 2);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    for (i, v) in VERSIONS.iter().enumerate() {
        let clone = server.clone(tmp.path(), &format!("t{i}"), &["-c", v]);
        commit_file(&server, &src, &format!("t{i}"), "x\n");
        server.git_ok(&src, &["tag", "-a", &format!("rel-{i}"), "-m", "release"]);
        server.git_ok(&src, &["push", "-q", "origin", "main", &format!("rel-{i}")]);
        server.git_ok(&clone, &["-c", v, "fetch", "-q", "origin"]);
        assert_eq!(rev(&server, &clone, &format!("rel-{i}")), rev(&server, &src, &format!("rel-{i}")), "{v}");
    }
    server.assert_repository_sound();
}

#[test]
fn long_history_round_trips() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 0);
    // 3000 commits, each changing one of 100 files, via fast-import (fast and deterministic);
    // each commit continues the branch fast-import is writing.
    let mut stream = String::new();
    for i in 0..3000 {
        let content = format!("line {i}\n");
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter T <t@e> {} +0000\ndata 4\nc{:03}\n",
            1_700_000_000 + i,
            i % 1000
        ));
        stream.push_str(&format!("M 100644 inline f{}.txt\ndata {}\n{content}\n", i % 100, content.len()));
    }
    let mut child =
        server.git(&src).args(["fast-import", "--quiet"]).stdin(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(stream.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    for (i, v) in VERSIONS.iter().enumerate() {
        let clone = server.clone(tmp.path(), &format!("long{i}"), &["-c", v]);
        assert_eq!(server.git_ok(&clone, &["rev-list", "--count", "HEAD"]).trim(), "3000");
        assert_eq!(rev(&server, &clone, "HEAD"), rev(&server, &src, "main"));
        server.git_ok(&clone, &["fsck", "--strict", "--no-progress"]);
    }
    server.assert_repository_sound();
}

#[test]
fn thin_packs_never_use_bases_the_client_lacks() {
    // `big.txt` on main is stored on the server as a delta against a version that exists only
    // on another branch; a client fetching just main must get a pack it can resolve.
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 1);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    let page: String = (0..300).map(|i| format!("paragraph {i} of a page that only changes a little\n")).collect();
    server.git_ok(&src, &["checkout", "-q", "-b", "draft"]);
    commit_file(&server, &src, "big.txt", &page);
    // main gets a sibling version; pushed together, git stores one as a delta of the other.
    server.git_ok(&src, &["checkout", "-q", "main"]);
    commit_file(&server, &src, "big.txt", &page.replace("paragraph 150", "PARAGRAPH 150"));
    server.git_ok(&src, &["push", "-q", "origin", "main", "draft"]);
    // Whichever of the two git made the delta, fetching the other branch alone needs care.
    for (i, v) in VERSIONS.iter().enumerate() {
        for branch in ["main", "draft"] {
            let dst = tmp.path().join(format!("only-{branch}{i}"));
            std::fs::create_dir_all(&dst).unwrap();
            server.git_ok(&dst, &["init", "-q"]);
            server.git_ok(&dst, &["-c", v, "fetch", "-q", &server.url(), branch]);
            assert_eq!(rev(&server, &dst, "FETCH_HEAD"), rev(&server, &src, branch));
            server.git_ok(&dst, &["fsck", "--strict", "--no-progress"]);
        }
    }
    server.assert_repository_sound();
}
