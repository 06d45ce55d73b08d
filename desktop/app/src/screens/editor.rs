//! The editor: a page's front matter as a form, its Markdown, and the preview beside them,
//! rendered by the site's own theme and plugins. Edits are kept on disk as the person types
//! (not yet saved); pictures are added beside the page; the page can be moved (its old address
//! kept as an alias) or deleted (History brings it back).

use std::collections::HashMap;

use leptos::prelude::*;

use desktop_core::check::Problem;
use desktop_core::pages::{self, Page, Value};

use crate::{App, Response, Session};

/// What the editor shows.
pub struct Editor {
    pub path: String,
    pub title: String,
    pub date: String,
    pub draft: bool,
    pub tags: String,
    pub slug: String,
    pub description: String,
    pub body: String,
    pub yaml: Option<String>,
    pub preview_url: String,
    pub problems: Vec<Problem>,
}

/// The problems the server would find in the page at `path`.
fn problems_of(s: &Session, path: &str) -> anyhow::Result<Vec<Problem>> {
    Ok(s.ws.check("main")?.into_iter().filter(|p| p.path == path).collect())
}

pub async fn show(app: &App, s: &Session, query: &HashMap<String, String>) -> anyhow::Result<Response> {
    let path = query.get("path").cloned().unwrap_or_default();
    let page = Page::read(&s.ws, &path)?;
    let e = Editor {
        title: page.get("title").unwrap_or_default(),
        date: page.get("date").unwrap_or_default(),
        draft: page.get("draft").as_deref() == Some("true"),
        tags: page.get_list("tags").unwrap_or_default().join(", "),
        slug: page.get("slug").unwrap_or_default(),
        description: page.get("description").unwrap_or_default(),
        body: page.body.trim_start_matches('\n').to_string(),
        yaml: page.yaml().map(str::to_string),
        preview_url: format!("wcms://preview{}", pages::url_of(&path, &page.to_text())),
        problems: problems_of(s, &path)?,
        path,
    };
    let status = app.status_line(s).await;
    Ok(Response::html(super::page(&e.title.clone(), "pages", &status, view(e))))
}

/// Autosave of the editor: the page written to disk (not committed), its problems.
pub async fn keep(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let path = f.get("path").cloned().unwrap_or_default();
    let mut page = Page::read(&s.ws, &path)?;
    let before = page.to_text();
    if let Some(yaml) = f.get("yaml").filter(|_| page.yaml().is_some()) {
        page.set_yaml(yaml)?;
    } else if page.yaml().is_none() {
        if let Some(t) = f.get("title") {
            page.set("title", Value::Text(t.clone()))?;
        }
        match f.get("date").map(|d| d.trim()).filter(|d| !d.is_empty()) {
            Some(d) => page.set("date", Value::Date(d.to_string()))?,
            None => page.remove("date"),
        }
        // A page without `draft` stays without it until it becomes one (no noise in its history).
        let draft = f.get("draft").is_some();
        if draft || page.get("draft").is_some() {
            page.set("draft", Value::Bool(draft))?;
        }
        // Text fields written only when given a value or already there (no empty keys appear).
        for key in ["description", "slug"] {
            match f.get(key).map(|v| v.trim()) {
                Some(v) if !v.is_empty() => page.set(key, Value::Text(v.to_string()))?,
                Some(_) => page.remove(key),
                None => {}
            }
        }
        let tags: Vec<String> = f
            .get("tags")
            .map(|t| t.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
            .unwrap_or_default();
        if tags.is_empty() {
            page.remove("tags");
        } else {
            page.set("tags", Value::List(tags))?;
        }
    }
    // A new slug moves the page's address: the old one keeps working as an alias.
    let (old_url, new_url) = (pages::url_of(&path, &before), pages::url_of(&path, &page.to_text()));
    if old_url != new_url && page.yaml().is_none() {
        let mut aliases = page.get_list("aliases").unwrap_or_default();
        if !aliases.contains(&old_url) {
            aliases.push(old_url);
            page.set("aliases", Value::List(aliases))?;
        }
    }
    if let Some(body) = f.get("body") {
        // The form shows the text without the blank line after the front matter; whether there
        // was one is kept as the writer had it.
        let blank = if page.body.starts_with('\n') { "\n" } else { "" };
        page.body = format!("{blank}{}", body.trim_start_matches('\n').replace("\r\n", "\n"));
    }
    page.write(&s.ws)?;
    let rendered = super::problem_list(&problems_of(s, &path)?);
    Ok(Response::json(serde_json::json!({
        "saved": true,
        "url": format!("wcms://preview{}", pages::url_of(&path, &page.to_text())),
        "problems": rendered.to_html(),
        "status": app.status_line(s).await,
    })))
}

/// A new page in a section, from its archetype (or a new section, with its own page); the
/// editor opens on it.
pub fn create(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let section = f.get("section").map(String::as_str).unwrap_or("content");
    let title = f.get("title").map(String::as_str).unwrap_or("").trim();
    if title.is_empty() {
        return Ok(Response::refused("Give the new page a title."));
    }
    let made = if f.contains_key("as_section") {
        pages::new_section(&s.ws, section, title)
    } else {
        Page::new_in(&s.ws, section, title)
    };
    let page = match made {
        Ok(p) => p,
        Err(e) => return Ok(Response::refused(e)),
    };
    page.write(&s.ws)?;
    Ok(Response::go(&format!("/edit?path={}", page.path)))
}

/// Move or rename the page; the editor reopens at its new place.
pub fn move_to(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let (from, to) = (f.get("path").cloned().unwrap_or_default(), f.get("to").cloned().unwrap_or_default());
    let to = to.trim();
    if let Some(section) = from.strip_suffix("/_index.md") {
        // A section's own page moves with its folder and everything in it.
        let to = to.trim_end_matches("/_index.md").trim_end_matches(".md");
        return match pages::move_section(&s.ws, section, to) {
            Ok(_) => Ok(Response::go(&format!("/edit?path={to}/_index.md"))),
            Err(e) => Ok(Response::refused(e)),
        };
    }
    let to = if to.ends_with(".md") { to.to_string() } else { format!("{to}.md") };
    match pages::move_page(&s.ws, &from, &to) {
        Ok(_) => Ok(Response::go(&format!("/edit?path={to}"))),
        Err(e) => Ok(Response::refused(e)),
    }
}

/// Delete the page (kept in History until then).
pub fn delete(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    match pages::delete_page(&s.ws, f.get("path").map(String::as_str).unwrap_or("")) {
        Ok(()) => Ok(Response::go("/pages")),
        Err(e) => Ok(Response::refused(e)),
    }
}

pub fn view(e: Editor) -> AnyView {
    let problems = super::problem_list(&e.problems);
    let front = match e.yaml.clone() {
        Some(yaml) => view! {
            <label>"Front matter (YAML, edited as text)"<textarea name="yaml" rows="6">{yaml}</textarea></label>
        }
        .into_any(),
        None => view! {
            <label>"Title"<input name="title" value=e.title.clone() required/></label>
            <div class="row">
                <label>"Date"<input name="date" value=e.date.clone() placeholder="YYYY-MM-DD (none yet)"/></label>
                <label class="check"><input type="checkbox" name="draft" value="true" checked=e.draft/>"Draft"</label>
            </div>
            <label>"Tags"<input name="tags" value=e.tags.clone() placeholder="comma, separated"/></label>
            <details class="more-fields">
                <summary>"Address and summary"</summary>
                <label>"Slug (the last part of the address; the old address keeps working)"<input name="slug" value=e.slug.clone() placeholder="from the file name"/></label>
                <label>"Description (for search engines and lists)"<input name="description" value=e.description.clone()/></label>
            </details>
        }
        .into_any(),
    };
    // A section moves as its folder.
    let to = e.path.trim_end_matches("/_index.md").trim_end_matches(".md").to_string();
    let move_label = if e.path.ends_with("/_index.md") {
        "New place of the section's folder (its pages move along; old addresses redirect)"
    } else {
        "New place (its old address will redirect here)"
    };
    view! {
        <div class="editor">
            <div class="fields">
                <form id="page" class="fields" method="post" action="/api/page" data-path=e.path.clone()>
                    <input type="hidden" name="path" value=e.path.clone()/>
                    {front}
                    <label class="grow">"Text (Markdown)"<textarea name="body" id="body" spellcheck="true">{e.body.clone()}</textarea></label>
                </form>
                <div class="tools">
                    <label class="upload">"Add a picture or file"<input type="file" id="upload" multiple/></label>
                </div>
                <p class="muted saved"><span id="saved">"Changes are kept on this computer as you type."</span></p>
                <div id="problems">{problems}</div>
                <details class="page-actions">
                    <summary>"Move, rename or delete this page"</summary>
                    <form method="post" action="/api/move" class="row">
                        <input type="hidden" name="path" value=e.path.clone()/>
                        <label>{move_label}<input name="to" value=to/></label>
                        <button type="submit">"Move"</button>
                    </form>
                    <form method="post" action="/api/delete">
                        <input type="hidden" name="confirm" value="Delete this page? History can bring it back."/>
                        <input type="hidden" name="path" value=e.path.clone()/>
                        <button type="submit" class="danger">"Delete this page"</button>
                    </form>
                    <p class="muted result" aria-live="polite"></p>
                </details>
            </div>
            <section class="preview" aria-label="Preview">
                // The site's own scripts run (search, plugins) and its forms work inside the
                // frame, but it may not navigate the app's window (to a look-alike page asking
                // for a password, say) nor open windows: no `allow-top-navigation`, no popups.
                <iframe
                    id="preview"
                    title="Preview with the site's theme"
                    sandbox="allow-scripts allow-same-origin allow-forms"
                    src=e.preview_url.clone()
                ></iframe>
            </section>
        </div>
    }
    .into_any()
}
