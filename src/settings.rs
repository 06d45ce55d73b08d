//! `settings.toml`: the server's configuration file, with defaults for every value.
//!
//! Unknown keys are errors (a typo must not silently fall back to a default), and errors name
//! the file, the line and what was expected — `toml`'s messages do that already.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where repositories, keys and indexes live.
    pub data_dir: PathBuf,
    /// The SSH endpoint.
    pub ssh: SshSettings,
    /// The public site.
    pub http: HttpSettings,
    /// Bounds on what a client may cost.
    pub limits: LimitSettings,
    /// The edge in front of the site (`[ingress]`): request limits, rate limit, TLS, preview host.
    pub ingress: ingress::Config,
    /// Limits of every plugin or theme-script call (`[extensions]`).
    pub extensions: site_runtime::extensions::Limits,
    /// Where plugins' `webhook(name, …)` calls deliver (`[webhooks.<name>]`: `url` or `dir`, and
    /// an optional `token`); scripts never see these.
    pub webhooks: std::collections::BTreeMap<String, site_runtime::extensions::outbox::Target>,
    /// The server's age identity, which opens the site's `secrets/` (`[secrets]`).
    pub secrets: SecretsSettings,
    /// Follow a remote instead of taking pushes (`[follow]`): a mirror of a primary, or a server
    /// of a site kept on GitHub, Gitea or any SSH Git host.
    pub follow: Option<FollowSettings>,
}

/// `[follow]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowSettings {
    /// The remote, `ssh://user@host:port/path`, `user@host:path` or `https://host/path`.
    pub url: String,
    /// SSH: the private key this server authenticates with.
    pub key: Option<PathBuf>,
    /// HTTPS: a file holding the token sent as the password (mode 0600; a public repository
    /// needs none). The user name is the URL's (`https://bot@host/…`), else `git`.
    pub token_file: Option<PathBuf>,
    /// HTTPS: trust only the CA certificates of this PEM file instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// An OpenSSH known_hosts file listing the remote's host key…
    pub known_hosts: Option<PathBuf>,
    /// …or the key's fingerprint (`SHA256:…`, as `ssh-keygen -lf` prints it).
    pub host_key_fingerprint: Option<String>,
    /// The branches followed (and served: `main` live, `admin` as the preview).
    #[serde(default = "default_branches")]
    pub branches: Vec<String>,
    /// What makes a fetched commit acceptable besides passing validation: `"remote"` (the
    /// remote decided who may push) or `"signatures"` (every new commit signed by a key of
    /// `access/users.toml` whose roles may change what it changes).
    #[serde(default)]
    pub trust: Trust,
    /// With `trust = "signatures"`: a commit (full id) whose history is trusted as it is —
    /// the repository's history from before its authors began to sign.
    pub trust_from: Option<String>,
    /// Seconds between up-to-date checks of a remote that cannot notify (a plain Git server).
    #[serde(default = "default_poll")]
    pub poll_interval_secs: u64,
}

/// `trust` of `[follow]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trust {
    /// The remote's own access control decided who could push.
    #[default]
    Remote,
    /// Every new commit must be signed by an allowed key.
    Signatures,
}

fn default_branches() -> Vec<String> {
    vec!["main".into()]
}

fn default_poll() -> u64 {
    30
}

impl FollowSettings {
    /// Check what serde cannot: one host-key source, sane branches and interval.
    pub fn check(&self) -> Result<(), String> {
        let url = githost::client::RemoteUrl::parse(&self.url).map_err(|e| format!("[follow]: {e}"))?;
        if url.is_http() {
            let ssh_only = [("key", self.key.is_some()), ("known_hosts", self.known_hosts.is_some())];
            let ssh_only = ssh_only.into_iter().chain([("host_key_fingerprint", self.host_key_fingerprint.is_some())]);
            if let Some((name, _)) = ssh_only.into_iter().find(|(_, set)| *set) {
                return Err(format!(
                    "[follow]: {name} is for SSH remotes; an https:// remote uses token_file (and ca_file)"
                ));
            }
            if url.scheme == githost::client::url::Scheme::Http && self.token_file.is_some() {
                return Err("[follow]: a token is never sent over plain http://; use https://".into());
            }
            return self.check_common();
        }
        if self.token_file.is_some() || self.ca_file.is_some() {
            return Err("[follow]: token_file and ca_file are for https:// remotes; an SSH remote uses key".into());
        }
        if self.key.is_none() {
            return Err("[follow]: set key, the private key this server authenticates with".into());
        }
        match (&self.known_hosts, &self.host_key_fingerprint) {
            (Some(_), Some(_)) => return Err("[follow]: give known_hosts or host_key_fingerprint, not both".into()),
            (None, None) => {
                return Err(
                    "[follow]: the remote's host key must be pinned: set known_hosts or host_key_fingerprint".into()
                )
            }
            _ => {}
        }
        if let Some(f) = &self.host_key_fingerprint {
            if !f.starts_with("SHA256:") {
                return Err(format!("[follow]: host_key_fingerprint {f:?} is not a SHA256:… fingerprint"));
            }
        }
        self.check_common()
    }

    /// What holds whatever the remote.
    fn check_common(&self) -> Result<(), String> {
        if self.branches.is_empty() {
            return Err("[follow]: branches is empty".into());
        }
        for b in &self.branches {
            let name = format!("refs/heads/{b}");
            if githost::refs::validate_name(name.as_bytes().into()).is_err() {
                return Err(format!("[follow]: {b:?} is not a branch name"));
            }
        }
        if let Some(id) = &self.trust_from {
            if gix::ObjectId::from_hex(id.as_bytes()).is_err() {
                return Err(format!("[follow]: trust_from {id:?} is not a full commit id (40 hex digits)"));
            }
            if self.trust != Trust::Signatures {
                return Err("[follow]: trust_from only applies with trust = \"signatures\"".into());
            }
        }
        if self.poll_interval_secs == 0 {
            return Err("[follow]: poll_interval_secs must be at least 1".into());
        }
        Ok(())
    }
}

/// `[secrets]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSettings {
    /// The age identity file (as `age-keygen` writes it); generated with mode 0600 on first
    /// start. Default: `<data_dir>/keys/age.key`.
    pub identity: Option<PathBuf>,
}

/// `[ssh]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The host key; generated on first start if missing. Default: `<data_dir>/keys/ssh_host_ed25519`.
    pub host_key: Option<PathBuf>,
    /// An OpenSSH `authorized_keys` file of users allowed to connect.
    pub authorized_keys: Option<PathBuf>,
    /// Public keys allowed to connect, one `authorized_keys` line each.
    pub keys: Vec<String>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Address of the live site (`main`).
    pub listen: SocketAddr,
    /// Address of the preview of the `admin` branch; none by default.
    pub preview_listen: Option<SocketAddr>,
    /// Admin-only address serving `/metrics` (Prometheus text); none by default.
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { listen: SocketAddr::from(([127, 0, 0, 1], 8080)), preview_listen: None, metrics_listen: None }
    }
}

/// `[limits]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest pack one push may send, in bytes.
    pub max_pack_bytes: u64,
    /// Largest single object, in bytes.
    pub max_object_bytes: u64,
    /// Longest delta chain accepted in a push.
    pub max_delta_depth: u32,
    /// Seconds without traffic before a session is closed.
    pub idle_timeout_secs: u64,
    /// Longest a session may last, in seconds.
    pub session_timeout_secs: u64,
    /// Concurrent SSH connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Concurrent authenticated SSH connections in total.
    pub max_connections: usize,
    /// Concurrent SSH connections not yet authenticated; more are closed at once.
    pub max_unauthenticated: usize,
    /// Seconds a connection has to authenticate.
    pub login_grace_secs: u64,
    /// Memory, in MiB, that clones and fetches together may use to make packs; past it, more
    /// wait their turn.
    pub pack_memory_mb: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("/var/lib/whispercms"),
            ssh: SshSettings::default(),
            http: HttpSettings::default(),
            limits: LimitSettings::default(),
            ingress: ingress::Config::default(),
            extensions: site_runtime::extensions::Limits::default(),
            webhooks: Default::default(),
            secrets: SecretsSettings::default(),
            follow: None,
        }
    }
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 2222)),
            host_key: None,
            authorized_keys: None,
            keys: Vec::new(),
        }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        let l = githost::Limits::default();
        LimitSettings {
            max_pack_bytes: l.max_pack_bytes,
            max_object_bytes: l.max_object_bytes,
            max_delta_depth: l.max_delta_depth,
            idle_timeout_secs: l.idle_timeout.as_secs(),
            session_timeout_secs: l.session_timeout.as_secs(),
            max_connections_per_ip: l.max_connections_per_ip,
            max_connections: l.max_connections,
            max_unauthenticated: l.max_unauthenticated,
            login_grace_secs: l.login_grace.as_secs(),
            pack_memory_mb: l.pack_memory_bytes / (1024 * 1024),
        }
    }
}

impl LimitSettings {
    /// The limits as the Git host takes them.
    pub fn to_limits(&self) -> githost::Limits {
        githost::Limits {
            max_pack_bytes: self.max_pack_bytes,
            max_object_bytes: self.max_object_bytes,
            max_delta_depth: self.max_delta_depth,
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            session_timeout: std::time::Duration::from_secs(self.session_timeout_secs),
            max_connections_per_ip: self.max_connections_per_ip,
            max_connections: self.max_connections,
            max_unauthenticated: self.max_unauthenticated,
            login_grace: std::time::Duration::from_secs(self.login_grace_secs),
            pack_memory_bytes: self.pack_memory_mb.saturating_mul(1024 * 1024),
            ..githost::Limits::default()
        }
    }
}

impl Settings {
    /// Read and parse `path`. Relative paths inside are taken relative to the file's directory.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut settings = Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        settings.data_dir = base.join(&settings.data_dir);
        settings.ssh.host_key = settings.ssh.host_key.map(|p| base.join(p));
        settings.ssh.authorized_keys = settings.ssh.authorized_keys.map(|p| base.join(p));
        if let Some(tls) = settings.ingress.tls.as_mut() {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        settings.ingress.check().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if let Some(follow) = settings.follow.as_mut() {
            follow.check().map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            follow.key = follow.key.take().map(|p| base.join(p));
            follow.known_hosts = follow.known_hosts.take().map(|p| base.join(p));
            follow.token_file = follow.token_file.take().map(|p| base.join(p));
            follow.ca_file = follow.ca_file.take().map(|p| base.join(p));
        }
        for (name, target) in settings.webhooks.iter_mut() {
            target.check(name).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            target.dir = target.dir.take().map(|d| base.join(d));
        }
        Ok(settings)
    }

    /// Parse settings text.
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The sections (or keys) of `new` that differ from these settings: none of them takes
    /// effect before the next start.
    pub fn needs_restart(&self, new: &Settings) -> Vec<&'static str> {
        let differs = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        [
            ("data_dir", differs(&self.data_dir, &new.data_dir)),
            ("[ssh]", differs(&self.ssh, &new.ssh)),
            ("[http]", differs(&self.http, &new.http)),
            ("[limits]", differs(&self.limits, &new.limits)),
            ("[ingress]", differs(&self.ingress, &new.ingress)),
            ("[extensions]", differs(&self.extensions, &new.extensions)),
            ("[webhooks]", differs(&self.webhooks, &new.webhooks)),
            ("[secrets]", differs(&self.secrets, &new.secrets)),
            ("[follow]", differs(&self.follow, &new.follow)),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// The host key path in force.
    pub fn host_key_path(&self) -> PathBuf {
        self.ssh.host_key.clone().unwrap_or_else(|| self.data_dir.join("keys/ssh_host_ed25519"))
    }

    /// The server's age identity file.
    pub fn secrets_identity_path(&self) -> PathBuf {
        self.secrets.identity.clone().unwrap_or_else(|| self.data_dir.join("keys/age.key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_and_webhooks() {
        let s = Settings::parse(
            "[extensions]\nmax_call_ms = 50\n[webhooks.contact]\nurl = \"http://127.0.0.1:9/hook\"\ntoken = \"t\"\n",
        )
        .unwrap();
        assert_eq!(s.extensions.max_call_ms, 50);
        assert_eq!(s.extensions.max_operations, site_runtime::extensions::Limits::default().max_operations);
        assert!(s.webhooks["contact"].check("contact").is_ok());
        assert!(Settings::parse("[extensions]\nmax_calls = 1\n").unwrap_err().to_string().contains("unknown field"));
        assert!(Settings::parse("[webhooks.x]\nurl = \"http://a/\"\nsecret = 1\n").is_err());
    }

    #[test]
    fn changed_sections_are_named() {
        let old = Settings::parse("[limits]\nmax_connections = 5\n").unwrap();
        let new = Settings::parse("[limits]\nmax_connections = 6\n[ssh]\nlisten = \"0.0.0.0:22\"\n").unwrap();
        assert_eq!(old.needs_restart(&new), ["[ssh]", "[limits]"]);
        assert!(old.needs_restart(&old.clone()).is_empty());
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let s = Settings::parse("").unwrap();
        assert_eq!(s.ssh.listen.port(), 2222);
        assert_eq!(s.limits.max_delta_depth, githost::Limits::default().max_delta_depth);
    }

    #[test]
    fn reads_values() {
        let s = Settings::parse(
            "data_dir = \"/srv/site\"\n[ssh]\nlisten = \"0.0.0.0:22\"\nkeys = [\"ssh-ed25519 AAAA x\"]\n[limits]\nmax_pack_bytes = 10\n",
        )
        .unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/site"));
        assert_eq!(s.ssh.listen.port(), 22);
        assert_eq!(s.ssh.keys.len(), 1);
        assert_eq!(s.limits.to_limits().max_pack_bytes, 10);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line_number() {
        let err = Settings::parse("[ssh]\nlisten = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("listen_port") && text.contains("line 3"), "{text}");
    }

    #[test]
    fn a_policy_that_is_no_header_value_is_refused_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "[ingress]\ncontent_security_policy = \"default-src 'self'\\nx\"\n").unwrap();
        let err = Settings::load(&path).unwrap_err().to_string();
        assert!(err.contains("content_security_policy: not a valid header value"), "{err}");
        std::fs::write(&path, "[ingress]\ncontent_security_policy = \"\"\n").unwrap();
        assert!(Settings::load(&path).is_ok(), "empty sends none");
    }

    #[test]
    fn follow_settings_are_checked() {
        let ok = "[follow]\nurl = \"ssh://git@primary:2222/site.git\"\nkey = \"k\"\nknown_hosts = \"kh\"\n";
        let s = Settings::parse(ok).unwrap();
        let f = s.follow.unwrap();
        assert_eq!((f.branches.clone(), f.trust, f.poll_interval_secs), (vec!["main".to_string()], Trust::Remote, 30));
        assert!(f.check().is_ok());
        let https = "[follow]\nurl = \"https://bot@gitea.example.org/org/site.git\"\ntoken_file = \"t\"\n";
        assert!(Settings::parse(https).unwrap().follow.unwrap().check().is_ok());
        for (bad, why) in [
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\n", "pinned"),
            ("[follow]\nurl = \"https://h/x\"\nkey = \"k\"\n", "key is for SSH"),
            ("[follow]\nurl = \"http://h/x\"\ntoken_file = \"t\"\n", "never sent over plain"),
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\nknown_hosts = \"kh\"\ntoken_file = \"t\"\n", "for https://"),
            ("[follow]\nurl = \"ftp://h/x\"\n", "scheme"),
            ("[follow]\nurl = \"ssh://h/x\"\nknown_hosts = \"kh\"\n", "set key"),
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\nhost_key_fingerprint = \"MD5:x\"\n", "SHA256"),
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\nknown_hosts = \"kh\"\nbranches = [\"a..b\"]\n", "branch"),
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\nknown_hosts = \"kh\"\ntrust = \"signatures\"\ntrust_from = \"abc\"\n", "40 hex"),
            ("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\nknown_hosts = \"kh\"\ntrust_from = \"0123456789012345678901234567890123456789\"\n", "only applies"),
        ] {
            let err = Settings::parse(bad).unwrap().follow.unwrap().check().unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(Settings::parse("[follow]\nurl = \"ssh://h/x\"\nkey = \"k\"\ntrust = \"nobody\"\n").is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(Settings::parse("[limits]\nmax_pack_bytes = \"big\"\n").is_err());
        assert!(Settings::parse("[ssh]\nlisten = \"not an address\"\n").is_err());
    }
}
