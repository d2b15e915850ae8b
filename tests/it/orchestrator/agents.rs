//! Test agents: minimal honest agents for the orchestrator's tests while the real agent runtime
//! is built elsewhere. Each reads its message from the config store, consumes the run's queue
//! with prefetch 1, records every job `Running` then `Success` (or `Failed` when its message
//! says `"outcome": "fail"`) through the backend client, then acknowledges it — or plays one of
//! the failures below.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use armada::agent::runtime::InProcessDeps;
use armada::clients::BackendClient;
use armada::infra::broker::{BrokerError, job_queue_name};
use armada::infra::db::{JobUpdate, Mutation};
use armada::infra::launcher::in_process::{AgentAssignment, AgentEntry, agent_entry};
use armada::model::{Timestamp, agent_name, status};
use serde_json::Value;
use uuid::Uuid;

/// What the agents of a test do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Run every job to its outcome until the queue is deleted.
    Honest,
    /// Take one job, record it `Running`, then hold it until the run is stopped.
    HoldsUntilStopped,
    /// End with an error before taking any job.
    DiesAtStart,
}

/// The error a `DiesAtStart` agent ends with.
pub const DEATH: &str = "cannot start the browser";

/// What the test can see of its agents.
#[derive(Clone, Default)]
pub struct Probe {
    /// Agents that ended (returned, or were dropped).
    pub exited: Arc<AtomicUsize>,
    /// The agent messages they read, by pod index.
    pub messages: Arc<Mutex<Vec<(usize, Value)>>>,
}

impl Probe {
    pub fn exited(&self) -> usize {
        self.exited.load(Ordering::SeqCst)
    }
}

/// Counts the agent as exited however its future ends.
struct ExitGuard(Arc<AtomicUsize>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The entry point to hand `TestApp::builder().agent_entry(…)`.
pub fn test_agents(behaviour: Behaviour, probe: Probe) -> impl FnOnce(InProcessDeps) -> AgentEntry + Send + 'static {
    move |deps| {
        agent_entry(move |assignment: AgentAssignment| {
            let (deps, probe) = (deps.clone(), probe.clone());
            async move {
                let _exit = ExitGuard(probe.exited.clone());
                run_agent(deps, assignment, behaviour, probe).await
            }
        })
    }
}

async fn run_agent(
    deps: InProcessDeps,
    assignment: AgentAssignment,
    behaviour: Behaviour,
    probe: Probe,
) -> Result<(), String> {
    if behaviour == Behaviour::DiesAtStart {
        return Err(DEATH.into());
    }
    let AgentAssignment { run_id, pod_index, cancel } = assignment;
    let message = deps
        .config_store
        .get_agent_message(run_id, pod_index)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no agent message for agent {pod_index}"))?;
    probe.messages.lock().expect("lock").push((pod_index, message));
    let mut consumer = match deps.broker.consume(&job_queue_name(run_id), 1).await {
        Ok(consumer) => consumer,
        Err(BrokerError::NotFound(_)) => return Ok(()),
        Err(e) => return Err(e.to_string()),
    };
    let name = agent_name(pod_index);
    loop {
        let delivery = tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            next = consumer.next() => match next {
                None => return Ok(()),
                Some(Err(e)) => return Err(e.to_string()),
                Some(Ok(delivery)) => delivery,
            },
        };
        let job: Value = serde_json::from_slice(&delivery.body).map_err(|e| format!("job message: {e}"))?;
        let job_uuid = job["job_uuid"]
            .as_str()
            .and_then(|raw| Uuid::parse_str(raw).ok())
            .ok_or_else(|| format!("job message without a job_uuid: {job}"))?;
        record(&*deps.backend, job_uuid, &name, status::RUNNING, None).await?;
        if behaviour == Behaviour::HoldsUntilStopped {
            cancel.cancelled().await;
            return Ok(());
        }
        let outcome = if job["outcome"] == "fail" { status::FAILED } else { status::SUCCESS };
        record(&*deps.backend, job_uuid, &name, outcome, Some(Timestamp::now())).await?;
        delivery.ack().await.map_err(|e| e.to_string())?;
    }
}

async fn record(
    backend: &dyn BackendClient,
    job_uuid: Uuid,
    agent: &str,
    job_status: &str,
    finished: Option<Timestamp>,
) -> Result<(), String> {
    let update = JobUpdate {
        job_uuid,
        job_status: Some(job_status.into()),
        job_associated_agent: Some(agent.into()),
        job_attempts: Some(1),
        job_detail: (job_status == status::FAILED).then(|| "the job said so".to_owned()),
        job_finished: finished,
    };
    let outcomes = backend.apply(vec![Mutation::UpdateJob(update)]).await.map_err(|e| e.to_string())?;
    match outcomes.into_iter().next() {
        Some(Ok(_)) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no outcome".into()),
    }
}
