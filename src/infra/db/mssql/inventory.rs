//! The providers' inventory on SQL Server, with the SQLite store's semantics: imports in one
//! transaction, all or nothing, duplicates skipped and counted; random picks made by the
//! database; pages, last imported first.
//!
//! An import is planned before anything is sent ([`ImportPlan`]): every row is checked (a value
//! SQL Server cannot store rejects the whole import, as an empty `proxy_url` does on both
//! stores), repeats within the file are dropped (the first row of a key wins, as with SQLite's
//! `ON CONFLICT DO NOTHING`), and the rest is cut into multi-row inserts within the
//! 2,100-parameter limit ([`limits::chunks`]). Each insert skips keys already stored and
//! `OUTPUT`s the ones it inserted: imported = rows output, duplicates = all the others.
//!
//! Where SQL Server differs and why: values longer than their column (`proxy_url` 800
//! characters, names 255, `website` 400) and dates outside the years 1–9999 are refused with
//! `Invalid` (SQLite would store them); two proxy urls that differ only by trailing spaces are one
//! key (SQL Server's `=` and unique keys ignore trailing spaces).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use futures::future::BoxFuture;

use super::exec::{AsyncTxBody, Failure, rows};
use super::limits;
use super::params::{Param, Statement, bounded, opt_datetime2};
use super::pool::{Client, Pool};
use super::read::{self, List};
use super::rows as decode;
use super::sql::{self, InsertTarget};
use super::write::insert_statement;
use crate::infra::db::inventory::filter_text;
use crate::infra::db::{
    FingerprintFilter, FingerprintSummary, ImportOutcome, NewFingerprint, NewProxy, ProxyFilter, StoreError,
    StoredFingerprint, StoredProxy,
};
use crate::model::{Page, PageRequest, Timestamp};

/// The longest values the inventory's columns hold (`NVARCHAR(n)`, in UTF-16 units).
pub(super) const MAX_PROXY_URL: usize = 800;
pub(super) const MAX_LABEL: usize = 255;
pub(super) const MAX_WEBSITE: usize = 400;

/// An import ready to run: its inserts, and how many rows it was given.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ImportPlan {
    pub rows: u64,
    pub statements: Vec<Statement>,
}

impl ImportPlan {
    /// Keeps the first row of each key, then cuts the rows kept into inserts. A row is its key and
    /// its values in the target's column order.
    fn new(target: &InsertTarget, rows: Vec<(String, Vec<Param>)>) -> Result<Self, StoreError> {
        let total = rows.len() as u64;
        let mut seen = HashSet::new();
        let kept: Vec<(String, Vec<Param>)> = rows.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect();
        let keys: Vec<&str> = kept.iter().map(|(key, _)| key.as_str()).collect();
        let statements = limits::chunks(&keys, target.params_per_row())
            .into_iter()
            .map(|chunk| insert_statement(target, kept[chunk].iter().map(|(_, values)| values.as_slice())))
            .collect::<Result<_, _>>()?;
        Ok(Self { rows: total, statements })
    }

    /// What the import did, given the rows its inserts output.
    pub fn outcome(&self, inserted: u64) -> ImportOutcome {
        ImportOutcome { imported: inserted, duplicates: self.rows.saturating_sub(inserted) }
    }
}

/// A proxy's duplicate key: its url as SQL Server compares it (trailing spaces ignored), so two
/// urls the server holds for one never meet in one insert, where they would break the unique key.
fn proxy_key(url: &str) -> String {
    url.trim_end_matches(' ').to_string()
}

pub(super) fn proxy_import(proxies: &[NewProxy]) -> Result<ImportPlan, StoreError> {
    let mut rows = Vec::with_capacity(proxies.len());
    for (i, new) in proxies.iter().enumerate() {
        if new.proxy_url.trim().is_empty() {
            return Err(StoreError::Invalid(format!("proxy {} of the import has an empty proxy_url", i + 1)));
        }
        let refuse = |e: StoreError| StoreError::Invalid(format!("proxy {} of the import: {e}", i + 1));
        bounded("proxy_url", &new.proxy_url, MAX_PROXY_URL).map_err(refuse)?;
        let labels = [
            ("proxy_provider_name", &new.proxy_provider_name),
            ("proxy_type", &new.proxy_type),
            ("proxy_rotation_strategy", &new.proxy_rotation_strategy),
            ("proxy_location", &new.proxy_location),
        ];
        let mut values = vec![Param::text(new.proxy_url.as_str())];
        for (field, value) in labels {
            if let Some(value) = value {
                bounded(field, value, MAX_LABEL).map_err(refuse)?;
            }
            values.push(Param::opt_text(value.as_deref()));
        }
        rows.push((proxy_key(&new.proxy_url), values));
    }
    ImportPlan::new(&sql::PROXIES, rows)
}

pub(super) fn fingerprint_import(fingerprints: &[NewFingerprint]) -> Result<ImportPlan, StoreError> {
    let mut rows = Vec::with_capacity(fingerprints.len());
    for (i, new) in fingerprints.iter().enumerate() {
        let refuse = |e: StoreError| StoreError::Invalid(format!("fingerprint {} of the import: {e}", i + 1));
        if let Some(vendor) = &new.antibot_vendor {
            bounded("antibot_vendor", vendor, MAX_LABEL).map_err(refuse)?;
        }
        if let Some(website) = &new.website {
            bounded("website", website, MAX_WEBSITE).map_err(refuse)?;
        }
        let collected = opt_datetime2("collecting_date", new.collecting_date).map_err(refuse)?;
        let digest = new.digest();
        let values = vec![
            Param::text(digest.as_str()),
            Param::opt_text(new.antibot_vendor.as_deref()),
            Param::opt_text(new.website.as_deref()),
            Param::text(new.data_text()),
            Param::opt_datetime(collected),
        ];
        rows.push((digest, values));
    }
    ImportPlan::new(&sql::FINGERPRINTS, rows)
}

/// An import's inserts, in one transaction; answers how many rows they inserted.
struct RunImport<'a>(&'a [Statement]);

impl<'c> AsyncTxBody<'c, u64> for RunImport<'_> {
    fn run(&'c self, client: &'c mut Client) -> BoxFuture<'c, Result<u64, Failure>> {
        Box::pin(async move {
            let mut inserted = 0;
            for statement in self.0 {
                inserted += rows(client, statement.clone()).await?.len() as u64;
            }
            Ok(inserted)
        })
    }
}

async fn run_import(pool: &Arc<Pool>, what: &'static str, plan: ImportPlan) -> Result<ImportOutcome, StoreError> {
    if plan.statements.is_empty() {
        return Ok(plan.outcome(0));
    }
    let inserted = pool.write(what, RunImport(&plan.statements)).await?;
    Ok(plan.outcome(inserted))
}

pub(super) async fn import_proxies(pool: &Arc<Pool>, proxies: &[NewProxy]) -> Result<ImportOutcome, StoreError> {
    run_import(pool, "import_proxies", proxy_import(proxies)?).await
}

pub(super) async fn import_fingerprints(
    pool: &Arc<Pool>,
    fingerprints: &[NewFingerprint],
) -> Result<ImportOutcome, StoreError> {
    run_import(pool, "import_fingerprints", fingerprint_import(fingerprints)?).await
}

/// `%value%` for `LIKE`: the value's own `%`, `_` and `[` made literal with T-SQL's brackets
/// (`[%]`, `[_]`, `[[]`), so the test is plain containment, as SQLite's `instr`.
pub(super) fn contains_pattern(value: &str) -> String {
    let mut pattern = String::with_capacity(value.len() + 2);
    pattern.push('%');
    for c in value.chars() {
        if matches!(c, '%' | '_' | '[') {
            pattern.extend(['[', c, ']']);
        } else {
            pattern.push(c);
        }
    }
    pattern.push('%');
    pattern
}

pub(super) fn random_proxy_statement(filter: &ProxyFilter) -> Result<Statement, StoreError> {
    let excluded = serde_json::to_string(&filter.exclude_ids)
        .map_err(|e| StoreError::Invalid(format!("the proxy ids to exclude: {e}")))?;
    Statement::new(
        &sql::RANDOM_PROXY,
        vec![
            Param::opt_text(filter_text(&filter.proxy_provider_name)),
            Param::opt_text(filter_text(&filter.proxy_type)),
            Param::opt_text(filter_text(&filter.proxy_rotation_strategy)),
            Param::Text(filter_text(&filter.proxy_location).map(contains_pattern)),
            Param::text(excluded),
        ],
    )
}

pub(super) async fn random_proxy(pool: &Arc<Pool>, filter: &ProxyFilter) -> Result<Option<StoredProxy>, StoreError> {
    let found = pool.read(random_proxy_statement(filter)?).await?;
    found.first().map(decode::proxy).transpose()
}

/// `collected_since` as a `datetime2` bound: year 1 when it is earlier (every stored date is on or
/// after it), `None` when it is past year 9999 (no stored date is).
pub(super) fn since_bound(since: Timestamp) -> Option<NaiveDateTime> {
    let naive = since.as_datetime().naive_utc();
    match naive.year() {
        ..=0 => NaiveDate::from_ymd_opt(1, 1, 1).and_then(|day| day.and_hms_opt(0, 0, 0)),
        1..=9999 => Some(naive),
        _ => None,
    }
}

/// The pick's statement, or `None` when nothing can match.
pub(super) fn random_fingerprint_statement(filter: &FingerprintFilter) -> Result<Option<Statement>, StoreError> {
    let since = match filter.collected_since.map(since_bound) {
        Some(None) => return Ok(None),
        Some(bound) => bound,
        None => None,
    };
    let statement = Statement::new(
        &sql::RANDOM_FINGERPRINT,
        vec![
            Param::opt_text(filter_text(&filter.antibot_vendor)),
            Param::opt_text(filter_text(&filter.website)),
            Param::opt_datetime(since),
        ],
    )?;
    Ok(Some(statement))
}

pub(super) async fn random_fingerprint(
    pool: &Arc<Pool>,
    filter: &FingerprintFilter,
) -> Result<Option<StoredFingerprint>, StoreError> {
    let Some(statement) = random_fingerprint_statement(filter)? else { return Ok(None) };
    let found = pool.read(statement).await?;
    found.first().map(decode::fingerprint).transpose()
}

pub(super) fn proxies_list() -> List {
    List { page: &sql::LIST_PROXIES, count: &sql::COUNT_PROXIES, filter: None }
}

pub(super) fn fingerprints_list() -> List {
    List { page: &sql::LIST_FINGERPRINTS, count: &sql::COUNT_FINGERPRINTS, filter: None }
}

pub(super) async fn list_proxies(pool: &Arc<Pool>, page: PageRequest) -> Result<Page<StoredProxy>, StoreError> {
    read::page(pool, proxies_list(), page, decode::proxy).await
}

pub(super) async fn list_fingerprints(
    pool: &Arc<Pool>,
    page: PageRequest,
) -> Result<Page<FingerprintSummary>, StoreError> {
    read::page(pool, fingerprints_list(), page, decode::fingerprint_summary).await
}

#[cfg(test)]
mod tests;
