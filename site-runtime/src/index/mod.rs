//! The SQLite index of one branch: documents, taxonomy terms, aliases, assets, full-text search.
//!
//! It is a cache of a commit (`meta.commit`), never the truth: a missing, stale, corrupt or
//! older-schema file is rebuilt from Git. Updates are incremental — only the paths that differ
//! between the indexed commit and the new one are re-read — and a full build is the same code
//! with the empty tree as the old side. Each update is one transaction (WAL mode), so readers
//! see the old or the new state, never a mix.

pub mod read;
pub mod write;

use std::path::Path;

use gix::ObjectId;
use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};

pub use write::{asset_url, mime_type, Progress, UpdateStats};

/// Bumped whenever the schema or the meaning of a column changes: old files are rebuilt.
const SCHEMA_VERSION: &str = "10";
/// What the write-ahead log is cut back to once it has been copied into the database. A full
/// build writes the whole index through the log (1.1 GB at 100,000 pages), and SQLite reuses
/// the file from its start afterwards without shrinking it: the log kept that size on disk, next
/// to the database, for as long as the server ran.
const WAL_SIZE_LIMIT: i64 = 16 * 1024 * 1024;

/// The tables and indexes, each `IF NOT EXISTS`: run on every open, and by a full build to make
/// its indexes again.
const SCHEMA: &str = include_str!("schema.sql");

/// An open index file.
pub struct Index {
    conn: Connection,
}

impl Index {
    /// Open (or create) the index at `path`. A file that is corrupt or has another schema
    /// version is deleted and created anew (empty: the next update is a full build).
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| Error::Fs { path: dir.into(), source })?;
        }
        match Self::try_open(path) {
            Ok(index) => Ok(index),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "index unusable; rebuilding from Git");
                for suffix in ["", "-wal", "-shm"] {
                    let p = format!("{}{suffix}", path.display());
                    let _ = std::fs::remove_file(p);
                }
                Self::try_open(path)
            }
        }
    }

    fn try_open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        let ok: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if ok != "ok" {
            return Err(Error::Index(rusqlite::Error::InvalidQuery));
        }
        Self::init(conn)
    }

    /// An index in memory (tests, previews).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let has_meta: bool =
            conn.query_row("SELECT count(*) FROM sqlite_master WHERE name = 'meta'", [], |r| r.get::<_, i64>(0))? > 0;
        if has_meta {
            let version: Option<String> =
                conn.query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0)).optional()?;
            if version.as_deref() != Some(SCHEMA_VERSION) {
                return Err(Error::Index(rusqlite::Error::InvalidQuery));
            }
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1)", [SCHEMA_VERSION])?;
        Ok(Index { conn })
    }

    /// The commit the index reflects, if any.
    pub fn commit(&self) -> Result<Option<ObjectId>> {
        let value: Option<String> =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'commit'", [], |r| r.get(0)).optional()?;
        Ok(value.and_then(|v| ObjectId::from_hex(v.as_bytes()).ok()))
    }

    /// The connection, for queries.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Bring the index to `commit` of `repo`: incrementally from the indexed commit when there is
    /// one, else (or when `site.toml` changed) a full build. `progress` is called as documents
    /// are parsed.
    pub fn update(
        &mut self,
        repo: &gix::Repository,
        commit: ObjectId,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<UpdateStats> {
        write::update(&mut self.conn, repo, commit, progress)
    }

    /// Files that could not be indexed, with the reason.
    pub fn problems(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn.prepare("SELECT path, message FROM problems ORDER BY path")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What listings filter and sort on must come before the HTML in a document's row: columns
    /// after the large ones live on overflow pages, and a listing of 100,000 pages that reads
    /// one of them reads every page's HTML (seconds instead of milliseconds).
    #[test]
    fn listing_columns_come_before_the_html() {
        let index = Index::in_memory().unwrap();
        let mut stmt =
            index.connection().prepare("SELECT name FROM pragma_table_info('documents') ORDER BY cid").unwrap();
        let columns: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(|c| c.unwrap()).collect();
        let at = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let first_large = ["summary_html", "content_html", "toc", "extra", "calls"].map(at).into_iter().min().unwrap();
        for small in ["kind", "url", "section", "title", "date", "publish", "expiry", "draft", "render", "lang", "slug"]
        {
            assert!(at(small) < first_large, "{small} comes after a large column: {columns:?}");
        }
        // The pages a term list subtracts come from the scheduling indexes, never from a walk of
        // every page or every term.
        let steps = plan(&index, read::HIDDEN_TERMS, rusqlite::params![0, "tags", "en"]);
        assert!(steps.iter().any(|p| p.contains("documents_scheduled")), "{steps:?}");
        assert!(steps.iter().any(|p| p.contains("documents_expiring")), "{steps:?}");
        assert!(steps.iter().any(|p| p.contains("terms_by_document")), "{steps:?}");
        assert!(!steps.iter().any(|p| p.starts_with("SCAN d") || p.starts_with("SCAN t")), "{steps:?}");
        // A term's listing page is a range of its covering index, in order: no sort, no table.
        let steps = plan(&index, read::TERM_LISTING, rusqlite::params![0, "tags", "rust", 10, 0, "en"]);
        assert_eq!(steps.len(), 1, "{steps:?}");
        assert!(steps[0].contains("USING COVERING INDEX terms_listing"), "{steps:?}");
        let steps = plan(&index, read::HIDDEN_DATED, rusqlite::params![0, "en"]);
        assert!(steps.iter().any(|p| p.contains("documents_scheduled")), "{steps:?}");
        assert!(!steps.iter().any(|p| p.starts_with("SCAN d")), "{steps:?}");
    }

    /// The plan of `sql` (parameters `params`) as EXPLAIN QUERY PLAN gives it, a line a step.
    fn plan(index: &Index, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let mut stmt = index.connection().prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap().map(|r| r.unwrap()).collect()
    }

    /// The listings a first request after a publish pays for, when no page of the index is in
    /// the connection's cache: each reads an index range in order, never every section's or
    /// every page's row (the bundled SQLite has no statistics, so its choices are the same on an
    /// empty index as on a large one).
    #[test]
    fn listings_walk_their_indexes() {
        let index = Index::in_memory().unwrap();
        let section = format!(
            "{} SELECT count(*) FROM documents WHERE section IN listed AND kind = 'page' AND {}",
            read::WITH_LISTED,
            read::VISIBLE
        );
        let p = plan(&index, &section, rusqlite::params![0, "/s1/"]);
        assert!(p.iter().any(|l| l == "SEARCH d USING INDEX documents_section (section=? AND kind=?)"), "{p:#?}");
        assert!(!p.iter().any(|l| l.contains("documents_listing")), "{p:#?}");
        let p = plan(&index, read::DATED_IDS, rusqlite::params![0, 10, 0, "en"]);
        assert_eq!(p, ["SEARCH documents USING COVERING INDEX documents_listing (kind=? AND lang=? AND date>?)"]);
        let p = plan(&index, &format!("SELECT title FROM documents WHERE {}", read::SECTIONS), []);
        assert_eq!(p, ["SEARCH documents USING INDEX documents_listing (kind=?)"]);
        let p = plan(&index, &read::sitemap_file_change_sql(read::SITEMAP_BUCKET), rusqlite::params![0, 1]);
        assert_eq!(p, ["SEARCH documents USING COVERING INDEX documents_sitemap (<expr>=?)"]);
    }

    /// After a large write (a full build) the log file does not stay that large: the next
    /// write, once the log has been copied into the database, cuts it back.
    #[test]
    fn the_log_of_a_large_write_is_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("main.sqlite");
        let mut index = Index::open(&path).unwrap();
        let wal = || std::fs::metadata(dir.path().join("main.sqlite-wal")).map_or(0, |m| m.len() as i64);
        let tx = index.conn.transaction().unwrap();
        for i in 0..4_000 {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                rusqlite::params![format!("k{i}"), "x".repeat(10_000)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        assert!(wal() > 2 * WAL_SIZE_LIMIT, "the large write went through the log: {} bytes", wal());
        index.conn.execute("INSERT INTO meta(key, value) VALUES ('small', 'write')", []).unwrap();
        assert!(wal() <= WAL_SIZE_LIMIT, "the log is still {} bytes", wal());
    }

    #[test]
    fn what_readers_type_is_words_never_fts_syntax() {
        let e = |q: &str| read::search_expression(q);
        assert_eq!(e("git push").as_deref(), Some(r#""git" "push""#));
        assert_eq!(e("publ* pu* x*").as_deref(), Some(r#""publ"* "pu" "x""#), "prefixes of 3 characters or more");
        assert_eq!(e(r#"title:"x" NEAR(a b) * " OR AND"#).as_deref(), Some(r#""titlex" "NEARa" "b" "OR" "AND""#));
        assert_eq!(e("  * \" () ^ "), None);
        assert_eq!(e(&"a ".repeat(100)).map(|q| q.matches('"').count()), Some(32), "at most 16 words");
        assert_eq!(e("crépuscule").as_deref(), Some(r#""crépuscule""#));
    }

    /// A page for the search tests: (id, language, visible, title, body).
    fn searchable(index: &Index, id: i64, lang: &str, visible: bool, title: &str, body: &str) {
        let conn = index.connection();
        conn.execute(
            "INSERT INTO documents(id, path, blob, kind, url, slug, section, title, draft, render, transparent, \
             word_count, lang, translation_key, content_html, toc, extra) \
             VALUES (?1, ?2, '', 'page', ?3, '', '/', ?4, ?5, 1, 0, 0, ?6, ?2, '', '[]', '{}')",
            rusqlite::params![id, format!("content/{id}.md"), format!("/{id}/"), title, !visible, lang],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO documents_fts(rowid, title, summary, body) VALUES (?1, ?2, '', ?3)",
            rusqlite::params![id, title, body],
        )
        .unwrap();
    }

    #[test]
    fn search_ranks_the_newest_matches_and_shows_only_published_pages_of_the_language() {
        let index = Index::in_memory().unwrap();
        // The best match of all, indexed first; then many pages that all say "site" once.
        searchable(&index, 1, "en", true, "Site site site", "site site site publishing");
        let last = 1 + read::RANKED_MATCHES as i64 + 500;
        for id in 2..=last {
            searchable(&index, id, "en", true, &format!("Page {id}"), "about the site");
        }
        // A strong match among the newest, and strong matches that must never show.
        searchable(&index, last + 1, "en", true, "Site news", "site site");
        searchable(&index, last + 2, "fr", true, "Site site site", "site site site");
        searchable(&index, last + 3, "en", false, "Site site site", "site site site");
        let search = |q: &str, limit| read::search(index.connection(), q, "en", limit, 0).unwrap();

        let hits = search("site", 10);
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0].url, format!("/{}/", last + 1), "the best of the ranked matches first");
        assert_eq!(hits[0].snippet, "<mark>site</mark> <mark>site</mark>", "the body, not the title");
        assert!(hits.iter().all(|h| h.url != "/1/"), "past the ranked matches: {hits:?}");
        assert!(hits.iter().all(|h| h.url != format!("/{}/", last + 2) && h.url != format!("/{}/", last + 3)));
        assert!(hits.iter().all(|h| h.snippet.to_lowercase().contains("<mark>site</mark>")), "{hits:?}");
        // A query matching fewer pages than are ranked ranks them all: the first page is found
        // by its stemmed word, and an escaped snippet.
        let hits = search("published", 10);
        assert_eq!(hits.iter().map(|h| h.url.as_str()).collect::<Vec<_>>(), ["/1/"]);
        assert!(hits[0].snippet.contains("<mark>publishing</mark>"), "{:?}", hits[0].snippet);
        assert_eq!(search("pub*", 10).len(), 1, "a prefix");
        // A page found by its title alone shows the title's match, not an empty snippet.
        searchable(&index, last + 4, "en", true, "Lighthouse keeping", "nothing about it here");
        let hits = search("lighthouse", 10);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].snippet.contains("<mark>Lighthouse</mark>"), "{:?}", hits[0].snippet);
        assert!(search("pu*", 10).is_empty(), "too short a prefix is a word");
        assert!(search("\"", 10).is_empty());
        // Its candidates' visibility is read from the covering index, not the documents' rows.
        let steps = plan(
            &index,
            "SELECT d.id FROM documents d INDEXED BY documents_visibility WHERE d.id = 1 AND d.lang = \'en\'",
            [],
        );
        assert!(steps.iter().any(|p| p.contains("COVERING INDEX documents_visibility")), "{steps:?}");
    }
}
