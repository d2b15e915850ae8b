//! Every statement the SQL Server store sends, as constants (or text generated from constants
//! only: the multi-row inserts and `IN` lists), each with the number of `@P` parameters it takes.
//! No value ever becomes SQL text: table and column names are constants, values are bound.
//! The tests below check each statement against that rule without a server. The providers'
//! inventory has its own file, `sql/inventory.rs`.
//!
//! Dialect notes for whoever adds statements:
//! - paging: `ORDER BY … OFFSET @Pn ROWS FETCH NEXT @Pm ROWS ONLY` (needs an `ORDER BY`; end it
//!   with `seq DESC` or the identity key so ties keep insertion order, as SQLite's `rowid`);
//!   `COUNT_BIG(*) OVER ()` returns the total in the same statement (see `LIST_RUNS`);
//! - random pick: `SELECT TOP (1) … WHERE <filters> ORDER BY NEWID()` reads every matching row
//!   once (fine for thousands; see `sql/inventory.rs` for a large proxy table);
//! - a list of ids to exclude: `NOT IN (SELECT CAST([value] AS BIGINT) FROM OPENJSON(@Pn))` with
//!   the ids as one JSON array parameter (database compatibility level 130, SQL Server 2016+),
//!   never a `NOT IN` built from values;
//! - containment: `col LIKE @Pn` with the pattern `%value%` bound, its wildcards made literal in
//!   Rust by T-SQL's brackets (`[%]`, `[_]`, `[[]`): no `ESCAPE` clause, so no literal and no
//!   escape character to escape in turn (see `inventory::contains_pattern`);
//! - case: status and agent columns use a binary collation (`Latin1_General_100_BIN2`), so
//!   equality, `GROUP BY` and `ORDER BY` behave as SQLite's; the inventory's filter columns use a
//!   case-insensitive one, so `proxy_type = @P1` ignores case without `LOWER()` (a bound value
//!   takes the column's collation). Whatever the collation, `=` ignores trailing spaces;
//! - time arithmetic: `DATEDIFF_BIG(microsecond, @Pn, col)` with the Unix epoch bound as `@Pn`
//!   gives the microseconds SQLite stores (no date literal needed);
//! - 2,100 parameters per statement at most (see [`super::limits`]).

/// A constant statement and how many parameters it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Sql {
    pub name: &'static str,
    pub text: &'static str,
    pub params: usize,
}

/// A statement generated from constants for a number of rows or keys known at run time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Generated {
    pub name: &'static str,
    pub text: String,
    pub params: usize,
}

macro_rules! run_columns {
    () => {
        "run_uuid, run_datetime, run_status, number_of_agents, number_of_jobs, run_detail, run_finished"
    };
}
macro_rules! job_columns {
    () => {
        "job_uuid, run_uuid, job_datetime, job_associated_agent, job_status, job_index, job_attempts, job_detail, job_finished"
    };
}
macro_rules! event_columns {
    () => {
        "event_uuid, event_content, job_uuid, event_datetime, event_status"
    };
}
macro_rules! output_columns {
    () => {
        "output_uuid, run_uuid, job_uuid, data, [timestamp]"
    };
}

macro_rules! sql {
    ($name:ident, $params:expr, $($text:expr),+ $(,)?) => {
        pub(in crate::infra::db::mssql) const $name: Sql =
            Sql { name: stringify!($name), text: concat!($($text),+), params: $params };
    };
}

mod inventory;

pub(super) use self::inventory::*;

// ---------------------------------------------------------------- single rows
sql!(SELECT_ONE, 0, "SELECT 1");
sql!(FIND_RUN, 1, "SELECT ", run_columns!(), " FROM armada_runs WHERE run_uuid = @P1");
sql!(FIND_JOB, 1, "SELECT ", job_columns!(), " FROM armada_jobs WHERE job_uuid = @P1");
// Read-modify-write inside the write transaction: the update lock keeps a concurrent writer of
// the same row waiting until we commit.
sql!(LOCK_RUN, 1, "SELECT ", run_columns!(), " FROM armada_runs WITH (UPDLOCK, ROWLOCK) WHERE run_uuid = @P1");
sql!(LOCK_JOB, 1, "SELECT ", job_columns!(), " FROM armada_jobs WITH (UPDLOCK, ROWLOCK) WHERE job_uuid = @P1");
sql!(LOCK_EVENT, 1, "SELECT ", event_columns!(), " FROM armada_events WITH (UPDLOCK, ROWLOCK) WHERE event_uuid = @P1");
sql!(
    UPDATE_RUN,
    4,
    "UPDATE armada_runs SET run_status = @P1, run_detail = @P2, run_finished = @P3 WHERE run_uuid = @P4"
);
sql!(
    UPDATE_JOB,
    6,
    "UPDATE armada_jobs SET job_status = @P1, job_associated_agent = @P2, job_attempts = @P3, job_detail = @P4, ",
    "job_finished = @P5 WHERE job_uuid = @P6"
);
sql!(UPDATE_EVENT, 2, "UPDATE armada_events SET event_status = @P1 WHERE event_uuid = @P2");

// ---------------------------------------------------------------- pages, newest first
// `seq` (an identity) breaks ties in insertion order, as SQLite's rowid does. The window count
// is the total of the whole filtered list, read by the same statement as the page.
sql!(
    LIST_RUNS,
    2,
    "SELECT ",
    run_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_runs ",
    "ORDER BY run_datetime DESC, seq DESC OFFSET @P1 ROWS FETCH NEXT @P2 ROWS ONLY"
);
sql!(COUNT_RUNS, 0, "SELECT COUNT_BIG(*) FROM armada_runs");
sql!(
    LIST_JOBS_OF_RUN,
    3,
    "SELECT ",
    job_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_jobs WHERE run_uuid = @P1 ",
    "ORDER BY job_datetime DESC, seq DESC OFFSET @P2 ROWS FETCH NEXT @P3 ROWS ONLY"
);
sql!(COUNT_JOBS_OF_RUN, 1, "SELECT COUNT_BIG(*) FROM armada_jobs WHERE run_uuid = @P1");
sql!(
    LIST_JOBS,
    2,
    "SELECT ",
    job_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_jobs ",
    "ORDER BY job_datetime DESC, seq DESC OFFSET @P1 ROWS FETCH NEXT @P2 ROWS ONLY"
);
sql!(COUNT_JOBS, 0, "SELECT COUNT_BIG(*) FROM armada_jobs");
sql!(
    LIST_EVENTS_OF_JOB,
    3,
    "SELECT ",
    event_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_events WHERE job_uuid = @P1 ",
    "ORDER BY event_datetime DESC, seq DESC OFFSET @P2 ROWS FETCH NEXT @P3 ROWS ONLY"
);
sql!(COUNT_EVENTS_OF_JOB, 1, "SELECT COUNT_BIG(*) FROM armada_events WHERE job_uuid = @P1");
sql!(
    LIST_OUTPUTS_OF_RUN,
    3,
    "SELECT ",
    output_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_output WHERE run_uuid = @P1 ",
    "ORDER BY [timestamp] DESC, seq DESC OFFSET @P2 ROWS FETCH NEXT @P3 ROWS ONLY"
);
sql!(COUNT_OUTPUTS_OF_RUN, 1, "SELECT COUNT_BIG(*) FROM armada_output WHERE run_uuid = @P1");
sql!(
    LIST_OUTPUTS,
    2,
    "SELECT ",
    output_columns!(),
    ", COUNT_BIG(*) OVER () AS total_rows FROM armada_output ",
    "ORDER BY [timestamp] DESC, seq DESC OFFSET @P1 ROWS FETCH NEXT @P2 ROWS ONLY"
);
sql!(COUNT_OUTPUTS, 0, "SELECT COUNT_BIG(*) FROM armada_output");

// ---------------------------------------------------------------- run views
sql!(
    COUNT_JOBS_BY_STATUS,
    1,
    "SELECT job_status, COUNT_BIG(*) AS n FROM armada_jobs WHERE run_uuid = @P1 GROUP BY job_status ORDER BY job_status"
);
// @P2 = Success, @P3 = Failed, @P4 = Queued (bound, so no literal appears here).
sql!(
    AGENT_SUMMARIES,
    4,
    "SELECT job_associated_agent, COUNT_BIG(*) AS taken, ",
    "SUM(CASE WHEN job_status = @P2 THEN CAST(1 AS BIGINT) ELSE 0 END) AS succeeded, ",
    "SUM(CASE WHEN job_status = @P3 THEN CAST(1 AS BIGINT) ELSE 0 END) AS failed, ",
    "MAX(CASE WHEN job_finished > job_datetime THEN job_finished ELSE job_datetime END) AS last_seen ",
    "FROM armada_jobs WHERE run_uuid = @P1 AND job_status <> @P4 ",
    "GROUP BY job_associated_agent ORDER BY job_associated_agent"
);
sql!(
    RUNNING_JOBS_BY_AGENT,
    2,
    "SELECT job_associated_agent, job_uuid FROM armada_jobs WHERE run_uuid = @P1 AND job_status = @P2 ",
    "ORDER BY job_datetime, seq"
);
// Finished jobs per (bucket, status): @P1 the Unix epoch, @P2 the bucket size in microseconds,
// @P3 the run, @P4..@P6 the final statuses. `/` on BIGINTs truncates toward zero, as SQLite's
// does, so the buckets are SQLite's to the microsecond (aligned to the epoch).
sql!(
    JOB_TIMELINE,
    6,
    "SELECT bucket, job_status, COUNT_BIG(*) AS n FROM (SELECT ",
    "(DATEDIFF_BIG(microsecond, @P1, COALESCE(job_finished, job_datetime)) / @P2) * @P2 AS bucket, job_status ",
    "FROM armada_jobs WHERE run_uuid = @P3 AND job_status IN (@P4, @P5, @P6)) AS finished ",
    "GROUP BY bucket, job_status ORDER BY bucket, job_status"
);
// Keyset paging through a job's log, newest first: @P2 chunks older than seq @P3.
sql!(
    LOG_CHUNKS_BEFORE,
    3,
    "SELECT TOP (@P2) seq, [text] FROM armada_job_logs WHERE job_uuid = @P1 AND seq < @P3 ORDER BY seq DESC"
);

// ---------------------------------------------------------------- run lifecycle
// Children before parents, all in one transaction. Outputs go by their run and by their job
// (an output's job may belong to the run even if its run_uuid says otherwise): the foreign key
// from armada_output.job_uuid does not cascade (SQL Server forbids two cascade paths from
// armada_runs to armada_output), so those rows must be gone before the jobs.
sql!(
    DELETE_RUN_LOGS,
    1,
    "DELETE FROM armada_job_logs WHERE job_uuid IN (SELECT job_uuid FROM armada_jobs WHERE run_uuid = @P1)"
);
sql!(
    DELETE_RUN_EVENTS,
    1,
    "DELETE FROM armada_events WHERE job_uuid IN (SELECT job_uuid FROM armada_jobs WHERE run_uuid = @P1)"
);
sql!(
    DELETE_RUN_OUTPUTS,
    1,
    "DELETE FROM armada_output WHERE run_uuid = @P1 ",
    "OR job_uuid IN (SELECT job_uuid FROM armada_jobs WHERE run_uuid = @P1)"
);
sql!(DELETE_RUN_JOBS, 1, "DELETE FROM armada_jobs WHERE run_uuid = @P1");
sql!(DELETE_RUN, 1, "DELETE FROM armada_runs WHERE run_uuid = @P1");
// @P5..@P7 = the final statuses.
sql!(
    FINISH_OPEN_JOBS,
    7,
    "UPDATE armada_jobs SET job_status = @P1, job_detail = @P2, job_finished = @P3 ",
    "OUTPUT inserted.job_uuid, inserted.run_uuid, inserted.job_datetime, inserted.job_associated_agent, ",
    "inserted.job_status, inserted.job_index, inserted.job_attempts, inserted.job_detail, inserted.job_finished ",
    "WHERE run_uuid = @P4 AND job_status NOT IN (@P5, @P6, @P7)"
);

// ---------------------------------------------------------------- migrations
// The names of the tables among @P1..@P8 that exist in the connection's default schema.
sql!(
    EXISTING_TABLES,
    8,
    "SELECT name FROM sys.tables WHERE schema_id = SCHEMA_ID() ",
    "AND name IN (@P1, @P2, @P3, @P4, @P5, @P6, @P7, @P8)"
);
// @P1 resource, @P2 mode, @P3 owner, @P4 timeout in ms. Released when the transaction ends.
sql!(
    GET_APPLOCK,
    4,
    "DECLARE @result INT; EXEC @result = sp_getapplock @Resource = @P1, @LockMode = @P2, @LockOwner = @P3, ",
    "@LockTimeout = @P4; SELECT @result AS result"
);
sql!(
    CREATE_MIGRATIONS_TABLE,
    0,
    "CREATE TABLE armada_schema_migrations (version INT NOT NULL CONSTRAINT armada_schema_migrations_pk PRIMARY KEY, ",
    "name NVARCHAR(255) NOT NULL, applied_at DATETIME2(6) NOT NULL, checksum CHAR(64) NOT NULL)"
);
sql!(APPLIED_MIGRATIONS, 0, "SELECT version, name, checksum FROM armada_schema_migrations ORDER BY version");
sql!(
    RECORD_MIGRATION,
    3,
    "INSERT INTO armada_schema_migrations (version, name, applied_at, checksum) VALUES (@P1, @P2, SYSUTCDATETIME(), @P3)"
);
// The catalog of the original tables, for adoption (@P1..@P7: the seven table names).
sql!(
    CATALOG_COLUMNS,
    7,
    "SELECT t.name AS table_name, c.name AS column_name, ty.name AS type_name, c.max_length, c.scale, c.is_nullable, ",
    "c.collation_name, c.is_identity, c.default_object_id FROM sys.columns AS c ",
    "JOIN sys.tables AS t ON t.object_id = c.object_id JOIN sys.types AS ty ON ty.user_type_id = c.user_type_id ",
    "WHERE t.schema_id = SCHEMA_ID() AND t.name IN (@P1, @P2, @P3, @P4, @P5, @P6, @P7) ORDER BY t.name, c.column_id"
);
sql!(
    CATALOG_INDEXES,
    7,
    "SELECT t.name AS table_name, i.name AS index_name, i.is_primary_key FROM sys.indexes AS i ",
    "JOIN sys.tables AS t ON t.object_id = i.object_id WHERE i.name IS NOT NULL AND t.schema_id = SCHEMA_ID() ",
    "AND t.name IN (@P1, @P2, @P3, @P4, @P5, @P6, @P7) ",
    "UNION ALL SELECT t.name, k.name, CAST(0 AS BIT) FROM sys.foreign_keys AS k JOIN sys.tables AS t ON t.object_id = k.parent_object_id ",
    "WHERE t.schema_id = SCHEMA_ID() AND t.name IN (@P1, @P2, @P3, @P4, @P5, @P6, @P7)"
);
// Fingerprints without a digest yet, by id, @P1 at a time after id @P2.
sql!(
    FINGERPRINTS_WITHOUT_DIGEST,
    2,
    "SELECT TOP (@P1) fingerprint_id, antibot_vendor, website, data, collecting_date FROM armada_fingerprints ",
    "WHERE fingerprint_sha256 IS NULL AND fingerprint_id > @P2 ORDER BY fingerprint_id"
);

/// Every constant statement, for the tests.
#[cfg(test)]
pub(super) const ALL: &[Sql] = &[
    SELECT_ONE,
    FIND_RUN,
    FIND_JOB,
    LOCK_RUN,
    LOCK_JOB,
    LOCK_EVENT,
    UPDATE_RUN,
    UPDATE_JOB,
    UPDATE_EVENT,
    LIST_RUNS,
    COUNT_RUNS,
    LIST_JOBS_OF_RUN,
    COUNT_JOBS_OF_RUN,
    LIST_JOBS,
    COUNT_JOBS,
    LIST_EVENTS_OF_JOB,
    COUNT_EVENTS_OF_JOB,
    LIST_OUTPUTS_OF_RUN,
    COUNT_OUTPUTS_OF_RUN,
    LIST_OUTPUTS,
    COUNT_OUTPUTS,
    COUNT_JOBS_BY_STATUS,
    AGENT_SUMMARIES,
    RUNNING_JOBS_BY_AGENT,
    JOB_TIMELINE,
    LOG_CHUNKS_BEFORE,
    DELETE_RUN_LOGS,
    DELETE_RUN_EVENTS,
    DELETE_RUN_OUTPUTS,
    DELETE_RUN_JOBS,
    DELETE_RUN,
    FINISH_OPEN_JOBS,
    EXISTING_TABLES,
    GET_APPLOCK,
    CREATE_MIGRATIONS_TABLE,
    APPLIED_MIGRATIONS,
    RECORD_MIGRATION,
    CATALOG_COLUMNS,
    CATALOG_INDEXES,
    FINGERPRINTS_WITHOUT_DIGEST,
    RANDOM_PROXY,
    RANDOM_FINGERPRINT,
    LIST_PROXIES,
    COUNT_PROXIES,
    LIST_FINGERPRINTS,
    COUNT_FINGERPRINTS,
];

/// A table the batched creates insert into: its key, the columns bound per row (key first), the
/// parents a row needs (conditions on the `VALUES` alias `v`), and the columns read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InsertTarget {
    pub insert_name: &'static str,
    pub select_name: &'static str,
    pub table: &'static str,
    pub key: &'static str,
    pub columns: &'static [&'static str],
    pub parents: &'static str,
    pub stored_columns: &'static str,
}

impl InsertTarget {
    /// Parameters one row takes: its position in the batch, then its columns.
    pub fn params_per_row(&self) -> usize {
        self.columns.len() + 1
    }
}

pub(super) const RUNS: InsertTarget = InsertTarget {
    insert_name: "insert_runs",
    select_name: "select_runs",
    table: "armada_runs",
    key: "run_uuid",
    columns: &["run_uuid", "run_datetime", "run_status", "number_of_agents", "number_of_jobs"],
    parents: "",
    stored_columns: run_columns!(),
};
pub(super) const JOBS: InsertTarget = InsertTarget {
    insert_name: "insert_jobs",
    select_name: "select_jobs",
    table: "armada_jobs",
    key: "job_uuid",
    columns: &["job_uuid", "run_uuid", "job_datetime", "job_associated_agent", "job_status", "job_index"],
    parents: " AND EXISTS (SELECT 1 FROM armada_runs AS r WHERE r.run_uuid = v.run_uuid)",
    stored_columns: job_columns!(),
};
pub(super) const EVENTS: InsertTarget = InsertTarget {
    insert_name: "insert_events",
    select_name: "select_events",
    table: "armada_events",
    key: "event_uuid",
    columns: &["event_uuid", "event_content", "job_uuid", "event_datetime", "event_status"],
    parents: " AND EXISTS (SELECT 1 FROM armada_jobs AS j WHERE j.job_uuid = v.job_uuid)",
    stored_columns: event_columns!(),
};
pub(super) const OUTPUTS: InsertTarget = InsertTarget {
    insert_name: "insert_outputs",
    select_name: "select_outputs",
    table: "armada_output",
    key: "output_uuid",
    columns: &["output_uuid", "run_uuid", "job_uuid", "data", "[timestamp]"],
    parents: " AND EXISTS (SELECT 1 FROM armada_runs AS r WHERE r.run_uuid = v.run_uuid) \
              AND (v.job_uuid IS NULL OR EXISTS (SELECT 1 FROM armada_jobs AS j WHERE j.job_uuid = v.job_uuid))",
    stored_columns: output_columns!(),
};
pub(super) const LOGS: InsertTarget = InsertTarget {
    insert_name: "insert_logs",
    select_name: "select_logs",
    table: "armada_job_logs",
    key: "chunk_uuid",
    columns: &["chunk_uuid", "job_uuid", "[text]"],
    parents: " AND EXISTS (SELECT 1 FROM armada_jobs AS j WHERE j.job_uuid = v.job_uuid)",
    stored_columns: "chunk_uuid, job_uuid",
};

#[cfg(test)]
pub(super) const INSERT_TARGETS: [InsertTarget; 7] = [RUNS, JOBS, EVENTS, OUTPUTS, LOGS, PROXIES, FINGERPRINTS];

/// `@P{first}, …` for `count` placeholders.
fn placeholders(first: usize, count: usize) -> String {
    tiberius::Query::placeholders(first, count)
}

/// `INSERT` of `rows` rows that skips keys already stored and rows whose parent is missing, and
/// outputs the keys it inserted. `ORDER BY v.ord` makes the identity (`seq`) follow the batch's
/// order, so ties in the lists keep insertion order. The existence test holds an update
/// range lock on the key until commit, so two writers of the same key serialise instead of one
/// failing on the primary key.
pub(super) fn insert_rows(target: &InsertTarget, rows: usize) -> Generated {
    let per_row = target.params_per_row();
    let values: Vec<String> = (0..rows).map(|row| format!("({})", placeholders(row * per_row + 1, per_row))).collect();
    let columns = target.columns.join(", ");
    let from_values: Vec<String> = target.columns.iter().map(|c| format!("v.{c}")).collect();
    let text = format!(
        "INSERT INTO {table} ({columns}) OUTPUT inserted.{key} SELECT {from_values} FROM (VALUES {values}) \
         AS v (ord, {columns}) WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WITH (UPDLOCK, HOLDLOCK) \
         WHERE t.{key} = v.{key}){parents} ORDER BY v.ord",
        table = target.table,
        key = target.key,
        from_values = from_values.join(", "),
        values = values.join(", "),
        parents = target.parents,
    );
    Generated { name: target.insert_name, text, params: rows * per_row }
}

/// The stored rows among `keys` keys.
pub(super) fn select_stored(target: &InsertTarget, keys: usize) -> Generated {
    let text = format!(
        "SELECT {columns} FROM {table} WHERE {key} IN ({list})",
        columns = target.stored_columns,
        table = target.table,
        key = target.key,
        list = placeholders(1, keys)
    );
    Generated { name: target.select_name, text, params: keys }
}

/// Sets `fingerprint_sha256` of `rows` fingerprints: pairs (id, digest).
pub(super) fn set_fingerprint_digests(rows: usize) -> Generated {
    let values: Vec<String> = (0..rows).map(|row| format!("({})", placeholders(row * 2 + 1, 2))).collect();
    let text = format!(
        "UPDATE f SET fingerprint_sha256 = v.sha FROM armada_fingerprints AS f JOIN (VALUES {}) AS v (id, sha) \
         ON f.fingerprint_id = v.id",
        values.join(", ")
    );
    Generated { name: "set_fingerprint_digests", text, params: rows * 2 }
}

#[cfg(test)]
mod tests;
