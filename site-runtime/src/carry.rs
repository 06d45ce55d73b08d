//! Which cached pages of the previous snapshot a publish keeps: after a push that changes a few
//! pages, every other page would otherwise be cold for its next reader.
//!
//! Conservative by design — a response is kept only when nothing it shows can have changed:
//! - the push changed only pages (`content/**.md`, no `_index` section files, no theme,
//!   plugins, `site.toml`, static files), none of them at the top level (the menu lists
//!   top-level pages);
//! - the site has no extensions (a plugin can show anything) and its templates do not call
//!   `get_section` or print `site.commit`;
//! - the response is an HTML page that is not a redirect, not a home page, a feed, a sitemap or
//!   a taxonomy's term list (`/tags/`: its counts), and not one of the *touched* documents: the
//!   changed pages (by their old and new URLs and aliases), the pages that link to one (their
//!   links may point elsewhere now), and the changed pages' translations (they list them);
//! - a section's listing (any of its `/page/N/`) is kept unless a touched document is, before
//!   or after the push, in that section or in one below it (a transparent section's pages
//!   show in its parent; listings show each page's title, date, summary and terms);
//! - a term's listing (`/tags/rust/`, any page of it) is kept unless a touched document
//!   carries, before or after the push, that term.

use std::collections::HashSet;

use gix::ObjectId;
use rusqlite::{Connection, OptionalExtension};

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
    /// Sections a touched document is in, before or after the push (their ancestors are
    /// added by [`Plan::with_ancestors`]).
    sections: HashSet<String>,
    /// (taxonomy, slug) of every term a touched document carries, before or after the push.
    terms: HashSet<(String, String)>,
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
    let mut plan = Plan { paths, languages, drop: HashSet::new(), sections: HashSet::new(), terms: HashSet::new() };
    if !plan.collect(conn)? {
        return Ok(None);
    }
    Ok(Some(plan))
}

impl Plan {
    /// Add what the changed paths touch in the index at `conn` to what is dropped; `false` when
    /// a changed page is on the menu's level (nothing may be kept then).
    fn collect(&mut self, conn: &Connection) -> Result<bool> {
        let paths = std::mem::take(&mut self.paths);
        let collected = self.collect_paths(conn, &paths);
        self.paths = paths;
        collected
    }

    fn collect_paths(&mut self, conn: &Connection, paths: &[String]) -> Result<bool> {
        let mut keys = Vec::new();
        for path in paths {
            if let Some(doc) = self.touch(conn, path)? {
                // A language's home lists top-level pages in its menu.
                if doc.section.is_empty() || self.languages.of_url(&doc.section).1 == "/" {
                    return Ok(false);
                }
                keys.push(doc.translation_key);
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
        for path in paths {
            for alias in aliases.query_map([path], |r| r.get::<_, String>(0))? {
                self.drop.insert(alias?);
            }
            targets.push(path.clone());
            targets.push(format!("content/{}", content::markdown::link_base(path)));
        }
        let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
        for (referrer, _, _) in read::referrers(conn, RefKind::Link, &targets)? {
            self.touch(conn, &referrer)?;
        }
        Ok(true)
    }

    /// Drop the document at `path` in the index at `conn`, if there is one, with the listings
    /// of its section and its terms.
    fn touch(&mut self, conn: &Connection, path: &str) -> Result<Option<Touched>> {
        let row = conn
            .prepare_cached("SELECT id, url, section, translation_key FROM documents WHERE path = ?1")?
            .query_row([path], |r| {
                Ok((r.get::<_, i64>(0)?, Touched { url: r.get(1)?, section: r.get(2)?, translation_key: r.get(3)? }))
            })
            .optional()?;
        let Some((id, doc)) = row else { return Ok(None) };
        let mut terms = conn.prepare_cached("SELECT taxonomy, slug FROM terms WHERE document_id = ?1")?;
        for term in terms.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))? {
            self.terms.insert(term?);
        }
        self.drop.insert(doc.url.clone());
        self.sections.insert(doc.section.clone());
        Ok(Some(doc))
    }

    /// Add what the changed paths are in the index after the publish (new URLs, sections,
    /// terms, links).
    pub(crate) fn after(mut self, conn: &Connection) -> Result<Option<Plan>> {
        Ok(if self.collect(conn)? { Some(self) } else { None })
    }

    /// Drop the listings of the sections above the touched ones too; `parent` names a
    /// section's parent section (none for a root).
    pub(crate) fn with_ancestors(mut self, parent: impl Fn(&str) -> Option<String>) -> Plan {
        let mut up: Vec<String> = self.sections.iter().cloned().collect();
        while let Some(section) = up.pop() {
            if let Some(p) = parent(&section).filter(|p| !p.is_empty()) {
                if self.sections.insert(p.clone()) {
                    up.push(p);
                }
            }
        }
        self
    }

    /// Whether the cached response for `key` may be kept. `is_section` and `taxonomies` are
    /// the new snapshot's.
    pub(crate) fn keeps(
        &self,
        key: &str,
        rendered: &Rendered,
        is_section: impl Fn(&str) -> bool,
        taxonomies: &[String],
    ) -> bool {
        if rendered.status != 200
            || rendered.location.is_some()
            || !rendered.content_type.starts_with("text/html")
            || !key.ends_with('/')
            || self.drop.contains(key)
        {
            return false;
        }
        let base = crate::render::split_page(key).map_or(key, |(base, _)| base);
        let rest = self.languages.of_url(base).1;
        if rest == "/" {
            return false;
        }
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        if let Some(taxonomy) = parts.first().filter(|t| taxonomies.iter().any(|x| x == *t)) {
            return match parts.as_slice() {
                [_, slug] => !self.terms.contains(&(taxonomy.to_string(), slug.to_string())),
                _ => false,
            };
        }
        if is_section(base) {
            return !self.sections.contains(base);
        }
        base == key
    }
}

/// What a touched document was or is in the index.
struct Touched {
    url: String,
    section: String,
    translation_key: String,
}
