//! The public site end to end: the demo's starter site served over HTTP, and a `git push` that
//! changes it live.

use crate::support::*;

#[test]
fn the_demo_serves_its_starter_site() {
    let server = Server::binary_with(&[]);
    let http = server.http_port.unwrap();
    let (status, _, body) = http_get(http, "/");
    assert_eq!(status, 200);
    assert!(body.contains("Whisper Notes") && body.contains("Safe by default"), "{body}");
    let (status, head, _) = http_get(http, "/images/whisper.svg");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("content-type: image/svg+xml"), "{head}");
    let (_, _, tags) = http_get(http, "/tags/git/");
    assert!(tags.contains("Hello, world") && tags.contains("Writing offline"));
    assert_eq!(http_get(http, "/readyz").0, 200);
    server.assert_repository_sound();
}

/// An HTTP address another process holds stops the start at once, saying which: Pingora alone
/// retried it for 30 s, then ended the edge's thread while the rest of the server ran on (pushes
/// taken, no page served, and the demo said it was running).
#[test]
fn a_taken_http_address_stops_the_start_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whispercms-server"))
        .args(["demo", "--empty", "--data-dir"])
        .arg(tmp.path().join("data"))
        .args(["--ssh-listen", "127.0.0.1:0", "--http-listen", &addr])
        .env("WHISPERCMS_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against a server that never ends, not a measure of speed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the server is still running with its HTTP address taken");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains(&format!("listening on {addr}")) && stderr.contains("in use"), "{stderr}");
    assert!(!stdout.contains("is running") && !stdout.contains("ssh listening"), "{stdout}");
}

#[test]
fn a_push_to_main_is_live_and_reported() {
    let server = Server::binary_with(&[]);
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    commit_file(
        &server,
        &clone,
        "content/blog/fresh.md",
        "+++\ntitle = \"Fresh news\"\ndate = 2026-04-01\n+++\nJust pushed.\n",
    );
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push"]);
    let err = stderr(&out);
    assert!(err.contains("remote: published main to http://127.0.0.1:"), "{err}");
    assert!(err.contains("(updated: 1 page, 0 removed)"), "{err}");
    let (status, _, body) = http_get(http, "/blog/fresh/");
    assert_eq!(status, 200);
    assert!(body.contains("Just pushed."), "{body}");
    // Other branches are stored, not published.
    server.git_ok(&clone, &["checkout", "-q", "-b", "preview/x"]);
    commit_file(&server, &clone, "content/blog/hidden.md", "+++\ntitle = \"Hidden\"\n+++\nx\n");
    server.git_ok(&clone, &["push", "-q", "origin", "preview/x"]);
    assert_eq!(http_get(http, "/blog/hidden/").0, 404);
    server.assert_repository_sound();
}

#[test]
fn the_admin_branch_is_served_only_on_the_preview_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let preview_port = probe.local_addr().unwrap().port();
    drop(probe);
    let preview_arg = format!("127.0.0.1:{preview_port}");
    let server = Server::binary_with(&["--preview-listen", &preview_arg]);
    let http = server.http_port.unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    server.git_ok(&clone, &["checkout", "-q", "-b", "admin"]);
    commit_file(&server, &clone, "content/draft-idea.md", "+++\ntitle = \"Idea\"\n+++\nStaged.\n");
    let out = server.git_out(&clone, &["push", "origin", "admin"]);
    let said = format!("remote: published admin to the preview at http://127.0.0.1:{preview_port}/ in ");
    assert!(stderr(&out).contains(&said), "{}", stderr(&out));
    // The preview needs a signed link (see edge.rs); with it, the staged page is there.
    let link = server.preview_link("demo", &format!("http://127.0.0.1:{preview_port}"));
    let path = link.split_once(&format!("{preview_port}")).unwrap().1;
    let (status, head, _) = http_get(preview_port, path);
    assert_eq!(status, 303, "{head}");
    let cookie = head.lines().find_map(|l| l.strip_prefix("set-cookie: ")).unwrap().split(';').next().unwrap();
    assert_eq!(http_get_with(preview_port, "/draft-idea/", &[&format!("Cookie: {cookie}")]).0, 200);
    assert_eq!(http_get(http, "/draft-idea/").0, 404, "the live site is unchanged");
}

#[test]
fn a_push_with_broken_files_is_refused_with_every_problem_and_nothing_stored() {
    let server = Server::binary_with(&[]);
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    let before = server.server_refs();
    std::fs::write(clone.join("site.toml"), "title = \"x\"\ntheme = \"fancy\"\nbase_urll = \"typo\"\n").unwrap();
    std::fs::create_dir_all(clone.join("themes/fancy/templates")).unwrap();
    std::fs::write(clone.join("themes/fancy/theme.toml"), "name = \"fancy\"\ncolour = \"red\"\n").unwrap();
    std::fs::write(clone.join("themes/fancy/templates/page.html"), "<h1>{{ page.title }</h1>\n").unwrap();
    std::fs::write(clone.join("content/blog/bad.md"), "+++\ntitle = \"Bad\"\ndate = \"someday\"\n+++\nx\n").unwrap();
    std::fs::write(clone.join("content/notes.md"), "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaA==\n").unwrap();
    server.git_ok(&clone, &["add", "-A"]);
    server.git_ok(&clone, &["commit", "-q", "-m", "many mistakes"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    for expected in [
        "remote: refs/heads/main: 5 problem(s), nothing was stored:",
        "site.toml: line 3: unknown field `base_urll`, expected one of `title`",
        "themes/fancy/theme.toml: line 2: unknown field `colour`",
        "content/blog/bad.md: date: \"someday\" is not a date",
        "content/notes.md: looks like a private key",
        "! [remote rejected] main -> main (",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(err.contains("themes/fancy/templates/page.html: line 1: syntax error: unexpected `}`"), "{err}");
    assert_eq!(server.server_refs(), before, "nothing moved");
    assert_eq!(http_get(http, "/about/").0, 200, "the site keeps serving");

    // The same content on a branch that is not a site is only stored.
    let out = server.git_out(&clone, &["push", "origin", "HEAD:refs/heads/scratch"]);
    assert_success(&out, &["push scratch"]);
    server.assert_repository_sound();
}

#[test]
fn keys_listed_in_access_users_toml_on_main_can_connect() {
    let server = Server::binary_with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let (key, alice_ssh) = server.new_user_key(tmp.path(), "alice");
    let as_alice =
        |name: &str| git_command(tmp.path(), &alice_ssh).args(["clone", "-q", &server.url(), name]).output().unwrap();
    assert!(!as_alice("before").status.success(), "alice is not a user yet");

    let clone = server.clone(tmp.path(), "site", &[]);
    let users = std::fs::read_to_string(clone.join("access/users.toml")).unwrap();
    assert!(users.contains("id = \"demo\""), "the starter site lists the demo key: {users}");
    // A broken users file is refused like any other broken file.
    std::fs::write(
        clone.join("access/users.toml"),
        format!("{users}\n[[user]]\nid = \"alice\"\nroles = [\"wizard\"]\n"),
    )
    .unwrap();
    server.git_ok(&clone, &["commit", "-qam", "broken"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(stderr(&out).contains("access/users.toml: user \"alice\": unknown role \"wizard\""), "{}", stderr(&out));
    server.git_ok(&clone, &["reset", "-q", "--hard", "HEAD~1"]);

    let alice_pub = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let added = format!(
        "{users}\n[[user]]\nid = \"alice\"\nname = \"Alice\"\nroles = [\"editor\"]\nkeys = [\"{}\"]\n",
        alice_pub.trim()
    );
    std::fs::write(clone.join("access/users.toml"), added).unwrap();
    server.git_ok(&clone, &["commit", "-qam", "add alice"]);
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let out = as_alice("after");
    assert_success(&out, &["clone as alice"]);
    server.assert_repository_sound();
}

#[test]
fn roles_decide_what_each_user_may_push() {
    let server = Server::binary_with(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let (key, alice_ssh) = server.new_user_key(tmp.path(), "alice");
    // The admin (demo key) makes alice an editor.
    let admin = server.clone(tmp.path(), "admin-clone", &[]);
    let users = std::fs::read_to_string(admin.join("access/users.toml")).unwrap();
    let alice_pub = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(
        admin.join("access/users.toml"),
        format!("{users}\n[[user]]\nid = \"alice\"\nroles = [\"editor\"]\nkeys = [\"{}\"]\n", alice_pub.trim()),
    )
    .unwrap();
    server.git_ok(&admin, &["commit", "-qam", "alice is an editor"]);
    server.git_ok(&admin, &["push", "-q", "origin", "main"]);

    let alice = |dir: &std::path::Path, args: &[&str]| git_command(dir, &alice_ssh).args(args).output().unwrap();
    assert_success(&alice(tmp.path(), &["clone", "-q", &server.url(), "alice-clone"]), &["clone"]);
    let work = tmp.path().join("alice-clone");
    alice(&work, &["checkout", "-q", "-b", "admin"]);
    commit_file(&server, &work, "content/blog/by-alice.md", "+++\ntitle = \"By Alice\"\n+++\nHi.\n");
    assert_success(&alice(&work, &["push", "origin", "admin"]), &["editor pushes content to admin"]);

    std::fs::write(work.join("site.toml"), "title = \"Alice's site\"\n").unwrap();
    commit_file(&server, &work, "themes/x/theme.toml", "name = \"x\"\n");
    let out = alice(&work, &["push", "origin", "admin"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("remote: denied: alice (editor) may not change site.toml on admin (no policy permits it)"),
        "{err}"
    );
    assert!(err.contains("remote: denied: alice (editor) may not change themes/x/theme.toml on admin"), "{err}");
    assert!(err.contains("! [remote rejected] admin -> admin (denied: alice (editor)"), "{err}");

    let out = alice(&work, &["push", "origin", "HEAD~1:main"]);
    assert!(stderr(&out).contains("denied: alice (editor) may not push branch main"), "{}", stderr(&out));
    server.assert_repository_sound();
}
