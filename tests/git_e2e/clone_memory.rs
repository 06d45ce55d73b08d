//! Many clones at once: all succeed, and the server's memory stays within its pack budget
//! (`[limits] pack_memory_mb`, 256 MiB by default) — clones past it wait their turn.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

/// A history of about 20,000 objects, written by `git fast-import`: 400 files, then 2,000
/// commits changing 4 of them each, in a tree two levels deep, with a tag every 100 commits.
fn history() -> String {
    let mut stream = String::new();
    for commit in 0..2_000u32 {
        stream.push_str("commit refs/heads/main\n");
        stream.push_str(&format!("committer Ada <ada@example.org> {} +0000\n", 1_700_000_000 + commit * 60));
        let message = format!("change {commit}");
        stream.push_str(&format!("data {}\n{message}\n", message.len()));
        let files: Vec<u32> =
            if commit == 0 { (0..400).collect() } else { (0..4).map(|i| (commit * 7 + i * 101) % 400).collect() };
        for file in files {
            let body = format!(
                "+++\ntitle = \"Page {file}\"\n+++\nVersion {commit} of page {file}.\n{}\n",
                "text ".repeat(40)
            );
            stream.push_str(&format!(
                "M 100644 inline content/s{}/p{file}.md\ndata {}\n{body}\n",
                file % 20,
                body.len()
            ));
        }
        if commit % 100 == 99 {
            stream.push_str(&format!(
                "tag v{}\nfrom refs/heads/main\ntagger Ada <ada@example.org> 1700000000 +0000\ndata 7\nrelease\n",
                commit / 100
            ));
        }
    }
    stream
}

fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

#[test]
fn fifty_clones_at_once_all_succeed_within_the_budget() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    server.git_ok(tmp.path(), &["init", "-q", "-b", "main", src.to_str().unwrap()]);
    let mut import =
        Command::new("git").current_dir(&src).args(["fast-import", "--quiet"]).stdin(Stdio::piped()).spawn().unwrap();
    import.stdin.take().unwrap().write_all(history().as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    let objects = server.git_ok(&src, &["count-objects", "-v"]);
    server.git_ok(&src, &["push", "-q", "--mirror", &server.url()]);
    // Settled: the background maintenance has rewritten the pushed pack with its reusable
    // region, which clones then copy (what a server serving clones is, past its first minute).
    let settled = (0..600).any(|_| {
        let packs = std::fs::read_dir(server.repo_dir.join("objects/pack")).unwrap();
        let found = packs.flatten().any(|e| e.path().extension().is_some_and(|x| x == "reuse"));
        found || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(settled, "the server never consolidated the pushed history");

    let pid = server.pid();
    let idle = status_kib(pid, "VmRSS");
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let clones: Vec<_> = (0..50)
        .map(|i| {
            let dest = tmp.path().join(format!("clone{i}"));
            // From two addresses: one may hold at most 32 connections (`max_connections_per_ip`).
            let ssh = format!("{} -o BindAddress=127.0.0.{}", server.ssh_command(), 2 + i % 2);
            git_command(tmp.path(), &ssh).args(["clone", "-q", "--mirror", &server.url()]).arg(&dest).spawn().unwrap()
        })
        .collect();
    for (i, mut clone) in clones.into_iter().enumerate() {
        assert!(clone.wait().unwrap().success(), "clone {i} failed");
    }
    let peak_above_idle_mib = (status_kib(pid, "VmHWM").saturating_sub(idle)) / 1024;
    for i in [0, 49] {
        let clone = tmp.path().join(format!("clone{i}"));
        assert_eq!(rev(&server, &clone, "main"), rev(&server, &src, "main"));
        assert_eq!(server.git_ok(&clone, &["tag"]).lines().count(), 20, "clone {i}");
    }
    // The budget bounds pack generation; the fifty SSH sessions themselves add their buffers.
    let budget_mib = 256;
    let sessions_mib = 50;
    assert!(
        peak_above_idle_mib <= budget_mib + sessions_mib,
        "fifty clones of {} raised the server by {peak_above_idle_mib} MiB",
        objects.lines().find(|l| l.starts_with("in-pack")).unwrap_or_default()
    );
    eprintln!("fifty clones: server peak {peak_above_idle_mib} MiB above idle");
    server.assert_repository_sound();
}
