//! The original dashboard's bundled Celery-style `code` string, run without Celery.

use armada::agent::worker::{FinalStatus, JobOutcome};
use serde_json::json;

use super::{Fixture, GRACE, JOB_TIMEOUT, job};

#[tokio::test]
async fn celery_style_bundled_code_runs_without_celery_installed() {
    let fixture = Fixture::new();
    let message = json!({"code": include_str!("fixtures/bundled_code.py")});
    let (mut worker, calls, _) = fixture.start(message).await;
    assert_eq!(calls.outputs(), [json!({"init": "started", "celery": "0.0.0+armada-stand-in"})]);

    let first = job(json!({"n": 1}));
    let second = job(json!({"n": 2}));
    let first_outcome = worker.run_job(first.clone(), JOB_TIMEOUT, &calls).await;
    let second_outcome = worker.run_job(second.clone(), JOB_TIMEOUT, &calls).await;
    let status = worker.shutdown(GRACE, &calls).await.unwrap();

    assert_eq!(first_outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    assert_eq!(
        second_outcome,
        JobOutcome::Done { status: FinalStatus::Failed, error: Some("ValueError: two is not allowed".into()) }
    );
    let events: Vec<_> = calls
        .calls()
        .into_iter()
        .filter(|call| call.method == "event")
        .map(|call| (call.job, call.params["content"].clone()))
        .collect();
    assert_eq!(
        events,
        [
            (Some(first.job_uuid), json!("run_bot doubled 2 with started")),
            (Some(second.job_uuid), json!("run_bot doubled 4 with started")),
        ]
    );
    assert_eq!(status.code, Some(0));
    assert_eq!(fixture.read("celery_shutdown.log").as_deref(), Some("bye\n"));
}
