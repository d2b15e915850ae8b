//! Running one agent: from its assignment (run id, pod index) to a drained queue.

use std::path::PathBuf;
use std::sync::Arc;

use crate::clients::BackendClient;
use crate::infra::broker::Broker;
use crate::infra::config_store::ConfigStore;
use crate::infra::launcher::in_process::{AgentEntry, agent_entry};
use crate::settings::Settings;

/// What an agent running inside the server process shares with it.
#[derive(Clone)]
pub struct InProcessDeps {
    pub config_store: Arc<dyn ConfigStore>,
    pub broker: Arc<dyn Broker>,
    pub backend: Arc<dyn BackendClient>,
    pub settings: Arc<Settings>,
    /// Agents' working directories are created under it (`{work_root}/{run_id}/agent-{i}`).
    pub work_root: PathBuf,
}

/// The entry point the in-process launcher calls once per agent.
pub fn in_process_entry(deps: InProcessDeps) -> AgentEntry {
    agent_entry(move |assignment| {
        let _deps = deps.clone();
        async move {
            Err(format!(
                "agent {} of run {}: the agent runtime is not built yet",
                assignment.pod_index, assignment.run_id
            ))
        }
    })
}
