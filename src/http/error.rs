//! `ApiError`: every HTTP error is JSON `{"detail": "..."}` with the right status, as the
//! original FastAPI services answered.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// The full cause chain of a 5xx; logged, never sent.
    pub source: Option<anyhow::Error>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into(), source: None }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }
    /// A dependency (database, broker, config store, another role) is down.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
    /// An unexpected failure: the client gets a short message and a request id, the log
    /// gets the whole chain.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, detail: "internal error".into(), source: Some(error.into()) }
    }
    pub fn with_source(mut self, error: impl Into<anyhow::Error>) -> Self {
        self.source = Some(error.into());
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = if self.status.is_server_error() {
            let id = uuid::Uuid::new_v4().simple().to_string();
            match &self.source {
                Some(source) => {
                    tracing::error!(request_id = %id, status = self.status.as_u16(), detail = %self.detail, error = format!("{source:#}"), "request failed")
                }
                None => {
                    tracing::error!(request_id = %id, status = self.status.as_u16(), detail = %self.detail, "request failed")
                }
            }
            Some(id)
        } else {
            None
        };
        let body = ErrorBody { detail: self.detail, request_id };
        (self.status, axum::Json(body)).into_response()
    }
}

/// The database's error kinds as HTTP: unknown id 404, bad value 422, conflict 409, down 503.
impl From<crate::infra::db::StoreError> for ApiError {
    fn from(error: crate::infra::db::StoreError) -> Self {
        use crate::infra::db::StoreError;
        match error {
            StoreError::NotFound(detail) => ApiError::not_found(detail),
            StoreError::Invalid(detail) => ApiError::unprocessable(detail),
            StoreError::Conflict(detail) => ApiError::conflict(detail),
            error @ StoreError::Unavailable(_) => {
                ApiError::unavailable("the database is unavailable; retry later").with_source(error)
            }
        }
    }
}
