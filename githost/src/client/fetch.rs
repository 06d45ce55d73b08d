//! Fetch and clone: what the remote has that we lack, brought in through the quarantine.
//!
//! The conversation, over protocol v2 when the server speaks it (`ls-refs`, then one `fetch`
//! with our haves and `done`) or v0 otherwise (refs in the advertisement, then wants, haves and
//! `done`, answered by a single `ACK`/`NAK`): refs are mapped by [`RefSpec`]s, only objects we
//! lack are asked for, and the pack arrives on side-band 1 (progress on 2, a fatal error on 3).
//!
//! What arrives is treated exactly like a push into our own host: indexed into a
//! [`Quarantine`] (thin packs completed from our store, size and delta-depth limits), checked
//! for connectivity, every new tip checked to be there, and only then moved in, under the
//! repository lock, with the local refs updated as one compare-and-swap transaction. A
//! truncated, corrupt or incomplete pack leaves the object store and every ref as they were.

use std::collections::{BinaryHeap, HashSet};
use std::io::{Read, Write};
use std::sync::Arc;

use bstr::{BString, ByteSlice};
use gix::objs::Exists;
use gix::ObjectId;

use super::advertisement::{self, RemoteRef, Version};
use super::Transport;
use super::{ClientError, Result};
use crate::limits::Limits;
use crate::pktline::{self, Packet, PktReader};
use crate::protocol::AGENT;
use crate::quarantine::Quarantine;
use crate::refs::{self, Cas};
use crate::repository::Repository;
use crate::upload_pack::commits::Commits;

/// Most commits offered as `have` in one fetch. Ref tips come first, so a follower that is
/// merely behind is matched at once; the rest walks back from them, newest first.
const MAX_HAVES: usize = 256;

/// Which remote refs become which local refs: `[+]src:dst` with full names, or both ending in
/// `*` (`+refs/heads/*:refs/remotes/origin/*`). `+` allows non-fast-forward updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpec {
    /// Non-fast-forward updates allowed.
    pub force: bool,
    src: String,
    dst: String,
    glob: bool,
}

impl RefSpec {
    /// Parse a refspec.
    pub fn parse(spec: &str) -> Result<RefSpec> {
        let bad = |why: &str| ClientError::RefSpec { spec: spec.to_string(), reason: why.to_string() };
        let (force, rest) = match spec.strip_prefix('+') {
            Some(r) => (true, r),
            None => (false, spec),
        };
        let (src, dst) = rest.split_once(':').ok_or_else(|| bad("expected src:dst"))?;
        let glob = src.ends_with("/*");
        if glob != dst.ends_with("/*") {
            return Err(bad("both sides or neither must end in /*"));
        }
        for side in [src, dst] {
            let name = side.strip_suffix("/*").unwrap_or(side);
            if name.contains('*') || refs::validate_name(name.as_bytes().as_bstr()).is_err() {
                return Err(bad(&format!("{side:?} is not a ref name under refs/")));
            }
        }
        let strip = |s: &str| s.strip_suffix('*').unwrap_or(s).to_string();
        Ok(RefSpec { force, src: strip(src), dst: strip(dst), glob })
    }

    /// The local name for remote ref `name`, if this spec maps it.
    pub fn map(&self, name: &[u8]) -> Option<BString> {
        if self.glob {
            let rest = name.strip_prefix(self.src.as_bytes())?;
            let mut out = BString::from(self.dst.as_bytes());
            out.extend_from_slice(rest);
            refs::validate_name(out.as_bstr()).ok()?;
            Some(out)
        } else {
            (name == self.src.as_bytes()).then(|| self.dst.as_bytes().into())
        }
    }

    /// Whether local ref `name` is one this spec writes (for pruning).
    fn owns(&self, name: &[u8]) -> bool {
        if self.glob {
            name.starts_with(self.dst.as_bytes())
        } else {
            name == self.dst.as_bytes()
        }
    }
}

/// What to fetch.
pub struct FetchRequest {
    /// The mappings of remote refs to local ones.
    pub refspecs: Vec<RefSpec>,
    /// Delete local refs written by `refspecs` whose remote ref no longer exists.
    pub prune: bool,
    /// Receives the remote's progress messages (`Counting objects…`), if set.
    pub progress: Option<super::Messages>,
    /// Decides about each ref update before anything is stored (a follower validates fetched
    /// commits like a push): it sees the fetched objects still in quarantine.
    pub vet: Option<Vet>,
    /// Remote values not to fetch (a follower's commits refused before: fetching them again
    /// would only refuse them again).
    pub skip: Vec<ObjectId>,
}

/// A decision about one fetched ref update: `Err(reason)` leaves that ref as it was, and the
/// objects only it needed are not kept.
pub type Vet = Box<dyn FnMut(&gix::Repository, &RefChange) -> Result<(), String> + Send>;

impl FetchRequest {
    /// Fetch with these refspecs, no pruning, no progress.
    pub fn new(refspecs: Vec<RefSpec>) -> Self {
        FetchRequest { refspecs, prune: false, progress: None, vet: None, skip: Vec::new() }
    }
}

/// One local ref moved by a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    /// The local ref.
    pub name: BString,
    /// Its value before (`None`: created).
    pub old: Option<ObjectId>,
    /// Its value now (`None`: deleted by pruning).
    pub new: Option<ObjectId>,
    /// Not a fast-forward.
    pub forced: bool,
}

/// What a fetch did.
#[derive(Debug, Default)]
pub struct FetchOutcome {
    /// Local refs that moved, were created or deleted.
    pub changes: Vec<RefChange>,
    /// Refs left alone, with why (a non-fast-forward without `+`).
    pub rejected: Vec<(BString, String)>,
    /// Every ref the remote listed.
    pub remote_refs: Vec<RemoteRef>,
    /// Objects in the stored pack (0 when everything was here already): the new objects, plus
    /// the delta bases a thin pack was completed with from our store.
    pub objects: u32,
    /// Pack bytes received.
    pub bytes: u64,
    /// Whether the remote spoke protocol v2.
    pub v2: bool,
}

/// Fetch over `connection` into `repo`.
pub async fn fetch(
    connection: &impl Transport,
    repo: Arc<Repository>,
    request: FetchRequest,
    limits: Limits,
) -> Result<FetchOutcome> {
    connection
        .run("git-upload-pack", connection.prefers_v2(), move |input, output| {
            fetch_over(&repo, request, &limits, input, output)
        })
        .await
}

/// Clone `url` into a new bare repository at `git_dir`: every branch and tag, `HEAD` as the
/// remote's.
pub async fn clone(
    connection: &impl Transport,
    name: &str,
    git_dir: &std::path::Path,
    limits: Limits,
) -> Result<(Arc<Repository>, FetchOutcome)> {
    if git_dir.join("HEAD").exists() {
        return Err(ClientError::Local(crate::Error::Fs {
            path: git_dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a repository is already there"),
        }));
    }
    let repo = Arc::new(Repository::open_or_init(name, git_dir)?);
    let specs = vec![RefSpec::parse("+refs/heads/*:refs/heads/*")?, RefSpec::parse("+refs/tags/*:refs/tags/*")?];
    let outcome = fetch(connection, repo.clone(), FetchRequest::new(specs), limits).await?;
    if let Some(target) = outcome.remote_refs.iter().find(|r| r.name == "HEAD").and_then(|r| r.symref_target.clone()) {
        if refs::validate_name(target.as_bstr()).is_ok() && target.starts_with(b"refs/heads/") {
            let head = git_dir.join("HEAD");
            let tmp = git_dir.join("HEAD.whispercms-tmp");
            std::fs::write(&tmp, format!("ref: {target}\n"))
                .and_then(|()| std::fs::rename(&tmp, &head))
                .map_err(crate::Error::fs(&head))?;
        }
    }
    Ok((repo, outcome))
}

/// A planned local update: `name` from `old` to `new`.
struct Planned {
    name: BString,
    old: Option<ObjectId>,
    new: Option<ObjectId>,
    force: bool,
}

/// The whole fetch conversation on blocking streams (also used directly by tests).
pub fn fetch_over(
    repo: &Repository,
    mut request: FetchRequest,
    limits: &Limits,
    input: impl Read,
    output: impl Write,
) -> Result<FetchOutcome> {
    // Requests are many small packet lines: one SSH packet per flush, not per line.
    let mut output = std::io::BufWriter::with_capacity(16 * 1024, output);
    let mut reader = PktReader::new(input);
    let mut adv = advertisement::read(&mut reader)?;
    let v2 = adv.version == Version::V2;
    let remote_refs = if v2 {
        if !adv.has("ls-refs") || !adv.has("fetch") {
            return Err(ClientError::Protocol("the v2 server offers no ls-refs or fetch".into()));
        }
        send_ls_refs(&adv, &request.refspecs, &mut output)?;
        advertisement::read_ls_refs(&mut reader)?
    } else {
        advertisement::apply_symrefs(&mut adv);
        std::mem::take(&mut adv.refs)
    };

    let local = repo.local();
    let planned = plan_updates(&local, &request, &remote_refs)?;
    let mut wants: Vec<ObjectId> = Vec::new();
    for p in &planned {
        if let Some(new) = p.new {
            if !local.objects.exists(&new) && !wants.contains(&new) {
                wants.push(new);
            }
        }
    }
    let mut outcome = FetchOutcome { v2, ..Default::default() };
    let quarantine = if wants.is_empty() {
        if !v2 {
            pktline::write_flush(&mut output)?; // v0: "I want nothing"
        }
        output.flush()?;
        None
    } else {
        let sideband = v2 || adv.has("side-band-64k") || adv.has("side-band");
        let haves = haves(&local, if sideband { MAX_HAVES } else { 1 })?;
        if v2 {
            send_v2_fetch(&adv, &wants, &haves, request.progress.is_some(), &mut output)?;
            read_v2_sections_until_pack(&mut reader)?;
        } else {
            send_v0_wants(&adv, &wants, &haves, request.progress.is_some(), &mut output)?;
            read_v0_acks(&mut reader, sideband)?;
        }
        let mut q = Quarantine::new(&repo.objects_dir())?;
        let main = local.objects.clone().into_inner();
        let stats = if sideband {
            let progress = &mut request.progress;
            let on_message = |text: &str| {
                if let Some(p) = progress.as_mut() {
                    p(text);
                }
            };
            super::read_sideband(&mut reader, on_message, |data| q.receive(data, main, limits))??
        } else {
            q.receive(reader.get_mut(), main, limits)?
        };
        q.check_connectivity(limits)?;
        outcome.objects = stats.objects;
        outcome.bytes = stats.bytes;
        drop(output); // nothing more to say: the remote sees EOF and ends
        Some(q)
    };
    apply(repo, &local, planned, quarantine, request.vet.as_mut(), &mut outcome)?;
    outcome.remote_refs = remote_refs;
    Ok(outcome)
}

/// The local updates `request` asks for, given what the remote has.
fn plan_updates(local: &gix::Repository, request: &FetchRequest, remote: &[RemoteRef]) -> Result<Vec<Planned>> {
    let mut planned: Vec<Planned> = Vec::new();
    let mut written: HashSet<BString> = HashSet::new();
    for r in remote {
        if r.name == "HEAD" {
            continue;
        }
        for spec in &request.refspecs {
            let Some(dst) = spec.map(&r.name) else { continue };
            if !written.insert(dst.clone()) || request.skip.contains(&r.id) {
                continue; // the first spec that maps a local ref wins
            }
            let current = refs::direct_value(local, dst.as_bstr())?
                .map_err(|why| ClientError::Local(crate::Error::Refs(format!("{dst}: {why}"))))?;
            if current != Some(r.id) {
                planned.push(Planned { name: dst, old: current, new: Some(r.id), force: spec.force });
            }
        }
    }
    if request.prune {
        for r in refs::list(local)? {
            let owned = request.refspecs.iter().any(|s| s.owns(&r.name));
            if owned && !written.contains(&r.name) {
                planned.push(Planned { name: r.name, old: Some(r.id), new: None, force: true });
            }
        }
    }
    Ok(planned)
}

/// Commits to offer as `have`: every local ref tip (tags peeled), then their ancestors, newest
/// first, up to `max` (a v0 server without side-band gets only the newest tip: its single ACK
/// must be the only line before the pack).
fn haves(local: &gix::Repository, max: usize) -> Result<Vec<ObjectId>> {
    let mut commits = Commits::new(local);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = BinaryHeap::new();
    let mut buf = Vec::new();
    for r in refs::list(local)? {
        let id = refs::peel_tag(&local.objects, r.id, &mut buf)?.unwrap_or(r.id);
        if let Some(info) = commits.try_get(id)? {
            let time = info.time;
            if seen.insert(id) {
                out.push(id);
                queue.push((time, id));
            }
        }
    }
    while let Some((_, id)) = queue.pop() {
        if out.len() >= max {
            break;
        }
        let parents = commits.get(id)?.parents.clone();
        for p in parents {
            if seen.insert(p) {
                if let Some(info) = commits.try_get(p)? {
                    queue.push((info.time, p));
                    out.push(p);
                }
            }
        }
    }
    out.truncate(max);
    Ok(out)
}

/// The start of a v2 request: the command, our capabilities, the delimiter before its arguments.
fn write_v2_command(adv: &advertisement::Advertisement, command: &str, out: &mut impl Write) -> Result<()> {
    pktline::write_text(out, format!("command={command}"))?;
    pktline::write_text(out, format!("agent={AGENT}"))?;
    if adv.has("object-format") {
        pktline::write_text(out, "object-format=sha1")?;
    }
    pktline::write_delim(out)?;
    Ok(())
}

fn send_ls_refs(adv: &advertisement::Advertisement, specs: &[RefSpec], out: &mut impl Write) -> Result<()> {
    write_v2_command(adv, "ls-refs", out)?;
    pktline::write_text(out, "peel")?;
    pktline::write_text(out, "symrefs")?;
    pktline::write_text(out, "ref-prefix HEAD")?;
    for spec in specs {
        pktline::write_text(out, format!("ref-prefix {}", spec.src))?;
    }
    pktline::write_flush(out)?;
    out.flush()?;
    Ok(())
}

fn send_v2_fetch(
    adv: &advertisement::Advertisement,
    wants: &[ObjectId],
    haves: &[ObjectId],
    progress: bool,
    out: &mut impl Write,
) -> Result<()> {
    write_v2_command(adv, "fetch", out)?;
    pktline::write_text(out, "thin-pack")?;
    pktline::write_text(out, "ofs-delta")?;
    if !progress {
        pktline::write_text(out, "no-progress")?;
    }
    for w in wants {
        pktline::write_text(out, format!("want {w}"))?;
    }
    for h in haves {
        pktline::write_text(out, format!("have {h}"))?;
    }
    pktline::write_text(out, "done")?;
    pktline::write_flush(out)?;
    out.flush()?;
    Ok(())
}

/// Skip the sections before `packfile` (acknowledgments, wanted-refs); a shallow-info section is
/// an error (we never ask for a shallow fetch, so a server sending one is confused).
fn read_v2_sections_until_pack<R: Read>(reader: &mut PktReader<R>) -> Result<()> {
    loop {
        let header = match reader.read()? {
            Packet::Data(d) => d.strip_suffix(b"\n").unwrap_or(d).to_vec(),
            other => return Err(ClientError::Protocol(format!("expected a section header, got {other:?}"))),
        };
        if let Some(message) = advertisement::err_packet(&header) {
            return Err(ClientError::Remote(message));
        }
        match header.as_slice() {
            b"packfile" => return Ok(()),
            b"acknowledgments" | b"wanted-refs" => loop {
                match reader.read()? {
                    Packet::Delim => break,
                    Packet::Flush => {
                        return Err(ClientError::Protocol("the server ended the fetch without a pack".into()))
                    }
                    _ => {}
                }
            },
            other => return Err(ClientError::Protocol(format!("unexpected section {:?}", other.as_bstr()))),
        }
    }
}

fn send_v0_wants(
    adv: &advertisement::Advertisement,
    wants: &[ObjectId],
    haves: &[ObjectId],
    progress: bool,
    out: &mut impl Write,
) -> Result<()> {
    // No multi_ack: with all haves sent before `done`, the server answers one ACK or NAK.
    let mut caps: Vec<&str> = ["side-band-64k", "thin-pack", "ofs-delta"].into_iter().filter(|c| adv.has(c)).collect();
    if !caps.contains(&"side-band-64k") && adv.has("side-band") {
        caps.push("side-band");
    }
    if !progress && adv.has("no-progress") {
        caps.push("no-progress");
    }
    let agent = format!("agent={AGENT}");
    if adv.has("agent") {
        caps.push(&agent);
    }
    for (i, w) in wants.iter().enumerate() {
        if i == 0 {
            pktline::write_text(out, format!("want {w} {}", caps.join(" ")))?;
        } else {
            pktline::write_text(out, format!("want {w}"))?;
        }
    }
    pktline::write_flush(out)?;
    for h in haves {
        pktline::write_text(out, format!("have {h}"))?;
    }
    pktline::write_text(out, "done")?;
    out.flush()?;
    Ok(())
}

/// The `ACK <id>` and `NAK` lines a server sends to a client without multi_ack after `done`.
/// git's upload-pack may send more than one ACK (one per have it finds common while no other
/// common commit is recorded yet), so with side-band every ACK/NAK line before the first band
/// packet is read. Without side-band the raw pack follows directly and cannot be peeked at:
/// exactly one line is read, and only ref tips are offered as haves (see [`fetch_over`]).
fn read_v0_acks<R: Read>(reader: &mut PktReader<R>, sideband: bool) -> Result<()> {
    let mut lines = 0;
    loop {
        if sideband && lines > 0 {
            match reader.peek_data()? {
                Some(d) if d.starts_with(b"ACK ") || d.starts_with(b"NAK") => {}
                _ => return Ok(()),
            }
        }
        match reader.read()? {
            Packet::Data(d) => {
                let line = d.strip_suffix(b"\n").unwrap_or(d);
                if let Some(message) = advertisement::err_packet(line) {
                    return Err(ClientError::Remote(message));
                }
                if line != b"NAK" && !line.starts_with(b"ACK ") {
                    return Err(ClientError::Protocol(format!("expected ACK or NAK, got {:?}", line.as_bstr())));
                }
            }
            other => return Err(ClientError::Protocol(format!("expected ACK or NAK, got {other:?}"))),
        }
        lines += 1;
        if !sideband {
            return Ok(());
        }
    }
}

/// Check the planned updates against what arrived, then move objects and refs in.
fn apply(
    repo: &Repository,
    local: &gix::Repository,
    planned: Vec<Planned>,
    quarantine: Option<Quarantine>,
    mut vet: Option<&mut Vet>,
    outcome: &mut FetchOutcome,
) -> Result<()> {
    let main_view;
    let objects = match &quarantine {
        Some(q) => q.objects(),
        None => {
            main_view = local.objects.clone().into_inner();
            &main_view
        }
    };
    let mut accepted = Vec::new();
    for p in planned {
        if let Some(new) = p.new {
            if !objects.exists(&new) {
                return Err(ClientError::Protocol(format!("the pack lacks {new}, the new value of {}", p.name)));
            }
        }
        let forced = match (p.old, p.new) {
            (Some(old), Some(new)) => !refs::is_ancestor_objects(objects, old, new)?,
            _ => false,
        };
        if forced && !p.force {
            outcome.rejected.push((p.name, "non-fast-forward".into()));
            continue;
        }
        let change = RefChange { name: p.name, old: p.old, new: p.new, forced };
        if let Some(vet) = vet.as_mut() {
            let mut view = local.clone();
            view.objects = gix::OdbHandle::from(objects.clone());
            if let Err(reason) = vet(&view, &change) {
                outcome.rejected.push((change.name, reason));
                continue;
            }
        }
        accepted.push(change);
    }
    if accepted.is_empty() {
        return Ok(()); // a quarantine with nothing to keep is dropped
    }
    let _lock = repo.lock()?;
    for c in &accepted {
        if refs::direct_value(local, c.name.as_bstr())?.ok() != Some(c.old) {
            return Err(ClientError::Local(crate::Error::Refs(format!(
                "{} moved locally during the fetch; nothing was changed",
                c.name
            ))));
        }
    }
    if let Some(q) = quarantine {
        q.migrate()?;
    }
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let changes = accepted
        .iter()
        .map(|c| {
            let name =
                refs::validate_name(c.name.as_bstr()).map_err(|e| ClientError::Protocol(format!("{}: {e}", c.name)))?;
            Ok(Cas { name, old: c.old.unwrap_or(null), new: c.new.unwrap_or(null) })
        })
        .collect::<Result<Vec<_>>>()?;
    refs::apply(local, &changes, "fetch").map_err(|e| ClientError::Local(crate::Error::Refs(e)))?;
    repo.refs_changed();
    outcome.changes = accepted;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refspecs_map_globs_and_exact_names() {
        let s = RefSpec::parse("+refs/heads/*:refs/remotes/origin/*").unwrap();
        assert!(s.force);
        assert_eq!(s.map(b"refs/heads/main").unwrap(), "refs/remotes/origin/main");
        assert_eq!(s.map(b"refs/heads/a/b").unwrap(), "refs/remotes/origin/a/b");
        assert!(s.map(b"refs/tags/v1").is_none());
        let e = RefSpec::parse("refs/heads/main:refs/heads/main").unwrap();
        assert!(!e.force && e.map(b"refs/heads/main").is_some() && e.map(b"refs/heads/mainx").is_none());
    }

    #[test]
    fn refspecs_refuse_nonsense() {
        for bad in [
            "",
            "refs/heads/main",
            "refs/heads/*:refs/heads/main",
            "HEAD:refs/heads/x",
            "refs/heads/*:../x/*",
            "refs/he*ds/x:refs/x",
            "+:",
        ] {
            assert!(RefSpec::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
