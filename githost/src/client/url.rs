//! Remote addresses: `ssh://[user@]host[:port]/path`, scp-like `[user@]host:path` and
//! `https://[user@]host[:port]/path` (or `http://`), parsed by gix-url (git's own rules), reduced
//! to what a connection needs.

use super::{ClientError, Result};

/// How a remote is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// SSH ([`Connection`](super::Connection)).
    Ssh,
    /// Smart HTTP over TLS ([`HttpConnection`](super::HttpConnection)).
    Https,
    /// Smart HTTP in clear text: only for a remote on this machine or a trusted network; a token
    /// is never sent this way.
    Http,
}

/// Where a remote repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// How it is reached.
    pub scheme: Scheme,
    /// The SSH user (`git` when the address names none, as for every Git host); for HTTP the
    /// user name sent with a token (empty when the address names none).
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The repository path as the server's `git-upload-pack` gets it (SSH), or the URL path
    /// (HTTP).
    pub path: String,
    /// The address as given (for messages).
    pub original: String,
}

impl RemoteUrl {
    /// Parse `url`: SSH, HTTPS or HTTP remotes.
    pub fn parse(url: &str) -> Result<RemoteUrl> {
        let bad = |reason: &str| ClientError::Url { url: url.to_string(), reason: reason.to_string() };
        if url.trim() != url || url.is_empty() {
            return Err(bad("empty, or surrounded by spaces"));
        }
        let parsed = gix::url::parse(url.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        let scheme = match parsed.scheme {
            gix::url::Scheme::Ssh => Scheme::Ssh,
            gix::url::Scheme::Https => Scheme::Https,
            gix::url::Scheme::Http => Scheme::Http,
            other => {
                return Err(bad(&format!(
                    "the {} scheme is not supported here; use ssh:// or https://",
                    other.as_str()
                )))
            }
        };
        if parsed.password().is_some() {
            // The address is shown in logs and messages; a secret does not belong in it.
            return Err(bad("it contains a password; give the token in the settings instead"));
        }
        let host = parsed.host().ok_or_else(|| bad("no host"))?.to_string();
        // A host or user starting with '-' would be an option to a command-line ssh; we never run
        // one, but such an address is surely a mistake or an attack.
        if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid host name"));
        }
        let default_user = if scheme == Scheme::Ssh { "git" } else { "" };
        let user = parsed.user().unwrap_or(default_user).to_string();
        let bad_user =
            user.starts_with('-') || user.contains(':') || user.chars().any(|c| c.is_whitespace() || c.is_control());
        if (scheme == Scheme::Ssh && user.is_empty()) || bad_user {
            return Err(bad("invalid user name"));
        }
        let path = String::from_utf8(parsed.path.to_vec()).map_err(|_| bad("the path is not UTF-8"))?;
        if path.is_empty() || path == "/" || path.chars().any(|c| c.is_control()) {
            return Err(bad("no repository path"));
        }
        if scheme != Scheme::Ssh && (path.contains(['?', '#']) || path.chars().any(char::is_whitespace)) {
            return Err(bad("the path of an HTTP remote may not hold a query, a fragment or spaces"));
        }
        let default_port = match scheme {
            Scheme::Ssh => 22,
            Scheme::Https => 443,
            Scheme::Http => 80,
        };
        let port = parsed.port.unwrap_or(default_port);
        Ok(RemoteUrl { scheme, user, host, port, path, original: url.to_string() })
    }

    /// Whether this remote is reached over HTTP(S).
    pub fn is_http(&self) -> bool {
        self.scheme != Scheme::Ssh
    }

    /// For an HTTP remote: `scheme://host[:port]/path` without the user and without a trailing
    /// `/`, to which `/info/refs` and `/git-upload-pack` are appended.
    pub fn http_base(&self) -> String {
        let (scheme, default_port) = match self.scheme {
            Scheme::Https => ("https", 443),
            _ => ("http", 80),
        };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        let port = if self.port == default_port { String::new() } else { format!(":{}", self.port) };
        format!("{scheme}://{host}{port}{}", self.path.trim_end_matches('/'))
    }

    /// `host` for port 22, else `[host]:port`: the name OpenSSH records in `known_hosts`.
    pub fn known_hosts_name(&self) -> String {
        super::host_key::known_hosts_name(&self.host, self.port)
    }

    /// The command line that starts `program` on the remote for this repository, with the path
    /// single-quoted the way git quotes it (`'` becomes `'\''`, `!` becomes `'\!'`).
    pub fn command(&self, program: &str) -> String {
        let mut quoted = String::from("'");
        for c in self.path.chars() {
            match c {
                '\'' => quoted.push_str("'\\''"),
                '!' => quoted.push_str("'\\!'"),
                c => quoted.push(c),
            }
        }
        quoted.push('\'');
        format!("{program} {quoted}")
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_urls() {
        let u = RemoteUrl::parse("ssh://git@primary.example.org:2222/site.git").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("git", "primary.example.org", 2222, "/site.git")
        );
        assert_eq!(u.known_hosts_name(), "[primary.example.org]:2222");
        let u = RemoteUrl::parse("ssh://example.org/srv/site.git").unwrap();
        assert_eq!((u.user.as_str(), u.port, u.known_hosts_name().as_str()), ("git", 22, "example.org"));
    }

    #[test]
    fn parses_scp_like_addresses() {
        let u = RemoteUrl::parse("alice@example.org:sites/blog.git").unwrap();
        assert_eq!(
            (u.user.as_str(), u.host.as_str(), u.port, u.path.as_str()),
            ("alice", "example.org", 22, "sites/blog.git")
        );
    }

    #[test]
    fn quotes_the_path_like_git() {
        let u = RemoteUrl::parse("ssh://h/it's!.git").unwrap();
        assert_eq!(u.command("git-upload-pack"), r"git-upload-pack '/it'\''s'\!'.git'");
    }

    #[test]
    fn parses_https_urls() {
        let u = RemoteUrl::parse("https://github.com/owner/site.git").unwrap();
        assert_eq!((u.scheme, u.user.as_str(), u.port), (Scheme::Https, "", 443));
        assert_eq!(u.http_base(), "https://github.com/owner/site.git");
        let u = RemoteUrl::parse("https://bot@gitea.example.org:3000/org/site/").unwrap();
        assert_eq!((u.user.as_str(), u.port), ("bot", 3000));
        assert_eq!(u.http_base(), "https://gitea.example.org:3000/org/site");
        let u = RemoteUrl::parse("http://127.0.0.1:8080/site.git").unwrap();
        assert_eq!((u.scheme, u.http_base().as_str()), (Scheme::Http, "http://127.0.0.1:8080/site.git"));
    }

    #[test]
    fn refuses_what_is_not_a_remote() {
        for bad in [
            "",
            " ssh://h/x",
            "https://user:secret@github.com/a/b.git",
            "https://github.com/a/b.git?x=1",
            "https://github.com/a b.git",
            "https://github.com",
            "ftp://h/x",
            "git://h/x",
            "file:///tmp/x",
            "/tmp/repo",
            "ssh://-oProxyCommand=evil/x",
            "ssh://h",
            "ssh://h/",
            "ssh://h:99999/x",
            "ssh://h/a\nb",
            "ssh://-u@h/x",
        ] {
            assert!(RemoteUrl::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
