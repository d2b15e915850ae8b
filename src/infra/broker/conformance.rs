//! The one test body every `Broker` implementation passes.
//!
//! Instantiate it next to an implementation with an async constructor expression giving
//! `Option<Arc<dyn Broker>>` (`None` = the engine is not available here; the constructor says
//! why and how to enable it, and every test prints a SKIPPED line):
//!
//! ```text
//! crate::infra::broker::conformance::broker_suite!(memory_broker, async {
//!     Some(Arc::new(MemoryBroker::new()) as Arc<dyn Broker>)
//! });
//! ```
//!
//! The expression is evaluated once per test. Every test uses its own random queue, so
//! all of them can share one server.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use uuid::Uuid;

use super::{Broker, BrokerError, Consumer, Delivery, QueueOptions, QueueStats, job_queue_name};

/// Expands to a module `$suite` with one `#[tokio::test]` per behaviour below.
macro_rules! broker_suite {
    ($suite:ident, $make:expr) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $crate::infra::broker::conformance::broker_suite!(@tests $suite, $make;
                publish_then_consume_in_order,
                declare_is_idempotent_and_keeps_messages,
                declaring_again_with_other_options_keeps_the_queue_as_it_is,
                invalid_queue_name_is_invalid,
                publish_to_undeclared_queue_is_not_found,
                consume_undeclared_queue_is_not_found,
                prefetch_one_holds_back_the_second_message_until_ack,
                ack_removes_the_message,
                nack_with_requeue_redelivers_marked_redelivered,
                nack_without_requeue_drops_the_message,
                dropped_consumer_unacked_delivery_is_redelivered_exactly_once,
                dropped_delivery_returns_to_the_queue,
                competing_consumers_faster_one_takes_more,
                stats_report_ready_and_consumers,
                purge_empties_ready_messages,
                delete_ends_waiting_consumers_and_publish_is_not_found,
                cancelled_consumer_ends,
                ten_thousand_messages_drained_by_four_consumers_exactly_once,
            );
        }
    };
    (@tests $suite:ident, $make:expr; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let broker: ::std::option::Option<::std::sync::Arc<dyn $crate::infra::broker::Broker>> = $make.await;
                $crate::infra::testing::run_conformance(
                    "broker",
                    stringify!($suite),
                    stringify!($test),
                    broker.map($crate::infra::broker::conformance::$test),
                )
                .await;
            }
        )+
    };
}
pub(crate) use broker_suite;

/// Long enough for any healthy engine; a test that waits this long has failed.
const PATIENCE: Duration = Duration::from_secs(15);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(400);

fn fresh_queue() -> String {
    job_queue_name(Uuid::new_v4())
}

fn bodies(prefix: &str, n: usize) -> Vec<Bytes> {
    (0..n).map(|i| Bytes::from(format!("{prefix}{i}"))).collect()
}

/// A run's options: every queue of the suite is declared the way the orchestrator declares one.
const RUN_OPTIONS: QueueOptions = QueueOptions { delivery_timeout: Some(Duration::from_secs(3_600)) };

async fn declared(broker: &dyn Broker) -> String {
    let queue = fresh_queue();
    broker.declare(&queue, &RUN_OPTIONS).await.expect("declare a fresh queue");
    queue
}

/// The next delivery, which must come within `PATIENCE`.
async fn recv(consumer: &mut Box<dyn Consumer>) -> Delivery {
    match tokio::time::timeout(PATIENCE, consumer.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(e))) => panic!("consumer failed: {e}"),
        Ok(None) => panic!("consumer ended while a delivery was expected"),
        Err(_) => panic!("no delivery within {PATIENCE:?}"),
    }
}

/// Asserts that nothing is delivered for a while.
async fn assert_quiet(consumer: &mut Box<dyn Consumer>, why: &str) {
    if let Ok(next) = tokio::time::timeout(QUIET, consumer.next()).await {
        match next {
            Some(Ok(d)) => panic!("{why}: unexpected delivery {:?}", String::from_utf8_lossy(&d.body)),
            Some(Err(e)) => panic!("{why}: consumer failed: {e}"),
            None => panic!("{why}: consumer ended"),
        }
    }
}

/// Polls `stats` until `check` holds (engines may count asynchronously).
async fn eventually_stats(broker: &dyn Broker, queue: &str, what: &str, check: impl Fn(&QueueStats) -> bool) {
    let started = Instant::now();
    loop {
        let stats = broker.stats(queue).await.expect("stats");
        if check(&stats) {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{what}: stats still {stats:?} after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn text(delivery: &Delivery) -> String {
    String::from_utf8_lossy(&delivery.body).into_owned()
}

pub async fn publish_then_consume_in_order(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 100)).await.unwrap();
    let mut consumer = broker.consume(&queue, 10).await.unwrap();
    for i in 0..100 {
        let delivery = recv(&mut consumer).await;
        assert_eq!(text(&delivery), format!("m{i}"));
        assert!(!delivery.redelivered, "first delivery of m{i} marked redelivered");
        assert_eq!(delivery.queue, queue);
        delivery.ack().await.unwrap();
    }
    assert_quiet(&mut consumer, "after draining").await;
    broker.delete(&queue).await.unwrap();
}

pub async fn declare_is_idempotent_and_keeps_messages(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 3)).await.unwrap();
    broker.declare(&queue, &RUN_OPTIONS).await.expect("second declare");
    eventually_stats(&*broker, &queue, "3 ready after re-declare", |s| s.ready == 3).await;
    broker.delete(&queue).await.unwrap();
}

/// A queue declared again with another delivery timeout, or none (another version of the
/// orchestrator, a run id reused), is kept as it is: never a refusal (RabbitMQ answers
/// PRECONDITION_FAILED to inequivalent arguments).
pub async fn declaring_again_with_other_options_keeps_the_queue_as_it_is(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 2)).await.unwrap();
    let shorter = QueueOptions { delivery_timeout: Some(Duration::from_secs(60)) };
    broker.declare(&queue, &shorter).await.expect("declare again with another delivery timeout");
    broker.declare(&queue, &QueueOptions::default()).await.expect("declare again with no delivery timeout");
    eventually_stats(&*broker, &queue, "2 ready after re-declares", |s| s.ready == 2).await;
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    assert_eq!(text(&recv(&mut consumer).await), "m0");
    broker.delete(&queue).await.unwrap();
}

pub async fn invalid_queue_name_is_invalid(broker: Arc<dyn Broker>) {
    assert!(matches!(broker.declare("", &RUN_OPTIONS).await, Err(BrokerError::Invalid(_))));
    let long = "q".repeat(256);
    assert!(matches!(broker.declare(&long, &RUN_OPTIONS).await, Err(BrokerError::Invalid(_))));
}

pub async fn publish_to_undeclared_queue_is_not_found(broker: Arc<dyn Broker>) {
    let queue = fresh_queue();
    match broker.publish(&queue, &bodies("m", 1)).await {
        Err(BrokerError::NotFound(message)) => assert!(message.contains(&queue), "{message:?} names the queue"),
        other => panic!("publish to an undeclared queue: {other:?}"),
    }
}

pub async fn consume_undeclared_queue_is_not_found(broker: Arc<dyn Broker>) {
    let queue = fresh_queue();
    match broker.consume(&queue, 1).await {
        Err(BrokerError::NotFound(message)) => assert!(message.contains(&queue), "{message:?} names the queue"),
        Err(other) => panic!("consume an undeclared queue: {other:?}"),
        Ok(_) => panic!("consume an undeclared queue succeeded"),
    }
}

pub async fn prefetch_one_holds_back_the_second_message_until_ack(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 3)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let first = recv(&mut consumer).await;
    assert_eq!(text(&first), "m0");
    assert_quiet(&mut consumer, "prefetch 1 with one unacked delivery").await;
    eventually_stats(&*broker, &queue, "two held back", |s| s.ready == 2).await;
    first.ack().await.unwrap();
    assert_eq!(text(&recv(&mut consumer).await), "m1");
    broker.delete(&queue).await.unwrap();
}

pub async fn ack_removes_the_message(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 1)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    recv(&mut consumer).await.ack().await.unwrap();
    drop(consumer);
    // Even with the consumer gone, an acknowledged message never comes back.
    let mut other = broker.consume(&queue, 1).await.unwrap();
    assert_quiet(&mut other, "after ack").await;
    eventually_stats(&*broker, &queue, "empty after ack", |s| s.ready == 0 && s.unacked.unwrap_or(0) == 0).await;
    broker.delete(&queue).await.unwrap();
}

pub async fn nack_with_requeue_redelivers_marked_redelivered(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 2)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let first = recv(&mut consumer).await;
    assert_eq!(text(&first), "m0");
    first.nack(true).await.unwrap();
    let again = recv(&mut consumer).await;
    assert_eq!(text(&again), "m0", "a requeued message goes back to the front");
    assert!(again.redelivered);
    again.ack().await.unwrap();
    let second = recv(&mut consumer).await;
    assert_eq!(text(&second), "m1");
    assert!(!second.redelivered);
    second.ack().await.unwrap();
    broker.delete(&queue).await.unwrap();
}

pub async fn nack_without_requeue_drops_the_message(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 1)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    recv(&mut consumer).await.nack(false).await.unwrap();
    assert_quiet(&mut consumer, "after nack without requeue").await;
    eventually_stats(&*broker, &queue, "empty", |s| s.ready == 0 && s.unacked.unwrap_or(0) == 0).await;
    broker.delete(&queue).await.unwrap();
}

pub async fn dropped_consumer_unacked_delivery_is_redelivered_exactly_once(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("job", 1)).await.unwrap();
    let mut first = broker.consume(&queue, 1).await.unwrap();
    let held = recv(&mut first).await;
    let mut second = broker.consume(&queue, 1).await.unwrap();
    assert_quiet(&mut second, "while the first consumer holds the only message").await;
    // The consumer goes away (its agent was killed) while the delivery object still exists.
    drop(first);
    let redelivered = recv(&mut second).await;
    assert_eq!(text(&redelivered), "job0");
    assert!(redelivered.redelivered);
    // The stale delivery going away too must not put a second copy in the queue.
    drop(held);
    redelivered.ack().await.unwrap();
    let mut third = broker.consume(&queue, 1).await.unwrap();
    assert_quiet(&mut second, "after the redelivered copy was acked").await;
    assert_quiet(&mut third, "after the redelivered copy was acked").await;
    eventually_stats(&*broker, &queue, "empty", |s| s.ready == 0 && s.unacked.unwrap_or(0) == 0).await;
    broker.delete(&queue).await.unwrap();
}

pub async fn dropped_delivery_returns_to_the_queue(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 2)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let first = recv(&mut consumer).await;
    assert_eq!(text(&first), "m0");
    drop(first);
    let again = recv(&mut consumer).await;
    assert_eq!(text(&again), "m0");
    assert!(again.redelivered);
    again.ack().await.unwrap();
    assert_eq!(text(&recv(&mut consumer).await), "m1");
    broker.delete(&queue).await.unwrap();
}

pub async fn competing_consumers_faster_one_takes_more(broker: Arc<dyn Broker>) {
    const TOTAL: usize = 300;
    let queue = declared(&*broker).await;
    let taken = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for pause in [Duration::from_millis(1), Duration::from_millis(25)] {
        let mut consumer = broker.consume(&queue, 1).await.unwrap();
        let taken = taken.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while taken.load(Ordering::SeqCst) < TOTAL {
                let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_millis(200), consumer.next()).await
                else {
                    continue;
                };
                tokio::time::sleep(pause).await;
                mine.push(text(&delivery));
                delivery.ack().await.unwrap();
                taken.fetch_add(1, Ordering::SeqCst);
            }
            mine
        }));
    }
    broker.publish(&queue, &bodies("m", TOTAL)).await.unwrap();
    let mut counts = Vec::new();
    let mut seen = HashSet::new();
    for worker in workers {
        let mine = tokio::time::timeout(PATIENCE * 2, worker).await.expect("consumers drain the queue").unwrap();
        counts.push(mine.len());
        for body in mine {
            assert!(seen.insert(body.clone()), "{body} delivered twice");
        }
    }
    assert_eq!(seen.len(), TOTAL);
    let (fast, slow) = (counts[0], counts[1]);
    assert!(slow >= 1, "the slow consumer got nothing: no competition ({counts:?})");
    assert!(fast > slow, "the fast consumer took {fast}, the slow one {slow}");
    broker.delete(&queue).await.unwrap();
}

pub async fn stats_report_ready_and_consumers(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    let empty = broker.stats(&queue).await.unwrap();
    assert_eq!((empty.ready, empty.consumers), (0, 0));
    broker.publish(&queue, &bodies("m", 5)).await.unwrap();
    eventually_stats(&*broker, &queue, "5 ready", |s| s.ready == 5).await;
    let mut consumer = broker.consume(&queue, 2).await.unwrap();
    let a = recv(&mut consumer).await;
    let b = recv(&mut consumer).await;
    eventually_stats(&*broker, &queue, "3 ready, 2 unacked, 1 consumer", |s| {
        s.ready == 3 && s.consumers == 1 && s.unacked.is_none_or(|u| u == 2)
    })
    .await;
    a.ack().await.unwrap();
    b.ack().await.unwrap();
    drop(consumer);
    eventually_stats(&*broker, &queue, "no consumer, 3 ready", |s| {
        s.ready == 3 && s.consumers == 0 && s.unacked.is_none_or(|u| u == 0)
    })
    .await;
    assert!(matches!(broker.stats(&fresh_queue()).await, Err(BrokerError::NotFound(_))));
    broker.delete(&queue).await.unwrap();
}

pub async fn purge_empties_ready_messages(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("old", 10)).await.unwrap();
    eventually_stats(&*broker, &queue, "10 ready", |s| s.ready == 10).await;
    assert_eq!(broker.purge(&queue).await.unwrap(), 10);
    eventually_stats(&*broker, &queue, "empty after purge", |s| s.ready == 0).await;
    // The queue itself stays usable.
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    assert_quiet(&mut consumer, "after purge").await;
    broker.publish(&queue, &bodies("new", 1)).await.unwrap();
    assert_eq!(text(&recv(&mut consumer).await), "new0");
    broker.delete(&queue).await.unwrap();
}

pub async fn delete_ends_waiting_consumers_and_publish_is_not_found(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let waiting = tokio::spawn(async move { consumer.next().await.map(|r| r.map(|d| text(&d))) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    broker.delete(&queue).await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, waiting).await.expect("waiting consumer ends after delete").unwrap();
    assert!(ended.is_none(), "a consumer of a deleted queue got {ended:?}");
    assert!(matches!(broker.publish(&queue, &bodies("m", 1)).await, Err(BrokerError::NotFound(_))));
    assert!(matches!(broker.stats(&queue).await, Err(BrokerError::NotFound(_))));
    broker.delete(&queue).await.expect("deleting a deleted queue is fine");
}

pub async fn cancelled_consumer_ends(broker: Arc<dyn Broker>) {
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("m", 2)).await.unwrap();
    let mut consumer = broker.consume(&queue, 1).await.unwrap();
    let first = recv(&mut consumer).await;
    consumer.cancel().await.unwrap();
    // What was received can still be acknowledged; nothing more is delivered.
    first.ack().await.unwrap();
    let next = tokio::time::timeout(PATIENCE, consumer.next()).await.expect("a cancelled consumer ends");
    assert!(next.is_none(), "a cancelled consumer got {next:?}");
    let mut other = broker.consume(&queue, 1).await.unwrap();
    assert_eq!(text(&recv(&mut other).await), "m1");
    broker.delete(&queue).await.unwrap();
}

pub async fn ten_thousand_messages_drained_by_four_consumers_exactly_once(broker: Arc<dyn Broker>) {
    const TOTAL: usize = 10_000;
    let queue = declared(&*broker).await;
    broker.publish(&queue, &bodies("job-", TOTAL)).await.unwrap();
    eventually_stats(&*broker, &queue, "all published", |s| s.ready == TOTAL as u64).await;
    let taken = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let mut consumer = broker.consume(&queue, 10).await.unwrap();
        let taken = taken.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while taken.load(Ordering::SeqCst) < TOTAL {
                match tokio::time::timeout(Duration::from_millis(200), consumer.next()).await {
                    Ok(Some(Ok(delivery))) => {
                        mine.push(text(&delivery));
                        delivery.ack().await.unwrap();
                        taken.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Some(Err(e))) => panic!("consumer failed: {e}"),
                    Ok(None) => panic!("consumer ended before the queue was drained"),
                    Err(_) => {}
                }
            }
            mine
        }));
    }
    let mut seen = HashSet::new();
    for worker in workers {
        let mine = tokio::time::timeout(PATIENCE * 4, worker).await.expect("consumers drain 10,000").unwrap();
        for body in mine {
            assert!(seen.insert(body.clone()), "{body} delivered twice");
        }
    }
    let expected: HashSet<String> = (0..TOTAL).map(|i| format!("job-{i}")).collect();
    assert_eq!(seen, expected);
    eventually_stats(&*broker, &queue, "drained", |s| s.ready == 0 && s.unacked.unwrap_or(0) == 0).await;
    broker.delete(&queue).await.unwrap();
}
