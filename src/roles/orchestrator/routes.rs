//! The orchestrator's HTTP handlers: parse, call the `Orchestrator`, map the result.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

use super::Orchestrator;
use super::error::StartError;
use super::prepare::prepare;
use super::upload::read_upload;
use super::view::{ActiveRunsView, RunView, view_error};
use crate::app::AppState;
use crate::http::{ApiError, Json, PathUuid};

/// `{"run_uuid": "…"}`, the original's answer to `POST /bot/start`.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Started {
    pub run_uuid: Uuid,
}

/// The parts of `POST /bot/start` (every part is optional on its own; the template must come
/// as `configtemplate`, inside `project`, or among `files`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct StartForm {
    /// `config/config_template.json`: `run_message`, `default_agent_message`, `default_job_message`.
    #[schema(value_type = Option<String>, format = Binary)]
    configtemplate: Option<Vec<u8>>,
    /// A tune file for the `$env_` placeholders (`config_local.json`, `config_distant.json`, …).
    #[schema(value_type = Option<String>, format = Binary)]
    configtune: Option<Vec<u8>>,
    /// `config/data_job.csv`: one row per job.
    #[schema(value_type = Option<String>, format = Binary)]
    data_job: Option<Vec<u8>>,
    /// `config/data_agent.csv`: one row per agent.
    #[schema(value_type = Option<String>, format = Binary)]
    data_agent: Option<Vec<u8>>,
    /// `requirements.txt` for the agents' Python environment.
    #[schema(value_type = Option<String>, format = Binary)]
    requirements_txt: Option<Vec<u8>>,
    /// The original's single bundled code string, put in each agent message's `code`.
    python_code: Option<String>,
    /// The whole project folder as one `.zip` or `.tar.gz`.
    #[schema(value_type = Option<String>, format = Binary)]
    project: Option<Vec<u8>>,
    /// The project folder file by file, each part's filename its path in the project.
    #[schema(value_type = Option<Vec<String>>, format = Binary)]
    files: Option<Vec<Vec<u8>>>,
    /// `local` or `distant`: which of the project's tune files to apply when no `configtune`
    /// part came (default: `distant` when agents run on Kubernetes, else `local`).
    tune: Option<String>,
    /// A client-chosen run id (a UUID no run has); generated when absent.
    run_uuid: Option<Uuid>,
}

fn orchestrator(state: &AppState) -> Result<Arc<Orchestrator>, ApiError> {
    state.orchestrator.clone().ok_or_else(|| {
        ApiError::unavailable(
            "the orchestrator's engines are not open in this process; restart it with the role enabled",
        )
    })
}

/// Validates the project, then starts the run: records it, stores the agent messages and the
/// bundle, registers and publishes the jobs, launches the agents. A run starts whole or not at
/// all: any failure undoes what was done.
#[utoipa::path(
    post,
    path = "/bot/start",
    tag = "orchestrator",
    request_body(content = StartForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The run is running", body = Started),
        (status = 400, description = "Bad project: the detail names the file, row and field", body = crate::http::error::ErrorBody),
        (status = 409, description = "run_uuid is already used", body = crate::http::error::ErrorBody),
        (status = 413, description = "The upload or a part is over its limit", body = crate::http::error::ErrorBody),
        (status = 503, description = "A dependency is down; nothing was kept", body = crate::http::error::ErrorBody),
    )
)]
pub async fn start(State(state): State<AppState>, request: Request) -> Result<Json<Started>, ApiError> {
    let orchestrator = orchestrator(&state)?;
    let upload = read_upload(request, &orchestrator.settings).await?;
    let settings = orchestrator.settings.clone();
    // Planning and packing a large run is CPU work: off the async workers.
    let prepared =
        tokio::task::spawn_blocking(move || prepare(upload, &settings)).await.map_err(ApiError::internal)??;
    // A task of its own: a client that hangs up mid-start must not cut the start (or its
    // undo) in half, as dropping this handler's future would.
    let starting = tokio::spawn(async move { orchestrator.start_run(prepared).await });
    match starting.await.map_err(ApiError::internal)? {
        Ok(run_uuid) => Ok(Json(Started { run_uuid })),
        Err(StartError::Refused(error)) => Err(error),
        Err(StartError::Failed(failure)) => Err(failure.into_api_error("could not start the run", "")),
    }
}

/// The runs this orchestrator is dispatching or watching, oldest first.
#[utoipa::path(
    get,
    path = "/bot/runs",
    tag = "orchestrator",
    responses((status = 200, body = ActiveRunsView))
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<ActiveRunsView>, ApiError> {
    Ok(Json(orchestrator(&state)?.active_runs_view()))
}

/// A run: status, counts by job status, queue, and each agent (phase from the launcher, jobs
/// taken, current job and last seen from its jobs).
#[utoipa::path(
    get,
    path = "/bot/runs/{run_uuid}",
    tag = "orchestrator",
    params(("run_uuid" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, body = RunView),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
    )
)]
pub async fn get(State(state): State<AppState>, PathUuid(run_uuid): PathUuid) -> Result<Json<RunView>, ApiError> {
    view_or_404(&*orchestrator(&state)?, run_uuid).await
}

async fn view_or_404(orchestrator: &Orchestrator, run_uuid: Uuid) -> Result<Json<RunView>, ApiError> {
    match orchestrator.run_view(run_uuid).await.map_err(view_error)? {
        Some(view) => Ok(Json(view)),
        None => Err(ApiError::not_found(format!("run {run_uuid} not found"))),
    }
}

/// Stops the agents (within the launcher's 2 s stop grace), purges and deletes the queue,
/// closes the open jobs as `Cancelled` and marks the run `cancelled`. Cancelling a cancelled
/// run changes nothing.
#[utoipa::path(
    post,
    path = "/bot/runs/{run_uuid}/cancel",
    tag = "orchestrator",
    params(("run_uuid" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The cancelled run", body = RunView),
        (status = 404, description = "No such run", body = crate::http::error::ErrorBody),
        (status = 409, description = "The run already completed or failed", body = crate::http::error::ErrorBody),
    )
)]
pub async fn cancel(State(state): State<AppState>, PathUuid(run_uuid): PathUuid) -> Result<Json<RunView>, ApiError> {
    let orchestrator = orchestrator(&state)?;
    // Carried through even if the client hangs up (see `start`).
    let cancelling = {
        let orchestrator = orchestrator.clone();
        tokio::spawn(async move { orchestrator.cancel_run(run_uuid).await })
    };
    cancelling.await.map_err(ApiError::internal)??;
    view_or_404(&orchestrator, run_uuid).await
}

/// The run's project bundle (tar.gz), for agents that fetch it over HTTP; its sha256 and size
/// are in each agent message under `_armada`. 404 once the run's keys are gone.
#[utoipa::path(
    get,
    path = "/bot/runs/{run_uuid}/bundle",
    tag = "orchestrator",
    params(("run_uuid" = Uuid, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The bundle", content_type = "application/gzip", body = Vec<u8>),
        (status = 404, description = "Unknown run, or its keys expired", body = crate::http::error::ErrorBody),
    )
)]
pub async fn bundle(State(state): State<AppState>, PathUuid(run_uuid): PathUuid) -> Result<Response, ApiError> {
    match orchestrator(&state)?.bundle(run_uuid).await.map_err(view_error)? {
        Some(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "application/gzip".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{run_uuid}.tar.gz\"")),
            ],
            bytes,
        )
            .into_response()),
        None => Err(ApiError::not_found(format!("run {run_uuid} has no bundle (unknown run, or its keys expired)"))),
    }
}
