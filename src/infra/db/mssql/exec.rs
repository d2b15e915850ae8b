//! Running statements: one read on a pooled connection (retried once on a fresh connection when
//! the connection broke), and a write transaction (retried once when it failed before COMMIT
//! was sent for a reason the server says is transient, or because the connection broke).
//!
//! Why retrying a write is safe: a failure before COMMIT means the server rolled the whole
//! transaction back (`XACT_ABORT ON`, or the connection is gone), so the retry applies the batch
//! to the same data as the first attempt did. A failure *during* COMMIT is ambiguous (it may
//! have committed) and is not retried here: the caller gets `Unavailable` and retries later,
//! which is still safe because every insert is idempotent on its uuid and every update sets
//! values rather than adding to them — the only difference is that items already committed
//! then report `changed: false`.

use std::sync::Arc;

use tiberius::Row;

use super::params::Statement;
use super::pool::{Client, Pool, is_connection_error, is_retryable};
use crate::infra::db::StoreError;

/// A failure inside a transaction: from the server or the connection (maybe retryable), or a
/// store-level error decided by our own code (never retried).
#[derive(Debug)]
pub(super) enum Failure {
    Db(tiberius::error::Error),
    Store(StoreError),
}

impl From<tiberius::error::Error> for Failure {
    fn from(error: tiberius::error::Error) -> Self {
        Failure::Db(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

/// The rows of the statement's first result set.
pub(super) async fn rows(client: &mut Client, statement: Statement) -> Result<Vec<Row>, tiberius::error::Error> {
    statement.into_query().query(client).await?.into_first_result().await
}

/// Rows affected.
pub(super) async fn execute(client: &mut Client, statement: Statement) -> Result<u64, tiberius::error::Error> {
    Ok(statement.into_query().execute(client).await?.total())
}

impl Pool {
    /// Runs one read. A broken connection (a stale pooled one after a server restart) is
    /// replaced and the read retried once.
    pub async fn read(self: &Arc<Self>, statement: Statement) -> Result<Vec<Row>, StoreError> {
        let mut conn = self.get().await?;
        match rows(conn.client(), statement.clone()).await {
            Ok(found) => {
                conn.release();
                Ok(found)
            }
            Err(error) if is_retryable(&error) => {
                drop(conn);
                if is_connection_error(&error) {
                    self.discard_idle();
                }
                tracing::debug!(statement = statement.name, %error, "SQL Server read failed; retrying on a fresh connection");
                let mut conn = self.get_fresh().await?;
                let found = rows(conn.client(), statement).await.map_err(|e| self.failed(&e))?;
                conn.release();
                Ok(found)
            }
            Err(error) => Err(self.failed(&error)),
        }
    }

    /// Runs `body` in one transaction and commits it. See the module documentation for when it
    /// is retried.
    pub async fn write<T, B>(self: &Arc<Self>, what: &'static str, body: B) -> Result<T, StoreError>
    where
        B: for<'c> AsyncTxBody<'c, T>,
    {
        let mut fresh = false;
        loop {
            let mut conn = if fresh { self.get_fresh().await? } else { self.get().await? };
            let outcome = run_in_transaction(conn.client(), &body).await;
            match outcome {
                Ok(value) => match conn.client().commit_transaction().await {
                    Ok(()) => {
                        conn.release();
                        return Ok(value);
                    }
                    Err(error) => return Err(self.failed(&error)),
                },
                Err(Failure::Db(error)) if !fresh && is_retryable(&error) => {
                    drop(conn);
                    if is_connection_error(&error) {
                        self.discard_idle();
                    }
                    tracing::warn!(what, %error, "SQL Server rolled the transaction back; retrying it once");
                    fresh = true;
                }
                Err(Failure::Db(error)) => return Err(self.failed(&error)),
                Err(Failure::Store(error)) => return Err(error),
            }
        }
    }
}

async fn run_in_transaction<T, B>(client: &mut Client, body: &B) -> Result<T, Failure>
where
    B: for<'c> AsyncTxBody<'c, T>,
{
    client.begin_transaction().await?;
    body.run(client).await
}

/// The work of one write transaction; implemented by the write operations (`write.rs`) so the
/// same body can run again on a retry.
pub(super) trait AsyncTxBody<'c, T> {
    fn run(&'c self, client: &'c mut Client) -> futures::future::BoxFuture<'c, Result<T, Failure>>;
}
