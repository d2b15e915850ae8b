//! The checks adoption runs on the original data before changing anything, and how a source
//! column type converts to its target. Each check is a query returning a row only when the data
//! breaks a rule; its SQL is built from the schema's constants only (no quote, no value).

use super::{CatalogColumn, Check, again, refuse};
use crate::infra::db::mssql::schema::{self, Column, SqlType, Table};

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

pub(super) fn same_type(existing: &CatalogColumn, target: SqlType) -> bool {
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

/// The checks and changes for converting an existing column to its target type.
pub(super) fn conversion(table: &Table, existing: &CatalogColumn, column: &Column) -> Result<Vec<Check>, String> {
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

pub(super) fn null_check(table: &Table, column: &Column) -> Check {
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

pub(super) fn duplicate_check(table: &Table, column: &Column) -> Check {
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

pub(super) fn orphan_check(table: &Table, key: &schema::ForeignKey, parent_exists: bool) -> Check {
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
