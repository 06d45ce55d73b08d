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
