//! The in-process config store: a map of key → bytes with optional expiry. Expired keys are
//! invisible at once (checked on read) and removed by a sweep that runs at most every
//! `SWEEP_EVERY`, piggybacking on writes, so nothing polls.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use uuid::Uuid;

use super::{
    AgentHeartbeat, ConfigStore, ConfigStoreError, agent_key, bundle_key, decode_agent_message, decode_heartbeat,
    encode_heartbeat, heartbeat_key, run_keys,
};

const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// The embedded config store. Values are kept as the JSON text a Redis store would hold, so
/// both hand back exactly the same messages.
pub struct MemoryConfigStore {
    entries: Mutex<Entries>,
}

struct Entries {
    map: HashMap<String, Entry>,
    next_sweep: Instant,
}

struct Entry {
    value: Bytes,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl Default for MemoryConfigStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryConfigStore {
    pub fn new() -> Self {
        Self { entries: Mutex::new(Entries { map: HashMap::new(), next_sweep: Instant::now() + SWEEP_EVERY }) }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        let now = Instant::now();
        self.lock().map.get(key).filter(|e| e.live(now)).map(|e| e.value.clone())
    }

    /// Writes and sweeps under one lock, so a batch is all or nothing.
    fn put_all(&self, items: impl IntoIterator<Item = (String, Bytes)>) {
        self.put_expiring(items, None);
    }

    /// Like `put_all`, the values vanishing `ttl` from now (`None`: never).
    fn put_expiring(&self, items: impl IntoIterator<Item = (String, Bytes)>, ttl: Option<Duration>) {
        let now = Instant::now();
        let expires_at = ttl.map(|ttl| now + ttl);
        let mut entries = self.lock();
        if now >= entries.next_sweep {
            entries.map.retain(|_, e| e.live(now));
            entries.next_sweep = now + SWEEP_EVERY;
        }
        for (key, value) in items {
            entries.map.insert(key, Entry { value, expires_at });
        }
    }

    /// Live keys, expired ones excluded: for tests.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.lock().map.values().filter(|e| e.live(now)).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ConfigStore for MemoryConfigStore {
    fn describe(&self) -> String {
        "in-process config store".into()
    }

    async fn check_connectivity(&self) -> Result<(), ConfigStoreError> {
        Ok(())
    }

    async fn put_agent_messages(&self, run_id: Uuid, messages: &[Value]) -> Result<(), ConfigStoreError> {
        // Serialise everything first: a failure stores nothing.
        let items = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                let key = agent_key(run_id, i);
                serde_json::to_vec(message)
                    .map(|json| (key.clone(), Bytes::from(json)))
                    .map_err(|e| ConfigStoreError::Invalid(format!("agent message for key {key}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.put_all(items);
        Ok(())
    }

    async fn get_agent_message(&self, run_id: Uuid, index: usize) -> Result<Option<Value>, ConfigStoreError> {
        let key = agent_key(run_id, index);
        self.get(&key).map(|raw| decode_agent_message(&key, &raw)).transpose()
    }

    async fn put_bundle(&self, run_id: Uuid, bundle: Bytes) -> Result<(), ConfigStoreError> {
        self.put_all([(bundle_key(run_id), bundle)]);
        Ok(())
    }

    async fn get_bundle(&self, run_id: Uuid) -> Result<Option<Bytes>, ConfigStoreError> {
        Ok(self.get(&bundle_key(run_id)))
    }

    async fn expire_run(&self, run_id: Uuid, agents: usize, ttl: Duration) -> Result<(), ConfigStoreError> {
        let at = Instant::now() + ttl;
        let mut entries = self.lock();
        for key in run_keys(run_id, agents) {
            if let Some(entry) = entries.map.get_mut(&key) {
                entry.expires_at = Some(at);
            }
        }
        Ok(())
    }

    async fn delete_run(&self, run_id: Uuid, agents: usize) -> Result<(), ConfigStoreError> {
        let mut entries = self.lock();
        for key in run_keys(run_id, agents) {
            entries.map.remove(&key);
        }
        Ok(())
    }

    async fn put_heartbeat(
        &self,
        run_id: Uuid,
        agent: &str,
        heartbeat: &AgentHeartbeat,
        ttl: Duration,
    ) -> Result<(), ConfigStoreError> {
        self.put_expiring([(heartbeat_key(run_id, agent), encode_heartbeat(heartbeat))], Some(ttl));
        Ok(())
    }

    async fn get_heartbeat(&self, run_id: Uuid, agent: &str) -> Result<Option<AgentHeartbeat>, ConfigStoreError> {
        let key = heartbeat_key(run_id, agent);
        self.get(&key).map(|raw| decode_heartbeat(&key, &raw)).transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    crate::infra::config_store::conformance::config_store_suite!(memory_config_store, async {
        Some(Arc::new(MemoryConfigStore::new()) as Arc<dyn ConfigStore>)
    });

    #[tokio::test]
    async fn expired_keys_are_swept_on_a_later_write() {
        let store = MemoryConfigStore::new();
        let run_id = Uuid::new_v4();
        store.put_agent_messages(run_id, &[serde_json::json!({"a": 1})]).await.unwrap();
        store.expire_run(run_id, 1, Duration::ZERO).await.unwrap();
        assert_eq!(store.len(), 0);
        store.lock().next_sweep = Instant::now();
        store.put_bundle(Uuid::new_v4(), Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(store.lock().map.len(), 1, "the expired message was removed, the new bundle kept");
    }
}
