//! Agents against a real backend: `AgentHarness` is a backend (`TestApp`), an in-memory config
//! store and broker, and an `InProcessLauncher` running the real agent entry; `stage` sets a
//! run up from a project folder the way the orchestrator does (run and `Queued` jobs recorded,
//! agent messages with `_armada` and the bundle stored, jobs published).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use armada::agent::stage::{StagedRun, plan_project, stage_run};
use armada::agent::{AgentOptions, InProcessDeps, in_process_entry};
use armada::clients::{BackendClient, InProcessBackend};
use armada::infra::broker::memory::MemoryBroker;
use armada::infra::broker::{Broker, job_queue_name};
use armada::infra::config_store::ConfigStore;
use armada::infra::config_store::memory::MemoryConfigStore;
use armada::infra::launcher::in_process::InProcessLauncher;
use armada::infra::launcher::{AgentPhase, AgentStatus, LaunchSpec, Launcher};
use armada::model::{Event, Job, Output, PageRequest, RunSummary};
use armada::project::{Project, ProjectLimits};
use armada::roles::Role;
use serde_json::Value;
use uuid::Uuid;

use super::{TestApp, eventually};

/// Generous: the machine is shared and noisy.
pub const RUN_LIMIT: Duration = Duration::from_secs(180);

pub struct AgentHarness {
    pub app: TestApp,
    /// What the agents record through (in-process by default).
    pub backend: Arc<dyn BackendClient>,
    pub config_store: Arc<dyn ConfigStore>,
    pub broker: Arc<dyn Broker>,
    pub launcher: InProcessLauncher,
    pub work_root: tempfile::TempDir,
}

impl AgentHarness {
    /// A backend app and agents recording through the in-process backend.
    pub async fn new() -> Self {
        let app = TestApp::builder().roles([Role::Backend]).spawn().await;
        let backend: Arc<dyn BackendClient> = Arc::new(InProcessBackend::new(app.state.records.clone()));
        Self::with_backend(app, backend)
    }

    /// Agents recording through `backend` (e.g. an `HttpBackend` in front of `app`).
    pub fn with_backend(app: TestApp, backend: Arc<dyn BackendClient>) -> Self {
        Self::with_engines(app, backend, Arc::new(MemoryBroker::new()))
    }

    /// A backend app and agents recording through the in-process backend, on `broker` (a
    /// RabbitMQ of the test's own, say).
    pub async fn with_broker(broker: Arc<dyn Broker>) -> Self {
        let app = TestApp::builder().roles([Role::Backend]).spawn().await;
        let backend: Arc<dyn BackendClient> = Arc::new(InProcessBackend::new(app.state.records.clone()));
        Self::with_engines(app, backend, broker)
    }

    fn with_engines(app: TestApp, backend: Arc<dyn BackendClient>, broker: Arc<dyn Broker>) -> Self {
        let config_store: Arc<dyn ConfigStore> = Arc::new(MemoryConfigStore::new());
        let work_root = tempfile::tempdir().expect("work root");
        let deps = InProcessDeps {
            config_store: config_store.clone(),
            broker: broker.clone(),
            backend: backend.clone(),
            settings: Arc::new(app.state.settings.as_ref().clone()),
            work_root: work_root.path().to_path_buf(),
        };
        let launcher = InProcessLauncher::new(in_process_entry(deps)).with_stop_grace(Duration::from_secs(30));
        Self { app, backend, config_store, broker, launcher, work_root }
    }

    /// Stages the project in `dir` (`config/config_local.json` as the tune).
    pub async fn stage(&self, dir: &Path) -> StagedRun {
        let project = Project::from_dir(dir, ProjectLimits::default()).expect("project");
        let plan = plan_project(&project, None).expect("run plan");
        stage_run(&plan, &project, None, self.backend.as_ref(), self.config_store.as_ref(), self.broker.as_ref())
            .await
            .expect("staged run")
    }

    /// Stages and launches every agent of the run.
    pub async fn start(&self, dir: &Path) -> StagedRun {
        let staged = self.stage(dir).await;
        self.launcher.launch(&LaunchSpec::new(staged.run_id, staged.number_of_agents)).await.expect("launched");
        staged
    }

    pub async fn summary(&self, run_id: Uuid) -> RunSummary {
        self.app.state.records.run_summary(run_id).await.expect("summary").expect("run exists")
    }

    /// Waits until every job has an outcome, then ends the run as the orchestrator would
    /// (deletes the queue) and waits for the agents to end. Returns the summary.
    pub async fn finish(&self, staged: &StagedRun) -> RunSummary {
        let run_id = staged.run_id;
        let done = eventually(RUN_LIMIT, async || {
            let summary = self.summary(run_id).await;
            summary.finished() == staged.jobs.len() as u64
        })
        .await;
        let summary = self.summary(run_id).await;
        assert!(
            done,
            "jobs did not all end within {RUN_LIMIT:?}: {:?}; agents: {:?}",
            summary.counts,
            self.agents(run_id).await
        );
        self.broker.delete(&job_queue_name(run_id)).await.expect("queue deleted");
        let ended = eventually(RUN_LIMIT, async || self.agents(run_id).await.iter().all(|a| a.phase.is_final())).await;
        assert!(ended, "agents did not end: {:?}", self.agents(run_id).await);
        summary
    }

    pub async fn agents(&self, run_id: Uuid) -> Vec<AgentStatus> {
        self.launcher.agents(run_id).await.expect("agents")
    }

    /// Asserts every agent ended on its own, successfully.
    pub async fn assert_agents_succeeded(&self, run_id: Uuid) {
        for agent in self.agents(run_id).await {
            assert_eq!(agent.phase, AgentPhase::Succeeded, "agent {}: {:?}", agent.pod_index, agent.detail);
        }
    }

    pub async fn job(&self, job_uuid: Uuid) -> Job {
        self.app.state.store().get_job(job_uuid).await.expect("job").expect("job exists")
    }

    /// Every event of the job, oldest first.
    pub async fn events(&self, job_uuid: Uuid) -> Vec<Event> {
        let page = PageRequest::new(Some(1), Some(100), 100).expect("page");
        let mut events = self.app.state.store().list_events(job_uuid, page).await.expect("events").items;
        events.reverse();
        events
    }

    /// Every output of the run (up to 1,000).
    pub async fn outputs(&self, run_id: Uuid) -> Vec<Output> {
        let mut all = Vec::new();
        for page in 1..=10 {
            let request = PageRequest::new(Some(page), Some(100), 100).expect("page");
            let items = self.app.state.store().list_outputs(Some(run_id), request).await.expect("outputs").items;
            let last = items.len() < 100;
            all.extend(items);
            if last {
                break;
            }
        }
        all
    }

    pub async fn logs(&self, job_uuid: Uuid) -> String {
        let (status, body) = self.app.get(&format!("/api/jobs/{job_uuid}/logs")).await;
        assert_eq!(status, 200, "{body}");
        body["logs"].as_str().unwrap_or_default().to_string()
    }
}

/// A copy of `from` in a fresh temporary folder (so a test can change its files).
pub fn copy_project(from: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("project folder");
    copy_dir(from, dir.path());
    dir
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            if entry.file_name() == "__pycache__" {
                continue;
            }
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}

/// `examples/NAME` in the repository.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// Writes `config/config_template.json`.
pub fn write_template(dir: &Path, template: &Value) {
    std::fs::create_dir_all(dir.join("config")).expect("config folder");
    std::fs::write(dir.join("config/config_template.json"), serde_json::to_vec_pretty(template).expect("json"))
        .expect("template written");
}

/// Options for agents under test: short stop grace, quick flushes.
pub fn test_options() -> AgentOptions {
    AgentOptions {
        stop_grace: Duration::from_secs(5),
        spool_flush_wait: Duration::from_secs(60),
        ..AgentOptions::default()
    }
}

/// In `examples/hello`, agent *i*'s greeting and proxy location: the template merged with its
/// data_agent.csv row.
pub fn expected_agent(index: u64) -> (&'static str, &'static str) {
    match index {
        0 => ("bonjour", "FR"),
        1 => ("hola", "ES"),
        _ => ("hello", ""),
    }
}
