//! `whispercms-server init`: a new installation in one command — a commented settings file with
//! every key at its default, the server's keys (SSH host key, preview secret, age identity; all
//! 0600), and the site repository with its first administrator in `access/users.toml`.
//!
//! It asks nothing when given its flags and asks on a terminal for what is missing. It never
//! overwrites: an existing settings file, repository or key is an error that names it.

use std::io::{BufRead, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::settings::Settings;

/// The settings file `init` writes: the one the README shows, every key at its default, edited
/// in place (comments kept) for the few values `init` is given.
pub const TEMPLATE: &str = include_str!("settings.default.toml");

/// What to install.
#[derive(Debug, Clone)]
pub struct Options {
    /// The settings file to write.
    pub config: PathBuf,
    pub data_dir: PathBuf,
    /// The first administrator's public key file (OpenSSH `.pub`); asked for when missing.
    pub admin_key: Option<PathBuf>,
    /// Their id in `access/users.toml`.
    pub admin_id: String,
    /// The site's domain, if it has one yet: its base URL and the clone line use it.
    pub domain: Option<String>,
    /// A repository with only the configuration and the administrator, instead of the starter site.
    pub empty: bool,
    pub ssh_listen: SocketAddr,
    pub http_listen: SocketAddr,
}

/// Install, then print what to do next.
pub fn run(mut options: Options) -> anyhow::Result<()> {
    ask_for_what_is_missing(&mut options)?;
    let installed = install(&options)?;
    print!("{}", installed.summary(&options));
    Ok(())
}

/// What `install` made.
pub struct Installed {
    pub host_key_fingerprint: String,
    pub host_public_key: String,
    pub admin_key: String,
}

impl Installed {
    /// The lines printed at the end: where things are, how to start, how to clone.
    pub fn summary(&self, options: &Options) -> String {
        let host = options.domain.clone().unwrap_or_else(|| match options.ssh_listen.ip() {
            ip if ip.is_unspecified() => "SERVER".to_string(),
            ip => ip.to_string(),
        });
        let port = options.ssh_listen.port();
        let known_host = if port == 22 { host.clone() } else { format!("[{host}]:{port}") };
        format!(
            "WhisperCMS is installed.\n\
             \x20 settings     {config}\n\
             \x20 data         {data}\n\
             \x20 first admin  {id} ({key})\n\
             \n\
             Start it:      systemctl enable --now whispercms   (or: whispercms-server --config {config} serve)\n\
             Clone the site as {id}:\n\
             \x20 git clone ssh://git@{host}:{port}/site.git\n\
             The server's host key; check it when git asks the first time:\n\
             \x20 {fingerprint} (ED25519)\n\
             \x20 known_hosts line: {known_host} {public}\n\
             The site's address is {base_url} (base_url in site.toml: change it there and push).\n",
            config = options.config.display(),
            data = options.data_dir.display(),
            id = options.admin_id,
            key = self.admin_key.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
            fingerprint = self.host_key_fingerprint,
            public = self.host_public_key,
            base_url = base_url(options),
        )
    }
}

fn ask_for_what_is_missing(options: &mut Options) -> anyhow::Result<()> {
    if options.admin_key.is_some() {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("give --admin-key FILE.pub: the first administrator's public SSH key (no terminal to ask on)");
    }
    let ask = |question: &str| -> anyhow::Result<String> {
        print!("{question}");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_string())
    };
    let default_key = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh/id_ed25519.pub"));
    let shown = default_key.as_ref().map(|p| format!(" [{}]", p.display())).unwrap_or_default();
    let answer = ask(&format!("The first administrator's public SSH key file{shown}: "))?;
    options.admin_key = match (answer.is_empty(), default_key) {
        (true, Some(default)) => Some(default),
        (true, None) => bail!("no key file given"),
        (false, _) => Some(PathBuf::from(answer)),
    };
    if options.domain.is_none() {
        let domain = ask("The site's domain (empty if it has none yet): ")?;
        options.domain = (!domain.is_empty()).then_some(domain);
    }
    Ok(())
}

/// Write everything. Refuses before writing anything if any of it exists.
pub fn install(options: &Options) -> anyhow::Result<Installed> {
    let key_path = options.admin_key.as_deref().context("no administrator key")?;
    let admin_key = read_public_key(key_path)?;
    check_user_id(&options.admin_id)?;
    if let Some(domain) = &options.domain {
        check_domain(domain)?;
    }
    let settings_text = settings_text(options)?;
    let settings = {
        let mut s = Settings::parse(&settings_text).context("the settings init would write")?;
        s.data_dir = options.data_dir.clone();
        s
    };
    let git_dir = options.data_dir.join("repos/site.git");
    for path in [
        options.config.clone(),
        git_dir.clone(),
        settings.host_key_path(),
        settings.secrets_identity_path(),
        options.data_dir.join("keys/preview_secret"),
    ] {
        if path.exists() {
            bail!("{} exists: there is an installation here already; nothing was changed", path.display());
        }
    }

    if let Some(dir) = options.config.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_new(&options.config, settings_text.as_bytes(), 0o640)?;
    std::fs::create_dir_all(&options.data_dir).with_context(|| format!("creating {}", options.data_dir.display()))?;
    let host_key = githost::keys::load_or_generate(&settings.host_key_path(), "whispercms host key")
        .with_context(|| format!("host key {}", settings.host_key_path().display()))?;
    crate::preview_secret(&options.data_dir)?;
    secrets::Identity::load_or_generate(&settings.secrets_identity_path())
        .with_context(|| format!("the secrets identity {}", settings.secrets_identity_path().display()))?;

    githost::Repository::open_or_init("site", &git_dir)?;
    let files = site_files(options, &admin_key);
    let commit = if options.empty {
        site_runtime::starter::commit_files(&git_dir, "main", &files, "A new site")?
    } else {
        site_runtime::starter::seed(&git_dir, "main", &files)?
    };
    if let Some(commit) = commit {
        tracing::debug!(%commit, "created the site repository");
    }
    let public = host_key.public_key();
    Ok(Installed {
        host_key_fingerprint: public.fingerprint(Default::default()).to_string(),
        host_public_key: public.to_openssh().context("the host key")?,
        admin_key,
    })
}

/// The template with `data_dir` and the listen addresses set, comments kept.
fn settings_text(options: &Options) -> anyhow::Result<String> {
    let mut doc: toml_edit::DocumentMut = TEMPLATE.parse().context("the settings template")?;
    let data_dir = options.data_dir.to_str().context("the data directory's path is not UTF-8")?;
    set_keeping_comments(doc.as_item_mut(), &["data_dir"], data_dir)?;
    set_keeping_comments(doc.as_item_mut(), &["ssh", "listen"], &options.ssh_listen.to_string())?;
    set_keeping_comments(doc.as_item_mut(), &["http", "listen"], &options.http_listen.to_string())?;
    Ok(doc.to_string())
}

pub(crate) fn set_keeping_comments(item: &mut toml_edit::Item, path: &[&str], value: &str) -> anyhow::Result<()> {
    let mut at = item;
    for key in path {
        at = at.get_mut(key).with_context(|| format!("the settings template lacks {}", path.join(".")))?;
    }
    let old = at.as_value_mut().with_context(|| format!("{} is not a value", path.join(".")))?;
    let decor = old.decor().clone();
    *old = toml_edit::Value::from(value);
    *old.decor_mut() = decor;
    Ok(())
}

/// The files of the first commit besides the starter's: the administrator, and the site's
/// address in `site.toml`.
fn site_files(options: &Options, admin_key: &str) -> Vec<(String, String)> {
    let base_url = base_url(options);
    let site_toml = if options.empty {
        format!("# The site's configuration (see the README's \"Site configuration\").\ntitle = \"My site\"\nbase_url = \"{base_url}\"\n")
    } else {
        site_runtime::starter::FILES
            .iter()
            .find(|(p, _)| *p == "site.toml")
            .map(|(_, t)| t.replace("http://127.0.0.1:8080", &base_url))
            .unwrap_or_default()
    };
    let users = format!(
        "# Who may connect, with which SSH keys, in which roles (admin, publisher, editor, reader).\n\
         [[user]]\nid = \"{id}\"\nname = \"{id}\"\nroles = [\"admin\"]\nkeys = [\"{admin_key}\"]\n",
        id = options.admin_id
    );
    vec![("site.toml".to_string(), site_toml), (hooks::users::PATH.to_string(), users)]
}

/// The site's address: its domain over HTTPS, else where the site listens (`localhost` for an
/// address on every interface: the operator sets `base_url` once the site has a name).
fn base_url(options: &Options) -> String {
    if let Some(domain) = &options.domain {
        return format!("https://{domain}");
    }
    let ip = options.http_listen.ip();
    let host = match ip {
        ip if ip.is_unspecified() => "localhost".to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    match options.http_listen.port() {
        80 => format!("http://{host}"),
        port => format!("http://{host}:{port}"),
    }
}

/// The first key line of an OpenSSH public key file, checked.
fn read_public_key(path: &Path) -> anyhow::Result<String> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut text).context("reading the key from stdin")?;
        text
    } else {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .with_context(|| format!("{} holds no key", path.display()))?;
    if line.contains("PRIVATE KEY") {
        bail!("{} is a private key; give the public one (.pub)", path.display());
    }
    githost::auth::AuthorizedKeys::parse(line, &path.display().to_string()).map_err(|e| anyhow::anyhow!("{e}"))?;
    if line.contains('"') || line.contains('\\') {
        bail!("{}: a key line with quotes or backslashes is not supported", path.display());
    }
    Ok(line.to_string())
}

/// User ids go into TOML and Cedar: letters, digits, `-`, `_`, `.`.
fn check_user_id(id: &str) -> anyhow::Result<()> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !ok {
        bail!("--admin-id {id:?}: use letters, digits, '-', '_' or '.' (at most 64)");
    }
    Ok(())
}

/// A host name (no scheme, port or path).
fn check_domain(domain: &str) -> anyhow::Result<()> {
    let ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    if !ok {
        bail!("--domain {domain:?}: give a host name such as example.org (no scheme, port or path)");
    }
    Ok(())
}

/// Create `path` (never overwriting) with `mode`, synced.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &Path) -> Options {
        Options {
            config: dir.join("etc/settings.toml"),
            data_dir: dir.join("data"),
            admin_key: None,
            admin_id: "admin".into(),
            domain: None,
            empty: false,
            ssh_listen: "0.0.0.0:2222".parse().unwrap(),
            http_listen: "0.0.0.0:80".parse().unwrap(),
        }
    }

    /// The template is what the README shows, and every key in it is at its default.
    #[test]
    fn the_template_is_the_readme_s_and_all_defaults() {
        let readme = include_str!("../README.md");
        assert!(readme.contains(TEMPLATE), "README's settings block and src/settings.default.toml differ");
        let parsed = Settings::parse(TEMPLATE).unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Settings::default()));
    }

    #[test]
    fn settings_get_the_given_values_and_keep_their_comments() {
        let tmp = tempfile::tempdir().unwrap();
        let text = settings_text(&options(tmp.path())).unwrap();
        let s = Settings::parse(&text).unwrap();
        assert_eq!(s.data_dir, tmp.path().join("data"));
        assert_eq!(s.ssh.listen.to_string(), "0.0.0.0:2222");
        assert_eq!(s.http.listen.to_string(), "0.0.0.0:80");
        assert!(text.contains("listen = \"0.0.0.0:80\"                  # the live site (branch main)"), "{text}");
        assert_eq!(text.lines().count(), TEMPLATE.lines().count());
    }

    #[test]
    fn hostile_input_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("k.pub");
        for (text, expected) in [
            ("", "holds no key"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", "private key"),
            ("ssh-ed25519 not-base64 x\n", "k.pub"),
        ] {
            std::fs::write(&key, text).unwrap();
            let e = read_public_key(&key).unwrap_err().to_string();
            assert!(e.contains(expected), "{text:?}: {e}");
        }
        for id in ["", "a b", "x\"y", "é", &"a".repeat(65)] {
            assert!(check_user_id(id).is_err(), "{id:?}");
        }
        for d in ["", "https://x.org", "x.org:80", "x.org/a", "-x.org", "a..b", "x\"y"] {
            assert!(check_domain(d).is_err(), "{d:?}");
        }
        check_domain("blog.example-site.org").unwrap();
    }
}
