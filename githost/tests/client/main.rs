//! The Git client against three real servers: our own host, OpenSSH + git, and `git http-backend`
//! behind HTTPS. Every scenario runs against each, over protocol v2 and v0, and ends with
//! `git fsck --strict` on both sides.

mod hostile;
mod http_backend;
mod https;
mod support;

use std::sync::Arc;

use githost::client::{fetch, push, ClientError, FetchRequest, PushCommand, PushRequest, RefSpec, RefStatus};
use githost::{Limits, Repository};
use gix::ObjectId;
use support::{add_commit, assert_sound, git, local_refs, work_repo, Kind, Remote};

fn oid(hex: &str) -> ObjectId {
    ObjectId::from_hex(hex.as_bytes()).unwrap()
}

fn mirror_specs() -> Vec<RefSpec> {
    vec![RefSpec::parse("+refs/heads/*:refs/heads/*").unwrap(), RefSpec::parse("+refs/tags/*:refs/tags/*").unwrap()]
}

/// Clone, then fetch new commits, a new branch, a force-push and a deletion (with prune).
async fn clone_and_fetch(kind: Kind, v2: bool) {
    let remote = Remote::start(kind);
    let work = work_repo(remote.tmp.path(), 12);
    git(&work, &["tag", "-a", "v1", "-m", "release"]);
    git(&work, &["branch", "drafts"]);
    remote.git(&work, &["push", "-q", &remote.url, "main", "drafts", "v1"]);

    let conn = remote.connect(v2).await;
    let dir = remote.tmp.path().join("clone.git");
    let (repo, outcome) = githost::client::clone(&conn, "site", &dir, Limits::default()).await.expect("clone");
    assert_eq!(outcome.v2, v2, "protocol");
    assert!(outcome.objects > 30, "{outcome:?}");
    assert_eq!(local_refs(&dir), remote.refs());
    assert_eq!(git(&dir, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_sound(&dir);

    // Nothing new: no pack, no change.
    let again = fetch::fetch(&conn, repo.clone(), FetchRequest::new(mirror_specs()), Limits::default()).await.unwrap();
    assert!(again.changes.is_empty() && again.objects == 0, "{again:?}");

    // Two new commits: only what is new comes.
    add_commit(&work, 100);
    let tip = add_commit(&work, 101);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    let out = fetch::fetch(&conn, repo.clone(), FetchRequest::new(mirror_specs()), Limits::default()).await.unwrap();
    assert_eq!(out.changes.len(), 1, "{out:?}");
    assert_eq!(out.changes[0].new, Some(oid(&tip)));
    assert!(!out.changes[0].forced);
    // Every new object arrives; a thin pack is completed with at most one stored base per delta,
    // so the stored pack holds at most twice the new objects (a full pack would hold them all).
    let new_objects = git(&work, &["rev-list", "--objects", "HEAD~2..HEAD"]).lines().count() as u32;
    assert!(
        (new_objects..=2 * new_objects).contains(&out.objects),
        "incremental fetch stored {} objects for {new_objects} new ones",
        out.objects
    );
    assert_eq!(local_refs(&dir), remote.refs());

    // A force-push (history rewritten) and a deleted branch.
    git(&work, &["reset", "-q", "--hard", "HEAD~3"]);
    let rewritten = add_commit(&work, 200);
    remote.git(&work, &["push", "-q", "--force", &remote.url, "main", ":drafts"]);
    let mut request = FetchRequest::new(mirror_specs());
    request.prune = true;
    let out = fetch::fetch(&conn, repo.clone(), request, Limits::default()).await.unwrap();
    let main = out.changes.iter().find(|c| c.name == "refs/heads/main").expect("main moved");
    assert!(main.forced && main.new == Some(oid(&rewritten)), "{out:?}");
    assert!(out.changes.iter().any(|c| c.name == "refs/heads/drafts" && c.new.is_none()), "{out:?}");
    assert_eq!(local_refs(&dir), remote.refs());

    // Without `+`, a non-fast-forward is refused and the ref stays.
    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    add_commit(&work, 300);
    remote.git(&work, &["push", "-q", "--force", &remote.url, "main"]);
    let strict = vec![RefSpec::parse("refs/heads/main:refs/heads/main").unwrap()];
    let out = fetch::fetch(&conn, repo.clone(), FetchRequest::new(strict), Limits::default()).await.unwrap();
    assert_eq!(out.rejected.len(), 1, "{out:?}");
    assert_eq!(git(&dir, &["rev-parse", "refs/heads/main"]), rewritten);
    assert_sound(&dir);
    conn.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_from_our_host_v2() {
    clone_and_fetch(Kind::Ours, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_from_our_host_v0() {
    clone_and_fetch(Kind::Ours, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_from_openssh_v2() {
    clone_and_fetch(Kind::OpenSsh, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_from_openssh_v0() {
    clone_and_fetch(Kind::OpenSsh, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_over_https_v2() {
    clone_and_fetch(Kind::Https, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_and_fetch_over_https_v0() {
    clone_and_fetch(Kind::Https, false).await;
}

/// Push: create, fast-forward, non-fast-forward refused, force, lease (stale info), delete,
/// atomic, and the server's messages.
async fn pushes(kind: Kind) {
    let remote = Remote::start(kind);
    let work = work_repo(remote.tmp.path(), 5);
    // Our client pushes from a bare repository that has the work tree's objects.
    let local_dir = remote.tmp.path().join("local.git");
    git(remote.tmp.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), local_dir.to_str().unwrap()]);
    let local = Arc::new(Repository::open_or_init("local", &local_dir).unwrap());
    let tip = git(&local_dir, &["rev-parse", "main"]);
    let conn = remote.connect(true).await;
    let run = |commands: Vec<PushCommand>, atomic: bool| {
        let local = local.clone();
        let conn = &conn;
        async move {
            let mut req = PushRequest::new(commands);
            req.atomic = atomic;
            push::push(conn, local, req).await.expect("push")
        }
    };

    // Create two branches and a tag into an empty repository.
    let out = run(
        vec![PushCommand::update("refs/heads/main", oid(&tip)), PushCommand::update("refs/heads/drafts", oid(&tip))],
        false,
    )
    .await;
    assert!(out.all_ok(), "{out:?}");
    assert!(out.objects >= 15, "{out:?}");
    assert_sound(&remote.repo_dir);
    assert_eq!(remote.git(&remote.repo_dir, &["rev-parse", "main"]), tip);

    // Up to date: nothing sent.
    let out = run(vec![PushCommand::update("refs/heads/main", oid(&tip))], false).await;
    assert_eq!(out.refs[0].1, RefStatus::UpToDate);

    // A fast-forward sends only the new commit.
    let w2 = add_commit(&work, 50);
    git(&local_dir, &["fetch", "-q", work.to_str().unwrap(), "main:main"]);
    let out = run(vec![PushCommand::update("refs/heads/main", oid(&w2))], false).await;
    assert!(out.all_ok(), "{out:?}");
    assert!(out.objects <= 4, "sent {} objects for one commit", out.objects);

    // Someone else pushes; our stale main is a non-fast-forward, refused here.
    let other = remote.tmp.path().join("other");
    remote.git(remote.tmp.path(), &["clone", "-q", &remote.url, other.to_str().unwrap()]);
    let theirs = add_commit(&other, 60);
    remote.git(&other, &["push", "-q", "origin", "main"]);
    git(&local_dir, &["fetch", "-q", work.to_str().unwrap(), "main:main"]);
    let ours = add_commit(&work, 61);
    git(&local_dir, &["fetch", "-q", work.to_str().unwrap(), "main:main"]);
    let out = run(vec![PushCommand::update("refs/heads/main", oid(&ours))], false).await;
    assert!(matches!(&out.refs[0].1, RefStatus::Rejected(r) if r.contains("fetch first")), "{out:?}");
    assert_eq!(remote.git(&remote.repo_dir, &["rev-parse", "main"]), theirs);

    // A lease on the old value we knew: stale.
    let mut lease = PushCommand::update("refs/heads/main", oid(&ours));
    lease.force = true;
    lease.expect = Some(Some(oid(&w2)));
    let out = run(vec![lease], false).await;
    assert_eq!(out.refs[0].1, RefStatus::Rejected("stale info".into()));

    // Forced, it goes through.
    let mut force = PushCommand::update("refs/heads/main", oid(&ours));
    force.force = true;
    let out = run(vec![force], false).await;
    assert!(out.all_ok(), "{out:?}");
    assert_eq!(remote.git(&remote.repo_dir, &["rev-parse", "main"]), ours);

    // Atomic: one refused command refuses all.
    let out =
        run(vec![PushCommand::delete("refs/heads/drafts"), PushCommand::delete("refs/heads/no-such-branch")], true)
            .await;
    assert!(!out.all_ok());
    remote.git(&remote.repo_dir, &["rev-parse", "--verify", "refs/heads/drafts"]);

    // Delete.
    let out = run(vec![PushCommand::delete("refs/heads/drafts")], false).await;
    assert!(out.all_ok(), "{out:?}");
    assert!(!remote.refs().contains("refs/heads/drafts"));
    assert_sound(&remote.repo_dir);
    assert_sound(&local_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_our_host() {
    pushes(Kind::Ours).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_to_openssh() {
    pushes(Kind::OpenSsh).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_over_https() {
    pushes(Kind::Https).await;
}

/// A history of ~20k objects, cloned from and pushed to every server (over HTTPS the push is
/// several MiB: streamed, not held in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twenty_thousand_object_history() {
    for kind in [Kind::Ours, Kind::OpenSsh, Kind::Https] {
        let remote = Remote::start(kind);
        let src = remote.tmp.path().join("src.git");
        support::big_history(&src);
        let objects: usize = git(&src, &["rev-list", "--objects", "--all"]).lines().count();
        assert!(objects >= 20_000, "{objects} objects");
        let local = Arc::new(Repository::open_or_init("src", &src).unwrap());
        let tip = git(&src, &["rev-parse", "main"]);
        let conn = remote.connect(true).await;
        let out = push::push(&conn, local, PushRequest::new(vec![PushCommand::update("refs/heads/main", oid(&tip))]))
            .await
            .unwrap();
        assert!(out.all_ok(), "{kind:?}: {out:?}");
        assert_eq!(out.objects, objects);
        assert_sound(&remote.repo_dir);
        let dir = remote.tmp.path().join("clone.git");
        let (_, outcome) = githost::client::clone(&conn, "site", &dir, Limits::default()).await.unwrap();
        assert_eq!(outcome.objects as usize, objects, "{kind:?}");
        assert_eq!(git(&dir, &["rev-parse", "main"]), tip);
        assert_sound(&dir);
        if let Some(backend) = &remote.http {
            let post = backend.seen().into_iter().find(|s| s.path.ends_with("/git-receive-pack")).unwrap();
            assert!(post.chunked && post.body_len > 1 << 20, "{post:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_keys_are_checked_and_keys_refused_clearly() {
    let remote = Remote::start(Kind::Ours);
    let url = githost::client::RemoteUrl::parse(&remote.url).unwrap();
    // A wrong pin: refused, with the fingerprint the server showed.
    let mut options = remote.options();
    options.host_key =
        githost::client::HostKeyPolicy::Fingerprint("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into());
    let Err(err) = githost::client::Connection::connect(&url, &options).await else { panic!("connected") };
    let githost::client::HostKeyPolicy::Fingerprint(right) = remote.pin() else { unreachable!() };
    assert!(matches!(err, ClientError::HostKeyChanged { .. }) && err.to_string().contains(&right), "{err}");
    // What a first connection shows, to be checked and pinned, is that same fingerprint.
    let shown = githost::client::host_fingerprint(&url, std::time::Duration::from_secs(10)).await.unwrap();
    assert_eq!(shown, right);
    // An empty known_hosts: unknown host, with the fingerprint.
    let known = remote.tmp.path().join("known_hosts");
    std::fs::write(&known, "").unwrap();
    options.host_key = githost::client::HostKeyPolicy::KnownHosts(known.clone());
    let Err(err) = githost::client::Connection::connect(&url, &options).await else { panic!("connected") };
    assert!(matches!(err, ClientError::UnknownHostKey { .. }) && err.to_string().contains(&right), "{err}");
    // Listed: connects.
    let host_pub = std::fs::read_to_string(&remote.host_pub).unwrap();
    std::fs::write(&known, format!("{} {}", url.known_hosts_name(), host_pub)).unwrap();
    githost::client::Connection::connect(&url, &options).await.expect("known host");
    // A key the server does not know.
    let stranger = remote.tmp.path().join("stranger");
    githost::keys::load_or_generate(&stranger, "stranger").unwrap();
    options.key = stranger;
    let Err(err) = githost::client::Connection::connect(&url, &options).await else { panic!("connected") };
    assert!(matches!(err, ClientError::AuthRefused { .. }), "{err}");
    // Nobody listening.
    let closed = githost::client::RemoteUrl::parse("ssh://git@127.0.0.1:1/site.git").unwrap();
    let Err(err) = githost::client::Connection::connect(&closed, &remote.options()).await else { panic!("connected") };
    assert!(matches!(err, ClientError::Connect { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_repository_is_the_remotes_own_words() {
    for kind in [Kind::Ours, Kind::OpenSsh] {
        let remote = Remote::start(kind);
        let mut url = githost::client::RemoteUrl::parse(&remote.url).unwrap();
        url.path = format!("{}-missing", url.path);
        let conn = githost::client::Connection::connect(&url, &remote.options()).await.unwrap();
        let dir = remote.tmp.path().join("x.git");
        let err = githost::client::clone(&conn, "x", &dir, Limits::default()).await.unwrap_err();
        assert!(matches!(err, ClientError::Remote(_)), "{kind:?}: {err}");
        assert!(err.to_string().contains("missing"), "{kind:?}: {err}");
    }
}

/// `whispercms-watch-refs`: the current refs at once, then again after each push; a plain Git
/// server refuses the command, which tells a follower to poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watching_refs_wakes_on_push() {
    let remote = Remote::start(Kind::Ours);
    let work = work_repo(remote.tmp.path(), 2);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    let conn = remote.connect_ssh(true).await;
    let mut watch = githost::client::watch::RefWatch::start(&conn).await.unwrap();
    let first = watch.next().await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1, oid(&git(&work, &["rev-parse", "HEAD"])));
    let tip = add_commit(&work, 9);
    remote.git(&work, &["push", "-q", &remote.url, "main", "main:refs/heads/drafts"]);
    let next = tokio::time::timeout(std::time::Duration::from_secs(20), watch.next()).await.expect("woken").unwrap();
    assert_eq!(next.len(), 2, "{next:?}");
    assert!(next.iter().all(|(_, id)| *id == oid(&tip)));

    let plain = Remote::start(Kind::OpenSsh);
    let plain_conn = plain.connect_ssh(true).await;
    let mut watch = githost::client::watch::RefWatch::start(&plain_conn).await.unwrap();
    let err =
        tokio::time::timeout(std::time::Duration::from_secs(20), watch.next()).await.expect("refused").unwrap_err();
    assert!(matches!(err, ClientError::Remote(_)), "{err}");
    // Leaving closes the watch (the server would otherwise wait for it when it stops).
    drop(watch);
    conn.close().await;
}

/// A vetting function sees the fetched commit before anything is stored; refused, the local
/// ref stays and no object is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vetted_fetch_keeps_refused_commits_out() {
    let remote = Remote::start(Kind::Ours);
    let work = work_repo(remote.tmp.path(), 3);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    let dir = remote.tmp.path().join("follower.git");
    let repo = Arc::new(Repository::open_or_init("site", &dir).unwrap());
    let conn = remote.connect(true).await;
    let tip = oid(&git(&work, &["rev-parse", "HEAD"]));
    let mut request = FetchRequest::new(mirror_specs());
    request.vet = Some(Box::new(move |view: &gix::Repository, change: &githost::client::RefChange| {
        // The fetched commit is readable through the view.
        let commit = view.find_commit(change.new.unwrap()).map_err(|e| e.to_string())?;
        Err(format!("refused {}", commit.message_raw_sloppy()))
    }));
    let out = fetch::fetch(&conn, repo.clone(), request, Limits::default()).await.unwrap();
    assert_eq!(out.rejected.len(), 1, "{out:?}");
    assert!(out.rejected[0].1.contains("commit 2"), "{out:?}");
    assert!(out.changes.is_empty());
    assert_eq!(local_refs(&dir), "");
    assert_eq!(git(&dir, &["count-objects", "-v"]).lines().find(|l| l.starts_with("in-pack")), Some("in-pack: 0"));
    let mut request = FetchRequest::new(mirror_specs());
    request.vet = Some(Box::new(|_: &gix::Repository, _: &githost::client::RefChange| Ok(())));
    let out = fetch::fetch(&conn, repo, request, Limits::default()).await.unwrap();
    assert_eq!(out.changes[0].new, Some(tip));
    assert_sound(&dir);
}

/// ECDSA and RSA client keys work too (OpenSSH checks them; RSA signs with SHA-2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_and_rsa_keys_authenticate() {
    let remote = Remote::start(Kind::OpenSsh);
    let work = work_repo(remote.tmp.path(), 1);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    for (kind, bits) in [("ecdsa", "256"), ("rsa", "3072")] {
        let key = remote.tmp.path().join(format!("client_{kind}"));
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-b", bits, "-N", "", "-C", kind, "-f"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(out.status.success());
        let mut authorized = std::fs::read_to_string(remote.tmp.path().join("authorized_keys")).unwrap();
        authorized.push_str(&std::fs::read_to_string(key.with_extension("pub")).unwrap());
        std::fs::write(remote.tmp.path().join("authorized_keys"), authorized).unwrap();
        let mut options = remote.options();
        options.key = key;
        let url = githost::client::RemoteUrl::parse(&remote.url).unwrap();
        let conn = githost::client::Connection::connect(&url, &options).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        let dir = remote.tmp.path().join(format!("{kind}.git"));
        githost::client::clone(&conn, "x", &dir, Limits::default()).await.unwrap();
        assert_eq!(local_refs(&dir), remote.refs());
    }
}
