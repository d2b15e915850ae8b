//! The worker: the user's process (any language) that runs jobs for an agent, spoken to over
//! a line-delimited JSON protocol on a Unix socket, and supervised so that its crash or hang
//! is an outcome for one job, never a crash of the agent.
//!
//! [`Worker::start`] spawns it (through [`crate::process`]) and brings it to `ready`;
//! [`Worker::run_job`] runs one job, serving the worker's calls through [`WorkerCalls`];
//! [`Worker::shutdown`] ends it. Its stdout and stderr go, line by line, to a [`LogSink`].
//! The protocol is documented for worker authors in docs/worker-protocol.md.

mod logs;
pub mod protocol;
mod python;
mod socket;
mod supervisor;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

pub use logs::{LogLine, LogSink, LogStream};
pub use protocol::{FinalStatus, InitContext, JobRequest, NetworkCall, PROTOCOL_VERSION, WorkerCall};
pub use python::materialize_python_helper;
pub use supervisor::Worker;

use crate::process::ExitStatus;

/// The worker command when a project names none: the Python helper, which runs a project
/// written the original way (`ctx_agent_context.py`, `ctx_job_context.py`, `ctx_script.py`).
pub const DEFAULT_WORKER_COMMAND: [&str; 3] = ["python3", "-m", "armada_worker"];

/// The variable through which a worker learns where to connect.
pub const SOCKET_ENV: &str = "ARMADA_WORKER_SOCKET";

/// `armada/<version>`: how the agent names itself in its hello.
pub fn agent_name() -> String {
    format!("armada/{}", env!("CARGO_PKG_VERSION"))
}

/// Everything needed to start a worker and bring it to `ready`.
#[derive(Clone)]
pub struct WorkerSpec {
    /// Program and arguments, e.g. `["python3", "-m", "armada_worker"]` or `["node", "worker.js"]`.
    pub command: Vec<String>,
    /// The project's working directory; the worker starts there.
    pub workdir: PathBuf,
    /// Variables on top of the inherited basics (PATH, HOME, locale…). `RUN_ID`, `POD_INDEX`
    /// (from `context`) and `ARMADA_WORKER_SOCKET` are added by the supervisor.
    pub env: Vec<(String, String)>,
    /// The merged agent message, handed over in `init`.
    pub agent_message: Value,
    pub context: InitContext,
    /// How long the worker may take to connect and say hello.
    pub connect_timeout: Duration,
    /// How long its init (heavy resources: browsers, proxies) may take before `ready`.
    pub init_timeout: Duration,
}

/// The environment's names only: its values hold secrets (`ARMADA_TOKEN`, `SQL_SERVER_PASSWORD`).
impl std::fmt::Debug for WorkerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSpec")
            .field("command", &self.command)
            .field("workdir", &self.workdir)
            .field("env", &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("context", &self.context)
            .field("connect_timeout", &self.connect_timeout)
            .field("init_timeout", &self.init_timeout)
            .finish_non_exhaustive()
    }
}

impl WorkerSpec {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(300);

    pub fn new(command: Vec<String>, workdir: impl Into<PathBuf>, agent_message: Value, context: InitContext) -> Self {
        Self {
            command,
            workdir: workdir.into(),
            env: Vec::new(),
            agent_message,
            context,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            init_timeout: Self::DEFAULT_INIT_TIMEOUT,
        }
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Puts the Python helper (see [`materialize_python_helper`]) on `PYTHONPATH`, ahead of
    /// any `PYTHONPATH` already in `env`, and makes Python's prints unbuffered so they arrive
    /// live. Harmless for workers in other languages.
    pub fn with_python_helper(self, helper_dir: &Path) -> Self {
        let helper = helper_dir.display().to_string();
        let path = match self.env.iter().rev().find(|(name, _)| name == "PYTHONPATH") {
            Some((_, existing)) if !existing.is_empty() => format!("{helper}:{existing}"),
            _ => helper,
        };
        self.env("PYTHONPATH", path).env("PYTHONUNBUFFERED", "1")
    }

    fn display_command(&self) -> String {
        self.command.join(" ")
    }
}

/// The agent's side of the worker's calls: record an event, a job status, a job, an output;
/// switch the local proxy's upstream; fetch a fresh fingerprint.
///
/// Answer a record only once it is stored or durably spooled: the worker's code may read
/// its own writes right after. `job_uuid` is the job the call is about (the current job when
/// the worker named none); it is `None` for an `output` sent outside a job, e.g. while the
/// worker initialises, and for network calls. [`WorkerCall::parse`] turns the raw call into a typed one; the
/// supervisor has already checked that it parses, so a failure there is not expected.
#[async_trait::async_trait]
pub trait WorkerCalls: Send + Sync {
    async fn call(&self, job_uuid: Option<Uuid>, method: &str, params: Value) -> Result<Value, String>;
}

/// How one job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobOutcome {
    /// The worker finished the job and reported its status; the worker lives on.
    Done { status: FinalStatus, error: Option<String> },
    /// The worker died during the job (exit code or signal) and is gone.
    Crashed { exit_code: Option<i32>, signal: Option<i32>, stderr_tail: Vec<String> },
    /// The job outlived its timeout; the worker was killed.
    TimedOut { after: Duration },
    /// The worker broke the protocol; it was killed.
    ProtocolError { message: String },
}

impl JobOutcome {
    /// Whether the same worker can take the next job. Otherwise start a new one.
    pub fn worker_survives(&self) -> bool {
        matches!(self, JobOutcome::Done { .. })
    }

    /// The job status to record: the worker's for `Done`, `Failed` for everything else.
    pub fn status(&self) -> FinalStatus {
        match self {
            JobOutcome::Done { status, .. } => *status,
            _ => FinalStatus::Failed,
        }
    }

    /// Why the job failed, in words for the job's record and the logs; `None` for a success.
    pub fn failure_reason(&self, job_uuid: Uuid) -> Option<String> {
        match self {
            JobOutcome::Done { status: FinalStatus::Success, .. } => None,
            JobOutcome::Done { status: FinalStatus::Failed, error } => {
                Some(error.clone().unwrap_or_else(|| "the job reported Failed without a reason".into()))
            }
            JobOutcome::Crashed { exit_code, signal, stderr_tail } => {
                let status = ExitStatus { code: *exit_code, signal: *signal };
                Some(format!("worker {status} during job {job_uuid}{}", tail_suffix(stderr_tail)))
            }
            JobOutcome::TimedOut { after } => {
                Some(format!("job {job_uuid} timed out after {} (the worker was killed)", seconds(*after)))
            }
            JobOutcome::ProtocolError { message } => {
                Some(format!("worker protocol error during job {job_uuid}: {message} (the worker was killed)"))
            }
        }
    }
}

/// Why a worker could not be started or stopped cleanly.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot create the worker socket in {workdir}: {source}")]
    Socket { workdir: PathBuf, source: std::io::Error },
    #[error("cannot start worker `{command}` in {workdir}: {source}")]
    Spawn { command: String, workdir: PathBuf, source: std::io::Error },
    #[error("worker `{command}` {status} {phase}{}", tail_suffix(stderr_tail))]
    Exited { command: String, phase: &'static str, status: ExitStatus, stderr_tail: Vec<String> },
    #[error(
        "worker `{command}` did not connect to $ARMADA_WORKER_SOCKET within {}; a worker must connect to that \
         Unix socket and say hello (see docs/worker-protocol.md){}",
        seconds(*after), tail_suffix(stderr_tail)
    )]
    ConnectTimeout { command: String, after: Duration, stderr_tail: Vec<String> },
    #[error(
        "worker protocol mismatch: this agent ({agent}) speaks protocol {agent_protocol}, the worker ({worker}) \
         speaks protocol {worker_protocol}; use a worker (or armada_worker helper) made for this agent's version"
    )]
    VersionMismatch { agent: String, agent_protocol: u32, worker: String, worker_protocol: u64 },
    #[error("worker init failed: {0}")]
    InitFailed(String),
    #[error("worker `{command}` was not ready within {} of init", seconds(*after))]
    InitTimeout { command: String, after: Duration },
    #[error("worker protocol error {phase}: {message}")]
    Protocol { phase: &'static str, message: String },
    #[error("worker did not exit within {} of shutdown and was killed", seconds(*grace))]
    ShutdownTimedOut { grace: Duration },
    #[error("worker I/O failed {phase}: {source}")]
    Io { phase: &'static str, source: std::io::Error },
}

/// `30 s`, `2.5 s`: durations as people read them.
pub(crate) fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 { format!("{secs:.0} s") } else { format!("{secs:.1} s") }
}

/// `; last stderr: a | b | c` with the last few lines, or nothing.
fn tail_suffix(tail: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<&str> =
        tail.iter().skip(tail.len().saturating_sub(SHOWN)).map(|line| line.trim()).filter(|l| !l.is_empty()).collect();
    if shown.is_empty() { String::new() } else { format!("; last stderr: {}", shown.join(" | ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_say_what_happened() {
        let job = Uuid::nil();
        let crashed = JobOutcome::Crashed { exit_code: Some(3), signal: None, stderr_tail: vec!["boom".into()] };
        assert_eq!(
            crashed.failure_reason(job).unwrap(),
            format!("worker exited with code 3 during job {job}; last stderr: boom")
        );
        let killed = JobOutcome::Crashed { exit_code: None, signal: Some(9), stderr_tail: vec![] };
        assert_eq!(
            killed.failure_reason(job).unwrap(),
            format!("worker killed by signal 9 (SIGKILL) during job {job}")
        );
        let timed_out = JobOutcome::TimedOut { after: Duration::from_secs(30) };
        assert!(timed_out.failure_reason(job).unwrap().contains("timed out after 30 s"));
        assert_eq!(JobOutcome::Done { status: FinalStatus::Success, error: None }.failure_reason(job), None);
        assert!(!killed.worker_survives() && killed.status() == FinalStatus::Failed);
    }

    #[test]
    fn python_helper_goes_first_on_pythonpath() {
        let context = InitContext { run_id: Uuid::nil(), pod_index: 0, proxy_url: None, fingerprint: None };
        let spec = WorkerSpec::new(vec!["python3".into()], "/w", Value::Null, context)
            .env("PYTHONPATH", "/mine")
            .with_python_helper(Path::new("/helper"));
        let last = |name: &str| spec.env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(last("PYTHONPATH"), Some("/helper:/mine"));
        assert_eq!(last("PYTHONUNBUFFERED"), Some("1"));
    }

    #[test]
    fn a_spec_shows_its_variables_names_never_their_values() {
        let context = InitContext { run_id: Uuid::nil(), pod_index: 0, proxy_url: None, fingerprint: None };
        let spec =
            WorkerSpec::new(vec!["python3".into()], "/w", Value::Null, context).env("ARMADA_TOKEN", "t0ken-value");
        let shown = format!("{spec:?}");
        assert!(shown.contains("ARMADA_TOKEN") && !shown.contains("t0ken-value"), "{shown}");
        let child = crate::process::ChildSpec::new("python3", "/w").env("SQL_SERVER_PASSWORD", "pa55");
        let shown = format!("{child:?}");
        assert!(shown.contains("SQL_SERVER_PASSWORD") && !shown.contains("pa55"), "{shown}");
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.5 s");
    }
}
