use bytes::Bytes;
use proptest::prelude::*;

use crate::project::error::Limit;
use crate::project::test_support::*;
use crate::project::{Bundle, Project, ProjectError, ProjectLimits, ProjectParts, TEMPLATE_PATH};

fn bundle_of(project: &Project) -> Bundle {
    must(project.to_bundle())
}

fn project_with_code_and_script() -> Project {
    let archive = zip_of(&[
        ("hello/config/config_template.json", TEMPLATE, FILE),
        ("hello/main.py", MAIN_PY, FILE),
        ("hello/bin/run.sh", b"#!/bin/sh\necho hi\n", EXEC),
    ]);
    let parts = ProjectParts {
        project: Some(("hello.zip".into(), Bytes::from(archive))),
        python_code: Some("print('bundled')\n".into()),
        ..ProjectParts::default()
    };
    must(Project::from_parts(parts, ProjectLimits::default()))
}

#[test]
fn bundle_sha_is_deterministic() {
    let first = bundle_of(&project_with_code_and_script());
    let second = bundle_of(&project_with_code_and_script());
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.bytes, second.bytes);
    assert_eq!(first.size, first.bytes.len() as u64);
    assert_eq!(first.sha256, Bundle::checksum(&first.bytes));
    assert_eq!(first.sha256.len(), 64);
    assert_eq!((&first.bytes[4..8], first.bytes[9]), (&[0u8; 4][..], 255), "gzip header: no mtime, OS unknown");
    // The same files arriving another way and in another order pack to the same bytes.
    let reordered = zip_of(&[("main.py", MAIN_PY, FILE), (TEMPLATE_PATH, TEMPLATE, FILE)]);
    let from_zip = must(Project::from_archive("reordered.zip", &reordered, ProjectLimits::default()));
    assert_eq!(bundle_of(&from_zip).sha256, bundle_of(&hello_project()).sha256);
}

#[test]
fn bundle_round_trip_keeps_files_modes_and_python_code() {
    let project = project_with_code_and_script();
    let bundle = bundle_of(&project);
    let unpacked = must(Bundle::verify(&bundle.bytes, &bundle.sha256, ProjectLimits::default()));
    assert_eq!(unpacked.files().collect::<Vec<_>>(), project.files().collect::<Vec<_>>());
    assert_eq!(unpacked.file("bin/run.sh").map(|f| f.executable), Some(true));
    assert_eq!(unpacked.python_code(), Some("print('bundled')\n"));
}

#[test]
fn verify_accepts_the_checksum_in_upper_case() {
    let bundle = bundle_of(&hello_project());
    assert!(Bundle::verify(&bundle.bytes, &bundle.sha256.to_uppercase(), ProjectLimits::default()).is_ok());
}

#[test]
fn verify_rejects_a_tampered_bundle() {
    let bundle = bundle_of(&hello_project());
    let mut tampered = bundle.bytes.to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let result = Bundle::verify(&tampered, &bundle.sha256, ProjectLimits::default());
    assert!(
        matches!(&result, Err(ProjectError::ChecksumMismatch { expected, actual }) if *expected == bundle.sha256 && *actual != bundle.sha256),
        "{result:?}"
    );
}

#[test]
fn verify_rejects_an_oversize_bundle_before_the_checksum() {
    let bundle = bundle_of(&hello_project());
    let limits = ProjectLimits { max_compressed_bytes: bundle.size - 1, ..ProjectLimits::default() };
    let result = Bundle::verify(&bundle.bytes, "not even a checksum", limits);
    assert!(
        matches!(&result, Err(ProjectError::TooLarge { limit, .. }) if *limit == Limit::Bytes(bundle.size - 1)),
        "{result:?}"
    );
}

#[test]
fn verify_rejects_a_zip_even_with_its_checksum() {
    let zip = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE)]);
    let result = Bundle::verify(&zip, &Bundle::checksum(&zip), ProjectLimits::default());
    assert!(matches!(&result, Err(ProjectError::Invalid { .. })), "{result:?}");
}

#[test]
fn verify_refuses_an_escaping_path_even_with_a_good_checksum() {
    let evil = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("../../home/x/.bashrc", b"rm -rf /", FILE)]);
    let result = Bundle::verify(&evil, &Bundle::checksum(&evil), ProjectLimits::default());
    assert_eq!(unsafe_path_of(result), "../../home/x/.bashrc");
}

#[cfg(unix)]
#[test]
fn write_to_preserves_the_executable_bit_and_nested_dirs() {
    use std::os::unix::fs::PermissionsExt;
    let project = project_with_code_and_script();
    let parent = must(tempfile::tempdir());
    let work = parent.path().join("work");
    must(project.write_to(&work));
    let mode = |path: &str| must(std::fs::metadata(work.join(path))).permissions().mode() & 0o777;
    assert_eq!(mode("bin/run.sh"), 0o755);
    assert_eq!(mode("main.py"), 0o644);
    assert_eq!(must(std::fs::read(work.join("bin/run.sh"))), b"#!/bin/sh\necho hi\n");
    assert_eq!(must(std::fs::read(work.join(TEMPLATE_PATH))), TEMPLATE);
    let mut written: Vec<String> = must(std::fs::read_dir(&work))
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(written, ["bin", "config", "main.py"]);
}

#[test]
fn write_to_refuses_a_directory_that_is_not_empty() {
    let work = must(tempfile::tempdir());
    must(std::fs::write(work.path().join("main.py"), b"old"));
    let result = hello_project().write_to(work.path());
    assert!(matches!(&result, Err(ProjectError::DirectoryNotEmpty { .. })), "{result:?}");
    assert_eq!(must(std::fs::read(work.path().join("main.py"))), b"old");
}

fn valid_archives() -> Vec<Vec<u8>> {
    vec![
        zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, EXEC)]),
        bundle_of(&project_with_code_and_script()).bytes.to_vec(),
    ]
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let from_archive = Project::from_archive("random", &bytes, tiny_limits());
        prop_assert!(from_archive.is_err());
        // With the right checksum, verify goes all the way to unpacking.
        let verified = Bundle::verify(&bytes, &Bundle::checksum(&bytes), tiny_limits());
        prop_assert!(verified.is_err());
    }

    #[test]
    fn damaged_archives_never_panic(
        which in 0..2usize,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = valid_archives().swap_remove(which);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        bytes.truncate(cut.index(bytes.len()) + 1);
        // Errors or, rarely, a still-valid project: either way no panic.
        let _ = Project::from_archive("damaged", &bytes, ProjectLimits::default());
        let _ = Bundle::verify(&bytes, &Bundle::checksum(&bytes), ProjectLimits::default());
    }
}
