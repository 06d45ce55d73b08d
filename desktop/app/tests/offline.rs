//! Offline is normal: a publish asked for while the server is down waits on this computer, the
//! status line says so, and it goes out by itself once the server answers again — against a
//! real `whispercms-server demo` stopped and started on the same port.

mod support;

use desktop_app::App;
use support::{free_port, get, http, json, post, text, DemoServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_asked_for_offline_goes_out_when_the_server_is_back() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("server");
    let port = free_port();
    let server = DemoServer::start(&data, port);

    // The wizard: the server's key asked for, then the site cloned.
    let app = App::new(tmp.path().join("config/desktop.toml")).unwrap();
    let remote = format!("ssh://git@{}/site.git", server.ssh);
    let asked = json(&app.handle(post("/api/host-key", &[("remote", &remote)])).await);
    assert_eq!(asked["fill"]["fingerprint"], server.fingerprint.as_str(), "{asked}");
    let key = data.join("keys/demo_ed25519").display().to_string();
    let folder = tmp.path().join("site").display().to_string();
    let setup = [
        ("how", "clone"),
        ("remote", remote.as_str()),
        ("key", key.as_str()),
        ("fingerprint", server.fingerprint.as_str()),
        ("folder", folder.as_str()),
        ("name", "Ada"),
    ];
    assert_eq!(json(&app.handle(post("/api/setup", &setup)).await)["go"], "/pages");

    // The server goes away; an edit is published anyway.
    drop(server);
    json(&app.handle(post("/api/page", &[("path", "content/about.md"), ("title", "Written on a train")])).await);
    let answer = json(&app.handle(post("/api/publish", &[("branch", "main"), ("message", "Train edit")])).await);
    assert!(answer["html"].as_str().unwrap().contains("will publish by themselves"), "{answer}");
    assert!(answer["status"].as_str().unwrap().starts_with("Offline — 1 save(s)"), "{answer}");
    assert_eq!(app.retry_pending().await, None, "still offline");

    // Back: the next retry publishes it, and the site serves it.
    let server = DemoServer::start(&data, port);
    let said = app.retry_pending().await.expect("something was tried");
    assert!(said.starts_with("Back online: your saves were published"), "{said}");
    let (status, page) = http(server.web_port, "GET", "/about/", None);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Written on a train"));
    assert_eq!(app.retry_pending().await, None, "nothing is waiting any more");
    // The status line says it once, then the usual.
    let first = text(&app.handle(get("/api/status")).await);
    assert!(first.contains("Back online"), "{first}");
    let then = text(&app.handle(get("/api/status")).await);
    assert!(then.contains("In sync"), "{then}");
}
