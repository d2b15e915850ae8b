//! `ProjectError`: every way a project can be refused, each naming the file and what to do.

use std::fmt;

/// A cap a project went over: bytes or a number of files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    Files(usize),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Limit::Files(n) => write!(f, "{n} files"),
            Limit::Bytes(n) => write!(f, "{}", human_bytes(n)),
        }
    }
}

/// `1536` → `1.5 KiB`; exact byte counts stay readable for small caps.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let text = format!("{value:.1}");
    format!("{} {}", text.strip_suffix(".0").unwrap_or(&text), UNITS[unit])
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// A file, the whole project, an upload or the number of files is over its cap.
    #[error(
        "{what} is over the limit of {limit}; leave large data, virtualenvs and build outputs out of the project \
         (or raise the limit)"
    )]
    TooLarge { what: String, limit: Limit },

    /// A path that could land outside the project folder, or an entry that is not a plain file
    /// (a link or a device in an archive).
    #[error("unsafe path `{path}`: {reason}; pack the project from inside its folder with plain files only")]
    UnsafePath { path: String, reason: String },

    /// A file or an upload that cannot be read as what it must be (a broken archive, a template
    /// that is not JSON, two entries with the same path).
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },

    /// Something every project needs is absent.
    #[error("{what} is missing: {hint}")]
    Missing { what: String, hint: String },

    /// A bundle whose bytes are not the ones the run recorded.
    #[error(
        "project bundle checksum mismatch: expected sha256 {expected}, got {actual}; the bundle was changed or cut \
         short in transit, fetch it again"
    )]
    ChecksumMismatch { expected: String, actual: String },

    /// `write_to` refuses a directory that already holds files: it only fills fresh ones.
    #[error("{path} is not empty; the project is written into a fresh, empty directory only")]
    DirectoryNotEmpty { path: String },

    /// Reading the project folder or writing the working directory failed.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl ProjectError {
    pub(crate) fn invalid(file: impl Into<String>, message: impl Into<String>) -> Self {
        ProjectError::Invalid { file: file.into(), message: message.into() }
    }

    pub(crate) fn unsafe_path(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ProjectError::UnsafePath { path: path.into(), reason: reason.into() }
    }

    pub(crate) fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        ProjectError::Io { path: path.to_string(), source }
    }

    /// True when the project itself is at fault (a 4xx at the HTTP edge, a configuration error
    /// in the CLI); false for local IO failures and a working directory that is not fresh.
    pub fn is_input_error(&self) -> bool {
        !matches!(self, ProjectError::Io { .. } | ProjectError::DirectoryNotEmpty { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
    }

    #[test]
    fn too_large_names_what_and_limit() {
        let error = ProjectError::TooLarge { what: "file `data/big.bin`".into(), limit: Limit::Bytes(16 << 20) };
        let text = error.to_string();
        assert!(text.starts_with("file `data/big.bin` is over the limit of 16 MiB;"), "{text}");
    }
}
