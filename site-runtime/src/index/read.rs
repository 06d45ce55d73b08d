//! Reading the index: the queries the site needs, each filtered to what is published at `now`
//! (not a draft, not dated or scheduled (`publish_date`) in the future, not expired, rendered),
//! so scheduled pages appear and expired ones leave by themselves.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::Result;

/// A page or section as templates see it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
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
    /// Section: its pages are listed in its parent too.
    pub transparent: bool,
    /// Section: anchor links on its pages' headings (`left`, `right`, `heading`, `none`).
    pub insert_anchor_links: Option<String>,
    /// Section: its URL redirects there.
    pub redirect_to: Option<String>,
    /// Its language's code.
    pub lang: String,
    /// The other languages it exists in (filled by [`with_translations`]).
    pub translations: Vec<Translation>,
    /// What its translations share (not shown to templates).
    #[serde(skip)]
    pub translation_key: String,
    /// Shortcode calls, by placeholder number (not shown to templates).
    #[serde(skip)]
    pub calls: Vec<crate::content::shortcodes::Call>,
    /// Taxonomy name → terms (filled by [`with_terms`]).
    pub taxonomies: std::collections::BTreeMap<String, Vec<Term>>,
}

/// A document in another language.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Translation {
    pub lang: String,
    pub url: String,
    pub title: String,
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
     sort_by, paginate_by, summary_html, content_html, toc, word_count, extra, transparent, insert_anchor_links, \
     redirect_to, calls, lang, translation_key";
/// Published at `?1`: not a draft, its publication time come, not expired, rendered.
pub(crate) const VISIBLE: &str =
    "draft = 0 AND (publish IS NULL OR publish <= ?1) AND (expiry IS NULL OR expiry > ?1) AND render = 1";
/// [`VISIBLE`] for the documents table aliased `d`.
const VISIBLE_D: &str =
    "d.draft = 0 AND (d.publish IS NULL OR d.publish <= ?1) AND (d.expiry IS NULL OR d.expiry > ?1) AND d.render = 1";

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
        transparent: r.get(18)?,
        insert_anchor_links: r.get(19)?,
        redirect_to: r.get(20)?,
        calls: r.get::<_, Option<String>>(21)?.and_then(|c| serde_json::from_str(&c).ok()).unwrap_or_default(),
        lang: r.get(22)?,
        translation_key: r.get(23)?,
        translations: Vec::new(),
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

/// Fill in the published translations of a document (itself left out).
pub fn with_translations(conn: &Connection, mut d: DocRow, now: i64) -> Result<DocRow> {
    let sql = format!(
        "SELECT lang, url, title FROM documents WHERE translation_key = ?2 AND path != ?3 AND {VISIBLE} ORDER BY lang"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, d.translation_key, d.path], |r| {
        Ok(Translation { lang: r.get(0)?, url: r.get(1)?, title: r.get(2)? })
    })?;
    d.translations = rows.collect::<rusqlite::Result<_>>()?;
    Ok(d)
}

/// All sections (published or not: sections are structure), by URL.
pub fn sections(conn: &Connection) -> Result<Vec<DocRow>> {
    let sql = format!("SELECT {COLUMNS} FROM documents WHERE {SECTIONS}");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], doc)?;
    let mut sections: Vec<DocRow> = rows.collect::<rusqlite::Result<_>>()?;
    sections.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(sections)
}

/// Which rows [`sections`] reads: found through `documents_listing`, sorted by URL afterwards.
/// (With `ORDER BY url` in the query, SQLite walks the covering `documents_url` for its order and
/// reads the row of every document of the site to learn its kind: 28 ms of every publish at
/// 100,000 pages.)
pub(crate) const SECTIONS: &str = "kind = 'section' AND draft = 0";

fn order_by(sort: Option<&str>) -> &'static str {
    match sort {
        Some("weight") => "weight IS NULL, weight, title",
        Some("title") => "title COLLATE NOCASE, path",
        Some("none") => "path",
        Some("slug") => "slug, path",
        _ => "date IS NULL, date DESC, title",
    }
}

/// The sections whose pages a section (`?2`) lists: itself and its transparent descendants.
/// The join order is forced (`CROSS JOIN`): left to itself, SQLite's bundled planner walks every
/// section of the site and reads its row to compare its parent (1,000 rows of the wide table at
/// 100,000 pages: 30-60 ms on the first request after a publish, when no page is cached).
pub(crate) const WITH_LISTED: &str = "WITH RECURSIVE listed(url) AS (SELECT ?2 UNION SELECT d.url FROM listed \
     CROSS JOIN documents d ON d.section = listed.url WHERE d.kind = 'section' AND d.transparent = 1 AND d.draft = 0)";

/// One listing page of the published pages of a section (and of its transparent subsections), and how many there are in all.
pub fn section_pages(
    conn: &Connection,
    section: &str,
    sort: Option<&str>,
    limit: usize,
    offset: usize,
    now: i64,
) -> Result<(Vec<DocRow>, usize)> {
    let total: i64 = conn
        .prepare_cached(&format!(
            "{WITH_LISTED} SELECT count(*) FROM documents WHERE section IN listed AND kind = 'page' AND {VISIBLE}"
        ))?
        .query_row(params![now, section], |r| r.get(0))?;
    // The ids first, sorted on the narrow columns at the start of each row; then the shown rows,
    // whole. (Sorting the section's rows whole read every one's HTML from its overflow pages:
    // two thirds of a section's first request at 100 pages a section.)
    let sql = format!(
        "{WITH_LISTED} SELECT id FROM documents WHERE section IN listed AND kind = 'page' AND {VISIBLE} \
         ORDER BY {} LIMIT ?3 OFFSET ?4",
        order_by(sort)
    );
    let ids: Vec<i64> = conn
        .prepare_cached(&sql)?
        .query_map(params![now, section, limit as i64, offset as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let pages = by_ids(conn, &ids)?.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total as usize))
}

/// The (slug, spelling) of each term (`?2`) of each counted page of a language (`?3`) that is
/// not visible at `?1`. The pages come from the scheduling indexes and the join order is forced
/// (`INDEXED BY`, `CROSS JOIN`): left to itself, SQLite walks every page or every term of the
/// taxonomy instead.
pub(crate) const HIDDEN_TERMS: &str = "SELECT t.slug, t.term FROM \
     (SELECT id FROM documents INDEXED BY documents_scheduled WHERE publish > ?1 \
      UNION SELECT id FROM documents INDEXED BY documents_expiring WHERE expiry <= ?1) h \
     CROSS JOIN terms t ON t.document_id = h.id \
     WHERE t.listed = 1 AND t.lang = ?3 AND t.taxonomy = ?2";

/// How many dated pages of a language (`?2`) are counted in `page_counts` but not visible at
/// `?1` (the same way as [`HIDDEN_TERMS`]).
pub(crate) const HIDDEN_DATED: &str = "SELECT count(*) FROM \
     (SELECT id FROM documents INDEXED BY documents_scheduled WHERE publish > ?1 \
      UNION SELECT id FROM documents INDEXED BY documents_expiring WHERE expiry <= ?1) h \
     CROSS JOIN documents d ON d.id = h.id \
     WHERE d.kind = 'page' AND d.draft = 0 AND d.render = 1 AND d.lang = ?2 AND d.date IS NOT NULL";

/// The terms of a taxonomy with their published page counts, by name (case-insensitively).
///
/// Read from the counts every update keeps (`term_counts`: pages neither drafts nor unrendered),
/// less the pages that are not visible at `now` (scheduled for later or expired: found through
/// their own indexes, and few). A term's name is the smallest spelling its visible pages use.
pub fn terms(conn: &Connection, taxonomy: &str, lang: &str, now: i64) -> Result<Vec<Term>> {
    use std::collections::BTreeMap;
    // (slug, spelling) → pages.
    let mut counts: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut stmt =
        conn.prepare_cached("SELECT slug, term, pages FROM term_counts WHERE taxonomy = ?1 AND lang = ?2")?;
    for row in stmt.query_map(params![taxonomy, lang], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))? {
        let (key, pages) = row?;
        counts.insert(key, pages);
    }
    let mut hidden = conn.prepare_cached(HIDDEN_TERMS)?;
    for row in hidden.query_map(params![now, taxonomy, lang], |r| Ok((r.get(0)?, r.get(1)?)))? {
        if let Some(pages) = counts.get_mut(&row?) {
            *pages -= 1;
        }
    }
    let mut terms: Vec<Term> = Vec::new();
    // Spellings of one slug are adjacent, the smallest first.
    for ((slug, spelling), pages) in counts.into_iter().filter(|(_, pages)| *pages > 0) {
        match terms.last_mut() {
            Some(last) if last.slug == slug => last.count += pages,
            _ => terms.push(Term { name: spelling, slug, count: pages }),
        }
    }
    terms.sort_by(|a, b| {
        a.name.to_ascii_lowercase().cmp(&b.name.to_ascii_lowercase()).then_with(|| a.slug.cmp(&b.slug))
    });
    Ok(terms)
}

/// The ids of one listing page (`?4` from `?5`) of a term's (`?2`, slug `?3`) pages of a language
/// (`?6`) visible at `?1`: a range of `terms_listing`, in its order (see the schema).
pub(crate) const TERM_LISTING: &str = "SELECT document_id FROM terms \
     WHERE taxonomy = ?2 AND lang = ?6 AND slug = ?3 AND listed = 1 \
     AND (publish IS NULL OR publish <= ?1) AND (expiry IS NULL OR expiry > ?1) \
     ORDER BY date IS NULL, date DESC, title, document_id LIMIT ?4 OFFSET ?5";

/// One listing page of the published pages carrying a term, newest first.
pub fn term_pages(
    conn: &Connection,
    taxonomy: &str,
    slug: &str,
    lang: &str,
    limit: usize,
    offset: usize,
    now: i64,
) -> Result<(Vec<DocRow>, usize)> {
    // The kept count less the term's pages not visible now (counting its pages took 7 ms of a
    // tag page at 100,000 pages).
    let kept: i64 = conn
        .prepare_cached(
            "SELECT coalesce(sum(pages), 0) FROM term_counts WHERE taxonomy = ?1 AND lang = ?2 AND slug = ?3",
        )?
        .query_row(params![taxonomy, lang, slug], |r| r.get(0))?;
    let mut hidden = 0;
    for row in conn.prepare_cached(HIDDEN_TERMS)?.query_map(params![now, taxonomy, lang], |r| r.get::<_, String>(0))? {
        hidden += i64::from(row? == slug);
    }
    let total = kept - hidden;
    // The listing's ids first, from the term's listing rows in their order; then only those
    // documents, whole.
    let ids: Vec<i64> = conn
        .prepare_cached(TERM_LISTING)?
        .query_map(params![now, taxonomy, slug, limit as i64, offset as i64, lang], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let pages = by_ids(conn, &ids)?;
    let pages = pages.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total.max(0) as usize))
}

/// Documents by id, in the order given.
fn by_ids(conn: &Connection, ids: &[i64]) -> Result<Vec<DocRow>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM documents WHERE id = ?1"))?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(d) = stmt.query_row([id], doc).optional()? {
            out.push(d);
        }
    }
    Ok(out)
}

/// The name a taxonomy's term is written with in a language (`slug` is its URL form): the
/// smallest spelling its counted pages use, as in the term list ([`terms`]); `None` when no
/// published page carries it.
pub fn term_name(conn: &Connection, taxonomy: &str, lang: &str, slug: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT term FROM term_counts WHERE taxonomy = ?1 AND lang = ?2 AND slug = ?3 ORDER BY term LIMIT 1",
        )?
        .query_row(params![taxonomy, lang, slug], |r| r.get(0))
        .optional()?)
}

/// Where an alias points, if `url` is one.
pub fn alias_target(conn: &Connection, url: &str, now: i64) -> Result<Option<String>> {
    let sql = format!(
        "SELECT d.url FROM aliases a JOIN documents d ON d.id = a.document_id WHERE a.alias = ?2 AND {} LIMIT 1",
        VISIBLE_D
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
pub fn recent_pages(conn: &Connection, lang: &str, limit: usize, now: i64) -> Result<Vec<DocRow>> {
    // Dated pages newest first (walked in `documents_listing` order), then undated ones: one
    // `ORDER BY date IS NULL, …` sorted every page of the site with its HTML.
    let mut ids: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM documents WHERE kind = 'page' AND lang = ?3 AND date IS NOT NULL AND {VISIBLE} \
             ORDER BY date DESC, path LIMIT ?2"
        ))?
        .query_map(params![now, limit as i64, lang], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if ids.len() < limit {
        let undated: Vec<i64> = conn
            .prepare_cached(&format!(
                "SELECT id FROM documents WHERE kind = 'page' AND lang = ?3 AND date IS NULL AND {VISIBLE} \
                 ORDER BY path LIMIT ?2"
            ))?
            .query_map(params![now, (limit - ids.len()) as i64, lang], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        ids.extend(undated);
    }
    by_ids(conn, &ids)
}

/// A sitemap entry: a published document's URL, its last change, and its translations
/// (language, URL; itself included) when it has any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SitemapEntry {
    pub url: String,
    pub changed: Option<i64>,
    pub alternates: Vec<(String, String)>,
}

/// The sitemap's files once a site has more documents than one file may hold: documents are
/// filed by row id, `per_file` ids to a file (file `n` holds the ids from `(n - 1) * per_file`),
/// so no file holds more than `per_file` URLs and a file's latest change is one step down an
/// index, whatever the site's size. (Filed by URL, the sitemap index had to count its way
/// through every document: 10-13 ms of each first request at 100,000 pages.)
/// [`SITEMAP_BUCKET`] is the size the schema's `documents_sitemap` index is made for.
pub const SITEMAP_BUCKET: i64 = 50_000;

/// Every published document, by URL (`file` `None`), or those of one sitemap file: `(per_file,
/// n)`, see [`SITEMAP_BUCKET`].
pub fn sitemap(conn: &Connection, now: i64, file: Option<(i64, i64)>) -> Result<Vec<SitemapEntry>> {
    let (from, to) = file
        .map_or((i64::MIN, i64::MAX), |(per_file, n)| ((n - 1).saturating_mul(per_file), n.saturating_mul(per_file)));
    let sql = format!(
        "SELECT url, coalesce(updated, date), translation_key FROM documents \
         WHERE id >= ?2 AND id < ?3 AND {VISIBLE} ORDER BY url"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![now, from, to], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, String>(2)?))
    })?;
    let rows: Vec<_> = rows.collect::<rusqlite::Result<_>>()?;
    // The translations: only keys that more than one document has (one walk of their index),
    // then their visible documents.
    let sql = format!(
        "SELECT translation_key, lang, url FROM documents WHERE translation_key IN \
         (SELECT translation_key FROM documents GROUP BY translation_key HAVING count(*) > 1) AND {VISIBLE} \
         ORDER BY translation_key, lang, url"
    );
    let mut groups: std::collections::HashMap<String, Vec<(String, String)>> = std::collections::HashMap::new();
    for row in conn.prepare_cached(&sql)?.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
        let (key, lang, url): (String, String, String) = row?;
        groups.entry(key).or_default().push((lang, url));
    }
    Ok(rows
        .into_iter()
        .map(|(url, changed, key)| {
            let alternates = groups.get(&key).filter(|g| g.len() > 1).cloned().unwrap_or_default();
            SitemapEntry { url, changed, alternates }
        })
        .collect())
}

/// How many documents the index holds, visible or not (a bound on the sitemap's URLs).
pub fn document_count(conn: &Connection) -> Result<i64> {
    Ok(conn.prepare_cached("SELECT count(*) FROM documents")?.query_row([], |r| r.get(0))?)
}

/// The latest change of the visible documents of one sitemap file (`?2`, counted from 0), if it
/// has any (`Some(None)`: visible documents, none dated). With [`SITEMAP_BUCKET`] it is a walk
/// down `documents_sitemap` that stops at the first visible document.
pub(crate) fn sitemap_file_change_sql(per_file: i64) -> String {
    format!(
        "SELECT coalesce(updated, date) FROM documents WHERE id / {per_file} = ?2 AND {VISIBLE} \
         ORDER BY coalesce(updated, date) DESC LIMIT 1"
    )
}

/// The sitemap's files (see [`SITEMAP_BUCKET`]) with visible documents: each file's number
/// (from 1) and latest change.
pub fn sitemap_files(conn: &Connection, now: i64, per_file: i64) -> Result<Vec<(i64, Option<i64>)>> {
    let per_file = per_file.max(1);
    let last: Option<i64> = conn.prepare_cached("SELECT max(id) FROM documents")?.query_row([], |r| r.get(0))?;
    let Some(last) = last.filter(|id| *id >= 0) else { return Ok(Vec::new()) };
    let mut stmt = conn.prepare_cached(&sitemap_file_change_sql(per_file))?;
    let mut files = Vec::new();
    for bucket in 0..=last / per_file {
        if let Some(changed) = stmt.query_row(params![now, bucket], |r| r.get::<_, Option<i64>>(0)).optional()? {
            files.push((bucket + 1, changed));
        }
    }
    Ok(files)
}

/// The next moment a scheduled document appears or an expiring one leaves, if any.
pub fn next_publication(conn: &Connection, now: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(t) FROM (SELECT min(publish) AS t FROM documents WHERE publish > ?1 AND draft = 0 \
             UNION ALL SELECT min(expiry) FROM documents WHERE expiry > ?1 AND draft = 0)",
        )?
        .query_row([now], |r| r.get(0))?)
}

/// The URL of the document at `path` (`content/…`), published or not (internal links).
pub fn url_of_path(conn: &Connection, path: &str) -> Result<Option<String>> {
    Ok(conn.prepare_cached("SELECT url FROM documents WHERE path = ?1")?.query_row([path], |r| r.get(0)).optional()?)
}

/// What a document refers to, by kind: another document (`link`, a path under `content/`), a
/// shortcode (`shortcode`), a template (`template`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    Link,
    Shortcode,
    Template,
}

impl RefKind {
    /// The name stored in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Link => "link",
            RefKind::Shortcode => "shortcode",
            RefKind::Template => "template",
        }
    }
}

/// The documents referring to any of `targets` of `kind`: (document path, target, line).
pub fn referrers(conn: &Connection, kind: RefKind, targets: &[&str]) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.path, r.target, r.line FROM refs r JOIN documents d ON d.id = r.document_id \
         WHERE r.kind = ?1 AND r.target = ?2 ORDER BY d.path",
    )?;
    let mut out = Vec::new();
    for target in targets {
        let rows = stmt.query_map(params![kind.as_str(), target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        out.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    Ok(out)
}

/// The URLs of at most `limit` documents referring to `target` of `kind`.
pub fn referrer_urls(conn: &Connection, kind: RefKind, target: &str, limit: usize) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT d.url FROM refs r JOIN documents d ON d.id = r.document_id \
         WHERE r.kind = ?1 AND r.target = ?2 ORDER BY d.url LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![kind.as_str(), target, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Every distinct target of `kind` with one document that refers to it: (target, path, line).
pub fn targets(conn: &Connection, kind: RefKind) -> Result<Vec<(String, String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.target, min(d.path), min(r.line) FROM refs r JOIN documents d ON d.id = r.document_id \
         WHERE r.kind = ?1 GROUP BY r.target ORDER BY r.target",
    )?;
    let rows = stmt.query_map(params![kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many matches of a search are ranked: the most recently indexed ones. FTS5 ranks every
/// match before it can return the best (no top-k): a word on every page of a 100,000-page site
/// took 160-300 ms to rank, 5-10 ms when capped here. A query matching fewer ranks them all.
pub const RANKED_MATCHES: usize = 1000;
/// The shortest prefix a `word*` search expands: a shorter one would gather most of the index.
const MIN_PREFIX: usize = 3;

/// The FTS5 query for what a reader typed: each word as a quoted token (stemmed by the index's
/// Porter tokenizer), so input can never be FTS5 syntax (column filters, NEAR, …); a word ending
/// in `*` matches as a prefix when at least [`MIN_PREFIX`] characters long. `None`: nothing to
/// look for. (Every word used to match as a prefix: a common word then merged its whole
/// posting list, 50 ms, before anything was ranked.)
pub fn search_expression(query: &str) -> Option<String> {
    let terms: Vec<String> = query
        .split_whitespace()
        .take(16)
        .filter_map(|w| {
            let prefix = w.ends_with('*');
            let w: String = w.chars().filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_').collect();
            let star = if prefix && w.chars().count() >= MIN_PREFIX { "*" } else { "" };
            (!w.is_empty()).then(|| format!("\"{w}\"{star}"))
        })
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Full-text search over published documents of a language, best first (see
/// [`RANKED_MATCHES`]); `query` is taken as words ([`search_expression`]).
pub fn search(conn: &Connection, query: &str, lang: &str, limit: usize, now: i64) -> Result<Vec<Hit>> {
    let Some(expression) = search_expression(query) else { return Ok(Vec::new()) };
    // The candidates' visibility comes from `documents_visibility` (covering): a thousand
    // lookups of the documents' own rows cost 10-20 ms.
    let ranked = format!(
        "WITH candidates AS (SELECT rowid AS id, rank FROM documents_fts WHERE documents_fts MATCH ?2 \
         ORDER BY rowid DESC LIMIT ?5) \
         SELECT d.id FROM candidates c JOIN documents d INDEXED BY documents_visibility ON d.id = c.id \
         WHERE d.lang = ?4 AND {VISIBLE_D} ORDER BY c.rank, d.id LIMIT ?3"
    );
    let ids: Vec<i64> = conn
        .prepare_cached(&ranked)?
        .query_map(params![now, expression, limit as i64, lang, RANKED_MATCHES as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // Then only the shown hits' titles and snippets (from the body, else the summary, else the
    // title: a page found by its title alone had an empty snippet). The snippets in one statement: each
    // statement evaluates the whole expression again (a `word*` prefix gathers its posting list:
    // 5 ms a statement for a prefix on every page). The rowid range bounds the matches walked to
    // the ranked ones; the membership test (not a constraint SQLite could hand to FTS5 as
    // one lookup per id) picks those snippet() runs on.
    let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else { return Ok(Vec::new()) };
    let wanted: String = ids.iter().map(|id| format!(",{id}")).collect::<String>() + ",";
    let mut snippets: std::collections::HashMap<i64, String> = conn
        .prepare_cached(
            "SELECT rowid, snippet(documents_fts, 2, char(1), char(2), '…', 24), \
             snippet(documents_fts, 1, char(1), char(2), '…', 24), snippet(documents_fts, 0, char(1), char(2), '…', 24) \
             FROM documents_fts \
             WHERE documents_fts MATCH ?1 AND rowid BETWEEN ?2 AND ?3 AND instr(?4, ',' || rowid || ',') > 0",
        )?
        .query_map(params![expression, first, last, wanted], |r| {
            // The body's snippet when the body matches, else the summary's, else the title's.
            let columns: [String; 3] = [r.get(1)?, r.get(2)?, r.get(3)?];
            let best = columns.iter().find(|c| c.contains('\u{1}')).unwrap_or(&columns[0]);
            Ok((r.get(0)?, best.clone()))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut document = conn.prepare_cached("SELECT url, title FROM documents WHERE id = ?1")?;
    let mut hits = Vec::with_capacity(ids.len());
    for id in ids {
        let (url, title) = document.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let raw = snippets.remove(&id).unwrap_or_default();
        hits.push(Hit { url, title, snippet: mark(&raw) });
    }
    Ok(hits)
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

/// The ids of one listing page (`?2` from `?3`) of the dated pages of a language (`?4`) visible at
/// `?1`, newest first: a walk of `documents_listing` (covering, in this order) that stops at the
/// page's end. (Ordering on the rows' `path` read a row per page of the newest date: a thousand
/// at 100,000 pages, 20 ms when the cache is cold after a publish.)
pub(crate) const DATED_IDS: &str = "SELECT id FROM documents WHERE kind = 'page' AND date IS NOT NULL AND lang = ?4 \
     AND draft = 0 AND (publish IS NULL OR publish <= ?1) AND (expiry IS NULL OR expiry > ?1) AND render = 1 \
     ORDER BY date DESC, path LIMIT ?2 OFFSET ?3";

/// One listing page of all published dated pages, newest first (the home page's list), and how
/// many there are.
pub fn dated_pages(
    conn: &Connection,
    lang: &str,
    limit: usize,
    offset: usize,
    now: i64,
) -> Result<(Vec<DocRow>, usize)> {
    // The kept count less the dated pages not visible now (counting 100,000 pages took 20 ms).
    let kept: i64 = conn
        .prepare_cached("SELECT coalesce(sum(pages), 0) FROM page_counts WHERE lang = ?1 AND dated = 1")?
        .query_row([lang], |r| r.get(0))?;
    let hidden: i64 = conn.prepare_cached(HIDDEN_DATED)?.query_row(params![now, lang], |r| r.get(0))?;
    let total = kept - hidden;
    // The ids first (the pages of one date are sorted by path: read whole, a date's few hundred
    // pages at 100,000 were read with their HTML), then the shown rows.
    let ids: Vec<i64> = conn
        .prepare_cached(DATED_IDS)?
        .query_map(params![now, limit as i64, offset as i64, lang], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let pages = by_ids(conn, &ids)?.into_iter().map(|p| with_terms(conn, p)).collect::<Result<_>>()?;
    Ok((pages, total.max(0) as usize))
}

/// An entry of the site's main menu.
#[derive(Debug, Clone, Serialize)]
pub struct MenuItem {
    pub title: String,
    pub url: String,
    pub weight: Option<i64>,
}

/// The main menu of the language whose home is `home` (`/`, `/fr/`): top-level sections, and
/// top-level pages that set a `weight`, by weight then title.
pub fn menu(conn: &Connection, home: &str, now: i64) -> Result<Vec<MenuItem>> {
    let sql = format!(
        "SELECT title, url, weight FROM documents WHERE section = ?2 AND {VISIBLE} \
         AND (kind = 'section' OR weight IS NOT NULL) ORDER BY weight IS NULL, weight, title COLLATE NOCASE"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(params![now, home], |r| Ok(MenuItem { title: r.get(0)?, url: r.get(1)?, weight: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
