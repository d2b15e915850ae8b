//! The live stream `WS /ws/events`: message types, aliases, and that no client can slow the
//! writers down (a stalled client is dropped, the others get everything in order).

use std::collections::HashMap;
use std::time::Duration;

use armada::roles::Role;
use futures::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::support::{TestApp, eventually, metric_sum};

/// The next JSON text message (pings and pongs skipped); panics after 10 s.
pub async fn next_message<S>(socket: &mut S) -> Value
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let frame = timeout(Duration::from_secs(10), socket.next()).await.expect("a message within 10 s");
        match frame.expect("stream open").expect("frame") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON message"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_mutation_is_streamed_with_its_type_and_replays_are_not() {
    let app = TestApp::backend().await;
    let (mut socket, _) = tokio_tungstenite::connect_async(&app.ws_url).await.expect("connect");
    let run = Uuid::new_v4();
    let (_, stored_run) = app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "new_run", "data": stored_run}));

    let (_, job) = app.post("/api/jobs", &json!({"run_uuid": run, "job_datetime": "2026-02-24T10:30:01"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "new_job", "data": job}));
    let event_body =
        json!({"event_content": "hi", "job_uuid": job["job_uuid"], "event_datetime": "2026-02-24T10:30:02"});
    let (_, event) = app.post("/api/events", &event_body).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "new_event", "data": event}));

    app.patch("/api/jobs/status", &json!({"job_uuid": job["job_uuid"], "job_status": "Success"})).await;
    let message = next_message(&mut socket).await;
    assert_eq!(message["type"], "update_job_status");
    assert_eq!(
        message["data"],
        app.get(&format!("/api/jobs/{}", job["job_uuid"].as_str().unwrap_or_default())).await.1
    );

    app.patch("/api/events/status", &json!({"event_uuid": event["event_uuid"], "event_status": "Failed"})).await;
    let message = next_message(&mut socket).await;
    assert_eq!(
        (message["type"].clone(), message["data"]["event_status"].clone()),
        (json!("update_event_status"), json!("Failed"))
    );
    assert_eq!(message["data"]["event_uuid"], event["event_uuid"]);

    let (_, output) = app.post("/api/outputs", &json!({"run_uuid": run, "data": {"k": 1}})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "new_output", "data": output}));

    let batch = json!([{"op": "update_run", "run_uuid": run, "run_status": "cancelled", "run_detail": "by test"}]);
    app.post("/api/records", &batch).await;
    let message = next_message(&mut socket).await;
    assert_eq!(message["type"], "update_run_status");
    assert_eq!(
        (message["data"]["run_status"].clone(), message["data"]["run_detail"].clone()),
        (json!("cancelled"), json!("by test"))
    );

    // Replays and no-op updates store nothing new, so nothing is streamed: the next message
    // is the deletion.
    app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    app.post(
        "/api/events",
        &json!({"event_content": "hi", "job_uuid": job["job_uuid"], "event_datetime": "2026-02-24",
                                    "event_uuid": event["event_uuid"]}),
    )
    .await;
    app.patch("/api/jobs/status", &json!({"job_uuid": job["job_uuid"], "job_status": "Success"})).await;
    assert_eq!(app.delete(&format!("/api/runs/{run}")).await.0, StatusCode::OK);
    assert_eq!(next_message(&mut socket).await, json!({"type": "delete_run", "data": {"run_uuid": run}}));
}

#[tokio::test]
async fn the_stream_answers_at_the_original_paths() {
    let app = TestApp::backend().await;
    let mut sockets = Vec::new();
    for path in ["/ws/events", "/ws/events/", "/tracking/ws/events/"] {
        let (socket, response) = tokio_tungstenite::connect_async(app.ws(path)).await.expect(path);
        assert_eq!(response.status().as_u16(), 101, "{path}");
        sockets.push(socket);
    }
    assert!(eventually(Duration::from_secs(5), async || app.state.records.hub().clients() == 3).await);
    let run = Uuid::new_v4();
    app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24"})).await;
    for socket in &mut sockets {
        assert_eq!(next_message(socket).await["data"]["run_uuid"], json!(run));
    }
    let plain = app.client.get(app.url("/ws/events")).send().await.expect("plain GET");
    assert!(plain.status().is_client_error(), "a plain GET is refused");
    let body: Value = plain.json().await.expect("json");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("WebSocket")), "{body}");
}

#[tokio::test]
async fn a_client_that_answers_nothing_is_dropped_after_two_heartbeats() {
    let app = TestApp::builder().roles([Role::Backend]).ws_heartbeat(Duration::from_millis(200)).spawn().await;
    let before = metric_sum(&app.metrics().await, "armada_ws_clients_dropped_total");
    let (mut silent, _) = tokio_tungstenite::connect_async(&app.ws_url).await.expect("connect");
    let (mut lively, _) = tokio_tungstenite::connect_async(&app.ws_url).await.expect("connect");
    // `lively` reads (and so answers pings) throughout; `silent` reads nothing for a while.
    let reader = tokio::spawn(async move {
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1500) {
            if let Ok(Some(Err(_)) | None) = timeout(Duration::from_millis(100), lively.next()).await {
                return false;
            }
        }
        true
    });
    assert!(eventually(Duration::from_secs(5), async || app.state.records.hub().clients() == 1).await);
    assert!(reader.await.expect("reader"), "the client that answers stays connected");
    let mut close_reason = None;
    while let Ok(Some(Ok(frame))) = timeout(Duration::from_secs(5), silent.next()).await {
        if let Message::Close(Some(frame)) = frame {
            close_reason = Some(frame.reason.to_string());
        }
    }
    assert!(close_reason.as_deref().is_some_and(|r| r.contains("silent")), "{close_reason:?}");
    let after = metric_sum(&app.metrics().await, "armada_ws_clients_dropped_total");
    assert!(after > before, "dropped clients counted: {before} → {after}");
}

/// A WebSocket client with a 4 KiB receive buffer that never reads.
async fn stalled_client(app: &TestApp) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small receive buffer");
    let stream = socket.connect(app.addr).await.expect("connect");
    let (socket, _) = tokio_tungstenite::client_async(app.ws_url.as_str(), stream).await.expect("handshake");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_dropped_while_writers_and_readers_carry_on() {
    const READERS: usize = 19;
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 250;
    const TOTAL: usize = WRITERS * PER_WRITER;
    let app =
        TestApp::builder().roles([Role::Backend]).ws_queue(512).ws_heartbeat(Duration::from_secs(2)).spawn().await;
    let run = Uuid::new_v4();
    app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24"})).await;
    let (_, job) = app.post("/api/jobs", &json!({"run_uuid": run, "job_datetime": "2026-02-24"})).await;
    let job = job["job_uuid"].clone();
    let dropped_before = metric_sum(&app.metrics().await, "armada_ws_clients_dropped_total");

    let stalled = stalled_client(&app).await;
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let (mut socket, _) = tokio_tungstenite::connect_async(&app.ws_url).await.expect("connect");
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(TOTAL);
            while seen.len() < TOTAL {
                let message = next_message(&mut socket).await;
                if message["type"] == "new_event" {
                    let content = message["data"]["event_content"].as_str().unwrap_or_default();
                    seen.push(content.split(':').take(2).collect::<Vec<_>>().join(":"));
                }
            }
            (seen, socket)
        }));
    }
    assert!(eventually(Duration::from_secs(10), async || app.state.records.hub().clients() == READERS + 1).await);

    // A few KiB per event, so the stalled client's buffers fill after a handful of messages.
    let padding = "x".repeat(3000);
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (client, url, job, padding) = (app.client.clone(), app.url("/api/events"), job.clone(), padding.clone());
        writers.push(tokio::spawn(async move {
            for seq in 0..PER_WRITER {
                let body = json!({"event_content": format!("{writer}:{seq:04}:{padding}"), "job_uuid": job,
                                  "event_datetime": "2026-02-24T10:30:00"});
                let response = client.post(&url).json(&body).send().await.expect("write");
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        }));
    }
    for writer in writers {
        timeout(Duration::from_secs(60), writer).await.expect("writes finish").expect("writer");
    }
    let write_time = started.elapsed();
    assert!(write_time < Duration::from_secs(30), "{TOTAL} writes took {write_time:?}");

    let mut orders = Vec::new();
    let mut open_sockets = Vec::new();
    for reader in readers {
        let (order, socket) = timeout(Duration::from_secs(30), reader).await.expect("reader done").expect("reader");
        orders.push(order);
        open_sockets.push(socket);
    }
    for order in &orders {
        assert_eq!(order.len(), TOTAL);
        assert_eq!(order, &orders[0], "every reader sees the same order (the commit order)");
    }
    let mut last_seq: HashMap<&str, i64> = HashMap::new();
    for key in &orders[0] {
        let (writer, seq) = key.split_once(':').expect("writer:seq");
        let seq: i64 = seq.parse().expect("seq");
        let previous = last_seq.insert(writer, seq).unwrap_or(-1);
        assert_eq!(seq, previous + 1, "writer {writer}'s events arrive in the order written, none missing");
    }

    assert!(
        eventually(Duration::from_secs(15), async || app.state.records.hub().clients() == READERS).await,
        "the stalled client is disconnected (clients now {})",
        app.state.records.hub().clients()
    );
    let dropped_after = metric_sum(&app.metrics().await, "armada_ws_clients_dropped_total");
    assert!(dropped_after > dropped_before, "dropped clients counted: {dropped_before} → {dropped_after}");
    drop((stalled, open_sockets));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_benchmark_runs_and_reports() {
    use armada::roles::backend::bench::{IngestOptions, bench_ingest};
    let options = IngestOptions {
        duration: Duration::from_secs(1),
        connections: 4,
        ws_readers: 3,
        ws_stalled: 1,
        content_bytes: 64,
    };
    let report = bench_ingest(options).await.expect("benchmark");
    assert!(report.requests > 0 && report.errors == 0, "{report}");
    assert!(report.p50 <= report.p99 && report.p99 <= report.max, "{report}");
    assert!(report.ws_messages_received >= report.requests, "readers got the events: {report}");
}
