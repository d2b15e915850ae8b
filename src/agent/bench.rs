//! `bench_e2e`: the agent's own cost per job, end to end. N no-op jobs (a tiny Python worker
//! that answers `done` at once) run on in-process agents with embedded engines (in-memory
//! queue and config store, SQLite behind the in-process backend), so what is measured is
//! the agent: delivery, records, the round trip to the worker, the ack.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::network::NetworkDeps;
use super::stage::{plan_project, stage_run};
use super::{AgentDeps, AgentObserver, AgentOptions, run_agent};
use crate::clients::{BackendClient, InProcessBackend};
use crate::infra::broker::memory::MemoryBroker;
use crate::infra::broker::{Broker, job_queue_name};
use crate::infra::config_store::memory::MemoryConfigStore;
use crate::infra::db::Store;
use crate::infra::db::sqlite::SqliteStore;
use crate::project::{Project, ProjectLimits};
use crate::records::{Hub, Records};

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

/// One configuration's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct E2eReport {
    pub jobs: usize,
    pub agents: usize,
    /// From the first job's start to the last outcome.
    pub seconds: f64,
    pub jobs_per_sec: f64,
    /// Per-job overhead: the time between an agent's consecutive outcomes (with a worker that
    /// does nothing, all of it is the agent's), in microseconds.
    pub p50_us: u64,
    pub p99_us: u64,
    /// The process's resident memory growth per agent while the agents run (the workers are
    /// other processes, so not counted); `None` where /proc is not readable.
    pub rss_kib_per_agent: Option<u64>,
}

impl std::fmt::Display for E2eReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} agents: {} jobs in {:.2} s = {:.0} jobs/s; per-job overhead p50 {} µs, p99 {} µs; agent RSS {}",
            self.agents,
            self.jobs,
            self.seconds,
            self.jobs_per_sec,
            self.p50_us,
            self.p99_us,
            self.rss_kib_per_agent
                .map(|k| format!("~{k} KiB each (without its worker)"))
                .unwrap_or_else(|| "n/a".into())
        )
    }
}

struct Timing {
    total: usize,
    done: AtomicUsize,
    all_done: Notify,
    first_start: Mutex<Option<Instant>>,
    last_end: Mutex<Option<Instant>>,
    /// Per agent: when its previous job ended.
    previous: Mutex<std::collections::HashMap<usize, Instant>>,
    cycles: Mutex<Vec<Duration>>,
}

struct AgentTiming {
    index: usize,
    timing: Arc<Timing>,
}

impl AgentObserver for AgentTiming {
    fn job_started(&self, _: Uuid, _: u32, _: &Value) {
        let mut first = self.timing.first_start.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert_with(Instant::now);
    }

    fn job_finished(&self, _: Uuid, _: &str, _: Option<&str>) {
        let now = Instant::now();
        let timing = &self.timing;
        if let Some(previous) = timing.previous.lock().unwrap_or_else(|p| p.into_inner()).insert(self.index, now) {
            timing.cycles.lock().unwrap_or_else(|p| p.into_inner()).push(now - previous);
        }
        *timing.last_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
        if timing.done.fetch_add(1, Ordering::SeqCst) + 1 == timing.total {
            timing.all_done.notify_one();
        }
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Runs `jobs` no-op jobs on `agents` in-process agents; see the module docs.
pub async fn bench_e2e(jobs: usize, agents: usize) -> Result<E2eReport, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join("armada.db")).await.map_err(|e| e.to_string())?);
    store.migrate().await.map_err(|e| e.to_string())?;
    let records = Records::new(store, Hub::new(1024, Duration::from_secs(20)));
    let backend: Arc<dyn BackendClient> = Arc::new(InProcessBackend::new(records));
    let config_store = Arc::new(MemoryConfigStore::new());
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());

    let template = json!({
        "run_message": {"number_of_agents": agents, "number_of_jobs": jobs, "worker_command": ["python3", "worker.py"]},
        "default_agent_message": {},
        "default_job_message": {"noop": true},
    });
    let files = vec![
        ("config/config_template.json".to_string(), Bytes::from(template.to_string())),
        ("worker.py".to_string(), Bytes::from_static(NOOP_WORKER.as_bytes())),
    ];
    let project = Project::from_files(files, ProjectLimits::default()).map_err(|e| e.to_string())?;
    let plan = plan_project(&project, None).map_err(|e| e.to_string())?;
    let staged = stage_run(&plan, &project, None, backend.as_ref(), config_store.as_ref(), broker.as_ref())
        .await
        .map_err(|e| e.to_string())?;

    let timing = Arc::new(Timing {
        total: jobs,
        done: AtomicUsize::new(0),
        all_done: Notify::new(),
        first_start: Mutex::new(None),
        last_end: Mutex::new(None),
        previous: Mutex::new(Default::default()),
        cycles: Mutex::new(Vec::with_capacity(jobs)),
    });
    let deps = AgentDeps {
        config_store,
        broker: broker.clone(),
        backend,
        work_root: dir.path().join("agents"),
        worker_env: Vec::new(),
        requirements_txt: None,
        network: NetworkDeps::default(),
        options: AgentOptions::default(),
    };
    let rss_before = rss_kib();
    let cancel = CancellationToken::new();
    let tasks: Vec<_> = (0..agents)
        .map(|index| {
            let observer: Arc<dyn AgentObserver> = Arc::new(AgentTiming { index, timing: timing.clone() });
            tokio::spawn(run_agent(deps.clone(), staged.run_id, index, cancel.clone(), Some(observer)))
        })
        .collect();
    let mut rss_peak = rss_before;
    loop {
        tokio::select! {
            _ = timing.all_done.notified() => break,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                rss_peak = rss_peak.max(rss_kib());
                if tasks.iter().all(|t| t.is_finished()) {
                    return Err("every agent ended before the jobs did".into());
                }
            }
        }
    }
    rss_peak = rss_peak.max(rss_kib());
    broker.delete(&job_queue_name(staged.run_id)).await.map_err(|e| e.to_string())?;
    for task in tasks {
        task.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }

    let first = timing.first_start.lock().unwrap_or_else(|p| p.into_inner()).ok_or("no job started")?;
    let last = timing.last_end.lock().unwrap_or_else(|p| p.into_inner()).ok_or("no job ended")?;
    let seconds = (last - first).as_secs_f64().max(1e-9);
    let mut cycles = timing.cycles.lock().unwrap_or_else(|p| p.into_inner()).clone();
    cycles.sort();
    let percentile = |p: f64| {
        cycles.get(((cycles.len() as f64 - 1.0) * p).round() as usize).map(|d| d.as_micros() as u64).unwrap_or(0)
    };
    Ok(E2eReport {
        jobs,
        agents,
        seconds,
        jobs_per_sec: jobs as f64 / seconds,
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
        rss_kib_per_agent: match (rss_before, rss_peak) {
            (Some(before), Some(peak)) => Some(peak.saturating_sub(before) / agents as u64),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_e2e_runs_every_job_and_reports() {
        let report = super::bench_e2e(40, 2).await.unwrap();
        assert_eq!((report.jobs, report.agents), (40, 2));
        assert!(report.jobs_per_sec > 0.0 && report.p99_us >= report.p50_us, "{report}");
    }
}
