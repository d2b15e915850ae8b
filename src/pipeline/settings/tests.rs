//! Tests of `run_message` validation.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;

const TEMPLATE: &str = "config/config_template.json";

fn settings(run_message: Value) -> RunSettings {
    parse_run_settings(&run_message, TEMPLATE, 0).expect("valid run_message")
}

fn rejected(run_message: Value, job_rows: usize) -> PipelineError {
    parse_run_settings(&run_message, TEMPLATE, job_rows).expect_err("invalid run_message")
}

fn assert_field_error(error: &PipelineError, field: &str, message_start: &str) {
    assert_eq!(error.file, TEMPLATE);
    assert_eq!(error.row, None);
    assert_eq!(error.field.as_deref(), Some(field));
    assert!(error.message.starts_with(message_start), "{error}");
}

#[test]
fn settings_defaults() {
    assert_eq!(
        settings(json!({"number_of_agents": 2, "number_of_jobs": 5, "other": "kept out"})),
        RunSettings {
            number_of_agents: 2,
            number_of_jobs: 5,
            image_name: "armada-agent".to_owned(),
            image_version: "latest".to_owned(),
            agent_cpu: None,
            agent_memory: None,
            worker_command: None,
            job_timeout_secs: 300,
            max_attempts: 3,
        }
    );
}

#[test]
fn settings_all_keys_read() {
    let parsed = settings(json!({
        "number_of_agents": 3,
        "number_of_jobs": 7,
        "image_name": "my-agent",
        "image_version": 2,
        "agent_cpu": 0.5,
        "agent_memory": "512Mi",
        "worker_command": ["node", "main.js"],
        "job_timeout_secs": "60",
        "max_attempts": 1,
    }));
    assert_eq!(
        parsed,
        RunSettings {
            number_of_agents: 3,
            number_of_jobs: 7,
            image_name: "my-agent".to_owned(),
            image_version: "2".to_owned(),
            agent_cpu: Some("0.5".to_owned()),
            agent_memory: Some("512Mi".to_owned()),
            worker_command: Some(vec!["node".to_owned(), "main.js".to_owned()]),
            job_timeout_secs: 60,
            max_attempts: 1,
        }
    );
}

#[test]
fn settings_integers_may_be_strings() {
    let parsed = settings(json!({"number_of_agents": "3", "number_of_jobs": " 4 "}));
    assert_eq!((parsed.number_of_agents, parsed.number_of_jobs), (3, 4));
}

#[test]
fn settings_integral_float_is_an_integer() {
    assert_eq!(settings(json!({"number_of_agents": 3.0, "number_of_jobs": 1})).number_of_agents, 3);
}

#[test]
fn settings_null_counts_as_absent() {
    let parsed =
        settings(json!({"number_of_agents": 1, "number_of_jobs": 1, "image_name": null, "max_attempts": null}));
    assert_eq!((parsed.image_name.as_str(), parsed.max_attempts), ("armada-agent", 3));
}

#[test]
fn settings_run_message_not_an_object() {
    let error = rejected(json!([1]), 0);
    assert_field_error(&error, "run_message", "must be a JSON object, got an array");
}

#[test]
fn settings_number_of_agents_missing() {
    let error = rejected(json!({"number_of_jobs": 1}), 0);
    assert_field_error(&error, "run_message.number_of_agents", "key is missing");
}

#[test]
fn settings_number_of_agents_not_an_integer() {
    for (value, shown) in
        [(json!(2.5), "2.5"), (json!("abc"), "\"abc\""), (json!(true), "true"), (json!("3.0"), "\"3.0\"")]
    {
        let error = rejected(json!({"number_of_agents": value, "number_of_jobs": 1}), 0);
        assert_field_error(&error, "run_message.number_of_agents", &format!("expected an integer, got {shown}"));
    }
}

#[test]
fn settings_number_of_agents_zero() {
    let error = rejected(json!({"number_of_agents": 0, "number_of_jobs": 1}), 0);
    assert_field_error(&error, "run_message.number_of_agents", "must be at least 1, got 0");
}

#[test]
fn settings_number_of_agents_negative() {
    let error = rejected(json!({"number_of_agents": "-2", "number_of_jobs": 1}), 0);
    assert_field_error(&error, "run_message.number_of_agents", "must be at least 1, got -2");
}

#[test]
fn settings_number_of_agents_over_cap() {
    let error = rejected(json!({"number_of_agents": 10_001, "number_of_jobs": 1}), 0);
    assert_field_error(&error, "run_message.number_of_agents", "must be at most 10000, got 10001");
    let huge = error_for_agents(json!(u64::MAX));
    assert_field_error(&huge, "run_message.number_of_agents", "must be at most 10000");
}

fn error_for_agents(value: Value) -> PipelineError {
    rejected(json!({"number_of_agents": value, "number_of_jobs": 1}), 0)
}

#[test]
fn settings_number_of_jobs_not_an_integer() {
    for value in [json!(2.5), json!("abc"), json!(true), json!([1])] {
        let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": value}), 0);
        assert_field_error(&error, "run_message.number_of_jobs", "expected an integer, got ");
    }
}

#[test]
fn settings_number_of_jobs_zero() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 0}), 3);
    assert_field_error(&error, "run_message.number_of_jobs", "must be at least 1, got 0");
}

#[test]
fn settings_number_of_jobs_negative() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": -5}), 0);
    assert_field_error(&error, "run_message.number_of_jobs", "must be at least 1, got -5");
}

#[test]
fn settings_number_of_jobs_over_cap() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 10_000_001}), 0);
    assert_field_error(&error, "run_message.number_of_jobs", "must be at most 10000000, got 10000001");
}

#[test]
fn settings_number_of_jobs_defaults_to_job_rows() {
    let parsed = parse_run_settings(&json!({"number_of_agents": 1}), TEMPLATE, 12).expect("valid");
    assert_eq!(parsed.number_of_jobs, 12);
}

#[test]
fn settings_number_of_jobs_missing_without_job_rows() {
    let error = rejected(json!({"number_of_agents": 1}), 0);
    assert_field_error(&error, "run_message.number_of_jobs", "key is missing and there are no data_job.csv rows");
}

#[test]
fn settings_number_of_jobs_missing_with_too_many_rows() {
    let error = rejected(json!({"number_of_agents": 1}), MAX_JOBS + 1);
    assert_field_error(&error, "run_message.number_of_jobs", "key is missing and data_job.csv has 10000001 rows");
}

#[test]
fn settings_worker_command_string_is_split_on_whitespace() {
    let parsed =
        settings(json!({"number_of_agents": 1, "number_of_jobs": 1, "worker_command": "  node  main.js\t--fast "}));
    assert_eq!(parsed.worker_command, Some(vec!["node".to_owned(), "main.js".to_owned(), "--fast".to_owned()]));
}

#[test]
fn settings_worker_command_invalid() {
    for value in [json!(""), json!([]), json!(["node", 1]), json!(5), json!({"a": "b"})] {
        let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "worker_command": value}), 0);
        assert_field_error(&error, "run_message.worker_command", "");
    }
}

#[test]
fn settings_empty_agent_requests_count_as_absent() {
    let parsed = settings(json!({"number_of_agents": 1, "number_of_jobs": 1, "agent_cpu": "", "agent_memory": " "}));
    assert_eq!((parsed.agent_cpu, parsed.agent_memory), (None, None));
}

#[test]
fn settings_agent_cpu_wrong_type() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "agent_cpu": true}), 0);
    assert_field_error(&error, "run_message.agent_cpu", "expected a string or a number, got true");
}

#[test]
fn settings_image_name_must_be_a_non_empty_string() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "image_name": 5}), 0);
    assert_field_error(&error, "run_message.image_name", "expected a string, got 5");
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "image_name": ""}), 0);
    assert_field_error(&error, "run_message.image_name", "is empty");
}

#[test]
fn settings_job_timeout_bounds() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "job_timeout_secs": 0}), 0);
    assert_field_error(&error, "run_message.job_timeout_secs", "must be at least 1, got 0");
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "job_timeout_secs": 604_801}), 0);
    assert_field_error(&error, "run_message.job_timeout_secs", "must be at most 604800");
}

#[test]
fn settings_max_attempts_bounds() {
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "max_attempts": 0}), 0);
    assert_field_error(&error, "run_message.max_attempts", "must be at least 1, got 0");
    let error = rejected(json!({"number_of_agents": 1, "number_of_jobs": 1, "max_attempts": "x"}), 0);
    assert_field_error(&error, "run_message.max_attempts", "expected an integer, got \"x\"");
}

#[test]
fn a_delivery_outlasts_every_attempt_of_its_job() {
    let defaults = settings(json!({"number_of_agents": 1, "number_of_jobs": 1}));
    assert_eq!(defaults.delivery_timeout(), Duration::from_secs(3 * (300 + 360) + 600));
    assert!(defaults.delivery_timeout() > Duration::from_secs(30 * 60), "longer than RabbitMQ's default");
    let short = settings(json!({"number_of_agents": 1, "number_of_jobs": 1, "job_timeout_secs": 1, "max_attempts": 1}));
    assert_eq!(short.delivery_timeout(), Duration::from_secs(1 + 360 + 600));
    let longest = delivery_timeout(MAX_JOB_TIMEOUT_SECS, MAX_ATTEMPTS_LIMIT);
    assert_eq!(longest, Duration::from_secs(100 * (604_800 + 360) + 600), "no overflow at the bounds");
}
