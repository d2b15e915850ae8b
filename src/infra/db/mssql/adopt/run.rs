//! Running an adoption: reading the catalog, running the planned steps inside the migration's
//! transaction, and computing the fingerprints' digests.

use std::collections::HashSet;

use super::{CatalogColumn, CatalogTable, Check, Step, plan};
use crate::infra::db::mssql::exec::{Failure, execute, rows};
use crate::infra::db::mssql::limits;
use crate::infra::db::mssql::params::{Param, Statement};
use crate::infra::db::mssql::pool::Client;
use crate::infra::db::mssql::rows as decode;
use crate::infra::db::mssql::schema::TABLES;
use crate::infra::db::mssql::sql::{self, Generated};
use crate::infra::db::{NewFingerprint, StoreError};
use crate::model::Timestamp;

/// `fingerprint_sha256` of an adopted row: [`NewFingerprint::digest`], the importer's own, so
/// importing a fingerprint already adopted finds it a duplicate. `data` is read as the stores read
/// it back: JSON when it parses (compacted by the digest), otherwise the text as a JSON string.
pub(super) fn fingerprint_digest(
    vendor: Option<&str>,
    website: Option<&str>,
    data: &str,
    collected_micros: Option<i64>,
) -> String {
    NewFingerprint {
        antibot_vendor: vendor.map(String::from),
        website: website.map(String::from),
        data: serde_json::from_str(data).unwrap_or_else(|_| serde_json::Value::String(data.to_string())),
        collecting_date: collected_micros.map(Timestamp::from_micros),
    }
    .digest()
}

/// Reads the catalog of the original tables, plans, and runs the plan on `client` (inside the
/// caller's transaction: any refusal or failure leaves the database as it was).
pub(in crate::infra::db::mssql) async fn adopt(client: &mut Client) -> Result<usize, Failure> {
    let catalog = read_catalog(client).await?;
    let steps = plan(&catalog).map_err(StoreError::Conflict)?;
    let total = steps.len();
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Check(check) => {
                let found = rows(client, generated("adoption_check", check.sql.clone())?).await?;
                if let Some(row) = found.first() {
                    return Err(StoreError::Conflict(check_message(&check, row)).into());
                }
            }
            Step::Sql(text) => {
                tracing::info!(step = n + 1, of = total, statement = %text, "adopting the original tables");
                execute(client, generated("adoption_step", text)?).await?;
            }
            Step::FingerprintDigests => fill_fingerprint_digests(client).await?,
        }
    }
    Ok(total)
}

fn generated(name: &'static str, text: String) -> Result<Statement, StoreError> {
    Statement::generated(Generated { name, text, params: 0 }, Vec::new())
}

fn check_message(check: &Check, row: &tiberius::Row) -> String {
    let value = row.try_get::<&str, _>(0).ok().flatten().unwrap_or("NULL");
    let n = if row.len() > 1 { row.try_get::<i64, _>(1).ok().flatten().unwrap_or_default() } else { 0 };
    refusal(check, value, n)
}

/// The check's message with the offending value (masked when it may hold credentials).
pub(super) fn refusal(check: &Check, value: &str, n: i64) -> String {
    let value = if check.mask { crate::settings::redact_url(value) } else { value.to_string() };
    check.message.replace("{value}", &value).replace("{n}", &n.to_string())
}

async fn read_catalog(client: &mut Client) -> Result<Vec<CatalogTable>, Failure> {
    let names: Vec<Param> = TABLES.iter().map(|t| Param::text(t.name)).collect();
    let mut catalog: Vec<CatalogTable> = Vec::new();
    for row in rows(client, Statement::new(&sql::CATALOG_COLUMNS, names.clone())?).await? {
        let table = decode::text(&row, "table_name")?;
        let column = CatalogColumn {
            name: decode::text(&row, "column_name")?,
            type_name: decode::text(&row, "type_name")?,
            max_length: row.try_get::<i16, _>("max_length")?.unwrap_or_default(),
            scale: row.try_get::<u8, _>("scale")?.unwrap_or_default(),
            nullable: row.try_get::<bool, _>("is_nullable")?.unwrap_or(true),
            collation: decode::opt_text(&row, "collation_name")?,
            identity: row.try_get::<bool, _>("is_identity")?.unwrap_or(false),
            has_default: row.try_get::<i32, _>("default_object_id")?.unwrap_or_default() != 0,
        };
        match catalog.iter_mut().find(|t| t.name == table) {
            Some(existing) => existing.columns.push(column),
            None => catalog.push(CatalogTable { name: table, columns: vec![column], ..CatalogTable::default() }),
        }
    }
    for row in rows(client, Statement::new(&sql::CATALOG_INDEXES, names)?).await? {
        let table = decode::text(&row, "table_name")?;
        let index = decode::text(&row, "index_name")?;
        let primary = row.try_get::<bool, _>("is_primary_key")?;
        if let Some(entry) = catalog.iter_mut().find(|t| t.name == table) {
            if primary == Some(true) {
                entry.primary_key = Some(index.clone());
            }
            entry.constraints.push(index);
        }
    }
    Ok(catalog)
}

/// Digests for every fingerprint without one, a page of ids at a time.
async fn fill_fingerprint_digests(client: &mut Client) -> Result<(), Failure> {
    let page = limits::rows_per_statement(2).min(500);
    let mut after = 0i64;
    loop {
        let statement =
            Statement::new(&sql::FINGERPRINTS_WITHOUT_DIGEST, vec![Param::bigint(page as i64), Param::bigint(after)])?;
        let found = rows(client, statement).await?;
        if found.is_empty() {
            return Ok(());
        }
        let mut params = Vec::with_capacity(found.len() * 2);
        let mut seen = HashSet::new();
        for row in &found {
            let id = decode::bigint(row, "fingerprint_id")?;
            let collected = decode::opt_datetime(row, "collecting_date")?.map(|t| t.as_micros());
            let digest = fingerprint_digest(
                decode::opt_text(row, "antibot_vendor")?.as_deref(),
                decode::opt_text(row, "website")?.as_deref(),
                &decode::text(row, "data")?,
                collected,
            );
            seen.insert(id);
            params.extend([Param::bigint(id), Param::text(digest)]);
            after = after.max(id);
        }
        execute(client, Statement::generated(sql::set_fingerprint_digests(seen.len()), params)?).await?;
    }
}
