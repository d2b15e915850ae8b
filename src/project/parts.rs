//! `Project::from_parts`: the original dashboard's `POST /bot/start` multipart parts, plus an
//! optional `project` archive whose files sit underneath the explicit parts.

use bytes::Bytes;

use super::archive::read_archive;
use super::builder::{Duplicate, FileSet};
use super::{
    DATA_AGENT_PATH, DATA_JOB_PATH, Project, ProjectError, ProjectLimits, REQUIREMENTS_PATH, TEMPLATE_PATH, TuneKind,
};

/// The multipart parts, each as `(filename, bytes)` where it is a file. A file part with no
/// filename and no bytes (a browser's empty file input) counts as not sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectParts {
    /// → `config/config_template.json` (required, here or in `project`).
    pub configtemplate: Option<(String, Bytes)>,
    /// → the tune file its filename names (see [`TuneKind::from_upload_name`]).
    pub configtune: Option<(String, Bytes)>,
    /// → `config/data_job.csv`.
    pub data_job: Option<(String, Bytes)>,
    /// → `config/data_agent.csv`.
    pub data_agent: Option<(String, Bytes)>,
    /// → `requirements.txt`.
    pub requirements_txt: Option<(String, Bytes)>,
    /// A text part: the original's single bundled code string.
    pub python_code: Option<String>,
    /// A `.zip` / `.tar.gz` of the whole project.
    pub project: Option<(String, Bytes)>,
}

impl ProjectParts {
    /// The part names this struct takes, as the dashboard sends them.
    pub const PART_NAMES: [&'static str; 7] =
        ["configtemplate", "configtune", "data_job", "data_agent", "requirements_txt", "python_code", "project"];

    /// Files one received part under its name. `Ok(false)` for a name that is not a project
    /// part (the caller decides whether that is an error); a part sent twice is refused.
    pub fn set(&mut self, part: &str, filename: String, bytes: Bytes) -> Result<bool, ProjectError> {
        let slot = match part {
            "configtemplate" => &mut self.configtemplate,
            "configtune" => &mut self.configtune,
            "data_job" => &mut self.data_job,
            "data_agent" => &mut self.data_agent,
            "requirements_txt" => &mut self.requirements_txt,
            "project" => &mut self.project,
            "python_code" => {
                if self.python_code.is_some() {
                    return Err(sent_twice(part));
                }
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| ProjectError::invalid("the python_code part", "is not UTF-8 text"))?;
                self.python_code = Some(text);
                return Ok(true);
            }
            _ => return Ok(false),
        };
        if slot.is_some() {
            return Err(sent_twice(part));
        }
        *slot = Some((filename, bytes));
        Ok(true)
    }
}

fn sent_twice(part: &str) -> ProjectError {
    ProjectError::invalid(format!("the {part} part"), "was sent twice; send each part once")
}

impl TuneKind {
    /// Which tune an uploaded `configtune` file is, from its filename (browsers may send a
    /// full client path: only the last segment counts). `config_local.json` and
    /// `config_distant.json` are those; another plain `*.json` name keeps its name; anything
    /// else (no name, a hidden or reserved name) becomes `config_tune.json`.
    pub fn from_upload_name(filename: &str) -> TuneKind {
        let base = filename.rsplit(['/', '\\']).next().unwrap_or_default().trim();
        match base {
            "config_local.json" => TuneKind::Local,
            "config_distant.json" => TuneKind::Distant,
            _ if base.ends_with(".json")
                && !base.starts_with('.')
                && Some(base) != TEMPLATE_PATH.rsplit('/').next()
                && !base.chars().any(|c| c.is_control() || c == ':') =>
            {
                TuneKind::Named(base.to_owned())
            }
            _ => TuneKind::Named("config_tune.json".to_owned()),
        }
    }
}

impl Project {
    /// Builds a project from the dashboard's parts. The `project` archive is read first (its
    /// single top folder stripped); each explicit part then replaces the archive's file of the
    /// same role. `python_code` that is empty or blank counts as not sent.
    pub fn from_parts(parts: ProjectParts, limits: ProjectLimits) -> Result<Project, ProjectError> {
        Project::from_upload(parts, Vec::new(), limits)
    }

    /// [`Project::from_parts`] plus a browser folder upload: `files` are `(relative path,
    /// bytes)` as [`Project::from_files`] takes them. They sit underneath the explicit parts
    /// like the archive's files; the single top folder of the archive and files together is
    /// stripped. An archive and files that share a path are refused as duplicates.
    pub fn from_upload(
        parts: ProjectParts,
        files: Vec<(String, Bytes)>,
        limits: ProjectLimits,
    ) -> Result<Project, ProjectError> {
        let mut set = FileSet::new("the upload", limits);
        let has_files = !files.is_empty();
        if let Some((name, bytes)) = sent(parts.project) {
            read_archive(&name, &bytes, &mut set)?;
        }
        for (path, bytes) in files {
            set.add_bytes(&path, bytes, false, Duplicate::Refuse)?;
        }
        set.strip_single_top_folder();
        let explicit_tune = match sent(parts.configtune) {
            Some((filename, bytes)) => {
                let kind = TuneKind::from_upload_name(&filename);
                set.add_bytes(&kind.path(), bytes, false, Duplicate::Replace)?;
                Some(kind)
            }
            None => None,
        };
        let explicit = [
            (parts.configtemplate, TEMPLATE_PATH),
            (parts.data_job, DATA_JOB_PATH),
            (parts.data_agent, DATA_AGENT_PATH),
            (parts.requirements_txt, REQUIREMENTS_PATH),
        ];
        for (part, path) in explicit {
            if let Some((_, bytes)) = sent(part) {
                set.add_bytes(path, bytes, false, Duplicate::Replace)?;
            }
        }
        if let Some(code) = parts.python_code.filter(|code| !code.trim().is_empty()) {
            set.set_python_code(code)?;
        }
        let hint = if has_files {
            "send it as the configtemplate part, or upload the project folder itself, the one that holds config/"
        } else {
            "send it as the configtemplate part, or inside the project archive"
        };
        set.into_project(explicit_tune, hint.into())
    }
}

/// `None` for a part the browser sent empty because no file was chosen.
fn sent(part: Option<(String, Bytes)>) -> Option<(String, Bytes)> {
    part.filter(|(filename, bytes)| !(filename.is_empty() && bytes.is_empty()))
}

#[cfg(test)]
mod tests;
