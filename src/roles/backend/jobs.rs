//! `/api/jobs`: list (per run or all), create, get, captured logs, status change.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{OkBody, Paging, PathUuid, create_status, empty_as_none};
use crate::app::AppState;
use crate::http::{ApiError, Json, Query};
use crate::infra::db::Applied;
use crate::model::Job;
use crate::records::wire::{CreateJob, JobStatus};

const DEFAULT_PAGE_SIZE: u32 = 10;
/// `GET /api/jobs/{id}/logs` returns at most this much, the newest kept.
pub const MAX_LOG_BYTES: usize = 1024 * 1024;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this run's jobs (all runs when absent).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<uuid::Uuid>)]
    pub run_uuid: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobsPage {
    pub jobs: Vec<Job>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobLogs {
    pub job_uuid: Uuid,
    /// The worker's captured stdout/stderr, oldest first; at most 1 MiB, the newest kept.
    pub logs: String,
}

/// Jobs, newest first.
#[utoipa::path(
    get,
    path = "/api/jobs",
    tag = "jobs",
    params(JobsQuery, Paging),
    responses(
        (status = 200, description = "A page of jobs, newest first (default page_size 10)", body = JobsPage),
        (status = 422, description = "Bad paging or run_uuid", body = crate::http::error::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<JobsQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<JobsPage>, ApiError> {
    let page = state.store().list_jobs(query.run_uuid, paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(JobsPage { jobs: page.items, total: page.total, page: page.page, page_size: page.page_size }))
}

/// Records a job of an existing run. Replaying a `job_uuid` answers 200 with the stored job.
#[utoipa::path(
    post,
    path = "/api/jobs",
    tag = "jobs",
    request_body = CreateJob,
    responses(
        (status = 201, description = "Created", body = Job),
        (status = 200, description = "Already recorded: the stored job", body = Job),
        (status = 404, description = "Unknown run: create the run first", body = crate::http::error::ErrorBody),
        (status = 422, description = "Missing or invalid field", body = crate::http::error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateJob>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let mutation = body.into_mutation().map_err(ApiError::unprocessable)?;
    match state.records.apply_one(mutation).await? {
        Applied::Job { job, changed } => Ok((create_status(changed), Json(job))),
        other => Err(ApiError::internal(anyhow::anyhow!("creating a job returned {other:?}"))),
    }
}

/// One job.
#[utoipa::path(
    get,
    path = "/api/jobs/{job_uuid}",
    tag = "jobs",
    params(("job_uuid" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, body = Job),
        (status = 404, description = "No such job", body = crate::http::error::ErrorBody),
    )
)]
pub async fn get(State(state): State<AppState>, PathUuid(job_uuid): PathUuid) -> Result<Json<Job>, ApiError> {
    match state.store().get_job(job_uuid).await? {
        Some(job) => Ok(Json(job)),
        None => Err(ApiError::not_found(format!("job {job_uuid} not found"))),
    }
}

/// The job's captured worker output.
#[utoipa::path(
    get,
    path = "/api/jobs/{job_uuid}/logs",
    tag = "jobs",
    params(("job_uuid" = uuid::Uuid, Path, description = "The job's id")),
    responses(
        (status = 200, body = JobLogs),
        (status = 404, description = "No such job", body = crate::http::error::ErrorBody),
    )
)]
pub async fn logs(State(state): State<AppState>, PathUuid(job_uuid): PathUuid) -> Result<Json<JobLogs>, ApiError> {
    if state.store().get_job(job_uuid).await?.is_none() {
        return Err(ApiError::not_found(format!("job {job_uuid} not found")));
    }
    let logs = state.store().job_logs(job_uuid, MAX_LOG_BYTES).await?;
    Ok(Json(JobLogs { job_uuid, logs }))
}

/// Sets a job's status.
#[utoipa::path(
    patch,
    path = "/api/jobs/status",
    tag = "jobs",
    request_body = JobStatus,
    responses(
        (status = 200, body = OkBody),
        (status = 404, description = "No such job", body = crate::http::error::ErrorBody),
        (status = 422, description = "Blank or too long status", body = crate::http::error::ErrorBody),
    )
)]
pub async fn set_status(State(state): State<AppState>, Json(body): Json<JobStatus>) -> Result<Json<OkBody>, ApiError> {
    let mutation = body.into_mutation().map_err(ApiError::unprocessable)?;
    state.records.apply_one(mutation).await?;
    Ok(Json(OkBody::YES))
}
