//! [`SpoolingBackend`]: the agent's backend client. While the backend is unreachable, record
//! batches go to a spool file (JSON lines of [`RecordOp`], fsync'd) and count as stored; a
//! background task replays the file in order when the backend is back.
//!
//! Rules: once the spool holds anything, every new batch goes to it too, so the backend sees
//! the agent's records in the order they were made. Replaying is crash-safe because every
//! insert is idempotent on its uuid (a record replayed twice changes nothing the second time);
//! the replayed position is kept in a sidecar file (`….offset`) so a restarted agent adopting
//! the file does not start over. Items the backend refuses on replay (4xx) are logged and
//! dropped rather than retried forever.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::clients::backend::{ItemOutcome, LiveStream};
use crate::clients::{BackendClient, BackendError};
use crate::infra::db::Mutation;
use crate::model::{Job, Run, RunSummary};
use crate::records::wire::RecordOp;

/// Records replayed per request.
const REPLAY_CHUNK: usize = 256;
/// Bytes read from the spool per replay request, at most (one record may exceed it).
const REPLAY_CHUNK_BYTES: u64 = 4 * 1024 * 1024;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The spool's file and position, behind the lock that orders writes.
struct SpoolState {
    /// Opened on the first spooled batch.
    file: Option<File>,
    /// Bytes of the file already replayed.
    offset: u64,
    /// Records in the file not replayed yet.
    pending: u64,
}

struct Shared {
    inner: Arc<dyn BackendClient>,
    path: PathBuf,
    state: tokio::sync::Mutex<SpoolState>,
    /// The number of records waiting in the spool; the replayer wakes on changes.
    pending: watch::Sender<u64>,
}

/// A backend client that never loses a record to a short outage. See the module docs.
pub struct SpoolingBackend {
    shared: Arc<Shared>,
    replayer: Mutex<Option<JoinHandle<()>>>,
}

/// What the spool still holds when the agent has to leave.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{records} records could not be delivered to the backend and are kept in {}; they are replayed when an agent \
     adopts that file (or send its lines to POST /api/records)",
    path.display()
)]
pub struct SpoolLeft {
    pub path: PathBuf,
    pub records: u64,
}

impl SpoolingBackend {
    /// Spools to `path` (created when first needed). A non-empty spool already at `path` (an
    /// earlier life of this agent) is adopted and replayed first.
    pub fn new(inner: Arc<dyn BackendClient>, path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let (offset, pending) = adopt(&path)?;
        if pending > 0 {
            tracing::info!(spool = %path.display(), records = pending, "adopting a spool left by an earlier agent");
        }
        let (pending_tx, _) = watch::channel(pending);
        let shared = Arc::new(Shared {
            inner,
            path,
            state: tokio::sync::Mutex::new(SpoolState { file: None, offset, pending }),
            pending: pending_tx,
        });
        let replayer = tokio::spawn(replay_forever(shared.clone()));
        Ok(Self { shared, replayer: Mutex::new(Some(replayer)) })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Records waiting in the spool.
    pub fn pending(&self) -> u64 {
        *self.shared.pending.borrow()
    }

    /// Waits up to `limit` for the spool to be replayed. On time out the file is kept, and the
    /// error says where it is and how much it holds.
    pub async fn flush(&self, limit: Duration) -> Result<(), SpoolLeft> {
        let mut pending = self.shared.pending.subscribe();
        let drained = tokio::time::timeout(limit, pending.wait_for(|n| *n == 0)).await;
        match drained {
            Ok(Ok(_)) => Ok(()),
            _ => Err(SpoolLeft { path: self.shared.path.clone(), records: self.pending() }),
        }
    }

    fn spool(&self, state: &mut SpoolState, batch: &[Mutation]) -> Result<(), BackendError> {
        let first = state.pending == 0;
        append(&self.shared.path, state, batch).map_err(|e| {
            BackendError::Unavailable(format!(
                "the backend is unreachable and the spool {} cannot be written: {e}",
                self.shared.path.display()
            ))
        })?;
        state.pending += batch.len() as u64;
        self.shared.pending.send_replace(state.pending);
        if first {
            tracing::warn!(spool = %self.shared.path.display(), "backend unavailable; spooling records until it is back");
        }
        Ok(())
    }
}

impl Drop for SpoolingBackend {
    fn drop(&mut self) {
        if let Some(task) = self.replayer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

#[async_trait]
impl BackendClient for SpoolingBackend {
    fn describe(&self) -> String {
        format!("{} (spooling to {})", self.shared.inner.describe(), self.shared.path.display())
    }

    async fn check_connectivity(&self) -> Result<(), BackendError> {
        self.shared.inner.check_connectivity().await
    }

    /// Stored or spooled: an item answers `Ok(true)` when it went to the spool. Only a spool
    /// that cannot be written fails the whole batch.
    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<ItemOutcome>, BackendError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // Holding the lock across the direct attempt keeps the agent's writes in order.
        let mut state = self.shared.state.lock().await;
        if state.pending > 0 {
            self.spool(&mut state, &batch)?;
            return Ok(vec![Ok(true); batch.len()]);
        }
        match self.shared.inner.apply(batch.clone()).await {
            Ok(mut outcomes) => {
                // An item that failed for want of the database is kept for later, like a batch.
                let retry: Vec<Mutation> = outcomes
                    .iter()
                    .zip(&batch)
                    .filter(|(outcome, _)| matches!(outcome, Err(e) if e.is_unavailable()))
                    .map(|(_, mutation)| mutation.clone())
                    .collect();
                if !retry.is_empty() {
                    self.spool(&mut state, &retry)?;
                    for outcome in outcomes.iter_mut().filter(|o| matches!(o, Err(e) if e.is_unavailable())) {
                        *outcome = Ok(true);
                    }
                }
                Ok(outcomes)
            }
            Err(error) if error.is_unavailable() => {
                tracing::debug!(%error, "backend unavailable");
                self.spool(&mut state, &batch)?;
                Ok(vec![Ok(true); batch.len()])
            }
            Err(error) => Err(error),
        }
    }

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, BackendError> {
        self.shared.inner.get_run(run_uuid).await
    }

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, BackendError> {
        self.shared.inner.get_job(job_uuid).await
    }

    async fn run_summary(&self, run_uuid: Uuid) -> Result<Option<RunSummary>, BackendError> {
        self.shared.inner.run_summary(run_uuid).await
    }

    async fn close_jobs(&self, run_uuid: Uuid, job_status: &str, job_detail: &str) -> Result<u64, BackendError> {
        self.shared.inner.close_jobs(run_uuid, job_status, job_detail).await
    }

    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, BackendError> {
        self.shared.inner.delete_run(run_uuid).await
    }

    async fn live(&self) -> Result<LiveStream, BackendError> {
        self.shared.inner.live().await
    }
}

fn offset_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".offset");
    path.with_file_name(name)
}

/// The replayed offset and the records after it, for a spool already on disk.
fn adopt(path: &Path) -> std::io::Result<(u64, u64)> {
    let Ok(file) = File::open(path) else { return Ok((0, 0)) };
    let len = file.metadata()?.len();
    let offset = std::fs::read_to_string(offset_path(path))
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|offset| *offset <= len)
        .unwrap_or(0);
    let mut reader = BufReader::new(file);
    reader.seek(SeekFrom::Start(offset))?;
    let pending = reader.split(b'\n').filter_map(Result::ok).filter(|line| !line.is_empty()).count();
    Ok((offset, pending as u64))
}

/// Appends the batch as one write and makes it durable before answering.
fn append(path: &Path, state: &mut SpoolState, batch: &[Mutation]) -> std::io::Result<()> {
    let mut lines = Vec::new();
    for mutation in batch {
        serde_json::to_writer(&mut lines, &RecordOp::from(mutation.clone()))?;
        lines.push(b'\n');
    }
    if state.file.is_none() {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        state.file = Some(OpenOptions::new().create(true).append(true).open(path)?);
    }
    let file = state.file.as_mut().ok_or_else(|| std::io::Error::other("the spool file is not open"))?;
    file.write_all(&lines)?;
    file.sync_data()
}

/// Up to `REPLAY_CHUNK` records from `offset`: each with the bytes its line took.
fn read_chunk(path: &Path, offset: u64) -> std::io::Result<Vec<(Option<Mutation>, u64)>> {
    let mut reader = BufReader::new(File::open(path)?);
    reader.seek(SeekFrom::Start(offset))?;
    let mut records = Vec::new();
    let mut read = 0u64;
    let mut line = Vec::new();
    while records.len() < REPLAY_CHUNK && read < REPLAY_CHUNK_BYTES {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)? as u64;
        if n == 0 || line.last() != Some(&b'\n') {
            break; // end of file, or a line still being written
        }
        read += n;
        let parsed = serde_json::from_slice::<RecordOp>(&line[..line.len() - 1])
            .map_err(|e| e.to_string())
            .and_then(RecordOp::into_mutation);
        match parsed {
            Ok(mutation) => records.push((Some(mutation), n)),
            Err(error) => {
                tracing::error!(spool = %path.display(), %error, "dropping a spool line that is not a record");
                records.push((None, n));
            }
        }
    }
    Ok(records)
}

async fn replay_forever(shared: Arc<Shared>) {
    let mut pending = shared.pending.subscribe();
    let mut backoff = BACKOFF_START;
    loop {
        if pending.wait_for(|n| *n > 0).await.is_err() {
            return;
        }
        match replay_chunk(&shared).await {
            Ok(()) => backoff = BACKOFF_START,
            Err(error) => {
                tracing::debug!(%error, retry_in = ?backoff, "spool replay: backend still unavailable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Sends the next chunk; `Err` when the backend is still unavailable (nothing advanced).
async fn replay_chunk(shared: &Shared) -> Result<(), BackendError> {
    let offset = shared.state.lock().await.offset;
    let path = shared.path.clone();
    let chunk = tokio::task::spawn_blocking(move || read_chunk(&path, offset))
        .await
        .map_err(|e| BackendError::Unavailable(format!("spool reader failed: {e}")))?
        .map_err(|e| BackendError::Unavailable(format!("cannot read the spool {}: {e}", shared.path.display())))?;
    if chunk.is_empty() {
        return Err(BackendError::Unavailable("the spool has no complete record yet".into()));
    }
    let bytes: u64 = chunk.iter().map(|(_, n)| n).sum();
    let records = chunk.len() as u64;
    let mutations: Vec<Mutation> = chunk.into_iter().filter_map(|(m, _)| m).collect();
    deliver(shared, mutations).await?;

    let mut state = shared.state.lock().await;
    state.offset += bytes;
    state.pending = state.pending.saturating_sub(records);
    if state.pending == 0 {
        // Everything made so far is delivered: start the file afresh.
        if let Some(file) = &state.file {
            let _ = file.set_len(0);
        } else {
            let _ = std::fs::write(&shared.path, b"");
        }
        state.offset = 0;
        let _ = std::fs::remove_file(offset_path(&shared.path));
        tracing::info!(spool = %shared.path.display(), "backend is back; spool replayed");
    } else {
        let _ = std::fs::write(offset_path(&shared.path), state.offset.to_string());
    }
    shared.pending.send_replace(state.pending);
    Ok(())
}

/// Applies replayed records; refused items are logged and dropped. A batch refused whole is
/// retried record by record so that one bad record does not take the others with it.
async fn deliver(shared: &Shared, mutations: Vec<Mutation>) -> Result<(), BackendError> {
    if mutations.is_empty() {
        return Ok(());
    }
    match shared.inner.apply(mutations.clone()).await {
        Ok(outcomes) => {
            if outcomes.iter().any(|o| matches!(o, Err(e) if e.is_unavailable())) {
                return Err(BackendError::Unavailable("an item failed for want of the database".into()));
            }
            for (outcome, mutation) in outcomes.iter().zip(&mutations) {
                if let Err(error) = outcome {
                    tracing::warn!(%error, record = ?RecordOp::from(mutation.clone()), "the backend refused a spooled record; dropped");
                }
            }
            Ok(())
        }
        Err(error) if error.is_unavailable() => Err(error),
        Err(error) if mutations.len() > 1 => {
            tracing::warn!(%error, "the backend refused a replayed batch; replaying its records one by one");
            for mutation in mutations {
                Box::pin(deliver(shared, vec![mutation])).await?;
            }
            Ok(())
        }
        Err(error) => {
            tracing::warn!(%error, record = ?RecordOp::from(mutations[0].clone()), "the backend refused a spooled record; dropped");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
