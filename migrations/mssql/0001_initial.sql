-- Armada's schema on SQL Server (2016 or later, Azure SQL): the same tables, columns, keys and
-- ordering as migrations/sqlite/0001_initial.sql. Table and column names are the original
-- deployment's, so projects that query them with `DatabaseConnector` keep working.
--
-- Batches are separated by GO lines, as in sqlcmd and SSMS; Armada runs them in order inside one
-- transaction, holding an application lock, and records the file in armada_schema_migrations.
-- src/infra/db/mssql/schema.rs describes this schema for adopting an original database; a test
-- keeps the two identical (comments and layout aside).
--
-- Conventions:
-- * uuids are UNIQUEIDENTIFIER (16 bytes, validated, bound natively);
-- * every record table has `seq BIGINT IDENTITY` as its clustered key: rows are appended in
--   insertion order and `seq` breaks ties in newest-first lists, as SQLite's rowid does; the uuid
--   is the (nonclustered) primary key;
-- * datetimes are DATETIME2(6), UTC, microseconds;
-- * free text and JSON documents are NVARCHAR(MAX); statuses and agent names compare with a
--   binary collation (case-sensitive, as on SQLite), inventory filters case-insensitively;
-- * armada_output.job_uuid does not cascade: SQL Server refuses two cascade paths from
--   armada_runs to armada_output (error 1785); deleting a run deletes its outputs first.

CREATE TABLE armada_runs (
    seq BIGINT IDENTITY(1,1) NOT NULL,
    run_uuid UNIQUEIDENTIFIER NOT NULL,
    run_datetime DATETIME2(6) NOT NULL,
    -- dispatching | running | completed | failed | cancelled; NULL for runs recorded through the
    -- plain monitoring API, which have no lifecycle.
    run_status NVARCHAR(32) COLLATE Latin1_General_100_BIN2 NULL,
    number_of_agents BIGINT NULL,
    number_of_jobs BIGINT NULL,
    run_detail NVARCHAR(MAX) NULL,
    run_finished DATETIME2(6) NULL,
    CONSTRAINT armada_runs_pk PRIMARY KEY NONCLUSTERED (run_uuid),
    CONSTRAINT armada_runs_seq UNIQUE CLUSTERED (seq)
);
GO
CREATE INDEX armada_runs_by_datetime ON armada_runs (run_datetime, seq);
GO

CREATE TABLE armada_jobs (
    seq BIGINT IDENTITY(1,1) NOT NULL,
    job_uuid UNIQUEIDENTIFIER NOT NULL,
    run_uuid UNIQUEIDENTIFIER NOT NULL,
    job_datetime DATETIME2(6) NOT NULL,
    job_associated_agent NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT armada_jobs_job_associated_agent_default DEFAULT N'Unknown',
    job_status NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT armada_jobs_job_status_default DEFAULT N'Running',
    job_index BIGINT NULL,
    job_attempts BIGINT NULL,
    job_detail NVARCHAR(MAX) NULL,
    job_finished DATETIME2(6) NULL,
    CONSTRAINT armada_jobs_pk PRIMARY KEY NONCLUSTERED (job_uuid),
    CONSTRAINT armada_jobs_seq UNIQUE CLUSTERED (seq),
    CONSTRAINT armada_jobs_run FOREIGN KEY (run_uuid) REFERENCES armada_runs (run_uuid) ON DELETE CASCADE
);
GO
CREATE INDEX armada_jobs_by_run_datetime ON armada_jobs (run_uuid, job_datetime, seq);
GO
CREATE INDEX armada_jobs_by_datetime ON armada_jobs (job_datetime, seq);
GO
CREATE INDEX armada_jobs_by_run_status ON armada_jobs (run_uuid, job_status);
GO

CREATE TABLE armada_events (
    seq BIGINT IDENTITY(1,1) NOT NULL,
    event_uuid UNIQUEIDENTIFIER NOT NULL,
    -- The original capped this at 255 characters; no limit here.
    event_content NVARCHAR(MAX) NOT NULL,
    job_uuid UNIQUEIDENTIFIER NOT NULL,
    event_datetime DATETIME2(6) NOT NULL,
    event_status NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL CONSTRAINT armada_events_event_status_default DEFAULT N'Running',
    CONSTRAINT armada_events_pk PRIMARY KEY NONCLUSTERED (event_uuid),
    CONSTRAINT armada_events_seq UNIQUE CLUSTERED (seq),
    CONSTRAINT armada_events_job FOREIGN KEY (job_uuid) REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE
);
GO
CREATE INDEX armada_events_by_job_datetime ON armada_events (job_uuid, event_datetime, seq);
GO

CREATE TABLE armada_output (
    seq BIGINT IDENTITY(1,1) NOT NULL,
    -- Defaulted so rows inserted by other tools (the original's three columns) still get a key.
    output_uuid UNIQUEIDENTIFIER NOT NULL CONSTRAINT armada_output_output_uuid_default DEFAULT NEWID(),
    run_uuid UNIQUEIDENTIFIER NOT NULL,
    -- The job that produced the row, when known.
    job_uuid UNIQUEIDENTIFIER NULL,
    data NVARCHAR(MAX) NOT NULL,
    [timestamp] DATETIME2(6) NOT NULL,
    CONSTRAINT armada_output_pk PRIMARY KEY NONCLUSTERED (output_uuid),
    CONSTRAINT armada_output_seq UNIQUE CLUSTERED (seq),
    CONSTRAINT armada_output_run FOREIGN KEY (run_uuid) REFERENCES armada_runs (run_uuid) ON DELETE CASCADE,
    CONSTRAINT armada_output_job FOREIGN KEY (job_uuid) REFERENCES armada_jobs (job_uuid)
);
GO
CREATE INDEX armada_output_by_run_time ON armada_output (run_uuid, [timestamp], seq);
GO
CREATE INDEX armada_output_by_time ON armada_output ([timestamp], seq);
GO
CREATE INDEX armada_output_by_job ON armada_output (job_uuid);
GO

-- A job's captured worker stdout/stderr, appended chunk by chunk. `seq` is the insertion order;
-- `chunk_uuid` makes a replayed chunk a no-op.
CREATE TABLE armada_job_logs (
    seq BIGINT IDENTITY(1,1) NOT NULL,
    chunk_uuid UNIQUEIDENTIFIER NOT NULL,
    job_uuid UNIQUEIDENTIFIER NOT NULL,
    [text] NVARCHAR(MAX) NOT NULL,
    CONSTRAINT armada_job_logs_pk PRIMARY KEY CLUSTERED (seq),
    CONSTRAINT armada_job_logs_chunk UNIQUE (chunk_uuid),
    CONSTRAINT armada_job_logs_job FOREIGN KEY (job_uuid) REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE
);
GO
CREATE INDEX armada_job_logs_by_job ON armada_job_logs (job_uuid, seq);
GO

-- The proxy provider's inventory (`armada import proxies FILE.csv`). `proxy_url` may hold
-- credentials: never log or list it whole.
CREATE TABLE armada_proxies (
    proxy_id BIGINT IDENTITY(1,1) NOT NULL,
    proxy_url NVARCHAR(800) COLLATE Latin1_General_100_BIN2 NOT NULL,
    proxy_provider_name NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
    proxy_type NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
    proxy_rotation_strategy NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
    proxy_location NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
    CONSTRAINT armada_proxies_pk PRIMARY KEY CLUSTERED (proxy_id),
    CONSTRAINT armada_proxies_url UNIQUE (proxy_url)
);
GO
CREATE INDEX armada_proxies_by_filters ON armada_proxies (proxy_provider_name, proxy_type, proxy_rotation_strategy);
GO

-- The fingerprint provider's store (`armada import fingerprints FILE.csv`). `collecting_date` is
-- 00:00 UTC of the collection day. `fingerprint_sha256` (hex) makes importing the same file
-- twice add nothing.
CREATE TABLE armada_fingerprints (
    fingerprint_id BIGINT IDENTITY(1,1) NOT NULL,
    antibot_vendor NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
    website NVARCHAR(400) COLLATE Latin1_General_100_CI_AS NULL,
    data NVARCHAR(MAX) NOT NULL,
    collecting_date DATETIME2(6) NULL,
    fingerprint_sha256 CHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL,
    CONSTRAINT armada_fingerprints_pk PRIMARY KEY CLUSTERED (fingerprint_id),
    CONSTRAINT armada_fingerprints_sha256 UNIQUE (fingerprint_sha256)
);
GO
CREATE INDEX armada_fingerprints_by_filters ON armada_fingerprints (antibot_vendor, website, collecting_date);
GO
