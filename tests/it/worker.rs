//! The worker supervisor against real worker processes: the Python helper on fixture
//! projects, the Node example, and workers that crash, hang or speak another protocol.

mod bundled;
mod database_connector;
mod lifecycle;
mod node;
mod python;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use armada::agent::worker::{
    DEFAULT_WORKER_COMMAND, InitContext, JobRequest, LogLine, LogSink, LogStream, Worker, WorkerCalls, WorkerSpec,
    materialize_python_helper,
};
use serde_json::{Value, json};
use uuid::Uuid;

/// Generous: the machine is shared and noisy.
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
const GRACE: Duration = Duration::from_secs(30);

/// One call the worker made, as the agent saw it.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    job: Option<Uuid>,
    method: String,
    params: Value,
}

/// A `WorkerCalls` that stores every call and says it is stored; the network calls it
/// refuses, as an agent without a network would.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<Call>>,
}

#[async_trait::async_trait]
impl WorkerCalls for Recorder {
    async fn call(&self, job_uuid: Option<Uuid>, method: &str, params: Value) -> Result<Value, String> {
        self.calls.lock().unwrap().push(Call { job: job_uuid, method: method.to_string(), params });
        match method {
            "switch_proxy" | "fingerprint" => Err(format!("`{method}`: this test agent has no network")),
            _ => Ok(json!({"stored": true})),
        }
    }
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// `(job, method, params without job_uuid)` for compact assertions.
    fn summary(&self) -> Vec<(Option<Uuid>, String, Value)> {
        self.calls()
            .into_iter()
            .map(|call| {
                let mut params = call.params;
                if let Some(map) = params.as_object_mut() {
                    map.remove("job_uuid");
                }
                (call.job, call.method, params)
            })
            .collect()
    }

    fn outputs(&self) -> Vec<Value> {
        self.calls()
            .into_iter()
            .filter(|call| call.method == "output")
            .map(|call| call.params["data"].clone())
            .collect()
    }
}

/// Every line the worker printed.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<LogLine>>>);

impl Logs {
    fn sink(&self) -> Arc<dyn LogSink> {
        let lines = self.0.clone();
        Arc::new(move |line: LogLine| lines.lock().unwrap().push(line))
    }

    fn lines(&self, stream: LogStream, job: Option<Uuid>) -> Vec<String> {
        let lines = self.0.lock().unwrap();
        lines.iter().filter(|line| line.stream == stream && line.job_uuid == job).map(|l| l.text.clone()).collect()
    }
}

/// A temporary folder with a project in `project/` and the Python helper in `helper/`.
struct Fixture {
    root: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("project")).unwrap();
        materialize_python_helper(&root.path().join("helper")).unwrap();
        Self { root }
    }

    /// The original-style project of `fixtures/standard`.
    fn standard() -> Self {
        Self::new()
            .file("ctx_agent_context.py", include_str!("worker/fixtures/standard/ctx_agent_context.py"))
            .file("ctx_job_context.py", include_str!("worker/fixtures/standard/ctx_job_context.py"))
            .file("ctx_script.py", include_str!("worker/fixtures/standard/ctx_script.py"))
    }

    fn file(self, name: &str, content: &str) -> Self {
        let path = self.project().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
        self
    }

    fn project(&self) -> PathBuf {
        self.root.path().join("project")
    }

    fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.project().join(name)).ok()
    }

    /// Starts the Python helper on the project; panics if it does not get ready.
    async fn start(&self, agent_message: Value) -> (Worker, Recorder, Logs) {
        let (calls, logs) = (Recorder::default(), Logs::default());
        let worker = Worker::start(self.python_spec(agent_message), logs.sink(), &calls).await.unwrap();
        (worker, calls, logs)
    }

    /// `python3 -m armada_worker` in the project, with the helper on PYTHONPATH.
    fn python_spec(&self, agent_message: Value) -> WorkerSpec {
        self.spec_in(&self.project(), DEFAULT_WORKER_COMMAND.map(String::from).to_vec(), agent_message)
    }

    fn spec_in(&self, workdir: &Path, command: Vec<String>, agent_message: Value) -> WorkerSpec {
        let mut spec = WorkerSpec::new(command, workdir, agent_message, context())
            .with_python_helper(&self.root.path().join("helper"))
            .env("ARMADA_SQLITE_PATH", self.root.path().join("armada.db").display().to_string());
        spec.init_timeout = JOB_TIMEOUT;
        spec
    }
}

fn context() -> InitContext {
    InitContext {
        run_id: Uuid::new_v4(),
        pod_index: 0,
        proxy_url: Some("http://127.0.0.1:8081".into()),
        fingerprint: Some(json!({"user_agent": "Mozilla/5.0 (test)"})),
    }
}

fn job(job_message: Value) -> JobRequest {
    JobRequest { job_uuid: Uuid::new_v4(), attempt: 1, job_message }
}

/// Whether `pid` names a process at all (a zombie counts).
pub(crate) fn exists(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Whether `pid` is a live process. A zombie is dead: whoever inherited it (the machine's
/// init, which may not reap) is no concern of the agent's.
pub(crate) fn running(pid: u32) -> bool {
    exists(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
}

/// Waits up to 20 s for `done()`, sleeping on the runtime (so it can reap children).
async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    done()
}
