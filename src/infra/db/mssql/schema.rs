//! The schema of `migrations/mssql/0001_initial.sql`, described once in Rust so that adopting
//! an original database (`adopt.rs`) knows every table's target columns, keys and indexes. A test
//! renders it and compares it with the migration file, so the two cannot drift apart.
//!
//! Choices (the same data and ordering as SQLite's schema):
//! - uuids are `UNIQUEIDENTIFIER`: 16 bytes instead of 36–72, validated by the server, bound
//!   natively by tiberius. SQL Server sorts them in its own byte order, which does not matter:
//!   nothing is ordered by uuid;
//! - each record table has `seq BIGINT IDENTITY` as its clustered key: rows are appended in
//!   insertion order (random uuids as the clustered key would split pages), and `seq` breaks
//!   ties in the newest-first lists exactly as SQLite's `rowid`. The uuid is the (nonclustered)
//!   primary key;
//! - datetimes are `DATETIME2(6)`, UTC: microseconds, as `Timestamp`;
//! - free text and JSON are `NVARCHAR(MAX)`; statuses and agent names are `NVARCHAR(255)` with a
//!   binary collation so comparisons, grouping and ordering are case- and accent-sensitive, as in
//!   SQLite (a server's default collation is usually case-insensitive); the inventory's filter
//!   columns are case-insensitive, as the providers match them;
//! - `ON DELETE CASCADE` from runs to jobs to events and logs, and from runs to outputs. The
//!   foreign key from `armada_output.job_uuid` to jobs does not cascade: SQL Server refuses two
//!   cascade paths from `armada_runs` to `armada_output` (error 1785), so `delete_run` deletes
//!   outputs explicitly first.

/// A column type as SQL Server names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SqlType {
    Uuid,
    DateTime2,
    BigInt,
    /// `NVARCHAR(n)` (`None` = `MAX`) with an optional explicit collation.
    NVarChar(Option<u16>, Option<&'static str>),
    /// `CHAR(n)` with a binary collation (hex digests).
    Char(u16),
}

pub(super) const BINARY: &str = "Latin1_General_100_BIN2";
pub(super) const CASE_INSENSITIVE: &str = "Latin1_General_100_CI_AS";

impl SqlType {
    pub fn render(self) -> String {
        match self {
            SqlType::Uuid => "UNIQUEIDENTIFIER".into(),
            SqlType::DateTime2 => "DATETIME2(6)".into(),
            SqlType::BigInt => "BIGINT".into(),
            SqlType::NVarChar(len, collation) => {
                let len = len.map_or("MAX".to_string(), |n| n.to_string());
                match collation {
                    Some(c) => format!("NVARCHAR({len}) COLLATE {c}"),
                    None => format!("NVARCHAR({len})"),
                }
            }
            SqlType::Char(n) => format!("CHAR({n}) COLLATE {BINARY}"),
        }
    }
}

/// What adopting an original table does with NULLs in a column that becomes `NOT NULL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OnNull {
    /// The row cannot be kept meaningfully (a key, a datetime): refuse and name the column.
    Refuse,
    /// Set this literal, the value the API would have shown anyway (`'Unknown'` agent).
    Fill(&'static str),
    /// Computed by Armada during adoption (`fingerprint_sha256`).
    Computed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Column {
    pub name: &'static str,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// A literal default, `NEWID()` included.
    pub default: Option<&'static str>,
    pub on_null: OnNull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Constraint {
    pub name: &'static str,
    /// `PRIMARY KEY NONCLUSTERED (run_uuid)`, `UNIQUE CLUSTERED (seq)`.
    pub definition: &'static str,
    /// The columns it covers (for adoption's duplicate checks).
    pub columns: &'static [&'static str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ForeignKey {
    pub name: &'static str,
    pub column: &'static str,
    pub parent: &'static str,
    pub parent_column: &'static str,
    pub cascade: bool,
    /// What a row of this table is, in messages (`event`).
    pub child_noun: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Index {
    pub name: &'static str,
    /// `(run_uuid, job_datetime, seq)`.
    pub columns: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Table {
    pub name: &'static str,
    pub columns: &'static [Column],
    pub constraints: &'static [Constraint],
    pub foreign_keys: &'static [ForeignKey],
    pub indexes: &'static [Index],
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Column names that are also type names in T-SQL are bracketed wherever they appear.
pub(super) fn ident(name: &str) -> String {
    match name {
        "timestamp" | "text" => format!("[{name}]"),
        _ => name.to_string(),
    }
}

const fn col(name: &'static str, ty: SqlType, nullable: bool) -> Column {
    Column { name, ty, nullable, identity: false, default: None, on_null: OnNull::Refuse }
}
const fn identity(name: &'static str) -> Column {
    Column { name, ty: SqlType::BigInt, nullable: false, identity: true, default: None, on_null: OnNull::Refuse }
}
const fn filled(name: &'static str, ty: SqlType, default: Option<&'static str>, fill: &'static str) -> Column {
    Column { name, ty, nullable: false, identity: false, default, on_null: OnNull::Fill(fill) }
}
const STATUS: SqlType = SqlType::NVarChar(Some(255), Some(BINARY));
const TEXT: SqlType = SqlType::NVarChar(None, None);
const FILTER: SqlType = SqlType::NVarChar(Some(255), Some(CASE_INSENSITIVE));

pub(super) const RUNS: Table = Table {
    name: "armada_runs",
    columns: &[
        identity("seq"),
        col("run_uuid", SqlType::Uuid, false),
        col("run_datetime", SqlType::DateTime2, false),
        col("run_status", SqlType::NVarChar(Some(32), Some(BINARY)), true),
        col("number_of_agents", SqlType::BigInt, true),
        col("number_of_jobs", SqlType::BigInt, true),
        col("run_detail", TEXT, true),
        col("run_finished", SqlType::DateTime2, true),
    ],
    constraints: &[
        Constraint {
            name: "armada_runs_pk",
            definition: "PRIMARY KEY NONCLUSTERED (run_uuid)",
            columns: &["run_uuid"],
        },
        Constraint { name: "armada_runs_seq", definition: "UNIQUE CLUSTERED (seq)", columns: &["seq"] },
    ],
    foreign_keys: &[],
    indexes: &[Index { name: "armada_runs_by_datetime", columns: "(run_datetime, seq)" }],
};

pub(super) const JOBS: Table = Table {
    name: "armada_jobs",
    columns: &[
        identity("seq"),
        col("job_uuid", SqlType::Uuid, false),
        col("run_uuid", SqlType::Uuid, false),
        col("job_datetime", SqlType::DateTime2, false),
        filled("job_associated_agent", STATUS, Some("N'Unknown'"), "N'Unknown'"),
        filled("job_status", STATUS, Some("N'Running'"), "N'Running'"),
        col("job_index", SqlType::BigInt, true),
        col("job_attempts", SqlType::BigInt, true),
        col("job_detail", TEXT, true),
        col("job_finished", SqlType::DateTime2, true),
    ],
    constraints: &[
        Constraint {
            name: "armada_jobs_pk",
            definition: "PRIMARY KEY NONCLUSTERED (job_uuid)",
            columns: &["job_uuid"],
        },
        Constraint { name: "armada_jobs_seq", definition: "UNIQUE CLUSTERED (seq)", columns: &["seq"] },
    ],
    foreign_keys: &[ForeignKey {
        name: "armada_jobs_run",
        column: "run_uuid",
        parent: "armada_runs",
        parent_column: "run_uuid",
        cascade: true,
        child_noun: "job",
    }],
    indexes: &[
        Index { name: "armada_jobs_by_run_datetime", columns: "(run_uuid, job_datetime, seq)" },
        Index { name: "armada_jobs_by_datetime", columns: "(job_datetime, seq)" },
        Index { name: "armada_jobs_by_run_status", columns: "(run_uuid, job_status)" },
    ],
};

pub(super) const EVENTS: Table = Table {
    name: "armada_events",
    columns: &[
        identity("seq"),
        col("event_uuid", SqlType::Uuid, false),
        // The original capped this at 255 characters; no limit here.
        filled("event_content", TEXT, None, "N''"),
        col("job_uuid", SqlType::Uuid, false),
        col("event_datetime", SqlType::DateTime2, false),
        filled("event_status", STATUS, Some("N'Running'"), "N'Running'"),
    ],
    constraints: &[
        Constraint {
            name: "armada_events_pk",
            definition: "PRIMARY KEY NONCLUSTERED (event_uuid)",
            columns: &["event_uuid"],
        },
        Constraint { name: "armada_events_seq", definition: "UNIQUE CLUSTERED (seq)", columns: &["seq"] },
    ],
    foreign_keys: &[ForeignKey {
        name: "armada_events_job",
        column: "job_uuid",
        parent: "armada_jobs",
        parent_column: "job_uuid",
        cascade: true,
        child_noun: "event",
    }],
    indexes: &[Index { name: "armada_events_by_job_datetime", columns: "(job_uuid, event_datetime, seq)" }],
};

pub(super) const OUTPUTS: Table = Table {
    name: "armada_output",
    columns: &[
        identity("seq"),
        // A default so rows inserted by other tools (the original's `INSERT INTO armada_output
        // (run_uuid, data, timestamp)`) still get a key.
        Column {
            name: "output_uuid",
            ty: SqlType::Uuid,
            nullable: false,
            identity: false,
            default: Some("NEWID()"),
            on_null: OnNull::Refuse,
        },
        col("run_uuid", SqlType::Uuid, false),
        col("job_uuid", SqlType::Uuid, true),
        filled("data", TEXT, None, "N'null'"),
        col("timestamp", SqlType::DateTime2, false),
    ],
    constraints: &[
        Constraint {
            name: "armada_output_pk",
            definition: "PRIMARY KEY NONCLUSTERED (output_uuid)",
            columns: &["output_uuid"],
        },
        Constraint { name: "armada_output_seq", definition: "UNIQUE CLUSTERED (seq)", columns: &["seq"] },
    ],
    foreign_keys: &[
        ForeignKey {
            name: "armada_output_run",
            column: "run_uuid",
            parent: "armada_runs",
            parent_column: "run_uuid",
            cascade: true,
            child_noun: "output",
        },
        ForeignKey {
            name: "armada_output_job",
            column: "job_uuid",
            parent: "armada_jobs",
            parent_column: "job_uuid",
            cascade: false,
            child_noun: "output",
        },
    ],
    indexes: &[
        Index { name: "armada_output_by_run_time", columns: "(run_uuid, [timestamp], seq)" },
        Index { name: "armada_output_by_time", columns: "([timestamp], seq)" },
        Index { name: "armada_output_by_job", columns: "(job_uuid)" },
    ],
};

pub(super) const JOB_LOGS: Table = Table {
    name: "armada_job_logs",
    columns: &[
        identity("seq"),
        col("chunk_uuid", SqlType::Uuid, false),
        col("job_uuid", SqlType::Uuid, false),
        col("text", TEXT, false),
    ],
    constraints: &[
        Constraint { name: "armada_job_logs_pk", definition: "PRIMARY KEY CLUSTERED (seq)", columns: &["seq"] },
        Constraint { name: "armada_job_logs_chunk", definition: "UNIQUE (chunk_uuid)", columns: &["chunk_uuid"] },
    ],
    foreign_keys: &[ForeignKey {
        name: "armada_job_logs_job",
        column: "job_uuid",
        parent: "armada_jobs",
        parent_column: "job_uuid",
        cascade: true,
        child_noun: "log chunk",
    }],
    indexes: &[Index { name: "armada_job_logs_by_job", columns: "(job_uuid, seq)" }],
};

pub(super) const PROXIES: Table = Table {
    name: "armada_proxies",
    columns: &[
        identity("proxy_id"),
        // May hold credentials: never logged or listed whole. Case-sensitive, as URLs are.
        col("proxy_url", SqlType::NVarChar(Some(800), Some(BINARY)), false),
        col("proxy_provider_name", FILTER, true),
        col("proxy_type", FILTER, true),
        col("proxy_rotation_strategy", FILTER, true),
        col("proxy_location", FILTER, true),
    ],
    constraints: &[
        Constraint {
            name: "armada_proxies_pk",
            definition: "PRIMARY KEY CLUSTERED (proxy_id)",
            columns: &["proxy_id"],
        },
        Constraint { name: "armada_proxies_url", definition: "UNIQUE (proxy_url)", columns: &["proxy_url"] },
    ],
    foreign_keys: &[],
    indexes: &[Index {
        name: "armada_proxies_by_filters",
        columns: "(proxy_provider_name, proxy_type, proxy_rotation_strategy)",
    }],
};

pub(super) const FINGERPRINTS: Table = Table {
    name: "armada_fingerprints",
    columns: &[
        identity("fingerprint_id"),
        col("antibot_vendor", FILTER, true),
        col("website", SqlType::NVarChar(Some(400), Some(CASE_INSENSITIVE)), true),
        col("data", TEXT, false),
        // 00:00 UTC of the collection day.
        col("collecting_date", SqlType::DateTime2, true),
        Column {
            name: "fingerprint_sha256",
            ty: SqlType::Char(64),
            nullable: false,
            identity: false,
            default: None,
            on_null: OnNull::Computed,
        },
    ],
    constraints: &[
        Constraint {
            name: "armada_fingerprints_pk",
            definition: "PRIMARY KEY CLUSTERED (fingerprint_id)",
            columns: &["fingerprint_id"],
        },
        Constraint {
            name: "armada_fingerprints_sha256",
            definition: "UNIQUE (fingerprint_sha256)",
            columns: &["fingerprint_sha256"],
        },
    ],
    foreign_keys: &[],
    indexes: &[Index { name: "armada_fingerprints_by_filters", columns: "(antibot_vendor, website, collecting_date)" }],
};

/// Parents before children: the order tables are created in.
pub(super) const TABLES: [Table; 7] = [RUNS, JOBS, EVENTS, OUTPUTS, JOB_LOGS, PROXIES, FINGERPRINTS];

/// `name TYPE [IDENTITY(1,1)] NULL|NOT NULL [CONSTRAINT … DEFAULT …]`.
pub(super) fn column_definition(table: &Table, column: &Column) -> String {
    let mut out = format!("{} {}", ident(column.name), column.ty.render());
    if column.identity {
        out.push_str(" IDENTITY(1,1)");
    }
    out.push_str(if column.nullable { " NULL" } else { " NOT NULL" });
    if let Some(default) = column.default {
        out.push_str(&format!(" CONSTRAINT {} DEFAULT {default}", default_name(table, column)));
    }
    out
}

pub(super) fn default_name(table: &Table, column: &Column) -> String {
    format!("{}_{}_default", table.name, column.name)
}

pub(super) fn foreign_key_definition(key: &ForeignKey) -> String {
    let cascade = if key.cascade { " ON DELETE CASCADE" } else { "" };
    format!(
        "CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){cascade}",
        key.name,
        ident(key.column),
        key.parent,
        ident(key.parent_column)
    )
}

pub(super) fn create_table(table: &Table) -> String {
    let mut lines: Vec<String> = table.columns.iter().map(|c| column_definition(table, c)).collect();
    lines.extend(table.constraints.iter().map(|c| format!("CONSTRAINT {} {}", c.name, c.definition)));
    lines.extend(table.foreign_keys.iter().map(foreign_key_definition));
    format!("CREATE TABLE {} (\n    {}\n);", table.name, lines.join(",\n    "))
}

pub(super) fn create_index(table: &Table, index: &Index) -> String {
    format!("CREATE INDEX {} ON {} {};", index.name, table.name, index.columns)
}

/// The batches of `0001_initial.sql`, as this description renders them.
#[cfg(test)]
pub(super) fn initial_batches() -> Vec<String> {
    let mut batches = Vec::new();
    for table in &TABLES {
        batches.push(create_table(table));
        batches.extend(table.indexes.iter().map(|index| create_index(table, index)));
    }
    batches
}

#[cfg(test)]
mod tests;
