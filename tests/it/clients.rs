//! The backend client, in-process and over HTTP: the same calls give the same results.

use std::sync::Arc;
use std::time::Duration;

use armada::clients::{BackendClient, BackendError, HttpBackend, InProcessBackend, LiveItem};
use armada::infra::db::{JobUpdate, Mutation, NewEvent, NewJob, NewRun};
use armada::model::{Timestamp, status};
use armada::settings::Secret;
use futures::StreamExt;
use uuid::Uuid;

use crate::support::TestApp;

async fn exercise(client: Arc<dyn BackendClient>) {
    client.check_connectivity().await.expect("reachable");
    let mut live = client.live().await.expect("live stream");
    let (run, job, event) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let now = Timestamp::now();
    let batch = vec![
        Mutation::CreateRun(NewRun {
            run_uuid: run,
            run_datetime: now,
            run_status: None,
            number_of_agents: Some(1),
            number_of_jobs: Some(1),
        }),
        Mutation::CreateJob(NewJob {
            job_uuid: job,
            run_uuid: run,
            job_datetime: now,
            job_associated_agent: "agent-0".into(),
            job_status: status::RUNNING.into(),
            job_index: Some(0),
        }),
        Mutation::CreateEvent(NewEvent {
            event_uuid: event,
            event_content: "hello".into(),
            job_uuid: Uuid::new_v4(),
            event_datetime: now,
            event_status: status::SUCCESS.into(),
        }),
    ];
    let outcomes = client.apply(batch.clone()).await.expect("applied");
    assert_eq!(outcomes[0], Ok(true));
    assert_eq!(outcomes[1], Ok(true));
    assert!(matches!(outcomes[2], Err(BackendError::Rejected { status: 404, .. })), "{:?}", outcomes[2]);
    let replay = client.apply(batch[..2].to_vec()).await.expect("replayed");
    assert_eq!(replay, vec![Ok(false), Ok(false)], "replays change nothing");

    let kinds: Vec<String> = (&mut live)
        .take(2)
        .map(|item| match item {
            LiveItem::Message { kind, .. } => kind,
            LiveItem::Gap => "gap".into(),
        })
        .collect()
        .await;
    assert_eq!(kinds, ["new_run", "new_job"]);

    assert_eq!(client.get_run(run).await.expect("run").map(|r| r.run_uuid), Some(run));
    assert_eq!(client.get_run(Uuid::new_v4()).await.expect("no run"), None);
    assert_eq!(client.get_job(job).await.expect("job").map(|j| j.job_status), Some("Running".into()));
    let summary = client.run_summary(run).await.expect("summary").expect("known run");
    assert_eq!((summary.total_jobs, summary.count("Running")), (1, 1));
    assert_eq!(summary.agents[0].current_job, Some(job));

    assert_eq!(client.close_jobs(run, status::CANCELLED, "stopped").await, Ok(1));
    let update = JobUpdate { job_uuid: job, job_status: Some(status::SUCCESS.into()), ..Default::default() };
    assert_eq!(client.apply(vec![Mutation::UpdateJob(update)]).await.expect("update"), vec![Ok(true)]);
    assert_eq!(client.delete_run(run).await, Ok(true));
    assert_eq!(client.delete_run(run).await, Ok(false));
}

#[tokio::test]
async fn in_process_backend_client_stores_and_streams() {
    let app = TestApp::backend().await;
    exercise(Arc::new(InProcessBackend::new(app.state.records.clone()))).await;
}

#[tokio::test]
async fn http_backend_client_stores_and_streams_with_a_token() {
    let app = TestApp::builder().token(Some("s3cret")).spawn().await;
    exercise(Arc::new(HttpBackend::new(&app.base_url, Some(Secret::new("s3cret"))).expect("client"))).await;
    let without = HttpBackend::new(&app.base_url, None).expect("client");
    assert!(matches!(without.get_run(Uuid::new_v4()).await, Err(BackendError::Rejected { status: 401, .. })));
}

#[tokio::test]
async fn http_backend_client_reports_an_unreachable_backend_as_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = HttpBackend::new(&url, None).expect("client");
    let outcome = tokio::time::timeout(Duration::from_secs(10), client.apply(vec![])).await.expect("prompt");
    assert_eq!(outcome, Ok(vec![]), "an empty batch needs no backend");
    let update = JobUpdate { job_uuid: Uuid::new_v4(), ..Default::default() };
    let outcome = tokio::time::timeout(Duration::from_secs(10), client.apply(vec![Mutation::UpdateJob(update)]))
        .await
        .expect("prompt");
    assert!(matches!(outcome, Err(BackendError::Unavailable(_))), "{outcome:?}");
}
