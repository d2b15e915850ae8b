-- Armada's schema on SQLite. Table and column names are the original deployment's (so
-- projects that query them with `DatabaseConnector` keep working); this version adds
-- primary keys, foreign keys, indexes and the lifecycle columns the platform needs.
--
-- Conventions:
-- * uuids are TEXT, lowercase and hyphenated (`660e8400-e29b-41d4-a716-446655440000`);
-- * datetimes are INTEGER microseconds since the Unix epoch, UTC (`Timestamp::as_micros`),
--   so ordering and range filters are numeric;
-- * JSON documents (`data`) are TEXT.

CREATE TABLE armada_runs (
    run_uuid         TEXT    NOT NULL PRIMARY KEY,
    run_datetime     INTEGER NOT NULL,
    -- dispatching | running | completed | failed | cancelled; NULL for runs recorded through
    -- the plain monitoring API, which have no lifecycle.
    run_status       TEXT,
    number_of_agents INTEGER,
    number_of_jobs   INTEGER,
    run_detail       TEXT,
    run_finished     INTEGER
);
CREATE INDEX armada_runs_by_datetime ON armada_runs (run_datetime);

CREATE TABLE armada_jobs (
    job_uuid             TEXT    NOT NULL PRIMARY KEY,
    run_uuid             TEXT    NOT NULL REFERENCES armada_runs (run_uuid) ON DELETE CASCADE,
    job_datetime         INTEGER NOT NULL,
    job_associated_agent TEXT    NOT NULL DEFAULT 'Unknown',
    job_status           TEXT    NOT NULL DEFAULT 'Running',
    job_index            INTEGER,
    job_attempts         INTEGER,
    job_detail           TEXT,
    job_finished         INTEGER
);
CREATE INDEX armada_jobs_by_run_datetime ON armada_jobs (run_uuid, job_datetime);
CREATE INDEX armada_jobs_by_datetime ON armada_jobs (job_datetime);
CREATE INDEX armada_jobs_by_run_status ON armada_jobs (run_uuid, job_status);

CREATE TABLE armada_events (
    event_uuid     TEXT    NOT NULL PRIMARY KEY,
    -- The original capped this at 255 characters; no limit here.
    event_content  TEXT    NOT NULL,
    job_uuid       TEXT    NOT NULL REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE,
    event_datetime INTEGER NOT NULL,
    event_status   TEXT    NOT NULL DEFAULT 'Running'
);
CREATE INDEX armada_events_by_job_datetime ON armada_events (job_uuid, event_datetime);

CREATE TABLE armada_output (
    output_uuid TEXT    NOT NULL PRIMARY KEY,
    run_uuid    TEXT    NOT NULL REFERENCES armada_runs (run_uuid) ON DELETE CASCADE,
    -- The job that produced the row, when known. Outputs outlive nothing: they go with the run.
    job_uuid    TEXT             REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE,
    data        TEXT    NOT NULL,
    timestamp   INTEGER NOT NULL
);
CREATE INDEX armada_output_by_run_time ON armada_output (run_uuid, timestamp);
CREATE INDEX armada_output_by_time ON armada_output (timestamp);
CREATE INDEX armada_output_by_job ON armada_output (job_uuid);

-- A job's captured worker stdout/stderr, appended chunk by chunk. `seq` is the insertion
-- order; `chunk_uuid` makes a replayed chunk a no-op.
CREATE TABLE armada_job_logs (
    seq        INTEGER NOT NULL PRIMARY KEY,
    chunk_uuid TEXT    NOT NULL UNIQUE,
    job_uuid   TEXT    NOT NULL REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE,
    text       TEXT    NOT NULL
);
CREATE INDEX armada_job_logs_by_job ON armada_job_logs (job_uuid, seq);

-- The proxy provider's inventory (`armada import proxies FILE.csv`). `proxy_url` may hold
-- credentials: never log or list it whole.
CREATE TABLE armada_proxies (
    proxy_id                INTEGER NOT NULL PRIMARY KEY,
    proxy_url               TEXT    NOT NULL UNIQUE,
    proxy_provider_name     TEXT,
    proxy_type              TEXT,
    proxy_rotation_strategy TEXT,
    proxy_location          TEXT
);
CREATE INDEX armada_proxies_by_filters ON armada_proxies (proxy_provider_name, proxy_type, proxy_rotation_strategy);

-- The fingerprint provider's store (`armada import fingerprints FILE.csv`).
-- `collecting_date` is microseconds since the epoch at 00:00 UTC of the collection day, so
-- "collected on or after" is a numeric range. `fingerprint_sha256` is the hex sha256 of
-- `antibot_vendor \n website \n data`, so importing the same file twice adds nothing.
CREATE TABLE armada_fingerprints (
    fingerprint_id     INTEGER NOT NULL PRIMARY KEY,
    antibot_vendor     TEXT,
    website            TEXT,
    data               TEXT    NOT NULL,
    collecting_date    INTEGER,
    fingerprint_sha256 TEXT    NOT NULL UNIQUE
);
CREATE INDEX armada_fingerprints_by_filters ON armada_fingerprints (antibot_vendor, website, collecting_date);
