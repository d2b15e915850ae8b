//! The proxy provider (SPEC §8): `GET /fetch_proxy` hands an agent a random proxy of the
//! inventory matching its filters, optionally checked (exit IP, IPQualityScore, geo-IP time
//! zone) and replaced when a check fails.
//!
//! The handler is thin: parse the query (`params`), call `fetch::fetch_proxy` with a
//! `checks::Checker` built from the settings, map the outcome. The chosen `proxy_url` is the
//! only place a proxy's password leaves this role; logs and errors show it masked.

mod checks;
mod fetch;
pub mod params;

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;

use crate::app::AppState;
use crate::http::{ApiError, Json};
use crate::inventory::wire::FetchedProxy;
pub use fetch::FetchError;
pub use params::FetchProxyParams;

pub fn router() -> Router<AppState> {
    Router::new().route("/fetch_proxy", get(fetch_proxy))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(fetch_proxy),
    components(schemas(FetchedProxy, crate::http::error::ErrorBody)),
    tags((name = "proxy-provider", description = "Proxies from the inventory, optionally checked"))
)]
struct ProxyProviderApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ProxyProviderApi as utoipa::OpenApi>::openapi()
}

/// The query parameters, for the OpenAPI document (the handler reads the raw query so that
/// each bad value is a 400 naming it).
#[allow(dead_code)]
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct FetchProxyQuery {
    /// Equal to the stored provider name, ignoring case.
    proxy_provider_name: Option<String>,
    /// `sticky`, `rotating`, …: equal, ignoring case.
    proxy_rotation_strategy: Option<String>,
    /// `residential`, `mobile`, `datacenter`, …: equal, ignoring case.
    proxy_type: Option<String>,
    /// Contained in the stored location, ignoring case (`Europe` matches `Europe/Paris`).
    proxy_location: Option<String>,
    /// `1`/`true`: fetch an IP-echo URL through the proxy (`ARMADA_IP_ECHO_URL`).
    verify_ip: Option<String>,
    /// `1`/`true`: IPQualityScore must rate the exit IP above `quality_threshold` (skipped
    /// without `IPQS_KEY`).
    verify_quality: Option<String>,
    /// `1`/`true`: the exit IP's geo-IP time zone must contain `proxy_location` (or the
    /// proxy's stored location).
    verify_location: Option<String>,
    /// 0–100, default 70.
    quality_threshold: Option<i64>,
    /// Proxies tried at most, 1–20, default 2.
    max_queries_number: Option<u32>,
}

/// A random proxy matching the filters, with the checks asked.
#[utoipa::path(
    get,
    path = "/fetch_proxy",
    tag = "proxy-provider",
    params(FetchProxyQuery),
    responses(
        (status = 200, description = "A proxy that passed every check asked; `attempt` says which try found it", body = FetchedProxy),
        (status = 400, description = "A bad parameter, named", body = crate::http::error::ErrorBody),
        (status = 404, description = "No proxy matches, or none passed: the reason names each attempt's failed check", body = crate::http::error::ErrorBody),
        (status = 503, description = "The database, IPQualityScore or the geo-IP service is down", body = crate::http::error::ErrorBody),
    )
)]
pub async fn fetch_proxy(State(state): State<AppState>, uri: Uri) -> Result<Json<FetchedProxy>, ApiError> {
    let params = FetchProxyParams::parse(uri.query()).map_err(ApiError::bad_request)?;
    let checker =
        checks::Checker { settings: &state.settings.proxy_checks, ipqs_key: state.settings.ipqs_key.as_ref() };
    match fetch::fetch_proxy(state.store().as_ref(), &checker, params).await {
        Ok(fetched) => Ok(Json(fetched)),
        Err(FetchError::Store(error)) => Err(error.into()),
        Err(error @ FetchError::ServiceDown(_)) => Err(ApiError::unavailable(error.to_string())),
        Err(error) => Err(ApiError::not_found(error.to_string())),
    }
}
