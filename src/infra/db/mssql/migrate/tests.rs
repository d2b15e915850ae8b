//! The `GO` splitter, the migration list, and what can be checked of the migration files
//! without a server. No T-SQL parser runs here: the files are checked for shape (one statement
//! per batch, known statement kinds, balanced parentheses, explicit nullability, T-SQL types, no
//! SQLite syntax). Whether SQL Server accepts them is only proven by the gated live tests.

use super::*;

fn sqls(batches: &[Batch]) -> Vec<&str> {
    batches.iter().map(|b| b.sql.as_str()).collect()
}

#[test]
fn go_lines_separate_batches_and_lines_are_counted() {
    let file = "-- header\nCREATE TABLE a (x INT NULL);\nGO\n\nCREATE INDEX a_x ON a (x);\ngo -- lower case, with a comment\n  GO  \n";
    let batches = split_batches(file).expect("splits");
    assert_eq!(sqls(&batches), ["-- header\nCREATE TABLE a (x INT NULL);", "CREATE INDEX a_x ON a (x);"]);
    assert_eq!(batches.iter().map(|b| b.line).collect::<Vec<_>>(), [2, 5], "the first line with code");
}

#[test]
fn go_inside_strings_comments_and_names_is_text() {
    let file = "UPDATE t SET s = N'line\nGO\nstill the string';\n/* a comment\nGO\n*/\nSELECT [odd\nGO\nname] FROM t;\nGO\nSELECT 2;";
    let batches = split_batches(file).expect("splits");
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert!(batches[0].sql.contains("still the string") && batches[0].sql.ends_with("FROM t;"));
    assert_eq!(batches[1].sql, "SELECT 2;");
}

#[test]
fn words_starting_with_go_and_escaped_quotes_do_not_confuse_it() {
    let file = "SELECT N'it''s' AS x; -- don't\nGOTO done;\nGO\n/* nested /* comment */ still GO */ SELECT 1;";
    let batches = split_batches(file).expect("splits");
    assert_eq!(
        sqls(&batches),
        ["SELECT N'it''s' AS x; -- don't\nGOTO done;", "/* nested /* comment */ still GO */ SELECT 1;"]
    );
}

#[test]
fn comment_only_batches_are_dropped() {
    let batches = split_batches("-- nothing\nGO\n/* still nothing */\nGO\nSELECT 1;\nGO").expect("splits");
    assert_eq!(sqls(&batches), ["SELECT 1;"]);
    assert!(split_batches("").expect("splits").is_empty());
}

#[test]
fn repeat_counts_and_unclosed_text_are_refused() {
    let err = split_batches("SELECT 1;\nGO 5\n").unwrap_err();
    assert!(err.starts_with("line 2: `GO 5`"), "{err}");
    assert!(split_batches("SELECT N'open;\nGO\n").unwrap_err().contains("a string"));
    assert!(split_batches("/* open\nGO\n").unwrap_err().contains("comment"));
    assert!(split_batches("SELECT [open\n").unwrap_err().contains("quoted identifier"));
}

#[test]
fn strip_comments_keeps_strings_and_names() {
    assert_eq!(strip_comments("a -- b\nc /* d */ e N'--x' [/*y*/]"), "a \nc   e N'--x' [/*y*/]");
}

#[test]
fn the_migration_list_is_the_folder() {
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/mssql");
    let mut files: Vec<String> = std::fs::read_dir(&folder)
        .expect("migrations/mssql")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    files.sort();
    let listed: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.name)).collect();
    assert_eq!(listed, files, "every file is listed in MIGRATIONS, in order");
    for (i, migration) in MIGRATIONS.iter().enumerate() {
        assert_eq!(migration.version, i32::try_from(i + 1).unwrap(), "versions are 1, 2, 3…");
        assert!(migration.name.starts_with(&format!("{:04}_", migration.version)), "{}", migration.name);
        let on_disk = std::fs::read_to_string(folder.join(format!("{}.sql", migration.name))).expect("file");
        assert_eq!(migration.sql, on_disk, "embedded = on disk");
    }
}

/// One statement, of a known kind, ending with `;`, parentheses balanced, T-SQL types only and
/// explicit NULL / NOT NULL on every column.
fn looks_like_tsql(batch: &str) -> Result<(), String> {
    let code = strip_comments(batch);
    let code = code.trim();
    if code.is_empty() {
        return Err("empty batch".into());
    }
    let upper = code.to_ascii_uppercase();
    let kinds = ["CREATE TABLE ", "CREATE INDEX ", "CREATE UNIQUE INDEX ", "ALTER TABLE ", "UPDATE ", "INSERT INTO "];
    if !kinds.iter().any(|k| upper.starts_with(k)) {
        return Err(format!("not a statement a migration should hold: {}", &code[..code.len().min(40)]));
    }
    // Outside strings and bracketed names: parentheses and statement ends.
    let (mut depth, mut ends, mut quote) = (0i64, 0, None::<char>);
    let mut words = String::new();
    for c in code.chars() {
        match quote {
            Some(close) if c == close => quote = None,
            Some(_) => continue,
            None => match c {
                '\'' => quote = Some('\''),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => depth -= 1,
                ';' => ends += 1,
                _ => {}
            },
        }
        if depth < 0 {
            return Err("a `)` closes nothing".into());
        }
        if quote.is_none() && c != ']' && c != '\'' {
            words.push(c);
        }
    }
    if depth != 0 || quote.is_some() {
        return Err("unbalanced parentheses or quotes".into());
    }
    if ends != 1 || !code.ends_with(';') {
        return Err(format!("{ends} statement ends; one batch holds one statement ending with `;`"));
    }
    for word in words.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if ["TEXT", "INTEGER", "REAL", "BLOB", "AUTOINCREMENT", "RETURNING", "LIMIT", "CONFLICT", "ROWID", "EXISTS"]
            .contains(&word)
        {
            return Err(format!("`{word}` is SQLite (or not T-SQL DDL)"));
        }
    }
    if upper.starts_with("CREATE TABLE ") {
        let body = &code[code.find('(').expect("(") + 1..code.rfind(')').expect(")")];
        let (mut depth, mut item, mut items) = (0, String::new(), Vec::new());
        for c in body.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(std::mem::take(&mut item));
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        items.push(item);
        for item in items.iter().map(|i| i.trim()) {
            if item.starts_with("CONSTRAINT ") {
                continue;
            }
            let mut parts = item.split_whitespace();
            let (_name, ty) = (parts.next(), parts.next().unwrap_or_default());
            let base = ty.split('(').next().unwrap_or_default();
            if !["BIGINT", "INT", "UNIQUEIDENTIFIER", "DATETIME2", "NVARCHAR", "CHAR", "BIT"].contains(&base) {
                return Err(format!("column `{item}`: {ty} is not one of the types Armada uses"));
            }
            if !item.contains(" NULL") {
                return Err(format!("column `{item}`: say NULL or NOT NULL (the default depends on session options)"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_migration_batch_looks_like_one_tsql_statement() {
    for migration in MIGRATIONS {
        let batches = split_batches(migration.sql).unwrap_or_else(|e| panic!("{}: {e}", migration.name));
        assert!(!batches.is_empty(), "{}", migration.name);
        for batch in &batches {
            looks_like_tsql(&batch.sql)
                .unwrap_or_else(|e| panic!("{} line {}: {e}\n{}", migration.name, batch.line, batch.sql));
        }
    }
}

#[test]
fn the_shape_check_catches_what_it_claims_to() {
    assert!(looks_like_tsql("CREATE TABLE t (a BIGINT NOT NULL);").is_ok());
    assert!(looks_like_tsql("CREATE TABLE t (a BIGINT NOT NULL)").is_err(), "no end");
    assert!(looks_like_tsql("CREATE TABLE t (a BIGINT NOT NULL;").is_err(), "unbalanced");
    assert!(looks_like_tsql("CREATE TABLE t (a INTEGER PRIMARY KEY AUTOINCREMENT);").is_err(), "SQLite");
    assert!(looks_like_tsql("CREATE TABLE t (a TEXT NOT NULL);").is_err(), "SQLite type");
    assert!(looks_like_tsql("CREATE TABLE t (a BIGINT);").is_err(), "implicit nullability");
    assert!(looks_like_tsql("CREATE TABLE t (a BIGINT NULL); CREATE INDEX i ON t (a);").is_err(), "two statements");
    assert!(looks_like_tsql("DROP TABLE t;").is_err(), "not a migration statement");
    assert!(looks_like_tsql("CREATE TABLE t ([text] NVARCHAR(MAX) NOT NULL);").is_ok(), "bracketed names are names");
}

#[test]
fn recorded_migrations_must_be_known_and_unchanged() {
    let initial = &MIGRATIONS[0];
    let good = Recorded { version: 1, name: initial.name.into(), checksum: checksum(initial.sql) };
    assert!(verify_recorded(std::slice::from_ref(&good)).is_ok());
    let changed = Recorded { checksum: "0".repeat(64), ..good.clone() };
    let err = verify_recorded(&[changed]).unwrap_err().to_string();
    assert!(err.contains("0001_initial was applied with other contents"), "{err}");
    let newer = Recorded { version: 999, name: "0999_future".into(), checksum: String::new() };
    let err = verify_recorded(&[good, newer]).unwrap_err().to_string();
    assert!(err.contains("migration 999 (0999_future)") && err.contains("newer"), "{err}");
    assert_eq!(checksum(initial.sql).len(), 64);
}
