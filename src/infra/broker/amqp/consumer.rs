//! A RabbitMQ consumer that survives connection and channel loss: it re-subscribes (on a
//! fresh channel of a re-opened connection) and resumes. Deliveries it held when the channel
//! went down are requeued by RabbitMQ and come back marked `redelivered`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel};

use super::{Connector, close};
use crate::infra::broker::{BrokerError, Consumer, Delivery, Settle, Settlement};

const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

pub(super) struct AmqpConsumer {
    connector: Arc<Connector>,
    queue: String,
    prefetch: u16,
    /// The live subscription; `None` after it was lost, until re-subscribed.
    current: Option<Subscription>,
    cancelled: bool,
    retry: Duration,
}

struct Subscription {
    /// Dropping the last handle of the channel closes it, which requeues its unacked deliveries.
    channel: Channel,
    stream: lapin::Consumer,
}

impl AmqpConsumer {
    /// Subscribes now, so a missing queue is `NotFound` at once and the consumer is counted.
    pub(super) async fn start(connector: Arc<Connector>, queue: &str, prefetch: u16) -> Result<Self, BrokerError> {
        let mut consumer =
            Self { connector, queue: queue.to_string(), prefetch, current: None, cancelled: false, retry: FIRST_RETRY };
        consumer.current = Some(consumer.subscribe().await?);
        Ok(consumer)
    }

    async fn subscribe(&self) -> Result<Subscription, BrokerError> {
        let connector = &self.connector;
        let channel = connector.channel().await?;
        let what = format!("consume queue {}", self.queue);
        let subscribed = async {
            connector.bounded(&what, channel.basic_qos(self.prefetch, BasicQosOptions::default())).await?;
            let consume = channel.basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            );
            connector.bounded(&what, consume).await
        }
        .await;
        match subscribed {
            Ok(stream) => Ok(Subscription { channel, stream }),
            Err(e) => {
                close(channel).await;
                Err(e)
            }
        }
    }

    fn wrap(&self, delivery: lapin::message::Delivery) -> Delivery {
        let settle = AmqpSettle { acker: delivery.acker, queue: self.queue.clone(), settled: false };
        Delivery::new(Bytes::from(delivery.data), delivery.redelivered, self.queue.clone(), Box::new(settle))
    }

    async fn back_off(&mut self) {
        tokio::time::sleep(self.retry).await;
        self.retry = (self.retry * 2).min(MAX_RETRY);
    }
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        loop {
            if self.cancelled {
                return None;
            }
            let Some(current) = self.current.as_mut() else {
                match self.subscribe().await {
                    Ok(subscription) => {
                        tracing::info!(queue = %self.queue, "consumer resumed");
                        self.current = Some(subscription);
                        self.retry = FIRST_RETRY;
                    }
                    // The queue went away while we were disconnected.
                    Err(BrokerError::NotFound(_)) => return None,
                    Err(e) => {
                        tracing::warn!(queue = %self.queue, error = %e, retry_in = ?self.retry, "cannot resume consuming");
                        self.back_off().await;
                    }
                }
                continue;
            };
            match current.stream.next().await {
                Some(Ok(delivery)) => return Some(Ok(self.wrap(delivery))),
                Some(Err(e)) => {
                    tracing::warn!(queue = %self.queue, error = %e, "consumer lost its channel; resuming");
                    self.current = None;
                    self.back_off().await;
                }
                // Cancelled by the broker: the queue was deleted, or the node went away.
                None => {
                    self.current = None;
                    match self.connector.inspect(&self.queue).await {
                        Err(BrokerError::NotFound(_)) => return None,
                        Ok(_) => {}
                        Err(_) => self.back_off().await,
                    }
                }
            }
        }
    }

    async fn cancel(&mut self) -> Result<(), BrokerError> {
        self.cancelled = true;
        if let Some(current) = self.current.as_ref() {
            let tag = current.stream.tag();
            let cancel = current.channel.basic_cancel(tag, BasicCancelOptions::default());
            self.connector.bounded(&format!("cancel consumer of queue {}", self.queue), cancel).await?;
        }
        Ok(())
    }
}

struct AmqpSettle {
    acker: Acker,
    queue: String,
    settled: bool,
}

impl Settle for AmqpSettle {
    fn settle(mut self: Box<Self>, settlement: Settlement) -> BoxFuture<'static, Result<(), BrokerError>> {
        self.settled = true;
        let acker = self.acker.clone();
        let queue = self.queue.clone();
        Box::pin(async move {
            let done = match settlement {
                Settlement::Ack => acker.ack(BasicAckOptions::default()).await,
                Settlement::Nack { requeue } => acker.nack(BasicNackOptions { requeue, multiple: false }).await,
            };
            match done {
                Ok(true) => Ok(()),
                // The channel it came on is gone: RabbitMQ requeued it already.
                Ok(false) => Err(BrokerError::Conflict(format!(
                    "a delivery of queue {queue} was already handed back to the queue (its channel closed)"
                ))),
                Err(e) => Err(BrokerError::Unavailable(format!("settling a delivery of queue {queue}: {e}"))),
            }
        })
    }
}

impl Drop for AmqpSettle {
    /// Unsettled: hand the message back now rather than when the channel closes.
    fn drop(&mut self) {
        if self.settled || !self.acker.usable() {
            return;
        }
        let acker = self.acker.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = acker.nack(BasicNackOptions { requeue: true, multiple: false }).await;
            });
        }
    }
}
