//! upload-pack over protocol v2: a capability advertisement, then `ls-refs` and `fetch`
//! commands, each a request (capabilities, delimiter, arguments, flush) answered in sections.

use std::io::{BufWriter, Read, Write};

use bstr::{BString, ByteSlice};

use super::commits::Commits;
use super::negotiation::Negotiation;
use super::pack::{write_pack, PackOptions};
use super::plan::{plan, Deepen, Request};
use super::reuse::send_pack;
use super::{check_wants, peeled_wants};
use crate::error::{Error, Result};
use crate::pktline::{self, Packet, PktReader};
use crate::protocol::{parse_oid, AGENT};
use crate::refs::{self, Head};
use crate::repository::Repository;
use crate::sideband::SidebandWriter;

/// Upper bounds on the arguments of one command, against memory exhaustion.
const MAX_ARGS: usize = 1_000_000;
const MAX_ARG_BYTES: usize = 64 * 1024 * 1024;
/// More `ref-prefix` arguments than this are ignored (git's own limit).
const MAX_PREFIXES: usize = 65536;

pub(super) fn serve(
    repo: &Repository,
    budget: Option<&crate::budget::MemoryBudget>,
    input: impl Read,
    output: impl Write,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    for line in [
        "version 2",
        &format!("agent={AGENT}"),
        "ls-refs=unborn",
        "fetch=shallow",
        "server-option",
        "object-format=sha1",
    ] {
        pktline::write_text(&mut out, line)?;
    }
    pktline::write_flush(&mut out)?;
    out.flush()?;

    let mut reader = PktReader::new(input);
    loop {
        let Some(command) = read_request(&mut reader)? else { return Ok(()) };
        let result = match command.name.as_slice() {
            b"ls-refs" => ls_refs(repo, &command.args, &mut out),
            b"fetch" => fetch(repo, budget, &command.args, &mut out),
            other => Err(Failure::BeforeResponse(Error::Protocol(format!("unknown command '{}'", other.as_bstr())))),
        };
        match result {
            Ok(()) => {}
            Err(Failure::BeforeResponse(e)) => {
                // Tell the client in the protocol's own way, then end the session.
                let _ = pktline::write_text(&mut out, format!("ERR {e}"));
                let _ = out.flush();
                return Err(e);
            }
            Err(Failure::InPack(e)) => {
                let _ = out.flush();
                return Err(e);
            }
        }
        out.flush()?;
    }
}

/// Where a command failed: before its response began (answered with `ERR`), or while the pack
/// was being sent (answered on side-band 3, already done).
enum Failure {
    BeforeResponse(Error),
    InPack(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::BeforeResponse(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::BeforeResponse(e.into())
    }
}

struct Command {
    name: BString,
    args: Vec<BString>,
}

/// Read one request: `command=X`, capability lines, a delimiter, argument lines, a flush.
/// `None` when the client closes the session (end of stream, or a lone flush).
fn read_request(reader: &mut PktReader<impl Read>) -> Result<Option<Command>> {
    let first: Vec<u8> = match reader.read_opt()? {
        None | Some(Packet::Flush) => return Ok(None),
        Some(p @ Packet::Data(_)) => p.line().unwrap_or_default().to_vec(),
        Some(other) => return Err(Error::Protocol(format!("expected a command, got {other:?}"))),
    };
    let Some(name) = first.strip_prefix(b"command=") else {
        return Err(Error::Protocol(format!("expected a command, got '{}'", first.as_bstr())));
    };
    let name = BString::from(name);
    // Capabilities: we accept the ones we advertise and ignore their values.
    loop {
        match reader.read()? {
            Packet::Delim => break,
            Packet::Flush => return Ok(Some(Command { name, args: Vec::new() })),
            p @ Packet::Data(_) => {
                let line = p.line().unwrap_or_default();
                let key = line.split(|b| *b == b'=').next().unwrap_or_default();
                if !matches!(key, b"agent" | b"object-format" | b"server-option" | b"session-id") {
                    return Err(Error::Protocol(format!("unknown capability '{}'", line.as_bstr())));
                }
                if key == b"object-format" && line != b"object-format=sha1" {
                    return Err(Error::Protocol(format!("unsupported {}", line.as_bstr())));
                }
            }
            Packet::ResponseEnd => return Err(Error::Protocol("unexpected response-end in a request".into())),
        }
    }
    let mut args = Vec::new();
    let mut bytes = 0usize;
    loop {
        match reader.read()? {
            Packet::Flush => break,
            p @ Packet::Data(_) => {
                let line = p.line().unwrap_or_default();
                bytes += line.len();
                args.push(BString::from(line));
            }
            other => return Err(Error::Protocol(format!("unexpected {other:?} in arguments"))),
        }
        if args.len() > MAX_ARGS || bytes > MAX_ARG_BYTES {
            return Err(Error::LimitExceeded("too many arguments".into()));
        }
    }
    Ok(Some(Command { name, args }))
}

fn ls_refs(repo: &Repository, args: &[BString], out: &mut impl Write) -> Result<(), Failure> {
    let (mut symrefs, mut peel, mut unborn) = (false, false, false);
    let mut prefixes: Vec<&[u8]> = Vec::new();
    for arg in args {
        match arg.as_slice() {
            b"symrefs" => symrefs = true,
            b"peel" => peel = true,
            b"unborn" => unborn = true,
            a if a.starts_with(b"ref-prefix ") => prefixes.push(&a[11..]),
            other => return Err(Error::Protocol(format!("unknown ls-refs argument '{}'", other.as_bstr())).into()),
        }
    }
    // As git does: past this many prefixes, matching costs more than it saves; list all.
    if prefixes.len() > MAX_PREFIXES {
        prefixes.clear();
    }
    let wanted = |name: &[u8]| prefixes.is_empty() || prefixes.iter().any(|p| name.starts_with(p));
    let repo = repo.local();
    if wanted(b"HEAD") {
        match refs::head(&repo)? {
            Head::Symbolic { target, id: Some(id) } => {
                let mut line = format!("{id} HEAD");
                if symrefs {
                    line.push_str(&format!(" symref-target:{target}"));
                }
                pktline::write_text(out, line)?;
            }
            Head::Symbolic { target, id: None } if unborn => {
                let mut line = String::from("unborn HEAD");
                if symrefs {
                    line.push_str(&format!(" symref-target:{target}"));
                }
                pktline::write_text(out, line)?;
            }
            Head::Symbolic { .. } => {}
            Head::Detached(id) => pktline::write_text(out, format!("{id} HEAD"))?,
        }
    }
    for r in refs::list(&repo)? {
        if !wanted(&r.name) {
            continue;
        }
        let mut line = format!("{} {}", r.id, r.name);
        if peel {
            if let Some(p) = r.peeled {
                line.push_str(&format!(" peeled:{p}"));
            }
        }
        pktline::write_text(out, line)?;
    }
    pktline::write_flush(out)?;
    Ok(())
}

fn fetch(
    repo: &Repository,
    budget: Option<&crate::budget::MemoryBudget>,
    args: &[BString],
    out: &mut impl Write,
) -> Result<(), Failure> {
    let repo = repo.local();
    let mut req = Request::default();
    let mut haves = Vec::new();
    let (mut done, mut thin, mut ofs, mut progress, mut relative) = (false, false, false, true, false);
    let mut depth = None;
    for arg in args {
        let a = arg.as_slice();
        if let Some(rest) = a.strip_prefix(b"want ") {
            req.wants.push(parse_oid(rest)?);
        } else if let Some(rest) = a.strip_prefix(b"have ") {
            haves.push(parse_oid(rest)?);
        } else if let Some(rest) = a.strip_prefix(b"shallow ") {
            req.client_shallow.insert(parse_oid(rest)?);
        } else if let Some(rest) = a.strip_prefix(b"deepen ") {
            let d = rest.to_str().ok().and_then(|s| s.parse::<u32>().ok()).filter(|d| *d > 0);
            depth = Some(d.ok_or_else(|| Error::Protocol(format!("invalid deepen '{}'", rest.as_bstr())))?);
        } else {
            match a {
                b"done" => done = true,
                b"thin-pack" => thin = true,
                b"ofs-delta" => ofs = true,
                b"no-progress" => progress = false,
                b"include-tag" => req.include_tag = true,
                b"deepen-relative" => relative = true,
                _ if a.starts_with(b"deepen-since ") || a.starts_with(b"deepen-not ") => {
                    return Err(
                        Error::Protocol("deepen-since and deepen-not are not supported; use --depth".into()).into()
                    )
                }
                other => return Err(Error::Protocol(format!("unknown fetch argument '{}'", other.as_bstr())).into()),
            }
        }
    }
    if req.wants.is_empty() {
        return Err(Error::Protocol("fetch without any want".into()).into());
    }
    let refs = refs::list(&repo)?;
    check_wants(&repo, &req.wants, &refs)?;
    req.deepen = depth.map(|d| if relative { Deepen::Relative(d) } else { Deepen::Depth(d) });

    let mut commits = Commits::new(&repo);
    let mut neg = Negotiation::new(peeled_wants(&repo, &req.wants)?);
    let mut acks = Vec::new();
    for h in haves {
        if neg.have(&mut commits, h)? {
            acks.push(h);
        }
    }
    if !done {
        pktline::write_text(out, "acknowledgments")?;
        if acks.is_empty() {
            pktline::write_text(out, "NAK")?;
        }
        for a in &acks {
            pktline::write_text(out, format!("ACK {a}"))?;
        }
        if neg.ready(&mut commits)? {
            pktline::write_text(out, "ready")?;
            pktline::write_delim(out)?;
        } else {
            pktline::write_flush(out)?;
            return Ok(());
        }
    }
    req.common = neg.common().to_vec();
    // From here to the end of the pack, this fetch holds its share of the pack memory budget.
    let _share = super::share(budget);
    // A shallow fetch announces its boundary before the pack; others plan (or reuse) as they write.
    let planned = if req.deepen.is_some() { Some(plan(&mut commits, &req, &refs)?) } else { None };
    if let Some(planned) = &planned {
        pktline::write_text(out, "shallow-info")?;
        for id in &planned.shallow {
            pktline::write_text(out, format!("shallow {id}"))?;
        }
        for id in &planned.unshallow {
            pktline::write_text(out, format!("unshallow {id}"))?;
        }
        pktline::write_delim(out)?;
    }
    pktline::write_text(out, "packfile")?;
    let mut sb = SidebandWriter::new(out, true);
    let options = PackOptions { thin, ofs_delta: ofs, progress };
    let sent = match planned {
        Some(planned) => write_pack(&repo, planned.objects, &planned.client_has, options, &mut sb),
        None => send_pack(&repo, &mut commits, &req, &refs, options, &mut sb),
    };
    if let Err(e) = sent {
        let _ = sb.fatal(&format!("upload-pack: {e}\n"));
        return Err(Failure::InPack(e));
    }
    pktline::write_flush(sb.inner_mut())?;
    Ok(())
}
