//! Every request is checked here before it may reach the application: method, URI length,
//! header count and size, and a path that names a file of the site (no `..`, no encoded
//! traversal, no NUL or control characters, no backslashes). A refused request gets the 4xx
//! status that says why and never reaches Axum.
//!
//! Pure functions over the request line and headers, so they are tested with hostile input
//! without a server.

use std::borrow::Cow;

use serde::Deserialize;

/// Bounds on one request. Configurable in `[ingress]`; the defaults suit a content site.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestLimits {
    /// Longest request target (path and query), in bytes.
    pub max_uri_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
    /// Largest total of header names and values, in bytes.
    pub max_header_bytes: usize,
    /// Largest body of a request, unless `body_limits` names its path.
    pub max_body_bytes: usize,
    /// Larger (or smaller) body limits for exact paths, e.g. a plugin's form endpoint.
    pub body_limits: std::collections::BTreeMap<String, usize>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_uri_bytes: 4096,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            body_limits: Default::default(),
        }
    }
}

impl RequestLimits {
    /// The body limit of `path`.
    pub fn body_limit(&self, path: &str) -> usize {
        self.body_limits.get(path).copied().unwrap_or(self.max_body_bytes)
    }
}

/// Why a request was refused: the status to answer and a short reason (also logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: &'static str,
}

const fn refuse(status: u16, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// Methods the site answers. Anything else is 405 (or 501 for methods HTTP does not define).
pub const ALLOWED_METHODS: &[&str] = &["GET", "HEAD", "POST", "OPTIONS"];

/// Check the method.
pub fn method(method: &str) -> Result<(), Refusal> {
    if ALLOWED_METHODS.contains(&method) {
        return Ok(());
    }
    match method {
        "PUT" | "DELETE" | "PATCH" | "TRACE" | "CONNECT" => Err(refuse(405, "method not allowed")),
        _ => Err(refuse(501, "method not implemented")),
    }
}

/// Check the header fields: count and total size.
pub fn headers<'a>(fields: impl Iterator<Item = (&'a str, &'a [u8])>, limits: &RequestLimits) -> Result<(), Refusal> {
    let mut count = 0;
    let mut bytes = 0;
    for (name, value) in fields {
        count += 1;
        bytes += name.len() + value.len();
        if count > limits.max_headers {
            return Err(refuse(431, "too many header fields"));
        }
        if bytes > limits.max_header_bytes {
            return Err(refuse(431, "header fields too large"));
        }
    }
    Ok(())
}

/// Check the request target (`/path?query` as sent) and return its decoded path, which is
/// canonical: no `.` or `..` segment, no empty segment but a trailing one. Borrowed unless it had
/// escapes to decode.
pub fn target<'a>(raw: &'a str, limits: &RequestLimits) -> Result<Cow<'a, str>, Refusal> {
    if raw.len() > limits.max_uri_bytes {
        return Err(refuse(414, "URI too long"));
    }
    if !raw.starts_with('/') {
        return Err(refuse(400, "the request target must be an absolute path"));
    }
    // Every request passes here, and almost every path is plain ASCII: that is checked in one
    // pass over its bytes; a path with escapes or other characters takes the general way.
    let bytes = raw.as_bytes();
    let mut start = 1;
    for (i, &b) in bytes.iter().enumerate().skip(1) {
        match b {
            b'/' => {
                segment(&bytes[start..i], false)?;
                start = i + 1;
            }
            b'?' | b'#' => {
                segment(&bytes[start..i], true)?;
                return Ok(Cow::Borrowed(&raw[..i]));
            }
            b'%' | 0x80.. => return decoded_target(raw),
            b'\\' => return Err(refuse(400, "backslash in the path")),
            _ if b.is_ascii_control() => return Err(refuse(400, "control characters in the path")),
            _ => {}
        }
    }
    segment(&bytes[start..], true)?;
    Ok(Cow::Borrowed(raw))
}

/// Check one segment of a path (`last`: the one after the final `/`).
fn segment(segment: &[u8], last: bool) -> Result<(), Refusal> {
    match segment {
        b".." => Err(refuse(400, "'..' in the path")),
        b"." => Err(refuse(400, "'.' segment in the path")),
        // `//x` and `/a//b` are not canonical: refuse rather than guess which file is meant.
        b"" if !last => Err(refuse(400, "empty segment in the path")),
        _ => Ok(()),
    }
}

/// [`target`] for a path with escapes or characters beyond ASCII (its length and leading `/`
/// already checked): decoded once, strictly, then checked as a whole.
fn decoded_target(raw: &str) -> Result<Cow<'_, str>, Refusal> {
    // Byte loops throughout: char patterns cost several times more.
    let path = raw.bytes().position(|b| b == b'?' || b == b'#').map_or(raw, |end| &raw[..end]);
    // Decode once, strictly: what the application sees is what was checked.
    let escaped = path.bytes().any(|b| b == b'%');
    let decoded = if !escaped {
        Cow::Borrowed(path)
    } else {
        match percent_encoding::percent_decode_str(path).decode_utf8() {
            Ok(d) => d,
            Err(_) => return Err(refuse(400, "the path is not UTF-8")),
        }
    };
    if !decoded.is_ascii() && decoded.chars().any(|c| c.is_control() && !c.is_ascii()) {
        return Err(refuse(400, "control characters in the path"));
    }
    // An encoded `%` would decode to another escape on a second decoding somewhere downstream.
    if escaped && decoded.contains('%') && path.to_ascii_lowercase().contains("%25") {
        return Err(refuse(400, "double-encoded path"));
    }
    // Each segment (after a '/') and each byte.
    let bytes = decoded.as_bytes();
    let mut start = 1;
    for end in 1..=bytes.len() {
        if let Some(&b) = bytes.get(end) {
            if b.is_ascii_control() {
                return Err(refuse(400, "control characters in the path"));
            }
            if b == b'\\' {
                return Err(refuse(400, "backslash in the path"));
            }
            if b != b'/' {
                continue;
            }
        }
        segment(&bytes[start..end], end == bytes.len())?;
        start = end + 1;
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> RequestLimits {
        RequestLimits::default()
    }

    #[test]
    fn ordinary_requests_pass() {
        assert_eq!(target("/", &limits()).unwrap(), "/");
        assert_eq!(target("/blog/hello-world/?page=2", &limits()).unwrap(), "/blog/hello-world/");
        assert_eq!(target("/tags/caf%C3%A9/", &limits()).unwrap(), "/tags/café/");
        assert_eq!(target("/a%20b.txt", &limits()).unwrap(), "/a b.txt");
        assert_eq!(target("/a/b/?next=/../x", &limits()).unwrap(), "/a/b/", "the query is not a path");
        assert_eq!(target("/caf\u{e9}/#top", &limits()).unwrap(), "/caf\u{e9}/");
        assert!(
            matches!(target("/plain/path/", &limits()), Ok(std::borrow::Cow::Borrowed(_))),
            "no copy without escapes"
        );
        for m in ["GET", "HEAD", "POST", "OPTIONS"] {
            assert!(method(m).is_ok());
        }
        let fields = [("host", &b"example.org"[..]), ("accept", b"*/*")];
        assert!(headers(fields.into_iter(), &limits()).is_ok());
    }

    #[test]
    fn hostile_targets_are_refused_with_the_right_status() {
        let cases: &[(&str, u16)] = &[
            ("/../etc/passwd", 400),
            ("/a/%2e%2e/b", 400),
            ("/a/%2E%2E/b", 400),
            ("/a/..%2fb", 400),
            ("/a/%2e%2e%2fb", 400),
            ("/a%00b", 400),
            ("/a%0d%0aSet-Cookie:x", 400),
            ("/a\\..\\b", 400),
            ("/a%5c..%5cb", 400),
            ("/a%7fb", 400),
            ("/a%09b", 400),
            ("/a%C2%85b", 400),
            ("/a/.", 400),
            ("/a/..", 400),
            ("/a/b//", 400),
            ("/%ff%fe", 400),
            ("/a/%252e%252e/b", 400),
            ("/./a", 400),
            ("//etc/passwd", 400),
            ("/a//b", 400),
            ("http://evil/", 400),
            ("*", 400),
            ("", 400),
        ];
        for (raw, status) in cases {
            assert_eq!(target(raw, &limits()).map_err(|r| r.status), Err(*status), "{raw:?}");
        }
        let long = format!("/{}", "a".repeat(5000));
        assert_eq!(target(&long, &limits()).unwrap_err().status, 414);
    }

    #[test]
    fn the_one_pass_check_agrees_with_the_general_one() {
        // Every path of up to four parts from these: the fast path (plain ASCII) must decide as
        // the general one does, which is what it stands in for.
        let parts = ["/", "a", ".", "..", "?q=/../", "#f", "\\", "\u{1}", "\u{7f}", "%2e", "%2F", "é", "%"];
        let mut paths = vec![String::new()];
        for _ in 0..4 {
            paths = paths.iter().flat_map(|p| parts.iter().map(move |part| format!("{p}{part}"))).collect();
            for path in &paths {
                let raw = format!("/{path}");
                let fast = target(&raw, &limits()).map_err(|r| r.status);
                let general = decoded_target(&raw).map_err(|r| r.status);
                assert_eq!(fast, general, "{raw:?}");
            }
        }
    }

    #[test]
    fn methods_and_headers_have_limits() {
        assert_eq!(method("DELETE").unwrap_err().status, 405);
        assert_eq!(method("BREW").unwrap_err().status, 501);
        assert_eq!(method("get").unwrap_err().status, 501, "methods are case-sensitive");
        let many: Vec<(String, Vec<u8>)> = (0..65).map(|i| (format!("x-{i}"), b"1".to_vec())).collect();
        let err = headers(many.iter().map(|(n, v)| (n.as_str(), v.as_slice())), &limits()).unwrap_err();
        assert_eq!(err.status, 431);
        let big = [("cookie", vec![b'a'; 20_000])];
        assert_eq!(headers(big.iter().map(|(n, v)| (*n, v.as_slice())), &limits()).unwrap_err().status, 431);
    }

    #[test]
    fn body_limits_per_path() {
        let mut l = limits();
        l.body_limits.insert("/upload".into(), 1 << 20);
        assert_eq!(l.body_limit("/upload"), 1 << 20);
        assert_eq!(l.body_limit("/contact/send"), 64 * 1024);
    }
}
