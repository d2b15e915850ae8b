//! Opening the orchestrator's engines from the settings (or taking those the caller chose):
//! the config store, the broker, the backend client (in-process when the backend role runs
//! here, else HTTP at `BACKEND_URL`) and the launcher with the agent entry point; each becomes
//! a `/health` dependency.

use std::sync::Arc;

use anyhow::Context;
use futures::future::BoxFuture;

use super::{Orchestrator, OrchestratorSettings};
use crate::agent::runtime::{InProcessDeps, in_process_entry, worker_env};
use crate::app::Engines;
use crate::clients::{BackendClient, HttpBackend, InProcessBackend};
use crate::health::Dependency;
use crate::infra::launcher::Launcher;
use crate::infra::launcher::in_process::{AgentEntry, InProcessLauncher};
use crate::infra::launcher::kube::KubeLauncher;
use crate::infra::launcher::process::{AgentCommand, ProcessLauncher};
use crate::infra::{broker, config_store};
use crate::records::Records;
use crate::settings::{LauncherSettings, Settings, SettingsError};

/// Makes the entry point of in-process agents from what they share with the server; the
/// default is the real agent runtime, `agent::runtime::in_process_entry`.
pub type AgentEntryFactory = Box<dyn FnOnce(InProcessDeps) -> AgentEntry + Send>;

impl Orchestrator {
    /// The orchestrator with its engines, and their health checks. `records` is the backend
    /// role of this process, when it runs here.
    pub async fn open(
        settings: &Arc<Settings>,
        records: Option<&Records>,
        engines: Engines,
    ) -> anyhow::Result<(Arc<Orchestrator>, Vec<Dependency>)> {
        let config_store = match engines.config_store {
            Some(store) => store,
            None => config_store::open(&settings.config_store).await.context("failed to open the config store")?,
        };
        let broker = match engines.broker {
            Some(broker) => broker,
            None => broker::open(&settings.broker).await.context("failed to open the broker")?,
        };
        let (backend, remote): (Arc<dyn BackendClient>, bool) = match (engines.backend, records) {
            (Some(backend), _) => (backend, false),
            (None, Some(records)) => (Arc::new(InProcessBackend::new(records.clone())), false),
            (None, None) => match &settings.backend_url {
                Some(url) => (Arc::new(HttpBackend::new(url, settings.token.clone())?), true),
                None => {
                    return Err(SettingsError::Unusable {
                        key: "BACKEND_URL".into(),
                        message: "not set; the orchestrator records runs through the backend: serve the backend \
                                  role in the same process (--roles backend,orchestrator) or set BACKEND_URL"
                            .into(),
                    }
                    .into());
                }
            },
        };
        let launcher: Arc<dyn Launcher> = match engines.launcher {
            Some(launcher) => launcher,
            None => match &settings.launcher {
                LauncherSettings::InProcess => {
                    let deps = InProcessDeps {
                        config_store: config_store.clone(),
                        broker: broker.clone(),
                        backend: backend.clone(),
                        settings: settings.clone(),
                        work_root: settings.work_dir.clone(),
                    };
                    let entry = match engines.agent_entry {
                        Some(make) => make(deps),
                        None => in_process_entry(deps),
                    };
                    Arc::new(InProcessLauncher::new(entry))
                }
                // Agent processes reach the roles this server serves where its agents inside
                // would: at its own address.
                LauncherSettings::Process => {
                    Arc::new(ProcessLauncher::new(AgentCommand::armada_agent(settings, worker_env(settings, true))?))
                }
                LauncherSettings::Kube { .. } => Arc::new(
                    KubeLauncher::from_settings(settings)
                        .await
                        .context("failed to set up the Kubernetes launcher (PLATFORM=distant)")?,
                ),
            },
        };
        let mut dependencies = vec![
            health("config store", config_store.describe(), config_store.clone(), |e| e.check_connectivity()),
            health("broker", broker.describe(), broker.clone(), |e| e.check_connectivity()),
            health("launcher", launcher.describe(), launcher.clone(), |e| e.check_connectivity()),
        ];
        if remote {
            dependencies.push(health("backend", backend.describe(), backend.clone(), |e| e.check_connectivity()));
        }
        let orchestrator =
            Orchestrator::new(config_store, broker, launcher, backend, OrchestratorSettings::from_settings(settings));
        Ok((Arc::new(orchestrator), dependencies))
    }
}

/// A `/health` dependency from an engine's `check_connectivity`.
fn health<T, E>(
    name: &'static str,
    describe: String,
    engine: Arc<T>,
    check: for<'a> fn(&'a T) -> BoxFuture<'a, Result<(), E>>,
) -> Dependency
where
    T: ?Sized + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    Dependency::new(name, describe, move || {
        let engine = engine.clone();
        Box::pin(async move { check(&engine).await.map_err(|e| e.to_string()) })
    })
}
