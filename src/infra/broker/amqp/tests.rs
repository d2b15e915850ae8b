use std::collections::HashSet;
use std::time::Instant;

use uuid::Uuid;

use super::*;
use crate::infra::broker::job_queue_name;
use crate::infra::testing::{self, RabbitServer};

async fn shared_broker() -> Option<Arc<dyn Broker>> {
    let url = tokio::task::spawn_blocking(testing::rabbitmq_url).await.expect("start RabbitMQ")?;
    let broker = AmqpBroker::new(&url);
    // A node that has just opened its port may still be booting: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = broker.check_connectivity().await {
        assert!(Instant::now() < deadline, "RabbitMQ at {url} not usable: {e}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Some(Arc::new(broker) as Arc<dyn Broker>)
}

crate::infra::broker::conformance::broker_suite!(amqp_broker, shared_broker());

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
    let err = broker.declare(&job_queue_name(Uuid::new_v4())).await.unwrap_err();
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
    let broker = AmqpBroker::new(&server.url());
    let deadline = Instant::now() + Duration::from_secs(30);
    while broker.check_connectivity().await.is_err() {
        assert!(Instant::now() < deadline, "dedicated RabbitMQ not usable");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let queue = job_queue_name(Uuid::new_v4());
    broker.declare(&queue).await.unwrap();
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
