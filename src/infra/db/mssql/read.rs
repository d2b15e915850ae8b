//! Queries: single records, pages (newest first, insertion order breaking ties), counts, logs.
//! A page and its total come from one statement (`COUNT_BIG(*) OVER ()`), so they agree
//! without a snapshot transaction; only a page past the end asks for the total separately.

use std::sync::Arc;

use uuid::Uuid;

use super::limits::page_window;
use super::params::{Param, Statement};
use super::pool::Pool;
use super::rows::{self as decode};
use super::sql::{self, Sql};
use crate::infra::db::StoreError;
use crate::infra::db::effects::LogTail;
use crate::model::{AgentSummary, Event, Job, Output, Page, PageRequest, Run, status};

type Decode<T> = fn(&tiberius::Row) -> Result<T, StoreError>;

/// Log chunks read per round trip while gathering a job's newest bytes.
const LOG_CHUNKS_PER_READ: i64 = 64;

async fn one<T>(pool: &Arc<Pool>, sql: &Sql, key: Uuid, decode: Decode<T>) -> Result<Option<T>, StoreError> {
    let found = pool.read(Statement::new(sql, vec![Param::uuid(key)])?).await?;
    found.first().map(decode).transpose()
}

pub(super) async fn get_run(pool: &Arc<Pool>, run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
    one(pool, &sql::FIND_RUN, run_uuid, decode::run).await
}

pub(super) async fn get_job(pool: &Arc<Pool>, job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
    one(pool, &sql::FIND_JOB, job_uuid, decode::job).await
}

/// The statements of one list: the page (with the window total) and the plain count, and the
/// filter bound first in both when there is one.
struct List {
    page: &'static Sql,
    count: &'static Sql,
    filter: Option<Uuid>,
}

impl List {
    fn page_statement(&self, request: PageRequest) -> Result<Statement, StoreError> {
        let (offset, fetch) = page_window(request);
        let mut params: Vec<Param> = self.filter.into_iter().map(Param::uuid).collect();
        params.extend([Param::bigint(offset), Param::bigint(fetch)]);
        Statement::new(self.page, params)
    }

    fn count_statement(&self) -> Result<Statement, StoreError> {
        Statement::new(self.count, self.filter.into_iter().map(Param::uuid).collect())
    }
}

async fn page<T>(pool: &Arc<Pool>, list: List, request: PageRequest, decode: Decode<T>) -> Result<Page<T>, StoreError> {
    let found = pool.read(list.page_statement(request)?).await?;
    let total = match found.first() {
        Some(row) => decode::total_rows(row)?,
        None if request.offset() == 0 => 0,
        None => {
            let counted = pool.read(list.count_statement()?).await?;
            counted.first().map(decode::count).transpose()?.unwrap_or(0)
        }
    };
    Ok(Page {
        items: found.iter().map(decode).collect::<Result<_, _>>()?,
        total,
        page: request.page,
        page_size: request.page_size,
    })
}

fn runs_list() -> List {
    List { page: &sql::LIST_RUNS, count: &sql::COUNT_RUNS, filter: None }
}

fn jobs_list(run_uuid: Option<Uuid>) -> List {
    match run_uuid {
        Some(_) => List { page: &sql::LIST_JOBS_OF_RUN, count: &sql::COUNT_JOBS_OF_RUN, filter: run_uuid },
        None => List { page: &sql::LIST_JOBS, count: &sql::COUNT_JOBS, filter: None },
    }
}

fn events_list(job_uuid: Uuid) -> List {
    List { page: &sql::LIST_EVENTS_OF_JOB, count: &sql::COUNT_EVENTS_OF_JOB, filter: Some(job_uuid) }
}

fn outputs_list(run_uuid: Option<Uuid>) -> List {
    match run_uuid {
        Some(_) => List { page: &sql::LIST_OUTPUTS_OF_RUN, count: &sql::COUNT_OUTPUTS_OF_RUN, filter: run_uuid },
        None => List { page: &sql::LIST_OUTPUTS, count: &sql::COUNT_OUTPUTS, filter: None },
    }
}

pub(super) async fn list_runs(pool: &Arc<Pool>, request: PageRequest) -> Result<Page<Run>, StoreError> {
    page(pool, runs_list(), request, decode::run).await
}

pub(super) async fn list_jobs(
    pool: &Arc<Pool>,
    run_uuid: Option<Uuid>,
    request: PageRequest,
) -> Result<Page<Job>, StoreError> {
    page(pool, jobs_list(run_uuid), request, decode::job).await
}

pub(super) async fn list_events(
    pool: &Arc<Pool>,
    job_uuid: Uuid,
    request: PageRequest,
) -> Result<Page<Event>, StoreError> {
    page(pool, events_list(job_uuid), request, decode::event).await
}

pub(super) async fn list_outputs(
    pool: &Arc<Pool>,
    run_uuid: Option<Uuid>,
    request: PageRequest,
) -> Result<Page<Output>, StoreError> {
    page(pool, outputs_list(run_uuid), request, decode::output).await
}

pub(super) async fn count_jobs_by_status(pool: &Arc<Pool>, run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
    let found = pool.read(Statement::new(&sql::COUNT_JOBS_BY_STATUS, vec![Param::uuid(run_uuid)])?).await?;
    found
        .iter()
        .map(|row| Ok((decode::text(row, "job_status")?, u64::try_from(decode::bigint(row, "n")?).unwrap_or_default())))
        .collect()
}

fn agent_summaries_statements(run_uuid: Uuid) -> Result<[Statement; 2], StoreError> {
    Ok([
        Statement::new(
            &sql::AGENT_SUMMARIES,
            vec![
                Param::uuid(run_uuid),
                Param::text(status::SUCCESS),
                Param::text(status::FAILED),
                Param::text(status::QUEUED),
            ],
        )?,
        Statement::new(&sql::RUNNING_JOBS_BY_AGENT, vec![Param::uuid(run_uuid), Param::text(status::RUNNING)])?,
    ])
}

/// Per-agent counts from the run's started jobs, plus each agent's running job.
pub(super) async fn agent_summaries(pool: &Arc<Pool>, run_uuid: Uuid) -> Result<Vec<AgentSummary>, StoreError> {
    let [summaries, running] = agent_summaries_statements(run_uuid)?;
    let summaries = pool.read(summaries).await?;
    let running: Vec<(String, Uuid)> = pool
        .read(running)
        .await?
        .iter()
        .map(|row| Ok((decode::text(row, "job_associated_agent")?, decode::uuid(row, "job_uuid")?)))
        .collect::<Result<_, StoreError>>()?;
    let count = |n: i64| u64::try_from(n).unwrap_or_default();
    summaries
        .iter()
        .map(|row| {
            let agent = decode::text(row, "job_associated_agent")?;
            // The newest running job wins when an agent has several (a replayed start).
            let current_job = running.iter().rev().find(|(a, _)| *a == agent).map(|(_, job)| *job);
            Ok(AgentSummary {
                jobs_taken: count(decode::bigint(row, "taken")?),
                succeeded: count(decode::bigint(row, "succeeded")?),
                failed: count(decode::bigint(row, "failed")?),
                current_job,
                last_seen: decode::opt_datetime(row, "last_seen")?,
                agent,
            })
        })
        .collect()
}

fn log_chunks_statement(job_uuid: Uuid, before_seq: i64) -> Result<Statement, StoreError> {
    Statement::new(
        &sql::LOG_CHUNKS_BEFORE,
        vec![Param::uuid(job_uuid), Param::bigint(LOG_CHUNKS_PER_READ), Param::bigint(before_seq)],
    )
}

/// Reads chunks newest first, a few at a time, until `max_bytes` (of UTF-8) are gathered, so a
/// huge log costs no more than the part returned.
pub(super) async fn job_logs(pool: &Arc<Pool>, job_uuid: Uuid, max_bytes: usize) -> Result<String, StoreError> {
    let mut log = LogTail::new(max_bytes);
    let mut before = i64::MAX;
    while log.wants_more() {
        let found = pool.read(log_chunks_statement(job_uuid, before)?).await?;
        for row in &found {
            if !log.wants_more() {
                break;
            }
            before = decode::bigint(row, "seq")?;
            log.push(decode::text(row, "text")?);
        }
        if found.len() < LOG_CHUNKS_PER_READ as usize {
            break;
        }
    }
    Ok(log.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement the reads send, with the values they bind, is accepted by
    /// `Statement::new` (which refuses a count that differs from the SQL's placeholders).
    #[test]
    fn every_read_binds_what_its_sql_declares() {
        let id = Uuid::new_v4();
        let request = PageRequest { page: 2, page_size: 10 };
        for list in [
            runs_list(),
            jobs_list(None),
            jobs_list(Some(id)),
            events_list(id),
            outputs_list(None),
            outputs_list(Some(id)),
        ] {
            let page = list.page_statement(request).expect("page statement");
            assert_eq!(page.params[page.params.len() - 2..], [Param::bigint(10), Param::bigint(10)], "{}", page.name);
            list.count_statement().expect("count statement");
        }
        agent_summaries_statements(id).expect("agent summaries");
        log_chunks_statement(id, i64::MAX).expect("log chunks");
        for sql in [&sql::FIND_RUN, &sql::FIND_JOB, &sql::COUNT_JOBS_BY_STATUS] {
            Statement::new(sql, vec![Param::uuid(id)]).expect("one key");
        }
    }
}
