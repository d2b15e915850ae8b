//! What every role's process answers: health, metrics, docs, token, CORS, body cap.

use armada::roles::{self, Role};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::support::TestApp;

#[tokio::test]
async fn health_reports_version_roles_and_the_database() {
    let app = TestApp::builder().roles([Role::Backend, Role::ProxyProvider]).spawn().await;
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let roles = health["roles"].as_array().expect("roles");
    assert_eq!(roles.len(), 2);
    assert_eq!((roles[0]["name"].clone(), roles[0]["state"].clone()), (json!("backend"), json!("serving")));
    assert_eq!(roles[1]["name"], "proxy-provider");
    if roles::is_built(Role::ProxyProvider) {
        assert_eq!(roles[1]["state"], "serving");
    } else {
        assert!(roles[1]["state"].as_str().is_some_and(|s| s.starts_with("not built yet")), "{health}");
    }
    let database = &health["dependencies"][0];
    assert_eq!((database["name"].clone(), database["status"].clone()), (json!("database"), json!("up")));
    assert!(database["engine"].as_str().is_some_and(|e| e.starts_with("sqlite:")), "{health}");
}

#[tokio::test]
async fn metrics_expose_http_and_websocket_series() {
    let app = TestApp::backend().await;
    app.get("/api/runs").await;
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws("/ws/events")).await.expect("connect");
    let response = app.client.get(app.url("/metrics")).send().await.expect("metrics");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/plain")));
    let text = response.text().await.expect("text");
    for name in [
        "armada_http_requests_total",
        "armada_http_request_duration_seconds",
        "armada_ws_clients",
        "armada_ws_clients_dropped_total",
        "armada_ws_messages_dropped_total",
        "armada_ws_messages_sent_total",
    ] {
        assert!(text.lines().any(|l| l.starts_with(name)), "{name} missing from /metrics:\n{text}");
    }
    assert!(text.contains(r#"route="/api/runs""#), "requests are labelled by route template");
    let _ = socket.close(None).await;
    while socket.next().await.is_some() {}
}

#[tokio::test]
async fn docs_page_and_openapi_describe_the_backend() {
    let app = TestApp::backend().await;
    let response = app.client.get(app.url("/docs")).send().await.expect("docs");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/html")));
    let html = response.text().await.expect("html");
    assert!(html.contains("/openapi.json") && !html.contains("cdn"), "self-contained page that loads the spec");
    assert_eq!(app.client.get(app.url("/docs/")).send().await.expect("docs/").status(), StatusCode::OK);

    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = spec["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/runs", "get"),
        ("/api/runs", "post"),
        ("/api/runs/{run_uuid}", "get"),
        ("/api/runs/{run_uuid}", "delete"),
        ("/api/jobs", "get"),
        ("/api/jobs", "post"),
        ("/api/jobs/{job_uuid}", "get"),
        ("/api/jobs/{job_uuid}/logs", "get"),
        ("/api/jobs/status", "patch"),
        ("/api/events", "get"),
        ("/api/events", "post"),
        ("/api/events/status", "patch"),
        ("/api/outputs", "get"),
        ("/api/outputs", "post"),
        ("/api/records", "post"),
        ("/ws/events", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from /openapi.json");
    }
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    for schema in ["Run", "Job", "Event", "Output", "RunsPage", "CreateJob", "RecordOp", "ErrorBody"] {
        assert!(schemas.contains_key(schema), "schema {schema} missing");
    }
}

#[tokio::test]
async fn a_configured_token_guards_the_api_and_the_stream_but_not_probes() {
    let app = TestApp::builder().roles([Role::Backend]).token(Some("s3cret")).spawn().await;
    let runs = app.url("/api/runs/");
    let (status, body) = {
        let response = app.client.get(&runs).send().await.expect("request");
        (response.status(), response.json::<serde_json::Value>().await.expect("json"))
    };
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("token")), "{body}");
    let wrong = app.client.get(&runs).bearer_auth("nope").send().await.expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = app.client.get(&runs).bearer_auth("s3cret").send().await.expect("request");
    assert_eq!(right.status(), StatusCode::OK);
    let tracking = app.client.get(app.url("/tracking/api/runs/")).send().await.expect("request");
    assert_eq!(tracking.status(), StatusCode::UNAUTHORIZED, "the alias is guarded too");
    for open in ["/health", "/docs", "/openapi.json", "/metrics"] {
        let response = app.client.get(app.url(open)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{open} stays open");
    }

    match tokio_tungstenite::connect_async(app.ws("/ws/events/")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401)
        }
        other => panic!("expected a 401 handshake, got {:?}", other.map(|_| ())),
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(app.ws("/ws/events/?token=s3cret")).await.expect("ws");
    let run = Uuid::new_v4();
    app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24"})).await;
    let message = crate::ws::next_message(&mut socket).await;
    assert_eq!((message["type"].clone(), message["data"]["run_uuid"].clone()), (json!("new_run"), json!(run)));
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let app = TestApp::builder().roles([Role::Backend]).cors(["http://dashboard.example"]).spawn().await;
    let ask = |origin: &'static str| app.client.get(app.url("/api/runs")).header("origin", origin).send();
    let allowed = ask("http://dashboard.example").await.expect("request");
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap_or_default()),
        Some("http://dashboard.example")
    );
    let denied = ask("http://evil.example").await.expect("request");
    assert!(denied.headers().get("access-control-allow-origin").is_none());
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/jobs/status"))
        .header("origin", "http://dashboard.example")
        .header("access-control-request-method", "PATCH")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    let methods = preflight.headers().get("access-control-allow-methods").map(|v| v.to_str().unwrap_or_default());
    assert!(methods.is_some_and(|m| m.contains("PATCH")), "{methods:?}");
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused_with_413() {
    let app = TestApp::builder().roles([Role::Backend]).max_body(1024).spawn().await;
    let run = Uuid::new_v4();
    app.post("/api/runs", &json!({"run_uuid": run, "run_datetime": "2026-02-24"})).await;
    let (status, body) = app.post("/api/outputs", &json!({"run_uuid": run, "data": {"blob": "x".repeat(4096)}})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("ARMADA_MAX_BODY_BYTES")), "{body}");
    let (status, _) = app.post("/api/outputs", &json!({"run_uuid": run, "data": {"blob": "small"}})).await;
    assert_eq!(status, StatusCode::CREATED, "under the cap is fine");
}

#[tokio::test]
async fn migrate_reads_dotenv_lets_the_environment_win_and_is_a_noop_the_second_time() {
    use crate::support::run_armada;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "# the database of this folder\nARMADA_DATABASE_URL=sqlite:from-dotenv.db\n",
    )
    .unwrap();

    let first = run_armada(dir.path(), &["migrate"], &[]).await;
    assert_eq!(first.code, Some(0), "{first:?}");
    let applied = first.stdout.lines().filter(|line| line.starts_with("applied ")).count();
    assert!(applied >= 1, "the first migrate applies every migration: {first:?}");
    assert!(first.stdout.contains("from-dotenv.db"), "the .env file chose the database: {first:?}");
    assert!(dir.path().join("from-dotenv.db").is_file());

    let second = run_armada(dir.path(), &["migrate"], &[]).await;
    assert_eq!(second.code, Some(0), "{second:?}");
    assert!(second.stdout.contains("up to date, nothing to apply"), "{second:?}");
    assert!(!second.stdout.contains("applied "), "{second:?}");

    // A real environment variable wins over the .env file.
    let third = run_armada(dir.path(), &["migrate"], &[("ARMADA_DATABASE_URL", "sqlite:from-env.db")]).await;
    assert_eq!(third.code, Some(0), "{third:?}");
    assert!(third.stdout.contains("from-env.db"), "{third:?}");
    assert_eq!(third.stdout.lines().filter(|line| line.starts_with("applied ")).count(), applied, "{third:?}");
    assert!(dir.path().join("from-env.db").is_file());
}

#[tokio::test]
async fn log_format_json_writes_one_json_object_per_line() {
    use crate::support::spawn_armada;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let serve = spawn_armada(
        dir.path(),
        &["--log-format", "json", "serve", "--roles", "backend", "--listen", &listen],
        &[("RUST_LOG", "info")],
    );
    assert!(serve.printed_to_stderr("listening", std::time::Duration::from_secs(30)).await, "serve never listened");
    serve.child.kill().unwrap();
    let output = serve.finish(std::time::Duration::from_secs(10)).await;
    let lines: Vec<&str> = output.stderr.lines().filter(|line| !line.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{output:?}");
    for line in &lines {
        let record: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(record["level"].is_string() && record["timestamp"].is_string(), "{record}");
    }
    assert!(lines.iter().any(|line| line.contains(r#""message":"listening""#) && line.contains(&listen)), "{lines:#?}");
}

#[tokio::test]
async fn serve_on_sql_server_names_host_and_database_but_never_the_password() {
    use crate::support::run_armada;
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens there: serve says which database it tried, then gives up.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let password = "Never-Shown-8472";
    let env = [
        ("SQL_SERVER_NAME", "127.0.0.1"),
        ("SQL_SERVER_PORT", port.as_str()),
        ("SQL_SERVER_DB", "armada_db"),
        ("SQL_SERVER_USER", "armada"),
        ("SQL_SERVER_PASSWORD", password),
        ("SQL_SERVER_CONNECT_TIMEOUT_SECS", "2"),
        ("RUST_LOG", "debug"),
    ];
    let listen =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
    let out = run_armada(dir.path(), &["serve", "--roles", "backend", "--listen", &listen], &env).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    let described = format!("mssql://127.0.0.1:{port}/armada_db");
    assert!(out.stderr.contains(&described), "the log names the database: {}", out.stderr);
    assert!(!out.stderr.contains(password) && !out.stdout.contains(password), "{out:?}");
}
