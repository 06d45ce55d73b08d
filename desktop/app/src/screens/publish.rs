//! *Publish*: what changed since the last publish, the problems the server would find, and the
//! two ways out: *Publish* (to `main`, live) and *Send for review* (to `admin`, the preview).
//! Offline, saves wait on this computer; someone else's publish is caught up with first.

use std::collections::{BTreeMap, HashMap};

use leptos::prelude::*;

use desktop_core::check::Problem;
use desktop_core::conflict::{Choice, Conflict};
use desktop_core::sync::{CaughtUp, Published};
use desktop_core::worktree::Change;
use githost::client::Remote;

use crate::{App, Response, Session};

pub async fn show(app: &App, s: &Session) -> anyhow::Result<Response> {
    let changes = changes(s)?;
    let problems = s.ws.check("main")?;
    let status = app.status_line(s).await;
    Ok(Response::html(super::page("Publish", "publish", &status, view(&changes, s.ws.unpublished("main")?, &problems))))
}

/// The unsaved changes of the folder, one line each.
fn changes(s: &Session) -> anyhow::Result<Vec<String>> {
    Ok(s.ws
        .changes()?
        .iter()
        .map(|c| match c {
            Change::Added(p) => format!("New: {p}"),
            Change::Modified(p) => format!("Changed: {p}"),
            Change::Deleted(p) => format!("Removed: {p}"),
        })
        .collect())
}

/// *Save* (Ctrl+S): a commit of the folder as it is, nothing sent.
pub async fn save(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let message = f.get("message").filter(|m| !m.trim().is_empty()).cloned().unwrap_or_else(|| "Edits".into());
    let saved = s.ws.save(&message, &app.settings().await.author())?;
    Ok(Response::json(serde_json::json!({ "saved": saved.map(|c| c.to_string()), "status": app.status_line(s).await })))
}

/// Save what is unsaved, then publish to `branch`; catch up once if someone published first.
pub async fn publish(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let settings = app.settings().await;
    let branch = if f.get("branch").map(String::as_str) == Some("admin") { "admin" } else { "main" };
    let message = f
        .get("message")
        .filter(|m| !m.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| "Edits from WhisperCMS Desktop".into());
    // Recorded in the history once saved: the box is emptied for the next change.
    let saved = s.ws.save(&message, &settings.author())?.is_some();
    let html = match send(app, s, branch, None).await? {
        Sent::Offline(e) => {
            let pending = s.ws.unpublished(branch).unwrap_or(0);
            let text = format!(
                "Offline: {pending} save(s) are kept on this computer and will publish by themselves when the server is \
                 reachable again ({e})."
            );
            view! { <p class="problems">{text}</p> }.to_html()
        }
        Sent::Answered(outcome, caught_up) => published(branch, &outcome, caught_up.as_ref()),
    };
    // What is left to publish now (the screen showed what there was before).
    let summary = summary_view(&changes(s)?, s.ws.unpublished("main")?).to_html();
    Ok(Response::json(
        serde_json::json!({ "html": html, "summary": summary, "saved": saved, "status": app.status_line(s).await }),
    ))
}

/// How sending to the server went.
pub(crate) enum Sent {
    /// The server could not be reached; the publish waits (see [`App::retry_pending`]).
    Offline(anyhow::Error),
    /// The server answered (after catching up once, if it had to).
    Answered(Published, Option<CaughtUp>),
}

/// Publish our last save (or `commit`, e.g. what is in review) to `branch`, catching up once if
/// someone published first; offline, remember to try again.
pub(crate) async fn send(app: &App, s: &Session, branch: &str, commit: Option<gix::ObjectId>) -> anyhow::Result<Sent> {
    let settings = app.settings().await;
    let remote = match crate::connect(&settings).await {
        Ok(r) => r,
        Err(e) => {
            if commit.is_none() {
                *app.pending.lock().await = Some(branch.to_string());
            }
            return Ok(Sent::Offline(e));
        }
    };
    let push = |commit: Option<gix::ObjectId>| {
        let remote = &remote;
        async move {
            match commit {
                Some(c) => s.ws.publish_commit(remote, branch, c).await,
                None => s.ws.publish(remote, branch).await,
            }
        }
    };
    let mut outcome = push(commit).await?;
    let mut caught_up = None;
    if outcome == Published::Behind && commit.is_none() {
        let c = s.ws.catch_up(&remote, branch, &settings.author()).await?;
        if let CaughtUp::Updated { .. } = c {
            outcome = push(None).await?;
        }
        caught_up = Some(c);
    } else if commit.is_some() {
        // Bring the columns up to date whatever the answer.
        let _ = desktop_core::sync::fetch(&s.ws, &remote).await;
    }
    if let Remote::Ssh(c) = remote {
        c.close().await;
    }
    if matches!(outcome, Published::Done { .. } | Published::UpToDate) && commit.is_none() {
        *app.pending.lock().await = None;
    }
    Ok(Sent::Answered(outcome, caught_up))
}

/// How many changes and saves wait, and the changed files.
fn summary_view(changes: &[String], unpublished: usize) -> AnyView {
    let items = changes.iter().map(|c| view! { <li>{c.clone()}</li> }).collect_view();
    let summary = match (changes.len(), unpublished) {
        (0, 0) => "Everything is published.".to_string(),
        (c, u) => format!("{c} unsaved change(s), {u} save(s) not yet published."),
    };
    view! {
        <p>{summary}</p>
        <ul class="changes">{items}</ul>
    }
    .into_any()
}

pub fn view(changes: &[String], unpublished: usize, problems: &[Problem]) -> AnyView {
    view! {
        <header class="bar"><h1>"Publish"</h1></header>
        <div id="summary">{summary_view(changes, unpublished)}</div>
        {super::problem_list(problems)}
        <form id="publish" class="publish" method="post" action="/api/publish">
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

/// Both versions of each file both sides changed, side by side, with a choice per file.
pub async fn conflicts(app: &App, s: &Session, query: &HashMap<String, String>) -> anyhow::Result<Response> {
    let branch = if query.get("branch").map(String::as_str) == Some("admin") { "admin" } else { "main" };
    let list = s.ws.conflicts(branch)?;
    let status = app.status_line(s).await;
    Ok(Response::html(super::page("Choose", "publish", &status, conflicts_view(branch, &list))))
}

/// The choices made: `keep:<path>` = `mine` or `theirs` for each file.
pub async fn resolve(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let branch = if f.get("branch").map(String::as_str) == Some("admin") { "admin" } else { "main" };
    let choices: BTreeMap<String, Choice> = f
        .iter()
        .filter_map(|(k, v)| {
            let path = k.strip_prefix("keep:")?;
            let choice = match v.as_str() {
                "mine" => Choice::Mine,
                "theirs" => Choice::Theirs,
                _ => return None,
            };
            Some((path.to_string(), choice))
        })
        .collect();
    match s.ws.resolve(branch, &choices, &app.settings().await.author()) {
        Ok(_) => Ok(Response::go("/publish")),
        Err(e) => Ok(Response::refused(e)),
    }
}

fn conflicts_view(branch: &str, list: &[Conflict]) -> AnyView {
    if list.is_empty() {
        return view! {
            <header class="bar"><h1>"Nothing to choose"</h1></header>
            <p>"Your saves and the server's do not change the same files (as last fetched). "<a href="/publish">"Publish"</a></p>
        }
        .into_any();
    }
    let text = |t: &Option<String>| t.clone().unwrap_or_else(|| "(removed, or not text)".into());
    let files = list
        .iter()
        .map(|c| {
            let name = format!("keep:{}", c.path);
            view! {
                <section class="file">
                    <h3>{c.path.clone()}</h3>
                    <div class="sides">
                        <label class="side">
                            <span><input type="radio" name=name.clone() value="mine" required/>" Keep yours (this computer)"</span>
                            <pre>{text(&c.mine)}</pre>
                        </label>
                        <label class="side">
                            <span><input type="radio" name=name value="theirs"/>" Keep the one on the server"</span>
                            <pre>{text(&c.theirs)}</pre>
                        </label>
                    </div>
                </section>
            }
        })
        .collect_view();
    view! {
        <header class="bar"><h1>"Choose which versions to keep"</h1></header>
        <p>"Someone else published changes to these files while you changed them too. For each, keep one version; everything else from both sides is kept. You can copy text from the other version into yours afterwards (History keeps both)."</p>
        <form method="post" action="/api/resolve">
            <input type="hidden" name="branch" value=branch.to_string()/>
            {files}
            <button type="submit" class="primary">"Keep these and go on"</button>
            <p class="result" aria-live="polite"></p>
        </form>
    }
    .into_any()
}

/// What a publish did, in words.
pub fn published(branch: &str, outcome: &Published, caught_up: Option<&CaughtUp>) -> String {
    let before = match caught_up {
        Some(CaughtUp::Updated { changed, .. }) => Some(format!(
            "Someone else had published meanwhile; their changes ({} file(s)) are now in your folder too.",
            changed.len()
        )),
        _ => None,
    }
    .map(|t| view! { <p class="muted">{t}</p> });
    let main = match (outcome, caught_up) {
        (Published::Done { commit, messages }, _) => {
            let lines = messages.iter().map(|m| view! { <li>{m.clone()}</li> }).collect_view();
            let id = super::short(commit);
            let done = if branch == "admin" { "Sent for review." } else { "Published." };
            view! { <div class="ok"><p>{done}" The server said:"</p><ul class="server">{lines}</ul><p class="muted">"commit "{id}</p></div> }.into_any()
        }
        (Published::UpToDate, _) => view! { <p class="ok">"Already there: nothing new to send."</p> }.into_any(),
        (Published::Behind, Some(CaughtUp::Conflict { paths })) => {
            let files = paths.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view();
            view! {
                <div class="problems" role="alert">
                    <p>"Someone else published changes to the same pages as you meanwhile. Nothing was changed on either side. These need your choice:"</p>
                    <ul>{files}</ul>
                    <p><a href="/conflicts?branch=main" class="button">"Compare both versions and choose"</a></p>
                </div>
            }
            .into_any()
        }
        (Published::Behind, _) => {
            view! { <p class="problems">"Someone else published meanwhile. Try again in a moment."</p> }.into_any()
        }
        (Published::Refused { reason, problems, .. }, _) => {
            let list = super::problem_list(problems);
            view! { <div class="problems" role="alert"><p>"The server refused to publish: "{reason.clone()}</p>{list}</div> }.into_any()
        }
    };
    view! { {before}{main} }.to_html()
}
