//! *Media*: the site's pictures and files, each with the pages that use it, and uploads (beside
//! the page being edited, or for the whole site). Pictures show through the preview, as the
//! site serves them.

use std::collections::HashMap;

use leptos::prelude::*;

use desktop_core::media::{self, Media, Place};

use crate::{App, Response, Session};

pub async fn show(app: &App, s: &Session) -> anyhow::Result<Response> {
    let list = media::list(&s.ws)?;
    let status = app.status_line(s).await;
    Ok(Response::html(super::page("Media", "media", &status, view(&list))))
}

/// An upload: the file's bytes are the body; `name` is its name, `page` the page it goes
/// beside (none: `static/media/`).
pub fn upload(s: &Session, query: &HashMap<String, String>, bytes: &[u8]) -> anyhow::Result<Response> {
    let name = query.get("name").cloned().unwrap_or_default();
    let place = match query.get("page").filter(|p| !p.is_empty()) {
        Some(page) => Place::Page(page.clone()),
        None => Place::Static,
    };
    match media::import(&s.ws, &name, bytes, &place) {
        Ok(done) => Ok(Response::json(serde_json::json!({
            "path": done.path,
            "page": done.page,
            "markdown": done.markdown,
            "resized": done.resized,
        }))),
        Err(e) => Ok(Response::refused(e)),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{} KB", b >> 10),
        b => format!("{b} bytes"),
    }
}

pub fn view(list: &[Media]) -> AnyView {
    let count = match list.len() {
        1 => "1 file".to_string(),
        n => format!("{n} files"),
    };
    let items = list
        .iter()
        .map(|m| {
            let thumb = if m.image {
                view! { <img src=format!("wcms://preview{}", m.url) alt="" loading="lazy"/> }.into_any()
            } else {
                let ext = m.path.rsplit_once('.').map(|(_, e)| e.to_uppercase()).unwrap_or_default();
                view! { <span class="file-kind">{ext}</span> }.into_any()
            };
            let used = if m.used_by.is_empty() {
                view! { <span class="muted">"Not used by any page"</span> }.into_any()
            } else {
                m.used_by
                    .iter()
                    .map(|p| view! { <a href=format!("/edit?path={p}")>{p.trim_start_matches("content/").to_string()}</a>" " })
                    .collect_view()
                    .into_any()
            };
            view! {
                <li>
                    <div class="thumb">{thumb}</div>
                    <div class="name">{m.path.clone()}</div>
                    <div class="muted">{format!("{} · {}", size(m.size), m.url)}</div>
                    <div class="used">{used}</div>
                </li>
            }
        })
        .collect_view();
    view! {
        <header class="bar">
            <h1>"Media"</h1>
            <label class="upload">"Add files for the whole site"<input type="file" id="upload" multiple/></label>
        </header>
        <p class="muted">{count}" — pictures for one page are best added from its editor, beside its text. Large photos are scaled down to "{media::MAX_SIDE}" pixels."</p>
        <p class="muted result" id="upload-result" aria-live="polite"></p>
        <ul class="media">{items}</ul>
    }
    .into_any()
}
