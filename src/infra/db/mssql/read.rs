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
use crate::infra::db::effects::LogTail;
use crate::infra::db::{StoreError, timeline_buckets};
use crate::model::{AgentSummary, Event, Job, Output, Page, PageRequest, Run, TimelineBucket, status};

pub(super) type Decode<T> = fn(&tiberius::Row) -> Result<T, StoreError>;

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
pub(super) struct List {
    pub page: &'static Sql,
    pub count: &'static Sql,
    pub filter: Option<Uuid>,
}

impl List {
    pub fn page_statement(&self, request: PageRequest) -> Result<Statement, StoreError> {
        let (offset, fetch) = page_window(request);
        let mut params: Vec<Param> = self.filter.into_iter().map(Param::uuid).collect();
        params.extend([Param::bigint(offset), Param::bigint(fetch)]);
        Statement::new(self.page, params)
    }

    pub fn count_statement(&self) -> Result<Statement, StoreError> {
        Statement::new(self.count, self.filter.into_iter().map(Param::uuid).collect())
    }
}

pub(super) async fn page<T>(
    pool: &Arc<Pool>,
    list: List,
    request: PageRequest,
    decode: Decode<T>,
) -> Result<Page<T>, StoreError> {
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

/// The Unix epoch, bound so that `DATEDIFF_BIG` counts the microseconds SQLite stores.
fn unix_epoch() -> chrono::NaiveDateTime {
    chrono::DateTime::UNIX_EPOCH.naive_utc()
}

/// A bucket's size in microseconds, as SQLite's store computes it.
fn bucket_micros(bucket_secs: u32) -> i64 {
    i64::from(bucket_secs.max(1)) * 1_000_000
}

fn job_timeline_statement(run_uuid: Uuid, bucket_secs: u32) -> Result<Statement, StoreError> {
    let [success, failed, cancelled] = status::FINAL;
    Statement::new(
        &sql::JOB_TIMELINE,
        vec![
            Param::datetime(unix_epoch()),
            Param::bigint(bucket_micros(bucket_secs)),
            Param::uuid(run_uuid),
            Param::text(success),
            Param::text(failed),
            Param::text(cancelled),
        ],
    )
}

/// The run's finished jobs counted per bucket by one aggregate query (the trait's default would
/// read every job of the run through `list_jobs`).
pub(super) async fn job_timeline(
    pool: &Arc<Pool>,
    run_uuid: Uuid,
    bucket_secs: u32,
) -> Result<Vec<TimelineBucket>, StoreError> {
    let found = pool.read(job_timeline_statement(run_uuid, bucket_secs)?).await?;
    let counts = found
        .iter()
        .map(|row| {
            let n = u64::try_from(decode::bigint(row, "n")?).unwrap_or_default();
            Ok((decode::bigint(row, "bucket")?, decode::text(row, "job_status")?, n))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(timeline_buckets(counts, bucket_secs))
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
    use crate::model::Timestamp;

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
        job_timeline_statement(id, 60).expect("job timeline");
        log_chunks_statement(id, i64::MAX).expect("log chunks");
        for sql in [&sql::FIND_RUN, &sql::FIND_JOB, &sql::COUNT_JOBS_BY_STATUS] {
            Statement::new(sql, vec![Param::uuid(id)]).expect("one key");
        }
    }

    /// What `JOB_TIMELINE` computes for a finish time, step by step as SQL Server does: the
    /// microseconds `DATEDIFF_BIG` counts from the bound epoch to the stored `datetime2`, then
    /// `/ size * size` on BIGINTs (T-SQL truncates an integer division toward zero).
    fn sql_server_bucket(at: Timestamp, bucket_secs: u32) -> i64 {
        let stored = crate::infra::db::mssql::params::datetime2("job_finished", at).expect("storable");
        let micros = (stored - unix_epoch()).num_microseconds().expect("fits a BIGINT");
        let size = bucket_micros(bucket_secs);
        (micros / size) * size
    }

    #[test]
    fn the_timeline_statement_computes_what_the_model_does() {
        let expression = "(DATEDIFF_BIG(microsecond, @P1, COALESCE(job_finished, job_datetime)) / @P2) * @P2 AS bucket";
        assert!(sql::JOB_TIMELINE.text.contains(expression), "{}", sql::JOB_TIMELINE.text);
        let statement = job_timeline_statement(Uuid::new_v4(), 0).expect("statement");
        assert_eq!(statement.params[0], Param::datetime(unix_epoch()));
        assert_eq!(statement.params[1], Param::bigint(1_000_000), "a zero size is one second, as on SQLite");
    }

    /// The buckets SQLite's store returns, and those SQL Server's statement would, for the same
    /// finish times: at the epoch, around it (where truncation and flooring differ), at bucket
    /// edges, and at both ends of what `datetime2` holds.
    #[tokio::test]
    async fn timeline_buckets_are_sqlites_to_the_microsecond() {
        use crate::infra::db::{Mutation, NewJob, NewRun};
        let times = [
            "0001-01-01T00:00:00",
            "1969-12-31T23:58:59.999999",
            "1969-12-31T23:59:00",
            "1969-12-31T23:59:59.999999",
            "1970-01-01T00:00:00",
            "1970-01-01T00:00:00.000001",
            "2026-02-24T10:00:59.999999",
            "2026-02-24T10:01:00",
            "2026-02-24T10:01:06.5",
            "9999-12-31T23:59:59.999999",
        ]
        .map(|raw| Timestamp::parse(raw).expect("time"));
        let test_store = crate::infra::db::sqlite::tests::temp_store().await.expect("sqlite");
        let run_uuid = Uuid::new_v4();
        let mut batch = vec![Mutation::CreateRun(NewRun {
            run_uuid,
            run_datetime: times[0],
            run_status: None,
            number_of_agents: None,
            number_of_jobs: None,
        })];
        let statuses = [status::SUCCESS, status::FAILED, status::CANCELLED, status::RUNNING];
        for (at, job_status) in times.iter().zip(statuses.iter().cycle()) {
            batch.push(Mutation::CreateJob(NewJob {
                job_uuid: Uuid::new_v4(),
                run_uuid,
                job_datetime: *at,
                job_associated_agent: "agent-0".into(),
                job_status: job_status.to_string(),
                job_index: None,
            }));
        }
        assert!(test_store.store.apply(&batch).await.expect("stored").iter().all(Result::is_ok));
        for bucket_secs in [0, 1, 7, 60, 3600, 86_400] {
            let sqlite = test_store.store.job_timeline(run_uuid, bucket_secs).await.expect("sqlite timeline");
            let sql_server = timeline_buckets(
                times
                    .iter()
                    .zip(statuses.iter().cycle())
                    .filter(|(_, job_status)| status::is_final(job_status))
                    .map(|(at, job_status)| (sql_server_bucket(*at, bucket_secs), job_status.to_string(), 1)),
                bucket_secs,
            );
            assert_eq!(sql_server, sqlite, "{bucket_secs} s buckets");
        }
    }
}
