//! Tests of the errors `plan_run` reports: each names the file, and the row and field.

use serde_json::json;

use super::{AGENTS_CSV, JOBS_CSV, LOCAL, Project, TEMPLATE, assert_error, template};

#[test]
fn plan_number_of_jobs_missing_without_rows() {
    let template = json!({"run_message": {"number_of_agents": 1}});
    let error = Project::new(template).jobs("a\n").err();
    assert_error(&error, TEMPLATE, None, Some("run_message.number_of_jobs"), "key is missing");
}

#[test]
fn plan_number_of_agents_zero_is_an_error() {
    let error = Project::new(template(0, 1)).err();
    assert_error(&error, TEMPLATE, None, Some("run_message.number_of_agents"), "must be at least 1");
}

#[test]
fn plan_default_agent_message_not_an_object() {
    let mut template = template(1, 1);
    template["default_agent_message"] = json!("text");
    let error = Project::new(template).err();
    assert_error(&error, TEMPLATE, None, Some("default_agent_message"), "must be a JSON object, got a string");
}

#[test]
fn plan_default_job_message_not_an_object() {
    let mut template = template(1, 1);
    template["default_job_message"] = json!(null);
    let error = Project::new(template).err();
    assert_error(&error, TEMPLATE, None, Some("default_job_message"), "must be a JSON object, got null");
}

#[test]
fn plan_template_invalid_json_names_line_and_column() {
    let error = Project::raw("{\n  \"run_message\": {\n    \"number_of_agents\": 1,\n  }\n}").err();
    assert_error(&error, TEMPLATE, None, None, "invalid JSON (");
    assert!(error.message.contains("at line 4 column 3"), "{error}");
}

#[test]
fn plan_template_not_an_object() {
    let error = Project::raw("[1, 2]").err();
    assert_error(&error, TEMPLATE, None, None, "must be a JSON object with run_message");
    assert!(error.message.ends_with("got an array"), "{error}");
}

#[test]
fn plan_run_message_missing() {
    let error = Project::new(json!({"default_agent_message": {}})).err();
    assert_error(&error, TEMPLATE, None, Some("run_message"), "key is missing");
}

#[test]
fn plan_run_message_not_an_object() {
    let error = Project::new(json!({"run_message": [1]})).err();
    assert_error(&error, TEMPLATE, None, Some("run_message"), "must be a JSON object, got an array");
}

#[test]
fn plan_unknown_placeholder_names_template_path() {
    let mut template = template(1, 1);
    template["default_agent_message"] = json!({"config_proxy": {"verify_ip": "$env_VERIFY"}});
    let error = Project::new(template).tune("{}").err();
    assert_eq!(
        error.to_string(),
        "config/config_template.json field default_agent_message.config_proxy.verify_ip: \
         unknown placeholder $env_VERIFY (no such key in config/config_local.json)"
    );
}

#[test]
fn plan_unknown_placeholder_without_tune_file() {
    let mut template = template(1, 1);
    template["default_job_message"] = json!({"x": "$env_X"});
    let error = Project::new(template).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("default_job_message.x"),
        "unknown placeholder $env_X (no tune file was given",
    );
}

#[test]
fn plan_tune_invalid_json() {
    let error = Project::new(template(1, 1)).tune("{oops").err();
    assert_error(&error, LOCAL, None, None, "invalid JSON (");
    assert!(error.message.contains("line 1 column 2"), "{error}");
}

#[test]
fn plan_tune_not_an_object() {
    let error = Project::new(template(1, 1)).tune("3").err();
    assert_error(&error, LOCAL, None, None, "must be a JSON object");
}

#[test]
fn plan_invalid_csv_cell_names_its_file() {
    let error = Project::new(template(1, 1)).jobs("a,b\nx,[oops]\n").err();
    assert_error(&error, JOBS_CSV, Some(2), Some("b"), "invalid JSON (");
}

#[test]
fn plan_more_agent_rows_than_agents() {
    let error = Project::new(template(2, 1)).agents("a\n1\n2\n3\n").err();
    assert_error(
        &error,
        AGENTS_CSV,
        None,
        None,
        "3 rows but run_message.number_of_agents is 2; remove rows or raise number_of_agents to at least 3",
    );
}

#[test]
fn plan_more_job_rows_than_jobs() {
    let error = Project::new(template(1, 2)).jobs("a\n1\n2\n3\n").err();
    assert_error(&error, JOBS_CSV, None, None, "3 rows but run_message.number_of_jobs is 2");
}
