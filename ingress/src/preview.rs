//! Preview credentials. The preview (the `admin` branch) is not public: a request needs a signed,
//! expiring preview link (`?preview=<token>`, then a cookie), and the user the token names must
//! still be allowed to read the preview when the request comes — [`PreviewGate`], Cedar in the
//! server. Revoking a user's role therefore revokes their links at once.
//!
//! A token is `<expires>:<user>:<hex HMAC-SHA256 of "<expires>:<user>">` with the server's
//! preview secret (ring's HMAC).

use ring::hmac;

/// The query parameter that carries a token, and the cookie it is kept in.
pub const QUERY_PARAM: &str = "preview";
pub const COOKIE: &str = "whispercms_preview";

/// Decides whether `user` may see the preview now.
pub trait PreviewGate: Send + Sync {
    fn allows(&self, user: &str) -> Result<(), String>;
}

/// Signs and checks tokens.
pub struct PreviewKeys {
    key: hmac::Key,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed preview token")]
    Malformed,
    #[error("preview token signature does not match")]
    BadSignature,
    #[error("preview link expired")]
    Expired,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex as [`hex`] writes it, and nothing else: a token has one spelling (no `+f`,
/// which `from_str_radix` would read as `0f`, no uppercase).
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

impl PreviewKeys {
    /// Keys from a secret of at least 32 bytes.
    pub fn new(secret: &[u8]) -> Self {
        PreviewKeys { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// A token for `user`, valid until `expires` (seconds since the epoch).
    pub fn sign(&self, user: &str, expires: i64) -> String {
        let message = format!("{expires}:{user}");
        let tag = hmac::sign(&self.key, message.as_bytes());
        format!("{message}:{}", hex(tag.as_ref()))
    }

    /// The user a token names, if it is genuine and not expired at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<String, TokenError> {
        if token.len() > 512 {
            return Err(TokenError::Malformed);
        }
        let (message, tag) = token.rsplit_once(':').ok_or(TokenError::Malformed)?;
        let (expires, user) = message.split_once(':').ok_or(TokenError::Malformed)?;
        let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
        if user.is_empty() || !user.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(TokenError::Malformed);
        }
        let tag = unhex(tag).ok_or(TokenError::Malformed)?;
        hmac::verify(&self.key, message.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(user.to_string())
    }
}

/// The token in a `Cookie` header value, if any.
pub fn token_from_cookies(header: &str) -> Option<&str> {
    header.split(';').map(str::trim).find_map(|c| c.strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The token in a query string, if any.
pub fn token_from_query(query: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let v = p.strip_prefix(QUERY_PARAM)?.strip_prefix('=')?;
        Some(percent_encoding::percent_decode_str(v).decode_utf8_lossy().into_owned())
    })
}

/// The query without the token parameter (for the redirect after a link is used).
pub fn query_without_token(query: &str) -> String {
    query.split('&').filter(|p| !p.starts_with(&format!("{QUERY_PARAM}="))).collect::<Vec<_>>().join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_has_one_spelling() {
        let keys = PreviewKeys::new(&[7; 32]);
        let token = keys.sign("alice", 1_000);
        let (message, tag) = token.rsplit_once(':').unwrap();
        assert_eq!(keys.verify(&token, 0).unwrap(), "alice");
        // The same tag in other spellings `from_str_radix` would read alike.
        let upper = format!("{message}:{}", tag.to_uppercase());
        let plus = format!("{message}:+{}", &tag[1..]);
        for other in [upper, plus] {
            assert_ne!(other, token);
            assert_eq!(keys.verify(&other, 0).unwrap_err(), TokenError::Malformed, "{other}");
        }
    }

    #[test]
    fn tokens_verify_and_expire() {
        let keys = PreviewKeys::new(&[7; 32]);
        let token = keys.sign("alice", 1_000);
        assert_eq!(keys.verify(&token, 999).unwrap(), "alice");
        assert_eq!(keys.verify(&token, 1_000).unwrap_err(), TokenError::Expired);
        let other = PreviewKeys::new(&[8; 32]);
        assert_eq!(other.verify(&token, 0).unwrap_err(), TokenError::BadSignature);
        // Changing the user or the expiry breaks the signature.
        let forged = token.replacen("alice", "mallory", 1);
        assert_eq!(keys.verify(&forged, 0).unwrap_err(), TokenError::BadSignature);
        let later = token.replacen("1000", "9999", 1);
        assert_eq!(keys.verify(&later, 0).unwrap_err(), TokenError::BadSignature);
    }

    #[test]
    fn hostile_tokens_are_malformed() {
        let keys = PreviewKeys::new(&[7; 32]);
        for t in ["", ":", "::", "x:alice:00", "1:alice:zz", "1:al ice:00", "1::00", &"9".repeat(600), "1:a:0"] {
            assert!(keys.verify(t, 0).is_err(), "{t:?}");
        }
    }

    #[test]
    fn tokens_travel_in_cookies_and_queries() {
        assert_eq!(token_from_cookies("a=1; whispercms_preview=9:bob:ab; c=2"), Some("9:bob:ab"));
        assert_eq!(token_from_cookies("whispercms_previewx=1"), None);
        assert_eq!(token_from_query("x=1&preview=9%3Abob%3Aab").as_deref(), Some("9:bob:ab"));
        assert_eq!(query_without_token("x=1&preview=abc&y=2"), "x=1&y=2");
    }
}
