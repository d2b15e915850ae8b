//! Adopting an original Armada database: the original deployment created `armada_runs`,
//! `armada_jobs`, `armada_events`, `armada_output`, `armada_proxies` and `armada_fingerprints`
//! without keys, indexes or constraints (uuids as text, `event_content` as `NVARCHAR(255)`, no
//! `output_uuid`). When `armada migrate` finds such tables and no migrations table, it upgrades
//! them in place, inside the migration transaction, so it either completes or changes nothing:
//!
//! 1. checks the data against what the schema will require and refuses, naming the table and
//!    the offending value, when a uuid or datetime does not convert, a text is too long for its
//!    column, a required value is missing, a key is duplicated, or a row refers to a missing
//!    parent (an event whose job does not exist);
//! 2. per table: fills missing statuses and agent names with the API's defaults, converts
//!    columns to their types (text uuids → `UNIQUEIDENTIFIER`, `DATETIME` → `DATETIME2(6)`,
//!    `event_content` widened to `NVARCHAR(MAX)`, …), adds the missing columns (`seq` identity,
//!    `output_uuid` filled with `NEWID()`, the lifecycle columns as NULL, fingerprints' digests
//!    computed here) and the defaults;
//! 3. adds primary keys and unique keys, creates the tables the original lacked
//!    (`armada_job_logs`, and any other missing one), then the foreign keys and indexes.
//!
//! [`plan`] decides all of it from the catalog, without IO (and is unit-tested); [`adopt`] reads
//! the catalog and runs the plan. Columns Armada does not know are kept.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::exec::{Failure, execute, rows};
use super::limits;
use super::params::{Param, Statement};
use super::pool::Client;
use super::rows as decode;
use super::schema::{self, Column, OnNull, SqlType, TABLES, Table};
use super::sql::{self, Generated};
use crate::infra::db::StoreError;

/// One column of an existing table, as `sys.columns` describes it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CatalogColumn {
    pub name: String,
    /// `nvarchar`, `uniqueidentifier`, `datetime`, …
    pub type_name: String,
    /// In bytes; -1 for `MAX`.
    pub max_length: i16,
    pub scale: u8,
    pub nullable: bool,
    pub collation: Option<String>,
    pub identity: bool,
    pub has_default: bool,
}

/// An existing table: its columns and the names of its indexes and constraints.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct CatalogTable {
    pub name: String,
    pub columns: Vec<CatalogColumn>,
    pub constraints: Vec<String>,
    pub primary_key: Option<String>,
}

impl CatalogTable {
    fn column(&self, name: &str) -> Option<&CatalogColumn> {
        self.columns.iter().find(|c| c.name.eq_ignore_ascii_case(name))
    }
    fn has(&self, constraint: &str) -> bool {
        self.constraints.iter().any(|c| c.eq_ignore_ascii_case(constraint))
    }
}

/// A query that returns a row only when the data breaks a rule: `value` (and maybe `n`) fill
/// the message's `{value}` and `{n}`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    pub sql: String,
    pub message: String,
    /// The value may hold credentials (a proxy URL): mask it in the message.
    pub mask: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Check(Check),
    Sql(String),
    /// Computes `fingerprint_sha256` for every fingerprint that has none.
    FingerprintDigests,
}

/// The kinds of source types adoption can convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Uuid,
    Text,
    LegacyText,
    DateTime,
    DateTimeOffset,
    Integer,
    Decimal,
    Other,
}

fn class(type_name: &str) -> Class {
    match type_name.to_ascii_lowercase().as_str() {
        "uniqueidentifier" => Class::Uuid,
        "char" | "varchar" | "nchar" | "nvarchar" | "sysname" => Class::Text,
        "text" | "ntext" => Class::LegacyText,
        "datetime" | "datetime2" | "smalldatetime" | "date" => Class::DateTime,
        "datetimeoffset" => Class::DateTimeOffset,
        "tinyint" | "smallint" | "int" | "bigint" => Class::Integer,
        "decimal" | "numeric" => Class::Decimal,
        _ => Class::Other,
    }
}

fn same_type(existing: &CatalogColumn, target: SqlType) -> bool {
    let type_name = existing.type_name.to_ascii_lowercase();
    let collation_is = |wanted: &str| existing.collation.as_deref().is_some_and(|c| c.eq_ignore_ascii_case(wanted));
    match target {
        SqlType::Uuid => type_name == "uniqueidentifier",
        SqlType::DateTime2 => type_name == "datetime2" && existing.scale == 6,
        SqlType::BigInt => type_name == "bigint",
        SqlType::NVarChar(len, collation) => {
            type_name == "nvarchar"
                && i32::from(existing.max_length) == len.map_or(-1, |n| 2 * i32::from(n))
                && collation.is_none_or(collation_is)
        }
        SqlType::Char(n) => {
            type_name == "char" && i32::from(existing.max_length) == i32::from(n) && collation_is(schema::BINARY)
        }
    }
}

/// `col TYPE NULL|NOT NULL` for `ALTER COLUMN` (no identity, no default).
fn alter_column(table: &Table, column: &Column) -> String {
    let null = if column.nullable { "NULL" } else { "NOT NULL" };
    format!("ALTER TABLE {} ALTER COLUMN {} {} {null}", table.name, schema::ident(column.name), column.ty.render())
}

fn refuse(table: &str, detail: impl std::fmt::Display) -> String {
    format!("cannot adopt the original table {table}: {detail}; nothing was changed")
}

fn again() -> &'static str {
    "then run `armada migrate` again"
}

/// The checks and changes for converting an existing column to its target type.
fn conversion(table: &Table, existing: &CatalogColumn, column: &Column) -> Result<Vec<Check>, String> {
    let name = schema::ident(column.name);
    let from = class(&existing.type_name);
    let unsupported = || {
        refuse(
            table.name,
            format!("{} is {}, which cannot become {}", column.name, existing.type_name, column.ty.render()),
        )
    };
    let convertible = |target: &str, what: &str| Check {
        sql: format!(
            "SELECT TOP (1) CONVERT(NVARCHAR(4000), {name}) AS value FROM {table} WHERE {name} IS NOT NULL \
             AND TRY_CONVERT({target}, {name}) IS NULL",
            table = table.name
        ),
        message: format!(
            "{}: {} holds {{value}}, which is not {what}; correct or delete those rows, {}",
            table.name,
            column.name,
            again()
        ),
        mask: false,
    };
    Ok(match (column.ty, from) {
        (SqlType::Uuid, Class::Uuid) | (SqlType::DateTime2, Class::DateTime) | (SqlType::BigInt, Class::Integer) => {
            vec![]
        }
        (SqlType::Uuid, Class::Text) => vec![convertible("UNIQUEIDENTIFIER", "a uuid")],
        (SqlType::DateTime2, Class::Text) => vec![convertible("DATETIME2(6)", "a datetime")],
        (SqlType::BigInt, Class::Text | Class::Decimal) => vec![convertible("BIGINT", "an integer")],
        (SqlType::NVarChar(None, _), Class::Other | Class::DateTimeOffset) => return Err(unsupported()),
        (SqlType::NVarChar(None, _), _) => vec![],
        (SqlType::NVarChar(Some(n), _) | SqlType::Char(n), Class::Text | Class::LegacyText) => {
            let fits = existing.max_length > 0
                && i32::from(existing.max_length) <= 2 * i32::from(n)
                && existing.type_name.starts_with('n');
            if fits {
                vec![]
            } else {
                vec![Check {
                    sql: format!(
                        "SELECT TOP (1) CONVERT(NVARCHAR(4000), LEFT(CONVERT(NVARCHAR(MAX), {name}), 80)) AS value \
                         FROM {table} WHERE DATALENGTH(CONVERT(NVARCHAR(MAX), {name})) > {bytes}",
                        table = table.name,
                        bytes = 2 * u32::from(n)
                    ),
                    message: format!(
                        "{}: {} holds a value longer than {n} characters ({{value}}…); shorten it, {}",
                        table.name,
                        column.name,
                        again()
                    ),
                    mask: column.name == "proxy_url",
                }]
            }
        }
        (SqlType::NVarChar(Some(_), _), Class::Uuid | Class::DateTime | Class::Integer | Class::Decimal) => vec![],
        _ => return Err(unsupported()),
    })
}

fn null_check(table: &Table, column: &Column) -> Check {
    Check {
        sql: format!(
            "SELECT CONVERT(NVARCHAR(20), COUNT_BIG(*)) AS value FROM {table} WHERE {name} IS NULL HAVING COUNT_BIG(*) > 0",
            table = table.name,
            name = schema::ident(column.name)
        ),
        message: format!(
            "{}: {} is empty (NULL) in {{value}} rows; fill or delete those rows, {}",
            table.name,
            column.name,
            again()
        ),
        mask: false,
    }
}

/// The expression a key compares on once converted: uuids as uuids (so `ABC…` and `abc…` are
/// one key), texts in the target's collation.
fn key_expression(column: &Column) -> String {
    let name = schema::ident(column.name);
    match column.ty {
        SqlType::Uuid => format!("TRY_CONVERT(UNIQUEIDENTIFIER, {name})"),
        SqlType::NVarChar(_, Some(collation)) => format!("CONVERT(NVARCHAR(4000), {name}) COLLATE {collation}"),
        SqlType::Char(_) => format!("CONVERT(NVARCHAR(4000), {name}) COLLATE {}", schema::BINARY),
        _ => name,
    }
}

fn duplicate_check(table: &Table, column: &Column) -> Check {
    let key = key_expression(column);
    Check {
        sql: format!(
            "SELECT TOP (1) CONVERT(NVARCHAR(4000), k) AS value, COUNT_BIG(*) AS n FROM (SELECT {key} AS k FROM {table} \
             WHERE {key} IS NOT NULL) AS d GROUP BY k HAVING COUNT_BIG(*) > 1",
            table = table.name
        ),
        message: format!(
            "{}: {} {{value}} appears on {{n}} rows, but it must be unique; remove the duplicates, {}",
            table.name,
            column.name,
            again()
        ),
        mask: column.name == "proxy_url",
    }
}

fn orphan_check(table: &Table, key: &schema::ForeignKey, parent_exists: bool) -> Check {
    let column = schema::ident(key.column);
    let parent_noun = key.parent_column.trim_end_matches("_uuid");
    let sql = if parent_exists {
        format!(
            "SELECT TOP (1) CONVERT(NVARCHAR(4000), c.{column}) AS value FROM {table} AS c WHERE c.{column} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE TRY_CONVERT(UNIQUEIDENTIFIER, p.{parent_column}) = \
             TRY_CONVERT(UNIQUEIDENTIFIER, c.{column}))",
            table = table.name,
            parent = key.parent,
            parent_column = schema::ident(key.parent_column),
        )
    } else {
        format!(
            "SELECT TOP (1) CONVERT(NVARCHAR(4000), {column}) AS value FROM {table} WHERE {column} IS NOT NULL",
            table = table.name
        )
    };
    Check {
        sql,
        message: format!(
            "{}: {} {} refers to {parent_noun} {{value}}, which {} does not have; delete those rows or restore the \
             {parent_noun}, {}",
            table.name,
            if key.child_noun.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" },
            key.child_noun,
            key.parent,
            again()
        ),
        mask: false,
    }
}

/// Everything adoption does, in order, for the tables found (`catalog`), or why it cannot.
pub(super) fn plan(catalog: &[CatalogTable]) -> Result<Vec<Step>, String> {
    let found = |name: &str| catalog.iter().find(|t| t.name.eq_ignore_ascii_case(name));
    let mut checks = Vec::new();
    let mut columns = Vec::new();
    let mut keys = Vec::new();
    let mut created = Vec::new();
    let mut foreign_keys = Vec::new();
    let mut indexes = Vec::new();
    for table in &TABLES {
        let Some(existing) = found(table.name) else {
            created.push(Step::Sql(schema::create_table(table)));
            created.extend(table.indexes.iter().map(|index| Step::Sql(schema::create_index(table, index))));
            continue;
        };
        if let Some(pk) = &existing.primary_key
            && !table.constraints.iter().any(|c| c.name.eq_ignore_ascii_case(pk))
        {
            return Err(refuse(
                table.name,
                format!("it already has a primary key ({pk}); Armada adopts the original's tables, which had none"),
            ));
        }
        for extra in existing.columns.iter().filter(|c| table.column(&c.name).is_none()) {
            if extra.identity {
                return Err(refuse(table.name, format!("its identity column {} is not Armada's", extra.name)));
            }
            if !extra.nullable && !extra.has_default {
                return Err(refuse(
                    table.name,
                    format!(
                        "its column {} is NOT NULL without a default, so Armada's inserts would fail; make it NULL or give it a default",
                        extra.name
                    ),
                ));
            }
        }
        let mut added_computed = false;
        let mut fills = Vec::new();
        let mut alters = Vec::new();
        let mut adds = Vec::new();
        let mut defaults = Vec::new();
        for column in table.columns {
            let Some(current) = existing.column(column.name) else {
                match (column.identity, column.default, column.nullable, column.on_null) {
                    (true, _, _, _) | (_, Some(_), _, _) | (_, _, true, _) => {
                        adds.push(Step::Sql(format!(
                            "ALTER TABLE {} ADD {}",
                            table.name,
                            schema::column_definition(table, column)
                        )));
                    }
                    (_, _, _, OnNull::Computed) => {
                        let nullable = Column { nullable: true, ..*column };
                        adds.push(Step::Sql(format!(
                            "ALTER TABLE {} ADD {}",
                            table.name,
                            schema::column_definition(table, &nullable)
                        )));
                        added_computed = true;
                    }
                    _ => return Err(refuse(table.name, format!("it has no column {}", column.name))),
                }
                continue;
            };
            if column.identity != current.identity {
                return Err(refuse(
                    table.name,
                    format!("its column {} is {}an identity", column.name, if current.identity { "" } else { "not " }),
                ));
            }
            let type_changes = !same_type(current, column.ty);
            if type_changes {
                checks.extend(conversion(table, current, column)?.into_iter().map(Step::Check));
            }
            if !column.nullable && current.nullable {
                match column.on_null {
                    OnNull::Refuse => checks.push(Step::Check(null_check(table, column))),
                    OnNull::Fill(value) => fills.push(Step::Sql(format!(
                        "UPDATE {} SET {name} = {value} WHERE {name} IS NULL",
                        table.name,
                        name = schema::ident(column.name)
                    ))),
                    OnNull::Computed => {}
                }
            }
            if (type_changes || column.nullable != current.nullable) && !column.identity {
                if current.has_default {
                    return Err(refuse(
                        table.name,
                        format!(
                            "{} must change type or nullability but has a default constraint; drop it first",
                            column.name
                        ),
                    ));
                }
                alters.push(Step::Sql(alter_column(table, column)));
            }
            if let Some(default) = column.default
                && !current.has_default
            {
                defaults.push(Step::Sql(format!(
                    "ALTER TABLE {} ADD CONSTRAINT {} DEFAULT {default} FOR {}",
                    table.name,
                    schema::default_name(table, column),
                    schema::ident(column.name)
                )));
            }
        }
        for constraint in table.constraints.iter().filter(|c| !existing.has(c.name)) {
            for name in constraint.columns {
                if let (Some(column), Some(_)) = (table.column(name), existing.column(name))
                    && !column.identity
                {
                    checks.push(Step::Check(duplicate_check(table, column)));
                }
            }
            keys.push(Step::Sql(format!(
                "ALTER TABLE {} ADD CONSTRAINT {} {}",
                table.name, constraint.name, constraint.definition
            )));
        }
        for key in table.foreign_keys.iter().filter(|k| !existing.has(k.name)) {
            if existing.column(key.column).is_some() {
                let parent = found(key.parent).is_some_and(|p| p.column(key.parent_column).is_some());
                checks.push(Step::Check(orphan_check(table, key, parent)));
            }
            foreign_keys.push(Step::Sql(format!(
                "ALTER TABLE {} ADD {}",
                table.name,
                schema::foreign_key_definition(key)
            )));
        }
        for index in table.indexes.iter().filter(|i| !existing.has(i.name)) {
            indexes.push(Step::Sql(schema::create_index(table, index)));
        }
        columns.extend(fills);
        columns.extend(alters);
        columns.extend(adds);
        columns.extend(defaults);
        if added_computed {
            columns.push(Step::FingerprintDigests);
            let digest = table.column("fingerprint_sha256").expect("the fingerprints table has its digest");
            columns.push(Step::Check(duplicate_check(table, digest)));
            columns.push(Step::Sql(alter_column(table, digest)));
        }
    }
    Ok([checks, columns, keys, created, foreign_keys, indexes].concat())
}

/// `fingerprint_sha256` as the importer computes it: hex sha256 of
/// `antibot_vendor \n website \n data \n collecting_date` (absent values empty, `data` as compact
/// JSON when it parses, the date in microseconds), so importing a fingerprint already adopted
/// finds it a duplicate.
pub(super) fn fingerprint_digest(
    vendor: Option<&str>,
    website: Option<&str>,
    data: &str,
    collected_micros: Option<i64>,
) -> String {
    let data = serde_json::from_str::<serde_json::Value>(data).map_or_else(|_| data.to_string(), |v| v.to_string());
    let mut hasher = Sha256::new();
    hasher.update(vendor.unwrap_or_default());
    hasher.update(b"\n");
    hasher.update(website.unwrap_or_default());
    hasher.update(b"\n");
    hasher.update(data);
    hasher.update(b"\n");
    if let Some(micros) = collected_micros {
        hasher.update(micros.to_string());
    }
    hex::encode(hasher.finalize())
}

/// Reads the catalog of the original tables, plans, and runs the plan on `client` (inside the
/// caller's transaction: any refusal or failure leaves the database as it was).
pub(super) async fn adopt(client: &mut Client) -> Result<usize, Failure> {
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
fn refusal(check: &Check, value: &str, n: i64) -> String {
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
        let primary = row
            .try_get::<bool, _>(2)
            .ok()
            .flatten()
            .or_else(|| row.try_get::<i32, _>(2).ok().flatten().map(|v| v != 0));
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

#[cfg(test)]
#[path = "adopt_tests.rs"]
mod tests;
