//! Live tests against a real SQL Server, gated by `ARMADA_TEST_MSSQL_URL`
//! (`mssql://sa:PASSWORD@127.0.0.1:1433/master?encrypt=trust`). Each test creates its own
//! database `armada_test_<random>` (the login needs CREATE DATABASE) and drops it at the end.
//!
//! Only `ARMADA_TEST_MSSQL_URL` enables them, not `SQL_SERVER_*`: these tests create and drop
//! databases, and a shell that happens to hold production `SQL_SERVER_*` variables must never
//! run them there by accident. Without it every test prints a SKIPPED line saying how to run it.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::*;
use crate::infra::db::conformance::{TestStore, store_suite};
use crate::infra::db::{NewEvent, NewLogChunk};
use crate::infra::testing::loud;
use crate::model::{Timestamp, status};
use crate::settings::{DatabaseSettings, Settings, Vars};

const ENV: &str = "ARMADA_TEST_MSSQL_URL";

/// The server to test against, or `None` after saying how to provide one.
fn server() -> Option<MssqlSettings> {
    let Some(url) = std::env::var(ENV).ok().filter(|u| !u.trim().is_empty()) else {
        loud(&format!(
            "SKIPPED: set {ENV}=mssql://sa:…@127.0.0.1:1433/armada_test?encrypt=trust to run the Store suite against \
             SQL Server (a server to try: docker run -e ACCEPT_EULA=Y -e MSSQL_SA_PASSWORD=… -p 1433:1433 \
             mcr.microsoft.com/mssql/server:2022-latest)"
        ));
        return None;
    };
    let settings = Settings::from_vars(Vars::from_pairs([("ARMADA_DATABASE_URL", url)]), Vec::new(), None)
        .unwrap_or_else(|e| panic!("{ENV} is not a valid SQL Server URL: {e}"));
    match settings.database {
        DatabaseSettings::Mssql(server) => Some(server),
        DatabaseSettings::Sqlite { .. } => panic!("{ENV} must be an mssql:// URL"),
    }
}

/// A database of the test's own, dropped (whoever is still connected) when this is dropped.
struct TestDatabase {
    server: MssqlSettings,
    settings: MssqlSettings,
}

impl TestDatabase {
    async fn create(server: &MssqlSettings) -> Self {
        let name = format!("armada_test_{}", Uuid::new_v4().simple());
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "a plain identifier");
        let mut client = pool::Pool::new(server)
            .dedicated(Some(Duration::from_secs(120)))
            .await
            .expect("connect to the test server");
        run(&mut client, &format!("CREATE DATABASE [{name}]")).await;
        Self { server: server.clone(), settings: MssqlSettings { database: name, ..server.clone() } }
    }

    async fn client(&self) -> pool::Client {
        pool::Pool::new(&self.settings).dedicated(Some(Duration::from_secs(60))).await.expect("connect")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.settings.database.clone());
        // Async work from a destructor: its own thread and runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let mut client = pool::Pool::new(&server).dedicated(Some(Duration::from_secs(60))).await?;
                let sql =
                    format!("ALTER DATABASE [{name}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [{name}]");
                client
                    .simple_query(sql)
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?
                    .into_results()
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                Ok::<_, StoreError>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            loud(&format!("warning: could not drop the test database {}: {dropped:?}", self.settings.database));
        }
    }
}

async fn run(client: &mut pool::Client, sql: &str) {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_results()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A fresh, migrated store in a database of its own.
pub(crate) async fn live_store() -> Option<TestStore> {
    let server = server()?;
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open the test database");
    store.migrate().await.expect("migrate");
    Some(TestStore { store: Arc::new(store), guard: Box::new(database) })
}

store_suite!(mssql_store, live_store());

fn unreachable_settings(port: u16) -> MssqlSettings {
    MssqlSettings {
        host: "127.0.0.1".into(),
        port,
        database: "armada".into(),
        user: "sa".into(),
        password: crate::settings::Secret::new("s3cr3t-pw"),
        encrypt: crate::settings::MssqlEncrypt::On,
        pool_size: 2,
        connect_timeout: Duration::from_secs(2),
        command_timeout: Duration::from_secs(5),
    }
}

/// `db::open` picks SQL Server for `DatabaseSettings::Mssql` (no server needed: nothing listens).
#[tokio::test]
async fn open_selects_sql_server_and_reports_where_it_failed() {
    let port = crate::infra::testing::free_port();
    let settings = unreachable_settings(port);
    let Err(err) = crate::infra::db::open(&DatabaseSettings::Mssql(settings)).await else { panic!("nothing listens") };
    let text = err.to_string();
    assert!(text.contains(&format!("cannot connect to SQL Server at 127.0.0.1:{port} (database armada)")), "{text}");
    assert!(!text.contains("s3cr3t-pw"));
}

#[test]
fn the_store_shows_its_server_and_database_never_the_password() {
    let store = MssqlStore { pool: pool::Pool::new(&unreachable_settings(1433)) };
    assert_eq!(store.describe(), "mssql://127.0.0.1:1433/armada");
    let debug = format!("{store:?}");
    assert!(debug.contains("mssql://127.0.0.1:1433/armada") && !debug.contains("s3cr3t-pw"), "{debug}");
}

/// Runs a live test body, or says it was skipped.
macro_rules! live {
    ($name:ident, |$server:ident| $body:block) => {
        #[tokio::test]
        async fn $name() {
            let Some($server) = server() else {
                loud(concat!("SKIPPED: SQL Server test ", stringify!($name)));
                return;
            };
            tokio::time::timeout(Duration::from_secs(300), async move $body).await.expect("finished within 5 minutes");
        }
    };
}

live!(first_migrate_applies_everything_and_the_second_nothing, |server| {
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    assert_eq!(store.migrate().await.expect("migrate"), vec!["0001_initial".to_string()]);
    assert_eq!(store.migrate().await.expect("migrate"), Vec::<String>::new());
    assert!(format!("{store:?}").contains(&database.settings.database));
});

live!(two_replicas_migrating_at_once_apply_the_migrations_once, |server| {
    let database = TestDatabase::create(&server).await;
    let (a, b) = (
        MssqlStore::open(&database.settings).await.expect("open"),
        MssqlStore::open(&database.settings).await.expect("open"),
    );
    let (first, second) = tokio::join!(a.migrate(), b.migrate());
    let mut applied = vec![first.expect("replica a"), second.expect("replica b")];
    applied.sort();
    assert_eq!(applied, vec![Vec::<String>::new(), vec!["0001_initial".to_string()]], "one applied, the other waited");
});

/// The original deployment's tables, keyless, with text uuids and DATETIME.
const ORIGINAL_TABLES: &[&str] = &[
    "CREATE TABLE armada_runs (run_uuid NVARCHAR(255) NULL, run_datetime DATETIME NULL)",
    "CREATE TABLE armada_jobs (job_uuid NVARCHAR(255) NULL, run_uuid NVARCHAR(255) NULL, job_datetime DATETIME NULL, \
     job_associated_agent NVARCHAR(255) NULL, job_status NVARCHAR(255) NULL)",
    "CREATE TABLE armada_events (event_uuid NVARCHAR(255) NULL, event_content NVARCHAR(255) NULL, job_uuid NVARCHAR(255) NULL, \
     event_datetime DATETIME NULL, event_status NVARCHAR(255) NULL)",
    "CREATE TABLE armada_output (run_uuid NVARCHAR(255) NULL, data NVARCHAR(MAX) NULL, timestamp DATETIME NULL)",
    "CREATE TABLE armada_proxies (proxy_url NVARCHAR(255) NULL, proxy_provider_name NVARCHAR(255) NULL, \
     proxy_type NVARCHAR(255) NULL, proxy_rotation_strategy NVARCHAR(255) NULL, proxy_location NVARCHAR(255) NULL)",
    "CREATE TABLE armada_fingerprints (antibot_vendor NVARCHAR(255) NULL, website NVARCHAR(255) NULL, data NVARCHAR(MAX) NULL, \
     collecting_date DATE NULL)",
];

const RUN: &str = "660E8400-E29B-41D4-A716-446655440000";
const JOB: &str = "550e8400-e29b-41d4-a716-446655440000";

async fn original_database(server: &MssqlSettings, duplicate_job: bool) -> TestDatabase {
    let database = TestDatabase::create(server).await;
    let mut client = database.client().await;
    for sql in ORIGINAL_TABLES {
        run(&mut client, sql).await;
    }
    let other_job = "550e8400-e29b-41d4-a716-446655440001";
    let rows: Vec<(&str, Vec<&str>)> = vec![
        ("INSERT INTO armada_runs VALUES (@P1, @P2)", vec![RUN, "2026-02-24 10:30:00"]),
        (
            "INSERT INTO armada_jobs VALUES (@P1, @P2, @P3, @P4, @P5)",
            vec![JOB, RUN, "2026-02-24 10:30:00", "agent-1", "completed"],
        ),
        (
            "INSERT INTO armada_jobs (job_uuid, run_uuid, job_datetime) VALUES (@P1, @P2, @P3)",
            vec![if duplicate_job { JOB } else { other_job }, RUN, "2026-02-24 10:31:00"],
        ),
        (
            "INSERT INTO armada_events VALUES (@P1, @P2, @P3, @P4, @P5)",
            vec!["770e8400-e29b-41d4-a716-446655440000", "page_loaded", JOB, "2026-02-24 10:30:00", "success"],
        ),
        ("INSERT INTO armada_output VALUES (@P1, @P2, @P3)", vec![RUN, "{\"key\": \"value\"}", "2026-02-24 10:30:00"]),
        ("INSERT INTO armada_output VALUES (@P1, @P2, @P3)", vec![RUN, "plain text", "2026-02-24 10:30:01"]),
        (
            "INSERT INTO armada_proxies VALUES (@P1, @P2, @P3, @P4, @P5)",
            vec!["http://user:pass@10.0.0.1:8080", "iproyal", "residential", "sticky", "Europe/Paris"],
        ),
        (
            "INSERT INTO armada_fingerprints VALUES (@P1, @P2, @P3, @P4)",
            vec!["datadome", "https://example.com", "{\"fingerprint\":\"sample_data\"}", "2026-02-24"],
        ),
    ];
    for (sql, values) in rows {
        let params: Vec<&dyn tiberius::ToSql> = values.iter().map(|v| v as &dyn tiberius::ToSql).collect();
        client.execute(sql, &params).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    database
}

live!(an_original_database_is_adopted_in_place_without_losing_rows, |server| {
    let database = original_database(&server, false).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    let applied = store.migrate().await.expect("adopted");
    assert_eq!(applied.len(), 1);
    assert!(applied[0].starts_with("0001_initial (adopted the original tables"), "{applied:?}");
    assert_eq!(store.migrate().await.expect("migrate"), Vec::<String>::new(), "recorded as applied");

    let (run, job) = (Uuid::parse_str(RUN).unwrap(), Uuid::parse_str(JOB).unwrap());
    let stored = store.get_run(run).await.expect("get").expect("the original run");
    assert_eq!(stored.run_datetime, Timestamp::parse("2026-02-24T10:30:00").unwrap());
    let jobs = store.list_jobs(Some(run), PageRequest { page: 1, page_size: 10 }).await.expect("jobs");
    assert_eq!(jobs.total, 2);
    let statuses: Vec<(&str, &str)> =
        jobs.items.iter().map(|j| (j.job_status.as_str(), j.job_associated_agent.as_str())).collect();
    assert_eq!(
        statuses,
        vec![("Running", "Unknown"), ("completed", "agent-1")],
        "newest first; NULLs filled with the defaults"
    );
    let events = store.list_events(job, PageRequest { page: 1, page_size: 10 }).await.expect("events");
    assert_eq!(
        (events.items[0].event_content.as_str(), events.items[0].event_status.as_str()),
        ("page_loaded", "success")
    );
    let outputs = store.list_outputs(Some(run), PageRequest { page: 1, page_size: 10 }).await.expect("outputs");
    assert_eq!(outputs.total, 2);
    assert_eq!(outputs.items[1].data, serde_json::json!({"key": "value"}));
    assert_eq!(outputs.items[0].data, serde_json::json!("plain text"));
    assert_ne!(outputs.items[0].output_uuid, outputs.items[1].output_uuid, "NEWID() per row");

    // The adopted tables take new writes, and the table the original lacked exists.
    let event = Uuid::new_v4();
    let results = store
        .apply(&[
            Mutation::CreateEvent(NewEvent {
                event_uuid: event,
                event_content: "x".repeat(1000),
                job_uuid: job,
                event_datetime: Timestamp::now(),
                event_status: status::SUCCESS.into(),
            }),
            Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid: job, text: "log\n".into() }),
        ])
        .await
        .expect("database up");
    assert!(results.iter().all(|r| r.as_ref().is_ok_and(Applied::changed)), "{results:?}");
    assert_eq!(store.job_logs(job, 100).await.expect("logs"), "log\n");

    let mut client = database.client().await;
    let missing = client
        .simple_query("SELECT COUNT_BIG(*) FROM armada_fingerprints WHERE fingerprint_sha256 IS NULL")
        .await
        .expect("query")
        .into_row()
        .await
        .expect("row")
        .and_then(|row| row.get::<i64, _>(0));
    assert_eq!(missing, Some(0), "every fingerprint got its digest");
    assert!(store.delete_run(run).await.expect("delete"), "the cascade works on adopted tables");
});

live!(an_original_database_with_a_duplicate_key_is_refused_and_left_as_it_was, |server| {
    let database = original_database(&server, true).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    let err = store.migrate().await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(text.contains("armada_jobs") && text.to_lowercase().contains(JOB), "{text}");
    let mut client = database.client().await;
    let row = client
        .simple_query(
            "SELECT (SELECT COUNT_BIG(*) FROM sys.tables WHERE name = N'armada_schema_migrations'), \
             (SELECT DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = N'armada_jobs' AND COLUMN_NAME = N'job_uuid'), \
             (SELECT COUNT_BIG(*) FROM sys.tables WHERE name = N'armada_job_logs')",
        )
        .await
        .expect("query")
        .into_row()
        .await
        .expect("row")
        .expect("one row");
    assert_eq!(row.get::<i64, _>(0), Some(0), "no migrations table");
    assert_eq!(row.get::<&str, _>(1), Some("nvarchar"), "columns unchanged");
    assert_eq!(row.get::<i64, _>(2), Some(0), "no table created");
});

live!(a_killed_connection_is_replaced_and_the_read_retried, |server| {
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    store.migrate().await.expect("migrate");
    store.check_connectivity().await.expect("a pooled connection");
    let mut admin = pool::Pool::new(&server).dedicated(Some(Duration::from_secs(30))).await.expect("connect");
    let sql = "DECLARE @kill NVARCHAR(MAX) = N''; SELECT @kill = @kill + N'KILL ' + CAST(session_id AS NVARCHAR(10)) + N'; ' \
               FROM sys.dm_exec_sessions WHERE database_id = DB_ID(@P1) AND session_id <> @@SPID; EXEC (@kill)";
    admin.execute(sql, &[&database.settings.database.as_str()]).await.expect("kill the store's sessions");
    store.check_connectivity().await.expect("reconnected after the pooled connection died");
    let run = Uuid::new_v4();
    let created = store
        .apply(&[Mutation::CreateRun(crate::infra::db::NewRun {
            run_uuid: run,
            run_datetime: Timestamp::now(),
            run_status: None,
            number_of_agents: None,
            number_of_jobs: None,
        })])
        .await
        .expect("writes work again");
    assert!(created[0].is_ok());
});

live!(batches_larger_than_one_statement_are_chunked_and_replayed_idempotently, |server| {
    let database = TestDatabase::create(&server).await;
    let store = MssqlStore::open(&database.settings).await.expect("open");
    store.migrate().await.expect("migrate");
    let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
    let at = Timestamp::parse("2026-02-24T10:30:00").unwrap();
    let mut batch = vec![
        Mutation::CreateRun(crate::infra::db::NewRun {
            run_uuid: run,
            run_datetime: at,
            run_status: None,
            number_of_agents: None,
            number_of_jobs: None,
        }),
        Mutation::CreateJob(crate::infra::db::NewJob {
            job_uuid: job,
            run_uuid: run,
            job_datetime: at,
            job_associated_agent: "agent-0".into(),
            job_status: status::RUNNING.into(),
            job_index: Some(0),
        }),
    ];
    for i in 0..2500 {
        batch.push(Mutation::CreateEvent(NewEvent {
            event_uuid: Uuid::new_v4(),
            event_content: format!("event {i}"),
            job_uuid: job,
            event_datetime: at,
            event_status: status::RUNNING.into(),
        }));
    }
    for i in 0..1200 {
        batch.push(Mutation::AppendLog(NewLogChunk {
            chunk_uuid: Uuid::new_v4(),
            job_uuid: job,
            text: format!("{i}\n"),
        }));
    }
    let first = store.apply(&batch).await.expect("database up");
    assert!(first.iter().all(|r| r.as_ref().is_ok_and(Applied::changed)));
    let again = store.apply(&batch).await.expect("database up");
    assert!(again.iter().all(|r| r.as_ref().is_ok_and(|a| !a.changed())));
    let events = store.list_events(job, PageRequest { page: 1, page_size: 3 }).await.expect("events");
    assert_eq!(events.total, 2500);
    let newest: Vec<&str> = events.items.iter().map(|e| e.event_content.as_str()).collect();
    assert_eq!(newest, ["event 2499", "event 2498", "event 2497"], "same datetime: insertion order, across chunks");
    assert!(store.job_logs(job, 1 << 20).await.expect("logs").starts_with("0\n1\n2\n"));
});

mod inventory;
