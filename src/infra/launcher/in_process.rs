//! In-process agents: each agent of a run is a tokio task running the injected agent entry
//! point, watched by a small supervisor task that records how it ended (a panic included:
//! a crashing agent never takes the server down).

use std::any::Any;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use tokio::task::{AbortHandle, JoinError};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::runs::{Ended, RunTable, lock};
use super::{AgentPhase, AgentStatus, DEFAULT_STOP_GRACE, LaunchError, LaunchSpec, Launcher, validate_spec};
use crate::model::Timestamp;

/// Runs one agent until its work is done or `cancel` fires; `Err` is the reason it failed.
pub type AgentEntry = Arc<dyn Fn(AgentAssignment) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// An [`AgentEntry`] from an async closure.
pub fn agent_entry<F, Fut>(f: F) -> AgentEntry
where
    F: Fn(AgentAssignment) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move |assignment| Box::pin(f(assignment)))
}

/// What one in-process agent is told.
#[derive(Debug, Clone)]
pub struct AgentAssignment {
    pub run_id: Uuid,
    pub pod_index: usize,
    /// Fires when the run is stopped: finish or hand back the current job, then return.
    pub cancel: CancellationToken,
}

/// How long to wait for an aborted task to actually end (it ends at its next `.await`).
const ABORT_WAIT: Duration = Duration::from_secs(5);

pub struct InProcessLauncher {
    entry: AgentEntry,
    stop_grace: Duration,
    runs: RunTable<RunAgents>,
}

struct RunAgents {
    run_id: Uuid,
    cancel: CancellationToken,
    agents: Vec<AgentHandle>,
}

struct AgentHandle {
    cell: Arc<AgentCell>,
    abort: AbortHandle,
    done: Ended,
}

struct AgentCell {
    status: Mutex<AgentStatus>,
    stop_requested: AtomicBool,
    killed: AtomicBool,
}

impl InProcessLauncher {
    pub fn new(entry: AgentEntry) -> Self {
        Self { entry, stop_grace: DEFAULT_STOP_GRACE, runs: RunTable::new("agents") }
    }

    /// How long `stop` waits for agents to return after their token fired before aborting them.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Aborts one agent at once, as SIGKILL would: no cancellation, no cleanup beyond drops
    /// (its broker consumer is dropped, so its unacknowledged job is redelivered). The agent
    /// ends `Failed` with detail `killed`. Returns once the task is gone.
    pub async fn kill_agent(&self, run_id: Uuid, pod_index: usize) -> Result<(), LaunchError> {
        let run = self.runs.get(run_id)?;
        let agent = run
            .agents
            .get(pod_index)
            .ok_or_else(|| LaunchError::NotFound(format!("run {run_id} has no agent {pod_index}")))?;
        agent.cell.killed.store(true, Ordering::SeqCst);
        agent.abort.abort();
        if tokio::time::timeout(ABORT_WAIT, agent.done.wait()).await.is_err() {
            return Err(LaunchError::Unavailable(format!(
                "agent {pod_index} of run {run_id} did not end within {ABORT_WAIT:?} of being killed"
            )));
        }
        Ok(())
    }

    fn spawn_agent(&self, run_id: Uuid, pod_index: usize, cancel: CancellationToken) -> AgentHandle {
        let cell = Arc::new(AgentCell {
            status: Mutex::new(AgentStatus::pending(pod_index)),
            stop_requested: AtomicBool::new(false),
            killed: AtomicBool::new(false),
        });
        let (done_tx, done) = Ended::channel();
        let span = tracing::info_span!("agent", %run_id, pod_index);
        let entry = self.entry.clone();
        let running = cell.clone();
        let assignment = AgentAssignment { run_id, pod_index, cancel };
        let task = tokio::spawn(
            async move {
                {
                    let mut status = lock(&running.status);
                    status.phase = AgentPhase::Running;
                    status.started_at = Some(Timestamp::now());
                }
                entry(assignment).await
            }
            .instrument(span.clone()),
        );
        let abort = task.abort_handle();
        let supervised = cell.clone();
        let grace = self.stop_grace;
        tokio::spawn(
            async move {
                supervised.finish(task.await, grace);
                let _ = done_tx.send(true);
            }
            .instrument(span),
        );
        AgentHandle { cell, abort, done }
    }

    async fn stop_run(&self, run: &RunAgents) -> Result<(), LaunchError> {
        for agent in &run.agents {
            agent.cell.stop_requested.store(true, Ordering::SeqCst);
        }
        run.cancel.cancel();
        if tokio::time::timeout(self.stop_grace, run.wait_all()).await.is_ok() {
            return Ok(());
        }
        tracing::warn!(run_id = %run.run_id, grace = ?self.stop_grace, "agents did not stop in time; aborting them");
        run.abort_all();
        if tokio::time::timeout(ABORT_WAIT, run.wait_all()).await.is_err() {
            return Err(LaunchError::Unavailable(format!(
                "run {}: agents {:?} did not end after being aborted (an agent that never awaits cannot be aborted)",
                run.run_id,
                run.unfinished()
            )));
        }
        Ok(())
    }
}

impl RunAgents {
    async fn wait_all(&self) {
        Ended::all(self.agents.iter().map(|a| &a.done)).await;
    }

    fn abort_all(&self) {
        for agent in &self.agents {
            agent.abort.abort();
        }
    }

    fn unfinished(&self) -> Vec<usize> {
        Ended::unfinished(self.agents.iter().map(|a| &a.done))
    }
}

impl AgentCell {
    fn finish(&self, outcome: Result<Result<(), String>, JoinError>, grace: Duration) {
        let stopping = self.stop_requested.load(Ordering::SeqCst);
        let (phase, detail) = match outcome {
            Ok(Ok(())) if stopping => (AgentPhase::Stopped, None),
            Ok(Ok(())) => (AgentPhase::Succeeded, None),
            Ok(Err(reason)) if stopping => {
                (AgentPhase::Stopped, Some(format!("stopped; the agent reported: {reason}")))
            }
            Ok(Err(reason)) => (AgentPhase::Failed, Some(reason)),
            Err(e) if e.is_panic() => {
                (AgentPhase::Failed, Some(format!("agent panicked: {}", panic_message(e.into_panic()))))
            }
            Err(_) if self.killed.load(Ordering::SeqCst) => (AgentPhase::Failed, Some("killed".into())),
            Err(_) if stopping => {
                (AgentPhase::Stopped, Some(format!("did not stop within the {grace:?} grace period; aborted")))
            }
            Err(_) => (AgentPhase::Failed, Some("aborted".into())),
        };
        match phase {
            AgentPhase::Failed => tracing::warn!(?phase, detail = detail.as_deref(), "agent ended"),
            _ => tracing::info!(?phase, detail = detail.as_deref(), "agent ended"),
        }
        let mut status = lock(&self.status);
        status.phase = phase;
        status.detail = detail;
        status.finished_at = Some(Timestamp::now());
    }
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".into()
    }
}

#[async_trait]
impl Launcher for InProcessLauncher {
    fn describe(&self) -> String {
        "in-process agents (tasks of this server)".into()
    }

    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError> {
        validate_spec(spec)?;
        self.runs.insert_with(spec.run_id, || {
            let cancel = CancellationToken::new();
            let agents =
                (0..spec.number_of_agents).map(|i| self.spawn_agent(spec.run_id, i, cancel.child_token())).collect();
            Ok(RunAgents { run_id: spec.run_id, cancel, agents })
        })?;
        tracing::info!(run_id = %spec.run_id, agents = spec.number_of_agents, "in-process agents launched");
        Ok(())
    }

    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        let run = self.runs.get(run_id)?;
        Ok(run.agents.iter().map(|a| lock(&a.cell.status).clone()).collect())
    }

    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError> {
        match self.runs.get(run_id) {
            Ok(run) => self.stop_run(&run).await,
            Err(_) => Ok(()),
        }
    }

    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError> {
        let Some(run) = self.runs.remove(run_id) else {
            return Ok(());
        };
        if !run.unfinished().is_empty() {
            tracing::warn!(%run_id, "forgetting a run whose agents still run; aborting them");
            run.abort_all();
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), LaunchError> {
        let runs = self.runs.all();
        let results = futures::future::join_all(runs.iter().map(|run| self.stop_run(run))).await;
        results.into_iter().collect()
    }
}

impl Drop for InProcessLauncher {
    /// Agents never outlive their launcher.
    fn drop(&mut self) {
        for run in self.runs.all() {
            run.abort_all();
        }
    }
}

#[cfg(test)]
mod tests;
