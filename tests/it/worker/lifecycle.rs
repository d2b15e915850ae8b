//! Workers that crash, hang, fail to start, speak another protocol, or are dropped.

use std::time::Duration;

use armada::agent::worker::{FinalStatus, JobOutcome, Worker, WorkerError};
use armada::process::{ChildProcess, ChildSpec};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Fixture, JOB_TIMEOUT, Logs, Recorder, eventually, exists, job, running};

#[tokio::test]
async fn worker_exiting_mid_job_is_a_crash_with_its_code_and_stderr() {
    let fixture = Fixture::standard();
    let (mut worker, calls, _) = fixture.start(json!({})).await;
    let request = job(json!({"n": 1, "mode": "exit"}));

    let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;

    let JobOutcome::Crashed { exit_code, signal, stderr_tail } = &outcome else { panic!("{outcome:?}") };
    assert_eq!((*exit_code, *signal), (Some(3), None));
    assert_eq!(stderr_tail.last().map(String::as_str), Some("about to die"));
    let reason = outcome.failure_reason(request.job_uuid).unwrap();
    assert_eq!(reason, format!("worker exited with code 3 during job {}; last stderr: about to die", request.job_uuid));
    // The worker is gone: it takes no more jobs.
    let after = worker.run_job(job(json!({"n": 2})), JOB_TIMEOUT, &calls).await;
    assert!(
        matches!(after, JobOutcome::ProtocolError { ref message } if message.contains("no more jobs")),
        "{after:?}"
    );
}

#[tokio::test]
async fn worker_killed_mid_job_is_a_crash_with_signal_9() {
    let fixture = Fixture::standard();
    let (mut worker, calls, _) = fixture.start(json!({})).await;
    let request = job(json!({"n": 1, "mode": "sigkill"}));

    let outcome = worker.run_job(request.clone(), JOB_TIMEOUT, &calls).await;

    assert!(matches!(outcome, JobOutcome::Crashed { exit_code: None, signal: Some(9), .. }), "{outcome:?}");
    assert!(
        outcome.failure_reason(request.job_uuid).unwrap().starts_with("worker killed by signal 9 (SIGKILL) during job")
    );
}

#[tokio::test]
async fn a_job_past_its_timeout_is_timed_out_and_the_worker_is_killed() {
    let fixture = Fixture::standard();
    let (mut worker, calls, _) = fixture.start(json!({})).await;
    let pid = worker.pid();
    let timeout = Duration::from_secs(3);

    let outcome = worker.run_job(job(json!({"n": 1, "mode": "sleep"})), timeout, &calls).await;

    assert_eq!(outcome, JobOutcome::TimedOut { after: timeout });
    assert!(eventually(|| !exists(pid)).await, "the timed-out worker {pid} is still there");
}

#[tokio::test]
async fn a_new_worker_starts_after_a_crash_and_runs_init_again() {
    let fixture = Fixture::standard();
    let calls = Recorder::default();
    let mut first = Worker::start(fixture.python_spec(json!({})), Logs::default().sink(), &calls).await.unwrap();
    let crashed = first.run_job(job(json!({"n": 1, "mode": "exit"})), JOB_TIMEOUT, &calls).await;
    assert!(!crashed.worker_survives());
    drop(first);

    let mut second = Worker::start(fixture.python_spec(json!({})), Logs::default().sink(), &calls).await.unwrap();
    let outcome = second.run_job(job(json!({"n": 2})), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
    assert_eq!(fixture.read("inits.log").as_deref(), Some("init\ninit\n"));
}

#[tokio::test]
async fn dropping_a_worker_kills_it_and_what_it_started() {
    let fixture = Fixture::standard();
    let (worker, calls, _) = fixture.start(json!({"spawn_child": true})).await;
    let init = calls.outputs()[0].clone();
    let (pid, child_pid) = (worker.pid(), init["child_pid"].as_u64().unwrap() as u32);
    assert_eq!(init["pid"].as_u64(), Some(u64::from(pid)));
    assert!(running(pid) && running(child_pid));

    drop(worker);

    assert!(eventually(|| !exists(pid)).await, "worker {pid} outlived its handle");
    assert!(eventually(|| !running(child_pid)).await, "the worker's child {child_pid} outlived it");
}

#[tokio::test]
async fn init_failure_is_reported_with_the_exception() {
    let fixture = Fixture::standard();
    let spec = fixture.python_spec(json!({"init_fails": true}));

    let error = Worker::start(spec, Logs::default().sink(), &Recorder::default()).await.err().unwrap();

    assert!(
        matches!(error, WorkerError::InitFailed(ref text) if text == "RuntimeError: no browser available"),
        "{error}"
    );
}

#[tokio::test]
async fn a_worker_that_exits_before_connecting_reports_its_status_and_stderr() {
    let fixture = Fixture::new();
    let command = ["python3", "-c", "import sys; print('missing dependency foo', file=sys.stderr); sys.exit(4)"];
    let spec = fixture.spec_in(&fixture.project(), command.map(String::from).to_vec(), json!({}));

    let error = Worker::start(spec, Logs::default().sink(), &Recorder::default()).await.err().unwrap();

    let text = error.to_string();
    assert!(matches!(error, WorkerError::Exited { status, .. } if status.code == Some(4)), "{text}");
    assert!(text.contains("exited with code 4 before it connected; last stderr: missing dependency foo"), "{text}");
}

#[tokio::test]
async fn a_worker_of_another_protocol_version_is_refused_clearly() {
    let fixture = Fixture::new().file("hello_v99.py", include_str!("fixtures/hello_v99.py"));
    let command = ["python3", "hello_v99.py"].map(String::from).to_vec();
    let spec = fixture.spec_in(&fixture.project(), command, json!({}));

    let error = Worker::start(spec, Logs::default().sink(), &Recorder::default()).await.err().unwrap();

    assert!(matches!(error, WorkerError::VersionMismatch { worker_protocol: 99, agent_protocol: 1, .. }), "{error}");
    let text = error.to_string();
    assert!(text.contains("speaks protocol 1") && text.contains("(future-worker/9.0) speaks protocol 99"), "{text}");
}

/// Starts `python3 -m armada_worker` on the fixture with the test as its agent: returns the
/// helper and its connection, on which the test speaks the agent's side itself.
async fn helper_with_a_test_agent(fixture: &Fixture) -> (ChildProcess, UnixStream) {
    let socket_path = fixture.project().join("agent.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let helper = ChildSpec::new("python3", fixture.project())
        .args(["-m", "armada_worker"])
        .env("PYTHONPATH", fixture.project().parent().unwrap().join("helper"))
        .env("ARMADA_WORKER_SOCKET", &socket_path)
        .spawn()
        .unwrap();
    let (stream, _) = tokio::time::timeout(JOB_TIMEOUT, listener.accept()).await.unwrap().unwrap();
    (helper, stream)
}

#[tokio::test]
async fn the_python_helper_refuses_an_agent_of_another_protocol_version() {
    let fixture = Fixture::standard();
    let (mut helper, mut stream) = helper_with_a_test_agent(&fixture).await;
    stream.write_all(b"{\"type\":\"hello\",\"protocol\":2,\"agent\":\"armada/9.9.9\"}\n").await.unwrap();
    let mut worker_hello = String::new();
    BufReader::new(&mut stream).read_line(&mut worker_hello).await.unwrap();

    let status = tokio::time::timeout(JOB_TIMEOUT, helper.wait()).await.unwrap().unwrap();

    assert!(worker_hello.contains("\"protocol\":1"), "{worker_hello}");
    assert_eq!(status.code, Some(2));
    let mut stderr = String::new();
    helper.take_stderr().unwrap().read_to_string(&mut stderr).await.unwrap();
    assert!(stderr.contains("the agent (armada/9.9.9) speaks protocol 2"), "{stderr}");
    assert!(stderr.contains("speaks protocol 1"), "{stderr}");
}

#[tokio::test]
async fn the_python_helper_tears_down_and_exits_when_the_agent_goes_away() {
    let fixture = Fixture::new().file("ctx_script.py", "async def ctx_script(job_ctx, agent_ctx):\n    pass\n").file(
        "ctx_agent_context.py",
        "class AgentContext:\n    async def __aenter__(self):\n        return self\n    \
         async def __aexit__(self, *exc):\n        open('teardown.log', 'w').write('aexit')\n",
    );
    let (mut helper, stream) = helper_with_a_test_agent(&fixture).await;
    let (read_half, mut write_half) = stream.into_split();
    let init = json!({"type": "init", "agent_message": {}, "context": super::context()});
    write_half
        .write_all(format!("{{\"type\":\"hello\",\"protocol\":1,\"agent\":\"test\"}}\n{init}\n").as_bytes())
        .await
        .unwrap();
    let mut lines = BufReader::new(read_half).lines();
    let mut received = Vec::new();
    while let Some(line) = tokio::time::timeout(JOB_TIMEOUT, lines.next_line()).await.unwrap().unwrap() {
        let done = line.contains("ready");
        received.push(line);
        if done {
            break;
        }
    }
    assert!(received.last().is_some_and(|line| line == r#"{"type":"ready"}"#), "{received:?}");

    drop((lines, write_half)); // the agent is gone

    let status = tokio::time::timeout(JOB_TIMEOUT, helper.wait()).await.unwrap().unwrap();
    assert_eq!(status.code, Some(1));
    assert_eq!(fixture.read("teardown.log").as_deref(), Some("aexit"));
}

#[tokio::test]
async fn a_workdir_too_long_for_a_socket_path_still_works() {
    let fixture = Fixture::standard();
    let deep = fixture.project().join("a-folder-name-that-makes-the-path-long/".repeat(3));
    std::fs::create_dir_all(&deep).unwrap();
    for file in ["ctx_agent_context.py", "ctx_job_context.py", "ctx_script.py"] {
        std::fs::copy(fixture.project().join(file), deep.join(file)).unwrap();
    }
    let spec =
        fixture.spec_in(&deep, armada::agent::worker::DEFAULT_WORKER_COMMAND.map(String::from).to_vec(), json!({}));
    let calls = Recorder::default();

    let mut worker = Worker::start(spec, Logs::default().sink(), &calls).await.unwrap();
    let outcome = worker.run_job(job(json!({"n": 1})), JOB_TIMEOUT, &calls).await;

    assert_eq!(outcome, JobOutcome::Done { status: FinalStatus::Success, error: None });
}

#[tokio::test]
async fn a_worker_breaking_the_protocol_mid_job_is_a_protocol_error_and_is_killed() {
    let fixture = Fixture::new().file("breaks_protocol.py", include_str!("fixtures/breaks_protocol.py"));
    let command = ["python3", "breaks_protocol.py"].map(String::from).to_vec();
    let calls = Recorder::default();
    let mut worker =
        Worker::start(fixture.spec_in(&fixture.project(), command, json!({})), Logs::default().sink(), &calls)
            .await
            .unwrap();
    let pid = worker.pid();

    let outcome = worker.run_job(job(json!({})), JOB_TIMEOUT, &calls).await;

    let JobOutcome::ProtocolError { message } = &outcome else { panic!("{outcome:?}") };
    assert!(message.contains("not a protocol message") && message.contains("Traceback"), "{message}");
    assert!(eventually(|| !exists(pid)).await, "the worker {pid} was not killed");
}

#[tokio::test]
async fn a_worker_that_does_not_exit_after_shutdown_is_killed_after_the_grace() {
    let fixture = Fixture::new().file("ctx_script.py", "async def ctx_script(job_ctx, agent_ctx):\n    pass\n").file(
        "ctx_agent_context.py",
        "import asyncio\nclass AgentContext:\n    async def __aenter__(self):\n        return self\n    \
         async def __aexit__(self, *exc):\n        await asyncio.sleep(600)\n",
    );
    let (worker, calls, _) = fixture.start(json!({})).await;
    let pid = worker.pid();

    let error = worker.shutdown(Duration::from_secs(2), &calls).await.unwrap_err();

    assert!(matches!(error, WorkerError::ShutdownTimedOut { .. }), "{error}");
    assert_eq!(error.to_string(), "worker did not exit within 2 s of shutdown and was killed");
    assert!(eventually(|| !exists(pid)).await, "the worker {pid} outlived its shutdown");
}
