//! A hostile or broken remote: the fetch conversation fed crafted bytes. Each case must end in a
//! clear error with the local object store and refs exactly as they were.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use githost::client::fetch::fetch_over;
use githost::client::{ClientError, FetchRequest, RefSpec};
use githost::pktline::{write_data, write_flush, write_text};
use githost::{Limits, Repository};

use crate::support::git;

/// `git pack-objects --stdout` with `input` on stdin.
fn pack(repo: &Path, args: &[&str], input: &str) -> Vec<u8> {
    let mut child = Command::new("git")
        .current_dir(repo)
        .args(["pack-objects", "--stdout", "-q"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A v0 conversation: refs advertised (no side-band), `NAK`, then `pack`.
fn conversation(refs: &[(&str, &str)], pack: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    for (i, (id, name)) in refs.iter().enumerate() {
        if i == 0 {
            write_data(&mut s, format!("{id} {name}\0ofs-delta thin-pack\n").as_bytes()).unwrap();
        } else {
            write_text(&mut s, format!("{id} {name}")).unwrap();
        }
    }
    write_flush(&mut s).unwrap();
    write_text(&mut s, "NAK").unwrap();
    s.extend_from_slice(pack);
    s
}

fn fetch_into(repo: &Repository, input: Vec<u8>) -> Result<githost::client::FetchOutcome, ClientError> {
    let spec = vec![RefSpec::parse("+refs/heads/*:refs/heads/*").unwrap()];
    fetch_over(repo, FetchRequest::new(spec), &Limits::default(), &input[..], Vec::new())
}

/// Nothing stored: no refs, no packs, no loose objects, no quarantine.
fn assert_untouched(dir: &Path) {
    assert_eq!(git(dir, &["for-each-ref"]), "", "a ref was written");
    let objects: Vec<_> = walk(&dir.join("objects"));
    assert!(objects.is_empty(), "objects were stored: {objects:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.ends_with("info/packs") {
            out.push(p);
        }
    }
    out
}

#[test]
fn broken_packs_and_advertisements_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    let text: String = (0..400).map(|i| format!("line {i} of a file long enough to be deltified\n")).collect();
    std::fs::write(src.join("big.txt"), &text).unwrap();
    git(&src, &["add", "."]);
    git(&src, &["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-m", "a"]);
    let a = git(&src, &["rev-parse", "HEAD"]);
    std::fs::write(src.join("big.txt"), format!("{text}one more line\n")).unwrap();
    git(&src, &["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "-am", "b"]);
    let b = git(&src, &["rev-parse", "HEAD"]);
    let full = pack(&src, &["--revs"], &format!("{b}\n"));

    let dir = tmp.path().join("client.git");
    let repo = Repository::open_or_init("client", &dir).unwrap();

    // 1. A truncated pack.
    let cut = &full[..full.len() / 2];
    let err = fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], cut)).unwrap_err();
    assert!(matches!(err, ClientError::Local(_) | ClientError::Io(_)), "{err}");
    assert_untouched(&dir);

    // 2. A thin pack whose delta bases we do not have.
    let thin = pack(&src, &["--revs", "--thin"], &format!("{b}\n^{a}\n"));
    let err = fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], &thin)).unwrap_err();
    assert!(err.to_string().to_lowercase().contains("pack"), "{err}");
    assert_untouched(&dir);

    // 3. A pack with the commit but not its tree and parent: not connected.
    let lonely = pack(&src, &[], &format!("{b}\n"));
    let err = fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], &lonely)).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_untouched(&dir);

    // 4. A valid pack that lacks the advertised tip.
    let only_a = pack(&src, &["--revs"], &format!("{a}\n"));
    let err = fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], &only_a)).unwrap_err();
    assert!(err.to_string().contains("lacks"), "{err}");
    assert_untouched(&dir);

    // 5. Garbage instead of an advertisement, and an ERR packet.
    for input in [b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), b"0000".to_vec(), Vec::new(), b"00ffshort".to_vec()] {
        let r = fetch_into(&repo, input.clone());
        assert!(r.is_err() || r.as_ref().is_ok_and(|o| o.changes.is_empty()), "{input:?}: {r:?}");
    }
    let mut err_line = Vec::new();
    write_text(&mut err_line, "ERR upload-pack: not our ref").unwrap();
    let err = fetch_into(&repo, err_line).unwrap_err();
    assert!(matches!(&err, ClientError::Remote(m) if m.contains("not our ref")), "{err}");
    assert_untouched(&dir);

    // 6. Random bytes as the pack.
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    assert!(fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], &noise)).is_err());
    assert_untouched(&dir);

    // And the good pack is taken.
    let out = fetch_into(&repo, conversation(&[(&b, "refs/heads/main")], &full)).unwrap();
    assert_eq!(out.changes.len(), 1);
    crate::support::assert_sound(&dir);
}
