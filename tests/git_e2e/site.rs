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
    assert!(stderr(&out).contains("remote: published admin"), "{}", stderr(&out));
    assert_eq!(http_get(preview_port, "/draft-idea/").0, 200);
    assert_eq!(http_get(http, "/draft-idea/").0, 404, "the live site is unchanged");
}
