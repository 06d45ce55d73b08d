//! The screens, rendered to HTML by Leptos on the Rust side (`ssr`): the web view shows what
//! the backend renders, and two small scripts (`assets/app.js`) add autosave, the live preview
//! and publishing without leaving the page.

use leptos::prelude::*;

use desktop_core::check::Problem;
use desktop_core::pages::PageInfo;
use desktop_core::save::Saved;
use desktop_core::sync::Published;

/// A whole page of the app: sidebar, content, the publish state always visible at the bottom.
pub fn page(title: &str, active: &str, status: &str, content: AnyView) -> String {
    let nav = [("/pages", "Pages"), ("/publish", "Publish"), ("/history", "History"), ("/welcome", "Site")];
    let links = nav
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
                <footer class="status" role="status" id="status">{status.to_string()}</footer>
                <script src="/app.js"></script>
            </body>
        </html>
    }
    .to_html();
    format!("<!DOCTYPE html>{html}")
}

/// The content tree.
pub fn pages(list: &[PageInfo], query: &str) -> AnyView {
    let q = query.to_lowercase();
    let shown: Vec<PageInfo> = list
        .iter()
        .filter(|p| q.is_empty() || p.title.to_lowercase().contains(&q) || p.path.to_lowercase().contains(&q))
        .cloned()
        .collect();
    let count = format!("{} of {} pages", shown.len(), list.len());
    let items = shown
        .into_iter()
        .map(|p| {
            let href = format!("/edit?path={}", p.path);
            // (A class, not a style attribute: the app's CSP allows no inline styles.)
            // A section's own page stands at its folder's level, above its pages.
            let level = p.path.matches('/').count().saturating_sub(1 + usize::from(p.section));
            let depth = format!("depth-{}", level.min(6));
            let badge = if p.draft { Some(view! { <span class="badge">"draft"</span> }) } else { None };
            let section = if p.section { Some(view! { <span class="badge section">"section"</span> }) } else { None };
            let problem = p.problem.clone().map(|why| view! { <span class="badge problem" title=why>"problem"</span> });
            view! {
                <li class=depth>
                    <a href=href><span class="title">{p.title.clone()}</span></a>
                    {section}{badge}{problem}
                    <span class="path">{p.path.clone()}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <header class="bar">
            <h1>"Pages"</h1>
            <form class="search" action="/pages" method="get" role="search">
                <input type="search" name="q" value=query.to_string() placeholder="Find a page (Ctrl+K)" aria-label="Find a page" id="find"/>
            </form>
            <form class="new" id="new-page">
                <input name="title" placeholder="New page title" aria-label="New page title" required/>
                <input name="section" value="content/blog" aria-label="Section folder"/>
                <button type="submit">"New page"</button>
            </form>
        </header>
        <p class="muted">{count}</p>
        <ul class="tree">{items}</ul>
    }
    .into_any()
}

/// The editor: front matter as a form, the Markdown, and the preview beside them.
pub struct Editor {
    pub path: String,
    pub title: String,
    pub date: String,
    pub draft: bool,
    pub tags: String,
    pub body: String,
    pub yaml: Option<String>,
    pub preview_url: String,
    pub problems: Vec<Problem>,
}

pub fn editor(e: Editor) -> AnyView {
    let problems = problem_list(&e.problems);
    let front = match e.yaml.clone() {
        Some(yaml) => view! {
            <label>"Front matter (YAML, edited as text)"<textarea name="yaml" rows="6">{yaml}</textarea></label>
        }
        .into_any(),
        None => view! {
            <label>"Title"<input name="title" value=e.title.clone() required/></label>
            <div class="row">
                <label>"Date"<input name="date" value=e.date.clone() placeholder="2026-12-01"/></label>
                <label class="check"><input type="checkbox" name="draft" value="true" checked=e.draft/>"Draft"</label>
            </div>
            <label>"Tags"<input name="tags" value=e.tags.clone() placeholder="comma, separated"/></label>
        }
        .into_any(),
    };
    view! {
        <div class="editor">
            <form id="page" class="fields" data-path=e.path.clone()>
                <input type="hidden" name="path" value=e.path.clone()/>
                {front}
                <label class="grow">"Text (Markdown)"<textarea name="body" id="body" spellcheck="true">{e.body.clone()}</textarea></label>
                <p class="muted"><span id="saved">"Changes are kept on this computer as you type."</span>" "<span class="path">{e.path.clone()}</span></p>
                <div id="problems">{problems}</div>
            </form>
            <section class="preview" aria-label="Preview">
                <iframe id="preview" title="Preview with the site's theme" src=e.preview_url.clone()></iframe>
            </section>
        </div>
    }
    .into_any()
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

/// The publish screen.
pub fn publish(changes: &[String], unpublished: usize, problems: &[Problem]) -> AnyView {
    let items = changes.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view();
    let summary = match (changes.len(), unpublished) {
        (0, 0) => "Everything is published.".to_string(),
        (c, u) => format!("{c} unsaved change(s), {u} save(s) not yet published."),
    };
    view! {
        <header class="bar"><h1>"Publish"</h1></header>
        <p>{summary}</p>
        <ul class="changes">{items}</ul>
        {problem_list(problems)}
        <form id="publish" class="publish">
            <label>"What changed (for the history)"<input name="message" placeholder="Update the about page"/></label>
            <div class="row">
                <button type="submit" name="branch" value="main" class="primary">"Publish (Ctrl+Enter)"</button>
                <button type="submit" name="branch" value="admin">"Send for review"</button>
            </div>
        </form>
        <div id="result" aria-live="polite"></div>
    }
    .into_any()
}

/// What a publish did, in words.
pub fn published(outcome: &Published) -> String {
    match outcome {
        Published::Done { commit, messages } => {
            let lines = messages.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view();
            let id = commit.to_string()[..10].to_string();
            view! { <div class="ok"><p>"Published. The server said:"</p><ul class="server">{lines}</ul><p class="muted">"commit "{id}</p></div> }.to_html()
        }
        Published::UpToDate => view! { <p class="ok">"Already published: nothing new to send."</p> }.to_html(),
        Published::Behind => {
            view! { <p class="problems">"Someone else published meanwhile, and their changes touch the same pages as yours. Open History to compare."</p> }.to_html()
        }
        Published::Refused { reason, problems, .. } => {
            let list = problem_list(problems);
            view! { <div class="problems" role="alert"><p>"The server refused to publish: "{reason.clone()}</p>{list}</div> }.to_html()
        }
    }
}

/// The history of saves.
pub fn history(saves: &[Saved]) -> AnyView {
    let items = saves
        .iter()
        .map(|s| {
            let when = jiff::Timestamp::from_second(s.time).map(|t| t.strftime("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
            let id = s.id.to_string()[..10].to_string();
            view! { <li><span class="title">{s.summary.clone()}</span><span class="muted">{format!("{} · {when}", s.author)}</span><code>{id}</code></li> }
        })
        .collect_view();
    view! { <header class="bar"><h1>"History"</h1></header><ul class="history">{items}</ul> }.into_any()
}

/// The first-run wizard (and the site screen): where the site comes from. Fields start with what
/// the settings already say.
pub fn welcome(settings: &crate::Settings) -> AnyView {
    let current = settings.site.as_ref().map(|s| view! { <p>"Open now: "<code>{s.display().to_string()}</code></p> });
    let remote = settings.remote.clone().unwrap_or_default();
    let key = settings.key.as_ref().map(|k| k.display().to_string()).unwrap_or_default();
    let fingerprint = settings.host_key_fingerprint.clone().unwrap_or_default();
    let folder = settings.site.as_ref().map(|k| k.display().to_string()).unwrap_or_default();
    view! {
        <header class="bar"><h1>"Your site"</h1></header>
        {current}
        <form id="setup" class="setup">
            <fieldset>
                <legend>"Get the site from your server"</legend>
                <label>"Server address"<input name="remote" value=remote placeholder="ssh://git@example.org:2222/site.git"/></label>
                <label>"Your SSH key (private key file)"<input name="key" value=key placeholder="~/.ssh/id_ed25519"/></label>
                <label>"The server's key fingerprint (from its administrator)"<input name="fingerprint" value=fingerprint placeholder="SHA256:…"/></label>
            </fieldset>
            <fieldset>
                <legend>"On this computer"</legend>
                <label>"Folder for the site"<input name="folder" value=folder placeholder="~/Sites/my-site" required/></label>
                <div class="row">
                    <label>"Your name"<input name="name" value=settings.name.clone()/></label>
                    <label>"Your e-mail"<input name="email" type="email" value=settings.email.clone()/></label>
                </div>
            </fieldset>
            <div class="row">
                <button type="submit" name="how" value="clone" class="primary">"Get the site"</button>
                <button type="submit" name="how" value="new">"Start a new site"</button>
            </div>
        </form>
    }
    .into_any()
}
