//! `git-receive-pack`: the server side of `git push`.
//!
//! The conversation (protocol v0/v1; push has no v2): we advertise refs and capabilities; the
//! client sends ref update commands, optionally push options, then a pack. The pack goes into a
//! [quarantine](crate::quarantine); we check it, ask the pre-receive hook, and only then move the
//! objects in and update the refs with compare-and-swap under the repository lock. The outcome is
//! reported per ref (`report-status`), hook messages go out on side-band 2.
//!
//! Invariant: nothing becomes visible to readers (no object, no ref) unless the push, or the
//! single ref for non-atomic pushes, was accepted; a refused or broken push changes nothing.

use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};

use bstr::{BString, ByteSlice};
use gix::objs::FindHeader as _;

use gix::ObjectId;

use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::hook::{Hooks, PostReceiveContext, PushContext, RefUpdate, UpdateKind};
use crate::keepalive::{self, KeepAlive};
use crate::limits::Limits;
use crate::pktline::{self, Packet, PktError, PktReader};
use crate::protocol::{parse_oid, split_capabilities, ProtocolVersion, AGENT};
use crate::quarantine::Quarantine;
use crate::refs::{self, Cas};
use crate::repository::Repository;
use crate::sideband::SidebandWriter;

/// Why a ref is not updated when it no longer has the value the client started from: another
/// push moved it meanwhile. (git's own receive-pack says `failed to update ref` here; the
/// client's `stale info` is its word for a `--force-with-lease` that did not hold, which a plain
/// `git push` never asked for.)
const MOVED: &str = "failed to update ref: it moved during this push; fetch and push again";

/// Everything a receive-pack session needs besides its streams.
pub struct ReceivePack<'a> {
    /// The repository pushed to.
    pub repo: &'a Repository,
    /// The application's hooks.
    pub hooks: &'a dyn Hooks,
    /// Who pushes.
    pub principal: &'a Principal,
    /// Resource limits.
    pub limits: &'a Limits,
    /// The protocol version the client asked for.
    pub version: ProtocolVersion,
}

/// Capabilities the client chose.
#[derive(Debug, Default)]
struct Caps {
    report_status: bool,
    side_band: bool,
    atomic: bool,
    push_options: bool,
}

/// One command line of the push, with its outcome so far.
struct Command {
    name: BString,
    old: ObjectId,
    new: ObjectId,
    /// `Some(reason)` once the command is refused.
    error: Option<String>,
    kind: UpdateKind,
}

/// Most ref updates one push may carry (a mirror push of many tags stays well below).
const MAX_COMMANDS: usize = 100_000;
/// Most bytes of command lines one push may send (bounds memory before any check runs).
const MAX_COMMAND_BYTES: usize = 32 * 1024 * 1024;

fn advertised_capabilities() -> String {
    format!(
        "report-status report-status-v2 delete-refs side-band-64k quiet atomic ofs-delta push-options \
         object-format=sha1 agent={AGENT}"
    )
}

impl ReceivePack<'_> {
    /// Run one push conversation over `input`/`output`.
    pub fn serve(&self, input: impl Read, output: impl Write + Send) -> Result<()> {
        let _reading = self.repo.reader();
        let repo = self.repo.local();
        let mut out = BufWriter::with_capacity(64 * 1024, output);
        self.advertise(&repo, &mut out)?;
        out.flush()?;

        let mut reader = PktReader::new(input);
        let (mut commands, caps) = read_commands(&mut reader)?;
        if commands.is_empty() {
            return Ok(()); // nothing to do ("Everything up-to-date")
        }
        let push_options = if caps.push_options { read_push_options(&mut reader)? } else { Vec::new() };
        let mut input = reader.into_inner();
        let mut sb = SidebandWriter::new(KeepAlive::new(out), caps.side_band);
        let keepalive = sb.inner_mut().handle();
        std::thread::scope(|scope| {
            if caps.side_band {
                let quiet = keepalive.handle();
                let interval = keepalive::interval(self.limits.idle_timeout);
                scope.spawn(move || quiet.run(interval));
            }
            let result = self.respond(&repo, &mut commands, &caps, &push_options, &mut input, &mut sb);
            keepalive.stop();
            result
        })?;
        if sb.enabled() {
            pktline::write_flush(sb.inner_mut())?;
        }
        sb.flush()?;
        for c in &commands {
            match &c.error {
                None => {
                    tracing::info!(user = %self.principal.id, r#ref = %c.name, old = %c.old, new = %c.new, kind = ?c.kind, "ref updated")
                }
                Some(reason) => {
                    tracing::info!(user = %self.principal.id, r#ref = %c.name, %reason, "ref update refused")
                }
            }
        }
        Ok(())
    }

    /// Everything after the commands: the pack, the checks, the ref updates, the report and
    /// the post-receive hook's messages (a keep-alive thread writes while this is quiet).
    fn respond(
        &self,
        repo: &gix::Repository,
        commands: &mut [Command],
        caps: &Caps,
        push_options: &[BString],
        input: &mut dyn Read,
        sb: &mut SidebandWriter<impl Write>,
    ) -> Result<()> {
        let unpack = self.receive(repo, commands, caps, push_options, input, sb);
        let applied: Vec<RefUpdate> = commands
            .iter()
            .filter(|c| c.error.is_none())
            .map(|c| RefUpdate { name: c.name.clone(), old: c.old, new: c.new, kind: c.kind })
            .collect();
        if caps.report_status {
            let mut report = Vec::new();
            match &unpack {
                Ok(()) => pktline::write_text(&mut report, "unpack ok")?,
                Err(e) => pktline::write_text(&mut report, format!("unpack {}", one_line(&e.to_string())))?,
            }
            for c in commands.iter() {
                match &c.error {
                    None => pktline::write_text(&mut report, format!("ok {}", c.name))?,
                    Some(reason) => pktline::write_text(&mut report, format!("ng {} {}", c.name, one_line(reason)))?,
                }
            }
            pktline::write_flush(&mut report)?;
            sb.write_all(&report)?;
        }
        if let Err(e) = &unpack {
            sb.progress(&format!("error: {e}\n"))?;
        }
        if !applied.is_empty() {
            self.repo.notify_watchers();
            let repo = self.repo.local();
            let messages = self.hooks.post_receive(&PostReceiveContext {
                principal: self.principal,
                repository: self.repo.name(),
                updates: &applied,
                repo: &repo,
            });
            self.repo.wake_maintenance();
            for m in messages {
                sb.progress(&format!("{m}\n"))?;
            }
        }
        Ok(())
    }

    fn advertise(&self, repo: &gix::Repository, out: &mut impl Write) -> Result<()> {
        if self.version == ProtocolVersion::V1 {
            pktline::write_text(out, "version 1")?;
        }
        let caps = advertised_capabilities();
        let refs = refs::list(repo)?;
        if refs.is_empty() {
            let null = ObjectId::null(gix::hash::Kind::Sha1);
            pktline::write_data(out, format!("{null} capabilities^{{}}\0{caps}\n").as_bytes())?;
        }
        for (i, r) in refs.iter().enumerate() {
            if i == 0 {
                pktline::write_data(out, format!("{} {}\0{caps}\n", r.id, r.name).as_bytes())?;
            } else {
                pktline::write_text(out, format!("{} {}", r.id, r.name))?;
            }
        }
        pktline::write_flush(out)?;
        Ok(())
    }

    /// Receive the pack and decide about every command. Returns the unpack status.
    fn receive(
        &self,
        repo: &gix::Repository,
        commands: &mut [Command],
        caps: &Caps,
        push_options: &[BString],
        input: &mut dyn Read,
        sb: &mut SidebandWriter<impl Write>,
    ) -> Result<()> {
        let needs_pack = commands.iter().any(|c| !c.new.is_null());
        let quarantine = if needs_pack {
            let started = std::time::Instant::now();
            let mut q = Quarantine::new(&self.repo.objects_dir())?;
            let main = repo.objects.clone().into_inner();
            let received = q.receive(input, main, self.limits).and_then(|stats| {
                q.check_connectivity(self.limits)?;
                Ok(stats)
            });
            match received {
                Ok(stats) => tracing::info!(
                    objects = stats.objects,
                    bytes = stats.bytes,
                    ms = started.elapsed().as_millis() as u64,
                    "pack received"
                ),
                Err(e) => {
                    for c in commands.iter_mut() {
                        c.error.get_or_insert_with(|| "unpacker error".into());
                    }
                    return Err(e);
                }
            }
            Some(q)
        } else {
            None
        };

        // From here on the pack is in; a failure refuses every ref not yet decided (no ref has
        // been written before the transactions at the very end, which report per ref).
        if let Err(e) = self.decide_and_apply(repo, commands, caps, push_options, quarantine, sb) {
            tracing::warn!(error = %e, "push failed after unpacking");
            for c in commands.iter_mut() {
                c.error.get_or_insert_with(|| format!("failed: {e}"));
            }
        }
        Ok(())
    }

    /// Per-ref checks, the pre-receive hook, then the ref transaction(s).
    fn decide_and_apply(
        &self,
        repo: &gix::Repository,
        commands: &mut [Command],
        caps: &Caps,
        push_options: &[BString],
        quarantine: Option<Quarantine>,
        sb: &mut SidebandWriter<impl Write>,
    ) -> Result<()> {
        self.check_commands(repo, commands, quarantine.as_ref())?;

        let updates: Vec<RefUpdate> = commands
            .iter()
            .filter(|c| c.error.is_none())
            .map(|c| RefUpdate { name: c.name.clone(), old: c.old, new: c.new, kind: c.kind })
            .collect();
        if !updates.is_empty() {
            let main_view;
            let objects = match &quarantine {
                Some(q) => q.objects(),
                None => {
                    main_view = repo.objects.clone().into_inner();
                    &main_view
                }
            };
            let mut view = repo.clone();
            view.objects = gix::OdbHandle::from(objects.clone());
            let started = std::time::Instant::now();
            let verdict = self.hooks.pre_receive(&PushContext {
                principal: self.principal,
                repository: self.repo.name(),
                updates: &updates,
                push_options,
                objects,
                repo: &view,
            });
            tracing::info!(
                updates = updates.len(),
                refused = verdict.refuse_all.is_some() || !verdict.refused.is_empty(),
                ms = started.elapsed().as_millis() as u64,
                "push checked"
            );
            for m in &verdict.messages {
                sb.progress(&format!("{m}\n"))?;
            }
            for c in commands.iter_mut().filter(|c| c.error.is_none()) {
                if let Some(reason) = &verdict.refuse_all {
                    c.error = Some(reason.clone());
                } else if let Some((_, reason)) = verdict.refused.iter().find(|(n, _)| *n == c.name) {
                    c.error = Some(reason.clone());
                }
            }
        }
        if caps.atomic {
            fail_atomic(commands);
        }
        self.apply(repo, commands, caps.atomic, quarantine)
    }

    /// Validate names, objects and old values of each command; fill in the update kind.
    fn check_commands(
        &self,
        repo: &gix::Repository,
        commands: &mut [Command],
        quarantine: Option<&Quarantine>,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        for c in commands.iter_mut() {
            if c.error.is_some() {
                continue;
            }
            if !seen.insert(c.name.clone()) {
                c.error = Some("duplicate ref update in one push".into());
                continue;
            }
            if let Err(reason) = refs::validate_name(c.name.as_bstr()) {
                c.error = Some(reason);
                continue;
            }
            if c.old.is_null() && c.new.is_null() {
                c.error = Some("nothing to do: old and new are both null".into());
                continue;
            }
            if !c.new.is_null() {
                let header = match quarantine {
                    Some(q) => q.objects().try_header(&c.new).map_err(Error::odb)?,
                    None => None,
                };
                let Some(header) = header else {
                    c.error = Some("missing necessary objects".into());
                    continue;
                };
                if c.name.starts_with(b"refs/heads/") && header.kind != gix::objs::Kind::Commit {
                    c.error = Some(format!("a branch must point at a commit, not a {}", header.kind));
                    continue;
                }
            }
            let current = match refs::direct_value(repo, c.name.as_bstr())? {
                Ok(current) => current,
                Err(reason) => {
                    c.error = Some(reason);
                    continue;
                }
            };
            let expected = (!c.old.is_null()).then_some(c.old);
            if current != expected {
                c.error = Some(MOVED.into());
                continue;
            }
            c.kind = classify(quarantine, c.old, c.new)?;
        }
        Ok(())
    }

    /// Move objects in and update refs, compare-and-swap, under the repository lock.
    fn apply(
        &self,
        repo: &gix::Repository,
        commands: &mut [Command],
        atomic: bool,
        quarantine: Option<Quarantine>,
    ) -> Result<()> {
        if commands.iter().all(|c| c.error.is_some()) {
            return Ok(()); // the quarantine is dropped: nothing is stored
        }
        let _lock = self.repo.lock()?;
        // Re-check under the lock: another push may have moved a ref since we looked.
        for c in commands.iter_mut().filter(|c| c.error.is_none()) {
            let current = refs::direct_value(repo, c.name.as_bstr())?.ok();
            if current != Some((!c.old.is_null()).then_some(c.old)) {
                c.error = Some(MOVED.into());
            }
        }
        if atomic {
            fail_atomic(commands);
        }
        if commands.iter().all(|c| c.error.is_some()) {
            return Ok(());
        }
        if let Some(q) = quarantine {
            q.migrate()?;
        }
        let cas = |c: &Command| Cas {
            name: refs::validate_name(c.name.as_bstr()).expect("validated before"),
            old: c.old,
            new: c.new,
        };
        let message = format!("push by {}", self.principal.id);
        if atomic {
            let changes: Vec<Cas> = commands.iter().filter(|c| c.error.is_none()).map(cas).collect();
            if let Err(e) = refs::apply(repo, &changes, &message) {
                for c in commands.iter_mut().filter(|c| c.error.is_none()) {
                    c.error = Some(format!("failed to update ref: {e}"));
                }
            }
        } else {
            for c in commands.iter_mut().filter(|c| c.error.is_none()) {
                if let Err(e) = refs::apply(repo, &[cas(c)], &message) {
                    c.error = Some(format!("failed to update ref: {e}"));
                }
            }
        }
        Ok(())
    }
}

/// Create, delete, fast-forward or not. Only a commit can be fast-forwarded (tags and other
/// objects moving are always non-fast-forward, as in git).
fn classify(quarantine: Option<&Quarantine>, old: ObjectId, new: ObjectId) -> Result<UpdateKind> {
    if old.is_null() {
        return Ok(UpdateKind::Create);
    }
    if new.is_null() {
        return Ok(UpdateKind::Delete);
    }
    let Some(objects) = quarantine.map(Quarantine::objects) else {
        return Ok(UpdateKind::NonFastForward);
    };
    let old_is_commit =
        objects.try_header(&old).map_err(Error::odb)?.is_some_and(|h| h.kind == gix::objs::Kind::Commit);
    Ok(if old_is_commit && refs::is_ancestor_objects(objects, old, new)? {
        UpdateKind::FastForward
    } else {
        UpdateKind::NonFastForward
    })
}

/// In an atomic push, one refused ref refuses all.
fn fail_atomic(commands: &mut [Command]) {
    if commands.iter().any(|c| c.error.is_some()) {
        for c in commands.iter_mut() {
            c.error.get_or_insert_with(|| "atomic push failed".into());
        }
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// Read the command list: `<old> <new> <ref>` lines, the first carrying capabilities after a
/// NUL, terminated by a flush. `shallow` lines of shallow clients are accepted and ignored: the
/// connectivity check decides whether the push is complete.
fn read_commands(reader: &mut PktReader<impl Read>) -> Result<(Vec<Command>, Caps)> {
    let mut commands = Vec::new();
    let mut caps = Caps::default();
    let mut first = true;
    let mut total_bytes = 0usize;
    loop {
        let packet = match reader.read_opt()? {
            // A client that hangs up before sending commands wants nothing.
            None if commands.is_empty() => break,
            None => return Err(PktError::Eof.into()),
            Some(p) => p,
        };
        let line: Vec<u8> = match packet {
            Packet::Flush => break,
            p @ Packet::Data(_) => p.line().unwrap_or_default().to_vec(),
            other => return Err(Error::Protocol(format!("unexpected {other:?} in the command list"))),
        };
        if line.starts_with(b"shallow ") {
            parse_oid(&line[8..])?;
            continue;
        }
        let (line, cap_list) = match line.find_byte(0) {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (&line[..], None),
        };
        if let Some(list) = cap_list {
            if !first {
                return Err(Error::Protocol("capabilities are only allowed on the first command".into()));
            }
            caps = parse_caps(list)?;
        }
        first = false;
        if line.len() < 83 || line[40] != b' ' || line[81] != b' ' {
            return Err(Error::Protocol(format!("malformed command '{}'", line.as_bstr())));
        }
        let old = parse_oid(&line[..40])?;
        let new = parse_oid(&line[41..81])?;
        let name = BString::from(&line[82..]);
        total_bytes += line.len();
        commands.push(Command { name, old, new, error: None, kind: UpdateKind::Create });
        if commands.len() > MAX_COMMANDS || total_bytes > MAX_COMMAND_BYTES {
            return Err(Error::LimitExceeded("too many ref updates in one push".into()));
        }
    }
    Ok((commands, caps))
}

fn parse_caps(list: &[u8]) -> Result<Caps> {
    let mut caps = Caps::default();
    for (name, value) in split_capabilities(list) {
        match (name, value) {
            (b"report-status" | b"report-status-v2", None) => caps.report_status = true,
            (b"side-band-64k", None) => caps.side_band = true,
            (b"atomic", None) => caps.atomic = true,
            (b"push-options", None) => caps.push_options = true,
            (b"quiet" | b"delete-refs" | b"ofs-delta", None) => {}
            (b"agent" | b"session-id", Some(_)) => {}
            (b"object-format", Some(b"sha1")) => {}
            (b"object-format", Some(other)) => {
                return Err(Error::Protocol(format!("unsupported object format '{}'", other.as_bstr())))
            }
            _ => {
                return Err(Error::Protocol(format!("unknown capability '{}'", name.as_bstr())));
            }
        }
    }
    Ok(caps)
}

fn read_push_options(reader: &mut PktReader<impl Read>) -> Result<Vec<BString>> {
    let mut options = Vec::new();
    loop {
        match reader.read()? {
            Packet::Flush => return Ok(options),
            p @ Packet::Data(_) => {
                options.push(BString::from(p.line().unwrap_or_default()));
                if options.len() > 1000 {
                    return Err(Error::LimitExceeded("too many push options".into()));
                }
            }
            other => return Err(Error::Protocol(format!("unexpected {other:?} in push options"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commands(input: &[u8]) -> Result<(Vec<Command>, Caps)> {
        read_commands(&mut PktReader::new(input))
    }

    fn pkt(s: &str) -> Vec<u8> {
        let mut v = Vec::new();
        pktline::write_data(&mut v, s.as_bytes()).unwrap();
        v
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn reads_commands_and_capabilities() {
        let mut input = pkt(&format!("{A} {B} refs/heads/main\0report-status side-band-64k atomic agent=git/2\n"));
        input.extend(pkt(&format!("{B} {A} refs/heads/dev\n")));
        input.extend(b"0000");
        let (cmds, caps) = commands(&input).unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1].name, "refs/heads/dev");
        assert!(caps.report_status && caps.side_band && caps.atomic && !caps.push_options);
    }

    #[test]
    fn refuses_unknown_capabilities() {
        let mut input = pkt(&format!("{A} {B} refs/heads/main\0report-status evil-cap\n"));
        input.extend(b"0000");
        let err = commands(&input).err().unwrap();
        assert!(err.to_string().contains("unknown capability 'evil-cap'"), "{err}");
    }

    #[test]
    fn refuses_malformed_commands() {
        for line in [
            format!("{A} {B}"),
            format!("{A}{B} refs/heads/x"),
            format!("zz{} {B} refs/heads/x", &A[2..]),
            "hello".to_string(),
        ] {
            let mut input = pkt(&line);
            input.extend(b"0000");
            assert!(commands(&input).is_err(), "accepted {line:?}");
        }
    }

    #[test]
    fn empty_command_list_means_nothing_to_do() {
        let (cmds, _) = commands(b"0000").unwrap();
        assert!(cmds.is_empty());
    }

    #[test]
    fn truncated_command_list_is_an_error() {
        let input = pkt(&format!("{A} {B} refs/heads/main\0report-status\n"));
        assert!(commands(&input).is_err());
    }
}
