//! Plain HTTP forwarding to another role: the request body streams to the target as it
//! arrives and the response body streams back, status and headers pass through (minus
//! hop-by-hop headers), `Authorization` included. A target that refuses the connection is a
//! 502, one that does not answer within `ARMADA_FORWARD_TIMEOUT_SECS` a 504, both with a
//! `detail` naming the target.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use super::Target;
use crate::http::ApiError;

/// Headers that describe one connection, not the message: never forwarded (RFC 9110 §7.6.1),
/// nor is `Host` (the target's own is set) or `Expect` (the body is streamed regardless).
const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// One client for every forward: a pool of kept-alive connections per target. Redirects are
/// passed to the browser, no proxy from the environment is used, timeouts are per request.
fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default()
    })
}

/// The request's headers minus hop-by-hop ones (and those `Connection` names), plus
/// `X-Forwarded-Host` so the target can build links to the address the browser used.
pub(super) fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let lower = name.as_str();
        if HOP_BY_HOP.contains(&lower) || lower == "host" || named_by_connection.iter().any(|n| n == lower) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    if let Some(host) = headers.get(header::HOST) {
        out.insert(HeaderName::from_static("x-forwarded-host"), host.clone());
    }
    out
}

/// The response's headers minus hop-by-hop ones.
fn returned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = forwarded_headers(headers);
    out.remove("x-forwarded-host");
    out
}

/// Forwards `request` (already rewritten to its canonical path) to `base_url` + path + query.
pub(super) async fn forward(target: Target, base_url: &str, timeout: Duration, request: Request) -> Response {
    let path_and_query = request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/").to_string();
    let url = format!("{base_url}{path_and_query}");
    // Logs name the path only: a query may carry a token.
    let path = request.uri().path().to_string();
    let (parts, body) = request.into_parts();
    let method = match reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) {
        Ok(method) => method,
        Err(_) => return ApiError::bad_request(format!("method {} cannot be forwarded", parts.method)).into_response(),
    };
    let upstream = client()
        .request(method, &url)
        .headers(forwarded_headers(&parts.headers))
        .body(reqwest::Body::wrap_stream(body.into_data_stream()));
    let answer = match tokio::time::timeout(timeout, upstream.send()).await {
        Err(_) => {
            tracing::warn!(target = target.name(), base_url, path, "forwarded request timed out");
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the {} at {base_url} did not answer within {} s (ARMADA_FORWARD_TIMEOUT_SECS)",
                    target.name(),
                    seconds(timeout)
                ),
            )
            .into_response();
        }
        Ok(Err(error)) => {
            tracing::warn!(target = target.name(), base_url, path, error = %root_cause(&error), "forwarded request failed");
            return unreachable(target, base_url, &error).into_response();
        }
        Ok(Ok(answer)) => answer,
    };
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = returned_headers(answer.headers());
    let stream = answer.bytes_stream().map_err(std::io::Error::other);
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// Whether `url` answers HTTP at all (any status), for `/health`.
pub(super) async fn reachable(url: &str) -> Result<(), String> {
    match client().get(url).timeout(Duration::from_secs(3)).send().await {
        Ok(_) => Ok(()),
        Err(error) => Err(root_cause(&error)),
    }
}

/// 502 naming the target and the environment variable that points at it.
pub(super) fn unreachable(target: Target, base_url: &str, error: &(dyn std::error::Error + 'static)) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!(
            "the {} at {base_url} is unreachable ({}): {}",
            target.name(),
            target.url_variable(),
            root_cause(error)
        ),
    )
}

/// reqwest's errors say "error sending request for url (…)" first; the reason is at the end
/// of the chain (`Connection refused`).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

pub(super) fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 { format!("{secs:.0}") } else { format!("{secs:.1}") }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn hop_by_hop_headers_and_host_are_dropped_authorization_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("dash.example:3000"));
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let out = forwarded_headers(&headers);
        assert_eq!(out.get(header::AUTHORIZATION).map(|v| v.as_bytes()), Some(&b"Bearer t"[..]));
        assert_eq!(out.get(header::CONTENT_TYPE).map(|v| v.as_bytes()), Some(&b"application/json"[..]));
        assert_eq!(out.get("x-forwarded-host").map(|v| v.as_bytes()), Some(&b"dash.example:3000"[..]));
        for gone in ["host", "connection", "x-private", "transfer-encoding"] {
            assert!(!out.contains_key(gone), "{gone} forwarded");
        }
    }

    #[test]
    fn durations_print_as_whole_or_tenths_of_seconds() {
        assert_eq!(seconds(Duration::from_secs(60)), "60");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5");
    }
}
