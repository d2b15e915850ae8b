//! `ConfigStore`: what the orchestrator hands each agent of a run — its merged agent message,
//! under the original's key `{run_id}{i}`, and the run's project bundle — until the run ends
//! and the keys expire. Agents also keep their heartbeat there while they run (see
//! [`AgentHeartbeat`]).
//!
//! Implementations: [`memory::MemoryConfigStore`] (in-process, the embedded default) and
//! [`redis::RedisConfigStore`] (Redis). Every
//! implementation passes the same suite, [`conformance`] (`config_store_suite!`).

pub mod memory;
pub mod redis;

#[cfg(test)]
pub mod conformance;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::model::agent_name;
use crate::settings::ConfigStoreSettings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigStoreError {
    /// Something the request names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The store cannot be reached or failed; retrying later may work.
    #[error("config store unavailable: {0}")]
    Unavailable(String),
    /// The request or a stored value is wrong (`key … holds invalid JSON: …`).
    #[error("{0}")]
    Invalid(String),
    /// The request conflicts with stored data.
    #[error("{0}")]
    Conflict(String),
}

/// Where agent message `index` of a run lives: the hyphenated run id immediately followed by
/// the index, no separator (`"3f2b…-9c1d7"` for agent 7), as the original agents read it.
pub fn agent_key(run_id: Uuid, index: usize) -> String {
    format!("{}{index}", run_id.hyphenated())
}

/// Where a run's project bundle lives.
pub fn bundle_key(run_id: Uuid) -> String {
    format!("{}:bundle", run_id.hyphenated())
}

/// Where agent `agent`'s heartbeat lives (`agent` as its jobs are recorded: `agent-3`).
pub fn heartbeat_key(run_id: Uuid, agent: &str) -> String {
    format!("{}:heartbeat:{agent}", run_id.hyphenated())
}

/// Every key a run with `agents` agents may have written: agent messages, the bundle, heartbeats.
pub fn run_keys(run_id: Uuid, agents: usize) -> Vec<String> {
    let messages = (0..agents).map(|i| agent_key(run_id, i));
    let heartbeats = (0..agents).map(|i| heartbeat_key(run_id, &agent_name(i)));
    messages.chain(std::iter::once(bundle_key(run_id))).chain(heartbeats).collect()
}

/// An agent's sign of life: stored again every few seconds with a short expiry, so it can be
/// read while the agent lives and vanishes soon after it dies. `job` is the job the agent is
/// running, if any. Stored as JSON: `{"job": "…uuid…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHeartbeat {
    pub job: Option<Uuid>,
}

/// Parses a stored heartbeat; a value that is not one is `Invalid`, naming the key.
pub fn decode_heartbeat(key: &str, raw: &[u8]) -> Result<AgentHeartbeat, ConfigStoreError> {
    serde_json::from_slice(raw).map_err(|e| ConfigStoreError::Invalid(format!("key {key} holds no heartbeat: {e}")))
}

/// A heartbeat as stored.
pub fn encode_heartbeat(heartbeat: &AgentHeartbeat) -> Bytes {
    // A struct of one optional uuid always serialises.
    Bytes::from(serde_json::to_vec(heartbeat).unwrap_or_default())
}

/// Parses a stored agent message; a value that is not JSON is `Invalid`, naming the key.
pub fn decode_agent_message(key: &str, raw: &[u8]) -> Result<Value, ConfigStoreError> {
    serde_json::from_slice(raw).map_err(|e| ConfigStoreError::Invalid(format!("key {key} holds invalid JSON: {e}")))
}

#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// Engine and address, for logs and `/health`: never credentials.
    fn describe(&self) -> String;
    async fn check_connectivity(&self) -> Result<(), ConfigStoreError>;

    /// Stores message `i` under [`agent_key`]`(run_id, i)` as a JSON string, all of them or
    /// none. Replaces what was there.
    async fn put_agent_messages(&self, run_id: Uuid, messages: &[Value]) -> Result<(), ConfigStoreError>;
    /// `None` when the run has no such agent (or its keys expired).
    async fn get_agent_message(&self, run_id: Uuid, index: usize) -> Result<Option<Value>, ConfigStoreError>;

    /// Stores the run's project bundle under [`bundle_key`]. Replaces what was there.
    async fn put_bundle(&self, run_id: Uuid, bundle: Bytes) -> Result<(), ConfigStoreError>;
    async fn get_bundle(&self, run_id: Uuid) -> Result<Option<Bytes>, ConfigStoreError>;

    /// Makes the run's agent messages and bundle vanish `ttl` from now.
    async fn expire_run(&self, run_id: Uuid, agents: usize, ttl: Duration) -> Result<(), ConfigStoreError>;
    /// Removes the run's agent messages, bundle and heartbeats now.
    async fn delete_run(&self, run_id: Uuid, agents: usize) -> Result<(), ConfigStoreError>;

    /// Stores agent `agent`'s heartbeat under [`heartbeat_key`]; it vanishes `ttl` from now
    /// unless stored again.
    async fn put_heartbeat(
        &self,
        run_id: Uuid,
        agent: &str,
        heartbeat: &AgentHeartbeat,
        ttl: Duration,
    ) -> Result<(), ConfigStoreError>;
    /// The agent's last heartbeat; `None` once it lapsed, or when the agent never beat.
    async fn get_heartbeat(&self, run_id: Uuid, agent: &str) -> Result<Option<AgentHeartbeat>, ConfigStoreError>;
}

/// Opens the config store the settings name.
pub async fn open(settings: &ConfigStoreSettings) -> Result<Arc<dyn ConfigStore>, ConfigStoreError> {
    match settings {
        ConfigStoreSettings::InProcess => Ok(Arc::new(memory::MemoryConfigStore::new())),
        ConfigStoreSettings::Redis { url, host, port } => {
            Ok(Arc::new(redis::RedisConfigStore::connect(url.expose(), &format!("redis://{host}:{port}")).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_key_is_the_run_id_followed_by_the_index() {
        let run_id = Uuid::parse_str("3f2b6c1e-0d4a-4b8e-9a1f-2c3d4e5f6a7b").unwrap();
        assert_eq!(agent_key(run_id, 0), "3f2b6c1e-0d4a-4b8e-9a1f-2c3d4e5f6a7b0");
        assert_eq!(agent_key(run_id, 12), "3f2b6c1e-0d4a-4b8e-9a1f-2c3d4e5f6a7b12");
        assert_eq!(bundle_key(run_id), "3f2b6c1e-0d4a-4b8e-9a1f-2c3d4e5f6a7b:bundle");
    }

    #[test]
    fn run_keys_lists_every_agent_the_bundle_and_the_heartbeats() {
        let run_id = Uuid::new_v4();
        assert_eq!(
            run_keys(run_id, 2),
            vec![
                agent_key(run_id, 0),
                agent_key(run_id, 1),
                bundle_key(run_id),
                format!("{run_id}:heartbeat:agent-0"),
                format!("{run_id}:heartbeat:agent-1"),
            ]
        );
    }

    #[test]
    fn a_heartbeat_is_stored_as_json_naming_the_job() {
        let job = Uuid::new_v4();
        let stored = encode_heartbeat(&AgentHeartbeat { job: Some(job) });
        assert_eq!(std::str::from_utf8(&stored).unwrap(), format!(r#"{{"job":"{job}"}}"#));
        assert_eq!(decode_heartbeat("k", &stored).unwrap(), AgentHeartbeat { job: Some(job) });
        assert_eq!(decode_heartbeat("k", br#"{"job":null}"#).unwrap(), AgentHeartbeat { job: None });
        assert!(matches!(decode_heartbeat("k", b"alive"), Err(ConfigStoreError::Invalid(m)) if m.contains("key k")));
    }

    #[test]
    fn a_stored_value_that_is_not_json_is_invalid_naming_the_key() {
        let err = decode_agent_message("k0", b"{not json").unwrap_err();
        assert!(matches!(&err, ConfigStoreError::Invalid(m) if m.contains("k0")), "{err:?}");
    }
}
