//! The dashboard's files (`static/`), embedded in the binary: content types, revalidation by
//! ETag, and `index.html` for paths that name no file (the dashboard's own URLs).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::http::ApiError;

/// Everything under `static/` but the API docs page (served at `/docs` by `docs.rs`).
#[derive(RustEmbed)]
#[folder = "static/"]
#[exclude = "docs.html"]
struct Dashboard;

const INDEX: &str = "index.html";

/// Same-origin only; the live stream is a WebSocket to this origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// The content type of a file, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Whether the last segment of `path` looks like a file name (`app.js`), so a miss is a 404
/// rather than the dashboard's page.
fn names_a_file(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|last| last.contains('.'))
}

/// `GET /`: the dashboard.
pub async fn index(method: Method, headers: HeaderMap) -> Response {
    serve(INDEX, &method, &headers)
        .unwrap_or_else(|| ApiError::not_found("the dashboard is not built in").into_response())
}

/// A file of the dashboard by its path (`/app.js`), `index.html` for a path that names no
/// file (`/runs/…`), or `None` when nothing fits (the caller answers 404).
pub fn lookup(path: &str, method: &Method, headers: &HeaderMap) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let relative = path.trim_start_matches('/');
    if let Some(response) = serve(relative, method, headers) {
        return Some(response);
    }
    if names_a_file(relative) { None } else { serve(INDEX, method, headers) }
}

fn serve(relative: &str, method: &Method, headers: &HeaderMap) -> Option<Response> {
    if relative.is_empty() || relative.split('/').any(|segment| segment == ".." || segment.is_empty()) {
        return None;
    }
    let file = Dashboard::get(relative)?;
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|given| given.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else if method == Method::HEAD {
        let mut response = Response::new(Body::empty());
        response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(file.data.len()));
        response
    } else {
        Response::new(Body::from(file.data.into_owned()))
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(relative)));
    // No hashed file names: let the browser keep a copy but ask each time (a 304 is cheap).
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response_headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if relative.ends_with(".html") {
        response_headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        response_headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("js/app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("app.CSS"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn the_dashboard_is_embedded_without_the_docs_page() {
        assert!(Dashboard::get(INDEX).is_some(), "static/index.html is embedded");
        assert!(Dashboard::get("docs.html").is_none(), "docs.html is /docs, not a dashboard file");
    }

    #[test]
    fn paths_that_name_no_file_get_the_dashboard_and_missing_files_get_nothing() {
        let headers = HeaderMap::new();
        let page = lookup("/runs/abc", &Method::GET, &headers).expect("index fallback");
        assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(lookup("/missing.js", &Method::GET, &headers).is_none());
        assert!(lookup("/../Cargo.toml", &Method::GET, &headers).is_none());
        assert!(lookup("/index.html", &Method::POST, &headers).is_none());
    }

    #[test]
    fn a_matching_etag_answers_not_modified() {
        let first = lookup("/index.html", &Method::GET, &HeaderMap::new()).expect("index");
        let etag = first.headers()[header::ETAG].clone();
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, etag);
        let again = lookup("/index.html", &Method::GET, &headers).expect("index");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}
