//! The adoption planner, from catalog descriptions of original databases.

use super::*;
use crate::infra::db::mssql::schema::SqlType;

fn column(name: &str, type_name: &str, max_length: i16) -> CatalogColumn {
    CatalogColumn {
        name: name.into(),
        type_name: type_name.into(),
        max_length,
        scale: 0,
        nullable: true,
        collation: (type_name.contains("char")).then(|| "SQL_Latin1_General_CP1_CI_AS".to_string()),
        identity: false,
        has_default: false,
    }
}

fn table(name: &str, columns: Vec<CatalogColumn>) -> CatalogTable {
    CatalogTable { name: name.into(), columns, ..CatalogTable::default() }
}

/// The original deployment's tables as SPEC §7 and the seed's CSV templates describe them:
/// uuids and statuses as NVARCHAR(255), datetimes as DATETIME, no keys.
fn original() -> Vec<CatalogTable> {
    let text = |name: &str| column(name, "nvarchar", 510);
    let max = |name: &str| column(name, "nvarchar", -1);
    let datetime = |name: &str| column(name, "datetime", 8);
    vec![
        table("armada_runs", vec![text("run_uuid"), datetime("run_datetime")]),
        table(
            "armada_jobs",
            vec![
                text("job_uuid"),
                text("run_uuid"),
                datetime("job_datetime"),
                text("job_associated_agent"),
                text("job_status"),
            ],
        ),
        table(
            "armada_events",
            vec![
                text("event_uuid"),
                text("event_content"),
                text("job_uuid"),
                datetime("event_datetime"),
                text("event_status"),
            ],
        ),
        table("armada_output", vec![text("run_uuid"), max("data"), datetime("timestamp")]),
        table(
            "armada_proxies",
            vec![
                text("proxy_url"),
                text("proxy_provider_name"),
                text("proxy_type"),
                text("proxy_rotation_strategy"),
                text("proxy_location"),
            ],
        ),
        table(
            "armada_fingerprints",
            vec![text("antibot_vendor"), text("website"), max("data"), column("collecting_date", "date", 3)],
        ),
    ]
}

fn statements(steps: &[Step]) -> Vec<&str> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Sql(sql) => Some(sql.as_str()),
            _ => None,
        })
        .collect()
}

fn checks(steps: &[Step]) -> Vec<&Check> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Check(check) => Some(check),
            _ => None,
        })
        .collect()
}

fn position(steps: &[Step], statement: &str) -> usize {
    steps
        .iter()
        .position(|s| matches!(s, Step::Sql(sql) if sql == statement))
        .unwrap_or_else(|| panic!("no step `{statement}` in:\n{}", statements(steps).join("\n")))
}

#[test]
fn the_original_tables_are_converted_completed_and_keyed() {
    let steps = plan(&original()).expect("adoptable");
    for expected in [
        "UPDATE armada_jobs SET job_status = N'Running' WHERE job_status IS NULL",
        "UPDATE armada_jobs SET job_associated_agent = N'Unknown' WHERE job_associated_agent IS NULL",
        "ALTER TABLE armada_jobs ALTER COLUMN job_uuid UNIQUEIDENTIFIER NOT NULL",
        "ALTER TABLE armada_jobs ALTER COLUMN job_datetime DATETIME2(6) NOT NULL",
        "ALTER TABLE armada_jobs ALTER COLUMN job_status NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL",
        "ALTER TABLE armada_events ALTER COLUMN event_content NVARCHAR(MAX) NOT NULL",
        "ALTER TABLE armada_runs ADD seq BIGINT IDENTITY(1,1) NOT NULL",
        "ALTER TABLE armada_runs ADD run_status NVARCHAR(32) COLLATE Latin1_General_100_BIN2 NULL",
        "ALTER TABLE armada_output ADD output_uuid UNIQUEIDENTIFIER NOT NULL CONSTRAINT armada_output_output_uuid_default DEFAULT NEWID()",
        "ALTER TABLE armada_output ADD job_uuid UNIQUEIDENTIFIER NULL",
        "ALTER TABLE armada_output ALTER COLUMN [timestamp] DATETIME2(6) NOT NULL",
        "ALTER TABLE armada_jobs ADD CONSTRAINT armada_jobs_job_status_default DEFAULT N'Running' FOR job_status",
        "ALTER TABLE armada_fingerprints ALTER COLUMN collecting_date DATETIME2(6) NULL",
        "ALTER TABLE armada_fingerprints ADD fingerprint_sha256 CHAR(64) COLLATE Latin1_General_100_BIN2 NULL",
        "ALTER TABLE armada_fingerprints ALTER COLUMN fingerprint_sha256 CHAR(64) COLLATE Latin1_General_100_BIN2 NOT NULL",
        "ALTER TABLE armada_runs ADD CONSTRAINT armada_runs_pk PRIMARY KEY NONCLUSTERED (run_uuid)",
        "ALTER TABLE armada_proxies ADD CONSTRAINT armada_proxies_url UNIQUE (proxy_url)",
        "ALTER TABLE armada_events ADD CONSTRAINT armada_events_job FOREIGN KEY (job_uuid) REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE",
        "CREATE INDEX armada_jobs_by_run_status ON armada_jobs (run_uuid, job_status);",
    ] {
        position(&steps, expected);
    }
    assert!(
        statements(&steps).iter().any(|s| s.starts_with("CREATE TABLE armada_job_logs (")),
        "the table the original lacked"
    );
    assert!(steps.contains(&Step::FingerprintDigests));
}

#[test]
fn every_check_runs_before_the_first_change_except_the_computed_digests() {
    let steps = plan(&original()).expect("adoptable");
    let first_change = steps.iter().position(|s| !matches!(s, Step::Check(_))).expect("changes");
    let digests = steps.iter().position(|s| *s == Step::FingerprintDigests).expect("digests");
    for (i, step) in steps.iter().enumerate().skip(first_change) {
        if let Step::Check(check) = step {
            assert_eq!(i, digests + 1, "only the digest duplicates are checked late: {}", check.sql);
        }
    }
    let fill = position(&steps, "UPDATE armada_jobs SET job_status = N'Running' WHERE job_status IS NULL");
    let alter = position(
        &steps,
        "ALTER TABLE armada_jobs ALTER COLUMN job_status NVARCHAR(255) COLLATE Latin1_General_100_BIN2 NOT NULL",
    );
    let key =
        position(&steps, "ALTER TABLE armada_jobs ADD CONSTRAINT armada_jobs_pk PRIMARY KEY NONCLUSTERED (job_uuid)");
    let logs = steps
        .iter()
        .position(|s| matches!(s, Step::Sql(sql) if sql.starts_with("CREATE TABLE armada_job_logs")))
        .unwrap();
    let fk = position(
        &steps,
        "ALTER TABLE armada_jobs ADD CONSTRAINT armada_jobs_run FOREIGN KEY (run_uuid) REFERENCES armada_runs (run_uuid) ON DELETE CASCADE",
    );
    let index = position(&steps, "CREATE INDEX armada_runs_by_datetime ON armada_runs (run_datetime, seq);");
    assert!(
        fill < alter && alter < key && key < logs && logs < fk && fk < index,
        "{fill} {alter} {key} {logs} {fk} {index}"
    );
}

#[test]
fn the_data_is_checked_for_conversions_duplicates_orphans_and_lengths() {
    let steps = plan(&original()).expect("adoptable");
    let checks = checks(&steps);
    let has = |fragment: &str| checks.iter().any(|c| c.sql.contains(fragment));
    assert!(has("FROM armada_jobs WHERE job_uuid IS NOT NULL AND TRY_CONVERT(UNIQUEIDENTIFIER, job_uuid) IS NULL"));
    assert!(!has("TRY_CONVERT(DATETIME2(6), run_datetime)"), "DATETIME → DATETIME2 always converts: no check");
    assert!(has("FROM armada_runs WHERE run_datetime IS NULL HAVING COUNT_BIG(*) > 0"), "but it must be present");
    assert!(has("SELECT TRY_CONVERT(UNIQUEIDENTIFIER, job_uuid) AS k FROM armada_jobs"), "duplicate job uuids");
    assert!(has("FROM armada_events AS c WHERE c.job_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM armada_jobs AS p"));
    assert!(has("FROM armada_output AS c WHERE c.run_uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM armada_runs AS p"));
    assert!(
        has("CONVERT(NVARCHAR(4000), proxy_url) COLLATE Latin1_General_100_BIN2"),
        "URLs compared case-sensitively"
    );
    assert!(!has("k FROM armada_runs WHERE TRY_CONVERT(UNIQUEIDENTIFIER, seq)"), "no check on added columns");
    assert!(!has("DATALENGTH(CONVERT(NVARCHAR(MAX), proxy_url)) > 1600"), "255 characters fit 800");
    let dup = checks.iter().find(|c| c.sql.contains("k FROM armada_jobs")).expect("duplicate check");
    assert_eq!(
        refusal(dup, "550E8400-E29B-41D4-A716-446655440000", 2),
        "armada_jobs: job_uuid 550E8400-E29B-41D4-A716-446655440000 appears on 2 rows, but it must be unique; \
         remove the duplicates, then run `armada migrate` again"
    );
    let orphan = checks.iter().find(|c| c.sql.contains("FROM armada_events AS c")).expect("orphan check");
    assert_eq!(
        refusal(orphan, "abc", 0),
        "armada_events: an event refers to job abc, which armada_jobs does not have; delete those rows or restore \
         the job, then run `armada migrate` again"
    );
}

#[test]
fn a_proxy_url_in_a_refusal_is_masked() {
    let mut catalog = original();
    catalog[4].columns[0] = column("proxy_url", "nvarchar", -1);
    let steps = plan(&catalog).expect("adoptable");
    let long = checks(&steps)
        .into_iter()
        .find(|c| c.sql.contains("DATALENGTH(CONVERT(NVARCHAR(MAX), proxy_url)) > 1600"))
        .expect("length check");
    let dup = checks(&steps).into_iter().find(|c| c.sql.contains("k FROM armada_proxies")).expect("duplicate check");
    for check in [long, dup] {
        let text = refusal(check, "http://user:hunter2@10.0.0.1:8080", 2);
        assert!(!text.contains("hunter2") && text.contains("10.0.0.1"), "{text}");
    }
}

#[test]
fn columns_already_of_the_right_type_are_left_alone() {
    let mut catalog = original();
    catalog[0].columns[0] = CatalogColumn { nullable: false, ..column("run_uuid", "uniqueidentifier", 16) };
    let steps = plan(&catalog).expect("adoptable");
    assert!(!statements(&steps).iter().any(|s| s.contains("ALTER COLUMN run_uuid") && s.contains("armada_runs")));
    assert!(
        !checks(&steps).iter().any(|c| c.sql.contains("FROM armada_runs WHERE run_uuid IS NOT NULL AND TRY_CONVERT"))
    );
}

/// A database already in Armada's shape needs no step at all.
#[test]
fn a_database_in_the_target_shape_needs_nothing() {
    let catalog: Vec<CatalogTable> = TABLES
        .iter()
        .map(|t| CatalogTable {
            name: t.name.into(),
            columns: t
                .columns
                .iter()
                .map(|c| {
                    let (type_name, max_length, collation) = match c.ty {
                        SqlType::Uuid => ("uniqueidentifier", 16, None),
                        SqlType::DateTime2 => ("datetime2", 8, None),
                        SqlType::BigInt => ("bigint", 8, None),
                        SqlType::NVarChar(n, coll) => {
                            ("nvarchar", n.map_or(-1, |n| 2 * n as i16), coll.map(String::from))
                        }
                        SqlType::Char(n) => ("char", n as i16, Some(schema::BINARY.to_string())),
                    };
                    CatalogColumn {
                        name: c.name.into(),
                        type_name: type_name.into(),
                        max_length,
                        scale: if c.ty == SqlType::DateTime2 { 6 } else { 0 },
                        nullable: c.nullable,
                        collation,
                        identity: c.identity,
                        has_default: c.default.is_some(),
                    }
                })
                .collect(),
            constraints: t
                .constraints
                .iter()
                .map(|c| c.name)
                .chain(t.foreign_keys.iter().map(|k| k.name))
                .chain(t.indexes.iter().map(|i| i.name))
                .map(String::from)
                .collect(),
            primary_key: t
                .constraints
                .iter()
                .find(|c| c.definition.starts_with("PRIMARY KEY"))
                .map(|c| c.name.to_string()),
        })
        .collect();
    assert_eq!(plan(&catalog).expect("adoptable"), Vec::<Step>::new());
}

#[test]
fn tables_it_cannot_adopt_safely_are_refused_with_the_reason() {
    let mut keyed = original();
    keyed[1].primary_key = Some("PK_jobs".into());
    let err = plan(&keyed).unwrap_err();
    assert!(err.contains("armada_jobs") && err.contains("PK_jobs") && err.ends_with("nothing was changed"), "{err}");

    let mut no_parent_column = original();
    no_parent_column[1].columns.retain(|c| c.name != "run_uuid");
    assert!(plan(&no_parent_column).unwrap_err().contains("armada_jobs: it has no column run_uuid"));

    let mut strict_extra = original();
    strict_extra[0].columns.push(CatalogColumn { nullable: false, ..column("legacy_id", "int", 4) });
    assert!(plan(&strict_extra).unwrap_err().contains("legacy_id is NOT NULL without a default"));

    let mut offset = original();
    offset[0].columns[1] = column("run_datetime", "datetimeoffset", 10);
    assert!(plan(&offset).unwrap_err().contains("run_datetime is datetimeoffset"));

    let mut legacy = original();
    legacy[2].columns[2] = column("job_uuid", "ntext", 16);
    assert!(plan(&legacy).unwrap_err().contains("job_uuid is ntext"));

    let mut defaulted = original();
    defaulted[1].columns[4].has_default = true;
    assert!(plan(&defaulted).unwrap_err().contains("job_status must change type or nullability but has a default"));
}

#[test]
fn extra_nullable_columns_are_kept() {
    let mut catalog = original();
    catalog[0].columns.push(column("note", "nvarchar", 100));
    let steps = plan(&catalog).expect("adoptable");
    assert!(!statements(&steps).iter().any(|s| s.contains("note")));
}

#[test]
fn children_of_a_missing_parent_table_must_be_empty() {
    let catalog: Vec<CatalogTable> = original().into_iter().filter(|t| t.name != "armada_jobs").collect();
    let steps = plan(&catalog).expect("adoptable");
    let orphan = checks(&steps).into_iter().find(|c| c.message.starts_with("armada_events: an event")).expect("check");
    assert_eq!(
        orphan.sql,
        "SELECT TOP (1) CONVERT(NVARCHAR(4000), job_uuid) AS value FROM armada_events WHERE job_uuid IS NOT NULL"
    );
    let create = position(&steps, &schema::create_table(&schema::JOBS));
    let fk = position(
        &steps,
        "ALTER TABLE armada_events ADD CONSTRAINT armada_events_job FOREIGN KEY (job_uuid) REFERENCES armada_jobs (job_uuid) ON DELETE CASCADE",
    );
    assert!(create < fk);
}

/// Checks carry no value and no literal; changes carry only the schema's own default literals.
#[test]
fn adoption_sql_holds_no_value_from_the_data() {
    let steps = plan(&original()).expect("adoptable");
    let allowed = ["N'Unknown'", "N'Running'", "N''", "N'null'"];
    for step in &steps {
        match step {
            Step::Check(check) => {
                assert!(!check.sql.contains('\'') && !check.sql.contains("@P"), "{}", check.sql);
            }
            Step::Sql(sql) => {
                let mut rest = sql.as_str();
                while let Some(start) = rest.find("N'") {
                    let end = rest[start + 2..].find('\'').expect("closed") + start + 3;
                    assert!(allowed.contains(&&rest[start..end]), "{sql}");
                    rest = &rest[end..];
                }
                assert_eq!(sql.matches('\'').count() % 2, 0, "{sql}");
            }
            Step::FingerprintDigests => {}
        }
    }
}

#[test]
fn fingerprint_digests_are_the_importers() {
    let collected = crate::model::Timestamp::parse("2026-02-24").unwrap().as_micros();
    assert_eq!(
        fingerprint_digest(
            Some("datadome"),
            Some("https://example.com"),
            r#"{"fingerprint": "sample_data"}"#,
            Some(collected)
        ),
        "78268e4f94bfd8b2ec2f080bafe648dfa506d0489169a1568f594e8b03b3cc75",
        "JSON compacted, date in microseconds"
    );
    let plain_text = crate::infra::db::NewFingerprint {
        antibot_vendor: None,
        website: None,
        data: serde_json::Value::String("not json".into()),
        collecting_date: None,
    };
    assert_eq!(
        fingerprint_digest(None, None, "not json", None),
        plain_text.digest(),
        "text that is not JSON is the JSON string the provider hands out"
    );
}
