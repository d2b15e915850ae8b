//! The embedded `Store`: one SQLite file in WAL mode, written through a single connection
//! (SQLite has one writer at a time anyway; one connection avoids lock contention between our
//! own writers) and read through a small pool that never blocks on the writer.
//! Parameterised SQL only; datetimes are INTEGER microseconds, uuids lowercase TEXT.

mod inventory;
mod read;
mod rows;
mod write;

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use uuid::Uuid;

use super::{
    Applied, FingerprintFilter, FingerprintSummary, ImportOutcome, Mutation, NewFingerprint, NewProxy, ProxyFilter,
    Store, StoreError, StoredFingerprint, StoredProxy,
};
use crate::model::{AgentSummary, Event, Job, Output, Page, PageRequest, Run, TimelineBucket};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request waits for a free connection before the database counts as down.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
const READERS: u32 = 4;

pub struct SqliteStore {
    path: String,
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it and its folder if missing) the database file at `path`.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("cannot create the folder {} for the database: {e}", parent.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self { path: path.display().to_string(), writer, reader })
    }

    /// Closes every connection; later calls fail with `Unavailable` (what a dead database
    /// looks like to callers).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// Every database failure that is not a rejected item: the caller may retry later.
pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

/// `0001_initial` for `0001_initial.sql`.
fn migration_name(migration: &sqlx::migrate::Migration) -> String {
    format!("{:04}_{}", migration.version, migration.description.replace(' ', "_"))
}

#[async_trait]
impl Store for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path)
    }

    async fn check_connectivity(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await.map(drop).map_err(unavailable)
    }

    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let has_table: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
                .fetch_one(&self.writer)
                .await
                .map_err(unavailable)?;
        let applied: Vec<i64> = if has_table > 0 {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.writer)
                .await
                .map_err(unavailable)?
        } else {
            Vec::new()
        };
        MIGRATOR.run(&self.writer).await.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        Ok(MIGRATOR
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(migration_name)
            .collect())
    }

    async fn apply(&self, batch: &[Mutation]) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        write::apply(&self.writer, batch).await
    }

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, StoreError> {
        read::get_run(&self.reader, run_uuid).await
    }

    async fn list_runs(&self, page: PageRequest) -> Result<Page<Run>, StoreError> {
        read::list_runs(&self.reader, page).await
    }

    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, StoreError> {
        write::delete_run(&self.writer, run_uuid).await
    }

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, StoreError> {
        read::get_job(&self.reader, job_uuid).await
    }

    async fn list_jobs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Job>, StoreError> {
        read::list_jobs(&self.reader, run_uuid, page).await
    }

    async fn count_jobs_by_status(&self, run_uuid: Uuid) -> Result<Vec<(String, u64)>, StoreError> {
        read::count_jobs_by_status(&self.reader, run_uuid).await
    }

    async fn agent_summaries(&self, run_uuid: Uuid) -> Result<Vec<AgentSummary>, StoreError> {
        read::agent_summaries(&self.reader, run_uuid).await
    }

    async fn finish_open_jobs(&self, run_uuid: Uuid, status: &str, detail: &str) -> Result<Vec<Job>, StoreError> {
        write::finish_open_jobs(&self.writer, run_uuid, status, detail).await
    }

    async fn list_events(&self, job_uuid: Uuid, page: PageRequest) -> Result<Page<Event>, StoreError> {
        read::list_events(&self.reader, job_uuid, page).await
    }

    async fn list_outputs(&self, run_uuid: Option<Uuid>, page: PageRequest) -> Result<Page<Output>, StoreError> {
        read::list_outputs(&self.reader, run_uuid, page).await
    }

    async fn job_logs(&self, job_uuid: Uuid, max_bytes: usize) -> Result<String, StoreError> {
        read::job_logs(&self.reader, job_uuid, max_bytes).await
    }

    async fn job_timeline(&self, run_uuid: Uuid, bucket_secs: u32) -> Result<Vec<TimelineBucket>, StoreError> {
        read::job_timeline(&self.reader, run_uuid, bucket_secs).await
    }

    async fn import_proxies(&self, proxies: &[NewProxy]) -> Result<ImportOutcome, StoreError> {
        inventory::import_proxies(&self.writer, proxies).await
    }

    async fn import_fingerprints(&self, fingerprints: &[NewFingerprint]) -> Result<ImportOutcome, StoreError> {
        inventory::import_fingerprints(&self.writer, fingerprints).await
    }

    async fn random_proxy(&self, filter: &ProxyFilter) -> Result<Option<StoredProxy>, StoreError> {
        inventory::random_proxy(&self.reader, filter).await
    }

    async fn random_fingerprint(&self, filter: &FingerprintFilter) -> Result<Option<StoredFingerprint>, StoreError> {
        inventory::random_fingerprint(&self.reader, filter).await
    }

    async fn list_proxies(&self, page: PageRequest) -> Result<Page<StoredProxy>, StoreError> {
        inventory::list_proxies(&self.reader, page).await
    }

    async fn list_fingerprints(&self, page: PageRequest) -> Result<Page<FingerprintSummary>, StoreError> {
        inventory::list_fingerprints(&self.reader, page).await
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::infra::db::conformance::{TestStore, store_suite};

    /// A fresh, migrated store in a temporary folder (removed when the guard drops).
    pub(crate) async fn temp_store() -> Option<TestStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("armada.db")).await.expect("open");
        store.migrate().await.expect("migrate");
        Some(TestStore { store: Arc::new(store), guard: Box::new(dir) })
    }

    store_suite!(sqlite_store, temp_store());

    #[tokio::test]
    async fn first_migrate_names_what_it_applied_and_creates_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/folder/armada.db");
        let store = SqliteStore::open(&path).await.expect("open");
        assert!(path.exists(), "the file and its folders are created");
        assert_eq!(store.migrate().await.expect("migrate"), vec!["0001_initial".to_string()]);
        assert_eq!(store.migrate().await.expect("migrate"), Vec::<String>::new());
        store.close().await;
        let reopened = SqliteStore::open(&path).await.expect("reopen");
        assert_eq!(reopened.migrate().await.expect("migrate"), Vec::<String>::new(), "recorded in the file");
    }

    #[tokio::test]
    async fn connections_use_wal_normal_sync_and_foreign_keys() {
        let test_store = temp_store().await.expect("store");
        let dir = test_store.guard.downcast_ref::<tempfile::TempDir>().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("armada.db")).await.expect("open");
        for pool in [&store.writer, &store.reader] {
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(pool).await.expect("pragma");
            let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(pool).await.expect("pragma");
            let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(pool).await.expect("pragma");
            assert_eq!((mode.as_str(), sync, fk), ("wal", 1, 1));
        }
    }

    /// Every list is served by an index, in index order: no full scan, no sort of the table.
    #[tokio::test]
    async fn list_queries_use_an_index_and_no_sort() {
        let test_store = temp_store().await.expect("store");
        let dir = test_store.guard.downcast_ref::<tempfile::TempDir>().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("armada.db")).await.expect("open");
        for sql in read::LISTS {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(sqlx::AssertSqlSafe(explain));
            for _ in 0..sql.matches('?').count() {
                query = query.bind("x");
            }
            let plan: Vec<String> =
                query.fetch_all(&store.reader).await.expect("plan").into_iter().map(|row| row.3).collect();
            let plan = plan.join(" | ");
            assert!(plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"), "{sql}\n{plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql} sorts instead of walking an index:\n{plan}");
        }
    }

    #[tokio::test]
    async fn a_closed_store_is_unavailable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("armada.db")).await.expect("open");
        store.migrate().await.expect("migrate");
        store.close().await;
        assert!(matches!(store.check_connectivity().await, Err(StoreError::Unavailable(_))));
        let batch = [Mutation::UpdateEvent { event_uuid: Uuid::new_v4(), event_status: "Success".into() }];
        assert!(matches!(store.apply(&batch).await, Err(StoreError::Unavailable(_))));
    }
}
