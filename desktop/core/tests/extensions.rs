//! Extensions from a Git source, fetched over HTTPS from `git http-backend` (the reference
//! server of the client's tests), inspected, vendored and checked by the server's validation.

#[path = "../../../githost/tests/client/http_backend.rs"]
#[allow(dead_code)]
mod http_backend;

use std::path::Path;
use std::process::Command;

use desktop_core::extensions::{self, Kind};
use desktop_core::save::Author;
use desktop_core::Workspace;
use githost::client::{HttpConnection, HttpOptions, RemoteUrl, Token};

fn author() -> Author {
    Author { name: "Ada".into(), email: "ada@example.org".into() }
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=T", "-c", "user.email=t@example.org", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A bare repository `name.git` under `root` holding `files` in one commit.
fn repo(root: &Path, name: &str, files: &[(&str, &str)]) {
    let work = root.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    for (path, text) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-qm", "extension"]);
    git(root, &["clone", "-q", "--bare", &work.display().to_string(), &format!("{name}.git")]);
}

async fn connect(backend: &http_backend::HttpBackend, name: &str) -> (HttpConnection, String) {
    let url = backend.url(&format!("{name}.git"));
    let options = HttpOptions {
        token: Some(Token::new(&backend.token).unwrap()),
        ca_file: Some(backend.ca.clone()),
        ..HttpOptions::default()
    };
    (HttpConnection::connect(&RemoteUrl::parse(&url).unwrap(), options).await.unwrap(), url)
}

const PLUGIN: &str = "name = \"word-count\"\nversion = \"0.3.0\"\ndescription = \"Counts words.\"\n\
                      capabilities = [\"content.read\", \"http.route\"]\nfilters = [\"page_html\"]\n\
                      [[route]]\npath = \"/api/words\"\nhandler = \"words\"\n";
const SCRIPT: &str = "fn page_html(html, page) { html }\nfn words(request) { #{ json: #{ words: 0 } } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_is_shown_with_its_capabilities_then_vendored_with_its_source() {
    let tmp = tempfile::tempdir().unwrap();
    let hosted = tmp.path().join("hosted");
    std::fs::create_dir_all(&hosted).unwrap();
    repo(&hosted, "word-count", &[("plugin.toml", PLUGIN), ("main.rhai", SCRIPT), ("README.md", "# Word count\n")]);
    let backend = http_backend::HttpBackend::start(&hosted, "token-for-extensions");
    let ws = Workspace::create_from_starter(tmp.path().join("site"), &author()).unwrap();

    let (conn, url) = connect(&backend, "word-count").await;
    let offer = extensions::fetch(&ws, &conn, &url).await.unwrap();
    assert_eq!((offer.kind, offer.name.as_str(), offer.version.as_str()), (Kind::Plugin, "word-count", "0.3.0"));
    assert_eq!(offer.capabilities, ["content.read", "http.route"]);
    assert!(!offer.replaces);
    assert!(!ws.dir().join("plugins/word-count").exists(), "nothing is added before the person agrees");

    assert_eq!(offer.vendor(&ws).unwrap(), "plugins/word-count");
    assert_eq!(std::fs::read_to_string(ws.dir().join("plugins/word-count/main.rhai")).unwrap(), SCRIPT);
    let (source, commit) = extensions::source_of(&ws, Kind::Plugin, "word-count").unwrap();
    assert_eq!((source, commit), (url.clone(), offer.commit.to_string()));
    let config = desktop_core::site::config(&ws).unwrap();
    assert!(config.plugins.contains(&"word-count".to_string()), "enabled");
    // The server's own checks accept the site with it, and the preview runs it.
    ws.save("Add word-count", &author()).unwrap();
    assert_eq!(ws.check("main").unwrap(), vec![]);
    let preview = desktop_core::preview::Preview::open(&ws).unwrap();
    preview.refresh(&ws).unwrap();
    let answer = preview.get("/api/words").await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(
        String::from_utf8_lossy(&answer.body).contains("\"words\":0"),
        "{:?}",
        String::from_utf8_lossy(&answer.body)
    );

    // Fetched again, it would replace the one there.
    let (conn, url) = connect(&backend, "word-count").await;
    assert!(extensions::fetch(&ws, &conn, &url).await.unwrap().replaces);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_an_extension_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let hosted = tmp.path().join("hosted");
    std::fs::create_dir_all(&hosted).unwrap();
    repo(&hosted, "plain", &[("README.md", "just a repo\n")]);
    repo(&hosted, "bad-cap", &[("plugin.toml", &PLUGIN.replace("http.route", "root.shell")), ("main.rhai", SCRIPT)]);
    repo(&hosted, "evil-name", &[("plugin.toml", &PLUGIN.replace("word-count", "../../etc")), ("main.rhai", SCRIPT)]);
    repo(
        &hosted,
        "theme",
        &[
            (
                "theme.toml",
                "name = \"paper\"\nversion = \"2\"\n[content_security_policy]\nimg-src = [\"https://img.example\"]\n",
            ),
            ("templates/page.html", "{{ page.title }}"),
        ],
    );
    let backend = http_backend::HttpBackend::start(&hosted, "token-for-extensions");
    let ws = Workspace::create_from_starter(tmp.path().join("site"), &author()).unwrap();
    for (name, expected) in [("plain", "not an extension"), ("bad-cap", "root.shell"), ("evil-name", "must be")] {
        let (conn, url) = connect(&backend, name).await;
        let err = extensions::fetch(&ws, &conn, &url).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{name}: {err}");
    }
    assert!(!ws.dir().join("plugins/..").join("etc").exists());
    // A theme: no capabilities, but what it adds to the site's CSP is shown.
    let (conn, url) = connect(&backend, "theme").await;
    let offer = extensions::fetch(&ws, &conn, &url).await.unwrap();
    assert_eq!((offer.kind, offer.csp.clone()), (Kind::Theme, vec!["img-src: https://img.example".to_string()]));
    assert_eq!(offer.vendor(&ws).unwrap(), "themes/paper");
    assert!(ws.dir().join("themes/paper/templates/page.html").exists());
}
