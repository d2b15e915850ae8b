//! The config pipeline: `$env_` substitution, CSV rows, deep merge, run plan. Pure functions, no IO.
//!
//! Architecture invariant: this module imports no engine and no role; it turns the bytes of a
//! project's config files into a validated [`RunPlan`] or a [`PipelineError`] that names the
//! file, row and field.

mod bench;
mod csv_rows;
mod env_subst;
mod error;
mod merge;
mod plan;
mod settings;

use serde_json::Value;

pub use bench::{BenchReport, bench_pipeline, peak_rss_kib};
pub use csv_rows::{RowTarget, parse_csv_rows};
pub use env_subst::{ENV_PREFIX, ErrorContext, Tune, parse_tune, substitute_env};
pub use error::PipelineError;
pub use merge::deep_merge;
pub use plan::{JobMessages, ProjectInput, RunPlan, plan_run};
pub use settings::{
    DEFAULT_IMAGE_NAME, DEFAULT_IMAGE_VERSION, DEFAULT_JOB_TIMEOUT_SECS, DEFAULT_MAX_ATTEMPTS, MAX_AGENTS,
    MAX_ATTEMPTS_LIMIT, MAX_JOB_TIMEOUT_SECS, MAX_JOBS, RunSettings, parse_run_settings,
};

/// The content of one project file with the path shown in errors (e.g. `config/data_job.csv`).
#[derive(Debug, Clone, Copy)]
pub struct NamedBytes<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

impl NamedBytes<'_> {
    /// Parses the whole file as one JSON document; a syntax error names line and column.
    fn parse_json(&self) -> Result<Value, PipelineError> {
        serde_json::from_slice(self.bytes).map_err(|error| PipelineError::invalid_json(self.name, &error))
    }
}
