//! Three real servers for the client's tests — our own Git host (in this process, on its own
//! runtime), OpenSSH's `sshd` with `git-upload-pack`/`git-receive-pack`, and `git http-backend`
//! behind HTTPS with a token ([`http_backend`](super::http_backend)) — plus the `git` CLI to make
//! and inspect repositories.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;

use githost::client::{Connection, HostKeyPolicy, HttpConnection, HttpOptions, RemoteUrl, SshOptions, Token};

use super::http_backend::HttpBackend;

/// Run `git` with a clean configuration; panics with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.org")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.org")
        .output()
        .expect("run git");
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree with `commits` commits on `main`, each changing a few files.
pub fn work_repo(dir: &Path, commits: usize) -> PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for i in 0..commits {
        add_commit(&work, i);
    }
    work
}

/// One more commit in `work`.
pub fn add_commit(work: &Path, i: usize) -> String {
    std::fs::create_dir_all(work.join("content")).unwrap();
    std::fs::write(
        work.join(format!("content/page{}.md", i % 7)),
        format!("# Page\n\nversion {i}\n{}", "text\n".repeat(50)),
    )
    .unwrap();
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", &format!("commit {i}")]);
    git(work, &["rev-parse", "HEAD"])
}

/// Which of the two servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ours,
    OpenSsh,
    /// `git http-backend` over HTTPS.
    Https,
}

/// A running server with one bare repository and a client key it accepts.
pub struct Remote {
    pub url: String,
    /// The served repository on disk.
    pub repo_dir: PathBuf,
    pub key: PathBuf,
    pub host_pub: PathBuf,
    /// `GIT_SSH_COMMAND` for the git CLI.
    pub ssh_command: String,
    pub tmp: tempfile::TempDir,
    /// The HTTPS server, for [`Kind::Https`].
    pub http: Option<HttpBackend>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

fn keygen(path: &Path) {
    let status =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"]).arg(path).status();
    assert!(status.expect("ssh-keygen (openssh-client) is needed").success());
}

impl Remote {
    pub fn start(kind: Kind) -> Remote {
        match kind {
            Kind::Ours => Self::ours(),
            Kind::OpenSsh => Self::openssh(),
            Kind::Https => Self::https(),
        }
    }

    fn https() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let repo_dir = tmp.path().join("site.git");
        git(tmp.path(), &["init", "-q", "--bare", "-b", "main", repo_dir.to_str().unwrap()]);
        let backend = HttpBackend::start(tmp.path(), "tok3n-for-tests");
        Remote {
            url: backend.url("site.git"),
            repo_dir,
            key: PathBuf::new(),
            host_pub: PathBuf::new(),
            ssh_command: String::new(),
            tmp,
            http: Some(backend),
            stop: None,
        }
    }

    /// HTTP options with this server's CA and token.
    pub fn http_options(&self, v2: bool) -> HttpOptions {
        let backend = self.http.as_ref().expect("an HTTPS remote");
        HttpOptions {
            token: Some(Token::new(&backend.token).unwrap()),
            ca_file: Some(backend.ca.clone()),
            protocol_v2: v2,
            ..HttpOptions::default()
        }
    }

    fn ours() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("client");
        keygen(&key);
        let host_key_path = tmp.path().join("host");
        let host_key = githost::keys::load_or_generate(&host_key_path, "host").unwrap();
        let keys = githost::AuthorizedKeys::from_file(&key.with_extension("pub")).unwrap();
        let repo_dir = tmp.path().join("site.git");
        let repo = githost::Repository::open_or_init("site", &repo_dir).unwrap();
        let mut host = githost::GitHost::new(Arc::new(keys), Arc::new(githost::AllowAll), githost::Limits::default());
        host.add_repository(Arc::new(repo));
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
        let port = port_rx.recv().unwrap();
        let ssh_command = format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            key.display()
        );
        Remote {
            url: format!("ssh://git@127.0.0.1:{port}/site.git"),
            repo_dir,
            key,
            host_pub: host_key_path.with_extension("pub"),
            ssh_command,
            tmp,
            http: None,
            stop: Some(Box::new(move || {
                let _ = stop_tx.send(());
                let _ = thread.join();
            })),
        }
    }

    fn openssh() -> Remote {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let key = dir.join("client");
        keygen(&key);
        let host = dir.join("sshd_host");
        keygen(&host);
        std::fs::copy(key.with_extension("pub"), dir.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let _ = std::fs::create_dir_all("/run/sshd");
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin yes\nAcceptEnv GIT_PROTOCOL\n",
                host.display(),
                dir.join("authorized_keys").display(),
                dir.join("sshd.pid").display()
            ),
        )
        .unwrap();
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sshd is needed (Debian package openssh-server; scripts/test.sh installs it)");
        let child: Child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let repo_dir = dir.join("site.git");
        git(dir, &["init", "-q", "--bare", "-b", "main", repo_dir.to_str().unwrap()]);
        let user =
            String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap().trim().to_string();
        let ssh_command = format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            key.display()
        );
        let mut child = Some(child);
        Remote {
            url: format!("ssh://{user}@127.0.0.1:{port}{}", repo_dir.display()),
            repo_dir,
            key,
            host_pub: host.with_extension("pub"),
            ssh_command,
            tmp,
            http: None,
            stop: Some(Box::new(move || {
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            })),
        }
    }

    /// `git` with this server's key.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_SSH_COMMAND", &self.ssh_command)
            .envs(self.http.as_ref().map(HttpBackend::git_env).unwrap_or_default())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("run git");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The host key pinned by fingerprint.
    pub fn pin(&self) -> HostKeyPolicy {
        let text = std::fs::read_to_string(&self.host_pub).unwrap();
        let key = russh::keys::PublicKey::from_openssh(text.trim()).unwrap();
        HostKeyPolicy::Fingerprint(githost::client::host_key::fingerprint(&key))
    }

    pub fn options(&self) -> SshOptions {
        SshOptions::new(&self.key, self.pin())
    }

    /// A connection of the remote's kind.
    pub async fn connect(&self, v2: bool) -> githost::client::Remote {
        let url = RemoteUrl::parse(&self.url).unwrap();
        match self.http {
            Some(_) => githost::client::Remote::Http(
                HttpConnection::connect(&url, self.http_options(v2)).await.expect("connect over HTTPS"),
            ),
            None => githost::client::Remote::Ssh(self.connect_ssh(v2).await),
        }
    }

    pub async fn connect_ssh(&self, v2: bool) -> Connection {
        let mut options = self.options();
        options.protocol_v2 = v2;
        Connection::connect(&RemoteUrl::parse(&self.url).unwrap(), &options).await.expect("connect")
    }

    /// `git ls-remote` of the server's repository, as `id name` lines.
    pub fn refs(&self) -> String {
        git(&self.repo_dir, &["for-each-ref", "--format=%(objectname) %(refname)"])
    }
}

/// The refs of a local bare repository, as `id name` lines.
pub fn local_refs(dir: &Path) -> String {
    git(dir, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

/// `git fsck --strict` passes and no quarantine is left.
pub fn assert_sound(dir: &Path) {
    git(dir, &["fsck", "--strict", "--no-progress"]);
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("incoming-"))
        .collect();
    assert!(leftovers.is_empty(), "quarantine left behind: {leftovers:?}");
}

/// A bare repository at `dir` with ~20k objects: 4,000 files, then 1,700 commits of 5 files
/// each (the shape of `scripts/bench-git.sh`, a little longer), made with `git fast-import`.
pub fn big_history(dir: &Path) {
    use std::fmt::Write as _;
    git(dir.parent().unwrap(), &["init", "-q", "--bare", "-b", "main", dir.to_str().unwrap()]);
    let mut s = String::new();
    let t = 1_700_000_000u64;
    let blob = |s: &mut String, path: &str, text: &str| {
        let _ = write!(s, "M 100644 inline {path}\ndata {}\n{text}\n", text.len());
    };
    let _ = write!(s, "commit refs/heads/main\ncommitter B <b@e> {t} +0000\ndata 7\ninitial\n");
    for d in 0..100 {
        for f in 0..40 {
            let text =
                format!("+++\ntitle = \"Page {d}/{f}\"\n+++\n\n{}", format!("Body of page {d}/{f}.\n").repeat(20));
            blob(&mut s, &format!("content/section{d}/page{f}.md"), &text);
        }
    }
    for c in 1..=1700u64 {
        let msg = format!("edit {c}");
        let _ = write!(s, "commit refs/heads/main\ncommitter B <b@e> {} +0000\ndata {}\n{msg}\n", t + c, msg.len());
        for k in 0..5u64 {
            let n = (c * 7 + k * 13) % 4000;
            let text =
                format!("+++\ntitle = \"Page {n} v{c}\"\n+++\n\n{}", format!("Edited in commit {c}.\n").repeat(20));
            blob(&mut s, &format!("content/section{}/page{}.md", n / 40, n % 40), &text);
        }
    }
    let mut child = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    git(dir, &["repack", "-adq"]);
}
