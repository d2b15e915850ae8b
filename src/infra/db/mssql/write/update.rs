//! Updates: one row each, read under an update lock, changed only when the update sets
//! something new (a repeated identical update reports `changed: false`, as on SQLite).

use uuid::Uuid;

use super::{MAX_LABEL, job_not_found, run_not_found};
use crate::infra::db::effects::updated_run;
use crate::infra::db::mssql::exec::{Failure, execute, rows};
use crate::infra::db::mssql::params::{Param, Statement, bounded, opt_datetime2};
use crate::infra::db::mssql::pool::Client;
use crate::infra::db::mssql::rows as decode;
use crate::infra::db::mssql::sql;
use crate::infra::db::{Applied, JobUpdate, Mutation, StoreError};
use crate::model::{Job, Run, RunStatus};

/// The row under an update lock, decoded.
async fn locked<T>(
    client: &mut Client,
    sql: &sql::Sql,
    key: Uuid,
    decode: fn(&tiberius::Row) -> Result<T, StoreError>,
) -> Result<Option<T>, Failure> {
    let found = rows(client, Statement::new(sql, vec![Param::uuid(key)])?).await?;
    Ok(found.first().map(decode).transpose()?)
}

/// One update, read-modify-write as on SQLite: a repeated identical update changes nothing.
pub(super) async fn update(client: &mut Client, mutation: &Mutation) -> Result<Result<Applied, StoreError>, Failure> {
    match mutation {
        Mutation::UpdateRun { run_uuid, run_status, run_detail } => {
            let Some(current) = locked(client, &sql::LOCK_RUN, *run_uuid, decode::run).await? else {
                return Ok(Err(run_not_found(*run_uuid)));
            };
            let next = updated_run(&current, *run_status, run_detail.as_deref());
            if next == current {
                return Ok(Ok(Applied::Run { run: current, changed: false }));
            }
            execute(client, update_run_statement(&next)?).await?;
            Ok(Ok(Applied::Run { run: next, changed: true }))
        }
        Mutation::UpdateJob(update) => {
            if let Err(e) = check_job_update(update) {
                return Ok(Err(e));
            }
            let Some(current) = locked(client, &sql::LOCK_JOB, update.job_uuid, decode::job).await? else {
                return Ok(Err(job_not_found(update.job_uuid)));
            };
            let next = update.applied_to(&current);
            if next == current {
                return Ok(Ok(Applied::Job { job: current, changed: false }));
            }
            execute(client, update_job_statement(&next)?).await?;
            Ok(Ok(Applied::Job { job: next, changed: true }))
        }
        Mutation::UpdateEvent { event_uuid, event_status } => {
            if let Err(e) = bounded("event_status", event_status, MAX_LABEL) {
                return Ok(Err(e));
            }
            let Some(mut event) = locked(client, &sql::LOCK_EVENT, *event_uuid, decode::event).await? else {
                return Ok(Err(StoreError::NotFound(format!("event {event_uuid} not found"))));
            };
            if event.event_status == *event_status {
                return Ok(Ok(Applied::Event { event, changed: false }));
            }
            execute(client, update_event_statement(*event_uuid, event_status)?).await?;
            event.event_status = event_status.clone();
            Ok(Ok(Applied::Event { event, changed: true }))
        }
        create => Ok(Err(StoreError::Invalid(format!("internal error: {create:?} is not an update")))),
    }
}

pub(super) fn check_job_update(update: &JobUpdate) -> Result<(), StoreError> {
    if let Some(value) = &update.job_status {
        bounded("job_status", value, MAX_LABEL)?;
    }
    if let Some(value) = &update.job_associated_agent {
        bounded("job_associated_agent", value, MAX_LABEL)?;
    }
    opt_datetime2("job_finished", update.job_finished).map(drop)
}

pub(super) fn update_run_statement(run: &Run) -> Result<Statement, StoreError> {
    Statement::new(
        &sql::UPDATE_RUN,
        vec![
            Param::opt_text(run.run_status.map(RunStatus::as_str)),
            Param::opt_text(run.run_detail.as_deref()),
            Param::opt_datetime(opt_datetime2("run_finished", run.run_finished)?),
            Param::uuid(run.run_uuid),
        ],
    )
}

pub(super) fn update_job_statement(job: &Job) -> Result<Statement, StoreError> {
    Statement::new(
        &sql::UPDATE_JOB,
        vec![
            Param::text(job.job_status.as_str()),
            Param::text(job.job_associated_agent.as_str()),
            Param::opt_bigint(job.job_attempts),
            Param::opt_text(job.job_detail.as_deref()),
            Param::opt_datetime(opt_datetime2("job_finished", job.job_finished)?),
            Param::uuid(job.job_uuid),
        ],
    )
}

pub(super) fn update_event_statement(event_uuid: Uuid, event_status: &str) -> Result<Statement, StoreError> {
    Statement::new(&sql::UPDATE_EVENT, vec![Param::text(event_status), Param::uuid(event_uuid)])
}
