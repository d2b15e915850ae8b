use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::infra::db::mssql::migrate::{MIGRATIONS, split_batches, strip_comments};

/// Whitespace collapsed, comments dropped: what the server sees, give or take layout.
fn normalize(sql: &str) -> String {
    strip_comments(sql).split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_initial_migration_is_exactly_the_described_schema() {
    let file = MIGRATIONS[0].sql;
    let from_file: Vec<String> =
        split_batches(file).expect("splits").iter().map(|batch| normalize(&batch.sql)).collect();
    let rendered: Vec<String> = initial_batches().iter().map(|b| normalize(b)).collect();
    for (i, (file, described)) in from_file.iter().zip(&rendered).enumerate() {
        assert_eq!(file, described, "batch {i} of 0001_initial.sql differs from schema.rs");
    }
    assert_eq!(from_file.len(), rendered.len(), "rendered:\n{}", initial_batches().join("\nGO\n"));
}

#[test]
fn every_table_of_the_sqlite_schema_has_the_same_columns_here() {
    let sqlite = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite/0001_initial.sql"));
    for table in &TABLES {
        let start = sqlite.find(&format!("CREATE TABLE {} (", table.name)).expect("table in the SQLite schema");
        let body = &sqlite[start..start + sqlite[start..].find(");").expect("end of table")];
        let sqlite_columns: BTreeSet<&str> = body
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("--"))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| *name != "seq")
            .collect();
        let ours: BTreeSet<&str> = table.columns.iter().map(|c| c.name).filter(|n| *n != "seq").collect();
        assert_eq!(ours, sqlite_columns, "{}: the same columns as on SQLite (plus seq)", table.name);
    }
}

/// SQL Server refuses a cascading foreign key that opens a second cascade path between two
/// tables, or a cycle (error 1785). Counts the cascade paths between every pair of tables.
#[test]
fn cascades_never_reach_a_table_by_two_paths() {
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for table in &TABLES {
        for key in table.foreign_keys.iter().filter(|k| k.cascade) {
            children.entry(key.parent).or_default().push(table.name);
        }
    }
    fn paths<'a>(
        from: &'a str,
        children: &BTreeMap<&'a str, Vec<&'a str>>,
        counts: &mut BTreeMap<&'a str, usize>,
        depth: usize,
    ) {
        assert!(depth < 16, "a cascade cycle through {from}");
        for child in children.get(from).into_iter().flatten() {
            *counts.entry(child).or_default() += 1;
            paths(child, children, counts, depth + 1);
        }
    }
    for table in &TABLES {
        let mut counts = BTreeMap::new();
        paths(table.name, &children, &mut counts, 0);
        for (target, n) in counts {
            assert_eq!(n, 1, "{} reaches {target} by {n} cascade paths", table.name);
        }
    }
    // And the one that had to give way is the documented one.
    let output_job = OUTPUTS.foreign_keys.iter().find(|k| k.column == "job_uuid").expect("fk");
    assert!(!output_job.cascade);
}

#[test]
fn foreign_keys_reference_a_key_of_an_earlier_table() {
    for (position, table) in TABLES.iter().enumerate() {
        for key in table.foreign_keys {
            let parent = TABLES[..position].iter().find(|t| t.name == key.parent).expect("parent created earlier");
            let unique = parent.constraints.iter().any(|c| c.columns == [key.parent_column]);
            assert!(unique, "{}.{} references a non-key column", table.name, key.column);
            let (child_type, parent_type) =
                (table.column(key.column).expect("column").ty, parent.column(key.parent_column).expect("column").ty);
            assert_eq!(child_type, parent_type, "{}: same type on both sides", key.name);
        }
    }
}

fn key_bytes(table: &Table, columns: &str) -> usize {
    columns
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(|name| {
            let name = name.trim().trim_matches(|c| c == '[' || c == ']');
            match table.column(name).unwrap_or_else(|| panic!("{}: no column {name}", table.name)).ty {
                SqlType::Uuid => 16,
                SqlType::DateTime2 | SqlType::BigInt => 8,
                SqlType::NVarChar(Some(n), _) => 2 * usize::from(n),
                SqlType::NVarChar(None, _) => panic!("{}: an NVARCHAR(MAX) column cannot be an index key", table.name),
                SqlType::Char(n) => usize::from(n),
            }
        })
        .sum()
}

/// Nonclustered index keys are limited to 1,700 bytes, clustered ones to 900: a longer value
/// would be refused at insert time, not at creation.
#[test]
fn index_keys_fit_sql_server_limits() {
    for table in &TABLES {
        for index in table.indexes {
            assert!(key_bytes(table, index.columns) <= 1700, "{}", index.name);
        }
        for constraint in table.constraints {
            let columns = &constraint.definition[constraint.definition.find('(').expect("columns")..];
            let limit =
                if constraint.definition.contains("NONCLUSTERED") || !constraint.definition.contains("CLUSTERED") {
                    1700
                } else {
                    900
                };
            assert!(key_bytes(table, columns) <= limit, "{}", constraint.name);
        }
    }
}

#[test]
fn every_record_table_has_one_clustered_identity_key() {
    for table in &TABLES {
        let identities: Vec<&str> = table.columns.iter().filter(|c| c.identity).map(|c| c.name).collect();
        assert_eq!(identities.len(), 1, "{}", table.name);
        let clustered: Vec<&Constraint> = table
            .constraints
            .iter()
            .filter(|c| c.definition.contains(" CLUSTERED") && !c.definition.contains("NONCLUSTERED"))
            .collect();
        assert_eq!(clustered.len(), 1, "{}", table.name);
        assert_eq!(clustered[0].columns, [identities[0]], "{}: clustered on its identity", table.name);
    }
}
