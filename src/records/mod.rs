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

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::infra::db::{Applied, Mutation, Store, StoreError};
use crate::model::Job;
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
    match store.apply(&all).await {
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
