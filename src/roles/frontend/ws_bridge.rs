//! The WebSocket bridge: a browser's WebSocket to this process is joined to one opened to the
//! target role (same path and query, so `?token=` travels; `Authorization` too). The target is
//! connected first, so a refused handshake reaches the browser as the target's own status
//! (401 without the token) and a dead target as a 502. Text, binary and close frames cross in
//! both directions; pings and pongs stay on the connection they belong to.

use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Target;
use super::forward::unreachable;
use crate::http::ApiError;

type Upstream = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// `ws://host:port` for `http://host:port` (`wss://` for `https://`).
pub(super) fn ws_base(http_base: &str) -> String {
    if let Some(rest) = http_base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = http_base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        http_base.to_string()
    }
}

/// Connects to the target, then upgrades the browser's connection and joins the two.
pub(super) async fn bridge(
    target: Target,
    base_url: &str,
    timeout: Duration,
    upgrade: WebSocketUpgrade,
    parts: &Parts,
) -> Response {
    let path_and_query = parts.uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let url = format!("{}{path_and_query}", ws_base(base_url));
    let mut upstream_request = match url.as_str().into_client_request() {
        Ok(upstream_request) => upstream_request,
        Err(error) => return unreachable(target, base_url, &error).into_response(),
    };
    if let Some(authorization) = parts.headers.get(header::AUTHORIZATION) {
        upstream_request.headers_mut().insert(header::AUTHORIZATION, authorization.clone());
    }
    let upstream = match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(upstream_request)).await {
        Err(_) => {
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "the {} at {base_url} did not accept the WebSocket within {} s (ARMADA_FORWARD_TIMEOUT_SECS)",
                    target.name(),
                    super::forward::seconds(timeout)
                ),
            )
            .into_response();
        }
        Ok(Err(tungstenite::Error::Http(refused))) => return refused_handshake(*refused),
        Ok(Err(error)) => return unreachable(target, base_url, &error).into_response(),
        Ok(Ok((upstream, _))) => upstream,
    };
    upgrade.on_upgrade(move |browser| join(browser, upstream))
}

/// The target's refusal (status, content type and body) as the browser's answer.
fn refused_handshake(refused: tungstenite::http::Response<Option<Vec<u8>>>) -> Response {
    let status = StatusCode::from_u16(refused.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = refused
        .headers()
        .get("content-type")
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        .unwrap_or_else(|| HeaderValue::from_static("application/json"));
    let body = refused.into_body().unwrap_or_default();
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Pumps frames both ways until either side closes; then closes the other.
async fn join(browser: WebSocket, upstream: Upstream) {
    let (mut browser_tx, mut browser_rx) = browser.split();
    let (mut upstream_tx, mut upstream_rx) = upstream.split();
    let to_upstream = async {
        while let Some(Ok(message)) = browser_rx.next().await {
            let Some(message) = to_tungstenite(message) else { continue };
            let closing = matches!(message, Message::Close(_));
            if upstream_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = upstream_tx.close().await;
    };
    let to_browser = async {
        while let Some(Ok(message)) = upstream_rx.next().await {
            let Some(message) = to_axum(message) else { continue };
            let closing = matches!(message, ws::Message::Close(_));
            if browser_tx.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = browser_tx.close().await;
    };
    tokio::select! {
        () = to_upstream => {}
        () = to_browser => {}
    }
}

fn to_tungstenite(message: ws::Message) -> Option<Message> {
    Some(match message {
        ws::Message::Text(text) => Message::Text(text.as_str().into()),
        ws::Message::Binary(bytes) => Message::Binary(bytes),
        ws::Message::Close(frame) => Message::Close(
            frame.map(|f| CloseFrame { code: CloseCode::from(f.code), reason: f.reason.as_str().into() }),
        ),
        ws::Message::Ping(_) | ws::Message::Pong(_) => return None,
    })
}

fn to_axum(message: Message) -> Option<ws::Message> {
    Some(match message {
        Message::Text(text) => ws::Message::Text(text.as_str().into()),
        Message::Binary(bytes) => ws::Message::Binary(bytes),
        Message::Close(frame) => ws::Message::Close(
            frame.map(|f| ws::CloseFrame { code: u16::from(f.code), reason: f.reason.as_str().into() }),
        ),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_base_follows_the_http_scheme() {
        assert_eq!(ws_base("http://127.0.0.1:8000"), "ws://127.0.0.1:8000");
        assert_eq!(ws_base("https://backend.example"), "wss://backend.example");
    }

    #[test]
    fn frames_convert_both_ways() {
        let text = to_tungstenite(ws::Message::Text("hi".into())).expect("text");
        assert_eq!(text, Message::Text("hi".into()));
        let back = to_axum(text).expect("text");
        assert_eq!(back, ws::Message::Text("hi".into()));
        assert!(to_tungstenite(ws::Message::Ping(Default::default())).is_none());
        let close = to_axum(Message::Close(Some(CloseFrame { code: CloseCode::Away, reason: "bye".into() })));
        assert_eq!(close, Some(ws::Message::Close(Some(ws::CloseFrame { code: 1001, reason: "bye".into() }))));
    }
}
