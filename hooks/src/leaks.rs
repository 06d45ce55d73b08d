//! Plain-text credentials in pushed files: private keys in PEM/OpenSSH form and the access-token
//! shapes providers document. Deliberately simple and precise (few false positives): it catches
//! mistakes, it is not a scanner for determined leaks. Every pushed file of a site is scanned,
//! so the scan is one pass over the bytes for all prefixes at once (Aho–Corasick), whatever the
//! number of shapes.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, Input, MatchKind};

/// A token's shape: its prefix, how many bytes of which class follow, what it is.
type Shape = (&'static str, usize, fn(u8) -> bool, &'static str);

fn upper(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}
fn alnum(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}
fn url_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}
fn hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

const SHAPES: [Shape; 27] = [
    ("AGE-SECRET-KEY-1", 58, upper, "an age secret key (the server's secrets identity never goes in the site)"),
    ("AKIA", 16, upper, "an AWS access key id"),
    ("ASIA", 16, upper, "an AWS temporary access key id"),
    ("ghp_", 36, alnum, "a GitHub token"),
    ("gho_", 36, alnum, "a GitHub token"),
    ("ghu_", 36, alnum, "a GitHub token"),
    ("ghs_", 36, alnum, "a GitHub token"),
    ("ghr_", 36, alnum, "a GitHub token"),
    ("github_pat_", 22, url_safe, "a GitHub token"),
    ("glpat-", 20, url_safe, "a GitLab token"),
    ("xoxb-", 10, url_safe, "a Slack token"),
    ("xoxp-", 10, url_safe, "a Slack token"),
    ("xoxa-", 10, url_safe, "a Slack token"),
    ("xapp-", 10, url_safe, "a Slack token"),
    ("https://hooks.slack.com/services/T", 20, |c| c.is_ascii_alphanumeric() || c == b'/', "a Slack webhook URL"),
    (
        "https://discord.com/api/webhooks/",
        20,
        |c| c.is_ascii_alphanumeric() || c == b'/' || c == b'_' || c == b'-',
        "a Discord webhook URL",
    ),
    ("sk_live_", 24, alnum, "a Stripe secret key"),
    ("rk_live_", 24, alnum, "a Stripe restricted key"),
    ("AIza", 35, url_safe, "a Google API key"),
    ("sk-ant-", 40, url_safe, "an Anthropic API key"),
    ("sk-proj-", 40, url_safe, "an OpenAI API key"),
    ("npm_", 36, alnum, "an npm token"),
    ("pypi-AgEIcHlwaS5vcmc", 50, url_safe, "a PyPI token"),
    ("dop_v1_", 64, hex, "a DigitalOcean token"),
    ("shpat_", 32, hex, "a Shopify token"),
    ("hf_", 34, |c| c.is_ascii_alphabetic(), "a Hugging Face token"),
    ("SG.", 22, url_safe, "a SendGrid API key"),
];

/// The PEM/OpenSSH armour line's start; a private key when its line names one.
const ARMOUR: &str = "-----BEGIN ";

/// Every shape's prefix, then the armour (pattern `SHAPES.len()`). Leftmost-first, because only
/// that lets the crate search with its SIMD prefilter (Teddy): the prefixes start with a dozen
/// different bytes, so with the default semantics it stepped through every byte of the push
/// (14% of the checks of a 100,000-page push). No prefix starts another, so both find the same.
static PREFIXES: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .build(SHAPES.iter().map(|shape| shape.0).chain([ARMOUR]))
        .unwrap_or_else(|e| unreachable!("fixed ASCII patterns always build: {e}"))
});

/// A description of the first obvious secret in `bytes`, if any: a prefix followed by at
/// least as many bytes of its class as the provider's shape has, or an armour line of a private
/// key. All classes are ASCII, so a multi-byte character (or invalid UTF-8) ends a token.
pub fn find_secret(bytes: &[u8]) -> Option<&'static str> {
    // Leftmost matches, each search starting one byte after the last match's start: every
    // prefix occurrence is seen (no prefix starts another, so one position matches at most
    // one), and the search keeps its vectorised prefilter, which overlapping search has not.
    let mut at = 0;
    while let Some(m) = PREFIXES.find(Input::new(bytes).span(at..bytes.len())) {
        let after = &bytes[m.end()..];
        let found = match SHAPES.get(m.pattern().as_usize()) {
            Some(&(_, len, class, what)) => after.get(..len).filter(|t| t.iter().all(|c| class(*c))).map(|_| what),
            None => {
                let line = after.split(|c| *c == b'\n').next().unwrap_or_default();
                line.windows(16).any(|w| w == b"PRIVATE KEY-----").then_some("a private key")
            }
        };
        if found.is_some() {
            return found;
        }
        at = m.start() + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_obvious_secrets() {
        assert_eq!(find_secret(b"x\n-----BEGIN OPENSSH PRIVATE KEY-----\nabc"), Some("a private key"));
        assert_eq!(find_secret(b"-----BEGIN RSA PRIVATE KEY-----"), Some("a private key"));
        assert_eq!(find_secret(b"key = AKIAIOSFODNN7EXAMPLE"), Some("an AWS access key id"));
        assert_eq!(find_secret(b"token: ghp_abcdefghijklmnopqrstuvwxyz0123456789"), Some("a GitHub token"));
        let cases: [(&str, &str); 10] = [
            ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ", "an age secret key"),
            ("glpat-abcdefghij0123456789", "a GitLab token"),
            ("url = \"https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX\"", "a Slack webhook URL"),
            ("AIzaSyA-abcdefghijklmnopqrstuvwxyz012345", "a Google API key"),
            ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "an npm token"),
            ("dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a DigitalOcean token"),
            ("rk_live_abcdefghijklmnopqrstuvwx", "a Stripe restricted key"),
            ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "a Hugging Face token"),
            ("SG.abcdefghijklmnopqrstuv.xyz", "a SendGrid API key"),
            ("xapp-1-A0000-0000-abcdef", "a Slack token"),
        ];
        for (text, what) in cases {
            let found = find_secret(text.as_bytes()).unwrap_or_else(|| panic!("missed {text}"));
            assert!(found.starts_with(what), "{text}: {found}");
        }
    }

    #[test]
    fn ordinary_text_is_not_a_secret() {
        for text in [
            &b"-----BEGIN PUBLIC KEY-----"[..],
            b"-----BEGIN CERTIFICATE-----",
            b"AKIA is a prefix",
            b"ghp_short",
            b"Write about sk_live_ keys in a blog post",
            b"AIza is how Google keys start",
            b"the hf_ prefix, npm_ and glpat- are documented",
            b"https://hooks.slack.com/services/ is where webhooks live",
            b"SG. short",
            b"AGE-SECRET-KEY-1 is the prefix of an age identity",
            b"\xff\xfe binary",
        ] {
            assert_eq!(find_secret(text), None, "{:?}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn no_prefix_starts_another() {
        // What `find_secret`'s search relies on to see every occurrence.
        let prefixes: Vec<&str> = SHAPES.iter().map(|s| s.0).chain([ARMOUR]).collect();
        for a in &prefixes {
            for b in &prefixes {
                assert!(a == b || !a.starts_with(b), "{a} starts with {b}");
            }
        }
    }

    #[test]
    fn every_armour_line_is_looked_at_and_tokens_end_at_other_characters() {
        let text = b"-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n-----BEGIN EC PRIVATE KEY-----\n";
        assert_eq!(find_secret(text), Some("a private key"));
        // A token cut short by a non-ASCII character (its bytes are not of the class).
        assert_eq!(find_secret("ghp_abcdefghijklmnopqrstuvwxyz01234é6789".as_bytes()), None);
        // Overlapping prefixes: "SG." inside a longer token still counts on its own.
        assert_eq!(find_secret(b"xSG.abcdefghijklmnopqrstuv"), Some("a SendGrid API key"));
        assert_eq!(find_secret(b""), None);
        // A prefix inside a failed candidate of another: "AKIA" starts inside "xoxb-AKIA…".
        assert_eq!(find_secret(b"xoxb-AKIAIOSFODNN7EXAMPLE"), Some("a Slack token"));
        assert_eq!(find_secret(b"ASIAxAKIAIOSFODNN7EXAMPLE"), Some("an AWS access key id"));
    }
}
