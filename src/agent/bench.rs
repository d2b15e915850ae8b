//! `bench_e2e`: no-op jobs through a whole server, end to end. A server with every role runs in
//! this process on a loopback port, with the engines the environment chooses (as `armada serve`
//! would: embedded by default; `REDIS_*`, `RABBITMQ_URL` and `PLATFORM=local` for Redis,
//! RabbitMQ and `armada agent` processes) and a SQLite file in a temporary folder. The run is
//! started with `POST /bot/start` like `armada launch` does, with a tiny Python worker that
//! answers `done` at once, so what is measured is Armada: dispatch, delivery, records, the
//! round trip to the worker, the ack, and the orchestrator noticing the end.
//!
//! Every figure comes from what the server stored and shows: the jobs' outcome times
//! (`job_finished`, microseconds), the run's end (`run_finished`), the agents' pids.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::{self, AppState};
use crate::model::Job;
use crate::project::{Project, ProjectLimits};
use crate::roles::orchestrator::RunView;
use crate::settings::{BrokerSettings, ConfigStoreSettings, LauncherSettings, Settings, Vars};

/// A worker that does nothing: hello, ready, `done` for every job.
const NOOP_WORKER: &str = r#"import json, os, socket
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["ARMADA_WORKER_SOCKET"])
s.sendall(b'{"type":"hello","protocol":1,"worker":"noop/1"}\n')
for line in s.makefile("rb"):
    m = json.loads(line)
    if m["type"] == "init":
        s.sendall(b'{"type":"ready"}\n')
    elif m["type"] == "job":
        s.sendall(('{"type":"done","job_uuid":"%s","status":"Success"}\n' % m["job_uuid"]).encode())
    elif m["type"] == "shutdown":
        break
"#;

/// How long one configuration may take before the bench gives up.
const RUN_LIMIT: Duration = Duration::from_secs(900);
/// How often the run's view is read while it runs: as often as `armada launch` follows a run.
/// Each read costs the server the run's counts, its agents' summary and the queue's depth, so
/// reading faster would measure the watcher more than the jobs (the figures come from the
/// stored outcome times, not from this loop).
const POLL: Duration = Duration::from_millis(250);

/// One configuration's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct E2eReport {
    pub jobs: usize,
    pub agents: usize,
    /// The engines the server used (config store, broker, launcher).
    pub engines: String,
    /// From `POST /bot/start` to the run read back `completed`.
    pub wall_seconds: f64,
    /// From the first job's outcome to the last one.
    pub jobs_seconds: f64,
    /// Jobs per second over `jobs_seconds`.
    pub jobs_per_sec: f64,
    /// Per-job overhead: the time between an agent's consecutive outcomes (with a worker that
    /// does nothing, all of it is Armada's), in microseconds.
    pub p50_us: u64,
    pub p99_us: u64,
    /// From the last job's outcome to the run marked `completed`, in milliseconds.
    pub completion_ms: f64,
    /// Resident memory of one agent without its worker, in KiB: the largest `armada agent`
    /// process when agents are processes, else this process's growth per in-process agent
    /// while they ran. `None` where /proc is not readable.
    pub agent_rss_kib: Option<u64>,
    /// Whether `agent_rss_kib` was read off agent processes (else estimated in-process).
    pub rss_of_processes: bool,
}

impl std::fmt::Display for E2eReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rss = match (self.agent_rss_kib, self.rss_of_processes) {
            (Some(kib), true) => format!("{:.1} MiB (largest agent process)", kib as f64 / 1024.0),
            (Some(kib), false) => format!("~{:.1} MiB each (server growth per in-process agent)", kib as f64 / 1024.0),
            (None, _) => "n/a".into(),
        };
        write!(
            f,
            "e2e ({}), {} agents, {} jobs: {:.0} jobs/s ({:.2} s from first to last outcome; {:.2} s from start to completed); \
             per-job overhead p50 {} µs, p99 {} µs; completed {:.1} ms after the last outcome; agent RSS {rss}",
            self.engines,
            self.agents,
            self.jobs,
            self.jobs_per_sec,
            self.jobs_seconds,
            self.wall_seconds,
            self.p50_us,
            self.p99_us,
            self.completion_ms,
        )
    }
}

/// Resident memory of a process, from /proc.
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The no-op project: `jobs` jobs on `agents` agents.
fn noop_project(jobs: usize, agents: usize) -> Result<Project, String> {
    let template = json!({
        "run_message": {"number_of_agents": agents, "number_of_jobs": jobs, "worker_command": ["python3", "worker.py"]},
        "default_agent_message": {"config_proxy": {"upstream_proxy_enabled": 0}, "config_fingerprint": {"fingerprint_enabled": 0}},
        "default_job_message": {"noop": true},
    });
    let files = vec![
        ("config/config_template.json".to_string(), Bytes::from(template.to_string())),
        ("worker.py".to_string(), Bytes::from_static(NOOP_WORKER.as_bytes())),
    ];
    Project::from_files(files, ProjectLimits::default()).map_err(|e| e.to_string())
}

/// The engines a server with these settings uses, in a few words (no address, no secret).
fn describe_engines(settings: &Settings) -> String {
    let config_store = match &settings.config_store {
        ConfigStoreSettings::InProcess => "in-process config store".to_string(),
        ConfigStoreSettings::Redis { host, port, .. } => format!("Redis {host}:{port}"),
    };
    let broker = match &settings.broker {
        BrokerSettings::InProcess => "in-process broker",
        BrokerSettings::Amqp { .. } => "RabbitMQ",
    };
    let launcher = match &settings.launcher {
        LauncherSettings::InProcess => "in-process agents",
        LauncherSettings::Process => "agent processes",
        LauncherSettings::Kube { .. } => "Kubernetes agents",
    };
    format!("{config_store}, {broker}, {launcher}")
}

/// A server of every role in this process, on a free loopback port.
struct BenchServer {
    base: String,
    token: Option<String>,
    engines: String,
    http: reqwest::Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl BenchServer {
    async fn start() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temporary folder: {e}"))?;
        let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
        let mut vars = Vars::load(&cwd).map_err(|e| e.to_string())?;
        if vars.get("ARMADA_DATABASE_URL").is_none() && vars.get("SQL_SERVER_NAME").is_none() {
            vars.set("ARMADA_DATABASE_URL", format!("sqlite:{}", dir.path().join("armada.db").display()));
        }
        vars.set("ARMADA_WORK_DIR", dir.path().join("work").display().to_string());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
        let address = listener.local_addr().map_err(|e| format!("bind: {e}"))?;
        let settings = Settings::from_vars(vars, Vec::new(), Some(address)).map_err(|e| e.to_string())?;
        let engines = describe_engines(&settings);
        let token = settings.token.as_ref().map(|t| t.expose().to_string());
        let state = AppState::build(settings).await.map_err(|e| format!("{e:#}"))?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(app::serve(listener, state, stop.clone().cancelled_owned()));
        let http = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().map_err(|e| e.to_string())?;
        Ok(Self { base: format!("http://{address}"), token, engines, http, stop, task, _dir: dir })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let response = self.request(reqwest::Method::GET, path).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {}", response.text().await.unwrap_or_default()));
        }
        response.json().await.map_err(|e| format!("GET {path}: {e}"))
    }

    async fn start_run(&self, project: &Project) -> Result<Uuid, String> {
        let archive = project.to_bundle().map_err(|e| e.to_string())?;
        let part = reqwest::multipart::Part::bytes(archive.bytes.to_vec())
            .file_name("bench.tar.gz")
            .mime_str("application/gzip")
            .map_err(|e| e.to_string())?;
        let form = reqwest::multipart::Form::new().part("project", part);
        let response = self
            .request(reqwest::Method::POST, "/bot/start")
            .multipart(form)
            .send()
            .await
            .map_err(|e| format!("POST /bot/start: {e}"))?;
        let status = response.status();
        let body: Value = response.json().await.map_err(|e| format!("POST /bot/start: {e}"))?;
        if !status.is_success() {
            return Err(format!("POST /bot/start: {status}: {}", body["detail"]));
        }
        body["run_uuid"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or_else(|| format!("POST /bot/start answered no run_uuid: {body}"))
    }

    async fn jobs(&self, run_id: Uuid) -> Result<Vec<Job>, String> {
        #[derive(serde::Deserialize)]
        struct Jobs {
            jobs: Vec<Job>,
            total: u64,
        }
        let mut all = Vec::new();
        for page in 1.. {
            let batch: Jobs = self.json(&format!("/api/jobs/?run_uuid={run_id}&page={page}&page_size=100")).await?;
            let done = batch.jobs.is_empty() || all.len() + batch.jobs.len() >= batch.total as usize;
            all.extend(batch.jobs);
            if done {
                break;
            }
        }
        Ok(all)
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Runs `jobs` no-op jobs on `agents` agents through a whole server; see the module docs.
pub async fn bench_e2e(jobs: usize, agents: usize) -> Result<E2eReport, String> {
    let server = BenchServer::start().await?;
    let result = measure(&server, jobs, agents).await;
    server.stop().await;
    result
}

async fn measure(server: &BenchServer, jobs: usize, agents: usize) -> Result<E2eReport, String> {
    let project = noop_project(jobs, agents)?;
    let own_rss_before = rss_kib("self");
    let started = Instant::now();
    let run_id = server.start_run(&project).await?;

    let (mut own_rss_peak, mut agent_rss_peak) = (own_rss_before, None::<u64>);
    let view: RunView = loop {
        let view: RunView = server.json(&format!("/bot/runs/{run_id}")).await?;
        own_rss_peak = own_rss_peak.max(rss_kib("self"));
        for pid in view.agents.iter().filter_map(|agent| agent.pid) {
            agent_rss_peak = agent_rss_peak.max(rss_kib(&pid.to_string()));
        }
        if view.status.is_some_and(|status| status.is_final()) {
            break view;
        }
        if started.elapsed() > RUN_LIMIT {
            return Err(format!("run {run_id} did not end within {RUN_LIMIT:?}: {:?}", view.counts));
        }
        tokio::time::sleep(POLL).await;
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    if view.status.map(|s| s.as_str()) != Some("completed") || view.finished_jobs != jobs as u64 {
        return Err(format!("run {run_id} ended {:?} ({:?}): {:?}", view.status, view.detail, view.counts));
    }

    let jobs_stored = server.jobs(run_id).await?;
    let mut by_agent: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for job in &jobs_stored {
        let finished = job.job_finished.ok_or_else(|| format!("job {} has no outcome time", job.job_uuid))?;
        by_agent.entry(job.job_associated_agent.clone()).or_default().push(finished.as_micros());
    }
    let mut cycles: Vec<i64> = Vec::with_capacity(jobs);
    for times in by_agent.values_mut() {
        times.sort_unstable();
        cycles.extend(times.windows(2).map(|pair| pair[1] - pair[0]));
    }
    cycles.sort_unstable();
    let percentile = |p: f64| {
        cycles.get(((cycles.len() as f64 - 1.0) * p).round() as usize).map(|&us| us.max(0) as u64).unwrap_or(0)
    };
    let times = by_agent.values().flatten();
    let first = times.clone().min().copied().ok_or("no job ended")?;
    let last = times.max().copied().ok_or("no job ended")?;
    let run_finished = view.finished.map(|t| t.as_micros()).ok_or_else(|| format!("run {run_id} has no end time"))?;
    let jobs_seconds = ((last - first) as f64 / 1e6).max(1e-9);

    let (agent_rss_kib, rss_of_processes) = match agent_rss_peak {
        Some(kib) => (Some(kib), true),
        None => match (own_rss_before, own_rss_peak) {
            (Some(before), Some(peak)) => (Some(peak.saturating_sub(before) / agents as u64), false),
            _ => (None, false),
        },
    };
    Ok(E2eReport {
        jobs,
        agents,
        engines: server.engines.clone(),
        wall_seconds,
        jobs_seconds,
        jobs_per_sec: jobs as f64 / jobs_seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        completion_ms: (run_finished - last) as f64 / 1000.0,
        agent_rss_kib,
        rss_of_processes,
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_e2e_runs_every_job_through_the_server_and_reports() {
        let report = super::bench_e2e(40, 2).await.unwrap();
        assert_eq!((report.jobs, report.agents), (40, 2));
        assert!(report.jobs_per_sec > 0.0 && report.p99_us >= report.p50_us, "{report}");
        assert!(report.completion_ms >= 0.0 && report.wall_seconds > report.jobs_seconds, "{report}");
    }
}
