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
/// translations as `hreflang` alternates (Google's form of them). Up to [`SITEMAP_URLS`] pages
/// it is one file; beyond, `/sitemap.xml` is a sitemap index of `/sitemap-1.xml` … each holding
/// at most that many. `None`: no such part.
pub fn sitemap(snap: &Snapshot, conn: &Connection, part: Option<usize>, now: i64) -> Result<Option<Rendered>> {
    let xml = |xml: String| Some(body_response(200, "application/xml; charset=utf-8", xml.into_bytes()));
    if part.is_none() {
        // The index needs each file's latest change, not its URLs.
        let files = read::sitemap_files(conn, now, SITEMAP_URLS)?;
        if files.len() > 1 {
            return Ok(xml(sitemap_index_xml(snap.config.base(), &files)));
        }
    }
    let entries = read::sitemap(conn, now)?;
    Ok(sitemap_xml(snap.config.base(), &entries, part, SITEMAP_URLS).and_then(xml))
}

/// The latest change of each sitemap file of `entries` with `per_file` URLs at most per file
/// (what [`read::sitemap_files`] reads from the index).
fn file_changes(entries: &[read::SitemapEntry], per_file: usize) -> Vec<Option<i64>> {
    entries.chunks(per_file).map(|chunk| chunk.iter().filter_map(|e| e.changed).max()).collect()
}

/// A sitemap index of the files whose latest changes are `files`.
fn sitemap_index_xml(base: &str, files: &[Option<i64>]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    for (i, changed) in files.iter().enumerate() {
        xml.push_str(&format!("<sitemap><loc>{}</loc>", xml_escape(&format!("{base}/sitemap-{}.xml", i + 1))));
        if let Some(changed) = changed {
            xml.push_str(&format!("<lastmod>{}</lastmod>", rfc3339(*changed)));
        }
        xml.push_str("</sitemap>\n");
    }
    xml.push_str("</sitemapindex>\n");
    xml
}

/// The XML of a sitemap file (see [`sitemap`]) with `per_file` URLs at most per file.
fn sitemap_xml(base: &str, entries: &[read::SitemapEntry], part: Option<usize>, per_file: usize) -> Option<String> {
    let files = entries.len().div_ceil(per_file).max(1);
    let chunk = match part {
        None if files == 1 => entries,
        None => return Some(sitemap_index_xml(base, &file_changes(entries, per_file))),
        Some(n) if files > 1 && (1..=files).contains(&n) => entries.chunks(per_file).nth(n - 1)?,
        Some(_) => return None,
    };
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" \
         xmlns:xhtml=\"http://www.w3.org/1999/xhtml\">\n",
    );
    for entry in chunk {
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
    Some(xml)
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

    fn entries(n: usize) -> Vec<read::SitemapEntry> {
        (0..n)
            .map(|i| read::SitemapEntry { url: format!("/p{i}/"), changed: Some(i as i64), alternates: Vec::new() })
            .collect()
    }

    #[test]
    fn one_file_up_to_the_limit_then_an_index_of_parts() {
        let base = "https://example.org";
        let one = sitemap_xml(base, &entries(3), None, 3).unwrap();
        assert!(one.contains("<urlset") && one.matches("<url>").count() == 3);
        assert!(sitemap_xml(base, &entries(3), Some(1), 3).is_none());

        let index = sitemap_xml(base, &entries(7), None, 3).unwrap();
        assert!(index.contains("<sitemapindex"), "{index}");
        assert_eq!(index.matches("<sitemap>").count(), 3);
        assert!(index.contains("<loc>https://example.org/sitemap-3.xml</loc>"));
        let parts: Vec<String> = (1..=3).map(|n| sitemap_xml(base, &entries(7), Some(n), 3).unwrap()).collect();
        assert_eq!(parts.iter().map(|p| p.matches("<url>").count()).collect::<Vec<_>>(), [3, 3, 1]);
        assert!(parts[2].contains("/p6/"));
        assert!(sitemap_xml(base, &entries(7), Some(4), 3).is_none());
        assert!(sitemap_xml(base, &entries(7), Some(0), 3).is_none());
        assert_eq!(sitemap_part("/sitemap-12.xml"), Some(12));
        for bad in ["/sitemap-.xml", "/sitemap-1a.xml", "/sitemap-9999999.xml", "/sitemap-+1.xml", "/sitemap-1.xml/"] {
            assert_eq!(sitemap_part(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_real_limit_is_the_protocols() {
        assert_eq!(SITEMAP_URLS, 50_000);
        let xml = sitemap_xml("", &entries(SITEMAP_URLS + 1), None, SITEMAP_URLS).unwrap();
        assert_eq!(xml.matches("<sitemap>").count(), 2);
    }

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
