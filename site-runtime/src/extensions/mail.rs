//! Mail for plugins (`mail_send(#{ subject, text, to?, reply_to? })`, capability `mail.send`):
//! a contact form writes to the site's owner without a relay of its own. Everything about the
//! SMTP server is a secret of the site, `secrets/mail.{yaml,json,toml}`:
//!
//! ```yaml
//! smtp: smtps://smtp.example.org      # implicit TLS (465 by default); smtp://host:587 needs STARTTLS;
//!                                     # plain smtp:// only to a relay on this host (127.0.0.1, ::1, localhost)
//! username: site@example.org          # optional, with password
//! password: …
//! from: Example site <site@example.org>
//! to: [owner@example.org]             # who plugins may write to (one address or a list); the first is the default
//! ```
//!
//! The script gives the subject, the text, optionally one of the allowed recipients and a
//! `reply_to` (the visitor's address); it never sees the server, the credentials or the list of
//! recipients, and its errors say which rule it broke without repeating any of them. Messages are
//! queued and sent by the outbox's task (lettre, rustls).

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrets::{Secret, SecretTree};

/// The secrets document that configures mail.
pub const DOCUMENT: &str = "mail";
/// Longest subject a plugin may send.
const MAX_SUBJECT: usize = 200;
/// Longest text a plugin may send, in bytes.
const MAX_TEXT: usize = 64 * 1024;
/// Time limit of one SMTP conversation.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How the server reaches its SMTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Security {
    /// TLS from the first byte (`smtps://`).
    Wrapper,
    /// STARTTLS, required (`smtp://` to another host).
    StartTls,
    /// Plain text, to a relay on this host only.
    None,
}

/// The site's mail settings, from `secrets/mail.*`.
#[derive(Debug, Clone)]
pub struct MailConfig {
    host: Secret,
    port: u16,
    security: Security,
    credentials: Option<(Secret, Secret)>,
    from: Mailbox,
    /// Who plugins may write to; the first is the default.
    to: Vec<Mailbox>,
}

/// A message as a plugin asks for it, checked.
#[derive(Debug, Clone)]
pub struct Mail {
    subject: String,
    text: String,
    to: Mailbox,
    reply_to: Option<Mailbox>,
}

impl MailConfig {
    /// Read `secrets/mail.*`; the error names the key at fault, never a value.
    pub fn from_tree(tree: &SecretTree) -> Result<MailConfig, String> {
        let what = "secrets/mail";
        let SecretTree::Map(map) = tree else { return Err(format!("{what}: expected a map")) };
        if let Some(other) = map.keys().find(|k| !["smtp", "username", "password", "from", "to"].contains(&k.as_str()))
        {
            return Err(format!("{what}: unknown key {other} (smtp, username, password, from, to)"));
        }
        let value = |key: &str| tree.value(&[key]).map(|s| s.expose().to_string());
        let smtp = value("smtp").ok_or_else(|| format!("{what}: needs smtp (smtps://host or smtp://host:port)"))?;
        let (scheme, rest) = smtp
            .split_once("://")
            .ok_or_else(|| format!("{what}.smtp: expected smtps://host[:port] or smtp://host[:port]"))?;
        let rest = rest.trim_end_matches('/');
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => {
                (h.to_string(), p.parse::<u16>().map_err(|_| format!("{what}.smtp: the port is not a number"))?)
            }
            _ => (rest.to_string(), 0),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(format!("{what}.smtp: expected smtps://host[:port] or smtp://host[:port]"));
        }
        let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let (security, default_port) = match scheme {
            "smtps" => (Security::Wrapper, 465),
            "smtp" if loopback => (Security::None, 25),
            "smtp" => (Security::StartTls, 587),
            _ => return Err(format!("{what}.smtp: expected smtps:// or smtp://")),
        };
        let port = if port == 0 { default_port } else { port };
        let credentials = match (tree.value(&["username"]), tree.value(&["password"])) {
            (Some(u), Some(p)) => Some((u.clone(), p.clone())),
            (None, None) => None,
            _ => return Err(format!("{what}: give both username and password, or neither")),
        };
        let mailbox = |key: &str, text: &str| -> Result<Mailbox, String> {
            text.parse::<Mailbox>().map_err(|_| format!("{what}.{key}: not an email address"))
        };
        let from = mailbox("from", &value("from").ok_or_else(|| format!("{what}: needs from"))?)?;
        let to: Vec<Mailbox> = match tree.get(&["to"]) {
            Some(SecretTree::Value(v)) => vec![mailbox("to", v.expose())?],
            Some(SecretTree::List(items)) => items
                .iter()
                .map(|i| match i {
                    SecretTree::Value(v) => mailbox("to", v.expose()),
                    _ => Err(format!("{what}.to: a list of addresses")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(format!("{what}: needs to (who plugins may write to)")),
        };
        if to.is_empty() {
            return Err(format!("{what}.to: at least one address"));
        }
        Ok(MailConfig { host: Secret::new(host), port, security, credentials, from, to })
    }

    /// Check what a plugin asked for; `to` must be one of the allowed recipients.
    pub fn message(&self, subject: &str, text: &str, to: Option<&str>, reply_to: Option<&str>) -> Result<Mail, String> {
        if subject.trim().is_empty() || subject.chars().count() > MAX_SUBJECT || subject.contains(['\r', '\n']) {
            return Err(format!("mail: the subject must be one line of 1 to {MAX_SUBJECT} characters"));
        }
        if text.len() > MAX_TEXT {
            return Err(format!("mail: the text is longer than {} KiB", MAX_TEXT / 1024));
        }
        let to = match to {
            None => self.to[0].clone(),
            Some(wanted) => {
                let wanted: Mailbox = wanted.parse().map_err(|_| "mail: `to` is not an email address".to_string())?;
                self.to
                    .iter()
                    .find(|m| AsRef::<str>::as_ref(&m.email).eq_ignore_ascii_case(wanted.email.as_ref()))
                    .cloned()
                    .ok_or_else(|| "mail: `to` is not one of the site's mail recipients".to_string())?
            }
        };
        let reply_to = reply_to
            .filter(|r| !r.trim().is_empty())
            .map(|r| r.parse::<Mailbox>().map_err(|_| "mail: `reply_to` is not an email address".to_string()))
            .transpose()?;
        Ok(Mail { subject: subject.trim().to_string(), text: text.to_string(), to, reply_to })
    }

    /// Send `mail` (one SMTP conversation).
    pub async fn send(&self, mail: &Mail) -> Result<(), String> {
        let mut message = Message::builder().from(self.from.clone()).to(mail.to.clone()).subject(&mail.subject);
        if let Some(r) = &mail.reply_to {
            message = message.reply_to(r.clone());
        }
        let message = message.body(mail.text.clone()).map_err(|e| format!("the message cannot be built: {e}"))?;
        let host = self.host.expose();
        let tls = || TlsParameters::new(host.to_string()).map_err(|e| format!("TLS: {e}"));
        let security = match self.security {
            Security::Wrapper => Tls::Wrapper(tls()?),
            Security::StartTls => Tls::Required(tls()?),
            Security::None => Tls::None,
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(self.port)
            .tls(security)
            .timeout(Some(TIMEOUT));
        if let Some((user, password)) = &self.credentials {
            transport =
                transport.credentials(Credentials::new(user.expose().to_string(), password.expose().to_string()));
        }
        transport.build().send(message).await.map(drop).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml_like: &[(&str, serde_json::Value)]) -> SecretTree {
        let ring = crate::extensions::outbox::tests::keyring();
        let map: serde_json::Map<String, serde_json::Value> =
            yaml_like.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        let text = serde_json::Value::Object(map).to_string();
        let doc = secrets::Document::encrypt(secrets::Format::Json, &text, &ring.recipients()).unwrap();
        doc.decrypt(ring).unwrap()
    }

    #[test]
    fn settings_are_read_strictly_and_never_repeated() {
        use serde_json::json;
        let good = tree(&[
            ("smtp", json!("smtps://smtp.example.org")),
            ("username", json!("u")),
            ("password", json!("pw-0123456789")),
            ("from", json!("Site <site@example.org>")),
            ("to", json!(["owner@example.org", "Sales <sales@example.org>"])),
        ]);
        let config = MailConfig::from_tree(&good).unwrap();
        assert_eq!((config.port, &config.security), (465, &Security::Wrapper));
        assert!(!format!("{config:?}").contains("pw-0123456789"));
        let local = tree(&[("smtp", json!("smtp://127.0.0.1:2525")), ("from", json!("a@b.c")), ("to", json!("o@b.c"))]);
        assert_eq!(MailConfig::from_tree(&local).unwrap().security, Security::None);
        let remote =
            tree(&[("smtp", json!("smtp://mail.example.org")), ("from", json!("a@b.c")), ("to", json!("o@b.c"))]);
        let remote = MailConfig::from_tree(&remote).unwrap();
        assert_eq!((remote.port, remote.security), (587, Security::StartTls));
        for (bad, expect) in [
            (vec![("smtp", json!("http://x")), ("from", json!("a@b.c")), ("to", json!("o@b.c"))], "smtp"),
            (vec![("smtp", json!("smtps://x:notaport")), ("from", json!("a@b.c")), ("to", json!("o@b.c"))], "port"),
            (
                vec![("smtp", json!("smtps://x")), ("from", json!("secret-not-an-address")), ("to", json!("o@b.c"))],
                "from",
            ),
            (vec![("smtp", json!("smtps://x")), ("from", json!("a@b.c"))], "needs to"),
            (
                vec![
                    ("smtp", json!("smtps://x")),
                    ("from", json!("a@b.c")),
                    ("to", json!("o@b.c")),
                    ("username", json!("u")),
                ],
                "both",
            ),
            (
                vec![
                    ("smtp", json!("smtps://x")),
                    ("from", json!("a@b.c")),
                    ("to", json!("o@b.c")),
                    ("port", json!("1")),
                ],
                "unknown key port",
            ),
        ] {
            let err = MailConfig::from_tree(&tree(&bad)).unwrap_err();
            assert!(err.contains(expect) && !err.contains("secret-not-an-address"), "{expect}: {err}");
        }
        // What a plugin may ask for.
        assert_eq!(config.message("Hi", "text", None, None).unwrap().to.email.to_string(), "owner@example.org");
        assert!(config.message("Hi", "t", Some("SALES@example.org"), Some("visitor@example.net")).is_ok());
        let err = config.message("Hi", "t", Some("attacker@evil.example"), None).unwrap_err();
        assert!(err.contains("not one of the site's mail recipients") && !err.contains("owner@"), "{err}");
        assert!(config.message("Hi\r\nBcc: x@y.z", "t", None, None).is_err());
        assert!(config.message("", "t", None, None).is_err());
        assert!(config.message("Hi", &"x".repeat(MAX_TEXT + 1), None, None).is_err());
        assert!(config.message("Hi", "t", None, Some("not an address")).is_err());
    }
}
