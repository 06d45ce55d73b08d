//! Plugins end to end: the demo's starter plugins on the real server (the contact form's webhook
//! granted by the site's Cedar policy and delivered through the outbox), a plugin pushed with
//! `git` and live at once, broken plugins refused at push with file and line, and a policy that
//! revokes a capability.

use crate::support::*;

/// Wait until `dir` holds `n` delivered files (not counting the outbox's `.…tmp` files, which
/// are renamed into place once written).
fn wait_for_files(dir: &std::path::Path, n: usize) -> Vec<std::path::PathBuf> {
    for _ in 0..200 {
        let files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect())
            .unwrap_or_default();
        if files.len() >= n {
            return files;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{} never held {n} file(s)", dir.display());
}

#[test]
fn the_starter_plugins_run_and_the_contact_form_delivers_through_the_outbox() {
    let server = Server::binary_with(&[]);
    let http = server.http_port.unwrap();
    let (status, _, page) = http_get(http, "/blog/hello-world/");
    assert_eq!(status, 200);
    assert_eq!(page.matches("min read").count(), 1, "the reading time once: {page}");
    assert!(http_get(http, "/about/").2.contains("<p class=\"reading-time\">"), "the plugin's, on an undated page");
    let (status, _, json) = http_get(http, "/api/search?q=offline");
    assert_eq!(status, 200);
    assert!(json.contains("\"/blog/writing-offline/\""), "{json}");

    let (status, _, thanks) = http_post_form(http, "/contact/send", "name=Ada&email=ada%40example.org&message=Hello");
    assert_eq!(status, 200, "{thanks}");
    assert!(thanks.contains("Your message is on its way."));
    let files = wait_for_files(&server.data_dir.join("outbox"), 1);
    let delivered = std::fs::read_to_string(&files[0]).unwrap();
    assert!(delivered.contains("\"message\": \"Hello\""), "{delivered}");

    // The site revokes the grant: the same form now fails cleanly, the rest keeps serving.
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    std::fs::remove_file(clone.join("policies/plugins.cedar")).unwrap();
    server.git_ok(&clone, &["commit", "-qam", "no more webhooks"]);
    server.git_ok(&clone, &["push", "-q", "origin", "main"]);
    let (status, _, _) = http_post_form(http, "/contact/send", "name=Ada&email=ada%40example.org&message=Again");
    assert_eq!(status, 500);
    assert_eq!(http_get(http, "/about/").0, 200);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(wait_for_files(&server.data_dir.join("outbox"), 1).len(), 1, "nothing more was delivered");
    server.assert_repository_sound();
}

#[test]
fn a_pushed_plugin_is_live_and_broken_ones_are_refused_with_file_and_line() {
    let server = Server::binary_with(&[]);
    let http = server.http_port.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clone = server.clone(tmp.path(), "site", &[]);
    let config = std::fs::read_to_string(clone.join("site.toml")).unwrap();
    std::fs::write(clone.join("site.toml"), config.replace("plugins = [", "plugins = [\"hello\", ")).unwrap();
    commit_file(
        &server,
        &clone,
        "plugins/hello/plugin.toml",
        "name = \"hello\"\nversion = \"0.1.0\"\ncapabilities = [\"http.route\"]\nfilters = [\"head\"]\n\
         [[route]]\npath = \"/hello\"\nhandler = \"hello\"\n[settings]\ngreeting = \"Hello\"\n",
    );
    commit_file(
        &server,
        &clone,
        "plugins/hello/main.rhai",
        "fn head(page) { \"<meta name=\\\"hello\\\" content=\\\"1\\\">\" }\n\
         fn hello(request) { #{ json: #{ greeting: settings().greeting + \", \" + (request.query.name ?? \"world\") } } }\n",
    );
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert_success(&out, &["push the plugin"]);
    assert_eq!(http_get(http, "/hello?name=Ada").2, "{\"greeting\":\"Hello, Ada\"}");
    assert!(http_get(http, "/about/").2.contains("<meta name=\"hello\" content=\"1\"></head>"));

    let before = server.server_refs();
    std::fs::write(clone.join("plugins/hello/main.rhai"), "fn head(page) {\n  \"x\" +\n}\nfn hello(request) { 1 }\n")
        .unwrap();
    std::fs::write(
        clone.join("plugins/hello/plugin.toml"),
        "name = \"hello\"\nversion = \"0.1.0\"\ncapabilities = [\"http.route\", \"files.write\"]\n",
    )
    .unwrap();
    server.git_ok(&clone, &["commit", "-qam", "broken"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("plugins/hello/plugin.toml: unknown capability \"files.write\""), "{err}");
    server.git_ok(&clone, &["checkout", "-q", "HEAD~1", "--", "plugins/hello/plugin.toml"]);
    server.git_ok(&clone, &["commit", "-q", "--amend", "-am", "broken script"]);
    let out = server.git_out(&clone, &["push", "origin", "main"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("plugins/hello/main.rhai: line 3:"), "{}", stderr(&out));
    assert_eq!(server.server_refs(), before, "nothing moved");
    assert_eq!(http_get(http, "/hello").2, "{\"greeting\":\"Hello, world\"}", "the old plugin keeps serving");
    server.assert_repository_sound();
}
