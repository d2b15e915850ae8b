//! `plan_run`: a project's config files in, a validated `RunPlan` (run, agent and job messages) out.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::NamedBytes;
use super::csv_rows::{RowTarget, parse_csv_rows};
use super::env_subst::{ErrorContext, Tune, parse_tune, substitute_env};
use super::error::{PipelineError, kind};
use super::merge::merge_maps;
use super::settings::{RunSettings, parse_run_settings};

/// The files of one run as uploaded: the template (required), the tune file and the two CSVs.
#[derive(Debug, Clone, Copy)]
pub struct ProjectInput<'a> {
    /// `config/config_template.json`.
    pub template: NamedBytes<'a>,
    /// `config/config_local.json` or `config/config_distant.json`.
    pub tune: Option<NamedBytes<'a>>,
    /// `config/data_agent.csv`.
    pub data_agent: Option<NamedBytes<'a>>,
    /// `config/data_job.csv`.
    pub data_job: Option<NamedBytes<'a>>,
    /// The client's run id; a v4 is generated when `None`.
    pub run_id: Option<Uuid>,
}

/// Everything a run needs, validated: nothing here can fail later for a config reason.
#[derive(Debug, Clone, PartialEq)]
pub struct RunPlan {
    pub run_id: Uuid,
    /// The template's `run_message` with `run_id` set.
    pub run_message: Value,
    pub settings: RunSettings,
    /// One per agent (`settings.number_of_agents`), each with `run_id` and `pod_index`.
    pub agent_messages: Vec<Value>,
    /// One per job (`settings.number_of_jobs`), each with `run_id`, built on demand (a run
    /// may have hundreds of thousands: only the CSV rows and the default are held).
    pub job_messages: JobMessages,
}

const RUN_MESSAGE: &str = "run_message";
const DEFAULT_AGENT_MESSAGE: &str = "default_agent_message";
const DEFAULT_JOB_MESSAGE: &str = "default_job_message";

/// Runs the whole pipeline: `$env_` substitution (template and CSV cells), CSV rows, deep
/// merge of row *i* into message *i*, identity fields. The identity fields `run_id` and
/// `pod_index` win over same-named keys from the template or a row.
pub fn plan_run(input: &ProjectInput) -> Result<RunPlan, PipelineError> {
    let template_name = input.template.name;
    let mut template = match input.template.parse_json()? {
        Value::Object(map) => map,
        other => {
            return Err(PipelineError::new(
                template_name,
                format!(
                    "must be a JSON object with {RUN_MESSAGE}, {DEFAULT_AGENT_MESSAGE} and \
                     {DEFAULT_JOB_MESSAGE}, got {}",
                    kind(&other)
                ),
            ));
        }
    };
    let tune = input.tune.map(parse_tune).transpose()?;
    let tune = tune.as_ref();

    let mut run_message = take_section(&mut template, RUN_MESSAGE, template_name, tune)?.ok_or_else(|| {
        PipelineError::new(
            template_name,
            "key is missing; the template needs a run_message object \
                 (with number_of_agents and number_of_jobs)",
        )
        .at_field(RUN_MESSAGE)
    })?;
    let default_agent = take_section(&mut template, DEFAULT_AGENT_MESSAGE, template_name, tune)?.unwrap_or_default();
    let default_job = take_section(&mut template, DEFAULT_JOB_MESSAGE, template_name, tune)?.unwrap_or_default();

    let agent_rows = csv_rows(input.data_agent, RowTarget::Agent, tune)?;
    let job_rows = csv_rows(input.data_job, RowTarget::Job, tune)?;

    let run_id = input.run_id.unwrap_or_else(Uuid::new_v4);
    let run_id_value = Value::String(run_id.to_string());
    run_message.insert("run_id".to_owned(), run_id_value.clone());
    let run_message = Value::Object(run_message);
    let settings = parse_run_settings(&run_message, template_name, job_rows.len())?;

    check_row_count(input.data_agent, agent_rows.len(), settings.number_of_agents, "number_of_agents")?;
    check_row_count(input.data_job, job_rows.len(), settings.number_of_jobs, "number_of_jobs")?;

    let agent_messages = build_messages(&default_agent, agent_rows, settings.number_of_agents, |index, message| {
        message.insert("run_id".to_owned(), run_id_value.clone());
        message.insert("pod_index".to_owned(), Value::from(index));
    });
    let job_messages =
        JobMessages { default: default_job, rows: job_rows, count: settings.number_of_jobs, run_id: run_id_value };

    Ok(RunPlan { run_id, run_message, settings, agent_messages, job_messages })
}

/// Removes one section of the template, substitutes its placeholders and checks it is an
/// object; `Ok(None)` when the key is absent.
fn take_section(
    template: &mut Map<String, Value>,
    key: &str,
    template_name: &str,
    tune: Option<&Tune>,
) -> Result<Option<Map<String, Value>>, PipelineError> {
    let Some(mut section) = template.remove(key) else {
        return Ok(None);
    };
    let ctx = ErrorContext { file: template_name, row: None, field: Some(key) };
    substitute_env(&mut section, tune, &ctx)?;
    match section {
        Value::Object(map) => Ok(Some(map)),
        other => {
            Err(PipelineError::new(template_name, format!("must be a JSON object, got {}", kind(&other))).at_field(key))
        }
    }
}

fn csv_rows(
    file: Option<NamedBytes>,
    target: RowTarget,
    tune: Option<&Tune>,
) -> Result<Vec<Map<String, Value>>, PipelineError> {
    match file {
        Some(file) => parse_csv_rows(file, target, tune),
        None => Ok(Vec::new()),
    }
}

fn check_row_count(file: Option<NamedBytes>, rows: usize, count: usize, count_key: &str) -> Result<(), PipelineError> {
    match file {
        Some(file) if rows > count => Err(PipelineError::new(
            file.name,
            format!(
                "{rows} rows but run_message.{count_key} is {count}; \
                 remove rows or raise {count_key} to at least {rows}"
            ),
        )),
        _ => Ok(()),
    }
}

/// `count` messages: message *i* is `default` with row *i* (if any) merged in, then
/// `identity` applied. Rows are moved into the messages, not cloned.
fn build_messages(
    default: &Map<String, Value>,
    rows: Vec<Map<String, Value>>,
    count: usize,
    identity: impl Fn(usize, &mut Map<String, Value>),
) -> Vec<Value> {
    let mut rows = rows.into_iter();
    (0..count)
        .map(|index| {
            let mut message = default.clone();
            if let Some(row) = rows.next() {
                merge_maps(&mut message, row);
            }
            identity(index, &mut message);
            Value::Object(message)
        })
        .collect()
}

/// A run's job messages, each made when asked for: message *i* is `default_job_message` with
/// `data_job.csv` row *i* (if any) merged in, and `run_id`. Everything that can fail was checked
/// when the plan was made, so making a message cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct JobMessages {
    default: Map<String, Value>,
    rows: Vec<Map<String, Value>>,
    count: usize,
    run_id: Value,
}

impl JobMessages {
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Message `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<Value> {
        (index < self.count).then(|| {
            let mut message = self.default.clone();
            if let Some(row) = self.rows.get(index) {
                merge_maps(&mut message, row.clone());
            }
            message.insert("run_id".to_owned(), self.run_id.clone());
            Value::Object(message)
        })
    }

    /// Every message in order, one at a time.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Value> + '_ {
        (0..self.count).map(|index| self.get(index).unwrap_or_default())
    }

    /// All of them at once (tests, small runs).
    pub fn to_vec(&self) -> Vec<Value> {
        self.iter().collect()
    }
}

#[cfg(test)]
mod tests;
