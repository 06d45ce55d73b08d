//! The Content-Security-Policy a theme may extend. The edge sends a strict base policy (the
//! server's `[ingress] content_security_policy`); a theme that loads fonts from a CDN or embeds
//! videos declares what it needs in `theme.toml`:
//!
//! ```toml
//! [content_security_policy]
//! font-src = ["https://fonts.gstatic.com"]
//! frame-src = ["https://www.youtube-nocookie.com"]
//! ```
//!
//! Each source is checked at push against the CSP grammar (a source that smuggles in a `;` or a
//! second directive is refused), and the sources are added to the base policy's directive — or,
//! when the base has none, to a copy of the directive it falls back to, so adding a font host never
//! loosens anything else. The merged policy is computed once per snapshot.
//!
//! Written here rather than taken from a crate: the crates of the field parse and build whole
//! policies; the check and merge a theme needs are forty lines.

use std::collections::BTreeMap;

/// Directives a theme may extend: where content is fetched from, and where forms may post.
/// (`base-uri`, `frame-ancestors`, `sandbox`, reporting and the like stay the operator's.)
pub const EXTENSIBLE: &[&str] = &[
    "default-src",
    "script-src",
    "script-src-elem",
    "script-src-attr",
    "style-src",
    "style-src-elem",
    "style-src-attr",
    "img-src",
    "font-src",
    "connect-src",
    "media-src",
    "frame-src",
    "child-src",
    "worker-src",
    "manifest-src",
    "object-src",
    "form-action",
];

/// Keywords a theme may add. `'none'` is meaningless as an addition; nonces must be fresh per
/// response, so a fixed one in a manifest would be a hole.
const KEYWORDS: &[&str] = &[
    "'self'",
    "'unsafe-inline'",
    "'unsafe-eval'",
    "'wasm-unsafe-eval'",
    "'unsafe-hashes'",
    "'strict-dynamic'",
    "'report-sample'",
];

/// At most this many sources per directive, and this long each.
const MAX_SOURCES: usize = 32;
const MAX_SOURCE_LEN: usize = 256;

/// Check one directive's additions; the message says what is wrong.
pub fn check(directive: &str, sources: &[String]) -> Result<(), String> {
    if !EXTENSIBLE.contains(&directive) {
        return Err(format!("{directive:?} is not a directive a theme may extend (one of: {})", EXTENSIBLE.join(", ")));
    }
    if sources.is_empty() {
        return Err(format!("{directive}: no sources"));
    }
    if sources.len() > MAX_SOURCES {
        return Err(format!("{directive}: more than {MAX_SOURCES} sources"));
    }
    for source in sources {
        check_source(source).map_err(|why| format!("{directive}: source {source:?} {why}"))?;
    }
    Ok(())
}

/// One source expression of CSP level 3: a keyword, a hash, a scheme (`https:`), or a host
/// (`https://*.example.com:443/path`).
fn check_source(source: &str) -> Result<(), &'static str> {
    if source.is_empty() || source.len() > MAX_SOURCE_LEN {
        return Err("is empty or too long");
    }
    if !source.bytes().all(|b| b.is_ascii_graphic()) || source.contains([';', ',']) {
        return Err("may not contain spaces, control characters, ';' or ','");
    }
    if source.starts_with('\'') {
        if KEYWORDS.contains(&source) {
            return Ok(());
        }
        let hash = ["'sha256-", "'sha384-", "'sha512-"].iter().find_map(|p| source.strip_prefix(p));
        return match hash.and_then(|h| h.strip_suffix('\'')) {
            Some(b64) if !b64.is_empty() && b64.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=-_".contains(&b)) => {
                Ok(())
            }
            _ if source.starts_with("'nonce-") => Err("is a nonce; nonces must change with every response"),
            _ => Err("is not a keyword or hash CSP knows"),
        };
    }
    // scheme-source: `https:`
    if let Some(scheme) = source.strip_suffix(':') {
        return if is_scheme(scheme) { Ok(()) } else { Err("is not a valid scheme") };
    }
    // host-source: [scheme "://"] host [":" port] [path]
    let rest = match source.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => rest,
        Some(_) => return Err("has an invalid scheme"),
        None => source,
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(port) = port {
        let number = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0);
        if port != "*" && !number {
            return Err("has an invalid port");
        }
    }
    let labels = host.strip_prefix("*.").unwrap_or(host);
    let host_ok = host == "*"
        || (!labels.is_empty()
            && labels
                .split('.')
                .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
    if !host_ok {
        return Err("is not a keyword, hash, scheme or host");
    }
    if path.contains('\'') {
        return Err("has a quote in its path");
    }
    Ok(())
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
}

/// The directive whose sources apply when `directive` is absent (CSP level 3 fallback lists).
fn fallbacks(directive: &str) -> &'static [&'static str] {
    match directive {
        "script-src-elem" | "script-src-attr" => &["script-src", "default-src"],
        "style-src-elem" | "style-src-attr" => &["style-src", "default-src"],
        "frame-src" => &["child-src", "default-src"],
        "worker-src" => &["child-src", "script-src", "default-src"],
        // Not fetch directives: absent means unrestricted, so there is nothing to copy.
        "default-src" | "form-action" => &[],
        _ => &["default-src"],
    }
}

/// `base` with `additions` added (directives in the base's order, new ones after). Additions
/// must have passed [`check`].
pub fn merge(base: &str, additions: &BTreeMap<String, Vec<String>>) -> String {
    let mut directives: Vec<(String, Vec<String>)> = base
        .split(';')
        .filter_map(|d| {
            let mut words = d.split_ascii_whitespace();
            let name = words.next()?.to_ascii_lowercase();
            Some((name, words.map(str::to_string).collect()))
        })
        .collect();
    for (name, sources) in additions {
        let at = match directives.iter().position(|(n, _)| n == name) {
            Some(at) => at,
            None => {
                let inherited = fallbacks(name)
                    .iter()
                    .find_map(|f| directives.iter().find(|(n, _)| n == f))
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                directives.push((name.clone(), inherited));
                directives.len() - 1
            }
        };
        let list = &mut directives[at].1;
        list.retain(|s| !s.eq_ignore_ascii_case("'none'"));
        for source in sources {
            if !list.contains(source) {
                list.push(source.clone());
            }
        }
    }
    directives
        .iter()
        .map(|(n, s)| if s.is_empty() { n.clone() } else { format!("{n} {}", s.join(" ")) })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "default-src 'self'; img-src 'self' data:; script-src 'self'; object-src 'none'";

    fn adds(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs.iter().map(|(d, s)| (d.to_string(), s.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn extends_present_directives_and_inherits_for_absent_ones() {
        let merged = merge(
            BASE,
            &adds(&[
                ("img-src", &["https://cdn.example.com", "data:"]),
                ("font-src", &["https://fonts.gstatic.com"]),
                ("script-src-elem", &["https://js.example.com"]),
                ("object-src", &["https://player.example.com"]),
                ("form-action", &["https://forms.example.com"]),
            ]),
        );
        assert_eq!(
            merged,
            "default-src 'self'; img-src 'self' data: https://cdn.example.com; script-src 'self'; \
             object-src https://player.example.com; font-src 'self' https://fonts.gstatic.com; \
             form-action https://forms.example.com; script-src-elem 'self' https://js.example.com"
        );
        assert_eq!(merge(BASE, &BTreeMap::new()), BASE);
    }

    #[test]
    fn accepts_the_source_grammar() {
        for s in [
            "'self'",
            "'unsafe-inline'",
            "'sha256-abc+/=='",
            "https:",
            "data:",
            "https://cdn.example.com",
            "https://*.example.com:443/fonts/",
            "cdn.example.com",
            "*.example.com",
            "*",
            "example.com:*",
            "wss://live.example.com",
        ] {
            assert_eq!(check("img-src", &[s.to_string()]), Ok(()), "{s}");
        }
    }

    #[test]
    fn refuses_hostile_or_meaningless_sources() {
        for s in [
            "",
            "https://a.example.com; script-src *",
            "https://a.example.com,x",
            "'self' 'unsafe-eval'",
            "a\nb",
            "'none'",
            "'nonce-abc'",
            "'sha256-'",
            "'sha1-abc'",
            "'self",
            "ht tp:",
            "1https:",
            "https://",
            "https://exa_mple.com",
            "https://example.com:99999",
            "https://example.com:80x",
            "https://example.com:+80",
            "https://example.com/a'b",
            "exämple.com",
            &"a".repeat(300),
        ] {
            assert!(check("img-src", &[s.to_string()]).is_err(), "{s:?} accepted");
        }
        assert!(check("img-src", &[]).is_err());
        assert!(check("img-src", &vec!["https:".to_string(); 33]).is_err());
        for d in ["base-uri", "frame-ancestors", "sandbox", "report-uri", "IMG-SRC", "img-src;"] {
            assert!(check(d, &["https:".to_string()]).is_err(), "{d}");
        }
    }
}
