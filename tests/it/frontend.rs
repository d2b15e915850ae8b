//! The frontend role: the dashboard's files, and forwarding to the backend and orchestrator
//! when they run elsewhere (HTTP streamed both ways, the WebSocket bridged, the token passed
//! on, 502/504/503 naming the target). Targets are a real backend `TestApp` and a stand-in
//! that records exactly what reached it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use armada::roles::Role;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

use crate::support::{TestApp, eventually};
use crate::ws::next_message;

/// What one request looked like when it reached the stand-in.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path_and_query: String,
    forwarded_host: Option<String>,
    body_len: u64,
    body_sha256: String,
}

#[derive(Clone, Default)]
struct StandInState {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Body bytes received so far, across requests.
    received: Arc<AtomicU64>,
    /// Lets `/…/stream` send its second chunk.
    release: Arc<Notify>,
}

/// A target role stand-in on loopback: answers every request with what it saw (JSON), the
/// status asked by `?status=`, a `x-stand-in` header; `/…/stream` answers in two chunks, the
/// second only once released; `/ws/echo` echoes WebSocket frames.
struct StandIn {
    url: String,
    state: StandInState,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    async fn start() -> Self {
        let state = StandInState::default();
        let app = Router::new().route("/ws/echo", get(ws_echo)).fallback(record).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, state, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("lock").clone()
    }

    fn last(&self) -> Seen {
        self.seen().last().cloned().expect("the stand-in saw a request")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(State(state): State<StandInState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let mut hasher = Sha256::new();
    let mut body_len = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body_len += chunk.len() as u64;
        state.received.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        hasher.update(&chunk);
    }
    let seen = Seen {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().map(|pq| pq.to_string()).unwrap_or_default(),
        forwarded_host: header("x-forwarded-host"),
        body_len,
        body_sha256: hex::encode(hasher.finalize()),
    };
    state.seen.lock().expect("lock").push(seen.clone());
    if parts.uri.path().ends_with("/stream") {
        let release = state.release.clone();
        let chunks = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from_static(b"first;")) }).chain(
            futures::stream::once(async move {
                release.notified().await;
                Ok(Bytes::from_static(b"second"))
            }),
        );
        return Response::new(Body::from_stream(chunks));
    }
    let status = parts
        .uri
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("status=")))
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
        .unwrap_or(axum::http::StatusCode::OK);
    let body = json!({"method": seen.method, "path": seen.path_and_query, "body_len": seen.body_len});
    (status, [("x-stand-in", "yes")], axum::Json(body)).into_response()
}

async fn ws_echo(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(|mut socket| async move {
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                AxumMessage::Text(text) => AxumMessage::Text(format!("echo: {}", text.as_str()).into()),
                AxumMessage::Binary(bytes) => AxumMessage::Binary(bytes),
                AxumMessage::Close(_) => break,
                _ => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

/// A frontend alone, forwarding to these URLs.
async fn frontend(backend_url: &str, orchestrator_url: &str) -> TestApp {
    TestApp::builder()
        .roles([Role::Frontend])
        .var("BACKEND_URL", backend_url)
        .var("ORCHESTRATOR_URL", orchestrator_url)
        .var("ARMADA_FORWARD_TIMEOUT_SECS", "1")
        .spawn()
        .await
}

fn detail(body: &Value) -> String {
    body["detail"].as_str().unwrap_or_else(|| panic!("no detail in {body}")).to_string()
}

#[tokio::test]
async fn dashboard_files_are_served_with_their_content_types_and_etags() {
    let app = TestApp::builder().roles([Role::Frontend]).spawn().await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/js/main.js", "text/javascript; charset=utf-8"),
        ("/css/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
        ("/runs/some-run", "text/html; charset=utf-8"),
    ] {
        let response = app.client.get(app.url(path)).send().await.expect("get");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff", "{path}");
        let etag = response.headers()["etag"].clone();
        let again = app.client.get(app.url(path)).header("if-none-match", etag).send().await.expect("get");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path} revalidates");
    }
    let page = app.client.get(app.url("/")).send().await.expect("get");
    assert!(page.headers()["content-security-policy"].to_str().unwrap_or_default().contains("default-src 'self'"));
    assert!(page.text().await.expect("text").contains("<title>Armada</title>"));
    let (status, body) = app.get("/js/missing.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a missing file is not the dashboard page");
    assert!(detail(&body).contains("/js/missing.js"));
    let (status, _) = app.send(app.client.post(app.url("/index.html"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn in_one_process_the_dashboard_does_not_shadow_the_api() {
    let app = TestApp::builder().roles([Role::Backend, Role::Orchestrator, Role::Frontend]).spawn().await;
    let (status, created) = app
        .post("/tracking/api/runs/", &json!({"run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24T10:30:00"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for path in ["/api/runs", "/api/runs/", "/tracking/api/runs/"] {
        let (status, page) = app.get(path).await;
        assert_eq!((status, page["runs"][0].clone()), (StatusCode::OK, created.clone()), "{path}");
    }
    for path in ["/api/nothing-here", "/api/runs/not-a-uuid/whatever", "/tracking/nothing"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(detail(&body).starts_with("no route for GET"), "{path}: {body}");
    }
    let (status, _) = app.get("/bot/start").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "the orchestrator's route answers, not the dashboard");
    let (status, _) = app.send(app.client.patch(app.url("/api/runs"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "the backend's route answers, not the dashboard");
    let page = app.client.get(app.url("/")).send().await.expect("get");
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let (status, _) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn backend_calls_are_forwarded_with_statuses_and_bodies_passed_through() {
    let backend = TestApp::backend().await;
    let orchestrator = StandIn::start().await;
    let app = frontend(&backend.base_url, &orchestrator.url).await;
    let run = Uuid::new_v4();
    let (status, created) =
        app.post("/tracking/api/runs/", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["run_uuid"], json!(run));
    let (status, replay) =
        app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!((status, replay), (StatusCode::OK, created.clone()), "a replay's 200");
    for path in ["/api/runs", "/tracking/api/runs/?page=1&page_size=5"] {
        let (status, page) = app.get(path).await;
        assert_eq!((status, page["total"].clone()), (StatusCode::OK, json!(1)), "{path}");
    }
    assert_eq!(app.get(&format!("/api/runs/{run}")).await, backend.get(&format!("/api/runs/{run}")).await);
    let missing = Uuid::new_v4();
    let (status, body) = app.get(&format!("/tracking/api/runs/{missing}/")).await;
    assert_eq!((status, detail(&body)), (StatusCode::NOT_FOUND, format!("run {missing} not found")));
    let (status, body) = app.get("/api/runs?page=0").await;
    assert_eq!((status, detail(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "page must be 1 or more, got 0".into()));
    let (status, body) = app.delete(&format!("/api/runs/{run}")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));
    assert!(orchestrator.seen().is_empty(), "nothing went to the orchestrator");
}

#[tokio::test]
async fn each_path_reaches_its_target_with_the_prefix_stripped() {
    let backend = StandIn::start().await;
    let orchestrator = StandIn::start().await;
    let app = frontend(&backend.url, &orchestrator.url).await;
    for (method, sent, target, expected) in [
        ("GET", "/tracking/api/runs/?page=2&page_size=5", &backend, "/api/runs?page=2&page_size=5"),
        ("GET", "/api/runs", &backend, "/api/runs"),
        ("GET", "/tracking/api/jobs/?run_uuid=", &backend, "/api/jobs?run_uuid="),
        ("POST", "/api/records", &backend, "/api/records"),
        ("GET", "/tracking/ws/events/", &backend, "/ws/events"),
        ("GET", "/tracking/other", &backend, "/other"),
        ("POST", "/api/bot/start", &orchestrator, "/bot/start"),
        ("POST", "/api/bot/runs/abc/cancel", &orchestrator, "/bot/runs/abc/cancel"),
        ("GET", "/bot/runs/abc", &orchestrator, "/bot/runs/abc"),
        ("GET", "/api/elsewhere?x=1", &orchestrator, "/elsewhere?x=1"),
    ] {
        let before = target.seen().len();
        let request = app.client.request(method.parse().expect("method"), app.url(sent));
        let response = request.send().await.expect("forwarded");
        assert_eq!(response.status(), StatusCode::OK, "{sent}");
        assert_eq!(response.headers()["x-stand-in"], "yes", "{sent}: the target's headers come back");
        assert_eq!(target.seen().len(), before + 1, "{sent} reached its target");
        let seen = target.last();
        assert_eq!((seen.method.as_str(), seen.path_and_query.as_str()), (method, expected), "{sent}");
        assert_eq!(seen.forwarded_host.as_deref(), Some(app.addr.to_string().as_str()), "{sent}");
    }
    let response = app.client.get(app.url("/api/runs?status=418")).send().await.expect("forwarded");
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT, "any status passes through");
    assert_eq!(response.json::<Value>().await.expect("json")["path"], "/api/runs?status=418");
}

#[tokio::test]
async fn a_large_upload_is_streamed_to_the_target_not_buffered() {
    let orchestrator = StandIn::start().await;
    let app = frontend("http://127.0.0.1:9", &orchestrator.url).await;
    const CHUNK: usize = 1 << 20;
    const CHUNKS: usize = 24;
    let received = orchestrator.state.received.clone();
    let mut expected = Sha256::new();
    let chunks: Vec<Bytes> = (0..CHUNKS).map(|i| Bytes::from(vec![i as u8; CHUNK])).collect();
    for chunk in &chunks {
        expected.update(chunk);
    }
    // The rest is sent only once the target has the first megabyte: a frontend that buffered
    // the upload before forwarding would wait forever here.
    let first = chunks[0].clone();
    let rest = chunks[1..].to_vec();
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(
        futures::stream::once(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while received.load(Ordering::SeqCst) < CHUNK as u64 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if received.load(Ordering::SeqCst) >= CHUNK as u64 {
                Ok(Bytes::new())
            } else {
                Err(std::io::Error::other("the first chunk never reached the target: the upload was buffered"))
            }
        })
        .chain(futures::stream::iter(rest.into_iter().map(Ok))),
    );
    let response = app
        .client
        .post(app.url("/api/bot/start"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload forwarded");
    assert_eq!(response.status(), StatusCode::OK);
    let seen = orchestrator.last();
    assert_eq!((seen.path_and_query.as_str(), seen.body_len), ("/bot/start", (CHUNK * CHUNKS) as u64));
    assert_eq!(seen.body_sha256, hex::encode(expected.finalize()), "the bytes arrive intact");
}

#[tokio::test]
async fn a_response_is_streamed_back_as_the_target_sends_it() {
    let backend = StandIn::start().await;
    let app = frontend(&backend.url, "http://127.0.0.1:9").await;
    let response = app.client.get(app.url("/api/outputs/stream")).send().await.expect("forwarded");
    let mut body = response.bytes_stream();
    let first = tokio::time::timeout(Duration::from_secs(5), body.next()).await;
    let first = first.expect("the first chunk arrives before the response ends").expect("chunk").expect("bytes");
    assert_eq!(&first[..], b"first;");
    backend.state.release.notify_one();
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(rest, b"second");
}

#[tokio::test]
async fn the_live_stream_is_bridged_from_the_backend() {
    let backend = TestApp::backend().await;
    let app = frontend(&backend.base_url, "http://127.0.0.1:9").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws("/tracking/ws/events/")).await.expect("bridged");
    assert!(
        eventually(Duration::from_secs(5), async || backend.state.records.hub().clients() == 1).await,
        "the bridge holds one client on the backend"
    );
    let (_, run) = app.post("/api/runs", &json!({"run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "new_run", "data": run}));
    socket.close(None).await.expect("close");
    assert!(
        eventually(Duration::from_secs(5), async || backend.state.records.hub().clients() == 0).await,
        "closing the browser's side closes the backend's"
    );
}

#[tokio::test]
async fn websocket_frames_cross_the_bridge_both_ways() {
    let backend = StandIn::start().await;
    let app = frontend(&backend.url, "http://127.0.0.1:9").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws("/ws/echo")).await.expect("bridged");
    socket.send(Message::Text("hello".into())).await.expect("send");
    assert_eq!(next_frame(&mut socket).await, Message::Text("echo: hello".into()));
    socket.send(Message::Binary(Bytes::from_static(&[1, 2, 3]))).await.expect("send");
    assert_eq!(next_frame(&mut socket).await, Message::Binary(Bytes::from_static(&[1, 2, 3])));
    socket.send(Message::Close(None)).await.expect("close");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("the close comes back");
        match frame {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(other)) => assert!(matches!(other, Message::Ping(_) | Message::Pong(_)), "{other:?}"),
        }
    }
}

async fn next_frame<S>(socket: &mut S) -> Message
where
    S: futures::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.expect("a frame");
        match frame.expect("open").expect("frame") {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn the_token_travels_to_the_target_over_http_and_websocket() {
    let backend = TestApp::builder().roles([Role::Backend]).token(Some("t0ken")).spawn().await;
    let app = frontend(&backend.base_url, "http://127.0.0.1:9").await;
    let (status, body) = app.get("/tracking/api/runs/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the backend's refusal passes through: {body}");
    assert!(detail(&body).contains("token"));
    let response = app.client.get(app.url("/api/runs")).bearer_auth("t0ken").send().await.expect("get");
    assert_eq!(response.status(), StatusCode::OK);

    match tokio_tungstenite::connect_async(app.ws("/ws/events")).await {
        Err(tungstenite::Error::Http(refused)) => assert_eq!(refused.status().as_u16(), 401),
        other => panic!("a WebSocket without the token is refused with 401, got {other:?}"),
    }
    let (mut socket, _) =
        tokio_tungstenite::connect_async(app.ws("/tracking/ws/events/?token=t0ken")).await.expect("with ?token=");
    let create = json!({"run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24"});
    let created = app.client.post(app.url("/api/runs")).bearer_auth("t0ken").json(&create).send().await.expect("post");
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(next_message(&mut socket).await["type"], "new_run");

    let mut request = tungstenite::client::IntoClientRequest::into_client_request(app.ws("/ws/events")).expect("req");
    request.headers_mut().insert("authorization", "Bearer t0ken".parse().expect("header"));
    tokio_tungstenite::connect_async(request).await.expect("with Authorization");
}

#[tokio::test]
async fn a_dead_target_is_a_502_naming_it() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let app = frontend(&dead, &dead).await;
    let (status, body) = app.get("/tracking/api/runs/").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    let text = detail(&body);
    assert!(text.starts_with(&format!("the backend at {dead} is unreachable (BACKEND_URL)")), "{text}");
    let (status, body) = app.post("/api/bot/start", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(detail(&body).contains("the orchestrator at"), "{body}");
    match tokio_tungstenite::connect_async(app.ws("/ws/events")).await {
        Err(tungstenite::Error::Http(refused)) => assert_eq!(refused.status().as_u16(), 502),
        other => panic!("a WebSocket to a dead backend is a 502, got {other:?}"),
    }
}

#[tokio::test]
async fn a_hung_target_is_a_504_naming_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let hung = format!("http://{}", listener.local_addr().expect("address"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let app = frontend(&hung, &hung).await;
    let started = tokio::time::Instant::now();
    let (status, body) = app.post("/api/bot/start", &json!({})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        detail(&body),
        format!("the orchestrator at {hung} did not answer within 1 s (ARMADA_FORWARD_TIMEOUT_SECS)")
    );
    assert!(started.elapsed() < Duration::from_secs(5), "answered at the timeout");
    holder.abort();
}

#[tokio::test]
async fn a_target_with_no_url_is_a_503_saying_which_variable_to_set() {
    let app = TestApp::builder().roles([Role::Frontend]).spawn().await;
    let (status, body) = app.get("/api/runs").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(detail(&body), "the backend role does not run in this process and BACKEND_URL is not set");
    let (status, body) = app.get("/api/bot/runs/x").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(detail(&body).contains("ORCHESTRATOR_URL"));
}

#[tokio::test]
async fn health_reports_the_roles_it_forwards_to() {
    let backend = TestApp::backend().await;
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let app = frontend(&backend.base_url, &dead).await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{health}");
    let dependency = |name: &str| {
        health["dependencies"].as_array().and_then(|deps| deps.iter().find(|d| d["name"] == name).cloned())
    };
    let backend_dep = dependency("backend").expect("backend listed");
    assert_eq!(
        (backend_dep["status"].as_str(), backend_dep["engine"].as_str()),
        (Some("up"), Some(format!("forwarded to {}", backend.base_url).as_str()))
    );
    assert_eq!(dependency("orchestrator").expect("orchestrator listed")["status"], "down");
    let together = TestApp::builder().roles([Role::Backend, Role::Frontend]).spawn().await;
    let (status, health) = together.get("/health").await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert!(health["dependencies"].as_array().is_some_and(|deps| deps.iter().all(|d| d["name"] != "backend")));
}
