//! What documents name outside themselves, checked at push: the templates they ask for
//! (`template`, `page_template`) are in the site's theme or the built-in one, the shortcodes they
//! call exist (the theme's `shortcodes/<name>.html`, a plugin's, or a built-in), and the documents
//! they link (`@/…`, Hugo's `ref`) exist. A page is never accepted that would render wrong or
//! fail at request time.
//!
//! Changed documents are checked directly. A push that removes what unchanged documents use —
//! deletes a document, changes the theme, `site.toml` or the plugins — also checks the documents
//! that refer to it: found in the served index when it reflects the old commit, else by reading
//! every document of the new tree.

use std::collections::{BTreeSet, HashSet};

use gix::ObjectId;
use site_runtime::content::{self, document::Outline};
use site_runtime::index::read::{self, RefKind};
use site_runtime::index::write::outline_references;
use site_runtime::source::{self, Change};
use site_runtime::{theme, SiteConfig};

use crate::problem::Problem;
use crate::validate::Update;

/// Documents named per missing target; the rest are counted.
const REPORTED_PER_TARGET: usize = 10;

/// What the site at the new commit offers documents.
struct Offered {
    templates: BTreeSet<String>,
    shortcodes: BTreeSet<String>,
}

impl Offered {
    fn at(repo: &gix::Repository, commit: ObjectId) -> site_runtime::Result<Option<Offered>> {
        let config = match SiteConfig::at(repo, commit) {
            Ok(config) => config,
            Err(site_runtime::Error::Content { .. }) => return Ok(None), // reported on its own
            Err(e) => return Err(e),
        };
        let templates = theme::template_names(repo, commit, &config)?;
        let mut shortcodes: BTreeSet<String> = templates
            .iter()
            .filter_map(|t| t.strip_prefix("shortcodes/").and_then(|n| n.strip_suffix(".html")))
            .map(str::to_string)
            .collect();
        shortcodes.extend(site_runtime::extensions::declared_shortcodes(repo, commit, &config)?);
        Ok(Some(Offered { templates, shortcodes }))
    }

    /// The problem with one reference, if any.
    fn problem(&self, repo: &gix::Repository, commit: ObjectId, kind: RefKind, target: &str) -> Option<String> {
        match kind {
            RefKind::Template if !self.templates.contains(target) => Some(format!(
                "template {target:?} is not in the theme (templates: {})",
                self.templates.iter().filter(|t| !t.starts_with("shortcodes/") && !t.starts_with("partials/")).cloned().collect::<Vec<_>>().join(", ")
            )),
            RefKind::Shortcode if !self.shortcodes.contains(target) => Some(format!(
                "unknown shortcode {target:?} (known: {}); add templates/shortcodes/{target}.html to the theme or a plugin that declares it",
                self.shortcodes.iter().cloned().collect::<Vec<_>>().join(", ")
            )),
            RefKind::Link => {
                let target = target.strip_prefix("content/").unwrap_or(target);
                let exists = content::markdown::link_candidates(target)
                    .iter()
                    .any(|c| source::blob_at(repo, commit, c).ok().flatten().is_some());
                (!exists).then(|| format!("links to @/{target}, which is not a document of the site"))
            }
            _ => None,
        }
    }
}

/// The references of a push's documents, checked as validation reads each one (nothing of a
/// document is kept once it is checked), and those of unchanged documents the push may break.
pub struct Checker {
    /// What the new commit offers; `None` when its `site.toml` is broken (reported on its own).
    offered: Option<Offered>,
}

impl Checker {
    /// A checker of documents at `update.new`.
    pub fn new(update: &Update<'_>) -> site_runtime::Result<Checker> {
        Ok(Checker { offered: Offered::at(update.repo, update.new)? })
    }

    /// Check what a changed document (its outline and file text) at `commit` refers to.
    pub fn document(
        &self,
        repo: &gix::Repository,
        commit: ObjectId,
        doc: &Outline,
        text: &str,
        problems: &mut Vec<Problem>,
    ) {
        let Some(offered) = &self.offered else { return };
        let mut seen = HashSet::new();
        for (kind, target, line) in outline_references(doc) {
            if !seen.insert((kind, target.clone(), line)) {
                continue;
            }
            if let Some(message) = offered.problem(repo, commit, kind, &target) {
                let line = if kind == RefKind::Template { template_line(text, &target) } else { line };
                problems.push(Problem::new(&doc.path, at_line(line, message)));
            }
        }
    }

    /// Check the unchanged documents whose targets the push removes.
    pub fn removed(&self, update: &Update<'_>, problems: &mut Vec<Problem>) -> site_runtime::Result<()> {
        let Some(offered) = &self.offered else { return Ok(()) };
        removed(update, offered, problems)
    }
}

fn removed(update: &Update<'_>, offered: &Offered, problems: &mut Vec<Problem>) -> site_runtime::Result<()> {
    let Update { repo, old, new, changes, .. } = *update;
    let Some(old) = old else { return Ok(()) };
    let changed: HashSet<&str> = changes.iter().map(Change::path).collect();
    let deleted: Vec<&str> = changes
        .iter()
        .filter(|c| matches!(c, Change::Delete { .. }) && content::is_document(c.path()))
        .map(Change::path)
        .collect();
    // The targets a link to a deleted document may be written as: its path, or Hugo's
    // extension-less name of it.
    let link_keys: Vec<String> =
        deleted.iter().flat_map(|p| [p.to_string(), format!("content/{}", content::markdown::link_base(p))]).collect();
    let link_keys: Vec<&str> = link_keys.iter().map(String::as_str).collect();
    let site_changed = changes.iter().any(|c| {
        let p = c.path();
        p == site_runtime::config::PATH || p.starts_with("themes/") || p.starts_with("plugins/")
    });
    if deleted.is_empty() && !site_changed {
        return Ok(());
    }
    // (document path, kind, target, line) of unchanged documents that may have lost a target.
    let mut suspects: Vec<(String, RefKind, String, usize)> = Vec::new();
    let from_index = match update.served {
        Some(site) => site.read_at(old, |conn| {
            let mut out = Vec::new();
            for (path, target, line) in read::referrers(conn, RefKind::Link, &link_keys)? {
                out.push((path, RefKind::Link, target, line as usize));
            }
            if site_changed {
                // Every target still in use, then every user of those now missing.
                for kind in [RefKind::Template, RefKind::Shortcode] {
                    let missing: Vec<String> = read::targets(conn, kind)?
                        .into_iter()
                        .map(|(target, _, _)| target)
                        .filter(|t| offered.problem(repo, new, kind, t).is_some())
                        .collect();
                    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
                    for (path, target, line) in read::referrers(conn, kind, &missing)? {
                        out.push((path, kind, target, line as usize));
                    }
                }
            }
            Ok(out)
        })?,
        None => None,
    };
    match from_index {
        Some(found) => suspects = found,
        None => {
            let link_keys: HashSet<&str> = link_keys.iter().copied().collect();
            let languages = SiteConfig::at(repo, new).unwrap_or_default().languages();
            for (path, blob) in source::files_under(repo, new, "content")? {
                let path = format!("content/{path}");
                if !content::is_document(&path) || changed.contains(path.as_str()) {
                    continue;
                }
                let bytes = source::read_blob(repo, blob)?;
                let Ok(text) = std::str::from_utf8(&bytes) else { continue };
                let Ok(doc) = content::document::outline(&path, text, &languages) else { continue };
                for (kind, target, line) in outline_references(&doc) {
                    let relevant = match kind {
                        RefKind::Link => link_keys.contains(target.as_str()),
                        _ => site_changed,
                    };
                    if relevant {
                        suspects.push((path.clone(), kind, target, line));
                    }
                }
            }
        }
    }
    let mut reported = HashSet::new();
    // A theme change can strand thousands of pages: name the first few per target, count the rest.
    let mut per_target: std::collections::BTreeMap<(RefKind, String), (usize, String)> = Default::default();
    for (path, kind, target, line) in suspects {
        if changed.contains(path.as_str()) {
            continue;
        }
        if let Some(message) = offered.problem(repo, new, kind, &target) {
            if !reported.insert((path.clone(), message.clone())) {
                continue;
            }
            let seen = per_target.entry((kind, target)).or_insert((0, path.clone()));
            seen.0 += 1;
            if seen.0 <= REPORTED_PER_TARGET {
                problems.push(Problem::new(&path, at_line(line, format!("{message} (this push removes it)"))));
            }
        }
    }
    for ((_, target), (count, first)) in per_target {
        if count > REPORTED_PER_TARGET {
            let more = count - REPORTED_PER_TARGET;
            problems.push(Problem::new(&first, format!("and {more} more documents use {target:?}")));
        }
    }
    Ok(())
}

fn at_line(line: usize, message: String) -> String {
    if line == 0 {
        message
    } else {
        format!("line {line}: {message}")
    }
}

/// The line of a front matter key naming `template` (`template = "x"`, `page_template: x`).
fn template_line(text: &str, template: &str) -> usize {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            (l.starts_with("template") || l.starts_with("page_template")) && l.contains(template)
        })
        .map_or(0, |i| i + 1)
}
