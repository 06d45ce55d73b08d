//! A quick check of a repository's storage, run when the server starts and when a publish
//! fails: every pack has its index and every index its pack, each index is whole (its own
//! checksum) and belongs to its pack (the pack's trailing checksum), and every ref names an
//! object that is there — for a branch, a commit whose tree is there.
//!
//! It reads each index once and each pack's last bytes, so it costs milliseconds, not the minutes
//! of reading every object (`git fsck`): what it finds is damage done to the files from outside
//! (a disk, a restore, a hand), which the server reports on `/readyz` while it keeps serving
//! the last good snapshot.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix_pack as pack;

/// What is wrong with the repository at `git_dir`, one line per finding; empty when nothing is.
pub fn check(git_dir: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    check_packs(&git_dir.join("objects/pack"), &mut problems);
    check_refs(git_dir, &mut problems);
    problems
}

fn check_packs(dir: &Path, problems: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        problems.push(format!("{}: cannot be read", dir.display()));
        return;
    };
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for name in &names {
        let Some(stem) = name.strip_suffix(".idx").filter(|s| s.starts_with("pack-")) else {
            if let Some(stem) = name.strip_suffix(".pack").filter(|s| s.starts_with("pack-")) {
                if !names.contains(&format!("{stem}.idx")) {
                    problems.push(format!("{name}: a pack without its index"));
                }
            }
            continue;
        };
        if !names.contains(&format!("{stem}.pack")) {
            problems.push(format!("{name}: an index without its pack"));
            continue;
        }
        let index = match pack::index::File::at(dir.join(name), gix::hash::Kind::Sha1) {
            Ok(index) => index,
            Err(e) => {
                problems.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        if let Err(e) = index.verify_checksum(&mut gix::progress::Discard, &AtomicBool::new(false)) {
            problems.push(format!("{name}: damaged: {e}"));
            continue;
        }
        match pack::data::File::at(dir.join(format!("{stem}.pack")), gix::hash::Kind::Sha1) {
            Ok(data) if data.checksum() != index.pack_checksum() => {
                problems.push(format!("{stem}.pack: its checksum is not the one its index names"));
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("{stem}.pack: unreadable: {e}")),
        }
    }
}

fn check_refs(git_dir: &Path, problems: &mut Vec<String>) {
    let repo = match gix::open(git_dir) {
        Ok(repo) => repo,
        Err(e) => {
            problems.push(format!("the repository cannot be opened: {e}"));
            return;
        }
    };
    let refs = match repo.references() {
        Ok(refs) => refs,
        Err(e) => {
            problems.push(format!("its refs cannot be read: {e}"));
            return;
        }
    };
    let all = match refs.all() {
        Ok(all) => all,
        Err(e) => {
            problems.push(format!("its refs cannot be read: {e}"));
            return;
        }
    };
    for reference in all {
        let reference = match reference {
            Ok(r) => r,
            Err(e) => {
                problems.push(format!("a ref cannot be read: {e}"));
                continue;
            }
        };
        let name = reference.name().as_bstr().to_string();
        let Some(id) = reference.try_id().map(|id| id.detach()) else { continue };
        let object = match repo.find_object(id) {
            Ok(object) => object,
            Err(e) => {
                problems.push(format!("{name} names {id}, which is missing: {e}"));
                continue;
            }
        };
        if name.starts_with("refs/heads/") {
            if let Err(e) = object
                .try_into_commit()
                .map_err(|e| e.to_string())
                .and_then(|c| c.tree().map(|_| ()).map_err(|e| e.to_string()))
            {
                problems.push(format!("{name} names {id}, whose tree cannot be read: {e}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A bare repository with one packed commit on `main`; its pack's path stem.
    fn packed(dir: &Path) -> std::path::PathBuf {
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("a.txt"), "a\n").unwrap();
        git(&work, &["add", "a.txt"]);
        git(&work, &["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-qm", "one"]);
        git(dir, &["clone", "-q", "--bare", "work", "repo.git"]);
        git(&dir.join("repo.git"), &["repack", "-adq"]);
        let pack_dir = dir.join("repo.git/objects/pack");
        let idx = std::fs::read_dir(&pack_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "idx"))
            .unwrap();
        idx.with_extension("")
    }

    #[test]
    fn a_sound_repository_has_no_findings() {
        let tmp = tempfile::tempdir().unwrap();
        packed(tmp.path());
        assert_eq!(check(&tmp.path().join("repo.git")), Vec::<String>::new());
    }

    #[test]
    fn damage_is_found_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let stem = packed(tmp.path());
        let repo = tmp.path().join("repo.git");
        let idx = stem.with_extension("idx");
        // A flipped byte inside the index (in its first object id: after the 8-byte header and
        // the 1,024-byte fan-out table).
        let mut bytes = std::fs::read(&idx).unwrap();
        bytes[1032 + 5] ^= 0x40;
        std::fs::write(&idx, &bytes).unwrap();
        let found = check(&repo);
        assert!(found.iter().any(|f| f.contains(".idx: damaged")), "{found:?}");
        // The index gone: the pack is named, and main's commit is missing.
        std::fs::remove_file(&idx).unwrap();
        let found = check(&repo);
        assert!(found.iter().any(|f| f.contains("a pack without its index")), "{found:?}");
        assert!(found.iter().any(|f| f.starts_with("refs/heads/main names") && f.contains("missing")), "{found:?}");
        // Garbage for an index: unreadable, not a panic.
        std::fs::write(&idx, b"not an index").unwrap();
        let found = check(&repo);
        assert!(found.iter().any(|f| f.contains(".idx: unreadable")), "{found:?}");
    }
}
