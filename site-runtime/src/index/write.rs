//! Writing the index: turning the changed paths between two commits into row changes.

use std::time::Instant;

use gix::objs::Exists as _;
use gix::odb::HeaderExt as _;
use gix::ObjectId;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::content::{self, Document};
use crate::error::{Error, Result};
use crate::source::{self, Change};

/// Progress of a long update, for logs and progress bars.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

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

/// Parse in parallel only when there is enough to share.
const PARALLEL_THRESHOLD: usize = 64;

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
    let parsed = parse_documents(repo, &changes, progress)?;

    let tx = conn.transaction()?;
    let mut stats = UpdateStats { full, ..Default::default() };
    if full {
        tx.execute_batch(
            "DELETE FROM documents; DELETE FROM terms; DELETE FROM aliases; DELETE FROM assets; \
             DELETE FROM problems; DELETE FROM documents_fts;",
        )?;
    }
    let mut parsed = parsed.into_iter();
    for change in &changes {
        let path = change.path();
        if content::is_document(path) {
            if !full {
                stats.removed += delete_document(&tx, path)?;
            }
            tx.execute("DELETE FROM problems WHERE path = ?1", [path])?;
            if let Change::Upsert { blob, .. } = change {
                match parsed.next().expect("one parse result per upserted document") {
                    Ok(doc) => {
                        insert_document(&tx, &doc, *blob)?;
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
    tx.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('commit', ?1)", [commit.to_string()])?;
    tx.commit()?;
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

/// Read and parse every upserted document, in order, using all cores for big builds.
fn parse_documents(
    repo: &gix::Repository,
    changes: &[Change],
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<Result<Document>>> {
    let work: Vec<(&str, ObjectId)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Upsert { path, blob } if content::is_document(path) => Some((path.as_str(), *blob)),
            _ => None,
        })
        .collect();
    let total = work.len();
    let parse_one = |repo: &gix::Repository, (path, blob): (&str, ObjectId)| -> Result<Document> {
        let bytes = source::read_blob(repo, blob)?;
        let text = std::str::from_utf8(&bytes).map_err(|_| Error::content(path, "not UTF-8 text"))?;
        content::document::parse(path, text)
    };
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(8);
    if total < PARALLEL_THRESHOLD || threads == 1 {
        let mut out = Vec::with_capacity(total);
        for (i, item) in work.into_iter().enumerate() {
            out.push(parse_one(repo, item));
            if (i + 1) % 1000 == 0 {
                progress(Progress { done: i + 1, total });
            }
        }
        progress(Progress { done: total, total });
        return Ok(out);
    }
    let chunk = total.div_ceil(threads);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Vec<Result<Document>>> = std::thread::scope(|s| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                let repo = repo.clone();
                let done = &done;
                s.spawn(move || {
                    part.iter()
                        .map(|item| {
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            parse_one(&repo, *item)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    progress(Progress { done: done.into_inner(), total });
    let out: Vec<Result<Document>> = results.into_iter().flatten().collect();
    if out.len() != total {
        return Err(Error::content("content/", "a parser thread panicked"));
    }
    Ok(out)
}

fn delete_document(tx: &Transaction<'_>, path: &str) -> Result<usize> {
    let id: Option<i64> = tx.query_row("SELECT id FROM documents WHERE path = ?1", [path], |r| r.get(0)).optional()?;
    let Some(id) = id else { return Ok(0) };
    tx.execute("DELETE FROM documents_fts WHERE rowid = ?1", [id])?;
    tx.execute("DELETE FROM documents WHERE id = ?1", [id])?;
    Ok(1)
}

fn insert_document(tx: &Transaction<'_>, doc: &Document, blob: ObjectId) -> Result<()> {
    let m = &doc.meta;
    tx.execute(
        "INSERT INTO documents(path, blob, kind, url, section, title, description, date, updated, draft, weight, \
         template, page_template, sort_by, paginate_by, summary_html, content_html, toc, word_count, extra) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
        params![
            doc.path,
            blob.to_string(),
            doc.kind.as_str(),
            doc.url,
            doc.section,
            doc.title(),
            m.description,
            m.date.map(|d| d.as_second()),
            m.updated.map(|d| d.as_second()),
            m.draft,
            m.weight,
            m.template,
            m.page_template,
            m.sort_by,
            m.paginate_by.map(|n| n as i64),
            doc.summary_html,
            doc.html,
            serde_json::to_string(&doc.toc).unwrap_or_else(|_| "[]".into()),
            doc.word_count as i64,
            serde_json::to_string(&m.extra).unwrap_or_else(|_| "{}".into()),
        ],
    )?;
    let id = tx.last_insert_rowid();
    for (taxonomy, terms) in doc.taxonomies() {
        for term in terms {
            tx.execute(
                "INSERT INTO terms(document_id, taxonomy, term, slug) VALUES (?1, ?2, ?3, ?4)",
                params![id, taxonomy, term, slug::slugify(term)],
            )?;
        }
    }
    for alias in &m.aliases {
        if let Ok(url) = content::document::normalize_url(alias) {
            tx.execute("INSERT INTO aliases(document_id, alias) VALUES (?1, ?2)", params![id, url])?;
        }
    }
    let summary = doc.meta.description.clone().unwrap_or_default();
    tx.execute(
        "INSERT INTO documents_fts(rowid, title, summary, body) VALUES (?1, ?2, ?3, ?4)",
        params![id, doc.title(), summary, doc.text],
    )?;
    Ok(())
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
