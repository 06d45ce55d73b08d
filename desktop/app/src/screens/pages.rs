//! *Pages*: the content tree as it is in `content/`, found as you type.
//!
//! Ten thousand rows of HTML take WebKit seconds to lay out, so the list is windowed: the page
//! carries every row as data (a JSON block, which the CSP lets through since it is never run)
//! and the first screenful as HTML; `assets/app.js` then draws only the rows in view as the
//! list scrolls or the search changes.

use std::collections::{BTreeSet, HashMap};

use leptos::prelude::*;

use desktop_core::pages::PageInfo;

use crate::{App, Response, Session};

/// Rows drawn into the HTML before the script takes over (a tall window's worth).
const FIRST_ROWS: usize = 40;

/// One row as the script reads it (short keys: 10,000 of them travel in the page).
#[derive(serde::Serialize)]
struct Row<'a> {
    /// Path.
    p: &'a str,
    /// Title.
    t: &'a str,
    /// Depth in the tree.
    d: usize,
    /// A section's own page.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    s: bool,
    /// A draft.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    r: bool,
    /// Why its front matter cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<&'a str>,
}

/// How deep `p` stands in the tree: a section's own page at its folder's level, above its pages.
fn depth(p: &PageInfo) -> usize {
    p.path.matches('/').count().saturating_sub(1 + usize::from(p.section))
}

pub async fn show(app: &App, s: &Session, query: &HashMap<String, String>) -> anyhow::Result<Response> {
    let list = desktop_core::pages::list(&s.ws)?;
    let q = query.get("q").cloned().unwrap_or_default();
    // The first screen does not wait for the status line (a scan of the whole folder): the
    // script asks for it once the page shows.
    let _ = app;
    Ok(Response::html(super::page("Pages", "pages", super::STATUS_LATER, view(&list, &q))))
}

/// Whether `p` matches the search `q` (lowercase): in its title or its path.
fn matches(p: &PageInfo, q: &str) -> bool {
    q.is_empty() || p.title.to_lowercase().contains(q) || p.path.to_lowercase().contains(q)
}

pub fn view(list: &[PageInfo], query: &str) -> AnyView {
    let q = query.to_lowercase();
    let shown: Vec<&PageInfo> = list.iter().filter(|p| matches(p, &q)).collect();
    let rows: Vec<Row> = list
        .iter()
        .map(|p| Row { p: &p.path, t: &p.title, d: depth(p), s: p.section, r: p.draft, x: p.problem.as_deref() })
        .collect();
    // `</script>` inside the data would end the block: `<` is written as its JSON escape.
    let data = serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()).replace('<', "\\u003c");
    let count = format!("{} of {} pages", shown.len(), list.len());
    let sections: BTreeSet<String> = std::iter::once("content".to_string())
        .chain(list.iter().filter(|p| p.section).filter_map(|p| p.path.strip_suffix("/_index.md").map(str::to_string)))
        .collect();
    let options = sections
        .into_iter()
        .map(|s| {
            let selected = s == "content/blog";
            let label =
                if s == "content" { "top level".to_string() } else { s.trim_start_matches("content/").to_string() };
            view! { <option value=s selected=selected>{label}</option> }
        })
        .collect_view();
    let first = shown.iter().take(FIRST_ROWS).map(|p| row(p)).collect_view();
    view! {
        <header class="bar">
            <h1>"Pages"</h1>
            <form class="search" action="/pages" method="get" role="search" id="search">
                <input type="search" name="q" value=query.to_string() placeholder="Find a page (Ctrl+K)" aria-label="Find a page" id="find" autocomplete="off"/>
            </form>
            <form class="new" id="new-page" method="post" action="/api/new">
                <input name="title" placeholder="New page title" aria-label="New page title" required/>
                <select name="section" aria-label="In section">{options}</select>
                <label class="check inline-check"><input type="checkbox" name="as_section" value="1"/>"as a section"</label>
                <button type="submit">"New page"</button>
            </form>
        </header>
        <p class="muted" id="count" aria-live="polite">{count}</p>
        <ul class="tree" id="list" data-query=query.to_string()>{first}</ul>
        <script type="application/json" id="pages-data" inner_html=data></script>
    }
    .into_any()
}

/// One row of the tree (the script draws the same markup for the rows it adds).
fn row(p: &PageInfo) -> impl IntoView {
    let href = format!("/edit?path={}", p.path);
    // (A class, not a style attribute: the app's CSP allows no inline styles.)
    let depth = format!("depth-{}", depth(p).min(6));
    let section = p.section.then(|| view! { <span class="badge section">"section"</span> });
    let draft = p.draft.then(|| view! { <span class="badge">"draft"</span> });
    let problem = p.problem.clone().map(|why| view! { <span class="badge problem" title=why>"problem"</span> });
    view! {
        <li class=depth>
            <a href=href><span class="title">{p.title.clone()}</span></a>
            {section}{draft}{problem}
            <span class="path">{p.path.clone()}</span>
        </li>
    }
}
