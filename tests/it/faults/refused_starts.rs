//! Starts the real broker refuses: halfway through (publishing rejected), and before anything
//! is stored (a queue already named after the run).

use reqwest::StatusCode;
use serde_json::json;

use super::*;
use crate::support::servers::RabbitServer;

/// A start that fails halfway on the real broker: a policy on the test's own RabbitMQ limits
/// the run's queue to one message and rejects the rest, so publishing fails after the run, its
/// config keys, its jobs and its queue were made. The answer is a 500 with the broker's
/// reason, and none of it is left: no run or job row, no queue, no config key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_publishing_the_broker_refuses_leaves_no_queue_keys_or_rows() {
    let Some((redis, _)) = shared_servers() else { return };
    let rabbit = tokio::task::spawn_blocking(RabbitServer::start).await.expect("join").expect("dedicated RabbitMQ");
    let local = LocalServe::start_on(&redis, &rabbit.url()).await;
    let shape = Shape { agents: 2, jobs: 4, sleep_secs: 0.1, hold_secs: 0.1 };
    let refused = FaultRun::prepare(&shape);
    let policy = r#"{"max-length": 1, "overflow": "reject-publish"}"#;
    let pattern = format!("^{}$", refused.run_id);
    rabbit
        .ctl(&["set_policy", "--apply-to", "queues", "one-message", &pattern, policy])
        .expect("rabbitmqctl set_policy");

    let (status, body, took) = start(&local, &refused).await;
    println!("a start whose messages RabbitMQ rejects answered {status} in {took:?}: {body}");
    let detail = body["detail"].as_str().expect("detail");
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "a refusal, not an outage: {body}");
    assert!(detail.starts_with("could not start the run: publishing the jobs failed: RabbitMQ at "), "{detail}");
    let reason = format!("refused 3 of 4 messages for queue {} (a negative publisher confirm)", refused.run_id);
    assert!(detail.contains(&reason), "the broker's reason: {detail}");
    assert!(detail.ends_with("; nothing of the run was kept"), "{detail}");
    assert_refused_run_left_nothing(&local, &rabbit.url(), refused.run_id).await;
    let queues = rabbit.ctl(&["-q", "list_queues", "name"]).expect("rabbitmqctl list_queues");
    assert!(!queues.contains(&refused.run_id.to_string()), "{queues}");
    assert_eq!(redis_keys(&redis, refused.run_id).await, Vec::<String>::new(), "no config key of the run");

    // The refusal broke nothing: the next run on the same server and broker completes.
    let run = FaultRun::launch(&local, &Shape { agents: 1, jobs: 2, sleep_secs: 0.1, hold_secs: 0.1 }).await;
    let view = ended(&local, &run).await;
    assert_each_job_succeeded_once(&local, &run, &view).await;
    drop(local);
    drop(rabbit);
}

/// A queue already named after the run id on the real broker — left by an earlier start with
/// this id, or declared by another tool, here with other arguments and a stale job message in
/// it — is not taken for the run's own: the start is refused (409) naming the queue before
/// anything is stored, and that queue is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_whose_queue_already_exists_is_refused_and_leaves_that_queue_alone() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::{AMQPValue, FieldTable};
    let Some((redis, rabbitmq)) = shared_servers() else { return };
    let local = LocalServe::start_on(&redis, &rabbitmq).await;
    let refused = FaultRun::prepare(&Shape { agents: 2, jobs: 4, sleep_secs: 0.1, hold_secs: 0.1 });
    let queue = job_queue_name(refused.run_id);
    let connection = lapin::Connection::connect(&rabbitmq, lapin::ConnectionProperties::default()).await.expect("AMQP");
    let channel = connection.create_channel().await.expect("channel");
    let mut arguments = FieldTable::default();
    arguments.insert("x-max-length".into(), AMQPValue::LongInt(10));
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), arguments).await.expect("declare");
    let stale = json!({"job_uuid": Uuid::new_v4(), "run_id": refused.run_id});
    broker(&rabbitmq).publish(&queue, &[stale.to_string().into()]).await.expect("a stale job message");

    let (status, body, _) = start(&local, &refused).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(detail.starts_with(&format!("run_uuid {} cannot be used: the broker", refused.run_id)), "{detail}");
    assert!(
        detail.contains(&format!("already has a queue named {queue} (ready messages: 1, consumers: 0)")),
        "{detail}"
    );
    assert_eq!(get_json(&local, &format!("/api/runs/{}", refused.run_id)).await.0, StatusCode::NOT_FOUND);
    let (_, page) = get_json(&local, &format!("/api/jobs?run_uuid={}", refused.run_id)).await;
    assert_eq!(page["total"], 0, "{page}");
    assert_eq!(redis_keys(&redis, refused.run_id).await, Vec::<String>::new(), "no config key of the run");
    let kept = broker(&rabbitmq).stats(&queue).await.expect("the queue is still there");
    assert_eq!(kept.ready, 1, "nothing published to it, nothing taken from it");
    broker(&rabbitmq).delete(&queue).await.expect("delete the queue");
    let _ = connection.close(200, "done".into()).await;
}
