//! Redelivered jobs (the rule in `agent::jobs::redelivery`): a job still running on a live agent
//! is held, never run twice; a job whose agent is gone is run. On the in-process broker with a
//! hand-made redelivery, and for real on a RabbitMQ whose consumer timeout fires mid-job.
//!
//! The hand-made cases are embedded only: they read "held by the agent" from the queue's
//! unacknowledged count, which RabbitMQ does not report (`QueueStats::unacked` is `None`), and
//! make redeliveries by hand, which RabbitMQ makes by itself in the last test.

use std::time::Duration;

use armada::infra::broker::amqp::AmqpBroker;
use armada::infra::broker::{Broker, BrokerError, QueueStats, job_queue_name};
use armada::infra::config_store::AgentHeartbeat;
use armada::infra::db::{JobUpdate, Mutation};
use armada::infra::launcher::LaunchSpec;
use armada::model::{Timestamp, status};
use serde_json::json;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::LiveMessages;
use super::failures::{Behaviours, success_transitions};
use crate::support::agents::{AgentHarness, Engines, RUN_LIMIT};
use crate::support::servers::{self, RabbitConfig, RabbitServer, loud};
use crate::support::{TestApp, eventually, spawn_armada};

/// What `agent` would have recorded for `job`: `Running` (attempt 1), or its outcome.
fn recorded_by(agent: &str, job: Uuid, job_status: &str) -> Mutation {
    let finished = status::is_final(job_status).then(Timestamp::now);
    Mutation::UpdateJob(JobUpdate {
        job_uuid: job,
        job_status: Some(job_status.into()),
        job_associated_agent: Some(agent.into()),
        job_attempts: Some(1),
        job_detail: None,
        job_finished: finished,
    })
}

/// Stages `modes`, takes every job off the queue as agents that recorded them `Running` under
/// `runners[i]`, and hands them back unacknowledged: each comes back marked redelivered.
async fn redelivered(
    harness: &AgentHarness,
    project: &Behaviours,
    runners: &[&str],
) -> armada::agent::stage::StagedRun {
    let staged = harness.stage(project.dir()).await;
    let mut consumer = harness.broker.consume(&job_queue_name(staged.run_id), 0).await.unwrap();
    let mut held = Vec::new();
    for ((job, _), runner) in staged.jobs.iter().zip(runners) {
        let delivery = consumer.next().await.unwrap().unwrap();
        assert!(String::from_utf8_lossy(&delivery.body).contains(&job.to_string()), "published in order");
        assert_eq!(harness.backend.apply(vec![recorded_by(runner, *job, status::RUNNING)]).await.unwrap(), [Ok(true)]);
        held.push(delivery);
    }
    drop(held);
    drop(consumer);
    staged
}

/// Renews `agent`'s heartbeat naming `job` until aborted, as a live agent running it does.
fn beating(harness: &AgentHarness, run_id: Uuid, agent: &'static str, job: Option<Uuid>) -> JoinHandle<()> {
    let store = harness.config_store.clone();
    tokio::spawn(async move {
        loop {
            let beat = AgentHeartbeat { job };
            store.put_heartbeat(run_id, agent, &beat, Duration::from_secs(2)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
}

/// Waits until an agent holds the one delivery of the queue (delivered, not acknowledged).
async fn until_held(harness: &AgentHarness, run_id: Uuid) {
    let queue = job_queue_name(run_id);
    let held = |s: &QueueStats| s.ready == 0 && s.unacked == Some(1);
    let reached = eventually(RUN_LIMIT, async || harness.broker.stats(&queue).await.is_ok_and(|s| held(&s))).await;
    assert!(reached, "the redelivery was never taken: {:?}", harness.broker.stats(&queue).await);
}

async fn event_texts(harness: &AgentHarness, job: Uuid) -> Vec<String> {
    harness.events(job).await.into_iter().map(|e| e.event_content).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_job_whose_agent_is_gone_is_run() {
    let harness = AgentHarness::new(Engines::Embedded).await;
    let project = Behaviours::new(&["ok", "ok"], 1, json!({"max_attempts": 3}));
    // agent-7 never beat (killed long ago); agent-8 beats but runs nothing: a new instance.
    let staged = redelivered(&harness, &project, &["agent-7", "agent-8"]).await;
    let restarted = beating(&harness, staged.run_id, "agent-8", None);
    harness.launcher.launch(&LaunchSpec::new(staged.run_id, 1)).await.unwrap();
    let summary = harness.finish(&staged).await;
    restarted.abort();
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!(summary.count(status::SUCCESS), 2, "{:?}", summary.counts);
    for (job, _) in &staged.jobs {
        let record = harness.job(*job).await;
        assert_eq!((record.job_associated_agent.as_str(), record.job_attempts), ("agent-0", Some(2)), "{record:?}");
        assert_eq!(event_texts(&harness, *job).await, ["started (ok)", "done (ok)"], "run here, once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_job_still_running_elsewhere_is_held_then_skipped_once_its_outcome_is_recorded() {
    let harness = AgentHarness::new(Engines::Embedded).await;
    let project = Behaviours::new(&["ok"], 1, json!({}));
    let staged = redelivered(&harness, &project, &["agent-7"]).await;
    let (job, _) = staged.jobs[0];
    let alive = beating(&harness, staged.run_id, "agent-7", Some(job));
    harness.launcher.launch(&LaunchSpec::new(staged.run_id, 1)).await.unwrap();

    until_held(&harness, staged.run_id).await;
    // Several looks later, still held: not run, not acknowledged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let record = harness.job(job).await;
    assert_eq!((record.job_status.as_str(), record.job_associated_agent.as_str()), (status::RUNNING, "agent-7"));
    assert!(event_texts(&harness, job).await.is_empty(), "held, not run");
    let stats = harness.broker.stats(&job_queue_name(staged.run_id)).await.unwrap();
    assert_eq!((stats.ready, stats.unacked), (0, Some(1)), "held by the agent");

    // agent-7 finishes and records its outcome: the held copy is acknowledged, not run.
    assert_eq!(harness.backend.apply(vec![recorded_by("agent-7", job, status::SUCCESS)]).await.unwrap(), [Ok(true)]);
    let summary = harness.finish(&staged).await;
    alive.abort();
    harness.assert_agents_succeeded(staged.run_id).await;
    assert_eq!(summary.count(status::SUCCESS), 1);
    let record = harness.job(job).await;
    assert_eq!((record.job_associated_agent.as_str(), record.job_attempts), ("agent-7", Some(1)));
    assert!(event_texts(&harness, job).await.is_empty(), "never run here");
    assert!(!project.marker(job, "runs").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_job_is_run_once_the_agent_running_it_stops_beating() {
    let harness = AgentHarness::new(Engines::Embedded).await;
    let project = Behaviours::new(&["ok"], 1, json!({"max_attempts": 3}));
    let staged = redelivered(&harness, &project, &["agent-7"]).await;
    let (job, _) = staged.jobs[0];
    let alive = beating(&harness, staged.run_id, "agent-7", Some(job));
    harness.launcher.launch(&LaunchSpec::new(staged.run_id, 1)).await.unwrap();
    until_held(&harness, staged.run_id).await;
    assert!(event_texts(&harness, job).await.is_empty(), "held, not run");

    // agent-7 dies: its heartbeat lapses (2 s) and the held job is run here.
    alive.abort();
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;
    assert_eq!(summary.count(status::SUCCESS), 1);
    let record = harness.job(job).await;
    assert_eq!((record.job_associated_agent.as_str(), record.job_attempts), ("agent-0", Some(2)), "{record:?}");
    assert_eq!(event_texts(&harness, job).await, ["started (ok)", "done (ok)"]);
}

/// The case, for real: RabbitMQ closes the channel of an agent whose job outlives the
/// consumer timeout (2 s on this node; 3.10 applies only the node's setting) and redelivers the
/// job to the other agent. The job is run once, recorded `Success` once, and the run completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_outlives_rabbitmqs_consumer_timeout_runs_once_and_the_run_completes() {
    if servers::rabbitmq_url().is_none() {
        loud("SKIPPED: agent::redelivery on RabbitMQ: needs rabbitmq-server (scripts/install-test-deps.sh)");
        return;
    }
    let config = RabbitConfig { consumer_timeout: Some(Duration::from_secs(2)) };
    let rabbitmq = tokio::task::spawn_blocking(move || RabbitServer::start_with(&config))
        .await
        .unwrap()
        .expect("RabbitMQ with a 2 s consumer timeout");
    let broker = AmqpBroker::new(&rabbitmq.url());
    assert!(eventually(Duration::from_secs(30), async || broker.check_connectivity().await.is_ok()).await);

    let work = tempfile::tempdir().unwrap();
    let app = TestApp::builder()
        .var("ARMADA_WORK_DIR", work.path().display().to_string())
        .var("RABBITMQ_URL", rabbitmq.url())
        .spawn()
        .await;
    let live = LiveMessages::connect(&app.ws_url).await;
    // 8 s for the slow job: 4 timeouts. Two agents, so the redelivery goes to the other one.
    let project = Behaviours::new(&["slow", "ok", "ok"], 2, json!({"max_attempts": 2}));
    let cwd = tempfile::tempdir().unwrap();
    let project_dir = project.dir().display().to_string();
    let launch = ["launch", project_dir.as_str(), "--follow", "--server", app.base_url.as_str()];
    let output = spawn_armada(cwd.path(), &launch, &[]).finish(RUN_LIMIT).await;
    let shown = format!("exit {:?}\n{}{}", output.code, output.stdout, output.stderr);
    assert_eq!(output.code, Some(0), "{shown}");
    assert!(output.stdout.contains("\n3 jobs: 3 succeeded, 0 failed\n"), "{shown}");

    let store = app.state.store();
    let page = armada::model::PageRequest::new(Some(1), Some(100), 10).unwrap();
    let mut jobs = store.list_jobs(None, page).await.unwrap().items;
    jobs.sort_by_key(|job| job.job_index);
    let slow = jobs.first().expect("the slow job").clone();
    let run_id = slow.run_uuid;
    assert_eq!((slow.job_status.as_str(), slow.job_attempts), (status::SUCCESS, Some(1)), "{slow:?}");
    let runs = std::fs::read_to_string(project.marker(slow.job_uuid, "runs")).unwrap_or_default();
    assert_eq!(runs.lines().count(), 1, "the worker ran the slow job once: {runs:?}");
    let events_page = armada::model::PageRequest::new(Some(1), Some(100), 100).unwrap();
    let events = store.list_events(slow.job_uuid, events_page).await.unwrap().items;
    let mut texts: Vec<String> = events.into_iter().map(|e| e.event_content).collect();
    texts.reverse();
    assert_eq!(texts, ["started (slow)", "done (slow)"]);
    let once = eventually(Duration::from_secs(10), async || success_transitions(&live, slow.job_uuid) == 1).await;
    assert!(once, "Success transitions of the slow job: {}", success_transitions(&live, slow.job_uuid));

    let (status, view) = app.get(&format!("/bot/runs/{run_id}")).await;
    assert_eq!((status.as_u16(), view["status"].as_str()), (200, Some("completed")), "{view}");
    let gone = async || matches!(broker.stats(&job_queue_name(run_id)).await, Err(BrokerError::NotFound(_)));
    assert!(eventually(Duration::from_secs(30), gone).await, "the run's queue was deleted");
    let log = rabbitmq.log();
    assert!(log.contains("timed out waiting for delivery acknowledgement"), "the timeout never fired:\n{log}");
}
