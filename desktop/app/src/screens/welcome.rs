//! *Setup*, the first-run wizard: where the site comes from (cloned from a server, a folder
//! already on this computer, or a new site from the starter), the SSH key (made here, or one the
//! person has), the server's host key (shown on first contact, for the person to check with the
//! server's administrator, then pinned), and who the writer is. Writes the app's settings.

use std::collections::HashMap;
use std::time::Duration;

use leptos::prelude::*;

use desktop_core::Workspace;
use githost::client::RemoteUrl;

use crate::{expand, App, Response, Settings};

pub async fn show(app: &App) -> anyhow::Result<Response> {
    let settings = app.settings().await;
    let status = if app.session().await.is_some() { "A site is open." } else { "No site open yet." };
    Ok(Response::html(super::page("Setup", "welcome", status, view(&settings))))
}

/// The public half of the key at `private`, if it has one beside it.
fn public_key(private: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(private.with_extension("pub")).ok()?;
    Some(text.trim().to_string()).filter(|t| t.starts_with("ssh-"))
}

/// Make an ed25519 key (or reuse the one made before) and show its public half to send to the
/// site's administrator.
pub async fn new_key(app: &App, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let path = app.new_key_path();
    let who = f.get("email").filter(|e| !e.trim().is_empty()).cloned().unwrap_or_else(|| "writer".into());
    let key = match githost::keys::load_or_generate(&path, &format!("{who} (WhisperCMS Desktop)")) {
        Ok(k) => k,
        Err(e) => return Ok(Response::refused(format!("The key could not be made: {e}"))),
    };
    let public = key.public_key().to_openssh()?;
    Ok(Response::json(serde_json::json!({
        "fill": { "key": path.display().to_string() },
        "html": key_view(&path, &public, true).to_html(),
    })))
}

/// The public half of the key at `path`, to send to the site's administrator (`made`: it was
/// just made here).
fn key_view(path: &std::path::Path, public: &str, made: bool) -> AnyView {
    let intro = if made { "Your key is ready (" } else { "Your key (" };
    let ask = if made {
        "). Send this line to your site's administrator, who adds it to the site's people:"
    } else {
        "). If your site's administrator does not have it yet, send them this line:"
    };
    view! {
        <div class="ok">
            <p>{intro}<code>{path.display().to_string()}</code>{ask}</p>
            <textarea class="key" readonly rows="3">{public.to_string()}</textarea>
        </div>
    }
    .into_any()
}

/// Ask the server at `remote` for its host key's fingerprint, to be checked and pinned.
pub async fn host_key(f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let remote = f.get("remote").map(|r| r.trim()).unwrap_or("");
    let url = match RemoteUrl::parse(remote) {
        Ok(u) if !u.is_http() => u,
        Ok(_) => {
            return Ok(Response::refused("An https:// server proves who it is with its certificate; no key to check."))
        }
        Err(e) => return Ok(Response::refused(format!("The server address is not right: {e}"))),
    };
    match githost::client::host_fingerprint(&url, Duration::from_secs(10)).await {
        Ok(fingerprint) => Ok(Response::json(serde_json::json!({
            "fill": { "fingerprint": fingerprint },
            "html": view! {
                <p class="ok">"The server introduced itself with the key "<code>{fingerprint.clone()}</code>". Check with your administrator that this is their server's key (they see it when the server starts); the app will refuse any other from now on."</p>
            }.to_html(),
        }))),
        Err(e) => Ok(Response::refused(format!("The server could not be reached: {e}"))),
    }
}

/// The wizard's answer: clone the site, open a folder, or start a new one; remember it; open it.
pub async fn setup(app: &App, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let Some(folder) = get("folder").map(|p| expand(&p)) else {
        return Ok(Response::refused("Choose a folder for the site."));
    };
    let mut settings = app.settings().await;
    settings.name = get("name").unwrap_or_default();
    settings.email = get("email").unwrap_or_default();
    settings.remote = get("remote");
    settings.key = get("key").map(|k| expand(&k));
    settings.host_key_fingerprint = get("fingerprint");
    let outcome = match get("how").as_deref() {
        Some("new") => {
            Workspace::create_from_starter(&folder, &settings.author()).map(drop).map_err(anyhow::Error::from)
        }
        Some("open") => Workspace::open(&folder).map(drop).map_err(anyhow::Error::from),
        _ => clone(&settings, &folder).await,
    };
    if let Err(e) = outcome {
        return Ok(Response::refused(e));
    }
    app.adopt(settings, folder).await?;
    Ok(Response::go("/pages"))
}

async fn clone(settings: &Settings, folder: &std::path::Path) -> anyhow::Result<()> {
    let url = settings.remote.clone().ok_or_else(|| anyhow::anyhow!("Give the server's address."))?;
    let is_ssh = RemoteUrl::parse(&url).map(|u| !u.is_http()).unwrap_or(false);
    if is_ssh && settings.host_key_fingerprint.is_none() {
        anyhow::bail!("Ask the server for its key first, and check it with your administrator.");
    }
    let remote = crate::connect(settings).await?;
    Workspace::clone_from(&remote, &url, folder).await?;
    Ok(())
}

pub fn view(settings: &Settings) -> AnyView {
    let current = settings.site.as_ref().map(|s| view! { <p>"Open now: "<code>{s.display().to_string()}</code></p> });
    let remote = settings.remote.clone().unwrap_or_default();
    let key = settings.key.as_ref().map(|k| k.display().to_string()).unwrap_or_default();
    let public = settings.key.as_deref().and_then(|k| public_key(k).map(|p| key_view(k, &p, false)));
    let fingerprint = settings.host_key_fingerprint.clone().unwrap_or_default();
    let folder = settings.site.as_ref().map(|k| k.display().to_string()).unwrap_or_default();
    view! {
        <header class="bar"><h1>"Your site"</h1></header>
        {current}
        <form id="setup" class="setup" method="post" action="/api/setup">
            <fieldset>
                <legend>"Get the site from your server"</legend>
                <label>"Server address"<input name="remote" value=remote placeholder="ssh://git@example.org:2222/site.git"/></label>
                <div class="row">
                    <label>"Your SSH key (private key file)"<input name="key" value=key placeholder="~/.ssh/id_ed25519"/></label>
                    <button type="submit" formaction="/api/key" class="inline" formnovalidate=true>"Make a new key"</button>
                </div>
                <div class="row">
                    <label>"The server's key fingerprint"<input name="fingerprint" value=fingerprint placeholder="SHA256:…"/></label>
                    <button type="submit" formaction="/api/host-key" class="inline" formnovalidate=true>"Ask the server"</button>
                </div>
                <div class="result" aria-live="polite">{public}</div>
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
                <button type="submit" name="how" value="open">"Open this folder"</button>
                <button type="submit" name="how" value="new">"Start a new site"</button>
            </div>
        </form>
    }
    .into_any()
}
