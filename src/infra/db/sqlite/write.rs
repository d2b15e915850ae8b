//! Writes: a batch of mutations in one `BEGIN IMMEDIATE` transaction, a run's deletion, and
//! closing a run's open jobs. Inserts are idempotent on their uuid (`ON CONFLICT DO NOTHING`,
//! then the stored row is returned with `changed: false`); an unknown parent is detected by
//! the foreign key and rejects that item only (SQLite aborts the statement, not the transaction).

use sqlx::SqliteConnection;
use sqlx::sqlite::{SqlitePool, SqliteQueryResult};
use uuid::Uuid;

use super::read::{find_event, find_job, find_output, find_run};
use super::rows::{self, job_columns};
use super::unavailable;
use crate::infra::db::effects::updated_run;
use crate::infra::db::{Applied, JobUpdate, Mutation, NewEvent, NewJob, NewLogChunk, NewOutput, NewRun, StoreError};
use crate::model::{Job, RunStatus, Timestamp, status};

/// An item's own outcome inside the outer database outcome: the outer error aborts the batch.
type ItemResult = Result<Result<Applied, StoreError>, StoreError>;

pub(super) async fn apply(
    pool: &SqlitePool,
    batch: &[Mutation],
) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    let mut results = Vec::with_capacity(batch.len());
    for mutation in batch {
        results.push(apply_one(&mut tx, mutation).await?);
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(results)
}

async fn apply_one(conn: &mut SqliteConnection, mutation: &Mutation) -> ItemResult {
    match mutation {
        Mutation::CreateRun(new) => create_run(conn, new).await,
        Mutation::UpdateRun { run_uuid, run_status, run_detail } => {
            update_run(conn, *run_uuid, *run_status, run_detail.as_deref()).await
        }
        Mutation::CreateJob(new) => create_job(conn, new).await,
        Mutation::UpdateJob(update) => update_job(conn, update).await,
        Mutation::CreateEvent(new) => create_event(conn, new).await,
        Mutation::UpdateEvent { event_uuid, event_status } => update_event(conn, *event_uuid, event_status).await,
        Mutation::CreateOutput(new) => create_output(conn, new).await,
        Mutation::AppendLog(chunk) => append_log(conn, chunk).await,
    }
}

/// The outcome of an `INSERT … ON CONFLICT DO NOTHING`: inserted, already there, or refused
/// by a foreign key (unknown parent).
enum Insert {
    Inserted,
    Exists,
    UnknownParent,
}

fn insert_outcome(result: Result<SqliteQueryResult, sqlx::Error>) -> Result<Insert, StoreError> {
    match result {
        Ok(done) if done.rows_affected() > 0 => Ok(Insert::Inserted),
        Ok(_) => Ok(Insert::Exists),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(Insert::UnknownParent),
        Err(e) => Err(unavailable(e)),
    }
}

/// The stored row an `Exists` outcome refers to; gone only if deleted meanwhile (impossible
/// inside our transaction, but reported rather than assumed).
fn stored<T>(row: Option<T>, what: &str, uuid: Uuid) -> Result<T, StoreError> {
    row.ok_or_else(|| StoreError::Unavailable(format!("{what} {uuid} vanished during the transaction")))
}

fn run_not_found(run_uuid: Uuid) -> StoreError {
    StoreError::NotFound(format!("run {run_uuid} not found; create the run first"))
}

fn job_not_found(job_uuid: Uuid) -> StoreError {
    StoreError::NotFound(format!("job {job_uuid} not found; create the job first"))
}

async fn create_run(conn: &mut SqliteConnection, new: &NewRun) -> ItemResult {
    let result = sqlx::query(
        "INSERT INTO armada_runs (run_uuid, run_datetime, run_status, number_of_agents, number_of_jobs) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_uuid) DO NOTHING",
    )
    .bind(new.run_uuid.to_string())
    .bind(new.run_datetime.as_micros())
    .bind(new.run_status.map(RunStatus::as_str))
    .bind(new.number_of_agents)
    .bind(new.number_of_jobs)
    .execute(&mut *conn)
    .await;
    Ok(Ok(match insert_outcome(result)? {
        Insert::Inserted => Applied::Run { run: new.to_run(), changed: true },
        Insert::Exists | Insert::UnknownParent => {
            Applied::Run { run: stored(find_run(conn, new.run_uuid).await?, "run", new.run_uuid)?, changed: false }
        }
    }))
}

/// Sets the status (and the detail when given). Reaching a final status stamps `run_finished`
/// once; a repeated identical update changes nothing.
async fn update_run(
    conn: &mut SqliteConnection,
    run_uuid: Uuid,
    run_status: RunStatus,
    run_detail: Option<&str>,
) -> ItemResult {
    let Some(current) = find_run(conn, run_uuid).await? else { return Ok(Err(run_not_found(run_uuid))) };
    let next = updated_run(&current, run_status, run_detail);
    if next == current {
        return Ok(Ok(Applied::Run { run: current, changed: false }));
    }
    sqlx::query("UPDATE armada_runs SET run_status = ?, run_detail = ?, run_finished = ? WHERE run_uuid = ?")
        .bind(run_status.as_str())
        .bind(next.run_detail.as_deref())
        .bind(next.run_finished.map(Timestamp::as_micros))
        .bind(run_uuid.to_string())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    Ok(Ok(Applied::Run { run: next, changed: true }))
}

async fn create_job(conn: &mut SqliteConnection, new: &NewJob) -> ItemResult {
    let result = sqlx::query(
        "INSERT INTO armada_jobs (job_uuid, run_uuid, job_datetime, job_associated_agent, job_status, job_index) \
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_uuid) DO NOTHING",
    )
    .bind(new.job_uuid.to_string())
    .bind(new.run_uuid.to_string())
    .bind(new.job_datetime.as_micros())
    .bind(new.job_associated_agent.as_str())
    .bind(new.job_status.as_str())
    .bind(new.job_index)
    .execute(&mut *conn)
    .await;
    Ok(match insert_outcome(result)? {
        Insert::Inserted => Ok(Applied::Job { job: new.to_job(), changed: true }),
        Insert::Exists => {
            Ok(Applied::Job { job: stored(find_job(conn, new.job_uuid).await?, "job", new.job_uuid)?, changed: false })
        }
        Insert::UnknownParent => Err(run_not_found(new.run_uuid)),
    })
}

async fn update_job(conn: &mut SqliteConnection, update: &JobUpdate) -> ItemResult {
    let Some(current) = find_job(conn, update.job_uuid).await? else {
        return Ok(Err(job_not_found(update.job_uuid)));
    };
    let next = update.applied_to(&current);
    if next == current {
        return Ok(Ok(Applied::Job { job: current, changed: false }));
    }
    sqlx::query(
        "UPDATE armada_jobs SET job_status = ?, job_associated_agent = ?, job_attempts = ?, job_detail = ?, \
         job_finished = ? WHERE job_uuid = ?",
    )
    .bind(next.job_status.as_str())
    .bind(next.job_associated_agent.as_str())
    .bind(next.job_attempts)
    .bind(next.job_detail.as_deref())
    .bind(next.job_finished.map(Timestamp::as_micros))
    .bind(update.job_uuid.to_string())
    .execute(&mut *conn)
    .await
    .map_err(unavailable)?;
    Ok(Ok(Applied::Job { job: next, changed: true }))
}

async fn create_event(conn: &mut SqliteConnection, new: &NewEvent) -> ItemResult {
    let result = sqlx::query(
        "INSERT INTO armada_events (event_uuid, event_content, job_uuid, event_datetime, event_status) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_uuid) DO NOTHING",
    )
    .bind(new.event_uuid.to_string())
    .bind(new.event_content.as_str())
    .bind(new.job_uuid.to_string())
    .bind(new.event_datetime.as_micros())
    .bind(new.event_status.as_str())
    .execute(&mut *conn)
    .await;
    Ok(match insert_outcome(result)? {
        Insert::Inserted => Ok(Applied::Event { event: new.to_event(), changed: true }),
        Insert::Exists => Ok(Applied::Event {
            event: stored(find_event(conn, new.event_uuid).await?, "event", new.event_uuid)?,
            changed: false,
        }),
        Insert::UnknownParent => Err(job_not_found(new.job_uuid)),
    })
}

async fn update_event(conn: &mut SqliteConnection, event_uuid: Uuid, event_status: &str) -> ItemResult {
    let Some(mut event) = find_event(conn, event_uuid).await? else {
        return Ok(Err(StoreError::NotFound(format!("event {event_uuid} not found"))));
    };
    if event.event_status == event_status {
        return Ok(Ok(Applied::Event { event, changed: false }));
    }
    sqlx::query("UPDATE armada_events SET event_status = ? WHERE event_uuid = ?")
        .bind(event_status)
        .bind(event_uuid.to_string())
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    event.event_status = event_status.to_string();
    Ok(Ok(Applied::Event { event, changed: true }))
}

async fn create_output(conn: &mut SqliteConnection, new: &NewOutput) -> ItemResult {
    let data = match serde_json::to_string(&new.data) {
        Ok(data) => data,
        Err(e) => return Ok(Err(StoreError::Invalid(format!("output data is not serialisable: {e}")))),
    };
    let result = sqlx::query(
        "INSERT INTO armada_output (output_uuid, run_uuid, job_uuid, data, timestamp) \
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (output_uuid) DO NOTHING",
    )
    .bind(new.output_uuid.to_string())
    .bind(new.run_uuid.to_string())
    .bind(new.job_uuid.map(|u| u.to_string()))
    .bind(data)
    .bind(new.timestamp.as_micros())
    .execute(&mut *conn)
    .await;
    Ok(match insert_outcome(result)? {
        Insert::Inserted => Ok(Applied::Output { output: new.to_output(), changed: true }),
        Insert::Exists => Ok(Applied::Output {
            output: stored(find_output(conn, new.output_uuid).await?, "output", new.output_uuid)?,
            changed: false,
        }),
        // Either parent may be the missing one: say which.
        Insert::UnknownParent => match (find_run(conn, new.run_uuid).await?, new.job_uuid) {
            (None, _) => Err(run_not_found(new.run_uuid)),
            (Some(_), Some(job_uuid)) => Err(job_not_found(job_uuid)),
            (Some(_), None) => Err(run_not_found(new.run_uuid)),
        },
    })
}

async fn append_log(conn: &mut SqliteConnection, chunk: &NewLogChunk) -> ItemResult {
    let result = sqlx::query(
        "INSERT INTO armada_job_logs (chunk_uuid, job_uuid, text) VALUES (?, ?, ?) ON CONFLICT (chunk_uuid) DO NOTHING",
    )
    .bind(chunk.chunk_uuid.to_string())
    .bind(chunk.job_uuid.to_string())
    .bind(chunk.text.as_str())
    .execute(&mut *conn)
    .await;
    Ok(match insert_outcome(result)? {
        Insert::Inserted => Ok(Applied::Log { job_uuid: chunk.job_uuid, changed: true }),
        Insert::Exists => Ok(Applied::Log { job_uuid: chunk.job_uuid, changed: false }),
        Insert::UnknownParent => Err(job_not_found(chunk.job_uuid)),
    })
}

/// Deletes children before parents explicitly (the foreign keys also cascade), so the
/// outcome does not depend on `PRAGMA foreign_keys` of whoever opened the file.
pub(super) async fn delete_run(pool: &SqlitePool, run_uuid: Uuid) -> Result<bool, StoreError> {
    let run = run_uuid.to_string();
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    for statement in [
        "DELETE FROM armada_job_logs WHERE job_uuid IN (SELECT job_uuid FROM armada_jobs WHERE run_uuid = ?)",
        "DELETE FROM armada_events WHERE job_uuid IN (SELECT job_uuid FROM armada_jobs WHERE run_uuid = ?)",
        "DELETE FROM armada_output WHERE run_uuid = ?",
        "DELETE FROM armada_jobs WHERE run_uuid = ?",
    ] {
        sqlx::query(statement).bind(run.as_str()).execute(&mut *tx).await.map_err(unavailable)?;
    }
    let deleted = sqlx::query("DELETE FROM armada_runs WHERE run_uuid = ?")
        .bind(run.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?
        .rows_affected();
    tx.commit().await.map_err(unavailable)?;
    Ok(deleted > 0)
}

pub(super) async fn finish_open_jobs(
    pool: &SqlitePool,
    run_uuid: Uuid,
    job_status: &str,
    detail: &str,
) -> Result<Vec<Job>, StoreError> {
    let rows = sqlx::query(concat!(
        "UPDATE armada_jobs SET job_status = ?, job_detail = ?, job_finished = ? \
         WHERE run_uuid = ? AND job_status NOT IN (?, ?, ?) RETURNING ",
        job_columns!()
    ))
    .bind(job_status)
    .bind(detail)
    .bind(Timestamp::now().as_micros())
    .bind(run_uuid.to_string())
    .bind(status::FINAL[0])
    .bind(status::FINAL[1])
    .bind(status::FINAL[2])
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    let mut jobs = rows.iter().map(rows::job).collect::<Result<Vec<_>, _>>()?;
    jobs.sort_by_key(|job| (job.job_index, job.job_datetime));
    Ok(jobs)
}
