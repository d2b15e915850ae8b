//! `ProjectSummary`: the "files found" list the dashboard and the CLI show before a launch.

use serde::{Deserialize, Serialize};

use super::{DATA_AGENT_PATH, DATA_JOB_PATH, NamedFile, Project, REQUIREMENTS_PATH, TEMPLATE_PATH, TuneKind};

/// Extensions counted as code in [`ProjectSummary::code_files`].
const CODE_EXTENSIONS: [&str; 16] =
    ["py", "js", "mjs", "cjs", "ts", "sh", "bash", "rb", "go", "rs", "java", "php", "pl", "lua", "ps1", "bat"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    /// Always `config/config_template.json`.
    pub template: String,
    /// Every `config/*.json` besides the template, local and distant first.
    pub tunes: Vec<TuneFileSummary>,
    pub data_agent: Option<CsvFileSummary>,
    pub data_job: Option<CsvFileSummary>,
    /// `requirements.txt` when present.
    pub requirements_txt: Option<String>,
    /// Size of the bundled `python_code` string, when one was sent.
    pub python_code_bytes: Option<usize>,
    /// Files whose extension is a programming language's (`.py`, `.js`, `.sh`, …).
    pub code_files: usize,
    pub total_files: usize,
    pub total_bytes: u64,
    /// What was left out on purpose (`.env`, `web/node_modules/`).
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneFileSummary {
    pub kind: TuneKind,
    pub path: String,
    /// Uploaded as the `configtune` part.
    pub explicit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvFileSummary {
    pub path: String,
    /// Data rows after the header; `None` when the file does not parse (the pipeline says why).
    pub rows: Option<usize>,
}

impl Project {
    pub fn summary(&self) -> ProjectSummary {
        let mut tunes: Vec<TuneFileSummary> = self
            .files()
            .filter_map(|(path, _)| path.strip_prefix("config/"))
            .filter(|name| {
                name.ends_with(".json") && !name.contains('/') && Some(*name) != TEMPLATE_PATH.strip_prefix("config/")
            })
            .map(|name| {
                let kind = match name {
                    "config_local.json" => TuneKind::Local,
                    "config_distant.json" => TuneKind::Distant,
                    other => TuneKind::Named(other.to_owned()),
                };
                TuneFileSummary { explicit: self.explicit_tune() == Some(&kind), path: kind.path(), kind }
            })
            .collect();
        tunes.sort_by_key(|tune| !matches!(tune.kind, TuneKind::Local | TuneKind::Distant));
        let code_files = self
            .files()
            .filter(|(path, _)| path.rsplit_once('.').is_some_and(|(_, ext)| CODE_EXTENSIONS.contains(&ext)))
            .count();
        ProjectSummary {
            template: TEMPLATE_PATH.to_owned(),
            tunes,
            data_agent: self.named(DATA_AGENT_PATH).map(csv_summary),
            data_job: self.named(DATA_JOB_PATH).map(csv_summary),
            requirements_txt: self.named(REQUIREMENTS_PATH).map(|file| file.name.to_owned()),
            python_code_bytes: self.python_code().map(str::len),
            code_files,
            total_files: self.files().len(),
            total_bytes: self.total_bytes(),
            skipped: self.skipped().to_vec(),
        }
    }
}

fn csv_summary(file: NamedFile<'_>) -> CsvFileSummary {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file.bytes);
    let rows = reader.records().try_fold(0, |rows, record| record.map(|_| rows + 1)).ok();
    CsvFileSummary { path: file.name.to_owned(), rows }
}
