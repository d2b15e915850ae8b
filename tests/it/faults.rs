//! Faults injected into real runs (issue 5): a real `armada serve` child process with
//! `PLATFORM=local`, so agents are real `armada agent` processes, on real Redis and RabbitMQ —
//! an agent SIGKILLed mid-job, RabbitMQ stopped for 5 s mid-run, Redis stopped after the agents
//! started, starts the broker refuses. Tests that stop a server start one of their own; the
//! shared ones stay up for every other test.
//!
//! "Exactly once" is counted from what was stored — job rows, `started`/`finished` events,
//! outputs — and from marker files the jobs' own code appends to (`tests/fixtures/faults`).

mod agent_killed;
mod outages;
mod refused_starts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use armada::infra::broker::amqp::AmqpBroker;
use armada::infra::broker::{Broker, BrokerError, job_queue_name};
use armada::model::{Event, Job, Output};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::local::{LocalServe, RUN_LIMIT, shown};
use crate::support::eventually;
use crate::support::servers::{self, loud};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faults")
}

/// The shape of a run of the fixture, as its tune file says it.
struct Shape {
    agents: u32,
    jobs: u32,
    sleep_secs: f64,
    /// Job 0's first run.
    hold_secs: f64,
}

/// A run of the fixture (started, or about to be), with the folder its jobs write their markers to.
struct FaultRun {
    run_id: Uuid,
    markers: tempfile::TempDir,
    tune: PathBuf,
}

impl FaultRun {
    /// Writes the tune (markers in a fresh folder) without starting anything.
    fn prepare(shape: &Shape) -> Self {
        let markers = tempfile::tempdir().expect("marker folder");
        let tune = markers.path().join("tune.json");
        let values = json!({
            "AGENTS": shape.agents,
            "JOBS": shape.jobs,
            "SLEEP_SECS": shape.sleep_secs,
            "FIRST_JOB_HOLD_SECS": shape.hold_secs,
            "MARKER_DIR": markers.path().join("jobs").display().to_string(),
        });
        std::fs::create_dir(markers.path().join("jobs")).expect("jobs' marker folder");
        std::fs::write(&tune, values.to_string()).expect("tune file");
        Self { run_id: Uuid::new_v4(), markers, tune }
    }

    /// `armada launch tests/fixtures/faults --tune FILE --no-follow` on `local`.
    async fn launch(local: &LocalServe, shape: &Shape) -> Self {
        let run = Self::prepare(shape);
        let (dir, tune, id) = (fixture().display().to_string(), run.tune.display().to_string(), run.run_id.to_string());
        let output =
            local.armada(&["launch", &dir, "--tune", &tune, "--no-follow", "--run-id", &id]).finish(RUN_LIMIT).await;
        assert_eq!(output.code, Some(0), "{}", shown(&output));
        run
    }

    /// The `start` and `end` lines job `job_uuid`'s code wrote, in order.
    fn marks(&self, job_uuid: Uuid) -> Vec<String> {
        let path = self.markers.path().join("jobs").join(format!("{job_uuid}.log"));
        std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// The project's parts as the dashboard sends them, for a start this test drives itself.
    fn dashboard_form(&self) -> Form {
        let config = fixture().join("config");
        let file = |path: PathBuf, name: &str| {
            Part::bytes(std::fs::read(path).expect("fixture file")).file_name(name.to_owned())
        };
        Form::new()
            .part("configtemplate", file(config.join("config_template.json"), "config_template.json"))
            .part("configtune", file(self.tune.clone(), "config_local.json"))
            .part("data_job", file(config.join("data_job.csv"), "data_job.csv"))
            .text("python_code", std::fs::read_to_string(fixture().join("ctx_script.py")).expect("ctx_script.py"))
            .text("run_uuid", self.run_id.to_string())
    }
}

/// `POST /bot/start` with `run`'s parts: the status, the JSON answer and how long it took.
async fn start(local: &LocalServe, run: &FaultRun) -> (StatusCode, Value, Duration) {
    let asked = Instant::now();
    let request = local.client.post(format!("{}/bot/start", local.url)).multipart(run.dashboard_form());
    let response = request.send().await.expect("POST /bot/start");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, asked.elapsed())
}

async fn get_json(local: &LocalServe, path: &str) -> (StatusCode, Value) {
    let response = local.client.get(format!("{}{path}", local.url)).send().await.expect("GET");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The run's jobs, by index.
async fn jobs(local: &LocalServe, run_id: Uuid) -> Vec<Job> {
    let (status, page) = get_json(local, &format!("/api/jobs?run_uuid={run_id}&page_size=100")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mut jobs: Vec<Job> = serde_json::from_value(page["jobs"].clone()).expect("jobs");
    jobs.sort_by_key(|job| job.job_index);
    jobs
}

async fn events(local: &LocalServe, job_uuid: Uuid) -> Vec<Event> {
    let (status, events) = get_json(local, &format!("/api/events?job_uuid={job_uuid}")).await;
    assert_eq!(status, StatusCode::OK, "{events}");
    serde_json::from_value(events).expect("events")
}

async fn outputs(local: &LocalServe, run_id: Uuid) -> Vec<Output> {
    let (status, page) = get_json(local, &format!("/api/outputs?run_uuid={run_id}&page_size=100")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    serde_json::from_value(page["outputs"].clone()).expect("outputs")
}

/// The run's view once it ended (whatever its status), or the test fails with what the agents said.
async fn ended(local: &LocalServe, run: &FaultRun) -> Value {
    let mut view = Value::Null;
    let done = eventually(RUN_LIMIT, async || {
        view = local.view(run.run_id).await;
        view["status"].as_str().is_some_and(|s| ["completed", "failed", "cancelled"].contains(&s))
    });
    assert!(done.await, "run never ended: {view:#}\n{}", agent_logs(local, run.run_id));
    view
}

/// Every agent log of the run, for a failing assertion's message.
fn agent_logs(local: &LocalServe, run_id: Uuid) -> String {
    let dir = local.cwd.path().join("armada-work").join(run_id.to_string());
    let mut text = String::new();
    for index in 0.. {
        let Ok(log) = std::fs::read_to_string(dir.join(format!("agent-{index}.log"))) else { break };
        text.push_str(&format!("--- agent-{index}.log\n{log}"));
    }
    text
}

/// The run completed with every job `Success`, each recorded, finished and output exactly once,
/// and each one's code finished exactly once. Returns how many times each job's code started.
async fn assert_each_job_succeeded_once(local: &LocalServe, run: &FaultRun, view: &Value) -> BTreeMap<Uuid, usize> {
    let logs = || agent_logs(local, run.run_id);
    let jobs = jobs(local, run.run_id).await;
    let total = jobs.len();
    assert_eq!(view["status"], "completed", "{view:#}\n{}", logs());
    assert_eq!(view["counts"], json!({"Success": total}), "{view:#}");
    assert_eq!(view["detail"], format!("{total} jobs: {total} succeeded, 0 failed"), "{view:#}");

    let outputs = outputs(local, run.run_id).await;
    assert_eq!(outputs.len(), total, "one output per job: {outputs:#?}");
    let mut starts = BTreeMap::new();
    for job in &jobs {
        let id = job.job_uuid;
        assert_eq!(job.job_status, "Success", "{job:?}");
        let events = events(local, id).await;
        let said = |prefix: &str| events.iter().filter(|e| e.event_content == format!("{prefix} {id}")).count();
        assert_eq!(said("finished"), 1, "job {id} finished once: {events:#?}");
        let outputs_of_job = outputs.iter().filter(|o| o.job_uuid == Some(id) && o.data["job_uuid"] == id.to_string());
        assert_eq!(outputs_of_job.count(), 1, "job {id}: one output");
        let marks = run.marks(id);
        let (started, finished) = (
            marks.iter().filter(|m| m.starts_with("start")).count(),
            marks.iter().filter(|m| m.starts_with("end")).count(),
        );
        assert_eq!(finished, 1, "job {id}'s code finished once: {marks:?}");
        assert_eq!(said("started"), started, "a `started` event for each start of job {id}: {marks:?} {events:#?}");
        assert_eq!(job.job_attempts, Some(started as i64), "job {id}: an attempt for each start: {job:?} {marks:?}");
        starts.insert(id, started);
    }
    starts
}

/// Every agent of the run but `except` ended `succeeded`: its consumer ended when the run's
/// queue was deleted, rather than on an error.
async fn assert_agents_ended_on_their_own(local: &LocalServe, run: &FaultRun, except: Option<&str>) {
    let ended = eventually(Duration::from_secs(60), async || {
        let view = local.view(run.run_id).await;
        let agents = view["agents"].as_array().cloned().unwrap_or_default();
        agents.iter().filter(|a| except.is_none_or(|name| a["agent"] != name)).all(|a| a["phase"] == "succeeded")
    });
    assert!(ended.await, "agents did not end: {}\n{}", local.view(run.run_id).await, agent_logs(local, run.run_id));
}

/// A fresh client of the RabbitMQ at `url`, to look at queues as the orchestrator does.
fn broker(url: &str) -> AmqpBroker {
    AmqpBroker::new(url)
}

async fn queue_is_gone(rabbitmq: &str, run_id: Uuid) -> bool {
    matches!(broker(rabbitmq).stats(&job_queue_name(run_id)).await, Err(BrokerError::NotFound(_)))
}

fn shared_servers() -> Option<(String, String)> {
    match (servers::redis_url(), servers::rabbitmq_url()) {
        (Some(redis), Some(rabbitmq)) => Some((redis, rabbitmq)),
        _ => {
            loud("SKIPPED faults: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)");
            None
        }
    }
}

/// Nothing of a refused start remains: no run row, no job row, no queue, no agent, no active run.
async fn assert_refused_run_left_nothing(local: &LocalServe, rabbitmq: &str, run_id: Uuid) {
    let (status, run) = get_json(local, &format!("/api/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no run row: {run}");
    let (status, page) = get_json(local, &format!("/api/jobs?run_uuid={run_id}")).await;
    assert_eq!((status, page["total"].as_u64()), (StatusCode::OK, Some(0)), "no job rows: {page}");
    assert!(queue_is_gone(rabbitmq, run_id).await, "no queue {run_id}");
    let (_, active) = get_json(local, "/bot/runs").await;
    let active = active["runs"].as_array().cloned().unwrap_or_default();
    assert!(active.iter().all(|r| r["run_uuid"] != run_id.to_string()), "not an active run: {active:?}");
    assert!(!local.cwd.path().join("armada-work").join(run_id.to_string()).exists(), "no agent was started");
}

/// Every key of the Redis at `url` that starts with the run's id (its agent messages, bundle
/// and heartbeats all do).
async fn redis_keys(url: &str, run_id: Uuid) -> Vec<String> {
    use fred::prelude::{Builder, ClientLike, Config};
    let client = Builder::from_config(Config::from_url(url).expect("Redis URL")).build().expect("Redis client");
    client.init().await.expect("connect to Redis");
    let command = fred::types::CustomCommand::new_static("KEYS", None, false);
    let keys: Vec<String> = client.custom(command, vec![format!("{run_id}*")]).await.expect("KEYS");
    let _ = client.quit().await;
    keys
}
