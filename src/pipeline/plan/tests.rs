//! Tests of the whole pipeline, from file bytes to a `RunPlan`.

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use super::*;

pub(super) const TEMPLATE: &str = "config/config_template.json";
pub(super) const LOCAL: &str = "config/config_local.json";
pub(super) const AGENTS_CSV: &str = "config/data_agent.csv";
pub(super) const JOBS_CSV: &str = "config/data_job.csv";
pub(super) const RUN_ID: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

mod errors;

/// The files of a test project; `plan` runs the pipeline on them.
#[derive(Default)]
pub(super) struct Project {
    template: String,
    tune: Option<String>,
    data_agent: Option<String>,
    data_job: Option<String>,
    run_id: Option<Uuid>,
}

impl Project {
    pub(super) fn new(template: Value) -> Self {
        Self::raw(&template.to_string())
    }

    pub(super) fn raw(template: &str) -> Self {
        Self { template: template.to_owned(), run_id: Uuid::parse_str(RUN_ID).ok(), ..Self::default() }
    }

    pub(super) fn tune(mut self, tune: &str) -> Self {
        self.tune = Some(tune.to_owned());
        self
    }

    pub(super) fn agents(mut self, csv: &str) -> Self {
        self.data_agent = Some(csv.to_owned());
        self
    }

    pub(super) fn jobs(mut self, csv: &str) -> Self {
        self.data_job = Some(csv.to_owned());
        self
    }

    pub(super) fn plan(&self) -> Result<RunPlan, PipelineError> {
        fn named<'a>(name: &'a str, text: &'a Option<String>) -> Option<NamedBytes<'a>> {
            text.as_ref().map(|text| NamedBytes { name, bytes: text.as_bytes() })
        }
        plan_run(&ProjectInput {
            template: NamedBytes { name: TEMPLATE, bytes: self.template.as_bytes() },
            tune: named(LOCAL, &self.tune),
            data_agent: named(AGENTS_CSV, &self.data_agent),
            data_job: named(JOBS_CSV, &self.data_job),
            run_id: self.run_id,
        })
    }

    pub(super) fn ok(&self) -> RunPlan {
        self.plan().unwrap_or_else(|error| panic!("valid project: {error}"))
    }

    pub(super) fn err(&self) -> PipelineError {
        self.plan().expect_err("invalid project")
    }
}

pub(super) fn template(agents: u64, jobs: u64) -> Value {
    json!({
        "run_message": {"number_of_agents": agents, "number_of_jobs": jobs},
        "default_agent_message": {"role": "agent"},
        "default_job_message": {"kind": "job"},
    })
}

pub(super) fn assert_error(error: &PipelineError, file: &str, row: Option<usize>, field: Option<&str>, start: &str) {
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
    assert_eq!(plan.job_messages.to_vec(), vec![json!({"kind": "job", "run_id": RUN_ID}); 3]);
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
    assert_eq!(plan.job_messages.to_vec()[0]["run_id"], json!(run_id));
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
    let plan = Project::new(template(2, 3)).agents("name\nfirst\n").jobs("account\na\nb\n").ok();
    assert_eq!(
        plan.agent_messages[0],
        json!({"role": "agent", "name": "first", "targetted_agent": 0, "run_id": RUN_ID, "pod_index": 0})
    );
    assert_eq!(plan.agent_messages[1], json!({"role": "agent", "run_id": RUN_ID, "pod_index": 1}));
    assert_eq!(
        plan.job_messages.to_vec(),
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
    assert_eq!(plan.job_messages.to_vec().len(), 3);
}

#[test]
fn plan_default_messages_missing_are_empty() {
    let template = json!({"run_message": {"number_of_agents": 1, "number_of_jobs": 1}});
    let plan = Project::new(template).ok();
    assert_eq!(plan.agent_messages, [json!({"run_id": RUN_ID, "pod_index": 0})]);
    assert_eq!(plan.job_messages.to_vec(), [json!({"run_id": RUN_ID})]);
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
    assert_eq!(plan.job_messages.to_vec()[0]["proxy"], json!({"host": "h"}));
}

#[test]
fn plan_csv_cells_use_the_tune() {
    let plan = Project::new(template(1, 1)).tune(r#"{"V": [1]}"#).jobs("v\n$env_V\n").ok();
    assert_eq!(plan.job_messages.to_vec()[0]["v"], json!([1]));
}

#[test]
fn plan_header_only_csv_means_no_overrides() {
    let plan = Project::new(template(1, 1)).agents("a,b\n").jobs("").ok();
    assert_eq!(plan.agent_messages[0], json!({"role": "agent", "run_id": RUN_ID, "pod_index": 0}));
    assert_eq!(plan.job_messages.to_vec()[0], json!({"kind": "job", "run_id": RUN_ID}));
}

proptest! {
    #[test]
    fn plan_message_counts_follow_settings(agents in 1u64..20, jobs in 1u64..50, rows in 0usize..50) {
        let rows = rows.min(jobs as usize);
        let csv: String = std::iter::once("n\n".to_owned()).chain((0..rows).map(|i| format!("{i}\n"))).collect();
        let plan = Project::new(template(agents, jobs)).jobs(&csv).ok();
        prop_assert_eq!(plan.agent_messages.len() as u64, agents);
        prop_assert_eq!(plan.job_messages.to_vec().len() as u64, jobs);
        for (index, message) in plan.agent_messages.iter().enumerate() {
            prop_assert_eq!(&message["pod_index"], &json!(index));
        }
        for (index, message) in plan.job_messages.to_vec().iter().enumerate() {
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
            Ok(plan) => prop_assert_eq!(plan.job_messages.to_vec().len(), 50),
            Err(error) => prop_assert!(error.file == AGENTS_CSV || error.file == JOBS_CSV, "{}", error),
        }
    }
}
