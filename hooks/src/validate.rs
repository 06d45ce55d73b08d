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
use site_runtime::content::language::Languages;
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
    let paths = || changes.iter().map(Change::path);
    let config_changed = paths().any(|p| p == site_runtime::config::PATH);
    let access_changed = paths().any(|p| p == crate::users::PATH || p.starts_with("policies/"));
    let extensions_changed =
        paths().any(|p| p.starts_with("plugins/") || (p.starts_with("themes/") && p.ends_with(".rhai")));
    let references = crate::references::Checker::new(update)?;
    // Documents are placed by the new commit's languages (a broken site.toml is reported on
    // its own; its defaults place them meanwhile).
    let languages = SiteConfig::at(repo, new).unwrap_or_default().languages();
    let files: Vec<(&str, ObjectId)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert { path, blob } => Some((path.as_str(), *blob)),
            Change::Delete { .. } => None,
        })
        .collect();
    let context = FileContext { new, languages: &languages, references: &references, secrets: update.secrets };
    let found =
        source::map_parallel(repo, &files, "validating", |repo, &(path, blob)| check_file(repo, &context, path, blob))?;
    let mut claims = Vec::new();
    for findings in found {
        let findings = findings?;
        problems.extend(findings.problems);
        claims.extend(findings.claims);
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
    references.removed(update, &mut problems)?;
    Ok(problems)
}

/// What every file's check needs besides the file.
struct FileContext<'a> {
    new: ObjectId,
    languages: &'a Languages,
    references: &'a crate::references::Checker,
    secrets: Option<&'static secrets::Keyring>,
}

/// What one pushed file adds: its problems, and the URLs it claims.
#[derive(Default)]
struct Findings {
    problems: Vec<Problem>,
    claims: Vec<Claim>,
}

/// Check the pushed file `path` (its blob `blob`) as the runtime will read it. Runs on any of
/// [`source::map_parallel`]'s threads, with that thread's `repo`.
fn check_file(
    repo: &gix::Repository,
    cx: &FileContext<'_>,
    path: &str,
    blob: ObjectId,
) -> site_runtime::Result<Findings> {
    let bytes = source::read_blob(repo, blob)?;
    let mut found = Findings::default();
    let mut problem = |message: String| found.problems.push(Problem::new(path, message));
    if bytes.len() <= SCAN_LIMIT && !path.starts_with("secrets/") {
        if let Some(what) = crate::leaks::find_secret(&bytes) {
            problem(format!("looks like {what}; secrets belong encrypted under secrets/, never in plain text"));
            return Ok(found);
        }
    }
    let text = || std::str::from_utf8(&bytes).map_err(|_| "not UTF-8 text".to_string());
    if site_runtime::images::is_image(path) {
        // Read from the header alone: a decompression bomb is refused before any decoding.
        if let Err(m) = site_runtime::images::check(&bytes) {
            problem(m);
        }
    } else if path.starts_with("secrets/") {
        if let Err(m) = text().and_then(|t| check_secrets_document(path, t, cx.secrets)) {
            problem(m);
        }
    } else if path == site_runtime::config::PATH {
        if let Err(m) = text().and_then(|t| SiteConfig::parse(t).map_err(|e| strip_path(&e.to_string(), path))) {
            problem(m);
        }
    } else if document::is_document(path) {
        let outline = text().and_then(|t| {
            document::outline(path, t, cx.languages).map(|o| (o, t)).map_err(|e| strip_path(&e.to_string(), path))
        });
        match outline {
            Ok((doc, text)) => {
                found.claims = urls::claims_of_outline(&doc);
                cx.references.document(repo, cx.new, &doc, text, &mut found.problems);
            }
            Err(m) => problem(m),
        }
    } else if path == crate::users::PATH {
        if let Err(m) = text().and_then(|t| crate::users::parse(t).map(drop)) {
            problem(m);
        }
    } else if let Some((_, inner)) = path.strip_prefix("themes/").and_then(|rest| rest.split_once('/')) {
        if inner == "theme.toml" {
            if let Err(e) = theme::parse_manifest(path, &bytes) {
                problem(strip_path(&e.to_string(), path));
            }
        } else if let Some(name) = inner.strip_prefix("templates/") {
            if let Err(m) = text().and_then(|t| theme::check_template(name, t)) {
                problem(m);
            }
        }
    }
    Ok(found)
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

#[cfg(test)]
mod tests {
    use super::*;

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
