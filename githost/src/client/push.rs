//! Push (send-pack): ref updates and the pack of what the remote lacks.
//!
//! The remote advertises its refs (protocol v0; push has no v2); each command is checked here
//! first as `git push` does (fast-forward unless forced, an expected old value for a lease, a
//! delete only of what exists), then the commands go out with the old value the remote
//! advertised, so the remote's compare-and-swap refuses the update if the ref moved meanwhile
//! (`stale info`). The pack holds what is reachable from the new tips and not from the remote's
//! refs that we have too (the upload-pack planner and pack writer, in reverse), thin against
//! those. The answer is `report-status` on side-band 1 and the remote's messages on band 2,
//! handed to the caller as they come (the desktop shows them; `git` prints them as `remote:`).

use std::io::{Read, Write};
use std::sync::Arc;

use bstr::{BString, ByteSlice};
use gix::objs::Exists;
use gix::ObjectId;

use super::advertisement::{self, Version};
use super::Transport;
use super::{ClientError, Result};
use crate::pktline::{self, Packet, PktReader};
use crate::protocol::AGENT;
use crate::refs;
use crate::repository::Repository;
use crate::sideband::SidebandWriter;
use crate::upload_pack::commits::Commits;
use crate::upload_pack::pack::{write_pack, PackOptions};
use crate::upload_pack::plan::{plan, Request};

/// One ref to update on the remote.
#[derive(Debug, Clone)]
pub struct PushCommand {
    /// The remote ref, e.g. `refs/heads/main`.
    pub remote: BString,
    /// The local object to set it to; `None` deletes it.
    pub new: Option<ObjectId>,
    /// Allow a non-fast-forward update.
    pub force: bool,
    /// A lease: the update only happens if the remote ref has this value (`Some(None)`: must not
    /// exist). Without it, the value the remote advertised is expected.
    pub expect: Option<Option<ObjectId>>,
}

impl PushCommand {
    /// Set `remote` to `new`, fast-forward only.
    pub fn update(remote: impl Into<BString>, new: ObjectId) -> Self {
        PushCommand { remote: remote.into(), new: Some(new), force: false, expect: None }
    }

    /// Delete `remote`.
    pub fn delete(remote: impl Into<BString>) -> Self {
        PushCommand { remote: remote.into(), new: None, force: true, expect: None }
    }
}

/// What to push.
pub struct PushRequest {
    /// The updates.
    pub commands: Vec<PushCommand>,
    /// All or nothing (needs the remote's `atomic` capability).
    pub atomic: bool,
    /// Receives the remote's messages as they come (e.g. `published main to … in 9 ms`).
    pub messages: Option<super::Messages>,
}

impl PushRequest {
    /// A non-atomic push of `commands` without a message callback.
    pub fn new(commands: Vec<PushCommand>) -> Self {
        PushRequest { commands, atomic: false, messages: None }
    }
}

/// The outcome for one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefStatus {
    /// Updated on the remote.
    Ok,
    /// The remote already had this value; nothing sent.
    UpToDate,
    /// Refused here, before sending (`non-fast-forward`, `fetch first`, `stale info`, …).
    Rejected(String),
    /// Refused by the remote, with its reason.
    RemoteRejected(String),
}

/// What a push did.
#[derive(Debug, Default)]
pub struct PushOutcome {
    /// Each command's ref and outcome, in the order given.
    pub refs: Vec<(BString, RefStatus)>,
    /// The remote's messages, line by line.
    pub messages: Vec<String>,
    /// Objects sent.
    pub objects: usize,
}

impl PushOutcome {
    /// Whether every ref was updated or already up to date.
    pub fn all_ok(&self) -> bool {
        self.refs.iter().all(|(_, s)| matches!(s, RefStatus::Ok | RefStatus::UpToDate))
    }
}

/// Push from `repo` over `connection`.
pub async fn push(connection: &impl Transport, repo: Arc<Repository>, request: PushRequest) -> Result<PushOutcome> {
    connection.run("git-receive-pack", false, move |input, output| push_over(&repo, request, input, output)).await
}

/// A command that will be sent.
struct Sent {
    index: usize,
    old: ObjectId,
    new: ObjectId,
}

/// The whole push conversation on blocking streams.
pub fn push_over(
    repo: &Repository,
    mut request: PushRequest,
    input: impl Read,
    output: impl Write,
) -> Result<PushOutcome> {
    // The pack writer writes entry by entry; unbuffered, each write would be an SSH packet.
    let mut output = std::io::BufWriter::with_capacity(64 * 1024, output);
    let mut reader = PktReader::new(input);
    let adv = advertisement::read(&mut reader)?;
    if adv.version == Version::V2 {
        return Err(ClientError::Protocol("receive-pack answered in protocol v2, which has no push".into()));
    }
    let local = repo.local();
    let null = ObjectId::null(gix::hash::Kind::Sha1);
    let mut outcome = PushOutcome::default();
    let mut sent: Vec<Sent> = Vec::new();
    for (index, cmd) in request.commands.iter().enumerate() {
        let status = decide(&local, &adv, cmd)?;
        if status.is_none() {
            let current = adv.refs.iter().find(|r| r.name == cmd.remote).map(|r| r.id);
            sent.push(Sent { index, old: current.unwrap_or(null), new: cmd.new.unwrap_or(null) });
        }
        outcome.refs.push((cmd.remote.clone(), status.unwrap_or(RefStatus::Ok)));
    }
    let refused_here = outcome.refs.iter().any(|(_, s)| matches!(s, RefStatus::Rejected(_)));
    if sent.is_empty() || (request.atomic && refused_here) {
        if request.atomic && refused_here {
            for i in sent.iter().map(|s| s.index) {
                outcome.refs[i].1 = RefStatus::Rejected("atomic push failed".into());
            }
        }
        pktline::write_flush(&mut output)?; // no commands: the remote ends quietly
        output.flush()?;
        return Ok(outcome);
    }
    if request.atomic && !adv.has("atomic") {
        return Err(ClientError::Protocol("the remote does not support atomic pushes".into()));
    }

    // Commands, the first carrying our capabilities.
    let mut caps: Vec<String> =
        ["report-status", "side-band-64k", "ofs-delta"].into_iter().filter(|c| adv.has(c)).map(String::from).collect();
    if request.atomic {
        caps.push("atomic".into());
    }
    if adv.has("agent") {
        caps.push(format!("agent={AGENT}"));
    }
    for (i, s) in sent.iter().enumerate() {
        let name = &request.commands[s.index].remote;
        if i == 0 {
            pktline::write_data(&mut output, format!("{} {} {name}\0{}\n", s.old, s.new, caps.join(" ")).as_bytes())?;
        } else {
            pktline::write_text(&mut output, format!("{} {} {name}", s.old, s.new))?;
        }
    }
    pktline::write_flush(&mut output)?;
    if sent.iter().any(|s| !s.new.is_null()) {
        outcome.objects = send_pack(&local, &adv, &sent, &mut output)?;
    }
    output.flush()?;
    drop(output);

    let report_status = adv.has("report-status");
    let sideband = adv.has("side-band-64k");
    let mut report = Vec::new();
    if sideband {
        let messages = &mut request.messages;
        let lines = &mut outcome.messages;
        let on_message = |text: &str| {
            if let Some(m) = messages.as_mut() {
                m(text);
            }
            lines.extend(text.split(['\n', '\r']).filter(|l| !l.trim().is_empty()).map(str::to_string));
        };
        super::read_sideband(&mut reader, on_message, |data| data.read_to_end(&mut report))??;
    }
    if report_status {
        let statuses =
            if sideband { read_report(&mut PktReader::new(&report[..]))? } else { read_report(&mut reader)? };
        for s in &sent {
            let name = &request.commands[s.index].remote;
            outcome.refs[s.index].1 = match statuses.iter().find(|(n, _)| n == name) {
                Some((_, None)) => RefStatus::Ok,
                Some((_, Some(reason))) => RefStatus::RemoteRejected(reason.clone()),
                None => RefStatus::RemoteRejected("the remote did not report on this ref".into()),
            };
        }
    }
    Ok(outcome)
}

/// Decide a command before sending it: `None` means send it.
fn decide(local: &gix::Repository, adv: &advertisement::Advertisement, cmd: &PushCommand) -> Result<Option<RefStatus>> {
    let reject = |why: &str| Ok(Some(RefStatus::Rejected(why.to_string())));
    if let Err(why) = refs::validate_name(cmd.remote.as_bstr()) {
        return reject(&why);
    }
    let current = adv.refs.iter().find(|r| r.name == cmd.remote).map(|r| r.id);
    if let Some(expected) = cmd.expect {
        if expected != current {
            return reject("stale info");
        }
    }
    match (current, cmd.new) {
        (None, None) => reject("remote ref does not exist"),
        (Some(_), None) if !adv.has("delete-refs") => reject("the remote does not allow deleting refs"),
        (Some(_), None) => Ok(None),
        (cur, Some(new)) if cur == Some(new) => Ok(Some(RefStatus::UpToDate)),
        (_, Some(new)) if !local.objects.exists(&new) => reject(&format!("{new} is not in the local repository")),
        (None, Some(_)) => Ok(None),
        (Some(_), Some(_)) if cmd.force => Ok(None),
        (Some(cur), Some(new)) => {
            if !local.objects.exists(&cur) {
                reject("fetch first: the remote has work that is not here")
            } else if refs::is_ancestor_objects(&local.objects, cur, new)? {
                Ok(None)
            } else {
                reject("non-fast-forward")
            }
        }
    }
}

/// Send the pack of what the remote lacks; returns the number of objects.
fn send_pack(
    local: &gix::Repository,
    adv: &advertisement::Advertisement,
    sent: &[Sent],
    output: &mut impl Write,
) -> Result<usize> {
    let mut buf = Vec::new();
    let mut common = Vec::new();
    for r in &adv.refs {
        for id in std::iter::once(r.id).chain(r.peeled) {
            if local.objects.exists(&id) {
                common.push(refs::peel_tag(&local.objects, id, &mut buf)?.unwrap_or(id));
            }
        }
    }
    let wants: Vec<ObjectId> = sent.iter().map(|s| s.new).filter(|n| !n.is_null()).collect();
    let mut commits = Commits::new(local);
    let planned = plan(&mut commits, &Request { wants, common, ..Default::default() }, &[])?;
    let count = planned.objects.len();
    let options = PackOptions { thin: !adv.has("no-thin"), ofs_delta: adv.has("ofs-delta"), progress: false };
    write_pack(local, planned.objects, &planned.client_has, options, &mut SidebandWriter::new(output, false))?;
    Ok(count)
}

/// `unpack ok|<error>`, then `ok <ref>` or `ng <ref> <reason>` per ref, then a flush. An unpack
/// error refuses every ref with that error.
fn read_report<R: Read>(reader: &mut PktReader<R>) -> Result<Vec<(BString, Option<String>)>> {
    let unpack = match reader.read()? {
        Packet::Data(d) => d.strip_suffix(b"\n").unwrap_or(d).to_vec(),
        other => return Err(ClientError::Protocol(format!("expected the unpack status, got {other:?}"))),
    };
    let Some(unpack) = unpack.strip_prefix(b"unpack ") else {
        return Err(ClientError::Protocol(format!("expected the unpack status, got {:?}", unpack.as_bstr())));
    };
    let unpack_error = (unpack != b"ok").then(|| format!("unpack failed: {}", unpack.as_bstr()));
    let mut out = Vec::new();
    loop {
        let line = match reader.read()? {
            Packet::Flush => break,
            Packet::Data(d) => d.strip_suffix(b"\n").unwrap_or(d),
            other => return Err(ClientError::Protocol(format!("unexpected {other:?} in the status report"))),
        };
        if let Some(name) = line.strip_prefix(b"ok ") {
            out.push((BString::from(name), unpack_error.clone()));
        } else if let Some(rest) = line.strip_prefix(b"ng ") {
            let (name, reason) = match rest.find_byte(b' ') {
                Some(i) => (&rest[..i], rest[i + 1..].as_bstr().to_string()),
                None => (rest, "refused".to_string()),
            };
            out.push((BString::from(name), Some(reason)));
        } else if line.starts_with(b"option ") {
            continue; // report-status-v2 detail we did not ask for
        } else {
            return Err(ClientError::Protocol(format!("malformed status line {:?}", line.as_bstr())));
        }
    }
    if let Some(e) = unpack_error {
        if out.is_empty() {
            return Err(ClientError::Remote(e));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{write_flush, write_text};

    fn report(lines: &[&str], flush: bool) -> Result<Vec<(BString, Option<String>)>> {
        let mut bytes = Vec::new();
        for l in lines {
            write_text(&mut bytes, l).unwrap();
        }
        if flush {
            write_flush(&mut bytes).unwrap();
        }
        read_report(&mut PktReader::new(&bytes[..]))
    }

    #[test]
    fn reads_a_status_report() {
        let r = report(&["unpack ok", "ok refs/heads/main", "ng refs/heads/x denied: editors may not"], true).unwrap();
        assert_eq!(r[0], ("refs/heads/main".into(), None));
        assert_eq!(r[1], ("refs/heads/x".into(), Some("denied: editors may not".into())));
    }

    #[test]
    fn an_unpack_error_fails_every_ref() {
        let r = report(&["unpack index-pack abnormal exit", "ok refs/heads/main"], true).unwrap();
        assert!(r[0].1.as_deref().unwrap().contains("index-pack"));
        assert!(report(&["unpack disk full"], true).is_err());
    }

    #[test]
    fn refuses_garbage_reports() {
        assert!(report(&["hello"], true).is_err());
        assert!(report(&["unpack ok", "maybe refs/heads/main"], true).is_err());
        assert!(report(&["unpack ok", "ok refs/heads/main"], false).is_err(), "truncated");
        assert!(report(&[], false).is_err());
    }
}
