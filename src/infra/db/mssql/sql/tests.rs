//! Every statement binds values as parameters and nothing else: checked on the text, since no
//! T-SQL parser runs here. What is checked: no quote at all (so no literal, hence no value, can
//! be in the text), no comment, placeholders `@P1..@Pn` used contiguously and exactly as many as
//! the statement declares (and as many as its callers bind: `Statement::new` refuses a mismatch),
//! within SQL Server's parameter limit, balanced parentheses, one statement per text.

use std::collections::BTreeSet;

use super::*;
use crate::infra::db::mssql::limits::{MAX_PARAMS, SERVER_PARAMETER_LIMIT, rows_per_statement};
use crate::infra::db::mssql::schema;

/// The numbers N of every `@PN` in the text; an error for `@P` not followed by a number.
fn placeholders_used(text: &str) -> Result<BTreeSet<usize>, String> {
    let mut used = BTreeSet::new();
    for (at, _) in text.match_indices("@P") {
        let digits: String = text[at + 2..].chars().take_while(char::is_ascii_digit).collect();
        let n: usize = digits.parse().map_err(|_| format!("`@P` without a number at byte {at}"))?;
        used.insert(n);
    }
    Ok(used)
}

fn check(name: &str, text: &str, params: usize) -> Result<(), String> {
    if text.contains('\'') {
        return Err(format!("{name}: a quote (literal) in the text"));
    }
    if text.contains("--") || text.contains("/*") {
        return Err(format!("{name}: a comment in the text"));
    }
    let used = placeholders_used(text).map_err(|e| format!("{name}: {e}"))?;
    let expected: BTreeSet<usize> = (1..=params).collect();
    if used != expected {
        return Err(format!("{name}: placeholders {used:?}, declared {params}"));
    }
    if params > MAX_PARAMS || params > SERVER_PARAMETER_LIMIT - 2 {
        return Err(format!("{name}: {params} parameters exceed the limit"));
    }
    let mut depth = 0i64;
    for c in text.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return Err(format!("{name}: a `)` closes nothing"));
        }
    }
    if depth != 0 {
        return Err(format!("{name}: unbalanced parentheses"));
    }
    // One statement per text, except the application lock, which must read its return code.
    if text.contains(';') && name != "GET_APPLOCK" {
        return Err(format!("{name}: more than one statement"));
    }
    Ok(())
}

#[test]
fn every_constant_statement_binds_only_parameters() {
    for sql in ALL {
        check(sql.name, sql.text, sql.params).unwrap_or_else(|e| panic!("{e}\n{}", sql.text));
    }
    let names: BTreeSet<&str> = ALL.iter().map(|s| s.name).collect();
    assert_eq!(names.len(), ALL.len(), "names are unique");
}

#[test]
fn generated_statements_bind_only_parameters_for_every_row_count() {
    for target in &INSERT_TARGETS {
        for rows in 1..=rows_per_statement(target.params_per_row()) {
            let insert = insert_rows(target, rows);
            check(insert.name, &insert.text, insert.params).unwrap_or_else(|e| panic!("{e} ({rows} rows)"));
            let select = select_stored(target, rows);
            check(select.name, &select.text, select.params).unwrap_or_else(|e| panic!("{e} ({rows} keys)"));
        }
    }
    for rows in 1..=rows_per_statement(2) {
        let update = set_fingerprint_digests(rows);
        check(update.name, &update.text, update.params).unwrap_or_else(|e| panic!("{e} ({rows} rows)"));
    }
}

#[test]
fn the_checker_refuses_literals_gaps_and_miscounts() {
    assert!(check("t", "SELECT @P1", 1).is_ok());
    assert!(check("t", "SELECT N'x'", 0).is_err(), "a literal");
    assert!(check("t", "SELECT @P1, @P3", 3).is_err(), "a gap");
    assert!(check("t", "SELECT @P1", 2).is_err(), "fewer used than declared");
    assert!(check("t", "SELECT @P1, @P2", 1).is_err(), "more used than declared");
    assert!(check("t", "SELECT @Px", 0).is_err());
    assert!(check("t", "SELECT 1 -- @P1", 0).is_err(), "a comment");
    assert!(check("t", "SELECT (1", 0).is_err());
    assert!(check("t", "SELECT 1; DROP TABLE armada_runs", 0).is_err());
    assert_eq!(placeholders_used("@P1 @P10 @P2").unwrap(), BTreeSet::from([1, 2, 10]));
}

#[test]
fn a_multi_row_insert_reads_as_intended() {
    let insert = insert_rows(&LOGS, 2);
    assert_eq!(insert.params, 8);
    assert_eq!(
        insert.text,
        "INSERT INTO armada_job_logs (chunk_uuid, job_uuid, [text]) OUTPUT inserted.chunk_uuid \
         SELECT v.chunk_uuid, v.job_uuid, v.[text] FROM (VALUES (@P1, @P2, @P3, @P4), (@P5, @P6, @P7, @P8)) \
         AS v (ord, chunk_uuid, job_uuid, [text]) WHERE NOT EXISTS (SELECT 1 FROM armada_job_logs AS t \
         WITH (UPDLOCK, HOLDLOCK) WHERE t.chunk_uuid = v.chunk_uuid) AND EXISTS (SELECT 1 FROM armada_jobs \
         AS j WHERE j.job_uuid = v.job_uuid) ORDER BY v.ord"
    );
    assert_eq!(
        select_stored(&LOGS, 3).text,
        "SELECT chunk_uuid, job_uuid FROM armada_job_logs WHERE chunk_uuid IN (@P1, @P2, @P3)"
    );
}

/// The batched inserts name real columns, keyed by the table's primary key.
#[test]
fn insert_targets_match_the_schema() {
    for target in &INSERT_TARGETS {
        let table = schema::TABLES.iter().find(|t| t.name == target.table).expect("table");
        for column in target.columns {
            let name = column.trim_matches(|c| c == '[' || c == ']');
            assert!(table.column(name).is_some(), "{}.{name}", table.name);
            assert_eq!(schema::ident(name), *column, "bracketed where T-SQL needs it");
        }
        assert_eq!(target.columns[0], target.key);
        let keyed = table.constraints.iter().any(|c| c.columns == [target.key]);
        assert!(keyed, "{}: {} is a key", table.name, target.key);
    }
}
