//! Serving plugin routes over HTTP: the request a handler sees (method, path, query, form,
//! a few headers), and its reply turned into a response — a body, JSON, or a theme template.
//! A handler that fails or exceeds a limit gets a clean 500 page; the failure is logged with the
//! plugin's name and counted towards disabling it.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::extensions::{Reply, RouteRef};
use crate::render;
use crate::snapshot::Snapshot;

/// The largest request body a plugin route accepts (forms, small JSON).
pub const MAX_BODY: usize = 64 * 1024;

/// Request headers a handler sees.
const VISIBLE_HEADERS: &[&str] = &["accept", "accept-language", "content-type", "referer", "user-agent"];

/// `a=1&b=x+y` → `{"a": "1", "b": "x y"}` (the last value of a repeated key wins). Written here
/// because it is ten lines over `percent-encoding`, which the server already uses.
pub fn parse_urlencoded(text: &str) -> Map<String, Value> {
    let decode = |s: &str| percent_encoding::percent_decode_str(&s.replace('+', " ")).decode_utf8_lossy().into_owned();
    text.split('&')
        .filter(|p| !p.is_empty())
        .take(256)
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), Value::String(decode(v))),
            None => (decode(pair), Value::String(String::new())),
        })
        .collect()
}

/// Run the plugin route `route` for this request.
pub fn serve(
    snap: &Snapshot,
    route: &RouteRef,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if body.len() > MAX_BODY {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response();
    }
    let mut request = Map::new();
    request.insert("method".into(), method.as_str().into());
    request.insert("path".into(), path.into());
    request.insert("query".into(), Value::Object(parse_urlencoded(query.unwrap_or(""))));
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if *method == Method::POST {
        if content_type.starts_with("application/x-www-form-urlencoded") {
            request.insert("form".into(), Value::Object(parse_urlencoded(&String::from_utf8_lossy(body))));
        } else if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(body) {
                Ok(json) => {
                    request.insert("json".into(), json);
                }
                Err(e) => return (StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}\n")).into_response(),
            }
        }
    }
    let visible: Map<String, Value> = VISIBLE_HEADERS
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| (h.to_string(), Value::from(v))))
        .collect();
    request.insert("headers".into(), Value::Object(visible));

    let reply = match snap.extensions.handle(route, Value::Object(request)) {
        Ok(reply) => reply,
        Err(e) => {
            tracing::warn!(plugin = %route.plugin, %path, error = %e, "plugin route failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
                "this page is temporarily unavailable\n",
            )
                .into_response();
        }
    };
    let (status, extra, content_type, body) = match reply {
        Reply::Body { status, headers, content_type, body } => (status, headers, content_type, body),
        Reply::Template { status, headers, template, context } => {
            match render::render_plugin_template(snap, &template, &context, status) {
                Ok(r) => (status, headers, r.content_type.to_string(), r.body.to_vec()),
                Err(e) => {
                    tracing::warn!(plugin = %route.plugin, error = %e, "plugin route template failed");
                    return (StatusCode::INTERNAL_SERVER_ERROR, "this page is temporarily unavailable\n")
                        .into_response();
                }
            }
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-store");
    for (name, value) in extra {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response = response.header(n, v);
        }
    }
    let body = if *method == Method::HEAD { Vec::new() } else { body };
    response.body(axum::body::Body::from(body)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms_and_queries() {
        let m = parse_urlencoded("name=Ada+L%C3%B3pez&msg=hi%26bye&flag&=x&bad=%ff");
        assert_eq!(m["name"], "Ada López");
        assert_eq!(m["msg"], "hi&bye");
        assert_eq!(m["flag"], "");
        assert_eq!(m[""], "x");
        assert_eq!(m["bad"], "\u{fffd}");
        assert!(parse_urlencoded("").is_empty());
        assert_eq!(parse_urlencoded(&"a=1&".repeat(10_000)).len(), 1);
    }
}
