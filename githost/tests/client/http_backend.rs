//! The reference smart-HTTP server for the client's tests: `git http-backend` run as CGI behind a
//! small HTTPS front (hyper + rustls, on its own runtime and 127.0.0.1 port), the way Apache or
//! nginx serve it, with HTTP Basic authentication by token like GitHub and Gitea.
//!
//! A few paths misbehave on purpose: `/redirect/…` answers 301 to `/…`; `/redirect-to/PORT/…`
//! answers 301 to `/…` on another port (another origin); `/dumb/…` is a plain web server;
//! `/truncate/…` cuts every POST answer in half.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The body came with `Transfer-Encoding: chunked`.
    pub chunked: bool,
    pub body_len: usize,
    /// The right token came with it.
    pub authorized: bool,
}

struct State {
    root: PathBuf,
    token: String,
    seen: Mutex<Vec<Seen>>,
}

/// A running server.
pub struct HttpBackend {
    pub port: u16,
    /// The private CA's certificate (PEM): the CA file a client must trust.
    pub ca: PathBuf,
    pub token: String,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost, in `dir` (made
/// once; servers sharing `dir` share them): (CA certificate, server certificate, server key).
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let paths = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    if paths.1.exists() {
        return paths;
    }
    let openssl = |args: &[&str]| {
        let out =
            std::process::Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is needed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "1", "-subj", "/CN=Test CA"],
        ]
        .concat(),
    );
    openssl(&[&["req"], &ec[..], &["-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=localhost"]].concat());
    std::fs::write(dir.join("cert.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
        .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "cert.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "cert.pem",
        "-extfile",
        "cert.ext",
    ]);
    paths
}

impl HttpBackend {
    /// Serve the repositories under `root` over HTTPS, every request needing `token`.
    pub fn start(root: &Path, token: &str) -> HttpBackend {
        let (ca, cert, key) = private_ca(root);
        let certs: Vec<_> =
            rustls_pemfile::certs(&mut &std::fs::read(&cert).unwrap()[..]).collect::<Result<_, _>>().unwrap();
        let key = rustls_pemfile::private_key(&mut &std::fs::read(&key).unwrap()[..]).unwrap().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let state =
            Arc::new(State { root: root.to_path_buf(), token: token.to_string(), seen: Mutex::new(Vec::new()) });
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                loop {
                    let (tcp, _) = tokio::select! {
                        accepted = listener.accept() => match accepted { Ok(a) => a, Err(_) => continue },
                        _ = &mut stop_rx => return,
                    };
                    let acceptor = acceptor.clone();
                    let state = serving.clone();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), service)
                            .await;
                    });
                }
            });
        });
        let port = port_rx.recv().unwrap();
        HttpBackend { port, ca, token: token.to_string(), state, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// The address of the repository `name` (a directory under the root).
    pub fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/{name}", self.port)
    }

    /// The requests so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// `git` configuration (as environment) for the git CLI to reach this server.
    pub fn git_env(&self) -> Vec<(String, String)> {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("git:{}", self.token));
        vec![
            ("GIT_SSL_CAINFO".into(), self.ca.display().to_string()),
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
            ("GIT_CONFIG_VALUE_0".into(), format!("Authorization: Basic {basic}")),
        ]
    }
}

fn respond(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder().status(status).header("content-type", content_type).body(Full::new(body.into())).unwrap()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    use base64::Engine as _;
    let (parts, body) = req.into_parts();
    let chunked = parts.headers.get("transfer-encoding").is_some();
    let body = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let user = parts
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|d| d.split_once(':').filter(|(_, t)| *t == state.token).map(|(u, _)| u.to_string()));
    let mut path = parts.uri.path().to_string();
    state.seen.lock().unwrap().push(Seen {
        method: parts.method.to_string(),
        path: path.clone(),
        chunked,
        body_len: body.len(),
        authorized: user.is_some(),
    });
    if let Some(rest) = path.strip_prefix("/redirect/").map(|r| format!("/{r}")) {
        let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let mut r = respond(StatusCode::MOVED_PERMANENTLY, "text/plain", "moved");
        r.headers_mut().insert("location", format!("{rest}{query}").parse().unwrap());
        return Ok(r);
    }
    if let Some(rest) = path.strip_prefix("/redirect-to/") {
        let (port, rest) = rest.split_once('/').unwrap();
        let query = parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        let mut r = respond(StatusCode::FOUND, "text/plain", "moved");
        r.headers_mut().insert("location", format!("https://127.0.0.1:{port}/{rest}{query}").parse().unwrap());
        return Ok(r);
    }
    if path.starts_with("/dumb/") {
        return Ok(respond(StatusCode::OK, "text/plain", "just a file server"));
    }
    let Some(user) = user else {
        let mut r = respond(StatusCode::UNAUTHORIZED, "text/plain", "Authentication required\n");
        r.headers_mut().insert("www-authenticate", "Basic realm=\"git\"".parse().unwrap());
        return Ok(r);
    };
    let truncate = path.starts_with("/truncate/");
    if truncate {
        path = path["/truncate".len()..].to_string();
    }
    let mut cgi = tokio::process::Command::new("git");
    cgi.arg("http-backend")
        .env("GIT_PROJECT_ROOT", &state.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (header, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("git-protocol", "GIT_PROTOCOL"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(v) = parts.headers.get(header).and_then(|v| v.to_str().ok()) {
            cgi.env(var, v);
        }
    }
    let mut child = cgi.spawn().expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writing = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    let _ = writing.await;
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((end, sep)) = split else {
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        return Ok(respond(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", stderr));
    };
    let head = String::from_utf8_lossy(&out.stdout[..end]).to_string();
    let mut content = out.stdout[end + sep..].to_vec();
    let mut response = Response::builder();
    let mut status = StatusCode::OK;
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            continue; // hyper sets it for what is sent
        } else if name.eq_ignore_ascii_case("status") {
            status = value.trim().split(' ').next().and_then(|c| c.parse().ok()).unwrap_or(status);
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    if truncate && parts.method == "POST" {
        content.truncate(content.len() / 2);
    }
    Ok(response.status(status).body(Full::new(Bytes::from(content))).unwrap())
}
