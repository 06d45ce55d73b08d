//! Test support for the end-to-end tests: start the real `whispercms-server` binary (or a Git
//! host in-process, when a test needs custom hooks or limits), and drive it with the real `git`
//! and `ssh` clients on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;

/// A running server and what a client needs to reach it.
pub struct Server {
    pub port: u16,
    /// The public site's port (binary servers only).
    pub http_port: Option<u16>,
    pub data_dir: PathBuf,
    pub key: PathBuf,
    pub repo_dir: PathBuf,
    kind: Kind,
    _tmp: Option<tempfile::TempDir>,
}

enum Kind {
    Binary(Child),
    InProcess { stop: Option<tokio::sync::oneshot::Sender<()>>, thread: Option<std::thread::JoinHandle<()>> },
}

impl Server {
    /// Start `whispercms-server demo --empty` in a fresh data directory on free ports.
    pub fn binary() -> Server {
        Self::binary_with(&["--empty"])
    }

    /// Start `whispercms-server demo` with the starter site (and `extra` arguments).
    pub fn binary_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let mut server = Self::binary_at(&data_dir, extra);
        server._tmp = Some(tmp);
        server
    }

    /// Start `whispercms-server demo` on an existing data directory (a restart).
    pub fn binary_at(data_dir: &Path, extra: &[&str]) -> Server {
        Self::binary_listening(data_dir, "127.0.0.1:0", extra)
    }

    /// Start `whispercms-server demo` on `data_dir` with SSH on `ssh_listen` (a restart on the
    /// same address, which followers know).
    pub fn binary_listening(data_dir: &Path, ssh_listen: &str, extra: &[&str]) -> Server {
        Self::start_binary(data_dir, ssh_listen, extra, None)
    }

    /// Start `whispercms-server demo` with the starter site, its log (every level) in `log`.
    pub fn binary_logging_to(log: &Path) -> Server {
        Self::binary_with_logging(&[], log)
    }

    /// [`Server::binary_with`], its log (every level) in `log`.
    pub fn binary_with_logging(extra: &[&str], log: &Path) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut server = Self::start_binary(&tmp.path().join("data"), "127.0.0.1:0", extra, Some(log));
        server._tmp = Some(tmp);
        server
    }

    fn start_binary(data_dir: &Path, ssh_listen: &str, extra: &[&str], log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::inherit(),
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_whispercms-server"));
        command
            .args(["demo", "--data-dir"])
            .arg(data_dir)
            .args(["--ssh-listen", ssh_listen, "--http-listen", "127.0.0.1:0"])
            .args(extra)
            .env("WHISPERCMS_LOG", if log.is_some() { "debug,russh=info" } else { "warn" })
            .stderr(stderr);
        Self::spawn(command, data_dir, &data_dir.join("keys/demo_ed25519"))
    }

    /// `whispercms-server --config CONFIG serve`, as an operator runs it; `key` is the client's.
    pub fn serve_with_config(config: &Path, data_dir: &Path, key: &Path) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_whispercms-server"));
        command.arg("--config").arg(config).arg("serve").env("WHISPERCMS_LOG", "warn").stderr(Stdio::inherit());
        Self::spawn(command, data_dir, key)
    }

    /// Start the server and wait until it says where it listens.
    fn spawn(mut command: Command, data_dir: &Path, key: &Path) -> Server {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("start whispercms-server");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let port_of = |addr: &str| addr.rsplit(':').next().unwrap().parse::<u16>().unwrap();
        let (mut port, mut http_port) = (None, None);
        while port.is_none() || http_port.is_none() {
            let line = lines.next().expect("server exited before listening").expect("read stdout");
            if let Some(addr) = line.strip_prefix("ssh listening on ") {
                port = Some(port_of(addr));
            } else if let Some(addr) = line.strip_prefix("http listening on ") {
                http_port = Some(port_of(addr));
            }
        }
        let port = port.unwrap();
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            port,
            http_port,
            data_dir: data_dir.to_path_buf(),
            key: key.to_path_buf(),
            repo_dir: data_dir.join("repos/site.git"),
            kind: Kind::Binary(child),
            _tmp: None,
        }
    }

    /// Start a Git host in this process with `hooks` and `limits`, authorizing one generated key.
    pub fn in_process(hooks: Arc<dyn githost::Hooks>, limits: githost::Limits) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("data");
        let key_path = data_dir.join("keys/user_ed25519");
        let user_key = githost::keys::load_or_generate(&key_path, "tester").unwrap();
        let host_key = githost::keys::load_or_generate(&data_dir.join("keys/host"), "host").unwrap();
        let mut keys = githost::AuthorizedKeys::default();
        keys.add(user_key.public_key().clone(), "tester");
        let repo_dir = data_dir.join("repos/site.git");
        let repo = githost::Repository::open_or_init("site", &repo_dir).unwrap();
        let mut host = githost::GitHost::new(Arc::new(keys), hooks, limits);
        let repo = Arc::new(repo);
        repo.start_maintenance().unwrap();
        host.add_repository(repo);
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                githost::serve(Arc::new(host), listener, host_key, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let port = port_rx.recv().expect("in-process server started");
        Server {
            port,
            http_port: None,
            data_dir,
            key: key_path,
            repo_dir,
            kind: Kind::InProcess { stop: Some(stop_tx), thread: Some(thread) },
            _tmp: Some(tmp),
        }
    }

    /// Generate a new ed25519 key `dir/name` with `ssh-keygen`; returns its path and the `ssh`
    /// command line that uses it instead of the server's test key.
    pub fn new_user_key(&self, dir: &Path, name: &str) -> (PathBuf, String) {
        let key = dir.join(name);
        keygen(&key, name);
        let ssh = self.ssh_command().replace(&self.key.display().to_string(), &key.display().to_string());
        (key, ssh)
    }

    /// `ssh://…/site.git` for this server.
    pub fn url(&self) -> String {
        format!("ssh://git@127.0.0.1:{}/site.git", self.port)
    }

    /// The `ssh` command line `git` should use.
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.key.display()
        )
    }

    /// A `git` command with an isolated configuration and this server's ssh settings.
    pub fn git(&self, dir: &Path) -> Command {
        git_command(dir, &self.ssh_command())
    }

    /// Run git in `dir`, panicking with its output if it fails; returns stdout.
    pub fn git_ok(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git(dir).args(args).output().expect("run git");
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run git in `dir` and return its output, whatever the outcome.
    pub fn git_out(&self, dir: &Path, args: &[&str]) -> Output {
        self.git(dir).args(args).output().expect("run git")
    }

    /// Clone the site into `dir/name` and return the clone's path.
    pub fn clone(&self, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
        let mut args = vec!["clone", "-q"];
        args.extend_from_slice(extra);
        let url = self.url();
        args.push(&url);
        args.push(name);
        self.git_ok(dir, &args);
        dir.join(name)
    }

    /// Run `ssh` to the server with a raw command and stdin; returns the output.
    pub fn ssh_raw(&self, command: &str, stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut parts: Vec<String> = self.ssh_command().split_whitespace().map(String::from).collect();
        let program = parts.remove(0);
        let mut child = Command::new(program)
            .args(&parts)
            .args(["-p", &self.port.to_string(), "git@127.0.0.1", command])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ssh");
        let mut input = child.stdin.take().unwrap();
        let bytes = stdin.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&bytes);
        });
        let out = child.wait_with_output().expect("ssh output");
        let _ = writer.join();
        out
    }

    /// `git fsck --strict` on the server's repository must pass, and no quarantine is left.
    pub fn assert_repository_sound(&self) {
        let out = Command::new("git")
            .args(["fsck", "--strict", "--no-progress"])
            .current_dir(&self.repo_dir)
            .output()
            .unwrap();
        if !out.status.success() {
            // Kept for a post-mortem: the temporary directory goes with the failing test.
            let kept = std::env::temp_dir().join(format!("whispercms-unsound-{}", std::process::id()));
            let _ = Command::new("cp").arg("-a").arg(&self.repo_dir).arg(&kept).status();
            eprintln!("the unsound repository is kept in {}", kept.display());
        }
        assert_success(&out, &["fsck"]);
        let leftovers: Vec<_> = std::fs::read_dir(self.repo_dir.join("objects"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
            .collect();
        assert!(leftovers.is_empty(), "quarantine left behind: {leftovers:?}");
    }

    /// The server's refs as `git for-each-ref` prints them.
    pub fn server_refs(&self) -> String {
        let out = Command::new("git")
            .args(["for-each-ref", "--format=%(objectname) %(refname)"])
            .current_dir(&self.repo_dir)
            .output()
            .unwrap();
        assert_success(&out, &["for-each-ref"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Stop the server and wait for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Send SIGTERM to the server binary and wait for it; returns its exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let Kind::Binary(child) = &mut self.kind else { panic!("not a binary server") };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().expect("wait for the server")
    }

    /// Send `signal` (a `kill` name: `HUP`, `USR1` …) to the server binary.
    pub fn signal(&self, signal: &str) {
        let Kind::Binary(child) = &self.kind else { panic!("not a binary server") };
        let status = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{signal}");
    }

    /// The server binary's process id.
    pub fn pid(&self) -> u32 {
        let Kind::Binary(child) = &self.kind else { panic!("not a binary server") };
        child.id()
    }

    /// Kill the server binary with SIGKILL (no shutdown of any kind) and reap it.
    pub fn kill9(&mut self) {
        let Kind::Binary(child) = &mut self.kind else { panic!("not a binary server") };
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The packs in the server's repository (`objects/pack/*.idx`), and the other files there.
    pub fn pack_files(&self) -> (usize, Vec<String>) {
        let names: Vec<String> = std::fs::read_dir(self.repo_dir.join("objects/pack"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        (names.iter().filter(|n| n.ends_with(".idx")).count(), names)
    }

    /// `whispercms-server preview-link` for this server's data directory.
    pub fn preview_link(&self, user: &str, base: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_whispercms-server"))
            .args(["preview-link", "--user", user, "--base", base, "--data-dir"])
            .arg(&self.data_dir)
            .output()
            .expect("run preview-link");
        assert_success(&out, &["preview-link"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn shutdown(&mut self) {
        match &mut self.kind {
            Kind::Binary(child) => {
                let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
                let _ = child.wait();
            }
            Kind::InProcess { stop, thread } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Kind::Binary(child) = &mut self.kind {
            let _ = child.kill();
            let _ = child.wait();
        } else {
            self.shutdown();
        }
    }
}

/// A plain HTTP/1.1 GET to 127.0.0.1:`port`: (status, headers, body).
pub fn http_get(port: u16, path: &str) -> (u16, String, String) {
    http_request(port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"))
}

/// A GET with extra header lines (`Name: value`): (status, headers, body).
pub fn http_get_with(port: u16, path: &str, headers: &[&str]) -> (u16, String, String) {
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    http_request(port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n"))
}

/// Send `request` as it is (for hostile requests): (status, headers, body).
pub fn http_raw(port: u16, request: &str) -> (u16, String, String) {
    http_request(port, request)
}

/// A form POST to 127.0.0.1:`port`: (status, headers, body).
pub fn http_post_form(port: u16, path: &str, form: &str) -> (u16, String, String) {
    http_request(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
}

/// GET `path` and keep the body's bytes (images); a `Content-Length` body only.
pub fn http_get_bytes(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, body)
}

fn http_request(port: u16, request: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body =
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_string() };
    (status, head.to_string(), body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A git command in `dir` with no user or system configuration and a fixed identity.
pub fn git_command(dir: &Path, ssh: &str) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_SSH_COMMAND", ssh)
        .env("GIT_AUTHOR_NAME", "Tester")
        .env("GIT_AUTHOR_EMAIL", "tester@example.com")
        .env("GIT_COMMITTER_NAME", "Tester")
        .env("GIT_COMMITTER_EMAIL", "tester@example.com")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_PROTOCOL")
        .args(["-c", "init.defaultBranch=main", "-c", "advice.detachedHead=false"]);
    cmd
}

/// Panic with the command's output unless it succeeded.
pub fn assert_success(out: &Output, what: &[&str]) {
    assert!(
        out.status.success(),
        "{what:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Create a local repository at `dir/name` with `commits` commits on main (one file each).
pub fn local_repo(server: &Server, dir: &Path, name: &str, commits: usize) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(&path).unwrap();
    server.git_ok(&path, &["init", "-q"]);
    server.git_ok(&path, &["remote", "add", "origin", &server.url()]);
    for i in 0..commits {
        commit_file(server, &path, &format!("file{i}.txt"), &format!("content {i}\n"));
    }
    path
}

/// Write `file` with `content` and commit it.
pub fn commit_file(server: &Server, repo: &Path, file: &str, content: &str) {
    let p = repo.join(file);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, content).unwrap();
    server.git_ok(repo, &["add", "-A"]);
    server.git_ok(repo, &["commit", "-q", "-m", &format!("change {file}")]);
}

/// `git rev-parse` of `rev` in `repo`.
pub fn rev(server: &Server, repo: &Path, rev: &str) -> String {
    server.git_ok(repo, &["rev-parse", rev]).trim().to_string()
}

/// Run `whispercms-server ARGS` to completion (the CLI's own commands: init, backup, restore …).
pub fn server_command(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_whispercms-server"))
        .args(args)
        .env("WHISPERCMS_LOG", "warn")
        .output()
        .expect("run whispercms-server")
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A file's permission bits.
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A new ed25519 key pair at `path` (and `path.pub`), no passphrase.
pub fn keygen(path: &Path, comment: &str) {
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .unwrap();
    assert_success(&out, &["ssh-keygen"]);
}

/// The `ssh` command line for `key` that trusts only the host keys in `known_hosts` (as a
/// careful user's would).
pub fn ssh_trusting(key: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
         -o UserKnownHostsFile={} -o LogLevel=ERROR",
        key.display(),
        known_hosts.display()
    )
}

/// `len` bytes that do not compress (xorshift from `seed`), the same for the same seed.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    // An odd multiplier maps distinct seeds to distinct (non-zero, for xorshift) states.
    let mut x = seed.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
