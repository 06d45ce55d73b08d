//! The edge (Pingora) in front of the site, end to end against the real binary: validation
//! answered with the right status before the site sees anything, security headers and request
//! ids, the preview behind signed links decided by policy, the rate limit tripping and
//! recovering, metrics on the admin listener, and a graceful shutdown that loses no request.

use crate::support::*;

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A TCP connection to the edge whose reads give up after `secs`.
fn raw_connection(port: u16, secs: u64) -> std::net::TcpStream {
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(secs))).unwrap();
    conn
}

/// The response head curl prints for `url` (trusting `cacert`), with curl's `extra` options.
fn curl_head(extra: &[&str], cacert: &std::path::Path, url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "20", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(cacert)
        .args(extra)
        .arg(url)
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out))
}

/// A settings file in `dir` for `demo --config`.
/// The demo server with `settings` as its settings file (written into `dir`).
fn server_with(dir: &std::path::Path, settings: &str) -> Server {
    let path = dir.join("settings.toml");
    std::fs::write(&path, settings).unwrap();
    Server::binary_with(&["--config", &path.display().to_string()])
}

/// The edge's two HTTP/1 servers: hyper's codec (the default) and Pingora's own session.
const HTTP1_SERVERS: [&str; 2] = ["hyper", "pingora"];

/// Run `check` against a server of each HTTP/1 kind, its `[ingress]` settings given the extra
/// lines: `check(kind, server, a temporary directory of its own)`.
fn on_each_http1_server(ingress: &str, check: impl Fn(&str, &Server, &std::path::Path)) {
    for http1 in HTTP1_SERVERS {
        let tmp = tempfile::tempdir().unwrap();
        let server = server_with(tmp.path(), &format!("[ingress]\nhttp1 = \"{http1}\"\n{ingress}"));
        check(http1, &server, tmp.path());
    }
}

#[test]
fn bad_requests_are_answered_at_the_edge_with_the_right_status() {
    on_each_http1_server("", |_, server, _| {
        bad_requests_are_refused(server.http_port.unwrap());
    });
}

fn bad_requests_are_refused(port: u16) {
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
    let server = server_with(tmp.path(), "[ingress.rate_limit]\nrequests_per_second = 20\n");
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
    // A request head hyper's parser refuses (no colon in a header line) is counted too.
    assert_eq!(http_raw(port, "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n").0, 400);
    // (Counted as its connection ends, which the client may see a moment earlier.)
    let text = (0..50)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let (status, _, text) = http_get(metrics_port, "/metrics");
            assert_eq!(status, 200);
            text
        })
        .find(|text| text.contains("whispercms_http_refused_total 2"))
        .unwrap_or_else(|| http_get(metrics_port, "/metrics").2);
    for line in [
        "whispercms_http_requests_total{status=\"200\"} ",
        "whispercms_http_requests_total{status=\"404\"} 1",
        "whispercms_http_refused_total 2",
        "whispercms_http_rate_limited_total 0",
        // Every request above was answered before its client read the answer.
        "whispercms_http_requests_in_flight 0\n",
        "whispercms_http_request_duration_seconds_count ",
        "whispercms_snapshot_info{branch=\"main\",commit=\"",
        "whispercms_last_publish_timestamp_seconds{branch=\"main\"} ",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(http_get(port, "/metrics").0, 404, "not on the public listener");
}

/// Limits that let the slow plugin take its second.
const SLOW_PLUGIN_LIMITS: &str = "[extensions]\nmax_call_ms = 5000\nmax_operations = 1000000000\n";

/// Push a plugin whose route `/slow` takes a second to answer "finished".
fn push_slow_plugin(server: &Server, tmp: &std::path::Path) {
    let clone = server.clone(tmp, "site", &[]);
    let site = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), site.replace("plugins = [", "plugins = [\"slow\", ")).unwrap();
    commit_file(
        server,
        &clone,
        "plugins/slow/plugin.toml",
        "name = \"slow\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/slow\"\nhandler = \"slow\"\n",
    );
    commit_file(
        server,
        &clone,
        "plugins/slow/main.rhai",
        "fn slow(request) { let t = timestamp(); while t.elapsed < 1.0 {} #{ body: \"finished\" } }\n",
    );
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
}

#[test]
fn a_client_leaving_before_its_answer_is_counted_once_and_not_left_in_flight() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let metrics_port = free_port();
    let settings = tmp.path().join("settings.toml");
    std::fs::write(&settings, SLOW_PLUGIN_LIMITS).unwrap();
    let server = Server::binary_with(&[
        "--config",
        &settings.display().to_string(),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics_port}"),
    ]);
    push_slow_plugin(&server, tmp.path());
    let mut conn = raw_connection(server.http_port.unwrap(), 5);
    conn.write_all(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(conn);
    let metrics = || http_get(metrics_port, "/metrics").2;
    let text = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            metrics()
        })
        .find(|text| text.contains("whispercms_http_requests_total{status=\"499\"} 1\n"))
        .unwrap_or_else(metrics);
    assert!(text.contains("whispercms_http_requests_total{status=\"499\"} 1\n"), "{text}");
    assert!(text.contains("whispercms_http_requests_in_flight 0\n"), "{text}");
    assert!(!text.contains("status=\"200\""), "counted once: {text}");
}

#[test]
fn a_graceful_shutdown_finishes_requests_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = server_with(tmp.path(), SLOW_PLUGIN_LIMITS);
    let port = server.http_port.unwrap();
    push_slow_plugin(&server, tmp.path());
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

#[test]
fn a_graceful_shutdown_lets_an_answer_being_sent_finish() {
    use std::io::{Read, Write};
    // 8 MiB: more than the kernel's socket buffers hold (4 MiB to send at most), so the server is
    // still sending when it is told to stop.
    let big: String = (0..8 << 20).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let tmp = tempfile::tempdir().unwrap();
    let mut server = server_with(tmp.path(), "");
    let port = server.http_port.unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    commit_file(&server, &clone, "static/files/big.txt", &big);
    assert_success(&server.git_out(&clone, &["push", "origin", "main"]), &["push"]);
    // A client with a small receive window, reading slowly.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
    let mut conn: std::net::TcpStream = socket.into();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    conn.write_all(b"GET /files/big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = vec![0; 4096];
    let n = conn.read(&mut answer).unwrap();
    answer.truncate(n);
    let stopping = std::thread::spawn(move || server.terminate());
    std::thread::sleep(std::time::Duration::from_millis(500));
    conn.read_to_end(&mut answer).unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answer[..split]));
    assert!(
        answer[split..] == *big.as_bytes(),
        "the whole answer arrives: {} of {} bytes",
        answer.len() - split,
        big.len()
    );
    assert!(stopping.join().unwrap().success());
}

#[test]
fn a_graceful_shutdown_does_not_wait_for_a_half_sent_first_request() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let mut server = server_with(tmp.path(), "[ingress]\nshutdown_timeout_secs = 60\n");
    let mut conn = raw_connection(server.http_port.unwrap(), 5);
    conn.write_all(b"GET /about/ HTTP/1.1\r\nHost: 127.").unwrap();
    // (Time for the server to read the half head.)
    std::thread::sleep(std::time::Duration::from_millis(200));
    let stopping = std::thread::spawn(move || server.terminate());
    // The connection is closed at once, not held until the shutdown timeout (60 s) or the
    // client's 30 s to finish its head: the read ends before its own 5 s timeout would fail it.
    let mut rest = Vec::new();
    let closed = conn.read_to_end(&mut rest).map(|_| rest.is_empty()).unwrap_or(false);
    assert!(closed, "the half-sent connection is still open, or was answered: {rest:?}");
    assert!(stopping.join().unwrap().success());
}

#[test]
fn tls_serves_https_with_hsts() {
    let tmp = tempfile::tempdir().unwrap();
    let gen = std::process::Command::new("openssl")
        .current_dir(tmp.path())
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .output()
        .unwrap();
    assert_success(&gen, &["openssl req"]);
    let settings = tmp.path().join("settings.toml");
    std::fs::write(&settings, "[ingress]\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n").unwrap();
    let metrics_port = free_port();
    let server = Server::binary_with(&[
        "--config",
        &settings.display().to_string(),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics_port}"),
    ]);
    let port = server.http_port.unwrap();
    let url = format!("https://127.0.0.1:{port}/about/");
    let cacert = tmp.path().join("cert.pem");
    // HTTP/1.1, and HTTP/2 for a client that offers it (ALPN), with the same headers.
    for (option, status_line) in [("--http1.1", "HTTP/1.1 200"), ("--http2", "HTTP/2 200")] {
        let head = curl_head(&[option], &cacert, &url);
        assert!(head.starts_with(status_line), "{option}: {head}");
        assert_eq!(header(&head, "strict-transport-security"), Some("max-age=31536000"), "{head}");
        assert!(header(&head, "x-request-id").is_some(), "{head}");
    }
    // Plain HTTP on the TLS port gets no page.
    let plain = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://127.0.0.1:{port}/about/"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000", "no HTTP answer at all");
    // That failed handshake is counted (Pingora's ERROR line for it quieted to one a minute).
    let counted = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("whispercms_tls_handshake_failures_total "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let failures = (0..50)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            counted(&http_get(metrics_port, "/metrics").2)
        })
        .find(|n| *n >= 1);
    assert!(failures.is_some(), "{}", http_get(metrics_port, "/metrics").2);
}

/// A TLS client (rustls) trusting `roots`, on one connection to 127.0.0.1:`port` as `localhost`.
fn tls_connect(
    roots: &rustls::RootCertStore,
    port: u16,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// One keep-alive `GET path` on an open connection: the status line and the body.
fn get_on(stream: &mut (impl std::io::Read + std::io::Write), path: &str) -> (String, String) {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the connection closed in the head");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let length: usize = header(&head, "content-length").expect("a content-length").parse().unwrap();
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (head.lines().next().unwrap_or_default().to_string(), String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn sighup_serves_a_renewed_certificate_to_new_connections_while_open_ones_finish() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["old", "new"] {
        let gen = std::process::Command::new("openssl")
            .current_dir(tmp.path())
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-keyout", &format!("{name}.key"), "-out", &format!("{name}.pem"), "-days", "1"])
            .args(["-subj", &format!("/CN={name}"), "-addext", "subjectAltName=DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"]) // a leaf: the client trusts it as it is
            .output()
            .unwrap();
        assert_success(&gen, &["openssl req"]);
    }
    let der = |name: &str| {
        let pem = std::fs::read(tmp.path().join(format!("{name}.pem"))).unwrap();
        let cert = rustls_pemfile::certs(&mut pem.as_slice()).next().unwrap().unwrap();
        cert
    };
    let (old, new) = (der("old"), der("new"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(old.clone()).unwrap();
    roots.add(new.clone()).unwrap();
    let install = |name: &str| {
        std::fs::copy(tmp.path().join(format!("{name}.pem")), tmp.path().join("cert.pem")).unwrap();
        std::fs::copy(tmp.path().join(format!("{name}.key")), tmp.path().join("key.pem")).unwrap();
    };
    install("old");
    let settings = tmp.path().join("settings.toml");
    std::fs::write(&settings, "[ingress]\ntls = { cert = \"cert.pem\", key = \"key.pem\" }\n").unwrap();
    let log = tmp.path().join("server.log");
    let server = Server::binary_with_logging(&["--config", &settings.display().to_string()], &log);
    let port = server.http_port.unwrap();
    // Waits until the server logged `line` for the `n`-th time (a reload is done, not just asked).
    let logged = |line: &str, n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(&log).unwrap_or_default().matches(line).count() < n {
            assert!(std::time::Instant::now() < deadline, "the server never logged {line:?} ({n})");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };

    let mut open = tls_connect(&roots, port);
    let request = |s: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>| get_on(s, "/about/");
    let (status, body) = request(&mut open);
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert_eq!(open.conn.peer_certificates().unwrap()[0], old);

    // The certificate is renewed on disk; SIGHUP; new connections get it …
    install("new");
    server.signal("HUP");
    logged("reloaded the TLS certificate", 1);
    let mut fresh = tls_connect(&roots, port);
    assert_eq!(request(&mut fresh).0, "HTTP/1.1 200 OK");
    assert_eq!(fresh.conn.peer_certificates().unwrap()[0], new, "a new connection gets the renewed certificate");
    // … while the connection opened before finishes its next request with the old one.
    let (status, body) = request(&mut open);
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("About"), "{body}");
    assert_eq!(open.conn.peer_certificates().unwrap()[0], old);

    // A broken renewal keeps the certificate in use.
    std::fs::write(tmp.path().join("cert.pem"), "not a certificate").unwrap();
    server.signal("HUP");
    logged("TLS certificate not reloaded", 1);
    let mut after = tls_connect(&roots, port);
    assert_eq!(request(&mut after).0, "HTTP/1.1 200 OK");
    assert_eq!(after.conn.peer_certificates().unwrap()[0], new);
}

#[test]
fn a_theme_extends_the_content_security_policy_and_bad_sources_are_refused() {
    let server = Server::binary_with(&[]);
    let port = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    let base = http_get(port, "/about/").1;
    let base = header(&base, "content-security-policy").unwrap().to_string();
    assert!(!base.contains("font-src"), "{base}");

    let config = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), format!("theme = \"cdn\"\n{config}")).unwrap();
    std::fs::create_dir_all(clone.join("themes/cdn")).unwrap();
    let manifest = "name = \"cdn\"\n\n[content_security_policy]\nfont-src = [\"https://fonts.gstatic.com\"]\n\
                    img-src = [\"https://cdn.example.com\"]\n";
    commit_file(&server, &clone, "themes/cdn/theme.toml", manifest);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push theme"]);
    let (status, head, _) = http_get(port, "/about/");
    assert_eq!(status, 200, "{head}");
    let csp = header(&head, "content-security-policy").unwrap();
    assert!(csp.contains("font-src 'self' https://fonts.gstatic.com"), "{csp}");
    assert!(csp.contains("img-src 'self' data: https://cdn.example.com"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "the rest stays as it was: {csp}");
    assert_eq!(head.to_ascii_lowercase().matches("content-security-policy:").count(), 1, "{head}");

    // A source that smuggles in a directive is refused at push, with its line.
    let hostile = format!("{manifest}script-src = [\"https://a.example.com; script-src *\"]\n");
    commit_file(&server, &clone, "themes/cdn/theme.toml", &hostile);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("themes/cdn/theme.toml: line 6: content_security_policy: script-src: source \"https://a.example.com; script-src *\" may not contain"),
        "{err}"
    );
    assert_eq!(header(&http_get(port, "/about/").1, "content-security-policy"), Some(csp), "unchanged");
}

#[test]
fn a_client_trickling_its_request_header_or_idling_is_cut_off() {
    on_each_http1_server("client_timeout_secs = 1\n", |_, server, _| {
        trickling_and_idle_clients_are_cut_off(server.http_port.unwrap());
    });
}

fn trickling_and_idle_clients_are_cut_off(port: u16) {
    use std::io::{Read, Write};
    let mut conn = raw_connection(port, 3);
    // One byte every 200 ms: every single read comes quickly, the header never completes.
    let header = b"GET /about/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in header.iter().take(15) {
        if conn.write_all(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => assert!(!String::from_utf8_lossy(&rest).contains(" 200 "), "answered: {rest:?}"),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the connection is still open after trickling 3 s with a 1 s header timeout: {e}"
        ),
    }
    // A client that sends its request promptly is served.
    assert_eq!(http_get(port, "/about/").0, 200);
    // A keep-alive connection left idle is closed after the same time.
    let conn = raw_connection(port, 5);
    let mut writer = conn.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(conn);
    writer.write_all(b"GET /about/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    assert!(read_response(&mut reader).0.starts_with("HTTP/1.1 200"));
    // (Within the connection's 5 s read timeout, or the read fails.)
    let mut rest = Vec::new();
    let closed = reader.read_to_end(&mut rest).map(|_| rest.is_empty()).unwrap_or(false);
    assert!(closed, "the idle connection is closed, nothing more sent: {rest:?}");
}

#[test]
fn connections_beyond_the_per_address_cap_are_closed() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with(tmp.path(), "[ingress]\nmax_connections_per_ip = 2\n");
    let port = server.http_port.unwrap();
    // Two open connections fill the cap (each answered once, so both are surely counted). The
    // connections the harness made to see the server up may still be counted for a moment after
    // they closed (the full run once saw the second of these reset): a refused one is tried
    // again.
    let answered = || {
        use std::io::BufRead;
        let conn = raw_connection(port, 5);
        let mut writer = conn.try_clone().unwrap();
        let mut reader = std::io::BufReader::new(conn);
        writer.write_all(b"GET /about/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        if !reader.fill_buf().is_ok_and(|b| !b.is_empty()) {
            return None;
        }
        assert!(read_response(&mut reader).0.starts_with("HTTP/1.1 200"));
        Some((writer, reader))
    };
    let idle: Vec<_> = (0..2)
        .map(|_| {
            (0..50)
                .find_map(|_| {
                    answered().or_else(|| {
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        None
                    })
                })
                .expect("a connection within the cap is served")
        })
        .collect();
    let mut third = raw_connection(port, 5);
    let mut buf = Vec::new();
    match third.read_to_end(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "closed without an answer"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "still open: {e}"),
    }
    // Closing one frees its place.
    drop(idle);
    let served = (0..50).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut conn = raw_connection(port, 5);
        let mut answer = String::new();
        conn.write_all(b"GET /about/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").is_ok()
            && conn.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    });
    assert!(served, "a new connection is served once the others closed");
}

#[test]
fn a_client_expecting_100_continue_is_told_to_send_its_body() {
    on_each_http1_server("", |_, server, _| {
        a_client_expecting_100_continue_is_answered(server.http_port.unwrap());
    });
}

fn a_client_expecting_100_continue_is_answered(port: u16) {
    use std::io::{Read, Write};
    let form = format!("name=Ada&email=ada%40example.org&message={}", "x".repeat(2000));
    let mut conn = raw_connection(port, 5);
    let head = format!(
        "POST /contact/send HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nExpect: 100-continue\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        form.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    conn.read_exact(&mut interim).expect("an interim answer before the body is sent");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all(form.as_bytes()).unwrap();
    let mut rest = String::new();
    conn.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");

    // A body over the limit is refused before it is sent: no 100 Continue.
    let mut conn = raw_connection(port, 5);
    let head = "POST /contact/send HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nExpect: 100-continue\r\n\
                Content-Length: 100000000\r\n\r\n";
    conn.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// Read one HTTP/1.1 response (with a Content-Length) from `conn`: its head and body.
fn read_response(conn: &mut impl std::io::BufRead) -> (String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(conn.read_line(&mut line).unwrap() > 0, "connection closed in a response head: {head}");
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let length: usize = header(&head, "content-length").expect("a content-length").parse().unwrap();
    let mut body = vec![0; length];
    conn.read_exact(&mut body).unwrap();
    (head, body)
}

#[test]
fn a_keep_alive_connection_serves_request_after_request_and_pipelined_ones() {
    use std::io::Write;
    on_each_http1_server("", |http1, server, _| {
        let conn = raw_connection(server.http_port.unwrap(), 5);
        let mut writer = conn.try_clone().unwrap();
        let mut reader = std::io::BufReader::new(conn);
        let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        let mut ids = Vec::new();
        for path in ["/about/", "/blog/", "/about/"] {
            writer.write_all(get(path).as_bytes()).unwrap();
            let (head, body) = read_response(&mut reader);
            assert!(head.starts_with("HTTP/1.1 200"), "{http1}: {head}");
            assert!(!body.is_empty());
            ids.push(header(&head, "x-request-id").unwrap().to_string());
        }
        // Two requests in one write: both answered, in order.
        writer.write_all(format!("{}{}", get("/blog/"), get("/nowhere/")).as_bytes()).unwrap();
        let (first, _) = read_response(&mut reader);
        let (second, _) = read_response(&mut reader);
        assert!(first.starts_with("HTTP/1.1 200") && second.starts_with("HTTP/1.1 404"), "{http1}: {first}{second}");
        ids.extend([first, second].iter().map(|h| header(h, "x-request-id").unwrap().to_string()));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "{http1}: every request has an id of its own");
    });
}

#[test]
fn a_client_stalling_in_its_request_body_is_answered_408() {
    use std::io::{Read, Write};
    on_each_http1_server("client_timeout_secs = 1\n", |http1, server, _| {
        let mut conn = raw_connection(server.http_port.unwrap(), 5);
        let head = "POST /contact/send HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nname=Ada";
        conn.write_all(head.as_bytes()).unwrap();
        // The other 92 bytes never come.
        let mut answer = String::new();
        let _ = conn.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{http1}: {answer:?}");
    });
}

#[test]
fn a_large_file_streams_whole_and_http_1_0_and_head_are_answered() {
    use std::io::{Read, Write};
    // 600 KiB: more than the Pingora session's one-write size (256 KiB), so both servers stream it.
    let big: String = (0..600 * 1024).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    on_each_http1_server("", |http1, server, tmp| {
        let port = server.http_port.unwrap();
        let clone = server.clone(tmp, "site", &[]);
        commit_file(server, &clone, "static/files/big.txt", &big);
        assert_success(&server.git_out(&clone, &["push", "origin", "main"]), &["push"]);

        // HTTP/1.0: answered, then closed (the end of the body is the end of the connection).
        let mut conn = raw_connection(port, 10);
        conn.write_all(b"GET /files/big.txt HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).unwrap_or_else(|e| panic!("{http1}: {e} after {} bytes", answer.len()));
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8_lossy(&answer[..split]).to_string();
        assert!(head.starts_with("HTTP/1.") && head.contains(" 200 "), "{http1}: {head}");
        assert!(answer[split..] == *big.as_bytes(), "{http1}: the body arrives whole ({} bytes)", answer.len() - split);

        // HEAD: the length, no body; the connection stays usable.
        let conn = raw_connection(port, 10);
        let mut writer = conn.try_clone().unwrap();
        let mut reader = std::io::BufReader::new(conn);
        writer.write_all(b"HEAD /files/big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            head.push_str(&line);
        }
        assert_eq!(header(&head, "content-length"), Some(big.len().to_string().as_str()), "{http1}: {head}");
        writer.write_all(b"GET /about/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let (next, _) = read_response(&mut reader);
        assert!(next.starts_with("HTTP/1.1 200"), "{http1}: the request after a HEAD is read as one: {next}");
    });
}

#[test]
fn the_loopback_proxy_mode_admits_and_serves_like_the_in_process_one() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with(tmp.path(), "[ingress]\nupstream = \"loopback\"\n");
    let port = server.http_port.unwrap();
    let (status, head, body) = http_get(port, "/about/");
    assert_eq!(status, 200, "{head}");
    assert!(!body.is_empty());
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"), "{head}");
    assert_eq!(header(&head, "x-request-id").map(str::len), Some(16), "{head}");
    assert_eq!(http_get(port, "/a/%2e%2e/b").0, 400);
    assert_eq!(http_raw(port, "DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").0, 405);
    assert_eq!(http_get(port, "/no-such-page/").0, 404);
}
