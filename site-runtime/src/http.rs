//! The public site over HTTP (Axum): every request is resolved against the current snapshot —
//! documents, listings, taxonomies, feeds, search, aliases (301), files from Git blobs (strong
//! ETags, `If-None-Match`, `Range`), theme files, and the theme's 404 page. Responses carry the
//! snapshot's Content-Security-Policy when its theme extends the edge's.
//!
//! Plugin routes ([`crate::plugin_routes`]) are tried first. Rendered pages are cached per snapshot; files are read from the object database on demand.
//! Index reads are short SQLite queries run inline (they take microseconds and most requests hit
//! the page cache); blob reads of large files are the one place that would benefit from
//! `spawn_blocking`, noted for the ingress/perf work.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gix::ObjectId;

use crate::error::Result;
use crate::feeds;
use crate::index::read::{self, Asset};
use crate::render;
use crate::site::Site;
use crate::snapshot::{Read, Rendered, Snapshot};
use crate::theme::ThemeFile;

/// How long a request waits for a publish's snapshot once the publish's index is committed (the
/// publish then reads the sections and menus and builds the snapshot: milliseconds, more on a
/// large site). Requests retrying at once, five times, answered 503 in that window: 187 of 1.5
/// million requests of a two-minute soak with pushes every second.
const STALE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Between two looks at whether the new snapshot is in.
const STALE_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// The router serving `site`.
pub fn router(site: Arc<Site>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(serve)
        .with_state(site)
}

async fn readyz(State(site): State<Arc<Site>>) -> Response {
    let note = site.status_note().map(|n| format!("{n}\n")).unwrap_or_default();
    let faults = site.faults();
    match site.snapshot() {
        Some(s) if faults.is_empty() => (StatusCode::OK, format!("ready {}\n{note}", s.commit)).into_response(),
        // Not ready, though serving: what is served is not what the branch holds, or may not
        // last (a damaged repository). The first line says why, the second what is served.
        Some(s) => {
            let faults: Vec<String> = faults.iter().map(|f| format!("not ready: {f}\n")).collect();
            let body = format!("{}serving {}\n{note}", faults.concat(), s.commit);
            (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
        }
        None => {
            let faults: Vec<String> = faults.iter().map(|f| format!("{f}\n")).collect();
            (StatusCode::SERVICE_UNAVAILABLE, format!("no commit published yet\n{}{note}", faults.concat()))
                .into_response()
        }
    }
}

/// What a path resolved to.
enum Outcome {
    Page {
        rendered: Rendered,
        cache: bool,
        next_publication: Option<i64>,
    },
    Asset(Asset),
    ThemeFile(ThemeFile, String),
    /// A resized image's file.
    Image(std::path::PathBuf, String),
}

async fn serve(
    State(site): State<Arc<Site>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(path) = decode_path(uri.path()) else {
        return (StatusCode::BAD_REQUEST, "bad path\n").into_response();
    };
    // Plugin routes come first: they may take POST. A handler may run up to its wall-time limit,
    // so it runs on the blocking pool, not on the thread that serves other requests.
    if let Some(snap) = site.snapshot() {
        if let Some(route) = snap.extensions.route(method.as_str(), &path).cloned() {
            let query = uri.query().map(str::to_string);
            let policy = snap.content_security_policy.clone();
            let call = tokio::task::spawn_blocking(move || {
                crate::plugin_routes::serve(&snap, &route, &method, &path, query.as_deref(), &headers, &body)
            });
            let response = call.await.unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            return with_policy(response, policy.as_ref());
        }
    }
    if method != Method::GET && method != Method::HEAD {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET, HEAD")
            .body(Body::from("method not allowed\n"))
            .unwrap_or_default();
    }
    let now = jiff::Timestamp::now().as_second();
    let deadline = std::time::Instant::now() + STALE_WAIT;
    loop {
        let Some(snap) = site.snapshot() else {
            return not_published(&site);
        };
        if let Some(response) = serve_from(&snap, &path, uri.query(), &headers, now) {
            return with_policy(response, snap.content_security_policy.as_ref());
        }
        // The index already holds a newer commit than the snapshot read: its publish is about to
        // swap the new snapshot in.
        if std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(STALE_POLL).await;
    }
    (StatusCode::SERVICE_UNAVAILABLE, "the site is being published; try again\n").into_response()
}

/// Answer a GET or HEAD of `path` from `snap`; `None` when a newer publish overtook the read.
fn serve_from(snap: &Snapshot, path: &str, query: Option<&str>, headers: &HeaderMap, now: i64) -> Option<Response> {
    let (lang, rest) = snap.languages.of_url(path);
    if rest == "/search" {
        let query = search_query(query);
        let json = wants_json(headers);
        return match snap.read(|conn| read::search(conn, &query, lang, 50, now)) {
            Ok(Read::Done(hits)) => Some(search_response(snap, &query, &hits, lang, json)),
            Ok(Read::Stale) => None,
            Err(e) => Some(internal_error(&e)),
        };
    }
    if let Some(hit) = snap.cached(path, now) {
        return Some(page_response(&hit, headers));
    }
    Some(match snap.read(|conn| resolve(snap, conn, path, now)) {
        Ok(Read::Stale) => return None,
        Err(e) => internal_error(&e),
        Ok(Read::Done(Outcome::Page { rendered, cache, next_publication })) => {
            if cache {
                snap.remember(path.to_string(), rendered.clone(), next_publication);
            }
            page_response(&rendered, headers)
        }
        Ok(Read::Done(Outcome::Asset(asset))) => asset_response(snap, &asset, headers),
        Ok(Read::Done(Outcome::ThemeFile(file, content_type))) => {
            theme_file_response(snap, file, &content_type, headers)
        }
        Ok(Read::Done(Outcome::Image(file, content_type))) => image_response(&file, &content_type, headers),
    })
}

/// Render `urls` of `snap` into its page cache (after a publish, off the request path); stops
/// quietly when a newer publish has overtaken the snapshot.
pub(crate) fn warm(snap: &Snapshot, urls: &[String]) {
    for url in urls {
        let now = jiff::Timestamp::now().as_second();
        if snap.cached(url, now).is_some() {
            continue;
        }
        match snap.read(|conn| resolve(snap, conn, url, now)) {
            Ok(Read::Done(Outcome::Page { rendered, cache: true, next_publication })) => {
                snap.remember(url.clone(), rendered, next_publication);
            }
            Ok(Read::Stale) => return,
            Ok(_) => {}
            Err(e) => tracing::warn!(%url, error = %e, "rendering ahead failed"),
        }
    }
}

/// Send the snapshot's Content-Security-Policy (its theme's extension of the edge's), if any.
fn with_policy(mut response: Response, policy: Option<&HeaderValue>) -> Response {
    if let Some(policy) = policy {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy.clone());
    }
    response
}

fn resolve(snap: &Snapshot, conn: &rusqlite::Connection, path: &str, now: i64) -> Result<Outcome> {
    let next_publication = read::next_publication(conn, now)?;
    let page = |rendered| Ok(Outcome::Page { rendered, cache: true, next_publication });
    match path {
        "/robots.txt" => return page(feeds::robots(snap)),
        "/sitemap.xml" => {
            if let Some(xml) = feeds::sitemap(snap, conn, None, now)? {
                return page(xml);
            }
        }
        _ => {}
    }
    if let Some(part) = feeds::sitemap_part(path) {
        if let Some(xml) = feeds::sitemap(snap, conn, Some(part), now)? {
            return page(xml);
        }
    }
    let (lang, rest) = snap.languages.of_url(path);
    match rest {
        "/rss.xml" => return page(feeds::rss(snap, conn, lang, now)?),
        "/atom.xml" => return page(feeds::atom(snap, conn, lang, now)?),
        _ => {}
    }
    if let Some(rendered) = render::render_path(snap, conn, path, now)? {
        return page(rendered);
    }
    if let Some(target) = read::alias_target(conn, path, now)? {
        return page(render::redirect(&target));
    }
    if let Some(asset) = read::asset(conn, path)? {
        return Ok(Outcome::Asset(asset));
    }
    if let Some(name) = path.strip_prefix(crate::images::URL_PREFIX) {
        if let Some(file) = snap.images.file(name) {
            return Ok(Outcome::Image(file, crate::index::mime_type(path)));
        }
    }
    if let Some(file) = snap.theme.static_file(path) {
        return Ok(Outcome::ThemeFile(file.clone(), crate::index::mime_type(path)));
    }
    // `/blog` → `/blog/` when that exists.
    let last = path.rsplit('/').next().unwrap_or("");
    if !path.ends_with('/') && !last.contains('.') {
        let with_slash = format!("{path}/");
        let language_home = snap.languages.of_url(&with_slash).1 == "/";
        if language_home
            || read::document(conn, &with_slash, now)?.is_some()
            || read::alias_target(conn, &with_slash, now)?.is_some()
        {
            return page(render::redirect(&with_slash));
        }
    }
    // Not cached: a later push may create the page, and 404s are cheap to render.
    Ok(Outcome::Page { rendered: render::render_not_found(snap, lang)?, cache: false, next_publication })
}

/// Percent-decode a request path; refuse what cannot name a file of the site.
fn decode_path(raw: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    if !decoded.starts_with('/') || decoded.contains('\0') || decoded.split('/').any(|s| s == "..") {
        return None;
    }
    Some(decoded.into_owned())
}

fn search_query(query: Option<&str>) -> String {
    let Some(q) = query else { return String::new() };
    for pair in q.split('&') {
        if let Some(v) = pair.strip_prefix("q=") {
            let v = v.replace('+', " ");
            return percent_encoding::percent_decode_str(&v).decode_utf8_lossy().chars().take(200).collect();
        }
    }
    String::new()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

fn search_response(snap: &Snapshot, query: &str, hits: &[read::Hit], lang: &str, json: bool) -> Response {
    if json {
        let body = serde_json::json!({ "query": query, "results": hits });
        return ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body.to_string())
            .into_response();
    }
    match render::render_search(snap, query, hits, lang) {
        Ok(r) => page_response(&r, &HeaderMap::new()),
        Err(e) => internal_error(&e),
    }
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn page_response(r: &Rendered, headers: &HeaderMap) -> Response {
    let mut builder = Response::builder().status(r.status);
    // Room for the edge's headers too (security headers, request id, date): the map is then
    // sized once instead of grown and rehashed on the way out.
    if let Some(h) = builder.headers_mut() {
        h.reserve(16);
    }
    if let Some(location) = &r.location {
        return builder.header(header::LOCATION, location).body(Body::empty()).unwrap_or_default();
    }
    if r.status == 200 && etag_matches(headers, &r.etag) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &r.etag)
            .body(Body::empty())
            .unwrap_or_default();
    }
    builder = builder
        .header(header::CONTENT_TYPE, r.content_type)
        .header(header::CACHE_CONTROL, "public, max-age=0, must-revalidate");
    if !r.etag.is_empty() {
        builder = builder.header(header::ETAG, &r.etag);
    }
    builder.body(Body::from(r.body.as_ref().clone())).unwrap_or_default()
}

fn asset_response(snap: &Snapshot, asset: &Asset, headers: &HeaderMap) -> Response {
    let Ok(id) = ObjectId::from_hex(asset.blob.as_bytes()) else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "corrupt index\n").into_response();
    };
    blob_response(snap, id, &asset.content_type, headers)
}

fn theme_file_response(snap: &Snapshot, file: ThemeFile, content_type: &str, headers: &HeaderMap) -> Response {
    match file {
        ThemeFile::Blob(id) => blob_response(snap, id, content_type, headers),
        ThemeFile::Embedded(bytes) => memory_file_response(bytes.to_vec(), content_type, headers),
        ThemeFile::Generated(bytes) => memory_file_response(bytes.to_vec(), content_type, headers),
    }
}

/// A resized image: its name says what it is made of, so it never changes (immutable).
fn image_response(file: &std::path::Path, content_type: &str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", file.file_name().and_then(|n| n.to_str()).unwrap_or_default());
    if etag_matches(headers, &etag) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    match std::fs::read(file) {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type.to_string()),
                (header::ETAG, etag),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_string()),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A theme file held in memory, with an ETag of its bytes.
fn memory_file_response(bytes: Vec<u8>, content_type: &str, headers: &HeaderMap) -> Response {
    let r = render::body_response(200, "application/octet-stream", bytes);
    if etag_matches(headers, &r.etag) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::ETAG, r.etag.clone()),
            (header::CACHE_CONTROL, "public, max-age=3600".to_string()),
        ],
        r.body.to_vec(),
    )
        .into_response()
}

/// A file from a Git blob: the blob id is its strong ETag.
fn blob_response(snap: &Snapshot, id: ObjectId, content_type: &str, headers: &HeaderMap) -> Response {
    let etag = format!("\"{id}\"");
    if etag_matches(headers, &etag) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, &etag)
            .body(Body::empty())
            .unwrap_or_default();
    }
    let bytes = match snap.blob(id) {
        Ok(b) => b,
        Err(e) => return internal_error(&e),
    };
    let total = bytes.len() as u64;
    let mut builder = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "public, max-age=3600");
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|r| parse_range(r, total));
    match range {
        None | Some(RangeRequest::Ignore) => builder.status(StatusCode::OK).body(Body::from(bytes)).unwrap_or_default(),
        Some(RangeRequest::Unsatisfiable) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes */{total}"));
            builder.status(StatusCode::RANGE_NOT_SATISFIABLE).body(Body::empty()).unwrap_or_default()
        }
        Some(RangeRequest::Bytes(start, end)) => {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}"));
            let slice = bytes[start as usize..=end as usize].to_vec();
            builder.status(StatusCode::PARTIAL_CONTENT).body(Body::from(slice)).unwrap_or_default()
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// Serve the whole file (malformed or multi-range requests: RFC 9110 allows ignoring them).
    Ignore,
    Unsatisfiable,
    /// Inclusive byte range.
    Bytes(u64, u64),
}

/// Parse a `Range` header for a file of `total` bytes (single ranges only).
fn parse_range(header: &str, total: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeRequest::Ignore };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((a, b)) = spec.split_once('-') else { return RangeRequest::Ignore };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeRequest::Ignore,
        // `bytes=-N`: the last N bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return RangeRequest::Unsatisfiable,
            Ok(n) => (total.saturating_sub(n), total.saturating_sub(1)),
            Err(_) => return RangeRequest::Ignore,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else { return RangeRequest::Ignore };
            let end = if b.is_empty() {
                total.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(total.saturating_sub(1)),
                    _ => return RangeRequest::Ignore,
                }
            };
            (start, end)
        }
    };
    if total == 0 || parsed.0 >= total {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Bytes(parsed.0, parsed.1)
}

fn internal_error(e: &crate::Error) -> Response {
    tracing::error!(error = %e, "request failed");
    let mut r = (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The answer before anything is served: what is missing, and how to make it.
fn not_published(site: &Site) -> Response {
    let branch = site.branch();
    let text = match site.branch_head() {
        Ok(None) => format!(
            "There is no {branch} branch yet, so there is nothing to show here.\n\
             Make one and push it: git switch -c {branch} && git push origin {branch}\n"
        ),
        _ => format!("{branch} has not been published yet; try again in a moment.\n"),
    };
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeRequest::Bytes(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeRequest::Bytes(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeRequest::Bytes(90, 99));
        assert_eq!(parse_range("bytes=50-500", 100), RangeRequest::Bytes(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeRequest::Unsatisfiable);
        for ignored in ["bytes=5-1", "items=0-1", "bytes=0-1,5-6", "bytes=x-", "bytes=-", "bytes=18446744073709551616-"]
        {
            assert_eq!(parse_range(ignored, 100), RangeRequest::Ignore, "{ignored}");
        }
    }

    #[test]
    fn refuses_traversal_and_nul_in_paths() {
        assert_eq!(decode_path("/blog/hello%20world/").as_deref(), Some("/blog/hello world/"));
        for bad in ["/../etc/passwd", "/a/%2e%2e/b", "/a%00b", "/%ff%fe"] {
            assert!(decode_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reads_the_search_query() {
        assert_eq!(search_query(Some("q=hello+world&x=1")), "hello world");
        assert_eq!(search_query(Some("x=1&q=caf%C3%A9")), "café");
        assert_eq!(search_query(None), "");
    }
}
