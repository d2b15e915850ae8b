//! The monitoring API (SPEC §7): runs, jobs, events, outputs, the agents' batch endpoint
//! `POST /api/records`, the live stream `WS /ws/events`, and the providers' inventory for the
//! dashboard (`/api/proxies`, `/api/fingerprints`). Routes are registered without a
//! trailing slash; the path rewrite (`http::paths`) makes `/api/runs/` and
//! `/tracking/api/runs/` reach them too.
//!
//! Handlers are thin: parse, call `Records` (writes) or the `Store` (reads), map the result.
//! Defaults where the original was silent: page_size 5 for runs (what the original dashboard
//! asks for), 10 for jobs, 50 for outputs, proxies and fingerprints, 100 for events; page ≥ 1,
//! 1 ≤ page_size ≤ 100.

pub mod bench;
mod events;
mod inventory;
mod jobs;
mod outputs;
mod records;
pub mod runs;
mod ws;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use serde::{Deserialize, Deserializer, Serialize};

use crate::app::AppState;
use crate::http::ApiError;
use crate::model::PageRequest;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/runs", get(runs::list).post(runs::create))
        .route("/api/runs/{run_uuid}", get(runs::get).delete(runs::delete))
        .route("/api/runs/{run_uuid}/summary", get(runs::summary))
        .route("/api/runs/{run_uuid}/timeline", get(runs::timeline))
        .route("/api/runs/{run_uuid}/close-jobs", post(runs::close_jobs))
        .route("/api/jobs", get(jobs::list).post(jobs::create))
        .route("/api/jobs/status", patch(jobs::set_status))
        .route("/api/jobs/{job_uuid}", get(jobs::get))
        .route("/api/jobs/{job_uuid}/logs", get(jobs::logs))
        .route("/api/events", get(events::list).post(events::create))
        .route("/api/events/status", patch(events::set_status))
        .route("/api/outputs", get(outputs::list).post(outputs::create))
        .route("/api/records", post(records::apply))
        .route("/api/proxies", get(inventory::proxies))
        .route("/api/fingerprints", get(inventory::fingerprints))
        .route("/ws/events", get(ws::events))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        runs::list,
        runs::create,
        runs::get,
        runs::delete,
        runs::summary,
        runs::timeline,
        runs::close_jobs,
        jobs::list,
        jobs::create,
        jobs::get,
        jobs::logs,
        jobs::set_status,
        events::list,
        events::create,
        events::set_status,
        outputs::list,
        outputs::create,
        records::apply,
        inventory::proxies,
        inventory::fingerprints,
        ws::events,
    ),
    components(schemas(crate::records::wire::RecordOp, crate::http::error::ErrorBody)),
    tags(
        (name = "runs", description = "One launch of a project"),
        (name = "jobs", description = "Units of work of a run"),
        (name = "events", description = "What happened inside a job"),
        (name = "outputs", description = "Rows the jobs produced"),
        (name = "records", description = "Batched writes for agents"),
        (name = "inventory", description = "The providers' proxies and fingerprints (credentials masked, no data)"),
        (name = "live", description = "The live stream of every change"),
    )
)]
struct BackendApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <BackendApi as utoipa::OpenApi>::openapi()
}

/// `{"ok": true}`, the original's answer to deletes and status changes.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OkBody {
    pub ok: bool,
}

impl OkBody {
    pub const YES: OkBody = OkBody { ok: true };
}

/// 201 when a create stored something new, 200 when it was a replay answered with the stored row.
fn create_status(changed: bool) -> StatusCode {
    if changed { StatusCode::CREATED } else { StatusCode::OK }
}

/// `?page=&page_size=`; empty values (`page=`) count as absent, as the original dashboard
/// sends them.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// 1-based page number (default 1).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<i64>, minimum = 1)]
    pub page: Option<i64>,
    /// Items per page, 1 to 100 (default depends on the list).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub page_size: Option<i64>,
}

impl Paging {
    fn request(&self, default_size: u32) -> Result<PageRequest, ApiError> {
        PageRequest::new(self.page, self.page_size, default_size).map_err(ApiError::unprocessable)
    }
}

/// A query value that may be sent empty (`run_uuid=`): empty means absent.
pub(crate) fn empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(raw) if raw.trim().is_empty() => Ok(None),
        Some(raw) => raw.trim().parse().map(Some).map_err(serde::de::Error::custom),
    }
}

pub use crate::http::PathUuid;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Q {
        #[serde(default, deserialize_with = "empty_as_none")]
        n: Option<i64>,
    }

    #[test]
    fn empty_query_values_are_absent() {
        let parse = |raw: &str| serde_urlencoded_like(raw);
        assert_eq!(parse("n=").map(|q| q.n), Ok(None));
        assert_eq!(parse("").map(|q| q.n), Ok(None));
        assert_eq!(parse("n=7").map(|q| q.n), Ok(Some(7)));
        assert!(parse("n=seven").is_err());
    }

    fn serde_urlencoded_like(raw: &str) -> Result<Q, String> {
        let uri: axum::http::Uri = format!("/x?{raw}").parse().map_err(|e| format!("{e}"))?;
        axum::extract::Query::<Q>::try_from_uri(&uri).map(|q| q.0).map_err(|e| e.body_text())
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(Paging::default().request(5).map(|p| (p.page, p.page_size)).ok(), Some((1, 5)));
        let err = Paging { page: Some(0), page_size: None }.request(5).unwrap_err();
        assert_eq!((err.status.as_u16(), err.detail.as_str()), (422, "page must be 1 or more, got 0"));
        let err = Paging { page: None, page_size: Some(101) }.request(5).unwrap_err();
        assert_eq!(err.status.as_u16(), 422);
    }
}
