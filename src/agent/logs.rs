//! The worker's prints as job logs: lines tagged with a job become `AppendLog` chunks for that
//! job, batched (every [`FLUSH_EVERY`] or [`FLUSH_BYTES`], and on demand at the end of a job,
//! before its outcome is recorded) and capped per job attempt ([`MAX_JOB_LOG_BYTES`], then a
//! single [`TRUNCATED`] marker). Lines printed outside a job go to the agent's own logs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::observer::AgentObserver;
use super::worker::{LogLine, LogSink, LogStream};
use crate::clients::BackendClient;
use crate::infra::db::{Mutation, NewLogChunk};

pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
pub const FLUSH_BYTES: usize = 64 * 1024;
pub const MAX_JOB_LOG_BYTES: usize = 1024 * 1024;
pub const TRUNCATED: &str = "[log truncated]";

enum Command {
    Line(LogLine),
    /// Store what the job printed so far; answer once stored.
    Flush(Uuid, oneshot::Sender<()>),
    /// Store everything and stop.
    Close,
}

/// The sink handed to the worker supervisor, and the task that turns lines into chunks.
pub struct JobLogs {
    sender: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    observer: Arc<dyn AgentObserver>,
}

/// What the supervisor writes to: forwards to the task and shows the observer.
struct Forwarder {
    sender: mpsc::UnboundedSender<Command>,
    observer: Arc<dyn AgentObserver>,
}

impl LogSink for Forwarder {
    fn line(&self, line: LogLine) {
        self.observer.worker_line(&line);
        // The task has ended only when the agent is stopping: the line has nowhere to go.
        let _ = self.sender.send(Command::Line(line));
    }
}

impl JobLogs {
    pub fn start(backend: Arc<dyn BackendClient>, observer: Arc<dyn AgentObserver>) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward(backend, receiver));
        Self { sender, task: Some(task), observer }
    }

    pub fn sink(&self) -> Arc<dyn LogSink> {
        Arc::new(Forwarder { sender: self.sender.clone(), observer: self.observer.clone() })
    }

    /// Stores every line of `job` received so far. Call after the job ended (the supervisor
    /// has delivered its last prints by then) and before recording its outcome.
    pub async fn flush(&self, job: Uuid) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Command::Flush(job, done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Stores what is left and stops the task.
    pub async fn close(mut self) {
        let Some(task) = self.task.take() else { return };
        if self.sender.send(Command::Close).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }
}

impl Drop for JobLogs {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[derive(Default)]
struct Buffer {
    text: String,
    /// Bytes taken for this job so far (stored or buffered), against the cap.
    taken: usize,
    truncated: bool,
}

impl Buffer {
    fn push(&mut self, text: &str) {
        if self.truncated {
            return;
        }
        if self.taken + text.len() + 1 > MAX_JOB_LOG_BYTES {
            self.truncated = true;
            self.text.push_str(TRUNCATED);
            self.text.push('\n');
            return;
        }
        self.taken += text.len() + 1;
        self.text.push_str(text);
        self.text.push('\n');
    }
}

async fn forward(backend: Arc<dyn BackendClient>, mut receiver: mpsc::UnboundedReceiver<Command>) {
    let mut buffers: HashMap<Uuid, Buffer> = HashMap::new();
    let mut ticker = tokio::time::interval(FLUSH_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            command = receiver.recv() => match command {
                None | Some(Command::Close) => break,
                Some(Command::Line(line)) => match line.job_uuid {
                    None => log_outside_job(&line),
                    Some(job) => {
                        let buffer = buffers.entry(job).or_default();
                        buffer.push(&line.text);
                        if buffer.text.len() >= FLUSH_BYTES {
                            store(&backend, job, buffer).await;
                        }
                    }
                },
                Some(Command::Flush(job, done)) => {
                    if let Some(mut buffer) = buffers.remove(&job) {
                        store(&backend, job, &mut buffer).await;
                    }
                    let _ = done.send(());
                }
            },
            _ = ticker.tick() => {
                for (job, buffer) in buffers.iter_mut() {
                    store(&backend, *job, buffer).await;
                }
            }
        }
    }
    for (job, buffer) in buffers.iter_mut() {
        store(&backend, *job, buffer).await;
    }
}

async fn store(backend: &Arc<dyn BackendClient>, job_uuid: Uuid, buffer: &mut Buffer) {
    if buffer.text.is_empty() {
        return;
    }
    let text = std::mem::take(&mut buffer.text);
    let chunk = Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid, text });
    match backend.apply(vec![chunk]).await {
        Ok(outcomes) => {
            if let Some(Err(error)) = outcomes.first() {
                tracing::warn!(%job_uuid, %error, "the backend refused the job's log lines");
            }
        }
        Err(error) => tracing::warn!(%job_uuid, %error, "the job's log lines could not be stored"),
    }
}

fn log_outside_job(line: &LogLine) {
    match line.stream {
        LogStream::Stdout => tracing::info!(target: "armada::worker", stream = "stdout", "{}", line.text),
        LogStream::Stderr => tracing::info!(target: "armada::worker", stream = "stderr", "{}", line.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_log_is_capped_with_one_marker() {
        let mut buffer = Buffer::default();
        let line = "x".repeat(1000);
        for _ in 0..(MAX_JOB_LOG_BYTES / 1001 + 50) {
            buffer.push(&line);
        }
        assert!(buffer.text.len() <= MAX_JOB_LOG_BYTES + TRUNCATED.len() + 1);
        assert_eq!(buffer.text.matches(TRUNCATED).count(), 1);
        assert!(buffer.text.ends_with("[log truncated]\n"));
    }
}
