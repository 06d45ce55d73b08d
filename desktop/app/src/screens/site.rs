//! *Site*: the settings of `site.toml` as a form, the theme, the plugins (on or off, and their
//! settings), and the people who may publish with their keys and roles. Each change is written
//! to the folder like a page edit, checked by the server's own parser first, and published like
//! any other change (the server decides who may change what).

use std::collections::HashMap;

use leptos::prelude::*;

use desktop_core::people::{self, User};
use desktop_core::secrets::SecretFile;
use desktop_core::site::{self, General, PluginInfo, ThemeInfo};

use crate::{App, Response, Session};

pub async fn show(app: &App, s: &Session) -> anyhow::Result<Response> {
    let general = site::general(&s.ws);
    let themes = site::themes(&s.ws)?;
    let plugins = site::plugins(&s.ws)?;
    let people = people::list(&s.ws);
    let status = app.status_line(s).await;
    let sources: Vec<Option<(String, String)>> = plugins
        .iter()
        .map(|p| desktop_core::extensions::source_of(&s.ws, desktop_core::extensions::Kind::Plugin, &p.name))
        .collect();
    let content = match (general, people) {
        (Ok(g), Ok(p)) => {
            let keyring = secrets::Keyring::installed();
            let files = desktop_core::secrets::list(&s.ws, keyring);
            let recipient = keyring.and_then(|k| k.primary()).map(secrets::Identity::recipient);
            view(&g, &themes, &plugins, &sources, &p, &files, recipient.as_deref())
        }
        (Err(e), _) | (_, Err(e)) => view! {
            <header class="bar"><h1>"Site"</h1></header>
            <div class="problems" role="alert"><p>"The site's settings cannot be read, so they cannot be shown as a form:"</p><p>{e.to_string()}</p><p>"Fix the file in a text editor (History can bring back an earlier version)."</p></div>
        }
        .into_any(),
    };
    Ok(Response::html(super::page("Site", "site", &status, content)))
}

/// One change of the settings: `what` is `general`, `theme`, `plugin` or `setting`.
pub fn change(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let done = match get("what").as_str() {
        "general" => match get("paginate_by").parse::<usize>() {
            Ok(paginate_by) => site::set_general(
                &s.ws,
                &General {
                    title: get("title"),
                    description: get("description"),
                    base_url: get("base_url"),
                    default_language: get("default_language"),
                    paginate_by,
                },
            ),
            Err(_) => return Ok(Response::refused("Pages per list is a whole number.")),
        },
        "theme" => {
            let name = get("theme");
            site::set_theme(&s.ws, (!name.is_empty()).then_some(name.as_str()))
        }
        "plugin" => site::set_plugin_enabled(&s.ws, &get("name"), f.contains_key("enabled")),
        "setting" => site::set_plugin_setting(&s.ws, &get("name"), &get("key"), &get("value")),
        other => return Ok(Response::refused(format!("unknown change {other:?}"))),
    };
    match done {
        Ok(()) => Ok(Response::go("/site")),
        Err(e) => Ok(Response::refused(e)),
    }
}

/// Add or change a person (`remove` set: remove them).
pub fn person(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let id = get("id");
    if id.is_empty() {
        return Ok(Response::refused("Give the person a short id (letters and digits, e.g. ada)."));
    }
    let done = if f.contains_key("remove") {
        people::remove(&s.ws, &id)
    } else {
        let roles: Vec<String> = people::ROLES.iter().filter(|r| f.contains_key(**r)).map(|r| r.to_string()).collect();
        let key = get("key");
        people::upsert(&s.ws, &id, &get("name"), (!key.is_empty()).then_some(key.as_str()), &roles).and_then(|()| {
            match f.get("age").map(|a| a.trim()).filter(|a| !a.is_empty()) {
                Some(age) => people::set_age(&s.ws, &id, age),
                None => Ok(()),
            }
        })
    };
    match done {
        Ok(()) => Ok(Response::go("/site#people")),
        Err(e) => Ok(Response::refused(e)),
    }
}

fn general_form(g: &General) -> impl IntoView {
    view! {
        <form method="post" action="/api/site" class="settings">
            <input type="hidden" name="what" value="general"/>
            <label>"Site title"<input name="title" value=g.title.clone() required/></label>
            <label>"Description (one line, for feeds and search engines)"<input name="description" value=g.description.clone()/></label>
            <div class="row">
                <label>"Address of the published site"<input name="base_url" value=g.base_url.clone() placeholder="https://example.org"/></label>
                <label>"Language"<input name="default_language" value=g.default_language.clone() placeholder="en"/></label>
                <label>"Pages per list"<input name="paginate_by" type="number" min="1" value=g.paginate_by.to_string()/></label>
            </div>
            <button type="submit" class="primary">"Keep these settings"</button>
            <p class="muted result" aria-live="polite"></p>
        </form>
    }
}

fn themes_form(themes: &[ThemeInfo]) -> impl IntoView {
    let items = themes
        .iter()
        .map(|t| {
            let value = t.name.clone().unwrap_or_default();
            let title = t.name.clone().unwrap_or_else(|| "The built-in theme".into());
            let about = match (&t.manifest, &t.problem) {
                (_, Some(p)) => p.clone(),
                (Some(m), None) => format!(
                    "{} {}",
                    m.description,
                    if m.version.is_empty() { String::new() } else { format!("(version {})", m.version) }
                ),
                (None, None) => "Clean, fast and accessible; comes with the server.".into(),
            };
            view! {
                <label class="choice">
                    <input type="radio" name="theme" value=value checked=t.active disabled=t.problem.is_some()/>
                    <span><strong>{title}</strong><br/><span class="muted">{about}</span></span>
                </label>
            }
        })
        .collect_view();
    view! {
        <form method="post" action="/api/site" class="settings">
            <input type="hidden" name="what" value="theme"/>
            {items}
            <button type="submit">"Use this theme"</button>
            <p class="muted result" aria-live="polite"></p>
        </form>
    }
}

fn plugin_card(p: &PluginInfo, source: Option<&(String, String)>) -> impl IntoView {
    let source = source.map(|(url, commit)| {
        view! { <p class="muted">{format!("Added from {url} (commit {})", &commit[..commit.len().min(10)])}</p> }
    });
    let about = match (&p.manifest, &p.problem) {
        (_, Some(problem)) => view! { <p class="problems">{problem.clone()}</p> }.into_any(),
        (Some(m), None) => {
            let caps = if m.capabilities.is_empty() { "none".to_string() } else { m.capabilities.join(", ") };
            view! { <p>{m.description.clone()}</p><p class="muted">{format!("version {} · may use: {caps}", m.version)}</p> }.into_any()
        }
        (None, None) => ().into_any(),
    };
    let settings = p
        .settings
        .iter()
        .map(|st| {
            let value = match &st.value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let hint = if st.set_by_site { "set by this site" } else { "the plugin's default" };
            view! {
                <form method="post" action="/api/site" class="row setting">
                    <input type="hidden" name="what" value="setting"/>
                    <input type="hidden" name="name" value=p.name.clone()/>
                    <input type="hidden" name="key" value=st.key.clone()/>
                    <label>{format!("{} ({hint})", st.key)}<input name="value" value=value/></label>
                    <button type="submit">"Set"</button>
                </form>
            }
        })
        .collect_view();
    view! {
        <li class="plugin">
            <form method="post" action="/api/site" data-submit-on-change="" class="toggle">
                <input type="hidden" name="what" value="plugin"/>
                <input type="hidden" name="name" value=p.name.clone()/>
                <label class="check"><input type="checkbox" name="enabled" value="on" checked=p.enabled/><strong>{p.name.clone()}</strong></label>
                <noscript><button type="submit">"Apply"</button></noscript>
            </form>
            {about}
            {source}
            {settings}
            <p class="muted result" aria-live="polite"></p>
        </li>
    }
}

fn people_list(people: &[User]) -> impl IntoView {
    let rows = people
        .iter()
        .map(|u| {
            let keys = u.keys.len();
            let roles = u.roles.join(", ");
            let secrets_key = if u.age.is_some() { " · can open secrets" } else { "" };
            view! {
                <li>
                    <span class="title">{if u.name.is_empty() { u.id.clone() } else { format!("{} ({})", u.name, u.id) }}</span>
                    <span class="muted">{format!("{roles} · {keys} key(s){secrets_key}")}</span>
                    <form method="post" action="/api/person">
                        <input type="hidden" name="confirm" value="Remove this person? Their keys stop working once this is published."/>
                        <input type="hidden" name="id" value=u.id.clone()/>
                        <input type="hidden" name="remove" value="1"/>
                        <button type="submit" class="danger">"Remove"</button>
                    </form>
                </li>
            }
        })
        .collect_view();
    let roles = people::ROLES
        .iter()
        .map(|r| view! { <label class="check"><input type="checkbox" name=*r value="1" checked=*r == "editor"/>{*r}</label> })
        .collect_view();
    view! {
        <ul class="history">{rows}</ul>
        <form method="post" action="/api/person" class="settings">
            <div class="row">
                <label>"Short id"<input name="id" placeholder="ada" required/></label>
                <label>"Name"<input name="name" placeholder="Ada Lovelace"/></label>
            </div>
            <label>"Their SSH public key (the line their app shows, ssh-ed25519 …)"<input name="key" placeholder="ssh-ed25519 AAAA… ada@laptop"/></label>
            <label>"Their key for secrets (age1…, shown in their app under Site → Secrets; optional)"<input name="age" placeholder="age1…"/></label>
            <div class="row roles">{roles}</div>
            <button type="submit">"Add or change this person"</button>
            <p class="muted result" aria-live="polite"></p>
        </form>
    }
}

pub fn view(
    g: &General,
    themes: &[ThemeInfo],
    plugins: &[PluginInfo],
    sources: &[Option<(String, String)>],
    people: &[User],
    secret_files: &[SecretFile],
    recipient: Option<&str>,
) -> AnyView {
    let cards = plugins.iter().zip(sources).map(|(p, s)| plugin_card(p, s.as_ref())).collect_view();
    view! {
        <header class="bar"><h1>"Site"</h1></header>
        <p class="muted">"Changes here are kept in the site's folder like page edits, and go live when you publish. The server checks that your role may change them."</p>
        <h2>"Settings"</h2>
        {general_form(g)}
        <h2>"Theme"</h2>
        {themes_form(themes)}
        <h2>"Plugins"</h2>
        <ul class="plugins">{cards}</ul>
        <h2>"Add a plugin or theme"</h2>
        <p class="muted">"From its Git repository: the app shows what it is and what it may do before anything is added; it is kept in the site with where it came from, and goes live when you publish."</p>
        {super::extensions::form()}
        <h2 id="people">"People"</h2>
        {people_list(people)}
        <h2 id="secrets">"Secrets"</h2>
        {secrets_section(secret_files, recipient)}
    }
    .into_any()
}

/// The files of `secrets/` with their keys (never their values), and a form to set a value.
fn secrets_section(files: &[SecretFile], recipient: Option<&str>) -> impl IntoView {
    let rows = files
        .iter()
        .map(|f| {
            let about = match (&f.problem, f.readable) {
                (Some(p), _) => p.clone(),
                (None, true) => f.keys.join(", "),
                (None, false) => "cannot be opened on this computer".into(),
            };
            view! { <li><span class="title">{f.path.clone()}</span><span class="muted">{about}</span></li> }
        })
        .collect_view();
    let mine = match recipient {
        Some(r) => format!("Your key for secrets is {r}. An administrator adds it to your entry under People, then re-saves the files, so that you can open them here."),
        None => "This computer has no key for secrets.".into(),
    };
    view! {
        <p class="muted">"Passwords and tokens the server uses for the site (webhooks, services, mail), kept encrypted in the site's secrets folder. Values are never shown; set a new one to change it."</p>
        <p class="muted">{mine}</p>
        <ul class="history">{rows}</ul>
        <form method="post" action="/api/secret" class="settings" autocomplete="off">
            <div class="row">
                <label>"File"<input name="file" value="webhooks.yaml" required/></label>
                <label>"Key"<input name="key" placeholder="contact.token" required/></label>
            </div>
            <label>"Value"<input name="value" type="password" required/></label>
            <button type="submit">"Set this secret"</button>
            <p class="muted result" aria-live="polite"></p>
        </form>
    }
}

/// Set one secret value (encrypted here with this computer's key).
pub fn secret(s: &Session, f: &HashMap<String, String>) -> anyhow::Result<Response> {
    let get = |k: &str| f.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
    let Some(keyring) = secrets::Keyring::installed() else {
        return Ok(Response::refused("This computer has no key for secrets."));
    };
    let value = f.get("value").cloned().unwrap_or_default();
    match desktop_core::secrets::set(&s.ws, &get("file"), &get("key"), &value, keyring) {
        Ok(()) => Ok(Response::go("/site#secrets")),
        Err(e) => Ok(Response::refused(e)),
    }
}
