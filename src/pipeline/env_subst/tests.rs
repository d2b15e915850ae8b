//! Tests for the tune file and `$env_` substitution.

use serde_json::{Value, json};

use super::*;

const TEMPLATE: &str = "config/config_template.json";
const LOCAL: &str = "config/config_local.json";

fn tune(values: Value) -> Tune {
    let Value::Object(values) = values else {
        panic!("test tune must be an object");
    };
    Tune { name: LOCAL.to_owned(), values }
}

fn substituted(mut value: Value, tune: &Tune) -> Value {
    substitute_env(&mut value, Some(tune), &ErrorContext::document(TEMPLATE)).expect("substitution succeeds");
    value
}

fn tune_file(text: &str) -> Result<Tune, PipelineError> {
    parse_tune(NamedBytes { name: LOCAL, bytes: text.as_bytes() })
}

#[test]
fn env_placeholder_keeps_tune_value_type() {
    let tune = tune(json!({"SCREEN_VISIBLE": 0, "HEADLESS": true, "NAME": "bob", "NOTHING": null}));
    let value = json!({
        "screen_visible": "$env_SCREEN_VISIBLE",
        "headless": "$env_HEADLESS",
        "name": "$env_NAME",
        "nothing": "$env_NOTHING",
    });
    assert_eq!(
        substituted(value, &tune),
        json!({"screen_visible": 0, "headless": true, "name": "bob", "nothing": null})
    );
}

#[test]
fn env_placeholder_inserts_tune_objects_and_arrays_as_is() {
    let tune = tune(json!({"PROXY": {"host": "h", "port": 8080}, "LIST": [1, "two"]}));
    let value = json!({"proxy": "$env_PROXY", "list": "$env_LIST"});
    assert_eq!(substituted(value, &tune), json!({"proxy": {"host": "h", "port": 8080}, "list": [1, "two"]}));
}

#[test]
fn env_substitution_recurses_through_objects_and_arrays() {
    let tune = tune(json!({"A": 1, "B": "b"}));
    let value = json!({"outer": {"inner": ["$env_A", {"deep": "$env_B"}]}});
    assert_eq!(substituted(value, &tune), json!({"outer": {"inner": [1, {"deep": "b"}]}}));
}

#[test]
fn env_only_strings_starting_with_prefix_are_substituted() {
    let tune = tune(json!({"A": 1}));
    let value = json!({"$env_A": "x $env_A", "plain": "env_A", "n": 3});
    assert_eq!(substituted(value.clone(), &tune), value, "keys and strings not starting with $env_ stay as they are");
}

#[test]
fn env_substituted_value_is_not_scanned_again() {
    let tune = tune(json!({"A": "$env_A", "B": {"x": "$env_MISSING"}}));
    let value = json!({"a": "$env_A", "b": "$env_B"});
    assert_eq!(substituted(value, &tune), json!({"a": "$env_A", "b": {"x": "$env_MISSING"}}));
}

#[test]
fn env_unknown_placeholder_names_file_and_json_path() {
    let tune = tune(json!({"OTHER": 1}));
    let mut value = json!({"default_agent_message": {"config_proxy": {"verify_ip": "$env_VERIFY"}}});
    let error =
        substitute_env(&mut value, Some(&tune), &ErrorContext::document(TEMPLATE)).expect_err("unknown placeholder");
    assert_eq!(error.file, TEMPLATE);
    assert_eq!(error.row, None);
    assert_eq!(error.field.as_deref(), Some("default_agent_message.config_proxy.verify_ip"));
    assert_eq!(
        error.to_string(),
        "config/config_template.json field default_agent_message.config_proxy.verify_ip: \
         unknown placeholder $env_VERIFY (no such key in config/config_local.json)"
    );
}

#[test]
fn env_unknown_placeholder_path_names_array_indexes() {
    let tune = tune(json!({}));
    let mut value = json!({"list": [1, {"x": ["a", "$env_GONE"]}]});
    let error =
        substitute_env(&mut value, Some(&tune), &ErrorContext::document(TEMPLATE)).expect_err("unknown placeholder");
    assert_eq!(error.field.as_deref(), Some("list[1].x[1]"));
}

#[test]
fn env_unknown_placeholder_without_tune_file_says_so() {
    let mut value = json!({"a": "$env_VERIFY"});
    let error = substitute_env(&mut value, None, &ErrorContext::document(TEMPLATE)).expect_err("no tune file");
    assert_eq!(error.field.as_deref(), Some("a"));
    assert!(error.message.starts_with("unknown placeholder $env_VERIFY (no tune file was given"), "{error}");
    assert!(error.message.contains("with the key VERIFY"), "{error}");
}

#[test]
fn env_unknown_placeholder_in_cell_names_row_and_column_path() {
    let mut value = json!({"inner": "$env_X"});
    let ctx = ErrorContext::cell("config/data_job.csv", 4, "payload");
    let error = substitute_env(&mut value, None, &ctx).expect_err("unknown placeholder");
    assert_eq!(error.file, "config/data_job.csv");
    assert_eq!(error.row, Some(4));
    assert_eq!(error.field.as_deref(), Some("payload.inner"));
}

#[test]
fn env_unknown_placeholder_at_document_root_has_no_field() {
    let mut value = json!("$env_X");
    let error = substitute_env(&mut value, None, &ErrorContext::document(TEMPLATE)).expect_err("unknown placeholder");
    assert_eq!(error.field, None);
}

#[test]
fn tune_plain_object_is_used_as_is() {
    let tune = tune_file(r#"{"SCREEN_VISIBLE": 0, "tune": 1}"#).expect("valid tune");
    assert_eq!(tune.name, LOCAL);
    assert_eq!(Value::Object(tune.values), json!({"SCREEN_VISIBLE": 0, "tune": 1}));
}

#[test]
fn tune_wrapped_form_is_unwrapped() {
    let tune = tune_file(r#"{"tune": {"SCREEN_VISIBLE": 0}}"#).expect("valid tune");
    assert_eq!(Value::Object(tune.values), json!({"SCREEN_VISIBLE": 0}));
}

#[test]
fn tune_key_beside_other_keys_is_an_ordinary_value() {
    let tune = tune_file(r#"{"tune": {"A": 1}, "B": 2}"#).expect("valid tune");
    assert_eq!(Value::Object(tune.values), json!({"tune": {"A": 1}, "B": 2}));
}

#[test]
fn tune_key_holding_a_non_object_is_an_ordinary_value() {
    let tune = tune_file(r#"{"tune": 5}"#).expect("valid tune");
    assert_eq!(Value::Object(tune.values), json!({"tune": 5}));
}

#[test]
fn tune_invalid_json_names_file_line_and_column() {
    let error = tune_file("{\n  \"A\": 1,\n}").expect_err("trailing comma");
    assert_eq!(error.file, LOCAL);
    assert_eq!((error.row, error.field.as_deref()), (None, None));
    assert!(error.message.starts_with("invalid JSON ("), "{error}");
    assert!(error.message.contains("line 3 column 1"), "{error}");
}

#[test]
fn tune_not_an_object_is_an_error() {
    let error = tune_file("[1, 2]").expect_err("array");
    assert_eq!(error.file, LOCAL);
    assert!(error.message.starts_with("must be a JSON object"), "{error}");
    assert!(error.message.ends_with("got an array"), "{error}");
}
