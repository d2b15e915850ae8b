//! Writes: a batch of mutations in one transaction with a result per item, a run's deletion,
//! and closing a run's open jobs.
//!
//! How a batch stays within SQL Server's 2,100 parameters and still answers per item:
//! consecutive creates of one kind (an agent's events, outputs and log chunks; the
//! orchestrator's jobs) become multi-row `INSERT … SELECT … FROM (VALUES …)` statements, cut
//! by [`limits::chunks`] (at most 2,000 parameters and 1,000 rows each, and never the same uuid
//! twice in one statement). Each statement skips uuids already stored and rows whose parent is
//! missing, and `OUTPUT`s the uuids it inserted; one `SELECT … WHERE key IN (…)` of the others
//! finds the ones already stored (a replay: `changed: false`, the stored row returned), and what
//! remains had an unknown parent (`NotFound` for that item only). Updates read-modify-write one
//! row each, under an update lock. Invalid items (too long, out of range) are refused before
//! anything is sent. No item's failure is a server error, so the transaction always commits the
//! others; an unexpected server error rolls all of it back (`XACT_ABORT ON`).

mod lifecycle;
mod update;

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use uuid::Uuid;

use super::exec::{AsyncTxBody, Failure, rows};
use super::limits;
use super::params::{Param, Statement, bounded, datetime2};
use super::pool::{Client, Pool};
use super::rows as decode;
use super::sql::{self, InsertTarget};
use crate::infra::db::{Applied, Mutation, StoreError};
use crate::model::{Run, RunStatus};

pub(super) use self::lifecycle::{delete_run, finish_open_jobs};
#[cfg(test)]
use self::lifecycle::{delete_run_statements, finish_open_jobs_statement};
use self::update::update;
#[cfg(test)]
use self::update::{check_job_update, update_event_statement, update_job_statement, update_run_statement};

/// Longest status or agent name stored (`NVARCHAR(255)`).
const MAX_LABEL: usize = 255;

pub(super) async fn apply(
    pool: &Arc<Pool>,
    batch: &[Mutation],
) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    pool.write("apply", ApplyBatch(batch)).await
}

struct ApplyBatch<'a>(&'a [Mutation]);

type Results = Vec<Result<Applied, StoreError>>;

impl<'c> AsyncTxBody<'c, Results> for ApplyBatch<'_> {
    fn run(&'c self, client: &'c mut Client) -> BoxFuture<'c, Result<Results, Failure>> {
        Box::pin(apply_batch(client, self.0))
    }
}

/// A stretch of the batch applied by one kind of statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// Consecutive creates into one table.
    Creates(&'static str, Range<usize>),
    /// One update.
    Update(usize),
}

fn target(mutation: &Mutation) -> Option<&'static InsertTarget> {
    match mutation {
        Mutation::CreateRun(_) => Some(&sql::RUNS),
        Mutation::CreateJob(_) => Some(&sql::JOBS),
        Mutation::CreateEvent(_) => Some(&sql::EVENTS),
        Mutation::CreateOutput(_) => Some(&sql::OUTPUTS),
        Mutation::AppendLog(_) => Some(&sql::LOGS),
        Mutation::UpdateRun { .. } | Mutation::UpdateJob(_) | Mutation::UpdateEvent { .. } => None,
    }
}

/// Cuts the batch into segments, in order.
pub(super) fn segments(batch: &[Mutation]) -> Vec<Segment> {
    let mut segments: Vec<Segment> = Vec::new();
    for (i, mutation) in batch.iter().enumerate() {
        match (target(mutation), segments.last_mut()) {
            (Some(t), Some(Segment::Creates(table, range))) if *table == t.table => range.end = i + 1,
            (Some(t), _) => segments.push(Segment::Creates(t.table, i..i + 1)),
            (None, _) => segments.push(Segment::Update(i)),
        }
    }
    segments
}

async fn apply_batch(client: &mut Client, batch: &[Mutation]) -> Result<Results, Failure> {
    let mut results: Vec<Option<Result<Applied, StoreError>>> = vec![None; batch.len()];
    for segment in segments(batch) {
        match segment {
            Segment::Creates(_, range) => create_rows(client, batch, range, &mut results).await?,
            Segment::Update(i) => results[i] = Some(update(client, &batch[i]).await?),
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("internal error: an item got no result".into()))))
        .collect())
}

/// A create ready to bind: its uuid and its column values (in `InsertTarget::columns` order).
struct Row {
    index: usize,
    key: Uuid,
    values: Vec<Param>,
}

async fn create_rows(
    client: &mut Client,
    batch: &[Mutation],
    range: Range<usize>,
    results: &mut [Option<Result<Applied, StoreError>>],
) -> Result<(), Failure> {
    let Some(target) = target(&batch[range.start]) else { return Ok(()) };
    let mut valid = Vec::new();
    for index in range {
        match row_values(&batch[index]) {
            Ok((key, values)) => valid.push(Row { index, key, values }),
            Err(e) => results[index] = Some(Err(e)),
        }
    }
    let keys: Vec<Uuid> = valid.iter().map(|row| row.key).collect();
    for chunk in limits::chunks(&keys, target.params_per_row()) {
        let chunk = &valid[chunk];
        let inserted: HashSet<Uuid> =
            rows(client, insert_statement(target, chunk.iter().map(|row| row.values.as_slice()))?)
                .await?
                .iter()
                .map(|row| decode::uuid(row, target.key))
                .collect::<Result<_, _>>()?;
        let others: Vec<Uuid> = chunk.iter().map(|row| row.key).filter(|key| !inserted.contains(key)).collect();
        let mut stored: HashMap<Uuid, tiberius::Row> = HashMap::new();
        if !others.is_empty() {
            let statement = Statement::generated(
                sql::select_stored(target, others.len()),
                others.iter().copied().map(Param::uuid).collect(),
            )?;
            for row in rows(client, statement).await? {
                stored.insert(decode::uuid(&row, target.key)?, row);
            }
        }
        for row in chunk {
            let mutation = &batch[row.index];
            results[row.index] = Some(if inserted.contains(&row.key) {
                created(mutation)
            } else if let Some(stored) = stored.get(&row.key) {
                Ok(replayed(mutation, stored)?)
            } else {
                Err(missing_parent(client, mutation).await?)
            });
        }
    }
    Ok(())
}

/// The multi-row insert of a chunk: each row's position, then its values (in
/// `InsertTarget::columns` order). Also the inventory's imports.
pub(super) fn insert_statement<'v>(
    target: &InsertTarget,
    chunk: impl ExactSizeIterator<Item = &'v [Param]>,
) -> Result<Statement, StoreError> {
    let rows = chunk.len();
    let mut params = Vec::with_capacity(rows * target.params_per_row());
    for (position, values) in chunk.enumerate() {
        params.push(Param::bigint(position as i64));
        params.extend(values.iter().cloned());
    }
    Statement::generated(sql::insert_rows(target, rows), params)
}

/// The uuid and column values of a create, or why it cannot be stored.
pub(super) fn row_values(mutation: &Mutation) -> Result<(Uuid, Vec<Param>), StoreError> {
    Ok(match mutation {
        Mutation::CreateRun(new) => (
            new.run_uuid,
            vec![
                Param::uuid(new.run_uuid),
                Param::datetime(datetime2("run_datetime", new.run_datetime)?),
                Param::opt_text(new.run_status.map(RunStatus::as_str)),
                Param::opt_bigint(new.number_of_agents),
                Param::opt_bigint(new.number_of_jobs),
            ],
        ),
        Mutation::CreateJob(new) => {
            bounded("job_associated_agent", &new.job_associated_agent, MAX_LABEL)?;
            bounded("job_status", &new.job_status, MAX_LABEL)?;
            (
                new.job_uuid,
                vec![
                    Param::uuid(new.job_uuid),
                    Param::uuid(new.run_uuid),
                    Param::datetime(datetime2("job_datetime", new.job_datetime)?),
                    Param::text(new.job_associated_agent.as_str()),
                    Param::text(new.job_status.as_str()),
                    Param::opt_bigint(new.job_index),
                ],
            )
        }
        Mutation::CreateEvent(new) => {
            bounded("event_status", &new.event_status, MAX_LABEL)?;
            (
                new.event_uuid,
                vec![
                    Param::uuid(new.event_uuid),
                    Param::text(new.event_content.as_str()),
                    Param::uuid(new.job_uuid),
                    Param::datetime(datetime2("event_datetime", new.event_datetime)?),
                    Param::text(new.event_status.as_str()),
                ],
            )
        }
        Mutation::CreateOutput(new) => {
            let data = serde_json::to_string(&new.data)
                .map_err(|e| StoreError::Invalid(format!("output data is not serialisable: {e}")))?;
            (
                new.output_uuid,
                vec![
                    Param::uuid(new.output_uuid),
                    Param::uuid(new.run_uuid),
                    Param::opt_uuid(new.job_uuid),
                    Param::text(data),
                    Param::datetime(datetime2("timestamp", new.timestamp)?),
                ],
            )
        }
        Mutation::AppendLog(chunk) => (
            chunk.chunk_uuid,
            vec![Param::uuid(chunk.chunk_uuid), Param::uuid(chunk.job_uuid), Param::text(chunk.text.as_str())],
        ),
        Mutation::UpdateRun { .. } | Mutation::UpdateJob(_) | Mutation::UpdateEvent { .. } => {
            return Err(not_a_create());
        }
    })
}

/// What a create stored, built from the request (as the SQLite store does).
fn created(mutation: &Mutation) -> Result<Applied, StoreError> {
    Ok(match mutation {
        Mutation::CreateRun(new) => Applied::Run { run: new.to_run(), changed: true },
        Mutation::CreateJob(new) => Applied::Job { job: new.to_job(), changed: true },
        Mutation::CreateEvent(new) => Applied::Event { event: new.to_event(), changed: true },
        Mutation::CreateOutput(new) => Applied::Output { output: new.to_output(), changed: true },
        Mutation::AppendLog(chunk) => Applied::Log { job_uuid: chunk.job_uuid, changed: true },
        Mutation::UpdateRun { .. } | Mutation::UpdateJob(_) | Mutation::UpdateEvent { .. } => {
            return Err(not_a_create());
        }
    })
}

fn not_a_create() -> StoreError {
    StoreError::Unavailable("internal error: an update is not a create".into())
}

/// A create whose uuid was already stored: the stored row, unchanged.
fn replayed(mutation: &Mutation, stored: &tiberius::Row) -> Result<Applied, StoreError> {
    Ok(match mutation {
        Mutation::CreateRun(_) => Applied::Run { run: decode::run(stored)?, changed: false },
        Mutation::CreateJob(_) => Applied::Job { job: decode::job(stored)?, changed: false },
        Mutation::CreateEvent(_) => Applied::Event { event: decode::event(stored)?, changed: false },
        Mutation::CreateOutput(_) => Applied::Output { output: decode::output(stored)?, changed: false },
        Mutation::AppendLog(chunk) => Applied::Log { job_uuid: chunk.job_uuid, changed: false },
        Mutation::UpdateRun { .. } | Mutation::UpdateJob(_) | Mutation::UpdateEvent { .. } => {
            return Err(not_a_create());
        }
    })
}

pub(super) fn run_not_found(run_uuid: Uuid) -> StoreError {
    StoreError::NotFound(format!("run {run_uuid} not found; create the run first"))
}

pub(super) fn job_not_found(job_uuid: Uuid) -> StoreError {
    StoreError::NotFound(format!("job {job_uuid} not found; create the job first"))
}

/// Why a create was neither inserted nor already stored: its parent is missing. For an output
/// either parent may be the missing one: say which.
async fn missing_parent(client: &mut Client, mutation: &Mutation) -> Result<StoreError, Failure> {
    Ok(match mutation {
        Mutation::CreateJob(new) => run_not_found(new.run_uuid),
        Mutation::CreateEvent(new) => job_not_found(new.job_uuid),
        Mutation::AppendLog(chunk) => job_not_found(chunk.job_uuid),
        Mutation::CreateOutput(new) => match (find_run(client, new.run_uuid).await?, new.job_uuid) {
            (Some(_), Some(job_uuid)) => job_not_found(job_uuid),
            _ => run_not_found(new.run_uuid),
        },
        Mutation::CreateRun(new) => {
            StoreError::Unavailable(format!("run {} was neither inserted nor found", new.run_uuid))
        }
        Mutation::UpdateRun { .. } | Mutation::UpdateJob(_) | Mutation::UpdateEvent { .. } => not_a_create(),
    })
}

async fn find_run(client: &mut Client, run_uuid: Uuid) -> Result<Option<Run>, Failure> {
    let found = rows(client, Statement::new(&sql::FIND_RUN, vec![Param::uuid(run_uuid)])?).await?;
    Ok(found.first().map(decode::run).transpose()?)
}

#[cfg(test)]
mod tests;
