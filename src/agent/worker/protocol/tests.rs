use serde_json::json;

use super::*;

#[test]
fn agent_messages_have_the_documented_shape() {
    let run_id = Uuid::nil();
    let job_uuid = Uuid::from_u128(7);
    let cases = [
        (
            ToWorker::Hello { protocol: 1, agent: "armada/0.1.0".into() },
            json!({"type": "hello", "protocol": 1, "agent": "armada/0.1.0"}),
        ),
        (
            ToWorker::Init {
                agent_message: json!({"code": "x"}),
                context: InitContext {
                    run_id,
                    pod_index: 2,
                    proxy_url: Some("http://127.0.0.1:8081".into()),
                    fingerprint: None,
                },
            },
            json!({"type": "init", "agent_message": {"code": "x"}, "context": {"run_id": run_id, "pod_index": 2, "proxy_url": "http://127.0.0.1:8081", "fingerprint": null}}),
        ),
        (
            ToWorker::Job(JobRequest { job_uuid, attempt: 1, job_message: json!({"n": 1}) }),
            json!({"type": "job", "job_uuid": job_uuid, "attempt": 1, "job_message": {"n": 1}}),
        ),
        (
            ToWorker::Reply(Reply::new(3, Ok(json!({"stored": true})))),
            json!({"type": "reply", "id": 3, "ok": true, "result": {"stored": true}}),
        ),
        (
            ToWorker::Reply(Reply::new(4, Ok(Value::Null))),
            json!({"type": "reply", "id": 4, "ok": true, "result": null}),
        ),
        (
            ToWorker::Reply(Reply::new(5, Err("nope".into()))),
            json!({"type": "reply", "id": 5, "ok": false, "error": "nope"}),
        ),
        (ToWorker::Shutdown, json!({"type": "shutdown"})),
    ];
    for (message, expected) in cases {
        let line = encode(&message);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(serde_json::from_slice::<Value>(&line).unwrap(), expected);
        assert_eq!(serde_json::from_value::<ToWorker>(expected).unwrap(), message);
    }
}

#[test]
fn worker_messages_parse_from_the_documented_shape() {
    let job_uuid = Uuid::from_u128(9);
    let parse = |value: Value| serde_json::from_value::<FromWorker>(value).unwrap();
    assert_eq!(parse(json!({"type": "ready"})), FromWorker::Ready);
    assert_eq!(
        parse(json!({"type": "init_failed", "error": "no browser"})),
        FromWorker::InitFailed { error: "no browser".into() }
    );
    assert_eq!(
        parse(json!({"type": "call", "id": 1, "method": "event", "params": {"content": "hi", "status": "Running"}})),
        FromWorker::Call { id: 1, method: "event".into(), params: json!({"content": "hi", "status": "Running"}) }
    );
    assert_eq!(
        parse(json!({"type": "done", "job_uuid": job_uuid, "status": "Failed", "error": "ValueError: boom"})),
        FromWorker::Done { job_uuid, status: FinalStatus::Failed, error: Some("ValueError: boom".into()) }
    );
    assert_eq!(
        parse(json!({"type": "done", "job_uuid": job_uuid, "status": "Success"})),
        FromWorker::Done { job_uuid, status: FinalStatus::Success, error: None }
    );
    assert!(
        serde_json::from_value::<FromWorker>(json!({"type": "done", "job_uuid": job_uuid, "status": "Done"})).is_err()
    );
    assert!(serde_json::from_value::<FromWorker>(json!({"type": "dance"})).is_err());
}

#[test]
fn hello_is_read_leniently_so_any_version_is_recognised() {
    assert_eq!(parse_hello(br#"{"type":"hello","protocol":1,"worker":"w/1"}"#), Ok((1, "w/1".into())));
    assert_eq!(parse_hello(br#"{"type":"hello","protocol":7,"worker":"w/7","features":["x"]}"#), Ok((7, "w/7".into())));
    assert!(parse_hello(br#"{"type":"ready"}"#).unwrap_err().contains("expected a hello"));
    assert!(parse_hello(b"Traceback (most recent call last):").unwrap_err().starts_with("not JSON"));
}

#[test]
fn calls_resolve_the_current_job_and_refuse_what_is_wrong() {
    let current = Uuid::from_u128(1);
    let other = Uuid::from_u128(2);
    assert_eq!(
        WorkerCall::parse("event", &json!({"content": "step", "status": "Running"}), Some(current)),
        Ok(WorkerCall::Event {
            job_uuid: current,
            content: "step".into(),
            status: CallStatus::Running,
            final_status: false
        })
    );
    assert_eq!(
        WorkerCall::parse(
            "event",
            &json!({"content": "ok", "status": "Success", "final": true, "job_uuid": other}),
            Some(current)
        ),
        Ok(WorkerCall::Event {
            job_uuid: other,
            content: "ok".into(),
            status: CallStatus::Success,
            final_status: true
        })
    );
    assert_eq!(
        WorkerCall::parse("job_status", &json!({"status": "Failed"}), Some(current)),
        Ok(WorkerCall::JobStatus { job_uuid: current, status: CallStatus::Failed })
    );
    assert_eq!(
        WorkerCall::parse("create_job", &json!({"job_uuid": other}), None),
        Ok(WorkerCall::CreateJob { job_uuid: other })
    );
    let output = WorkerCall::parse("output", &json!({"data": {"k": 1}}), None).unwrap();
    assert_eq!(output.job_uuid(), None);
    assert_eq!(
        WorkerCall::parse("switch_proxy", &Value::Null, None),
        Ok(WorkerCall::Network(NetworkCall::SwitchProxy))
    );
    let fingerprint =
        WorkerCall::parse("fingerprint", &json!({"additional_data": {"desired_ua": "UA"}}), Some(current)).unwrap();
    let desired = json!({"desired_ua": "UA"}).as_object().cloned().unwrap();
    assert_eq!(
        fingerprint,
        WorkerCall::Network(NetworkCall::Fingerprint { config: None, additional_data: Some(desired) })
    );
    assert_eq!(fingerprint.job_uuid(), None, "network calls are about the agent, not a job");

    let error = |method: &str, params: Value, job: Option<Uuid>| WorkerCall::parse(method, &params, job).unwrap_err();
    assert!(error("event", json!({"content": "x", "status": "Running"}), None).contains("no job is running"));
    assert!(
        error("event", json!({"content": "x", "status": "Running", "final": true}), Some(current)).contains("final")
    );
    assert!(
        error("event", json!({"content": "x", "status": "Done"}), Some(current)).starts_with("bad params for `event`")
    );
    assert!(error("output", json!({"data": [1, 2]}), Some(current)).starts_with("bad params for `output`"));
    assert!(error("switch_proxy", json!({"to": "x"}), None).starts_with("bad params for `switch_proxy`"));
    assert!(error("fingerprint", json!({"additional_data": "ua"}), None).starts_with("bad params for `fingerprint`"));
    assert!(error("launch_rockets", json!({}), Some(current)).starts_with("unknown method `launch_rockets`"));
}

#[tokio::test]
async fn frames_are_split_on_newlines_and_capped() {
    let (mut writer, reader) = tokio::io::duplex(64);
    let mut frames = FrameReader::new(reader, 10);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        writer.write_all(b"one\ntw").await.unwrap();
        writer.write_all(b"o\n\nlast").await.unwrap();
    });
    assert_eq!(frames.next_line().await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(frames.next_line().await.unwrap(), Some(b"two".to_vec()));
    assert_eq!(frames.next_line().await.unwrap(), Some(Vec::new()));
    assert_eq!(frames.next_line().await.unwrap(), Some(b"last".to_vec()));
    assert_eq!(frames.next_line().await.unwrap(), None);

    let (mut writer, reader) = tokio::io::duplex(64);
    let mut frames = FrameReader::new(reader, 10);
    tokio::io::AsyncWriteExt::write_all(&mut writer, b"0123456789abc\n").await.unwrap();
    let err = frames.next_line().await.unwrap_err();
    assert_eq!(err.to_string(), "a line longer than 10 bytes (the protocol's limit)");
}
