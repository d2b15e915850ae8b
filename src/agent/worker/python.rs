//! The Python helper (`python/` in the repository), shipped inside the binary and written out
//! next to a project so that `python3 -m armada_worker` runs it.

use std::io;
use std::path::{Path, PathBuf};

#[derive(rust_embed::RustEmbed)]
#[folder = "python/"]
#[exclude = "*.pyc"]
#[exclude = "*/__pycache__/*"]
struct PythonHelper;

/// Writes the helper's files under `dir` (created if needed) and returns the directory to put
/// on `PYTHONPATH` (see [`super::WorkerSpec::with_python_helper`]).
pub fn materialize_python_helper(dir: &Path) -> io::Result<PathBuf> {
    for name in PythonHelper::iter() {
        let Some(file) = PythonHelper::get(&name) else { continue };
        let target = dir.join(name.as_ref());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, file.data.as_ref())?;
    }
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_files_are_written_with_the_stand_ins_as_a_namespace_package() {
        let dir = tempfile::tempdir().unwrap();
        let root = materialize_python_helper(dir.path()).unwrap();
        for file in ["armada_worker/__main__.py", "src/monitoring_client.py", "src/database_connector.py"] {
            assert!(root.join(file).is_file(), "{file} missing");
        }
        // No __init__.py: a project's own src/ must merge with the stand-ins.
        assert!(!root.join("src/__init__.py").exists());
    }
}
