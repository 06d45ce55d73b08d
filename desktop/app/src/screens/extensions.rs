//! Adding a plugin or theme from a Git address (on the *Site* screen): the app fetches it,
//! shows its manifest and what it may do — the capabilities it asks for, in words — and adds it
//! only when the person agrees, recorded with its source and commit. The server never fetches
//! code itself.

use std::collections::HashMap;

use leptos::prelude::*;

use desktop_core::extensions::{self, Kind, Offer};
use githost::client::{HttpConnection, HttpOptions, Remote, RemoteUrl, Token};

use crate::{App, Response, Session};

/// Connect to an extension's source: any `https://` address (a token for a private one), or
/// the site's own server over SSH with the key and host key already set up.
async fn connect(app: &App, url: &str, token: Option<&str>) -> anyhow::Result<Remote> {
    let parsed = RemoteUrl::parse(url)?;
    if parsed.is_http() {
        let token = token.map(Token::new).transpose()?;
        return Ok(Remote::Http(
            HttpConnection::connect(&parsed, HttpOptions { token, ..HttpOptions::default() }).await?,
        ));
    }
    let settings = app.settings().await;
    let ours = settings.remote.as_deref().and_then(|r| RemoteUrl::parse(r).ok());
    match ours {
        Some(o) if !o.is_http() && o.host == parsed.host && o.port == parsed.port => {
            let mut s = settings.clone();
            s.remote = Some(url.to_string());
            crate::connect(&s).await
        }
        _ => anyhow::bail!(
            "over SSH only your site's own server is reached (its key is the one checked at setup); use the https:// address"
        ),
    }
}

/// Fetch and show what the extension at `url` is and asks for; keep it until it is added.
pub async fn inspect(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let url = f.get("url").map(|u| u.trim().to_string()).unwrap_or_default();
    let token = f.get("token").map(|t| t.trim()).filter(|t| !t.is_empty());
    if url.is_empty() {
        return Ok(Response::refused("Give the extension's Git address."));
    }
    let remote = match connect(app, &url, token).await {
        Ok(r) => r,
        Err(e) => return Ok(Response::refused(format!("The address cannot be reached: {e}"))),
    };
    let fetched = extensions::fetch(&s.ws, &remote, &url).await;
    if let Remote::Ssh(c) = remote {
        c.close().await;
    }
    match fetched {
        Ok(offer) => {
            let html = offer_view(&offer).to_html();
            *app.offer.lock().await = Some(offer);
            Ok(Response::json(serde_json::json!({ "html": html })))
        }
        Err(e) => Ok(Response::refused(e)),
    }
}

/// Add the extension shown last (its address must match: what is added is what was shown).
pub async fn add(app: &App, s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let url = f.get("url").cloned().unwrap_or_default();
    let commit = f.get("commit").cloned().unwrap_or_default();
    let mut slot = app.offer.lock().await;
    let Some(offer) = slot.take_if(|o| o.url == url && o.commit == commit.as_str()) else {
        return Ok(Response::refused("Fetch the extension again: what would be added is no longer what was shown."));
    };
    match offer.vendor(&s.ws) {
        Ok(_) => Ok(Response::go("/site")),
        Err(e) => Ok(Response::refused(e)),
    }
}

pub fn offer_view(o: &Offer) -> AnyView {
    let kind = match o.kind {
        Kind::Plugin => "plugin",
        Kind::Theme => "theme",
    };
    let asks = if o.kind == Kind::Theme {
        let csp = if o.csp.is_empty() {
            view! { <li>"Nothing beyond showing pages: it loads nothing from other sites."</li> }.into_any()
        } else {
            o.csp.iter().map(|c| view! { <li>{format!("Load from another site — {c}")}</li> }).collect_view().into_any()
        };
        view! { <p>"As the site's theme it may:"</p><ul class="asks">{csp}</ul> }.into_any()
    } else if o.capabilities.is_empty() {
        view! { <p>"It asks for no capabilities: it can only change how pages look."</p> }.into_any()
    } else {
        let items = o
            .capabilities
            .iter()
            .map(|c| view! { <li><strong>{extensions::explain(c)}</strong><span class="muted">{format!(" ({c})")}</span></li> })
            .collect_view();
        view! { <p>"It asks to:"</p><ul class="asks">{items}</ul> }.into_any()
    };
    let replaces = o.replaces.then(|| view! { <p class="problems">{format!("The site has a {kind} named {} already: adding replaces it.", o.name)}</p> });
    let files = format!("{} files, from commit {}", o.files.len(), super::short(&o.commit));
    view! {
        <div class="offer">
            <h3>{format!("The {kind} “{}” {}", o.name, o.version)}</h3>
            <p>{o.description.clone()}</p>
            {asks}
            {replaces}
            <p class="muted">{files}</p>
            <form method="post" action="/api/extension/add">
                <input type="hidden" name="url" value=o.url.clone()/>
                <input type="hidden" name="commit" value=o.commit.to_string()/>
                <button type="submit" class="primary">{format!("Add this {kind} to the site")}</button>
            </form>
        </div>
    }
    .into_any()
}

/// The form on the *Site* screen.
pub fn form() -> impl IntoView {
    view! {
        <form method="post" action="/api/extension" class="settings">
            <div class="row">
                <label>"Git address of a plugin or theme"<input name="url" placeholder="https://example.org/someone/a-plugin.git" required/></label>
                <label>"Access token (private repositories only)"<input name="token" type="password" autocomplete="off"/></label>
            </div>
            <button type="submit">"Look at it first"</button>
            <div class="result" aria-live="polite"></div>
        </form>
    }
}
