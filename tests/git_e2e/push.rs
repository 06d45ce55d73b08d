//! Push: first and incremental pushes, force, create/delete of branches and tags, atomic
//! pushes, races, and hooks that refuse.

use std::sync::Arc;

use crate::support::*;

#[test]
fn first_and_incremental_push_are_stored() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 3);
    let out = server.git_out(&src, &["push", "origin", "main"]);
    assert_success(&out, &["push"]);
    assert!(stderr(&out).contains("[new branch]"), "{}", stderr(&out));
    assert!(server.server_refs().contains(&format!("{} refs/heads/main", rev(&server, &src, "main"))));
    commit_file(&server, &src, "more.txt", "more\n");
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    assert!(server.server_refs().contains(&format!("{} refs/heads/main", rev(&server, &src, "main"))));
    // Nothing to push is fine too.
    let out = server.git_out(&src, &["push", "origin", "main"]);
    assert_success(&out, &["push"]);
    assert!(stderr(&out).contains("Everything up-to-date"), "{}", stderr(&out));
    server.assert_repository_sound();
}

#[test]
fn force_push_rewrites_and_plain_push_of_rewritten_history_is_refused() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 3);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    server.git_ok(&src, &["reset", "-q", "--hard", "HEAD~2"]);
    commit_file(&server, &src, "other.txt", "rewritten\n");
    let refused = server.git_out(&src, &["push", "origin", "main"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("[rejected]"), "{}", stderr(&refused));
    let forced = server.git_out(&src, &["push", "--force", "origin", "main"]);
    assert_success(&forced, &["push --force"]);
    assert!(stderr(&forced).contains("(forced update)"), "{}", stderr(&forced));
    assert!(server.server_refs().contains(&rev(&server, &src, "main")));
    server.assert_repository_sound();
}

#[test]
fn branches_and_tags_are_created_and_deleted() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 2);
    server.git_ok(&src, &["branch", "preview/alice"]);
    server.git_ok(&src, &["tag", "-a", "v1", "-m", "one"]);
    server.git_ok(&src, &["tag", "lw"]);
    server.git_ok(&src, &["push", "-q", "origin", "main", "preview/alice", "v1", "lw"]);
    let refs = server.server_refs();
    for r in ["refs/heads/main", "refs/heads/preview/alice", "refs/tags/v1", "refs/tags/lw"] {
        assert!(refs.contains(r), "{r} missing in {refs}");
    }
    assert!(refs.contains(&format!("{} refs/tags/v1", rev(&server, &src, "v1"))), "annotated tag object kept");
    server.git_ok(&src, &["push", "-q", "origin", "--delete", "preview/alice", "v1"]);
    let refs = server.server_refs();
    assert!(!refs.contains("preview/alice") && !refs.contains("refs/tags/v1"), "{refs}");
    assert!(refs.contains("refs/tags/lw"));
    // ls-remote agrees, over both protocols.
    for v in ["protocol.version=0", "protocol.version=2"] {
        let listed = server.git_ok(&src, &["-c", v, "ls-remote", "origin"]);
        assert!(listed.contains("refs/tags/lw") && !listed.contains("preview/alice"), "{v}: {listed}");
    }
    server.assert_repository_sound();
}

#[test]
fn atomic_push_with_a_stale_ref_changes_nothing() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let a = local_repo(&server, tmp.path(), "a", 2);
    server.git_ok(&a, &["branch", "dev"]);
    server.git_ok(&a, &["push", "-q", "origin", "main", "dev"]);
    let b = server.clone(tmp.path(), "b", &[]);
    // b moves dev on the server, so a's view of dev is stale.
    server.git_ok(&b, &["checkout", "-q", "dev"]);
    commit_file(&server, &b, "b.txt", "b\n");
    server.git_ok(&b, &["push", "-q", "origin", "dev"]);
    let before = server.server_refs();

    commit_file(&server, &a, "a.txt", "a\n");
    server.git_ok(&a, &["branch", "-f", "dev", "main"]);
    let out = server.git_out(&a, &["push", "--atomic", "--force-with-lease=dev:origin/dev", "origin", "main", "dev"]);
    assert!(!out.status.success(), "atomic push with a stale ref must fail");
    assert_eq!(server.server_refs(), before, "no ref may move:\n{}", stderr(&out));
    server.assert_repository_sound();
}

#[test]
fn stale_old_value_is_refused_by_the_server() {
    // The client claims an old value the server's ref no longer has (a lease that the server
    // itself must check, not just the client).
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let a = local_repo(&server, tmp.path(), "a", 2);
    server.git_ok(&a, &["push", "-q", "origin", "main"]);
    let old = rev(&server, &a, "main~1");
    commit_file(&server, &a, "x.txt", "x\n");
    let out = server.git_out(&a, &["push", &format!("--force-with-lease=main:{old}"), "origin", "main"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("stale info"), "{}", stderr(&out));
    server.assert_repository_sound();
}

#[test]
fn racing_pushes_on_one_ref_lose_nothing() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let base = local_repo(&server, tmp.path(), "base", 1);
    server.git_ok(&base, &["push", "-q", "origin", "main"]);
    let clones: Vec<_> = (0..4).map(|i| server.clone(tmp.path(), &format!("r{i}"), &[])).collect();
    for (i, c) in clones.iter().enumerate() {
        commit_file(&server, c, &format!("racer{i}.txt"), &format!("{i}\n"));
    }
    let results: Vec<(std::path::PathBuf, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> =
            clones.iter().map(|c| s.spawn(|| (c.clone(), server.git_out(c, &["push", "origin", "main"])))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter(|(_, o)| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one racer wins");
    let winner_tip = rev(&server, &winners[0].0, "main");
    assert!(server.server_refs().contains(&format!("{winner_tip} refs/heads/main")));
    for (_, out) in results.iter().filter(|(_, o)| !o.status.success()) {
        let err = stderr(out);
        assert!(
            err.contains("it moved during this push") || err.contains("[rejected]") || err.contains("fetch first"),
            "a loser gets a clean rejection: {err}"
        );
    }
    // The losers can fetch, rebase and push: nothing was lost.
    for (dir, _) in results.iter().filter(|(_, o)| !o.status.success()) {
        server.git_ok(dir, &["pull", "-q", "--rebase", "origin", "main"]);
        server.git_ok(dir, &["push", "-q", "origin", "main"]);
    }
    let final_clone = server.clone(tmp.path(), "final", &[]);
    for i in 0..4 {
        assert!(final_clone.join(format!("racer{i}.txt")).exists(), "racer {i}'s work is on the server");
    }
    server.assert_repository_sound();
}

/// A hook that refuses pushes touching `forbidden/`, and greets on success.
struct GateHook;

impl githost::Hooks for GateHook {
    fn pre_receive(&self, push: &githost::PushContext<'_>) -> githost::PreReceive {
        let mut verdict = githost::PreReceive::accept();
        verdict.messages.push(format!("checking {} update(s) by {}", push.updates.len(), push.principal.id));
        for u in push.updates {
            verdict.messages.push(format!("{} is a {:?}", u.name, u.kind));
            if u.name.starts_with(b"refs/heads/forbidden") {
                verdict.refused.push((u.name.clone(), "branches under forbidden/ are not allowed".into()));
            }
        }
        verdict
    }

    fn post_receive(&self, push: &githost::PostReceiveContext<'_>) -> Vec<String> {
        vec![format!("published {} ref(s)", push.updates.len())]
    }
}

#[test]
fn a_refusing_hook_shows_its_message_and_stores_nothing() {
    let server = Server::in_process(Arc::new(GateHook), githost::Limits::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 1);
    server.git_ok(&src, &["branch", "forbidden/x"]);
    let out = server.git_out(&src, &["push", "origin", "forbidden/x"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("remote: checking 1 update(s) by tester"), "{err}");
    assert!(
        err.contains("! [remote rejected] forbidden/x -> forbidden/x (branches under forbidden/ are not allowed)"),
        "{err}"
    );
    assert_eq!(server.server_refs(), "");
    let packs = std::fs::read_dir(server.repo_dir.join("objects/pack")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(packs, 0, "a refused push stores no objects");

    let ok = server.git_out(&src, &["push", "origin", "main"]);
    assert_success(&ok, &["push"]);
    assert!(stderr(&ok).contains("remote: published 1 ref(s)"), "{}", stderr(&ok));
    server.assert_repository_sound();
}

#[test]
fn pushes_over_the_size_limit_are_refused_cleanly() {
    let limits = githost::Limits { max_pack_bytes: 2000, ..githost::Limits::default() };
    let server = Server::in_process(Arc::new(githost::AllowAll), limits);
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 0);
    // Incompressible content well over the limit.
    let letters: String = noise(7, 20_000).into_iter().map(|b| char::from(b'a' + b % 26)).collect();
    commit_file(&server, &src, "big.txt", &letters);
    let out = server.git_out(&src, &["push", "origin", "main"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("maximum push size"), "{}", stderr(&out));
    assert_eq!(server.server_refs(), "");
    server.assert_repository_sound();
}

#[test]
fn hooks_see_what_kind_of_update_each_ref_is() {
    let server = Server::in_process(Arc::new(GateHook), githost::Limits::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 2);
    let push = |args: &[&str]| stderr(&server.git_out(&src, args));
    assert!(push(&["push", "origin", "main"]).contains("remote: refs/heads/main is a Create"));
    commit_file(&server, &src, "ff.txt", "ff\n");
    assert!(push(&["push", "origin", "main"]).contains("remote: refs/heads/main is a FastForward"));
    server.git_ok(&src, &["commit", "-q", "--amend", "-m", "rewritten"]);
    assert!(push(&["push", "--force", "origin", "main"]).contains("remote: refs/heads/main is a NonFastForward"));
    assert!(push(&["push", "origin", "--delete", "main"]).contains("remote: refs/heads/main is a Delete"));
    server.assert_repository_sound();
}

#[test]
fn objects_over_the_size_limit_are_refused() {
    let limits = githost::Limits { max_object_bytes: 4096, ..githost::Limits::default() };
    let server = Server::in_process(Arc::new(githost::AllowAll), limits);
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 1);
    commit_file(&server, &src, "big.txt", &"all work and no play\n".repeat(1000));
    let out = server.git_out(&src, &["push", "origin", "main"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("maximum object size of 4096 bytes"), "{}", stderr(&out));
    assert_eq!(server.server_refs(), "");
    server.assert_repository_sound();
}

#[test]
fn delta_chains_over_the_depth_limit_are_refused() {
    let limits = githost::Limits { max_delta_depth: 2, ..githost::Limits::default() };
    let server = Server::in_process(Arc::new(githost::AllowAll), limits);
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 0);
    // A page whose text drifts a little with each edit: git stores the versions as a delta
    // chain (each version against its neighbour), which the push then reuses.
    for i in 0..12 {
        let text: String = (i * 40..i * 40 + 400).map(|j| format!("line {j} of a long page\n")).collect();
        commit_file(&server, &src, "page.md", &text);
    }
    server.git_ok(&src, &["repack", "-adq", "--depth=50", "--window=50"]);
    let out = server.git_out(&src, &["-c", "pack.depth=50", "push", "origin", "main"]);
    assert!(!out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("deeper than the maximum of 2"), "{}", stderr(&out));
    assert_eq!(server.server_refs(), "");
    server.assert_repository_sound();
}

#[test]
fn pushes_that_bring_no_new_objects_work() {
    // A new branch or tag at an existing commit, and a rollback, send an empty pack.
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = local_repo(&server, tmp.path(), "src", 3);
    server.git_ok(&src, &["push", "-q", "origin", "main"]);
    server.git_ok(&src, &["push", "-q", "origin", "main:refs/heads/copy", "main~1:refs/tags/old"]);
    server.git_ok(&src, &["push", "-q", "--force", "origin", "main~2:main"]);
    let refs = server.server_refs();
    assert!(refs.contains(&format!("{} refs/heads/copy", rev(&server, &src, "main"))), "{refs}");
    assert!(refs.contains(&format!("{} refs/tags/old", rev(&server, &src, "main~1"))), "{refs}");
    assert!(refs.contains(&format!("{} refs/heads/main", rev(&server, &src, "main~2"))), "{refs}");
    server.assert_repository_sound();
}

#[test]
fn a_long_lived_repository_takes_many_pushes() {
    // Every push adds a pack (maintenance consolidates them in the background; that is tested in
    // maintenance.rs). The object store must keep finding objects after more packs arrived than
    // existed when the server opened the repository (gix sized its index slots from the disk at
    // open, minimum 32, and failed past that), and while packs come and go.
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&server, tmp.path(), "work", 1);
    server.git_ok(&repo, &["push", "-q", "origin", "main"]);
    for i in 0..45 {
        commit_file(&server, &repo, &format!("file{i}.txt"), &format!("push {i}\n"));
        server.git_ok(&repo, &["push", "-q", "origin", "main"]);
    }
    let clone = server.clone(tmp.path(), "clone", &[]);
    assert_eq!(std::fs::read_to_string(clone.join("file44.txt")).unwrap(), "push 44\n");
    assert_eq!(rev(&server, &clone, "HEAD"), rev(&server, &repo, "HEAD"));
    server.assert_repository_sound();
}
