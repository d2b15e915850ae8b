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

mod checks;
mod run;

use self::checks::{conversion, duplicate_check, null_check, orphan_check, same_type};
pub(super) use self::run::adopt;
#[cfg(test)]
use self::run::{fingerprint_digest, refusal};
use super::schema::{self, Column, OnNull, TABLES, Table};

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

#[cfg(test)]
mod tests;
