//! `Project::from_archive`: a `.zip`, `.tar.gz`/`.tgz` or `.tar`, recognised by its first
//! bytes, unpacked in memory under the caps; links, devices and escaping paths are refused.

use std::cell::Cell;
use std::io::{self, Cursor, Read};

use flate2::read::GzDecoder;
use tar::EntryType;
use zip::ZipArchive;
use zip::result::ZipError;

use super::builder::FileSet;
use super::error::Limit;
use super::limits::CappedReader;
use super::{Project, ProjectError, ProjectLimits};

/// Unix file-type bits, as zip's external attributes carry them.
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArchiveFormat {
    Zip,
    TarGz,
    Tar,
}

impl ArchiveFormat {
    /// By magic bytes, whatever the file is called.
    pub(crate) fn detect(bytes: &[u8]) -> Option<ArchiveFormat> {
        if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            Some(ArchiveFormat::Zip)
        } else if bytes.starts_with(&[0x1f, 0x8b]) {
            Some(ArchiveFormat::TarGz)
        } else if bytes.get(257..262) == Some(b"ustar") {
            Some(ArchiveFormat::Tar)
        } else {
            None
        }
    }
}

impl Project {
    /// An uploaded archive (`armada launch hello.zip`, the dashboard's `project` part). A single
    /// top folder holding `config/` (a zip of `hello/`) is stripped; macOS debris and the same
    /// junk as [`Project::from_dir`] are skipped.
    pub fn from_archive(name: &str, bytes: &[u8], limits: ProjectLimits) -> Result<Project, ProjectError> {
        let mut set = FileSet::new(format!("archive `{name}`"), limits);
        read_archive(name, bytes, &mut set)?;
        set.strip_single_top_folder();
        let hint = format!("`{name}` must hold config/ at its top level or inside one single top folder");
        set.into_project(None, hint)
    }
}

/// Adds every file of the archive `bytes` to `set`.
pub(crate) fn read_archive(name: &str, bytes: &[u8], set: &mut FileSet) -> Result<(), ProjectError> {
    set.limits().check_compressed(&format!("archive `{name}`"), bytes.len() as u64)?;
    match ArchiveFormat::detect(bytes) {
        Some(ArchiveFormat::Zip) => read_zip(name, bytes, set),
        Some(ArchiveFormat::TarGz) => read_tar(name, GzDecoder::new(bytes), set),
        Some(ArchiveFormat::Tar) => read_tar(name, bytes, set),
        None => Err(ProjectError::invalid(
            format!("archive `{name}`"),
            "not a .zip, .tar.gz or .tar archive (its first bytes say otherwise); pack the project folder as .zip or .tar.gz",
        )),
    }
}

fn read_zip(name: &str, bytes: &[u8], set: &mut FileSet) -> Result<(), ProjectError> {
    let broken = |message: String| ProjectError::invalid(format!("archive `{name}`"), message);
    let mut archive =
        ZipArchive::new(Cursor::new(bytes)).map_err(|error| broken(format!("not a readable zip: {error}")))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|error| match error {
            ZipError::UnsupportedArchive(ZipError::PASSWORD_REQUIRED) => {
                broken(format!("entry #{index} is encrypted; pack the project without a password"))
            }
            ZipError::UnsupportedArchive(why) => {
                broken(format!("entry #{index}: {why}; re-create the zip with the standard (deflate) compression"))
            }
            other => broken(format!("entry #{index} cannot be read: {other}")),
        })?;
        let raw = entry.name().to_owned();
        let mode = entry.unix_mode().unwrap_or(0);
        let kind = mode & S_IFMT;
        if entry.is_dir() || kind == S_IFDIR {
            set.check_dir(&raw)?;
            continue;
        }
        // Zips made outside unix carry no file type: plain files.
        if kind != 0 && kind != S_IFREG {
            return Err(ProjectError::unsafe_path(raw, "a link or special file; archives may hold only plain files"));
        }
        set.add_entry(&raw, &mut entry, mode & 0o111 != 0, |error| {
            broken(format!("entry `{raw}` is corrupt: {error}"))
        })?;
    }
    Ok(())
}

/// Tar (plain or gzip'd). The whole decompressed stream, headers and skipped entries
/// included, is capped too: a tar must be read through to skip an entry.
fn read_tar(name: &str, stream: impl Read, set: &mut FileSet) -> Result<(), ProjectError> {
    let tripped = Cell::new(false);
    let stream_cap = set.limits().max_stream_bytes();
    let mut archive = tar::Archive::new(CappedReader::new(stream, stream_cap, &tripped));
    let broken = |error: io::Error| {
        if tripped.get() {
            ProjectError::TooLarge {
                what: format!("archive `{name}` decompressed (headers and skipped entries included)"),
                limit: Limit::Bytes(stream_cap),
            }
        } else {
            ProjectError::invalid(format!("archive `{name}`"), format!("not a readable tar archive: {error}"))
        }
    };
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = String::from_utf8(entry.path_bytes().into_owned()).map_err(|error| {
            ProjectError::unsafe_path(String::from_utf8_lossy(error.as_bytes()), "the path is not valid UTF-8")
        })?;
        let entry_type = entry.header().entry_type();
        match entry_type {
            EntryType::Regular | EntryType::Continuous => {
                let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
                set.add_entry(&raw, &mut entry, executable, broken)?;
            }
            EntryType::Directory => set.check_dir(&raw)?,
            // A pax global header (git archive writes the commit id there) describes no file.
            EntryType::XGlobalHeader => {}
            EntryType::Symlink | EntryType::Link => {
                return Err(ProjectError::unsafe_path(raw, "a link; archives may hold only plain files"));
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(ProjectError::unsafe_path(raw, "a device or pipe; archives may hold only plain files"));
            }
            other => {
                return Err(ProjectError::invalid(
                    format!("archive `{name}`"),
                    format!("entry `{raw}` has an unsupported tar entry type {other:?}; pack plain files only"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
