//! The Node.js example worker (examples/node-worker), through the same supervisor.

use std::path::Path;

use armada::agent::worker::{FinalStatus, JobOutcome, LogStream, Worker};
use serde_json::{Value, json};

use super::{Fixture, GRACE, JOB_TIMEOUT, Logs, Recorder, job};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn node_example_worker_runs_jobs_end_to_end() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-worker");
    let fixture = Fixture::new();
    copy_dir(&example, &fixture.project());
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(example.join("config/config_template.json")).unwrap()).unwrap();
    let command: Vec<String> = serde_json::from_value(template["run_message"]["worker_command"].clone()).unwrap();
    let spec = fixture.spec_in(&fixture.project(), command, template["default_agent_message"].clone());
    let (calls, logs) = (Recorder::default(), Logs::default());

    let mut worker = Worker::start(spec, logs.sink(), &calls).await.unwrap();
    assert!(worker.name().starts_with("node-example/"), "{}", worker.name());
    let good = job(json!({"word": "fleet", "fail": false}));
    let bad = job(json!({"word": "oops", "fail": "true"}));
    let good_outcome = worker.run_job(good.clone(), JOB_TIMEOUT, &calls).await;
    let bad_outcome = worker.run_job(bad.clone(), JOB_TIMEOUT, &calls).await;
    let status = worker.shutdown(GRACE, &calls).await.unwrap();

    assert_eq!(good_outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    assert_eq!(
        bad_outcome,
        JobOutcome::Done { status: FinalStatus::Failed, error: Some("Error: asked to fail on oops".into()) }
    );
    assert_eq!(status.code, Some(0));
    assert_eq!(
        calls.summary(),
        [
            (None, "output".into(), json!({"data": {"agent": 0, "greeting": "hello from a Node worker"}})),
            (
                Some(good.job_uuid),
                "event".into(),
                json!({"content": "counting the letters of fleet", "status": "Running"})
            ),
            (Some(good.job_uuid), "output".into(), json!({"data": {"word": "fleet", "letters": 5, "upper": "FLEET"}})),
            (
                Some(good.job_uuid),
                "event".into(),
                json!({"content": "done with fleet", "status": "Success", "final": true})
            ),
            (
                Some(bad.job_uuid),
                "event".into(),
                json!({"content": "counting the letters of oops", "status": "Running"})
            ),
        ]
    );
    assert_eq!(
        logs.lines(LogStream::Stdout, Some(good.job_uuid)),
        [format!("job {} (attempt 1): fleet", good.job_uuid)]
    );
    assert!(logs.lines(LogStream::Stderr, Some(bad.job_uuid)).join("\n").contains("asked to fail on oops"));
}
