//! Agents against a real backend: `AgentHarness` is an app serving the backend and the
//! orchestrator (`TestApp`) on the engines of one configuration ([`Engines`]: embedded; Redis
//! and RabbitMQ with in-process agents; Redis and RabbitMQ with `armada agent` processes), and
//! the real agent entry. `stage` sets a run up from a project folder the way the orchestrator
//! does (run and `Queued` jobs recorded, agent messages with `_armada` and the bundle stored,
//! jobs published) and `start` launches its agents; `launch_run` goes through the orchestrator
//! itself (`POST /bot/start`), for tests of what it does (cancel).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use armada::agent::stage::{StagedRun, plan_project, stage_run};
use armada::agent::{AgentOptions, InProcessDeps, in_process_entry, worker_env};
use armada::clients::{BackendClient, HttpBackend, InProcessBackend};
use armada::infra::broker::{Broker, job_queue_name};
use armada::infra::config_store::ConfigStore;
use armada::infra::launcher::in_process::{AgentEntry, InProcessLauncher, agent_entry};
use armada::infra::launcher::process::{AgentCommand, ProcessLauncher};
use armada::infra::launcher::{AgentPhase, AgentStatus, DEFAULT_STOP_GRACE, LaunchSpec, Launcher};
use armada::model::{Event, Job, Output, PageRequest, RunSummary};
use armada::project::{Project, ProjectLimits};
use armada::roles::Role;
use armada::settings::Settings;
use serde_json::Value;
use uuid::Uuid;

pub use super::engines::Engines;
use super::{TestApp, TestAppBuilder, eventually};

/// Generous: the machine is shared and noisy.
pub const RUN_LIMIT: Duration = Duration::from_secs(180);

pub struct AgentHarness {
    pub engines: Engines,
    /// Backend and orchestrator roles, on this configuration's engines.
    pub app: TestApp,
    /// The app's own records, in-process: what the harness stages runs through (as the
    /// orchestrator does) and what in-process agents record through, unless the test said
    /// otherwise ([`HarnessBuilder::agents_record_at`]). Agent processes record over HTTP at
    /// `BACKEND_URL`, the app's URL unless the test said otherwise.
    pub backend: Arc<dyn BackendClient>,
    /// The orchestrator's engines: the ones the agents use.
    pub config_store: Arc<dyn ConfigStore>,
    pub broker: Arc<dyn Broker>,
    pub launcher: Arc<dyn Launcher>,
    /// The same launcher, when agents are tasks of the test (to kill one).
    in_process: Option<Arc<InProcessLauncher>>,
    /// `ARMADA_WORK_DIR`: each agent works in `{work_root}/{run_id}/agent-{i}`.
    pub work_root: tempfile::TempDir,
}

/// How a harness is made; [`AgentHarness::new`] takes every default.
pub struct HarnessBuilder {
    engines: Engines,
    app: TestAppBuilder,
    record_at: Option<String>,
    stop_grace: Duration,
    work_root: tempfile::TempDir,
}

impl HarnessBuilder {
    /// More of the app's settings (a token, providers' URLs, a listener of the test's own).
    pub fn app(mut self, configure: impl FnOnce(TestAppBuilder) -> TestAppBuilder) -> Self {
        self.app = configure(self.app);
        self
    }

    /// Agents record over HTTP at `url` (e.g. a proxy in front of the app that the test can
    /// pause): in-process agents through an `HttpBackend`, agent processes as `BACKEND_URL`.
    pub fn agents_record_at(mut self, url: &str) -> Self {
        self.record_at = Some(url.to_string());
        self
    }

    /// How long the launcher's `stop` waits for agents before forcing them (default: the
    /// launchers' own, as the orchestrator uses them).
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    pub async fn spawn(self) -> AgentHarness {
        let Self { engines, mut app, record_at, stop_grace, work_root } = self;
        if let (Some(url), true) = (&record_at, engines.agents_are_processes()) {
            app = app.var("BACKEND_URL", url);
        }
        if engines.is_distributed() {
            let servers = engines.live_servers().await.expect("Redis and RabbitMQ (check `Engines::available` first)");
            app = app.var("REDIS_URL", servers.redis).var("RABBITMQ_URL", servers.rabbitmq);
        }
        // In-process agents record through the app's records, which exist once it is built:
        // their entry is set right after.
        let entry = Arc::new(OnceLock::new());
        let in_process = match engines {
            Engines::Embedded | Engines::Distributed => {
                let launcher = InProcessLauncher::new(late_entry(entry.clone())).with_stop_grace(stop_grace);
                let launcher = Arc::new(launcher);
                app = app.launcher(launcher.clone());
                Some(launcher)
            }
            Engines::DistributedProcesses => {
                app = app.launcher_from(move |settings| Arc::new(agent_processes(settings, stop_grace)));
                None
            }
        };
        let app = app.spawn().await;
        let orchestrator = app.orchestrator();
        let (config_store, broker, launcher) =
            (orchestrator.config_store.clone(), orchestrator.broker.clone(), orchestrator.launcher.clone());
        let processes = launcher.describe().starts_with("child agent processes");
        assert_eq!(processes, engines.agents_are_processes(), "{}", launcher.describe());
        if engines.is_distributed() {
            assert!(config_store.describe().contains("redis"), "{}", config_store.describe());
            assert!(broker.describe().contains("amqp"), "{}", broker.describe());
        }
        let backend: Arc<dyn BackendClient> = Arc::new(InProcessBackend::new(app.state.records.clone()));
        if in_process.is_some() {
            let agents_backend: Arc<dyn BackendClient> = match record_at {
                Some(url) => Arc::new(HttpBackend::new(&url, app.state.settings.token.clone()).expect("HTTP backend")),
                None => backend.clone(),
            };
            let deps = InProcessDeps {
                config_store: config_store.clone(),
                broker: broker.clone(),
                backend: agents_backend,
                settings: app.state.settings.clone(),
                work_root: work_root.path().to_path_buf(),
            };
            assert!(entry.set(in_process_entry(deps)).is_ok(), "the agent entry is set once");
        }
        AgentHarness { engines, app, backend, config_store, broker, launcher, in_process, work_root }
    }
}

/// Agents that run whatever `entry` holds once set.
fn late_entry(entry: Arc<OnceLock<AgentEntry>>) -> AgentEntry {
    agent_entry(move |assignment| {
        let entry = entry.get().cloned();
        async move {
            match entry {
                Some(entry) => entry(assignment).await,
                None => Err("the harness set no agent entry".into()),
            }
        }
    })
}

/// The process launcher as `PLATFORM=local` makes it (`AgentCommand::armada_agent`: the seed's
/// agent environment, `BACKEND_URL` at this app, Redis and RabbitMQ from its settings), with the
/// `armada` binary cargo built.
fn agent_processes(settings: &Settings, stop_grace: Duration) -> ProcessLauncher {
    let command = AgentCommand::armada_agent_of(env!("CARGO_BIN_EXE_armada"), settings, worker_env(settings, true))
        .expect("the agent processes' command");
    ProcessLauncher::new(command).with_stop_grace(stop_grace)
}

impl AgentHarness {
    /// Backend and orchestrator on `engines`, agents recording through the app's records (or,
    /// as processes, at its URL).
    pub async fn new(engines: Engines) -> Self {
        Self::builder(engines).spawn().await
    }

    pub fn builder(engines: Engines) -> HarnessBuilder {
        let work_root = tempfile::tempdir().expect("work root");
        let app = TestApp::builder()
            .roles([Role::Backend, Role::Orchestrator])
            .var("ARMADA_WORK_DIR", work_root.path().display().to_string());
        HarnessBuilder { engines, app, record_at: None, stop_grace: DEFAULT_STOP_GRACE, work_root }
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

    /// Kills agent `index` of the run at once, the way each kind of agent dies: an in-process
    /// agent's task is aborted; an agent process gets SIGKILL. Returns once it has ended.
    pub async fn kill_agent(&self, run_id: Uuid, index: usize) {
        if let Some(launcher) = &self.in_process {
            launcher.kill_agent(run_id, index).await.expect("agent killed");
            return;
        }
        let pid = self.agents(run_id).await[index].pid.expect("an agent process has a pid");
        // SAFETY: kill has no memory-safety preconditions; the pid is the launcher's child.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0, "SIGKILL agent {index} ({pid})");
        let ended = eventually(RUN_LIMIT, async || self.agents(run_id).await[index].phase.is_final()).await;
        assert!(ended, "agent {index} ({pid}) did not end after SIGKILL: {:?}", self.agents(run_id).await);
    }

    /// Starts the project in `dir` through the orchestrator, as `armada launch` does (the
    /// folder as one archive, `POST /bot/start`); the run's id.
    pub async fn launch_run(&self, dir: &Path) -> Uuid {
        let project = Project::from_dir(dir, ProjectLimits::default()).expect("project");
        let archive = project.to_bundle().expect("project archive");
        let part = reqwest::multipart::Part::bytes(archive.bytes.to_vec()).file_name("project.tar.gz");
        let form = reqwest::multipart::Form::new().part("project", part);
        let (status, body) = self.app.send(self.app.client.post(self.app.url("/bot/start")).multipart(form)).await;
        assert_eq!(status, 200, "{body}");
        body["run_uuid"].as_str().and_then(|id| Uuid::parse_str(id).ok()).expect("run_uuid in the answer")
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
