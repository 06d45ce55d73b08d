//! upload-pack over protocol v0/v1: advertisement, wants, shallow info, have/ACK negotiation
//! (`multi_ack_detailed`, plain `multi_ack` and single-ack clients), then the pack.

use std::collections::HashSet;
use std::io::{BufWriter, Read, Write};

use bstr::ByteSlice;
use gix::ObjectId;

use super::commits::Commits;
use super::negotiation::Negotiation;
use super::pack::PackOptions;
use super::plan::{shallow_boundary, Deepen, Request};
use super::reuse::send_pack;
use super::{check_wants, peeled_wants};
use crate::error::{Error, Result};
use crate::pktline::{self, Packet, PktReader};
use crate::protocol::{parse_oid, split_capabilities, ProtocolVersion, AGENT};
use crate::refs::{self, Head};
use crate::repository::Repository;
use crate::sideband::SidebandWriter;

#[derive(Debug, Default)]
struct Caps {
    multi_ack: u8, // 0 none, 1 multi_ack, 2 multi_ack_detailed
    side_band: bool,
    thin_pack: bool,
    ofs_delta: bool,
    no_progress: bool,
    include_tag: bool,
    deepen_relative: bool,
    no_done: bool,
}

pub(super) fn serve(
    repo: &Repository,
    version: ProtocolVersion,
    budget: Option<&crate::budget::MemoryBudget>,
    input: impl Read,
    output: impl Write,
) -> Result<()> {
    let repo = repo.local();
    let mut out = BufWriter::with_capacity(64 * 1024, output);
    let refs = refs::list(&repo)?;
    let head = refs::head(&repo)?;
    if version == ProtocolVersion::V1 {
        pktline::write_text(&mut out, "version 1")?;
    }
    let mut caps = String::from(
        "multi_ack_detailed multi_ack no-done side-band-64k thin-pack ofs-delta shallow deepen-relative \
         no-progress include-tag allow-reachable-sha1-in-want object-format=sha1",
    );
    if let Head::Symbolic { target, .. } = &head {
        caps.push_str(&format!(" symref=HEAD:{target}"));
    }
    caps.push_str(&format!(" agent={AGENT}"));
    let head_id = match &head {
        Head::Symbolic { id, .. } => *id,
        Head::Detached(id) => Some(*id),
    };
    let mut lines: Vec<(ObjectId, String)> = Vec::new();
    if let Some(id) = head_id {
        lines.push((id, "HEAD".into()));
    }
    for r in &refs {
        lines.push((r.id, r.name.to_string()));
        if let Some(p) = r.peeled {
            lines.push((p, format!("{}^{{}}", r.name)));
        }
    }
    if lines.is_empty() {
        let null = ObjectId::null(gix::hash::Kind::Sha1);
        pktline::write_data(&mut out, format!("{null} capabilities^{{}}\0{caps}\n").as_bytes())?;
    }
    for (i, (id, name)) in lines.iter().enumerate() {
        if i == 0 {
            pktline::write_data(&mut out, format!("{id} {name}\0{caps}\n").as_bytes())?;
        } else {
            pktline::write_text(&mut out, format!("{id} {name}"))?;
        }
    }
    pktline::write_flush(&mut out)?;
    out.flush()?;

    let mut reader = PktReader::new(input);
    let mut caps = Caps::default();
    let mut req = Request::default();
    let mut depth = None;
    loop {
        let line: Vec<u8> = match reader.read_opt()? {
            None | Some(Packet::Flush) => break,
            Some(p @ Packet::Data(_)) => p.line().unwrap_or_default().to_vec(),
            Some(other) => return Err(Error::Protocol(format!("unexpected {other:?} in the want list"))),
        };
        if let Some(rest) = line.strip_prefix(b"want ") {
            req.wants.push(parse_oid(rest)?);
            if rest.len() > 41 && req.wants.len() == 1 {
                caps = parse_caps(&rest[41..])?;
            }
        } else if let Some(rest) = line.strip_prefix(b"shallow ") {
            req.client_shallow.insert(parse_oid(rest)?);
        } else if let Some(rest) = line.strip_prefix(b"deepen ") {
            depth = Some(parse_depth(rest)?);
        } else if line.starts_with(b"deepen-since ") || line.starts_with(b"deepen-not ") {
            return Err(Error::Protocol("deepen-since and deepen-not are not supported; use --depth".into()));
        } else {
            return Err(Error::Protocol(format!("expected a want line, got '{}'", line.as_bstr())));
        }
        if req.wants.len() + req.client_shallow.len() > 1_000_000 {
            return Err(Error::LimitExceeded("too many want/shallow lines".into()));
        }
    }
    if req.wants.is_empty() {
        return Ok(()); // ls-remote, or nothing to fetch
    }
    req.include_tag = caps.include_tag;
    req.deepen = depth.map(|d| if caps.deepen_relative { Deepen::Relative(d) } else { Deepen::Depth(d) });
    let mut commits = Commits::new(&repo);
    // Before the pack, errors go to the client as an `ERR` packet, which git prints.
    let negotiated = (|| {
        check_wants(&repo, &req.wants, &refs)?;
        if let Some(deepen) = req.deepen {
            let (shallow, unshallow) = shallow_boundary(&mut commits, &req, deepen)?;
            for id in &shallow {
                pktline::write_text(&mut out, format!("shallow {id}"))?;
            }
            for id in &unshallow {
                pktline::write_text(&mut out, format!("unshallow {id}"))?;
            }
            pktline::write_flush(&mut out)?;
            out.flush()?;
        }
        let mut neg = Negotiation::new(peeled_wants(&repo, &req.wants)?);
        let finished = negotiate(&mut reader, &mut out, &mut commits, &mut neg, &caps)?;
        Ok::<_, Error>(finished.then(|| neg.common().to_vec()))
    })();
    let common = match negotiated {
        Ok(Some(common)) => common,
        Ok(None) => return Ok(()), // client hung up during negotiation
        Err(e) => {
            let _ = pktline::write_text(&mut out, format!("ERR upload-pack: {e}"));
            let _ = out.flush();
            return Err(e);
        }
    };
    req.common = common;
    let mut sb = SidebandWriter::new(out, caps.side_band);
    let options = PackOptions { thin: caps.thin_pack, ofs_delta: caps.ofs_delta, progress: !caps.no_progress };
    let _share = super::share(budget);
    let sent = send_pack(&repo, &mut commits, &req, &refs, options, &mut sb);
    if let Err(e) = sent {
        // During the pack, a fatal error travels on side-band 3.
        let _ = sb.fatal(&format!("upload-pack: {e}\n"));
        return Err(e);
    }
    if sb.enabled() {
        pktline::write_flush(sb.inner_mut())?;
    }
    sb.flush()?;
    Ok(())
}

/// The have/ACK exchange, as git's `get_common_commits`. Returns false if the client hung up.
fn negotiate(
    reader: &mut PktReader<impl Read>,
    out: &mut impl Write,
    commits: &mut Commits<'_>,
    neg: &mut Negotiation,
    caps: &Caps,
) -> Result<bool> {
    let (mut got_common, mut got_other, mut sent_ready) = (false, false, false);
    let mut last: Option<ObjectId> = None;
    let mut haves_seen: HashSet<ObjectId> = HashSet::new();
    loop {
        let line: Vec<u8> = match reader.read_opt()? {
            None => return Ok(false),
            Some(Packet::Flush) => {
                if caps.multi_ack == 2 && got_common && !got_other && neg.ready(commits)? {
                    sent_ready = true;
                    if let Some(l) = last {
                        pktline::write_text(out, format!("ACK {l} ready"))?;
                    }
                }
                if neg.common().is_empty() || caps.multi_ack > 0 {
                    pktline::write_text(out, "NAK")?;
                }
                if caps.no_done && sent_ready {
                    if let Some(l) = last {
                        pktline::write_text(out, format!("ACK {l}"))?;
                    }
                    out.flush()?;
                    return Ok(true);
                }
                out.flush()?;
                got_common = false;
                got_other = false;
                continue;
            }
            Some(p @ Packet::Data(_)) => p.line().unwrap_or_default().to_vec(),
            Some(other) => return Err(Error::Protocol(format!("unexpected {other:?} during negotiation"))),
        };
        if let Some(rest) = line.strip_prefix(b"have ") {
            let id = parse_oid(rest)?;
            if haves_seen.len() > 1_000_000 {
                return Err(Error::LimitExceeded("too many have lines".into()));
            }
            haves_seen.insert(id);
            if neg.have(commits, id)? {
                got_common = true;
                last = Some(id);
                match caps.multi_ack {
                    2 => pktline::write_text(out, format!("ACK {id} common"))?,
                    1 => pktline::write_text(out, format!("ACK {id} continue"))?,
                    _ if neg.common().len() == 1 => pktline::write_text(out, format!("ACK {id}"))?,
                    _ => {}
                }
            } else {
                got_other = true;
                if caps.multi_ack > 0 && neg.ready(commits)? {
                    if caps.multi_ack == 2 {
                        sent_ready = true;
                        pktline::write_text(out, format!("ACK {id} ready"))?;
                    } else {
                        pktline::write_text(out, format!("ACK {id} continue"))?;
                    }
                }
            }
        } else if line == b"done" {
            match last {
                Some(l) if caps.multi_ack > 0 => pktline::write_text(out, format!("ACK {l}"))?,
                Some(_) => {}
                None => pktline::write_text(out, "NAK")?,
            }
            out.flush()?;
            return Ok(true);
        } else {
            return Err(Error::Protocol(format!("expected have or done, got '{}'", line.as_bstr())));
        }
    }
}

fn parse_depth(bytes: &[u8]) -> Result<u32> {
    bytes
        .to_str()
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|d| *d > 0)
        .ok_or_else(|| Error::Protocol(format!("invalid deepen '{}'", bytes.as_bstr())))
}

fn parse_caps(list: &[u8]) -> Result<Caps> {
    let mut caps = Caps::default();
    for (name, _value) in split_capabilities(list) {
        match name {
            b"multi_ack_detailed" => caps.multi_ack = 2,
            b"multi_ack" => caps.multi_ack = caps.multi_ack.max(1),
            b"side-band-64k" => caps.side_band = true,
            b"thin-pack" => caps.thin_pack = true,
            b"ofs-delta" => caps.ofs_delta = true,
            b"no-progress" => caps.no_progress = true,
            b"include-tag" => caps.include_tag = true,
            b"deepen-relative" => caps.deepen_relative = true,
            b"no-done" => caps.no_done = true,
            b"shallow" | b"agent" | b"object-format" | b"session-id" | b"allow-reachable-sha1-in-want" => {}
            // Ignored, as git's upload-pack ignores what it does not know: `git clone --filter`
            // sends `filter` to a server that never advertised it (having warned its user that
            // the filter is ignored), and must get the whole pack, not an error.
            other => tracing::debug!(capability = %other.as_bstr(), "unknown capability ignored"),
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_capabilities() {
        let caps = parse_caps(b"multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2.47").unwrap();
        assert_eq!(caps.multi_ack, 2);
        assert!(caps.side_band && caps.thin_pack && caps.ofs_delta && !caps.include_tag);
        let ignored = parse_caps(b"side-band-64k filter bogus=1").unwrap();
        assert!(ignored.side_band && !ignored.thin_pack, "unknown capabilities are ignored, as git does");
    }

    #[test]
    fn refuses_bad_depths() {
        assert_eq!(parse_depth(b"3").unwrap(), 3);
        for bad in [&b"0"[..], b"-1", b"x", b"", b"99999999999"] {
            assert!(parse_depth(bad).is_err(), "{:?}", bad.as_bstr());
        }
    }
}
