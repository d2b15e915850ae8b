//! Cancelling a run: stop its agents (each gets the launcher's stop grace, 2 s, then is
//! forced), purge and delete its queue, close its open jobs as `Cancelled`, mark it
//! `cancelled`, delete its config keys. Idempotent; a run that already completed or failed
//! cannot be cancelled (409). A run recorded as active that no orchestrator here holds (this
//! process restarted, or another replica started it) is cancelled all the same.

use std::time::Instant;

use uuid::Uuid;

use super::Orchestrator;
use super::dispatch::apply_all;
use super::error::StepFailure;
use super::finish::count_jobs;
use super::registry::Lifecycle;
use crate::http::ApiError;
use crate::infra::broker::{BrokerError, job_queue_name};
use crate::infra::db::Mutation;
use crate::model::{RunStatus, status};

/// The reason given to every job a cancel closes.
pub const CANCELLED_DETAIL: &str = "run cancelled";

#[derive(Debug)]
pub enum CancelError {
    NotFound(Uuid),
    /// It already ended another way.
    Finished {
        run_id: Uuid,
        status: RunStatus,
    },
    /// Recorded through the monitoring API, with no lifecycle: nothing runs it.
    NotOrchestrated(Uuid),
    Failed(StepFailure),
}

impl From<CancelError> for ApiError {
    fn from(error: CancelError) -> Self {
        match error {
            CancelError::NotFound(run_id) => ApiError::not_found(format!("run {run_id} not found")),
            CancelError::Finished { run_id, status } => ApiError::conflict(format!(
                "run {run_id} already {status}; only a dispatching or running run can be cancelled"
            )),
            CancelError::NotOrchestrated(run_id) => ApiError::conflict(format!(
                "run {run_id} was recorded through the monitoring API, not started by the orchestrator; \
                 there is nothing to cancel"
            )),
            CancelError::Failed(failure) => failure.into_api_error("could not cancel the run", ""),
        }
    }
}

impl Orchestrator {
    pub async fn cancel_run(&self, run_id: Uuid) -> Result<(), CancelError> {
        if let Some(run) = self.active(run_id) {
            // Waits for a start under way to settle, or for a finish to be recorded.
            let mut lifecycle = run.lifecycle.lock().await;
            match *lifecycle {
                Lifecycle::Dispatching | Lifecycle::Running => {}
                Lifecycle::Ended(RunStatus::Cancelled) => return Ok(()),
                Lifecycle::Ended(status) => return Err(CancelError::Finished { run_id, status }),
                Lifecycle::Abandoned => return Err(CancelError::NotFound(run_id)),
            }
            run.stop_watching.cancel();
            let outcome = self.cancel_everything(run_id, run.number_of_agents).await;
            run.enter(&mut lifecycle, Lifecycle::Ended(RunStatus::Cancelled));
            self.unregister(run_id);
            return outcome;
        }
        let recorded = self
            .backend
            .get_run(run_id)
            .await
            .map_err(|e| CancelError::Failed(StepFailure::backend("reading the run", e)))?
            .ok_or(CancelError::NotFound(run_id))?;
        let agents = recorded.number_of_agents.unwrap_or(0).max(0) as usize;
        match recorded.run_status {
            None => Err(CancelError::NotOrchestrated(run_id)),
            Some(status @ (RunStatus::Completed | RunStatus::Failed)) => Err(CancelError::Finished { run_id, status }),
            // Cancelled before: only make sure nothing was left behind.
            Some(RunStatus::Cancelled) => {
                self.stop_and_remove(run_id, agents).await;
                Ok(())
            }
            Some(RunStatus::Dispatching | RunStatus::Running) => self.cancel_everything(run_id, agents).await,
        }
    }

    async fn cancel_everything(&self, run_id: Uuid, agents: usize) -> Result<(), CancelError> {
        let started = Instant::now();
        self.stop_and_remove(run_id, agents).await;
        let closed = self
            .backend
            .close_jobs(run_id, status::CANCELLED, CANCELLED_DETAIL)
            .await
            .map_err(|e| CancelError::Failed(StepFailure::backend("closing the open jobs", e)))?;
        let detail = format!("cancelled; {closed} jobs had no outcome yet");
        let update =
            Mutation::UpdateRun { run_uuid: run_id, run_status: RunStatus::Cancelled, run_detail: Some(detail) };
        apply_all(&*self.backend, "marking the run cancelled", vec![update]).await.map_err(CancelError::Failed)?;
        if let Ok(Some(summary)) = self.backend.run_summary(run_id).await {
            count_jobs(&summary);
        }
        tracing::info!(%run_id, closed, elapsed_ms = started.elapsed().as_millis() as u64, "run cancelled");
        Ok(())
    }

    /// The agents, the queue and the config keys; each failure is logged and the rest still done.
    async fn stop_and_remove(&self, run_id: Uuid, agents: usize) {
        if let Err(e) = self.launcher.stop(run_id).await {
            tracing::warn!(%run_id, error = %e, "cannot stop the agents of a cancelled run");
        }
        let queue = job_queue_name(run_id);
        match self.broker.purge(&queue).await {
            Ok(_) | Err(BrokerError::NotFound(_)) => {}
            Err(e) => tracing::warn!(%run_id, error = %e, "cannot purge the queue of a cancelled run"),
        }
        if let Err(e) = self.broker.delete(&queue).await {
            tracing::warn!(%run_id, error = %e, "cannot delete the queue of a cancelled run");
        }
        if let Err(e) = self.config_store.delete_run(run_id, agents).await {
            tracing::warn!(%run_id, error = %e, "cannot delete the config keys of a cancelled run");
        }
        self.forget_agents(run_id).await;
    }
}
