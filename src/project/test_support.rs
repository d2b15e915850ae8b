//! Builders for the project tests: a minimal valid project and in-memory archives, including
//! hostile ones the real writers refuse to make.

use std::io::{Cursor, Write};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use zip::write::{SimpleFileOptions, ZipWriter};

use super::{Project, ProjectError, ProjectLimits};

pub(crate) const TEMPLATE: &[u8] =
    br#"{"run_message": {"number_of_agents": 1}, "default_agent_message": {}, "default_job_message": {}}"#;
pub(crate) const MAIN_PY: &[u8] = b"print('hello')\n";

pub(crate) const FILE: u32 = 0o644;
pub(crate) const EXEC: u32 = 0o755;

/// A plain file entry: path, content, unix mode.
pub(crate) type Entry<'a> = (&'a str, &'a [u8], u32);

/// The smallest valid project: a template and one script.
pub(crate) fn hello_entries(prefix: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (format!("{prefix}config/config_template.json"), TEMPLATE.to_vec()),
        (format!("{prefix}main.py"), MAIN_PY.to_vec()),
    ]
}

pub(crate) fn hello_project() -> Project {
    let files = hello_entries("").into_iter().map(|(path, bytes)| (path, Bytes::from(bytes))).collect();
    must(Project::from_files(files, ProjectLimits::default()))
}

pub(crate) fn zip_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for &(path, bytes, mode) in entries {
        let options = SimpleFileOptions::default().unix_permissions(mode);
        must(zip.start_file(path, options));
        must(zip.write_all(bytes));
    }
    must(zip.finish()).into_inner()
}

pub(crate) fn zip_with_symlink(name: &str, target: &str) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    must(zip.start_file("config/config_template.json", SimpleFileOptions::default()));
    must(zip.write_all(TEMPLATE));
    must(zip.add_symlink(name, target, SimpleFileOptions::default()));
    must(zip.finish()).into_inner()
}

/// A tar.gz written header by header, so that it can hold what `tar::Builder` refuses
/// (`../evil`, `/etc/x`) and links.
pub(crate) fn tar_gz_of(entries: &[(&str, &[u8], u32, tar::EntryType)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for &(path, bytes, mode, entry_type) in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_entry_type(entry_type);
        header.set_mode(mode);
        header.set_size(bytes.len() as u64);
        header.set_cksum();
        must(tar.append(&header, bytes));
    }
    must(must(tar.into_inner()).finish())
}

pub(crate) fn tar_gz_files(entries: &[Entry<'_>]) -> Vec<u8> {
    let typed: Vec<_> =
        entries.iter().map(|&(path, bytes, mode)| (path, bytes, mode, tar::EntryType::Regular)).collect();
    tar_gz_of(&typed)
}

/// Small caps for the limit tests.
pub(crate) fn tiny_limits() -> ProjectLimits {
    ProjectLimits { max_total_bytes: 4096, max_file_bytes: 1024, max_files: 4, max_compressed_bytes: 64 * 1024 }
}

/// `unwrap` with the error shown: test inputs are built by the test itself.
pub(crate) fn must<T, E: std::fmt::Debug>(result: Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("test setup failed: {error:?}"),
    }
}

/// The path an `UnsafePath` names, or a panic saying what came instead.
pub(crate) fn unsafe_path_of<T: std::fmt::Debug>(result: Result<T, ProjectError>) -> String {
    match result {
        Err(ProjectError::UnsafePath { path, .. }) => path,
        other => panic!("expected UnsafePath, got {other:?}"),
    }
}
