//! The fingerprint provider (SPEC §9): `GET /get-fingerprint` hands out the stored `data` of a
//! random fingerprint matching the vendor, website and "collected on or after" date asked, with
//! `additional_data.desired_ua` applied when the data is a plain profile (`profile`).
//!
//! The request comes as a JSON body on GET (the original's form), as query parameters, or as a
//! POST body (`request`); the handler parses it, asks the store, and maps the outcome.

pub mod profile;
mod request;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;
use crate::http::{ApiError, Json};
use crate::infra::db::FingerprintFilter;
use crate::inventory::wire::FingerprintQuery;
pub use request::FingerprintRequest;

/// Says what became of `desired_ua`: `applied`, or `ignored: not a plain profile`.
pub const DESIRED_UA_HEADER: &str = "x-armada-desired-ua";

pub fn router() -> Router<AppState> {
    Router::new().route("/get-fingerprint", get(get_fingerprint).post(get_fingerprint))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_fingerprint),
    components(schemas(FingerprintQuery, crate::http::error::ErrorBody)),
    tags((name = "fingerprint-provider", description = "Stored browser fingerprints and profiles"))
)]
struct FingerprintProviderApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <FingerprintProviderApi as utoipa::OpenApi>::openapi()
}

/// The stored `data` of a random matching fingerprint. The fields may also be sent as query
/// parameters (`additional_data` as JSON text) or with POST; the body's win.
#[utoipa::path(
    get,
    path = "/get-fingerprint",
    tag = "fingerprint-provider",
    request_body(content = FingerprintQuery, description = "On GET (the original's form) or POST; every field optional"),
    responses(
        (status = 200, description = "The fingerprint's data as stored (desired_ua set on a plain profile)", body = Object),
        (status = 400, description = "A partial or impossible date, or a malformed field", body = crate::http::error::ErrorBody),
        (status = 404, description = "No fingerprint matches", body = crate::http::error::ErrorBody),
    )
)]
pub async fn get_fingerprint(State(state): State<AppState>, uri: Uri, body: Bytes) -> Result<Response, ApiError> {
    let request = FingerprintRequest::parse(uri.query(), &body).map_err(ApiError::bad_request)?;
    let Some(found) = state.store().random_fingerprint(&request.filter).await? else {
        return Err(ApiError::not_found(match describe(&request.filter) {
            Some(filters) => format!("no fingerprint matches {filters}"),
            None => "no fingerprint is stored; import some with `armada import fingerprints FILE.csv`".into(),
        }));
    };
    let mut data = found.data;
    let desired_ua = request.desired_ua.map(|ua| profile::set_user_agent(&mut data, &ua));
    let mut response = Json(data).into_response();
    if let Some(applied) = desired_ua {
        let note = if applied { "applied" } else { "ignored: not a plain profile" };
        response.headers_mut().insert(HeaderName::from_static(DESIRED_UA_HEADER), HeaderValue::from_static(note));
    }
    Ok(response)
}

/// The filters, for messages: `antibot_vendor=datadome, collected on or after 2026-02-01`.
fn describe(filter: &FingerprintFilter) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(vendor) = &filter.antibot_vendor {
        parts.push(format!("antibot_vendor={vendor}"));
    }
    if let Some(website) = &filter.website {
        parts.push(format!("website={website}"));
    }
    if let Some(since) = filter.collected_since {
        parts.push(format!("collected on or after {}", since.as_datetime().format("%Y-%m-%d")));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
