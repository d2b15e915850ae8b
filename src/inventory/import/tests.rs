use super::*;

const PROXIES_TEMPLATE: &[u8] = include_bytes!("../../../tests/fixtures/armada_proxies_template.csv");
const FINGERPRINTS_TEMPLATE: &[u8] = include_bytes!("../../../tests/fixtures/armada_fingerprints_template.csv");

fn day(raw: &str) -> Option<Timestamp> {
    Some(Timestamp::parse(raw).expect("test date"))
}

fn refused<T: fmt::Debug>(result: Result<ImportFile<T>, ImportError>) -> Vec<String> {
    result.expect_err("the file should be refused").problems.iter().map(ToString::to_string).collect()
}

#[test]
fn the_proxies_template_imports_nothing_but_reports_its_placeholder_row() {
    let parsed = parse_proxies("armada_proxies_template.csv", PROXIES_TEMPLATE).expect("the template is accepted");
    assert_eq!(parsed.rows, Vec::new());
    assert_eq!(parsed.placeholder_rows, vec![2]);
}

#[test]
fn the_fingerprints_template_imports_its_example_with_unquoted_json() {
    let parsed = parse_fingerprints("armada_fingerprints_template.csv", FINGERPRINTS_TEMPLATE).expect("valid");
    assert_eq!(
        parsed.rows,
        vec![NewFingerprint {
            antibot_vendor: Some("datadome".into()),
            website: Some("https://example.com".into()),
            data: serde_json::json!({"fingerprint": "sample_data"}),
            collecting_date: day("2026-02-24"),
        }]
    );
}

#[test]
fn proxies_keep_every_column_and_empty_cells_are_unknown() {
    let csv = "proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location\n\
               http://u:p@1.2.3.4:8000, iproyal ,residential,sticky,Europe/Paris\n\
               socks5://5.6.7.8:1080,,,,\n";
    let parsed = parse_proxies("p.csv", csv.as_bytes()).expect("valid");
    assert_eq!(parsed.rows.len(), 2);
    assert_eq!(parsed.rows[0].proxy_url, "http://u:p@1.2.3.4:8000");
    assert_eq!(parsed.rows[0].proxy_provider_name.as_deref(), Some("iproyal"), "cells are trimmed");
    assert_eq!(parsed.rows[0].proxy_location.as_deref(), Some("Europe/Paris"));
    assert_eq!(
        (parsed.rows[1].proxy_provider_name.clone(), parsed.rows[1].proxy_location.clone()),
        (None, None),
        "empty cells are unknown"
    );
}

#[test]
fn columns_may_come_in_any_order_and_only_the_key_column_is_required() {
    let parsed = parse_proxies("p.csv", b"Proxy_Location,PROXY_URL\nAsia/Tokyo,http://h:1\n").expect("valid");
    assert_eq!(parsed.rows[0].proxy_url, "http://h:1");
    assert_eq!(parsed.rows[0].proxy_location.as_deref(), Some("Asia/Tokyo"));
    assert_eq!(parsed.rows[0].proxy_type, None);
    let error = parse_proxies("p.csv", b"proxy_type\nresidential\n").expect_err("no proxy_url");
    assert!(error.to_string().contains("no proxy_url column"), "{error}");
}

#[test]
fn a_file_for_the_other_command_is_refused_by_its_header() {
    let error = parse_proxies("f.csv", FINGERPRINTS_TEMPLATE).expect_err("wrong file");
    assert_eq!(
        error.to_string(),
        "f.csv row 1: unknown column \"antibot_vendor\" in the header; the columns are \
         proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location; nothing was imported"
    );
    assert!(parse_fingerprints("p.csv", b"").expect_err("empty").to_string().contains("the file is empty"));
    assert!(refused(parse_proxies("p.csv", b"proxy_url,proxy_url\n"))[0].contains("appears twice"));
}

#[test]
fn bad_proxy_urls_name_row_and_column_and_never_show_the_password() {
    let csv = "proxy_url,proxy_type\n\
               http://ok:1,x\n\
               user:secret@host:8000,x\n\
               ftp://u:secret@host:21,x\n\
               http://u:secret@host:port,x\n\
               ,x\n\
               http://h:1\n";
    let problems = refused(parse_proxies("p.csv", csv.as_bytes()));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].starts_with("row 3, column proxy_url: \"user:***@host:8000\""), "{}", problems[0]);
    assert!(problems[1].starts_with("row 4, column proxy_url: \"ftp://u:***@host:21\" has the scheme \"ftp\""));
    assert!(problems[2].starts_with("row 5, column proxy_url: \"http://u:***@host:port\" is not a URL"));
    assert!(problems[3].starts_with("row 6, column proxy_url: empty"), "{}", problems[3]);
    assert_eq!(problems[4], "row 7: 1 cells, header has 2 (proxy_url,proxy_type)");
    assert!(problems.iter().all(|p| !p.contains("secret")), "{problems:#?}");
}

#[test]
fn fingerprint_dates_take_both_forms_and_keep_the_day() {
    let csv = "antibot_vendor,website,data,collecting_date\n\
               datadome,https://a.example,{\"n\":1},2026-02-24\n\
               datadome,https://a.example,{\"n\":2},2026-02-24 10:30:00\n\
               datadome,https://a.example,\"{\"\"n\"\": 3, \"\"m\"\": [1,2]}\",2026-02-24T23:59:59Z\n\
               akamai,,\"\"\"encrypted-payload\"\"\",\n";
    let parsed = parse_fingerprints("f.csv", csv.as_bytes()).expect("valid");
    let dates: Vec<Option<Timestamp>> = parsed.rows.iter().map(|r| r.collecting_date).collect();
    assert_eq!(dates, vec![day("2026-02-24"), day("2026-02-24"), day("2026-02-24"), None]);
    assert_eq!(parsed.rows[2].data, serde_json::json!({"n": 3, "m": [1, 2]}), "quoted JSON with commas");
    assert_eq!(parsed.rows[3].data, serde_json::json!("encrypted-payload"));
    assert_eq!(parsed.rows[3].website, None);
}

#[test]
fn bad_fingerprint_rows_name_row_and_column() {
    let csv = "antibot_vendor,website,data,collecting_date\n\
               datadome,https://a.example,{\"n\":1},2026-02-24\n\
               datadome,https://a.example,{not json},2026-02-24\n\
               datadome,https://a.example,{\"n\":1},24/02/2026\n\
               datadome,https://a.example,,2026-02-30\n\
               datadome,https://a.example,{\"a\":1,\"b\":2},2026-02-24\n";
    let problems = refused(parse_fingerprints("f.csv", csv.as_bytes()));
    assert_eq!(problems.len(), 5, "{problems:#?}");
    assert!(problems[0].starts_with("row 3, column data: not valid JSON"), "{}", problems[0]);
    assert_eq!(
        problems[1],
        "row 4, column collecting_date: \"24/02/2026\" is not a date; expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS"
    );
    assert!(problems[2].starts_with("row 5, column data: empty"), "{}", problems[2]);
    assert!(problems[3].starts_with("row 5, column collecting_date: \"2026-02-30\" is not a date"));
    assert!(problems[4].starts_with("row 6: 5 cells, header has 4"), "{}", problems[4]);
    assert!(problems[4].contains("must be quoted"), "{}", problems[4]);
}

#[test]
fn many_problems_are_listed_up_to_a_limit_and_counted() {
    let mut csv = String::from("proxy_url\n");
    for _ in 0..25 {
        csv.push_str("nope\n");
    }
    let error = parse_proxies("p.csv", csv.as_bytes()).expect_err("refused");
    let text = error.to_string();
    assert!(text.starts_with("p.csv: 25 problems, nothing was imported:\n  row 2, column proxy_url"), "{text}");
    assert!(text.ends_with("… and 5 more"), "{text}");
}

#[test]
fn a_utf8_bom_and_blank_lines_are_ignored() {
    let parsed = parse_proxies("p.csv", b"\xEF\xBB\xBFproxy_url\n\nhttp://h:1\n\n").expect("valid");
    assert_eq!(parsed.rows.len(), 1);
}
