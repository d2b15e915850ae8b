//! The monitoring record service: every write of a run, job, event, output or log goes through
//! here, is stored, and is then broadcast to the live stream. The backend's handlers and the
//! in-process recorder client both call it; nothing else writes records.

pub mod hub;

use std::sync::Arc;

use crate::infra::db::{Applied, Mutation, Store, StoreError};
pub use hub::Hub;

#[derive(Clone)]
pub struct Records {
    store: Arc<dyn Store>,
    hub: Hub,
}

impl Records {
    pub fn new(store: Arc<dyn Store>, hub: Hub) -> Self {
        Self { store, hub }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stores the batch, then broadcasts what changed.
    pub async fn apply(&self, batch: &[Mutation]) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let results = self.store.apply(batch).await?;
        for applied in results.iter().flatten() {
            self.hub.publish_applied(applied);
        }
        Ok(results)
    }
}
