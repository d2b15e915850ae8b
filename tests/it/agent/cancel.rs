//! Cancelling a run mid-job through the orchestrator, with real agents in every configuration
//! of engines: the agents and their workers stop within the stop grace, every open job is
//! `Cancelled`, and the run's queue, config keys and bundle are gone.

use std::time::{Duration, Instant};

use armada::infra::broker::{BrokerError, job_queue_name};
use armada::model::{PageRequest, RunStatus, status};
use serde_json::{Value, json};

use super::failures::Behaviours;
use crate::support::agents::{AgentHarness, Engines, RUN_LIMIT};
use crate::support::engines::on_every_engine;
use crate::support::eventually;

on_every_engine!(cancel_mid_run_stops_the_agents_and_their_workers_and_cancels_every_open_job);

async fn cancel_mid_run_stops_the_agents_and_their_workers_and_cancels_every_open_job(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    // Every job blocks (each job's first run does): both agents are busy when the cancel comes.
    let project = Behaviours::new(&["block_once"; 5], 2, json!({"max_attempts": 1}));
    let run_id = harness.launch_run(project.dir()).await;
    let view = async || harness.app.get(&format!("/bot/runs/{run_id}")).await.1;
    let busy = eventually(RUN_LIMIT, async || view().await["counts"]["Running"] == 2).await;
    assert!(busy, "both agents took a job: {}", view().await);
    let page = PageRequest::new(Some(1), Some(100), 100).unwrap();
    let jobs = harness.app.state.store().list_jobs(Some(run_id), page).await.unwrap().items;
    let mut workers = Vec::new();
    for job in jobs.iter().filter(|job| job.job_status == status::RUNNING) {
        workers.push(project.blocked_worker(job.job_uuid).await);
    }
    assert_eq!(workers.len(), 2, "{jobs:?}");

    let asked = Instant::now();
    let (code, cancelled) = harness.app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    let took = asked.elapsed();
    assert_eq!(code, 200, "{cancelled}");
    // The launchers' 2 s stop grace, then forcing; the rest is a busy machine.
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["counts"], json!({"Cancelled": 5}), "queued and running jobs closed: {cancelled}");
    let phases: Vec<&Value> = cancelled["agents"].as_array().expect("agents").iter().map(|a| &a["phase"]).collect();
    assert_eq!(phases, [&json!("stopped"), &json!("stopped")], "stopped by the time cancel answered: {cancelled:#}");

    let jobs = harness.app.state.store().list_jobs(Some(run_id), page).await.unwrap().items;
    assert_eq!(jobs.len(), 5);
    for job in &jobs {
        assert_eq!((job.job_status.as_str(), job.job_detail.as_deref()), (status::CANCELLED, Some("run cancelled")));
    }
    let run = harness.backend.get_run(run_id).await.unwrap().expect("the run row stays");
    assert_eq!(run.run_status, Some(RunStatus::Cancelled));
    let queue = harness.broker.stats(&job_queue_name(run_id)).await;
    assert!(matches!(queue, Err(BrokerError::NotFound(_))), "the queue is deleted: {queue:?}");
    for index in 0..2 {
        assert_eq!(harness.config_store.get_agent_message(run_id, index).await.unwrap(), None, "message {index}");
    }
    assert_eq!(harness.config_store.get_bundle(run_id).await.unwrap(), None, "the bundle is deleted");
    for pid in workers {
        let gone = eventually(Duration::from_secs(20), async || !crate::worker::running(pid)).await;
        assert!(gone, "the worker {pid} of a cancelled run's agent was stopped");
    }
}
