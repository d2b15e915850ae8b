//! Ending a run: record `completed` or `failed` (closing the jobs left when it failed), delete
//! the queue (which is how agents learn the run is over: their consumers end), let the config
//! keys expire, wait for the agents to exit, forget them. Also the server's shutdown.

use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::Orchestrator;
use super::dispatch::apply_all;
use super::registry::{ActiveRun, Lifecycle};
use crate::infra::broker::job_queue_name;
use crate::infra::db::Mutation;
use crate::model::{RunStatus, RunSummary, status};
use crate::observability::names;

/// How long recording a run's end is retried while the backend is down.
const RECORD_RETRY_FOR: Duration = Duration::from_secs(60);
/// How often a finished run's agents are checked while it waits for them to exit.
const EXIT_POLL: Duration = Duration::from_millis(100);

/// How a watched run ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every job has an outcome (some may have `Failed`: the run itself worked).
    Completed(RunSummary),
    /// The run cannot proceed: `reason` goes to the run, `job_detail` to each job left.
    Failed { reason: String, job_detail: String },
    /// The run's record was deleted through the backend: stop everything, record nothing.
    Vanished,
}

/// What happens to a run's config keys once it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Expire after `ARMADA_RUN_KEYS_TTL_SECS` (agents still starting may need them).
    Expire,
    /// Delete now (a cancelled or abandoned run).
    Delete,
}

impl Orchestrator {
    /// Ends a running run with the watcher's verdict, unless something else ended it first.
    pub(crate) async fn finish_run(&self, run: &ActiveRun, outcome: Outcome) {
        let run_id = run.run_id;
        let mut lifecycle = run.lifecycle.lock().await;
        if *lifecycle != Lifecycle::Running {
            return;
        }
        // Another orchestrator (or a cancel through it) may have ended the run already.
        let recorded = self.backend.get_run(run_id).await.ok().flatten().and_then(|r| r.run_status);
        let ended = match (recorded, outcome) {
            (Some(already), _) if already.is_final() => Lifecycle::Ended(already),
            (_, Outcome::Vanished) => Lifecycle::Abandoned,
            (_, Outcome::Completed(summary)) => {
                self.record_end(run_id, RunStatus::Completed, describe_counts(&summary)).await;
                count_jobs(&summary);
                Lifecycle::Ended(RunStatus::Completed)
            }
            (_, Outcome::Failed { reason, job_detail }) => {
                if let Err(e) = self.backend.close_jobs(run_id, status::FAILED, &job_detail).await {
                    tracing::error!(%run_id, error = %e, "cannot close the jobs of a failed run");
                }
                let summary = self.backend.run_summary(run_id).await.ok().flatten();
                let detail = match &summary {
                    Some(summary) => format!("{reason}; {}", describe_counts(summary)),
                    None => reason,
                };
                self.record_end(run_id, RunStatus::Failed, detail).await;
                if let Some(summary) = &summary {
                    count_jobs(summary);
                }
                Lifecycle::Ended(RunStatus::Failed)
            }
        };
        run.enter(&mut lifecycle, ended);
        self.unregister(run_id);
        drop(lifecycle);
        tracing::info!(%run_id, outcome = ?ended, "run ended");
        let keys = if ended == Lifecycle::Abandoned { Keys::Delete } else { Keys::Expire };
        self.release(run_id, run.number_of_agents, keys).await;
    }

    /// `UpdateRun` with its final status, retried while the backend is unavailable.
    async fn record_end(&self, run_id: Uuid, run_status: RunStatus, detail: String) {
        let deadline = Instant::now() + RECORD_RETRY_FOR;
        let mut pause = Duration::from_millis(100);
        loop {
            let update = Mutation::UpdateRun { run_uuid: run_id, run_status, run_detail: Some(detail.clone()) };
            match apply_all(&*self.backend, "recording the run's end", vec![update]).await {
                Ok(_) => return,
                Err(failure) if failure.unavailable && Instant::now() + pause < deadline => {
                    tracing::warn!(%run_id, reason = %failure.message, "cannot record the run's end yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(failure) => {
                    tracing::error!(%run_id, %run_status, reason = %failure.message, "the run's end could not be recorded");
                    return;
                }
            }
        }
    }

    /// Everything but the record: the queue, the keys, the agents. Each step is logged when it
    /// fails and does not stop the others.
    pub(crate) async fn release(&self, run_id: Uuid, agents: usize, keys: Keys) {
        if let Err(e) = self.broker.delete(&job_queue_name(run_id)).await {
            tracing::warn!(%run_id, error = %e, "cannot delete the run's queue");
        }
        let kept = match keys {
            Keys::Expire => self.config_store.expire_run(run_id, agents, self.settings.keys_ttl).await,
            Keys::Delete => self.config_store.delete_run(run_id, agents).await,
        };
        if let Err(e) = kept {
            tracing::warn!(%run_id, error = %e, "cannot expire or delete the run's config keys");
        }
        // The agents end on their own once their consumer ends; give them time to.
        let deadline = Instant::now() + self.settings.agent_exit_wait;
        loop {
            match self.launcher.agents(run_id).await {
                Ok(statuses) if statuses.iter().all(|agent| agent.phase.is_final()) => break,
                Err(_) => break,
                Ok(_) if Instant::now() >= deadline => {
                    tracing::warn!(%run_id, wait = ?self.settings.agent_exit_wait, "agents did not exit after the run ended; stopping them");
                    if let Err(e) = self.launcher.stop(run_id).await {
                        tracing::warn!(%run_id, error = %e, "cannot stop the agents");
                    }
                    break;
                }
                Ok(_) => tokio::time::sleep(EXIT_POLL).await,
            }
        }
        self.forget_agents(run_id).await;
    }

    /// The server is stopping: stop every agent, then end the active runs as `failed` (their
    /// agents are gone, nothing would finish them) and remove their queues and keys.
    pub async fn shutdown(&self) {
        let runs = self.active_runs();
        for run in &runs {
            run.stop_watching.cancel();
        }
        if let Err(e) = self.launcher.shutdown().await {
            tracing::warn!(error = %e, "stopping the agents at shutdown");
        }
        const REASON: &str = "the server stopped while the run was active; its agents were stopped";
        for run in runs {
            let mut lifecycle = run.lifecycle.lock().await;
            if !matches!(*lifecycle, Lifecycle::Running) {
                continue;
            }
            if let Err(e) = self.backend.close_jobs(run.run_id, status::FAILED, REASON).await {
                tracing::warn!(run_id = %run.run_id, error = %e, "cannot close the jobs at shutdown");
            }
            let update = Mutation::UpdateRun {
                run_uuid: run.run_id,
                run_status: RunStatus::Failed,
                run_detail: Some(REASON.into()),
            };
            if let Err(failure) = apply_all(&*self.backend, "recording the run's end", vec![update]).await {
                tracing::warn!(run_id = %run.run_id, reason = %failure.message, "cannot record the run's end at shutdown");
            }
            run.enter(&mut lifecycle, Lifecycle::Ended(RunStatus::Failed));
            self.unregister(run.run_id);
            drop(lifecycle);
            self.release(run.run_id, run.number_of_agents, Keys::Delete).await;
        }
    }
}

/// `20 jobs: 19 succeeded, 1 failed` (and `, 2 cancelled` when some were).
pub(crate) fn describe_counts(summary: &RunSummary) -> String {
    let total = summary.run.number_of_jobs.map_or(summary.total_jobs, |n| n.max(0) as u64);
    let mut text =
        format!("{total} jobs: {} succeeded, {} failed", summary.count(status::SUCCESS), summary.count(status::FAILED));
    let cancelled = summary.count(status::CANCELLED);
    if cancelled > 0 {
        text.push_str(&format!(", {cancelled} cancelled"));
    }
    text
}

/// `armada_jobs_total{status}`: a run's jobs by final status, counted once when it ends.
pub(crate) fn count_jobs(summary: &RunSummary) {
    for (job_status, count) in &summary.counts {
        if status::is_final(job_status) {
            metrics::counter!(names::JOBS, "status" => job_status.clone()).increment(*count);
        }
    }
}
