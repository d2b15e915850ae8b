//! Refused uploads: each answers 400 or 413 naming the problem, and nothing of the run exists
//! afterwards (no run, job, queue, config key or agent).

use std::io::{Cursor, Write};

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::json;
use uuid::Uuid;

use super::agents::{Behaviour, Probe, test_agents};
use super::*;
use crate::support::TestApp;

fn template_with(run_message: &str, agent_message: &str) -> String {
    format!(
        r#"{{"run_message": {run_message}, "default_agent_message": {agent_message}, "default_job_message": {{}}}}"#
    )
}

fn with_template(template: impl Into<Vec<u8>>) -> Form {
    Form::new().part("configtemplate", file(template, "config_template.json"))
}

fn zip_slip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    zip.start_file("config/config_template.json", options).expect("entry");
    zip.write_all(TEMPLATE.as_bytes()).expect("write");
    zip.start_file("../evil.py", options).expect("entry");
    zip.write_all(b"import os\n").expect("write");
    zip.finish().expect("zip").into_inner()
}

#[tokio::test]
async fn every_bad_upload_is_refused_naming_the_problem_and_leaves_nothing() {
    let probe = Probe::default();
    let app = TestApp::builder().agent_entry(test_agents(Behaviour::Honest, probe.clone())).spawn().await;
    let ok_run = r#"{"number_of_agents": 2, "number_of_jobs": 2}"#;
    let cases: Vec<(&str, Form, StatusCode, Vec<&str>)> = vec![
        (
            "invalid JSON template",
            with_template(r#"{"run_message": {"number_of_agents": 1"#),
            StatusCode::BAD_REQUEST,
            vec!["config/config_template.json", "not valid JSON"],
        ),
        (
            "a CSV row with the wrong number of cells",
            with_template(template_with(ok_run, "{}"))
                .part("data_job", file("outcome,payload\nsucceed,{}\nfail,{},extra\n", "data_job.csv")),
            StatusCode::BAD_REQUEST,
            vec!["config/data_job.csv row 3", "3 cells, header has 2"],
        ),
        (
            "a JSON cell that does not parse",
            with_template(template_with(ok_run, "{}"))
                .part("data_job", file("outcome,payload\nsucceed,\"{\"\"a\"\": }\"\n", "data_job.csv")),
            StatusCode::BAD_REQUEST,
            vec!["config/data_job.csv row 2", "field payload", "invalid JSON"],
        ),
        (
            "more job rows than number_of_jobs",
            with_template(template_with(ok_run, "{}"))
                .part("data_job", file("outcome\nsucceed\nsucceed\nfail\n", "data_job.csv")),
            StatusCode::BAD_REQUEST,
            vec!["config/data_job.csv", "3 rows but run_message.number_of_jobs is 2"],
        ),
        (
            "a number_of_jobs that is not an integer",
            with_template(template_with(r#"{"number_of_agents": 1, "number_of_jobs": 2.5}"#, "{}")),
            StatusCode::BAD_REQUEST,
            vec!["field run_message.number_of_jobs", "expected an integer"],
        ),
        (
            "a number_of_agents that is not an integer",
            with_template(template_with(r#"{"number_of_agents": "three", "number_of_jobs": 1}"#, "{}")),
            StatusCode::BAD_REQUEST,
            vec!["field run_message.number_of_agents", "expected an integer"],
        ),
        (
            "zero agents",
            with_template(template_with(r#"{"number_of_agents": 0, "number_of_jobs": 1}"#, "{}")),
            StatusCode::BAD_REQUEST,
            vec!["run_message.number_of_agents", "must be at least 1"],
        ),
        (
            "an unknown $env_ placeholder",
            with_template(template_with(ok_run, r#"{"screen": "$env_MISSING"}"#))
                .part("configtune", file(TUNE, "config_local.json")),
            StatusCode::BAD_REQUEST,
            vec!["default_agent_message", "unknown placeholder $env_MISSING", "config/config_local.json"],
        ),
        (
            "no configtemplate",
            Form::new().part("data_job", file(DATA_JOB, "data_job.csv")),
            StatusCode::BAD_REQUEST,
            vec!["config/config_template.json is missing"],
        ),
        (
            "a part over its cap",
            with_template(TEMPLATE).part("data_job", file(vec![b'x'; 17 * 1024 * 1024], "data_job.csv")),
            StatusCode::PAYLOAD_TOO_LARGE,
            vec!["the data_job part is over its limit of 16 MiB"],
        ),
        (
            "a zip-slip path in the project archive",
            Form::new().part("project", file(zip_slip(), "project.zip")),
            StatusCode::BAD_REQUEST,
            vec!["unsafe path `../evil.py`"],
        ),
        (
            "an unknown part",
            dashboard_form().text("bogus", "1").text("extra", "2"),
            StatusCode::BAD_REQUEST,
            vec!["unknown parts \"bogus\", \"extra\"", "the parts are: configtemplate"],
        ),
        (
            "a tune the project lacks",
            with_template(template_with(ok_run, "{}")).text("tune", "distant"),
            StatusCode::BAD_REQUEST,
            vec!["config/config_distant.json: the tune part asks for it"],
        ),
        (
            "a files part without its path",
            Form::new().part("files", reqwest::multipart::Part::bytes(TEMPLATE.as_bytes().to_vec())),
            StatusCode::BAD_REQUEST,
            vec!["each files part needs the file's path"],
        ),
    ];
    for (case, form, expected, fragments) in cases {
        let run_id = Uuid::new_v4();
        let (status, body) = start(&app, "/bot/start", form.text("run_uuid", run_id.to_string())).await;
        assert_eq!(status, expected, "{case}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        for fragment in fragments {
            assert!(detail.contains(fragment), "{case}: {fragment:?} missing from {detail:?}");
        }
        assert_nothing_left(&app, run_id, 2).await;
    }
    let (status, body) = start(&app, "/bot/start", dashboard_form().text("run_uuid", "run-1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("\"run-1\" is not a UUID")), "{body}");
    assert_eq!(app.get("/api/runs").await.1["total"], json!(0), "no run was recorded");
    assert_eq!(probe.exited(), 0, "no agent was launched");
}

#[tokio::test]
async fn an_upload_over_the_whole_body_cap_is_413() {
    let app = TestApp::builder().var("ARMADA_MAX_UPLOAD_BYTES", "65536").spawn().await;
    let run_id = Uuid::new_v4();
    let form = dashboard_form()
        .text("run_uuid", run_id.to_string())
        .part("requirements_txt", file(vec![b'#'; 100 * 1024], "requirements.txt"));
    let (status, body) = start(&app, "/bot/start", form).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("ARMADA_MAX_UPLOAD_BYTES")), "{body}");
    assert_nothing_left(&app, run_id, 3).await;

    // Without a Content-Length (streamed parts), the count stops the body as it arrives.
    let streamed = |bytes: Vec<u8>, name: &str| Part::stream(reqwest::Body::from(bytes)).file_name(name.to_owned());
    let form = dashboard_form()
        .text("run_uuid", run_id.to_string())
        .part("requirements_txt", streamed(vec![b'#'; 40 * 1024], "requirements.txt"))
        .part("project", streamed(vec![0; 40 * 1024], "project.zip"));
    let (status, body) = start(&app, "/bot/start", form).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["detail"].as_str().is_some_and(|d| d.starts_with("the upload is over the limit of 64 KiB")), "{body}");
    assert_nothing_left(&app, run_id, 3).await;
}
