//! What the app's end-to-end tests share: processes killed when dropped, one HTTP exchange,
//! tools found on the PATH, and a real `whispercms-server demo`.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use desktop_app::{Request, Response};
use serde_json::Value;

/// Run `git args` in `dir` (as a writer "T" with `main` as the first branch); fail on failure.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A GET of the app's own `path` (with its query).
pub fn get(path: &str) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    Request {
        method: "GET".into(),
        host: "localhost".into(),
        path: path.into(),
        query: query.into(),
        body: vec![],
        navigation: true,
        sender: None,
    }
}

/// A form POST to the app's own `path`, as the app's script sends it.
pub fn post(path: &str, form: &[(&str, &str)]) -> Request {
    let body = serde_urlencoded::to_string(form).unwrap().into_bytes();
    Request {
        method: "POST".into(),
        host: "localhost".into(),
        path: path.into(),
        query: String::new(),
        body,
        navigation: false,
        sender: Some(desktop_app::APP_ORIGIN.into()),
    }
}

/// The same form submitted by the web view itself (no script listening yet).
pub fn submit(path: &str, form: &[(&str, &str)]) -> Request {
    Request { navigation: true, ..post(path, form) }
}

/// An answer's body as text.
pub fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// An action's answer (JSON), after checking it is a 200.
pub fn json(r: &Response) -> Value {
    assert_eq!(r.status, 200, "{}", text(r));
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", text(r)))
}

/// Kills its process when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    /// Kill the process and, when it leads a process group (spawned with `process_group(0)`),
    /// everything in the group: tauri-driver's WebKitWebDriver outlived it otherwise, one more
    /// after every run, and a later run's window test failed to get a session.
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 exchange: (status, body). The body is read by its `Content-Length` (or its
/// chunks), not to the end of the connection: a keep-alive server need not close it.
pub fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> (u16, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    )
    .unwrap();
    let mut reader = std::io::BufReader::new(s);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = status_line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (mut length, mut chunked) = (None, false);
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse::<usize>().ok();
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        reader.read_exact(&mut body).unwrap();
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    (status, body)
}

pub fn tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain(std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin")))
        .map(|d| d.join(name))
        .find(|p| p.exists());
    found.unwrap_or_else(|| panic!("{name} is needed (scripts/test.sh installs it)"))
}

/// The server binary, beside this test's directory (`cargo test --workspace` builds it).
pub fn server_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("whispercms-server");
    assert!(bin.exists(), "{} is missing: cargo build --bin whispercms-server", bin.display());
    bin
}

/// A `whispercms-server demo` on 127.0.0.1, its data in `data` (kept between starts: the same
/// keys and site).
pub struct DemoServer {
    /// `127.0.0.1:PORT` of its SSH endpoint.
    pub ssh: String,
    /// The port of its public site.
    pub web_port: u16,
    /// Its host key's `SHA256:…` fingerprint.
    pub fingerprint: String,
    _process: Running,
}

impl DemoServer {
    /// Start it with SSH on `ssh_port` (0: any) and wait until it listens.
    pub fn start(data: &Path, ssh_port: u16) -> DemoServer {
        let mut child = Command::new(server_binary())
            .args(["demo", "--data-dir"])
            .arg(data)
            .args(["--ssh-listen", &format!("127.0.0.1:{ssh_port}"), "--http-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let process = Running(child);
        let (mut ssh, mut web) = (None, None);
        while ssh.is_none() || web.is_none() {
            let line = lines.next().expect("the server exited").unwrap();
            let addr = |l: &str| l.rsplit(' ').next().unwrap().to_string();
            if line.starts_with("ssh listening on ") {
                ssh = Some(addr(&line));
            } else if line.starts_with("http listening on ") {
                web = Some(addr(&line));
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let web_port = web.unwrap().rsplit(':').next().unwrap().parse().unwrap();
        let out = Command::new("ssh-keygen").arg("-lf").arg(data.join("keys/ssh_host_ed25519.pub")).output().unwrap();
        let fingerprint = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string();
        DemoServer { ssh: ssh.unwrap(), web_port, fingerprint, _process: process }
    }
}
