//! The in-process broker: one `VecDeque` per queue behind a short-held mutex, consumers woken
//! by `Notify`. Every operation is O(1) in the queue's length (amortised; requeueing a
//! dropped consumer's deliveries is O(its unacked)), so a run of 100,000 jobs drains at the
//! agents' pace, not the broker's.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::Notify;

use super::{
    Broker, BrokerError, Consumer, Delivery, QueueOptions, QueueStats, Settle, Settlement, validate_queue_name,
};

/// The embedded broker. Queues live as long as the process; nothing is written to disk.
#[derive(Default)]
pub struct MemoryBroker {
    queues: Mutex<HashMap<String, Arc<Queue>>>,
}

impl MemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, name: &str) -> Result<Arc<Queue>, BrokerError> {
        validate_queue_name(name)?;
        lock(&self.queues).get(name).cloned().ok_or_else(|| not_found(name))
    }
}

fn not_found(queue: &str) -> BrokerError {
    BrokerError::NotFound(format!("queue {queue} not found"))
}

/// A panic while a lock is held cannot leave these structures half-updated in a way that
/// matters more than losing the broker, so a poisoned lock is simply taken over.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Queue {
    name: String,
    state: Mutex<QueueState>,
    /// Woken (all waiters) when messages become ready or the queue is deleted.
    available: Notify,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<Message>,
    consumers: HashMap<u64, ConsumerRecord>,
    /// Sum of the consumers' unacked deliveries.
    unacked: u64,
    deleted: bool,
    next_consumer: u64,
    next_tag: u64,
}

struct Message {
    body: Bytes,
    redelivered: bool,
}

struct ConsumerRecord {
    /// Deliveries handed out and not settled, by tag (tags grow, so oldest first).
    unacked: BTreeMap<u64, Bytes>,
    cancelled: bool,
    /// Woken when one of this consumer's deliveries is settled (a prefetch slot frees up).
    slot: Arc<Notify>,
}

impl QueueState {
    /// Takes a delivery back from a consumer: `None` if it is no longer held.
    fn take_unacked(&mut self, consumer: u64, tag: u64) -> Option<Bytes> {
        let record = self.consumers.get_mut(&consumer)?;
        let body = record.unacked.remove(&tag)?;
        self.unacked -= 1;
        record.slot.notify_one();
        Some(body)
    }
}

impl Queue {
    fn new(name: &str) -> Self {
        Self { name: name.to_string(), state: Mutex::new(QueueState::default()), available: Notify::new() }
    }

    fn requeue_front(&self, bodies: impl DoubleEndedIterator<Item = Bytes>) {
        let mut state = lock(&self.state);
        if state.deleted {
            return;
        }
        // Oldest first at the front: push the newest first.
        for body in bodies.rev() {
            state.ready.push_front(Message { body, redelivered: true });
        }
        drop(state);
        self.available.notify_waiters();
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn describe(&self) -> String {
        "in-process broker".into()
    }

    async fn check_connectivity(&self) -> Result<(), BrokerError> {
        Ok(())
    }

    /// `options.delivery_timeout` is accepted and not enforced: an in-process consumer cannot
    /// vanish while its agent lives (dropping it hands its deliveries back at once), so a
    /// delivery is held until it is settled — what RabbitMQ does with the run's timeout, which
    /// is chosen never to fire while an agent is still working on the job.
    async fn declare(&self, queue: &str, _options: &QueueOptions) -> Result<(), BrokerError> {
        validate_queue_name(queue)?;
        lock(&self.queues).entry(queue.to_string()).or_insert_with(|| Arc::new(Queue::new(queue)));
        Ok(())
    }

    async fn publish(&self, queue: &str, messages: &[Bytes]) -> Result<(), BrokerError> {
        let queue = self.queue(queue)?;
        let mut state = lock(&queue.state);
        if state.deleted {
            return Err(not_found(&queue.name));
        }
        state.ready.extend(messages.iter().map(|body| Message { body: body.clone(), redelivered: false }));
        drop(state);
        queue.available.notify_waiters();
        Ok(())
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        let queue = self.queue(queue)?;
        let slot = Arc::new(Notify::new());
        let mut state = lock(&queue.state);
        if state.deleted {
            return Err(not_found(&queue.name));
        }
        let id = state.next_consumer;
        state.next_consumer += 1;
        state.consumers.insert(id, ConsumerRecord { unacked: BTreeMap::new(), cancelled: false, slot: slot.clone() });
        drop(state);
        Ok(Box::new(MemoryConsumer { queue, id, prefetch: usize::from(prefetch), slot, ended: false }))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, BrokerError> {
        let queue = self.queue(queue)?;
        let state = lock(&queue.state);
        let consumers = state.consumers.values().filter(|c| !c.cancelled).count();
        Ok(QueueStats {
            ready: state.ready.len() as u64,
            unacked: Some(state.unacked),
            consumers: u32::try_from(consumers).unwrap_or(u32::MAX),
        })
    }

    async fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        let queue = self.queue(queue)?;
        let mut state = lock(&queue.state);
        let purged = state.ready.len() as u64;
        state.ready.clear();
        Ok(purged)
    }

    async fn delete(&self, queue: &str) -> Result<(), BrokerError> {
        validate_queue_name(queue)?;
        let Some(queue) = lock(&self.queues).remove(queue) else {
            return Ok(());
        };
        let mut state = lock(&queue.state);
        state.deleted = true;
        state.ready.clear();
        state.consumers.clear();
        state.unacked = 0;
        drop(state);
        queue.available.notify_waiters();
        Ok(())
    }
}

struct MemoryConsumer {
    queue: Arc<Queue>,
    id: u64,
    /// 0 = no limit.
    prefetch: usize,
    slot: Arc<Notify>,
    ended: bool,
}

#[async_trait]
impl Consumer for MemoryConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        loop {
            // Register for wake-ups before looking at the state, so a publish between the
            // look and the wait is not missed.
            let available = self.queue.available.notified();
            let slot = self.slot.notified();
            tokio::pin!(available, slot);
            available.as_mut().enable();
            slot.as_mut().enable();
            {
                let mut state = lock(&self.queue.state);
                if self.ended || state.deleted {
                    self.ended = true;
                    return None;
                }
                let tag = state.next_tag;
                let record = state.consumers.get_mut(&self.id)?;
                if record.cancelled {
                    return None;
                }
                let prefetch_full = self.prefetch != 0 && record.unacked.len() >= self.prefetch;
                if !prefetch_full && let Some(message) = state.ready.pop_front() {
                    // `record` borrows `state`; re-fetch after popping.
                    if let Some(record) = state.consumers.get_mut(&self.id) {
                        record.unacked.insert(tag, message.body.clone());
                    }
                    state.next_tag += 1;
                    state.unacked += 1;
                    let settle = MemorySettle { queue: self.queue.clone(), consumer: self.id, tag, settled: false };
                    return Some(Ok(Delivery::new(
                        message.body,
                        message.redelivered,
                        self.queue.name.clone(),
                        Box::new(settle),
                    )));
                }
            }
            // Waiting for a message or, when prefetch is full, for an ack. Deletion wakes
            // `available`, so a consumer waiting for a slot still sees it.
            tokio::select! {
                _ = &mut available => {}
                _ = &mut slot => {}
            }
        }
    }

    async fn cancel(&mut self) -> Result<(), BrokerError> {
        self.ended = true;
        if let Some(record) = lock(&self.queue.state).consumers.get_mut(&self.id) {
            record.cancelled = true;
        }
        Ok(())
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        let mut state = lock(&self.queue.state);
        let Some(record) = state.consumers.remove(&self.id) else {
            return;
        };
        state.unacked -= record.unacked.len() as u64;
        drop(state);
        if !record.unacked.is_empty() {
            tracing::debug!(queue = %self.queue.name, count = record.unacked.len(), "consumer gone; requeueing its deliveries");
            self.queue.requeue_front(record.unacked.into_values());
        }
    }
}

struct MemorySettle {
    queue: Arc<Queue>,
    consumer: u64,
    tag: u64,
    settled: bool,
}

impl Settle for MemorySettle {
    fn settle(mut self: Box<Self>, settlement: Settlement) -> BoxFuture<'static, Result<(), BrokerError>> {
        self.settled = true;
        let mut state = lock(&self.queue.state);
        let result = match state.take_unacked(self.consumer, self.tag) {
            Some(body) => {
                drop(state);
                if settlement == (Settlement::Nack { requeue: true }) {
                    self.queue.requeue_front(std::iter::once(body));
                }
                Ok(())
            }
            // Deleted with the queue: nothing is left to settle.
            None if state.deleted => Ok(()),
            None => Err(BrokerError::Conflict(format!(
                "delivery {} of queue {} was already handed back to the queue (its consumer went away)",
                self.tag, self.queue.name
            ))),
        };
        Box::pin(std::future::ready(result))
    }
}

impl Drop for MemorySettle {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut state = lock(&self.queue.state);
        if let Some(body) = state.take_unacked(self.consumer, self.tag) {
            drop(state);
            self.queue.requeue_front(std::iter::once(body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::infra::broker::conformance::broker_suite!(memory_broker, async {
        Some(Arc::new(MemoryBroker::new()) as Arc<dyn Broker>)
    });

    /// A big run: 100,000 jobs, 8 agents with prefetch 1. Every job exactly once; the rate is
    /// printed (not asserted: this is a debug build on a shared machine).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hundred_thousand_jobs_drain_exactly_once() {
        const TOTAL: usize = 100_000;
        let broker = Arc::new(MemoryBroker::new());
        broker.declare("big", &QueueOptions::default()).await.unwrap();
        let started = std::time::Instant::now();
        let jobs: Vec<Bytes> = (0..TOTAL).map(|i| Bytes::from((i as u64).to_le_bytes().to_vec())).collect();
        broker.publish("big", &jobs).await.unwrap();
        let published = started.elapsed();
        let mut agents = Vec::new();
        for _ in 0..8 {
            let mut consumer = broker.consume("big", 1).await.unwrap();
            let broker = broker.clone();
            agents.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let next = tokio::select! {
                        next = consumer.next() => next,
                        () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                            if broker.stats("big").await.unwrap().ready == 0 { break } else { continue }
                        }
                    };
                    let delivery = next.unwrap().unwrap();
                    seen.push(u64::from_le_bytes(delivery.body[..].try_into().unwrap()));
                    delivery.ack().await.unwrap();
                }
                seen
            }));
        }
        let mut all = vec![false; TOTAL];
        for agent in agents {
            for job in agent.await.unwrap() {
                let slot = &mut all[usize::try_from(job).unwrap()];
                assert!(!*slot, "job {job} delivered twice");
                *slot = true;
            }
        }
        assert!(all.iter().all(|seen| *seen), "some jobs were never delivered");
        let took = started.elapsed();
        eprintln!(
            "memory broker: published {TOTAL} in {published:?}; published and drained by 8 consumers in {took:?} \
             ({:.0} jobs/s)",
            TOTAL as f64 / took.as_secs_f64()
        );
    }
}
