//! Test doubles shared by the agent's unit tests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use uuid::Uuid;

use crate::clients::backend::{ItemOutcome, LiveStream};
use crate::clients::{BackendClient, BackendError};
use crate::infra::db::Mutation;
use crate::model::{Job, Run, RunSummary};

/// A backend that can be switched off, refuses events whose content is "refuse", and keeps
/// what it stored in order.
#[derive(Default)]
pub struct FlakyBackend {
    down: AtomicBool,
    stored: Mutex<Vec<Mutation>>,
}

impl FlakyBackend {
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    pub fn stored(&self) -> Vec<Mutation> {
        self.stored.lock().unwrap().clone()
    }
}

fn unavailable() -> BackendError {
    BackendError::Unavailable("switched off".into())
}

#[async_trait]
impl BackendClient for FlakyBackend {
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn check_connectivity(&self) -> Result<(), BackendError> {
        Ok(())
    }
    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<ItemOutcome>, BackendError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(unavailable());
        }
        let mut stored = self.stored.lock().unwrap();
        Ok(batch
            .into_iter()
            .map(|mutation| match &mutation {
                Mutation::CreateEvent(event) if event.event_content == "refuse" => {
                    Err(BackendError::Rejected { status: 404, detail: "job not found".into() })
                }
                _ => {
                    stored.push(mutation);
                    Ok(true)
                }
            })
            .collect())
    }
    async fn get_run(&self, _: Uuid) -> Result<Option<Run>, BackendError> {
        Err(unavailable())
    }
    async fn get_job(&self, _: Uuid) -> Result<Option<Job>, BackendError> {
        Err(unavailable())
    }
    async fn run_summary(&self, _: Uuid) -> Result<Option<RunSummary>, BackendError> {
        Err(unavailable())
    }
    async fn close_jobs(&self, _: Uuid, _: &str, _: &str) -> Result<u64, BackendError> {
        Err(unavailable())
    }
    async fn delete_run(&self, _: Uuid) -> Result<bool, BackendError> {
        Err(unavailable())
    }
    async fn live(&self) -> Result<LiveStream, BackendError> {
        Err(unavailable())
    }
}
