//! Small pieces shared by both Git services: protocol versions, the agent string, object-id
//! parsing of protocol lines, and capability lists.

use bstr::ByteSlice;
use gix::ObjectId;

use crate::error::{Error, Result};

/// Our `agent=` value.
pub const AGENT: &str = concat!("whispercms/", env!("CARGO_PKG_VERSION"));

/// The Git wire protocol version a client asked for (`GIT_PROTOCOL=version=N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// The original protocol (also what `version=0` or no request means).
    #[default]
    V0,
    /// v0 preceded by a `version 1` line.
    V1,
    /// Protocol v2 (upload-pack only; push always falls back to v0/v1).
    V2,
}

impl ProtocolVersion {
    /// Parse the value of `GIT_PROTOCOL` (colon-separated `key=value` pairs); the highest
    /// version listed that we speak wins, as git's own servers do.
    pub fn from_env(value: &str) -> Self {
        let mut best = ProtocolVersion::V0;
        for item in value.split(':') {
            match item.trim() {
                "version=2" => best = ProtocolVersion::V2,
                "version=1" if best == ProtocolVersion::V0 => best = ProtocolVersion::V1,
                _ => {}
            }
        }
        best
    }
}

/// Parse a 40-hex object id at the start of `bytes`.
pub fn parse_oid(bytes: &[u8]) -> Result<ObjectId> {
    if bytes.len() < 40 {
        return Err(Error::Protocol(format!("expected an object id, got '{}'", bytes.as_bstr())));
    }
    ObjectId::from_hex(&bytes[..40])
        .map_err(|_| Error::Protocol(format!("expected an object id, got '{}'", bytes[..40].as_bstr())))
}

/// Split a capability list (space separated) into names and optional values.
pub fn split_capabilities(list: &[u8]) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
    list.split(|b| *b == b' ').filter(|c| !c.is_empty()).map(|cap| match cap.find_byte(b'=') {
        Some(i) => (&cap[..i], Some(&cap[i + 1..])),
        None => (cap, None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_requested_version() {
        assert_eq!(ProtocolVersion::from_env(""), ProtocolVersion::V0);
        assert_eq!(ProtocolVersion::from_env("version=2"), ProtocolVersion::V2);
        assert_eq!(ProtocolVersion::from_env("version=1"), ProtocolVersion::V1);
        assert_eq!(ProtocolVersion::from_env("version=1:version=2"), ProtocolVersion::V2);
        assert_eq!(ProtocolVersion::from_env("version=3"), ProtocolVersion::V0);
    }

    #[test]
    fn parses_object_ids_strictly() {
        assert!(parse_oid(b"0123456789012345678901234567890123456789 x").is_ok());
        assert!(parse_oid(b"012345678901234567890123456789012345678").is_err());
        assert!(parse_oid(b"g123456789012345678901234567890123456789").is_err());
        assert!(parse_oid(b"").is_err());
    }

    #[test]
    fn splits_capabilities() {
        let caps: Vec<_> = split_capabilities(b"report-status  agent=git/2.4 quiet").collect();
        assert_eq!(
            caps,
            vec![(&b"report-status"[..], None), (&b"agent"[..], Some(&b"git/2.4"[..])), (&b"quiet"[..], None)]
        );
    }
}
