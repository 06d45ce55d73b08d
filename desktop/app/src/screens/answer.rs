//! Actions sent by the web view itself rather than by `assets/app.js`: a form submitted before
//! the script listens (a click in the moment a screen is still loading) or with scripts off.
//!
//! Every action form is a plain `method="post"` form to its `/api/…` address, so such a
//! submission never puts its fields (a secret's value) in an address, and it still does what
//! the person asked. The action's JSON answer, meant for the script, becomes a page here:
//! `go` a redirect, `html` or `error` a screen showing it. A form that asks first (a hidden
//! `confirm` field, the question) is not acted on until the person has answered it on a page.

use std::collections::HashMap;

use leptos::prelude::*;

use crate::Response;

/// The question to ask before an action, when the form carries one (the script asks it in a
/// dialog and drops the field).
pub fn question(form: &HashMap<String, String>) -> Option<&str> {
    form.get("confirm").map(String::as_str).filter(|q| !q.is_empty())
}

/// A page asking `question` before the action at `action`: the same fields, sent again
/// without the question when the person says yes.
pub fn confirm(action: &str, question: &str, form: &HashMap<String, String>) -> Response {
    let mut fields: Vec<(&String, &String)> = form.iter().filter(|(k, _)| k.as_str() != "confirm").collect();
    fields.sort();
    let hidden =
        fields.into_iter().map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone()/> }).collect_view();
    let content = view! {
        <header class="bar"><h1>"Are you sure?"</h1></header>
        <form method="post" action=action.to_string() class="settings">
            <p>{question.to_string()}</p>
            {hidden}
            <div class="row">
                <button type="submit" class="danger">"Yes"</button>
                <a href="/pages">"No, go back to the pages"</a>
            </div>
        </form>
    }
    .into_any();
    Response::html(super::page("Are you sure?", "", super::STATUS_LATER, content))
}

/// The page for an action's `answer` (JSON for the script); any other answer as it is.
pub fn as_page(answer: Response) -> Response {
    if !answer.content_type.starts_with("application/json") {
        return answer;
    }
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&answer.body) else { return answer };
    if let Some(go) = json["go"].as_str() {
        return moved_to(go);
    }
    let (title, shown) = match (json["error"].as_str(), json["html"].as_str()) {
        (Some(error), _) => (
            "Not done",
            view! { <div id="result" class="result problems" role="alert">{error.to_string()}</div> }.into_any(),
        ),
        // The action's own HTML, rendered by the backend for the script to show.
        (None, Some(html)) => {
            ("Done", view! { <div id="result" class="result" inner_html=html.to_string()></div> }.into_any())
        }
        (None, None) => ("Done", view! { <div id="result" class="result">"Done."</div> }.into_any()),
    };
    let content = view! {
        <header class="bar"><h1>{title}</h1></header>
        {shown}
        <p><a href="/pages">"← Pages"</a></p>
    }
    .into_any();
    Response::html(super::page(title, "", super::STATUS_LATER, content))
}

/// A page that goes on to `to` at once. (A refresh rather than a `303`: the `wcms://` scheme
/// answers through Tauri, where a redirect is the web view's to follow or not.)
fn moved_to(to: &str) -> Response {
    let html = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta http-equiv="refresh" content=format!("0;url={to}")/>
                <title>"WhisperCMS"</title>
            </head>
            <body><a href=to.to_string()>"Continue"</a></body>
        </html>
    }
    .to_html();
    Response::html(format!("<!DOCTYPE html>{html}"))
}
