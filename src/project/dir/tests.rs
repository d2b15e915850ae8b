use std::fs;
use std::path::Path;

use crate::project::test_support::*;
use crate::project::{Project, ProjectError, ProjectLimits, TEMPLATE_PATH};

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let target = root.join(path);
    if let Some(parent) = target.parent() {
        must(fs::create_dir_all(parent));
    }
    must(fs::write(target, bytes));
}

fn hello_dir() -> tempfile::TempDir {
    let dir = must(tempfile::tempdir());
    write(dir.path(), TEMPLATE_PATH, TEMPLATE);
    write(dir.path(), "main.py", MAIN_PY);
    dir
}

fn paths(project: &Project) -> Vec<&str> {
    project.files().map(|(path, _)| path).collect()
}

#[test]
fn from_dir_skips_junk_and_env() {
    let dir = hello_dir();
    for junk in [
        ".env",
        ".env.production",
        ".git/HEAD",
        "__pycache__/main.cpython-311.pyc",
        "pkg/__pycache__/m.pyc",
        ".venv/bin/python",
        "venv/lib/site.py",
        "web/node_modules/left-pad/index.js",
        ".armada/spool.db",
        "stale.pyc",
    ] {
        write(dir.path(), junk, b"junk");
    }
    write(dir.path(), "pkg/module.py", b"x = 1\n");
    let project = must(Project::from_dir(dir.path(), ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH, "main.py", "pkg/module.py"]);
    assert_eq!(
        project.skipped(),
        [
            ".armada/",
            ".env",
            ".env.production",
            ".git/",
            ".venv/",
            "__pycache__/",
            "pkg/__pycache__/",
            "stale.pyc",
            "venv/",
            "web/node_modules/"
        ]
    );
}

#[test]
fn from_dir_without_template_is_missing() {
    let dir = must(tempfile::tempdir());
    write(dir.path(), "main.py", MAIN_PY);
    let error = match Project::from_dir(dir.path(), ProjectLimits::default()) {
        Err(error) => error,
        Ok(project) => panic!("accepted a folder with no template: {project:?}"),
    };
    assert!(matches!(&error, ProjectError::Missing { what, .. } if what == TEMPLATE_PATH), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("config/config_template.json is missing"), "{text}");
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[test]
fn from_dir_that_does_not_exist_is_an_io_error_naming_it() {
    let dir = must(tempfile::tempdir());
    let gone = dir.path().join("nope");
    let result = Project::from_dir(&gone, ProjectLimits::default());
    assert!(matches!(&result, Err(ProjectError::Io { path, .. }) if path.ends_with("nope")), "{result:?}");
}

#[test]
fn from_dir_with_broken_template_json_is_invalid_naming_it() {
    let dir = hello_dir();
    write(dir.path(), TEMPLATE_PATH, b"{\"run_message\": ");
    let error = match Project::from_dir(dir.path(), ProjectLimits::default()) {
        Err(error) => error.to_string(),
        Ok(project) => panic!("accepted a broken template: {project:?}"),
    };
    assert!(error.starts_with("config/config_template.json: not valid JSON"), "{error}");
}

#[cfg(unix)]
#[test]
fn from_dir_skips_links_outside_and_copies_links_inside() {
    use std::os::unix::fs::symlink;
    let outside = must(tempfile::tempdir());
    write(outside.path(), "secret.txt", b"secret");
    let dir = hello_dir();
    must(symlink(outside.path().join("secret.txt"), dir.path().join("secret.txt")));
    must(symlink(outside.path(), dir.path().join("elsewhere")));
    must(symlink(dir.path().join("main.py"), dir.path().join("alias.py")));
    must(symlink(dir.path().join("config"), dir.path().join("config_link")));
    let project = must(Project::from_dir(dir.path(), ProjectLimits::default()));
    assert_eq!(paths(&project), ["alias.py", TEMPLATE_PATH, "main.py"]);
    assert_eq!(project.file("alias.py").map(|f| &f.bytes[..]), Some(MAIN_PY));
    assert_eq!(
        project.skipped(),
        [
            "config_link (link to a folder)",
            "elsewhere (link outside the project folder)",
            "secret.txt (link outside the project folder)"
        ]
    );
}

#[cfg(unix)]
#[test]
fn from_dir_keeps_the_executable_bit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = hello_dir();
    write(dir.path(), "run.sh", b"#!/bin/sh\n");
    must(fs::set_permissions(dir.path().join("run.sh"), fs::Permissions::from_mode(0o755)));
    let project = must(Project::from_dir(dir.path(), ProjectLimits::default()));
    assert_eq!(project.file("run.sh").map(|f| f.executable), Some(true));
    assert_eq!(project.file("main.py").map(|f| f.executable), Some(false));
}

#[test]
fn from_dir_enforces_the_per_file_cap() {
    let dir = hello_dir();
    write(dir.path(), "data/big.bin", &[0u8; 2048]);
    let result = Project::from_dir(dir.path(), tiny_limits());
    assert!(
        matches!(&result, Err(ProjectError::TooLarge { what, .. }) if what.contains("`data/big.bin`")),
        "{result:?}"
    );
}

#[test]
fn from_path_takes_a_folder_or_an_archive_file() {
    let dir = hello_dir();
    let from_folder = must(Project::from_path(dir.path(), ProjectLimits::default()));
    let archive = dir.path().join("hello.tgz");
    must(fs::write(&archive, tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, FILE)])));
    let from_archive = must(Project::from_path(&archive, ProjectLimits::default()));
    assert_eq!(from_archive.files().collect::<Vec<_>>(), from_folder.files().collect::<Vec<_>>());
}
