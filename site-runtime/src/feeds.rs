//! RSS 2.0 and Atom feeds, the sitemap and robots.txt, written directly (they are small, fixed
//! formats; escaping is the only subtlety).

use rusqlite::Connection;

use crate::error::Result;
use crate::index::read;
use crate::render::body_response;
use crate::snapshot::{Rendered, Snapshot};

/// Items in a feed.
const FEED_ITEMS: usize = 20;

/// Escape text for XML element content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 does not allow at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

fn rfc2822(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .ok()
        .and_then(|t| jiff::fmt::rfc2822::to_string(&t.to_zoned_datetime(jiff::tz::TimeZone::UTC)).ok())
        .unwrap_or_default()
}

fn rfc3339(secs: i64) -> String {
    jiff::Timestamp::from_second(secs).map(|t| t.to_string()).unwrap_or_default()
}

/// The site's title and description in `lang`.
fn titled(snap: &Snapshot, lang: &str) -> (String, String) {
    let over = snap.config.languages.get(lang);
    (
        over.and_then(|l| l.title.clone()).unwrap_or_else(|| snap.config.title.clone()),
        over.and_then(|l| l.description.clone()).unwrap_or_else(|| snap.config.description.clone()),
    )
}

/// `/rss.xml` (`/<lang>/rss.xml` for another language)
pub fn rss(snap: &Snapshot, conn: &Connection, lang: &str, now: i64) -> Result<Rendered> {
    let home = format!("{}{}", snap.config.base(), snap.languages.prefix(lang));
    let base = home.as_str();
    let (title, description) = titled(snap, lang);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n\
         <title>{}</title>\n<link>{}/</link>\n<description>{}</description>\n<language>{}</language>\n\
         <atom:link href=\"{}/rss.xml\" rel=\"self\" type=\"application/rss+xml\"/>\n",
        xml_escape(&title),
        xml_escape(base),
        xml_escape(&description),
        xml_escape(lang),
        xml_escape(base)
    );
    for p in read::recent_pages(conn, lang, FEED_ITEMS, now)? {
        let link = format!("{}{}", snap.config.base(), p.url);
        xml.push_str(&format!(
            "<item>\n<title>{}</title>\n<link>{}</link>\n<guid>{}</guid>\n",
            xml_escape(&p.title),
            xml_escape(&link),
            xml_escape(&link)
        ));
        if let Some(d) = p.date {
            xml.push_str(&format!("<pubDate>{}</pubDate>\n", rfc2822(d)));
        }
        let summary = p.summary.or(p.description).unwrap_or_default();
        xml.push_str(&format!("<description>{}</description>\n</item>\n", xml_escape(&summary)));
    }
    xml.push_str("</channel>\n</rss>\n");
    Ok(body_response(200, "application/rss+xml; charset=utf-8", xml.into_bytes()))
}

/// `/atom.xml` (`/<lang>/atom.xml` for another language)
pub fn atom(snap: &Snapshot, conn: &Connection, lang: &str, now: i64) -> Result<Rendered> {
    let home = format!("{}{}", snap.config.base(), snap.languages.prefix(lang));
    let base = home.as_str();
    let (title, _) = titled(snap, lang);
    let pages = read::recent_pages(conn, lang, FEED_ITEMS, now)?;
    let updated = pages.iter().filter_map(|p| p.updated.or(p.date)).max().unwrap_or(0);
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"{}\">\n\
         <title>{}</title>\n<link href=\"{}/atom.xml\" rel=\"self\"/>\n<link href=\"{}/\"/>\n<updated>{}</updated>\n<id>{}/</id>\n",
        xml_escape(lang),
        xml_escape(&title),
        xml_escape(base),
        xml_escape(base),
        rfc3339(updated),
        xml_escape(base)
    );
    for p in pages {
        let link = xml_escape(&format!("{}{}", snap.config.base(), p.url));
        let when = rfc3339(p.updated.or(p.date).unwrap_or(0));
        xml.push_str(&format!(
            "<entry>\n<title>{}</title>\n<link href=\"{link}\"/>\n<id>{link}</id>\n<updated>{when}</updated>\n",
            xml_escape(&p.title)
        ));
        if let Some(d) = p.date {
            xml.push_str(&format!("<published>{}</published>\n", rfc3339(d)));
        }
        let summary = p.summary.or(p.description).unwrap_or_default();
        xml.push_str(&format!("<summary type=\"html\">{}</summary>\n</entry>\n", xml_escape(&summary)));
    }
    xml.push_str("</feed>\n");
    Ok(body_response(200, "application/atom+xml; charset=utf-8", xml.into_bytes()))
}

/// The sitemaps protocol's limit of URLs in one file.
pub const SITEMAP_URLS: usize = 50_000;

/// `/sitemap.xml` (`part` `None`) and `/sitemap-<n>.xml`: every language's pages, each with its
/// translations as `hreflang` alternates (Google's form of them). Up to [`SITEMAP_URLS`]
/// documents it is one file; beyond, `/sitemap.xml` is a sitemap index of the files
/// `/sitemap-<n>.xml`, which hold the documents by row id (see [`read::SITEMAP_BUCKET`]), at most
/// that many each. `None`: no such part.
pub fn sitemap(snap: &Snapshot, conn: &Connection, part: Option<usize>, now: i64) -> Result<Option<Rendered>> {
    sitemap_with(snap.config.base(), conn, part, now, read::SITEMAP_BUCKET)
}

/// [`sitemap`] with `per_file` documents to a file.
fn sitemap_with(
    base: &str,
    conn: &Connection,
    part: Option<usize>,
    now: i64,
    per_file: i64,
) -> Result<Option<Rendered>> {
    let xml = |xml: String| Some(body_response(200, "application/xml; charset=utf-8", xml.into_bytes()));
    let one_file = read::document_count(conn)? <= per_file;
    Ok(match part {
        None if one_file => xml(urlset_xml(base, &read::sitemap(conn, now, None)?)),
        None => xml(sitemap_index_xml(base, &read::sitemap_files(conn, now, per_file)?)),
        Some(_) if one_file => None,
        Some(n) => {
            let entries = read::sitemap(conn, now, Some((per_file, n as i64)))?;
            (!entries.is_empty()).then(|| urlset_xml(base, &entries)).and_then(xml)
        }
    })
}

/// A sitemap index of the files `files`: each one's number and latest change.
fn sitemap_index_xml(base: &str, files: &[(i64, Option<i64>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for (n, changed) in files {
        xml.push_str(&format!("<sitemap><loc>{}</loc>", xml_escape(&format!("{base}/sitemap-{n}.xml"))));
        if let Some(changed) = changed {
            xml.push_str(&format!("<lastmod>{}</lastmod>", rfc3339(*changed)));
        }
        xml.push_str("</sitemap>\n");
    }
    xml.push_str("</sitemapindex>\n");
    xml
}

/// The XML of one sitemap file holding `entries`.
fn urlset_xml(base: &str, entries: &[read::SitemapEntry]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" \
         xmlns:xhtml=\"http://www.w3.org/1999/xhtml\">\n",
    );
    for entry in entries {
        xml.push_str(&format!("<url><loc>{}</loc>", xml_escape(&format!("{base}{}", entry.url))));
        if let Some(c) = entry.changed {
            xml.push_str(&format!("<lastmod>{}</lastmod>", rfc3339(c)));
        }
        for (lang, url) in &entry.alternates {
            xml.push_str(&format!(
                "<xhtml:link rel=\"alternate\" hreflang=\"{}\" href=\"{}\"/>",
                xml_escape(lang),
                xml_escape(&format!("{base}{url}"))
            ));
        }
        xml.push_str("</url>\n");
    }
    xml.push_str("</urlset>\n");
    xml
}

/// The part a `/sitemap-<n>.xml` path names.
pub fn sitemap_part(path: &str) -> Option<usize> {
    let n = path.strip_prefix("/sitemap-")?.strip_suffix(".xml")?;
    if n.is_empty() || n.len() > 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// `/robots.txt`: everything allowed, the sitemap announced.
pub fn robots(snap: &Snapshot) -> Rendered {
    let text = format!("User-agent: *\nAllow: /\nSitemap: {}/sitemap.xml\n", snap.config.base());
    body_response(200, "text/plain; charset=utf-8", text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An index of `pages` pages, every fourth a draft, each changed on its number's day.
    fn index_of(pages: i64) -> crate::index::Index {
        let index = crate::index::Index::in_memory().unwrap();
        for id in 1..=pages {
            index
                .connection()
                .execute(
                    "INSERT INTO documents(id, path, blob, kind, url, slug, section, title, date, draft, render, \
                     transparent, word_count, lang, translation_key, content_html, toc, extra) \
                     VALUES (?1, ?2, '', 'page', ?3, '', '/', 't', ?4, ?5, 1, 0, 0, 'en', ?2, '', '[]', '{}')",
                    rusqlite::params![id, format!("content/p{id}.md"), format!("/p{id}/"), id * 86_400, id % 4 == 0],
                )
                .unwrap();
        }
        index
    }

    fn body(r: Option<Rendered>) -> Option<String> {
        r.map(|r| String::from_utf8(r.body.to_vec()).unwrap())
    }

    #[test]
    fn one_file_up_to_the_limit_then_an_index_of_files() {
        let base = "https://example.org";
        let small = index_of(3);
        let sitemap = |index: &crate::index::Index, part, per_file| {
            body(sitemap_with(base, index.connection(), part, 0, per_file).unwrap())
        };
        let one = sitemap(&small, None, 3).unwrap();
        assert!(one.contains("<urlset") && one.matches("<url>").count() == 3, "{one}");
        assert!(sitemap(&small, Some(1), 3).is_none(), "one file has no parts");

        // Ids 1..=10 in files of 3 ids: 0-2, 3-5, 6-8, 9-11; drafts 4 and 8.
        let large = index_of(10);
        let index = sitemap(&large, None, 3).unwrap();
        assert!(index.contains("<sitemapindex"), "{index}");
        assert_eq!(index.matches("<sitemap>").count(), 4, "{index}");
        assert!(index.contains("<loc>https://example.org/sitemap-4.xml</loc><lastmod>1970-01-11T00:00:00Z"), "{index}");
        assert!(index.contains("sitemap-3.xml</loc><lastmod>1970-01-08T00:00:00Z"), "the draft of day 8 is left out");
        let parts: Vec<String> = (1..=4).map(|n| sitemap(&large, Some(n), 3).unwrap()).collect();
        assert_eq!(parts.iter().map(|p| p.matches("<url>").count()).collect::<Vec<_>>(), [2, 2, 2, 2]);
        assert!(parts[3].contains("/p9/") && parts[3].contains("/p10/") && !parts[2].contains("/p8/"));
        assert!(sitemap(&large, Some(5), 3).is_none());
        assert!(sitemap(&large, Some(0), 3).is_none());
        assert_eq!(sitemap_part("/sitemap-12.xml"), Some(12));
        for bad in ["/sitemap-.xml", "/sitemap-1a.xml", "/sitemap-9999999.xml", "/sitemap-+1.xml", "/sitemap-1.xml/"] {
            assert_eq!(sitemap_part(bad), None, "{bad}");
        }
        // A file whose documents are all drafts is left out of the index, and not served.
        large.connection().execute("UPDATE documents SET draft = 1 WHERE id BETWEEN 3 AND 5", []).unwrap();
        let index = sitemap(&large, None, 3).unwrap();
        assert_eq!(index.matches("<sitemap>").count(), 3, "{index}");
        assert!(!index.contains("sitemap-2.xml") && sitemap(&large, Some(2), 3).is_none());
    }

    #[test]
    fn the_real_limit_is_the_protocols() {
        assert_eq!(SITEMAP_URLS, 50_000);
        assert_eq!(read::SITEMAP_BUCKET, SITEMAP_URLS as i64);
        let schema = include_str!("index/schema.sql");
        assert!(schema.contains("ON documents(id / 50000, coalesce(updated, date)"), "the index is made for it");
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
