//! Sites written for Zola and Hugo (`tests/fixtures/zola-site`, `tests/fixtures/hugo-site`),
//! pushed unchanged with `git` and read back over HTTP: highlighting, internal links, shortcodes
//! in both syntaxes, visibility dates, sections that redirect, are transparent or unrendered; and
//! a refusal, with file and line, for each thing a page may name that the site lacks.

use std::path::Path;

use crate::support::*;

/// Copy the fixture `name` into a new repository, commit it and push it to `server`'s `main`.
fn push_fixture(server: &Server, dir: &Path, name: &str) -> std::path::PathBuf {
    let repo = local_repo(server, dir, name, 0);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    copy_tree(&fixture, &repo);
    server.git_ok(&repo, &["add", "-A"]);
    server.git_ok(&repo, &["commit", "-qm", "the site as the generator had it"]);
    let out = server.git_out(&repo, &["push", "origin", "HEAD:main"]);
    assert_success(&out, &["push of the fixture"]);
    repo
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn page(http: u16, path: &str) -> String {
    let (status, _, body) = http_get(http, path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[test]
fn a_zola_site_pushes_unchanged_and_renders() {
    let server = Server::binary();
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    push_fixture(&server, tmp.path(), "zola-site");

    // No content/_index.md: the implicit home page lists the dated pages.
    let home = page(http, "/");
    assert!(home.contains("Lantern Docs") && home.contains("Second post"), "{home}");

    // The section's own template, from the site's theme, with its pages by weight; the theme's
    // resize_image makes its logo 64 × 64.
    let docs = page(http, "/docs/");
    assert!(docs.contains("<main class=\"docs-section\">"), "{docs}");
    assert!(docs.contains("width=\"64\" height=\"64\""), "{docs}");
    let logo = docs.split("class=\"logo\" src=\"").nth(1).and_then(|s| s.split('"').next()).unwrap();
    let (status, _, body) = http_get_bytes(http, logo);
    assert_eq!((status, u32::from_be_bytes(body[16..20].try_into().unwrap())), (200, 64));
    let first = docs.find("Getting started").unwrap();
    assert!(first < docs.find("Configuration").unwrap(), "by weight: {docs}");

    let start = page(http, "/docs/getting-started/");
    // Internal links resolved to URLs, anchors kept.
    assert!(start.contains("href=\"/docs/configuration/#options\""), "{start}");
    // Highlighting: classes only, numbered from 10, line 2 marked.
    assert!(start.contains("<pre class=\"z-code\" data-lang=\"rust\""), "{start}");
    assert!(
        start.contains("data-n=\"10\"") && start.contains("<mark class=\"line\"><span class=\"ln\" data-n=\"11\""),
        "{start}"
    );
    assert!(start.contains("z-storage"), "{start}");
    assert!(!start.contains(" style=\""), "no inline styles: {start}");
    // Shortcodes: a built-in and the theme's own, with a Markdown body.
    assert!(start.contains("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?start=30"), "{start}");
    assert!(start.contains("<aside class=\"note note-tip\"><strong>Tip:</strong>"), "{start}");
    assert!(start.contains("<strong>every</strong>"), "{start}");
    // The escaped shortcode is shown, code keeps its braces.
    assert!(start.contains("{{ youtube(id=") && start.contains("<code>{{ braces }}</code>"), "{start}");
    // Anchor links, from the section's insert_anchor_links.
    assert!(start.contains("<h2 id=\"install\">Install<a class=\"anchor\" href=\"#install\""), "{start}");

    // The highlighting stylesheet has the site's themes, light and dark.
    let css = page(http, "/highlight.css");
    assert!(css.contains(".z-code") && css.contains("prefers-color-scheme: dark"), "{css}");
    let (_, head, _) = http_get(http, "/docs/getting-started/");
    let csp = head.lines().find(|l| l.to_ascii_lowercase().starts_with("content-security-policy")).unwrap_or("");
    assert!(csp.contains("frame-src 'self' https://www.youtube-nocookie.com"), "{head}");

    // redirect_to.
    let (status, head, _) = http_get(http, "/guide/");
    assert_eq!(status, 302, "{head}");
    assert!(head.to_ascii_lowercase().contains("location: /docs/getting-started/"), "{head}");

    // sort_by = "slug", and a transparent subsection's pages in the parent's list.
    let blog = page(http, "/blog/");
    let (a, b, c) =
        (blog.find("First post").unwrap(), blog.find("Second post").unwrap(), blog.find("Archived post").unwrap());
    assert!(a < b && b < c, "{blog}");

    // render = false: no page for the section, its pages still are; in_search_index = false.
    assert_eq!(http_get(http, "/notes/").0, 404);
    assert!(page(http, "/notes/private-ish/").contains("zephyrine"));
    let (_, _, hits) = http_get(http, "/search?q=zephyrine");
    assert!(!hits.contains("private-ish"), "{hits}");
    let (_, _, hits) = http_get(http, "/search?q=Archived");
    assert!(hits.contains("/blog/2023/c-archived/"), "{hits}");
    server.assert_repository_sound();
}

#[test]
fn a_hugo_site_pushes_unchanged_and_renders() {
    let server = Server::binary();
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    push_fixture(&server, tmp.path(), "hugo-site");

    let post = page(http, "/posts/first-light/");
    // ref and relref.
    assert!(post.contains("href=\"/posts/second-night/\"") && post.contains("href=\"/posts/\""), "{post}");
    // Built-in shortcodes, Hugo syntax.
    assert!(post.contains("<img src=\"/img/teal.svg\" alt=\"A teal square\""), "{post}");
    assert!(post.contains("<em>only</em>"), "caption as Markdown: {post}");
    assert!(post.contains("youtube-nocookie.com/embed/dQw4w9WgXcQ\""), "{post}");
    assert!(post.contains("https://player.vimeo.com/video/76979871"), "{post}");
    assert!(post.contains("<summary>What we packed</summary>") && post.contains("<strong>red</strong>"), "{post}");
    assert!(post.contains("href=\"https://gist.github.com/spf13/7896402\""), "{post}");
    assert!(post.contains("data-lang=\"go\"") && post.contains("<mark class=\"line\">"), "{post}");
    // A raster figure gets smaller copies in a srcset, and its size.
    let srcset = post.split("srcset=\"").nth(1).and_then(|s| s.split('"').next()).unwrap_or_default().to_string();
    let widths: Vec<&str> = srcset.split(", ").filter_map(|c| c.rsplit(' ').next()).collect();
    assert_eq!(widths, ["480w", "960w", "1600w", "2000w"], "{post}");
    assert!(post.contains("width=\"2000\" height=\"1000\""), "{post}");
    let small = srcset.split(' ').next().unwrap();
    assert!(small.starts_with("/processed_images/"), "{srcset}");
    let (status, head, body) = http_get_bytes(http, small);
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/png"), "{head}");
    assert!(head.contains("immutable"), "{head}");
    // PNG IHDR: width and height at bytes 16..24.
    assert_eq!(u32::from_be_bytes(body[16..20].try_into().unwrap()), 480);
    assert_eq!(u32::from_be_bytes(body[20..24].try_into().unwrap()), 240);

    // publishDate: in the past → shown; far future → not yet. expiryDate in the past → gone.
    assert_eq!(http_get(http, "/posts/second-night/").0, 200);
    assert_eq!(http_get(http, "/posts/next-eclipse/").0, 404);
    assert_eq!(http_get(http, "/posts/old-offer/").0, 404);
    let list = page(http, "/posts/");
    assert!(list.contains("Second night") && !list.contains("next eclipse") && !list.contains("for sale"), "{list}");
    server.assert_repository_sound();
}

#[test]
fn a_multilingual_site_serves_each_language_under_its_prefix() {
    let server = Server::binary();
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    push_fixture(&server, tmp.path(), "zola-site");

    // Zola's page.fr.md: under /fr/, in French, with the English version as alternate.
    let fr = page(http, "/fr/docs/getting-started/");
    assert!(fr.contains("<html lang=\"fr\">") && fr.contains("Premiers pas"), "{fr}");
    assert!(fr.contains("hreflang=\"en\" href=\"http://127.0.0.1/docs/getting-started/\""), "{fr}");
    assert!(fr.contains("href=\"/docs/configuration/\""), "a link across languages: {fr}");
    assert!(fr.contains(">Français</a>") && fr.contains("aria-current=\"true\">Français"), "switcher: {fr}");
    let en = page(http, "/docs/getting-started/");
    // The current language's entry links the page itself, not the home page.
    assert!(en.contains("<a href=\"http://127.0.0.1/docs/getting-started/\" hreflang=\"en\""), "{en}");
    assert!(en.contains("hreflang=\"fr\" href=\"http://127.0.0.1/fr/docs/getting-started/\""), "{en}");
    assert!(en.contains("<a href=\"http://127.0.0.1/fr/docs/getting-started/\" hreflang=\"fr\""), "switcher: {en}");
    // Per-language sections, home, taxonomies, feeds and search.
    let docs = page(http, "/fr/docs/");
    assert!(docs.contains("Premiers pas") && !docs.contains("Getting started"), "{docs}");
    assert!(page(http, "/fr/").contains("<title>Lanterne</title>"));
    let tag = page(http, "/fr/tags/intro/");
    assert!(tag.contains("Premiers pas") && !tag.contains("Getting started"), "{tag}");
    let tag = page(http, "/tags/intro/");
    assert!(tag.contains("Getting started") && !tag.contains("Premiers pas"), "{tag}");
    let feed = page(http, "/fr/rss.xml");
    assert!(
        feed.contains("<language>fr</language>") && feed.contains("Premiers pas") && !feed.contains("Second post"),
        "{feed}"
    );
    let (_, _, hits) = http_get(http, "/fr/search?q=cr%C3%A9puscule");
    assert!(hits.contains("/fr/docs/getting-started/"), "{hits}");
    let (_, _, hits) = http_get(http, "/search?q=cr%C3%A9puscule");
    assert!(!hits.contains("getting-started"), "{hits}");
    let sitemap = page(http, "/sitemap.xml");
    assert!(
        sitemap.contains(
            "<xhtml:link rel=\"alternate\" hreflang=\"fr\" href=\"http://127.0.0.1/fr/docs/getting-started/\"/>"
        ),
        "{sitemap}"
    );

    // Hugo's per-language content directory.
    let server = Server::binary();
    let http = server.http_port.unwrap();
    push_fixture(&server, tmp.path(), "hugo-site");
    let fr = page(http, "/fr/posts/first-light/");
    assert!(fr.contains("Première lumière") && fr.contains("hreflang=\"en\""), "{fr}");
    assert!(page(http, "/fr/posts/").contains("Première lumière"));
    assert!(!page(http, "/posts/").contains("Première"));
}

#[test]
fn an_image_bomb_is_refused() {
    let bomb = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bomb.png")).unwrap();
    let err = refused(&[("static/huge.png", Some(bomb))]);
    assert!(err.contains("static/huge.png: 100000×100000 pixels is more than the 50 megapixels"), "{err}");
}

#[test]
fn a_translation_in_an_undeclared_language_is_refused() {
    let err = refused(&[("content/blog/a-first.de.md", Some("+++\ntitle = \"Erster\"\n+++\nx\n"))]);
    assert!(
        err.contains("content/blog/a-first.de.md: \"de\" in the file name marks a language this site does not have"),
        "{err}"
    );
}

#[test]
fn a_publish_renders_the_changed_pages_and_their_images_ahead() {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let repo = push_fixture(&server, tmp.path(), "hugo-site");
    let images = server.data_dir.join("index/images");
    let made = || {
        std::fs::read_dir(&images)
            .map(|d| d.filter_map(|e| e.ok()).filter(|e| !e.file_name().to_string_lossy().starts_with('.')).count())
            .unwrap_or(0)
    };
    let wait_for = |n: usize| {
        for _ in 0..100 {
            if made() == n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert_eq!(made(), n, "480, 960 and 1600 pixels wide");
    };
    // The full build renders the pages with figures ahead: no request has asked for a page.
    wait_for(3);
    std::fs::remove_dir_all(&images).unwrap();
    let page = repo.join("content/posts/first-light.md");
    let text = std::fs::read_to_string(&page).unwrap() + "\nOne more line.\n";
    commit_file(&server, &repo, "content/posts/first-light.md", &text);
    assert_success(&server.git_out(&repo, &["push", "origin", "HEAD:main"]), &["push"]);
    // Still no request: the publish renders the changed page, which makes its copies again.
    wait_for(3);
}

#[test]
fn a_page_leaves_the_site_by_itself_when_it_expires() {
    let server = Server::binary();
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let repo = local_repo(&server, tmp.path(), "site", 0);
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
    commit_file(&server, &repo, "content/offer.md", &format!("---\ntitle: Offer\nexpiryDate: {soon}\n---\nBuy now.\n"));
    assert_success(&server.git_out(&repo, &["push", "origin", "HEAD:main"]), &["push"]);
    assert_eq!(http_get(http, "/offer/").0, 200);
    // Served from the page cache until the expiry, then gone without a push.
    let mut gone = false;
    for _ in 0..150 {
        if http_get(http, "/offer/").0 == 404 {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(gone, "the expired page is still served");
}

/// Push `files` (path, content; `None` deletes) on top of the Zola fixture; the refusal's
/// stderr, once it is checked that `main` did not move.
fn refused<T: AsRef<[u8]>>(files: &[(&str, Option<T>)]) -> String {
    let server = Server::binary();
    let tmp = tempfile::tempdir().unwrap();
    let repo = push_fixture(&server, tmp.path(), "zola-site");
    let before = rev(&server, &repo, "HEAD");
    for (path, content) in files {
        match content {
            Some(text) => {
                let p = repo.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            None => std::fs::remove_file(repo.join(path)).unwrap(),
        }
    }
    server.git_ok(&repo, &["add", "-A"]);
    server.git_ok(&repo, &["commit", "-qm", "a change the site cannot take"]);
    let out = server.git_out(&repo, &["push", "origin", "HEAD:main"]);
    assert!(!out.status.success(), "accepted: {}", stderr(&out));
    assert!(server.server_refs().contains(&before), "main moved");
    stderr(&out)
}

#[test]
fn a_page_naming_a_template_the_theme_lacks_is_refused() {
    let err = refused(&[(
        "content/docs/extra.md",
        Some("+++\ntitle = \"Extra\"\n\ntemplate = \"documentation.html\"\n+++\nx\n"),
    )]);
    assert!(
        err.contains("remote:   content/docs/extra.md: line 4: template \"documentation.html\" is not in the theme"),
        "{err}"
    );
}

#[test]
fn a_theme_change_removing_a_template_in_use_is_refused() {
    let err = refused::<&str>(&[("themes/book/templates/docs.html", None)]);
    assert!(
        err.contains("content/docs/_index.md") && err.contains("template \"docs.html\" is not in the theme"),
        "{err}"
    );
}

#[test]
fn an_unknown_shortcode_is_refused_with_its_line() {
    let err = refused(&[(
        "content/blog/new.md",
        Some("+++\ntitle = \"New\"\n+++\nText.\n\n{{< tweet user=\"x\" id=\"1\" >}}\n"),
    )]);
    assert!(err.contains("content/blog/new.md: line 6: unknown shortcode \"tweet\""), "{err}");
}

#[test]
fn a_link_to_a_missing_document_is_refused_with_its_line() {
    let err = refused(&[("content/blog/new.md", Some("+++\ntitle = \"New\"\n+++\nSee [this](@/blog/nope.md).\n"))]);
    assert!(
        err.contains("content/blog/new.md: line 4: links to @/blog/nope.md, which is not a document of the site"),
        "{err}"
    );
}

#[test]
fn deleting_a_document_others_link_to_is_refused() {
    let err = refused::<&str>(&[("content/docs/configuration.md", None)]);
    assert!(
        err.contains("content/docs/getting-started.md: line 7: links to @/docs/configuration.md, which is not a document of the site (this push removes it)"),
        "{err}"
    );
}

#[test]
fn a_malformed_shortcode_or_code_block_is_refused_with_its_line() {
    let err = refused(&[
        ("content/blog/a.md", Some("+++\ntitle = \"A\"\n+++\n{% note(kind=\"tip\") %}\nnever closed\n")),
        ("content/blog/b.md", Some("+++\ntitle = \"B\"\n+++\n```rust,hl_lines=9-2\nx\n```\n")),
    ]);
    assert!(err.contains("content/blog/a.md: line 4: {% note(…) %} is never closed by {% end %}"), "{err}");
    assert!(err.contains("content/blog/b.md: line 4: line range \"9-2\""), "{err}");
}
