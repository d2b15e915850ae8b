//! `/api/events`: a job's events (a bare JSON array, as the original answered), create, status.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use uuid::Uuid;

use super::{OkBody, Paging, create_status};
use crate::app::AppState;
use crate::http::{ApiError, Json, Query};
use crate::infra::db::Applied;
use crate::model::Event;
use crate::records::wire::{CreateEvent, EventStatus};

const DEFAULT_PAGE_SIZE: u32 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The job whose events to list.
    pub job_uuid: Uuid,
}

/// A job's events, newest first: a bare array (the original dashboard's shape); the newest
/// 100 unless `page`/`page_size` say otherwise.
#[utoipa::path(
    get,
    path = "/api/events",
    tag = "events",
    params(EventsQuery, Paging),
    responses(
        (status = 200, description = "Events, newest first (default page_size 100)", body = Vec<Event>),
        (status = 422, description = "Missing job_uuid or bad paging", body = crate::http::error::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Vec<Event>>, ApiError> {
    let page = state.store().list_events(query.job_uuid, paging.request(DEFAULT_PAGE_SIZE)?).await?;
    Ok(Json(page.items))
}

/// Records an event of an existing job. Replaying an `event_uuid` answers 200 with the stored event.
#[utoipa::path(
    post,
    path = "/api/events",
    tag = "events",
    request_body = CreateEvent,
    responses(
        (status = 201, description = "Created", body = Event),
        (status = 200, description = "Already recorded: the stored event", body = Event),
        (status = 404, description = "Unknown job: create the job first", body = crate::http::error::ErrorBody),
        (status = 422, description = "Missing or invalid field", body = crate::http::error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateEvent>,
) -> Result<(StatusCode, Json<Event>), ApiError> {
    let mutation = body.into_mutation().map_err(ApiError::unprocessable)?;
    match state.records.apply_one(mutation).await? {
        Applied::Event { event, changed } => Ok((create_status(changed), Json(event))),
        other => Err(ApiError::internal(anyhow::anyhow!("creating an event returned {other:?}"))),
    }
}

/// Sets an event's status.
#[utoipa::path(
    patch,
    path = "/api/events/status",
    tag = "events",
    request_body = EventStatus,
    responses(
        (status = 200, body = OkBody),
        (status = 404, description = "No such event", body = crate::http::error::ErrorBody),
        (status = 422, description = "Blank or too long status", body = crate::http::error::ErrorBody),
    )
)]
pub async fn set_status(
    State(state): State<AppState>,
    Json(body): Json<EventStatus>,
) -> Result<Json<OkBody>, ApiError> {
    let mutation = body.into_mutation().map_err(ApiError::unprocessable)?;
    state.records.apply_one(mutation).await?;
    Ok(Json(OkBody::YES))
}
