//! Reading the index: the queries the site needs, each filtered to what is published at `now`
//! (not a draft, and not dated in the future), so scheduled pages appear by themselves.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::Result;

/// A page or section as templates see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DocRow {
    pub kind: String,
    pub path: String,
    pub url: String,
    pub section: String,
    pub title: String,
    pub description: Option<String>,
    /// Seconds since the epoch.
    pub date: Option<i64>,
    pub updated: Option<i64>,
    pub weight: Option<i64>,
    pub template: Option<String>,
    pub page_template: Option<String>,
    pub sort_by: Option<String>,
    pub paginate_by: Option<i64>,
    pub summary: Option<String>,
    pub content: String,
    pub toc: serde_json::Value,
    pub word_count: i64,
    pub reading_time: i64,
    pub extra: serde_json::Value,
    /// Taxonomy name → terms (filled by [`with_terms`]).
    pub taxonomies: std::collections::BTreeMap<String, Vec<Term>>,
}

/// A taxonomy term.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Term {
    pub name: String,
    pub slug: String,
    /// Published pages carrying it (in listings).
    pub count: i64,
}

/// A file served as it is.
#[derive(Debug, Clone)]
pub struct Asset {
    pub blob: String,
    pub size: i64,
    pub content_type: String,
}

/// A search hit.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub url: String,
    pub title: String,
    /// HTML with `<mark>` around the matches (the rest escaped).
    pub snippet: String,
}

const COLUMNS: &str = "kind, path, url, section, title, description, date, updated, weight, template, page_template, \
     sort_by, paginate_by, summary_html, content_html, toc, word_count, extra";
const VISIBLE: &str = "draft = 0 AND (date IS NULL OR date <= ?1)";

fn doc(r: &Row<'_>) -> rusqlite::Result<DocRow> {
    let word_count: i64 = r.get(16)?;
    Ok(DocRow {
        kind: r.get(0)?,
        path: r.get(1)?,
        url: r.get(2)?,
        section: r.get(3)?,
        title: r.get(4)?,
        description: r.get(5)?,
        date: r.get(6)?,
        updated: r.get(7)?,
        weight: r.get(8)?,
        template: r.get(9)?,
        page_template: r.get(10)?,
        sort_by: r.get(11)?,
        paginate_by: r.get(12)?,
        summary: r.get(13)?,
        content: r.get(14)?,
        toc: serde_json::from_str(&r.get::<_, String>(15)?).unwrap_or_default(),
        word_count,
        reading_time: (word_count + 199) / 200,
        extra: serde_json::from_str(&r.get::<_, String>(17)?).unwrap_or_default(),
        taxonomies: Default::default(),
    })
}

/// The published document at `url`.
pub fn document(conn: &Connection, url: &str, now: i64) -> Result<Option<DocRow>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE url = ?2 AND {VISIBLE} ORDER BY path LIMIT 1");
    let d = conn.prepare_cached(&sql)?.query_row(params![now, url], doc).optional()?;
    d.map(|d| with_terms(conn, d)).transpose()
}

/// Fill in a document's taxonomy terms.
pub fn with_terms(conn: &Connection, mut d: DocRow) -> Result<DocRow> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.taxonomy, t.term, t.slug FROM terms t JOIN documents d ON d.id = t.document_id WHERE d.path = ?1",
    )?;
    let rows = stmt.query_map([&d.path], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?)))?;
    for row in rows {
        let (taxonomy, name, slug) = row?;
        d.taxonomies.entry(taxonomy).or_default().push(Term { name, slug, count: 0 });
    }
    Ok(d)
}

/// All sections (published or not: sections are structure), by URL.
pub fn sections(conn: &Connection) -> Result<Vec<DocRow>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE kind = 'section' AND draft = 0 ORDER BY url");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], doc)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn order_by(sort: Option<&str>) -> &'static str {
    match sort {
        Some("weight") => "weight IS NULL, weight, title",
        Some("title") => "title COLLATE NOCASE, path",
        Some("none") => "path",
        _ => "date IS NULL, date DESC, title",
    }
}

/// One listing page of the published pages of a section, and how many there are in all.
pub fn section_pages(
    conn: &Connection,
    section: &str,
    sort: Option<&str>,
    limit: usize,
    offset: usize,
    now: i64,
) -> Result<(Vec<DocRow>, usize)> {
    let total: i64 = conn
        .prepare_cached(&format!("SELECT count(*) FROM documents WHERE section = ?2 AND kind = 'page' AND {VISIBLE}"))?
        .query_row(params![now, section], |r| r.get(0))?;
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE section = ?2 AND kind = 'page' AND {VISIBLE} ORDER BY {} LIMIT ?3 OFFSET ?4",
        order_by(sort)
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, section, limit as i64, offset as i64], doc)?;
    let pages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let pages = pages.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total as usize))
}

/// The terms of a taxonomy with their published page counts, by name.
pub fn terms(conn: &Connection, taxonomy: &str, now: i64) -> Result<Vec<Term>> {
    let sql = format!(
        "SELECT min(t.term), t.slug, count(*) FROM terms t JOIN documents d ON d.id = t.document_id \
         WHERE t.taxonomy = ?2 AND d.kind = 'page' AND {} GROUP BY t.slug ORDER BY min(t.term) COLLATE NOCASE",
        VISIBLE.replace("draft", "d.draft").replace("date", "d.date")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(params![now, taxonomy], |r| Ok(Term { name: r.get(0)?, slug: r.get(1)?, count: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One listing page of the published pages carrying a term, newest first.
pub fn term_pages(
    conn: &Connection,
    taxonomy: &str,
    slug: &str,
    limit: usize,
    offset: usize,
    now: i64,
) -> Result<(Vec<DocRow>, usize)> {
    let visible = VISIBLE.replace("draft", "d.draft").replace("date", "d.date");
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(DISTINCT d.id) FROM terms t JOIN documents d ON d.id = t.document_id \
             WHERE t.taxonomy = ?2 AND t.slug = ?3 AND d.kind = 'page' AND {visible}"
        ))?
        .query_row(params![now, taxonomy, slug], |r| r.get(0))?;
    let columns = COLUMNS.split(", ").map(|c| format!("d.{c}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT DISTINCT {columns} FROM terms t JOIN documents d ON d.id = t.document_id \
         WHERE t.taxonomy = ?2 AND t.slug = ?3 AND d.kind = 'page' AND {visible} \
         ORDER BY d.date IS NULL, d.date DESC, d.title LIMIT ?4 OFFSET ?5"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, taxonomy, slug, limit as i64, offset as i64], doc)?;
    let pages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let pages = pages.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total as usize))
}

/// Where an alias points, if `url` is one.
pub fn alias_target(conn: &Connection, url: &str, now: i64) -> Result<Option<String>> {
    let sql = format!(
        "SELECT d.url FROM aliases a JOIN documents d ON d.id = a.document_id WHERE a.alias = ?2 AND {} LIMIT 1",
        VISIBLE.replace("draft", "d.draft").replace("date", "d.date")
    );
    Ok(conn.prepare_cached(&sql)?.query_row(params![now, url], |r| r.get(0)).optional()?)
}

/// Every claim on `url`, published or not: documents with that URL and documents naming it
/// among their aliases.
pub fn claims(conn: &Connection, url: &str) -> Result<Vec<crate::urls::Claim>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, 0 FROM documents WHERE url = ?1 \
         UNION ALL SELECT d.path, 1 FROM aliases a JOIN documents d ON d.id = a.document_id WHERE a.alias = ?1",
    )?;
    let rows = stmt.query_map(params![url], |r| {
        Ok(crate::urls::Claim { url: url.to_string(), path: r.get(0)?, alias: r.get::<_, i64>(1)? != 0 })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The file served at `url`, if any. Files in `static/` win over page-bundle files.
pub fn asset(conn: &Connection, url: &str) -> Result<Option<Asset>> {
    Ok(conn
        .prepare_cached(
            "SELECT blob, size, content_type FROM assets WHERE url = ?1 ORDER BY path LIKE 'static/%' DESC, path LIMIT 1",
        )?
        .query_row([url], |r| Ok(Asset { blob: r.get(0)?, size: r.get(1)?, content_type: r.get(2)? }))
        .optional()?)
}

/// The newest published pages (feeds).
pub fn recent_pages(conn: &Connection, limit: usize, now: i64) -> Result<Vec<DocRow>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE kind = 'page' AND {VISIBLE} ORDER BY date IS NULL, date DESC, path LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, limit as i64], doc)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// URL and last change of every published document (sitemap).
pub fn sitemap(conn: &Connection, now: i64) -> Result<Vec<(String, Option<i64>)>> {
    let sql = format!("SELECT url, coalesce(updated, date) FROM documents WHERE {VISIBLE} ORDER BY url");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The next moment a scheduled (future-dated) document becomes visible, if any.
pub fn next_publication(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT min(date) FROM documents WHERE date > ?1 AND draft = 0")?
        .query_row([now], |r| r.get(0))?)
}

/// Full-text search over published documents; `query` is taken as words, not FTS syntax.
pub fn search(conn: &Connection, query: &str, limit: usize, now: i64) -> Result<Vec<Hit>> {
    // Quote every word so user input can never be FTS5 syntax (column filters, NEAR, …).
    let terms: Vec<String> = query
        .split_whitespace()
        .take(16)
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect::<String>())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\"*"))
        .collect();
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT d.url, d.title, snippet(documents_fts, 2, char(1), char(2), '…', 24) FROM documents_fts f \
         JOIN documents d ON d.id = f.rowid WHERE documents_fts MATCH ?2 AND {} ORDER BY rank LIMIT ?3",
        VISIBLE.replace("draft", "d.draft").replace("date", "d.date")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, terms.join(" "), limit as i64], |r| {
        let raw: String = r.get(2)?;
        Ok(Hit { url: r.get(0)?, title: r.get(1)?, snippet: mark(&raw) })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Escape a snippet and turn the \x01…\x02 match markers into `<mark>`.
fn mark(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 16);
    for c in raw.chars() {
        match c {
            '\u{1}' => out.push_str("<mark>"),
            '\u{2}' => out.push_str("</mark>"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// One listing page of all published dated pages, newest first (the home page's list), and how
/// many there are.
pub fn dated_pages(conn: &Connection, limit: usize, offset: usize, now: i64) -> Result<(Vec<DocRow>, usize)> {
    let total: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM documents WHERE kind = 'page' AND date IS NOT NULL AND {VISIBLE}"
        ))?
        .query_row(params![now], |r| r.get(0))?;
    let sql = format!(
        "SELECT {COLUMNS} FROM documents WHERE kind = 'page' AND date IS NOT NULL AND {VISIBLE} \
         ORDER BY date DESC, path LIMIT ?2 OFFSET ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, limit as i64, offset as i64], doc)?;
    let pages = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let pages = pages.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total as usize))
}

/// An entry of the site's main menu.
#[derive(Debug, Clone, Serialize)]
pub struct MenuItem {
    pub title: String,
    pub url: String,
    pub weight: Option<i64>,
}

/// The main menu: top-level sections, and top-level pages that set a `weight`, by weight then
/// title.
pub fn menu(conn: &Connection, now: i64) -> Result<Vec<MenuItem>> {
    let sql = format!(
        "SELECT title, url, weight FROM documents WHERE section = '/' AND {VISIBLE} \
         AND (kind = 'section' OR weight IS NOT NULL) ORDER BY weight IS NULL, weight, title COLLATE NOCASE"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(params![now], |r| Ok(MenuItem { title: r.get(0)?, url: r.get(1)?, weight: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
