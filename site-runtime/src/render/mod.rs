//! Rendering a request path to HTML through the theme: documents, paginated listings, taxonomy
//! pages, the search page and the 404 page. Feeds and the sitemap are in [`crate::feeds`];
//! [`finish`] turns a document's stored HTML into what a reader gets (shortcodes, internal links,
//! [`highlight`]ing, heading anchors).

mod finish;
pub mod highlight;

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

/// A language of the site, as templates see it in `site.languages`.
#[derive(Serialize)]
struct LanguageLink {
    code: String,
    /// Its own name for itself (`[languages.<code>] name`), else the code.
    name: String,
    /// Its home page.
    url: String,
}

/// What templates see as `site`, in language `lang` (`site.language`).
fn site_value(snap: &Snapshot, lang: &str) -> Value {
    let c = &snap.config;
    let over = c.languages.get(lang);
    let languages: Vec<LanguageLink> = snap
        .languages
        .all()
        .into_iter()
        .map(|code| LanguageLink {
            name: c.languages.get(&code).and_then(|l| l.name.clone()).unwrap_or_else(|| code.clone()),
            url: format!("{}/", snap.languages.prefix(&code)),
            code,
        })
        .collect();
    context! {
        title => over.and_then(|l| l.title.as_deref()).unwrap_or(&c.title),
        description => over.and_then(|l| l.description.as_deref()).unwrap_or(&c.description),
        base_url => c.base(),
        language => lang,
        default_language => &c.default_language,
        languages => Serde(&languages),
        home => format!("{}/", snap.languages.prefix(lang)),
        taxonomies => Serde(&c.taxonomies),
        extra => Serde(&c.extra),
        menu => snap.menus.get(lang).cloned().unwrap_or_else(|| Value::from(Vec::<Value>::new())),
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
    let (lang, rest) = snap.languages.of_url(path);
    let prefix = snap.languages.prefix(lang);
    // The home page of a site (or language) without `content/_index.md`: an implicit root
    // section, as Zola and Hugo have, listing the dated pages.
    if rest == "/" && path.ends_with('/') {
        return render_document(snap, conn, implicit_root(snap, lang), 1, now).map(Some);
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
        } else if base == format!("{prefix}/") {
            return render_document(snap, conn, implicit_root(snap, lang), n, now).map(Some);
        }
    }
    // `/<taxonomy>/`, `/<taxonomy>/<term>/`, `/<taxonomy>/<term>/page/<n>/` (under the
    // language's prefix)
    let path = rest;
    let (listing, page) = split_page(path).unwrap_or((path, 1));
    let parts: Vec<&str> = listing.trim_matches('/').split('/').collect();
    if let Some(taxonomy) = parts.first().filter(|t| snap.config.taxonomies.iter().any(|x| x == *t)) {
        match parts.as_slice() {
            [_] if page == 1 && path.ends_with('/') => {
                let terms = read::terms(conn, taxonomy, lang, now)?;
                let url = format!("{prefix}{path}");
                let ctx = context! {
                    site => site_value(snap, lang), lang => lang, taxonomy => *taxonomy, terms => Serde(terms),
                    current_url => url, prefix => &prefix,
                };
                return html(snap, "taxonomy_list.html", ctx, 200).map(Some);
            }
            [_, slug] if path.ends_with('/') => {
                let per_page = snap.config.paginate_by;
                let (pages, total) =
                    read::term_pages(conn, taxonomy, slug, lang, per_page, (page - 1) * per_page, now)?;
                if total == 0 || (page > 1 && pages.is_empty()) {
                    return Ok(None);
                }
                // Its name alone, not the whole term list.
                let name = Term {
                    name: read::term_name(conn, taxonomy, lang, slug)?.unwrap_or_else(|| slug.to_string()),
                    slug: slug.to_string(),
                    count: total as i64,
                };
                let base = format!("{prefix}/{taxonomy}/{slug}/");
                let paginator = Paginator::new(pages, total, per_page, page, &base);
                let url = format!("{prefix}{path}");
                let ctx = context! {
                    site => site_value(snap, lang), lang => lang, taxonomy => *taxonomy, term => Serde(name),
                    paginator => Serde(paginator), current_url => url, prefix => &prefix,
                };
                return html(snap, "taxonomy_single.html", ctx, 200).map(Some);
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The root section a site (or one of its languages) has without `content/_index.md`: titled
/// like the site.
fn implicit_root(snap: &Snapshot, lang: &str) -> DocRow {
    let over = snap.config.languages.get(lang);
    let title = over.and_then(|l| l.title.clone()).unwrap_or_else(|| snap.config.title.clone());
    let description = over.and_then(|l| l.description.clone()).unwrap_or_else(|| snap.config.description.clone());
    DocRow {
        kind: "section".into(),
        url: format!("{}/", snap.languages.prefix(lang)),
        lang: lang.to_string(),
        title,
        description: (!description.is_empty()).then_some(description),
        toc: serde_json::Value::Array(Vec::new()),
        extra: serde_json::Value::Object(Default::default()),
        ..DocRow::default()
    }
}

fn render_document(snap: &Snapshot, conn: &Connection, mut doc: DocRow, page: usize, now: i64) -> Result<Rendered> {
    if let Some(to) = &doc.redirect_to {
        return Ok(redirect_with(&redirect_target(conn, to), 302));
    }
    let lang = doc.lang.clone();
    let site = site_value(snap, &lang);
    if !doc.path.is_empty() {
        doc = read::with_translations(conn, doc, now)?;
    }
    let ext = &snap.extensions;
    // What extensions see of the document: its metadata (and, for filters, its HTML apart).
    let meta = if ext.is_empty() && doc.calls.is_empty() {
        serde_json::Value::Null
    } else {
        let content = std::mem::take(&mut doc.content);
        let meta = serde_json::to_value(&doc).unwrap_or_default();
        doc.content = content;
        meta
    };
    let anchors = if doc.kind == "page" {
        snap.sections.get(&doc.section).and_then(|s| s.insert_anchor_links.clone())
    } else {
        doc.insert_anchor_links.clone()
    };
    let calls = std::mem::take(&mut doc.calls);
    doc.content = finish::finish(snap, conn, &site, &doc.content, &calls, &meta, anchors.as_deref());
    if let Some(summary) = doc.summary.take() {
        doc.summary = Some(finish::finish(snap, conn, &site, &summary, &calls, &meta, None));
    }
    if doc.kind == "page" {
        if !ext.is_empty() {
            doc.content = ext.page_html(std::mem::take(&mut doc.content), &meta);
        }
        let section_template = snap.sections.get(&doc.section).and_then(|s| s.page_template.clone());
        let template = doc.template.clone().or(section_template).unwrap_or_else(|| "page.html".into());
        let template = existing_template(snap, template, "page.html", &doc.path);
        let url = doc.url.clone();
        let ctx = context! { site => site, lang => lang, page => Serde(doc), current_url => url };
        return with_head(snap, &meta, html(snap, &template, ctx, 200)?);
    }
    let per_page = doc.paginate_by.map(|n| n as usize).unwrap_or(snap.config.paginate_by).max(1);
    let offset = (page - 1) * per_page;
    let root = doc.section.is_empty();
    let (pages, total) = if root {
        read::dated_pages(conn, &lang, per_page, offset, now)?
    } else {
        read::section_pages(conn, &doc.url, doc.sort_by.as_deref(), per_page, offset, now)?
    };
    if page > 1 && pages.is_empty() {
        return html(snap, "404.html", context! { site => site, lang => lang }, 404);
    }
    let pages = pages.into_iter().map(|p| with_finished_summary(snap, conn, &site, p)).collect();
    let paginator = Paginator::new(pages, total, per_page, page, &doc.url);
    let default_template = if root { "index.html" } else { "section.html" };
    let template = doc.template.clone().unwrap_or_else(|| default_template.into());
    let template = existing_template(snap, template, default_template, &doc.path);
    let url = doc.url.clone();
    let ctx = context! {
        site => site, lang => lang, section => Serde(doc), paginator => Serde(paginator), current_url => url,
    };
    with_head(snap, &meta, html(snap, &template, ctx, 200)?)
}

/// A listed page with its summary finished (shortcodes, links, highlighting).
fn with_finished_summary(snap: &Snapshot, conn: &Connection, site: &Value, mut page: DocRow) -> DocRow {
    if let Some(summary) = page.summary.take() {
        let meta = serde_json::Value::Null;
        page.summary = Some(finish::finish(snap, conn, site, &summary, &page.calls, &meta, None));
    }
    page
}

/// `template` if the theme has it, else `fallback` (a push naming a missing template is
/// refused; this covers an index built before the theme lost one).
fn existing_template(snap: &Snapshot, template: String, fallback: &str, path: &str) -> String {
    if template == fallback || snap.theme.has_template(&template) {
        return template;
    }
    tracing::warn!(%path, %template, "template missing from the theme; using {fallback}");
    fallback.to_string()
}

/// Where a `redirect_to` points: a full URL as it is, `@/…` to that document, else a path of
/// the site.
fn redirect_target(conn: &Connection, to: &str) -> String {
    if to.starts_with("http://") || to.starts_with("https://") {
        return to.to_string();
    }
    if to.starts_with(crate::content::markdown::INTERNAL) {
        if let Some(url) = finish::resolve(conn, to) {
            return url;
        }
    }
    format!("/{}", to.trim_start_matches('/'))
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
    let ctx = context! { site => site_value(snap, &snap.config.default_language), ..Value::from(Serde(context)) };
    html(snap, template, ctx, status)
}

/// The search page, in `lang`.
pub fn render_search(snap: &Snapshot, query: &str, hits: &[Hit], lang: &str) -> Result<Rendered> {
    let ctx = context! { site => site_value(snap, lang), lang => lang, query => query, hits => Serde(hits) };
    html(snap, "search.html", ctx, 200)
}

/// The 404 page (status 404), in `lang`.
pub fn render_not_found(snap: &Snapshot, lang: &str) -> Result<Rendered> {
    html(snap, "404.html", context! { site => site_value(snap, lang), lang => lang }, 404)
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
    redirect_with(to, 301)
}

/// A redirect with `status` (301 or 302).
pub fn redirect_with(to: &str, status: u16) -> Rendered {
    Rendered {
        status,
        content_type: "text/plain; charset=utf-8",
        body: Arc::new(Vec::new()),
        etag: String::new(),
        location: Some(to.to_string()),
    }
}

/// Split `/blog/page/3/` into (`/blog/`, 3).
pub(crate) fn split_page(path: &str) -> Option<(&str, usize)> {
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
