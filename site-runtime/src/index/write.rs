//! Writing the index: turning the changed paths between two commits into row changes.

use std::time::Instant;

use gix::objs::Exists as _;
use gix::odb::HeaderExt as _;
use gix::ObjectId;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::content::{self, Document};
use crate::error::{Error, Result};
use crate::index::read::RefKind;
use crate::source::{self, Change};

/// Progress of a long update, for logs and progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// How long the index's writer waits for a lock (rusqlite's default, restored after the
/// checkpoint that must not wait).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What an update did.
#[derive(Debug, Clone, Default)]
pub struct UpdateStats {
    /// A full build (as opposed to incremental).
    pub full: bool,
    /// Documents (re-)indexed.
    pub documents: usize,
    /// Documents removed.
    pub removed: usize,
    /// URLs of the documents (re-)indexed by an incremental update (empty for a full build).
    pub changed: Vec<String>,
    /// Assets added, changed or removed.
    pub assets: usize,
    /// Files refused (see `problems`).
    pub problems: usize,
    /// Wall time.
    pub millis: u128,
}

pub(super) fn update(
    conn: &mut Connection,
    repo: &gix::Repository,
    commit: ObjectId,
    progress: &mut dyn FnMut(Progress),
) -> Result<UpdateStats> {
    let started = Instant::now();
    let old: Option<ObjectId> = conn
        .query_row("SELECT value FROM meta WHERE key = 'commit'", [], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|v| ObjectId::from_hex(v.as_bytes()).ok())
        // An indexed commit that is gone (history rewritten and pruned) means a full build.
        .filter(|c| repo.objects.exists(c));
    if old == Some(commit) {
        return Ok(UpdateStats { millis: started.elapsed().as_millis(), ..Default::default() });
    }
    let mut changes = source::changes(repo, old, commit)?;
    let mut full = old.is_none();
    if !full && changes.iter().any(|c| c.path() == crate::config::PATH) {
        // URLs and taxonomies depend on the configuration: rebuild everything.
        full = true;
        changes = source::changes(repo, None, commit)?;
    }
    // A broken site.toml is refused at push; indexing goes on with the defaults.
    let languages = crate::config::SiteConfig::at(repo, commit).unwrap_or_default().languages();
    let work: Vec<(&str, ObjectId)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert { path, blob } if content::is_document(path) => Some((path.as_str(), *blob)),
            _ => None,
        })
        .collect();
    let parse_one = |repo: &gix::Repository, &(path, blob): &(&str, ObjectId)| -> Result<Document> {
        let bytes = source::read_blob(repo, blob)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::content(path, "not UTF-8 text"))?;
        content::document::parse(path, text, &languages)
    };
    // The documents are parsed on the other cores while this thread writes them.
    let write = |parsed: &mut dyn Iterator<Item = Result<Result<Document>>>| {
        write_changes(conn, repo, commit, &changes, full, parsed)
    };
    let mut stats = source::stream_parallel(repo, &work, "parsing documents", parse_one, write)?;
    if full {
        // The whole index went through the write-ahead log (and was copied into the database as
        // the transaction ended): give the log's space back now rather than at the next write.
        // Without waiting: while a reader still uses the log this gives up at once (the publish
        // must not wait for readers), and the size limit cuts the log at a later write.
        conn.busy_timeout(std::time::Duration::ZERO)?;
        let truncated = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0));
        conn.busy_timeout(BUSY_TIMEOUT)?;
        match truncated {
            Ok(0) => {}
            Ok(_) => tracing::debug!("the write-ahead log is in use; not truncated"),
            Err(e) => tracing::debug!(error = %e, "the write-ahead log was not truncated"),
        }
    }
    progress(Progress { done: work.len(), total: work.len() });
    stats.millis = started.elapsed().as_millis();
    tracing::info!(
        commit = %commit,
        full = stats.full,
        documents = stats.documents,
        removed = stats.removed,
        assets = stats.assets,
        problems = stats.problems,
        ms = stats.millis as u64,
        "index updated"
    );
    Ok(stats)
}

/// Apply `changes` to the index in one transaction, taking each upserted document's parse from
/// `parsed` in order (a full build first empties the tables and drops their indexes).
fn write_changes(
    conn: &mut Connection,
    repo: &gix::Repository,
    commit: ObjectId,
    changes: &[Change],
    full: bool,
    parsed: &mut dyn Iterator<Item = Result<Result<Document>>>,
) -> Result<UpdateStats> {
    let tx = conn.transaction()?;
    let mut stats = UpdateStats { full, ..Default::default() };
    if full {
        // A bulk load: the secondary indexes go, and are made again once the rows are in (a sort
        // each, where keeping them while inserting costs a B-tree insert per row in key order:
        // the full build of a 100,000-page site went from 18 to 26-31 s with schema 8's wider
        // term index that way). All in the update's transaction: readers and a crash see the
        // old index whole.
        let indexes: Vec<String> = tx
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for name in indexes {
            tx.execute_batch(&format!("DROP INDEX \"{name}\""))?;
        }
        // Children first: with the indexes gone, each document deleted before its terms would
        // look for them through the whole table (the foreign keys' cascade).
        tx.execute_batch(
            "DELETE FROM terms; DELETE FROM aliases; DELETE FROM refs; DELETE FROM documents; DELETE FROM assets; \
             DELETE FROM problems; DELETE FROM documents_fts; DELETE FROM term_counts; DELETE FROM page_counts;",
        )?;
    }
    for change in changes {
        let path = change.path();
        if content::is_document(path) {
            // An edit replaces the document's row: it counts as removed only when it is deleted,
            // or when its new version cannot be indexed.
            let existed = if full { 0 } else { delete_document(&tx, path)? };
            tx.prepare_cached("DELETE FROM problems WHERE path = ?1")?.execute([path])?;
            if matches!(change, Change::Delete { .. }) {
                stats.removed += existed;
            }
            if let Change::Upsert { blob, .. } = change {
                match parsed.next().ok_or(Error::Panicked("parsing documents"))?? {
                    Ok(doc) => {
                        let id = insert_document(&tx, &doc, *blob)?;
                        if !full {
                            count_page(&tx, id, 1)?;
                        }
                        stats.documents += 1;
                        if !full {
                            stats.changed.push(doc.url.clone());
                        }
                    }
                    Err(e) => {
                        tracing::warn!(%path, error = %e, "not indexed");
                        tx.execute(
                            "INSERT OR REPLACE INTO problems(path, message) VALUES (?1, ?2)",
                            params![path, e.to_string()],
                        )?;
                        stats.problems += 1;
                        stats.removed += existed;
                    }
                }
            }
        } else if let Some(url) = asset_url(path) {
            stats.assets += 1;
            match change {
                Change::Delete { .. } => {
                    tx.execute("DELETE FROM assets WHERE path = ?1", [path])?;
                }
                Change::Upsert { blob, .. } => {
                    let size = repo.objects.header(blob).map_err(Error::git)?.size();
                    let content_type = mime_type(path);
                    tx.execute(
                        "INSERT OR REPLACE INTO assets(path, url, blob, size, content_type) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![path, url, blob.to_string(), size as i64, content_type],
                    )?;
                }
            }
        }
    }
    if full {
        tx.execute_batch(super::SCHEMA)?;
        // One pass over every page's terms beats a count per document inserted.
        tx.execute_batch(&format!(
            "INSERT INTO term_counts(taxonomy, lang, slug, term, pages) \
             SELECT taxonomy, lang, slug, term, count(*) FROM ({PAGE_TERMS}) GROUP BY taxonomy, lang, slug, term; \
             INSERT INTO page_counts(lang, dated, pages) SELECT lang, date IS NOT NULL, count(*) FROM documents \
             WHERE {COUNTED} GROUP BY 1, 2"
        ))?;
    }
    tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('commit', ?1)", [commit.to_string()])?;
    tx.commit()?;
    Ok(stats)
}

/// The terms `term_counts` counts: each counted page's (taxonomy, lang, slug, spelling), one
/// row per page and slug (its listing row).
const PAGE_TERMS: &str = "SELECT taxonomy, lang, slug, term FROM terms WHERE listed = 1";
/// The documents `term_counts` and `page_counts` count (whatever their publication dates).
const COUNTED: &str = "kind = 'page' AND draft = 0 AND render = 1";

/// Add `delta` (1 or -1) to the kept counts (`page_counts`, `term_counts`) for document `id`,
/// if it is a counted page.
fn count_page(tx: &Transaction<'_>, id: i64, delta: i64) -> Result<()> {
    let page: Option<(String, bool)> = tx
        .prepare_cached(&format!("SELECT lang, date IS NOT NULL FROM documents WHERE id = ?1 AND {COUNTED}"))?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((lang, dated)) = page else { return Ok(()) };
    tx.prepare_cached(
        "INSERT INTO page_counts(lang, dated, pages) VALUES (?1, ?2, ?3) \
         ON CONFLICT(lang, dated) DO UPDATE SET pages = pages + excluded.pages",
    )?
    .execute(params![lang, dated, delta])?;
    tx.prepare_cached("DELETE FROM page_counts WHERE lang = ?1 AND dated = ?2 AND pages <= 0")?
        .execute(params![lang, dated])?;
    let mut stmt = tx.prepare_cached(&format!("{PAGE_TERMS} AND document_id = ?1"))?;
    let rows: Vec<(String, String, String, String)> =
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect::<rusqlite::Result<_>>()?;
    for (taxonomy, lang, slug, term) in rows {
        tx.prepare_cached(
            "INSERT INTO term_counts(taxonomy, lang, slug, term, pages) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(taxonomy, lang, slug, term) DO UPDATE SET pages = pages + excluded.pages",
        )?
        .execute(params![taxonomy, lang, slug, term, delta])?;
        tx.prepare_cached(
            "DELETE FROM term_counts WHERE taxonomy = ?1 AND lang = ?2 AND slug = ?3 AND term = ?4 AND pages <= 0",
        )?
        .execute(params![taxonomy, lang, slug, term])?;
    }
    Ok(())
}

fn delete_document(tx: &Transaction<'_>, path: &str) -> Result<usize> {
    let id: Option<i64> = tx.query_row("SELECT id FROM documents WHERE path = ?1", [path], |r| r.get(0)).optional()?;
    let Some(id) = id else { return Ok(0) };
    count_page(tx, id, -1)?;
    tx.execute("DELETE FROM documents_fts WHERE rowid = ?1", [id])?;
    tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
    Ok(1)
}

/// Insert `doc` and what hangs off it (terms, aliases, references, search text); its row id.
fn insert_document(tx: &Transaction<'_>, doc: &Document, blob: ObjectId) -> Result<i64> {
    let m = &doc.meta;
    let calls = (!doc.calls.is_empty()).then(|| serde_json::to_string(&doc.calls).unwrap_or_else(|_| "[]".into()));
    tx.prepare_cached(
        "INSERT INTO documents(path, blob, kind, url, section, title, description, date, updated, publish, expiry, \
         draft, render, transparent, insert_anchor_links, redirect_to, weight, template, page_template, sort_by, \
         paginate_by, summary_html, content_html, toc, word_count, extra, calls, lang, translation_key, slug) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, \
         ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
    )?
    .execute(params![
        doc.path,
        blob.to_string(),
        doc.kind.as_str(),
        doc.url,
        doc.section,
        doc.title(),
        m.description,
        m.date.map(|d| d.as_second()),
        m.updated.map(|d| d.as_second()),
        m.publish_date.or(m.date).map(|d| d.as_second()),
        m.expiry_date.map(|d| d.as_second()),
        m.draft,
        m.render,
        m.transparent,
        m.insert_anchor_links,
        m.redirect_to,
        m.weight,
        m.template,
        m.page_template,
        m.sort_by,
        m.paginate_by.map(|n| n as i64),
        doc.summary_html,
        doc.html,
        serde_json::to_string(&nested_toc(&doc.url, &doc.toc)).unwrap_or_else(|_| "[]".into()),
        doc.word_count as i64,
        serde_json::to_string(&m.extra).unwrap_or_else(|_| "{}".into()),
        calls,
        doc.lang,
        doc.translation_key,
        doc.url.trim_end_matches('/').rsplit('/').next().unwrap_or_default(),
    ])?;
    let id = tx.last_insert_rowid();
    let counted = doc.kind == content::document::Kind::Page && !m.draft && m.render;
    let publish = m.publish_date.or(m.date).map(|d| d.as_second());
    for (taxonomy, terms) in doc.taxonomies() {
        let slugs: Vec<String> = terms.iter().map(slug::slugify).collect();
        let listing = listing_rows(terms, &slugs);
        for (i, (term, slug)) in terms.iter().zip(&slugs).enumerate() {
            tx.prepare_cached(
                "INSERT INTO terms(document_id, taxonomy, term, slug, lang, listed, date, title, publish, expiry) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                id,
                taxonomy,
                term,
                slug,
                doc.lang,
                counted && listing.contains(&i),
                m.date.map(|d| d.as_second()),
                doc.title(),
                publish,
                m.expiry_date.map(|d| d.as_second()),
            ])?;
        }
    }
    for alias in &m.aliases {
        if let Ok(url) = content::document::normalize_url(alias) {
            tx.prepare_cached("INSERT INTO aliases(document_id, alias) VALUES (?1, ?2)")?.execute(params![id, url])?;
        }
    }
    for (kind, target, line) in references(doc) {
        tx.prepare_cached("INSERT INTO refs(document_id, kind, target, line) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, kind.as_str(), target, line as i64])?;
    }
    if m.in_search_index && m.render {
        let summary = doc.meta.description.clone().unwrap_or_default();
        tx.prepare_cached("INSERT INTO documents_fts(rowid, title, summary, body) VALUES (?1, ?2, ?3, ?4)")?
            .execute(params![id, doc.title(), summary, doc.text])?;
    }
    Ok(id)
}

/// Which of a page's terms of one taxonomy (by position) list it: per slug, the first of its
/// smallest spelling (`tags = ["Rust", "rust"]` lists the page once, under "Rust").
fn listing_rows(terms: &[String], slugs: &[String]) -> Vec<usize> {
    let mut chosen: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (i, slug) in slugs.iter().enumerate() {
        let best = chosen.entry(slug).or_insert(i);
        if terms[i] < terms[*best] {
            *best = i;
        }
    }
    chosen.into_values().collect()
}

/// What `doc` refers to: documents it links (`content/` and the link's target as written, which
/// [`content::markdown::link_candidates`] resolves), shortcodes it calls, templates it names,
/// each with its line (0 where the line is not known).
pub fn references(doc: &Document) -> Vec<(RefKind, String, usize)> {
    references_of(&doc.links, &doc.calls, &doc.meta)
}

/// [`references`] of a document's outline (push validation's view of it).
pub fn outline_references(doc: &content::document::Outline) -> Vec<(RefKind, String, usize)> {
    references_of(&doc.links, &doc.calls, &doc.meta)
}

fn references_of(
    links: &[content::markdown::Link],
    calls: &[content::shortcodes::Call],
    meta: &content::front_matter::FrontMatter,
) -> Vec<(RefKind, String, usize)> {
    let mut out = Vec::new();
    for link in links {
        out.push((RefKind::Link, format!("content/{}", link.target), link.line));
    }
    for call in calls {
        out.push((RefKind::Shortcode, call.name.clone(), call.line));
    }
    for template in [&meta.template, &meta.page_template].into_iter().flatten() {
        out.push((RefKind::Template, template.clone(), 0));
    }
    out
}

/// Headings as Zola's `toc`: each with its `permalink` (the page's URL and the anchor) and the
/// lower-level headings under it as `children`.
fn nested_toc(url: &str, headings: &[content::markdown::Heading]) -> Vec<serde_json::Value> {
    fn take(url: &str, headings: &[content::markdown::Heading], at: &mut usize, level: u8) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        while let Some(h) = headings.get(*at) {
            if h.level < level {
                break;
            }
            *at += 1;
            let children = take(url, headings, at, h.level + 1);
            out.push(serde_json::json!({
                "level": h.level, "id": h.id, "title": h.title,
                "permalink": format!("{url}#{}", h.id), "children": children,
            }));
        }
        out
    }
    let mut at = 0;
    let mut out = Vec::new();
    while at < headings.len() {
        let level = headings[at].level;
        out.extend(take(url, headings, &mut at, level));
    }
    out
}

/// The URL a non-document file is served at: `static/x` at `/x`, `content/a/b.png` at `/a/b.png`
/// (beside its page bundle). Other files (themes, plugins, config) are not served from here.
pub fn asset_url(path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix("static/") {
        return Some(format!("/{rest}"));
    }
    let rest = path.strip_prefix("content/")?;
    if rest.ends_with(".md") {
        return None;
    }
    let (dir, file) = rest.rsplit_once('/').unwrap_or(("", rest));
    Some(format!("{}{file}", content::document::dir_url(dir)))
}

/// The content type of a file, by extension.
pub fn mime_type(path: &str) -> String {
    let guess = mime_guess::from_path(path).first_or_octet_stream();
    let essence = guess.essence_str();
    if essence.starts_with("text/") || essence == "application/javascript" || essence == "application/json" {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_string()
    }
}
