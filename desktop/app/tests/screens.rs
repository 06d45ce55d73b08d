//! The app's screens and actions without a window: requests as the web view sends them.

mod support;

use desktop_app::{App, Request};
use support::{get, json, post, submit, text};

/// The rows the page list draws into its HTML (the rest is data for the windowed list).
fn list_rows(html: &str) -> String {
    let start = html.find("id=\"list\"").expect("a list");
    html[start..start + html[start..].find("</ul>").unwrap()].to_string()
}

/// A new app on a new site from the starter.
async fn new_site(tmp: &std::path::Path) -> App {
    let app = App::new(tmp.join("config/desktop.toml")).unwrap();
    let folder = tmp.join("site").display().to_string();
    let answer = json(&app.handle(post("/api/setup", &[("how", "new"), ("folder", &folder), ("name", "Ada")])).await);
    assert_eq!(answer["go"], "/pages");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_edit_preview_and_publish_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let settings = tmp.path().join("config/desktop.toml");
    let app = App::new(settings.clone()).unwrap();

    // First run: the wizard, whatever is asked.
    let welcome = app.handle(get("/pages")).await;
    assert!(text(&welcome).contains("Get the site from your server"), "{}", text(&welcome));
    let folder = tmp.path().join("site");
    let folder_text = folder.display().to_string();
    let setup = app
        .handle(post(
            "/api/setup",
            &[("how", "new"), ("folder", &folder_text), ("name", "Ada"), ("email", "ada@example.org")],
        ))
        .await;
    assert!(text(&setup).contains("/pages"), "{}", text(&setup));
    assert!(std::fs::read_to_string(&settings).unwrap().contains("Ada"), "the settings are written");

    // The content tree, with search.
    let pages = text(&app.handle(get("/pages")).await);
    assert!(
        pages.starts_with("<!DOCTYPE html>") && pages.contains("Hello, world") && pages.contains("content/about.md")
    );
    let found = text(&app.handle(get("/pages?q=hello")).await);
    let drawn = list_rows(&found);
    assert!(drawn.contains("Hello, world") && !drawn.contains("content/about.md"), "{drawn}");
    assert!(found.contains("1 of 6 pages"), "{found}");

    // The editor: front matter as a form, the preview frame on the site's own URL.
    let editor = text(&app.handle(get("/edit?path=content/about.md")).await);
    assert!(editor.contains("name=\"title\"") && editor.contains("wcms://preview/about/"), "{editor}");

    // An edit is kept on disk and previewed through the site's theme, before any save.
    let answer = app
        .handle(post(
            "/api/page",
            &[
                ("path", "content/about.md"),
                ("title", "About us <3"),
                ("date", ""),
                ("tags", "a, b"),
                ("body", "Hello *there*."),
            ],
        ))
        .await;
    let kept: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(kept["saved"], true, "{kept}");
    let on_disk = std::fs::read_to_string(folder.join("content/about.md")).unwrap();
    assert!(on_disk.contains("title = \"About us <3\"") && on_disk.contains("tags = [\"a\", \"b\"]"), "{on_disk}");
    // Nothing the writer did not touch changes: no `draft` key appears, no blank line is added.
    assert!(!on_disk.contains("draft") && on_disk.contains("+++\nHello *there*."), "{on_disk}");
    let preview = app
        .handle(Request {
            method: "GET".into(),
            host: "preview".into(),
            path: "/about/".into(),
            query: String::new(),
            body: vec![],
            navigation: false,
            sender: None,
        })
        .await;
    assert_eq!(preview.status, 200);
    assert!(
        text(&preview).contains("About us &lt;3") && text(&preview).contains("<em>there</em>"),
        "{}",
        text(&preview)
    );

    // A new slug: the address moves, the old one is kept as an alias; clearing it keeps both.
    let answer = json(
        &app.handle(post(
            "/api/page",
            &[
                ("path", "content/about.md"),
                ("title", "About us <3"),
                ("slug", "who-we-are"),
                ("body", "Hello *there*."),
            ],
        ))
        .await,
    );
    assert_eq!(answer["url"], "wcms://preview/who-we-are/");
    let on_disk = std::fs::read_to_string(folder.join("content/about.md")).unwrap();
    assert!(on_disk.contains("slug = \"who-we-are\"") && on_disk.contains("aliases = [\"/about/\"]"), "{on_disk}");
    json(&app.handle(post("/api/page", &[("path", "content/about.md"), ("title", "About us <3"), ("slug", "")])).await);
    let on_disk = std::fs::read_to_string(folder.join("content/about.md")).unwrap();
    assert!(!on_disk.contains("slug") && on_disk.contains("\"/who-we-are/\""), "{on_disk}");

    // A broken date shows its problem in the editor's answer.
    let answer =
        app.handle(post("/api/page", &[("path", "content/about.md"), ("title", "x"), ("date", "someday")])).await;
    assert_eq!(answer.status, 500, "an unparsable date is refused before it is written");
    assert!(text(&answer).contains("not a date"), "{}", text(&answer));

    // Publish screen, then publishing with no server set: offline, nothing lost.
    let publish = text(&app.handle(get("/publish")).await);
    assert!(publish.contains("1 unsaved change(s)") && publish.contains("Changed: content/about.md"), "{publish}");
    let answer = app.handle(post("/api/publish", &[("message", "Retitle about"), ("branch", "main")])).await;
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert!(json["html"].as_str().unwrap().contains("Offline"), "{json}");
    assert_eq!(json["saved"], true, "the message went into a save: the window empties its box");
    // The screen's summary is brought up to date: saved, not yet published.
    let summary = json["summary"].as_str().unwrap_or_default();
    assert!(summary.contains("0 unsaved change(s), 2 save(s) not yet published."), "{json}");
    let history = text(&app.handle(get("/history")).await);
    assert!(history.contains("Retitle about"), "the save happened: {history}");
    assert!(text(&app.handle(get("/app.css")).await).contains("--accent"));
    assert_eq!(app.handle(get("/nothing")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_list_carries_every_page_and_hostile_titles_stay_text() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    std::fs::write(site.join("content/blog/evil.md"), "+++\ntitle = \"</script><script>alert(1)</script>\"\n+++\n")
        .unwrap();
    let html = text(&app.handle(get("/pages")).await);
    let data_at = html.find("id=\"pages-data\"").unwrap();
    let data = &html[html[data_at..].find('>').unwrap() + data_at + 1..];
    let data = &data[..data.find("</script>").unwrap()];
    let rows: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 7);
    assert!(rows.as_array().unwrap().iter().any(|r| r["t"] == "</script><script>alert(1)</script>"));
    assert!(!html.contains("<script>alert(1)"), "a title never becomes markup");
    // A new page from the list's form opens the editor on it.
    let answer = json(&app.handle(post("/api/new", &[("title", "Fresh start"), ("section", "content/blog")])).await);
    assert_eq!(answer["go"], "/edit?path=content/blog/fresh-start.md");
    let answer =
        json(&app.handle(post("/api/new", &[("title", "Recipes"), ("section", "content"), ("as_section", "1")])).await);
    assert_eq!(answer["go"], "/edit?path=content/recipes/_index.md");
    assert!(text(&app.handle(get("/pages")).await).contains("<option value=\"content/recipes\""));
    let answer = json(&app.handle(post("/api/new", &[("title", "  "), ("section", "content/blog")])).await);
    assert!(answer["error"].as_str().unwrap().contains("title"), "{answer}");
}

/// A click in the moment a screen is still loading submits its form before `app.js` listens:
/// the web view posts it itself. It must do what was asked, never put fields in an address,
/// and ask first where the script would have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_sent_before_the_script_listens_is_done_and_answered_as_a_page() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    // Every form on every screen posts to an action (a `get` form would put a secret's value
    // in the address and do nothing); only the page search is a `get`.
    for screen in ["/pages", "/edit?path=content/about.md", "/site", "/history", "/publish", "/review", "/welcome"] {
        let html = text(&app.handle(get(screen)).await);
        for form in html.split("<form").skip(1) {
            let tag = &form[..form.find('>').unwrap()];
            let posts = tag.contains("method=\"post\" action=\"/api/");
            assert!(posts || tag.contains("action=\"/pages\" method=\"get\""), "{screen}: <form{tag}>");
        }
        assert!(!html.contains("data-post") && !html.contains("data-confirm"), "{screen}");
    }
    // An action that goes elsewhere: done, and the page moves on.
    let moved = app.handle(submit("/api/move", &[("path", "content/about.md"), ("to", "content/company/about")])).await;
    assert!(site.join("content/company/about.md").exists() && !site.join("content/about.md").exists());
    assert!(moved.content_type.starts_with("text/html"), "{}", moved.content_type);
    assert!(
        text(&moved).contains("http-equiv=\"refresh\" content=\"0;url=/edit?path=content/company/about.md\""),
        "{}",
        text(&moved)
    );
    // A refusal is shown as a page, in words, and escaped.
    let refused =
        text(&app.handle(submit("/api/move", &[("path", "content/company/about.md"), ("to", "../<b>")])).await);
    assert!(refused.contains("Not done") && refused.contains("role=\"alert\""), "{refused}");
    assert!(refused.contains("&lt;b&gt;") && !refused.contains("<b>"), "{refused}");
    assert!(site.join("content/company/about.md").exists());
    // A form that asks first is asked on a page, and nothing happens until the person says yes.
    let question = "Delete this page? History can bring it back.";
    let delete = [("path", "content/company/about.md"), ("confirm", question)];
    let asked = text(&app.handle(submit("/api/delete", &delete)).await);
    assert!(site.join("content/company/about.md").exists(), "deleted before the question was answered");
    assert!(asked.contains(question) && asked.contains("action=\"/api/delete\""), "{asked}");
    assert!(asked.contains("name=\"path\" value=\"content/company/about.md\"") && !asked.contains("name=\"confirm\""));
    let yes = text(&app.handle(submit("/api/delete", &delete[..1])).await);
    assert!(yes.contains("content=\"0;url=/pages\"") && !site.join("content/company/about.md").exists(), "{yes}");
    // The script's own requests still get JSON.
    assert_eq!(
        json(&app.handle(post("/api/delete", &[("path", "content/blog/hello-world.md")])).await)["go"],
        "/pages"
    );
}

/// The preview frame shows the site, which any writer's pages, theme or plugins can script: what
/// it posts to the app's actions is refused, whether by fetch (its `Referer`) or by a form
/// (its `Origin`), and so is a post that says where it comes from not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_not_sent_by_the_apps_own_screens_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    let person = [("id", "mallory"), ("admin", "1")];
    for sender in [Some("wcms://preview"), Some("null"), Some("wcms://localhost.evil"), None] {
        for request in [post("/api/person", &person), submit("/api/person", &person)] {
            let refused = app.handle(Request { sender: sender.map(str::to_string), ..request }).await;
            assert_eq!(refused.status, 403, "{sender:?}: {}", text(&refused));
        }
        let delete = post("/api/delete", &[("path", "content/about.md")]);
        assert_eq!(app.handle(Request { sender: sender.map(str::to_string), ..delete }).await.status, 403);
    }
    assert!(site.join("content/about.md").exists());
    let users = std::fs::read_to_string(site.join("access/users.toml")).unwrap_or_default();
    assert!(!users.contains("mallory"), "{users}");
    // The app's own screens still act.
    assert_eq!(json(&app.handle(post("/api/delete", &[("path", "content/about.md")])).await)["go"], "/pages");
    assert!(!site.join("content/about.md").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_delete_history_undo_and_restore() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    // Move: the editor opens at the new place; the old address redirects in the preview.
    let answer =
        json(&app.handle(post("/api/move", &[("path", "content/about.md"), ("to", "content/company/about")])).await);
    assert_eq!(answer["go"], "/edit?path=content/company/about.md");
    let old = app
        .handle(Request {
            method: "GET".into(),
            host: "preview".into(),
            path: "/about/".into(),
            query: String::new(),
            body: vec![],
            navigation: false,
            sender: None,
        })
        .await;
    assert!(
        matches!(old.status, 301 | 302 | 308) || text(&old).contains("/company/about/"),
        "{} {}",
        old.status,
        text(&old)
    );
    // A section moves with its pages.
    let section =
        json(&app.handle(post("/api/move", &[("path", "content/blog/_index.md"), ("to", "content/journal")])).await);
    assert_eq!(section["go"], "/edit?path=content/journal/_index.md");
    assert!(site.join("content/journal/hello-world.md").exists() && !site.join("content/blog").exists());
    let refused =
        json(&app.handle(post("/api/move", &[("path", "content/company/about.md"), ("to", "../../x")])).await);
    assert!(refused["error"].is_string(), "{refused}");
    app.handle(post("/api/save", &[("message", "Move about")])).await;

    // Delete, save; History lists the page as removed and restores it.
    let answer = json(&app.handle(post("/api/delete", &[("path", "content/company/about.md")])).await);
    assert_eq!(answer["go"], "/pages");
    app.handle(post("/api/save", &[("message", "Remove about")])).await;
    let history = text(&app.handle(get("/history")).await);
    assert!(history.contains("Removed pages") && history.contains("content/company/about.md"), "{history}");
    let from = history.split("name=\"from\" value=\"").nth(1).unwrap()[..40].to_string();
    let answer =
        json(&app.handle(post("/api/restore", &[("path", "content/company/about.md"), ("from", &from)])).await);
    assert_eq!(answer["go"], "/edit?path=content/company/about.md");
    assert!(site.join("content/company/about.md").exists());

    // A save shows its diff; undoing it is a new save, and a bad id is an error, not a crash.
    let id = history.split("/history/save?id=").nth(1).unwrap()[..40].to_string();
    let one = text(&app.handle(get(&format!("/history/save?id={id}"))).await);
    assert!(one.contains("Remove about") && one.contains("class=\"del\"") && one.contains("Undo this change"), "{one}");
    let undo = json(&app.handle(post("/api/undo", &[("id", &id)])).await);
    assert!(undo["error"].as_str().unwrap().contains("changed again"), "restored since: {undo}");
    assert_eq!(app.handle(get("/history/save?id=nothex")).await.status, 500);
    assert_eq!(app.handle(get(&format!("/history/save?id={}", "0".repeat(40)))).await.status, 404);
    let latest = text(&app.handle(get("/history")).await);
    let restore_id = latest.split("/history/save?id=").nth(1).unwrap()[..40].to_string();
    assert_eq!(json(&app.handle(post("/api/undo", &[("id", &restore_id)])).await)["go"], "/history");
    assert!(!site.join("content/company/about.md").exists(), "undoing the restore removes it again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_upload_beside_a_page_and_for_the_site() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"4\" height=\"4\"/>".to_vec();
    let upload = |query: &str, body: Vec<u8>| Request {
        method: "POST".into(),
        host: "localhost".into(),
        path: "/api/upload".into(),
        query: query.into(),
        body,
        navigation: false,
        sender: Some(desktop_app::APP_ORIGIN.into()),
    };
    let answer = json(&app.handle(upload("page=content%2Fabout.md&name=Logo%20Big.svg", svg.clone())).await);
    assert_eq!(answer["page"], "content/about/index.md", "{answer}");
    assert_eq!(answer["markdown"], "![logo big](logo-big.svg)");
    assert_eq!(std::fs::read(site.join("content/about/logo-big.svg")).unwrap(), svg);
    // The preview serves it where the page's Markdown points.
    let served = app
        .handle(Request {
            method: "GET".into(),
            host: "preview".into(),
            path: "/about/logo-big.svg".into(),
            query: String::new(),
            body: vec![],
            navigation: false,
            sender: None,
        })
        .await;
    assert_eq!((served.status, served.body.clone()), (200, svg.clone()));
    let answer = json(&app.handle(upload("name=Price%20list.pdf", b"%PDF-1.7".to_vec())).await);
    assert_eq!(answer["path"], "static/media/price-list.pdf");
    let refused = json(&app.handle(upload("name=page.md", b"+++".to_vec())).await);
    assert!(refused["error"].is_string());
    let media = text(&app.handle(get("/media")).await);
    assert!(
        media.contains("content/about/logo-big.svg") && media.contains("wcms://preview/about/logo-big.svg"),
        "{media}"
    );
    assert!(media.contains("static/media/price-list.pdf") && media.contains("Not used by any page"), "{media}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_settings_plugins_and_people() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    let screen = text(&app.handle(get("/site")).await);
    assert!(
        screen.contains("Whisper Notes") && screen.contains("reading-time") && screen.contains("The built-in theme"),
        "{screen}"
    );
    let general = [
        ("what", "general"),
        ("title", "Shed notes"),
        ("description", "d"),
        ("base_url", "https://shed.example"),
        ("default_language", "en"),
        ("paginate_by", "8"),
    ];
    assert_eq!(json(&app.handle(post("/api/site", &general)).await)["go"], "/site");
    let toml = std::fs::read_to_string(site.join("site.toml")).unwrap();
    assert!(toml.contains("title = \"Shed notes\"") && toml.contains("paginate_by = 8"), "{toml}");
    let bad = json(&app.handle(post("/api/site", &[("what", "general"), ("title", "x"), ("paginate_by", "0")])).await);
    assert!(bad["error"].is_string(), "{bad}");
    // A plugin off (the checkbox absent), a setting typed like its default.
    json(&app.handle(post("/api/site", &[("what", "plugin"), ("name", "toc")])).await);
    assert!(!std::fs::read_to_string(site.join("site.toml")).unwrap().contains("\"toc\""));
    json(
        &app.handle(post(
            "/api/site",
            &[("what", "setting"), ("name", "reading-time"), ("key", "words_per_minute"), ("value", "300")],
        ))
        .await,
    );
    assert!(std::fs::read_to_string(site.join("site.toml")).unwrap().contains("words_per_minute = 300"));
    // The preview follows at once.
    let home = app
        .handle(Request {
            method: "GET".into(),
            host: "preview".into(),
            path: "/".into(),
            query: String::new(),
            body: vec![],
            navigation: false,
            sender: None,
        })
        .await;
    assert!(text(&home).contains("Shed notes"));
    // People: a new key made here, the person added with it.
    let key = json(&app.handle(post("/api/key", &[("email", "ada@example.org")])).await);
    let key_path = key["fill"]["key"].as_str().unwrap().to_string();
    assert!(key_path.starts_with(&tmp.path().display().to_string()), "made beside the settings: {key_path}");
    let public = std::fs::read_to_string(format!("{key_path}.pub")).unwrap();
    assert!(key["html"].as_str().unwrap().contains(public.trim()));
    let answer = json(
        &app.handle(post("/api/person", &[("id", "ada"), ("name", "Ada"), ("key", public.trim()), ("admin", "1")]))
            .await,
    );
    assert_eq!(answer["go"], "/site#people");
    let users = std::fs::read_to_string(site.join("access/users.toml")).unwrap();
    assert!(users.contains("id = \"ada\"") && users.contains("roles = [\"admin\"]"), "{users}");
    let bad = json(&app.handle(post("/api/person", &[("id", "bob"), ("key", "ssh-ed25519 junk")])).await);
    assert!(bad["error"].as_str().unwrap().contains("not an OpenSSH public key"), "{bad}");
    assert!(text(&app.handle(get("/site")).await).contains("Ada (ada)"));

    // Secrets: this computer's key, a value set (encrypted, never shown again), Ada's key for
    // secrets added under People so the next version is encrypted to her too.
    let keyring = App::install_secrets_keyring(&tmp.path().join("desktop.toml")).unwrap();
    let mine = keyring.primary().unwrap().recipient();
    let page = text(&app.handle(get("/site")).await);
    assert!(page.contains(&mine) && page.contains("id=\"secrets\""), "{page}");
    let set = [("file", "webhooks.yaml"), ("key", "contact.token"), ("value", "tok-9182736455")];
    assert_eq!(json(&app.handle(post("/api/secret", &set)).await)["go"], "/site#secrets");
    let file = std::fs::read_to_string(site.join("secrets/webhooks.yaml")).unwrap();
    assert!(!file.contains("tok-9182736455") && file.contains(&mine), "{file}");
    let page = text(&app.handle(get("/site")).await);
    assert!(page.contains("secrets/webhooks.yaml") && page.contains("contact.token"), "{page}");
    assert!(!page.contains("tok-9182736455"));
    let ada_age = secrets::Identity::generate().recipient();
    let answer = json(&app.handle(post("/api/person", &[("id", "ada"), ("age", &ada_age), ("admin", "1")])).await);
    assert_eq!(answer["go"], "/site#people", "{answer}");
    assert!(std::fs::read_to_string(site.join("access/users.toml")).unwrap().contains(&ada_age));
    let set = [("file", "webhooks.yaml"), ("key", "contact.url"), ("value", "https://hooks.example.org/x")];
    assert_eq!(json(&app.handle(post("/api/secret", &set)).await)["go"], "/site#secrets");
    let file = std::fs::read_to_string(site.join("secrets/webhooks.yaml")).unwrap();
    assert!(file.contains(&ada_age), "now also encrypted to Ada: {file}");
    let bad = json(&app.handle(post("/api/person", &[("id", "ada"), ("age", "age1junk"), ("admin", "1")])).await);
    assert!(bad["error"].as_str().unwrap().contains("not an age recipient"), "{bad}");
    let bad = json(&app.handle(post("/api/secret", &[("file", "notes.md"), ("key", "a"), ("value", "b")])).await);
    assert!(bad["error"].as_str().unwrap().contains("only ROPS documents"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_changed_a_page_compare_and_choose() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    let git = |args: &[&str]| support::git(&site, args);
    // What the server has (as last fetched): Bob's edit of the about page, made with git.
    git(&["checkout", "-q", "-b", "bob"]);
    std::fs::write(site.join("content/about.md"), "+++\ntitle = \"Bob's about\"\n+++\nBob wrote this.\n").unwrap();
    git(&["commit", "-qam", "Bob's edit"]);
    git(&["update-ref", "refs/remotes/origin/main", "bob"]);
    git(&["checkout", "-q", "main"]);
    // Ours: the same page, in the app.
    json(
        &app.handle(post(
            "/api/page",
            &[("path", "content/about.md"), ("title", "Ada's about"), ("body", "Ada wrote this.")],
        ))
        .await,
    );
    json(&app.handle(post("/api/save", &[("message", "Ada's edit")])).await);

    let screen = text(&app.handle(get("/conflicts?branch=main")).await);
    assert!(screen.contains("Ada wrote this.") && screen.contains("Bob wrote this."), "{screen}");
    assert!(screen.contains("name=\"keep:content/about.md\""), "{screen}");
    let missing = json(&app.handle(post("/api/resolve", &[("branch", "main")])).await);
    assert!(missing["error"].as_str().unwrap().contains("choose"), "{missing}");
    let done =
        json(&app.handle(post("/api/resolve", &[("branch", "main"), ("keep:content/about.md", "theirs")])).await);
    assert_eq!(done["go"], "/publish");
    let about = std::fs::read_to_string(site.join("content/about.md")).unwrap();
    assert!(about.contains("Bob wrote this."), "{about}");
    assert!(text(&app.handle(get("/conflicts?branch=main")).await).contains("Nothing to choose"));
    // git agrees: a merge of both, nothing left uncommitted.
    let log = std::process::Command::new("git").args(["log", "-1", "--format=%P"]).current_dir(&site).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&log.stdout).split_whitespace().count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_review_board_and_a_publish_that_waits_for_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let app = new_site(tmp.path()).await;
    let site = tmp.path().join("site");
    let git = |args: &[&str]| support::git(&site, args);
    // As last fetched: the starter is live, one save in review, one draft.
    git(&["update-ref", "refs/remotes/origin/main", "HEAD"]);
    json(&app.handle(post("/api/page", &[("path", "content/about.md"), ("title", "Reviewed about")])).await);
    json(&app.handle(post("/api/save", &[("message", "Reviewed about")])).await);
    git(&["update-ref", "refs/remotes/origin/admin", "HEAD"]);
    json(&app.handle(post("/api/page", &[("path", "content/about.md"), ("title", "Draft about")])).await);
    json(&app.handle(post("/api/save", &[("message", "Draft about")])).await);
    let board = text(&app.handle(get("/review")).await);
    let column = |name: &str| {
        let start = board.find(&format!("aria-label=\"{name}\"")).unwrap();
        board[start..start + board[start..].find("</section>").unwrap()].to_string()
    };
    assert!(column("Draft").contains("Draft about") && !column("Draft").contains("Reviewed about"), "{board}");
    assert!(
        column("In review").contains("Reviewed about") && column("In review").contains("Publish what is in review")
    );
    assert!(column("Live").contains("Start the site"), "{board}");

    // No server reachable: the publish waits, the status line says so, a retry keeps waiting.
    let settings = tmp.path().join("config/desktop.toml");
    let mut text_settings = std::fs::read_to_string(&settings).unwrap();
    text_settings.push_str("remote = \"ssh://git@127.0.0.1:1/site.git\"\n");
    std::fs::write(&settings, text_settings).unwrap();
    let app = App::new(settings).unwrap();
    let answer = json(&app.handle(post("/api/publish", &[("branch", "main"), ("message", "x")])).await);
    assert!(answer["html"].as_str().unwrap().contains("will publish by themselves"), "{answer}");
    assert!(answer["status"].as_str().unwrap().starts_with("Offline — 2 save(s) will publish"), "{answer}");
    assert_eq!(app.retry_pending().await, None, "still offline: nothing to say");
    let review = json(&app.handle(post("/api/review/publish", &[])).await);
    assert!(review["error"].as_str().unwrap().contains("cannot be reached"), "{review}");
}
