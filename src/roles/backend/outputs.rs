//! `/api/outputs`: the rows jobs produced (`StandardOutput.send`), per run or all.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Paging, create_status, empty_as_none};
use crate::app::AppState;
use crate::http::{ApiError, Json, Query};
use crate::infra::db::Applied;
use crate::model::Output;
use crate::records::wire::CreateOutput;

const DEFAULT_PAGE_SIZE: u32 = 50;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputsQuery {
    /// Only this run's outputs (all runs when absent).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<uuid::Uuid>)]
    pub run_uuid: Option<Uuid>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OutputsPage {
    pub outputs: Vec<Output>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// Outputs, newest first.
#[utoipa::path(
    get,
    path = "/api/outputs",
    tag = "outputs",
    params(OutputsQuery, Paging),
    responses(
        (status = 200, description = "A page of outputs, newest first (default page_size 50)", body = OutputsPage),
        (status = 422, description = "Bad paging or run_uuid", body = crate::http::error::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<OutputsQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<OutputsPage>, ApiError> {
    let page = state.store().list_outputs(query.run_uuid, paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(OutputsPage { outputs: page.items, total: page.total, page: page.page, page_size: page.page_size }))
}

/// Stores one output row of an existing run (and job, when given).
#[utoipa::path(
    post,
    path = "/api/outputs",
    tag = "outputs",
    request_body = CreateOutput,
    responses(
        (status = 201, description = "Created", body = Output),
        (status = 200, description = "Already recorded: the stored output", body = Output),
        (status = 404, description = "Unknown run or job", body = crate::http::error::ErrorBody),
        (status = 422, description = "Missing or invalid field", body = crate::http::error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateOutput>,
) -> Result<(StatusCode, Json<Output>), ApiError> {
    match state.records.apply_one(body.into_mutation()).await? {
        Applied::Output { output, changed } => Ok((create_status(changed), Json(output))),
        other => Err(ApiError::internal(anyhow::anyhow!("creating an output returned {other:?}"))),
    }
}
