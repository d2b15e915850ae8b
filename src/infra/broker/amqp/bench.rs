//! `bench_amqp`: Armada's broker against the broker's own limit, on one RabbitMQ. The same N
//! job-sized messages are (1) published with publisher confirms and (2) drained with prefetch 1
//! and one ack per message — once through [`AmqpBroker`] (as the orchestrator publishes a run,
//! 1,000 messages per call, and as an agent consumes it) and once through a bare `lapin` loop
//! doing the same protocol work with nothing around it. The ratio says how close Armada comes to
//! what the broker allows.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

use super::AmqpBroker;
use crate::infra::broker::{Broker, QueueOptions};

/// Messages per `publish` call, as the orchestrator sends a run's jobs.
const PUBLISH_BATCH: usize = 1_000;

/// One side's figures, in messages per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub publish_per_sec: f64,
    pub drain_per_sec: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AmqpReport {
    pub messages: usize,
    pub message_bytes: usize,
    pub armada: Rates,
    pub raw: Rates,
}

impl std::fmt::Display for AmqpReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        write!(
            f,
            "{} messages of {} bytes: publish with confirms {:.0}/s (raw lapin {:.0}/s, {:.0}%); \
             drain with prefetch 1 and acks {:.0}/s (raw lapin {:.0}/s, {:.0}%)",
            self.messages,
            self.message_bytes,
            self.armada.publish_per_sec,
            self.raw.publish_per_sec,
            100.0 * ratio(self.armada.publish_per_sec, self.raw.publish_per_sec),
            self.armada.drain_per_sec,
            self.raw.drain_per_sec,
            100.0 * ratio(self.armada.drain_per_sec, self.raw.drain_per_sec),
        )
    }
}

/// A job message of the usual size (a few hundred bytes of JSON).
fn job_body(index: usize) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "run_id": "00000000-0000-4000-8000-000000000000",
            "job_uuid": uuid::Uuid::new_v4().to_string(),
            "targetted_job": index,
            "account": format!("user{index}@example.org"),
            "details": {"tags": ["bench", "noop"], "priority": index % 5, "url": format!("https://example.org/{index}")},
        })
        .to_string(),
    )
}

fn per_sec(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// Runs both sides on the RabbitMQ at `url` with `messages` messages each.
pub async fn bench_amqp(url: &str, messages: usize) -> Result<AmqpReport, String> {
    let bodies: Vec<Bytes> = (0..messages).map(job_body).collect();
    let message_bytes = bodies.first().map(Bytes::len).unwrap_or_default();
    let armada = armada_side(url, &bodies).await?;
    let raw = raw_side(url, &bodies).await.map_err(|e| format!("raw lapin: {e}"))?;
    Ok(AmqpReport { messages, message_bytes, armada, raw })
}

async fn armada_side(url: &str, bodies: &[Bytes]) -> Result<Rates, String> {
    let broker = AmqpBroker::new(url);
    let queue = format!("bench-armada-{}", uuid::Uuid::new_v4());
    broker.declare(&queue, &QueueOptions::default()).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    for batch in bodies.chunks(PUBLISH_BATCH) {
        broker.publish(&queue, batch).await.map_err(|e| e.to_string())?;
    }
    let publish = started.elapsed();

    let started = Instant::now();
    let mut consumer = broker.consume(&queue, 1).await.map_err(|e| e.to_string())?;
    for _ in 0..bodies.len() {
        let delivery = match consumer.next().await {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("the consumer ended before the queue was drained".into()),
        };
        delivery.ack().await.map_err(|e| e.to_string())?;
    }
    let drain = started.elapsed();
    let _ = consumer.cancel().await;
    broker.delete(&queue).await.map_err(|e| e.to_string())?;
    Ok(Rates { publish_per_sec: per_sec(bodies.len(), publish), drain_per_sec: per_sec(bodies.len(), drain) })
}

async fn raw_side(url: &str, bodies: &[Bytes]) -> lapin::Result<Rates> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let queue = format!("bench-raw-{}", uuid::Uuid::new_v4());
    let channel = connection.create_channel().await?;
    channel.queue_declare(queue.as_str().into(), QueueDeclareOptions::durable(), FieldTable::default()).await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    let properties = BasicProperties::default().with_delivery_mode(2);
    let started = Instant::now();
    for batch in bodies.chunks(PUBLISH_BATCH) {
        let mut confirms = Vec::with_capacity(batch.len());
        for body in batch {
            confirms.push(
                channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        body,
                        properties.clone(),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            confirm.await?;
        }
    }
    let publish = started.elapsed();

    let consuming = connection.create_channel().await?;
    consuming.basic_qos(1, BasicQosOptions::default()).await?;
    let started = Instant::now();
    let mut stream = consuming
        .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    for _ in 0..bodies.len() {
        match stream.next().await {
            Some(delivery) => {
                delivery?.acker.ack(BasicAckOptions::default()).await?;
            }
            None => break,
        }
    }
    let drain = started.elapsed();
    channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await?;
    let _ = connection.close(200, "bench done".into()).await;
    Ok(Rates { publish_per_sec: per_sec(bodies.len(), publish), drain_per_sec: per_sec(bodies.len(), drain) })
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bench_amqp_moves_every_message_through_both_sides() {
        let Some(url) = tokio::task::spawn_blocking(crate::infra::testing::rabbitmq_url).await.expect("RabbitMQ")
        else {
            return;
        };
        let report = super::bench_amqp(&url, 300).await.expect("bench");
        assert_eq!(report.messages, 300);
        assert!(report.armada.publish_per_sec > 0.0 && report.raw.drain_per_sec > 0.0, "{report}");
    }
}
