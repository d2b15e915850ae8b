//! Tests of the whole pipeline, from file bytes to a `RunPlan`.

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

const TEMPLATE: &str = "config/config_template.json";
const LOCAL: &str = "config/config_local.json";
const AGENTS_CSV: &str = "config/data_agent.csv";
const JOBS_CSV: &str = "config/data_job.csv";
const RUN_ID: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

/// The files of a test project; `plan` runs the pipeline on them.
#[derive(Default)]
struct Project {
    template: String,
    tune: Option<String>,
    data_agent: Option<String>,
    data_job: Option<String>,
    run_id: Option<Uuid>,
}

impl Project {
    fn new(template: Value) -> Self {
        Self::raw(&template.to_string())
    }

    fn raw(template: &str) -> Self {
        Self {
            template: template.to_owned(),
            run_id: Uuid::parse_str(RUN_ID).ok(),
            ..Self::default()
        }
    }

    fn tune(mut self, tune: &str) -> Self {
        self.tune = Some(tune.to_owned());
        self
    }

    fn agents(mut self, csv: &str) -> Self {
        self.data_agent = Some(csv.to_owned());
        self
    }

    fn jobs(mut self, csv: &str) -> Self {
        self.data_job = Some(csv.to_owned());
        self
    }

    fn plan(&self) -> Result<RunPlan, PipelineError> {
        fn named<'a>(name: &'a str, text: &'a Option<String>) -> Option<NamedBytes<'a>> {
            text.as_ref().map(|text| NamedBytes {
                name,
                bytes: text.as_bytes(),
            })
        }
        plan_run(&ProjectInput {
            template: NamedBytes {
                name: TEMPLATE,
                bytes: self.template.as_bytes(),
            },
            tune: named(LOCAL, &self.tune),
            data_agent: named(AGENTS_CSV, &self.data_agent),
            data_job: named(JOBS_CSV, &self.data_job),
            run_id: self.run_id,
        })
    }

    fn ok(&self) -> RunPlan {
        self.plan()
            .unwrap_or_else(|error| panic!("valid project: {error}"))
    }

    fn err(&self) -> PipelineError {
        self.plan().expect_err("invalid project")
    }
}

fn template(agents: u64, jobs: u64) -> Value {
    json!({
        "run_message": {"number_of_agents": agents, "number_of_jobs": jobs},
        "default_agent_message": {"role": "agent"},
        "default_job_message": {"kind": "job"},
    })
}

fn assert_error(
    error: &PipelineError,
    file: &str,
    row: Option<usize>,
    field: Option<&str>,
    start: &str,
) {
    assert_eq!(error.file, file, "{error}");
    assert_eq!(error.row, row, "{error}");
    assert_eq!(error.field.as_deref(), field, "{error}");
    assert!(error.message.starts_with(start), "{error}");
}

#[test]
fn spec_config_proxy_example() {
    let template = json!({
        "run_message": {"number_of_agents": 2, "number_of_jobs": 1},
        "default_agent_message": {
            "config_proxy": {"upstream_proxy_enabled": 2, "proxy_location": "", "verify_ip": 0}
        },
    });
    let csv = "config_proxy\n\"{\"\"proxy_location\"\": \"\"US\"\", \"\"verify_ip\"\": 1}\"\n";
    let plan = Project::new(template).agents(csv).ok();
    assert_eq!(
        plan.agent_messages[0]["config_proxy"],
        json!({"upstream_proxy_enabled": 2, "proxy_location": "US", "verify_ip": 1})
    );
    assert_eq!(
        plan.agent_messages[1]["config_proxy"],
        json!({"upstream_proxy_enabled": 2, "proxy_location": "", "verify_ip": 0}),
        "agent 1 has no row and keeps the default"
    );
}

#[test]
fn plan_messages_carry_identity_fields() {
    let plan = Project::new(template(2, 3)).ok();
    assert_eq!(plan.run_id.to_string(), RUN_ID);
    assert_eq!(plan.run_message["run_id"], json!(RUN_ID));
    assert_eq!(
        plan.agent_messages,
        [
            json!({"role": "agent", "run_id": RUN_ID, "pod_index": 0}),
            json!({"role": "agent", "run_id": RUN_ID, "pod_index": 1}),
        ]
    );
    assert_eq!(
        plan.job_messages,
        vec![json!({"kind": "job", "run_id": RUN_ID}); 3]
    );
}

#[test]
fn plan_generates_a_v4_run_id_when_none_given() {
    let mut project = Project::new(template(1, 1));
    project.run_id = None;
    let plan = project.ok();
    assert_eq!(plan.run_id.get_version_num(), 4);
    let run_id = plan.run_id.to_string();
    assert_eq!(plan.run_message["run_id"], json!(run_id));
    assert_eq!(plan.agent_messages[0]["run_id"], json!(run_id));
    assert_eq!(plan.job_messages[0]["run_id"], json!(run_id));
}

#[test]
fn plan_identity_fields_win_over_template_and_rows() {
    let template = json!({
        "run_message": {"number_of_agents": 1, "number_of_jobs": 1, "run_id": "old"},
        "default_agent_message": {"pod_index": 9, "run_id": "old"},
    });
    let plan = Project::new(template).agents("pod_index\n7\n").ok();
    assert_eq!(plan.run_message["run_id"], json!(RUN_ID));
    assert_eq!(plan.agent_messages[0]["pod_index"], json!(0));
    assert_eq!(plan.agent_messages[0]["run_id"], json!(RUN_ID));
}

#[test]
fn plan_rows_merge_into_their_message_with_targetted_index() {
    let plan = Project::new(template(2, 3))
        .agents("name\nfirst\n")
        .jobs("account\na\nb\n")
        .ok();
    assert_eq!(
        plan.agent_messages[0],
        json!({"role": "agent", "name": "first", "targetted_agent": 0, "run_id": RUN_ID, "pod_index": 0})
    );
    assert_eq!(
        plan.agent_messages[1],
        json!({"role": "agent", "run_id": RUN_ID, "pod_index": 1})
    );
    assert_eq!(
        plan.job_messages,
        [
            json!({"kind": "job", "account": "a", "targetted_job": 0, "run_id": RUN_ID}),
            json!({"kind": "job", "account": "b", "targetted_job": 1, "run_id": RUN_ID}),
            json!({"kind": "job", "run_id": RUN_ID}),
        ]
    );
}

#[test]
fn plan_number_of_jobs_defaults_to_job_rows() {
    let template = json!({"run_message": {"number_of_agents": 1}});
    let plan = Project::new(template).jobs("a\n1\n2\n3\n").ok();
    assert_eq!(plan.settings.number_of_jobs, 3);
    assert_eq!(plan.job_messages.len(), 3);
}

#[test]
fn plan_number_of_jobs_missing_without_rows() {
    let template = json!({"run_message": {"number_of_agents": 1}});
    let error = Project::new(template).jobs("a\n").err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("run_message.number_of_jobs"),
        "key is missing",
    );
}

#[test]
fn plan_number_of_agents_zero_is_an_error() {
    let error = Project::new(template(0, 1)).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("run_message.number_of_agents"),
        "must be at least 1",
    );
}

#[test]
fn plan_default_messages_missing_are_empty() {
    let template = json!({"run_message": {"number_of_agents": 1, "number_of_jobs": 1}});
    let plan = Project::new(template).ok();
    assert_eq!(
        plan.agent_messages,
        [json!({"run_id": RUN_ID, "pod_index": 0})]
    );
    assert_eq!(plan.job_messages, [json!({"run_id": RUN_ID})]);
}

#[test]
fn plan_default_agent_message_not_an_object() {
    let mut template = template(1, 1);
    template["default_agent_message"] = json!("text");
    let error = Project::new(template).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("default_agent_message"),
        "must be a JSON object, got a string",
    );
}

#[test]
fn plan_default_job_message_not_an_object() {
    let mut template = template(1, 1);
    template["default_job_message"] = json!(null);
    let error = Project::new(template).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("default_job_message"),
        "must be a JSON object, got null",
    );
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
    assert_error(
        &error,
        TEMPLATE,
        None,
        None,
        "must be a JSON object with run_message",
    );
    assert!(error.message.ends_with("got an array"), "{error}");
}

#[test]
fn plan_run_message_missing() {
    let error = Project::new(json!({"default_agent_message": {}})).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("run_message"),
        "key is missing",
    );
}

#[test]
fn plan_run_message_not_an_object() {
    let error = Project::new(json!({"run_message": [1]})).err();
    assert_error(
        &error,
        TEMPLATE,
        None,
        Some("run_message"),
        "must be a JSON object, got an array",
    );
}

#[test]
fn plan_tune_substitutes_template_values_everywhere() {
    let template = json!({
        "run_message": {"number_of_agents": "$env_AGENTS", "number_of_jobs": 1},
        "default_agent_message": {"screen_visible": "$env_SCREEN_VISIBLE"},
        "default_job_message": {"proxy": "$env_PROXY"},
    });
    let tune = r#"{"tune": {"AGENTS": 2, "SCREEN_VISIBLE": 0, "PROXY": {"host": "h"}}}"#;
    let plan = Project::new(template).tune(tune).ok();
    assert_eq!(plan.settings.number_of_agents, 2);
    assert_eq!(plan.run_message["number_of_agents"], json!(2));
    assert_eq!(plan.agent_messages[1]["screen_visible"], json!(0));
    assert_eq!(plan.job_messages[0]["proxy"], json!({"host": "h"}));
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
fn plan_csv_cells_use_the_tune() {
    let plan = Project::new(template(1, 1))
        .tune(r#"{"V": [1]}"#)
        .jobs("v\n$env_V\n")
        .ok();
    assert_eq!(plan.job_messages[0]["v"], json!([1]));
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
    assert_error(
        &error,
        JOBS_CSV,
        None,
        None,
        "3 rows but run_message.number_of_jobs is 2",
    );
}

#[test]
fn plan_header_only_csv_means_no_overrides() {
    let plan = Project::new(template(1, 1)).agents("a,b\n").jobs("").ok();
    assert_eq!(
        plan.agent_messages[0],
        json!({"role": "agent", "run_id": RUN_ID, "pod_index": 0})
    );
    assert_eq!(
        plan.job_messages[0],
        json!({"kind": "job", "run_id": RUN_ID})
    );
}

proptest! {
    #[test]
    fn plan_message_counts_follow_settings(agents in 1u64..20, jobs in 1u64..50, rows in 0usize..50) {
        let rows = rows.min(jobs as usize);
        let csv: String = std::iter::once("n\n".to_owned()).chain((0..rows).map(|i| format!("{i}\n"))).collect();
        let plan = Project::new(template(agents, jobs)).jobs(&csv).ok();
        prop_assert_eq!(plan.agent_messages.len() as u64, agents);
        prop_assert_eq!(plan.job_messages.len() as u64, jobs);
        for (index, message) in plan.agent_messages.iter().enumerate() {
            prop_assert_eq!(&message["pod_index"], &json!(index));
        }
        for (index, message) in plan.job_messages.iter().enumerate() {
            let expected = if index < rows { json!(index) } else { Value::Null };
            prop_assert_eq!(&message["targetted_job"], &expected);
        }
    }

    #[test]
    fn plan_random_template_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let result = plan_run(&ProjectInput {
            template: NamedBytes { name: TEMPLATE, bytes: &bytes },
            tune: None,
            data_agent: None,
            data_job: None,
            run_id: None,
        });
        prop_assert_eq!(result.map_err(|error| error.file).err(), Some(TEMPLATE.to_owned()));
    }

    #[test]
    fn plan_random_template_text_never_panics(text in r#"[{}\[\]":,0-9a-z_$ ]{0,80}"#) {
        if let Err(error) = Project::raw(&text).plan() {
            prop_assert_eq!(error.file, TEMPLATE);
        }
    }

    #[test]
    fn plan_random_csv_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let template = template(5, 50).to_string();
        let result = plan_run(&ProjectInput {
            template: NamedBytes { name: TEMPLATE, bytes: template.as_bytes() },
            tune: None,
            data_agent: Some(NamedBytes { name: AGENTS_CSV, bytes: &bytes }),
            data_job: Some(NamedBytes { name: JOBS_CSV, bytes: &bytes }),
            run_id: None,
        });
        match result {
            Ok(plan) => prop_assert_eq!(plan.job_messages.len(), 50),
            Err(error) => prop_assert!(error.file == AGENTS_CSV || error.file == JOBS_CSV, "{}", error),
        }
    }
}
