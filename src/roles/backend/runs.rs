//! `/api/runs`: list, create (idempotent), get, delete with everything under the run.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use super::{OkBody, Paging, PathUuid, create_status};
use crate::app::AppState;
use crate::http::{ApiError, Json, Query};
use crate::infra::db::Applied;
use crate::model::{Run, RunSummary};
use crate::records::wire::CreateRun;

const DEFAULT_PAGE_SIZE: u32 = 5;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunsPage {
    pub runs: Vec<Run>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// Runs, newest first.
#[utoipa::path(
    get,
    path = "/api/runs",
    tag = "runs",
    params(Paging),
    responses(
        (status = 200, description = "A page of runs, newest first (default page_size 5)", body = RunsPage),
        (status = 422, description = "page < 1 or page_size outside 1..=100", body = crate::http::error::ErrorBody),
    )
)]
pub async fn list(State(state): State<AppState>, Query(paging): Query<Paging>) -> Result<Json<RunsPage>, ApiError> {
    let page = state.store().list_runs(paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(RunsPage { runs: page.items, total: page.total, page: page.page, page_size: page.page_size }))
}

/// Records a run. Idempotent: posting the same `run_uuid` again answers 200 with the run as
/// first stored (201 only when it was created now).
#[utoipa::path(
    post,
    path = "/api/runs",
    tag = "runs",
    request_body = CreateRun,
    responses(
        (status = 201, description = "Created", body = Run),
        (status = 200, description = "Already recorded: the stored run", body = Run),
        (status = 422, description = "Missing or invalid field", body = crate::http::error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateRun>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    match state.records.apply_one(body.into_mutation()).await? {
        Applied::Run { run, changed } => Ok((create_status(changed), Json(run))),
        other => Err(ApiError::internal(anyhow::anyhow!("creating a run returned {other:?}"))),
    }
}

/// One run.
#[utoipa::path(
    get,
    path = "/api/runs/{run_uuid}",
    tag = "runs",
    params(("run_uuid" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, body = Run),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
    )
)]
pub async fn get(State(state): State<AppState>, PathUuid(run_uuid): PathUuid) -> Result<Json<Run>, ApiError> {
    match state.store().get_run(run_uuid).await? {
        Some(run) => Ok(Json(run)),
        None => Err(ApiError::not_found(format!("run {run_uuid} not found"))),
    }
}

/// Deletes the run with its jobs, events, logs and outputs; broadcasts `delete_run`. A run the
/// orchestrator is still dispatching or running is refused (409): cancel it first
/// (`POST /bot/runs/{run_uuid}/cancel`), so no agent keeps working for a run that is gone.
#[utoipa::path(
    delete,
    path = "/api/runs/{run_uuid}",
    tag = "runs",
    params(("run_uuid" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, body = OkBody),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
        (status = 409, description = "The run is still dispatching or running", body = crate::http::error::ErrorBody),
    )
)]
pub async fn delete(State(state): State<AppState>, PathUuid(run_uuid): PathUuid) -> Result<Json<OkBody>, ApiError> {
    let run = state.store().get_run(run_uuid).await?;
    if let Some(status) = run.as_ref().and_then(|run| run.run_status)
        && !status.is_final()
    {
        return Err(ApiError::conflict(format!(
            "run {run_uuid} is {status}; cancel it first (POST /bot/runs/{run_uuid}/cancel), then delete it"
        )));
    }
    if !state.records.delete_run(run_uuid).await? {
        return Err(ApiError::not_found(format!("run {run_uuid} not found")));
    }
    // An ended run's config keys only expire; deleting the run deletes them now, when this
    // process holds the orchestrator's config store.
    let agents = run.and_then(|run| run.number_of_agents).and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    if let Some(orchestrator) = &state.orchestrator
        && agents > 0
        && let Err(error) = orchestrator.config_store.delete_run(run_uuid, agents).await
    {
        tracing::warn!(%run_uuid, %error, "run deleted, but not its config keys (they expire)");
    }
    Ok(Json(OkBody::YES))
}

/// A run with its jobs counted by status and a summary per agent (jobs taken, current job, last
/// seen): what the dashboard's run view and `armada runs show` display.
#[utoipa::path(
    get,
    path = "/api/runs/{run_uuid}/summary",
    tag = "runs",
    params(("run_uuid" = uuid::Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, body = RunSummary),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
    )
)]
pub async fn summary(
    State(state): State<AppState>,
    PathUuid(run_uuid): PathUuid,
) -> Result<Json<RunSummary>, ApiError> {
    match state.records.run_summary(run_uuid).await? {
        Some(summary) => Ok(Json(summary)),
        None => Err(ApiError::not_found(format!("run {run_uuid} not found"))),
    }
}

/// `POST /api/runs/{run_uuid}/close-jobs`: the status and reason given to every job that has
/// no outcome yet.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct CloseJobs {
    pub job_status: String,
    #[serde(default)]
    pub job_detail: String,
}

#[derive(Debug, Clone, serde::Deserialize, Serialize, utoipa::ToSchema)]
pub struct ClosedJobs {
    /// How many jobs were closed now.
    pub closed: u64,
}

/// Closes every job of the run that has no outcome yet (`Queued`, `Running`) with the given
/// status and reason, broadcasting `update_job_status` for each. The orchestrator uses it
/// when a run is cancelled or fails.
#[utoipa::path(
    post,
    path = "/api/runs/{run_uuid}/close-jobs",
    tag = "runs",
    params(("run_uuid" = uuid::Uuid, Path, description = "The run's id")),
    request_body = CloseJobs,
    responses(
        (status = 200, body = ClosedJobs),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
        (status = 422, description = "Invalid status", body = crate::http::error::ErrorBody),
    )
)]
pub async fn close_jobs(
    State(state): State<AppState>,
    PathUuid(run_uuid): PathUuid,
    Json(body): Json<CloseJobs>,
) -> Result<Json<ClosedJobs>, ApiError> {
    crate::records::wire::check_status("job_status", &body.job_status).map_err(ApiError::unprocessable)?;
    if state.store().get_run(run_uuid).await?.is_none() {
        return Err(ApiError::not_found(format!("run {run_uuid} not found")));
    }
    let closed = state.records.finish_open_jobs(run_uuid, &body.job_status, &body.job_detail).await?;
    Ok(Json(ClosedJobs { closed: closed.len() as u64 }))
}

/// `?bucket_secs=` of `GET /api/runs/{run_uuid}/timeline`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// Bucket size in seconds, 1 to 86400 (default 60).
    #[serde(default, deserialize_with = "super::empty_as_none")]
    #[param(value_type = Option<u32>, minimum = 1, maximum = 86400)]
    pub bucket_secs: Option<i64>,
}

#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RunTimeline {
    pub run_uuid: uuid::Uuid,
    pub bucket_secs: u32,
    /// Oldest first; buckets in which no job finished are left out.
    pub buckets: Vec<crate::model::TimelineBucket>,
}

/// The run's finished jobs per time bucket (by `job_finished`, else `job_datetime`): the
/// dashboard's throughput and success-rate chart after a reload.
#[utoipa::path(
    get,
    path = "/api/runs/{run_uuid}/timeline",
    tag = "runs",
    params(("run_uuid" = uuid::Uuid, Path, description = "The run's id"), TimelineQuery),
    responses(
        (status = 200, body = RunTimeline),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
        (status = 422, description = "bucket_secs outside 1..=86400", body = crate::http::error::ErrorBody),
    )
)]
pub async fn timeline(
    State(state): State<AppState>,
    PathUuid(run_uuid): PathUuid,
    Query(query): Query<TimelineQuery>,
) -> Result<Json<RunTimeline>, ApiError> {
    let bucket_secs = query.bucket_secs.unwrap_or(60);
    let bucket_secs = u32::try_from(bucket_secs).ok().filter(|secs| (1..=86_400).contains(secs)).ok_or_else(|| {
        ApiError::unprocessable(format!("bucket_secs must be between 1 and 86400, got {bucket_secs}"))
    })?;
    if state.store().get_run(run_uuid).await?.is_none() {
        return Err(ApiError::not_found(format!("run {run_uuid} not found")));
    }
    let buckets = state.store().job_timeline(run_uuid, bucket_secs).await?;
    Ok(Json(RunTimeline { run_uuid, bucket_secs, buckets }))
}
