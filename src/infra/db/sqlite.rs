//! The embedded `Store`: one SQLite file (WAL, a connection pool, parameterised SQL only).

use std::path::Path;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Applied, Mutation, Store, StoreError};
use crate::model::{Event, Job, Output, Page, PageRequest, Run};

pub struct SqliteStore {
    path: String,
}

impl SqliteStore {
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self { path: path.display().to_string() })
    }
}

fn todo() -> StoreError {
    StoreError::Unavailable("not implemented yet".into())
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }
    async fn check_connectivity(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    async fn apply(&self, _batch: &[Mutation]) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        Err(todo())
    }
    async fn get_run(&self, _run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
        Err(todo())
    }
    async fn list_runs(&self, _page: PageRequest) -> Result<Page<Run>, StoreError> {
        Err(todo())
    }
    async fn delete_run(&self, _run_uuid: Uuid) -> Result<bool, StoreError> {
        Err(todo())
    }
    async fn get_job(&self, _job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
        Err(todo())
    }
    async fn list_jobs(&self, _run_uuid: Option<Uuid>, _page: PageRequest) -> Result<Page<Job>, StoreError> {
        Err(todo())
    }
    async fn count_jobs_by_status(&self, _run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
        Err(todo())
    }
    async fn finish_open_jobs(&self, _run_uuid: Uuid, _status: &str, _detail: &str) -> Result<Vec<Job>, StoreError> {
        Err(todo())
    }
    async fn list_events(&self, _job_uuid: Uuid, _page: PageRequest) -> Result<Page<Event>, StoreError> {
        Err(todo())
    }
    async fn list_outputs(&self, _run_uuid: Option<Uuid>, _page: PageRequest) -> Result<Page<Output>, StoreError> {
        Err(todo())
    }
    async fn job_logs(&self, _job_uuid: Uuid, _max_bytes: usize) -> Result<String, StoreError> {
        Err(todo())
    }
}
