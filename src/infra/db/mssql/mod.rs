//! The distributed `Store`: Microsoft SQL Server through tiberius (TDS 7.3, TLS by rustls), a
//! small connection pool, migrations from `migrations/mssql/` (with in-place adoption of an
//! original Armada database), and the same semantics as the SQLite store — checked by running
//! the same conformance suite against a live server (gated: `ARMADA_TEST_MSSQL_URL`).
//!
//! One file per concern: `pool` (connections, TLS, timeouts), `exec` (reads and transactions,
//! retries), `sql` (every statement), `params` (binding), `limits` (2,100 parameters, paging),
//! `write` and `read` (the `Store` methods), `inventory` (the providers' proxies and
//! fingerprints), `rows` (decoding), `schema` + `migrate` + `adopt` (the schema and how it gets
//! there).
//!
//! Parameterised SQL only: values are bound as `@P1…@Pn`, never formatted into text.

mod adopt;
mod exec;
mod inventory;
mod limits;
mod migrate;
mod params;
mod pool;
mod read;
mod rows;
mod schema;
mod sql;
mod write;

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use self::params::Statement;
use self::pool::Pool;
use super::{
    Applied, FingerprintFilter, FingerprintSummary, ImportOutcome, Mutation, NewFingerprint, NewProxy, ProxyFilter,
    Store, StoreError, StoredFingerprint, StoredProxy,
};
use crate::model::{AgentSummary, Event, Job, Output, Page, PageRequest, Run, TimelineBucket};
use crate::settings::MssqlSettings;

pub struct MssqlStore {
    pool: Arc<Pool>,
}

impl fmt::Debug for MssqlStore {
    /// The server and database only: the settings hold the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssqlStore").field("database", &self.pool.describe()).finish()
    }
}

impl MssqlStore {
    /// A store for the settings' server and database. Connects once, so a wrong address,
    /// password or database name fails here, at start, with a message naming the server.
    pub async fn open(settings: &MssqlSettings) -> Result<Self, StoreError> {
        let store = Self { pool: Pool::new(settings) };
        store.check_connectivity().await?;
        Ok(store)
    }
}

#[async_trait]
impl Store for MssqlStore {
    fn describe(&self) -> String {
        self.pool.describe()
    }

    async fn check_connectivity(&self) -> Result<(), StoreError> {
        self.pool.read(Statement::new(&sql::SELECT_ONE, Vec::new())?).await.map(drop)
    }

    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        migrate::migrate(&self.pool).await
    }

    async fn apply(&self, batch: &[Mutation]) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        write::apply(&self.pool, batch).await
    }

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
        read::get_run(&self.pool, run_uuid).await
    }

    async fn list_runs(&self, page: PageRequest) -> Result<Page<Run>, StoreError> {
        read::list_runs(&self.pool, page).await
    }

    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, StoreError> {
        write::delete_run(&self.pool, run_uuid).await
    }

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
        read::get_job(&self.pool, job_uuid).await
    }

    async fn list_jobs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Job>, StoreError> {
        read::list_jobs(&self.pool, run_uuid, page).await
    }

    async fn count_jobs_by_status(&self, run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
        read::count_jobs_by_status(&self.pool, run_uuid).await
    }

    async fn agent_summaries(&self, run_uuid: Uuid) -> Result<Vec<AgentSummary>, StoreError> {
        read::agent_summaries(&self.pool, run_uuid).await
    }

    async fn finish_open_jobs(&self, run_uuid: Uuid, status: &str, detail: &str) -> Result<Vec<Job>, StoreError> {
        write::finish_open_jobs(&self.pool, run_uuid, status, detail).await
    }

    async fn list_events(&self, job_uuid: Uuid, page: PageRequest) -> Result<Page<Event>, StoreError> {
        read::list_events(&self.pool, job_uuid, page).await
    }

    async fn list_outputs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Output>, StoreError> {
        read::list_outputs(&self.pool, run_uuid, page).await
    }

    async fn job_logs(&self, job_uuid: Uuid, max_bytes: usize) -> Result<String, StoreError> {
        read::job_logs(&self.pool, job_uuid, max_bytes).await
    }

    async fn job_timeline(&self, run_uuid: Uuid, bucket_secs: u32) -> Result<Vec<TimelineBucket>, StoreError> {
        read::job_timeline(&self.pool, run_uuid, bucket_secs).await
    }

    async fn import_proxies(&self, proxies: &[NewProxy]) -> Result<ImportOutcome, StoreError> {
        inventory::import_proxies(&self.pool, proxies).await
    }

    async fn import_fingerprints(&self, fingerprints: &[NewFingerprint]) -> Result<ImportOutcome, StoreError> {
        inventory::import_fingerprints(&self.pool, fingerprints).await
    }

    async fn random_proxy(&self, filter: &ProxyFilter) -> Result<Option<StoredProxy>, StoreError> {
        inventory::random_proxy(&self.pool, filter).await
    }

    async fn random_fingerprint(&self, filter: &FingerprintFilter) -> Result<Option<StoredFingerprint>, StoreError> {
        inventory::random_fingerprint(&self.pool, filter).await
    }

    async fn list_proxies(&self, page: PageRequest) -> Result<Page<StoredProxy>, StoreError> {
        inventory::list_proxies(&self.pool, page).await
    }

    async fn list_fingerprints(&self, page: PageRequest) -> Result<Page<FingerprintSummary>, StoreError> {
        inventory::list_fingerprints(&self.pool, page).await
    }
}
