//! The Redis config store (fred): agent messages as JSON strings under `{run_id}{i}`, the
//! bundle under `{run_id}:bundle`, expiry through `EXPIRE`, heartbeats under
//! `{run_id}:heartbeat:{agent}` with `SET … PX`.
//!
//! The client connects in the background and reconnects by itself (exponential backoff,
//! forever); every command is bounded by a timeout, so a Redis outage is a prompt
//! `Unavailable`, never a hang.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use fred::prelude::{
    Builder, Client, ClientLike, Config, Error as RedisError, ErrorKind, Expiration, KeysInterface, ReconnectPolicy,
};
use serde_json::Value;
use uuid::Uuid;

use super::{
    AgentHeartbeat, ConfigStore, ConfigStoreError, agent_key, bundle_key, decode_agent_message, decode_heartbeat,
    encode_heartbeat, heartbeat_key, run_keys,
};

/// Bound on connecting and on every command.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `check_connectivity` waits for a client that lost its connection to get it back
/// (reconnection attempts are at most 2 s apart) before it says Redis is down.
const RECONNECT_GRACE: Duration = Duration::from_secs(1);

pub struct RedisConfigStore {
    client: Client,
    /// `redis://host:port`, no password.
    address: String,
}

impl RedisConfigStore {
    /// Starts a client for `url` (`redis://[:password@]host:port[/db]`). Returns once connected,
    /// or after `DEFAULT_TIMEOUT` with the client still trying in the background (logged):
    /// a process may start before Redis does, and `/health` says it is down meanwhile.
    /// `address` is what logs may show (no password).
    pub async fn connect(url: &str, address: &str) -> Result<Self, ConfigStoreError> {
        Self::connect_with_timeout(url, address, DEFAULT_TIMEOUT).await
    }

    pub async fn connect_with_timeout(url: &str, address: &str, timeout: Duration) -> Result<Self, ConfigStoreError> {
        let config = Config::from_url(url)
            .map_err(|e| ConfigStoreError::Invalid(format!("Redis URL for {address} is not valid: {}", e.details())))?;
        let client = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = timeout;
                c.internal_command_timeout = timeout;
                c.max_command_attempts = 3;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            // 0 = retry forever; 100 ms doubling to 2 s.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .build()
            .map_err(|e| ConfigStoreError::Invalid(format!("Redis client for {address}: {}", e.details())))?;
        // The returned task drives the connection until `quit`; it ends on its own.
        let _task = client.connect();
        match tokio::time::timeout(timeout, client.wait_for_connect()).await {
            Ok(Ok(())) => tracing::debug!(redis = address, "connected"),
            Ok(Err(e)) => {
                tracing::warn!(redis = address, error = %e, "Redis not reachable yet; retrying in the background")
            }
            Err(_) => tracing::warn!(redis = address, ?timeout, "Redis not reachable yet; retrying in the background"),
        }
        Ok(Self { client, address: address.to_string() })
    }

    fn error(&self, what: &str, e: RedisError) -> ConfigStoreError {
        match e.kind() {
            ErrorKind::InvalidArgument | ErrorKind::InvalidCommand | ErrorKind::Parse => {
                ConfigStoreError::Invalid(format!("Redis at {}: {what}: {}", self.address, e.details()))
            }
            // A client without a connection holds commands until it reconnects, so they end in
            // a timeout whose own words ("Request timed out.") do not say why.
            ErrorKind::Timeout if !self.client.is_connected() => self.not_connected(what, None),
            _ => ConfigStoreError::Unavailable(format!("Redis at {}: {what}: {}", self.address, e.details())),
        }
    }

    fn not_connected(&self, what: &str, cause: Option<&RedisError>) -> ConfigStoreError {
        let cause = cause.map(|e| format!(" ({})", e.details())).unwrap_or_default();
        ConfigStoreError::Unavailable(format!(
            "Redis at {}: {what}: no connection to Redis{cause}; it is down or unreachable (the client keeps \
             reconnecting)",
            self.address
        ))
    }
}

impl Drop for RedisConfigStore {
    fn drop(&mut self) {
        let client = self.client.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

#[async_trait]
impl ConfigStore for RedisConfigStore {
    fn describe(&self) -> String {
        self.address.clone()
    }

    async fn check_connectivity(&self) -> Result<(), ConfigStoreError> {
        // Without a connection a PING would wait for the command timeout: give the client a
        // moment to reconnect, then say so at once.
        if !self.client.is_connected() {
            match tokio::time::timeout(RECONNECT_GRACE, self.client.wait_for_connect()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(self.not_connected("PING", Some(&e))),
                Err(_) => return Err(self.not_connected("PING", None)),
            }
        }
        self.client.ping::<String>(None).await.map(|_| ()).map_err(|e| self.error("PING", e))
    }

    async fn put_agent_messages(&self, run_id: Uuid, messages: &[Value]) -> Result<(), ConfigStoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let pairs: Vec<(String, String)> =
            messages.iter().enumerate().map(|(i, message)| (agent_key(run_id, i), message.to_string())).collect();
        // One MSET: atomic, all keys or none.
        self.client.mset(pairs).await.map_err(|e| self.error(&format!("MSET {} agent messages", messages.len()), e))
    }

    async fn get_agent_message(&self, run_id: Uuid, index: usize) -> Result<Option<Value>, ConfigStoreError> {
        let key = agent_key(run_id, index);
        let raw: Option<Bytes> = self.client.get(&key).await.map_err(|e| self.error(&format!("GET {key}"), e))?;
        raw.map(|raw| decode_agent_message(&key, &raw)).transpose()
    }

    async fn put_bundle(&self, run_id: Uuid, bundle: Bytes) -> Result<(), ConfigStoreError> {
        let key = bundle_key(run_id);
        self.client
            .set::<(), _, _>(&key, bundle, None, None, false)
            .await
            .map_err(|e| self.error(&format!("SET {key}"), e))
    }

    async fn get_bundle(&self, run_id: Uuid) -> Result<Option<Bytes>, ConfigStoreError> {
        let key = bundle_key(run_id);
        self.client.get(&key).await.map_err(|e| self.error(&format!("GET {key}"), e))
    }

    async fn expire_run(&self, run_id: Uuid, agents: usize, ttl: Duration) -> Result<(), ConfigStoreError> {
        // EXPIRE counts whole seconds: round up, so a key never vanishes early.
        let seconds = i64::try_from(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).unwrap_or(i64::MAX);
        if seconds == 0 {
            return self.delete_run(run_id, agents).await;
        }
        let pipeline = self.client.pipeline();
        for key in run_keys(run_id, agents) {
            pipeline.expire::<(), _>(key, seconds, None).await.map_err(|e| self.error("EXPIRE", e))?;
        }
        pipeline
            .all::<Vec<i64>>()
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("EXPIRE the keys of run {run_id}"), e))
    }

    async fn delete_run(&self, run_id: Uuid, agents: usize) -> Result<(), ConfigStoreError> {
        self.client
            .del::<i64, _>(run_keys(run_id, agents))
            .await
            .map(|_| ())
            .map_err(|e| self.error(&format!("DEL the keys of run {run_id}"), e))
    }

    async fn put_heartbeat(
        &self,
        run_id: Uuid,
        agent: &str,
        heartbeat: &AgentHeartbeat,
        ttl: Duration,
    ) -> Result<(), ConfigStoreError> {
        let key = heartbeat_key(run_id, agent);
        let millis = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        self.client
            .set::<(), _, _>(&key, encode_heartbeat(heartbeat), Some(Expiration::PX(millis)), None, false)
            .await
            .map_err(|e| self.error(&format!("SET {key}"), e))
    }

    async fn get_heartbeat(&self, run_id: Uuid, agent: &str) -> Result<Option<AgentHeartbeat>, ConfigStoreError> {
        let key = heartbeat_key(run_id, agent);
        let raw: Option<Bytes> = self.client.get(&key).await.map_err(|e| self.error(&format!("GET {key}"), e))?;
        raw.map(|raw| decode_heartbeat(&key, &raw)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::infra::testing::{self, RedisServer};

    async fn shared_store() -> Option<Arc<dyn ConfigStore>> {
        let url = tokio::task::spawn_blocking(testing::redis_url).await.expect("start Redis")?;
        Some(Arc::new(RedisConfigStore::connect(&url, &url).await.expect("Redis client")) as Arc<dyn ConfigStore>)
    }

    crate::infra::config_store::conformance::config_store_suite!(redis_config_store, shared_store());

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn agent_messages_are_plain_json_strings_under_the_original_keys() {
        let Some(url) = tokio::task::spawn_blocking(testing::redis_url).await.unwrap() else { return };
        let store = RedisConfigStore::connect(&url, &url).await.unwrap();
        let run_id = Uuid::new_v4();
        let message = serde_json::json!({"run_id": run_id.to_string(), "pod_index": 1, "nested": {"a": [1, 2]}});
        store.put_agent_messages(run_id, &[serde_json::json!({}), message.clone()]).await.unwrap();
        // What the original agent did: GET "{run_id}1" and json.loads it.
        let raw: String = store.client.get(format!("{run_id}1")).await.unwrap();
        assert_eq!(serde_json::from_str::<Value>(&raw).unwrap(), message);
        store.delete_run(run_id, 2).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_redis_is_unavailable_promptly() {
        let address = format!("redis://127.0.0.1:{}", testing::free_port());
        let started = Instant::now();
        let store =
            RedisConfigStore::connect_with_timeout(&address, &address, Duration::from_millis(500)).await.unwrap();
        let err = store.get_agent_message(Uuid::new_v4(), 0).await.unwrap_err();
        assert!(matches!(&err, ConfigStoreError::Unavailable(m) if m.contains(&address)), "{err:?}");
        assert!(store.check_connectivity().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_client_reconnects_after_redis_restarts() {
        if tokio::task::spawn_blocking(testing::redis_url).await.unwrap().is_none() {
            return;
        }
        let mut server = tokio::task::spawn_blocking(RedisServer::start).await.unwrap().expect("dedicated Redis");
        let url = server.url();
        let store = RedisConfigStore::connect_with_timeout(&url, &url, Duration::from_secs(1)).await.unwrap();
        let run_id = Uuid::new_v4();
        store.put_agent_messages(run_id, &[serde_json::json!({"before": true})]).await.unwrap();
        let mut server = tokio::task::spawn_blocking(move || {
            server.stop();
            server
        })
        .await
        .unwrap();
        // Held until the command timeout, then said plainly (not fred's "Request timed out.").
        let err = store.get_agent_message(run_id, 0).await.unwrap_err();
        assert!(matches!(&err, ConfigStoreError::Unavailable(m) if m.contains("no connection to Redis")), "{err:?}");
        // A connectivity check (what a run start and /health ask) does not wait that long.
        let asked = Instant::now();
        let err = store.check_connectivity().await.unwrap_err();
        assert!(asked.elapsed() < Duration::from_secs(3), "the check took {:?}", asked.elapsed());
        assert!(matches!(&err, ConfigStoreError::Unavailable(m) if m.contains("no connection to Redis")), "{err:?}");
        let server = tokio::task::spawn_blocking(move || server.start_again().map(|()| server)).await.unwrap().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The server kept nothing (no persistence): a fresh write must work once reconnected.
            match store.put_agent_messages(run_id, &[serde_json::json!({"after": true})]).await {
                Ok(()) => break,
                Err(e) => assert!(Instant::now() < deadline, "no reconnection after 30 s: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(store.get_agent_message(run_id, 0).await.unwrap(), Some(serde_json::json!({"after": true})));
        drop(server);
    }
}
