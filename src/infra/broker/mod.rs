//! `Broker`: the run's job queue. One durable queue per run, named by the run id; the
//! orchestrator publishes the jobs, agents consume them one at a time with manual
//! acknowledgement, so a job held by an agent that dies goes back to the queue.
//!
//! Implementations: [`memory::MemoryBroker`] (in-process, the embedded default) and
//! [`amqp::AmqpBroker`] (RabbitMQ). Every
//! implementation passes the same suite, [`conformance`] (`broker_suite!`).

pub mod amqp;
pub mod memory;

#[cfg(test)]
pub mod conformance;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::future::BoxFuture;
use uuid::Uuid;

use crate::settings::BrokerSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The queue does not exist (never declared, or deleted): `queue 1234… not found`.
    #[error("{0}")]
    NotFound(String),
    /// The broker cannot be reached or failed; retrying later may work.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The request itself is wrong (an empty or too long queue name).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with the broker's state (acknowledging a delivery that was
    /// already handed back to the queue).
    #[error("{0}")]
    Conflict(String),
}

/// The name of a run's job queue: the hyphenated run id, as the original named it.
pub fn job_queue_name(run_id: Uuid) -> String {
    run_id.hyphenated().to_string()
}

/// AMQP limits queue names to 255 bytes; every implementation applies the same rule so a
/// name accepted in-process is accepted by RabbitMQ.
pub fn validate_queue_name(queue: &str) -> Result<(), BrokerError> {
    if queue.is_empty() {
        return Err(BrokerError::Invalid("queue name is empty".into()));
    }
    if queue.len() > 255 {
        return Err(BrokerError::Invalid(format!("queue name {queue:?} is longer than 255 bytes")));
    }
    Ok(())
}

/// How a queue is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueOptions {
    /// How long a consumer may hold one delivery unacknowledged before the broker takes it
    /// back and redelivers it — RabbitMQ's consumer timeout, declared as the queue's
    /// `x-consumer-timeout` (honoured from RabbitMQ 3.12; older brokers ignore it and apply
    /// their global `consumer_timeout`, 30 minutes by default). `None`: the broker's own setting.
    /// A run's value comes from `RunSettings::delivery_timeout`, long enough that it never
    /// fires while an agent is still working on the job.
    pub delivery_timeout: Option<Duration>,
}

/// What a queue holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Messages waiting to be delivered.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged, when the engine can tell (AMQP's
    /// queue declaration only reports `ready`: `None` there).
    pub unacked: Option<u64>,
    /// Active consumers.
    pub consumers: u32,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Engine and address, for logs and `/health`: never credentials.
    fn describe(&self) -> String;
    async fn check_connectivity(&self) -> Result<(), BrokerError>;

    /// Creates the durable queue with `options`; declaring an existing queue changes nothing
    /// (whatever options it was declared with, it is kept as it is, and this is not an error).
    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), BrokerError>;
    /// Appends the messages (persistent) in order; returns once every one of them is accepted
    /// by the broker. A queue that does not exist is `NotFound`; messages the broker refuses
    /// (a full queue that rejects publishes) are `Conflict`.
    async fn publish(&self, queue: &str, messages: &[Bytes]) -> Result<(), BrokerError>;
    /// Starts consuming with manual acknowledgement: the consumer holds at most `prefetch`
    /// unacknowledged deliveries (0 = no limit). A queue that does not exist is `NotFound`.
    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError>;
    async fn stats(&self, queue: &str) -> Result<QueueStats, BrokerError>;
    /// Drops the ready messages (not those held by consumers); returns how many.
    async fn purge(&self, queue: &str) -> Result<u64, BrokerError>;
    /// Deletes the queue and its messages; its consumers end (`next()` gives `None`).
    /// Deleting a queue that does not exist is not an error.
    async fn delete(&self, queue: &str) -> Result<(), BrokerError>;
}

/// A stream of deliveries from one queue. Dropping the consumer hands its unacknowledged
/// deliveries back to the queue (to the front, marked `redelivered`), as a closed AMQP
/// channel does.
#[async_trait]
pub trait Consumer: Send {
    /// The next delivery; `None` once the queue was deleted or the consumer cancelled.
    /// Cancel-safe: a `next()` dropped before it completes loses no message, so it can sit
    /// in a `select!` against a shutdown signal.
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>>;
    /// Stops new deliveries; those already received can still be acknowledged.
    async fn cancel(&mut self) -> Result<(), BrokerError>;
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Ack,
    Nack { requeue: bool },
}

/// The engine's side of one delivery. Implementations hand the message back to the queue
/// when they are dropped without having been settled.
pub trait Settle: Send + Sync {
    fn settle(self: Box<Self>, settlement: Settlement) -> BoxFuture<'static, Result<(), BrokerError>>;
}

/// One message handed to a consumer. Settle it with [`ack`](Self::ack) or
/// [`nack`](Self::nack); a delivery dropped unsettled returns to the queue.
pub struct Delivery {
    pub body: Bytes,
    /// True when this message was delivered before (to this or another consumer) and not
    /// acknowledged: the job may have partly run.
    pub redelivered: bool,
    /// The queue it came from.
    pub queue: String,
    settle: Box<dyn Settle>,
}

impl Delivery {
    /// For implementations: a delivery settled through `settle`.
    pub fn new(body: Bytes, redelivered: bool, queue: impl Into<String>, settle: Box<dyn Settle>) -> Self {
        Self { body, redelivered, queue: queue.into(), settle }
    }

    /// Removes the message from the queue for good.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.settle.settle(Settlement::Ack).await
    }

    /// Rejects the message: back to the queue (marked `redelivered`) when `requeue`, else dropped.
    pub async fn nack(self, requeue: bool) -> Result<(), BrokerError> {
        self.settle.settle(Settlement::Nack { requeue }).await
    }
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("queue", &self.queue)
            .field("redelivered", &self.redelivered)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Opens the broker the settings name.
pub async fn open(settings: &BrokerSettings) -> Result<Arc<dyn Broker>, BrokerError> {
    match settings {
        BrokerSettings::InProcess => Ok(Arc::new(memory::MemoryBroker::new())),
        BrokerSettings::Amqp { url } => Ok(Arc::new(amqp::AmqpBroker::new(url.expose()))),
    }
}

/// Opens the broker the settings name for an agent process, which only consumes: on RabbitMQ
/// with small frame buffers (`amqp::AGENT_FRAME_MAX`).
pub async fn open_for_agent(settings: &BrokerSettings) -> Result<Arc<dyn Broker>, BrokerError> {
    match settings {
        BrokerSettings::Amqp { url } => Ok(Arc::new(amqp::AmqpBroker::for_agent(url.expose()))),
        BrokerSettings::InProcess => open(settings).await,
    }
}
