//! Starting a validated run, in SPEC §5's order: record the run, store the bundle and agent
//! messages, register the jobs, publish them, launch the agents, mark the run running, watch.
//! A run starts whole or not at all: when a step fails, every earlier step is undone.

use std::sync::Arc;
use std::time::Instant;

use uuid::Uuid;

use super::error::{StartError, StepFailure};
use super::prepare::PreparedRun;
use super::registry::{ActiveRun, Lifecycle};
use super::{Orchestrator, watch};
use crate::clients::backend::ItemOutcome;
use crate::clients::{BackendClient, LiveStream};
use crate::http::ApiError;
use crate::infra::broker::{BrokerError, QueueOptions, job_queue_name};
use crate::infra::db::{Mutation, NewJob, NewRun};
use crate::infra::launcher::LaunchSpec;
use crate::model::{RunStatus, Timestamp, status};

/// Jobs registered per backend call.
pub const JOB_BATCH: usize = 5_000;
/// Job messages published per broker call.
pub const PUBLISH_BATCH: usize = 1_000;
/// `job_associated_agent` of a job no agent has taken yet (the backend's default).
pub(crate) const NO_AGENT: &str = "Unknown";

/// Which steps began, so a failure undoes exactly those.
#[derive(Debug, Default)]
struct Progress {
    run_recorded: bool,
    keys_written: bool,
    queue_declared: bool,
    launch_attempted: bool,
}

impl Orchestrator {
    /// Starts the run and returns its id once the agents are launched and it is `running`;
    /// its watcher then carries it to its end.
    pub async fn start_run(self: &Arc<Self>, prepared: PreparedRun) -> Result<Uuid, StartError> {
        let started = Instant::now();
        let run_id = prepared.run_id;
        let run =
            Arc::new(ActiveRun::new(run_id, prepared.settings.number_of_agents, prepared.settings.number_of_jobs));
        // Uncontended (the run is new); held until the run is running or undone, so a cancel
        // or a shutdown waits for the start to settle.
        let mut lifecycle = run.lifecycle.lock().await;
        if self.register(run.clone()).is_err() {
            return Err(run_id_used(run_id).into());
        }
        let mut progress = Progress::default();
        let outcome = self.start_steps(&run, prepared, &mut lifecycle, &mut progress).await;
        match outcome {
            Ok(live) => {
                run.enter(&mut lifecycle, Lifecycle::Running);
                drop(lifecycle);
                tokio::spawn(watch::watch(self.clone(), run.clone(), live));
                tracing::info!(
                    %run_id,
                    agents = run.number_of_agents,
                    jobs = run.number_of_jobs,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "run started"
                );
                Ok(run_id)
            }
            Err(error) => {
                let undo_problems = self.undo(run_id, run.number_of_agents, &progress, &error).await;
                if progress.run_recorded {
                    run.enter(&mut lifecycle, Lifecycle::Abandoned);
                } else {
                    *lifecycle = Lifecycle::Abandoned;
                }
                self.unregister(run_id);
                Err(match error {
                    StartError::Failed(failure) => {
                        tracing::warn!(%run_id, step = failure.step, reason = %failure.message, "run start failed; undone");
                        StartError::Refused(failure.into_api_error("could not start the run", &undo_problems))
                    }
                    refused => refused,
                })
            }
        }
    }

    /// Steps 1–6, noting in `progress` what began.
    async fn start_steps(
        &self,
        run: &ActiveRun,
        prepared: PreparedRun,
        lifecycle: &mut Lifecycle,
        progress: &mut Progress,
    ) -> Result<LiveStream, StartError> {
        let run_id = run.run_id;
        // The id must be unused (a client may choose it).
        match self.backend.get_run(run_id).await {
            Ok(None) => {}
            Ok(Some(_)) => return Err(run_id_used(run_id).into()),
            Err(e) => return Err(StepFailure::backend("checking the run id", e).into()),
        }
        self.check_engines(run_id).await?;
        // Subscribed before anything is published, so no job outcome can be missed.
        let live = match self.backend.live().await {
            Ok(live) => live,
            Err(e) => return Err(StepFailure::backend("following the live stream", e).into()),
        };
        let PreparedRun { settings, agent_messages, job_uuids, job_bodies, bundle, requirements_txt, .. } = prepared;

        // 1. Record the run.
        let new_run = NewRun {
            run_uuid: run_id,
            run_datetime: run.started,
            run_status: Some(RunStatus::Dispatching),
            number_of_agents: Some(settings.number_of_agents as i64),
            number_of_jobs: Some(settings.number_of_jobs as i64),
        };
        match apply_all(&*self.backend, "recording the run", vec![Mutation::CreateRun(new_run)]).await {
            Ok(true) => progress.run_recorded = true,
            // Recorded meanwhile by someone else: not ours to undo.
            Ok(false) => return Err(run_id_used(run_id).into()),
            Err(failure) => return Err(failure.into()),
        }
        run.enter(lifecycle, Lifecycle::Dispatching);

        // 2. The bundle and the agent messages, where the agents look for them.
        progress.keys_written = true;
        if let Err(e) = self.config_store.put_bundle(run_id, bundle.bytes).await {
            return Err(StepFailure::config_store("storing the project bundle", e).into());
        }
        if let Err(e) = self.config_store.put_agent_messages(run_id, &agent_messages).await {
            return Err(StepFailure::config_store("storing the agent messages", e).into());
        }
        drop(agent_messages);

        // 3. Register the jobs, `Queued`, in batches.
        let now = Timestamp::now();
        for (batch_index, batch) in job_uuids.chunks(JOB_BATCH).enumerate() {
            let first = batch_index * JOB_BATCH;
            let mutations = batch
                .iter()
                .enumerate()
                .map(|(k, &job_uuid)| {
                    Mutation::CreateJob(NewJob {
                        job_uuid,
                        run_uuid: run_id,
                        job_datetime: now,
                        job_associated_agent: NO_AGENT.to_owned(),
                        job_status: status::QUEUED.to_owned(),
                        job_index: Some((first + k) as i64),
                    })
                })
                .collect();
            match apply_all(&*self.backend, "registering the jobs", mutations).await {
                Ok(true) => {}
                Ok(false) => {
                    let failure = StepFailure::new("registering the jobs", "a job uuid was already recorded", false);
                    return Err(failure.into());
                }
                Err(failure) => return Err(failure.into()),
            }
        }
        drop(job_uuids);

        // 4. The queue, and the job messages in it. Its delivery timeout outlasts every attempt
        // of a job, so the broker does not take a job back from an agent still running it.
        let queue = job_queue_name(run_id);
        progress.queue_declared = true;
        let options = QueueOptions { delivery_timeout: Some(settings.delivery_timeout()) };
        if let Err(e) = self.broker.declare(&queue, &options).await {
            return Err(StepFailure::broker("declaring the job queue", e).into());
        }
        for batch in job_bodies.chunks(PUBLISH_BATCH) {
            if let Err(e) = self.broker.publish(&queue, batch).await {
                return Err(StepFailure::broker("publishing the jobs", e).into());
            }
        }
        drop(job_bodies);

        // 5. The agents.
        let spec = LaunchSpec {
            run_id,
            number_of_agents: settings.number_of_agents,
            image_name: settings.image_name.clone(),
            image_version: settings.image_version.clone(),
            agent_cpu: settings.agent_cpu.clone(),
            agent_memory: settings.agent_memory.clone(),
            requirements_txt,
        };
        progress.launch_attempted = true;
        if let Err(e) = self.launcher.launch(&spec).await {
            return Err(StepFailure::launcher("launching the agents", e).into());
        }

        // 6. Running.
        let running = Mutation::UpdateRun { run_uuid: run_id, run_status: RunStatus::Running, run_detail: None };
        if let Err(failure) = apply_all(&*self.backend, "marking the run running", vec![running]).await {
            return Err(failure.into());
        }
        Ok(live)
    }

    /// Before anything is stored: the config store and the broker must answer (one that is
    /// down is a 503 with nothing to undo, rather than a write that times out and an undo that
    /// times out again), and the run's queue must not exist yet. A queue already named after a
    /// new run was left by something else — an earlier start with this id whose undo could not
    /// reach the broker, another tool — and its messages would be taken for this run's jobs, so
    /// the start is refused (409) and that queue left as it is.
    async fn check_engines(&self, run_id: Uuid) -> Result<(), StartError> {
        if let Err(e) = self.config_store.check_connectivity().await {
            return Err(StepFailure::config_store("checking the config store", e).into());
        }
        let queue = job_queue_name(run_id);
        match self.broker.stats(&queue).await {
            Err(BrokerError::NotFound(_)) => Ok(()),
            Ok(stats) => Err(ApiError::conflict(format!(
                "run_uuid {run_id} cannot be used: the broker ({}) already has a queue named {queue} (ready messages: \
                 {}, consumers: {}), left by an earlier start with this id or made by another tool; delete that \
                 queue, or leave run_uuid out to get a new id",
                self.broker.describe(),
                stats.ready,
                stats.consumers
            ))
            .into()),
            Err(e) => Err(StepFailure::broker("checking the job queue", e).into()),
        }
    }

    /// Undoes the steps that began, newest first; returns what could not be undone, as text
    /// to append to the answer (empty when everything was).
    async fn undo(&self, run_id: Uuid, agents: usize, progress: &Progress, error: &StartError) -> String {
        let mut problems: Vec<String> = Vec::new();
        if progress.launch_attempted {
            if let Err(e) = self.launcher.stop(run_id).await {
                problems.push(format!("stopping the agents: {e}"));
            }
            if let Err(e) = self.launcher.forget(run_id).await {
                problems.push(format!("forgetting the agents: {e}"));
            }
        }
        if progress.queue_declared
            && let Err(e) = self.broker.delete(&job_queue_name(run_id)).await
        {
            problems.push(format!("deleting the queue: {e}"));
        }
        if progress.keys_written
            && let Err(e) = self.config_store.delete_run(run_id, agents).await
        {
            problems.push(format!("deleting the config keys: {e}"));
        }
        if progress.run_recorded {
            // Marked failed first: if the delete cannot go through, the run at least says why
            // (and a backend in another process refuses to delete a run still dispatching).
            let reason = match error {
                StartError::Failed(failure) => format!("start failed: {} failed: {}", failure.step, failure.message),
                StartError::Refused(refusal) => format!("start refused: {}", refusal.detail),
            };
            let failed =
                Mutation::UpdateRun { run_uuid: run_id, run_status: RunStatus::Failed, run_detail: Some(reason) };
            if let Err(e) = self.backend.apply(vec![failed]).await {
                problems.push(format!("marking the run failed: {e}"));
            }
            match self.backend.delete_run(run_id).await {
                Ok(_) => {}
                Err(e) => problems.push(format!("deleting the run and its jobs: {e}")),
            }
        }
        if problems.is_empty() {
            "; nothing of the run was kept".to_owned()
        } else {
            tracing::error!(%run_id, problems = ?problems, "undoing a failed start left things behind");
            format!("; undoing it also failed ({})", problems.join("; "))
        }
    }
}

fn run_id_used(run_id: Uuid) -> ApiError {
    ApiError::conflict(format!("run_uuid {run_id} is already used by another run; leave run_uuid out to get a new one"))
}

/// Applies a batch through the backend: `Ok(true)` when every item was new, `Ok(false)` when
/// one was already recorded, the failure when the call or an item failed.
pub(crate) async fn apply_all(
    backend: &dyn BackendClient,
    step: &'static str,
    batch: Vec<Mutation>,
) -> Result<bool, StepFailure> {
    let outcomes: Vec<ItemOutcome> = backend.apply(batch).await.map_err(|e| StepFailure::backend(step, e))?;
    let mut all_new = true;
    for outcome in outcomes {
        match outcome {
            Ok(changed) => all_new &= changed,
            Err(e) => return Err(StepFailure::backend(step, e)),
        }
    }
    Ok(all_new)
}
