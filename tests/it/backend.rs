//! The monitoring API of SPEC §7 over real HTTP.

use std::sync::Arc;

use armada::infra::db::sqlite::SqliteStore;
use armada::roles::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{TestApp, metric_sum};

async fn create_run(app: &TestApp, at: &str) -> Uuid {
    let run = Uuid::new_v4();
    let (status, _) = app.post("/api/runs/", &json!({"run_uuid": run, "run_datetime": at})).await;
    assert_eq!(status, StatusCode::CREATED);
    run
}

async fn create_job(app: &TestApp, run: Uuid) -> Uuid {
    let (status, body) = app.post("/api/jobs/", &json!({"run_uuid": run, "job_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["job_uuid"].as_str().and_then(|s| s.parse().ok()).expect("job_uuid")
}

async fn create_event(app: &TestApp, job: Uuid, content: &str) -> Value {
    let body = json!({"event_content": content, "job_uuid": job, "event_datetime": "2026-02-24T10:31:00"});
    let (status, event) = app.post("/api/events/", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    event
}

fn detail(body: &Value) -> &str {
    body["detail"].as_str().unwrap_or_else(|| panic!("no detail in {body}"))
}

#[tokio::test]
async fn runs_answer_with_and_without_trailing_slash_and_tracking_prefix() {
    let app = TestApp::backend().await;
    let run = Uuid::new_v4();
    let (status, created) =
        app.post("/api/runs/", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["run_uuid"], json!(run));
    assert_eq!(created["run_datetime"], "2026-02-24T10:30:00Z");
    for path in ["/api/runs", "/api/runs/", "/tracking/api/runs/", "/tracking/api/runs"] {
        let (status, page) = app.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(page["total"], 1, "{path}");
        assert_eq!(page["runs"][0], created, "{path}");
        assert_eq!((page["page"].clone(), page["page_size"].clone()), (json!(1), json!(5)), "default page size 5");
    }
    for path in [format!("/api/runs/{run}"), format!("/api/runs/{run}/"), format!("/tracking/api/runs/{run}/")] {
        assert_eq!(app.get(&path).await, (StatusCode::OK, created.clone()), "{path}");
    }
    let (status, _) = app.post("/api/runs", &json!({"run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24"})).await;
    assert_eq!(status, StatusCode::CREATED, "POST without the slash");
}

#[tokio::test]
async fn creating_a_run_twice_answers_the_stored_run() {
    let app = TestApp::backend().await;
    let run = Uuid::new_v4();
    let (first, created) =
        app.post("/api/runs/", &json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"})).await;
    let (second, replayed) =
        app.post("/api/runs/", &json!({"run_uuid": run, "run_datetime": "2027-01-01T00:00:00"})).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::OK));
    assert_eq!(created, replayed, "the replay answers the run as first stored");
    assert_eq!(app.get("/api/runs").await.1["total"], 1);
}

#[tokio::test]
async fn datetimes_are_accepted_in_the_spec_forms_and_returned_as_iso_8601() {
    let app = TestApp::backend().await;
    for (sent, returned) in [
        ("2026-02-24T10:30:00", "2026-02-24T10:30:00Z"),
        ("2026-02-24T10:30:00.123", "2026-02-24T10:30:00.123Z"),
        ("2026-02-24T10:30:00Z", "2026-02-24T10:30:00Z"),
        ("2026-02-24T10:30:00.123Z", "2026-02-24T10:30:00.123Z"),
        ("2026-02-24 10:30:00", "2026-02-24T10:30:00Z"),
    ] {
        let run = create_run(&app, sent).await;
        let (_, stored) = app.get(&format!("/api/runs/{run}")).await;
        assert_eq!(stored["run_datetime"], returned, "{sent}");
        let job = create_job(&app, run).await;
        let body = json!({"event_content": "x", "job_uuid": job, "event_datetime": sent});
        assert_eq!(app.post("/api/events", &body).await.1["event_datetime"], returned, "{sent}");
    }
    let (status, body) = app.post("/api/runs", &json!({"run_uuid": Uuid::new_v4(), "run_datetime": "yesterday"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).contains("YYYY-MM-DDTHH:MM:SS"), "{body}");
}

#[tokio::test]
async fn pages_are_bounded_counted_and_newest_first() {
    let app = TestApp::backend().await;
    let mut runs = Vec::new();
    for i in 0..12 {
        runs.push(create_run(&app, &format!("2026-02-24T10:{i:02}:00")).await);
    }
    for query in ["page=0", "page=-1", "page_size=0", "page_size=101", "page=x"] {
        let (status, body) = app.get(&format!("/api/runs/?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(!detail(&body).is_empty());
    }
    let (_, body) = app.get("/api/runs/?page=1&page_size=0").await;
    assert_eq!(detail(&body), "page_size must be between 1 and 100, got 0");

    let (_, first) = app.get("/api/runs/?page=1&page_size=5").await;
    let ids: Vec<Value> = first["runs"].as_array().expect("runs").iter().map(|r| r["run_uuid"].clone()).collect();
    let newest: Vec<Value> = runs.iter().rev().take(5).map(|r| json!(r)).collect();
    assert_eq!(ids, newest, "newest first");
    let (_, last) = app.get("/api/runs/?page=3&page_size=5").await;
    assert_eq!(
        (last["runs"].as_array().map(Vec::len), last["total"].clone()),
        (Some(2), json!(12)),
        "partial last page"
    );
    let (_, past) = app.get("/api/runs/?page=4&page_size=5").await;
    assert_eq!((past["runs"].clone(), past["total"].clone(), past["page"].clone()), (json!([]), json!(12), json!(4)));
    let (status, all) = app.get("/api/runs/?page_size=100").await;
    assert_eq!((status, all["runs"].as_array().map(Vec::len)), (StatusCode::OK, Some(12)));
    let (status, defaults) = app.get("/api/runs/?page=&page_size=").await;
    assert_eq!((status, defaults["page_size"].clone()), (StatusCode::OK, json!(5)), "empty values mean defaults");
}

#[tokio::test]
async fn jobs_take_defaults_and_list_per_run() {
    let app = TestApp::backend().await;
    let (run, other) = (create_run(&app, "2026-02-24T10:00:00").await, create_run(&app, "2026-02-24T10:00:00").await);
    let (status, job) = app.post("/api/jobs/", &json!({"run_uuid": run, "job_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((job["job_associated_agent"].clone(), job["job_status"].clone()), (json!("Unknown"), json!("Running")));
    assert!(job["job_uuid"].as_str().and_then(|s| s.parse::<Uuid>().ok()).is_some(), "generated uuid: {job}");
    let given = Uuid::new_v4();
    let body = json!({"run_uuid": run, "job_datetime": "2026-02-24T10:31:00", "job_associated_agent": "agent-2",
                      "job_status": "Queued", "job_uuid": given});
    let (status, second) = app.post("/api/jobs", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((second["job_uuid"].clone(), second["job_associated_agent"].clone()), (json!(given), json!("agent-2")));
    assert_eq!(app.post("/api/jobs", &body).await.0, StatusCode::OK, "a replayed job_uuid");
    create_job(&app, other).await;

    let (status, page) = app.get(&format!("/api/jobs/?run_uuid={run}&page=1&page_size=10")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((page["total"].clone(), page["page_size"].clone()), (json!(2), json!(10)));
    assert_eq!(page["jobs"][0], second, "newest first");
    assert_eq!(page["jobs"][1], job);
    assert_eq!(app.get("/api/jobs/").await.1["total"], 3, "all runs without run_uuid");
    assert_eq!(app.get("/api/jobs/?run_uuid=").await.1["total"], 3, "empty run_uuid = all runs");
    assert_eq!(app.get(&format!("/api/jobs/{given}")).await, (StatusCode::OK, second));

    let ghost = Uuid::new_v4();
    let (status, body) =
        app.post("/api/jobs/", &json!({"run_uuid": ghost, "job_datetime": "2026-02-24T10:30:00"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains(&ghost.to_string()) && detail(&body).contains("create the run first"), "{body}");
}

#[tokio::test]
async fn job_and_event_statuses_change_through_patch() {
    let app = TestApp::backend().await;
    let job = create_job(&app, create_run(&app, "2026-02-24T10:00:00").await).await;
    let event = create_event(&app, job, "page_loaded").await;
    assert_eq!(event["event_status"], "Running", "default status");

    let (status, body) = app.patch("/api/jobs/status", &json!({"job_uuid": job, "job_status": "Success"})).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"ok": true})));
    assert_eq!(app.get(&format!("/api/jobs/{job}")).await.1["job_status"], "Success");
    let body = json!({"event_uuid": event["event_uuid"], "event_status": "Failed"});
    assert_eq!(app.patch("/api/events/status/", &body).await, (StatusCode::OK, json!({"ok": true})));
    assert_eq!(app.get(&format!("/api/events/?job_uuid={job}")).await.1[0]["event_status"], "Failed");

    for bad in [json!(""), json!("   "), json!("x".repeat(65))] {
        let (status, body) = app.patch("/api/jobs/status", &json!({"job_uuid": job, "job_status": bad})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert!(detail(&body).contains("job_status"));
    }
    let ghost = Uuid::new_v4();
    let (status, body) = app.patch("/api/jobs/status", &json!({"job_uuid": ghost, "job_status": "Failed"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains(&ghost.to_string()));
    let (status, _) = app.patch("/api/events/status", &json!({"event_uuid": ghost, "event_status": "Failed"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_are_a_bare_array_newest_first() {
    let app = TestApp::backend().await;
    let job = create_job(&app, create_run(&app, "2026-02-24T10:00:00").await).await;
    let mut created = Vec::new();
    for i in 0..3 {
        let body = json!({"event_content": format!("step {i}"), "job_uuid": job,
                          "event_datetime": format!("2026-02-24T10:30:0{i}"), "event_status": "Success"});
        let (status, event) = app.post("/api/events", &body).await;
        assert_eq!(status, StatusCode::CREATED);
        created.push(event);
    }
    let (status, listed) = app.get(&format!("/api/events/?job_uuid={job}")).await;
    assert_eq!(status, StatusCode::OK);
    created.reverse();
    assert_eq!(listed, json!(created));
    let (_, paged) = app.get(&format!("/api/events?job_uuid={job}&page=2&page_size=2")).await;
    assert_eq!(paged, json!([created[2]]));
    let long = "é".repeat(1000);
    assert_eq!(create_event(&app, job, &long).await["event_content"], long, "no 255-character limit");

    let (status, body) = app.get("/api/events/").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "job_uuid is required");
    assert!(detail(&body).contains("job_uuid"), "{body}");
    let ghost = Uuid::new_v4();
    let (status, body) = app
        .post("/api/events", &json!({"event_content": "x", "job_uuid": ghost, "event_datetime": "2026-02-24"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(detail(&body).contains(&format!("job {ghost} not found")), "{body}");
}

#[tokio::test]
async fn outputs_are_stored_as_json_and_listed_per_run() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:00:00").await;
    let job = create_job(&app, run).await;
    let data = json!({"title": "Item", "price": 9.5, "tags": ["a", "b"], "nested": {"z": 1, "a": 2}});
    let (status, output) = app.post("/api/outputs/", &json!({"run_uuid": run, "data": data, "job_uuid": job})).await;
    assert_eq!(status, StatusCode::CREATED, "{output}");
    assert_eq!((output["data"].clone(), output["job_uuid"].clone()), (data.clone(), json!(job)));
    assert!(output["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "timestamp defaults to now");
    let body = json!({"run_uuid": run, "data": {"n": 2}, "timestamp": "2030-01-01T00:00:00"});
    let (status, newer) = app.post("/api/outputs", &body).await;
    assert_eq!((status, newer["job_uuid"].clone()), (StatusCode::CREATED, Value::Null));
    let (status, page) = app.get(&format!("/api/outputs/?run_uuid={run}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((page["total"].clone(), page["page_size"].clone()), (json!(2), json!(50)));
    assert_eq!(page["outputs"], json!([newer, output]));
    let (status, _) = app.post("/api/outputs", &json!({"run_uuid": Uuid::new_v4(), "data": {}})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn batch_records_apply_in_order_with_an_outcome_per_item() {
    let app = TestApp::backend().await;
    let (run, job, event, chunk) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let ghost = Uuid::new_v4();
    let batch = json!([
        {"op": "create_run", "run_uuid": run, "run_datetime": "2026-02-24T10:00:00", "run_status": "running",
         "number_of_agents": 2, "number_of_jobs": 4},
        {"op": "create_job", "run_uuid": run, "job_uuid": job, "job_datetime": "2026-02-24T10:00:01", "job_index": 0},
        {"op": "create_event", "job_uuid": job, "event_uuid": event, "event_content": "started",
         "event_datetime": "2026-02-24T10:00:02"},
        {"op": "create_event", "job_uuid": ghost, "event_content": "lost", "event_datetime": "2026-02-24T10:00:02"},
        {"op": "append_log", "chunk_uuid": chunk, "job_uuid": job, "text": "hello from the worker\n"},
        {"op": "update_job", "job_uuid": job, "job_status": "Success", "job_attempts": 1,
         "job_finished": "2026-02-24T10:00:09"},
        {"op": "explode"},
        {"op": "update_event", "event_uuid": event, "event_status": ""},
        {"op": "create_output", "run_uuid": run, "job_uuid": job, "data": {"k": "v"}},
        {"op": "update_run", "run_uuid": run, "run_status": "completed"}
    ]);
    let (status, outcomes) = app.post("/api/records", &batch).await;
    assert_eq!(status, StatusCode::OK, "{outcomes}");
    let outcomes = outcomes.as_array().expect("array").clone();
    let oks: Vec<bool> = outcomes.iter().map(|o| o["ok"] == true).collect();
    assert_eq!(oks, vec![true, true, true, false, true, true, false, false, true, true], "{outcomes:?}");
    assert_eq!((outcomes[3]["status"].clone(), outcomes[6]["status"].clone()), (json!(404), json!(422)));
    assert!(outcomes[3]["detail"].as_str().is_some_and(|d| d.contains(&ghost.to_string())));
    assert!(outcomes[6]["detail"].as_str().is_some_and(|d| d.starts_with("item 6")), "{:?}", outcomes[6]);
    assert!(outcomes[7]["detail"].as_str().is_some_and(|d| d.contains("event_status")));

    let (_, stored_job) = app.get(&format!("/api/jobs/{job}")).await;
    assert_eq!((stored_job["job_status"].clone(), stored_job["job_attempts"].clone()), (json!("Success"), json!(1)));
    assert_eq!(stored_job["job_finished"], "2026-02-24T10:00:09Z");
    let (_, stored_run) = app.get(&format!("/api/runs/{run}")).await;
    assert_eq!(
        (stored_run["run_status"].clone(), stored_run["number_of_jobs"].clone()),
        (json!("completed"), json!(4))
    );
    assert!(stored_run["run_finished"].is_string(), "a final status stamps run_finished");
    let (_, logs) = app.get(&format!("/api/jobs/{job}/logs")).await;
    assert_eq!(logs, json!({"job_uuid": job, "logs": "hello from the worker\n"}));

    let (_, replay) = app.post("/api/records/", &batch).await;
    let changed: Vec<Value> = replay.as_array().expect("array").iter().map(|o| o["changed"].clone()).collect();
    assert_eq!(changed[..3], [json!(false), json!(false), json!(false)], "replays change nothing: {replay}");
    assert_eq!(app.get(&format!("/api/jobs/{job}/logs")).await.1["logs"], "hello from the worker\n");
    assert_eq!(app.get(&format!("/api/events?job_uuid={job}")).await.1.as_array().map(Vec::len), Some(1));

    let (status, body) = app.post("/api/records", &json!({"op": "create_run"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the body must be an array");
    assert!(!detail(&body).is_empty());
    assert_eq!(app.post("/api/records", &json!([])).await, (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn job_logs_are_capped_to_the_newest_mebibyte() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:00:00").await;
    let job = create_job(&app, run).await;
    let chunk = "a".repeat(300 * 1024);
    for _ in 0..4 {
        let batch = json!([{"op": "append_log", "chunk_uuid": Uuid::new_v4(), "job_uuid": job, "text": chunk}]);
        assert_eq!(app.post("/api/records", &batch).await.0, StatusCode::OK);
    }
    let batch = json!([{"op": "append_log", "chunk_uuid": Uuid::new_v4(), "job_uuid": job, "text": "THE END\n"}]);
    app.post("/api/records", &batch).await;
    let (status, body) = app.get(&format!("/api/jobs/{job}/logs")).await;
    assert_eq!(status, StatusCode::OK);
    let logs = body["logs"].as_str().expect("logs");
    assert_eq!(logs.len(), 1024 * 1024);
    assert!(logs.ends_with("THE END\n"), "the newest bytes are kept");
    assert_eq!(app.get(&format!("/api/jobs/{}/logs", Uuid::new_v4())).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deleting_a_run_removes_its_jobs_events_outputs_and_logs() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:00:00").await;
    let kept = create_run(&app, "2026-02-24T10:00:00").await;
    let job = create_job(&app, run).await;
    let kept_job = create_job(&app, kept).await;
    create_event(&app, job, "e").await;
    create_event(&app, kept_job, "e").await;
    app.post("/api/outputs", &json!({"run_uuid": run, "data": {}, "job_uuid": job})).await;
    let log = json!([{"op": "append_log", "chunk_uuid": Uuid::new_v4(), "job_uuid": job, "text": "x"}]);
    app.post("/api/records", &log).await;

    assert_eq!(app.delete(&format!("/api/runs/{run}/")).await, (StatusCode::OK, json!({"ok": true})));
    assert_eq!(app.get(&format!("/api/runs/{run}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/jobs/{job}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/jobs/?run_uuid={run}")).await.1["total"], 0);
    assert_eq!(app.get(&format!("/api/events/?job_uuid={job}")).await.1, json!([]));
    assert_eq!(app.get(&format!("/api/outputs/?run_uuid={run}")).await.1["total"], 0);
    assert_eq!(app.get(&format!("/api/jobs/{job}/logs")).await.0, StatusCode::NOT_FOUND);
    let (status, body) = app.delete(&format!("/api/runs/{run}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(detail(&body).contains(&run.to_string()));

    assert_eq!(app.get(&format!("/api/runs/{kept}")).await.0, StatusCode::OK, "other runs stay");
    assert_eq!(app.get(&format!("/api/events/?job_uuid={kept_job}")).await.1.as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn unknown_and_malformed_ids_say_so() {
    let app = TestApp::backend().await;
    let ghost = Uuid::new_v4();
    for path in [format!("/api/runs/{ghost}"), format!("/api/jobs/{ghost}"), format!("/api/jobs/{ghost}/logs")] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(detail(&body).contains(&ghost.to_string()), "{path}: {body}");
    }
    assert_eq!(app.delete(&format!("/api/runs/{ghost}")).await.0, StatusCode::NOT_FOUND);
    for path in ["/api/runs/not-a-uuid", "/api/jobs/1234/logs"] {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert!(detail(&body).contains("not a valid UUID"), "{body}");
    }
    let (status, body) = app.get("/api/jobs?run_uuid=nope").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).contains("run_uuid"), "{body}");
    let (status, body) = app.get("/api/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!detail(&body).is_empty());
    let (status, body) = app.send(app.client.put(app.url("/api/runs/"))).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(detail(&body), "PUT is not allowed on /api/runs");
}

#[tokio::test]
async fn bad_bodies_get_a_detail() {
    let app = TestApp::backend().await;
    let raw = |body: &'static str| {
        app.client.post(app.url("/api/runs/")).header("content-type", "application/json").body(body)
    };
    let (status, body) = app.send(raw("{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(detail(&body).contains("not valid JSON"), "{body}");
    let (status, body) = app.send(raw(r#"{"run_uuid": 5, "run_datetime": "2026-02-24T10:30:00"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).contains("run_uuid"), "{body}");
    let (status, body) = app.send(raw(r#"{"run_datetime": "2026-02-24T10:30:00"}"#)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(detail(&body).contains("missing field `run_uuid`"), "{body}");
    let (status, body) = app.send(app.client.post(app.url("/api/runs/")).body("{}")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(detail(&body).contains("application/json"));
    let (status, body) = app.post("/api/jobs", &json!({"run_uuid": Uuid::new_v4(), "job_datetime": 17})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!detail(&body).is_empty());
}

#[tokio::test]
async fn a_dead_database_answers_503_with_a_request_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("dead.db")).await.expect("open");
    armada::infra::db::Store::migrate(&store).await.expect("migrate");
    store.close().await;
    let app = TestApp::builder().roles([Role::Backend]).store(Arc::new(store)).spawn().await;
    let (status, body) =
        app.post("/api/runs", &json!({"run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24"})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(detail(&body).contains("database"), "{body}");
    assert!(body["request_id"].is_string(), "{body}");
    assert_eq!(app.get("/api/runs").await.0, StatusCode::SERVICE_UNAVAILABLE);
    let batch = json!([{"op": "create_run", "run_uuid": Uuid::new_v4(), "run_datetime": "2026-02-24"}]);
    assert_eq!(app.post("/api/records", &batch).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (status, health) = app.get("/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health["dependencies"][0]["status"], "down", "{health}");
}

#[tokio::test]
async fn stored_rows_are_counted() {
    let app = TestApp::backend().await;
    let before = metric_sum(&app.metrics().await, "armada_rows_written_total");
    let run = create_run(&app, "2026-02-24T10:00:00").await;
    create_event(&app, create_job(&app, run).await, "x").await;
    let after = metric_sum(&app.metrics().await, "armada_rows_written_total");
    assert!(after >= before + 3.0, "before {before}, after {after}");
}

#[tokio::test]
async fn run_summary_counts_jobs_and_agents() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:30:00").await;
    for (agent, status) in
        [("agent-0", "Success"), ("agent-0", "Running"), ("agent-1", "Failed"), ("Unknown", "Queued")]
    {
        let body = json!({"run_uuid": run, "job_datetime": "2026-02-24T10:31:00", "job_associated_agent": agent, "job_status": status});
        assert_eq!(app.post("/api/jobs", &body).await.0, StatusCode::CREATED);
    }
    let (status, summary) = app.get(&format!("/api/runs/{run}/summary/")).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["run"]["run_uuid"], json!(run));
    assert_eq!(summary["counts"], json!({"Failed": 1, "Queued": 1, "Running": 1, "Success": 1}));
    assert_eq!(summary["total_jobs"], 4);
    let agents = summary["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2, "{summary}");
    assert_eq!((agents[0]["agent"].clone(), agents[0]["jobs_taken"].clone()), (json!("agent-0"), json!(2)));
    assert!(agents[0]["current_job"].is_string(), "agent-0 runs a job: {summary}");
    assert_eq!(agents[1]["failed"], 1);
    let (status, body) = app.get(&format!("/api/runs/{}/summary", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn close_jobs_finishes_only_open_jobs_and_broadcasts_them() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:30:00").await;
    let open = create_job(&app, run).await;
    let done = create_job(&app, run).await;
    let patch = json!({"job_uuid": done, "job_status": "Success"});
    assert_eq!(app.client.patch(app.url("/api/jobs/status")).json(&patch).send().await.expect("patch").status(), 200);
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url.clone()).await.expect("ws");
    let (status, body) = app
        .post(
            &format!("/api/runs/{run}/close-jobs"),
            &json!({"job_status": "Cancelled", "job_detail": "run cancelled"}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"closed": 1})));
    let (_, job) = app.get(&format!("/api/jobs/{open}")).await;
    assert_eq!((job["job_status"].clone(), job["job_detail"].clone()), (json!("Cancelled"), json!("run cancelled")));
    let (_, job) = app.get(&format!("/api/jobs/{done}")).await;
    assert_eq!(job["job_status"], "Success", "a finished job keeps its outcome");
    let message = crate::ws::next_message(&mut ws).await;
    assert_eq!(message["type"], "update_job_status");
    assert_eq!(message["data"]["job_uuid"], json!(open));
    let (status, _) = app.post(&format!("/api/runs/{run}/close-jobs"), &json!({"job_status": ""})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_timeline_counts_finished_jobs_per_bucket() {
    let app = TestApp::backend().await;
    let run = create_run(&app, "2026-02-24T10:00:00").await;
    for (status, finished) in
        [("Success", "2026-02-24T10:00:10"), ("Failed", "2026-02-24T10:00:50"), ("Success", "2026-02-24T10:01:30")]
    {
        let job = create_job(&app, run).await;
        let update = json!([{"op": "update_job", "job_uuid": job, "job_status": status, "job_finished": finished}]);
        let (code, body) = app.post("/api/records", &update).await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    create_job(&app, run).await;
    let (status, timeline) = app.get(&format!("/tracking/api/runs/{run}/timeline/?bucket_secs=60")).await;
    assert_eq!(status, StatusCode::OK, "{timeline}");
    assert_eq!(
        timeline,
        json!({"run_uuid": run, "bucket_secs": 60, "buckets": [
            {"start": "2026-02-24T10:00:00Z", "success": 1, "failed": 1, "cancelled": 0},
            {"start": "2026-02-24T10:01:00Z", "success": 1, "failed": 0, "cancelled": 0},
        ]})
    );
    assert_eq!(app.get(&format!("/api/runs/{run}/timeline")).await.1["bucket_secs"], 60, "default bucket");
    let (status, body) = app.get(&format!("/api/runs/{run}/timeline?bucket_secs=0")).await;
    assert_eq!(
        (status, detail(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "bucket_secs must be between 1 and 86400, got 0")
    );
    let (status, _) = app.get(&format!("/api/runs/{}/timeline", Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
