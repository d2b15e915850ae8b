//! The monitoring record service: every write of a run, job, event, output or log goes through
//! here, is stored, and is then broadcast to the live stream. The backend's handlers and the
//! in-process recorder client both call it; nothing else writes records.
//!
//! Writes are funnelled through one writer task that practises group commit: concurrent
//! callers' batches are concatenated into one `Store::apply` transaction (each caller still
//! gets exactly its own per-item results), which turns N single-row commits into one. The
//! same task then broadcasts, so the live stream's order is the commit order.

pub mod hub;
pub mod wire;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::infra::db::{Applied, Mutation, Store, StoreError};
use crate::model::{Job, RunSummary};
use crate::observability::names;
pub use hub::Hub;

/// Most mutations committed in one group (a single larger batch still goes in whole).
const MAX_GROUP: usize = 1024;
/// Write requests waiting for the writer before callers wait to enqueue.
const WRITE_QUEUE: usize = 4096;

type BatchResult = Result<Vec<Result<Applied, StoreError>>, StoreError>;

enum WriteRequest {
    Apply {
        batch: Vec<Mutation>,
        reply: oneshot::Sender<BatchResult>,
    },
    DeleteRun {
        run_uuid: Uuid,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
    FinishOpenJobs {
        run_uuid: Uuid,
        status: String,
        detail: String,
        reply: oneshot::Sender<Result<Vec<Job>, StoreError>>,
    },
}

#[derive(Clone)]
pub struct Records {
    store: Arc<dyn Store>,
    hub: Hub,
    /// Started on first write, so building `Records` needs no runtime.
    writer: Arc<OnceLock<mpsc::Sender<WriteRequest>>>,
}

fn writer_stopped() -> StoreError {
    StoreError::Unavailable("the record writer stopped".into())
}

impl Records {
    pub fn new(store: Arc<dyn Store>, hub: Hub) -> Self {
        Self { store, hub, writer: Arc::new(OnceLock::new()) }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stores the batch in one transaction, then broadcasts what changed. The outer error means
    /// nothing was written; an inner error rejects that item only.
    pub async fn apply(&self, batch: &[Mutation]) -> BatchResult {
        self.apply_owned(batch.to_vec()).await
    }

    /// [`Records::apply`] without copying the batch.
    pub async fn apply_owned(&self, batch: Vec<Mutation>) -> BatchResult {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.request(|reply| WriteRequest::Apply { batch, reply }).await?
    }

    /// One mutation: its outcome, whether the database or the item failed.
    pub async fn apply_one(&self, mutation: Mutation) -> Result<Applied, StoreError> {
        self.apply_owned(vec![mutation]).await?.pop().unwrap_or_else(|| Err(writer_stopped()))
    }

    /// Deletes the run and everything under it, then broadcasts `delete_run`. False when there
    /// was no such run.
    pub async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, StoreError> {
        self.request(|reply| WriteRequest::DeleteRun { run_uuid, reply }).await?
    }

    /// Closes the run's jobs that are not final (see [`Store::finish_open_jobs`]) and
    /// broadcasts `update_job_status` for each.
    pub async fn finish_open_jobs(&self, run_uuid: Uuid, status: &str, detail: &str) -> Result<Vec<Job>, StoreError> {
        let (status, detail) = (status.to_string(), detail.to_string());
        self.request(|reply| WriteRequest::FinishOpenJobs { run_uuid, status, detail, reply }).await?
    }

    /// The run with its jobs counted by status and its agents; `None` for an unknown run.
    pub async fn run_summary(&self, run_uuid: Uuid) -> Result<Option<RunSummary>, StoreError> {
        let Some(run) = self.store.get_run(run_uuid).await? else { return Ok(None) };
        let counts: BTreeMap<String, u64> = self.store.count_jobs_by_status(run_uuid).await?.into_iter().collect();
        let total_jobs = counts.values().sum();
        let agents = self.store.agent_summaries(run_uuid).await?;
        Ok(Some(RunSummary { run, counts, total_jobs, agents }))
    }

    async fn request<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> WriteRequest) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let writer = self.writer.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(WRITE_QUEUE);
            tokio::spawn(run_writer(self.store.clone(), self.hub.clone(), receiver));
            sender
        });
        writer.send(make(reply)).await.map_err(|_| writer_stopped())?;
        answer.await.map_err(|_| writer_stopped())
    }
}

/// Serves write requests in arrival order until every `Records` is gone, coalescing
/// consecutive `Apply` requests into one transaction.
async fn run_writer(store: Arc<dyn Store>, hub: Hub, mut requests: mpsc::Receiver<WriteRequest>) {
    let mut next = None;
    loop {
        let request = match next.take() {
            Some(request) => request,
            None => match requests.recv().await {
                Some(request) => request,
                None => return,
            },
        };
        match request {
            WriteRequest::Apply { batch, reply } => {
                let mut size = batch.len();
                let mut group = vec![(batch, reply)];
                while size < MAX_GROUP {
                    match requests.try_recv() {
                        Ok(WriteRequest::Apply { batch, reply }) => {
                            size += batch.len();
                            group.push((batch, reply));
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                commit_group(&*store, &hub, group).await;
            }
            WriteRequest::DeleteRun { run_uuid, reply } => {
                let deleted = store.delete_run(run_uuid).await;
                if matches!(deleted, Ok(true)) {
                    hub.publish_deleted_run(run_uuid);
                }
                let _ = reply.send(deleted);
            }
            WriteRequest::FinishOpenJobs { run_uuid, status, detail, reply } => {
                let finished = store.finish_open_jobs(run_uuid, &status, &detail).await;
                if let Ok(jobs) = &finished {
                    metrics::counter!(names::ROWS_WRITTEN).increment(jobs.len() as u64);
                    for job in jobs {
                        hub.publish(hub::kind::UPDATE_JOB_STATUS, job);
                    }
                }
                let _ = reply.send(finished);
            }
        }
    }
}

/// One transaction for the whole group; each caller gets its own slice of the results.
async fn commit_group(store: &dyn Store, hub: &Hub, group: Vec<(Vec<Mutation>, oneshot::Sender<BatchResult>)>) {
    let (batches, replies): (Vec<_>, Vec<_>) = group.into_iter().unzip();
    let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
    let all: Vec<Mutation> = batches.into_iter().flatten().collect();
    // A bug that panics inside one write must not stop every later write.
    let outcome = AssertUnwindSafe(store.apply(&all)).catch_unwind().await.unwrap_or_else(|_| {
        tracing::error!(mutations = all.len(), "storing a batch panicked");
        Err(StoreError::Unavailable("storing the batch failed unexpectedly".into()))
    });
    match outcome {
        Ok(results) => {
            let mut written = 0;
            for (mutation, result) in all.iter().zip(&results) {
                if let Ok(applied) = result {
                    hub.publish_applied(mutation, applied);
                    written += u64::from(applied.changed());
                }
            }
            metrics::counter!(names::ROWS_WRITTEN).increment(written);
            let mut results = results.into_iter();
            for (size, reply) in sizes.into_iter().zip(replies) {
                let _ = reply.send(Ok(results.by_ref().take(size).collect()));
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::infra::db::NewLogChunk;
    use crate::model::{Event, Output, Page, PageRequest, Run};

    /// Answers every log append with its job id, after a pause, recording batch sizes; panics
    /// on a batch whose first chunk says "panic".
    #[derive(Default)]
    struct SlowStore {
        batches: Mutex<Vec<usize>>,
    }

    #[async_trait]
    impl Store for SlowStore {
        fn describe(&self) -> String {
            "slow".into()
        }
        async fn check_connectivity(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn migrate(&self) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        async fn apply(&self, batch: &[Mutation]) -> BatchResult {
            if matches!(batch.first(), Some(Mutation::AppendLog(chunk)) if chunk.text == "panic") {
                panic!("boom");
            }
            self.batches.lock().expect("lock").push(batch.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(batch
                .iter()
                .map(|m| match m {
                    Mutation::AppendLog(chunk) => Ok(Applied::Log { job_uuid: chunk.job_uuid, changed: true }),
                    _ => Err(StoreError::Invalid("logs only".into())),
                })
                .collect())
        }
        async fn get_run(&self, _: Uuid) -> Result<Option<Run>, StoreError> {
            unreachable!()
        }
        async fn list_runs(&self, _: PageRequest) -> Result<Page<Run>, StoreError> {
            unreachable!()
        }
        async fn delete_run(&self, _: Uuid) -> Result<bool, StoreError> {
            unreachable!()
        }
        async fn get_job(&self, _: Uuid) -> Result<Option<Job>, StoreError> {
            unreachable!()
        }
        async fn list_jobs(&self, _: Option<Uuid>, _: PageRequest) -> Result<Page<Job>, StoreError> {
            unreachable!()
        }
        async fn count_jobs_by_status(&self, _: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
            unreachable!()
        }
        async fn agent_summaries(&self, _: Uuid) -> Result<Vec<crate::model::AgentSummary>, StoreError> {
            unreachable!()
        }
        async fn finish_open_jobs(&self, _: Uuid, _: &str, _: &str) -> Result<Vec<Job>, StoreError> {
            unreachable!()
        }
        async fn list_events(&self, _: Uuid, _: PageRequest) -> Result<Page<Event>, StoreError> {
            unreachable!()
        }
        async fn list_outputs(&self, _: Option<Uuid>, _: PageRequest) -> Result<Page<Output>, StoreError> {
            unreachable!()
        }
        async fn job_logs(&self, _: Uuid, _: usize) -> Result<String, StoreError> {
            unreachable!()
        }
    }

    fn chunk(job_uuid: Uuid, text: &str) -> Mutation {
        Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid, text: text.into() })
    }

    fn records(store: Arc<SlowStore>) -> Records {
        Records::new(store, Hub::new(16, Duration::from_secs(20)))
    }

    #[tokio::test]
    async fn concurrent_writes_share_one_transaction_and_each_gets_its_own_results() {
        let store = Arc::new(SlowStore::default());
        let records = records(store.clone());
        let callers: Vec<_> = (0..20)
            .map(|i| {
                let records = records.clone();
                tokio::spawn(async move {
                    let jobs: Vec<Uuid> = (0..=i % 3).map(|_| Uuid::new_v4()).collect();
                    let batch: Vec<Mutation> = jobs.iter().map(|j| chunk(*j, "x")).collect();
                    let results = records.apply_owned(batch).await.expect("stored");
                    let answered: Vec<Uuid> = results
                        .into_iter()
                        .map(|r| match r {
                            Ok(Applied::Log { job_uuid, .. }) => job_uuid,
                            other => panic!("{other:?}"),
                        })
                        .collect();
                    assert_eq!(answered, jobs, "each caller gets exactly its own results, in order");
                })
            })
            .collect();
        for caller in callers {
            caller.await.expect("caller");
        }
        let batches = store.batches.lock().expect("lock").clone();
        assert_eq!(batches.iter().sum::<usize>(), (0..20).map(|i| i % 3 + 1).sum::<usize>());
        assert!(batches.len() < 20, "concurrent writes were grouped: {batches:?}");
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_alone_and_later_writes_go_through() {
        let records = records(Arc::new(SlowStore::default()));
        let failed = records.apply_one(chunk(Uuid::new_v4(), "panic")).await;
        assert!(matches!(failed, Err(StoreError::Unavailable(_))), "{failed:?}");
        let job = Uuid::new_v4();
        let stored = records.apply_one(chunk(job, "fine")).await;
        assert_eq!(stored.ok(), Some(Applied::Log { job_uuid: job, changed: true }));
    }
}
