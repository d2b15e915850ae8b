//! The orchestrator over real HTTP: `POST /bot/start` with multipart uploads, runs driven to
//! their end by test agents (see `agents`), cancels, failed starts and refused uploads, with
//! outcomes checked in the engines themselves (rows, queue, config keys, agents).

mod agents;
mod distributed;
mod failures;
mod lifecycle;
mod uploads;
mod wiring;

use std::time::Duration;

use armada::infra::broker::{BrokerError, job_queue_name};
use armada::infra::launcher::LaunchError;
use armada::model::{PageRequest, status};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use uuid::Uuid;

use crate::support::{TestApp, eventually};

/// 3 agents (from the tune), 6 jobs (2 rows + 4 defaults), `$env_` values of several types.
pub const TEMPLATE: &str = r#"{
  "run_message": {"number_of_agents": "$env_AGENTS", "number_of_jobs": 6, "job_timeout_secs": 60, "max_attempts": 2},
  "default_agent_message": {
    "config_proxy": {"upstream_proxy_enabled": "$env_PROXY", "proxy_location": "", "verify_ip": 0},
    "screen_visible": "$env_SCREEN_VISIBLE"
  },
  "default_job_message": {"outcome": "succeed", "payload": {"query": "", "depth": 1}}
}"#;
pub const TUNE: &str = r#"{"AGENTS": 3, "PROXY": 1, "SCREEN_VISIBLE": 0}"#;
/// Row 0 overrides part of agent 0's proxy with a JSON cell.
pub const DATA_AGENT: &str = "config_proxy\n\"{\"\"proxy_location\"\": \"\"US\"\", \"\"verify_ip\"\": 1}\"\n";
/// Job 1 fails; both rows merge a JSON cell into the default payload.
pub const DATA_JOB: &str = "outcome,payload\n\
    succeed,\"{\"\"query\"\": \"\"shoes\"\"}\"\n\
    fail,\"{\"\"query\"\": \"\"hats\"\", \"\"depth\"\": 2}\"\n";
pub const PYTHON_CODE: &str = "print('hello from the bundled code')";

/// Generous: the machine is shared.
pub const WITHIN: Duration = Duration::from_secs(30);

pub fn file(bytes: impl Into<Vec<u8>>, filename: &str) -> Part {
    Part::bytes(bytes.into()).file_name(filename.to_owned())
}

/// The original dashboard's parts for the valid project.
pub fn dashboard_form() -> Form {
    Form::new()
        .part("configtemplate", file(TEMPLATE, "config_template.json"))
        .part("configtune", file(TUNE, "config_local.json"))
        .part("data_agent", file(DATA_AGENT, "data_agent.csv"))
        .part("data_job", file(DATA_JOB, "data_job.csv"))
        .text("python_code", PYTHON_CODE)
}

/// A template alone: `agents` agents, `jobs` default jobs.
pub fn small_form(agents: usize, jobs: usize) -> Form {
    let template = format!(
        r#"{{"run_message": {{"number_of_agents": {agents}, "number_of_jobs": {jobs}}},
            "default_agent_message": {{}}, "default_job_message": {{"outcome": "succeed"}}}}"#
    );
    Form::new().part("configtemplate", file(template, "config_template.json"))
}

pub async fn start(app: &TestApp, path: &str, form: Form) -> (StatusCode, Value) {
    app.send(app.client.post(app.url(path)).multipart(form)).await
}

/// Starts and returns the run id, failing the test unless the start succeeded.
pub async fn start_ok(app: &TestApp, form: Form) -> Uuid {
    let (status, body) = start(app, "/bot/start", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["run_uuid"].as_str().and_then(|id| Uuid::parse_str(id).ok()).expect("run_uuid in the answer")
}

pub async fn view(app: &TestApp, run_id: Uuid) -> Value {
    let (status, body) = app.get(&format!("/bot/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The run's view once its status is `wanted`.
pub async fn wait_for_status(app: &TestApp, run_id: Uuid, wanted: &str) -> Value {
    let mut last = Value::Null;
    let reached = eventually(WITHIN, async || {
        last = view(app, run_id).await;
        last["status"] == wanted
    })
    .await;
    assert!(reached, "run {run_id} never became {wanted}; last view: {last:#}");
    last
}

/// The run's jobs, by `job_index`.
pub async fn jobs(app: &TestApp, run_id: Uuid) -> Vec<armada::model::Job> {
    let page = PageRequest::new(Some(1), Some(100), 10).expect("page");
    let mut jobs = app.state.store().list_jobs(Some(run_id), page).await.expect("jobs").items;
    jobs.sort_by_key(|job| job.job_index);
    jobs
}

pub async fn queue_is_gone(app: &TestApp, run_id: Uuid) -> bool {
    matches!(app.orchestrator().broker.stats(&job_queue_name(run_id)).await, Err(BrokerError::NotFound(_)))
}

/// No run row, job, queue, config key, bundle or agent exists for `run_id`, and no run is active.
pub async fn assert_nothing_left(app: &TestApp, run_id: Uuid, agents: usize) {
    let orchestrator = app.orchestrator();
    assert_eq!(orchestrator.backend.get_run(run_id).await.expect("backend"), None, "run row of {run_id}");
    assert!(jobs(app, run_id).await.is_empty(), "jobs of {run_id}");
    assert!(queue_is_gone(app, run_id).await, "queue of {run_id}");
    for index in 0..agents.max(1) {
        let message = orchestrator.config_store.get_agent_message(run_id, index).await.expect("config store");
        assert_eq!(message, None, "agent message {index} of {run_id}");
    }
    assert_eq!(orchestrator.config_store.get_bundle(run_id).await.expect("config store"), None, "bundle of {run_id}");
    assert!(matches!(orchestrator.launcher.agents(run_id).await, Err(LaunchError::NotFound(_))), "agents of {run_id}");
    assert!(orchestrator.active_runs_view().runs.is_empty(), "no active run");
}

pub fn assert_all_final(jobs: &[armada::model::Job]) {
    for job in jobs {
        assert!(status::is_final(&job.job_status), "job {:?} is {}", job.job_index, job.job_status);
    }
}
