//! Project paths: the one normalisation every constructor uses, and the junk that never ships.

use super::error::ProjectError;

/// Folders left out wherever they appear: version control, caches, virtualenvs, Armada's own
/// local state, and macOS archive debris.
const JUNK_DIRS: [&str; 7] = [".git", "__pycache__", ".venv", "venv", "node_modules", ".armada", "__MACOSX"];

/// `a/./b`, `./a//b` and `a\b` (archives made on Windows) become `a/b`. Absolute paths, drive
/// letters, `..` components and NUL bytes are refused, naming the raw path.
pub(crate) fn normalise(raw: &str) -> Result<String, ProjectError> {
    let path = normalise_dir(raw)?;
    if path.is_empty() {
        return Err(ProjectError::unsafe_path(raw, "the path names no file"));
    }
    Ok(path)
}

/// Like [`normalise`], for a folder: the empty result is the project's own root (the `./`
/// entry `tar czf p.tgz .` writes first).
pub(crate) fn normalise_dir(raw: &str) -> Result<String, ProjectError> {
    if raw.contains('\0') {
        return Err(ProjectError::unsafe_path(raw, "the path contains a NUL byte"));
    }
    let unified = raw.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(ProjectError::unsafe_path(raw, "absolute paths are not allowed"));
    }
    let bytes = unified.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(ProjectError::unsafe_path(raw, "absolute (drive letter) paths are not allowed"));
    }
    let mut segments = Vec::new();
    for segment in unified.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                return Err(ProjectError::unsafe_path(raw, "parent-directory (`..`) components are not allowed"));
            }
            other => segments.push(other),
        }
    }
    Ok(segments.join("/"))
}

/// A folder name that is never shipped.
pub(crate) fn is_junk_dir(name: &str) -> bool {
    JUNK_DIRS.contains(&name)
}

/// A file name that is never shipped: compiled Python, Finder metadata, a `.git` file (in a
/// worktree), and `.env` / `.env.*` because secrets must not travel with a run.
pub(crate) fn is_junk_file(name: &str) -> bool {
    name == ".DS_Store" || name == ".git" || name == ".env" || name.starts_with(".env.") || name.ends_with(".pyc")
}

/// For a normalised path that must be left out, the part that explains why (`web/node_modules/`,
/// `.env`); `None` when the file ships.
pub(crate) fn junk_prefix(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let (file, dirs) = segments.split_last()?;
    if let Some(index) = dirs.iter().position(|dir| is_junk_dir(dir)) {
        return Some(format!("{}/", segments[..=index].join("/")));
    }
    is_junk_file(file).then(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> String {
        match normalise(raw) {
            Err(ProjectError::UnsafePath { path, reason }) => {
                assert_eq!(path, raw);
                reason
            }
            other => panic!("{raw:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn normalise_drops_dot_and_empty_segments() {
        assert_eq!(normalise("./config//config_template.json").ok().as_deref(), Some("config/config_template.json"));
        assert_eq!(normalise("src\\lib\\a.py").ok().as_deref(), Some("src/lib/a.py"));
        assert_eq!(normalise("dir/").ok().as_deref(), Some("dir"));
    }

    #[test]
    fn normalise_refuses_escapes() {
        assert!(refused("../evil").contains(".."));
        assert!(refused("a/../../evil").contains(".."));
        assert!(refused("..\\evil").contains(".."));
        assert!(refused("/etc/x").contains("absolute"));
        assert!(refused("\\etc\\x").contains("absolute"));
        assert!(refused("C:/Windows/x").contains("drive"));
        assert!(refused("a\0b").contains("NUL"));
        assert!(refused("./").contains("no file"));
        assert_eq!(normalise_dir("./").ok().as_deref(), Some(""));
        assert!(normalise_dir("../").is_err());
    }

    #[test]
    fn junk_prefix_names_the_skipped_folder_or_file() {
        assert_eq!(junk_prefix("web/node_modules/x/y.js").as_deref(), Some("web/node_modules/"));
        assert_eq!(junk_prefix("__MACOSX/hello/._a.py").as_deref(), Some("__MACOSX/"));
        assert_eq!(junk_prefix("pkg/__pycache__/m.cpython-311.pyc").as_deref(), Some("pkg/__pycache__/"));
        assert_eq!(junk_prefix(".env").as_deref(), Some(".env"));
        assert_eq!(junk_prefix("sub/.env.production").as_deref(), Some("sub/.env.production"));
        assert_eq!(junk_prefix("old.pyc").as_deref(), Some("old.pyc"));
        assert_eq!(junk_prefix("config/config_template.json"), None);
        assert_eq!(junk_prefix("environment.py"), None);
        assert_eq!(junk_prefix("venvs/readme.txt"), None);
    }
}
