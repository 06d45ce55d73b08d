//! The edge (Pingora) in front of the site, end to end against the real binary: validation
//! answered with the right status before the site sees anything, security headers and request
//! ids, the preview behind signed links decided by policy, the rate limit tripping and
//! recovering, metrics on the admin listener, and a graceful shutdown that loses no request.

use crate::support::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A settings file in `dir` for `demo --config`.
fn settings_file(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("settings.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn bad_requests_are_answered_at_the_edge_with_the_right_status() {
    let server = Server::binary_with(&[]);
    let port = server.http_port.unwrap();
    let (status, head, _) = http_get(port, "/about/");
    assert_eq!(status, 200);
    for (name, value) in [("x-content-type-options", "nosniff"), ("x-frame-options", "SAMEORIGIN")] {
        assert_eq!(header(&head, name), Some(value), "{head}");
    }
    assert!(header(&head, "content-security-policy").is_some_and(|c| c.contains("default-src 'self'")));
    assert_eq!(header(&head, "x-request-id").map(str::len), Some(16), "{head}");
    assert!(header(&head, "strict-transport-security").is_none(), "no HSTS without TLS");

    for (path, status) in [("/a/%2e%2e/b", 400), ("/static/..%2f..%2fetc/passwd", 400), ("/a%00b", 400), ("/a\\b", 400)]
    {
        assert_eq!(http_get(port, path).0, status, "{path}");
    }
    let raw = |request: &str| http_raw(port, request).0;
    assert_eq!(raw("DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 405);
    assert_eq!(raw("BREW / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 501);
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "a".repeat(5000));
    assert_eq!(raw(&long), 414);
    let many: String = (0..80).map(|i| format!("X-Filler-{i}: 1\r\n")).collect();
    assert_eq!(raw(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n")), 431);
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nConnection: close\r\n\r\n", "c".repeat(20_000));
    let status = raw(&big);
    assert!(status == 431 || status == 400, "an oversized header is refused ({status})");
    let body = "m".repeat(70_000);
    let post = format!(
        "POST /contact/send HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw(&post), 413);
    // The site keeps serving.
    assert_eq!(http_get(port, "/blog/").0, 200);
}

#[test]
fn the_preview_needs_a_signed_link_whose_user_may_read_it() {
    let preview_port = free_port();
    let server = Server::binary_with(&["--preview-listen", &format!("127.0.0.1:{preview_port}")]);
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    server.git_ok(&clone, &["checkout", "-q", "-b", "admin"]);
    commit_file(&server, &clone, "content/staged.md", "+++\ntitle = \"Staged\"\n+++\nNot yet live.\n");
    server.git_ok(&clone, &["push", "-q", "origin", "admin"]);

    let (status, _, body) = http_get(preview_port, "/staged/");
    assert_eq!(status, 401, "{body}");
    let base = format!("http://127.0.0.1:{preview_port}");
    let link = server.preview_link("demo", &base);
    let path = link.strip_prefix(&base).unwrap();
    let (status, head, _) = http_get(preview_port, path);
    assert_eq!(status, 303, "{head}");
    assert_eq!(header(&head, "location"), Some("/"));
    let cookie = header(&head, "set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let cookie = format!("Cookie: {}", cookie.split(';').next().unwrap());
    let (status, _, page) = http_get_with(preview_port, "/staged/", &[&cookie]);
    assert_eq!(status, 200);
    assert!(page.contains("Not yet live."));
    assert_eq!(http_get(server.http_port.unwrap(), "/staged/").0, 404, "the live site does not have it");

    // A user the policies do not let read the preview, and a forged token.
    let stranger = server.preview_link("stranger", &base);
    let (status, _, body) = http_get(preview_port, stranger.strip_prefix(&base).unwrap());
    assert_eq!(status, 403);
    assert!(body.contains("denied: stranger (no role) may not read branch admin"), "{body}");
    let forged = path.replace("demo", "root");
    assert_eq!(http_get(preview_port, &forged).0, 403);
    let tampered = cookie.replace("demo", "root");
    assert_eq!(http_get_with(preview_port, "/staged/", &[&tampered]).0, 403);
}

#[test]
fn the_rate_limit_trips_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let config = settings_file(tmp.path(), "[ingress.rate_limit]\nrequests_per_second = 20\n");
    let server = Server::binary_with(&["--config", &config]);
    let port = server.http_port.unwrap();
    let statuses: Vec<(u16, String)> = (0..60).map(|_| http_get(port, "/about/")).map(|(s, h, _)| (s, h)).collect();
    let limited: Vec<&(u16, String)> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "60 requests at once trip a limit of 20/s");
    assert_eq!(header(&limited[0].1, "retry-after"), Some("1"));
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 429));
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(http_get(port, "/about/").0, 200, "the limit recovers");
}

#[test]
fn metrics_are_served_on_the_admin_listener_only() {
    let metrics_port = free_port();
    let server = Server::binary_with(&["--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    let port = server.http_port.unwrap();
    http_get(port, "/about/");
    http_get(port, "/no-such-page/");
    http_get(port, "/a/%2e%2e/b");
    let (status, _, text) = http_get(metrics_port, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "whispercms_http_requests_total{status=\"200\"} ",
        "whispercms_http_requests_total{status=\"404\"} 1",
        "whispercms_http_refused_total 1",
        "whispercms_http_rate_limited_total 0",
        "whispercms_http_request_duration_seconds_count ",
        "whispercms_snapshot_info{branch=\"main\",commit=\"",
        "whispercms_last_publish_timestamp_seconds{branch=\"main\"} ",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(http_get(port, "/metrics").0, 404, "not on the public listener");
}

#[test]
fn a_graceful_shutdown_finishes_requests_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let config = settings_file(tmp.path(), "[extensions]\nmax_call_ms = 5000\nmax_operations = 1000000000\n");
    let mut server = Server::binary_with(&["--config", &config]);
    let port = server.http_port.unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    let site = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), site.replace("plugins = [", "plugins = [\"slow\", ")).unwrap();
    commit_file(
        &server,
        &clone,
        "plugins/slow/plugin.toml",
        "name = \"slow\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/slow\"\nhandler = \"slow\"\n",
    );
    commit_file(
        &server,
        &clone,
        "plugins/slow/main.rhai",
        "fn slow(request) { let t = timestamp(); while t.elapsed < 1.0 {} #{ body: \"finished\" } }\n",
    );
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let in_flight: Vec<_> = (0..3).map(|_| std::thread::spawn(move || http_get(port, "/slow"))).collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let status = server.terminate();
    for request in in_flight {
        let (status, _, body) = request.join().unwrap();
        assert_eq!((status, body.as_str()), (200, "finished"), "no request in flight is lost");
    }
    assert!(status.success(), "exit status {status:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no longer accepting");
}
