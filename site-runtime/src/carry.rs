//! Which cached pages of the previous snapshot a publish keeps: after a push that changes a few
//! pages, every other page would otherwise be cold for its next reader.
//!
//! Conservative by design — a page is kept only when nothing it shows can have changed:
//! - the push changed only pages (`content/**.md`, no `_index` section files, no theme,
//!   plugins, `site.toml`, static files), none of them at the top level (the menu lists
//!   top-level pages);
//! - the site has no extensions (a plugin can show anything) and its templates do not call
//!   `get_section` or print `site.commit`;
//! - the kept response is a document page: not a section or home page, a listing page, a taxonomy page, a
//!   feed, a sitemap or a redirect, not a changed page (by its old or new URL), not a page that
//!   links to a changed page, not a translation of one.

use std::collections::HashSet;

use gix::ObjectId;
use rusqlite::{params, Connection, OptionalExtension};

use crate::content;
use crate::error::Result;
use crate::index::read::{self, RefKind};
use crate::snapshot::Rendered;
use crate::source::{self, Change};

/// What a publish may keep, decided from the diff and the index before it moves.
pub(crate) struct Plan {
    paths: Vec<String>,
    languages: crate::content::language::Languages,
    /// URLs whose cached pages are dropped (changed pages by their old URL, …).
    drop: HashSet<String>,
}

/// The plan for publishing `new` over the indexed `old`, or `None` when nothing may be kept.
/// `conn` is the index still at `old`.
pub(crate) fn plan(
    repo: &gix::Repository,
    conn: &Connection,
    old: ObjectId,
    new: ObjectId,
    languages: crate::content::language::Languages,
) -> Result<Option<Plan>> {
    let changes = source::changes(repo, Some(old), new)?;
    let pages_only = changes.iter().all(|c| {
        let path = c.path();
        content::is_document(path) && !path.rsplit('/').next().is_some_and(|f| f.starts_with("_index"))
    });
    if changes.is_empty() || !pages_only || changes.len() > 1_000 {
        return Ok(None);
    }
    let paths: Vec<String> = changes.iter().map(|c| Change::path(c).to_string()).collect();
    let mut plan = Plan { paths, languages, drop: HashSet::new() };
    if !plan.collect(conn)? {
        return Ok(None);
    }
    Ok(Some(plan))
}

impl Plan {
    /// Add what the changed paths touch in the index at `conn` to the drop set; `false` when a
    /// changed page is on the menu's level (nothing may be kept then).
    fn collect(&mut self, conn: &Connection) -> Result<bool> {
        let mut stmt = conn.prepare_cached("SELECT url, section, translation_key FROM documents WHERE path = ?1")?;
        let mut keys = Vec::new();
        for path in &self.paths {
            let row: Option<(String, String, String)> =
                stmt.query_row([path], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional()?;
            if let Some((url, section, key)) = row {
                // A language's home lists top-level pages in its menu.
                if section.is_empty() || self.languages.of_url(&section).1 == "/" {
                    return Ok(false);
                }
                self.drop.insert(url);
                keys.push(key);
            }
        }
        let mut siblings = conn.prepare_cached("SELECT url FROM documents WHERE translation_key = ?1")?;
        for key in keys {
            for url in siblings.query_map([key], |r| r.get::<_, String>(0))? {
                self.drop.insert(url?);
            }
        }
        let mut aliases = conn.prepare_cached(
            "SELECT a.alias FROM aliases a JOIN documents d ON d.id = a.document_id WHERE d.path = ?1",
        )?;
        let mut targets = Vec::new();
        for path in &self.paths {
            for alias in aliases.query_map([path], |r| r.get::<_, String>(0))? {
                self.drop.insert(alias?);
            }
            targets.push(path.clone());
            targets.push(format!("content/{}", content::markdown::link_base(path)));
        }
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        let mut url_of = conn.prepare_cached("SELECT url FROM documents WHERE path = ?1")?;
        for (referrer, _, _) in read::referrers(conn, RefKind::Link, &targets)? {
            if let Some(url) = url_of.query_row(params![referrer], |r| r.get::<_, String>(0)).optional()? {
                self.drop.insert(url);
            }
        }
        Ok(true)
    }

    /// Add what the changed paths are in the index after the publish (new URLs, new links).
    pub(crate) fn after(mut self, conn: &Connection) -> Result<Option<Plan>> {
        Ok(if self.collect(conn)? { Some(self) } else { None })
    }

    /// Whether the cached response for `key` may be kept. `sections` and `taxonomies` are the
    /// new snapshot's.
    pub(crate) fn keeps(
        &self,
        key: &str,
        rendered: &Rendered,
        is_section: impl Fn(&str) -> bool,
        taxonomies: &[String],
    ) -> bool {
        rendered.status == 200
            && rendered.location.is_none()
            && rendered.content_type.starts_with("text/html")
            && key.ends_with('/')
            && !self.drop.contains(key)
            && !is_section(key)
            && !key.contains("/page/")
            && !key.trim_start_matches('/').split('/').take(2).any(|part| taxonomies.iter().any(|t| t == part))
    }
}
