//! Tests and properties of the CSV row parser.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;

const JOBS: &str = "config/data_job.csv";

fn parse_with(text: &[u8], target: RowTarget, tune: Option<&Tune>) -> Result<Vec<Value>, PipelineError> {
    let file = NamedBytes { name: JOBS, bytes: text };
    parse_csv_rows(file, target, tune).map(|rows| rows.into_iter().map(Value::Object).collect())
}

fn parse(text: &str) -> Result<Vec<Value>, PipelineError> {
    parse_with(text.as_bytes(), RowTarget::Job, None)
}

fn rows(text: &str) -> Vec<Value> {
    parse(text).expect("valid CSV")
}

fn rejected(text: &str) -> PipelineError {
    parse(text).expect_err("invalid CSV")
}

#[test]
fn csv_header_names_and_cells_are_trimmed() {
    assert_eq!(
        rows(" account , message \n  alice ,  hi there  \n"),
        [json!({"account": "alice", "message": "hi there", "targetted_job": 0})]
    );
}

#[test]
fn csv_utf8_bom_is_stripped() {
    assert_eq!(
        parse_with(b"\xEF\xBB\xBFaccount\nalice\n", RowTarget::Job, None).expect("valid CSV"),
        [json!({"account": "alice", "targetted_job": 0})]
    );
}

#[test]
fn csv_empty_cell_stays_empty_string() {
    assert_eq!(rows("a,b,c\n,x,\n"), [json!({"a": "", "b": "x", "c": "", "targetted_job": 0})]);
}

#[test]
fn csv_other_cells_stay_strings() {
    assert_eq!(
        rows("n,flag,date\n42,true,2026-02-24 10:30:00\n"),
        [json!({"n": "42", "flag": "true", "date": "2026-02-24 10:30:00", "targetted_job": 0})]
    );
}

#[test]
fn csv_json_object_cell_is_parsed() {
    assert_eq!(
        rows("payload\n\"{\"\"a\"\": 1, \"\"b\"\": \"\"x\"\"}\"\n"),
        [json!({"payload": {"a": 1, "b": "x"}, "targetted_job": 0})]
    );
}

#[test]
fn csv_json_array_cell_is_parsed() {
    assert_eq!(rows("list\n\"[1, \"\"two\"\", null]\"\n"), [json!({"list": [1, "two", null], "targetted_job": 0})]);
}

#[test]
fn csv_unquoted_json_cell_without_commas() {
    let text = "site,url,fingerprint,date\n\
                datadome,https://example.com,{\"fingerprint\":\"sample_data\"},2026-02-24\n";
    assert_eq!(
        rows(text),
        [json!({
            "site": "datadome",
            "url": "https://example.com",
            "fingerprint": {"fingerprint": "sample_data"},
            "date": "2026-02-24",
            "targetted_job": 0,
        })]
    );
}

#[test]
fn csv_json_cell_inner_strings_parsed_one_level() {
    // {"proxy": "{\"host\": \"h\", \"deeper\": \"{\\\"x\\\": 1}\"}", "list": "[1]", "text": "plain"}
    let cell = r#"{"proxy": "{\"host\": \"h\", \"deeper\": \"{\\\"x\\\": 1}\"}", "list": "[1]", "text": "plain"}"#;
    let text = format!("config\n\"{}\"\n", cell.replace('"', "\"\""));
    assert_eq!(
        rows(&text),
        [json!({
            "config": {
                "proxy": {"host": "h", "deeper": "{\"x\": 1}"},
                "list": [1],
                "text": "plain",
            },
            "targetted_job": 0,
        })],
        "strings directly inside are parsed, strings deeper stay text"
    );
}

#[test]
fn csv_json_array_cell_inner_strings_parsed() {
    let text = "list\n\"[\"\"{\\\"\"a\\\"\": 1}\"\", \"\"x\"\"]\"\n";
    assert_eq!(rows(text), [json!({"list": [{"a": 1}, "x"], "targetted_job": 0})]);
}

#[test]
fn csv_invalid_json_cell_names_file_row_and_column() {
    let error = rejected("account,payload\nalice,{}\nbob,\"{\"\"a\"\": 1 \"\"b\"\": 2}\"\n");
    assert_eq!(error.file, JOBS);
    assert_eq!(error.row, Some(3));
    assert_eq!(error.field.as_deref(), Some("payload"));
    assert_eq!(
        error.to_string(),
        "config/data_job.csv row 3, field payload: invalid JSON (expected `,` or `}` at line 1 column 9)"
    );
}

#[test]
fn csv_invalid_inner_json_names_inner_path() {
    let error = rejected("payload\n\"{\"\"a\"\": \"\"{oops}\"\"}\"\n");
    assert_eq!((error.row, error.field.as_deref()), (Some(2), Some("payload.a")));
    assert!(error.message.starts_with("invalid JSON ("), "{error}");
    let error = rejected("list\n\"[1, \"\"[oops]\"\"]\"\n");
    assert_eq!((error.row, error.field.as_deref()), (Some(2), Some("list[1]")));
}

#[test]
fn csv_rows_get_targetted_job_index() {
    let parsed = rows("a\nx\ny\nz\n");
    let indexes: Vec<&Value> = parsed.iter().map(|row| &row["targetted_job"]).collect();
    assert_eq!(indexes, [&json!(0), &json!(1), &json!(2)]);
}

#[test]
fn csv_rows_get_targetted_agent_index() {
    let parsed = parse_with(b"a\nx\ny\n", RowTarget::Agent, None).expect("valid CSV");
    assert_eq!(parsed, [json!({"a": "x", "targetted_agent": 0}), json!({"a": "y", "targetted_agent": 1})]);
}

#[test]
fn csv_header_only_gives_no_rows() {
    assert_eq!(rows("account,message\n"), Vec::<Value>::new());
}

#[test]
fn csv_empty_file_gives_no_rows() {
    assert_eq!(rows(""), Vec::<Value>::new());
}

#[test]
fn csv_whitespace_only_file_gives_no_rows() {
    assert_eq!(rows("  \n\t\n \r\n"), Vec::<Value>::new());
}

#[test]
fn csv_blank_lines_are_skipped_and_rows_count_lines() {
    let text = "\na,b\nx,1\n\n   \ny,2\n\n";
    assert_eq!(
        rows(text),
        [json!({"a": "x", "b": "1", "targetted_job": 0}), json!({"a": "y", "b": "2", "targetted_job": 1}),]
    );
    let error = rejected("a,b\nx,1\n\n   \ny\n");
    assert_eq!(error.row, Some(5), "rows are the lines seen in an editor");
}

#[test]
fn csv_one_column_quoted_empty_cell_is_a_row() {
    assert_eq!(rows("a\n\"\"\nx\n"), [json!({"a": "", "targetted_job": 0}), json!({"a": "x", "targetted_job": 1})]);
}

#[test]
fn csv_crlf_line_endings() {
    assert_eq!(rows("a,b\r\nx,y\r\n"), [json!({"a": "x", "b": "y", "targetted_job": 0})]);
}

#[test]
fn csv_wrong_cell_count_names_row_and_header() {
    let text = "account,message,payload\n1,2,3\n1,2,3\n1,2,3\n1,2,3\n1,2,3\n1,2,3,4\n";
    let error = rejected(text);
    assert_eq!((error.row, error.field.as_deref()), (Some(7), None));
    assert_eq!(error.to_string(), "config/data_job.csv row 7: 4 cells, header has 3 (account,message,payload)");
}

#[test]
fn csv_too_few_cells_is_an_error() {
    let error = rejected("a,b,c\nx,y\n");
    assert_eq!(error.row, Some(2));
    assert_eq!(error.message, "2 cells, header has 3 (a,b,c)");
}

#[test]
fn csv_unquoted_json_with_commas_hints_at_quoting() {
    let error = rejected("site,fingerprint\nx,{\"a\":1,\"b\":2}\n");
    assert_eq!(error.row, Some(2));
    assert!(
        error
            .message
            .starts_with("3 cells, header has 2 (site,fingerprint); a JSON cell containing commas must be quoted"),
        "{error}"
    );
}

#[test]
fn csv_duplicate_header_names_the_column() {
    let error = rejected("account, message ,account\nx,y,z\n");
    assert_eq!((error.row, error.field.as_deref()), (Some(1), Some("account")));
    assert!(error.message.starts_with("duplicate column name (columns 1 and 3)"), "{error}");
}

#[test]
fn csv_empty_header_name_names_the_column() {
    let error = rejected("account,,payload\nx,y,z\n");
    assert_eq!((error.row, error.field.as_deref()), (Some(1), Some("column 2")));
    assert!(error.message.starts_with("empty column name"), "{error}");
}

#[test]
fn csv_non_utf8_cell_names_row_and_column() {
    let error = parse_with(b"account,message\nalice,caf\xe9\n", RowTarget::Job, None).expect_err("latin-1 byte");
    assert_eq!(error.file, JOBS);
    assert_eq!((error.row, error.field.as_deref()), (Some(2), Some("message")));
    assert!(error.message.starts_with("not valid UTF-8"), "{error}");
}

#[test]
fn csv_non_utf8_header_names_row_and_column_number() {
    let error = parse_with(b"account,m\xffssage\nx,y\n", RowTarget::Job, None).expect_err("bad header byte");
    assert_eq!((error.row, error.field.as_deref()), (Some(1), Some("column 2")));
}

#[test]
fn csv_env_placeholder_cell_is_substituted() {
    let tune = Tune {
        name: "config/config_local.json".to_owned(),
        values: serde_json::from_str(r#"{"VISIBLE": 0, "HOST": "h"}"#).expect("tune"),
    };
    let parsed = parse_with(b"visible,proxy\n$env_VISIBLE,{\"host\":\"$env_HOST\"}\n", RowTarget::Job, Some(&tune))
        .expect("valid CSV");
    assert_eq!(parsed, [json!({"visible": 0, "proxy": {"host": "h"}, "targetted_job": 0})]);
}

#[test]
fn csv_unknown_env_placeholder_names_row_and_column() {
    let error = rejected("account,proxy\nalice,x\nbob,{\"host\":\"$env_HOST\"}\n");
    assert_eq!(error.file, JOBS);
    assert_eq!((error.row, error.field.as_deref()), (Some(3), Some("proxy.host")));
    assert!(error.message.starts_with("unknown placeholder $env_HOST"), "{error}");
}

/// Plain cell text: no surrounding whitespace, not shaped like JSON, no placeholder.
fn plain_cell() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,;:\"'{}\\[\\]\né-]{0,10}"
        .prop_filter("plain text", |text| text.trim() == text && !looks_like_json(text) && !text.starts_with("$env_"))
}

fn table() -> impl Strategy<Value = (Vec<String>, Vec<Vec<String>>)> {
    prop::collection::btree_set("[a-z][a-z0-9_]{0,6}", 1..5).prop_flat_map(|names| {
        let names: Vec<String> = names.into_iter().collect();
        let width = names.len();
        let rows = prop::collection::vec(prop::collection::vec(plain_cell(), width), 0..6);
        (Just(names), rows)
    })
}

proptest! {
    #[test]
    fn csv_round_trip_plain_strings((names, table) in table()) {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&names).expect("write header");
        for row in &table {
            writer.write_record(row).expect("write row");
        }
        let bytes = writer.into_inner().expect("flush");
        let parsed = parse_with(&bytes, RowTarget::Job, None).expect("valid CSV");
        let expected: Vec<Value> = table
            .iter()
            .enumerate()
            .map(|(index, row)| {
                let mut map: Map<String, Value> = names
                    .iter()
                    .cloned()
                    .zip(row.iter().cloned().map(Value::String))
                    .collect();
                map.insert("targetted_job".to_owned(), json!(index));
                Value::Object(map)
            })
            .collect();
        prop_assert_eq!(parsed, expected);
    }

    #[test]
    fn csv_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(parsed) = parse_with(&bytes, RowTarget::Agent, None) {
            for (index, row) in parsed.iter().enumerate() {
                prop_assert_eq!(&row["targetted_agent"], &json!(index));
            }
        }
    }

    #[test]
    fn csv_random_text_never_panics(text in "[a-c,\"{}\\[\\] \n\r$]{0,64}") {
        match parse(&text) {
            Ok(parsed) => {
                for (index, row) in parsed.iter().enumerate() {
                    prop_assert_eq!(&row["targetted_job"], &json!(index));
                }
            }
            Err(error) => prop_assert_eq!(error.file, JOBS),
        }
    }
}
