//! `POST /api/records`: the batch endpoint agents use. A JSON array of tagged mutations
//! (`{"op": "create_event", …}`, see `records::wire::RecordOp`) applied in ONE transaction, in
//! order; the answer is one result per item, in order:
//! `{"ok": true, "changed": bool}` or `{"ok": false, "status": 404, "detail": "…"}`.
//! An item that does not parse or is invalid (422) or names an unknown parent (404) fails
//! alone; the others are stored. The request fails as a whole only when the database is down
//! (503, nothing stored). Replays are harmless: creates are idempotent on their uuids
//! (`changed: false`).

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::http::{ApiError, Json};
use crate::infra::db::StoreError;
use crate::records::Records;
use crate::records::wire::RecordOp;

/// Most items one request may carry.
pub const MAX_BATCH: usize = 5000;

/// The outcome of one item.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ItemOutcome {
    pub ok: bool,
    /// Whether the item changed anything (false for a replay); present when `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// The HTTP status the item alone would have had; present when not `ok`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ItemOutcome {
    fn stored(changed: bool) -> Self {
        Self { ok: true, changed: Some(changed), status: None, detail: None }
    }

    fn failed(status: StatusCode, detail: String) -> Self {
        Self { ok: false, changed: None, status: Some(status.as_u16()), detail: Some(detail) }
    }
}

fn item_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        StoreError::Conflict(_) => StatusCode::CONFLICT,
        StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Applies the items that parse and validate in one transaction; every item gets an outcome.
pub async fn apply_items(records: &Records, items: &[Box<RawValue>]) -> Result<Vec<ItemOutcome>, StoreError> {
    let mut outcomes: Vec<Option<ItemOutcome>> = Vec::with_capacity(items.len());
    let mut mutations = Vec::with_capacity(items.len());
    for (index, raw) in items.iter().enumerate() {
        let parsed = serde_json::from_str::<RecordOp>(raw.get())
            .map_err(|e| format!("item {index}: {e}"))
            .and_then(|op| op.into_mutation().map_err(|e| format!("item {index}: {e}")));
        match parsed {
            Ok(mutation) => {
                mutations.push(mutation);
                outcomes.push(None);
            }
            Err(detail) => outcomes.push(Some(ItemOutcome::failed(StatusCode::UNPROCESSABLE_ENTITY, detail))),
        }
    }
    let mut results = records.apply_owned(mutations).await?.into_iter();
    Ok(outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| match results.next() {
                Some(Ok(applied)) => ItemOutcome::stored(applied.changed()),
                Some(Err(error)) => ItemOutcome::failed(item_status(&error), error.to_string()),
                None => ItemOutcome::failed(StatusCode::INTERNAL_SERVER_ERROR, "no result for this item".into()),
            })
        })
        .collect())
}

/// Applies a batch of record writes in one transaction.
#[utoipa::path(
    post,
    path = "/api/records",
    tag = "records",
    request_body(content = Vec<RecordOp>, description = "Mutations, applied in order: create_run, update_run, create_job, update_job, create_event, update_event, create_output, append_log"),
    responses(
        (status = 200, description = "One outcome per item, in order", body = Vec<ItemOutcome>),
        (status = 413, description = "More than 5000 items or a body over the size cap", body = crate::http::error::ErrorBody),
        (status = 422, description = "The body is not a JSON array", body = crate::http::error::ErrorBody),
        (status = 503, description = "Database down: nothing was stored", body = crate::http::error::ErrorBody),
    )
)]
pub async fn apply(
    State(state): State<AppState>,
    Json(items): Json<Vec<Box<RawValue>>>,
) -> Result<Json<Vec<ItemOutcome>>, ApiError> {
    if items.len() > MAX_BATCH {
        return Err(ApiError::too_large(format!(
            "{} records in one request; send at most {MAX_BATCH} per request",
            items.len()
        )));
    }
    Ok(Json(apply_items(&state.records, &items).await?))
}
