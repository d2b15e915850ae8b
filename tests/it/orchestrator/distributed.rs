//! The same runs on the distributed engines, chosen from the settings as in production: Redis
//! for the config store, RabbitMQ for the queue (skipped, loudly, where they are not installed).

use std::time::Instant;

use reqwest::StatusCode;
use serde_json::json;

use super::agents::{Behaviour, Probe, test_agents};
use super::*;
use crate::support::servers::{loud, rabbitmq_url, redis_url};
use crate::support::{TestApp, eventually};

async fn app_on_redis_and_rabbitmq(behaviour: Behaviour, probe: &Probe) -> Option<TestApp> {
    let (Some(redis), Some(amqp)) = (redis_url(), rabbitmq_url()) else {
        loud("SKIPPED orchestrator on Redis and RabbitMQ: see the SKIPPED lines above for how to enable them");
        return None;
    };
    let app = TestApp::builder()
        .var("REDIS_URL", redis)
        .var("RABBITMQ_URL", amqp)
        .agent_entry(test_agents(behaviour, probe.clone()))
        .spawn()
        .await;
    let orchestrator = app.orchestrator();
    assert!(orchestrator.config_store.describe().contains("redis"), "{}", orchestrator.config_store.describe());
    assert!(orchestrator.broker.describe().contains("amqp"), "{}", orchestrator.broker.describe());
    Some(app)
}

#[tokio::test]
async fn a_run_on_redis_and_rabbitmq_completes_and_its_queue_goes() {
    let probe = Probe::default();
    let Some(app) = app_on_redis_and_rabbitmq(Behaviour::Honest, &probe).await else { return };
    let run_id = start_ok(&app, dashboard_form()).await;
    let view = wait_for_status(&app, run_id, "completed").await;
    assert_eq!(view["detail"], "6 jobs: 5 succeeded, 1 failed");
    assert_all_final(&jobs(&app, run_id).await);
    let message = app.orchestrator().config_store.get_agent_message(run_id, 0).await.expect("redis").expect("kept");
    assert_eq!(message["config_proxy"]["proxy_location"], "US");
    assert!(eventually(WITHIN, async || queue_is_gone(&app, run_id).await).await, "queue deleted from RabbitMQ");
    assert!(eventually(WITHIN, async || probe.exited() == 3).await, "agents' consumers ended");
}

#[tokio::test]
async fn a_run_on_redis_and_rabbitmq_cancels_cleanly() {
    let probe = Probe::default();
    let Some(app) = app_on_redis_and_rabbitmq(Behaviour::HoldsUntilStopped, &probe).await else { return };
    let run_id = start_ok(&app, small_form(2, 4)).await;
    assert!(eventually(WITHIN, async || view(&app, run_id).await["counts"]["Running"] == 2).await);
    let asked = Instant::now();
    let (status, cancelled) = app.post(&format!("/bot/runs/{run_id}/cancel"), &json!({})).await;
    println!("cancel on RabbitMQ answered in {:?}", asked.elapsed());
    assert_eq!((status, cancelled["counts"].clone()), (StatusCode::OK, json!({"Cancelled": 4})), "{cancelled}");
    assert_eq!(probe.exited(), 2);
    assert!(queue_is_gone(&app, run_id).await);
    assert_eq!(app.orchestrator().config_store.get_agent_message(run_id, 1).await.expect("redis"), None);
}
