//! The providers' inventory on SQLite: imports in one transaction (`ON CONFLICT DO NOTHING`
//! counts duplicates), random picks chosen by the database, and pages for the dashboard.
//!
//! Text filters compare with `COLLATE NOCASE` (ASCII case), as SQL Server's default collation
//! does; `proxy_location` is a containment test. `ORDER BY RANDOM() LIMIT 1` reads only the
//! matching rows and keeps one: the table never leaves the database. Tried proxies are
//! excluded through `json_each` on one bound JSON array, so the statement stays static.

use sqlx::sqlite::{SqlitePool, SqliteRow};

use super::rows::get;
use super::{read, unavailable};
use crate::infra::db::inventory::filter_text;
use crate::infra::db::{
    FingerprintFilter, FingerprintSummary, ImportOutcome, NewFingerprint, NewProxy, ProxyFilter, StoreError,
    StoredFingerprint, StoredProxy,
};
use crate::model::{Page, PageRequest, Timestamp};

/// The columns `proxy` reads, in a form `concat!` accepts.
macro_rules! proxy_columns {
    () => {
        "proxy_id, proxy_url, proxy_provider_name, proxy_type, proxy_rotation_strategy, proxy_location"
    };
}

pub(super) const RANDOM_PROXY: &str = concat!(
    "SELECT ",
    proxy_columns!(),
    " FROM armada_proxies \
     WHERE (?1 IS NULL OR proxy_provider_name = ?1 COLLATE NOCASE) \
     AND (?2 IS NULL OR proxy_type = ?2 COLLATE NOCASE) \
     AND (?3 IS NULL OR proxy_rotation_strategy = ?3 COLLATE NOCASE) \
     AND (?4 IS NULL OR instr(lower(proxy_location), lower(?4)) > 0) \
     AND proxy_id NOT IN (SELECT value FROM json_each(?5)) \
     ORDER BY RANDOM() LIMIT 1"
);

pub(super) const RANDOM_FINGERPRINT: &str = "SELECT fingerprint_id, antibot_vendor, website, collecting_date, data \
     FROM armada_fingerprints \
     WHERE (?1 IS NULL OR antibot_vendor = ?1 COLLATE NOCASE) \
     AND (?2 IS NULL OR website = ?2 COLLATE NOCASE) \
     AND (?3 IS NULL OR collecting_date >= ?3) \
     ORDER BY RANDOM() LIMIT 1";

pub(super) const LIST_PROXIES: &str =
    concat!("SELECT ", proxy_columns!(), " FROM armada_proxies ORDER BY proxy_id DESC LIMIT ? OFFSET ?");

pub(super) const LIST_FINGERPRINTS: &str = "SELECT fingerprint_id, antibot_vendor, website, collecting_date \
     FROM armada_fingerprints ORDER BY fingerprint_id DESC LIMIT ? OFFSET ?";

fn proxy(row: &SqliteRow) -> Result<StoredProxy, StoreError> {
    Ok(StoredProxy {
        proxy_id: get(row, "proxy_id")?,
        proxy_url: get(row, "proxy_url")?,
        proxy_provider_name: get(row, "proxy_provider_name")?,
        proxy_type: get(row, "proxy_type")?,
        proxy_rotation_strategy: get(row, "proxy_rotation_strategy")?,
        proxy_location: get(row, "proxy_location")?,
    })
}

fn fingerprint_summary(row: &SqliteRow) -> Result<FingerprintSummary, StoreError> {
    Ok(FingerprintSummary {
        fingerprint_id: get(row, "fingerprint_id")?,
        antibot_vendor: get(row, "antibot_vendor")?,
        website: get(row, "website")?,
        collecting_date: get::<Option<i64>>(row, "collecting_date")?.map(Timestamp::from_micros),
    })
}

pub(super) async fn import_proxies(pool: &SqlitePool, proxies: &[NewProxy]) -> Result<ImportOutcome, StoreError> {
    if let Some(index) = proxies.iter().position(|p| p.proxy_url.trim().is_empty()) {
        return Err(StoreError::Invalid(format!("proxy {} of the import has an empty proxy_url", index + 1)));
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    let mut outcome = ImportOutcome::default();
    for new in proxies {
        let done = sqlx::query(
            "INSERT INTO armada_proxies \
             (proxy_url, proxy_provider_name, proxy_type, proxy_rotation_strategy, proxy_location) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (proxy_url) DO NOTHING",
        )
        .bind(new.proxy_url.as_str())
        .bind(new.proxy_provider_name.as_deref())
        .bind(new.proxy_type.as_deref())
        .bind(new.proxy_rotation_strategy.as_deref())
        .bind(new.proxy_location.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        count(&mut outcome, done.rows_affected());
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(outcome)
}

pub(super) async fn import_fingerprints(
    pool: &SqlitePool,
    fingerprints: &[NewFingerprint],
) -> Result<ImportOutcome, StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(unavailable)?;
    let mut outcome = ImportOutcome::default();
    for new in fingerprints {
        let done = sqlx::query(
            "INSERT INTO armada_fingerprints (antibot_vendor, website, data, collecting_date, fingerprint_sha256) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint_sha256) DO NOTHING",
        )
        .bind(new.antibot_vendor.as_deref())
        .bind(new.website.as_deref())
        .bind(new.data_text())
        .bind(new.collecting_date.map(Timestamp::as_micros))
        .bind(new.digest())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        count(&mut outcome, done.rows_affected());
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(outcome)
}

fn count(outcome: &mut ImportOutcome, rows_affected: u64) {
    if rows_affected > 0 {
        outcome.imported += 1;
    } else {
        outcome.duplicates += 1;
    }
}

pub(super) async fn random_proxy(pool: &SqlitePool, filter: &ProxyFilter) -> Result<Option<StoredProxy>, StoreError> {
    let excluded = serde_json::to_string(&filter.exclude_ids).unwrap_or_else(|_| "[]".into());
    let row = sqlx::query(RANDOM_PROXY)
        .bind(filter_text(&filter.proxy_provider_name))
        .bind(filter_text(&filter.proxy_type))
        .bind(filter_text(&filter.proxy_rotation_strategy))
        .bind(filter_text(&filter.proxy_location))
        .bind(excluded)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    row.as_ref().map(proxy).transpose()
}

pub(super) async fn random_fingerprint(
    pool: &SqlitePool,
    filter: &FingerprintFilter,
) -> Result<Option<StoredFingerprint>, StoreError> {
    let row = sqlx::query(RANDOM_FINGERPRINT)
        .bind(filter_text(&filter.antibot_vendor))
        .bind(filter_text(&filter.website))
        .bind(filter.collected_since.map(Timestamp::as_micros))
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    let Some(row) = row else { return Ok(None) };
    let data: String = get(&row, "data")?;
    Ok(Some(StoredFingerprint {
        summary: fingerprint_summary(&row)?,
        // Rows written by other tools may hold plain text: hand it out as a JSON string.
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
    }))
}

pub(super) async fn list_proxies(pool: &SqlitePool, page: PageRequest) -> Result<Page<StoredProxy>, StoreError> {
    read::page(pool, LIST_PROXIES, "SELECT COUNT(*) FROM armada_proxies", None, page, proxy).await
}

pub(super) async fn list_fingerprints(
    pool: &SqlitePool,
    page: PageRequest,
) -> Result<Page<FingerprintSummary>, StoreError> {
    read::page(pool, LIST_FINGERPRINTS, "SELECT COUNT(*) FROM armada_fingerprints", None, page, fingerprint_summary)
        .await
}
