//! `RunSettings`: the platform's keys of `run_message`, validated, with their defaults.

use std::time::Duration;

use serde_json::{Map, Value};

use super::error::{PipelineError, describe, kind};

/// Most agents one run may launch.
pub const MAX_AGENTS: usize = 10_000;
/// Most jobs one run may hold.
pub const MAX_JOBS: usize = 10_000_000;
pub const DEFAULT_IMAGE_NAME: &str = "armada-agent";
pub const DEFAULT_IMAGE_VERSION: &str = "latest";
pub const DEFAULT_JOB_TIMEOUT_SECS: u64 = 300;
/// A week: longer is surely a mistake, and keeps deadline arithmetic far from overflow.
pub const MAX_JOB_TIMEOUT_SECS: u64 = 7 * 24 * 60 * 60;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
/// What an attempt may take on top of the job's own timeout: starting a fresh worker after a
/// crash (the agent's defaults: 60 s to connect, 300 s to initialise).
pub const WORKER_START_ALLOWANCE_SECS: u64 = 6 * 60;
/// What one delivery may take on top of its attempts: recording the outcome (or spooling it
/// while the backend is down) before the acknowledgement.
pub const DELIVERY_MARGIN_SECS: u64 = 10 * 60;

/// What the platform reads from `run_message`; everything else in it is the project's own.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSettings {
    pub number_of_agents: usize,
    pub number_of_jobs: usize,
    /// `run_message.image_name`, default `armada-agent`.
    pub image_name: String,
    /// `run_message.image_version` (string or number), default `latest`.
    pub image_version: String,
    /// `run_message.agent_cpu` (string or number), the Kubernetes CPU request; `""` = none.
    pub agent_cpu: Option<String>,
    /// `run_message.agent_memory` (string or number), the Kubernetes memory request; `""` = none.
    pub agent_memory: Option<String>,
    /// `run_message.worker_command`: an array of strings, or a string split on whitespace;
    /// `None` = the Python helper.
    pub worker_command: Option<Vec<String>>,
    /// `run_message.job_timeout_secs`, default 300, from 1 to a week.
    pub job_timeout_secs: u64,
    /// `run_message.max_attempts`, default 3, from 1 to 100.
    pub max_attempts: u32,
}

impl RunSettings {
    /// How long one delivery of a job may stay unacknowledged: every attempt an agent makes on
    /// it within that delivery (`max_attempts` × (`job_timeout_secs` + a worker's start)), plus
    /// a margin. The run's queue is declared with it as RabbitMQ's consumer timeout, so the
    /// broker never takes a job back from an agent that is still working on it. 43 minutes with
    /// the defaults (RabbitMQ's own default is 30).
    pub fn delivery_timeout(&self) -> Duration {
        delivery_timeout(self.job_timeout_secs, self.max_attempts)
    }
}

/// [`RunSettings::delivery_timeout`] from its two inputs.
pub fn delivery_timeout(job_timeout_secs: u64, max_attempts: u32) -> Duration {
    let attempt = job_timeout_secs.saturating_add(WORKER_START_ALLOWANCE_SECS);
    Duration::from_secs(attempt.saturating_mul(u64::from(max_attempts)).saturating_add(DELIVERY_MARGIN_SECS))
}

/// Validates the platform's keys of `run_message`. Integers may be JSON integers or strings
/// holding one (`"3"`, as the original's `int()` accepted); a `null` value counts as absent.
/// `number_of_jobs` absent defaults to `job_rows`, the number of `data_job.csv` rows, when
/// there are any. Errors name `template_name` and the field, e.g. `run_message.number_of_agents`.
pub fn parse_run_settings(
    run_message: &Value,
    template_name: &str,
    job_rows: usize,
) -> Result<RunSettings, PipelineError> {
    let Value::Object(map) = run_message else {
        return Err(PipelineError::new(template_name, format!("must be a JSON object, got {}", kind(run_message)))
            .at_field("run_message"));
    };
    let fields = Fields { map, file: template_name };

    let number_of_agents = match fields.integer("number_of_agents", 1, MAX_AGENTS as u64)? {
        Some(agents) => agents,
        None => {
            return Err(fields.error(
                "number_of_agents",
                format!("key is missing; set it to how many agents to launch (1 to {MAX_AGENTS})"),
            ));
        }
    };
    let number_of_jobs = match fields.integer("number_of_jobs", 1, MAX_JOBS as u64)? {
        Some(jobs) => jobs,
        None if job_rows > MAX_JOBS => {
            return Err(fields.error(
                "number_of_jobs",
                format!("key is missing and data_job.csv has {job_rows} rows, more than the maximum {MAX_JOBS}"),
            ));
        }
        None if job_rows > 0 => job_rows as u64,
        None => {
            return Err(fields.error(
                "number_of_jobs",
                format!(
                    "key is missing and there are no data_job.csv rows to count; \
                     set it to how many jobs to run (1 to {MAX_JOBS})"
                ),
            ));
        }
    };
    let job_timeout_secs =
        fields.integer("job_timeout_secs", 1, MAX_JOB_TIMEOUT_SECS)?.unwrap_or(DEFAULT_JOB_TIMEOUT_SECS);
    let max_attempts =
        fields.integer("max_attempts", 1, u64::from(MAX_ATTEMPTS_LIMIT))?.unwrap_or(u64::from(DEFAULT_MAX_ATTEMPTS));

    // The bounds checked above make these conversions lossless.
    Ok(RunSettings {
        number_of_agents: usize::try_from(number_of_agents).unwrap_or(MAX_AGENTS),
        number_of_jobs: usize::try_from(number_of_jobs).unwrap_or(MAX_JOBS),
        image_name: fields.image_name()?,
        image_version: fields.text("image_version", true)?.unwrap_or_else(|| DEFAULT_IMAGE_VERSION.to_owned()),
        agent_cpu: fields.text("agent_cpu", true)?,
        agent_memory: fields.text("agent_memory", true)?,
        worker_command: fields.worker_command()?,
        job_timeout_secs,
        max_attempts: u32::try_from(max_attempts).unwrap_or(MAX_ATTEMPTS_LIMIT),
    })
}

/// `run_message`'s keys, read with errors that name the template and the field.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    file: &'a str,
}

impl Fields<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|value| !value.is_null())
    }

    fn error(&self, key: &str, message: impl Into<String>) -> PipelineError {
        PipelineError::new(self.file, message).at_field(format!("run_message.{key}"))
    }

    /// An integer in `min..=max`, from a JSON integer or a string holding one.
    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, PipelineError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let Some(number) = as_integer(value) else {
            return Err(self.error(key, format!("expected an integer, got {}", describe(value))));
        };
        if number < i128::from(min) {
            return Err(self.error(key, format!("must be at least {min}, got {number}")));
        }
        if number > i128::from(max) {
            return Err(self.error(key, format!("must be at most {max}, got {number}")));
        }
        Ok(u64::try_from(number).ok())
    }

    /// A string (or, with `numbers`, a number written as text); `""` counts as absent.
    fn text(&self, key: &str, numbers: bool) -> Result<Option<String>, PipelineError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
            Some(Value::Number(number)) if numbers => Ok(Some(number.to_string())),
            Some(other) => {
                let expected = if numbers { "a string or a number" } else { "a string" };
                Err(self.error(key, format!("expected {expected}, got {}", describe(other))))
            }
        }
    }

    fn image_name(&self) -> Result<String, PipelineError> {
        if let Some(Value::String(text)) = self.get("image_name")
            && text.trim().is_empty()
        {
            return Err(self.error(
                "image_name",
                format!("is empty; name the agent image, or remove the key to use {DEFAULT_IMAGE_NAME}"),
            ));
        }
        Ok(self.text("image_name", false)?.unwrap_or_else(|| DEFAULT_IMAGE_NAME.to_owned()))
    }

    fn worker_command(&self) -> Result<Option<Vec<String>>, PipelineError> {
        const KEY: &str = "worker_command";
        let words: Vec<String> = match self.get(KEY) {
            None => return Ok(None),
            Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(word) => Ok(word.clone()),
                    other => Err(self.error(KEY, format!("expected an array of strings, found {}", describe(other)))),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(
                    self.error(KEY, format!("expected an array of strings or a string, got {}", describe(other)))
                );
            }
        };
        if words.first().is_none_or(|program| program.trim().is_empty()) {
            return Err(self
                .error(KEY, "names no program; give the command to run, or remove the key to use the Python helper"));
        }
        Ok(Some(words))
    }
}

/// The integer a value holds, as Python's `int()` would read it: a JSON integer, a float
/// with no fractional part, or a string of decimal digits with an optional sign.
fn as_integer(value: &Value) -> Option<i128> {
    match value {
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                Some(i128::from(integer))
            } else if let Some(integer) = number.as_u64() {
                Some(i128::from(integer))
            } else {
                // Exactly representable and far inside i128, so the cast is exact.
                number.as_f64().filter(|float| float.fract() == 0.0 && float.abs() < 1e30).map(|float| float as i128)
            }
        }
        Value::String(text) => text.trim().parse::<i128>().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
