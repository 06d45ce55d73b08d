//! The public site through the Axum router (no socket: `tower::ServiceExt::oneshot`), built from
//! a repository made with the real `git` CLI.

mod common;
use common::{commit_all, git, write};

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use site_runtime::Site;
use tower::ServiceExt;

struct Fixture {
    _tmp: tempfile::TempDir,
    work: std::path::PathBuf,
    site: Arc<Site>,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("site");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    write(&work, "site.toml", "title = \"Test Site\"\nbase_url = \"https://example.org\"\npaginate_by = 2\n");
    write(&work, "content/_index.md", "+++\ntitle = \"Home\"\n+++\nWelcome **home**.\n");
    write(
        &work,
        "content/about.md",
        "+++\ntitle = \"About us\"\nweight = 5\naliases = [\"/old-about/\"]\n+++\n# Who\n\nWe write.\n",
    );
    write(&work, "content/blog/_index.md", "+++\ntitle = \"Blog\"\nsort_by = \"date\"\n+++\n");
    for (i, tag) in ["rust", "rust", "web"].iter().enumerate() {
        write(
            &work,
            &format!("content/blog/post-{i}.md"),
            &format!("+++\ntitle = \"Post {i}\"\ndate = 2024-01-0{}\ntags = [\"{tag}\"]\n+++\nBody of post {i} about {tag}.\n", i + 1),
        );
    }
    write(&work, "content/blog/draft.md", "+++\ntitle = \"Secret draft\"\ndraft = true\n+++\nhidden\n");
    write(&work, "content/blog/future.md", "+++\ntitle = \"From the future\"\ndate = 2999-01-01\n+++\nlater\n");
    write(&work, "content/blog/trip/index.md", "+++\ntitle = \"Trip\"\ndate = 2023-06-01\n+++\n![cat](cat.txt)\n");
    write(&work, "content/blog/trip/cat.txt", "meow meow meow meow");
    write(&work, "static/robots-extra.txt", "0123456789");
    let head = commit_all(&work, "first");
    let site = Site::open(&work.join(".git"), "main", tmp.path().join("index/main.sqlite")).unwrap();
    site.publish(head, &mut |_| {}).unwrap();
    Fixture { _tmp: tmp, work, site: Arc::new(site) }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(site: &Arc<Site>, uri: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = site_runtime::http::router(site.clone()).oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

#[tokio::test]
async fn serves_home_pages_sections_and_pagination() {
    let f = fixture();
    let home = get(&f.site, "/", &[]).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<title>Test Site</title>"), "{}", home.body);
    assert!(home.body.contains("Welcome <strong>home</strong>"));
    assert!(home.body.contains("Post 2"), "newest post on the home page");
    let nav = home.body.split("<nav aria-label=\"Main\">").nth(1).unwrap().split("</nav>").next().unwrap();
    let (about, blog) =
        (nav.find(">About us<").expect("weighted page in the menu"), nav.find(">Blog<").expect("section in the menu"));
    assert!(about < blog, "weight 5 comes before unweighted sections: {nav}");

    let blog = get(&f.site, "/blog/", &[]).await;
    assert_eq!(blog.status, StatusCode::OK);
    assert!(
        blog.body.contains("Post 2") && blog.body.contains("Post 1") && !blog.body.contains("Post 0"),
        "page 1 has 2 newest"
    );
    assert!(blog.body.contains("/blog/page/2/"), "link to the next page");
    let page2 = get(&f.site, "/blog/page/2/", &[]).await;
    assert!(page2.body.contains("Post 0") && page2.body.contains("Trip"), "{}", page2.body);
    assert_eq!(get(&f.site, "/blog/page/1/", &[]).await.headers[header::LOCATION], "/blog/");
    assert_eq!(get(&f.site, "/blog/page/9/", &[]).await.status, StatusCode::NOT_FOUND);

    let post = get(&f.site, "/blog/post-1/", &[]).await;
    assert!(post.body.contains("Body of post 1 about rust"));
    assert!(post.body.contains("href=\"https://example.org/tags/rust/\""), "tag links use base_url");
    let about = get(&f.site, "/about/", &[]).await;
    assert!(about.body.contains("<h1 id=\"who\">Who</h1>"), "{}", about.body);
}

#[tokio::test]
async fn drafts_and_future_pages_are_not_published() {
    let f = fixture();
    assert_eq!(get(&f.site, "/blog/draft/", &[]).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&f.site, "/blog/future/", &[]).await.status, StatusCode::NOT_FOUND);
    let sitemap = get(&f.site, "/sitemap.xml", &[]).await.body;
    assert!(!sitemap.contains("draft") && !sitemap.contains("future"), "{sitemap}");
    assert!(sitemap.contains("<loc>https://example.org/blog/post-0/</loc>"));
    // A small site's sitemap is one file: there are no parts.
    assert!(sitemap.contains("<urlset"), "{sitemap}");
    assert_eq!(get(&f.site, "/sitemap-1.xml", &[]).await.status, StatusCode::NOT_FOUND);
    let rss = get(&f.site, "/rss.xml", &[]).await.body;
    assert!(!rss.contains("From the future"));
}

#[tokio::test]
async fn taxonomies_feeds_robots_and_search() {
    let f = fixture();
    let tags = get(&f.site, "/tags/", &[]).await;
    assert!(tags.body.contains("/tags/rust/") && tags.body.contains(">2</span>"), "{}", tags.body);
    let rust = get(&f.site, "/tags/rust/", &[]).await;
    assert!(rust.body.contains("Post 0") && rust.body.contains("Post 1") && !rust.body.contains("Post 2"));
    assert_eq!(get(&f.site, "/tags/nothing/", &[]).await.status, StatusCode::NOT_FOUND);

    let rss = get(&f.site, "/rss.xml", &[]).await;
    assert_eq!(rss.headers[header::CONTENT_TYPE], "application/rss+xml; charset=utf-8");
    assert!(rss.body.contains("<link>https://example.org/blog/post-2/</link>"));
    let atom = get(&f.site, "/atom.xml", &[]).await;
    assert!(atom.body.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\""));
    assert!(get(&f.site, "/robots.txt", &[]).await.body.contains("Sitemap: https://example.org/sitemap.xml"));

    let html = get(&f.site, "/search?q=rust", &[]).await;
    assert!(html.body.contains("Post 0") && html.body.contains("<mark>rust</mark>"), "{}", html.body);
    let json = get(&f.site, "/search?q=post+web", &[("accept", "application/json")]).await;
    let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(v["results"][0]["url"], "/blog/post-2/");
    let hostile = get(&f.site, "/search?q=title%3A%22x%22+NEAR(a+b)+*+%22", &[("accept", "application/json")]).await;
    assert_eq!(hostile.status, StatusCode::OK, "FTS syntax in queries is neutralized");
}

#[tokio::test]
async fn files_aliases_redirects_and_errors() {
    let f = fixture();
    let cat = get(&f.site, "/blog/trip/cat.txt", &[]).await;
    assert_eq!(cat.status, StatusCode::OK);
    assert_eq!(cat.body, "meow meow meow meow");
    let etag = cat.headers[header::ETAG].to_str().unwrap().to_string();
    let blob = git(&f.work, &["rev-parse", "HEAD:content/blog/trip/cat.txt"]);
    assert_eq!(etag, format!("\"{blob}\""), "the blob id is the strong ETag");
    assert_eq!(get(&f.site, "/blog/trip/cat.txt", &[("if-none-match", &etag)]).await.status, StatusCode::NOT_MODIFIED);
    let part = get(&f.site, "/robots-extra.txt", &[("range", "bytes=2-4")]).await;
    assert_eq!((part.status, part.body.as_str()), (StatusCode::PARTIAL_CONTENT, "234"));
    assert_eq!(part.headers[header::CONTENT_RANGE], "bytes 2-4/10");
    assert_eq!(
        get(&f.site, "/robots-extra.txt", &[("range", "bytes=50-")]).await.status,
        StatusCode::RANGE_NOT_SATISFIABLE
    );

    let alias = get(&f.site, "/old-about/", &[]).await;
    assert_eq!(
        (alias.status, alias.headers[header::LOCATION].to_str().unwrap()),
        (StatusCode::MOVED_PERMANENTLY, "/about/")
    );
    let slash = get(&f.site, "/about", &[]).await;
    assert_eq!(slash.headers[header::LOCATION], "/about/");

    let css = get(&f.site, "/style.css", &[]).await;
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    // By path, not by base_url: followers and the preview serve it on their own address.
    let about = get(&f.site, "/about/", &[]).await;
    assert!(about.body.contains(r#"<link rel="stylesheet" href="/style.css">"#), "{}", about.body);
    let missing = get(&f.site, "/no/such/page/", &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"), "the theme's 404 page");
    assert_eq!(get(&f.site, "/a/%2e%2e/b", &[]).await.status, StatusCode::BAD_REQUEST);

    let post = Request::builder().method("POST").uri("/").body(Body::empty()).unwrap();
    let resp = site_runtime::http::router(f.site.clone()).oneshot(post).await.unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

    let page = get(&f.site, "/about/", &[]).await;
    let etag = page.headers[header::ETAG].to_str().unwrap().to_string();
    assert_eq!(get(&f.site, "/about/", &[("if-none-match", &etag)]).await.status, StatusCode::NOT_MODIFIED);
    assert_eq!(get(&f.site, "/healthz", &[]).await.status, StatusCode::OK);
    assert!(get(&f.site, "/readyz", &[]).await.body.starts_with("ready "));
}

#[tokio::test]
async fn publishing_a_new_commit_swaps_content_and_theme() {
    let f = fixture();
    assert!(get(&f.site, "/about/", &[]).await.body.contains("We write."));
    write(&f.work, "content/about.md", "+++\ntitle = \"About us\"\n+++\nWe publish now.\n");
    write(&f.work, "themes/plain/theme.toml", "name = \"plain\"\n");
    write(&f.work, "themes/plain/templates/page.html", "<p class=plain>{{ page.title }}|{{ page.content | safe }}</p>");
    write(&f.work, "themes/plain/static/plain.css", "p{}");
    write(
        &f.work,
        "site.toml",
        "title = \"Test Site\"\nbase_url = \"https://example.org\"\npaginate_by = 2\ntheme = \"plain\"\n",
    );
    let head = commit_all(&f.work, "second");
    let published = f.site.publish(head, &mut |_| {}).unwrap();
    assert!(published.stats.full, "a site.toml change rebuilds everything");
    let about = get(&f.site, "/about/", &[]).await;
    assert!(about.body.starts_with("<p class=plain>About us|"), "{}", about.body);
    assert!(about.body.contains("We publish now."));
    // Templates the theme lacks come from the default theme.
    assert!(get(&f.site, "/blog/", &[]).await.body.contains("<title>Blog · Test Site</title>"));
    assert_eq!(get(&f.site, "/plain.css", &[]).await.body, "p{}");

    // An incremental publish of one page.
    write(&f.work, "content/about.md", "+++\ntitle = \"About\"\n+++\nThird.\n");
    let head = commit_all(&f.work, "third");
    let published = f.site.publish(head, &mut |_| {}).unwrap();
    assert!(!published.stats.full);
    assert_eq!(published.stats.documents, 1);
    assert!(get(&f.site, "/about/", &[]).await.body.contains("Third."));
}

#[tokio::test]
async fn refresh_serves_the_branch_head_whatever_order_hooks_run_in() {
    let f = fixture();
    let first = f.site.snapshot().unwrap().commit;
    write(&f.work, "content/about.md", "+++\ntitle = \"About\"\n+++\nSecond.\n");
    let second = commit_all(&f.work, "second");
    write(&f.work, "content/about.md", "+++\ntitle = \"About\"\n+++\nThird.\n");
    let third = commit_all(&f.work, "third");
    // The hook of the push that made `second` runs after `third` landed: it serves the head.
    let published = f.site.refresh(&mut |_| {}).unwrap().expect("a newer head to publish");
    assert_eq!(published.commit, third);
    assert!(get(&f.site, "/about/", &[]).await.body.contains("Third."));
    // The hook of the push that made `third` finds it served and leaves it.
    assert!(f.site.refresh(&mut |_| {}).unwrap().is_none());
    assert_eq!(f.site.snapshot().unwrap().commit, third);
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_broken_theme_is_reported_with_its_file() {
    let f = fixture();
    write(&f.work, "site.toml", "title = \"x\"\ntheme = \"broken\"\n");
    write(&f.work, "themes/broken/theme.toml", "name = \"broken\"\n");
    write(&f.work, "themes/broken/templates/page.html", "{% for x in %}");
    let head = commit_all(&f.work, "broken theme");
    let err = f.site.publish(head, &mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("themes/broken/templates/page.html"), "{err}");
    // The previous snapshot keeps serving.
    assert_eq!(get(&f.site, "/about/", &[]).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_under_load_never_mixes_two_commits() {
    let f = fixture();
    let version = |n: usize| {
        write(&f.work, "site.toml", &format!("title = \"Site v{n}\"\nbase_url = \"https://example.org\"\n"));
        write(&f.work, "content/about.md", &format!("+++\ntitle = \"About v{n}\"\n+++\nBody v{n}.\n"));
        commit_all(&f.work, &format!("v{n}"))
    };
    let first = version(0);
    f.site.publish(first, &mut |_| {}).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let site = f.site.clone();
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let mut seen = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = get(&site, "/about/", &[]).await;
                assert_eq!(r.status, StatusCode::OK, "no request fails during a swap");
                let title =
                    r.body.split("<title>").nth(1).and_then(|t| t.split("</title>").next()).unwrap().to_string();
                // "About vN · Site vN": page and configuration from the same commit.
                let (page, site_title) = title.split_once(" · ").unwrap();
                assert_eq!(page.trim_start_matches("About "), site_title.trim_start_matches("Site "), "mixed: {title}");
                assert!(r.body.contains(&format!("Body {}.", page.trim_start_matches("About "))), "{title}");
                seen += 1;
                // The router answers without I/O; yield so the publishing task gets its turn.
                tokio::task::yield_now().await;
            }
            seen
        }));
    }
    for n in 1..=8 {
        let commit = version(n);
        let site = f.site.clone();
        tokio::task::spawn_blocking(move || site.publish(commit, &mut |_| {}).unwrap()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for r in readers {
        total += r.await.unwrap();
    }
    assert!(total > 8, "readers ran during the publishes ({total} requests)");
    assert!(get(&f.site, "/about/", &[]).await.body.contains("Body v8."));
}

#[tokio::test]
async fn a_branch_that_does_not_exist_yet_says_how_to_make_it() {
    let f = fixture();
    let admin = Site::open(&f.work.join(".git"), "admin", f._tmp.path().join("index/admin.sqlite")).unwrap();
    let r = get(&Arc::new(admin), "/", &[]).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("There is no admin branch yet") && r.body.contains("git switch -c admin"), "{}", r.body);
    // A branch that exists but was never published (the server is starting) says so instead.
    git(&f.work, &["branch", "admin"]);
    let admin = Site::open(&f.work.join(".git"), "admin", f._tmp.path().join("index/admin2.sqlite")).unwrap();
    let r = get(&Arc::new(admin), "/", &[]).await;
    assert!(r.body.contains("admin has not been published yet"), "{}", r.body);
}

#[tokio::test]
async fn a_site_without_a_home_document_has_an_implicit_home() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("site");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    write(&work, "site.toml", "title = \"Docs Without Home\"\npaginate_by = 1\n");
    for i in 1..=2 {
        write(
            &work,
            &format!("content/post-{i}.md"),
            &format!("+++\ntitle = \"Post {i}\"\ndate = 2024-01-0{i}\n+++\nText {i}.\n"),
        );
    }
    let head = commit_all(&work, "no _index.md");
    let site = Site::open(&work.join(".git"), "main", tmp.path().join("index/main.sqlite")).unwrap();
    site.publish(head, &mut |_| {}).unwrap();
    let site = Arc::new(site);
    let home = get(&site, "/", &[]).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("Docs Without Home") && home.body.contains("Post 2"), "{}", home.body);
    let second = get(&site, "/page/2/", &[]).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(second.body.contains("Post 1"), "{}", second.body);
    assert_eq!(get(&site, "/page/9/", &[]).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_publish_keeps_the_cached_pages_it_did_not_change() {
    let f = fixture();
    write(
        &f.work,
        "content/blog/post-2.md",
        "+++\ntitle = \"Post 2\"\ndate = 2024-01-03\n+++\nLinks to [zero](@/blog/post-0.md).\n",
    );
    let second = commit_all(&f.work, "a link");
    f.site.publish(second, &mut |_| {}).unwrap();
    for url in ["/", "/blog/post-0/", "/blog/post-1/", "/blog/post-2/", "/blog/", "/tags/rust/"] {
        assert_eq!(get(&f.site, url, &[]).await.status, StatusCode::OK, "{url}");
    }
    let now = jiff::Timestamp::now().as_second();
    let cached = |url: &str| f.site.snapshot().unwrap().cached(url, now).is_some();
    assert!(cached("/blog/post-1/") && cached("/blog/"));

    // One page changes: the others stay cached; it, the pages linking to it and the listings go.
    write(
        &f.work,
        "content/blog/post-0.md",
        "+++\ntitle = \"Post 0, edited\"\ndate = 2024-01-01\ntags = [\"rust\"]\n+++\nNew body.\n",
    );
    let third = commit_all(&f.work, "an edit");
    f.site.publish(third, &mut |_| {}).unwrap();
    let cached = |url: &str| f.site.snapshot().unwrap().cached(url, now).is_some();
    assert!(cached("/blog/post-1/"), "an unrelated page is still cached");
    assert!(!cached("/blog/post-2/"), "a page linking to the changed one is not");
    assert!(!cached("/") && !cached("/blog/") && !cached("/tags/rust/"), "listings are not");
    assert!(get(&f.site, "/blog/post-0/", &[]).await.body.contains("New body."));
    assert!(get(&f.site, "/blog/page/2/", &[]).await.body.contains("Post 0, edited"));

    // A change to the site's shared parts (here a section) keeps nothing.
    write(&f.work, "content/blog/_index.md", "+++\ntitle = \"The blog\"\nsort_by = \"date\"\n+++\n");
    let fourth = commit_all(&f.work, "a section");
    f.site.publish(fourth, &mut |_| {}).unwrap();
    assert!(f.site.snapshot().unwrap().cached("/blog/post-1/", now).is_none());
}

/// Listings survive a publish too, unless they show a touched document: a changed page, or a
/// page linking to one. Before, every section and term listing was dropped by any publish.
#[tokio::test]
async fn a_publish_keeps_the_listings_that_do_not_show_what_changed() {
    let f = fixture();
    write(&f.work, "content/docs/_index.md", "+++\ntitle = \"Docs\"\n+++\n");
    write(&f.work, "content/docs/guide/_index.md", "+++\ntitle = \"Guide\"\ntransparent = true\n+++\n");
    let intro = |tags: &str| format!("+++\ntitle = \"Intro\"\ndate = 2024-02-01\ntags = [{tags}]\n+++\nStart here.\n");
    write(&f.work, "content/docs/guide/intro.md", &intro("\"manual\""));
    write(
        &f.work,
        "content/docs/faq.md",
        "+++\ntitle = \"FAQ\"\ndate = 2024-02-02\ntags = [\"manual\"]\n+++\nSee [post one](@/blog/post-1.md).\n",
    );
    let head = commit_all(&f.work, "docs");
    f.site.publish(head, &mut |_| {}).unwrap();
    let listings = ["/", "/tags/", "/blog/", "/blog/page/2/", "/docs/", "/docs/guide/", "/tags/rust/", "/tags/web/"];
    let warm = || async {
        for url in listings.iter().chain(&["/tags/manual/"]) {
            assert_eq!(get(&f.site, url, &[]).await.status, StatusCode::OK, "{url}");
        }
    };
    let now = jiff::Timestamp::now().as_second();
    let cached = |url: &str| f.site.snapshot().unwrap().cached(url, now).is_some();
    let publish = |message: &str| {
        let head = commit_all(&f.work, message);
        f.site.publish(head, &mut |_| {}).unwrap();
    };
    warm().await;

    // An edit in the blog (tagged rust): the docs' listings and the other terms' stay.
    write(
        &f.work,
        "content/blog/post-0.md",
        "+++\ntitle = \"Post 0, edited\"\ndate = 2024-01-01\ntags = [\"rust\"]\n+++\nNew body.\n",
    );
    publish("a blog edit");
    for url in ["/docs/", "/docs/guide/", "/tags/web/", "/tags/manual/"] {
        assert!(cached(url), "{url} does not show the changed page and is kept");
    }
    for url in ["/", "/tags/", "/blog/", "/blog/page/2/", "/tags/rust/"] {
        assert!(!cached(url), "{url} is dropped");
    }
    assert!(get(&f.site, "/blog/page/2/", &[]).await.body.contains("Post 0, edited"));
    assert!(get(&f.site, "/tags/rust/", &[]).await.body.contains("Post 0, edited"));
    warm().await;

    // A page of a transparent section, given a second tag: its section, the section it shows
    // in, the tag it had and the tag it has now are dropped.
    write(&f.work, "content/docs/guide/intro.md", &intro("\"manual\", \"web\""));
    publish("an intro edit");
    for url in ["/docs/", "/docs/guide/", "/tags/manual/", "/tags/web/"] {
        assert!(!cached(url), "{url} is dropped");
    }
    assert!(cached("/blog/") && cached("/tags/rust/"));
    assert!(get(&f.site, "/tags/web/", &[]).await.body.contains("Intro"));
    warm().await;

    // A page linking to the changed one is touched too: its section and its term go.
    write(&f.work, "content/blog/post-1.md", "+++\ntitle = \"Post 1\"\ndate = 2024-01-02\n+++\nUntagged now.\n");
    publish("a post-1 edit");
    for url in ["/blog/", "/tags/rust/", "/docs/", "/tags/manual/"] {
        assert!(!cached(url), "{url} is dropped");
    }
    assert!(cached("/docs/guide/") && cached("/tags/web/"));
    assert!(!get(&f.site, "/tags/rust/", &[]).await.body.contains("Post 1<"));
}

#[tokio::test]
async fn code_is_highlighted_unless_the_site_turns_it_off() {
    let f = fixture();
    write(&f.work, "content/code.md", "+++\ntitle = \"Code\"\n+++\n```rust\nfn main() {}\n```\n");
    let with = commit_all(&f.work, "code");
    f.site.publish(with, &mut |_| {}).unwrap();
    let page = get(&f.site, "/code/", &[]).await.body;
    assert!(page.contains("<pre class=\"z-code\" data-lang=\"rust\">") && page.contains("z-storage"), "{page}");
    write(
        &f.work,
        "site.toml",
        "title = \"Test Site\"\nbase_url = \"https://example.org\"\npaginate_by = 2\n[markdown]\nhighlight_code = false\n",
    );
    let without = commit_all(&f.work, "no highlighting");
    f.site.publish(without, &mut |_| {}).unwrap();
    let page = get(&f.site, "/code/", &[]).await.body;
    assert!(
        page.contains("<pre data-lang=\"rust\"><code class=\"language-rust\">fn main() {}") && !page.contains("z-"),
        "{page}"
    );
}

/// A request that reads the index after a publish committed it, but before that publish swapped
/// its snapshot in, waits for the swap (it used to answer 503 at once: 187 of 1.5 million
/// requests in a soak with a push every second).
#[tokio::test]
async fn a_request_in_the_instant_of_a_publish_waits_for_its_snapshot() {
    let f = fixture();
    write(&f.work, "content/about.md", "+++\ntitle = \"About us, now\"\n+++\nNew.\n");
    let head = commit_all(&f.work, "second");
    // The index moves to the new commit behind the served snapshot's back, as a publish's does
    // before it swaps the snapshot in; the swap comes 200 ms later.
    let repo = gix::open(f.work.join(".git")).unwrap();
    let mut index = site_runtime::index::Index::open(&f._tmp.path().join("index/main.sqlite")).unwrap();
    index.update(&repo, head, &mut |_| {}).unwrap();
    let site = f.site.clone();
    let swap = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        site.publish(head, &mut |_| {}).unwrap();
    });
    let reply = get(&f.site, "/about/", &[]).await;
    swap.join().unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("About us, now"), "{}", reply.body);
}
