//! `FileSet`: the one door files come into a project through, so every constructor applies
//! the same path rules, junk filter and caps, and ends with the same validation.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};

use bytes::Bytes;

use super::error::{Limit, ProjectError};
use super::limits::{ProjectLimits, read_capped};
use super::path::{junk_prefix, normalise, normalise_dir};
use super::{PYTHON_CODE_PATH, Project, ProjectFile, TEMPLATE_PATH, TuneKind};

/// How many distinct skipped paths a project lists for display.
const MAX_SKIPPED_SHOWN: usize = 100;

/// What to do when a path is already present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicate {
    /// Two archive entries or uploaded files with one path: ambiguous, refused.
    Refuse,
    /// An explicit multipart part over the archive's file of the same role.
    Replace,
}

pub(crate) struct FileSet {
    /// Where the files come from, for messages: a folder, an archive's name, "the upload".
    origin: String,
    limits: ProjectLimits,
    files: BTreeMap<String, ProjectFile>,
    /// Bytes held: every file plus `python_code`.
    total: u64,
    python_code: Option<String>,
    skipped: BTreeSet<String>,
    /// Skipped paths past [`MAX_SKIPPED_SHOWN`], counted only: an archive of junk cannot grow
    /// the list without bound.
    skipped_more: usize,
    /// A bundle may carry `python_code` at [`PYTHON_CODE_PATH`]; anywhere else that path is
    /// junk like the rest of `.armada/`.
    bundle: bool,
}

impl FileSet {
    pub(crate) fn new(origin: impl Into<String>, limits: ProjectLimits) -> Self {
        FileSet {
            origin: origin.into(),
            limits,
            files: BTreeMap::new(),
            total: 0,
            python_code: None,
            skipped: BTreeSet::new(),
            skipped_more: 0,
            bundle: false,
        }
    }

    pub(crate) fn for_bundle(origin: impl Into<String>, limits: ProjectLimits) -> Self {
        FileSet { bundle: true, ..FileSet::new(origin, limits) }
    }

    pub(crate) fn limits(&self) -> &ProjectLimits {
        &self.limits
    }

    /// A directory entry of an archive: nothing is stored, but an escaping path is still an
    /// attack to report.
    pub(crate) fn check_dir(&self, raw: &str) -> Result<(), ProjectError> {
        normalise_dir(raw).map(drop)
    }

    /// Records a path left out on purpose (a link outside the folder, a device).
    pub(crate) fn skip(&mut self, path: impl Into<String>) {
        let path = path.into();
        if self.skipped.len() < MAX_SKIPPED_SHOWN || self.skipped.contains(&path) {
            self.skipped.insert(path);
        } else {
            self.skipped_more += 1;
        }
    }

    /// One file streamed from an archive or a folder: decompressed under the caps, never
    /// past them. Junk is skipped unread.
    pub(crate) fn add_entry(
        &mut self,
        raw: &str,
        reader: &mut dyn Read,
        executable: bool,
        on_io: impl FnOnce(io::Error) -> ProjectError,
    ) -> Result<(), ProjectError> {
        if self.bundle && normalise(raw)? == PYTHON_CODE_PATH {
            let bytes = self.read(PYTHON_CODE_PATH, reader, on_io)?;
            let code = String::from_utf8(bytes)
                .map_err(|_| ProjectError::invalid(&self.origin, format!("`{PYTHON_CODE_PATH}` is not UTF-8 text")))?;
            return self.set_python_code(code);
        }
        let Some(path) = self.admit(raw)? else {
            return Ok(());
        };
        // Refused before reading: neither a duplicate nor one file too many is decompressed.
        self.check_new_path(&path)?;
        let bytes = self.read(&path, reader, on_io)?;
        self.insert(path, Bytes::from(bytes), executable, Duplicate::Refuse)
    }

    /// One file already in memory (an uploaded file or part).
    pub(crate) fn add_bytes(
        &mut self,
        raw: &str,
        bytes: Bytes,
        executable: bool,
        duplicate: Duplicate,
    ) -> Result<(), ProjectError> {
        match self.admit(raw)? {
            Some(path) => self.insert(path, bytes, executable, duplicate),
            None => Ok(()),
        }
    }

    /// The normalised path, or `None` for junk (recorded as skipped).
    fn admit(&mut self, raw: &str) -> Result<Option<String>, ProjectError> {
        let path = normalise(raw)?;
        match junk_prefix(&path) {
            Some(prefix) => {
                self.skip(prefix);
                Ok(None)
            }
            None => Ok(Some(path)),
        }
    }

    /// The original's single bundled code string; it counts against the caps like a file.
    pub(crate) fn set_python_code(&mut self, code: String) -> Result<(), ProjectError> {
        let size = code.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(self.file_too_large("python_code"));
        }
        let previous = self.python_code.as_ref().map_or(0, |code| code.len() as u64);
        self.account(previous, size)?;
        self.python_code = Some(code);
        Ok(())
    }

    /// A zip of `hello/` holds `hello/config/…`: when every file sits under one top folder
    /// that has `config/`, and there is no template at the top, the folder is the project.
    pub(crate) fn strip_single_top_folder(&mut self) {
        if self.files.contains_key(TEMPLATE_PATH) {
            return;
        }
        let Some(top) = self.files.keys().next().and_then(|path| path.split_once('/')).map(|(top, _)| top) else {
            return;
        };
        let prefix = format!("{top}/");
        let config = format!("{top}/config/");
        let all_under_top = self.files.keys().all(|path| path.starts_with(&prefix));
        if !all_under_top || !self.files.keys().any(|path| path.starts_with(&config)) {
            return;
        }
        let files = std::mem::take(&mut self.files);
        self.files = files.into_iter().map(|(path, file)| (path[prefix.len()..].to_owned(), file)).collect();
    }

    /// Ends every constructor: the template must be there, the known JSON files must parse,
    /// and no path may be both a file and a folder.
    pub(crate) fn into_project(
        self,
        explicit_tune: Option<TuneKind>,
        missing_template_hint: String,
    ) -> Result<Project, ProjectError> {
        if !self.files.contains_key(TEMPLATE_PATH) {
            return Err(ProjectError::Missing { what: TEMPLATE_PATH.into(), hint: missing_template_hint });
        }
        for path in self.files.keys() {
            let mut ancestor = path.as_str();
            while let Some((parent, _)) = ancestor.rsplit_once('/') {
                if self.files.contains_key(parent) {
                    return Err(ProjectError::invalid(
                        &self.origin,
                        format!("`{parent}` is both a file and the folder of `{path}`; rename one of them"),
                    ));
                }
                ancestor = parent;
            }
        }
        let mut json_files = vec![TuneKind::Local.path(), TuneKind::Distant.path()];
        json_files.extend(explicit_tune.as_ref().map(TuneKind::path));
        check_json_object(TEMPLATE_PATH, &self.files[TEMPLATE_PATH].bytes)?;
        for path in &json_files {
            if let Some(file) = self.files.get(path) {
                check_json_object(path, &file.bytes)?;
            }
        }
        let mut skipped: Vec<String> = self.skipped.into_iter().collect();
        if self.skipped_more > 0 {
            skipped.push(format!("… and {} more", self.skipped_more));
        }
        Ok(Project {
            files: self.files,
            python_code: self.python_code,
            explicit_tune,
            skipped,
            total_bytes: self.total,
        })
    }

    fn insert(
        &mut self,
        path: String,
        bytes: Bytes,
        executable: bool,
        duplicate: Duplicate,
    ) -> Result<(), ProjectError> {
        let size = bytes.len() as u64;
        if size > self.limits.max_file_bytes {
            return Err(self.file_too_large(&path));
        }
        let previous = match (self.files.get(&path), duplicate) {
            (Some(file), Duplicate::Replace) => file.bytes.len() as u64,
            _ => {
                self.check_new_path(&path)?;
                0
            }
        };
        self.account(previous, size)?;
        self.files.insert(path, ProjectFile { bytes, executable });
        Ok(())
    }

    fn check_new_path(&self, path: &str) -> Result<(), ProjectError> {
        if self.files.contains_key(path) {
            return Err(ProjectError::invalid(&self.origin, format!("`{path}` appears twice; keep only one")));
        }
        if self.files.len() >= self.limits.max_files {
            return Err(ProjectError::TooLarge {
                what: format!("{} (number of files)", self.origin),
                limit: Limit::Files(self.limits.max_files),
            });
        }
        Ok(())
    }

    /// Counts `size` bytes in place of `previous` ones, within the total cap.
    fn account(&mut self, previous: u64, size: u64) -> Result<(), ProjectError> {
        let total = self.total - previous + size;
        if total > self.limits.max_total_bytes {
            return Err(self.total_too_large());
        }
        self.total = total;
        Ok(())
    }

    /// Reads under whichever cap is closer: this file's, or what is left of the total.
    fn read(
        &self,
        path: &str,
        reader: &mut dyn Read,
        on_io: impl FnOnce(io::Error) -> ProjectError,
    ) -> Result<Vec<u8>, ProjectError> {
        let left = self.limits.max_total_bytes.saturating_sub(self.total);
        let file_cap_is_closer = self.limits.max_file_bytes <= left;
        match read_capped(reader, self.limits.max_file_bytes.min(left)).map_err(on_io)? {
            Some(bytes) => Ok(bytes),
            None if file_cap_is_closer => Err(self.file_too_large(path)),
            None => Err(self.total_too_large()),
        }
    }

    fn file_too_large(&self, path: &str) -> ProjectError {
        ProjectError::TooLarge {
            what: format!("`{path}` in {}", self.origin),
            limit: Limit::Bytes(self.limits.max_file_bytes),
        }
    }

    fn total_too_large(&self) -> ProjectError {
        ProjectError::TooLarge {
            what: format!("{} (all files together, decompressed)", self.origin),
            limit: Limit::Bytes(self.limits.max_total_bytes),
        }
    }
}

/// The template and the tune files must be JSON objects; caught here so that a broken file is
/// reported before anything is packed or launched.
fn check_json_object(path: &str, bytes: &[u8]) -> Result<(), ProjectError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(ProjectError::invalid(path, "starts with a byte-order mark; save it as UTF-8 without BOM"));
    }
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) if value.is_object() => Ok(()),
        Ok(_) => Err(ProjectError::invalid(path, "must be a JSON object ({ … })")),
        Err(error) => Err(ProjectError::invalid(path, format!("not valid JSON: {error}"))),
    }
}
