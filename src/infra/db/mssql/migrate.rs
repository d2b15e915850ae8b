//! Migrations: the numbered files of `migrations/mssql/` (embedded in the binary), split into
//! batches on `GO` lines, applied in order and recorded in `armada_schema_migrations` (version,
//! name, applied_at, checksum).
//!
//! All of it happens in one transaction on a dedicated connection holding an exclusive
//! application lock (`sp_getapplock`, owned by the transaction): when two replicas start at once,
//! the second waits for the first to commit, then finds everything applied. SQL Server's DDL is
//! transactional, so a failed migration leaves nothing behind. A migration file changed after it
//! was applied (checksum) or a database migrated by a newer Armada stops the migration with a
//! message saying so. An original database (tables, no migrations table) is adopted in place
//! first (`adopt.rs`).

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::adopt;
use super::exec::{Failure, execute, rows};
use super::params::{Param, Statement};
use super::pool::{Client, Pool};
use super::rows as decode;
use super::schema::TABLES;
use super::sql;
use crate::infra::db::StoreError;

pub(super) struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. A test checks this list against the folder.
pub(super) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_initial",
    sql: include_str!("../../../../migrations/mssql/0001_initial.sql"),
}];

pub(super) const MIGRATIONS_TABLE: &str = "armada_schema_migrations";
const LOCK_RESOURCE: &str = "armada_schema_migrations";
/// How long a replica waits for another one's migration before giving up.
const LOCK_WAIT: Duration = Duration::from_secs(600);
/// The migration connection's command timeout: longer than the lock wait, and long enough for
/// an `ALTER` of a large original table.
const MIGRATION_COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

pub(super) fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// A migration as recorded in the database.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Recorded {
    pub version: i32,
    pub name: String,
    pub checksum: String,
}

/// Refuses a database whose recorded migrations this binary does not know, or knows with
/// other contents.
pub(super) fn verify_recorded(recorded: &[Recorded]) -> Result<(), StoreError> {
    for done in recorded {
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == done.version) else {
            return Err(StoreError::Conflict(format!(
                "the database has migration {} ({}), which this armada does not know: it was migrated by a newer \
                 version of armada; run that version or newer",
                done.version, done.name
            )));
        };
        if checksum(known.sql) != done.checksum.trim() {
            return Err(StoreError::Conflict(format!(
                "migration {} was applied with other contents than migrations/mssql/{}.sql has now (checksum {} \
                 recorded); migrations must not change once applied: restore the file and add a new migration",
                known.name, known.name, done.checksum
            )));
        }
    }
    Ok(())
}

/// Applies what is pending; returns the names of the migrations applied now.
pub(super) async fn migrate(pool: &Pool) -> Result<Vec<String>, StoreError> {
    let mut client = pool.dedicated(Some(MIGRATION_COMMAND_TIMEOUT)).await?;
    match migrate_locked(&mut client).await {
        Ok(applied) => {
            client.commit_transaction().await.map_err(|e| pool.failed(&e))?;
            Ok(applied)
        }
        // Dropping the connection rolls the transaction back and releases the lock.
        Err(Failure::Db(e)) => Err(pool.failed(&e)),
        Err(Failure::Store(e)) => Err(e),
    }
}

async fn migrate_locked(client: &mut Client) -> Result<Vec<String>, Failure> {
    client.begin_transaction().await?;
    lock(client).await?;
    let existing = existing_tables(client).await?;
    let mut applied_now = Vec::new();
    let recorded = if existing.iter().any(|t| t.eq_ignore_ascii_case(MIGRATIONS_TABLE)) {
        recorded(client).await?
    } else {
        execute(client, Statement::new(&sql::CREATE_MIGRATIONS_TABLE, Vec::new())?).await?;
        if existing.is_empty() {
            Vec::new()
        } else {
            let steps = adopt::adopt(client).await?;
            tracing::info!(tables = ?existing, steps, "adopted the original tables");
            let initial = &MIGRATIONS[0];
            record(client, initial).await?;
            applied_now.push(format!("{} (adopted the original tables {})", initial.name, existing.join(", ")));
            vec![Recorded { version: initial.version, name: initial.name.into(), checksum: checksum(initial.sql) }]
        }
    };
    verify_recorded(&recorded)?;
    for migration in MIGRATIONS.iter().filter(|m| !recorded.iter().any(|r| r.version == m.version)) {
        let batches = split_batches(migration.sql)
            .map_err(|e| StoreError::Invalid(format!("migrations/mssql/{}.sql: {e}", migration.name)))?;
        for batch in batches {
            let result = match client.simple_query(batch.sql.as_str()).await {
                Ok(stream) => stream.into_results().await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                if super::pool::is_connection_error(&e) {
                    return Err(e.into());
                }
                return Err(StoreError::Unavailable(format!(
                    "migration {} failed at line {}: {e}; nothing was changed",
                    migration.name, batch.line
                ))
                .into());
            }
        }
        record(client, migration).await?;
        applied_now.push(migration.name.to_string());
    }
    Ok(applied_now)
}

async fn lock(client: &mut Client) -> Result<(), Failure> {
    let wait_ms = i32::try_from(LOCK_WAIT.as_millis()).unwrap_or(i32::MAX);
    let statement = Statement::new(
        &sql::GET_APPLOCK,
        vec![Param::text(LOCK_RESOURCE), Param::text("Exclusive"), Param::text("Transaction"), Param::Int(wait_ms)],
    )?;
    // The return code is the last result set (the procedure itself returns none).
    let results = statement.into_query().query(client).await?.into_results().await?;
    let row = results.iter().flatten().find(|row| row.columns().iter().any(|c| c.name() == "result"));
    let result = row.map(|row| row.try_get::<i32, _>("result")).transpose()?.flatten().unwrap_or(-999);
    if result < 0 {
        return Err(StoreError::Unavailable(format!(
            "could not take the migration lock {LOCK_RESOURCE} within {LOCK_WAIT:?} (sp_getapplock returned {result}): \
             another armada is still migrating this database"
        ))
        .into());
    }
    Ok(())
}

/// Which of Armada's tables (and the migrations table) exist, in the connection's default schema.
async fn existing_tables(client: &mut Client) -> Result<Vec<String>, Failure> {
    let mut names: Vec<Param> = TABLES.iter().map(|t| Param::text(t.name)).collect();
    names.push(Param::text(MIGRATIONS_TABLE));
    let found = rows(client, Statement::new(&sql::EXISTING_TABLES, names)?).await?;
    let mut tables: Vec<String> = found.iter().map(|row| decode::text(row, "name")).collect::<Result<_, _>>()?;
    tables.sort();
    Ok(tables)
}

async fn recorded(client: &mut Client) -> Result<Vec<Recorded>, Failure> {
    let found = rows(client, Statement::new(&sql::APPLIED_MIGRATIONS, Vec::new())?).await?;
    let mut recorded = Vec::new();
    for row in &found {
        recorded.push(Recorded {
            version: row.try_get::<i32, _>("version")?.unwrap_or_default(),
            name: decode::text(row, "name")?,
            checksum: decode::text(row, "checksum")?,
        });
    }
    Ok(recorded)
}

async fn record(client: &mut Client, migration: &Migration) -> Result<(), Failure> {
    let statement = Statement::new(
        &sql::RECORD_MIGRATION,
        vec![Param::Int(migration.version), Param::text(migration.name), Param::text(checksum(migration.sql))],
    )?;
    execute(client, statement).await?;
    Ok(())
}

/// One batch of a migration file and the line it starts on (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Batch {
    pub sql: String,
    pub line: usize,
}

/// Where a scan stands between characters: inside a (nested) block comment, a string, a
/// bracketed or double-quoted identifier, or plain text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Scan {
    comment_depth: usize,
    quote: Option<char>,
}

impl Scan {
    fn is_plain(self) -> bool {
        self.comment_depth == 0 && self.quote.is_none()
    }

    /// The line without its comments, advancing the state through it.
    fn line(&mut self, line: &str) -> String {
        let chars: Vec<char> = line.chars().collect();
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < chars.len() {
            let (c, next) = (chars[i], chars.get(i + 1).copied());
            if self.comment_depth > 0 {
                match (c, next) {
                    ('/', Some('*')) => (self.comment_depth, i) = (self.comment_depth + 1, i + 2),
                    ('*', Some('/')) => {
                        (self.comment_depth, i) = (self.comment_depth - 1, i + 2);
                        if self.comment_depth == 0 {
                            out.push(' ');
                        }
                    }
                    _ => i += 1,
                }
                continue;
            }
            if let Some(close) = self.quote {
                out.push(c);
                i += 1;
                if c == close {
                    // A doubled closing character is an escaped one, not the end.
                    if next == Some(close) {
                        out.push(close);
                        i += 1;
                    } else {
                        self.quote = None;
                    }
                }
                continue;
            }
            match (c, next) {
                ('-', Some('-')) => break,
                ('/', Some('*')) => (self.comment_depth, i) = (1, i + 2),
                ('\'', _) | ('"', _) | ('[', _) => {
                    self.quote = Some(if c == '[' { ']' } else { c });
                    out.push(c);
                    i += 1;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    }

    fn unterminated(self) -> Option<&'static str> {
        match (self.comment_depth, self.quote) {
            (0, None) => None,
            (_, Some('\'')) => Some("a string"),
            (_, Some(_)) => Some("a quoted identifier"),
            _ => Some("a /* comment"),
        }
    }
}

/// The text without `--` and `/* */` comments (strings and quoted names kept).
pub(super) fn strip_comments(sql: &str) -> String {
    let mut scan = Scan::default();
    sql.lines().map(|line| scan.line(line)).collect::<Vec<_>>().join("\n")
}

/// Splits a migration file on `GO` lines (SQL Server's batch separator, as in sqlcmd and SSMS):
/// a line holding only `GO` (any case, maybe a trailing `--` comment) outside strings and
/// comments. Batches with nothing but comments are dropped. `GO n` (repeat n times) is refused.
pub(super) fn split_batches(sql: &str) -> Result<Vec<Batch>, String> {
    fn finish(lines: &mut Vec<&str>, start: usize, batches: &mut Vec<Batch>) {
        let text = lines.join("\n");
        if !strip_comments(&text).trim().is_empty() {
            let skipped = lines.iter().take_while(|l| strip_comments(l).trim().is_empty()).count();
            batches.push(Batch { sql: text.trim().to_string(), line: start + skipped });
        }
        lines.clear();
    }
    let mut scan = Scan::default();
    let mut batches = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut start = 1;
    for (index, line) in sql.lines().enumerate() {
        let number = index + 1;
        if scan.is_plain() {
            let code = Scan::default().line(line);
            let mut words = code.split_whitespace();
            if words.next().is_some_and(|w| w.eq_ignore_ascii_case("GO")) {
                if let Some(count) = words.next() {
                    return Err(format!(
                        "line {number}: `GO {count}` repeats a batch; write the statements out instead"
                    ));
                }
                finish(&mut current, start, &mut batches);
                start = number + 1;
                continue;
            }
        }
        scan.line(line);
        current.push(line);
    }
    if let Some(what) = scan.unterminated() {
        return Err(format!("{what} is not closed by the end of the file"));
    }
    finish(&mut current, start, &mut batches);
    Ok(batches)
}

#[cfg(test)]
mod tests;
