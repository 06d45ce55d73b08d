//! Targets of the Git host: packet lines, the SSH exec line, ref names, whole receive-pack and
//! upload-pack conversations against the fixed repository, and pushed packs through the
//! quarantine, checked against `git index-pack --strict`.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use bstr::BStr;
use githost::pktline::{self, Packet, PktReader};
use githost::protocol::ProtocolVersion;
use githost::quarantine::Quarantine;
use githost::receive_pack::ReceivePack;
use githost::upload_pack::UploadPack;
use githost::{Hooks, Limits, PreReceive, Principal, PushContext};

use crate::repo;

/// A packet as read, owned, for comparing two reads.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Data(Vec<u8>),
    Flush,
    Delim,
    ResponseEnd,
}

fn read_packets(data: &[u8]) -> Vec<Owned> {
    let mut reader = PktReader::new(data);
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = reader.read_opt() {
        packets.push(match packet {
            Packet::Data(d) => Owned::Data(d.to_vec()),
            Packet::Flush => Owned::Flush,
            Packet::Delim => Owned::Delim,
            Packet::ResponseEnd => Owned::ResponseEnd,
        });
    }
    packets
}

/// Packet lines: whatever is read, written back with our writer, reads the same; and the same
/// bytes as a side-band stream (a pack or a status report) end without a panic.
pub fn pkt_line(data: &[u8]) {
    let packets = read_packets(data);
    let mut written = Vec::new();
    for packet in &packets {
        match packet {
            Owned::Data(d) => pktline::write_data(&mut written, d).expect("a data line read is one we can write"),
            Owned::Flush => pktline::write_flush(&mut written).expect("in memory"),
            Owned::Delim => pktline::write_delim(&mut written).expect("in memory"),
            Owned::ResponseEnd => written.extend_from_slice(b"0002"),
        }
    }
    assert_eq!(read_packets(&written), packets, "packet lines written back read differently");

    let mut reader = PktReader::new(data);
    let mut band1 = Vec::new();
    let _ = reader.with_sideband_data(
        |_, _| std::ops::ControlFlow::Continue(()),
        |r| io::copy(&mut io::Read::take(r, 1 << 20), &mut band1),
    );
}

/// The SSH `exec` line: a command accepted names a repository that is a plain name, so the
/// path it becomes under the data directory never leaves it.
pub fn ssh_command(data: &[u8]) {
    let Some(line) = crate::text(data) else { return };
    if let Ok(command) = githost::command::parse(line) {
        let name = &command.repository;
        assert!(
            !name.is_empty()
                && !name.starts_with('.')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
            "{line:?} names repository {name:?}"
        );
    }
}

/// Ref names: a name our receive-pack accepts is one `git check-ref-format` accepts.
pub fn ref_name(data: &[u8]) {
    let name = BStr::new(data);
    let Ok(full) = githost::refs::validate_name(name) else { return };
    assert_eq!(full.as_bstr(), name, "a validated name is the name given");
    let output = Command::new("git")
        .arg("check-ref-format") // no `--`, which it would take for the name; ours start `refs/`
        .arg(OsStr::from_bytes(data))
        .output()
        .expect("git runs");
    assert!(output.status.success(), "we accept ref name {name:?}, git check-ref-format refuses it");
}

/// Hooks that refuse every push at pre-receive: the conversation runs through commands,
/// capabilities, push options, the pack into the quarantine and its checks, and stores nothing.
struct RefuseAll;

impl Hooks for RefuseAll {
    fn pre_receive(&self, _push: &PushContext<'_>) -> PreReceive {
        PreReceive { refuse_all: Some("fuzzing: nothing is stored".into()), ..PreReceive::accept() }
    }
}

/// Limits of the targets: the server's, with one indexing thread (repeatable runs) and objects
/// small enough that no input makes the fuzzer itself run out of memory.
fn limits() -> Limits {
    Limits {
        index_threads: 1,
        max_object_bytes: 16 * 1024 * 1024,
        max_pack_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    }
}

/// What a conversation must leave as it was: every ref, and no quarantine left behind.
fn state(fixed: &repo::Fixed) -> (Vec<(String, String)>, Vec<PathBuf>) {
    let refs = githost::refs::list(&fixed.repo.local())
        .expect("refs of the fixed repository")
        .into_iter()
        .map(|r| (r.name.to_string(), r.id.to_string()))
        .collect();
    let debris = std::fs::read_dir(fixed.git_dir.join("objects"))
        .expect("objects directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("incoming-")))
        .collect();
    (refs, debris)
}

/// A whole push conversation (v0 or v1 by the first byte) as the client's half.
pub fn receive_pack(data: &[u8]) {
    let _ = receive_pack_answer(data);
}

/// What the server answers to [`receive_pack`]'s input (for tests that the seeds get as far
/// as the hook).
pub fn receive_pack_answer(data: &[u8]) -> Vec<u8> {
    let fixed = repo::fixed();
    let _exclusive = repo::exclusive();
    let before = state(fixed);
    let principal = Principal { id: "fuzz".into(), key_fingerprint: "SHA256:fuzz".into() };
    let limits = limits();
    let version = if data.first().is_some_and(|b| b & 1 == 1) { ProtocolVersion::V1 } else { ProtocolVersion::V0 };
    let push = ReceivePack { repo: &fixed.repo, hooks: &RefuseAll, principal: &principal, limits: &limits, version };
    let mut answer = Vec::new();
    let _ = push.serve(data.get(1..).unwrap_or_default(), &mut answer);
    assert_eq!(state(fixed), before, "a refused push changed the repository or left a quarantine");
    answer
}

/// What the server answers to a clone or fetch conversation's client half.
pub fn upload_pack_answer(data: &[u8], version: ProtocolVersion) -> Vec<u8> {
    let fixed = repo::fixed();
    let _exclusive = repo::exclusive();
    let mut answer = Vec::new();
    let _ = UploadPack { repo: &fixed.repo, version, budget: None }.serve(data, &mut answer);
    answer
}

/// A whole clone or fetch conversation in protocol v0 (wants, haves, shallow, deepen, done).
pub fn upload_pack_v0(data: &[u8]) {
    let _ = upload_pack_answer(data, ProtocolVersion::V0);
}

/// A whole clone or fetch conversation in protocol v2 (`ls-refs`, `fetch` with its arguments).
pub fn upload_pack_v2(data: &[u8]) {
    let _ = upload_pack_answer(data, ProtocolVersion::V2);
}

/// A pushed pack through the quarantine (thin packs completed from the fixed repository): one
/// the quarantine accepts must be one `git index-pack --strict --fix-thin` accepts over the same
/// repository.
pub fn pushed_pack(data: &[u8]) {
    let fixed = repo::fixed();
    let _exclusive = repo::exclusive();
    let limits = limits();
    let mut quarantine = Quarantine::new(&fixed.repo.objects_dir()).expect("a quarantine");
    let main = fixed.repo.local().objects.clone().into_inner();
    let mut input = data;
    let accepted = quarantine.receive(&mut input, main, &limits).and_then(|stats| {
        quarantine.check_connectivity(&limits)?;
        Ok(stats)
    });
    drop(quarantine);
    if let Ok(stats) = accepted {
        if stats.objects > 0 {
            if let Err(refusal) = git_index_pack(data) {
                panic!("the quarantine accepted a pack of {} objects that git refuses: {refusal}", stats.objects);
            }
        }
    }
}

/// Run `git index-pack --strict --fix-thin --stdin` on `pack` in a scratch repository that
/// borrows the fixed repository's objects; the pack it writes is removed after.
fn git_index_pack(pack: &[u8]) -> Result<(), String> {
    static SCRATCH: OnceLock<Mutex<PathBuf>> = OnceLock::new();
    let scratch = SCRATCH.get_or_init(|| {
        let git_dir = repo::scratch().join("index-pack.git");
        let status = Command::new("git").args(["init", "--quiet", "--bare"]).arg(&git_dir).status().expect("git runs");
        assert!(status.success(), "git init failed");
        let objects = repo::fixed().git_dir.join("objects");
        std::fs::write(git_dir.join("objects/info/alternates"), format!("{}\n", objects.display()))
            .expect("alternates written");
        Mutex::new(git_dir)
    });
    let git_dir = scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(&*git_dir)
        .args(["index-pack", "--stdin", "--strict", "--fix-thin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git index-pack starts");
    // git stops reading at a bad pack: a broken pipe here is its refusal, read from its status.
    let _ = child.stdin.take().expect("stdin").write_all(pack);
    let output = child.wait_with_output().expect("git index-pack ends");
    let pack_dir = git_dir.join("objects/pack");
    for entry in std::fs::read_dir(&pack_dir).into_iter().flatten().flatten() {
        let _ = std::fs::remove_file(entry.path());
    }
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
