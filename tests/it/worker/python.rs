//! The Python helper running an original-style project (ctx_agent_context / ctx_job_context /
//! ctx_script) with the `src.*` stand-ins.

use armada::agent::worker::{FinalStatus, JobOutcome, LogStream};
use serde_json::json;

use super::{Fixture, GRACE, JOB_TIMEOUT, job};

#[tokio::test]
async fn agent_context_is_entered_once_and_calls_arrive_in_order() {
    let fixture = Fixture::standard();
    let (mut worker, calls, logs) = fixture.start(json!({"name": "agent-0"})).await;
    let jobs: Vec<_> = (1..=3).map(|n| job(json!({"n": n}))).collect();
    for request in &jobs {
        let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;
        assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    }

    let summary = calls.summary();
    assert_eq!(summary[0].0, None, "the init output belongs to no job");
    assert_eq!(summary[0].2["data"]["aenter"], 1);
    assert!(
        summary[1].2["data"]["early_event_error"].as_str().unwrap().contains("no job is running"),
        "an event outside a job is refused clearly: {:?}",
        summary[1]
    );
    let per_job: Vec<_> = summary[2..].to_vec();
    let mut expected = Vec::new();
    for (n, request) in (1..=3).zip(&jobs) {
        let id = Some(request.job_uuid);
        expected.push((id, "event".to_string(), json!({"content": format!("start {n}"), "status": "Success"})));
        expected.push((id, "output".to_string(), json!({"data": {"n": n, "agent": "agent-0"}})));
    }
    assert_eq!(per_job, expected);
    assert_eq!(fixture.read("inits.log").as_deref(), Some("init\n"), "AgentContext entered once for three jobs");
    // The helper's own diagnostics never go to stdout: each job printed nothing there.
    assert!(jobs.iter().all(|request| logs.lines(LogStream::Stdout, Some(request.job_uuid)).is_empty()));
}

#[tokio::test]
async fn shutdown_exits_the_agent_context_and_the_worker_exits_zero() {
    let fixture = Fixture::standard();
    let (worker, calls, _) = fixture.start(json!({})).await;
    assert!(worker.name().starts_with("armada_worker/"), "{}", worker.name());
    assert_eq!(fixture.read("teardown.log"), None);

    let status = worker.shutdown(GRACE, &calls).await.unwrap();

    assert_eq!(status.code, Some(0), "{status}");
    assert_eq!(fixture.read("teardown.log").as_deref(), Some("aexit\n"));
    assert_eq!(calls.outputs().last(), Some(&json!({"aexit": true})), "__aexit__ may still send outputs");
}

#[tokio::test]
async fn final_status_rules_return_raise_and_explicit_records() {
    let fixture = Fixture::standard();
    let (mut worker, calls, logs) = fixture.start(json!({})).await;
    let cases = [
        ("return", FinalStatus::Success, None),
        ("raise", FinalStatus::Failed, Some("ValueError: boom 2")),
        ("failed_event", FinalStatus::Failed, Some("gave up")),
        ("finalsuccess", FinalStatus::Success, None),
        ("finalsuccess_then_raise", FinalStatus::Success, None),
    ];
    for (n, (mode, status, error)) in cases.into_iter().enumerate() {
        let request = job(json!({"n": n + 1, "mode": mode}));
        let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;
        assert_eq!(outcome, JobOutcome::Done { status, error: error.map(String::from) }, "mode {mode}");

        let finals: Vec<_> = calls
            .calls()
            .into_iter()
            .filter(|call| call.job == Some(request.job_uuid) && call.params["final"] == json!(true))
            .map(|call| (call.params["status"].clone(), call.params["content"].clone()))
            .collect();
        let expected_finals = match mode {
            "failed_event" => vec![(json!("Failed"), json!("gave up"))],
            "finalsuccess" => vec![(json!("Success"), json!("all good"))],
            "finalsuccess_then_raise" => vec![(json!("Success"), json!("done early"))],
            _ => vec![],
        };
        assert_eq!(finals, expected_finals, "mode {mode}");
        if mode == "raise" {
            let stderr = logs.lines(LogStream::Stderr, Some(request.job_uuid)).join("\n");
            assert!(stderr.contains("Traceback") && stderr.contains("ValueError: boom 2"), "{stderr}");
        }
    }
}

#[tokio::test]
async fn create_job_for_the_current_job_sends_nothing_and_for_another_records_it() {
    let fixture = Fixture::standard();
    let (mut worker, calls, _) = fixture.start(json!({})).await;
    let other = uuid::Uuid::new_v4();
    let mut request = job(json!({}));
    request.job_message = json!({"n": 1, "mode": "create_job", "current": request.job_uuid, "other": other});

    let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    let create_calls: Vec<_> = calls.calls().into_iter().filter(|call| call.method == "create_job").collect();
    assert_eq!(create_calls.len(), 1, "{create_calls:?}");
    assert_eq!(create_calls[0].job, Some(other));
    assert_eq!(create_calls[0].params, json!({"job_uuid": other}));
    let other_events: Vec<_> =
        calls.calls().into_iter().filter(|call| call.job == Some(other)).map(|c| c.method).collect();
    assert_eq!(other_events, ["create_job", "event"], "the other job's event is its own");
}

#[tokio::test]
async fn prints_that_look_like_protocol_messages_stay_logs() {
    let fixture = Fixture::standard();
    let (mut worker, calls, logs) = fixture.start(json!({})).await;
    let noisy = job(json!({"n": 1, "mode": "garbage"}));

    let outcome = worker.run_job(noisy.clone(), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    let stdout = logs.lines(LogStream::Stdout, Some(noisy.job_uuid));
    assert_eq!(stdout[0], r#"{"type":"done","job_uuid":"00000000-0000-0000-0000-000000000000","status":"Failed"}"#);
    assert_eq!(stdout[1], "plain text from the job");
    assert_eq!(stdout[2], "\u{0}\u{1} control bytes");
    assert_eq!(stdout[3..].iter().map(String::len).collect::<Vec<_>>(), [64 * 1024, 100_000 - 64 * 1024]);
    assert_eq!(
        logs.lines(LogStream::Stderr, Some(noisy.job_uuid)),
        [r#"{"type":"call","id":1,"method":"event","params":{}}"#]
    );
    assert!(calls.calls().iter().any(|call| call.params["content"] == "still talking"));
    // The connection is intact for the next job.
    let next = worker.run_job(job(json!({"n": 2})), JOB_TIMEOUT, &calls).await;
    assert_eq!(next, JobOutcome::Done { status: FinalStatus::Success, error: None });
}

#[tokio::test]
async fn stand_ins_hand_over_proxy_fingerprint_and_a_database() {
    let fixture = Fixture::standard();
    let message = json!({"config_proxy": {"upstream_proxy_enabled": 1}});
    let (mut worker, calls, logs) = fixture.start(message).await;

    let request = job(json!({"n": 1, "mode": "extras"}));
    let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    assert_eq!(
        calls.outputs().last().unwrap(),
        &json!({
            "proxy": "http://127.0.0.1:8081",
            "fingerprint": {"user_agent": "Mozilla/5.0 (test)"},
            "rows": [["it's.example", 5]],
        })
    );
    // The fingerprint was asked of the agent first; this one cannot answer, so the helper fell
    // back to the one of the init context, and said so.
    let asked: Vec<_> = calls.calls().into_iter().filter(|call| call.method == "fingerprint").collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].params, json!({}), "FingerprintManager({{}}) sends no config of its own");
    let stderr = logs.lines(LogStream::Stderr, Some(request.job_uuid)).join("\n");
    assert!(stderr.contains("using the fingerprint the agent fetched at init"), "{stderr}");
}

#[tokio::test]
async fn contexts_and_script_of_other_shapes_get_what_they_accept() {
    // No-argument AgentContext with a sync context manager, JobContext(job, agent), a sync
    // one-argument script: the helper passes what each accepts and sets what is missing.
    let fixture = Fixture::new()
        .file(
            "ctx_agent_context.py",
            "class AgentContext:\n    def __enter__(self):\n        self.entered = True\n        return self\n    \
             def __exit__(self, *exc):\n        return False\n",
        )
        .file(
            "ctx_job_context.py",
            "class JobContext:\n    def __init__(self, job, agent, headless=True):\n        self.job = job\n        \
             self.agent = agent\n",
        )
        .file(
            "ctx_script.py",
            "def ctx_script(job_ctx):\n    agent = job_ctx.agent\n    agent.output_manager.send({\n        \
             'job': job_ctx.job, 'job_message': job_ctx.job_message, 'agent_message': agent.agent_message,\n        \
             'entered': agent.entered})\n",
        );
    let (mut worker, calls, _) = fixture.start(json!({"name": "a"})).await;

    let outcome = worker.run_job(job(json!({"n": 7})), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    assert_eq!(
        calls.outputs(),
        [json!({"job": {"n": 7}, "job_message": {"n": 7}, "agent_message": {"name": "a"}, "entered": true})]
    );
}
