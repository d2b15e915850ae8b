//! The frontend role: serves the dashboard (`static/`, embedded) on `/`, and forwards the
//! paths of the backend and orchestrator to `BACKEND_URL` / `ORCHESTRATOR_URL` — HTTP and
//! WebSocket — when those roles are not in this process, as the original nginx did.
//!
//! Routing: the dashboard is `/` plus one catch-all route, and axum prefers every other route
//! to a catch-all, so the API routes of roles in this process always win. What reaches the
//! catch-all (after the alias rewrite of `http::paths`) is, by [`target_of`]:
//! - canonical `/api/<backend resource>…` and `/ws/…`, or anything sent as `/tracking/X`
//!   → the backend;
//! - canonical `/bot/…`, or anything else sent as `/api/X` → the orchestrator;
//! - anything else → a dashboard file, `index.html` for paths that name no file, or 404.
//!
//! A target role that runs in this process answered already if it had the route, so the
//! catch-all says 404; one that runs elsewhere is forwarded to; one with no URL is a 503.

mod assets;
mod forward;
mod ws_bridge;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};

use crate::app::AppState;
use crate::health::Dependency;
use crate::http::ApiError;
use crate::http::paths::{BACKEND_API_RESOURCES, OriginalPath};
use crate::roles::Role;
use crate::settings::Settings;

pub use assets::content_type;

/// A role the frontend forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Backend,
    Orchestrator,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Backend => "backend",
            Target::Orchestrator => "orchestrator",
        }
    }

    fn role(self) -> Role {
        match self {
            Target::Backend => Role::Backend,
            Target::Orchestrator => Role::Orchestrator,
        }
    }

    fn url_variable(self) -> &'static str {
        match self {
            Target::Backend => "BACKEND_URL",
            Target::Orchestrator => "ORCHESTRATOR_URL",
        }
    }

    fn base_url(self, state: &AppState) -> Option<&str> {
        self.url_in(&state.settings)
    }

    fn url_in(self, settings: &Settings) -> Option<&str> {
        match self {
            Target::Backend => settings.backend_url.as_deref(),
            Target::Orchestrator => settings.orchestrator_url.as_deref(),
        }
    }
}

/// The roles a frontend forwards to, as `/health` dependencies: up when the target answers
/// HTTP at all (its own `/health` says how it is doing). None when the frontend does not run
/// here or the role is in this process.
pub fn dependencies(settings: &Settings) -> Vec<Dependency> {
    if !settings.runs(Role::Frontend) {
        return Vec::new();
    }
    [Target::Backend, Target::Orchestrator]
        .into_iter()
        .filter(|target| !settings.runs(target.role()))
        .filter_map(|target| {
            let base_url = target.url_in(settings)?.to_string();
            let describe = format!("forwarded to {}", without_credentials(&base_url));
            Some(Dependency::new(target.name(), describe, move || {
                let health = format!("{base_url}/health");
                Box::pin(async move { forward::reachable(&health).await })
            }))
        })
        .collect()
}

/// A URL as logs and `/health` may show it: no user or password.
fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.as_str().trim_end_matches('/').to_string()
        }
        Err(_) => "(an invalid URL)".to_string(),
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/", get(assets::index)).route("/{*path}", any(dispatch))
}

/// Which role a path that no route of this process matched belongs to. `canonical` is the
/// path after the alias rewrite, `original` the path as sent.
pub fn target_of(canonical: &str, original: &str) -> Option<Target> {
    let under = |path: &str, prefix: &str| {
        path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
    };
    if under(canonical, "/bot") {
        return Some(Target::Orchestrator);
    }
    if under(canonical, "/ws") {
        return Some(Target::Backend);
    }
    if let Some(rest) = canonical.strip_prefix("/api/") {
        let first = rest.split('/').next().unwrap_or_default();
        if BACKEND_API_RESOURCES.contains(&first) {
            return Some(Target::Backend);
        }
    }
    if under(original, "/tracking") {
        return Some(Target::Backend);
    }
    if under(original, "/api") {
        return Some(Target::Orchestrator);
    }
    None
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let canonical = request.uri().path().to_string();
    let original = request.extensions().get::<OriginalPath>().map(|p| p.0.clone()).unwrap_or_else(|| canonical.clone());
    let Some(target) = target_of(&canonical, &original) else {
        return assets::lookup(&canonical, request.method(), request.headers())
            .unwrap_or_else(|| not_found(request.method(), &original));
    };
    if state.settings.runs(target.role()) {
        return not_found(request.method(), &original);
    }
    let Some(base_url) = target.base_url(&state) else {
        return ApiError::unavailable(format!(
            "the {} role does not run in this process and {} is not set",
            target.name(),
            target.url_variable()
        ))
        .into_response();
    };
    let timeout = state.settings.forward_timeout;
    if is_websocket_upgrade(request.headers()) {
        let (mut parts, _body) = request.into_parts();
        match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => return ws_bridge::bridge(target, base_url, timeout, upgrade, &parts).await,
            Err(rejection) => return ApiError::new(rejection.status(), rejection.body_text()).into_response(),
        }
    }
    forward::forward(target, base_url, timeout, request).await
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

fn not_found(method: &Method, path: &str) -> Response {
    ApiError::not_found(format!("no route for {method} {path}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::paths::canonical_path;

    fn target(original: &str) -> Option<Target> {
        target_of(&canonical_path(original), original)
    }

    #[test]
    fn dependency_descriptions_hide_credentials() {
        assert_eq!(without_credentials("http://user:secret@backend:8000"), "http://backend:8000");
        assert_eq!(without_credentials("not a url"), "(an invalid URL)");
    }

    #[test]
    fn the_original_prefixes_and_the_canonical_paths_pick_their_role() {
        for path in [
            "/tracking/api/runs/",
            "/api/runs",
            "/api/jobs/123/logs",
            "/tracking/ws/events/",
            "/ws/events",
            "/tracking/anything",
        ] {
            assert_eq!(target(path), Some(Target::Backend), "{path}");
        }
        for path in ["/api/bot/start", "/bot/start", "/bot/runs/1/cancel", "/api/something-else"] {
            assert_eq!(target(path), Some(Target::Orchestrator), "{path}");
        }
        for path in ["/app.js", "/runs/abc", "/apix", "/botany", "/wsx"] {
            assert_eq!(target(path), None, "{path}");
        }
    }
}
