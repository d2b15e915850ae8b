//! What the launchers that supervise their agents themselves (in-process tasks, child
//! processes) share: the table of launched runs, and the signal that an agent's end is recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use uuid::Uuid;

use super::LaunchError;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Turns true once an agent's supervisor recorded how the agent ended.
#[derive(Clone)]
pub(super) struct Ended(watch::Receiver<bool>);

impl Ended {
    /// The supervisor sends `true` on its side once the final status is written.
    pub fn channel() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub async fn wait(&self) {
        let mut ended = self.0.clone();
        // An error means the supervisor is gone (runtime shutting down): nothing to wait for.
        let _ = ended.wait_for(|e| *e).await;
    }

    pub fn is_ended(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for every one of `agents`.
    pub async fn all<'a>(agents: impl Iterator<Item = &'a Ended>) {
        futures::future::join_all(agents.map(Ended::wait)).await;
    }

    /// The indexes of `agents` that have not ended.
    pub fn unfinished<'a>(agents: impl Iterator<Item = &'a Ended>) -> Vec<usize> {
        agents.enumerate().filter(|(_, a)| !a.is_ended()).map(|(i, _)| i).collect()
    }
}

/// The runs a launcher launched, by id.
pub(super) struct RunTable<R> {
    runs: Mutex<HashMap<Uuid, Arc<R>>>,
    /// What a run has here, for `NotFound` ("agents", "agent processes").
    what: &'static str,
}

impl<R> RunTable<R> {
    pub fn new(what: &'static str) -> Self {
        Self { runs: Mutex::new(HashMap::new()), what }
    }

    pub fn get(&self, run_id: Uuid) -> Result<Arc<R>, LaunchError> {
        lock(&self.runs).get(&run_id).cloned().ok_or_else(|| {
            LaunchError::NotFound(format!("run {run_id} has no {} here (never launched, or forgotten)", self.what))
        })
    }

    /// Adds the run `start` starts (under the table's lock), unless it was launched already.
    pub fn insert_with(&self, run_id: Uuid, start: impl FnOnce() -> Result<R, LaunchError>) -> Result<(), LaunchError> {
        let mut runs = lock(&self.runs);
        if runs.contains_key(&run_id) {
            return Err(LaunchError::Conflict(format!("run {run_id} was already launched")));
        }
        runs.insert(run_id, Arc::new(start()?));
        Ok(())
    }

    pub fn remove(&self, run_id: Uuid) -> Option<Arc<R>> {
        lock(&self.runs).remove(&run_id)
    }

    pub fn all(&self) -> Vec<Arc<R>> {
        lock(&self.runs).values().cloned().collect()
    }
}
