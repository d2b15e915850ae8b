//! `Store`: everything the backend and the providers persist, behind one trait with an
//! embedded implementation (SQLite) and a distributed one (SQL Server).
//!
//! Writes go through [`Store::apply`], a batch of [`Mutation`]s applied in one transaction
//! with a result per item: the single-record API endpoints send a batch of one, agents send
//! many. Every insert is idempotent on its uuid, so a replayed batch (an agent's spool after a
//! backend outage) changes nothing the second time.

#[cfg(test)]
pub(crate) mod conformance;
pub mod effects;
pub mod inventory;
pub mod mssql;
pub mod sqlite;

use async_trait::async_trait;
use uuid::Uuid;

pub use self::inventory::{
    FingerprintFilter, FingerprintSummary, ImportOutcome, NewFingerprint, NewProxy, ProxyFilter, StoredFingerprint,
    StoredProxy,
};
use crate::model::{
    AgentSummary, Event, Job, Output, Page, PageRequest, Run, RunStatus, TimelineBucket, Timestamp, status,
};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The row a request names does not exist (`job 1234… not found`).
    #[error("{0}")]
    NotFound(String),
    /// The request itself is wrong (too long, bad value).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with stored data.
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached or failed; retrying later may work.
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// `POST /api/runs/`; the orchestrator also sets the lifecycle fields.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub run_uuid: Uuid,
    pub run_datetime: Timestamp,
    pub run_status: Option<RunStatus>,
    pub number_of_agents: Option<i64>,
    pub number_of_jobs: Option<i64>,
}

/// `POST /api/jobs/`; the orchestrator registers a run's jobs with status `Queued` and an index.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub job_uuid: Uuid,
    pub run_uuid: Uuid,
    pub job_datetime: Timestamp,
    pub job_associated_agent: String,
    pub job_status: String,
    pub job_index: Option<i64>,
}

/// A change to a job: `PATCH /api/jobs/status` sets only the status; agents also set who runs
/// it, the attempt number, the failure reason and when it finished. `None` leaves a field as is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JobUpdate {
    pub job_uuid: Uuid,
    pub job_status: Option<String>,
    pub job_associated_agent: Option<String>,
    pub job_attempts: Option<i64>,
    pub job_detail: Option<String>,
    pub job_finished: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_uuid: Uuid,
    pub event_content: String,
    pub job_uuid: Uuid,
    pub event_datetime: Timestamp,
    pub event_status: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewOutput {
    pub output_uuid: Uuid,
    pub run_uuid: Uuid,
    pub job_uuid: Option<Uuid>,
    pub data: serde_json::Value,
    pub timestamp: Timestamp,
}

/// Captured worker output for a job (stdout/stderr lines), appended as it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLogChunk {
    /// Unique per chunk so a replayed chunk is not appended twice.
    pub chunk_uuid: Uuid,
    pub job_uuid: Uuid,
    pub text: String,
}

/// One write. Applied in order within a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    CreateRun(NewRun),
    UpdateRun { run_uuid: Uuid, run_status: RunStatus, run_detail: Option<String> },
    CreateJob(NewJob),
    UpdateJob(JobUpdate),
    CreateEvent(NewEvent),
    UpdateEvent { event_uuid: Uuid, event_status: String },
    CreateOutput(NewOutput),
    AppendLog(NewLogChunk),
}

/// What a mutation left in the store. `changed` is false when the write was a replay of one
/// already applied (same uuid), so callers broadcast only real changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Run { run: Run, changed: bool },
    Job { job: Job, changed: bool },
    Event { event: Event, changed: bool },
    Output { output: Output, changed: bool },
    Log { job_uuid: Uuid, changed: bool },
}

impl Applied {
    /// False when the mutation was a replay or set what was already there.
    pub fn changed(&self) -> bool {
        match self {
            Applied::Run { changed, .. }
            | Applied::Job { changed, .. }
            | Applied::Event { changed, .. }
            | Applied::Output { changed, .. }
            | Applied::Log { changed, .. } => *changed,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Where the data lives, for logs: never a password.
    fn describe(&self) -> String;
    async fn check_connectivity(&self) -> Result<(), StoreError>;
    /// Applies pending migrations; returns the names of those applied now (empty = up to date).
    async fn migrate(&self) -> Result<Vec<String>, StoreError>;

    /// Applies the batch in one transaction, in order. The outer error means nothing was
    /// written (database down); an inner error rejects that item only (unknown parent id,
    /// invalid value) and the others are still applied.
    async fn apply(&self, batch: &[Mutation]) -> Result<Vec<Result<Applied, StoreError>>, StoreError>;

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, StoreError>;
    /// Newest first.
    async fn list_runs(&self, page: PageRequest) -> Result<Page<Run>, StoreError>;
    /// Deletes the run's events, logs, jobs, outputs and the run in one transaction.
    /// Returns false when there was no such run.
    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, StoreError>;

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, StoreError>;
    /// Newest first; all runs when `run_uuid` is `None`.
    async fn list_jobs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Job>, StoreError>;
    /// `(job_status, count)` for one run.
    async fn count_jobs_by_status(&self, run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError>;
    /// One summary per agent that started a job of the run, ordered by agent name.
    async fn agent_summaries(&self, run_uuid: Uuid) -> Result<Vec<AgentSummary>, StoreError>;
    /// Sets every job of the run that is not final (`Queued`, `Running`, …) to `status`, with
    /// `detail`; returns the jobs changed.
    async fn finish_open_jobs(&self, run_uuid: Uuid, status: &str, detail: &str) -> Result<Vec<Job>, StoreError>;

    /// Newest first.
    async fn list_events(&self, job_uuid: Uuid, page: PageRequest) -> Result<Page<Event>, StoreError>;

    /// Newest first; all runs when `run_uuid` is `None`.
    async fn list_outputs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Output>, StoreError>;

    /// The job's captured logs, oldest first, at most `max_bytes` (the newest kept).
    async fn job_logs(&self, job_uuid: Uuid, max_bytes: usize) -> Result<String, StoreError>;

    /// The run's finished jobs (`Success`, `Failed`, `Cancelled`) counted per `bucket_secs`
    /// bucket of their finish time (see [`TimelineBucket`]), oldest first; buckets without a
    /// finished job are left out. This default pages through [`Store::list_jobs`]; engines
    /// override it with one aggregate query.
    async fn job_timeline(&self, run_uuid: Uuid, bucket_secs: u32) -> Result<Vec<TimelineBucket>, StoreError> {
        let mut finished = Vec::new();
        let mut page = 1;
        loop {
            let request = PageRequest { page, page_size: PageRequest::MAX_PAGE_SIZE };
            let jobs = self.list_jobs(Some(run_uuid), request).await?;
            let last = u64::from(page) * u64::from(PageRequest::MAX_PAGE_SIZE) >= jobs.total || jobs.items.is_empty();
            finished.extend(
                jobs.items
                    .into_iter()
                    .filter(|job| status::is_final(&job.job_status))
                    .map(|job| (job.job_finished.unwrap_or(job.job_datetime).as_micros(), job.job_status, 1)),
            );
            if last {
                break;
            }
            page += 1;
        }
        Ok(timeline_buckets(finished, bucket_secs))
    }

    // The providers' inventory. The defaults answer `Unavailable`, so test doubles of the
    // monitoring side need not implement them; every real store overrides them all, and the
    // conformance suite checks each one.

    /// Inserts the proxies in one transaction, all or none (an `Invalid` item, e.g. an empty
    /// `proxy_url`, rejects the whole import). A `proxy_url` already stored, or earlier in the
    /// slice, is skipped and counted as a duplicate.
    async fn import_proxies(&self, proxies: &[NewProxy]) -> Result<ImportOutcome, StoreError> {
        let _ = proxies;
        Err(inventory_unsupported(self))
    }

    /// Inserts the fingerprints in one transaction, all or none. One whose
    /// [`NewFingerprint::digest`] (vendor, website, data, date) is already stored, or earlier in
    /// the slice, is skipped and counted as a duplicate.
    async fn import_fingerprints(&self, fingerprints: &[NewFingerprint]) -> Result<ImportOutcome, StoreError> {
        let _ = fingerprints;
        Err(inventory_unsupported(self))
    }

    /// A proxy chosen at random by the database among those matching `filter` (the table is
    /// never loaded); `None` when none matches.
    async fn random_proxy(&self, filter: &ProxyFilter) -> Result<Option<StoredProxy>, StoreError> {
        let _ = filter;
        Err(inventory_unsupported(self))
    }

    /// A fingerprint chosen at random by the database among those matching `filter`.
    async fn random_fingerprint(&self, filter: &FingerprintFilter) -> Result<Option<StoredFingerprint>, StoreError> {
        let _ = filter;
        Err(inventory_unsupported(self))
    }

    /// Proxies, last imported first.
    async fn list_proxies(&self, page: PageRequest) -> Result<Page<StoredProxy>, StoreError> {
        let _ = page;
        Err(inventory_unsupported(self))
    }

    /// Fingerprints without their data, last imported first.
    async fn list_fingerprints(&self, page: PageRequest) -> Result<Page<FingerprintSummary>, StoreError> {
        let _ = page;
        Err(inventory_unsupported(self))
    }
}

/// Adds up `(finished at in microseconds, final status, jobs)` per bucket, oldest first.
pub fn timeline_buckets(
    finished: impl IntoIterator<Item = (i64, String, u64)>,
    bucket_secs: u32,
) -> Vec<TimelineBucket> {
    let size = i64::from(bucket_secs.max(1)) * 1_000_000;
    let mut buckets: std::collections::BTreeMap<i64, TimelineBucket> = std::collections::BTreeMap::new();
    for (at, job_status, jobs) in finished {
        let start = at.div_euclid(size) * size;
        let bucket = buckets.entry(start).or_insert_with(|| TimelineBucket {
            start: Timestamp::from_micros(start),
            success: 0,
            failed: 0,
            cancelled: 0,
        });
        match job_status.as_str() {
            status::SUCCESS => bucket.success += jobs,
            status::FAILED => bucket.failed += jobs,
            status::CANCELLED => bucket.cancelled += jobs,
            _ => {}
        }
    }
    buckets.into_values().collect()
}

fn inventory_unsupported<S: Store + ?Sized>(store: &S) -> StoreError {
    StoreError::Unavailable(format!("{} does not store the proxy and fingerprint inventory", store.describe()))
}

/// Opens the store the settings name.
pub async fn open(settings: &crate::settings::DatabaseSettings) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match settings {
        crate::settings::DatabaseSettings::Sqlite { path } => {
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path).await?))
        }
        crate::settings::DatabaseSettings::Mssql(settings) => {
            Ok(std::sync::Arc::new(mssql::MssqlStore::open(settings).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_buckets_floor_times_and_add_counts_per_status() {
        let at = |raw: &str| Timestamp::parse(raw).expect("time").as_micros();
        let buckets = timeline_buckets(
            [
                (at("2026-02-24T10:00:59"), status::SUCCESS.to_string(), 2),
                (at("2026-02-24T10:00:00"), status::FAILED.to_string(), 1),
                (at("2026-02-24T09:59:00"), status::CANCELLED.to_string(), 1),
                (at("2026-02-24T09:59:30"), status::RUNNING.to_string(), 5),
            ],
            60,
        );
        let starts: Vec<String> = buckets.iter().map(|b| b.start.to_string()).collect();
        assert_eq!(starts, ["2026-02-24T09:59:00Z", "2026-02-24T10:00:00Z"]);
        assert_eq!((buckets[0].success, buckets[0].failed, buckets[0].cancelled), (0, 0, 1));
        assert_eq!((buckets[1].success, buckets[1].failed, buckets[1].cancelled), (2, 1, 0));
    }
}
