//! Runs from start to end: completed, cancelled, failed because every agent died; the run view.

use std::time::Instant;

use armada::clients::{BackendClient, InProcessBackend, LiveItem};
use armada::infra::launcher::LaunchError;
use armada::model::{AgentRunConfig, RunStatus, status};
use armada::project::Bundle;
use futures::{FutureExt, StreamExt};
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use uuid::Uuid;

use super::agents::{Behaviour, DEATH, Probe, test_agents};
use super::*;
use crate::support::{TestApp, eventually};

async fn app_with(behaviour: Behaviour, probe: &Probe) -> TestApp {
    TestApp::builder().agent_entry(test_agents(behaviour, probe.clone())).spawn().await
}

#[tokio::test]
async fn a_valid_project_runs_to_completion_and_leaves_no_queue() {
    let probe = Probe::default();
    let app = app_with(Behaviour::Honest, &probe).await;
    let mut live = InProcessBackend::new(app.state.records.clone()).live().await.expect("live stream");
    let run_id = start_ok(&app, dashboard_form()).await;

    let view = wait_for_status(&app, run_id, "completed").await;
    assert_eq!(view["detail"], "6 jobs: 5 succeeded, 1 failed");
    assert_eq!(view["counts"], json!({"Failed": 1, "Success": 5}));
    assert_eq!((view["finished_jobs"].clone(), view["number_of_agents"].clone()), (json!(6), json!(3)));
    let agents = view["agents"].as_array().expect("agents");
    assert_eq!(
        agents.iter().map(|a| a["agent"].as_str().unwrap_or_default()).collect::<Vec<_>>(),
        ["agent-0", "agent-1", "agent-2"]
    );
    assert_eq!(agents.iter().map(|a| a["jobs_taken"].as_u64().unwrap_or_default()).sum::<u64>(), 6);

    // dispatching → running → completed, as streamed.
    let mut statuses = Vec::new();
    while let Some(Some(item)) = live.next().now_or_never() {
        if let LiveItem::Message { kind, data } = item
            && (kind == "new_run" || kind == "update_run_status")
            && data["run_uuid"] == run_id.to_string()
        {
            statuses.push(data["run_status"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(statuses, ["dispatching", "running", "completed"]);

    // Every job registered, final, with its index; job 1 failed as its row said.
    let jobs = jobs(&app, run_id).await;
    assert_eq!(jobs.iter().map(|j| j.job_index).collect::<Vec<_>>(), (0..6).map(Some).collect::<Vec<_>>());
    assert_all_final(&jobs);
    assert_eq!(jobs[1].job_status, status::FAILED);
    assert!(jobs.iter().all(|j| j.job_associated_agent.starts_with("agent-")), "{jobs:?}");

    // Agent i's message: the merged one, with pod_index i and the run config.
    let orchestrator = app.orchestrator();
    let mut sha = String::new();
    for index in 0..3 {
        let message =
            orchestrator.config_store.get_agent_message(run_id, index).await.expect("store").expect("kept until TTL");
        assert_eq!((message["pod_index"].clone(), message["run_id"].clone()), (json!(index), json!(run_id)));
        assert_eq!(message["screen_visible"], 0, "$env_ value keeps its JSON type");
        assert_eq!(message["code"], PYTHON_CODE);
        let config = AgentRunConfig::from_agent_message(&message).expect("_armada").expect("valid");
        assert_eq!((config.number_of_agents, config.number_of_jobs), (3, 6));
        assert_eq!((config.job_timeout_secs, config.max_attempts, config.has_requirements), (60, 2, false));
        sha = config.bundle_sha256.expect("bundle checksum");
        let expected_proxy = match index {
            0 => json!({"upstream_proxy_enabled": 1, "proxy_location": "US", "verify_ip": 1}),
            _ => json!({"upstream_proxy_enabled": 1, "proxy_location": "", "verify_ip": 0}),
        };
        assert_eq!(message["config_proxy"], expected_proxy, "agent {index}");
    }
    let bundle = app.client.get(app.url(&format!("/bot/runs/{run_id}/bundle"))).send().await.expect("bundle");
    assert_eq!(bundle.status(), StatusCode::OK);
    assert_eq!(Bundle::checksum(&bundle.bytes().await.expect("bytes")), sha, "the bundle the agents were told of");

    // The end: the queue is deleted, so the agents leave and are forgotten.
    assert!(eventually(WITHIN, async || queue_is_gone(&app, run_id).await).await, "queue deleted");
    assert!(eventually(WITHIN, async || probe.exited() == 3).await, "agents ended");
    assert_eq!(probe.messages.lock().expect("lock").len(), 3, "each agent read its message");
    assert!(
        eventually(WITHIN, async || matches!(
            orchestrator.launcher.agents(run_id).await,
            Err(LaunchError::NotFound(_))
        ))
        .await
    );

    // Marked complete promptly after the last outcome.
    let run = orchestrator.backend.get_run(run_id).await.expect("backend").expect("run");
    let last_outcome = jobs.iter().filter_map(|j| j.job_finished).max().expect("finished jobs");
    let latency = run.run_finished.expect("finished").as_micros() - last_outcome.as_micros();
    println!("completion latency: {:.1} ms after the last job's outcome", latency as f64 / 1000.0);
    assert!((0..10_000_000).contains(&latency), "completed {latency} µs after the last outcome");

    let (status, body) = app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("already completed")), "{body}");
    assert_eq!(app.get("/bot/runs").await.1, json!({"runs": []}));

    let metrics = app.metrics().await;
    for series in [
        r#"armada_runs_total{status="completed"}"#,
        r#"armada_jobs_total{status="Success"}"#,
        r#"armada_jobs_total{status="Failed"}"#,
        "armada_job_duration_seconds_count",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }

    // Deleting the ended run deletes its config keys at once (they would only have expired).
    assert!(orchestrator.config_store.get_agent_message(run_id, 0).await.expect("store").is_some());
    assert_eq!(app.delete(&format!("/api/runs/{run_id}")).await.0, StatusCode::OK);
    for index in 0..3 {
        assert_eq!(orchestrator.config_store.get_agent_message(run_id, index).await.expect("store"), None);
    }
    assert_eq!(orchestrator.config_store.get_bundle(run_id).await.expect("store"), None);
}

fn project_archive(top: &str) -> Vec<u8> {
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (path, content) in [
        ("config/config_template.json", TEMPLATE),
        ("config/config_local.json", TUNE),
        ("config/data_job.csv", DATA_JOB),
        ("requirements.txt", "requests\n"),
        ("ctx_script.py", "async def ctx_script(job_ctx, agent_ctx):\n    pass\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{top}{path}"), content.as_bytes()).expect("append");
    }
    tar.into_inner().and_then(|gz| gz.finish()).expect("tar.gz")
}

#[tokio::test]
async fn a_project_archive_through_the_original_path_runs_with_its_chosen_id() {
    let probe = Probe::default();
    let app = app_with(Behaviour::Honest, &probe).await;
    let chosen = Uuid::new_v4();
    let form = Form::new()
        .text("run_uuid", chosen.to_string())
        .text("tune", "local")
        .part("project", file(project_archive("hello/"), "hello.tar.gz"));
    let (status, body) = start(&app, "/api/bot/start", form).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"run_uuid": chosen})));
    let view = wait_for_status(&app, chosen, "completed").await;
    assert_eq!(view["detail"], "6 jobs: 5 succeeded, 1 failed");
    let message = app.orchestrator().config_store.get_agent_message(chosen, 2).await.expect("store").expect("kept");
    let config = AgentRunConfig::from_agent_message(&message).expect("_armada").expect("valid");
    assert!(config.has_requirements, "requirements.txt came in the archive");
    assert!(message.get("code").is_none(), "no python_code part, no code");
}

#[tokio::test]
async fn a_folder_upload_runs_like_an_archive() {
    let probe = Probe::default();
    let app = app_with(Behaviour::Honest, &probe).await;
    let mut form = Form::new();
    for (path, content) in [
        ("hello/config/config_template.json", TEMPLATE),
        ("hello/config/config_local.json", TUNE),
        ("hello/main.py", "print(1)\n"),
    ] {
        form = form.part("files", file(content, path));
    }
    let run_id = start_ok(&app, form).await;
    let view = wait_for_status(&app, run_id, "completed").await;
    assert_eq!(view["detail"], "6 jobs: 6 succeeded, 0 failed");
}

#[tokio::test]
async fn cancel_mid_run_stops_the_agents_and_cancels_the_open_jobs() {
    let probe = Probe::default();
    let app = app_with(Behaviour::HoldsUntilStopped, &probe).await;
    let run_id = start_ok(&app, small_form(2, 5)).await;
    let mut running = Value::Null;
    let both_busy = eventually(WITHIN, async || {
        running = view(&app, run_id).await;
        running["counts"]["Running"] == 2
    })
    .await;
    assert!(both_busy, "{running:#}");

    // The view of a running run.
    assert_eq!((running["status"].clone(), running["finished"].clone()), (json!("running"), Value::Null));
    assert_eq!(running["counts"], json!({"Queued": 3, "Running": 2}));
    assert_eq!((running["queue"]["ready"].clone(), running["queue"]["consumers"].clone()), (json!(3), json!(2)));
    for (index, agent) in running["agents"].as_array().expect("agents").iter().enumerate() {
        assert_eq!((agent["pod_index"].clone(), agent["phase"].clone()), (json!(index), json!("running")), "{agent}");
        assert_eq!(agent["jobs_taken"], 1);
        assert!(agent["current_job"].is_string() && agent["last_seen"].is_string(), "{agent}");
    }
    let (_, active) = app.get("/bot/runs").await;
    assert_eq!(
        (active["runs"][0]["run_uuid"].clone(), active["runs"][0]["status"].clone()),
        (json!(run_id), json!("running"))
    );
    let gauge = format!("armada_queue_depth{{run_id=\"{run_id}\"}} 3");
    assert!(eventually(WITHIN, async || app.metrics().await.contains(&gauge)).await, "{gauge} in /metrics");
    let (status, body) = app.delete(&format!("/api/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::CONFLICT, "an active run is not deleted: {body}");

    let asked = Instant::now();
    let (status, cancelled) = app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    let took = asked.elapsed();
    println!("cancel answered in {took:?}");
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(probe.exited(), 2, "both agents stopped before the cancel answered");
    assert!(took < std::time::Duration::from_secs(10), "cancel took {took:?}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["counts"], json!({"Cancelled": 5}));
    let phases: Vec<&Value> = cancelled["agents"].as_array().expect("agents").iter().map(|a| &a["phase"]).collect();
    assert_eq!(phases, [&json!("stopped"), &json!("stopped")], "{cancelled:#}");

    let orchestrator = app.orchestrator();
    assert!(queue_is_gone(&app, run_id).await);
    let jobs = jobs(&app, run_id).await;
    assert!(jobs.iter().all(|j| j.job_status == status::CANCELLED && j.job_detail.as_deref() == Some("run cancelled")));
    let run = orchestrator.backend.get_run(run_id).await.expect("backend").expect("run");
    assert_eq!(run.run_status, Some(RunStatus::Cancelled));
    assert_eq!(orchestrator.config_store.get_agent_message(run_id, 0).await.expect("store"), None);
    assert_eq!(app.get(&format!("/bot/runs/{run_id}/bundle")).await.0, StatusCode::NOT_FOUND);
    assert!(!app.metrics().await.contains(&format!("run_id=\"{run_id}\"")), "the run's gauges are gone");

    let (status, again) = app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    assert_eq!((status, again["status"].clone()), (StatusCode::OK, json!("cancelled")), "cancel is idempotent");
    assert_eq!(app.delete(&format!("/api/runs/{run_id}")).await.0, StatusCode::OK, "a cancelled run can be deleted");
    let ghost = Uuid::new_v4();
    assert_eq!(app.post(&format!("/bot/runs/{ghost}/cancel"), &json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/bot/runs/{ghost}")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn every_agent_dying_with_jobs_left_fails_the_run_with_their_reason() {
    let probe = Probe::default();
    let app = app_with(Behaviour::DiesAtStart, &probe).await;
    let run_id = start_ok(&app, small_form(2, 3)).await;
    let failed = wait_for_status(&app, run_id, "failed").await;
    let detail = failed["detail"].as_str().expect("detail");
    assert!(detail.starts_with("every agent ended with 3 of 3 jobs unfinished"), "{detail}");
    assert!(detail.contains(&format!("agent-0, agent-1: {DEATH}")), "{detail}");
    assert!(detail.ends_with("3 jobs: 0 succeeded, 3 failed"), "{detail}");
    let jobs = jobs(&app, run_id).await;
    assert_eq!(jobs.len(), 3);
    for job in &jobs {
        assert_eq!(job.job_status, status::FAILED);
        assert!(job.job_detail.as_deref().is_some_and(|d| d.contains(DEATH)), "{job:?}");
    }
    assert!(eventually(WITHIN, async || queue_is_gone(&app, run_id).await).await);
    let (status, body) = app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("already failed")), "{body}");
    // Forgotten by the launcher, the agents still say how they ended.
    let orchestrator = app.orchestrator();
    assert!(
        eventually(WITHIN, async || matches!(
            orchestrator.launcher.agents(run_id).await,
            Err(LaunchError::NotFound(_))
        ))
        .await
    );
    for agent in view(&app, run_id).await["agents"].as_array().expect("agents") {
        assert_eq!((agent["phase"].clone(), agent["detail"].clone()), (json!("failed"), json!(DEATH)), "{agent}");
    }
}
