//! Column lists and row → model decoding, shared by the read and write sides.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::infra::db::StoreError;
use crate::model::{Event, Job, Output, Run, Timestamp};

/// The columns `run_from_row` reads, in a form `concat!` accepts (SQL stays `&'static str`).
macro_rules! run_columns {
    () => {
        "run_uuid, run_datetime, run_status, number_of_agents, number_of_jobs, run_detail, run_finished"
    };
}
macro_rules! job_columns {
    () => {
        "job_uuid, run_uuid, job_datetime, job_associated_agent, job_status, job_index, job_attempts, job_detail, job_finished"
    };
}
macro_rules! event_columns {
    () => {
        "event_uuid, event_content, job_uuid, event_datetime, event_status"
    };
}
macro_rules! output_columns {
    () => {
        "output_uuid, run_uuid, job_uuid, data, timestamp"
    };
}
pub(super) use {event_columns, job_columns, output_columns, run_columns};

fn corrupt(column: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("stored value of {column} is unreadable: {detail}"))
}

pub(super) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(|e| corrupt(column, e))
}

fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let raw: String = get(row, column)?;
    Uuid::parse_str(&raw).map_err(|e| corrupt(column, e))
}

fn opt_uuid(row: &SqliteRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    let raw: Option<String> = get(row, column)?;
    raw.map(|r| Uuid::parse_str(&r).map_err(|e| corrupt(column, e))).transpose()
}

fn timestamp(row: &SqliteRow, column: &str) -> Result<Timestamp, StoreError> {
    get::<i64>(row, column).map(Timestamp::from_micros)
}

fn opt_timestamp(row: &SqliteRow, column: &str) -> Result<Option<Timestamp>, StoreError> {
    get::<Option<i64>>(row, column).map(|v| v.map(Timestamp::from_micros))
}

pub(super) fn run(row: &SqliteRow) -> Result<Run, StoreError> {
    let status: Option<String> = get(row, "run_status")?;
    Ok(Run {
        run_uuid: uuid(row, "run_uuid")?,
        run_datetime: timestamp(row, "run_datetime")?,
        run_status: status.map(|s| s.parse().map_err(|e| corrupt("run_status", e))).transpose()?,
        number_of_agents: get(row, "number_of_agents")?,
        number_of_jobs: get(row, "number_of_jobs")?,
        run_detail: get(row, "run_detail")?,
        run_finished: opt_timestamp(row, "run_finished")?,
    })
}

pub(super) fn job(row: &SqliteRow) -> Result<Job, StoreError> {
    Ok(Job {
        job_uuid: uuid(row, "job_uuid")?,
        run_uuid: uuid(row, "run_uuid")?,
        job_datetime: timestamp(row, "job_datetime")?,
        job_associated_agent: get(row, "job_associated_agent")?,
        job_status: get(row, "job_status")?,
        job_index: get(row, "job_index")?,
        job_attempts: get(row, "job_attempts")?,
        job_detail: get(row, "job_detail")?,
        job_finished: opt_timestamp(row, "job_finished")?,
    })
}

pub(super) fn event(row: &SqliteRow) -> Result<Event, StoreError> {
    Ok(Event {
        event_uuid: uuid(row, "event_uuid")?,
        event_content: get(row, "event_content")?,
        job_uuid: uuid(row, "job_uuid")?,
        event_datetime: timestamp(row, "event_datetime")?,
        event_status: get(row, "event_status")?,
    })
}

pub(super) fn output(row: &SqliteRow) -> Result<Output, StoreError> {
    let data: String = get(row, "data")?;
    Ok(Output {
        output_uuid: uuid(row, "output_uuid")?,
        run_uuid: uuid(row, "run_uuid")?,
        job_uuid: opt_uuid(row, "job_uuid")?,
        // Rows written by other tools (raw SQL) may hold plain text: keep it as a string.
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
        timestamp: timestamp(row, "timestamp")?,
    })
}
