//! How the orchestrator is wired: with the backend in another process (HTTP and its live stream),
//! its health dependencies and API document, configuration errors, and the server's shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use armada::app::AppState;
use armada::model::{PageRequest, RunStatus, status};
use armada::roles::Role;
use armada::settings::{Settings, SettingsError, Vars};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::agents::{Behaviour, Probe, test_agents};
use super::failures::NoCapacity;
use super::*;
use crate::support::servers;
use crate::support::{TestApp, eventually};

const TOKEN: &str = "orchestrator-s3cret";

async fn remote_pair(launcher: Option<Arc<NoCapacity>>, probe: &Probe) -> (TestApp, TestApp) {
    let backend = TestApp::builder().roles([Role::Backend]).token(Some(TOKEN)).spawn().await;
    let mut builder = TestApp::builder()
        .roles([Role::Orchestrator])
        .token(Some(TOKEN))
        .var("BACKEND_URL", backend.base_url.clone())
        .agent_entry(test_agents(Behaviour::Honest, probe.clone()));
    if let Some(launcher) = launcher {
        builder = builder.launcher(launcher);
    }
    (backend, builder.spawn().await)
}

#[tokio::test]
async fn with_the_backend_in_another_process_a_run_is_recorded_and_watched_over_http() {
    let probe = Probe::default();
    let (backend, orchestrator) = remote_pair(None, &probe).await;
    let anonymous = orchestrator.client.post(orchestrator.url("/bot/start")).multipart(dashboard_form());
    assert_eq!(anonymous.send().await.expect("sent").status(), StatusCode::UNAUTHORIZED, "the token guards /bot");
    let run_id = start_ok(&orchestrator, dashboard_form()).await;
    let view = wait_for_status(&orchestrator, run_id, "completed").await;
    assert_eq!(view["detail"], "6 jobs: 5 succeeded, 1 failed");
    let (status, run) = backend.get(&format!("/api/runs/{run_id}")).await;
    assert_eq!((status, run["run_status"].clone()), (StatusCode::OK, json!("completed")), "recorded in the backend");
    let (_, jobs) = backend.get(&format!("/api/jobs/?run_uuid={run_id}&page_size=100")).await;
    assert_eq!(jobs["total"], 6);
    let (_, health) = orchestrator.get("/health").await;
    let names: Vec<&str> =
        health["dependencies"].as_array().expect("dependencies").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["database", "config store", "broker", "launcher", "backend"]);
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn with_the_backend_in_another_process_a_failed_start_is_undone_over_http() {
    let probe = Probe::default();
    let (backend, orchestrator) = remote_pair(Some(Arc::new(NoCapacity)), &probe).await;
    let run_id = Uuid::new_v4();
    let (status, body) =
        start(&orchestrator, "/bot/start", dashboard_form().text("run_uuid", run_id.to_string())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.ends_with("nothing of the run was kept")), "{body}");
    assert_eq!(backend.get(&format!("/api/runs/{run_id}")).await.0, StatusCode::NOT_FOUND);
    let page = PageRequest::new(Some(1), Some(100), 10).expect("page");
    assert_eq!(backend.state.store().list_jobs(Some(run_id), page).await.expect("jobs").total, 0);
    assert!(queue_is_gone(&orchestrator, run_id).await);
}

#[tokio::test]
async fn health_and_the_api_document_include_the_orchestrator() {
    let app = TestApp::builder().roles([Role::Backend, Role::Orchestrator]).spawn().await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["roles"][1], json!({"name": "orchestrator", "state": "serving"}));
    let names: Vec<&str> =
        health["dependencies"].as_array().expect("dependencies").iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(names, ["database", "config store", "broker", "launcher"], "the backend is in-process: no check");
    let (_, spec) = app.get("/openapi.json").await;
    for (path, method) in [
        ("/bot/start", "post"),
        ("/bot/runs", "get"),
        ("/bot/runs/{run_uuid}", "get"),
        ("/bot/runs/{run_uuid}/cancel", "post"),
        ("/bot/runs/{run_uuid}/bundle", "get"),
    ] {
        assert!(spec["paths"][path][method].is_object(), "{method} {path} missing from /openapi.json");
    }
    assert!(spec["paths"]["/bot/start"]["post"]["requestBody"]["content"]["multipart/form-data"].is_object());
}

#[tokio::test]
async fn an_orchestrator_without_a_backend_is_a_configuration_error() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite:{}", dir.path().join("a.db").display());
    let listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let alone = Settings::from_vars(Vars::from_pairs([("ARMADA_DATABASE_URL", db)]), vec![Role::Orchestrator], listen)
        .expect("settings");
    let error = AppState::build(alone).await.err().expect("no backend to record runs");
    assert!(format!("{error:#}").contains("BACKEND_URL"), "{error:#}");
}

#[tokio::test]
async fn platform_local_on_the_embedded_config_store_and_broker_is_a_settings_error_naming_what_to_set() {
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite:{}", dir.path().join("a.db").display());
    let listen = Some(SocketAddr::from(([127, 0, 0, 1], 8080)));
    let local = Vars::from_pairs([("ARMADA_DATABASE_URL", db), ("PLATFORM", "local".to_owned())]);
    let error = AppState::build(Settings::from_vars(local, Vec::new(), listen).expect("settings"))
        .await
        .err()
        .expect("agent processes cannot reach in-process engines");
    let text = format!("{error:#}");
    assert!(text.contains("PLATFORM: local starts agents as separate `armada agent` processes"), "{text}");
    assert!(text.contains("set REDIS_HOST/REDIS_PORT (or REDIS_URL) and RABBITMQ_URL"), "{text}");
    assert!(error.chain().any(|cause| cause.is::<SettingsError>()), "a settings error (exit code 2): {error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_local_on_redis_and_rabbitmq_starts_agent_processes_of_this_binary() {
    let (Some(redis), Some(rabbitmq)) = (servers::redis_url(), servers::rabbitmq_url()) else {
        servers::loud("SKIPPED: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)");
        return;
    };
    let app =
        TestApp::builder().var("PLATFORM", "local").var("REDIS_URL", redis).var("RABBITMQ_URL", rabbitmq).spawn().await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    let launcher = health["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .find(|d| d["name"] == "launcher")
        .expect("the launcher is a dependency")
        .clone();
    assert_eq!(launcher["status"], "up", "{health}");
    let this_binary = std::env::current_exe().expect("current exe");
    assert_eq!(launcher["engine"], format!("child agent processes ({})", this_binary.display()), "{health}");
}

#[tokio::test]
async fn shutdown_stops_every_agent_and_ends_the_active_runs_as_failed() {
    let probe = Probe::default();
    let mut app =
        TestApp::builder().agent_entry(test_agents(Behaviour::HoldsUntilStopped, probe.clone())).spawn().await;
    let run_id = start_ok(&app, small_form(2, 4)).await;
    assert!(eventually(WITHIN, async || view(&app, run_id).await["counts"]["Running"] == 2).await);
    app.shut_down().await.expect("served until the signal");
    assert_eq!(probe.exited(), 2, "no agent is left behind");
    let run = app.orchestrator().backend.get_run(run_id).await.expect("backend").expect("run");
    assert_eq!(run.run_status, Some(RunStatus::Failed));
    assert!(run.run_detail.is_some_and(|d| d.contains("the server stopped")));
    assert!(jobs(&app, run_id).await.iter().all(|j| j.job_status == status::FAILED));
    assert!(queue_is_gone(&app, run_id).await);
    assert_eq!(app.orchestrator().config_store.get_bundle(run_id).await.expect("store"), None);
    assert!(app.orchestrator().active_runs_view().runs.is_empty());
}
