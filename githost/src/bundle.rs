//! Git bundles (format v2): a repository's refs and every object they reach, in one file — what
//! `git bundle create FILE --all` writes and `git clone FILE` reads. Backups are made of them.
//!
//! [`write`] takes the refs as they are at one instant (a reader guard keeps the packs it reads
//! while maintenance runs) and writes the objects with the same pack writer as clones. [`read`]
//! takes a bundle into an empty repository through the quarantine a push goes through (indexing,
//! limits, connectivity), then creates the refs in one transaction.

use std::io::{BufRead, Read, Write};

use bstr::ByteSlice;
use gix::objs::Exists as _;
use gix::ObjectId;

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::pack_writer::PackWriter;
use crate::quarantine::Quarantine;
use crate::refs::{self, Cas, RefEntry};
use crate::repository::Repository;
use crate::upload_pack::commits::Commits;
use crate::upload_pack::pack::Entries;
use crate::upload_pack::plan;

const SIGNATURE: &str = "# v2 git bundle\n";
/// Longest header line accepted (an id, a space, a ref name).
const MAX_LINE: usize = 4096;
/// Most refs accepted in a bundle's header.
const MAX_REFS: usize = 100_000;

/// Write every ref of `repo` and the objects they reach to `out` as a bundle. Returns the refs
/// written (the repository's state at the moment they were read).
pub fn write(repo: &Repository, out: impl Write) -> Result<Vec<RefEntry>> {
    let _reading = repo.reader();
    let local = repo.local();
    let refs = refs::list(&local)?;
    let mut header = String::from(SIGNATURE);
    for r in &refs {
        header.push_str(&format!("{} {}\n", r.id, r.name));
    }
    header.push('\n');
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    out.write_all(header.as_bytes()).map_err(Error::Io)?;
    let mut seen = std::collections::HashSet::new();
    let wants: Vec<ObjectId> = refs.iter().map(|r| r.id).filter(|id| seen.insert(*id)).collect();
    let objects = if wants.is_empty() {
        Vec::new()
    } else {
        let req = plan::Request { wants, ..Default::default() };
        plan::plan(&mut Commits::new(&local), &req, &refs)?.objects
    };
    let count = u32::try_from(objects.len()).map_err(|_| Error::LimitExceeded("too many objects".into()))?;
    let mut pack = PackWriter::new(&mut out, count, false)?;
    Entries { thin: false, ofs_delta: true, may_refer_to: &|_| false }.append(&local, objects, &mut pack)?;
    pack.finish()?;
    out.flush().map_err(Error::Io)?;
    Ok(refs)
}

/// Read a bundle from `input` into `repo`, which must have no refs. Returns the refs created.
pub fn read(repo: &Repository, input: impl Read, limits: &Limits) -> Result<Vec<(String, ObjectId)>> {
    let local = repo.local();
    if !refs::list(&local)?.is_empty() {
        return Err(Error::Protocol("the repository is not empty: a bundle is restored into an empty one".into()));
    }
    let mut input = std::io::BufReader::with_capacity(64 * 1024, input);
    let wanted = read_header(&mut input)?;
    let mut quarantine = Quarantine::new(&repo.objects_dir())?;
    if !wanted.is_empty() {
        quarantine.receive(&mut input, local.objects.clone().into_inner(), limits)?;
        quarantine.check_connectivity(limits)?;
    }
    for (name, id) in &wanted {
        if !quarantine.objects().exists(id) {
            return Err(Error::Protocol(format!("the bundle names {name} at {id}, which it does not hold")));
        }
    }
    let _lock = repo.lock()?;
    quarantine.migrate()?;
    let changes: Vec<Cas> = wanted
        .iter()
        .map(|(name, id)| {
            let name = refs::validate_name(name.as_bytes().as_bstr()).map_err(Error::Protocol)?;
            Ok(Cas { name, old: ObjectId::null(gix::hash::Kind::Sha1), new: *id })
        })
        .collect::<Result<_>>()?;
    refs::apply(&local, &changes, "restored from a bundle").map_err(Error::Protocol)?;
    // HEAD stays the repository's own (a symbolic ref to `main`); the bundle's HEAD line is
    // skipped when read.
    repo.refs_changed();
    Ok(wanted)
}

/// The signature and the ref lines, up to the empty line before the pack. Refuses bundles with
/// prerequisites (incremental bundles need history the repository does not have), other
/// versions, bad ids or names, and overlong or endless headers.
fn read_header(input: &mut impl BufRead) -> Result<Vec<(String, ObjectId)>> {
    let bad = |what: String| Error::Protocol(format!("not a bundle this server restores: {what}"));
    let mut line = Vec::new();
    let mut next = |line: &mut Vec<u8>| -> Result<()> {
        line.clear();
        let n = input.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', line).map_err(Error::Io)?;
        if n == 0 || !line.ends_with(b"\n") {
            return Err(bad("the header ends early or has a line too long".into()));
        }
        line.pop();
        Ok(())
    };
    next(&mut line)?;
    if line != SIGNATURE.trim_end().as_bytes() {
        return Err(bad(format!("the first line is {:?}", line.as_bstr())));
    }
    let mut refs = Vec::new();
    loop {
        next(&mut line)?;
        if line.is_empty() {
            return Ok(refs);
        }
        if line.starts_with(b"-") {
            return Err(bad("it has prerequisites (an incremental bundle)".into()));
        }
        if refs.len() >= MAX_REFS {
            return Err(bad(format!("more than {MAX_REFS} refs")));
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("a ref line is not UTF-8".into()))?;
        let (id, name) = text.split_once(' ').ok_or_else(|| bad(format!("ref line {text:?}")))?;
        let id = ObjectId::from_hex(id.as_bytes()).map_err(|_| bad(format!("ref line {text:?}")))?;
        if name == "HEAD" {
            continue; // HEAD is the repository's own (a symbolic ref to main)
        }
        refs::validate_name(name.as_bytes().as_bstr()).map_err(|e| bad(format!("{name:?}: {e}")))?;
        refs.push((name.to_string(), id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_git::git;

    #[test]
    fn a_bundle_git_reads_and_a_round_trip_keeps_every_ref() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("w");
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for i in 0..5 {
            std::fs::write(work.join("f.txt"), format!("{i}\n").repeat(100)).unwrap();
            git(&work, &["add", "-A"]);
            git(&work, &["commit", "-qm", &format!("c{i}")]);
        }
        git(&work, &["tag", "-a", "v1", "-m", "one"]);
        git(&work, &["branch", "side", "HEAD~2"]);
        let source = Repository::open_or_init("w", work.join(".git")).unwrap();
        let file = tmp.path().join("site.bundle");
        let written = write(&source, std::fs::File::create(&file).unwrap()).unwrap();
        assert_eq!(written.len(), 3, "{written:?}");

        // git reads it.
        git(tmp.path(), &["clone", "-q", "--mirror", file.to_str().unwrap(), "by-git.git"]);
        git(&tmp.path().join("by-git.git"), &["bundle", "verify", "-q", file.to_str().unwrap()]);
        git(&tmp.path().join("by-git.git"), &["fsck", "--strict", "--no-progress"]);

        // We read it into an empty repository: the same refs, fsck clean.
        let target = Repository::open_or_init("t", tmp.path().join("restored.git")).unwrap();
        let restored = read(&target, std::fs::File::open(&file).unwrap(), &Limits::default()).unwrap();
        assert_eq!(restored.len(), 3);
        let refs = |dir: &std::path::Path| git(dir, &["for-each-ref", "--format=%(objectname) %(refname)"]);
        assert_eq!(refs(&tmp.path().join("restored.git")), refs(&work));
        git(&tmp.path().join("restored.git"), &["fsck", "--strict", "--no-progress"]);
        // Not twice.
        assert!(read(&target, std::fs::File::open(&file).unwrap(), &Limits::default()).is_err());
    }

    #[test]
    fn hostile_headers_are_refused() {
        let id = "0123456789012345678901234567890123456789";
        for (text, expected) in [
            ("", "ends early"),
            ("# v3 git bundle\n\n", "first line"),
            ("# v2 git bundle\n-0123 prerequisite\n\n", "prerequisites"),
            ("# v2 git bundle\nnot-an-id refs/heads/main\n\n", "ref line"),
            (&format!("# v2 git bundle\n{id} refs/heads/../x\n\n"), "refs/heads/../x"),
            (&format!("# v2 git bundle\n{id} refs/heads/main\n"), "ends early"),
            (&format!("# v2 git bundle\n{}\n\n", "x".repeat(MAX_LINE + 10)), "too long"),
        ] {
            let e = read_header(&mut text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        let ok =
            read_header(&mut format!("# v2 git bundle\n{id} HEAD\n{id} refs/heads/main\n\nPACK").as_bytes()).unwrap();
        assert_eq!(ok.len(), 1);
    }
}
