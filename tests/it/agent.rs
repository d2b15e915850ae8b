//! Agents end to end: real worker processes (Python, Node), the real agent runtime, a backend
//! over loopback, the `armada` binary. The end-to-end bodies (hello, failures and retries,
//! killed and stopped agents, cancel, outages, requirements) run once per configuration of
//! engines — embedded; Redis + RabbitMQ with in-process agents; Redis + RabbitMQ with
//! `armada agent` processes — through `support::engines::on_every_engine!`.

mod cancel;
mod cli;
mod failures;
mod hello;
mod network;
mod outage;
mod process;
mod redelivery;
mod requirements;

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::Value;

/// Every message of `WS /ws/events` from now on, collected in the background.
#[derive(Clone, Default)]
pub struct LiveMessages(Arc<Mutex<Vec<Value>>>);

impl LiveMessages {
    pub async fn connect(ws_url: &str) -> Self {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.expect("websocket");
        let messages = Self::default();
        let sink = messages.0.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(text) = frame
                    && let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        messages
    }

    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.0.lock().unwrap().iter().filter(|m| m["type"] == kind).map(|m| m["data"].clone()).collect()
    }
}
