//! `Orchestrator`: the engines a run goes through, the orchestrator's settings, and the registry
//! of the runs this process is dispatching or watching (with each run's lifecycle lock).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::clients::BackendClient;
use crate::infra::broker::Broker;
use crate::infra::config_store::ConfigStore;
use crate::infra::launcher::{AgentStatus, Launcher};
use crate::model::{RunStatus, Timestamp};
use crate::observability::names;
use crate::project::{ProjectLimits, TuneKind};
use crate::settings::{LauncherSettings, Settings};

/// The orchestrator role's state: held in `AppState` when the role is enabled.
pub struct Orchestrator {
    pub config_store: Arc<dyn ConfigStore>,
    pub broker: Arc<dyn Broker>,
    pub launcher: Arc<dyn Launcher>,
    /// Every record goes through it, never the store: the backend may be another process.
    pub backend: Arc<dyn BackendClient>,
    pub settings: OrchestratorSettings,
    runs: Mutex<HashMap<Uuid, Arc<ActiveRun>>>,
    /// The agents' last statuses of recently ended runs, oldest first, once the launcher forgot
    /// them: so a run's view still says how each agent ended.
    ended_agents: Mutex<VecDeque<(Uuid, Vec<AgentStatus>)>>,
}

/// How many ended runs keep their agents' last statuses.
const ENDED_RUNS_KEPT: usize = 64;

/// What the orchestrator reads from `Settings`, plus timings tests may shorten.
#[derive(Debug, Clone)]
pub struct OrchestratorSettings {
    /// Caps on the uploaded project (per file, all files, the archive).
    pub limits: ProjectLimits,
    /// `ARMADA_MAX_UPLOAD_BYTES`: the whole `POST /bot/start` body.
    pub max_upload_bytes: usize,
    /// The tune used when the upload names none: `distant` on Kubernetes, `local` otherwise.
    pub default_tune: TuneKind,
    /// `ARMADA_RUN_KEYS_TTL_SECS`: how long a finished run's config keys stay.
    pub keys_ttl: Duration,
    /// How often the launcher is asked how the agents are (and the queue how deep it is).
    pub agent_poll: Duration,
    /// Safety net: how often the run's counts are re-read even when the live stream is quiet.
    pub reconcile_every: Duration,
    /// How long a finished run waits for its agents to exit before stopping them.
    pub agent_exit_wait: Duration,
}

impl OrchestratorSettings {
    pub fn from_settings(settings: &Settings) -> Self {
        let defaults = ProjectLimits::default();
        let cap = settings.max_upload_bytes as u64;
        Self {
            // No single file or archive can be larger than the whole upload.
            limits: ProjectLimits {
                max_total_bytes: defaults.max_total_bytes,
                max_file_bytes: defaults.max_file_bytes.min(cap),
                max_files: defaults.max_files,
                max_compressed_bytes: defaults.max_compressed_bytes.min(cap),
            },
            max_upload_bytes: settings.max_upload_bytes,
            default_tune: match settings.launcher {
                LauncherSettings::Kube { .. } => TuneKind::Distant,
                LauncherSettings::InProcess | LauncherSettings::Process => TuneKind::Local,
            },
            keys_ttl: settings.run_keys_ttl,
            agent_poll: Duration::from_secs(1),
            reconcile_every: Duration::from_secs(5),
            agent_exit_wait: Duration::from_secs(30),
        }
    }
}

/// Where a run this process holds is in its life. Transitions happen under
/// [`ActiveRun::lifecycle`], so exactly one of completion, failure and cancellation wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Steps 1–6 of the start are under way (the start holds the lock throughout).
    Dispatching,
    Running,
    Ended(RunStatus),
    /// The start failed and was undone: the run no longer exists.
    Abandoned,
}

/// A run this process started and has not finished with.
pub(crate) struct ActiveRun {
    pub run_id: Uuid,
    pub number_of_agents: usize,
    pub number_of_jobs: usize,
    pub started: Timestamp,
    pub lifecycle: tokio::sync::Mutex<Lifecycle>,
    /// The last status reached, readable without waiting for the lifecycle lock.
    status: Mutex<RunStatus>,
    /// Ends the watcher (the run is being cancelled or the server is stopping).
    pub stop_watching: CancellationToken,
    /// The queue as last polled, for `/metrics` and the runs list.
    pub queue_ready: AtomicU64,
    pub queue_consumers: AtomicU64,
    pub queue_polled: AtomicBool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ActiveRun {
    pub fn new(run_id: Uuid, number_of_agents: usize, number_of_jobs: usize) -> Self {
        Self {
            run_id,
            number_of_agents,
            number_of_jobs,
            started: Timestamp::now(),
            lifecycle: tokio::sync::Mutex::new(Lifecycle::Dispatching),
            status: Mutex::new(RunStatus::Dispatching),
            stop_watching: CancellationToken::new(),
            queue_ready: AtomicU64::new(0),
            queue_consumers: AtomicU64::new(0),
            queue_polled: AtomicBool::new(false),
        }
    }

    pub fn status(&self) -> RunStatus {
        *lock(&self.status)
    }

    /// Sets the lifecycle (under its lock) and the mirrored status, and counts the run in
    /// `armada_runs_total{status}`.
    pub fn enter(&self, lifecycle: &mut Lifecycle, next: Lifecycle) {
        *lifecycle = next;
        let status = match next {
            Lifecycle::Dispatching => RunStatus::Dispatching,
            Lifecycle::Running => RunStatus::Running,
            Lifecycle::Ended(status) => status,
            Lifecycle::Abandoned => {
                metrics::counter!(names::RUNS, "status" => "aborted").increment(1);
                return;
            }
        };
        *lock(&self.status) = status;
        metrics::counter!(names::RUNS, "status" => status.as_str()).increment(1);
    }

    pub fn record_queue(&self, ready: u64, consumers: u32) {
        self.queue_ready.store(ready, Ordering::Relaxed);
        self.queue_consumers.store(u64::from(consumers), Ordering::Relaxed);
        self.queue_polled.store(true, Ordering::Relaxed);
    }
}

/// Registering a run id that is already held.
#[derive(Debug)]
pub(crate) struct AlreadyActive;

impl Orchestrator {
    pub fn new(
        config_store: Arc<dyn ConfigStore>,
        broker: Arc<dyn Broker>,
        launcher: Arc<dyn Launcher>,
        backend: Arc<dyn BackendClient>,
        settings: OrchestratorSettings,
    ) -> Self {
        Self {
            config_store,
            broker,
            launcher,
            backend,
            settings,
            runs: Mutex::new(HashMap::new()),
            ended_agents: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn register(&self, run: Arc<ActiveRun>) -> Result<(), AlreadyActive> {
        let mut runs = lock(&self.runs);
        if runs.contains_key(&run.run_id) {
            return Err(AlreadyActive);
        }
        runs.insert(run.run_id, run);
        Ok(())
    }

    pub(crate) fn unregister(&self, run_id: Uuid) {
        lock(&self.runs).remove(&run_id);
    }

    pub(crate) fn active(&self, run_id: Uuid) -> Option<Arc<ActiveRun>> {
        lock(&self.runs).get(&run_id).cloned()
    }

    /// Keeps the agents' last statuses of a run whose agents are about to be forgotten.
    pub(crate) fn remember_agents(&self, run_id: Uuid, agents: Vec<AgentStatus>) {
        let mut ended = lock(&self.ended_agents);
        ended.retain(|(id, _)| *id != run_id);
        if ended.len() >= ENDED_RUNS_KEPT {
            ended.pop_front();
        }
        ended.push_back((run_id, agents));
    }

    /// The run's agents: from the launcher while it knows them, else as they last were.
    pub(crate) async fn agent_statuses(&self, run_id: Uuid) -> Vec<AgentStatus> {
        match self.launcher.agents(run_id).await {
            Ok(agents) => agents,
            Err(_) => lock(&self.ended_agents)
                .iter()
                .find(|(id, _)| *id == run_id)
                .map(|(_, agents)| agents.clone())
                .unwrap_or_default(),
        }
    }

    /// Asks the launcher for the run's agents' statuses, keeps them, and has it forget them.
    pub(crate) async fn forget_agents(&self, run_id: Uuid) {
        if let Ok(agents) = self.launcher.agents(run_id).await {
            self.remember_agents(run_id, agents);
        }
        if let Err(e) = self.launcher.forget(run_id).await {
            tracing::warn!(%run_id, error = %e, "cannot forget the agents");
        }
    }

    /// Every run this process is dispatching or watching, oldest first.
    pub(crate) fn active_runs(&self) -> Vec<Arc<ActiveRun>> {
        let mut runs: Vec<Arc<ActiveRun>> = lock(&self.runs).values().cloned().collect();
        runs.sort_by_key(|run| run.started);
        runs
    }

    /// `armada_queue_depth{run_id}` and `armada_queue_consumers{run_id}` of the active runs, in
    /// Prometheus text. Rendered from the registry rather than recorded through the `metrics`
    /// facade, which cannot remove a series: this way a run's gauges vanish when it ends.
    pub fn render_run_gauges(&self) -> String {
        let runs: Vec<Arc<ActiveRun>> =
            self.active_runs().into_iter().filter(|run| run.queue_polled.load(Ordering::Relaxed)).collect();
        let mut text = String::new();
        if runs.is_empty() {
            return text;
        }
        let _ =
            writeln!(text, "# HELP {0} Jobs waiting in an active run's queue\n# TYPE {0} gauge", names::QUEUE_DEPTH);
        for run in &runs {
            let ready = run.queue_ready.load(Ordering::Relaxed);
            let _ = writeln!(text, "{}{{run_id=\"{}\"}} {ready}", names::QUEUE_DEPTH, run.run_id);
        }
        let _ = writeln!(
            text,
            "# HELP {0} Agents consuming an active run's queue\n# TYPE {0} gauge",
            names::QUEUE_CONSUMERS
        );
        for run in &runs {
            let consumers = run.queue_consumers.load(Ordering::Relaxed);
            let _ = writeln!(text, "{}{{run_id=\"{}\"}} {consumers}", names::QUEUE_CONSUMERS, run.run_id);
        }
        text
    }
}
