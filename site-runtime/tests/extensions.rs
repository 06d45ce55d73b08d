//! Extensions through the router: the starter site's plugins, capabilities granted and denied,
//! every sandbox limit tripped with the site still answering, repeated failures disabling a
//! plugin, `on_publish`, theme scripts, and a hot swap under load that never mixes versions.

mod common;
use common::{commit_all, git, write};

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use site_runtime::extensions::{self, Capabilities, Outbox};
use site_runtime::Site;
use tower::ServiceExt;

/// Script allocations are counted as in the server.
#[global_allocator]
static ALLOCATOR: extensions::memory::CountingAllocator = extensions::memory::CountingAllocator(std::alloc::System);

/// Grants every declared capability (a site policy that permits side effects).
struct AllowDeclared;

impl Capabilities for AllowDeclared {
    fn check(&self, unit: &str, declared: &[String], capability: &str) -> Result<(), String> {
        declared.iter().any(|d| d == capability).then_some(()).ok_or_else(|| format!("{unit}: {capability} undeclared"))
    }
}

/// Remembers deliveries.
#[derive(Default)]
struct Captured(Mutex<Vec<(String, serde_json::Value)>>);

impl Outbox for Captured {
    fn send(&self, name: &str, payload: serde_json::Value) -> Result<(), String> {
        self.0.lock().unwrap().push((name.to_string(), payload));
        Ok(())
    }
}

/// Every snapshot's outbox is the one `Captured`.
struct Capturing(Arc<Captured>);

impl extensions::Outbound for Capturing {
    fn outbox_for(&self, _repo: &gix::Repository, _commit: gix::ObjectId) -> Arc<dyn Outbox> {
        self.0.clone()
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    work: std::path::PathBuf,
    site: Arc<Site>,
}

/// The starter site (with its plugins) plus `extra` files, published.
fn fixture(extra: &[(&str, &str)], options: Option<extensions::Options>) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("site");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    for (path, text) in site_runtime::starter::FILES.iter().chain(extra) {
        write(&work, path, text);
    }
    write(
        &work,
        "content/blog/long.md",
        "+++\ntitle = \"Long read\"\ndate = 2024-03-01\ntags = [\"git\"]\n+++\n## One\n\ntext\n\n## Two\n\ntext\n\n## Three & more\n\ntext\n",
    );
    let head = commit_all(&work, "first");
    let site = Site::open(&work.join(".git"), "main", tmp.path().join("index/main.sqlite")).unwrap();
    if let Some(o) = options {
        site.set_extension_options(o);
    }
    site.publish(head, &mut |_| {}).unwrap();
    Fixture { _tmp: tmp, work, site: Arc::new(site) }
}

async fn request(site: &Arc<Site>, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/x-www-form-urlencoded");
    }
    let req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_default()).unwrap();
    let resp = site_runtime::http::router(site.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get(site: &Arc<Site>, uri: &str) -> (StatusCode, String) {
    request(site, "GET", uri, None).await
}

#[tokio::test]
async fn the_starter_plugins_filter_pages_and_serve_routes() {
    let outbox = Arc::new(Captured::default());
    let options = extensions::Options {
        capabilities: Arc::new(AllowDeclared),
        outbound: Arc::new(Capturing(outbox.clone())),
        ..extensions::Options::default()
    };
    let f = fixture(&[], Some(options));
    let (status, page) = get(&f.site, "/blog/long/").await;
    assert_eq!(status, StatusCode::OK);
    // A dated page shows its reading time once, in the theme's meta line; the plugin adds it to
    // pages without a date.
    assert_eq!(page.matches("min read").count(), 1, "reading time once: {page}");
    assert!(!page.contains("<p class=\"reading-time\">"), "{page}");
    let (_, about) = get(&f.site, "/about/").await;
    assert!(about.contains("<p class=\"reading-time\">1 min read</p>"), "reading time: {about}");
    assert!(page.contains("<nav class=\"toc\""), "table of contents: {page}");
    assert!(page.contains("Three &amp; more</a></li>"), "headings are escaped: {page}");
    // related_posts(page, 3) from the default theme: pages sharing the tag `git`.
    assert!(page.contains("<aside class=\"related\">") && page.contains("/blog/hello-world/"), "related: {page}");
    let (_, short) = get(&f.site, "/about/").await;
    assert!(!short.contains("class=\"toc\""), "no contents for pages with few headings");

    let (status, json) = get(&f.site, "/api/search?q=git").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["query"], "git");
    assert!(!json["results"].as_array().unwrap().is_empty(), "{json}");

    let (status, form) = get(&f.site, "/contact/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        form.contains("<form class=\"contact\"") && form.contains("<title>Contact · Whisper Notes</title>"),
        "{form}"
    );
    let (status, refused) = request(&f.site, "POST", "/contact/send", Some("name=&email=x&message=")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("Please give your name, an email address, a message."), "{refused}");
    assert!(outbox.0.lock().unwrap().is_empty());
    let body = "name=Ada&email=ada%40example.org&message=Hello+%3Cthere%3E";
    let (status, thanks) = request(&f.site, "POST", "/contact/send", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{thanks}");
    assert!(thanks.contains("Your message is on its way."));
    let sent = outbox.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, "contact");
    assert_eq!(sent[0].1["message"], "Hello <there>");
    // Other methods on plugin paths are refused; the rest of the site is untouched.
    assert_eq!(request(&f.site, "POST", "/api/search", Some("q=x")).await.0, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get(&f.site, "/blog/").await.0, StatusCode::OK);
}

#[tokio::test]
async fn capabilities_are_checked_on_every_call() {
    // The default capabilities: declared reads are fine, side effects need a policy.
    let f = fixture(&[], None);
    assert_eq!(get(&f.site, "/api/search?q=git").await.0, StatusCode::OK);
    let body = "name=Ada&email=ada%40example.org&message=Hi";
    let (status, text) = request(&f.site, "POST", "/contact/send", Some(body)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "the webhook is not granted: {text}");
    assert_eq!(text, "this page is temporarily unavailable\n");

    // A policy that denies one capability at run time: forms may no longer be submitted.
    struct NoForms;
    impl Capabilities for NoForms {
        fn check(&self, unit: &str, declared: &[String], capability: &str) -> Result<(), String> {
            if capability == "form.submit" {
                return Err(format!("{unit}: forms are switched off"));
            }
            AllowDeclared.check(unit, declared, capability)
        }
    }
    let options = extensions::Options { capabilities: Arc::new(NoForms), ..extensions::Options::default() };
    let no_forms = fixture(&[], Some(options));
    assert_eq!(get(&no_forms.site, "/contact/").await.0, StatusCode::OK, "http.route is granted");
    assert_eq!(request(&no_forms.site, "POST", "/contact/send", Some(body)).await.0, StatusCode::INTERNAL_SERVER_ERROR);

    // A plugin reading content without declaring it.
    let sneaky = fixture(
        &[
            ("site.toml", "title = \"x\"\nplugins = [\"sneaky\"]\n"),
            (
                "plugins/sneaky/plugin.toml",
                "name = \"sneaky\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\n[[route]]\npath = \"/peek\"\nhandler = \"peek\"\n",
            ),
            ("plugins/sneaky/main.rhai", "fn peek(request) { #{ json: site_search(\"git\", 5) } }"),
        ],
        None,
    );
    assert_eq!(get(&sneaky.site, "/peek").await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(get(&sneaky.site, "/about/").await.0, StatusCode::OK);
}

const RUNAWAY: &str = r#"
fn page_html(html, page) { if page.url == "/about/" { loop {} } html + "<!--filtered-->" }
fn deep(request) { fn_deep(0) }
fn fn_deep(n) { fn_deep(n + 1) }
fn huge(request) { let s = "x"; loop { s += s; } }
fn grow(request) { let big = "x"; for i in 0..16 { big += big; } let m = #{}; let i = 0; loop { m[big + i] = i; i += 1; } }
fn slow(request) { let x = 0; loop { x += 1; } }
fn ok(request) { #{ body: "fine" } }
"#;

const RUNAWAY_MANIFEST: &str = r#"
name = "runaway"
version = "1"
capabilities = ["http.route"]
filters = ["page_html"]
[[route]]
path = "/deep"
handler = "deep"
[[route]]
path = "/huge"
handler = "huge"
[[route]]
path = "/grow"
handler = "grow"
[[route]]
path = "/slow"
handler = "slow"
[[route]]
path = "/ok"
handler = "ok"
"#;

#[tokio::test]
async fn every_limit_stops_a_runaway_plugin_and_the_site_keeps_serving() {
    let limits = extensions::Limits { max_call_ms: 300, failures_before_disable: 5, ..extensions::Limits::default() };
    let f = fixture(
        &[
            ("site.toml", "title = \"x\"\nplugins = [\"runaway\"]\n"),
            ("plugins/runaway/plugin.toml", RUNAWAY_MANIFEST),
            ("plugins/runaway/main.rhai", RUNAWAY),
        ],
        Some(extensions::Options { limits, ..extensions::Options::default() }),
    );
    // An endless filter: the page is served without it.
    let (status, about) = get(&f.site, "/about/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(about.contains("WhisperCMS") && !about.contains("<!--filtered-->"), "{about}");
    for path in ["/deep", "/huge", "/grow"] {
        let (status, _) = get(&f.site, path).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        // Between failures, a healthy call resets the count.
        assert_eq!(get(&f.site, "/ok").await, (StatusCode::OK, "fine".to_string()));
    }
    assert!(f.site.snapshot().unwrap().extensions.disabled().is_empty());
    // Five failures in a row disable the plugin for this snapshot.
    for _ in 0..5 {
        assert_eq!(get(&f.site, "/slow").await.0, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(f.site.snapshot().unwrap().extensions.disabled(), ["runaway"]);
    assert_eq!(get(&f.site, "/ok").await.0, StatusCode::INTERNAL_SERVER_ERROR, "disabled");
    let (status, blog) = get(&f.site, "/blog/hello-world/").await;
    assert_eq!(status, StatusCode::OK, "the site keeps serving");
    assert!(!blog.contains("<!--filtered-->"));
    // A new snapshot (a push with a fix) enables it again.
    write(&f.work, "plugins/runaway/main.rhai", &RUNAWAY.replace("loop { x += 1; }", "#{ body: \"fast\" }"));
    let head = commit_all(&f.work, "fix");
    f.site.publish(head, &mut |_| {}).unwrap();
    assert_eq!(get(&f.site, "/slow").await, (StatusCode::OK, "fast".to_string()));
}

#[tokio::test]
async fn on_publish_gets_the_changed_pages() {
    let outbox = Arc::new(Captured::default());
    let options = extensions::Options {
        capabilities: Arc::new(AllowDeclared),
        outbound: Arc::new(Capturing(outbox.clone())),
        ..extensions::Options::default()
    };
    let f = fixture(
        &[
            ("site.toml", "title = \"x\"\nplugins = [\"notify\"]\n"),
            (
                "plugins/notify/plugin.toml",
                "name = \"notify\"\nversion = \"1\"\ncapabilities = [\"outbound.webhook:builds\"]\nevents = [\"on_publish\"]\n",
            ),
            ("plugins/notify/main.rhai", "fn on_publish(change) { webhook(\"builds\", change); }"),
        ],
        Some(options),
    );
    write(&f.work, "content/about.md", "+++\ntitle = \"About\"\n+++\nChanged.\n");
    let head = commit_all(&f.work, "edit");
    let published = f.site.publish(head, &mut |_| {}).unwrap();
    assert!(published.notes.is_empty(), "{:?}", published.notes);
    let sent = outbox.0.lock().unwrap().clone();
    let last = &sent.last().unwrap().1;
    assert_eq!(last["pages"], serde_json::json!(["/about/"]));
    assert_eq!(last["commit"], head.to_string());
}

#[tokio::test]
async fn theme_scripts_give_templates_functions_and_filters() {
    let f = fixture(
        &[
            ("site.toml", "title = \"x\"\ntheme = \"t\"\n"),
            ("themes/t/theme.toml", "name = \"t\"\n"),
            (
                "themes/t/helpers.rhai",
                "fn shout(s) { s.to_upper() + \"!\" }\nfn pages_in(section) { site_pages(section, 2).len() }\n\
                 fn sections() { site_sections().len() }\nprivate fn hidden() { 1 }",
            ),
            (
                "themes/t/templates/page.html",
                "{{ shout(page.title) }}|{{ page.title | shout }}|{{ pages_in('/blog/') }}|{{ sections() }}|{{ hidden is defined }}",
            ),
        ],
        None,
    );
    assert_eq!(get(&f.site, "/about/").await.1, "ABOUT!|ABOUT!|2|2|False");
}

#[tokio::test]
async fn broken_extensions_refuse_the_publish_with_file_and_line() {
    let f = fixture(&[], None);
    for (path, text, expected) in [
        ("plugins/toc/main.rhai", "fn page_html(html, page) {\n  let x = ;\n}", "plugins/toc/main.rhai: line 2"),
        (
            "plugins/toc/main.rhai",
            "fn page_htm(html, page) { html }",
            "filter page_html needs `fn page_html` with 2 parameter(s)",
        ),
        (
            "plugins/toc/plugin.toml",
            "name = \"toc\"\nversion = \"1\"\nfilters = [\"page_html\"]\nhooks = 1\n",
            "plugins/toc/plugin.toml: line 4: unknown field `hooks`",
        ),
    ] {
        let before = std::fs::read_to_string(f.work.join(path)).unwrap();
        write(&f.work, path, text);
        let head = commit_all(&f.work, "broken");
        let err = f.site.publish(head, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains(expected), "{expected:?} in {err}");
        write(&f.work, path, &before);
    }
    let problems = {
        let repo = gix::open(f.work.join(".git")).unwrap();
        write(&f.work, "site.toml", "title = \"x\"\nplugins = [\"toc\", \"missing\"]\n[plugin_settings.toc]\nmin_headings = \"three\"\n[plugin_settings.ghost]\na = 1\n");
        let head = commit_all(&f.work, "more");
        let config =
            site_runtime::SiteConfig::parse(&std::fs::read_to_string(f.work.join("site.toml")).unwrap()).unwrap();
        extensions::check(&repo, head, &config).unwrap()
    };
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 3, "{text:#?}");
    assert!(text.iter().any(|t| t.contains("plugin_settings.toc.min_headings: expected a value like the default 3")));
    assert!(text
        .iter()
        .any(|t| t.contains("plugin \"missing\" is enabled but plugins/missing/plugin.toml is missing")));
    assert!(text.iter().any(|t| t.contains("plugin_settings.ghost: no such plugin is enabled")));
    assert_eq!(get(&f.site, "/about/").await.0, StatusCode::OK, "the previous snapshot keeps serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_load_never_mixes_plugin_versions() {
    let manifest =
        "name = \"ver\"\nversion = \"1\"\ncapabilities = [\"http.route\"]\nfilters = [\"page_html\", \"head\"]\n\
                    [[route]]\npath = \"/api/version\"\nhandler = \"version\"\n";
    let script = |n: usize| {
        format!(
            "fn page_html(html, page) {{ html + \"<p>body v{n}</p>\" }}\n\
             fn head(page) {{ \"<meta name=ver content=v{n}>\" }}\n\
             fn version(request) {{ #{{ json: #{{ v: {n} }} }} }}\n"
        )
    };
    let f = fixture(
        &[
            ("site.toml", "title = \"x\"\nplugins = [\"ver\"]\n"),
            ("plugins/ver/plugin.toml", manifest),
            ("plugins/ver/main.rhai", &script(0)),
        ],
        None,
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for i in 0..4 {
        let site = f.site.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Different pages so that some renders are not cached.
                let path = ["/about/", "/blog/hello-world/", "/blog/long/", "/api/version"][(seen + i) % 4];
                let (status, body) = get(&site, path).await;
                assert_eq!(status, StatusCode::OK, "{path}: no request fails during a swap");
                if path != "/api/version" {
                    let head = body.split("<meta name=ver content=v").nth(1).and_then(|t| t.split('>').next()).unwrap();
                    assert!(body.contains(&format!("<p>body v{head}</p>")), "mixed versions in {path}: head v{head}");
                }
                seen += 1;
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    for n in 1..=6 {
        write(&f.work, "plugins/ver/main.rhai", &script(n));
        write(&f.work, "content/about.md", &format!("+++\ntitle = \"About\"\n+++\nRevision {n}.\n"));
        let commit = commit_all(&f.work, &format!("v{n}"));
        let site = f.site.clone();
        tokio::task::spawn_blocking(move || site.publish(commit, &mut |_| {}).unwrap()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    assert!(total > 6, "readers ran during the swaps ({total} requests)");
    assert_eq!(get(&f.site, "/api/version").await.1, "{\"v\":6}");
}
