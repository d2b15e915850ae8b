//! Queries: single records, pages (newest first, insertion order breaking ties), counts, logs.
//! Each page and its total are read in one transaction, so they agree.

use futures::TryStreamExt;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{Sqlite, SqliteConnection};
use uuid::Uuid;

use super::rows::{self, event_columns, job_columns, output_columns, run_columns};
use super::unavailable;
use crate::infra::db::StoreError;
use crate::infra::db::effects::LogTail;
use crate::model::{AgentSummary, Event, Job, Output, Page, PageRequest, Run, Timestamp};

type Decode<T> = fn(&SqliteRow) -> Result<T, StoreError>;

pub(super) const LIST_RUNS: &str =
    concat!("SELECT ", run_columns!(), " FROM armada_runs ORDER BY run_datetime DESC, rowid DESC LIMIT ? OFFSET ?");
pub(super) const LIST_JOBS_OF_RUN: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM armada_jobs WHERE run_uuid = ? ORDER BY job_datetime DESC, rowid DESC LIMIT ? OFFSET ?"
);
pub(super) const LIST_JOBS: &str =
    concat!("SELECT ", job_columns!(), " FROM armada_jobs ORDER BY job_datetime DESC, rowid DESC LIMIT ? OFFSET ?");
pub(super) const LIST_EVENTS_OF_JOB: &str = concat!(
    "SELECT ",
    event_columns!(),
    " FROM armada_events WHERE job_uuid = ? ORDER BY event_datetime DESC, rowid DESC LIMIT ? OFFSET ?"
);
pub(super) const LIST_OUTPUTS_OF_RUN: &str = concat!(
    "SELECT ",
    output_columns!(),
    " FROM armada_output WHERE run_uuid = ? ORDER BY timestamp DESC, rowid DESC LIMIT ? OFFSET ?"
);
pub(super) const LIST_OUTPUTS: &str =
    concat!("SELECT ", output_columns!(), " FROM armada_output ORDER BY timestamp DESC, rowid DESC LIMIT ? OFFSET ?");
pub(super) const COUNT_JOBS_BY_STATUS: &str =
    "SELECT job_status, COUNT(*) FROM armada_jobs WHERE run_uuid = ? GROUP BY job_status ORDER BY job_status";
pub(super) const AGENT_SUMMARIES: &str = "SELECT job_associated_agent, COUNT(*), \
     SUM(CASE WHEN job_status = 'Success' THEN 1 ELSE 0 END), \
     SUM(CASE WHEN job_status = 'Failed' THEN 1 ELSE 0 END), \
     MAX(MAX(job_datetime, COALESCE(job_finished, job_datetime))) \
     FROM armada_jobs WHERE run_uuid = ? AND job_status <> 'Queued' \
     GROUP BY job_associated_agent ORDER BY job_associated_agent";
pub(super) const RUNNING_JOBS_BY_AGENT: &str = "SELECT job_associated_agent, job_uuid FROM armada_jobs \
     WHERE run_uuid = ? AND job_status = 'Running' ORDER BY job_datetime";
/// Finished jobs per (bucket, status); parameters: bucket size in µs (twice), run.
pub(super) const JOB_TIMELINE: &str = "SELECT (COALESCE(job_finished, job_datetime) / ?) * ? AS bucket, job_status, \
     COUNT(*) FROM armada_jobs WHERE run_uuid = ? AND job_status IN ('Success', 'Failed', 'Cancelled') \
     GROUP BY bucket, job_status ORDER BY bucket";
pub(super) const LOG_CHUNKS_NEWEST_FIRST: &str =
    "SELECT text FROM armada_job_logs WHERE job_uuid = ? ORDER BY seq DESC";

/// Every list statement with a parameter binding, for the query-plan test.
#[cfg(test)]
pub(super) const LISTS: [&str; 8] = [
    LIST_RUNS,
    LIST_JOBS_OF_RUN,
    LIST_JOBS,
    LIST_EVENTS_OF_JOB,
    LIST_OUTPUTS_OF_RUN,
    LIST_OUTPUTS,
    COUNT_JOBS_BY_STATUS,
    LOG_CHUNKS_NEWEST_FIRST,
];

pub(super) async fn get_run(pool: &SqlitePool, run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    find_run(&mut conn, run_uuid).await
}

pub(super) async fn get_job(pool: &SqlitePool, job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    find_job(&mut conn, job_uuid).await
}

/// The row whose key (the statement's one parameter) is `uuid`, if any.
async fn find<T>(
    conn: &mut SqliteConnection,
    sql: &'static str,
    uuid: Uuid,
    decode: Decode<T>,
) -> Result<Option<T>, StoreError> {
    let row = sqlx::query(sql).bind(uuid.to_string()).fetch_optional(&mut *conn).await.map_err(unavailable)?;
    row.as_ref().map(decode).transpose()
}

pub(super) async fn find_run(conn: &mut SqliteConnection, run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
    find(conn, concat!("SELECT ", run_columns!(), " FROM armada_runs WHERE run_uuid = ?"), run_uuid, rows::run).await
}

pub(super) async fn find_job(conn: &mut SqliteConnection, job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
    find(conn, concat!("SELECT ", job_columns!(), " FROM armada_jobs WHERE job_uuid = ?"), job_uuid, rows::job).await
}

pub(super) async fn find_event(conn: &mut SqliteConnection, event_uuid: Uuid) -> Result<Option<Event>, StoreError> {
    let sql = concat!("SELECT ", event_columns!(), " FROM armada_events WHERE event_uuid = ?");
    find(conn, sql, event_uuid, rows::event).await
}

pub(super) async fn find_output(conn: &mut SqliteConnection, output_uuid: Uuid) -> Result<Option<Output>, StoreError> {
    let sql = concat!("SELECT ", output_columns!(), " FROM armada_output WHERE output_uuid = ?");
    find(conn, sql, output_uuid, rows::output).await
}

/// One page and the total count of a list, read in one transaction. `filter` is bound as the
/// first parameter of both statements when present.
pub(super) async fn page<T>(
    pool: &SqlitePool,
    items_sql: &'static str,
    count_sql: &'static str,
    filter: Option<Uuid>,
    page: PageRequest,
    decode: Decode<T>,
) -> Result<Page<T>, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let filter = filter.map(|u| u.to_string());
    let mut count = sqlx::query_scalar::<Sqlite, i64>(count_sql);
    let mut items = sqlx::query(items_sql);
    if let Some(filter) = filter {
        count = count.bind(filter.clone());
        items = items.bind(filter);
    }
    let total = count.fetch_one(&mut *tx).await.map_err(unavailable)?;
    let offset = i64::try_from(page.offset()).unwrap_or(i64::MAX);
    let rows = items.bind(i64::from(page.page_size)).bind(offset).fetch_all(&mut *tx).await.map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(Page {
        items: rows.iter().map(decode).collect::<Result<_, _>>()?,
        total: u64::try_from(total).unwrap_or_default(),
        page: page.page,
        page_size: page.page_size,
    })
}

pub(super) async fn list_runs(pool: &SqlitePool, request: PageRequest) -> Result<Page<Run>, StoreError> {
    page(pool, LIST_RUNS, "SELECT COUNT(*) FROM armada_runs", None, request, rows::run).await
}

pub(super) async fn list_jobs(
    pool: &SqlitePool,
    run_uuid: Option<Uuid>,
    request: PageRequest,
) -> Result<Page<Job>, StoreError> {
    match run_uuid {
        Some(_) => page(
            pool,
            LIST_JOBS_OF_RUN,
            "SELECT COUNT(*) FROM armada_jobs WHERE run_uuid = ?",
            run_uuid,
            request,
            rows::job,
        ),
        None => page(pool, LIST_JOBS, "SELECT COUNT(*) FROM armada_jobs", None, request, rows::job),
    }
    .await
}

pub(super) async fn list_events(
    pool: &SqlitePool,
    job_uuid: Uuid,
    request: PageRequest,
) -> Result<Page<Event>, StoreError> {
    page(
        pool,
        LIST_EVENTS_OF_JOB,
        "SELECT COUNT(*) FROM armada_events WHERE job_uuid = ?",
        Some(job_uuid),
        request,
        rows::event,
    )
    .await
}

pub(super) async fn list_outputs(
    pool: &SqlitePool,
    run_uuid: Option<Uuid>,
    request: PageRequest,
) -> Result<Page<Output>, StoreError> {
    match run_uuid {
        Some(_) => page(
            pool,
            LIST_OUTPUTS_OF_RUN,
            "SELECT COUNT(*) FROM armada_output WHERE run_uuid = ?",
            run_uuid,
            request,
            rows::output,
        ),
        None => page(pool, LIST_OUTPUTS, "SELECT COUNT(*) FROM armada_output", None, request, rows::output),
    }
    .await
}

pub(super) async fn count_jobs_by_status(pool: &SqlitePool, run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as(COUNT_JOBS_BY_STATUS).bind(run_uuid.to_string()).fetch_all(pool).await.map_err(unavailable)?;
    Ok(counts.into_iter().map(|(status, n)| (status, u64::try_from(n).unwrap_or_default())).collect())
}

/// Per-agent counts from the run's started jobs, plus each agent's running job.
pub(super) async fn agent_summaries(pool: &SqlitePool, run_uuid: Uuid) -> Result<Vec<AgentSummary>, StoreError> {
    let run = run_uuid.to_string();
    let rows: Vec<(String, i64, i64, i64, Option<i64>)> =
        sqlx::query_as(AGENT_SUMMARIES).bind(&run).fetch_all(pool).await.map_err(unavailable)?;
    let running: Vec<(String, String)> =
        sqlx::query_as(RUNNING_JOBS_BY_AGENT).bind(&run).fetch_all(pool).await.map_err(unavailable)?;
    let count = |n: i64| u64::try_from(n).unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|(agent, taken, succeeded, failed, last_seen)| {
            // The newest running job wins when an agent has several (a replayed start).
            let current_job =
                running.iter().rev().find(|(a, _)| *a == agent).and_then(|(_, job)| Uuid::parse_str(job).ok());
            AgentSummary {
                agent,
                jobs_taken: count(taken),
                succeeded: count(succeeded),
                failed: count(failed),
                current_job,
                last_seen: last_seen.map(Timestamp::from_micros),
            }
        })
        .collect())
}

pub(super) async fn job_timeline(
    pool: &SqlitePool,
    run_uuid: Uuid,
    bucket_secs: u32,
) -> Result<Vec<crate::model::TimelineBucket>, StoreError> {
    let size = i64::from(bucket_secs.max(1)) * 1_000_000;
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(JOB_TIMELINE)
        .bind(size)
        .bind(size)
        .bind(run_uuid.to_string())
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    let counts = rows.into_iter().map(|(at, status, n)| (at, status, u64::try_from(n).unwrap_or_default()));
    Ok(crate::infra::db::timeline_buckets(counts, bucket_secs))
}

/// Reads chunks newest first until `max_bytes` are gathered, so a huge log costs no more than
/// the part returned.
pub(super) async fn job_logs(pool: &SqlitePool, job_uuid: Uuid, max_bytes: usize) -> Result<String, StoreError> {
    let mut conn = pool.acquire().await.map_err(unavailable)?;
    let mut rows =
        sqlx::query_scalar::<Sqlite, String>(LOG_CHUNKS_NEWEST_FIRST).bind(job_uuid.to_string()).fetch(&mut *conn);
    let mut log = LogTail::new(max_bytes);
    while log.wants_more() {
        let Some(text) = rows.try_next().await.map_err(unavailable)? else { break };
        log.push(text);
    }
    Ok(log.finish())
}
