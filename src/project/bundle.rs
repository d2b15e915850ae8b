//! `Bundle`: a project packed as a deterministic tar.gz that travels with the run, checked by
//! size and sha256 before an agent unpacks it, and `Project::write_to` that materialises it.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use sha2::{Digest, Sha256};

use super::archive::{ArchiveFormat, read_archive};
use super::builder::FileSet;
use super::path::normalise;
use super::{PYTHON_CODE_PATH, Project, ProjectError, ProjectLimits};

/// A packed project: the tar.gz bytes, their sha256 (lower-case hex) and their size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub bytes: Bytes,
    pub sha256: String,
    pub size: u64,
}

const FILE_MODE: u32 = 0o644;
const EXECUTABLE_MODE: u32 = 0o755;

impl Project {
    /// Packs the files (and `python_code`, at [`PYTHON_CODE_PATH`]) in path order with fixed
    /// times, owners and modes, so one project always makes the same bytes and checksum.
    /// Only the executable bit of each file is kept.
    pub fn to_bundle(&self) -> Result<Bundle, ProjectError> {
        let packing = |source| ProjectError::io("project bundle", source);
        // Header fields set explicitly: no timestamp, OS "unknown", whatever the platform.
        let gzip = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::default());
        let mut tar = tar::Builder::new(gzip);
        let code = self.python_code().map(|code| (PYTHON_CODE_PATH, code.as_bytes(), false));
        let files = self.files().map(|(path, file)| (path, &file.bytes[..], file.executable));
        for (path, bytes, executable) in files.chain(code) {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            header.set_mode(if executable { EXECUTABLE_MODE } else { FILE_MODE });
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            tar.append_data(&mut header, path, bytes).map_err(packing)?;
        }
        let bytes = tar.into_inner().and_then(GzEncoder::finish).map_err(packing)?;
        Ok(Bundle { sha256: Bundle::checksum(&bytes), size: bytes.len() as u64, bytes: Bytes::from(bytes) })
    }

    /// Writes every file under `dir`, which must be absent or empty: subfolders are created,
    /// executable files get 0755 and others 0644. Paths were validated when the project was
    /// built and are checked again here, so nothing lands outside `dir`; files are created,
    /// never opened through an existing link. `python_code` is not written: it travels in the
    /// agent message.
    pub fn write_to(&self, dir: impl AsRef<Path>) -> Result<(), ProjectError> {
        let dir = dir.as_ref();
        let at = |path: &Path| {
            let shown = path.display().to_string();
            move |source| ProjectError::io(shown, source)
        };
        fs::create_dir_all(dir).map_err(at(dir))?;
        if fs::read_dir(dir).map_err(at(dir))?.next().is_some() {
            return Err(ProjectError::DirectoryNotEmpty { path: dir.display().to_string() });
        }
        for (path, file) in self.files() {
            if normalise(path)? != path {
                return Err(ProjectError::unsafe_path(path, "not a normalised relative path"));
            }
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(at(parent))?;
            }
            let mode = if file.executable { EXECUTABLE_MODE } else { FILE_MODE };
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
            let mut out = options.open(&target).map_err(at(&target))?;
            out.write_all(&file.bytes).map_err(at(&target))?;
            // The umask may have removed bits the file must have.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(at(&target))?;
            }
        }
        Ok(())
    }
}

impl Bundle {
    /// Lower-case hex sha256, as [`Bundle::sha256`] holds it.
    pub fn checksum(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// An agent's check before unpacking: the size cap first (nothing oversize is hashed),
    /// then the checksum the run recorded, then the same capped, path-checked unpacking as
    /// [`Project::from_archive`].
    pub fn verify(bytes: &[u8], expected_sha256: &str, limits: ProjectLimits) -> Result<Project, ProjectError> {
        limits.check_compressed("the project bundle", bytes.len() as u64)?;
        let actual = Bundle::checksum(bytes);
        if !actual.eq_ignore_ascii_case(expected_sha256.trim()) {
            return Err(ProjectError::ChecksumMismatch { expected: expected_sha256.to_owned(), actual });
        }
        if ArchiveFormat::detect(bytes) != Some(ArchiveFormat::TarGz) {
            return Err(ProjectError::invalid("the project bundle", "is not a tar.gz made by `Project::to_bundle`"));
        }
        let mut set = FileSet::for_bundle("the project bundle", limits);
        read_archive("project bundle", bytes, &mut set)?;
        set.into_project(None, "the bundle was not made from a valid project; pack it again".into())
    }
}

#[cfg(test)]
mod tests;
