//! Targets of the edge: a request's head (method, target, header fields), the sources a theme
//! adds to the Content-Security-Policy, and preview tokens.

use std::collections::BTreeMap;

use ingress::validate;
use ingress::{PreviewKeys, RequestLimits};
use site_runtime::theme::csp;

/// The edge's default policy (`[ingress] content_security_policy`).
pub(crate) const BASE_POLICY: &str =
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; object-src 'none'; \
     frame-ancestors 'none'; base-uri 'self'; form-action 'self'";

/// A request head as lines: `METHOD TARGET`, then `name: value` fields. A target the edge
/// accepts gives a canonical path (absolute; no `.`, `..` or empty segment but the last; no
/// control character or backslash), which validating again leaves as it is.
pub fn edge_request(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let (method, target) = request_line.split_once(' ').unwrap_or((request_line, ""));
    let _ = validate::method(method);
    let limits = RequestLimits::default();
    let fields: Vec<(&str, &[u8])> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n, v.trim().as_bytes())).collect();
    let _ = validate::headers(fields.iter().copied(), &limits);
    let _ = limits.body_limit(target);
    let Ok(path) = validate::target(target, &limits) else { return };
    assert!(path.starts_with('/'), "{target:?} gave {path:?}");
    assert!(!path.contains(|c: char| c.is_control() || c == '\\'), "{target:?} gave {path:?}");
    let segments: Vec<&str> = path[1..].split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        assert!(*segment != "." && *segment != "..", "{target:?} gave {path:?}: a dot segment");
        assert!(last || !segment.is_empty(), "{target:?} gave {path:?}: an empty segment");
    }
    // Validated again as a request target, the path is itself — unless it holds what decoding
    // made of `%3F`, `%23` or `%25`, which a target reads differently by design.
    if !path.contains(['%', '?', '#']) {
        let again = validate::target(&path, &limits);
        assert!(again.as_deref().is_ok_and(|p| p == path), "{path:?} (from {target:?}) validates as {again:?}");
    }
}

/// Every directive of `policy` once, each addition's sources in it, and one line in all.
pub(crate) fn assert_policy(policy: &str, additions: &BTreeMap<String, Vec<String>>) {
    assert!(!policy.contains(['\r', '\n', '\0', ',']), "policy {policy:?} is not one header value");
    let mut seen = std::collections::BTreeSet::new();
    for directive in policy.split(';') {
        let mut words = directive.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        assert!(seen.insert(name.to_ascii_lowercase()), "{name} twice in {policy:?}");
        if let Some(sources) = additions.get(name) {
            let present: Vec<&str> = words.collect();
            for source in sources {
                assert!(present.contains(&source.as_str()), "{source:?} of {name} missing from {policy:?}");
            }
        }
    }
}

/// CSP additions as lines: a directive, then its sources. Sources the check accepts merge into
/// a policy with every directive once and nothing smuggled in.
pub fn csp(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let mut lines = text.lines();
    let directive = lines.next().unwrap_or_default().to_string();
    let sources: Vec<String> = lines.map(str::to_string).collect();
    if csp::check(&directive, &sources).is_err() {
        return;
    }
    for source in &sources {
        assert!(
            !source.is_empty()
                && !source.contains(|c: char| c.is_whitespace() || c.is_control() || c == ';' || c == ','),
            "{directive}: source {source:?} accepted"
        );
    }
    let additions = BTreeMap::from([(directive, sources)]);
    assert_policy(&csp::merge(BASE_POLICY, &additions), &additions);
}

/// Preview tokens, cookies and query strings: a token that verifies is exactly the one the key
/// signs for its user and expiry (nothing else forges one), and a query without the token has
/// none left.
pub fn preview_token(data: &[u8]) {
    let Some(text) = crate::text(data) else { return };
    let keys = PreviewKeys::new(&[7; 32]);
    if let Ok(user) = keys.verify(text, 1_700_000_000) {
        let expires: i64 = text.split(':').next().and_then(|e| e.parse().ok()).expect("a verified token has an expiry");
        assert_eq!(keys.sign(&user, expires), text, "a token verified that the key did not sign");
    }
    let _ = ingress::preview::token_from_cookies(text);
    let _ = ingress::preview::token_from_query(text);
    let cleaned = ingress::preview::query_without_token(text);
    assert_eq!(ingress::preview::token_from_query(&cleaned), None, "{text:?} keeps a token as {cleaned:?}");
    // The user part signs and verifies back, when it is a user name a token can carry.
    if !text.is_empty() && text.len() < 64 && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
        let token = keys.sign(text, 1_700_000_100);
        assert_eq!(keys.verify(&token, 1_700_000_000).as_deref(), Ok(text));
    }
}
