//! Follow mode end to end: a primary and two followers as separate processes on 127.0.0.1; a
//! follower of a plain Git host (an in-process host that validates nothing), with and without
//! signature trust.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

/// The `SHA256:…` fingerprint of a public key file.
fn fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen").arg("-lf").arg(public).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).expect("fingerprint").to_string()
}

/// A settings file for a follower of `port` (our SSH endpoint at 127.0.0.1).
fn follower_config(dir: &Path, port: u16, key: &Path, host_pub: &Path, extra: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("follower.toml");
    std::fs::write(
        &path,
        format!(
            "{extra}\n[follow]\nurl = \"ssh://git@127.0.0.1:{port}/site.git\"\nkey = \"{}\"\nhost_key_fingerprint = \"{}\"\npoll_interval_secs = 1\n",
            key.display(),
            fingerprint(host_pub)
        ),
    )
    .unwrap();
    path
}

fn start_follower(dir: &Path, config: &Path) -> Server {
    Server::binary_at(&dir.join("data"), &["--empty", "--config", config.to_str().unwrap()])
}

/// Poll `path` on `port` until `ok(status, body)`; the last answer if time runs out.
fn wait_for(port: u16, path: &str, ok: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, body) = http_get(port, path);
        if ok(status, &body) || Instant::now() > deadline {
            return (status, body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn followers_serve_what_the_primary_publishes() {
    let tmp = tempfile::tempdir().unwrap();
    let ssh = format!("127.0.0.1:{}", free_port());
    let primary_dir = tmp.path().join("primary");
    let primary = Server::binary_listening(&primary_dir, &ssh, &[]);
    let host_pub = primary_dir.join("keys/ssh_host_ed25519.pub");
    let followers: Vec<Server> = ["f1", "f2"]
        .iter()
        .map(|name| {
            let dir = tmp.path().join(name);
            start_follower(&dir, &follower_config(&dir, primary.port, &primary.key, &host_pub, ""))
        })
        .collect();
    for f in &followers {
        let (status, body) = wait_for(f.http_port.unwrap(), "/", |s, b| s == 200 && b.contains("Whisper Notes"));
        assert_eq!(status, 200, "{body}");
    }

    // A push to the primary reaches both followers.
    let clone = primary.clone(tmp.path(), "site", &[]);
    commit_file(
        &primary,
        &clone,
        "content/blog/fresh.md",
        "+++\ntitle = \"Fresh news\"\ndate = 2026-04-01\n+++\nHi.\n",
    );
    primary.git_ok(&clone, &["push", "-q", "origin", "main"]);
    for f in &followers {
        let (status, body) = wait_for(f.http_port.unwrap(), "/blog/fresh/", |s, _| s == 200);
        assert!(status == 200 && body.contains("Fresh news"), "{status} {body}");
    }

    // A push to a follower is refused, nothing stored; a follower serves clones.
    let f1 = &followers[0];
    let before = f1.server_refs();
    let out = f1.git_out(&clone, &["push", &f1.url(), "main:refs/heads/elsewhere"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("remote: this server follows ssh://git@{ssh}/site.git; push there")), "{err}");
    assert_eq!(f1.server_refs(), before);
    let mirror = f1.clone(tmp.path(), "from-follower", &[]);
    assert_eq!(rev(f1, &mirror, "HEAD"), rev(&primary, &clone, "HEAD"));

    // A force-push is followed: the rewritten page goes away.
    primary.git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);
    commit_file(
        &primary,
        &clone,
        "content/blog/other.md",
        "+++\ntitle = \"Other news\"\ndate = 2026-04-02\n+++\nHo.\n",
    );
    primary.git_ok(&clone, &["push", "-q", "--force", "origin", "main"]);
    for f in &followers {
        let (status, _) = wait_for(f.http_port.unwrap(), "/blog/other/", |s, _| s == 200);
        assert_eq!(status, 200);
        assert_eq!(http_get(f.http_port.unwrap(), "/blog/fresh/").0, 404);
    }

    // The primary goes away: followers keep serving; it comes back: they converge.
    primary.stop();
    std::thread::sleep(Duration::from_millis(1500));
    for f in &followers {
        assert_eq!(http_get(f.http_port.unwrap(), "/blog/other/").0, 200);
    }
    let primary = Server::binary_listening(&primary_dir, &ssh, &[]);
    commit_file(&primary, &clone, "content/blog/back.md", "+++\ntitle = \"Back again\"\ndate = 2026-04-03\n+++\nYo.\n");
    primary.git_ok(&clone, &["push", "-q", "origin", "main"]);
    for f in &followers {
        let (status, _) = wait_for(f.http_port.unwrap(), "/blog/back/", |s, _| s == 200);
        assert_eq!(status, 200);
        f.assert_repository_sound();
    }
}

/// A work tree with the starter site and `users` as access/users.toml, committed (signed with
/// `sign` if given) and pushed to `remote`.
fn starter_work(remote: &Server, dir: &Path, users: &str, sign: Option<&Path>) -> PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    remote.git_ok(&work, &["init", "-q", "-b", "main"]);
    for (path, text) in site_runtime::starter::FILES {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::create_dir_all(work.join("access")).unwrap();
    std::fs::write(work.join("access/users.toml"), users).unwrap();
    commit_signed(remote, &work, "starter", sign);
    remote.git_ok(&work, &["push", "-q", &remote.url(), "main"]);
    work
}

fn commit_signed(server: &Server, work: &Path, message: &str, key: Option<&Path>) {
    server.git_ok(work, &["add", "-A"]);
    let mut args = vec!["-c", "user.name=T", "-c", "user.email=t@example.org", "-c", "gpg.format=ssh"];
    let signing;
    if let Some(key) = key {
        signing = format!("user.signingkey={}", key.display());
        args.extend(["-c", &signing, "commit", "-q", "-S", "-m", message]);
    } else {
        args.extend(["commit", "-q", "-m", message]);
    }
    server.git_ok(work, &args);
}

fn plain_remote() -> Server {
    Server::in_process(Arc::new(githost::AllowAll), githost::Limits::default())
}

#[test]
fn a_follower_of_a_plain_remote_publishes_only_valid_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = plain_remote();
    let work = starter_work(&remote, tmp.path(), "", None);
    let dir = tmp.path().join("follower");
    let config = follower_config(&dir, remote.port, &remote.key, &remote.data_dir.join("keys/host.pub"), "");
    let follower = start_follower(&dir, &config);
    let http = follower.http_port.unwrap();
    assert_eq!(wait_for(http, "/", |s, _| s == 200).0, 200);

    // Broken front matter: accepted by the plain remote, refused by the follower.
    std::fs::write(work.join("content/broken.md"), "+++\ntitle = \n+++\nOops.\n").unwrap();
    std::fs::write(work.join("content/fine.md"), "+++\ntitle = \"Fine\"\n+++\nFine.\n").unwrap();
    commit_signed(&remote, &work, "broken", None);
    remote.git_ok(&work, &["push", "-q", &remote.url(), "main"]);
    let (_, ready) = wait_for(http, "/readyz", |_, b| b.contains("refused"));
    assert!(ready.contains("was refused") && ready.contains("content/broken.md"), "{ready}");
    assert_eq!(http_get(http, "/fine/").0, 404, "nothing of the bad commit is live");
    assert_eq!(http_get(http, "/").0, 200, "the last good commit keeps serving");

    // Fixed: live.
    std::fs::write(work.join("content/broken.md"), "+++\ntitle = \"Mended\"\n+++\nOk.\n").unwrap();
    commit_signed(&remote, &work, "fixed", None);
    remote.git_ok(&work, &["push", "-q", &remote.url(), "main"]);
    assert_eq!(wait_for(http, "/fine/", |s, _| s == 200).0, 200);
    let (_, ready) = wait_for(http, "/readyz", |_, b| !b.contains("refused"));
    assert!(!ready.contains("refused"), "{ready}");
    follower.assert_repository_sound();
}

#[test]
fn signature_trust_publishes_what_allowed_keys_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = plain_remote();
    let keygen = |name: &str| {
        let key = tmp.path().join(name);
        let out =
            Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&key).output();
        assert!(out.unwrap().status.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap().trim().to_string();
        (key, public)
    };
    let (admin, admin_pub) = keygen("admin");
    let (publisher, publisher_pub) = keygen("publisher");
    let (stranger, _) = keygen("stranger");
    let users = format!(
        "[[user]]\nid = \"ada\"\nroles = [\"admin\"]\nkeys = [\"{admin_pub}\"]\n\
         [[user]]\nid = \"pat\"\nroles = [\"publisher\"]\nkeys = [\"{publisher_pub}\"]\n"
    );
    // The first commit is signed by the administrator the follower knows from its settings.
    let work = starter_work(&remote, tmp.path(), &users, Some(&admin));
    let dir = tmp.path().join("follower");
    let extra = format!("[ssh]\nkeys = [\"{admin_pub}\"]\n");
    let mut config = follower_config(&dir, remote.port, &remote.key, &remote.data_dir.join("keys/host.pub"), &extra);
    let text = std::fs::read_to_string(&config).unwrap() + "trust = \"signatures\"\n";
    std::fs::write(&config, text).unwrap();
    config = config.canonicalize().unwrap();
    let follower = start_follower(&dir, &config);
    let http = follower.http_port.unwrap();
    assert_eq!(wait_for(http, "/", |s, _| s == 200).0, 200);

    let page = |name: &str| format!("+++\ntitle = \"{name}\"\n+++\nBody.\n");
    let push = |work: &Path, force: bool| {
        let mut args = vec!["push", "-q"];
        if force {
            args.push("--force");
        }
        let url = remote.url();
        args.extend([url.as_str(), "main"]);
        remote.git_ok(work, &args);
    };

    // Signed by the publisher, who may change content: live.
    std::fs::write(work.join("content/signed.md"), page("Signed")).unwrap();
    commit_signed(&remote, &work, "signed", Some(&publisher));
    push(&work, false);
    assert_eq!(wait_for(http, "/signed/", |s, _| s == 200).0, 200);
    let good = remote.git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string();

    // Unsigned: not live.
    std::fs::write(work.join("content/unsigned.md"), page("Unsigned")).unwrap();
    commit_signed(&remote, &work, "unsigned", None);
    push(&work, false);
    let (_, ready) = wait_for(http, "/readyz", |_, b| b.contains("refused"));
    assert!(ready.contains("not signed"), "{ready}");
    assert_eq!(http_get(http, "/unsigned/").0, 404);

    // Signed by a key nobody listed: not live.
    remote.git_ok(&work, &["reset", "-q", "--hard", &good]);
    std::fs::write(work.join("content/stranger.md"), page("Stranger")).unwrap();
    commit_signed(&remote, &work, "stranger", Some(&stranger));
    push(&work, true);
    let (_, ready) = wait_for(http, "/readyz", |_, b| b.contains("not listed"));
    assert!(ready.contains("not listed in access/users.toml"), "{ready}");
    assert_eq!(http_get(http, "/stranger/").0, 404);

    // Signed by the publisher, but changing the policies, which only administrators may: not live.
    remote.git_ok(&work, &["reset", "-q", "--hard", &good]);
    std::fs::create_dir_all(work.join("policies")).unwrap();
    std::fs::write(work.join("content/policy-change.md"), page("Policy change")).unwrap();
    std::fs::write(
        work.join("policies/extra.cedar"),
        "@id(\"x\")\nforbid (principal, action, resource) when { false };\n",
    )
    .unwrap();
    commit_signed(&remote, &work, "policy", Some(&publisher));
    push(&work, true);
    let (_, ready) = wait_for(http, "/readyz", |_, b| b.contains("policies/extra.cedar"));
    assert!(ready.contains("policies/extra.cedar"), "{ready}");
    assert_eq!(http_get(http, "/policy-change/").0, 404);
    assert_eq!(http_get(http, "/signed/").0, 200, "the last good commit keeps serving");
}

/// Our Git client pushing to the real server (what the desktop app will do): the server's
/// `remote:` messages reach the caller, and a refusal comes back per ref with its reason.
#[test]
fn our_client_pushes_and_hears_the_server() {
    use githost::client::{
        push, Connection, HostKeyPolicy, PushCommand, PushRequest, RefStatus, RemoteUrl, SshOptions,
    };
    let server = Server::binary_with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    commit_file(&server, &clone, "content/blog/from-client.md", "+++\ntitle = \"From our client\"\n+++\nHi.\n");
    commit_file(&server, &clone, "content/blog/bad.md", "+++\ntitle = \"Bad\"\ndate = \"someday\"\n+++\n");
    let good = rev(&server, &clone, "HEAD~1");
    let bad = rev(&server, &clone, "HEAD");
    let local = Arc::new(githost::Repository::open_or_init("local", clone.join(".git")).unwrap());
    let host_key = HostKeyPolicy::Fingerprint(fingerprint(&server.data_dir.join("keys/ssh_host_ed25519.pub")));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let url = RemoteUrl::parse(&server.url()).unwrap();
        let conn = Connection::connect(&url, &SshOptions::new(&server.key, host_key)).await.unwrap();
        let heard = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = heard.clone();
        let mut request = PushRequest::new(vec![PushCommand::update(
            "refs/heads/main",
            gix::ObjectId::from_hex(good.trim().as_bytes()).unwrap(),
        )]);
        request.messages = Some(Box::new(move |m| sink.lock().unwrap().push_str(m)));
        let out = push::push(&conn, local.clone(), request).await.unwrap();
        assert!(out.all_ok(), "{out:?}");
        assert!(heard.lock().unwrap().contains("published main to http://127.0.0.1:"), "{}", heard.lock().unwrap());
        assert!(out.messages.iter().any(|m| m.starts_with("published main")), "{:?}", out.messages);

        let request = PushRequest::new(vec![PushCommand::update(
            "refs/heads/main",
            gix::ObjectId::from_hex(bad.trim().as_bytes()).unwrap(),
        )]);
        let out = push::push(&conn, local, request).await.unwrap();
        assert!(matches!(&out.refs[0].1, RefStatus::RemoteRejected(r) if r.contains("content/blog/bad.md")), "{out:?}");
        assert!(out.messages.iter().any(|m| m.contains("nothing was stored")), "{:?}", out.messages);
    });
    assert_eq!(http_get(server.http_port.unwrap(), "/blog/from-client/").0, 200);
    server.assert_repository_sound();
}

/// An existing repository whose history was never signed: `trust_from` names the last commit of
/// that history; what comes after it must be signed like any other.
#[test]
fn trust_from_takes_unsigned_history_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = plain_remote();
    let key = tmp.path().join("publisher");
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "p", "-f"]).arg(&key).output();
    assert!(out.unwrap().status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap().trim().to_string();
    let users = format!("[[user]]\nid = \"ada\"\nroles = [\"admin\", \"publisher\"]\nkeys = [\"{public}\"]\n");
    let work = starter_work(&remote, tmp.path(), &users, None);
    std::fs::write(work.join("content/old.md"), "+++\ntitle = \"Old\"\n+++\nUnsigned, before signing began.\n")
        .unwrap();
    commit_signed(&remote, &work, "old history", None);
    remote.git_ok(&work, &["push", "-q", &remote.url(), "main"]);
    let trusted = remote.git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string();

    let dir = tmp.path().join("follower");
    let config = follower_config(&dir, remote.port, &remote.key, &remote.data_dir.join("keys/host.pub"), "");
    let text = std::fs::read_to_string(&config).unwrap()
        + format!("trust = \"signatures\"\ntrust_from = \"{trusted}\"\n").as_str();
    std::fs::write(&config, text).unwrap();
    let follower = start_follower(&dir, &config);
    let http = follower.http_port.unwrap();
    assert_eq!(wait_for(http, "/old/", |s, _| s == 200).0, 200, "the trusted history is live");

    std::fs::write(work.join("content/new.md"), "+++\ntitle = \"New\"\n+++\nUnsigned, after.\n").unwrap();
    commit_signed(&remote, &work, "unsigned after", None);
    remote.git_ok(&work, &["push", "-q", &remote.url(), "main"]);
    let (_, ready) = wait_for(http, "/readyz", |_, b| b.contains("not signed"));
    assert!(ready.contains("not signed"), "{ready}");
    assert_eq!(http_get(http, "/new/").0, 404);
}

/// A site kept on a smart-HTTP host (`git http-backend` behind HTTPS with a token, as GitHub or
/// Gitea serve it): the follower clones it over HTTPS, polls, and publishes what is pushed there.
#[test]
fn a_follower_of_an_https_remote_publishes_what_is_pushed_there() {
    let tmp = tempfile::tempdir().unwrap();
    let hosted = tmp.path().join("hosted");
    std::fs::create_dir_all(&hosted).unwrap();
    let bare = hosted.join("site.git");
    let init = Command::new("git").args(["init", "-q", "--bare", "-b", "main"]).arg(&bare).output().unwrap();
    assert_success(&init, &["git init"]);
    let backend = crate::http_backend::HttpBackend::start(&hosted, "s3cret-token-for-tests");
    let git = |dir: &Path, args: &[&str]| {
        let out = git_command(dir, "false").envs(backend.git_env()).args(args).output().unwrap();
        assert_success(&out, args);
    };
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for (path, text) in site_runtime::starter::FILES {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-q", "-m", "starter"]);
    git(&work, &["push", "-q", &backend.url("site.git"), "main"]);

    let dir = tmp.path().join("follower");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token"), "s3cret-token-for-tests\n").unwrap();
    let config = dir.join("follower.toml");
    std::fs::write(
        &config,
        format!(
            "[follow]\nurl = \"{}\"\ntoken_file = \"token\"\nca_file = \"{}\"\npoll_interval_secs = 1\n",
            backend.url("site.git"),
            backend.ca.display()
        ),
    )
    .unwrap();
    let follower = start_follower(&dir, &config);
    let http = follower.http_port.unwrap();
    assert_eq!(wait_for(http, "/", |s, _| s == 200).0, 200);

    std::fs::write(work.join("content/from-https.md"), "+++\ntitle = \"Over HTTPS\"\n+++\nHello.\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["-c", "user.name=T", "-c", "user.email=t@example.org", "commit", "-q", "-m", "new page"]);
    git(&work, &["push", "-q", &backend.url("site.git"), "main"]);
    let (status, body) = wait_for(http, "/from-https/", |s, _| s == 200);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Over HTTPS"), "{body}");
    let metrics = http_get(http, "/readyz").2;
    assert!(!metrics.contains("follow"), "no complaint: {metrics}");
    follower.assert_repository_sound();
    // Every request carried the token, over TLS, and only Git requests were made.
    let seen = backend.seen();
    assert!(seen.iter().all(|s| s.authorized && s.path.starts_with("/site.git/")), "{seen:?}");
}
