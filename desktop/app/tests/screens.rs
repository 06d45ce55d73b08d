//! The app's screens and actions without a window: requests as the web view sends them.

use desktop_app::{App, Request};

fn get(path: &str) -> Request {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    Request { method: "GET".into(), host: "localhost".into(), path: path.into(), query: query.into(), body: vec![] }
}

fn post(path: &str, form: &[(&str, &str)]) -> Request {
    let body = serde_urlencoded::to_string(form).unwrap().into_bytes();
    Request { method: "POST".into(), host: "localhost".into(), path: path.into(), query: String::new(), body }
}

fn text(r: &desktop_app::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
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
    assert!(found.contains("Hello, world") && !found.contains("content/about.md"), "{found}");

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
    let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(json["saved"], true, "{json}");
    let on_disk = std::fs::read_to_string(folder.join("content/about.md")).unwrap();
    assert!(on_disk.contains("title = \"About us <3\"") && on_disk.contains("tags = [\"a\", \"b\"]"), "{on_disk}");
    let preview = app
        .handle(Request {
            method: "GET".into(),
            host: "preview".into(),
            path: "/about/".into(),
            query: String::new(),
            body: vec![],
        })
        .await;
    assert_eq!(preview.status, 200);
    assert!(
        text(&preview).contains("About us &lt;3") && text(&preview).contains("<em>there</em>"),
        "{}",
        text(&preview)
    );

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
    let history = text(&app.handle(get("/history")).await);
    assert!(history.contains("Retitle about"), "the save happened: {history}");
    assert!(text(&app.handle(get("/app.css")).await).contains("--accent"));
    assert_eq!(app.handle(get("/nothing")).await.status, 404);
}
