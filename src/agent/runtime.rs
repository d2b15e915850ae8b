//! Running one agent: from its assignment (run id, pod index) to a drained queue.
//!
//! [`run_agent`] is the one code path of every agent: in-process agents of the server
//! ([`in_process_entry`]), `armada agent` processes and `armada workbench`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::calls::AgentCalls;
use super::heartbeat::{Heartbeat, HeartbeatTiming};
use super::jobs::JobLoop;
use super::logs::JobLogs;
use super::network::{NetworkDeps, PreparedNetwork, own_url, prepare_network};
use super::observer::{AgentObserver, Unobserved};
use super::prepare::{Prepared, fetch_agent_message, prepare, split_message};
use super::spool::SpoolingBackend;
use super::worker::{Worker, WorkerError};
use crate::clients::BackendClient;
use crate::infra::broker::{Broker, BrokerError, job_queue_name};
use crate::infra::config_store::ConfigStore;
use crate::infra::launcher::in_process::{AgentEntry, agent_entry};
use crate::model::agent_name;
use crate::project::ProjectLimits;
use crate::roles::Role;
use crate::settings::{DatabaseSettings, Settings};

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
    // Cannot fail short of a broken TLS setup; if it does, every agent says why.
    let network = NetworkDeps::in_server(&deps.settings).map_err(|e| format!("the providers' clients: {e}"));
    let agent_deps = network.map(|network| AgentDeps {
        config_store: deps.config_store,
        broker: deps.broker,
        backend: deps.backend,
        work_root: deps.work_root,
        worker_env: worker_env(&deps.settings, true),
        requirements_txt: None,
        network,
        options: AgentOptions::default(),
    });
    agent_entry(move |assignment| {
        let deps = agent_deps.clone();
        async move {
            run_agent(deps?, assignment.run_id, assignment.pod_index, assignment.cancel, None)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
}

/// Everything an agent needs from outside.
#[derive(Clone)]
pub struct AgentDeps {
    pub config_store: Arc<dyn ConfigStore>,
    pub broker: Arc<dyn Broker>,
    /// Records go here, through the agent's spool (see [`SpoolingBackend`]).
    pub backend: Arc<dyn BackendClient>,
    /// Working directories are created under it: `{work_root}/{run_id}/agent-{i}`.
    pub work_root: PathBuf,
    /// Variables for the worker on top of the basics: `BACKEND_URL`, `PROXY_PROVIDER_URL`,
    /// `FINGERPRINT_PROVIDER_URL`, `SQL_SERVER_*`, `ARMADA_SQLITE_PATH` (see [`worker_env`]).
    pub worker_env: Vec<(String, String)>,
    /// `REQUIREMENTS_TXT`: installed when the project has no `requirements.txt` of its own.
    pub requirements_txt: Option<String>,
    /// The providers and the local proxy's settings, for the message's `config_proxy` and
    /// `config_fingerprint` (see [`super::network`]).
    pub network: NetworkDeps,
    pub options: AgentOptions,
}

/// Timings and caps; the defaults suit production.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// How long to wait for the agent message to appear in the config store.
    pub message_wait: Duration,
    /// How long the worker may take to connect, and to initialise.
    pub connect_timeout: Duration,
    pub init_timeout: Duration,
    /// After the stop signal, how long the current job may go on before it is handed back.
    pub stop_grace: Duration,
    /// How long the worker has to exit after `shutdown`.
    pub shutdown_grace: Duration,
    /// How long to wait, before leaving, for spooled records to reach the backend.
    pub spool_flush_wait: Duration,
    /// The agent's heartbeat (see [`super::heartbeat`]).
    pub heartbeat: HeartbeatTiming,
    /// How often an agent holding a redelivered job that another agent is still running looks
    /// again at the job and at that agent's heartbeat.
    pub hold_poll: Duration,
    pub limits: ProjectLimits,
}

impl Default for AgentOptions {
    fn default() -> Self {
        Self {
            message_wait: Duration::from_secs(30),
            connect_timeout: super::worker::WorkerSpec::DEFAULT_CONNECT_TIMEOUT,
            init_timeout: super::worker::WorkerSpec::DEFAULT_INIT_TIMEOUT,
            stop_grace: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            spool_flush_wait: Duration::from_secs(60),
            heartbeat: HeartbeatTiming::default(),
            hold_poll: Duration::from_secs(1),
            limits: ProjectLimits::default(),
        }
    }
}

/// The variables a worker gets from the agent's settings, where set: `BACKEND_URL`,
/// `PROXY_PROVIDER_URL`, `FINGERPRINT_PROVIDER_URL`, `ARMADA_TOKEN` (the stand-ins call
/// token-protected roles with it), `SQL_SERVER_*`, and `ARMADA_SQLITE_PATH` (absolute) when the
/// database is SQLite.
///
/// `in_server`: the agent runs inside the server process (in-process launcher, workbench), so
/// roles this process serves are reached at its own address and its database is the workers'
/// database. An `armada agent` process only passes on what its environment says.
pub fn worker_env(settings: &Settings, in_server: bool) -> Vec<(String, String)> {
    let here = |role: Role| if in_server { own_url(settings, role) } else { None };
    let mut env = Vec::new();
    for (name, value) in [
        ("BACKEND_URL", settings.backend_url.clone().or_else(|| here(Role::Backend))),
        ("PROXY_PROVIDER_URL", settings.proxy_provider_url.clone().or_else(|| here(Role::ProxyProvider))),
        (
            "FINGERPRINT_PROVIDER_URL",
            settings.fingerprint_provider_url.clone().or_else(|| here(Role::FingerprintProvider)),
        ),
        ("ARMADA_TOKEN", settings.token.as_ref().map(|token| token.expose().to_string())),
    ] {
        if let Some(value) = value {
            env.push((name.to_string(), value));
        }
    }
    if !in_server {
        for name in [
            "SQL_SERVER_NAME",
            "SQL_SERVER_PORT",
            "SQL_SERVER_DB",
            "SQL_SERVER_USER",
            "SQL_SERVER_PASSWORD",
            "ARMADA_SQLITE_PATH",
        ] {
            if let Some(value) = settings.vars.get(name) {
                env.push((name.to_string(), value.to_string()));
            }
        }
        return env;
    }
    match &settings.database {
        DatabaseSettings::Sqlite { path } => {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            env.push(("ARMADA_SQLITE_PATH".into(), absolute.display().to_string()));
        }
        // The original's user code reads the SQL Server credentials from these four (plus
        // the port), however the server itself was configured (SQL_SERVER_* or a URL).
        DatabaseSettings::Mssql(mssql) => {
            env.push(("SQL_SERVER_NAME".into(), mssql.host.clone()));
            env.push(("SQL_SERVER_PORT".into(), mssql.port.to_string()));
            env.push(("SQL_SERVER_DB".into(), mssql.database.clone()));
            env.push(("SQL_SERVER_USER".into(), mssql.user.clone()));
            env.push(("SQL_SERVER_PASSWORD".into(), mssql.password.expose().to_string()));
        }
    }
    env
}

/// Why an agent stopped taking jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentEnd {
    /// The queue ended: the run completed (the orchestrator deleted the queue) or was cancelled.
    QueueEnded,
    /// The agent was told to stop.
    Stopped,
}

/// What one agent did.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentReport {
    pub run_id: Uuid,
    pub pod_index: usize,
    pub workdir: PathBuf,
    pub end: AgentEnd,
    pub succeeded: u64,
    pub failed: u64,
    /// Redeliveries of jobs that already had an outcome (their ack was lost): acked, not run.
    pub skipped: u64,
    /// Deliveries that were not job messages: logged and acked.
    pub malformed: u64,
    /// Jobs handed back to the queue when the agent was stopped mid-job.
    pub handed_back: u64,
    /// Times a worker was started (1 + restarts after crashes and timeouts).
    pub worker_starts: u64,
    /// Set when records are still in the spool file (the backend stayed down).
    pub spool_left: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "no agent message under key {key} in {store} after waiting {waited:?}: the run does not exist, has no agent \
         with this index, or its keys expired"
    )]
    MessageMissing { key: String, store: String, waited: Duration },
    #[error("config store: {0}")]
    ConfigStore(String),
    #[error("run config: {0}")]
    Config(String),
    #[error("project bundle: {0}")]
    Bundle(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("installing requirements failed: {step} {status}{}", pip_tail(tail))]
    Requirements { step: &'static str, status: String, tail: Vec<String> },
    #[error("the agent's network could not be prepared: {0}")]
    Network(String),
    #[error("the worker could not be started: {0}")]
    Worker(#[from] WorkerError),
    #[error("broker: {0}")]
    Broker(String),
    #[error("records: {0}")]
    Records(String),
}

fn pip_tail(tail: &[String]) -> String {
    if tail.is_empty() { String::new() } else { format!("; last output:\n  {}", tail.join("\n  ")) }
}

/// Runs one agent of a run until its queue ends or `cancel` fires: fetch the agent message,
/// prepare the working directory, start the worker once, take jobs one at a time, record
/// every outcome before acknowledging it, shut the worker down, flush the spool.
pub async fn run_agent(
    deps: AgentDeps,
    run_id: Uuid,
    pod_index: usize,
    cancel: CancellationToken,
    observer: Option<Arc<dyn AgentObserver>>,
) -> Result<AgentReport, AgentError> {
    let observer: Arc<dyn AgentObserver> = observer.unwrap_or_else(|| Arc::new(Unobserved));
    let message = fetch_agent_message(&deps, run_id, pod_index).await?;
    let (worker_message, config) = split_message(message)?;
    // Before the working directory and the virtualenv: a network the agent cannot get ends it
    // at once, with the reason, rather than after a long install.
    observer.note("preparing the network");
    let network = prepare_network(&worker_message, &deps.network.providers, &deps.network.forward_proxy)
        .await
        .map_err(AgentError::Network)?;
    // Kept for the agent's life; stopped when it ends, whichever way (also on drop).
    let network = Arc::new(network);
    let _stop_network = StopNetwork(network.clone());
    observer.note("preparing the working directory");
    let prepared = prepare(&deps, run_id, pod_index, worker_message, config, &network).await?;
    tracing::info!(%run_id, pod_index, workdir = %prepared.workdir.display(), "agent prepared");

    let spool_path = prepared.workdir.join(".armada/spool.jsonl");
    let spool = Arc::new(SpoolingBackend::new(deps.backend.clone(), &spool_path).map_err(|source| AgentError::Io {
        what: format!("cannot open the spool {}", spool_path.display()),
        source,
    })?);
    let backend: Arc<dyn BackendClient> = spool.clone();
    let logs = JobLogs::start(backend.clone(), observer.clone());
    let calls = AgentCalls {
        backend: backend.clone(),
        run_id,
        agent: agent_name(pod_index),
        observer: observer.clone(),
        network,
        providers: deps.network.providers.clone(),
    };

    let mut report = AgentReport {
        run_id,
        pod_index,
        workdir: prepared.workdir.clone(),
        end: AgentEnd::QueueEnded,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        malformed: 0,
        handed_back: 0,
        worker_starts: 0,
        spool_left: None,
    };

    let outcome = work(&deps, &prepared, &calls, &logs, observer.clone(), &cancel, &mut report).await;
    logs.close().await;
    if let Err(left) = spool.flush(deps.options.spool_flush_wait).await {
        tracing::error!(%left, "the backend stayed unreachable");
        observer.note(&left.to_string());
        report.spool_left = Some(left.path);
    }
    report.end = outcome?;
    tracing::info!(
        %run_id, pod_index, succeeded = report.succeeded, failed = report.failed, skipped = report.skipped,
        end = ?report.end, "agent done"
    );
    Ok(report)
}

/// Starts the heartbeat and the worker, takes jobs until the queue ends or `cancel` fires, stops
/// the worker (the heartbeat's last beat, naming no job, follows when it is dropped).
async fn work(
    deps: &AgentDeps,
    prepared: &Prepared,
    calls: &AgentCalls,
    logs: &JobLogs,
    observer: Arc<dyn AgentObserver>,
    cancel: &CancellationToken,
    report: &mut AgentReport,
) -> Result<AgentEnd, AgentError> {
    let heartbeat =
        Heartbeat::start(deps.config_store.clone(), report.run_id, calls.agent.clone(), deps.options.heartbeat);
    observer.note("starting the worker");
    let sink = logs.sink();
    let worker = Worker::start(prepared.spec.clone(), sink.clone(), calls).await?;
    report.worker_starts = 1;
    observer.note(&format!("worker ready: {}", worker.name()));

    let consumer = match deps.broker.consume(&job_queue_name(report.run_id), 1).await {
        Ok(consumer) => consumer,
        Err(error) => {
            stop_worker(Some(worker), &deps.options, calls).await;
            // NotFound: the run ended (or was cancelled) before this agent got to its queue.
            return match error {
                BrokerError::NotFound(_) => Ok(AgentEnd::QueueEnded),
                other => Err(AgentError::Broker(other.to_string())),
            };
        }
    };
    let mut jobs = JobLoop {
        backend: calls.backend.clone(),
        calls,
        logs,
        heartbeat: &heartbeat,
        sink,
        observer,
        spec: &prepared.spec,
        config: &prepared.config,
        options: &deps.options,
        agent: calls.agent.clone(),
        run_id: report.run_id,
        worker: Some(worker),
        report,
    };
    let end = jobs.run(consumer, cancel).await;
    let worker = jobs.worker.take();
    drop(jobs);
    stop_worker(worker, &deps.options, calls).await;
    end
}

/// Stops the agent's local proxy when the agent ends.
struct StopNetwork(Arc<PreparedNetwork>);

impl Drop for StopNetwork {
    fn drop(&mut self) {
        self.0.stop();
    }
}

async fn stop_worker(worker: Option<Worker>, options: &AgentOptions, calls: &AgentCalls) {
    let Some(worker) = worker else { return };
    match worker.shutdown(options.shutdown_grace, calls).await {
        Ok(status) if status.success() => tracing::debug!("worker stopped"),
        Ok(status) => tracing::warn!(%status, "worker ended with an error at shutdown"),
        Err(error) => tracing::warn!(%error, "worker shutdown"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Vars;

    fn env_of(pairs: &[(&str, &str)], in_server: bool) -> std::collections::HashMap<String, String> {
        let settings =
            Settings::from_vars(Vars::from_pairs(pairs.iter().copied()), Vec::new(), None).expect("valid settings");
        worker_env(&settings, in_server).into_iter().collect()
    }

    #[test]
    fn in_the_server_every_role_it_serves_is_reached_at_its_own_address() {
        let env = env_of(&[("ARMADA_LISTEN", "0.0.0.0:9000")], true);
        for name in ["BACKEND_URL", "PROXY_PROVIDER_URL", "FINGERPRINT_PROVIDER_URL"] {
            assert_eq!(env.get(name).map(String::as_str), Some("http://127.0.0.1:9000"), "{name}");
        }
        assert!(env.get("ARMADA_SQLITE_PATH").is_some_and(|p| p.starts_with('/')), "{env:?}");
    }

    #[test]
    fn an_agent_process_passes_on_only_what_its_environment_says() {
        let sql =
            [("SQL_SERVER_NAME", "db"), ("SQL_SERVER_DB", "d"), ("SQL_SERVER_USER", "u"), ("SQL_SERVER_PASSWORD", "p")];
        let mut pairs = vec![("BACKEND_URL", "http://backend:8000")];
        pairs.extend(sql);
        let env = env_of(&pairs, false);
        assert_eq!(env.get("BACKEND_URL").map(String::as_str), Some("http://backend:8000"));
        assert_eq!(env.get("SQL_SERVER_NAME").map(String::as_str), Some("db"));
        assert!(!env.contains_key("PROXY_PROVIDER_URL"), "no provider runs in an agent process: {env:?}");
        assert!(!env.contains_key("ARMADA_SQLITE_PATH"), "{env:?}");
    }

    #[test]
    fn sql_server_given_as_a_url_still_reaches_the_worker_as_the_seed_variables() {
        let env = env_of(&[("ARMADA_DATABASE_URL", "mssql://sa:p%40ss@db.internal:1444/armada")], true);
        assert_eq!(env.get("SQL_SERVER_NAME").map(String::as_str), Some("db.internal"));
        assert_eq!(env.get("SQL_SERVER_PORT").map(String::as_str), Some("1444"));
        assert_eq!(env.get("SQL_SERVER_DB").map(String::as_str), Some("armada"));
        assert_eq!(env.get("SQL_SERVER_PASSWORD").map(String::as_str), Some("p@ss"));
        assert!(!env.contains_key("ARMADA_SQLITE_PATH"));
    }
}
