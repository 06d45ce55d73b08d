//! Adding a plugin from a Git address on the *Site* screen: fetched over HTTPS (`git
//! http-backend` behind TLS with a private CA, trusted through `SSL_CERT_FILE` as the system's
//! roots are), shown with what it asks for, added only when agreed.

#[path = "../../../githost/tests/client/http_backend.rs"]
#[allow(dead_code)]
mod http_backend;

mod support;

use desktop_app::App;
use support::{get, git, json, post, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_from_a_git_address_is_shown_then_added() {
    let tmp = tempfile::tempdir().unwrap();
    let hosted = tmp.path().join("hosted");
    let work = tmp.path().join("work");
    std::fs::create_dir_all(&hosted).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    std::fs::write(
        work.join("plugin.toml"),
        "name = \"shout\"\nversion = \"1.2.0\"\ndescription = \"Makes headings loud.\"\n\
         capabilities = [\"form.submit\"]\nfilters = [\"page_html\"]\n",
    )
    .unwrap();
    std::fs::write(work.join("main.rhai"), "fn page_html(html, page) { html }\n").unwrap();
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "shout"]);
    git(&hosted, &["clone", "-q", "--bare", &work.display().to_string(), "shout.git"]);
    let backend = http_backend::HttpBackend::start(&hosted, "a-token");
    // The private CA stands for the system's roots (rustls-native-certs reads SSL_CERT_FILE).
    std::env::set_var("SSL_CERT_FILE", &backend.ca);

    let app = App::new(tmp.path().join("config/desktop.toml")).unwrap();
    let folder = tmp.path().join("site").display().to_string();
    json(&app.handle(post("/api/setup", &[("how", "new"), ("folder", &folder)])).await);
    let url = backend.url("shout.git");

    // Without the token: refused in words, nothing added.
    let refused = json(&app.handle(post("/api/extension", &[("url", &url)])).await);
    assert!(refused["error"].is_string(), "{refused}");
    // With it: shown with what it asks for.
    let shown = json(&app.handle(post("/api/extension", &[("url", &url), ("token", "a-token")])).await);
    let html = shown["html"].as_str().unwrap();
    assert!(
        html.contains("shout") && html.contains("1.2.0") && html.contains("receive what visitors type into forms"),
        "{html}"
    );
    assert!(!tmp.path().join("site/plugins/shout").exists(), "nothing is added before the person agrees");
    let commit = html.split("name=\"commit\" value=\"").nth(1).unwrap()[..40].to_string();
    // Only what was shown is added.
    let stale = json(&app.handle(post("/api/extension/add", &[("url", &url), ("commit", &"0".repeat(40))])).await);
    assert!(stale["error"].is_string(), "{stale}");
    let shown = json(&app.handle(post("/api/extension", &[("url", &url), ("token", "a-token")])).await);
    assert!(shown["html"].is_string());
    let added = json(&app.handle(post("/api/extension/add", &[("url", &url), ("commit", &commit)])).await);
    assert_eq!(added["go"], "/site");
    assert!(tmp.path().join("site/plugins/shout/SOURCE.toml").exists());
    let site = text(&app.handle(get("/site")).await);
    assert!(site.contains(&format!("Added from {url}")), "{site}");
    // An SSH address of another server is refused (its host key was never checked).
    let ssh = json(&app.handle(post("/api/extension", &[("url", "ssh://git@127.0.0.1:1/x.git")])).await);
    assert!(ssh["error"].as_str().unwrap().contains("https://"), "{ssh}");
}
