//! The index built incrementally, commit after commit, equals a full build of the same commit —
//! over random sequences of edits made with the real `git` CLI.

mod common;
use common::{commit_all, git, write};

use rusqlite::Connection;
use site_runtime::index::Index;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SECTIONS: [&str; 3] = ["blog", "docs", "notes/deep"];
// "Rust" and "rust" are one term (one slug) spelled two ways.
const TAGS: [&str; 5] = ["rust", "web", "git", "Café Society", "Rust"];

fn random_page(rng: &mut Rng, n: usize) -> String {
    let tags: Vec<String> = (0..rng.below(3)).map(|_| format!("{:?}", TAGS[rng.below(TAGS.len())])).collect();
    let mut fm = format!(
        "+++\ntitle = \"Page {n}\"\ndate = 2024-0{}-1{}\ntags = [{}]\n",
        1 + rng.below(9),
        rng.below(9),
        tags.join(", ")
    );
    if rng.below(5) == 0 {
        fm.push_str("draft = true\n");
    }
    if rng.below(6) == 0 {
        fm.push_str(&format!("aliases = [\"/old/{n}/\"]\n"));
    }
    if rng.below(7) == 0 {
        fm.push_str(&format!("weight = {}\n", rng.below(100)));
    }
    match rng.below(8) {
        0 => fm.push_str("publish_date = 2999-01-01\n"), // scheduled
        1 => fm.push_str("expiry_date = 2001-01-01\n"),  // expired
        _ => {}
    }
    fm.push_str("+++\n");
    if rng.below(10) == 0 {
        return "+++\ntitle = broken\n".to_string(); // a file the index must report, not crash on
    }
    format!("{fm}# Heading {n}\n\nSome *text* number {} with words.\n\n<!-- more -->\n\nMore.\n", rng.next())
}

fn dump(conn: &Connection) -> String {
    let mut out = String::new();
    for (table, sql) in [
        (
            "documents",
            "SELECT path, blob, kind, url, section, title, description, date, updated, draft, weight, template, \
             page_template, sort_by, paginate_by, summary_html, content_html, toc, word_count, extra FROM documents ORDER BY path",
        ),
        ("terms", "SELECT d.path, t.taxonomy, t.term, t.slug FROM terms t JOIN documents d ON d.id = t.document_id ORDER BY 1, 2, 3"),
        ("term_counts", "SELECT taxonomy, lang, slug, term, pages FROM term_counts ORDER BY 1, 2, 3, 4"),
        ("page_counts", "SELECT lang, dated, pages FROM page_counts ORDER BY 1, 2"),
        ("aliases", "SELECT d.path, a.alias FROM aliases a JOIN documents d ON d.id = a.document_id ORDER BY 1, 2"),
        ("assets", "SELECT path, url, blob, size, content_type FROM assets ORDER BY path"),
        ("problems", "SELECT path, message FROM problems ORDER BY path"),
        (
            "fts",
            "SELECT d.path, f.title, f.summary, f.body FROM documents_fts f JOIN documents d ON d.id = f.rowid ORDER BY 1",
        ),
        ("fts-count", "SELECT count(*) FROM documents_fts"),
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                Ok((0..n)
                    .map(|i| match r.get::<_, rusqlite::types::Value>(i).unwrap() {
                        rusqlite::types::Value::Text(t) => format!("{t:?}"),
                        other => format!("{other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" | "))
            })
            .unwrap();
        out.push_str(&format!("== {table}\n"));
        for row in rows {
            out.push_str(&row.unwrap());
            out.push('\n');
        }
    }
    out
}

#[test]
fn incremental_updates_equal_a_full_build() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("site");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut incremental = Index::open(&tmp.path().join("index/main.sqlite")).unwrap();
    let mut files: Vec<String> = Vec::new();
    let mut tags_seen = false;
    for step in 0..40 {
        // A handful of random edits per commit.
        for _ in 0..1 + rng.below(6) {
            match rng.below(10) {
                0..=3 => {
                    let section = SECTIONS[rng.below(SECTIONS.len())];
                    let path = format!("content/{section}/post-{}.md", rng.below(30));
                    files.push(path.clone());
                    write(&work, &path, &random_page(&mut rng, step));
                }
                4 if !files.is_empty() => {
                    let path = files.swap_remove(rng.below(files.len()));
                    let _ = std::fs::remove_file(work.join(&path));
                }
                5 => {
                    let section = SECTIONS[rng.below(SECTIONS.len())];
                    write(
                        &work,
                        &format!("content/{section}/_index.md"),
                        &format!("+++\ntitle = \"{section} v{step}\"\nsort_by = \"date\"\n+++\n"),
                    );
                }
                6 => write(&work, &format!("static/img/{}.png", rng.below(5)), &format!("png {}", rng.next())),
                7 => write(
                    &work,
                    &format!("content/blog/bundle-{}/index.md", rng.below(3)),
                    &random_page(&mut rng, step),
                ),
                8 => write(
                    &work,
                    &format!("content/blog/bundle-{}/photo.jpg", rng.below(3)),
                    &format!("jpg {}", rng.next()),
                ),
                _ if step % 13 == 12 => write(&work, "site.toml", &format!("title = \"Site {step}\"\n")),
                _ => write(&work, "themes/x/templates/page.html", &format!("{}", rng.next())),
            }
        }
        let head = commit_all(&work, &format!("step {step}"));
        let repo = gix::open(&work).unwrap();

        incremental.update(&repo, head, &mut |_| {}).unwrap();
        let mut full = Index::in_memory().unwrap();
        let stats = full.update(&repo, head, &mut |_| {}).unwrap();
        assert!(stats.full);
        assert_eq!(incremental.commit().unwrap(), Some(head));
        let (a, b) = (dump(incremental.connection()), dump(full.connection()));
        if a != b {
            let diff: Vec<String> = a
                .lines()
                .zip(b.lines())
                .filter(|(x, y)| x != y)
                .take(3)
                .map(|(x, y)| format!("incremental: {x}\nfull:        {y}"))
                .collect();
            panic!("step {step}: incremental and full builds differ:\n{}", diff.join("\n"));
        }
        // The kept counts, less what is not visible now, are what counting every page gives.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let conn = incremental.connection();
        let listed: Vec<(String, String, i64)> = site_runtime::index::read::terms(conn, "tags", "en", now)
            .unwrap()
            .into_iter()
            .map(|t| (t.name, t.slug, t.count))
            .collect();
        let mut counted: Vec<(String, String, i64)> = conn
            .prepare(
                "SELECT min(t.term), t.slug, count(DISTINCT d.id) FROM terms t JOIN documents d ON d.id = t.document_id \
                 WHERE t.taxonomy = 'tags' AND d.kind = 'page' AND d.lang = 'en' AND d.draft = 0 AND d.render = 1 \
                 AND (d.publish IS NULL OR d.publish <= ?1) AND (d.expiry IS NULL OR d.expiry > ?1) GROUP BY t.slug",
            )
            .unwrap()
            .query_map([now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        counted.sort_by(|a, b| a.0.to_ascii_lowercase().cmp(&b.0.to_ascii_lowercase()).then(a.1.cmp(&b.1)));
        assert_eq!(listed, counted, "step {step}: term list");
        // So are the totals of a term's pages and of the home page's list.
        for (name, slug, count) in &counted {
            let (_, total) = site_runtime::index::read::term_pages(conn, "tags", slug, "en", 1, 0, now).unwrap();
            assert_eq!(total as i64, *count, "step {step}: pages of {slug}");
            // A term page's name: the smallest spelling of its counted pages (scheduled and
            // expired ones too: the kept counts hold them), counted here one by one.
            let named = site_runtime::index::read::term_name(conn, "tags", "en", slug).unwrap();
            let smallest: Option<String> = conn
                .query_row(
                    "SELECT min(t.term) FROM terms t JOIN documents d ON d.id = t.document_id WHERE t.taxonomy = 'tags' \
                     AND t.slug = ?1 AND d.kind = 'page' AND d.lang = 'en' AND d.draft = 0 AND d.render = 1",
                    [slug],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(named, smallest, "step {step}: the name of {slug} (listed as {name:?})");
            // Its listing, read from the copies in `terms`, is what the documents themselves
            // give, in the same order.
            let (pages, _) = site_runtime::index::read::term_pages(conn, "tags", slug, "en", 1000, 0, now).unwrap();
            let listed: Vec<String> = pages.into_iter().map(|p| p.path).collect();
            let expected: Vec<String> = conn
                .prepare(
                    "SELECT DISTINCT d.path, d.date IS NULL, d.date, d.title, d.id FROM terms t \
                     JOIN documents d ON d.id = t.document_id WHERE t.taxonomy = 'tags' AND t.slug = ?2 \
                     AND d.kind = 'page' AND d.lang = 'en' AND d.draft = 0 AND d.render = 1 \
                     AND (d.publish IS NULL OR d.publish <= ?1) AND (d.expiry IS NULL OR d.expiry > ?1) \
                     ORDER BY d.date IS NULL, d.date DESC, d.title, d.id",
                )
                .unwrap()
                .query_map(rusqlite::params![now, slug], |r| r.get(0))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(listed, expected, "step {step}: the pages of {slug}");
        }
        let dated: i64 = conn
            .query_row(
                "SELECT count(*) FROM documents WHERE kind = 'page' AND lang = 'en' AND date IS NOT NULL AND draft = 0 \
                 AND render = 1 AND (publish IS NULL OR publish <= ?1) AND (expiry IS NULL OR expiry > ?1)",
                [now],
                |r| r.get(0),
            )
            .unwrap();
        let (_, total) = site_runtime::index::read::dated_pages(conn, "en", 1, 0, now).unwrap();
        assert_eq!(total as i64, dated, "step {step}: dated pages");
        // The sitemap's files hold every visible document once, at most `per_file` each, and the
        // index gives each file's latest change.
        let mut entries = site_runtime::index::read::sitemap(conn, now, None).unwrap();
        for per_file in [1, 3, 7, 1000] {
            let mut filed = Vec::new();
            for (n, changed) in site_runtime::index::read::sitemap_files(conn, now, per_file).unwrap() {
                let file = site_runtime::index::read::sitemap(conn, now, Some((per_file, n))).unwrap();
                assert!(!file.is_empty() && file.len() as i64 <= per_file, "step {step}: file {n} of {per_file}");
                let latest = file.iter().filter_map(|e| e.changed).max();
                assert_eq!(changed, latest, "step {step}: the latest change of file {n} of {per_file}");
                filed.extend(file);
            }
            filed.sort_by(|a, b| a.url.cmp(&b.url));
            entries.sort_by(|a, b| a.url.cmp(&b.url));
            assert_eq!(filed, entries, "step {step}: sitemap files of {per_file}");
        }
        tags_seen |= listed.iter().any(|(name, _, count)| name == "Rust" && *count > 1);
    }
    // Something was indexed, and broken files were reported rather than indexed.
    let d = dump(incremental.connection());
    assert!(d.contains("/blog/"), "{d}");
    assert!(tags_seen, "no term was listed under two spellings");
    let (scheduled, expired): (i64, i64) = incremental
        .connection()
        .query_row("SELECT coalesce(sum(publish > 32000000000), 0), count(expiry) FROM documents", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(scheduled > 0 && expired > 0, "{scheduled} scheduled, {expired} expired pages");
    // Full builds (the first, and those after site.toml changed) drop the indexes and make them
    // again: the file ends with every index a new one has.
    let indexes = |c: &Connection| -> Vec<(String, String)> {
        c.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    let fresh = Index::in_memory().unwrap();
    assert!(indexes(fresh.connection()).len() > 10);
    assert_eq!(indexes(incremental.connection()), indexes(fresh.connection()));
}

#[test]
fn a_corrupt_index_file_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("main.sqlite");
    std::fs::write(&path, b"this is not a database, just garbage bytes that fill a page").unwrap();
    let index = Index::open(&path).unwrap();
    assert_eq!(index.commit().unwrap(), None, "a fresh, empty index");
}

/// An index written by an older release (another schema version, tables as they were then) is
/// dropped and rebuilt from Git on open: the next update is a full build, and the counts kept
/// since schema 6 are there.
#[test]
fn an_index_of_an_older_schema_is_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("site");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    write(&work, "content/a.md", "+++\ntitle = \"A\"\ndate = 2024-01-01\ntags = [\"x\"]\n+++\nA.\n");
    let head = commit_all(&work, "one");
    let repo = gix::open(&work).unwrap();
    let path = tmp.path().join("main.sqlite");
    {
        let mut index = Index::open(&path).unwrap();
        index.update(&repo, head, &mut |_| {}).unwrap();
        // As schema 5 left it: no kept counts, its own version in meta.
        index
            .connection()
            .execute_batch(
                "DROP TABLE term_counts; DROP TABLE page_counts; UPDATE meta SET value = '5' WHERE key = 'schema';",
            )
            .unwrap();
    }
    let mut index = Index::open(&path).unwrap();
    assert_eq!(index.commit().unwrap(), None, "rebuilt: nothing indexed yet");
    let stats = index.update(&repo, head, &mut |_| {}).unwrap();
    assert!(stats.full);
    let now = 2_000_000_000;
    let terms = site_runtime::index::read::terms(index.connection(), "tags", "en", now).unwrap();
    assert_eq!(terms.len(), 1);
    assert_eq!(site_runtime::index::read::dated_pages(index.connection(), "en", 10, 0, now).unwrap().1, 1);
}
