//! *Review*: the board of saves — Draft (on this computer), In review (on the server's
//! `admin`, which its preview serves), Live (on `main`) — with the moves between columns:
//! *Send for review* and *Publish what is in review*. Whether a role may make a move is the
//! server's to say; its refusal is shown in its words (e.g. "ask an admin to publish").

use leptos::prelude::*;

use desktop_core::review::Board;
use desktop_core::save::Saved;

use super::publish::{published, send, Sent};
use crate::{App, Response, Session};

pub async fn show(app: &App, s: &Session) -> anyhow::Result<Response> {
    let board = s.ws.board()?;
    let unsaved = s.ws.changes()?.len();
    let status = app.status_line(s).await;
    Ok(Response::html(super::page("Review", "review", &status, view(&board, unsaved))))
}

/// Publish what is in review: the server's `admin` pushed to its `main`.
pub async fn publish(app: &App, s: &Session) -> anyhow::Result<Response> {
    let Some(admin) = s.ws.remote_tip("admin")? else {
        return Ok(Response::refused("Nothing is in review."));
    };
    let html = match send(app, s, "main", Some(admin)).await? {
        Sent::Offline(e) => {
            return Ok(Response::refused(format!("The server cannot be reached ({e}); try again when you are back online.")))
        }
        Sent::Answered(desktop_core::sync::Published::Behind, _) => view! {
            <p class="problems">"The live site has changes that are not in review yet: send your saves for review again (which brings them together), then publish."</p>
        }
        .to_html(),
        Sent::Answered(outcome, caught_up) => published("main", &outcome, caught_up.as_ref()),
    };
    Ok(Response::json(serde_json::json!({ "html": html, "status": app.status_line(s).await })))
}

fn cards(saves: &[Saved], empty: &'static str) -> AnyView {
    if saves.is_empty() && empty.is_empty() {
        return ().into_any();
    }
    if saves.is_empty() {
        return view! { <p class="muted">{empty}</p> }.into_any();
    }
    saves
        .iter()
        .map(|s| {
            view! {
                <li class="card">
                    <a href=format!("/history/save?id={}", s.id)>{s.summary.clone()}</a>
                    <span class="muted">{format!("{} · {}", s.author, super::when(s.time))}</span>
                </li>
            }
        })
        .collect_view()
        .into_any()
}

pub fn view(board: &Board, unsaved: usize) -> AnyView {
    // Unsaved edits are drafts too: sending for review saves them first.
    let unsaved_card = (unsaved > 0).then(|| {
        view! { <li class="card"><a href="/publish">{format!("{unsaved} change(s) not saved yet")}</a><span class="muted">"kept on this computer"</span></li> }
    });
    let empty = if unsaved > 0 { "" } else { "Nothing waiting." };
    let send_for_review = (!board.draft.is_empty() || unsaved > 0).then(|| {
        view! {
            <form method="post" action="/api/publish">
                <input type="hidden" name="branch" value="admin"/>
                <input type="hidden" name="message" value="Edits for review"/>
                <button type="submit">"Send for review"</button>
            </form>
        }
    });
    let publish_review = (!board.in_review.is_empty()).then(|| {
        view! {
            <form method="post" action="/api/review/publish">
                <button type="submit" class="primary">"Publish what is in review"</button>
            </form>
        }
    });
    view! {
        <header class="bar"><h1>"Review"</h1></header>
        <p class="muted">"Saves move from this computer, to review on the server's preview, to the live site. The columns are as last seen from the server."</p>
        <p class="result" id="result" aria-live="polite"></p>
        <div class="board">
            <section aria-label="Draft">
                <h2>"Draft"</h2>
                <p class="muted">"Saved on this computer only."</p>
                <ul class="cards">{unsaved_card}{cards(&board.draft, empty)}</ul>
                {send_for_review}
            </section>
            <section aria-label="In review">
                <h2>"In review"</h2>
                <p class="muted">"On the server's preview (admin), not live yet."</p>
                <ul class="cards">{cards(&board.in_review, "Nothing in review.")}</ul>
                {publish_review}
            </section>
            <section aria-label="Live">
                <h2>"Live"</h2>
                <p class="muted">"On the published site (main)."</p>
                <ul class="cards">{cards(&board.live, "Nothing published yet.")}</ul>
            </section>
        </div>
    }
    .into_any()
}
