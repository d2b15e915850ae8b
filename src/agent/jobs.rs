//! The job loop: one delivery at a time from the run's queue, each run on the worker (retried
//! on a fresh worker after a crash or a timeout, up to `max_attempts`), its outcome recorded
//! before the delivery is acknowledged. A redelivered job follows the rule in [`redelivery`]:
//! it is never run while another agent is still running it, and always run once that agent
//! is gone.

mod redelivery;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::calls::AgentCalls;
use super::heartbeat::Heartbeat;
use super::logs::JobLogs;
use super::observer::AgentObserver;
use super::runtime::{AgentEnd, AgentError, AgentOptions, AgentReport};
use super::worker::{JobOutcome, JobRequest, LogSink, Worker, WorkerCalls, WorkerSpec};
use crate::clients::{BackendClient, BackendError};
use crate::infra::broker::{BrokerError, Consumer, Delivery};
use crate::infra::db::{JobUpdate, Mutation, NewJob};
use crate::model::{AgentRunConfig, JOB_UUID_KEY, Timestamp, status};
use redelivery::Redelivered;

/// Broker errors in a row after which the agent gives up.
const MAX_BROKER_ERRORS: u32 = 30;

pub struct JobLoop<'a> {
    pub backend: Arc<dyn BackendClient>,
    pub calls: &'a AgentCalls,
    pub logs: &'a JobLogs,
    /// This agent's heartbeat, and the reader of the others'.
    pub heartbeat: &'a Heartbeat,
    pub sink: Arc<dyn LogSink>,
    pub observer: Arc<dyn AgentObserver>,
    pub spec: &'a WorkerSpec,
    pub config: &'a AgentRunConfig,
    pub options: &'a AgentOptions,
    pub agent: String,
    pub run_id: Uuid,
    /// `None` after a crash, until the next job starts a new one.
    pub worker: Option<Worker>,
    pub report: &'a mut AgentReport,
}

/// How one delivery ended for this agent.
enum Handled {
    Recorded,
    /// The agent was stopped mid-job; the delivery went back to the queue.
    HandedBack,
}

impl JobLoop<'_> {
    pub async fn run(
        &mut self,
        mut consumer: Box<dyn Consumer>,
        cancel: &CancellationToken,
    ) -> Result<AgentEnd, AgentError> {
        let mut broker_errors = 0u32;
        loop {
            let next = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(AgentEnd::Stopped),
                next = consumer.next() => next,
            };
            let delivery = match next {
                None | Some(Err(BrokerError::NotFound(_))) => return Ok(AgentEnd::QueueEnded),
                Some(Err(error)) => {
                    broker_errors += 1;
                    if broker_errors >= MAX_BROKER_ERRORS {
                        return Err(AgentError::Broker(format!("{broker_errors} errors in a row, the last: {error}")));
                    }
                    tracing::warn!(%error, "broker error while waiting for a job; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(broker_errors.min(10)))).await;
                    continue;
                }
                Some(Ok(delivery)) => delivery,
            };
            broker_errors = 0;
            if let Handled::HandedBack = self.handle(delivery, cancel).await? {
                return Ok(AgentEnd::Stopped);
            }
        }
    }

    async fn handle(&mut self, delivery: Delivery, cancel: &CancellationToken) -> Result<Handled, AgentError> {
        let (job_uuid, job_message) = match parse_job(&delivery.body) {
            Ok(job) => job,
            Err(reason) => {
                tracing::warn!(%reason, bytes = delivery.body.len(), "dropping a delivery that is not a job message");
                self.observer.note(&format!("dropped a delivery that is not a job message: {reason}"));
                self.report.malformed += 1;
                settle(delivery.ack().await, Uuid::nil());
                return Ok(Handled::Recorded);
            }
        };

        // Only a redelivery can be a job that already has an outcome (its ack was lost) or one
        // still running elsewhere (the broker took it back from a live agent): the orchestrator
        // publishes each job once. Reading every job first would cost a backend round trip per
        // job (measured: 1 agent fell from ~3,000 to ~1,000 no-op jobs/s).
        let previous = if delivery.redelivered {
            match self.redelivered(job_uuid, cancel).await {
                Redelivered::Run(previous) => previous,
                Redelivered::Done(job) => {
                    tracing::info!(%job_uuid, status = %job.job_status, "redelivered job already has an outcome; skipped");
                    self.observer.job_finished(job_uuid, &job.job_status, Some("already recorded; redelivery skipped"));
                    self.report.skipped += 1;
                    settle(delivery.ack().await, job_uuid);
                    return Ok(Handled::Recorded);
                }
                Redelivered::Stopped => {
                    // Dropped unsettled: back to the queue, for whoever looks next.
                    drop(delivery);
                    self.report.handed_back += 1;
                    return Ok(Handled::HandedBack);
                }
            }
        } else {
            None
        };
        let done_before = previous.as_ref().and_then(|job| job.job_attempts).unwrap_or(0);
        let mut attempt = u32::try_from(done_before).unwrap_or(u32::MAX).saturating_add(1);
        if attempt > self.config.max_attempts {
            let reason = format!(
                "gave up after {done_before} attempts (max_attempts {}): the agents running it stopped or were killed",
                self.config.max_attempts
            );
            self.record_outcome(job_uuid, status::FAILED, Some(reason)).await?;
            settle(delivery.ack().await, job_uuid);
            return Ok(Handled::Recorded);
        }

        let mut detail = None;
        self.heartbeat.running(job_uuid);
        loop {
            // `Running` is recorded while the worker already runs the job: one backend round
            // trip less per job. It is stored before anything else about this attempt (its
            // outcome, the next attempt), so it never overwrites them.
            let running = AfterStart::recording(
                record_running(self.backend.clone(), self.agent.clone(), self.run_id, job_uuid, attempt, detail.take()),
                self.calls,
            );
            self.observer.job_started(job_uuid, attempt, &job_message);
            if self.worker.is_none() {
                match Worker::start(self.spec.clone(), self.sink.clone(), self.calls).await {
                    Ok(worker) => {
                        self.report.worker_starts += 1;
                        self.worker = Some(worker);
                    }
                    Err(error) => {
                        // Another agent may do better; this one cannot go on.
                        let _ = running.stored().await;
                        self.heartbeat.released();
                        let _ = delivery.nack(true).await;
                        return Err(AgentError::Worker(error));
                    }
                }
            }
            let Some(worker) = self.worker.as_mut() else { unreachable!("a worker was just started") };
            let request = JobRequest { job_uuid, attempt, job_message: job_message.clone() };
            let timeout = Duration::from_secs(self.config.job_timeout_secs);
            let stopping = async {
                cancel.cancelled().await;
                tokio::time::sleep(self.options.stop_grace).await;
            };
            let outcome = tokio::select! {
                outcome = worker.run_job(request, timeout, &running) => Some(outcome),
                _ = stopping => None,
            };
            let running = running.stored().await;
            let Some(outcome) = outcome else {
                // Stopped mid-job: the worker goes (its group is killed), the job goes back.
                self.worker = None;
                self.logs.flush(job_uuid).await;
                tracing::warn!(%job_uuid, "stopped mid-job; handing the job back to the queue");
                self.heartbeat.released();
                let _ = delivery.nack(true).await;
                self.report.handed_back += 1;
                return Ok(Handled::HandedBack);
            };
            running?;
            self.logs.flush(job_uuid).await;
            let reason = outcome.failure_reason(job_uuid);
            if let JobOutcome::Done { status, .. } = &outcome {
                self.record_outcome(job_uuid, status.as_str(), reason).await?;
                break;
            }
            self.worker = None;
            let reason = reason.unwrap_or_default();
            if attempt >= self.config.max_attempts {
                let reason = format!("{reason} (attempt {attempt} of {})", self.config.max_attempts);
                self.record_outcome(job_uuid, status::FAILED, Some(reason)).await?;
                break;
            }
            tracing::warn!(%job_uuid, attempt, %reason, "job attempt failed; retrying on a new worker");
            detail = Some(format!("attempt {attempt}: {reason}"));
            attempt += 1;
        }
        self.heartbeat.finished();
        // When the broker took the delivery back meanwhile (its consumer timeout, a lost
        // channel), this ack fails, or is ignored by the broker: the outcome is recorded, so the
        // copy redelivered to an agent (this one or another) is acknowledged and skipped there.
        settle(delivery.ack().await, job_uuid);
        Ok(Handled::Recorded)
    }

    async fn record_outcome(
        &mut self,
        job_uuid: Uuid,
        job_status: &str,
        reason: Option<String>,
    ) -> Result<(), AgentError> {
        let update = Mutation::UpdateJob(JobUpdate {
            job_uuid,
            job_status: Some(job_status.to_string()),
            job_associated_agent: Some(self.agent.clone()),
            job_attempts: None,
            job_detail: reason.clone(),
            job_finished: Some(Timestamp::now()),
        });
        self.apply(vec![update]).await?;
        if job_status == status::SUCCESS {
            self.report.succeeded += 1;
        } else {
            self.report.failed += 1;
        }
        match &reason {
            Some(reason) if job_status != status::SUCCESS => {
                tracing::info!(%job_uuid, status = job_status, %reason, "job ended")
            }
            _ => tracing::debug!(%job_uuid, status = job_status, "job ended"),
        }
        self.observer.job_finished(job_uuid, job_status, reason.as_deref());
        Ok(())
    }

    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<Result<bool, BackendError>>, AgentError> {
        apply(self.backend.as_ref(), batch).await
    }
}

/// Applies a batch; refused items are logged (the job goes on), a failed spool is fatal: a job
/// whose outcome cannot be kept must not be acknowledged.
async fn apply(
    backend: &dyn BackendClient,
    batch: Vec<Mutation>,
) -> Result<Vec<Result<bool, BackendError>>, AgentError> {
    let outcomes = backend.apply(batch).await.map_err(|e| AgentError::Records(e.to_string()))?;
    for outcome in &outcomes {
        if let Err(error) = outcome
            && !matches!(error, BackendError::Rejected { status: 404, .. })
        {
            tracing::warn!(%error, "the backend refused a job record");
        }
    }
    Ok(outcomes)
}

/// `Running`, by `agent`, this attempt. A job the backend does not know (a message published by
/// another tool) is registered first.
async fn record_running(
    backend: Arc<dyn BackendClient>,
    agent: String,
    run_id: Uuid,
    job_uuid: Uuid,
    attempt: u32,
    detail: Option<String>,
) -> Result<(), AgentError> {
    let update = Mutation::UpdateJob(JobUpdate {
        job_uuid,
        job_status: Some(status::RUNNING.into()),
        job_associated_agent: Some(agent.clone()),
        job_attempts: Some(i64::from(attempt)),
        job_detail: detail,
        job_finished: None,
    });
    let outcomes = apply(backend.as_ref(), vec![update.clone()]).await?;
    if let Some(Err(BackendError::Rejected { status: 404, .. })) = outcomes.first() {
        let create = Mutation::CreateJob(NewJob {
            job_uuid,
            run_uuid: run_id,
            job_datetime: Timestamp::now(),
            job_associated_agent: agent,
            job_status: status::RUNNING.into(),
            job_index: None,
        });
        apply(backend.as_ref(), vec![create, update]).await?;
    }
    Ok(())
}

/// The worker's calls during one attempt, answered only once the attempt's `Running` record
/// (made in the background, beside the job's start on the worker) is stored: whatever the
/// worker records about the job (its events, a final status) lands after it, never under it.
struct AfterStart<'a> {
    started: Shared<BoxFuture<'static, Result<(), String>>>,
    calls: &'a AgentCalls,
}

impl<'a> AfterStart<'a> {
    fn recording(
        record: impl std::future::Future<Output = Result<(), AgentError>> + Send + 'static,
        calls: &'a AgentCalls,
    ) -> Self {
        let task = tokio::spawn(record);
        let started = async move {
            match task.await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(e) => Err(format!("recording the job's start: {e}")),
            }
        };
        Self { started: started.boxed().shared(), calls }
    }

    /// Waits until the `Running` record is stored (or failed to be).
    async fn stored(&self) -> Result<(), AgentError> {
        self.started.clone().await.map_err(AgentError::Records)
    }
}

#[async_trait::async_trait]
impl WorkerCalls for AfterStart<'_> {
    async fn call(&self, job_uuid: Option<Uuid>, method: &str, params: Value) -> Result<Value, String> {
        self.started.clone().await?;
        self.calls.call(job_uuid, method, params).await
    }
}

fn settle(result: Result<(), BrokerError>, job_uuid: Uuid) {
    if let Err(error) = result {
        // The job may come back; its recorded outcome makes the redelivery a no-op.
        tracing::warn!(%job_uuid, %error, "could not acknowledge the delivery");
    }
}

/// The job's uuid and message from a delivery's body.
fn parse_job(body: &[u8]) -> Result<(Uuid, Value), String> {
    let message: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let raw = message
        .get(JOB_UUID_KEY)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no `{JOB_UUID_KEY}` string in the message"))?;
    let uuid = Uuid::parse_str(raw).map_err(|e| format!("`{JOB_UUID_KEY}` {raw:?} is not a uuid: {e}"))?;
    Ok((uuid, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_messages_need_a_job_uuid() {
        let job = Uuid::new_v4();
        let (uuid, message) = parse_job(format!(r#"{{"job_uuid": "{job}", "word": "x"}}"#).as_bytes()).unwrap();
        assert_eq!((uuid, message["word"].as_str()), (job, Some("x")));
        assert!(parse_job(b"garbage").unwrap_err().starts_with("not JSON"));
        assert!(parse_job(br#"{"word": "x"}"#).unwrap_err().contains("no `job_uuid`"));
        assert!(parse_job(br#"{"job_uuid": "nope"}"#).unwrap_err().contains("not a uuid"));
    }
}
