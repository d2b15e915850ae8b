//! The RabbitMQ broker (lapin): durable queues named by the run id, persistent messages,
//! publisher confirms with pipelined publishing, prefetch through `basic.qos`, manual ack.
//!
//! One connection per broker, re-opened on demand after it is lost; one short-lived channel
//! per management call (a 404 closes the channel it happens on, so channels are not shared),
//! one per publish batch, one per consumer. Every call is bounded by a timeout: an outage is
//! a prompt `Unavailable`, never a hang. Consumers reconnect and resume by themselves.
//!
//! A queue's delivery timeout is its `x-consumer-timeout` argument. RabbitMQ 3.12 and later
//! honour it; older brokers ignore unknown arguments (and apply their global
//! `consumer_timeout`), and brokers that refuse it on a classic queue get the queue without it.

pub mod bench;
mod consumer;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::{AMQPValue, FieldTable};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

use super::{Broker, BrokerError, Consumer, QueueOptions, QueueStats, validate_queue_name};

/// Bound on connecting and on each management call.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;
/// The queue argument of RabbitMQ's per-queue consumer timeout, in milliseconds.
pub const CONSUMER_TIMEOUT_ARGUMENT: &str = "x-consumer-timeout";
/// The longest consumer timeout declared: 2^31 - 1 ms (~24.8 days), the bound of RabbitMQ's
/// `consumer_timeout` setting on managed brokers, so no broker refuses the value as too large.
/// Longer runs are still safe: agents never run a redelivered job twice (see `agent::jobs`).
pub const MAX_CONSUMER_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

pub struct AmqpBroker {
    connector: Arc<Connector>,
}

/// The broker's one connection, re-opened when lost.
struct Connector {
    url: String,
    /// `amqp://host:port/vhost`, no credentials.
    address: String,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<Arc<Connection>>>,
    /// Asked of the server unless the URL names one; `None`: the server's.
    frame_max: Option<u32>,
}

/// The largest AMQP frame an agent's connection asks for, unless the URL names one
/// (`?frame_max=`). The client keeps 32 frames of buffer each way, zero-filled, so the server's
/// default frame (128 KiB) makes a connection 8 MiB resident: most of an agent process's own
/// memory. An agent receives one job message of a few hundred bytes at a time; larger messages
/// are split over several frames, so this bounds no message. Publishers (the orchestrator) keep
/// the server's frame size: with the small one, enqueueing measured about 8 % slower.
pub const AGENT_FRAME_MAX: u32 = 16 * 1024;

fn with_frame_max(mut uri: AMQPUri, frame_max: Option<u32>) -> AMQPUri {
    if let Some(frame_max) = frame_max {
        uri.query.frame_max.get_or_insert(frame_max);
    }
    uri
}

/// `amqp://user:password@host:port/vhost` → `amqp://host:port/vhost`.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}/{path}") }
        }
        None => "amqp://(unparsable URL)".into(),
    }
}

/// `text` without `url` or its password: the client's own errors quote a URL they cannot
/// parse whole (`Invalid URL: 'amqp:user:password@host'`), and logs and `/health` show them.
fn scrub_url(text: &str, url: &str) -> String {
    let mut text = text.replace(url, &redact_url(url));
    let userinfo = url.split_once("://").map_or(url, |(_, rest)| rest).rsplit_once('@').map(|(info, _)| info);
    if let Some(password) = userinfo.and_then(|info| info.split_once(':')).map(|(_, password)| password)
        && password.len() >= 4
    {
        text = text.replace(password, "***");
    }
    text
}

impl AmqpBroker {
    /// A broker for `url`. Connects lazily: the first call (or `check_connectivity`) opens the
    /// connection, so a process may start before RabbitMQ does.
    pub fn new(url: &str) -> Self {
        Self::with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// A broker for an agent process: small frame buffers ([`AGENT_FRAME_MAX`]).
    pub fn for_agent(url: &str) -> Self {
        Self::build(url, DEFAULT_TIMEOUT, Some(AGENT_FRAME_MAX))
    }

    pub fn with_timeout(url: &str, timeout: Duration) -> Self {
        Self::build(url, timeout, None)
    }

    fn build(url: &str, timeout: Duration, frame_max: Option<u32>) -> Self {
        Self {
            connector: Arc::new(Connector {
                url: url.to_string(),
                address: redact_url(url),
                timeout,
                connection: tokio::sync::Mutex::new(None),
                frame_max,
            }),
        }
    }
}

impl Connector {
    async fn connection(&self) -> Result<Arc<Connection>, BrokerError> {
        let mut current = self.connection.lock().await;
        if let Some(connection) = current.as_ref()
            && connection.status().connected()
        {
            return Ok(connection.clone());
        }
        let connect = match self.url.parse::<AMQPUri>() {
            Ok(uri) => {
                Connection::connect_uri(with_frame_max(uri, self.frame_max), ConnectionProperties::default()).boxed()
            }
            // The client's own parse error, scrubbed, says what is wrong with the URL.
            Err(_) => Connection::connect(&self.url, ConnectionProperties::default()).boxed(),
        };
        let connection = match tokio::time::timeout(self.timeout, connect).await {
            Ok(Ok(connection)) => Arc::new(connection),
            Ok(Err(e)) => return Err(self.unavailable("connect", &e)),
            Err(_) => {
                return Err(BrokerError::Unavailable(format!(
                    "RabbitMQ at {}: no connection within {:?}",
                    self.address, self.timeout
                )));
            }
        };
        tracing::debug!(rabbitmq = %self.address, "connected");
        *current = Some(connection.clone());
        Ok(connection)
    }

    async fn channel(&self) -> Result<Channel, BrokerError> {
        let connection = self.connection().await?;
        self.bounded("open a channel", connection.create_channel()).await
    }

    /// Runs one AMQP call within the timeout, mapping its error.
    async fn bounded<T>(&self, what: &str, call: impl Future<Output = lapin::Result<T>>) -> Result<T, BrokerError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map_err(|e| self.error(what, &e)),
            Err(_) => Err(BrokerError::Unavailable(format!(
                "RabbitMQ at {}: {what}: no answer within {:?}",
                self.address, self.timeout
            ))),
        }
    }

    fn unavailable(&self, what: &str, e: &lapin::Error) -> BrokerError {
        BrokerError::Unavailable(format!(
            "RabbitMQ at {}: {what}: {}",
            self.address,
            scrub_url(&e.to_string(), &self.url)
        ))
    }

    /// Maps an error of a call naming a queue (`what` = `declare queue …`).
    fn error(&self, what: &str, e: &lapin::Error) -> BrokerError {
        if let lapin::ErrorKind::ProtocolError(amqp) = e.kind() {
            match amqp.kind() {
                AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => {
                    return BrokerError::NotFound(format!("{what}: not found ({})", amqp.get_message()));
                }
                AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED) => {
                    return BrokerError::Conflict(format!("{what}: {}", amqp.get_message()));
                }
                _ => {}
            }
        }
        self.unavailable(what, e)
    }

    /// Declares the durable queue with `arguments`.
    async fn declare_durable(&self, queue: &str, arguments: FieldTable) -> Result<(), BrokerError> {
        let channel = self.channel().await?;
        let declare = channel.queue_declare(queue.into(), QueueDeclareOptions::durable(), arguments);
        let result = self.bounded(&format!("declare queue {queue}"), declare).await;
        close(channel).await;
        result.map(|_| ())
    }

    /// Passive declare: the queue's counts, `NotFound` if it does not exist.
    async fn inspect(&self, queue: &str) -> Result<lapin::Queue, BrokerError> {
        let channel = self.channel().await?;
        let options = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
        let declare = channel.queue_declare(queue.into(), options, FieldTable::default());
        let result = self.bounded(&format!("queue {queue}"), declare).await;
        close(channel).await;
        result
    }
}

/// The arguments a queue is declared with: `x-consumer-timeout` (whole milliseconds, at least
/// 1, at most [`MAX_CONSUMER_TIMEOUT`]) when `options` ask for a delivery timeout.
pub fn queue_arguments(options: &QueueOptions) -> FieldTable {
    let mut arguments = FieldTable::default();
    if let Some(timeout) = options.delivery_timeout {
        let millis = timeout.clamp(Duration::from_millis(1), MAX_CONSUMER_TIMEOUT).as_millis();
        arguments.insert(CONSUMER_TIMEOUT_ARGUMENT.into(), AMQPValue::LongLongInt(millis as i64));
    }
    arguments
}

/// Closes a channel without waiting on a broker that may be gone.
async fn close(channel: Channel) {
    if channel.status().connected() {
        let _ = tokio::time::timeout(Duration::from_secs(1), channel.close(200, "done".into())).await;
    }
}

#[async_trait]
impl Broker for AmqpBroker {
    fn describe(&self) -> String {
        self.connector.address.clone()
    }

    async fn check_connectivity(&self) -> Result<(), BrokerError> {
        close(self.connector.channel().await?).await;
        Ok(())
    }

    async fn declare(&self, queue: &str, options: &QueueOptions) -> Result<(), BrokerError> {
        validate_queue_name(queue)?;
        let arguments = queue_arguments(options);
        let with_arguments = !arguments.inner().is_empty();
        match self.connector.declare_durable(queue, arguments).await {
            // PRECONDITION_FAILED: the queue exists with other arguments, or this broker refuses
            // the argument itself (RabbitMQ 4.3 keeps consumer timeouts for quorum queues only).
            Err(BrokerError::Conflict(reason)) if with_arguments => match self.connector.inspect(queue).await {
                Ok(_) => {
                    tracing::debug!(%queue, %reason, "queue already declared with other arguments; kept as it is");
                    Ok(())
                }
                Err(BrokerError::NotFound(_)) => {
                    tracing::warn!(
                        rabbitmq = %self.connector.address, %queue, %reason,
                        "RabbitMQ refused the queue's {CONSUMER_TIMEOUT_ARGUMENT}; declaring it without one \
                         (the broker's consumer_timeout applies: see README, RabbitMQ)"
                    );
                    self.connector.declare_durable(queue, FieldTable::default()).await
                }
                Err(other) => Err(other),
            },
            result => result,
        }
    }

    async fn publish(&self, queue: &str, messages: &[Bytes]) -> Result<(), BrokerError> {
        validate_queue_name(queue)?;
        // Fail fast (before sending 100,000 messages nowhere) when the queue does not exist;
        // `mandatory` below catches a queue deleted meanwhile.
        self.connector.inspect(queue).await?;
        if messages.is_empty() {
            return Ok(());
        }
        let connector = &self.connector;
        let channel = connector.channel().await?;
        let result = async {
            connector
                .bounded("enable publisher confirms", channel.confirm_select(ConfirmSelectOptions::default()))
                .await?;
            let properties = BasicProperties::default().with_delivery_mode(PERSISTENT);
            let options = BasicPublishOptions { mandatory: true, ..BasicPublishOptions::default() };
            // Pipelined: send everything, then collect the confirms.
            let mut confirms = Vec::with_capacity(messages.len());
            for body in messages {
                let publish = channel.basic_publish("".into(), queue.into(), options, body, properties.clone());
                confirms.push(connector.bounded(&format!("publish to queue {queue}"), publish).await?);
            }
            let mut refused = 0usize;
            for confirm in confirms {
                match connector.bounded(&format!("confirm of a message to queue {queue}"), confirm).await? {
                    Confirmation::Ack(None) => {}
                    Confirmation::Ack(Some(_)) => {
                        return Err(BrokerError::NotFound(format!("queue {queue} not found")));
                    }
                    Confirmation::Nack(_) => refused += 1,
                    Confirmation::NotRequested => {
                        return Err(BrokerError::Unavailable("publisher confirms were not enabled".into()));
                    }
                }
            }
            if refused > 0 {
                // The broker is up and said no: not an outage that waiting would cure.
                return Err(BrokerError::Conflict(format!(
                    "RabbitMQ at {} refused {refused} of {} messages for queue {queue} (a negative publisher \
                     confirm): the queue is full under a length limit with overflow reject-publish (its arguments \
                     or a policy), or the broker could not store them",
                    connector.address,
                    messages.len()
                )));
            }
            Ok(())
        }
        .await;
        close(channel).await;
        result
    }

    async fn consume(&self, queue: &str, prefetch: u16) -> Result<Box<dyn Consumer>, BrokerError> {
        validate_queue_name(queue)?;
        Ok(Box::new(consumer::AmqpConsumer::start(self.connector.clone(), queue, prefetch).await?))
    }

    async fn stats(&self, queue: &str) -> Result<QueueStats, BrokerError> {
        validate_queue_name(queue)?;
        let declared = self.connector.inspect(queue).await?;
        Ok(QueueStats {
            ready: u64::from(declared.message_count()),
            unacked: None,
            consumers: declared.consumer_count(),
        })
    }

    async fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        validate_queue_name(queue)?;
        let channel = self.connector.channel().await?;
        let purge = channel.queue_purge(queue.into(), QueuePurgeOptions::default());
        let result = self.connector.bounded(&format!("queue {queue}"), purge).await;
        close(channel).await;
        result.map(u64::from)
    }

    async fn delete(&self, queue: &str) -> Result<(), BrokerError> {
        validate_queue_name(queue)?;
        let channel = self.connector.channel().await?;
        let delete = channel.queue_delete(queue.into(), QueueDeleteOptions::default());
        let result = self.connector.bounded(&format!("delete queue {queue}"), delete).await;
        close(channel).await;
        match result {
            Ok(_) | Err(BrokerError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
