//! A run set up the way the orchestrator sets one up, for the places that run agents without
//! an orchestrator: `armada workbench`, the end-to-end benchmark and the tests. The run and its
//! jobs are recorded (`Queued`), the agent messages (with their `_armada` run config) and the
//! project bundle go to the config store, and the job messages (each with its `job_uuid`) are
//! published to the run's queue.

use serde_json::Value;
use uuid::Uuid;

use crate::clients::BackendClient;
use crate::infra::broker::{Broker, QueueOptions, job_queue_name};
use crate::infra::config_store::ConfigStore;
use crate::infra::db::{Mutation, NewJob, NewRun};
use crate::model::{AGENT_RUN_CONFIG_KEY, AgentRunConfig, JOB_UUID_KEY, RunStatus, Timestamp, status};
use crate::pipeline::{NamedBytes, PipelineError, ProjectInput, RunPlan, plan_run};
use crate::project::{NamedFile, Project, TuneKind};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error("packing the project: {0}")]
    Bundle(String),
    #[error("recording the run: {0}")]
    Backend(String),
    #[error("storing the agent messages: {0}")]
    ConfigStore(String),
    #[error("publishing the jobs: {0}")]
    Broker(String),
}

/// A staged run: what the agents will find.
#[derive(Debug, Clone)]
pub struct StagedRun {
    pub run_id: Uuid,
    pub number_of_agents: usize,
    pub config: AgentRunConfig,
    /// The published jobs in queue order: uuid and message.
    pub jobs: Vec<(Uuid, Value)>,
}

fn named(file: NamedFile<'_>) -> NamedBytes<'_> {
    NamedBytes { name: file.name, bytes: file.bytes }
}

/// The project's run plan with the given tune file (default: `config/config_local.json`).
pub fn plan_project(project: &Project, tune: Option<NamedBytes<'_>>) -> Result<RunPlan, PipelineError> {
    let tune = tune.or_else(|| project.tune(&TuneKind::Local).map(named));
    plan_run(&ProjectInput {
        template: named(project.template()),
        tune,
        data_agent: project.data_agent().map(named),
        data_job: project.data_job().map(named),
        run_id: None,
    })
}

/// Records the run and its jobs, stores the agent messages and the bundle, and publishes the
/// jobs: all of them, or the first `jobs_limit`.
pub async fn stage_run(
    plan: &RunPlan,
    project: &Project,
    jobs_limit: Option<usize>,
    backend: &dyn BackendClient,
    config_store: &dyn ConfigStore,
    broker: &dyn Broker,
) -> Result<StagedRun, StageError> {
    let run_id = plan.run_id;
    let bundle = project.to_bundle().map_err(|e| StageError::Bundle(e.to_string()))?;
    let count = jobs_limit.unwrap_or(plan.job_messages.len()).min(plan.job_messages.len());
    let config = AgentRunConfig {
        job_timeout_secs: plan.settings.job_timeout_secs,
        max_attempts: plan.settings.max_attempts,
        worker_command: plan.settings.worker_command.clone(),
        bundle_sha256: Some(bundle.sha256.clone()),
        bundle_size: Some(bundle.size),
        has_requirements: project.requirements_txt().is_some(),
        number_of_agents: plan.settings.number_of_agents,
        number_of_jobs: count,
    };
    let config_value = serde_json::to_value(&config).map_err(|e| StageError::ConfigStore(e.to_string()))?;
    let agent_messages: Vec<Value> = plan
        .agent_messages
        .iter()
        .map(|message| {
            let mut message = message.clone();
            if let Some(map) = message.as_object_mut() {
                map.insert(AGENT_RUN_CONFIG_KEY.into(), config_value.clone());
            }
            message
        })
        .collect();
    let jobs: Vec<(Uuid, Value)> = plan
        .job_messages
        .iter()
        .take(count)
        .map(|mut message| {
            let uuid = Uuid::new_v4();
            if let Some(map) = message.as_object_mut() {
                map.insert(JOB_UUID_KEY.into(), Value::String(uuid.to_string()));
            }
            (uuid, message)
        })
        .collect();

    let now = Timestamp::now();
    let mut records = vec![Mutation::CreateRun(NewRun {
        run_uuid: run_id,
        run_datetime: now,
        run_status: Some(RunStatus::Running),
        number_of_agents: Some(plan.settings.number_of_agents as i64),
        number_of_jobs: Some(count as i64),
    })];
    records.extend(jobs.iter().enumerate().map(|(index, (uuid, _))| {
        Mutation::CreateJob(NewJob {
            job_uuid: *uuid,
            run_uuid: run_id,
            job_datetime: now,
            job_associated_agent: crate::records::wire::UNKNOWN_AGENT.into(),
            job_status: status::QUEUED.into(),
            job_index: Some(index as i64),
        })
    }));
    for chunk in records.chunks(2048) {
        let outcomes = backend.apply(chunk.to_vec()).await.map_err(|e| StageError::Backend(e.to_string()))?;
        if let Some(Err(error)) = outcomes.into_iter().find(Result::is_err) {
            return Err(StageError::Backend(error.to_string()));
        }
    }

    config_store
        .put_agent_messages(run_id, &agent_messages)
        .await
        .map_err(|e| StageError::ConfigStore(e.to_string()))?;
    config_store.put_bundle(run_id, bundle.bytes).await.map_err(|e| StageError::ConfigStore(e.to_string()))?;

    let queue = job_queue_name(run_id);
    let options = QueueOptions { delivery_timeout: Some(plan.settings.delivery_timeout()) };
    broker.declare(&queue, &options).await.map_err(|e| StageError::Broker(e.to_string()))?;
    let bodies: Vec<bytes::Bytes> = jobs
        .iter()
        .map(|(_, message)| serde_json::to_vec(message).map(bytes::Bytes::from))
        .collect::<Result<_, _>>()
        .map_err(|e| StageError::Broker(e.to_string()))?;
    for chunk in bodies.chunks(1000) {
        broker.publish(&queue, chunk).await.map_err(|e| StageError::Broker(e.to_string()))?;
    }
    Ok(StagedRun { run_id, number_of_agents: plan.settings.number_of_agents, config, jobs })
}
