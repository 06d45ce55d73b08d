//! Remote addresses: `ssh://[user@]host[:port]/path` and scp-like `[user@]host:path`, parsed by
//! gix-url (git's own rules), reduced to what an SSH connection needs.

use super::{ClientError, Result};

/// Where a remote repository is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUrl {
    /// The SSH user (`git` when the address names none, as for every Git host).
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The repository path as the server's `git-upload-pack` gets it.
    pub path: String,
    /// The address as given (for messages).
    pub original: String,
}

impl RemoteUrl {
    /// Parse `url`. Only SSH remotes are supported by this client.
    pub fn parse(url: &str) -> Result<RemoteUrl> {
        let bad = |reason: &str| ClientError::Url { url: url.to_string(), reason: reason.to_string() };
        if url.trim() != url || url.is_empty() {
            return Err(bad("empty, or surrounded by spaces"));
        }
        let parsed = gix::url::parse(url.as_bytes()).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme != gix::url::Scheme::Ssh {
            return Err(bad(&format!("the {} scheme is not supported here; use ssh://", parsed.scheme.as_str())));
        }
        let host = parsed.host().ok_or_else(|| bad("no host"))?.to_string();
        // A host or user starting with '-' would be an option to a command-line ssh; we never run
        // one, but such an address is surely a mistake or an attack.
        if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid host name"));
        }
        let user = parsed.user().unwrap_or("git").to_string();
        if user.is_empty() || user.starts_with('-') || user.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("invalid user name"));
        }
        let path = String::from_utf8(parsed.path.to_vec()).map_err(|_| bad("the path is not UTF-8"))?;
        if path.is_empty() || path == "/" || path.chars().any(|c| c.is_control()) {
            return Err(bad("no repository path"));
        }
        Ok(RemoteUrl { user, host, port: parsed.port.unwrap_or(22), path, original: url.to_string() })
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
    fn refuses_what_is_not_an_ssh_remote() {
        for bad in [
            "",
            " ssh://h/x",
            "https://github.com/a/b.git",
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
