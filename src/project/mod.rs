//! The project module: every way a project arrives (a folder, an archive, the dashboard's
//! multipart parts, a browser folder upload) becomes one validated in-memory [`Project`],
//! which packs into a verifiable [`Bundle`] that agents unpack into their working directory.
//!
//! Architecture invariant: pure logic plus filesystem IO; no HTTP, no engine, no role.
//! Every constructor goes through the same path rules (relative, normalised, no `..`), the
//! same junk filter (`.git/`, virtualenvs, caches, `.env`) and the same [`ProjectLimits`],
//! counted on bytes actually read or decompressed.

mod archive;
mod builder;
mod bundle;
mod dir;
mod error;
mod limits;
mod parts;
mod path;
mod summary;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use builder::{Duplicate, FileSet};

pub use bundle::Bundle;
pub use error::{Limit, ProjectError};
pub use limits::ProjectLimits;
pub use parts::ProjectParts;
pub use summary::{CsvFileSummary, ProjectSummary, TuneFileSummary};

pub const TEMPLATE_PATH: &str = "config/config_template.json";
pub const LOCAL_TUNE_PATH: &str = "config/config_local.json";
pub const DISTANT_TUNE_PATH: &str = "config/config_distant.json";
pub const DATA_AGENT_PATH: &str = "config/data_agent.csv";
pub const DATA_JOB_PATH: &str = "config/data_job.csv";
pub const REQUIREMENTS_PATH: &str = "requirements.txt";
/// Where a bundle carries `python_code`; never a project file (`.armada/` is skipped elsewhere).
pub const PYTHON_CODE_PATH: &str = ".armada/python_code.py";

/// Which tune file fills the `$env_` placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TuneKind {
    /// `config/config_local.json` (workbench, local runs).
    Local,
    /// `config/config_distant.json` (the cluster).
    Distant,
    /// Another file in `config/`, by its name (`config_staging.json`).
    Named(String),
}

impl TuneKind {
    /// The project path, which is also the name shown in error messages.
    pub fn path(&self) -> String {
        match self {
            TuneKind::Local => LOCAL_TUNE_PATH.to_owned(),
            TuneKind::Distant => DISTANT_TUNE_PATH.to_owned(),
            TuneKind::Named(name) => format!("config/{name}"),
        }
    }
}

impl fmt::Display for TuneKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// One file's content and whether it was executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    pub bytes: Bytes,
    pub executable: bool,
}

/// A file with the name to show in errors (`config/data_job.csv`); maps field for field onto
/// the pipeline's `NamedBytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedFile<'a> {
    pub name: &'a str,
    pub bytes: &'a [u8],
}

/// A validated project: relative, normalised paths (forward slashes, no `..`, no empty
/// segments), in path order, with `config/config_template.json` always present and within
/// the limits it was built with.
#[derive(Clone, PartialEq, Eq)]
pub struct Project {
    files: BTreeMap<String, ProjectFile>,
    python_code: Option<String>,
    explicit_tune: Option<TuneKind>,
    skipped: Vec<String>,
    total_bytes: u64,
}

impl fmt::Debug for Project {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sizes: BTreeMap<&str, usize> =
            self.files.iter().map(|(path, file)| (path.as_str(), file.bytes.len())).collect();
        f.debug_struct("Project")
            .field("files", &sizes)
            .field("python_code_bytes", &self.python_code.as_ref().map(String::len))
            .field("explicit_tune", &self.explicit_tune)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl Project {
    /// A browser folder upload: files with their relative paths (`hello/config/…` is
    /// stripped to `config/…` like an archive's single top folder).
    pub fn from_files(files: Vec<(String, Bytes)>, limits: ProjectLimits) -> Result<Project, ProjectError> {
        let mut set = FileSet::new("the uploaded folder", limits);
        for (path, bytes) in files {
            set.add_bytes(&path, bytes, false, Duplicate::Refuse)?;
        }
        set.strip_single_top_folder();
        set.into_project(None, "upload the project folder itself, the one that holds config/".into())
    }

    /// `config/config_template.json`: always present.
    pub fn template(&self) -> NamedFile<'_> {
        self.named(TEMPLATE_PATH).unwrap_or(NamedFile { name: TEMPLATE_PATH, bytes: &[] })
    }

    pub fn tune(&self, kind: &TuneKind) -> Option<NamedFile<'_>> {
        self.named(&kind.path())
    }

    /// The tune the client uploaded as the `configtune` part, if it did.
    pub fn explicit_tune(&self) -> Option<&TuneKind> {
        self.explicit_tune.as_ref()
    }

    pub fn data_agent(&self) -> Option<NamedFile<'_>> {
        self.named(DATA_AGENT_PATH)
    }

    pub fn data_job(&self) -> Option<NamedFile<'_>> {
        self.named(DATA_JOB_PATH)
    }

    pub fn requirements_txt(&self) -> Option<NamedFile<'_>> {
        self.named(REQUIREMENTS_PATH)
    }

    /// The original dashboard's single code string (`python_code` part), kept apart from the
    /// files: the orchestrator puts it in `default_agent_message.code` when the template has none.
    pub fn python_code(&self) -> Option<&str> {
        self.python_code.as_deref()
    }

    /// Any file by its project path.
    pub fn named(&self, path: &str) -> Option<NamedFile<'_>> {
        self.files.get_key_value(path).map(|(name, file)| NamedFile { name, bytes: &file.bytes })
    }

    pub fn file(&self, path: &str) -> Option<&ProjectFile> {
        self.files.get(path)
    }

    /// Every file, in path order.
    pub fn files(&self) -> impl ExactSizeIterator<Item = (&str, &ProjectFile)> {
        self.files.iter().map(|(path, file)| (path.as_str(), file))
    }

    /// What the constructor left out on purpose (`.env`, `web/node_modules/`), for display.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }

    /// All file bytes plus `python_code`: what the limits counted.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }
}

#[cfg(test)]
mod tests;
