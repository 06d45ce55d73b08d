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

/// `/sitemap.xml`: every language's pages, each with its translations as `hreflang`
/// alternates (Google's form of them).
pub fn sitemap(snap: &Snapshot, conn: &Connection, now: i64) -> Result<Rendered> {
    let base = snap.config.base();
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" \
         xmlns:xhtml=\"http://www.w3.org/1999/xhtml\">\n",
    );
    for entry in read::sitemap(conn, now)? {
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
    Ok(body_response(200, "application/xml; charset=utf-8", xml.into_bytes()))
}

/// `/robots.txt`: everything allowed, the sitemap announced.
pub fn robots(snap: &Snapshot) -> Rendered {
    let text = format!("User-agent: *\nAllow: /\nSitemap: {}/sitemap.xml\n", snap.config.base());
    body_response(200, "text/plain; charset=utf-8", text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml() {
        assert_eq!(xml_escape("a<b>&\"'\u{1}c"), "a&lt;b&gt;&amp;&quot;&apos;c");
    }
}
