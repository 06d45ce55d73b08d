//! The screens, each a module with its handlers and its view: HTML rendered by Leptos on the
//! Rust side (`ssr`). The web view shows what the backend renders; `assets/app.js` adds
//! autosave, the live preview, the windowed page list and posting actions without leaving the
//! page.

pub(crate) mod answer;
pub(crate) mod editor;
pub(crate) mod extensions;
pub(crate) mod history;
pub(crate) mod media;
pub(crate) mod pages;
pub(crate) mod publish;
pub(crate) mod review;
pub(crate) mod site;
pub(crate) mod welcome;

use leptos::prelude::*;

use desktop_core::check::Problem;

/// The sidebar: each screen and its address.
const NAV: [(&str, &str); 7] = [
    ("/pages", "Pages"),
    ("/media", "Media"),
    ("/publish", "Publish"),
    ("/review", "Review"),
    ("/history", "History"),
    ("/site", "Site"),
    ("/welcome", "Setup"),
];

/// The status line of a screen that lets the script fetch it (`GET /api/status`) after showing.
pub const STATUS_LATER: &str = "Looking at what is published…";

/// A whole page of the app: sidebar, content, the publish state always visible at the bottom.
pub fn page(title: &str, active: &str, status: &str, content: AnyView) -> String {
    let links = NAV
        .into_iter()
        .map(|(href, label)| {
            let current = if href.trim_start_matches('/') == active { "page" } else { "false" };
            view! { <a href=href aria-current=current>{label}</a> }
        })
        .collect_view();
    let html = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width"/>
                <title>{format!("{title} — WhisperCMS")}</title>
                <link rel="stylesheet" href="/app.css"/>
            </head>
            <body>
                <nav class="sidebar" aria-label="Sections">
                    <div class="brand">"WhisperCMS"</div>
                    {links}
                </nav>
                <main id="main">{content}</main>
                <footer class="status" role="status" id="status" data-later=(status == STATUS_LATER).then_some("")>{status.to_string()}</footer>
                <script src="/app.js"></script>
            </body>
        </html>
    }
    .to_html();
    format!("<!DOCTYPE html>{html}")
}

/// Problems, each with its file.
pub fn problem_list(problems: &[Problem]) -> AnyView {
    if problems.is_empty() {
        return view! { <p class="ok">"No problems: the server will accept this."</p> }.into_any();
    }
    let items = problems
        .iter()
        .map(|p| view! { <li><strong>{p.path.clone()}</strong>": "{p.message.clone()}</li> })
        .collect_view();
    view! { <div class="problems" role="alert"><p>"The server would refuse this:"</p><ul>{items}</ul></div> }.into_any()
}

/// A date and time for people (`2026-12-01 09:30`, UTC).
pub fn when(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default()
}

/// The first characters of a commit id, for those who want them.
pub fn short(id: &gix::ObjectId) -> String {
    id.to_string()[..10].to_string()
}
