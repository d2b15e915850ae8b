//! The live stream's fan-out (`WS /ws/events`): every change is serialised once and offered to
//! every WebSocket client without ever waiting for one.
//!
//! Messages are `{"type": T, "data": {...}}`. The original's six types: `new_run`, `new_job`,
//! `new_event`, `update_job_status`, `update_event_status` (`data` = the whole record, as the
//! API returns it) and `delete_run` (`data` = `{"run_uuid"}`); plus ours: `update_run_status`
//! (a run's lifecycle changed; the whole run) and `new_output` (the whole output row). Log
//! chunks are not streamed (`GET /api/jobs/{id}/logs` reads them).
//!
//! Back-pressure: one `tokio::sync::broadcast` ring of `ws_queue` messages. Publishing never
//! blocks; a client that falls `ws_queue` messages behind is disconnected (it can reconnect and
//! reload), as is one whose socket accepts nothing for the send timeout, or that answers
//! nothing (pong or any frame) for two heartbeat intervals.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code};
use futures::{FutureExt, SinkExt};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, timeout};
use uuid::Uuid;

use crate::infra::db::{Applied, Mutation};
use crate::observability::names;

/// At most this many messages are written to a socket before one flush.
const MAX_WRITE_BATCH: usize = 256;
/// Upper bound of the send timeout (it is the heartbeat interval when that is shorter).
const MAX_SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a client whose write is blocked checks how far behind it has fallen.
const LAG_CHECK: Duration = Duration::from_millis(50);

/// The stream's message types.
pub mod kind {
    pub const NEW_RUN: &str = "new_run";
    pub const UPDATE_RUN_STATUS: &str = "update_run_status";
    pub const DELETE_RUN: &str = "delete_run";
    pub const NEW_JOB: &str = "new_job";
    pub const UPDATE_JOB_STATUS: &str = "update_job_status";
    pub const NEW_EVENT: &str = "new_event";
    pub const UPDATE_EVENT_STATUS: &str = "update_event_status";
    pub const NEW_OUTPUT: &str = "new_output";
}

#[derive(Clone)]
pub struct Hub {
    sender: broadcast::Sender<Utf8Bytes>,
    queue: usize,
    heartbeat: Duration,
    send_timeout: Duration,
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a T,
}

#[derive(Serialize)]
struct DeletedRun {
    run_uuid: Uuid,
}

/// Why a client's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client closed, or the server is shutting down.
    Closed,
    /// It fell further behind than the queue holds.
    Lagged(u64),
    /// Its socket accepted nothing for the send timeout.
    SendTimeout,
    /// It answered nothing for two heartbeat intervals.
    Silent,
}

impl Hub {
    /// `queue`: messages a client may lag behind before it is dropped; `heartbeat`: ping interval.
    pub fn new(queue: usize, heartbeat: Duration) -> Self {
        let queue = queue.max(1);
        let (sender, _) = broadcast::channel(queue);
        // Registered at zero so /metrics shows them before the first client.
        metrics::gauge!(names::WS_CLIENTS).increment(0.0);
        metrics::counter!(names::WS_MESSAGES_SENT).increment(0);
        metrics::counter!(names::WS_MESSAGES_DROPPED).increment(0);
        for reason in ["lagged", "send_timeout", "silent"] {
            metrics::counter!(names::WS_DROPPED_CLIENTS, "reason" => reason).increment(0);
        }
        Self { sender, queue, heartbeat, send_timeout: heartbeat.min(MAX_SEND_TIMEOUT) }
    }

    /// Clients connected right now.
    pub fn clients(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Broadcasts what a stored mutation changed; replays (`changed: false`) and log chunks
    /// are not broadcast.
    pub fn publish_applied(&self, mutation: &Mutation, applied: &Applied) {
        match (mutation, applied) {
            (Mutation::CreateRun(_), Applied::Run { run, changed: true }) => self.publish(kind::NEW_RUN, run),
            (Mutation::UpdateRun { .. }, Applied::Run { run, changed: true }) => {
                self.publish(kind::UPDATE_RUN_STATUS, run)
            }
            (Mutation::CreateJob(_), Applied::Job { job, changed: true }) => self.publish(kind::NEW_JOB, job),
            (Mutation::UpdateJob(_), Applied::Job { job, changed: true }) => self.publish(kind::UPDATE_JOB_STATUS, job),
            (Mutation::CreateEvent(_), Applied::Event { event, changed: true }) => self.publish(kind::NEW_EVENT, event),
            (Mutation::UpdateEvent { .. }, Applied::Event { event, changed: true }) => {
                self.publish(kind::UPDATE_EVENT_STATUS, event)
            }
            (Mutation::CreateOutput(_), Applied::Output { output, changed: true }) => {
                self.publish(kind::NEW_OUTPUT, output)
            }
            _ => {}
        }
    }

    pub fn publish_deleted_run(&self, run_uuid: Uuid) {
        self.publish(kind::DELETE_RUN, &DeletedRun { run_uuid });
    }

    /// Serialises once and hands the same bytes to every client; never waits.
    pub fn publish<T: Serialize>(&self, kind: &'static str, data: &T) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        match serde_json::to_string(&Envelope { kind, data }) {
            // An error here only means every client left meanwhile.
            Ok(text) => drop(self.sender.send(Utf8Bytes::from(text))),
            Err(error) => tracing::error!(kind, %error, "cannot serialise a live-stream message"),
        }
    }

    /// A receiver of every message from now on, for in-process listeners (the orchestrator's
    /// run watcher). It lags like a client: `RecvError::Lagged` means messages were missed.
    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.sender.subscribe()
    }

    /// Streams to one client until it leaves or is dropped.
    pub async fn serve(&self, socket: WebSocket) {
        let receiver = self.sender.subscribe();
        let _gauge = ConnectedGauge::new();
        tracing::debug!(clients = self.clients(), "live-stream client connected");
        Client { socket, receiver, queue: self.queue, heartbeat: self.heartbeat, send_timeout: self.send_timeout }
            .run()
            .await;
    }
}

/// `armada_ws_clients` +1 while it lives.
struct ConnectedGauge;

impl ConnectedGauge {
    fn new() -> Self {
        metrics::gauge!(names::WS_CLIENTS).increment(1.0);
        Self
    }
}

impl Drop for ConnectedGauge {
    fn drop(&mut self) {
        metrics::gauge!(names::WS_CLIENTS).decrement(1.0);
    }
}

struct Client {
    socket: WebSocket,
    receiver: broadcast::Receiver<Utf8Bytes>,
    /// Messages it may fall behind before it is dropped.
    queue: usize,
    heartbeat: Duration,
    send_timeout: Duration,
}

impl Client {
    async fn run(mut self) {
        let mut ticker = tokio::time::interval_at(Instant::now() + self.heartbeat, self.heartbeat);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let ending = loop {
            tokio::select! {
                received = self.receiver.recv() => match received {
                    Ok(first) => {
                        if let Err(ending) = self.send_batch(first).await {
                            break ending;
                        }
                    }
                    Err(RecvError::Lagged(missed)) => break Ending::Lagged(missed),
                    Err(RecvError::Closed) => break Ending::Closed,
                },
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break Ending::Closed,
                    Some(Ok(_)) => last_heard = Instant::now(),
                },
                _ = ticker.tick() => {
                    if last_heard.elapsed() >= self.heartbeat * 2 {
                        break Ending::Silent;
                    }
                    match timeout(self.send_timeout, self.socket.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => break Ending::Closed,
                        Err(_) => break Ending::SendTimeout,
                    }
                }
            }
        };
        self.finish(ending).await;
    }

    /// Writes `first` and whatever else is already queued, then flushes once: under load a
    /// client costs one socket write per batch, not per message.
    async fn send_batch(&mut self, first: Utf8Bytes) -> Result<(), Ending> {
        let mut batch = vec![first];
        while batch.len() < MAX_WRITE_BATCH {
            match self.receiver.try_recv() {
                Ok(text) => batch.push(text),
                Err(TryRecvError::Lagged(missed)) => return Err(Ending::Lagged(missed)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let count = batch.len() as u64;
        let socket = &mut self.socket;
        let write = async move {
            for text in batch {
                socket.feed(Message::Text(text)).await?;
            }
            socket.flush().await
        };
        tokio::pin!(write);
        let written = |result: Result<(), axum::Error>| match result {
            Ok(()) => {
                metrics::counter!(names::WS_MESSAGES_SENT).increment(count);
                Ok(())
            }
            Err(_) => Err(Ending::Closed),
        };
        // Fast path: a healthy client's socket takes the batch at once, no timer needed.
        if let Some(result) = write.as_mut().now_or_never() {
            return written(result);
        }
        let deadline = tokio::time::sleep(self.send_timeout);
        tokio::pin!(deadline);
        // While a write is blocked the ring keeps moving: a client that falls more than the
        // queue behind is dropped now, not when its socket finally frees up.
        let mut lag_check = tokio::time::interval(LAG_CHECK);
        loop {
            tokio::select! {
                result = &mut write => return written(result),
                _ = &mut deadline => {
                    metrics::counter!(names::WS_MESSAGES_DROPPED).increment(count);
                    return Err(Ending::SendTimeout);
                }
                _ = lag_check.tick() => {
                    if self.receiver.len() > self.queue {
                        metrics::counter!(names::WS_MESSAGES_DROPPED).increment(count);
                        return Err(Ending::Lagged(0));
                    }
                }
            }
        }
    }

    async fn finish(mut self, ending: Ending) {
        let (reason, missed) = match ending {
            Ending::Closed => {
                tracing::debug!("live-stream client left");
                return;
            }
            Ending::Lagged(missed) => ("lagged", missed),
            Ending::SendTimeout => ("send_timeout", 0),
            Ending::Silent => ("silent", 0),
        };
        // What was queued for it is lost too.
        let missed = missed + self.receiver.len() as u64;
        metrics::counter!(names::WS_DROPPED_CLIENTS, "reason" => reason).increment(1);
        metrics::counter!(names::WS_MESSAGES_DROPPED).increment(missed);
        tracing::warn!(reason, missed, "live-stream client dropped");
        let frame = CloseFrame {
            code: close_code::POLICY,
            reason: Utf8Bytes::from(format!("dropped ({reason}): reconnect and reload")),
        };
        // A polite close if the socket takes it at once; a stalled one is simply cut.
        let _ = timeout(Duration::from_millis(100), self.socket.send(Message::Close(Some(frame)))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::db::{NewLogChunk, NewRun};
    use crate::model::{Run, Timestamp};

    fn run() -> (Mutation, Run) {
        let at = Timestamp::parse("2026-02-24T10:30:00").expect("timestamp");
        let run_uuid = Uuid::new_v4();
        let new = NewRun { run_uuid, run_datetime: at, run_status: None, number_of_agents: None, number_of_jobs: None };
        let run = Run {
            run_uuid,
            run_datetime: at,
            run_status: None,
            number_of_agents: None,
            number_of_jobs: None,
            run_detail: None,
            run_finished: None,
        };
        (Mutation::CreateRun(new), run)
    }

    #[test]
    fn only_changes_are_broadcast_and_each_once_as_type_and_data() {
        let hub = Hub::new(8, Duration::from_secs(20));
        let mut receiver = hub.sender.subscribe();
        let (create, stored) = run();
        hub.publish_applied(&create, &Applied::Run { run: stored.clone(), changed: false });
        let chunk = NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid: Uuid::new_v4(), text: "x".into() };
        hub.publish_applied(&Mutation::AppendLog(chunk), &Applied::Log { job_uuid: Uuid::new_v4(), changed: true });
        hub.publish_applied(&create, &Applied::Run { run: stored.clone(), changed: true });
        let update = Mutation::UpdateRun {
            run_uuid: stored.run_uuid,
            run_status: crate::model::RunStatus::Running,
            run_detail: None,
        };
        hub.publish_applied(&update, &Applied::Run { run: stored.clone(), changed: true });
        hub.publish_deleted_run(stored.run_uuid);

        let mut messages = Vec::new();
        while let Ok(text) = receiver.try_recv() {
            messages.push(serde_json::from_str::<serde_json::Value>(text.as_str()).expect("json"));
        }
        let data = serde_json::to_value(&stored).expect("json");
        assert_eq!(
            messages,
            vec![
                serde_json::json!({"type": "new_run", "data": data}),
                serde_json::json!({"type": "update_run_status", "data": data}),
                serde_json::json!({"type": "delete_run", "data": {"run_uuid": stored.run_uuid}}),
            ]
        );
    }

    #[test]
    fn publishing_without_clients_costs_nothing_and_never_fails() {
        let hub = Hub::new(1, Duration::from_secs(20));
        let (create, stored) = run();
        for _ in 0..10 {
            hub.publish_applied(&create, &Applied::Run { run: stored.clone(), changed: true });
        }
        assert_eq!(hub.clients(), 0);
        assert_eq!(hub.sender.len(), 0, "nothing serialised or queued without clients");
    }
}
