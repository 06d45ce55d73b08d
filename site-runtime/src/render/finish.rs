//! What a document's stored HTML becomes at render time, with the snapshot's theme, plugins and
//! index at hand: shortcode placeholders expanded, `@/` links resolved to URLs, code blocks
//! highlighted, anchor links added to headings.
//!
//! A shortcode is looked up in this order: the site theme's `shortcodes/<name>.html`, a plugin's
//! `shortcode_<name>`, the built-in `shortcodes/<name>.html` of the default theme. Templates see
//! the named arguments (as variables and as `args`), `positional` (Hugo's), `body` (the text
//! between the tags, as written), `body_html` (that text as Markdown), `nth` (the how-manieth
//! call of this shortcode on the page), `page_dir` (the page's folder, for files beside it),
//! `page` and `site`.

use std::collections::HashMap;

use minijinja::value::{Serde, Value};
use rusqlite::Connection;

use super::highlight;
use crate::content::markdown::{self, INTERNAL};
use crate::content::shortcodes::{Call, CLOSE, OPEN};
use crate::index::read;
use crate::snapshot::Snapshot;

/// The stored `html` of a document, finished: `calls` are its shortcodes, `page` what
/// templates and plugins see of it, `anchors` its section's `insert_anchor_links`.
pub fn finish(
    snap: &Snapshot,
    conn: &Connection,
    site: &Value,
    html: &str,
    calls: &[Call],
    page: &serde_json::Value,
    anchors: Option<&str>,
) -> String {
    let html = if html.contains(OPEN) { expand_shortcodes(snap, site, html, calls, page) } else { html.to_string() };
    let html = if html.contains(INTERNAL) { resolve_links(conn, &html) } else { html };
    let html = if snap.config.markdown.highlight_code { highlight::blocks(&html).into_owned() } else { html };
    match anchors {
        Some(place @ ("left" | "right" | "heading")) => insert_anchors(snap, &html, place),
        _ => html,
    }
}

fn expand_shortcodes(snap: &Snapshot, site: &Value, html: &str, calls: &[Call], page: &serde_json::Value) -> String {
    let mut out = String::with_capacity(html.len() * 2);
    let mut rest = html;
    let mut nth: HashMap<&str, usize> = HashMap::new();
    while let Some(open) = rest.find(OPEN) {
        let after_open = &rest[open + OPEN.len_utf8()..];
        let Some(close) = after_open.find(CLOSE) else { break };
        let index: Option<usize> = after_open[..close].parse().ok();
        let after = &after_open[close + CLOSE.len_utf8()..];
        let mut before = &rest[..open];
        let mut after = after;
        // A paragraph holding only the shortcode is replaced whole, so it can produce blocks.
        if before.ends_with("<p>") && after.starts_with("</p>") {
            before = &before[..before.len() - 3];
            after = &after[4..];
        }
        out.push_str(before);
        if let Some(call) = index.and_then(|i| calls.get(i)) {
            let n = nth.entry(call.name.as_str()).or_default();
            *n += 1;
            out.push_str(&shortcode(snap, site, call, *n, page));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn shortcode(snap: &Snapshot, site: &Value, call: &Call, nth: usize, page: &serde_json::Value) -> String {
    let template = format!("shortcodes/{}.html", call.name);
    let from_template = |snap: &Snapshot| {
        let mut vars = call.args.clone();
        vars.insert("args".into(), serde_json::Value::Object(call.args.clone()));
        vars.insert("positional".into(), serde_json::Value::from(call.positional.clone()));
        vars.insert("body".into(), call.body.clone().map(serde_json::Value::from).unwrap_or_default());
        vars.insert(
            "body_html".into(),
            call.body.as_deref().map(|b| serde_json::Value::from(markdown::to_html(b))).unwrap_or_default(),
        );
        vars.insert("nth".into(), serde_json::Value::from(nth));
        // The page's folder in the repository (`content/blog/trip`), for files beside it.
        let page_dir =
            page.get("path").and_then(|p| p.as_str()).and_then(|p| p.rsplit_once('/')).map_or("content", |(d, _)| d);
        vars.insert("page_dir".into(), serde_json::Value::from(page_dir));
        vars.insert("page".into(), page.clone());
        let ctx = minijinja::context! { site => site.clone(), ..Value::from(Serde(vars)) };
        snap.theme.render(&template, ctx).unwrap_or_else(|e| {
            tracing::warn!(shortcode = %call.name, error = %e, "shortcode template failed");
            String::new()
        })
    };
    if snap.theme.has_own_template(&template) {
        return from_template(snap);
    }
    let args = serde_json::Value::Object(call.args.clone());
    if let Some(html) = snap.extensions.shortcode(&call.name, &args, &call.positional, call.body.as_deref(), page) {
        return html;
    }
    if snap.theme.has_template(&template) {
        return from_template(snap);
    }
    tracing::warn!(shortcode = %call.name, "unknown shortcode left out");
    String::new()
}

/// `href="@/blog/post.md#x"` (and `src=`) → the target's URL.
fn resolve_links(conn: &Connection, html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    loop {
        let next = ["href=\"@/", "src=\"@/"].iter().filter_map(|p| rest.find(p).map(|i| (i, p.len()))).min();
        let Some((at, len)) = next else { break };
        let value_start = at + len - INTERNAL.len();
        let Some(value_len) = rest[value_start..].find('"') else { break };
        let value = &rest[value_start..value_start + value_len];
        out.push_str(&rest[..value_start]);
        out.push_str(&resolve(conn, value).unwrap_or_else(|| value.to_string()));
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// The URL (with its anchor) of an `@/` link, if its document exists.
pub(super) fn resolve(conn: &Connection, link: &str) -> Option<String> {
    let target = link.strip_prefix(INTERNAL)?;
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let path = percent_encoding::percent_decode_str(path).decode_utf8().ok()?;
    let url = markdown::link_candidates(&path).into_iter().find_map(|c| read::url_of_path(conn, &c).ok().flatten());
    let Some(mut url) = url else {
        tracing::warn!(link, "internal link to a missing document");
        return None;
    };
    if let Some(anchor) = anchor {
        url.push('#');
        url.push_str(anchor);
    }
    Some(url)
}

/// Anchor links on every heading with an id, from the theme's `anchor-link.html` (`id`, `level`).
fn insert_anchors(snap: &Snapshot, html: &str, place: &str) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    while let Some(at) = find_heading(rest) {
        let level = &rest[at + 2..at + 3];
        let Some(open_end) = rest[at..].find('>').map(|e| at + e + 1) else { break };
        let close_tag = format!("</h{level}>");
        let Some(close) = rest[open_end..].find(&close_tag).map(|c| open_end + c) else { break };
        let id = rest[at..open_end].split("id=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default();
        let ctx = minijinja::context! { id => id, level => level.parse::<u8>().unwrap_or(1) };
        let link = snap.theme.render("anchor-link.html", ctx).unwrap_or_default();
        let inner = &rest[open_end..close];
        out.push_str(&rest[..open_end]);
        match place {
            "left" => {
                out.push_str(&link);
                out.push_str(inner);
            }
            "right" => {
                out.push_str(inner);
                out.push_str(&link);
            }
            _ => {
                out.push_str(&format!("<a class=\"heading-link\" href=\"#{id}\">{inner}</a>"));
            }
        }
        out.push_str(&close_tag);
        rest = &rest[close + close_tag.len()..];
    }
    out.push_str(rest);
    out
}

/// The next `<hN id="…"` opening tag.
fn find_heading(html: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = html[from..].find("<h") {
        let at = from + i;
        let b = html.as_bytes();
        if b.len() > at + 3 && (b'1'..=b'6').contains(&b[at + 2]) && html[at + 3..].starts_with(" id=\"") {
            return Some(at);
        }
        from = at + 2;
    }
    None
}
