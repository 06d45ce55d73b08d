//! *History*: the saves, newest first; each opens on what it changed, line by line, with *Undo
//! this change*; pages removed in the past can be restored. Undo and restore are new saves,
//! never a rewrite of the history.

use std::collections::HashMap;

use leptos::prelude::*;

use desktop_core::history::{FileChange, Line, Removed, Undo};
use desktop_core::save::Saved;
use desktop_core::worktree::Change;
use gix::ObjectId;

use crate::{App, Response, Session};

/// Saves listed at most.
const SHOWN: usize = 200;

fn id_of(f: &HashMap<String, String>, key: &str) -> anyhow::Result<ObjectId> {
    let text = f.get(key).map(String::as_str).unwrap_or("");
    ObjectId::from_hex(text.as_bytes()).map_err(|_| anyhow::anyhow!("{text:?} is not a save's id"))
}

pub async fn show(app: &App, s: &Session) -> anyhow::Result<Response> {
    let saves = s.ws.history(SHOWN)?;
    let removed = s.ws.removed_pages()?;
    let status = app.status_line(s).await;
    Ok(Response::html(super::page("History", "history", &status, view(&saves, &removed))))
}

/// One save: what it changed, and its undo.
pub async fn save(app: &App, s: &Session, query: &HashMap<String, String>) -> anyhow::Result<Response> {
    let id = id_of(query, "id")?;
    let Ok(saved) = s.ws.saved(id) else { return Ok(Response::error(404, "no such save in this site's history")) };
    let changes = s.ws.changes_in(id)?;
    let status = app.status_line(s).await;
    Ok(Response::html(super::page(&saved.summary.clone(), "history", &status, save_view(&saved, &changes))))
}

pub async fn undo(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let id = id_of(f, "id")?;
    match s.ws.undo(id, &app.settings().await.author())? {
        Undo::Done(_) => Ok(Response::go("/history")),
        Undo::Nothing => Ok(Response::refused("There is nothing left to undo in this change.")),
        Undo::ChangedSince(paths) => Ok(Response::refused(format!(
            "These files were changed again after this save, so undoing it would throw those later edits away: {}. \
             Undo the later changes first, or edit the pages by hand.",
            paths.join(", ")
        ))),
    }
}

pub async fn restore(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let path = f.get("path").cloned().unwrap_or_default();
    match s.ws.restore(&path, id_of(f, "from")?, &app.settings().await.author()) {
        Ok(_) => Ok(Response::go(&format!("/edit?path={path}"))),
        Err(e) => Ok(Response::refused(e)),
    }
}

pub fn view(saves: &[Saved], removed: &[Removed]) -> AnyView {
    let items = saves
        .iter()
        .map(|s| {
            let href = format!("/history/save?id={}", s.id);
            view! {
                <li>
                    <a href=href class="title">{s.summary.clone()}</a>
                    <span class="muted">{format!("{} · {}", s.author, super::when(s.time))}</span>
                    <code>{super::short(&s.id)}</code>
                </li>
            }
        })
        .collect_view();
    let removed_list = (!removed.is_empty()).then(|| {
        let rows = removed
            .iter()
            .map(|r| {
                view! {
                    <li>
                        <span class="title">{r.path.clone()}</span>
                        <span class="muted">{format!("removed {}", super::when(r.time))}</span>
                        <form method="post" action="/api/restore">
                            <input type="hidden" name="path" value=r.path.clone()/>
                            <input type="hidden" name="from" value=r.last_seen.to_string()/>
                            <button type="submit">"Restore"</button>
                        </form>
                    </li>
                }
            })
            .collect_view();
        view! { <h2>"Removed pages"</h2><ul class="history">{rows}</ul><p class="muted result" aria-live="polite"></p> }
    });
    view! {
        <header class="bar"><h1>"History"</h1></header>
        <ul class="history">{items}</ul>
        {removed_list}
    }
    .into_any()
}

pub fn save_view(saved: &Saved, changes: &[FileChange]) -> AnyView {
    let files = changes
        .iter()
        .map(|c| {
            let (label, path) = match &c.change {
                Change::Added(p) => ("New", p),
                Change::Modified(p) => ("Changed", p),
                Change::Deleted(p) => ("Removed", p),
            };
            let body = match c.lines() {
                None => view! { <p class="muted">"A binary file (a picture or other media)."</p> }.into_any(),
                Some(lines) => {
                    let rows = lines
                        .into_iter()
                        .map(|l| {
                            let (class, text) = match l {
                                Line::Same(t) => ("same", format!("  {t}")),
                                Line::Removed(t) => ("del", format!("- {t}")),
                                Line::Added(t) => ("add", format!("+ {t}")),
                                Line::Gap => ("gap", "⋯".to_string()),
                            };
                            view! { <div class=class>{text}</div> }
                        })
                        .collect_view();
                    view! { <pre class="diff">{rows}</pre> }.into_any()
                }
            };
            view! { <section class="file"><h3><span class="badge">{label}</span>" "{path.clone()}</h3>{body}</section> }
        })
        .collect_view();
    view! {
        <header class="bar">
            <h1>{saved.summary.clone()}</h1>
            <form method="post" action="/api/undo">
                <input type="hidden" name="confirm" value="Undo this change? It becomes a new save, which you can undo too."/>
                <input type="hidden" name="id" value=saved.id.to_string()/>
                <button type="submit">"Undo this change"</button>
            </form>
        </header>
        <p class="muted">{format!("{} · {} · commit {}", saved.author, super::when(saved.time), saved.id)}</p>
        <p class="muted result" aria-live="polite"></p>
        {files}
        <p><a href="/history">"← All saves"</a></p>
    }
    .into_any()
}
