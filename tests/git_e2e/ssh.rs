//! The SSH endpoint itself: keys, commands other than Git, unknown repositories.

use std::process::Command;

use crate::support::*;

#[test]
fn an_unknown_key_is_refused() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let (_, ssh) = server.new_user_key(tmp.path(), "stranger");
    let out = git_command(tmp.path(), &ssh).args(["clone", &server.url(), "nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Permission denied"), "{}", stderr(&out));
}

#[test]
fn shells_and_other_commands_get_a_message_and_an_exit_status() {
    let server = Server::binary();
    for command in ["ls -la", "bash", "git-upload-archive 'site.git'", "scp -t /tmp"] {
        let out = server.ssh_raw(command, b"");
        assert_eq!(out.status.code(), Some(128), "{command}");
        assert!(stderr(&out).contains("only speaks Git"), "{command}: {}", stderr(&out));
    }
    // An interactive login (no command) is refused the same way, and does not hang.
    let mut parts: Vec<String> = server.ssh_command().split_whitespace().map(String::from).collect();
    let program = parts.remove(0);
    let out = Command::new(program)
        .args(&parts)
        .args(["-T", "-p", &server.port.to_string(), "git@127.0.0.1"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128));
    assert!(stderr(&out).contains("does not provide shell access"), "{}", stderr(&out));
}

#[test]
fn unknown_repositories_and_bad_paths_are_named_in_the_error() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("ssh://git@127.0.0.1:{}/nope.git", server.port);
    let out = server.git_out(tmp.path(), &["clone", &url, "x"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("repository 'nope' not found"), "{}", stderr(&out));
    let out = server.ssh_raw("git-upload-pack '../../etc'", b"");
    assert_eq!(out.status.code(), Some(128));
    assert!(stderr(&out).contains("invalid repository path"), "{}", stderr(&out));
}

#[test]
fn repository_is_addressed_with_or_without_dot_git() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    for (i, path) in ["site", "/site.git", "site.git/"].iter().enumerate() {
        let url = format!("ssh://git@127.0.0.1:{}/{}", server.port, path.trim_start_matches('/'));
        server.git_ok(tmp.path(), &["clone", "-q", &url, &format!("c{i}")]);
    }
}

#[test]
fn connections_per_address_are_limited_and_slots_come_back() {
    let limits = githost::Limits {
        max_connections_per_ip: 1,
        idle_timeout: std::time::Duration::from_secs(2),
        ..githost::Limits::default()
    };
    let server = Server::in_process(std::sync::Arc::new(githost::AllowAll), limits);
    let tmp = tempfile::tempdir().unwrap();
    // A client that connects and says nothing holds the only slot…
    let idle = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let refused = server.git_out(tmp.path(), &["ls-remote", &server.url()]);
    assert!(!refused.status.success(), "a second connection from the same address is refused");
    // …until the idle timeout closes it; then the slot is free again.
    let mut buf = [0u8; 64];
    use std::io::Read;
    let mut idle = idle;
    idle.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    while idle.read(&mut buf).map(|n| n > 0).unwrap_or(false) {}
    let ok = server.git_out(tmp.path(), &["ls-remote", &server.url()]);
    assert_success(&ok, &["ls-remote"]);
}

/// A stranger opening a thousand connections from one address and saying nothing holds at most
/// its address's share (`max_connections_per_ip`) of the slots of connections still
/// authenticating (`max_unauthenticated`), the rest closed at once; a user at another address
/// still gets in; the server adds no thread per connection; the login grace time closes the
/// held ones.
#[test]
fn a_thousand_silent_connections_do_not_lock_users_out() {
    use std::io::Read;
    use std::time::{Duration, Instant};
    let limits = githost::Limits {
        max_unauthenticated: 48,
        max_connections_per_ip: 32,
        // Long enough that a busy machine (the full run, CI) counts the held connections
        // before the grace time closes them: at 3 s, CI once counted 0.
        login_grace: Duration::from_secs(10),
        ..githost::Limits::default()
    };
    let server = Server::in_process(std::sync::Arc::new(githost::AllowAll), limits);
    let tmp = tempfile::tempdir().unwrap();
    let status = |key: &str| -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines().find(|l| l.starts_with(key)).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (threads, rss) = (status("Threads:"), status("VmRSS:"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let port = server.port;
    // `n` connections from each of `sources`, saying nothing.
    let connect = |sources: &[&str], n: usize| -> Vec<std::net::TcpStream> {
        runtime.block_on(async {
            let mut streams = Vec::new();
            for source in sources {
                for _ in 0..n {
                    let socket = tokio::net::TcpSocket::new_v4().unwrap();
                    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
                    let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
                    streams.push(stream.into_std().unwrap());
                }
            }
            streams
        })
    };
    let started = Instant::now();
    let silent = connect(&["127.0.0.2"], 1000);
    std::thread::sleep(Duration::from_millis(500));
    // Which are still open: reading them (the server's greeting, if it sent one) ends in a read
    // that would block; closed ones end in 0 bytes or an error.
    let open = |streams: &[std::net::TcpStream]| -> usize {
        streams
            .iter()
            .filter(|s| {
                s.set_nonblocking(true).unwrap();
                let mut stream: &std::net::TcpStream = s;
                loop {
                    match stream.read(&mut [0u8; 256]) {
                        Ok(0) => return false,
                        Ok(_) => continue,
                        Err(e) => return e.kind() == std::io::ErrorKind::WouldBlock,
                    }
                }
            })
            .count()
    };
    let held = open(&silent);
    assert!(held > 0 && held <= 32, "{held} silent connections held, counted after {:?}", started.elapsed());
    let user = server.git_out(tmp.path(), &["ls-remote", &server.url()]);
    assert_success(&user, &["ls-remote while a thousand connections wait"]);
    assert!(status("Threads:") <= threads + 4, "threads {threads} -> {}", status("Threads:"));
    assert!(status("VmRSS:") < rss + 64 * 1024, "RSS {rss} -> {} KiB", status("VmRSS:"));
    // The login grace time closes the held ones.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open(&silent) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(open(&silent), 0, "silent connections outlived the login grace time");
    drop(silent);
    // From two addresses, their shares together pass the slots for connections authenticating:
    // those are all they get.
    let silent = connect(&["127.0.0.2", "127.0.0.3"], 500);
    // The server works through the backlog at its own pace (slower when the machine is busy).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut held = open(&silent);
    while held <= 32 && Instant::now() < deadline {
        assert!(held <= 48, "{held} silent connections held");
        std::thread::sleep(Duration::from_millis(100));
        held = open(&silent);
    }
    assert!(held > 32 && held <= 48, "{held} silent connections held");
}
