//! Path aliases of the original deployment, applied before routing so every layout answers
//! the same URLs:
//! - a trailing slash is optional (`/api/runs/` = `/api/runs`);
//! - `/tracking/X` is `X` (the original dashboard reached the backend through nginx as
//!   `/tracking/api/...` and `/tracking/ws/events/`);
//! - `/api/X` that no backend resource claims is `/X` (the dashboard reached the
//!   orchestrator as `/api/bot/start`); the backend's own `/api/runs`, `/api/jobs`, … win.

use axum::extract::Request;
use axum::http::Uri;

/// First path segments under `/api/` that the backend serves itself.
pub const BACKEND_API_RESOURCES: &[&str] = &["runs", "jobs", "events", "outputs", "records", "proxies", "fingerprints"];

/// The canonical form of a request path.
pub fn canonical_path(path: &str) -> String {
    let mut path = path;
    while let Some(rest) = path.strip_prefix("/tracking") {
        if rest.is_empty() || rest.starts_with('/') {
            path = if rest.is_empty() { "/" } else { rest };
        } else {
            break;
        }
    }
    let mut path = path.to_string();
    while path.len() > 1 && path.ends_with('/') {
        path.pop();
    }
    if let Some(rest) = path.strip_prefix("/api/") {
        let first = rest.split('/').next().unwrap_or_default();
        if !first.is_empty() && !BACKEND_API_RESOURCES.contains(&first) {
            return format!("/{rest}");
        }
    }
    path
}

/// The path as the client sent it, before the alias rewrite; a request extension set on every
/// request by [`rewrite_request`] (the frontend role forwards `/tracking/X` and `/api/X` by it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalPath(pub String);

/// Rewrites the request's URI to its canonical path, keeping the query string.
pub fn rewrite_request(mut request: Request) -> Request {
    let original = request.uri().path().to_string();
    let uri = request.uri();
    let canonical = canonical_path(uri.path());
    if canonical != uri.path() {
        let path_and_query = match uri.query() {
            Some(q) => format!("{canonical}?{q}"),
            None => canonical,
        };
        let mut parts = uri.clone().into_parts();
        if let Ok(pq) = path_and_query.parse() {
            parts.path_and_query = Some(pq);
            if let Ok(new_uri) = Uri::from_parts(parts) {
                *request.uri_mut() = new_uri;
            }
        }
    }
    request.extensions_mut().insert(OriginalPath(original));
    request
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn aliases_of_the_original_deployment() {
        for (input, expected) in [
            ("/api/runs/", "/api/runs"),
            ("/api/runs", "/api/runs"),
            ("/tracking/api/runs/", "/api/runs"),
            ("/tracking/ws/events/", "/ws/events"),
            ("/api/bot/start", "/bot/start"),
            ("/api/bot/start/", "/bot/start"),
            ("/api/jobs/status", "/api/jobs/status"),
            ("/", "/"),
            ("/tracking", "/"),
            ("/tracking/", "/"),
            ("/trackingx/a", "/trackingx/a"),
            ("/docs/", "/docs"),
            ("/api/health", "/health"),
        ] {
            assert_eq!(canonical_path(input), expected, "for {input}");
        }
    }
}
