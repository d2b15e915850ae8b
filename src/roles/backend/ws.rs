//! `WS /ws/events`: the live stream (see `records::hub` for message types and back-pressure).

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::http::ApiError;

/// Every stored change as `{"type", "data"}`: new_run, update_run_status, delete_run, new_job,
/// update_job_status, new_event, update_event_status, new_output. With a token configured,
/// pass it as `?token=`. A client that lags `ARMADA_WS_QUEUE` messages behind, blocks a write
/// or stays silent for two heartbeats is disconnected: reconnect and reload.
#[utoipa::path(
    get,
    path = "/ws/events",
    tag = "live",
    params(("token" = Option<String>, Query, description = "The bearer token, when the server requires one")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake", body = crate::http::error::ErrorBody),
        (status = 401, description = "Token required", body = crate::http::error::ErrorBody),
    )
)]
pub async fn events(
    State(state): State<AppState>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match upgrade {
        Ok(upgrade) => {
            let hub = state.records.hub().clone();
            upgrade.on_upgrade(move |socket| async move { hub.serve(socket).await })
        }
        Err(rejection) => ApiError::new(
            rejection.status(),
            format!("{}: this is a WebSocket endpoint, connect with ws:// or wss://", rejection.body_text()),
        )
        .into_response(),
    }
}
