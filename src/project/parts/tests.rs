use bytes::Bytes;

use crate::project::test_support::*;
use crate::project::{
    DATA_AGENT_PATH, DATA_JOB_PATH, Project, ProjectError, ProjectLimits, ProjectParts, REQUIREMENTS_PATH,
    TEMPLATE_PATH, TuneKind,
};

fn part(filename: &str, bytes: &'static [u8]) -> Option<(String, Bytes)> {
    Some((filename.to_owned(), Bytes::from_static(bytes)))
}

fn content<'a>(project: &'a Project, path: &str) -> Option<&'a [u8]> {
    project.file(path).map(|file| &file.bytes[..])
}

#[test]
fn every_part_lands_at_its_path() {
    let parts = ProjectParts {
        configtemplate: part("template.json", TEMPLATE),
        configtune: part("config_distant.json", b"{\"SCREEN_VISIBLE\": 0}"),
        data_job: part("jobs.csv", b"account\na\nb\n"),
        data_agent: part("agents.csv", b"name\nx\n"),
        requirements_txt: part("reqs.txt", b"requests\n"),
        python_code: Some("print('code')".into()),
        project: None,
    };
    let project = must(Project::from_parts(parts, ProjectLimits::default()));
    assert_eq!(
        project.files().map(|(path, _)| path).collect::<Vec<_>>(),
        ["config/config_distant.json", TEMPLATE_PATH, DATA_AGENT_PATH, DATA_JOB_PATH, REQUIREMENTS_PATH]
    );
    assert_eq!(project.template().bytes, TEMPLATE);
    assert_eq!(project.tune(&TuneKind::Distant).map(|f| f.bytes), Some(&b"{\"SCREEN_VISIBLE\": 0}"[..]));
    assert_eq!(project.explicit_tune(), Some(&TuneKind::Distant));
    assert_eq!(project.data_job().map(|f| (f.name, f.bytes)), Some((DATA_JOB_PATH, &b"account\na\nb\n"[..])));
    assert_eq!(project.data_agent().map(|f| f.bytes), Some(&b"name\nx\n"[..]));
    assert_eq!(project.requirements_txt().map(|f| f.bytes), Some(&b"requests\n"[..]));
    assert_eq!(project.python_code(), Some("print('code')"));
}

#[test]
fn explicit_part_beats_the_archive_file_of_the_same_role() {
    let archive = tar_gz_files(&[
        ("proj/config/config_template.json", br#"{"from": "archive"}"#, FILE),
        ("proj/config/data_job.csv", b"archive\n1\n", FILE),
        ("proj/config/config_local.json", b"{\"A\": 1}", FILE),
        ("proj/main.py", MAIN_PY, EXEC),
    ]);
    let parts = ProjectParts {
        configtemplate: part("config_template.json", TEMPLATE),
        data_job: part("data_job.csv", b"explicit\n2\n"),
        configtune: part("config_local.json", b"{\"A\": 2}"),
        project: Some(("proj.tgz".into(), Bytes::from(archive))),
        ..ProjectParts::default()
    };
    let project = must(Project::from_parts(parts, ProjectLimits::default()));
    assert_eq!(content(&project, TEMPLATE_PATH), Some(TEMPLATE));
    assert_eq!(content(&project, DATA_JOB_PATH), Some(&b"explicit\n2\n"[..]));
    assert_eq!(content(&project, "config/config_local.json"), Some(&b"{\"A\": 2}"[..]));
    // Files with no explicit part stay as the archive had them.
    assert_eq!(project.file("main.py").map(|f| (&f.bytes[..], f.executable)), Some((MAIN_PY, true)));
}

#[test]
fn archive_alone_may_supply_the_template() {
    let archive = zip_of(&[(TEMPLATE_PATH, TEMPLATE, FILE)]);
    let parts = ProjectParts { project: Some(("p.zip".into(), Bytes::from(archive))), ..ProjectParts::default() };
    assert!(Project::from_parts(parts, ProjectLimits::default()).is_ok());
}

#[test]
fn missing_template_part_is_missing() {
    let parts = ProjectParts { data_job: part("jobs.csv", b"a\n1\n"), ..ProjectParts::default() };
    let error = match Project::from_parts(parts, ProjectLimits::default()) {
        Err(error) => error,
        Ok(project) => panic!("accepted parts with no template: {project:?}"),
    };
    assert!(matches!(&error, ProjectError::Missing { what, .. } if what == TEMPLATE_PATH));
    assert!(error.to_string().contains("configtemplate part"), "{error}");
}

#[test]
fn empty_browser_parts_and_blank_code_count_as_not_sent() {
    let parts = ProjectParts {
        configtemplate: part("config_template.json", TEMPLATE),
        data_agent: Some((String::new(), Bytes::new())),
        python_code: Some("  \n".into()),
        ..ProjectParts::default()
    };
    let project = must(Project::from_parts(parts, ProjectLimits::default()));
    assert!(project.data_agent().is_none());
    assert!(project.python_code().is_none());
}

#[test]
fn python_code_counts_against_the_total_cap() {
    let parts = ProjectParts {
        configtemplate: part("config_template.json", TEMPLATE),
        python_code: Some("x".repeat(1000)),
        ..ProjectParts::default()
    };
    let limits = ProjectLimits { max_total_bytes: 1000, ..ProjectLimits::default() };
    let result = Project::from_parts(parts, limits);
    assert!(matches!(&result, Err(ProjectError::TooLarge { .. })), "{result:?}");
}

#[test]
fn broken_tune_part_is_invalid_naming_the_tune_file() {
    let parts = ProjectParts {
        configtemplate: part("config_template.json", TEMPLATE),
        configtune: part("config_local.json", b"[1, 2]"),
        ..ProjectParts::default()
    };
    let result = Project::from_parts(parts, ProjectLimits::default());
    assert!(
        matches!(&result, Err(ProjectError::Invalid { file, .. }) if file == "config/config_local.json"),
        "{result:?}"
    );
}

#[test]
fn tune_kind_comes_from_the_uploaded_filename() {
    assert_eq!(TuneKind::from_upload_name("config_local.json"), TuneKind::Local);
    assert_eq!(TuneKind::from_upload_name("C:\\fakepath\\config_distant.json"), TuneKind::Distant);
    assert_eq!(TuneKind::from_upload_name("config_staging.json"), TuneKind::Named("config_staging.json".into()));
    let fallback = TuneKind::Named("config_tune.json".into());
    for odd in ["", "tune.txt", ".hidden.json", "config_template.json", "../x/"] {
        assert_eq!(TuneKind::from_upload_name(odd), fallback, "{odd:?}");
    }
}

#[test]
fn set_files_parts_by_name_and_refuses_repeats() {
    let mut parts = ProjectParts::default();
    assert!(must(parts.set("configtemplate", "t.json".into(), Bytes::from_static(TEMPLATE))));
    assert!(must(parts.set("python_code", String::new(), Bytes::from_static(b"print(1)"))));
    assert!(!must(parts.set("run_id", String::new(), Bytes::from_static(b"x"))));
    assert!(parts.set("configtemplate", "t.json".into(), Bytes::new()).is_err());
    let not_text = ProjectParts::default().set("python_code", String::new(), Bytes::from_static(b"\xff"));
    assert!(matches!(&not_text, Err(ProjectError::Invalid { message, .. }) if message.contains("UTF-8")));
    assert_eq!(parts.python_code.as_deref(), Some("print(1)"));
    assert_eq!(parts.configtemplate.map(|(name, _)| name).as_deref(), Some("t.json"));
}

#[test]
fn uploaded_files_sit_under_the_explicit_parts_and_lose_their_top_folder() {
    let files = vec![
        ("hello/config/config_template.json".to_string(), Bytes::from_static(b"{\"old\": true}")),
        ("hello/config/data_job.csv".to_string(), Bytes::from_static(b"a\n1\n")),
        ("hello/main.py".to_string(), Bytes::from_static(b"print(1)\n")),
    ];
    let parts = ProjectParts { configtemplate: part("template.json", TEMPLATE), ..ProjectParts::default() };
    let project = must(Project::from_upload(parts, files, ProjectLimits::default()));
    assert_eq!(project.files().map(|(path, _)| path).collect::<Vec<_>>(), [TEMPLATE_PATH, DATA_JOB_PATH, "main.py"]);
    assert_eq!(project.template().bytes, TEMPLATE, "the explicit part wins over the folder's file");
}
