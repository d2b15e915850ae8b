use bytes::Bytes;

use super::test_support::*;
use super::*;

fn uploaded(files: &[(&str, &'static [u8])]) -> Vec<(String, Bytes)> {
    files.iter().map(|&(path, bytes)| (path.to_owned(), Bytes::from_static(bytes))).collect()
}

#[test]
fn from_files_strips_the_chosen_folder_and_skips_secrets() {
    let files = uploaded(&[
        ("hello/config/config_template.json", TEMPLATE),
        ("hello/main.py", MAIN_PY),
        ("hello/.env", b"TOKEN=x"),
    ]);
    let project = must(Project::from_files(files, ProjectLimits::default()));
    assert_eq!(project.files().map(|(path, _)| path).collect::<Vec<_>>(), [TEMPLATE_PATH, "main.py"]);
    assert_eq!(project.skipped(), ["hello/.env"]);
}

#[test]
fn from_files_refuses_an_escaping_path() {
    let files = uploaded(&[(TEMPLATE_PATH, TEMPLATE), ("../../etc/cron.d/x", b"* * * * * root sh")]);
    assert_eq!(unsafe_path_of(Project::from_files(files, ProjectLimits::default())), "../../etc/cron.d/x");
}

#[test]
fn from_files_refuses_too_many_files() {
    let files = uploaded(&[(TEMPLATE_PATH, TEMPLATE), ("a", b""), ("b", b""), ("c", b""), ("d", b"")]);
    let result = Project::from_files(files, tiny_limits());
    assert!(matches!(&result, Err(ProjectError::TooLarge { limit: Limit::Files(4), .. })), "{result:?}");
}

#[test]
fn tune_accessor_finds_local_distant_and_named_files() {
    let files = uploaded(&[
        (TEMPLATE_PATH, TEMPLATE),
        (LOCAL_TUNE_PATH, b"{\"A\": 1}"),
        ("config/config_staging.json", b"{\"A\": 3}"),
    ]);
    let project = must(Project::from_files(files, ProjectLimits::default()));
    assert_eq!(project.tune(&TuneKind::Local).map(|f| f.name), Some(LOCAL_TUNE_PATH));
    assert_eq!(project.tune(&TuneKind::Distant), None);
    let staging = TuneKind::Named("config_staging.json".into());
    assert_eq!(project.tune(&staging).map(|f| f.bytes), Some(&b"{\"A\": 3}"[..]));
    assert_eq!(project.tune(&TuneKind::Named("../config_template.json".into())), None);
}

#[test]
fn summary_lists_the_recognised_files() {
    let files = uploaded(&[
        (TEMPLATE_PATH, TEMPLATE),
        ("config/config_staging.json", b"{}"),
        (DISTANT_TUNE_PATH, b"{}"),
        (DATA_JOB_PATH, b"account,payload\na,\"{\"\"x\"\": 1}\"\nb,2\nc,3\n"),
        (DATA_AGENT_PATH, b"name\n"),
        (REQUIREMENTS_PATH, b"requests\n"),
        ("main.py", MAIN_PY),
        ("lib/util.py", MAIN_PY),
        ("run.sh", b"#!/bin/sh\n"),
        ("README.md", b"# hello\n"),
        (".env", b"SECRET=1"),
    ]);
    let summary = must(Project::from_files(files, ProjectLimits::default())).summary();
    let tunes: Vec<(&str, bool)> = summary.tunes.iter().map(|t| (t.path.as_str(), t.explicit)).collect();
    assert_eq!(tunes, [(DISTANT_TUNE_PATH, false), ("config/config_staging.json", false)]);
    assert_eq!(summary.data_job, Some(CsvFileSummary { path: DATA_JOB_PATH.into(), rows: Some(3) }));
    assert_eq!(summary.data_agent, Some(CsvFileSummary { path: DATA_AGENT_PATH.into(), rows: Some(0) }));
    assert_eq!(summary.requirements_txt.as_deref(), Some(REQUIREMENTS_PATH));
    assert_eq!(summary.python_code_bytes, None);
    assert_eq!((summary.code_files, summary.total_files), (3, 10));
    assert_eq!(summary.skipped, [".env"]);
    let json = must(serde_json::to_value(&summary));
    assert_eq!(json["tunes"][0]["kind"], "distant");
    assert_eq!(json["tunes"][1]["kind"], serde_json::json!({"named": "config_staging.json"}));
}

#[test]
fn summary_marks_the_uploaded_tune_and_the_bundled_code() {
    let parts = ProjectParts {
        configtemplate: Some(("t.json".into(), Bytes::from_static(TEMPLATE))),
        configtune: Some(("config_local.json".into(), Bytes::from_static(b"{}"))),
        python_code: Some("print(1)".into()),
        ..ProjectParts::default()
    };
    let summary = must(Project::from_parts(parts, ProjectLimits::default())).summary();
    assert_eq!(
        summary.tunes,
        [TuneFileSummary { kind: TuneKind::Local, path: LOCAL_TUNE_PATH.into(), explicit: true }]
    );
    assert_eq!(summary.python_code_bytes, Some(8));
    assert_eq!(summary.total_bytes, (TEMPLATE.len() + 2 + 8) as u64);
}

#[test]
fn debug_shows_sizes_not_contents() {
    let text = format!("{:?}", hello_project());
    assert!(text.contains("\"main.py\": 15"), "{text}");
    assert!(!text.contains("hello"), "{text}");
}

#[test]
fn skipped_list_is_bounded() {
    let mut files = uploaded(&[(TEMPLATE_PATH, TEMPLATE)]);
    files.extend((0..150).map(|i| (format!("d{i:03}/.env"), Bytes::new())));
    let project = must(Project::from_files(files, ProjectLimits::default()));
    assert_eq!(project.skipped().len(), 101);
    assert_eq!(project.skipped()[0], "d000/.env");
    assert_eq!(project.skipped()[100], "… and 50 more");
}
