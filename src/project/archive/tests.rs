use std::io::{Cursor, Write};

use tar::EntryType;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::project::error::Limit;
use crate::project::test_support::*;
use crate::project::{Project, ProjectError, ProjectLimits, TEMPLATE_PATH};

fn paths(project: &Project) -> Vec<&str> {
    project.files().map(|(path, _)| path).collect()
}

fn too_large<T: std::fmt::Debug>(result: Result<T, ProjectError>) -> (String, Limit) {
    match result {
        Err(ProjectError::TooLarge { what, limit }) => (what, limit),
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn zip_round_trip_keeps_contents_and_executable_bit() {
    let bytes =
        zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, FILE), ("bin/run.sh", b"#!/bin/sh\n", EXEC)]);
    let project = must(Project::from_archive("hello.zip", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), ["bin/run.sh", TEMPLATE_PATH, "main.py"]);
    assert_eq!(project.template().bytes, TEMPLATE);
    assert_eq!(project.file("main.py").map(|f| (&f.bytes[..], f.executable)), Some((MAIN_PY, false)));
    assert_eq!(project.file("bin/run.sh").map(|f| f.executable), Some(true));
}

#[test]
fn tar_gz_round_trip_keeps_contents_and_executable_bit() {
    let bytes = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, EXEC)]);
    let project = must(Project::from_archive("hello.tgz", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH, "main.py"]);
    assert_eq!(project.file("main.py").map(|f| (&f.bytes[..], f.executable)), Some((MAIN_PY, true)));
}

#[test]
fn tar_of_dot_with_directory_entries_round_trips() {
    // What `tar czf hello.tgz .` writes: `./` first, then `./config/`, then the files.
    let bytes = tar_gz_of(&[
        ("./", b"", EXEC, EntryType::Directory),
        ("./config/", b"", EXEC, EntryType::Directory),
        ("./config/config_template.json", TEMPLATE, FILE, EntryType::Regular),
        ("./main.py", MAIN_PY, FILE, EntryType::Regular),
    ]);
    let project = must(Project::from_archive("hello.tgz", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH, "main.py"]);
}

#[test]
fn zip_with_directory_entries_round_trips() {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    must(zip.add_directory("hello/", SimpleFileOptions::default()));
    must(zip.add_directory("hello/config/", SimpleFileOptions::default()));
    must(zip.start_file("hello/config/config_template.json", SimpleFileOptions::default()));
    must(zip.write_all(TEMPLATE));
    let bytes = must(zip.finish()).into_inner();
    let project = must(Project::from_archive("hello.zip", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH]);
}

#[test]
fn escaping_directory_entry_is_refused_too() {
    let bytes = tar_gz_of(&[("../up/", b"", EXEC, EntryType::Directory)]);
    assert_eq!(unsafe_path_of(Project::from_archive("up.tgz", &bytes, ProjectLimits::default())), "../up/");
}

#[test]
fn archive_format_comes_from_magic_bytes_not_the_name() {
    let zip = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE)]);
    assert!(Project::from_archive("misnamed.tar.gz", &zip, ProjectLimits::default()).is_ok());
    let tgz = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE)]);
    assert!(Project::from_archive("misnamed.zip", &tgz, ProjectLimits::default()).is_ok());
}

#[test]
fn bytes_that_are_no_archive_are_invalid() {
    let result = Project::from_archive("notes.zip", b"just some text, not an archive", ProjectLimits::default());
    assert!(matches!(&result, Err(ProjectError::Invalid { file, .. }) if file.contains("notes.zip")), "{result:?}");
}

#[test]
fn single_top_folder_holding_config_is_stripped_and_macos_junk_skipped() {
    let bytes = zip_of(&[
        ("hello/config/config_template.json", TEMPLATE, FILE),
        ("hello/main.py", MAIN_PY, FILE),
        ("hello/.DS_Store", b"junk", FILE),
        ("__MACOSX/hello/._main.py", b"junk", FILE),
    ]);
    let project = must(Project::from_archive("hello.zip", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH, "main.py"]);
    assert_eq!(project.skipped(), ["__MACOSX/", "hello/.DS_Store"]);
}

#[test]
fn single_top_folder_without_config_is_kept() {
    let bytes = zip_of(&[("src/config_template.json", TEMPLATE, FILE), ("src/main.py", MAIN_PY, FILE)]);
    let result = Project::from_archive("src.zip", &bytes, ProjectLimits::default());
    assert!(matches!(&result, Err(ProjectError::Missing { what, .. }) if what == TEMPLATE_PATH), "{result:?}");
}

#[test]
fn zip_slip_is_refused_naming_the_entry() {
    let bytes = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("../evil", b"x", FILE)]);
    assert_eq!(unsafe_path_of(Project::from_archive("slip.zip", &bytes, ProjectLimits::default())), "../evil");
}

#[test]
fn zip_absolute_path_is_refused_naming_the_entry() {
    let bytes = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("/etc/x", b"x", FILE)]);
    assert_eq!(unsafe_path_of(Project::from_archive("abs.zip", &bytes, ProjectLimits::default())), "/etc/x");
}

#[test]
fn zip_symlink_entry_is_refused_naming_the_entry() {
    let bytes = zip_with_symlink("link", "/etc/passwd");
    assert_eq!(unsafe_path_of(Project::from_archive("link.zip", &bytes, ProjectLimits::default())), "link");
}

#[test]
fn tar_slip_is_refused_naming_the_entry() {
    let bytes = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("a/../../evil", b"x", FILE)]);
    assert_eq!(unsafe_path_of(Project::from_archive("slip.tgz", &bytes, ProjectLimits::default())), "a/../../evil");
}

#[test]
fn tar_absolute_path_is_refused_naming_the_entry() {
    let bytes = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("/etc/x", b"x", FILE)]);
    assert_eq!(unsafe_path_of(Project::from_archive("abs.tgz", &bytes, ProjectLimits::default())), "/etc/x");
}

#[test]
fn tar_symlink_entry_is_refused_naming_the_entry() {
    let bytes =
        tar_gz_of(&[(TEMPLATE_PATH, TEMPLATE, FILE, EntryType::Regular), ("escape", b"", 0o777, EntryType::Symlink)]);
    assert_eq!(unsafe_path_of(Project::from_archive("link.tgz", &bytes, ProjectLimits::default())), "escape");
}

#[test]
fn tar_hard_link_and_device_entries_are_refused() {
    let link = tar_gz_of(&[("hard", b"", FILE, EntryType::Link)]);
    assert_eq!(unsafe_path_of(Project::from_archive("link.tgz", &link, ProjectLimits::default())), "hard");
    let device = tar_gz_of(&[("dev/sda", b"", FILE, EntryType::Block)]);
    assert_eq!(unsafe_path_of(Project::from_archive("dev.tgz", &device, ProjectLimits::default())), "dev/sda");
}

#[test]
fn duplicate_entries_are_refused() {
    let bytes =
        tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, FILE), ("./main.py", b"other", FILE)]);
    let result = Project::from_archive("dup.tgz", &bytes, ProjectLimits::default());
    assert!(
        matches!(&result, Err(ProjectError::Invalid { message, .. }) if message.contains("`main.py` appears twice"))
    );
}

/// 100 MB of zeros deflates to about 100 KB.
fn zip_bomb() -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    must(zip.start_file(TEMPLATE_PATH, SimpleFileOptions::default()));
    must(zip.write_all(TEMPLATE));
    must(zip.start_file("zeros.bin", SimpleFileOptions::default().compression_level(Some(1))));
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..100 {
        must(zip.write_all(&chunk));
    }
    must(zip.finish()).into_inner()
}

#[test]
fn zip_bomb_is_too_large_without_being_decompressed_whole() {
    let bomb = zip_bomb();
    assert!(bomb.len() < 1 << 20, "the bomb is small: {} bytes", bomb.len());
    let mut reader = must(zip::ZipArchive::new(Cursor::new(&bomb)));
    assert_eq!(must(reader.by_name("zeros.bin")).size(), 100 << 20, "and declares its real size");
    let (what, limit) = too_large(Project::from_archive("bomb.zip", &bomb, ProjectLimits::default()));
    assert!(what.contains("zeros.bin"), "{what}");
    assert_eq!(limit, Limit::Bytes(16 << 20));
}

/// Overwrites the uncompressed size the local and central headers declare for `entry_name`.
fn declare_size(zip: &mut [u8], entry_name: &[u8], size: u32) {
    let patch = |zip: &mut [u8], at: usize| zip[at..at + 4].copy_from_slice(&size.to_le_bytes());
    for at in 0..zip.len() - 46 {
        let local = zip[at..].starts_with(b"PK\x03\x04") && zip[at + 30..].starts_with(entry_name);
        let central = zip[at..].starts_with(b"PK\x01\x02") && zip[at + 46..].starts_with(entry_name);
        if local {
            patch(zip, at + 22);
        } else if central {
            patch(zip, at + 24);
        }
    }
}

#[test]
fn zip_bomb_with_lying_size_headers_is_still_refused() {
    let mut bomb = zip_bomb();
    declare_size(&mut bomb, b"zeros.bin", 10);
    let mut reader = must(zip::ZipArchive::new(Cursor::new(&bomb)));
    assert_eq!(must(reader.by_name("zeros.bin")).size(), 10, "the headers now lie");
    let (what, _) = too_large(Project::from_archive("liar.zip", &bomb, ProjectLimits::default()));
    assert!(what.contains("zeros.bin"), "{what}");
}

#[test]
fn tar_gz_bomb_in_a_skipped_entry_is_too_large() {
    // A junk entry is never stored, but reading through it still decompresses it: capped too.
    let zeros = vec![0u8; 3 << 20];
    let bytes = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), (".git/objects/pack", &zeros, FILE)]);
    let (what, _) = too_large(Project::from_archive("bomb.tgz", &bytes, tiny_limits()));
    assert!(what.contains("decompressed"), "{what}");
}

#[test]
fn too_many_files_is_too_large() {
    let names: Vec<String> = (0..5).map(|i| format!("f{i}.py")).collect();
    let mut entries = vec![(TEMPLATE_PATH, TEMPLATE, FILE)];
    entries.extend(names.iter().map(|name| (name.as_str(), MAIN_PY, FILE)));
    let (_, limit) = too_large(Project::from_archive("many.zip", &zip_of(&entries), tiny_limits()));
    assert_eq!(limit, Limit::Files(4));
}

#[test]
fn file_over_the_per_file_cap_is_too_large_naming_it() {
    let big = vec![b'a'; 1025];
    let bytes = tar_gz_files(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("data/big.csv", &big, FILE)]);
    let (what, limit) = too_large(Project::from_archive("big.tgz", &bytes, tiny_limits()));
    assert!(what.contains("`data/big.csv`"), "{what}");
    assert_eq!(limit, Limit::Bytes(1024));
}

#[test]
fn files_over_the_total_cap_are_too_large() {
    let limits = ProjectLimits { max_total_bytes: 2000, ..tiny_limits() };
    let block = vec![b'a'; 1000];
    let bytes = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("a.bin", &block, FILE), ("b.bin", &block, FILE)]);
    let (what, limit) = too_large(Project::from_archive("total.zip", &bytes, limits));
    assert!(what.contains("all files together"), "{what}");
    assert_eq!(limit, Limit::Bytes(2000));
}

#[test]
fn archive_over_the_compressed_cap_is_too_large() {
    let limits = ProjectLimits { max_compressed_bytes: 100, ..ProjectLimits::default() };
    let bytes = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("main.py", MAIN_PY, FILE)]);
    let (what, limit) = too_large(Project::from_archive("big.zip", &bytes, limits));
    assert!(what.contains("big.zip"), "{what}");
    assert_eq!(limit, Limit::Bytes(100));
}

#[test]
fn junk_and_secrets_in_an_archive_are_skipped() {
    let bytes = zip_of(&[
        (TEMPLATE_PATH, TEMPLATE, FILE),
        (".env", b"SQL_PASSWORD=x", FILE),
        (".git/HEAD", b"ref", FILE),
        ("pkg/__pycache__/m.pyc", b"\0", FILE),
    ]);
    let project = must(Project::from_archive("junk.zip", &bytes, ProjectLimits::default()));
    assert_eq!(paths(&project), [TEMPLATE_PATH]);
    assert_eq!(project.skipped(), [".env", ".git/", "pkg/__pycache__/"]);
}

#[test]
fn a_path_that_is_both_file_and_folder_is_invalid() {
    let bytes = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE), ("lib", b"x", FILE), ("lib/a.py", b"y", FILE)]);
    let result = Project::from_archive("clash.zip", &bytes, ProjectLimits::default());
    assert!(matches!(&result, Err(ProjectError::Invalid { message, .. }) if message.contains("`lib` is both")));
}
