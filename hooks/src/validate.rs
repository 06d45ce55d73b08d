//! Validation before anything is stored: every file a push changes on a site branch is parsed
//! the way the site runtime will read it, and all problems are reported together, each with its
//! file (and line, where the parser knows it).
//!
//! Checked: `site.toml` (and that its theme exists), `theme.toml`, templates (compile), content
//! (front matter, shortcode syntax, code block options; the templates, shortcodes and documents
//! it names exist: [`crate::references`]), the enabled plugins and theme scripts (manifests, Rhai compiled, settings),
//! that every URL (and alias) belongs to one document, that images are readable and within the
//! pixel limit, the site's Cedar policies
//! (against the schema) and the roles users hold, and that no obvious private key or access token
//! is pushed outside `secrets/`.

use std::collections::HashSet;

use gix::ObjectId;
use site_runtime::content::document;
use site_runtime::source::{self, Change};
use site_runtime::urls::{self, Claim};
use site_runtime::{theme, Site, SiteConfig};

use crate::authz::Authz;

pub use crate::problem::Problem;

/// Files larger than this are not scanned for secrets (media, archives).
const SCAN_LIMIT: usize = 1024 * 1024;

/// Problems with the files that differ between `old` (none for a new branch: every file) and
/// `new` in `repo` (whose object database includes the pushed objects).
pub fn validate(repo: &gix::Repository, old: Option<ObjectId>, new: ObjectId) -> site_runtime::Result<Vec<Problem>> {
    let changes = source::changes(repo, old, new)?;
    validate_update(&Update { repo, old, new, changes: &changes, pushed: &changes, served: None, secrets: None })
}

/// One ref update to validate.
pub struct Update<'a> {
    /// The repository, with the pushed objects.
    pub repo: &'a gix::Repository,
    /// The branch's value before the push; `None` for a new branch (every file is checked).
    pub old: Option<ObjectId>,
    pub new: ObjectId,
    /// The files that differ between `old` and `new`.
    pub changes: &'a [Change],
    /// What the pusher changed: `changes`, or for a new branch its difference from the live
    /// `main`. A problem that spans files (a URL claimed twice) is reported at one of these.
    pub pushed: &'a [Change],
    /// The served site of this branch, whose index answers "who else claims this URL" without
    /// reading the whole tree, when it reflects `old`.
    pub served: Option<&'a Site>,
    /// The server's keyring: each changed document under `secrets/` must open with its first
    /// identity (the server's), MAC verified. Without it (the desktop's offline check) only what
    /// needs no key is checked.
    pub secrets: Option<&'static secrets::Keyring>,
}

/// Problems with the files of `update`.
pub fn validate_update(update: &Update<'_>) -> site_runtime::Result<Vec<Problem>> {
    let Update { repo, old, new, changes, .. } = *update;
    let mut problems = Vec::new();
    let mut config_changed = false;
    let mut access_changed = false;
    let mut extensions_changed = false;
    let mut claims = Vec::new();
    let mut documents = Vec::new();
    // Documents are placed by the new commit's languages (a broken site.toml is reported on
    // its own; its defaults place them meanwhile).
    let languages = SiteConfig::at(repo, new).unwrap_or_default().languages();
    for change in changes {
        let path = change.path();
        if path == crate::users::PATH || path.starts_with("policies/") {
            access_changed = true;
        }
        if path.starts_with("plugins/") || (path.starts_with("themes/") && path.ends_with(".rhai")) {
            extensions_changed = true;
        }
        let Change::Upsert { path, blob } = change else { continue };
        let bytes = source::read_blob(repo, *blob)?;
        let mut problem = |message: String| problems.push(Problem { path: path.clone(), message });
        if bytes.len() <= SCAN_LIMIT && !path.starts_with("secrets/") {
            if let Some(what) = find_secret(&bytes) {
                problem(format!("looks like {what}; secrets belong encrypted under secrets/, never in plain text"));
                continue;
            }
        }
        let text = || std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string());
        if site_runtime::images::is_image(path) {
            // Read from the header alone: a decompression bomb is refused before any decoding.
            if let Err(m) = site_runtime::images::check(&bytes) {
                problem(m);
            }
        } else if path.starts_with("secrets/") {
            if let Err(m) = text().and_then(|t| check_secrets_document(path, t, update.secrets)) {
                problem(m);
            }
        } else if path == site_runtime::config::PATH {
            config_changed = true;
            match text().and_then(|t| SiteConfig::parse(t).map_err(|e| strip_path(&e.to_string(), path))) {
                Ok(_) => {}
                Err(m) => problem(m),
            }
        } else if document::is_document(path) {
            match text()
                .and_then(|t| document::parse(path, t, &languages).map_err(|e| strip_path(&e.to_string(), path)))
            {
                Ok(doc) => {
                    claims.extend(urls::claims_of(&doc));
                    documents.push((path.clone(), doc, String::from_utf8_lossy(&bytes).into_owned()));
                }
                Err(m) => problem(m),
            }
        } else if path == crate::users::PATH {
            if let Err(m) = text().and_then(|t| crate::users::parse(t).map(drop)) {
                problem(m);
            }
        } else if let Some(rest) = path.strip_prefix("themes/") {
            let Some((_, inner)) = rest.split_once('/') else { continue };
            if inner == "theme.toml" {
                if let Err(e) = theme::parse_manifest(path, &bytes) {
                    problem(strip_path(&e.to_string(), path));
                }
            } else if let Some(name) = inner.strip_prefix("templates/") {
                match text().and_then(|t| theme::check_template(name, t)) {
                    Ok(()) => {}
                    Err(m) => problem(m),
                }
            }
        }
    }
    if config_changed || old.is_none() {
        check_theme_exists(repo, new, &mut problems)?;
    }
    if access_changed || old.is_none() {
        check_policies_and_roles(repo, new, &mut problems);
    }
    if extensions_changed || config_changed || old.is_none() {
        check_extensions(repo, new, &mut problems)?;
    }
    if !claims.is_empty() {
        check_urls(update, claims, &mut problems)?;
    }
    crate::references::check(update, &documents, &mut problems)?;
    Ok(problems)
}

/// A document under `secrets/`: a ROPS document of its format with every value encrypted and,
/// given the server's keyring, encrypted to the server and whole (MAC verified). The plaintext
/// is dropped at once.
fn check_secrets_document(path: &str, text: &str, keyring: Option<&'static secrets::Keyring>) -> Result<(), String> {
    let (name, format) = secrets::store::name_of(path).map_err(|e| e.to_string())?;
    let document = secrets::Document::parse(format, text).map_err(|e| e.to_string())?;
    let Some(keyring) = keyring else { return Ok(()) };
    let server = keyring.primary().map(|i| i.recipient()).unwrap_or_default();
    if !document.recipients().contains(&server) {
        return Err(format!(
            "not encrypted to this server ({server}); re-encrypt it with `whispercms-server secrets rotate --recipient {server} {path}`"
        ));
    }
    let tree = document.decrypt(keyring).map_err(|e| e.to_string())?;
    let problems = site_runtime::extensions::outbox::problems_of(&name, &tree);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(())
}

/// The plugins `site.toml` enables and the active theme's scripts must load: manifests, scripts
/// (compiled, with the line of a syntax error), the functions the manifests name, settings.
fn check_extensions(repo: &gix::Repository, new: ObjectId, problems: &mut Vec<Problem>) -> site_runtime::Result<()> {
    let config = match source::blob_at(repo, new, site_runtime::config::PATH)? {
        Some(blob) => {
            let bytes = source::read_blob(repo, blob)?;
            let parsed = std::str::from_utf8(&bytes).ok().and_then(|t| SiteConfig::parse(t).ok());
            let Some(config) = parsed else { return Ok(()) }; // reported on its own
            config
        }
        None => SiteConfig::default(),
    };
    for e in site_runtime::extensions::check(repo, new, &config)? {
        problems.push(match e {
            site_runtime::Error::Content { path, message } => Problem { path, message },
            other => Problem::new("plugins/", other.to_string()),
        });
    }
    Ok(())
}

/// The site's policies must parse and match the schema, and every role a user holds must be one
/// the policies name.
fn check_policies_and_roles(repo: &gix::Repository, new: ObjectId, problems: &mut Vec<Problem>) {
    match Authz::load(repo, new) {
        Err(mut p) => problems.append(&mut p),
        Ok(authz) => {
            if let Ok(users) = crate::users::users_at(repo, new) {
                if let Err(m) = crate::users::check_roles(&users, &authz.roles()) {
                    problems.push(Problem::new(crate::users::PATH, m));
                }
            }
        }
    }
}

/// Every URL a changed document claims must be its alone. The other claims come from the served
/// index when it reflects `old`, otherwise from the front matter of every document of `new`.
fn check_urls(update: &Update<'_>, mut claims: Vec<Claim>, problems: &mut Vec<Problem>) -> site_runtime::Result<()> {
    let changed: HashSet<&str> = update.changes.iter().map(Change::path).collect();
    if let Some(old) = update.old {
        let urls: Vec<&str> = claims.iter().map(|c| c.url.as_str()).collect();
        let known = match update.served {
            Some(site) => site.claims_on(old, &urls)?,
            None => None,
        };
        let others = match known {
            Some(known) => known,
            None => urls::claims_at(update.repo, update.new)?,
        };
        claims.extend(others.into_iter().filter(|c| !changed.contains(c.path.as_str())));
    }
    let pushed: HashSet<&str> = update.pushed.iter().map(Change::path).collect();
    for collision in urls::collisions(&claims) {
        // Reported at a file the pusher changed: that is where the push can fix it.
        let mut paths = collision.claims.iter().map(|c| c.path.as_str());
        let path = paths.clone().find(|p| pushed.contains(p)).or_else(|| paths.find(|p| changed.contains(p)));
        if let Some(path) = path {
            problems.push(Problem::new(path, collision.to_string()));
        }
    }
    Ok(())
}

/// The theme `site.toml` names must be in the pushed tree.
fn check_theme_exists(
    repo: &gix::Repository,
    commit: ObjectId,
    problems: &mut Vec<Problem>,
) -> site_runtime::Result<()> {
    let Some(blob) = source::blob_at(repo, commit, site_runtime::config::PATH)? else { return Ok(()) };
    let bytes = source::read_blob(repo, blob)?;
    let Ok(config) = std::str::from_utf8(&bytes).map_err(drop).and_then(|t| SiteConfig::parse(t).map_err(drop)) else {
        return Ok(()); // already reported
    };
    if let Some(name) = config.theme {
        let manifest = format!("themes/{name}/theme.toml");
        if source::blob_at(repo, commit, &manifest)?.is_none() {
            problems.push(Problem {
                path: site_runtime::config::PATH.into(),
                message: format!("theme {name:?} is not in the repository (expected {manifest})"),
            });
        }
    }
    Ok(())
}

/// Errors of the site runtime start with the path; the problem carries it separately.
fn strip_path(message: &str, path: &str) -> String {
    message.strip_prefix(&format!("{path}: ")).unwrap_or(message).to_string()
}

/// A token's shape: its prefix, how many characters of which class follow, what it is.
type Shape = (&'static str, usize, fn(char) -> bool, &'static str);

/// A description of the first obvious secret in `bytes`, if any: private keys in PEM/OpenSSH
/// form and well-known access-token formats. Deliberately simple and precise (few false
/// positives): it catches mistakes, it is not a scanner for determined leaks.
pub fn find_secret(bytes: &[u8]) -> Option<&'static str> {
    let text = String::from_utf8_lossy(bytes);
    if let Some(i) = text.find("-----BEGIN ") {
        let line = text[i..].lines().next().unwrap_or("");
        if line.contains("PRIVATE KEY-----") {
            return Some("a private key");
        }
    }
    // `prefix` followed by at least `len` characters of `class` (the shapes providers document).
    let token = |prefix: &str, len: usize, class: fn(char) -> bool| {
        text.match_indices(prefix)
            .any(|(i, _)| text[i + prefix.len()..].chars().take(len).filter(|c| class(*c)).count() == len)
    };
    let upper = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit();
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let url_safe = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    let hex = |c: char| c.is_ascii_hexdigit();
    let shapes: [Shape; 27] = [
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
        ("https://hooks.slack.com/services/T", 20, |c| c.is_ascii_alphanumeric() || c == '/', "a Slack webhook URL"),
        (
            "https://discord.com/api/webhooks/",
            20,
            |c| c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-',
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
    shapes.iter().find(|(prefix, len, class, _)| token(prefix, *len, *class)).map(|(.., what)| *what)
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
    fn secrets_documents_are_checked_with_and_without_the_servers_key() {
        use secrets::{Document, Format, Identity, Keyring};
        let server = Identity::generate();
        let stranger = Identity::generate();
        let ring = Keyring::install(vec![server.clone()]).unwrap();
        let plain = "contact:\n  url: http://127.0.0.1:9/hook\n  token: hunter2-token\n";
        let good = Document::encrypt(Format::Yaml, plain, &[server.recipient()]).unwrap();
        let foreign = Document::encrypt(Format::Yaml, plain, &[stranger.recipient()]).unwrap();
        let path = "secrets/webhooks.yaml";
        assert_eq!(check_secrets_document(path, good.text(), Some(ring)), Ok(()));
        assert_eq!(check_secrets_document(path, foreign.text(), None), Ok(()), "offline: no key to check with");
        let err = check_secrets_document(path, foreign.text(), Some(ring)).unwrap_err();
        assert!(err.contains("not encrypted to this server") && err.contains(&server.recipient()), "{err}");
        let err = check_secrets_document(path, plain, None).unwrap_err();
        assert!(err.contains("not encrypted"), "{err}");
        let leaked = good.text().replacen("token: ENC[", "token: hunter2\n  x: ENC[", 1);
        let err = check_secrets_document(path, &leaked, None).unwrap_err();
        assert!(err.starts_with("line 3: contact.token: the value is not encrypted"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let tampered: Vec<&str> = good.text().lines().filter(|l| !l.trim_start().starts_with("url:")).collect();
        let err = check_secrets_document(path, &tampered.join("\n"), Some(ring)).unwrap_err();
        assert!(err.contains("MAC does not verify"), "{err}");
        let wrong = Document::encrypt(Format::Yaml, "contact: just a string\n", &[server.recipient()]).unwrap();
        let err = check_secrets_document(path, wrong.text(), Some(ring)).unwrap_err();
        assert!(err.contains("secrets/webhooks: contact: expected url, token"), "{err}");
        let err = check_secrets_document("secrets/notes.md", "hello", None).unwrap_err();
        assert!(err.contains("only ROPS documents"), "{err}");
    }
}
