//! A run's end of life: deleting it with everything it owns, and closing its open jobs; each
//! in one transaction.

use std::sync::Arc;

use futures::future::BoxFuture;
use uuid::Uuid;

use super::MAX_LABEL;
use crate::infra::db::StoreError;
use crate::infra::db::mssql::exec::{AsyncTxBody, Failure, execute, rows};
use crate::infra::db::mssql::params::{Param, Statement, bounded, datetime2};
use crate::infra::db::mssql::pool::{Client, Pool};
use crate::infra::db::mssql::rows as decode;
use crate::infra::db::mssql::sql;
use crate::model::{Job, Timestamp, status};

pub(in crate::infra::db::mssql) async fn delete_run(pool: &Arc<Pool>, run_uuid: Uuid) -> Result<bool, StoreError> {
    pool.write("delete_run", DeleteRun(run_uuid)).await
}

pub(in crate::infra::db::mssql) async fn finish_open_jobs(
    pool: &Arc<Pool>,
    run_uuid: Uuid,
    job_status: &str,
    detail: &str,
) -> Result<Vec<Job>, StoreError> {
    bounded("job_status", job_status, MAX_LABEL)?;
    let statement = finish_open_jobs_statement(run_uuid, job_status, detail, Timestamp::now())?;
    let mut jobs = pool.write("finish_open_jobs", FinishOpenJobs(statement)).await?;
    jobs.sort_by_key(|job| (job.job_index, job.job_datetime));
    Ok(jobs)
}

struct DeleteRun(Uuid);

struct FinishOpenJobs(Statement);

impl<'c> AsyncTxBody<'c, bool> for DeleteRun {
    fn run(&'c self, client: &'c mut Client) -> BoxFuture<'c, Result<bool, Failure>> {
        Box::pin(async move {
            for statement in delete_run_statements(self.0)? {
                execute(client, statement).await?;
            }
            Ok(execute(client, Statement::new(&sql::DELETE_RUN, vec![Param::uuid(self.0)])?).await? > 0)
        })
    }
}

impl<'c> AsyncTxBody<'c, Vec<Job>> for FinishOpenJobs {
    fn run(&'c self, client: &'c mut Client) -> BoxFuture<'c, Result<Vec<Job>, Failure>> {
        Box::pin(async move {
            let found = rows(client, self.0.clone()).await?;
            Ok(found.iter().map(decode::job).collect::<Result<Vec<_>, _>>()?)
        })
    }
}

/// Children before the run itself (which `DeleteRun` deletes last, to learn whether it existed).
pub(super) fn delete_run_statements(run_uuid: Uuid) -> Result<Vec<Statement>, StoreError> {
    [&sql::DELETE_RUN_LOGS, &sql::DELETE_RUN_EVENTS, &sql::DELETE_RUN_OUTPUTS, &sql::DELETE_RUN_JOBS]
        .into_iter()
        .map(|statement| Statement::new(statement, vec![Param::uuid(run_uuid)]))
        .collect()
}

pub(super) fn finish_open_jobs_statement(
    run_uuid: Uuid,
    job_status: &str,
    detail: &str,
    now: Timestamp,
) -> Result<Statement, StoreError> {
    Statement::new(
        &sql::FINISH_OPEN_JOBS,
        vec![
            Param::text(job_status),
            Param::text(detail),
            Param::datetime(datetime2("job_finished", now)?),
            Param::uuid(run_uuid),
            Param::text(status::FINAL[0]),
            Param::text(status::FINAL[1]),
            Param::text(status::FINAL[2]),
        ],
    )
}
