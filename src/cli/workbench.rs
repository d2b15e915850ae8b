//! `armada workbench DIR`: one agent run locally over a project folder, through the same
//! `run_agent` code path as every agent, with an in-memory config store and queue and an
//! in-process backend on a loopback port (or `--backend URL`). Prints every event, output and
//! the worker's own prints as they happen, then a summary. Exit code 1 when a job `Failed`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::Args;
use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ConfigError;
use crate::agent::network::NetworkDeps;
use crate::agent::stage::{plan_project, stage_run};
use crate::agent::worker::{LogLine, LogStream, WorkerCall};
use crate::agent::{AgentDeps, AgentObserver, AgentOptions, run_agent, worker_env};
use crate::app::{self, AppState};
use crate::clients::{BackendClient, HttpBackend, InProcessBackend};
use crate::infra::broker::memory::MemoryBroker;
use crate::infra::broker::{Broker, job_queue_name};
use crate::infra::config_store::memory::MemoryConfigStore;
use crate::infra::db::{self, Mutation};
use crate::model::{RunStatus, agent_name, status};
use crate::pipeline::NamedBytes;
use crate::project::{Project, ProjectLimits};
use crate::roles::Role;
use crate::settings::{DatabaseSettings, LogFormat, Settings, Vars};

#[derive(Debug, Args)]
pub struct WorkbenchArgs {
    /// The project folder (the one that holds config/config_template.json).
    dir: PathBuf,
    /// Which agent of the run to be: its data_agent.csv row and pod index.
    #[arg(long, value_name = "I", default_value_t = 0)]
    agent: usize,
    /// Run only the first K jobs (the original workbench ran the first CSV row: --jobs 1).
    #[arg(long, value_name = "K")]
    jobs: Option<usize>,
    /// Tune file for the $env_ placeholders. Default: the project's config/config_local.json.
    #[arg(long, value_name = "FILE")]
    tune: Option<PathBuf>,
    /// Record to this backend (e.g. http://127.0.0.1:8080) instead of one started here.
    #[arg(long, value_name = "URL")]
    backend: Option<String>,
    /// Keep the API and dashboard up after the run, until Ctrl-C.
    #[arg(long)]
    keep: bool,
    /// Where the backend started here listens. Default: a free loopback port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Where the database and the agent's working directory go. Default: ARMADA_WORK_DIR, else
    /// a new folder in the system's temporary folder (kept, so the results can be looked at).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

pub async fn run(args: WorkbenchArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let cwd = std::env::current_dir().map_err(|e| ConfigError(format!("cannot read the working directory: {e}")))?;
    let vars = Vars::load(&cwd)?;
    let mut settings = Settings::from_vars(vars, vec![Role::Backend, Role::Frontend], args.listen)?;
    crate::observability::init_logging_at(log_format.unwrap_or(settings.log_format), "warn");

    let project = Project::from_dir(&args.dir, ProjectLimits::default()).map_err(|e| ConfigError(e.to_string()))?;
    let tune_bytes = match &args.tune {
        Some(path) => Some((
            path.display().to_string(),
            std::fs::read(path)
                .map_err(|e| ConfigError(format!("cannot read the tune file {}: {e}", path.display())))?,
        )),
        None => None,
    };
    let tune = tune_bytes.as_ref().map(|(name, bytes)| NamedBytes { name, bytes });
    let plan = plan_project(&project, tune).map_err(|e| ConfigError(e.to_string()))?;
    let agents = plan.settings.number_of_agents;
    if args.agent >= agents {
        return Err(
            ConfigError(format!("--agent {}: the run has {agents} agents (0 to {})", args.agent, agents - 1)).into()
        );
    }
    if args.jobs == Some(0) {
        return Err(ConfigError("--jobs must be at least 1".into()).into());
    }

    let work_dir = match args.work_dir.clone().or_else(|| settings.vars.get("ARMADA_WORK_DIR").map(PathBuf::from)) {
        Some(dir) => dir,
        None => tempfile::Builder::new()
            .prefix("armada-workbench-")
            .tempdir()
            .context("cannot create a work folder")?
            .keep(),
    };
    std::fs::create_dir_all(&work_dir).with_context(|| format!("cannot create {}", work_dir.display()))?;

    let stop_server = Arc::new(Notify::new());
    let (backend, backend_url, database): (Arc<dyn BackendClient>, String, String) = match &args.backend {
        Some(url) => {
            let client = HttpBackend::new(url, settings.token.clone()).context("cannot set up the backend client")?;
            client.check_connectivity().await.with_context(|| format!("the backend at {url} is not reachable"))?;
            (Arc::new(client), url.trim_end_matches('/').to_string(), format!("the backend's, at {url}"))
        }
        None => {
            let path = work_dir.join("armada.db");
            settings.database = DatabaseSettings::Sqlite { path: path.clone() };
            let store = db::open(&settings.database).await.context("cannot open the database")?;
            store.migrate().await.context("cannot apply database migrations")?;
            let listen = args.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen} (pick another with --listen)"))?;
            let addr = listener.local_addr().context("cannot read the listening address")?;
            let state = AppState::with_store(settings.clone(), store);
            let stop = stop_server.clone();
            tokio::spawn(app::serve(listener, state.clone(), async move { stop.notified().await }));
            (
                Arc::new(InProcessBackend::new(state.records.clone())),
                format!("http://{addr}"),
                path.display().to_string(),
            )
        }
    };
    settings.backend_url = Some(backend_url.clone());

    let config_store = Arc::new(MemoryConfigStore::new());
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let staged = stage_run(&plan, &project, args.jobs, backend.as_ref(), config_store.as_ref(), broker.as_ref())
        .await
        .context("cannot set the run up")?;
    let total = staged.jobs.len();
    println!(
        "armada workbench: {} — run {}, {} of {agents} agents, {total} of {} jobs",
        args.dir.display(),
        staged.run_id,
        agent_name(args.agent),
        plan.job_messages.len()
    );
    println!("  backend {backend_url} (database: {database})");

    let printer = Arc::new(Printer::new(args.agent, &staged.jobs));
    let queue = job_queue_name(staged.run_id);
    let watcher = {
        let (printer, broker) = (printer.clone(), broker.clone());
        tokio::spawn(async move {
            printer.all_done.notified().await;
            // Every job has its outcome: end the queue, as the orchestrator does when a run completes.
            let _ = broker.delete(&queue).await;
        })
    };
    let cancel = CancellationToken::new();
    let interrupt = cancel.clone();
    let signals = tokio::spawn(async move {
        super::shutdown_signal().await;
        eprintln!("armada workbench: stopping (the current job may finish first; Ctrl-C again to quit)");
        interrupt.cancel();
        super::shutdown_signal().await;
        std::process::exit(130);
    });

    let deps = AgentDeps {
        config_store,
        broker,
        backend: backend.clone(),
        work_root: work_dir.join("agents"),
        worker_env: worker_env(&settings, true),
        requirements_txt: None,
        network: NetworkDeps::from_settings(&settings).context("failed to set up the providers' clients")?,
        options: AgentOptions::default(),
    };
    let outcome = run_agent(deps, staged.run_id, args.agent, cancel, Some(printer.clone())).await;
    watcher.abort();

    let summary = backend.run_summary(staged.run_id).await.ok().flatten();
    let (succeeded, failed) = match &summary {
        Some(summary) => (summary.count(status::SUCCESS), summary.count(status::FAILED)),
        None => (printer.succeeded.load(Ordering::SeqCst), printer.failed.load(Ordering::SeqCst)),
    };
    let run_status = if outcome.is_err() || failed > 0 { RunStatus::Failed } else { RunStatus::Completed };
    let _ = backend.apply(vec![Mutation::UpdateRun { run_uuid: staged.run_id, run_status, run_detail: None }]).await;
    let not_run = (total as u64).saturating_sub(succeeded + failed);
    println!(
        "summary: {}, {succeeded} succeeded, {failed} failed, {not_run} not run; {}; database: {database}",
        plural(total as u64, "job"),
        plural(printer.outputs.load(Ordering::SeqCst), "output"),
    );
    if let Ok(report) = &outcome {
        println!("  working directory: {}", report.workdir.display());
    }

    if args.keep && args.backend.is_none() {
        signals.abort();
        println!("the API and dashboard stay up at {backend_url} (runs: {backend_url}/api/runs/); Ctrl-C to stop");
        super::shutdown_signal().await;
    }
    stop_server.notify_waiters();
    outcome.with_context(|| format!("{} of run {} failed", agent_name(args.agent), staged.run_id))?;
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Prints what the agent does, live; counts outcomes to know when the run is over.
struct Printer {
    agent: String,
    /// Job uuid → its label (`job 3/20`).
    labels: std::collections::HashMap<Uuid, String>,
    total: usize,
    finished: AtomicUsize,
    succeeded: AtomicU64,
    failed: AtomicU64,
    outputs: AtomicU64,
    all_done: Notify,
    /// Serialises multi-line prints.
    out: Mutex<()>,
}

impl Printer {
    fn new(agent: usize, jobs: &[(Uuid, Value)]) -> Self {
        let total = jobs.len();
        let labels = jobs.iter().enumerate().map(|(i, (uuid, _))| (*uuid, format!("job {}/{total}", i + 1))).collect();
        Self {
            agent: agent_name(agent),
            labels,
            total,
            finished: AtomicUsize::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            outputs: AtomicU64::new(0),
            all_done: Notify::new(),
            out: Mutex::new(()),
        }
    }

    fn label(&self, job: Option<Uuid>) -> String {
        match job {
            None => self.agent.clone(),
            Some(job) => self.labels.get(&job).cloned().unwrap_or_else(|| format!("job {}", short(job))),
        }
    }

    fn print(&self, label: &str, text: &str) {
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        println!("[{label}] {text}");
    }
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 { format!("1 {noun}") } else { format!("{count} {noun}s") }
}

fn short(job: Uuid) -> String {
    job.to_string()[..8].to_string()
}

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

impl AgentObserver for Printer {
    fn note(&self, text: &str) {
        self.print(&self.agent, text);
    }

    fn worker_line(&self, line: &LogLine) {
        let marker = if line.stream == LogStream::Stderr { "! " } else { "| " };
        self.print(&self.label(line.job_uuid), &format!("{marker}{}", line.text));
    }

    fn job_started(&self, job_uuid: Uuid, attempt: u32, _job_message: &Value) {
        let retry = if attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
        self.print(&self.label(Some(job_uuid)), &format!("started{retry}"));
    }

    fn recorded(&self, call: &WorkerCall) {
        match call {
            WorkerCall::Event { job_uuid, content, status, final_status } => {
                let kind = if *final_status { "final event" } else { "event" };
                self.print(&self.label(Some(*job_uuid)), &format!("{kind} {}: {content}", status.as_str()));
            }
            WorkerCall::JobStatus { job_uuid, status } => {
                self.print(&self.label(Some(*job_uuid)), &format!("status {}", status.as_str()));
            }
            WorkerCall::CreateJob { job_uuid } => {
                self.print(&self.agent, &format!("the code registered job {job_uuid}"));
            }
            WorkerCall::Output { job_uuid, data } => {
                self.outputs.fetch_add(1, Ordering::SeqCst);
                let json = serde_json::to_string(data).unwrap_or_default();
                self.print(&self.label(*job_uuid), &format!("output {}", clip(&json, 200)));
            }
            // Answered, not recorded; the agent notes them (`note`).
            WorkerCall::Network(_) => {}
        }
    }

    fn job_finished(&self, job_uuid: Uuid, job_status: &str, reason: Option<&str>) {
        match reason {
            Some(reason) => self.print(&self.label(Some(job_uuid)), &format!("{job_status}: {reason}")),
            None => self.print(&self.label(Some(job_uuid)), job_status),
        }
        if job_status == status::SUCCESS {
            self.succeeded.fetch_add(1, Ordering::SeqCst);
        } else {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        if self.finished.fetch_add(1, Ordering::SeqCst) + 1 >= self.total {
            self.all_done.notify_one();
        }
    }
}
