//! Row → model decoding for the column lists of `sql.rs` (read by name, so a column list can
//! grow without shifting positions).

use chrono::NaiveDateTime;
use tiberius::Row;
use uuid::Uuid;

use super::params::timestamp;
use crate::infra::db::{FingerprintSummary, StoreError, StoredFingerprint, StoredProxy};
use crate::model::{Event, Job, Output, Run, Timestamp};

fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("stored value of {column} is unreadable: {detail}"))
}

fn opt<'r, T: tiberius::FromSql<'r>>(row: &'r Row, column: &str) -> Result<Option<T>, StoreError> {
    row.try_get(column).map_err(|e| corrupt(column, e))
}

fn req<'r, T: tiberius::FromSql<'r>>(row: &'r Row, column: &str) -> Result<T, StoreError> {
    opt(row, column)?.ok_or_else(|| corrupt(column, "NULL in a NOT NULL column"))
}

pub(super) fn text(row: &Row, column: &str) -> Result<String, StoreError> {
    req::<&str>(row, column).map(String::from)
}

pub(super) fn opt_text(row: &Row, column: &str) -> Result<Option<String>, StoreError> {
    opt::<&str>(row, column).map(|v| v.map(String::from))
}

pub(super) fn uuid(row: &Row, column: &str) -> Result<Uuid, StoreError> {
    req(row, column)
}

pub(super) fn bigint(row: &Row, column: &str) -> Result<i64, StoreError> {
    req(row, column)
}

pub(super) fn opt_bigint(row: &Row, column: &str) -> Result<Option<i64>, StoreError> {
    opt(row, column)
}

pub(super) fn datetime(row: &Row, column: &str) -> Result<Timestamp, StoreError> {
    req::<NaiveDateTime>(row, column).map(timestamp)
}

pub(super) fn opt_datetime(row: &Row, column: &str) -> Result<Option<Timestamp>, StoreError> {
    opt::<NaiveDateTime>(row, column).map(|v| v.map(timestamp))
}

/// A `SELECT COUNT_BIG(*)`'s only column.
pub(super) fn count(row: &Row) -> Result<u64, StoreError> {
    let n: Option<i64> = row.try_get(0).map_err(|e| corrupt("COUNT_BIG(*)", e))?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or_default()))
}

/// The window count every page statement returns beside its columns.
pub(super) fn total_rows(row: &Row) -> Result<u64, StoreError> {
    bigint(row, "total_rows").map(|n| u64::try_from(n).unwrap_or_default())
}

pub(super) fn run(row: &Row) -> Result<Run, StoreError> {
    Ok(Run {
        run_uuid: uuid(row, "run_uuid")?,
        run_datetime: datetime(row, "run_datetime")?,
        run_status: opt_text(row, "run_status")?
            .map(|s| s.parse().map_err(|e| corrupt("run_status", e)))
            .transpose()?,
        number_of_agents: opt_bigint(row, "number_of_agents")?,
        number_of_jobs: opt_bigint(row, "number_of_jobs")?,
        run_detail: opt_text(row, "run_detail")?,
        run_finished: opt_datetime(row, "run_finished")?,
    })
}

pub(super) fn job(row: &Row) -> Result<Job, StoreError> {
    Ok(Job {
        job_uuid: uuid(row, "job_uuid")?,
        run_uuid: uuid(row, "run_uuid")?,
        job_datetime: datetime(row, "job_datetime")?,
        job_associated_agent: text(row, "job_associated_agent")?,
        job_status: text(row, "job_status")?,
        job_index: opt_bigint(row, "job_index")?,
        job_attempts: opt_bigint(row, "job_attempts")?,
        job_detail: opt_text(row, "job_detail")?,
        job_finished: opt_datetime(row, "job_finished")?,
    })
}

pub(super) fn event(row: &Row) -> Result<Event, StoreError> {
    Ok(Event {
        event_uuid: uuid(row, "event_uuid")?,
        event_content: text(row, "event_content")?,
        job_uuid: uuid(row, "job_uuid")?,
        event_datetime: datetime(row, "event_datetime")?,
        event_status: text(row, "event_status")?,
    })
}

/// A stored JSON document. Rows written by other tools (raw SQL, the original system) may hold
/// plain text: it comes back as a JSON string.
fn json(row: &Row, column: &str) -> Result<serde_json::Value, StoreError> {
    let data = text(row, column)?;
    Ok(serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)))
}

pub(super) fn output(row: &Row) -> Result<Output, StoreError> {
    Ok(Output {
        output_uuid: uuid(row, "output_uuid")?,
        run_uuid: uuid(row, "run_uuid")?,
        job_uuid: opt(row, "job_uuid")?,
        data: json(row, "data")?,
        timestamp: datetime(row, "timestamp")?,
    })
}

pub(super) fn proxy(row: &Row) -> Result<StoredProxy, StoreError> {
    Ok(StoredProxy {
        proxy_id: bigint(row, "proxy_id")?,
        proxy_url: text(row, "proxy_url")?,
        proxy_provider_name: opt_text(row, "proxy_provider_name")?,
        proxy_type: opt_text(row, "proxy_type")?,
        proxy_rotation_strategy: opt_text(row, "proxy_rotation_strategy")?,
        proxy_location: opt_text(row, "proxy_location")?,
    })
}

pub(super) fn fingerprint_summary(row: &Row) -> Result<FingerprintSummary, StoreError> {
    Ok(FingerprintSummary {
        fingerprint_id: bigint(row, "fingerprint_id")?,
        antibot_vendor: opt_text(row, "antibot_vendor")?,
        website: opt_text(row, "website")?,
        collecting_date: opt_datetime(row, "collecting_date")?,
    })
}

pub(super) fn fingerprint(row: &Row) -> Result<StoredFingerprint, StoreError> {
    Ok(StoredFingerprint { summary: fingerprint_summary(row)?, data: json(row, "data")? })
}
