//! The bearer token: when `ARMADA_TOKEN` is set, every `/api`, `/bot` and `/ws` route, and the
//! providers' `/fetch_proxy` and `/get-fingerprint` (they hand out proxy credentials and
//! profiles), require `Authorization: Bearer <token>` (WebSockets may pass `?token=` instead,
//! since browsers cannot set headers on them). `/health`, `/metrics`, `/docs`, `/openapi.json`
//! and the dashboard's files stay open.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::settings::Secret;

/// The providers' routes: they serve no `/api` prefix (the original agents call them so).
const PROVIDER_PATHS: [&str; 2] = ["/fetch_proxy", "/get-fingerprint"];

/// Paths that need the token when one is configured.
pub fn is_protected(path: &str) -> bool {
    PROVIDER_PATHS.contains(&path)
        || ["/api", "/bot", "/ws"]
            .iter()
            .any(|prefix| path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')))
}

pub async fn require_token(State(token): State<Option<Secret>>, request: Request, next: Next) -> Response {
    let Some(token) = token else { return next.run(request).await };
    if !is_protected(request.uri().path()) {
        return next.run(request).await;
    }
    let from_header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let from_query = if request.uri().path().starts_with("/ws") { query_token(request.uri().query()) } else { None };
    match from_header.map(str::to_string).or(from_query) {
        Some(given) if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) => next.run(request).await,
        Some(_) => ApiError::unauthorized("invalid token").into_response(),
        None => ApiError::unauthorized("this server requires a token: send Authorization: Bearer <ARMADA_TOKEN>")
            .into_response(),
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "token").map(|(_, v)| v.into_owned())
}

/// Compares without an early exit, so response timing does not reveal the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_prefixes_only() {
        for path in ["/api/runs", "/api", "/bot/start", "/ws/events", "/fetch_proxy", "/get-fingerprint"] {
            assert!(is_protected(path), "{path}");
        }
        for path in ["/health", "/metrics", "/docs", "/openapi.json", "/", "/apix", "/index.html", "/fetch_proxyx"] {
            assert!(!is_protected(path), "{path}");
        }
    }

    #[test]
    fn query_token_is_decoded() {
        assert_eq!(query_token(Some("a=1&token=ab%2Bc")), Some("ab+c".to_string()));
        assert_eq!(query_token(Some("a=1")), None);
    }

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
