//! What a Git server announces before anything is asked: the v0 ref advertisement with its
//! capability list, the v2 capability advertisement, and the v2 `ls-refs` answer.
//!
//! Everything here comes from the remote and is parsed strictly: object ids must be 40 hex
//! digits, ref names must be `HEAD` or valid names under `refs/`, the number of refs and the
//! length of a line are bounded. Garbage is a [`ClientError::Protocol`] naming the line; an `ERR`
//! packet is the remote's own error.

use std::io::Read;

use bstr::{BString, ByteSlice};
use gix::ObjectId;

use super::{ClientError, Result};
use crate::pktline::{Packet, PktReader};

/// Most refs accepted from one remote (a guard against an endless advertisement).
pub const MAX_REFS: usize = 1_000_000;

/// One ref as the remote announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// `HEAD` or a full name under `refs/`.
    pub name: BString,
    /// What it points at.
    pub id: ObjectId,
    /// For an annotated tag, what its chain points at.
    pub peeled: Option<ObjectId>,
    /// For a symbolic ref (`HEAD`), the ref it points at.
    pub symref_target: Option<BString>,
}

/// The protocol the server answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// v0 (or v1, which is v0 with a version line): refs came with the advertisement.
    V0,
    /// v2: only capabilities came; refs are asked for with `ls-refs`.
    V2,
}

/// The server's first words.
#[derive(Debug, Clone)]
pub struct Advertisement {
    /// Which protocol.
    pub version: Version,
    /// Capabilities (v0: those of the first ref line; v2: one per line), with values.
    pub capabilities: Vec<(String, Option<String>)>,
    /// The refs (v0 only; empty for v2 until `ls-refs`).
    pub refs: Vec<RemoteRef>,
}

impl Advertisement {
    /// Whether the server offers `name`.
    pub fn has(&self, name: &str) -> bool {
        self.capabilities.iter().any(|(n, _)| n == name)
    }

    /// The value of capability `name` (`fetch=shallow filter` gives `shallow filter`).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.capabilities.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
}

fn protocol(what: &str, line: &[u8]) -> ClientError {
    let shown: String = line.as_bstr().to_string().chars().take(120).collect();
    ClientError::Protocol(format!("{what}: {shown:?}"))
}

/// The text of an `ERR` packet, if `line` is one.
pub fn err_packet(line: &[u8]) -> Option<String> {
    line.strip_prefix(b"ERR ").map(|m| m.trim_with(|c| c == '\n').as_bstr().to_string())
}

fn parse_caps(list: &[u8]) -> Vec<(String, Option<String>)> {
    crate::protocol::split_capabilities(list.trim_with(|c| c == '\n'))
        .map(|(n, v)| (n.as_bstr().to_string(), v.map(|v| v.as_bstr().to_string())))
        .collect()
}

fn parse_id(hex: &[u8], line: &[u8]) -> Result<ObjectId> {
    if hex.len() != 40 {
        return Err(protocol("expected an object id", line));
    }
    ObjectId::from_hex(hex).map_err(|_| protocol("expected an object id", line))
}

fn check_name(name: &[u8], line: &[u8]) -> Result<()> {
    let valid =
        name == b"HEAD" || (name.starts_with(b"refs/") && gix::validate::reference::name(name.as_bstr()).is_ok());
    if valid {
        Ok(())
    } else {
        Err(protocol("invalid ref name", line))
    }
}

/// The next line of a list that ends with a flush (`None` then), without its newline; an `ERR`
/// packet is the remote's error, a delimiter or response-end a protocol error naming `what`.
pub(crate) fn next_line<'r, R: Read>(reader: &'r mut PktReader<R>, what: &str) -> Result<Option<&'r [u8]>> {
    let line = match reader.read()? {
        Packet::Flush => return Ok(None),
        Packet::Data(d) => d.strip_suffix(b"\n").unwrap_or(d),
        other => return Err(ClientError::Protocol(format!("unexpected {other:?} in {what}"))),
    };
    match err_packet(line) {
        Some(message) => Err(ClientError::Remote(message)),
        None => Ok(Some(line)),
    }
}

/// Read the server's advertisement (v0 refs + capabilities, or v2 capabilities).
pub fn read<R: Read>(reader: &mut PktReader<R>) -> Result<Advertisement> {
    let mut adv = Advertisement { version: Version::V0, capabilities: Vec::new(), refs: Vec::new() };
    let mut first = true;
    loop {
        let Some(line) = next_line(reader, "the advertisement")? else { return Ok(adv) };
        if first && line == b"version 1" {
            continue;
        }
        if first && line == b"version 2" {
            adv.version = Version::V2;
            first = false;
            continue;
        }
        if adv.version == Version::V2 {
            // One capability per line, `key[=value]`; the value may hold spaces (`fetch=shallow filter`).
            let (name, value) = match line.find_byte(b'=') {
                Some(i) => (&line[..i], Some(line[i + 1..].as_bstr().to_string())),
                None => (line, None),
            };
            adv.capabilities.push((name.as_bstr().to_string(), value));
            continue;
        }
        let (refline, caps) = match line.find_byte(0) {
            Some(i) if first => (&line[..i], Some(&line[i + 1..])),
            Some(_) => return Err(protocol("capabilities after the first ref", line)),
            None => (line, None),
        };
        if let Some(caps) = caps {
            adv.capabilities = parse_caps(caps);
        }
        first = false;
        if refline.len() < 42 || refline[40] != b' ' {
            return Err(protocol("malformed ref line", line));
        }
        let id = parse_id(&refline[..40], line)?;
        let name = &refline[41..];
        if name == b"capabilities^{}" {
            continue; // an empty repository: capabilities only
        }
        if let Some(base) = name.strip_suffix(b"^{}") {
            match adv.refs.last_mut() {
                Some(prev) if prev.name == base && prev.peeled.is_none() => prev.peeled = Some(id),
                _ => return Err(protocol("a peeled value without its tag", line)),
            }
            continue;
        }
        check_name(name, line)?;
        if adv.refs.len() >= MAX_REFS {
            return Err(ClientError::Protocol(format!("more than {MAX_REFS} refs advertised")));
        }
        adv.refs.push(RemoteRef { name: name.into(), id, peeled: None, symref_target: None });
    }
}

/// Apply v0's `symref=HEAD:refs/heads/main` capabilities to the refs they name.
pub fn apply_symrefs(adv: &mut Advertisement) {
    let symrefs: Vec<(String, String)> = adv
        .capabilities
        .iter()
        .filter(|(n, _)| n == "symref")
        .filter_map(|(_, v)| v.as_deref()?.split_once(':').map(|(a, b)| (a.to_string(), b.to_string())))
        .collect();
    for (name, target) in symrefs {
        if let Some(r) = adv.refs.iter_mut().find(|r| r.name == name.as_bytes()) {
            r.symref_target = Some(target.into());
        }
    }
}

/// Read the answer to a v2 `ls-refs`: `<id> <name>[ symref-target:<t>][ peeled:<id>]` lines
/// up to a flush; `unborn HEAD …` lines (an empty repository) are skipped.
pub fn read_ls_refs<R: Read>(reader: &mut PktReader<R>) -> Result<Vec<RemoteRef>> {
    let mut refs = Vec::new();
    loop {
        let Some(line) = next_line(reader, "the ls-refs answer")? else { return Ok(refs) };
        let mut words = line.split(|b| *b == b' ');
        let (Some(id), Some(name)) = (words.next(), words.next()) else {
            return Err(protocol("malformed ls-refs line", line));
        };
        if id == b"unborn" {
            continue;
        }
        let id = parse_id(id, line)?;
        check_name(name, line)?;
        let mut r = RemoteRef { name: name.into(), id, peeled: None, symref_target: None };
        for attr in words {
            if let Some(target) = attr.strip_prefix(b"symref-target:") {
                r.symref_target = Some(target.into());
            } else if let Some(peeled) = attr.strip_prefix(b"peeled:") {
                r.peeled = Some(parse_id(peeled, line)?);
            } else {
                return Err(protocol("unknown ls-refs attribute", line));
            }
        }
        if refs.len() >= MAX_REFS {
            return Err(ClientError::Protocol(format!("more than {MAX_REFS} refs listed")));
        }
        refs.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pktline::{write_data, write_flush, write_text};

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn stream(lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            write_data(&mut out, l).unwrap();
        }
        write_flush(&mut out).unwrap();
        out
    }

    fn adv(lines: &[&[u8]]) -> Result<Advertisement> {
        let bytes = stream(lines);
        read(&mut PktReader::new(&bytes[..]))
    }

    #[test]
    fn reads_a_v0_advertisement_with_peeled_tags_and_symrefs() {
        let first = format!("{A} HEAD\0multi_ack side-band-64k symref=HEAD:refs/heads/main agent=git/2\n");
        let main = format!("{A} refs/heads/main\n");
        let tag = format!("{B} refs/tags/v1\n");
        let peeled = format!("{A} refs/tags/v1^{{}}\n");
        let mut a = adv(&[first.as_bytes(), main.as_bytes(), tag.as_bytes(), peeled.as_bytes()]).unwrap();
        apply_symrefs(&mut a);
        assert_eq!(a.version, Version::V0);
        assert!(a.has("side-band-64k") && !a.has("atomic"));
        assert_eq!(a.value("agent"), Some("git/2"));
        assert_eq!(a.refs.len(), 3);
        assert_eq!(a.refs[0].symref_target.as_ref().map(|t| t.to_string()), Some("refs/heads/main".into()));
        assert_eq!(a.refs[2].peeled, Some(ObjectId::from_hex(A.as_bytes()).unwrap()));
    }

    #[test]
    fn reads_an_empty_repository_and_v1() {
        let null = "0".repeat(40);
        let caps = format!("{null} capabilities^{{}}\0report-status delete-refs\n");
        let a = adv(&[b"version 1\n", caps.as_bytes()]).unwrap();
        assert!(a.refs.is_empty() && a.has("report-status"));
    }

    #[test]
    fn reads_v2_capabilities_and_ls_refs() {
        let a =
            adv(&[b"version 2\n", b"agent=git/2.47\n", b"ls-refs=unborn\n", b"fetch=shallow wait-for-done\n"]).unwrap();
        assert_eq!(a.version, Version::V2);
        assert_eq!(a.value("fetch"), Some("shallow wait-for-done"));
        let mut bytes = Vec::new();
        write_text(&mut bytes, format!("{A} HEAD symref-target:refs/heads/main")).unwrap();
        write_text(&mut bytes, format!("{B} refs/tags/v1 peeled:{A}")).unwrap();
        write_text(&mut bytes, "unborn refs/heads/x").unwrap();
        write_flush(&mut bytes).unwrap();
        let refs = read_ls_refs(&mut PktReader::new(&bytes[..])).unwrap();
        assert_eq!(refs.len(), 2);
        assert!(refs[0].symref_target.is_some() && refs[1].peeled.is_some());
    }

    #[test]
    fn refuses_garbage() {
        let cases: Vec<Vec<u8>> = vec![
            b"hello\n".to_vec(),
            format!("{A}refs/heads/main\n").into_bytes(),
            format!("{} refs/heads/main\n", &A[..39]).into_bytes(),
            format!("g{} refs/heads/main\n", &A[1..]).into_bytes(),
            format!("{A} refs/heads/../../etc\n").into_bytes(),
            format!("{A} not-a-ref\n").into_bytes(),
            format!("{A} refs/tags/v1^{{}}\n").into_bytes(),
            format!("{A} refs/heads/a b\n").into_bytes(),
        ];
        for case in cases {
            assert!(adv(&[&case]).is_err(), "accepted {:?}", case.as_bstr());
        }
        // Capabilities on a later line.
        let first = format!("{A} refs/heads/a\0x\n");
        let second = format!("{A} refs/heads/b\0y\n");
        assert!(adv(&[first.as_bytes(), second.as_bytes()]).is_err());
        // A stream that ends before its flush.
        let mut truncated = Vec::new();
        write_text(&mut truncated, format!("{A} refs/heads/main")).unwrap();
        assert!(read(&mut PktReader::new(&truncated[..])).is_err());
        // Not packet lines at all.
        assert!(read(&mut PktReader::new(&b"SSH-2.0-OpenSSH\r\n"[..])).is_err());
    }

    #[test]
    fn err_packets_are_the_remotes_words() {
        let e = adv(&[b"ERR access denied\n"]).unwrap_err();
        assert!(matches!(&e, ClientError::Remote(m) if m == "access denied"), "{e}");
    }
}
