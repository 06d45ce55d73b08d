//! Rendering a request path to HTML through the theme: documents, paginated listings, taxonomy
//! pages, the search page and the 404 page. Feeds and the sitemap are in [`crate::feeds`].

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use minijinja::context;
use minijinja::value::{Serde, Value};
use rusqlite::Connection;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::index::read::{self, DocRow, Hit, Term};
use crate::snapshot::{Rendered, Snapshot};

/// One listing page of a paginated list.
#[derive(Debug, Serialize)]
pub struct Paginator {
    pub pages: Vec<DocRow>,
    pub current: usize,
    pub total_pages: usize,
    pub total_items: usize,
    pub first: String,
    pub last: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

impl Paginator {
    fn new(pages: Vec<DocRow>, total_items: usize, per_page: usize, current: usize, base: &str) -> Self {
        let total_pages = total_items.div_ceil(per_page).max(1);
        let url = |n: usize| if n <= 1 { base.to_string() } else { format!("{base}page/{n}/") };
        Paginator {
            pages,
            current,
            total_pages,
            total_items,
            first: url(1),
            last: url(total_pages),
            previous: (current > 1).then(|| url(current - 1)),
            next: (current < total_pages).then(|| url(current + 1)),
        }
    }
}

/// What templates see as `site`.
fn site_value(snap: &Snapshot) -> Value {
    let c = &snap.config;
    context! {
        title => &c.title,
        description => &c.description,
        base_url => c.base(),
        language => &c.default_language,
        taxonomies => Serde(&c.taxonomies),
        extra => Serde(&c.extra),
        menu => Serde(&snap.menu),
        commit => snap.commit.to_string(),
    }
}

/// Render a path that names a document, a listing page or a taxonomy page. `None` if the path
/// is none of those (the caller then tries aliases, files and finally the 404 page).
pub fn render_path(snap: &Snapshot, conn: &Connection, path: &str, now: i64) -> Result<Option<Rendered>> {
    // A document at this exact URL.
    if let Some(doc) = read::document(conn, path, now)? {
        return render_document(snap, conn, doc, 1, now).map(Some);
    }
    // The home page of a site without `content/_index.md`: an implicit root section, as Zola
    // and Hugo have, listing the dated pages.
    if path == "/" {
        return render_document(snap, conn, implicit_root(snap), 1, now).map(Some);
    }
    // `/<section>/page/<n>/`
    if let Some((base, n)) = split_page(path) {
        if n == 1 {
            return Ok(Some(redirect(base)));
        }
        if let Some(doc) = read::document(conn, base, now)? {
            if doc.kind == "section" {
                return render_document(snap, conn, doc, n, now).map(Some);
            }
        } else if base == "/" {
            return render_document(snap, conn, implicit_root(snap), n, now).map(Some);
        }
    }
    // `/<taxonomy>/`, `/<taxonomy>/<term>/`, `/<taxonomy>/<term>/page/<n>/`
    let (listing, page) = split_page(path).unwrap_or((path, 1));
    let parts: Vec<&str> = listing.trim_matches('/').split('/').collect();
    if let Some(taxonomy) = parts.first().filter(|t| snap.config.taxonomies.iter().any(|x| x == *t)) {
        match parts.as_slice() {
            [_] if page == 1 && path.ends_with('/') => {
                let terms = read::terms(conn, taxonomy, now)?;
                let ctx = context! { site => site_value(snap), taxonomy => *taxonomy, terms => Serde(terms), current_url => path };
                return html(snap, "taxonomy_list.html", ctx, 200).map(Some);
            }
            [_, slug] if path.ends_with('/') => {
                let per_page = snap.config.paginate_by;
                let (pages, total) = read::term_pages(conn, taxonomy, slug, per_page, (page - 1) * per_page, now)?;
                if total == 0 || (page > 1 && pages.is_empty()) {
                    return Ok(None);
                }
                let name = read::terms(conn, taxonomy, now)?.into_iter().find(|t| t.slug == *slug).unwrap_or(Term {
                    name: slug.to_string(),
                    slug: slug.to_string(),
                    count: total as i64,
                });
                let base = format!("/{taxonomy}/{slug}/");
                let paginator = Paginator::new(pages, total, per_page, page, &base);
                let ctx = context! {
                    site => site_value(snap), taxonomy => *taxonomy, term => Serde(name),
                    paginator => Serde(paginator), current_url => path,
                };
                return html(snap, "taxonomy_single.html", ctx, 200).map(Some);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The root section a site has without `content/_index.md`: titled like the site.
fn implicit_root(snap: &Snapshot) -> DocRow {
    DocRow {
        kind: "section".into(),
        url: "/".into(),
        title: snap.config.title.clone(),
        description: (!snap.config.description.is_empty()).then(|| snap.config.description.clone()),
        toc: serde_json::Value::Array(Vec::new()),
        extra: serde_json::Value::Object(Default::default()),
        ..DocRow::default()
    }
}

fn render_document(snap: &Snapshot, conn: &Connection, mut doc: DocRow, page: usize, now: i64) -> Result<Rendered> {
    let site = site_value(snap);
    let ext = &snap.extensions;
    // What extensions see of the document: its metadata (and, for filters, its HTML apart).
    let meta = if ext.is_empty() {
        serde_json::Value::Null
    } else {
        let content = std::mem::take(&mut doc.content);
        let meta = serde_json::to_value(&doc).unwrap_or_default();
        doc.content = content;
        meta
    };
    if doc.kind == "page" {
        if !ext.is_empty() {
            doc.content = ext.page_html(std::mem::take(&mut doc.content), &meta);
        }
        let section_template = snap.sections.get(&doc.section).and_then(|s| s.page_template.clone());
        let template = doc.template.clone().or(section_template).unwrap_or_else(|| "page.html".into());
        let url = doc.url.clone();
        let ctx = context! { site => site, page => Serde(doc), current_url => url };
        return with_head(snap, &meta, html(snap, &template, ctx, 200)?);
    }
    let per_page = doc.paginate_by.map(|n| n as usize).unwrap_or(snap.config.paginate_by).max(1);
    let offset = (page - 1) * per_page;
    let (pages, total) = if doc.url == "/" {
        read::dated_pages(conn, per_page, offset, now)?
    } else {
        read::section_pages(conn, &doc.url, doc.sort_by.as_deref(), per_page, offset, now)?
    };
    if page > 1 && pages.is_empty() {
        return html(snap, "404.html", context! { site => site }, 404);
    }
    let paginator = Paginator::new(pages, total, per_page, page, &doc.url);
    let default_template = if doc.url == "/" { "index.html" } else { "section.html" };
    let template = doc.template.clone().unwrap_or_else(|| default_template.into());
    let url = doc.url.clone();
    let ctx = context! { site => site, section => Serde(doc), paginator => Serde(paginator), current_url => url };
    with_head(snap, &meta, html(snap, &template, ctx, 200)?)
}

/// Add what the extensions' `head` filters give at the end of `<head>`.
fn with_head(snap: &Snapshot, meta: &serde_json::Value, rendered: Rendered) -> Result<Rendered> {
    if snap.extensions.is_empty() {
        return Ok(rendered);
    }
    let extra = snap.extensions.head_html(meta);
    let body = String::from_utf8_lossy(&rendered.body);
    let Some(at) = body.find("</head>").filter(|_| !extra.is_empty()) else { return Ok(rendered) };
    let body = format!("{}{extra}{}", &body[..at], &body[at..]);
    Ok(body_response(rendered.status, rendered.content_type, body.into_bytes()))
}

/// A plugin route's reply rendered through the theme: `template` with the route's `context`
/// beside `site`.
pub fn render_plugin_template(
    snap: &Snapshot,
    template: &str,
    context: &serde_json::Value,
    status: u16,
) -> Result<Rendered> {
    let ctx = context! { site => site_value(snap), ..Value::from(Serde(context)) };
    html(snap, template, ctx, status)
}

/// The search page.
pub fn render_search(snap: &Snapshot, query: &str, hits: &[Hit]) -> Result<Rendered> {
    let ctx = context! { site => site_value(snap), query => query, hits => Serde(hits) };
    html(snap, "search.html", ctx, 200)
}

/// The 404 page (status 404).
pub fn render_not_found(snap: &Snapshot) -> Result<Rendered> {
    html(snap, "404.html", context! { site => site_value(snap) }, 404)
}

fn html(snap: &Snapshot, template: &str, ctx: Value, status: u16) -> Result<Rendered> {
    let body = snap
        .theme
        .render(template, ctx)
        .map_err(|e| Error::content(format!("themes/{}/templates/{template}", snap.theme.name()), e))?;
    Ok(body_response(status, "text/html; charset=utf-8", body.into_bytes()))
}

/// A response with a body and a strong ETag derived from it.
pub fn body_response(status: u16, content_type: &'static str, body: Vec<u8>) -> Rendered {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    Rendered {
        status,
        content_type,
        etag: format!("\"{:016x}\"", hasher.finish()),
        body: Arc::new(body),
        location: None,
    }
}

/// A permanent redirect.
pub fn redirect(to: &str) -> Rendered {
    Rendered {
        status: 301,
        content_type: "text/plain; charset=utf-8",
        body: Arc::new(Vec::new()),
        etag: String::new(),
        location: Some(to.to_string()),
    }
}

/// Split `/blog/page/3/` into (`/blog/`, 3).
fn split_page(path: &str) -> Option<(&str, usize)> {
    let trimmed = path.strip_suffix('/')?;
    let (rest, n) = trimmed.rsplit_once('/')?;
    let base = rest.strip_suffix("page")?;
    let n: usize = n.parse().ok().filter(|n| *n >= 1 && *n < 1_000_000)?;
    base.ends_with('/').then_some((base, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pagination_urls() {
        assert_eq!(split_page("/blog/page/2/"), Some(("/blog/", 2)));
        assert_eq!(split_page("/page/3/"), Some(("/", 3)));
        assert_eq!(split_page("/blog/page/x/"), None);
        assert_eq!(split_page("/blog/page/0/"), None);
        assert_eq!(split_page("/blog/mypage/2/"), None);
        assert_eq!(split_page("/blog/page/2"), None);
    }

    #[test]
    fn paginator_links() {
        let p = Paginator::new(Vec::new(), 25, 10, 2, "/blog/");
        assert_eq!(p.total_pages, 3);
        assert_eq!(p.previous.as_deref(), Some("/blog/"));
        assert_eq!(p.next.as_deref(), Some("/blog/page/3/"));
        assert_eq!(p.last, "/blog/page/3/");
    }
}
