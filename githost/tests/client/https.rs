//! What is particular to HTTPS remotes: the token (refused, missing, never shown, never sent to
//! another origin), TLS trust, redirects, servers that are not Git servers, and a truncated
//! answer. Clone, fetch and push themselves run in the scenarios of `main.rs`.

use std::sync::Arc;

use githost::client::{fetch, ClientError, FetchRequest, HttpConnection, HttpOptions, RemoteUrl, Token};
use githost::{Limits, Repository};

use super::http_backend::HttpBackend;
use super::support::{add_commit, assert_sound, git, local_refs, work_repo, Kind, Remote};

fn url(text: &str) -> RemoteUrl {
    RemoteUrl::parse(text).unwrap()
}

/// Clone `url` into a fresh directory and return the error.
async fn clone_err(remote: &Remote, address: &str, options: HttpOptions) -> ClientError {
    let dir = tempfile::tempdir().unwrap();
    let result = match HttpConnection::connect(&url(address), options).await {
        Ok(conn) => githost::client::clone(&conn, "x", &dir.path().join("x.git"), Limits::default()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    let err = result.expect_err("cloned");
    assert!(!err.to_string().contains(&remote.http.as_ref().unwrap().token), "the token shows: {err}");
    assert!(!format!("{err:?}").contains(&remote.http.as_ref().unwrap().token), "the token shows: {err:?}");
    err
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong_and_never_show_the_token() {
    let remote = Remote::start(Kind::Https);
    let work = work_repo(remote.tmp.path(), 2);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);

    let mut wrong = remote.http_options(true);
    wrong.token = Some(Token::new("not-the-token").unwrap());
    let err = clone_err(&remote, &remote.url, wrong).await;
    assert!(err.to_string().contains("refused the token (HTTP 401)"), "{err}");

    let mut none = remote.http_options(true);
    none.token = None;
    let err = clone_err(&remote, &remote.url, none).await;
    assert!(err.to_string().contains("asks for credentials"), "{err}");
    assert!(err.to_string().contains("Authentication required"), "the server's own words: {err}");

    let missing = remote.url.replace("site.git", "nothing-here.git");
    let err = clone_err(&remote, &missing, remote.http_options(true)).await;
    assert!(err.to_string().contains("HTTP 404"), "{err}");

    let dumb = remote.url.replace("/site.git", "/dumb/site.git");
    let err = clone_err(&remote, &dumb, remote.http_options(true)).await;
    assert!(err.to_string().contains("not a smart Git HTTP server"), "{err}");

    // The self-signed certificate is not trusted by the system's roots.
    let mut system_roots = remote.http_options(true);
    system_roots.ca_file = None;
    let err = clone_err(&remote, &remote.url, system_roots).await;
    assert!(matches!(err, ClientError::Tls { .. }) && err.to_string().contains("ca_file"), "{err}");

    // Never a token in clear text.
    let plain = remote.url.replace("https://", "http://");
    let err = clone_err(&remote, &plain, remote.http_options(true)).await;
    assert!(err.to_string().contains("never sent over plain http"), "{err}");

    // Nothing was sent without TLS or to the wrong place with the token: every request that
    // reached the server with the right token was a Git request for the repository.
    for seen in remote.http.as_ref().unwrap().seen() {
        if seen.authorized {
            assert!(seen.path.contains(".git/"), "{seen:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_the_token_stays_with_its_origin() {
    let remote = Remote::start(Kind::Https);
    let work = work_repo(remote.tmp.path(), 3);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    let backend = remote.http.as_ref().unwrap();

    // Same origin: followed, and the rest of the conversation goes to the new address.
    let moved = remote.url.replace("/site.git", "/redirect/site.git");
    let conn = HttpConnection::connect(&url(&moved), remote.http_options(true)).await.unwrap();
    let dir = remote.tmp.path().join("clone.git");
    githost::client::clone(&conn, "site", &dir, Limits::default()).await.expect("clone through a redirect");
    assert_eq!(local_refs(&dir), remote.refs());
    let posts: Vec<_> =
        backend.seen().into_iter().filter(|s| s.method == "POST" && s.path.ends_with("upload-pack")).collect();
    assert!(
        !posts.is_empty() && posts.iter().all(|s| s.path == "/site.git/git-upload-pack" && s.authorized),
        "{posts:?}"
    );

    // Another origin (another port): followed, but the token is not sent there.
    let other = HttpBackend::start(remote.tmp.path(), &backend.token);
    let away = remote.url.replace("/site.git", &format!("/redirect-to/{}/site.git", other.port));
    let conn = HttpConnection::connect(&url(&away), remote.http_options(true)).await.unwrap();
    let err = githost::client::clone(&conn, "x", &remote.tmp.path().join("x.git"), Limits::default())
        .await
        .expect_err("the other origin gets no token");
    assert!(err.to_string().contains("the token is only sent to 127.0.0.1:"), "{err}");
    let there = other.seen();
    assert!(!there.is_empty() && there.iter().all(|s| !s.authorized), "{there:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_answer_leaves_store_and_refs_as_they_were() {
    let remote = Remote::start(Kind::Https);
    let work = work_repo(remote.tmp.path(), 3);
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    let dir = remote.tmp.path().join("clone.git");
    let conn = HttpConnection::connect(&url(&remote.url), remote.http_options(true)).await.unwrap();
    let (repo, _) = githost::client::clone(&conn, "site", &dir, Limits::default()).await.unwrap();
    let before = local_refs(&dir);
    let packs = || std::fs::read_dir(dir.join("objects/pack")).unwrap().count();
    let packs_before = packs();

    for i in 0..3 {
        add_commit(&work, 10 + i);
    }
    remote.git(&work, &["push", "-q", &remote.url, "main"]);
    for v2 in [true, false] {
        let cut = remote.url.replace("/site.git", "/truncate/site.git");
        let conn = HttpConnection::connect(&url(&cut), remote.http_options(v2)).await.unwrap();
        let specs = vec![githost::client::RefSpec::parse("+refs/heads/*:refs/heads/*").unwrap()];
        let err = fetch::fetch(&conn, Arc::clone(&repo), FetchRequest::new(specs), Limits::default())
            .await
            .expect_err("a truncated pack is refused");
        assert!(
            matches!(err, ClientError::Protocol(_) | ClientError::Local(_) | ClientError::Io(_)),
            "v2={v2}: {err:?}"
        );
        assert_eq!(local_refs(&dir), before, "v2={v2}");
        assert_eq!(packs(), packs_before, "v2={v2}: a pack was kept");
        assert_sound(&dir);
    }
    // The honest server, afterwards: everything arrives.
    let specs = vec![githost::client::RefSpec::parse("+refs/heads/*:refs/heads/*").unwrap()];
    fetch::fetch(&conn, Arc::clone(&repo), FetchRequest::new(specs), Limits::default()).await.unwrap();
    assert_eq!(git(&dir, &["rev-parse", "main"]), git(&work, &["rev-parse", "HEAD"]));
    let _: &Repository = &repo;
}
