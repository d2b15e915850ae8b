//! `Launcher`: starts a run's N agents, reports how each is doing, and stops them.
//!
//! Implementations: [`in_process::InProcessLauncher`] (agents as tasks of this process, the
//! embedded default), [`process::ProcessLauncher`] (`PLATFORM=local`: child `armada agent`
//! processes, started as [`process::AgentCommand::armada_agent`] says) and
//! [`kube::KubeLauncher`] (`PLATFORM=distant`: one Indexed Job per run, built with
//! `KubeLauncher::from_settings`). Every implementation passes the same suite,
//! [`conformance`] (`launcher_suite!`). Choosing one needs the agent entry point, so the app
//! wiring builds it; there is no `open` here.

pub mod in_process;
pub mod kube;
pub mod process;
mod runs;

#[cfg(test)]
pub mod conformance;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Timestamp;

/// How long `stop` waits for agents to end on their own before forcing them.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The run (or agent) is not known to this launcher.
    #[error("{0}")]
    NotFound(String),
    /// The platform cannot be reached or failed; retrying later may work.
    #[error("launcher unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (zero agents, no image name).
    #[error("{0}")]
    Invalid(String),
    /// The run's agents were already launched.
    #[error("{0}")]
    Conflict(String),
}

/// What a launcher needs to start a run's agents. Each agent fetches the rest (its message,
/// the project bundle) from the config store by `run_id` and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    pub run_id: Uuid,
    pub number_of_agents: usize,
    /// Container image, for launchers that start containers.
    pub image_name: String,
    pub image_version: String,
    /// Kubernetes resource requests (`"500m"`, `"1Gi"`).
    pub agent_cpu: Option<String>,
    pub agent_memory: Option<String>,
    /// The project's `requirements.txt`, handed to agents that install it (`REQUIREMENTS_TXT`).
    pub requirements_txt: Option<String>,
}

impl LaunchSpec {
    /// A spec for `number_of_agents` agents and no image: what in-process agents need.
    pub fn new(run_id: Uuid, number_of_agents: usize) -> Self {
        Self {
            run_id,
            number_of_agents,
            image_name: String::new(),
            image_version: String::new(),
            agent_cpu: None,
            agent_memory: None,
            requirements_txt: None,
        }
    }
}

/// Checks what every launcher requires of a spec.
pub fn validate_spec(spec: &LaunchSpec) -> Result<(), LaunchError> {
    if spec.number_of_agents == 0 {
        return Err(LaunchError::Invalid(format!("run {}: number_of_agents must be at least 1", spec.run_id)));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentPhase {
    /// Asked for, not running yet (scheduling, pulling the image).
    Pending,
    Running,
    /// Ended on its own, successfully.
    Succeeded,
    /// Ended on its own with an error, crashed, or was killed.
    Failed,
    /// Ended because the run was stopped.
    Stopped,
}

impl AgentPhase {
    /// True once the agent has ended, whichever way.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Stopped)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    pub pod_index: usize,
    pub phase: AgentPhase,
    /// Why it failed or how it was stopped.
    pub detail: Option<String>,
    /// The agent's process id, for launchers that start processes.
    pub pid: Option<u32>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

impl AgentStatus {
    pub fn pending(pod_index: usize) -> Self {
        Self { pod_index, phase: AgentPhase::Pending, detail: None, pid: None, started_at: None, finished_at: None }
    }
}

#[async_trait]
pub trait Launcher: Send + Sync + 'static {
    /// Engine and address, for logs and `/health`: never credentials.
    fn describe(&self) -> String;
    async fn check_connectivity(&self) -> Result<(), LaunchError>;

    /// Starts agents `0..number_of_agents` of the run. A run launched before is `Conflict`.
    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError>;
    /// Every agent of the run, by `pod_index`. A run this launcher does not know is `NotFound`.
    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError>;
    /// Asks every agent of the run to stop, waits for them up to the stop grace, forces those
    /// still running, and returns once they are gone. Stopping an unknown or ended run is fine.
    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError>;
    /// Drops what the launcher keeps about the run (after it ended). Agents still running are
    /// ended at once. Forgetting an unknown run is fine.
    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError>;
    /// Stops the agents of every run (process exit).
    async fn shutdown(&self) -> Result<(), LaunchError>;
}
