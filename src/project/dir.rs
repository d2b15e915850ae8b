//! `Project::from_dir`: a project folder on disk (`armada launch DIR`, `armada workbench DIR`).

use std::fs::{self, File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::builder::FileSet;
use super::path::{is_junk_dir, is_junk_file};
use super::{Project, ProjectError, ProjectLimits};

impl Project {
    /// What `armada launch PATH` takes: a project folder, or a `.zip` / `.tar.gz` of one.
    pub fn from_path(path: impl AsRef<Path>, limits: ProjectLimits) -> Result<Project, ProjectError> {
        let path = path.as_ref();
        let meta = fs::metadata(path).map_err(|source| ProjectError::io(path.display(), source))?;
        if meta.is_dir() {
            return Project::from_dir(path, limits);
        }
        let shown = path.display().to_string();
        let file = File::open(path).map_err(|source| ProjectError::io(&shown, source))?;
        limits.check_compressed(&format!("archive `{shown}`"), meta.len())?;
        let mut bytes = Vec::new();
        // Bounded even if the file grows meanwhile; one byte over is caught by from_archive.
        file.take(limits.max_compressed_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| ProjectError::io(&shown, source))?;
        Project::from_archive(&shown, &bytes, limits)
    }

    /// Walks `dir`, leaving out `.git/`, `__pycache__/`, `.venv/`, `venv/`, `node_modules/`,
    /// `.armada/`, `*.pyc`, `.env` and `.env.*`, links that lead outside the folder or to a
    /// folder, and anything that is not a regular file (pipes, sockets, devices).
    pub fn from_dir(dir: impl AsRef<Path>, limits: ProjectLimits) -> Result<Project, ProjectError> {
        let dir = dir.as_ref();
        let root = fs::canonicalize(dir).map_err(|source| ProjectError::io(dir.display(), source))?;
        if !root.is_dir() {
            return Err(ProjectError::invalid(
                dir.display().to_string(),
                "not a folder; pass the project folder, the one that holds config/",
            ));
        }
        let mut set = FileSet::new(dir.display().to_string(), limits);
        // An explicit stack instead of recursion: depth is whatever the folder holds.
        let mut pending: Vec<(PathBuf, String)> = vec![(root.clone(), String::new())];
        while let Some((abs, rel)) = pending.pop() {
            for (name, path) in sorted_entries(&abs)? {
                let rel_path = format!("{rel}{name}");
                let meta = fs::symlink_metadata(&path).map_err(|source| ProjectError::io(path.display(), source))?;
                if meta.is_dir() {
                    if is_junk_dir(&name) {
                        set.skip(format!("{rel_path}/"));
                    } else {
                        pending.push((path, format!("{rel_path}/")));
                    }
                } else if is_junk_file(&name) {
                    set.skip(rel_path);
                } else if meta.is_file() {
                    add_file(&mut set, &rel_path, &path, &meta)?;
                } else if meta.file_type().is_symlink() {
                    add_link(&mut set, &root, &rel_path, &path)?;
                } else {
                    set.skip(format!("{rel_path} (not a regular file)"));
                }
            }
        }
        let hint = format!(
            "every project needs it (run_message, default_agent_message, default_job_message); is {} the project folder?",
            dir.display()
        );
        set.into_project(None, hint)
    }
}

/// A folder's entries by name, so that errors (which file is too large) are reproducible.
fn sorted_entries(dir: &Path) -> Result<Vec<(String, PathBuf)>, ProjectError> {
    let io_error = |source| ProjectError::io(dir.display(), source);
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| ProjectError::unsafe_path(path.display().to_string(), "the file name is not valid UTF-8"))?;
        entries.push((name, path));
    }
    entries.sort();
    Ok(entries)
}

/// A link ships as a copy of its target when that target is a file inside the folder; a
/// link to a folder is skipped (its files ship where they really are, and no cycle is walked).
fn add_link(set: &mut FileSet, root: &Path, rel_path: &str, path: &Path) -> Result<(), ProjectError> {
    let Ok(target) = fs::canonicalize(path) else {
        set.skip(format!("{rel_path} (broken link)"));
        return Ok(());
    };
    if !target.starts_with(root) {
        set.skip(format!("{rel_path} (link outside the project folder)"));
        return Ok(());
    }
    let meta = fs::metadata(&target).map_err(|source| ProjectError::io(target.display(), source))?;
    if !meta.is_file() {
        set.skip(format!("{rel_path} (link to a folder)"));
        return Ok(());
    }
    add_file(set, rel_path, &target, &meta)
}

fn add_file(set: &mut FileSet, rel_path: &str, path: &Path, meta: &Metadata) -> Result<(), ProjectError> {
    let mut file = File::open(path).map_err(|source| ProjectError::io(path.display(), source))?;
    set.add_entry(rel_path, &mut file, is_executable(meta), |source| ProjectError::io(path.display(), source))
}

#[cfg(unix)]
fn is_executable(meta: &Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests;
