//! Starts that fail halfway: a broker that will not publish, a launcher that will not launch, a
//! run id already taken. Each answers 503 (or 409) and leaves nothing of the run behind.

use std::sync::Arc;

use armada::infra::broker::memory::MemoryBroker;
use armada::infra::broker::{Broker, BrokerError, Consumer, QueueOptions, QueueStats};
use armada::infra::launcher::{AgentStatus, LaunchError, LaunchSpec, Launcher};
use async_trait::async_trait;
use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::support::TestApp;

/// The in-process broker, except that publishing finds it down.
struct BrokerDownOnPublish(MemoryBroker);

#[async_trait]
impl Broker for BrokerDownOnPublish {
    fn describe(&self) -> String {
        "a broker that fails to publish".into()
    }
    async fn check_connectivity(&self) -> Result<(), BrokerError> {
        Ok(())
    }
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), BrokerError> {
        self.0.declare(queue, options).await
    }
    async fn publish(&self, _: &str, _: &[Bytes]) -> Result<(), BrokerError> {
        Err(BrokerError::Unavailable("connection reset while publishing".into()))
    }
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        self.0.consume(queue, prefetch).await
    }
    async fn stats(&self, queue: &str) -> Result<QueueStats, BrokerError> {
        self.0.stats(queue).await
    }
    async fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        self.0.purge(queue).await
    }
    async fn delete(&self, queue: &str) -> Result<(), BrokerError> {
        self.0.delete(queue).await
    }
}

/// A platform with no room for agents.
pub struct NoCapacity;

#[async_trait]
impl Launcher for NoCapacity {
    fn describe(&self) -> String {
        "a launcher without capacity".into()
    }
    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        Ok(())
    }
    async fn launch(&self, _: &LaunchSpec) -> Result<(), LaunchError> {
        Err(LaunchError::Unavailable("no node has room for the agents".into()))
    }
    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        Err(LaunchError::NotFound(format!("run {run_id} unknown")))
    }
    async fn stop(&self, _: Uuid) -> Result<(), LaunchError> {
        Ok(())
    }
    async fn forget(&self, _: Uuid) -> Result<(), LaunchError> {
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), LaunchError> {
        Ok(())
    }
}

fn form_with_id(run_id: Uuid) -> Form {
    dashboard_form().text("run_uuid", run_id.to_string())
}

async fn refused_start(app: &TestApp, run_id: Uuid) -> String {
    let (status, body) = start(app, "/bot/start", form_with_id(run_id)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    body["detail"].as_str().expect("detail").to_owned()
}

#[tokio::test]
async fn a_start_whose_broker_fails_to_publish_leaves_nothing_behind() {
    let app = TestApp::builder().broker(Arc::new(BrokerDownOnPublish(MemoryBroker::new()))).spawn().await;
    let run_id = Uuid::new_v4();
    let detail = refused_start(&app, run_id).await;
    assert!(detail.starts_with("could not start the run: publishing the jobs failed: broker unavailable"), "{detail}");
    assert!(detail.ends_with("nothing of the run was kept"), "{detail}");
    assert_nothing_left(&app, run_id, 3).await;
}

#[tokio::test]
async fn a_start_whose_launcher_refuses_leaves_nothing_behind() {
    let app = TestApp::builder().launcher(Arc::new(NoCapacity)).spawn().await;
    let run_id = Uuid::new_v4();
    let detail = refused_start(&app, run_id).await;
    assert!(detail.contains("launching the agents failed: launcher unavailable: no node has room"), "{detail}");
    assert_nothing_left(&app, run_id, 3).await;
    // The queue had been declared and filled: it is gone with everything else.
    let (status, runs) = app.get("/api/runs").await;
    assert_eq!((status, runs["total"].clone()), (StatusCode::OK, json!(0)));
}

#[tokio::test]
async fn a_run_uuid_already_used_is_refused_and_the_existing_run_is_kept() {
    let app = TestApp::builder().spawn().await;
    let taken = Uuid::new_v4();
    let (status, _) = app.post("/api/runs", &json!({"run_uuid": taken, "run_datetime": "2026-02-24T10:00:00"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = start(&app, "/bot/start", form_with_id(taken)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("already used")), "{body}");
    assert_eq!(app.get(&format!("/api/runs/{taken}")).await.0, StatusCode::OK, "not ours to undo");
    assert!(jobs(&app, taken).await.is_empty());
    assert!(queue_is_gone(&app, taken).await);
    assert_eq!(app.orchestrator().config_store.get_agent_message(taken, 0).await.expect("store"), None);
}

#[tokio::test]
async fn a_start_whose_queue_already_exists_is_refused_and_that_queue_is_kept() {
    let app = TestApp::builder().spawn().await;
    let run_id = Uuid::new_v4();
    let broker = app.orchestrator().broker.clone();
    let queue = armada::infra::broker::job_queue_name(run_id);
    broker.declare(&queue, &QueueOptions::default()).await.expect("declare");
    broker.publish(&queue, &[Bytes::from_static(b"{\"job_uuid\": \"stale\"}")]).await.expect("publish");
    let (status, body) = start(&app, "/bot/start", form_with_id(run_id)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.contains(&format!("already has a queue named {queue} (ready messages: 1, consumers: 0)")),
        "{detail}"
    );
    assert_eq!(app.get(&format!("/api/runs/{run_id}")).await.0, StatusCode::NOT_FOUND);
    assert!(jobs(&app, run_id).await.is_empty());
    assert_eq!(app.orchestrator().config_store.get_agent_message(run_id, 0).await.expect("store"), None);
    assert_eq!(broker.stats(&queue).await.expect("kept").ready, 1, "nothing published to it or taken from it");
}
