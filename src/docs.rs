//! `GET /openapi.json` (generated from the handlers' annotations) and `GET /docs`, a
//! self-contained page that renders it: no CDN, works offline. `/docs` is also the
//! Kubernetes probe path of the backend.

use axum::extract::State;
use axum::response::{Html, IntoResponse};
use utoipa::openapi::OpenApi;

use crate::app::AppState;

/// The OpenAPI document of the roles this process serves.
pub fn openapi(state: &AppState) -> OpenApi {
    let mut doc = utoipa::openapi::OpenApiBuilder::new()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title("Armada")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Runs one automation script at scale. Errors are JSON {\"detail\": \"...\"}. When ARMADA_TOKEN is set, /api, /bot, /ws, /fetch_proxy and /get-fingerprint need Authorization: Bearer <token>.",
                ))
                .build(),
        )
        .build();
    for role in state.settings.enabled_roles() {
        if let Some(part) = crate::roles::openapi(role) {
            doc.merge(part);
        }
    }
    doc
}

pub async fn openapi_json(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(openapi(&state))
}

pub async fn page() -> Html<&'static str> {
    Html(include_str!("../static/docs.html"))
}
