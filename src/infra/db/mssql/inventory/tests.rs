//! The inventory without a server: what an import sends (checked, deduplicated, chunked within
//! the parameter limit), how a location becomes a `LIKE` pattern, and that every statement binds
//! what its SQL declares.

use super::*;
use crate::infra::db::mssql::limits::{MAX_PARAMS, rows_per_statement};
use crate::infra::db::mssql::schema::{self, SqlType};

fn proxy(url: &str) -> NewProxy {
    NewProxy {
        proxy_url: url.into(),
        proxy_provider_name: Some("iproyal".into()),
        proxy_type: None,
        proxy_rotation_strategy: Some("sticky".into()),
        proxy_location: Some("Europe/Paris".into()),
    }
}

fn fingerprint(n: usize) -> NewFingerprint {
    NewFingerprint {
        antibot_vendor: Some("datadome".into()),
        website: Some("https://example.com".into()),
        data: serde_json::json!({ "n": n }),
        collecting_date: Timestamp::parse("2026-02-24").ok(),
    }
}

/// The rows an import's statements insert, in order: each row's values without its position.
fn bound_rows(plan: &ImportPlan, per_row: usize) -> Vec<Vec<Param>> {
    plan.statements
        .iter()
        .flat_map(|statement| statement.params.chunks(per_row).map(|row| row[1..].to_vec()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn repeats_within_an_import_are_dropped_first_row_wins() {
    let mut other = proxy("http://u:p@a.example:8000");
    other.proxy_provider_name = Some("other".into());
    let plan = proxy_import(&[
        proxy("http://u:p@a.example:8000"),
        proxy("http://u:p@b.example:8000"),
        other,
        proxy("http://u:p@b.example:8000  "),
    ])
    .expect("valid");
    assert_eq!(plan.rows, 4);
    assert_eq!(plan.statements.len(), 1);
    let rows = bound_rows(&plan, sql::PROXIES.params_per_row());
    let urls: Vec<&Param> = rows.iter().map(|row| &row[0]).collect();
    assert_eq!(urls, [&Param::text("http://u:p@a.example:8000"), &Param::text("http://u:p@b.example:8000")]);
    assert_eq!(rows[0][1], Param::text("iproyal"), "the first row of a url is the one kept");
    assert_eq!(rows[0][2], Param::Text(None), "an absent value is a typed NULL");
    assert_eq!(plan.outcome(1), ImportOutcome { imported: 1, duplicates: 3 }, "one stored already");
}

#[test]
fn a_large_import_is_cut_at_the_parameter_limit_in_file_order() {
    let proxies: Vec<NewProxy> = (0..2500).map(|i| proxy(&format!("http://h{}.example:8000", i % 2000))).collect();
    let plan = proxy_import(&proxies).expect("valid");
    let per_row = sql::PROXIES.params_per_row();
    assert_eq!(per_row, 6);
    let sizes: Vec<usize> = plan.statements.iter().map(|s| s.params.len() / per_row).collect();
    assert_eq!(sizes, [333, 333, 333, 333, 333, 333, 2], "2,000 distinct urls, 333 rows a statement");
    for statement in &plan.statements {
        assert!(statement.params.len() <= MAX_PARAMS, "{} parameters", statement.params.len());
        assert_eq!(statement.params[0], Param::bigint(0), "positions restart in each statement");
        assert_eq!(statement.name, "insert_proxies");
    }
    let rows = bound_rows(&plan, per_row);
    let expected: Vec<Param> = (0..2000).map(|i| Param::text(format!("http://h{i}.example:8000"))).collect();
    assert_eq!(rows.iter().map(|row| row[0].clone()).collect::<Vec<_>>(), expected, "each url once, in order");
    assert_eq!(plan.outcome(2000), ImportOutcome { imported: 2000, duplicates: 500 });
}

#[test]
fn fingerprints_are_keyed_by_their_digest_and_chunked_too() {
    let mut batch: Vec<NewFingerprint> = (0..1200).map(fingerprint).collect();
    batch.push(fingerprint(7));
    let plan = fingerprint_import(&batch).expect("valid");
    let per_row = sql::FINGERPRINTS.params_per_row();
    let rows = bound_rows(&plan, per_row);
    assert_eq!((plan.rows, rows.len()), (1201, 1200), "the repeat of fingerprint 7 is dropped");
    assert_eq!(plan.statements.len(), 1200usize.div_ceil(rows_per_statement(per_row)));
    let first = fingerprint(0);
    assert_eq!(
        rows[0],
        vec![
            Param::text(first.digest()),
            Param::text("datadome"),
            Param::text("https://example.com"),
            Param::text(r#"{"n":0}"#),
            Param::opt_datetime(opt_datetime2("collecting_date", first.collecting_date).expect("in range")),
        ],
        "the shared digest, compact JSON, the day"
    );
    assert!(fingerprint_import(&[]).expect("empty").statements.is_empty());
}

#[test]
fn an_import_with_a_value_sql_server_cannot_store_is_refused_whole() {
    let empty = proxy_import(&[proxy("http://a.example:8000"), proxy("  ")]).unwrap_err();
    assert_eq!(empty.to_string(), "proxy 2 of the import has an empty proxy_url", "SQLite's message");
    let mut long = proxy("http://user:s3cret@a.example:8000");
    long.proxy_location = Some("x".repeat(256));
    let err = proxy_import(&[long.clone()]).unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(err.to_string(), "proxy 1 of the import: proxy_location is 256 characters long; at most 255 are stored");
    long.proxy_location = None;
    long.proxy_url = format!("http://user:s3cret@{}.example:8000", "a".repeat(800));
    let err = proxy_import(&[long]).unwrap_err().to_string();
    assert!(err.starts_with("proxy 1 of the import: proxy_url is ") && !err.contains("s3cret"), "{err}");

    let mut site = fingerprint(1);
    site.website = Some("w".repeat(401));
    let err = fingerprint_import(&[fingerprint(0), site]).unwrap_err().to_string();
    assert_eq!(err, "fingerprint 2 of the import: website is 401 characters long; at most 400 are stored");
    let mut late = fingerprint(1);
    late.collecting_date = Some(Timestamp::from_micros(i64::MAX / 2));
    let err = fingerprint_import(&[late]).unwrap_err().to_string();
    assert!(err.starts_with("fingerprint 1 of the import: collecting_date "), "{err}");
}

/// The limits checked before sending are the columns' in the schema.
#[test]
fn import_limits_are_the_columns_lengths() {
    let length = |table: &str, column: &str| {
        let table = schema::TABLES.iter().find(|t| t.name == table).expect("table");
        match table.column(column).expect("column").ty {
            SqlType::NVarChar(Some(n), _) => usize::from(n),
            other => panic!("{column}: {other:?}"),
        }
    };
    assert_eq!(length("armada_proxies", "proxy_url"), MAX_PROXY_URL);
    for column in ["proxy_provider_name", "proxy_type", "proxy_rotation_strategy", "proxy_location"] {
        assert_eq!(length("armada_proxies", column), MAX_LABEL, "{column}");
    }
    assert_eq!(length("armada_fingerprints", "antibot_vendor"), MAX_LABEL);
    assert_eq!(length("armada_fingerprints", "website"), MAX_WEBSITE);
}

#[test]
fn a_location_is_contained_and_its_wildcards_are_literal() {
    assert_eq!(contains_pattern("Europe"), "%Europe%");
    assert_eq!(contains_pattern("%"), "%[%]%");
    assert_eq!(contains_pattern("a_b"), "%a[_]b%");
    assert_eq!(contains_pattern("[x]"), "%[[]x]%", "`]` alone is literal");
    assert_eq!(contains_pattern(r"50%\_^-"), r"%50[%]\[_]^-%", "no ESCAPE clause: a backslash is plain text");
    assert_eq!(contains_pattern("Île-de-France"), "%Île-de-France%");
}

#[test]
fn random_proxy_binds_its_filters_trimmed_and_the_excluded_ids_as_json() {
    let filter = ProxyFilter {
        proxy_provider_name: Some(" IPRoyal ".into()),
        proxy_type: Some("   ".into()),
        proxy_rotation_strategy: None,
        proxy_location: Some("europe_".into()),
        exclude_ids: vec![3, 17],
    };
    let statement = random_proxy_statement(&filter).expect("statement");
    assert_eq!(
        statement.params,
        [
            Param::text("IPRoyal"),
            Param::Text(None),
            Param::Text(None),
            Param::text("%europe[_]%"),
            Param::text("[3,17]")
        ]
    );
    let any = random_proxy_statement(&ProxyFilter::default()).expect("statement");
    assert_eq!(any.params[4], Param::text("[]"), "OPENJSON of an empty array excludes nothing");
}

#[test]
fn random_fingerprint_binds_the_date_on_or_after_within_what_datetime2_holds() {
    let day = Timestamp::parse("2026-02-24").expect("day");
    let filter =
        FingerprintFilter { antibot_vendor: Some("DataDome".into()), website: None, collected_since: Some(day) };
    let statement = random_fingerprint_statement(&filter).expect("statement").expect("can match");
    assert_eq!(statement.params[0], Param::text("DataDome"));
    assert_eq!(statement.params[2], Param::datetime(day.as_datetime().naive_utc()));

    let year_one = NaiveDate::from_ymd_opt(1, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    assert_eq!(since_bound(Timestamp::from_micros(i64::MIN / 2)), year_one, "every stored date is after it");
    let far = FingerprintFilter { collected_since: Some(Timestamp::from_micros(i64::MAX / 2)), ..filter };
    assert_eq!(random_fingerprint_statement(&far).expect("no error"), None, "nothing stored can be after it");
    let none = random_fingerprint_statement(&FingerprintFilter::default()).expect("statement").expect("any");
    assert_eq!(none.params, [Param::Text(None), Param::Text(None), Param::DateTime(None)]);
}

#[test]
fn inventory_pages_bind_what_their_sql_declares() {
    let request = PageRequest { page: 3, page_size: 25 };
    for list in [proxies_list(), fingerprints_list()] {
        let page = list.page_statement(request).expect("page");
        assert_eq!(page.params, [Param::bigint(50), Param::bigint(25)], "{}", page.name);
        list.count_statement().expect("count");
    }
}
