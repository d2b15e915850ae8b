use std::collections::HashSet;
use std::time::Instant;

use uuid::Uuid;

use super::*;
use crate::infra::broker::job_queue_name;
use crate::infra::testing::{self, RabbitConfig, RabbitServer};

/// A broker on `url`, once the node answers: one that has just opened its port may still be
/// booting.
async fn usable(url: &str) -> AmqpBroker {
    let broker = AmqpBroker::new(url);
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = broker.check_connectivity().await {
        assert!(Instant::now() < deadline, "RabbitMQ at {url} not usable: {e}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    broker
}

async fn shared_broker() -> Option<Arc<dyn Broker>> {
    let url = tokio::task::spawn_blocking(testing::rabbitmq_url).await.expect("start RabbitMQ")?;
    Some(Arc::new(usable(&url).await) as Arc<dyn Broker>)
}

crate::infra::broker::conformance::broker_suite!(amqp_broker, shared_broker());

#[test]
fn the_delivery_timeout_is_declared_in_whole_milliseconds_within_bounds() {
    let timeout = |options: QueueOptions| queue_arguments(&options).inner().get(CONSUMER_TIMEOUT_ARGUMENT).cloned();
    assert_eq!(timeout(QueueOptions::default()), None);
    let of = |d: Duration| QueueOptions { delivery_timeout: Some(d) };
    assert_eq!(timeout(of(Duration::from_secs(2_580))), Some(AMQPValue::LongLongInt(2_580_000)));
    assert_eq!(timeout(of(Duration::from_micros(1_500))), Some(AMQPValue::LongLongInt(1)));
    assert_eq!(timeout(of(Duration::ZERO)), Some(AMQPValue::LongLongInt(1)), "0 would mean no timeout on some brokers");
    let century = Duration::from_secs(100 * 365 * 24 * 3_600);
    assert_eq!(timeout(of(century)), Some(AMQPValue::LongLongInt(i64::from(i32::MAX))));
}

#[test]
fn describe_never_shows_credentials() {
    assert_eq!(redact_url("amqp://user:s3cret@rabbit:5672/%2f"), "amqp://rabbit:5672/%2f");
    assert_eq!(redact_url("amqps://rabbit"), "amqps://rabbit");
    assert!(!AmqpBroker::new("amqp://u:s3cret@h:1/v").describe().contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_rabbitmq_is_unavailable_promptly() {
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", testing::free_port());
    let broker = AmqpBroker::with_timeout(&url, Duration::from_secs(1));
    let started = Instant::now();
    let err = broker.declare(&job_queue_name(Uuid::new_v4()), &QueueOptions::default()).await.unwrap_err();
    assert!(
        matches!(&err, BrokerError::Unavailable(m) if m.contains("127.0.0.1") && !m.contains("guest:guest")),
        "{err:?}"
    );
    assert!(broker.check_connectivity().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
}

/// Durable queue + persistent messages + a consumer that reconnects: a broker restart in the
/// middle of a run loses no job, and the job held unacked at the time comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_resumes_after_rabbitmq_restarts_and_no_job_is_lost() {
    if tokio::task::spawn_blocking(testing::rabbitmq_url).await.unwrap().is_none() {
        return;
    }
    let mut server = tokio::task::spawn_blocking(RabbitServer::start).await.unwrap().expect("dedicated RabbitMQ");
    let broker = usable(&server.url()).await;
    let queue = job_queue_name(Uuid::new_v4());
    broker.declare(&queue, &QueueOptions::default()).await.unwrap();
    let jobs: Vec<Bytes> = (0..20).map(|i| Bytes::from(format!("job-{i}"))).collect();
    broker.publish(&queue, &jobs).await.unwrap();

    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let mut done = HashSet::new();
    for _ in 0..5 {
        let delivery = consumer.next().await.unwrap().unwrap();
        done.insert(String::from_utf8_lossy(&delivery.body).into_owned());
        delivery.ack().await.unwrap();
    }
    let held = consumer.next().await.unwrap().unwrap();
    let held_body = String::from_utf8_lossy(&held.body).into_owned();

    server = tokio::task::spawn_blocking(move || {
        server.stop();
        server.start_again().map(|()| server)
    })
    .await
    .unwrap()
    .expect("RabbitMQ restarts");
    assert!(held.ack().await.is_err(), "acking over a channel that died must fail");

    let mut redelivered = Vec::new();
    while done.len() < jobs.len() {
        let next = tokio::time::timeout(Duration::from_secs(60), consumer.next()).await;
        let delivery = next.expect("the consumer resumes after the restart").expect("consumer ended").unwrap();
        let body = String::from_utf8_lossy(&delivery.body).into_owned();
        if delivery.redelivered {
            redelivered.push(body.clone());
        }
        assert!(done.insert(body.clone()), "{body} was acknowledged before and delivered again");
        delivery.ack().await.unwrap();
    }
    assert!(redelivered.contains(&held_body), "the job held during the restart ({held_body}) was not redelivered");
    broker.delete(&queue).await.unwrap();
    drop(server);
}

#[test]
fn errors_never_quote_the_url_or_its_password() {
    let url = "amqp:armada:s3cret-pw@rabbit:5672";
    let scrubbed = super::scrub_url(&format!("Invalid URL: '{url}'"), url);
    assert!(!scrubbed.contains("s3cret-pw"), "{scrubbed}");
    let url = "amqp://armada:s3cret-pw@rabbit:5672/%2f";
    let scrubbed = super::scrub_url(&format!("could not use {url}; password s3cret-pw refused"), url);
    assert_eq!(scrubbed, "could not use amqp://rabbit:5672/%2f; password *** refused");
}

#[tokio::test]
async fn a_malformed_url_is_unavailable_without_its_password() {
    let broker = AmqpBroker::with_timeout("amqp:armada:s3cret-pw@127.0.0.1:1", Duration::from_secs(2));
    let error = broker.check_connectivity().await.expect_err("no broker there").to_string();
    assert!(!error.contains("s3cret-pw"), "{error}");
    assert!(error.contains("RabbitMQ at amqp://(unparsable URL)"), "{error}");
}

/// RabbitMQ's consumer timeout, for real: on a node whose `consumer_timeout` is 2 s (checked
/// every 200 ms), the queue carries its own `x-consumer-timeout`, a delivery held past the
/// timeout has its channel closed under it and goes to another consumer marked `redelivered`,
/// the late ack settles nothing, and the consumer that held it resumes on a new channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_held_past_the_consumer_timeout_goes_to_another_consumer_and_its_late_ack_settles_nothing() {
    if tokio::task::spawn_blocking(testing::rabbitmq_url).await.unwrap().is_none() {
        return;
    }
    let timeout = Duration::from_secs(2);
    let config = RabbitConfig { consumer_timeout: Some(timeout) };
    let server = tokio::task::spawn_blocking(move || RabbitServer::start_with(&config))
        .await
        .unwrap()
        .expect("RabbitMQ with a short consumer timeout");
    let broker = usable(&server.url()).await;
    let queue = job_queue_name(Uuid::new_v4());
    // The same timeout as the node's, so the test holds whether or not the broker honours the
    // argument (3.12+) or only its own setting (3.10).
    broker.declare(&queue, &QueueOptions { delivery_timeout: Some(timeout) }).await.unwrap();
    let listed = server.ctl(&["-q", "list_queues", "name", "arguments"]).expect("rabbitmqctl list_queues");
    let line = listed.lines().find(|line| line.starts_with(&queue)).unwrap_or_default();
    assert!(line.contains(CONSUMER_TIMEOUT_ARGUMENT) && line.contains("2000"), "{listed}");
    broker.publish(&queue, &[Bytes::from_static(b"long job")]).await.unwrap();

    let mut first = broker.consume(&queue, 1).await.unwrap();
    let held = first.next().await.unwrap().unwrap();
    let held_at = Instant::now();
    assert!(!held.redelivered);
    let mut second = broker.consume(&queue, 1).await.unwrap();
    let again = tokio::time::timeout(Duration::from_secs(30), second.next())
        .await
        .expect("the held delivery is taken back within 30 s")
        .unwrap()
        .unwrap();
    let taken_back_after = held_at.elapsed();
    assert!(taken_back_after >= timeout, "taken back after {taken_back_after:?}, before the timeout");
    assert_eq!((&again.body[..], again.redelivered), (&b"long job"[..], true));
    // The late ack fails, or (when the broker's close of that channel has not reached the
    // client yet) is sent and ignored by the broker: either way it settles nothing.
    let _late = held.ack().await;
    again.ack().await.unwrap();
    let third = tokio::time::timeout(Duration::from_secs(1), second.next()).await;
    assert!(third.is_err(), "delivered a third time: {third:?}");
    assert_eq!(broker.stats(&queue).await.unwrap().ready, 0);

    // The first consumer resumes on a new channel and takes the next job.
    second.cancel().await.unwrap();
    broker.publish(&queue, &[Bytes::from_static(b"next job")]).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), first.next())
        .await
        .expect("the first consumer resumed")
        .unwrap()
        .unwrap();
    assert_eq!(&next.body[..], b"next job");
    next.ack().await.unwrap();
    broker.delete(&queue).await.unwrap();
    drop(server);
}

#[test]
fn an_agent_asks_for_small_frames_unless_its_url_names_a_size() {
    let uri = |url: &str| url.parse::<AMQPUri>().unwrap();
    let asked = |url: &str, frame_max| with_frame_max(uri(url), frame_max).query.frame_max;
    assert_eq!(asked("amqp://127.0.0.1:5672/%2f", Some(AGENT_FRAME_MAX)), Some(AGENT_FRAME_MAX));
    assert_eq!(asked("amqp://127.0.0.1:5672/%2f?frame_max=65536", Some(AGENT_FRAME_MAX)), Some(65536));
    assert_eq!(asked("amqp://127.0.0.1:5672/%2f", None), None, "publishers take the server's frame size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_with_small_frames_receives_a_message_many_frames_long_whole() {
    let Some(url) = tokio::task::spawn_blocking(testing::rabbitmq_url).await.expect("start RabbitMQ") else {
        return;
    };
    let publisher = usable(&url).await;
    let agent = AmqpBroker::for_agent(&url);
    let queue = job_queue_name(Uuid::new_v4());
    publisher.declare(&queue, &QueueOptions::default()).await.unwrap();
    // Ten frames' worth, every byte distinct enough to notice a lost or reordered frame.
    let big = Bytes::from((0..AGENT_FRAME_MAX as usize * 10).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    publisher.publish(&queue, &[big.clone(), Bytes::from_static(b"small")]).await.unwrap();

    let mut consumer = agent.consume(&queue, 1).await.unwrap();
    let negotiated = agent.connector.connection().await.unwrap().configuration().frame_max();
    assert_eq!(negotiated, AGENT_FRAME_MAX, "the agent's connection uses its small frames");
    let first = consumer.next().await.unwrap().unwrap();
    assert_eq!(first.body, big, "the large message arrives whole");
    first.ack().await.unwrap();
    let second = consumer.next().await.unwrap().unwrap();
    assert_eq!(&second.body[..], b"small");
    second.ack().await.unwrap();
    publisher.delete(&queue).await.unwrap();
}
