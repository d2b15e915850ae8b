//! The one test body every `Store` implementation passes, so the embedded and the distributed
//! database cannot drift apart.
//!
//! Instantiate it next to an implementation with an async constructor expression giving
//! `Option<TestStore>`: a fresh, migrated store plus whatever must outlive it (a temporary
//! folder), or `None` when the engine is not available here (the constructor says why and how
//! to enable it, and every test prints a SKIPPED line):
//!
//! ```text
//! crate::infra::db::conformance::store_suite!(sqlite_store, crate::infra::db::sqlite::tests::temp_store());
//! ```
//!
//! The expression is evaluated once per test. A shared server (SQL Server) should hand each
//! test its own database or schema: the bodies count rows and expect to start empty.

mod inventory;

use std::any::Any;
use std::sync::Arc;

use uuid::Uuid;

use super::{Applied, JobUpdate, Mutation, NewEvent, NewJob, NewLogChunk, NewOutput, NewRun, Store, StoreError};
use crate::model::{Event, Job, PageRequest, Run, RunStatus, Timestamp, status};

/// A store for one test, and whatever must live as long as it.
pub struct TestStore {
    pub store: Arc<dyn Store>,
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Expands to a module `$suite` with one `#[tokio::test]` per behaviour below.
macro_rules! store_suite {
    ($suite:ident, $make:expr) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $crate::infra::db::conformance::store_suite!(@tests $suite, $make;
                migrate_twice_is_a_noop,
                create_run_is_idempotent,
                replayed_batch_changes_nothing,
                unknown_parent_rejects_only_that_item,
                updates_of_unknown_ids_are_not_found,
                updates_change_only_what_they_name,
                run_reaching_a_final_status_is_stamped_finished,
                lists_are_newest_first_with_insertion_order_breaking_ties,
                pagination_counts_all_matches,
                delete_run_removes_everything_of_that_run_only,
                finish_open_jobs_closes_only_open_jobs,
                job_logs_keep_the_newest_bytes_and_ignore_replayed_chunks,
                datetimes_round_trip_with_microseconds,
                outputs_keep_their_json_and_job,
                jobs_are_counted_by_status,
                agents_are_summarised_from_their_jobs,
                finished_jobs_are_counted_per_time_bucket,
                connectivity_check_passes,
                proxy_import_counts_duplicates_in_the_store_and_in_the_batch,
                proxy_import_is_all_or_nothing,
                random_proxy_honours_every_filter,
                random_proxy_never_returns_an_excluded_proxy,
                random_picks_spread_over_every_match,
                fingerprint_import_dedupes_on_vendor_website_data_and_date,
                random_fingerprint_honours_vendor_website_and_date,
                inventory_lists_are_paged_last_imported_first,
            );
        }
    };
    (@tests $suite:ident, $make:expr; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let store: ::std::option::Option<$crate::infra::db::conformance::TestStore> = $make.await;
                $crate::infra::testing::run_conformance(
                    "store",
                    stringify!($suite),
                    stringify!($test),
                    store.map(|test_store| async move {
                        $crate::infra::db::conformance::$test(&*test_store.store).await;
                        drop(test_store.guard);
                    }),
                )
                .await;
            }
        )+
    };
}
pub(crate) use store_suite;

pub use self::inventory::*;

fn ts(raw: &str) -> Timestamp {
    Timestamp::parse(raw).expect("test timestamp")
}

fn page(page: u32, page_size: u32) -> PageRequest {
    PageRequest { page, page_size }
}

fn new_run(run_uuid: Uuid, at: &str) -> NewRun {
    NewRun { run_uuid, run_datetime: ts(at), run_status: None, number_of_agents: None, number_of_jobs: None }
}

fn new_job(job_uuid: Uuid, run_uuid: Uuid, at: &str) -> NewJob {
    NewJob {
        job_uuid,
        run_uuid,
        job_datetime: ts(at),
        job_associated_agent: "Unknown".into(),
        job_status: status::RUNNING.into(),
        job_index: None,
    }
}

fn new_event(event_uuid: Uuid, job_uuid: Uuid, at: &str, content: &str) -> NewEvent {
    NewEvent {
        event_uuid,
        event_content: content.into(),
        job_uuid,
        event_datetime: ts(at),
        event_status: status::RUNNING.into(),
    }
}

fn new_output(run_uuid: Uuid, job_uuid: Option<Uuid>, at: &str, data: serde_json::Value) -> NewOutput {
    NewOutput { output_uuid: Uuid::new_v4(), run_uuid, job_uuid, data, timestamp: ts(at) }
}

fn log(job_uuid: Uuid, text: &str) -> NewLogChunk {
    NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid, text: text.into() }
}

async fn apply_ok(store: &dyn Store, batch: &[Mutation]) -> Vec<Applied> {
    let results = store.apply(batch).await.expect("database up");
    results.into_iter().enumerate().map(|(i, r)| r.unwrap_or_else(|e| panic!("item {i} rejected: {e}"))).collect()
}

/// A run with one job, stored; returns (run_uuid, job_uuid).
async fn run_with_job(store: &dyn Store, at: &str) -> (Uuid, Uuid) {
    let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
    apply_ok(store, &[Mutation::CreateRun(new_run(run, at)), Mutation::CreateJob(new_job(job, run, at))]).await;
    (run, job)
}

pub async fn migrate_twice_is_a_noop(store: &dyn Store) {
    let (run, _) = run_with_job(store, "2026-02-24T10:30:00").await;
    assert_eq!(store.migrate().await.expect("migrate"), Vec::<String>::new(), "second migrate applies nothing");
    assert!(store.get_run(run).await.expect("get").is_some(), "data survives a repeated migrate");
}

pub async fn create_run_is_idempotent(store: &dyn Store) {
    let run = Uuid::new_v4();
    let first = apply_ok(store, &[Mutation::CreateRun(new_run(run, "2026-02-24T10:30:00"))]).await;
    let again = apply_ok(store, &[Mutation::CreateRun(new_run(run, "2030-01-01T00:00:00"))]).await;
    let (Applied::Run { run: stored, changed: true }, Applied::Run { run: replayed, changed: false }) =
        (&first[0], &again[0])
    else {
        panic!("expected a created then a replayed run, got {first:?} then {again:?}");
    };
    assert_eq!(stored, replayed, "a replay returns the stored run, not the new payload");
    assert_eq!(replayed.run_datetime, ts("2026-02-24T10:30:00"));
    assert_eq!(store.list_runs(page(1, 100)).await.expect("list").total, 1);
}

pub async fn replayed_batch_changes_nothing(store: &dyn Store) {
    let (run, job, event) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let batch = vec![
        Mutation::CreateRun(new_run(run, "2026-02-24T10:30:00")),
        Mutation::CreateJob(new_job(job, run, "2026-02-24T10:30:01")),
        Mutation::CreateEvent(new_event(event, job, "2026-02-24T10:30:02", "page_loaded")),
        Mutation::UpdateEvent { event_uuid: event, event_status: status::SUCCESS.into() },
        Mutation::UpdateJob(JobUpdate {
            job_uuid: job,
            job_status: Some(status::SUCCESS.into()),
            ..JobUpdate::default()
        }),
        Mutation::CreateOutput(new_output(run, Some(job), "2026-02-24T10:30:03", serde_json::json!({"k": 1}))),
        Mutation::AppendLog(log(job, "hello\n")),
        Mutation::UpdateRun { run_uuid: run, run_status: RunStatus::Completed, run_detail: None },
    ];
    let first = apply_ok(store, &batch).await;
    assert!(first.iter().all(Applied::changed), "first application changes every item: {first:?}");
    let second = apply_ok(store, &batch).await;
    assert!(second.iter().all(|a| !a.changed()), "a replay changes nothing: {second:?}");
    let events = store.list_events(job, page(1, 100)).await.expect("events");
    assert_eq!(events.total, 1);
    assert_eq!(events.items[0].event_status, status::SUCCESS);
    assert_eq!(store.list_outputs(Some(run), page(1, 100)).await.expect("outputs").total, 1);
    assert_eq!(store.job_logs(job, 1 << 20).await.expect("logs"), "hello\n");
}

pub async fn unknown_parent_rejects_only_that_item(store: &dyn Store) {
    let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
    let (ghost_run, ghost_job) = (Uuid::new_v4(), Uuid::new_v4());
    let results = store
        .apply(&[
            Mutation::CreateRun(new_run(run, "2026-02-24T10:30:00")),
            Mutation::CreateJob(new_job(Uuid::new_v4(), ghost_run, "2026-02-24T10:30:00")),
            Mutation::CreateJob(new_job(job, run, "2026-02-24T10:30:00")),
            Mutation::CreateEvent(new_event(Uuid::new_v4(), ghost_job, "2026-02-24T10:30:00", "lost")),
            Mutation::CreateEvent(new_event(Uuid::new_v4(), job, "2026-02-24T10:30:00", "kept")),
            Mutation::CreateOutput(new_output(ghost_run, None, "2026-02-24T10:30:00", serde_json::json!({}))),
            Mutation::CreateOutput(new_output(run, Some(ghost_job), "2026-02-24T10:30:00", serde_json::json!({}))),
            Mutation::AppendLog(log(ghost_job, "lost")),
            Mutation::CreateOutput(new_output(run, Some(job), "2026-02-24T10:30:00", serde_json::json!({"a": 1}))),
        ])
        .await
        .expect("database up");
    let outcome: Vec<Option<String>> = results
        .iter()
        .map(|r| match r {
            Ok(_) => None,
            Err(StoreError::NotFound(detail)) => Some(detail.clone()),
            Err(other) => panic!("expected NotFound, got {other:?}"),
        })
        .collect();
    let missing = |what: &str, id: Uuid| Some(format!("{what} {id} not found"));
    let prefix = |o: &Option<String>| o.as_ref().map(|d| d.split(';').next().unwrap_or_default().to_string());
    let outcome: Vec<Option<String>> = outcome.iter().map(prefix).collect();
    assert_eq!(
        outcome,
        vec![
            None,
            missing("run", ghost_run),
            None,
            missing("job", ghost_job),
            None,
            missing("run", ghost_run),
            missing("job", ghost_job),
            missing("job", ghost_job),
            None,
        ]
    );
    assert!(store.get_job(job).await.expect("get").is_some(), "items after a rejected one are stored");
    assert_eq!(store.list_events(job, page(1, 10)).await.expect("events").items[0].event_content, "kept");
    assert_eq!(store.list_outputs(None, page(1, 10)).await.expect("outputs").total, 1);
    assert_eq!(store.list_jobs(None, page(1, 10)).await.expect("jobs").total, 1);
}

pub async fn updates_of_unknown_ids_are_not_found(store: &dyn Store) {
    let results = store
        .apply(&[
            Mutation::UpdateRun { run_uuid: Uuid::new_v4(), run_status: RunStatus::Running, run_detail: None },
            Mutation::UpdateJob(JobUpdate {
                job_uuid: Uuid::new_v4(),
                job_status: Some(status::FAILED.into()),
                ..JobUpdate::default()
            }),
            Mutation::UpdateEvent { event_uuid: Uuid::new_v4(), event_status: status::FAILED.into() },
        ])
        .await
        .expect("database up");
    for (i, result) in results.iter().enumerate() {
        assert!(matches!(result, Err(StoreError::NotFound(_))), "item {i}: {result:?}");
    }
    assert_eq!(store.get_run(Uuid::new_v4()).await.expect("get"), None);
    assert_eq!(store.get_job(Uuid::new_v4()).await.expect("get"), None);
    assert!(!store.delete_run(Uuid::new_v4()).await.expect("delete"));
}

pub async fn updates_change_only_what_they_name(store: &dyn Store) {
    let (_, job) = run_with_job(store, "2026-02-24T10:30:00").await;
    let finished = ts("2026-02-24T10:35:00.5");
    let full = JobUpdate {
        job_uuid: job,
        job_status: Some(status::FAILED.into()),
        job_associated_agent: Some("agent-3".into()),
        job_attempts: Some(2),
        job_detail: Some("exit code 1".into()),
        job_finished: Some(finished),
    };
    apply_ok(store, &[Mutation::UpdateJob(full)]).await;
    let only_status = JobUpdate { job_uuid: job, job_status: Some(status::SUCCESS.into()), ..JobUpdate::default() };
    let applied = apply_ok(store, &[Mutation::UpdateJob(only_status.clone())]).await;
    let Applied::Job { job: updated, changed: true } = &applied[0] else { panic!("{applied:?}") };
    let expected = Job {
        job_status: status::SUCCESS.into(),
        job_associated_agent: "agent-3".into(),
        job_attempts: Some(2),
        job_detail: Some("exit code 1".into()),
        job_finished: Some(finished),
        ..updated.clone()
    };
    assert_eq!(updated, &expected);
    assert_eq!(store.get_job(job).await.expect("get").as_ref(), Some(&expected));
    let same = apply_ok(store, &[Mutation::UpdateJob(only_status)]).await;
    assert!(!same[0].changed(), "setting the same status again is not a change");
}

pub async fn run_reaching_a_final_status_is_stamped_finished(store: &dyn Store) {
    let run = Uuid::new_v4();
    let mut created = new_run(run, "2026-02-24T10:30:00");
    created.run_status = Some(RunStatus::Dispatching);
    created.number_of_agents = Some(3);
    created.number_of_jobs = Some(10);
    apply_ok(store, &[Mutation::CreateRun(created)]).await;
    let running =
        apply_ok(store, &[Mutation::UpdateRun { run_uuid: run, run_status: RunStatus::Running, run_detail: None }])
            .await;
    let Applied::Run { run: running, changed: true } = &running[0] else { panic!("{running:?}") };
    assert_eq!(running.run_finished, None);
    assert_eq!((running.number_of_agents, running.number_of_jobs), (Some(3), Some(10)));
    let failed = Mutation::UpdateRun {
        run_uuid: run,
        run_status: RunStatus::Failed,
        run_detail: Some("agent image not found".into()),
    };
    let done = apply_ok(store, std::slice::from_ref(&failed)).await;
    let Applied::Run { run: done, changed: true } = &done[0] else { panic!("{done:?}") };
    assert_eq!(done.run_status, Some(RunStatus::Failed));
    assert_eq!(done.run_detail.as_deref(), Some("agent image not found"));
    assert!(done.run_finished.is_some(), "a final status stamps run_finished");
    assert_eq!(store.get_run(run).await.expect("get").as_ref(), Some(done));
    let again = apply_ok(store, &[failed]).await;
    assert!(!again[0].changed(), "repeating the final update changes nothing (run_finished kept)");
}

pub async fn lists_are_newest_first_with_insertion_order_breaking_ties(store: &dyn Store) {
    let same = "2026-02-24T10:30:00";
    let runs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    apply_ok(
        store,
        &[
            Mutation::CreateRun(new_run(runs[0], "2026-02-24T09:00:00")),
            Mutation::CreateRun(new_run(runs[1], same)),
            Mutation::CreateRun(new_run(runs[2], same)),
            Mutation::CreateRun(new_run(runs[3], "2026-02-24T08:00:00")),
        ],
    )
    .await;
    let listed: Vec<Uuid> =
        store.list_runs(page(1, 10)).await.expect("list").items.iter().map(|r| r.run_uuid).collect();
    assert_eq!(listed, vec![runs[2], runs[1], runs[0], runs[3]], "newest first, later insert first on a tie");

    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    apply_ok(
        store,
        &[
            Mutation::CreateJob(new_job(jobs[0], runs[0], "2026-02-24T09:00:01")),
            Mutation::CreateJob(new_job(jobs[1], runs[0], "2026-02-24T09:00:03")),
            Mutation::CreateJob(new_job(jobs[2], runs[1], "2026-02-24T09:00:02")),
        ],
    )
    .await;
    let of_run: Vec<Uuid> =
        store.list_jobs(Some(runs[0]), page(1, 10)).await.expect("jobs").items.iter().map(|j| j.job_uuid).collect();
    assert_eq!(of_run, vec![jobs[1], jobs[0]]);
    let all: Vec<Uuid> =
        store.list_jobs(None, page(1, 10)).await.expect("jobs").items.iter().map(|j| j.job_uuid).collect();
    assert_eq!(all, vec![jobs[1], jobs[2], jobs[0]]);

    let events: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    apply_ok(
        store,
        &[
            Mutation::CreateEvent(new_event(events[0], jobs[0], "2026-02-24T09:00:05.000001", "b")),
            Mutation::CreateEvent(new_event(events[1], jobs[0], "2026-02-24T09:00:05", "a")),
            Mutation::CreateEvent(new_event(events[2], jobs[0], "2026-02-24T09:00:05.000001", "c")),
        ],
    )
    .await;
    let listed: Vec<Event> = store.list_events(jobs[0], page(1, 10)).await.expect("events").items;
    let contents: Vec<&str> = listed.iter().map(|e| e.event_content.as_str()).collect();
    assert_eq!(contents, vec!["c", "b", "a"], "microseconds count, then insertion order");

    let outputs = [
        new_output(runs[0], None, "2026-02-24T09:00:01", serde_json::json!({"n": 1})),
        new_output(runs[0], None, "2026-02-24T09:00:02", serde_json::json!({"n": 2})),
    ];
    apply_ok(store, &outputs.iter().cloned().map(Mutation::CreateOutput).collect::<Vec<_>>()).await;
    let listed = store.list_outputs(Some(runs[0]), page(1, 10)).await.expect("outputs").items;
    let order: Vec<Uuid> = listed.iter().map(|o| o.output_uuid).collect();
    assert_eq!(order, vec![outputs[1].output_uuid, outputs[0].output_uuid]);
}

pub async fn pagination_counts_all_matches(store: &dyn Store) {
    let (run, job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let (other_run, _) = run_with_job(store, "2026-02-24T11:00:00").await;
    let mut batch = Vec::new();
    for i in 0..12 {
        let at = format!("2026-02-24T10:00:{i:02}");
        batch.push(Mutation::CreateRun(new_run(Uuid::new_v4(), &at)));
        batch.push(Mutation::CreateJob(new_job(Uuid::new_v4(), run, &at)));
        batch.push(Mutation::CreateEvent(new_event(Uuid::new_v4(), job, &at, &format!("event {i}"))));
        batch.push(Mutation::CreateOutput(new_output(run, None, &at, serde_json::json!({"i": i}))));
    }
    apply_ok(store, &batch).await;
    let runs = store.list_runs(page(3, 5)).await.expect("runs");
    assert_eq!((runs.total, runs.items.len(), runs.page, runs.page_size), (14, 4, 3, 5), "last page is partial");
    assert!(store.list_runs(page(4, 5)).await.expect("runs").items.is_empty(), "past the end is empty");
    let jobs = store.list_jobs(Some(run), page(2, 10)).await.expect("jobs");
    assert_eq!((jobs.total, jobs.items.len()), (13, 3));
    assert_eq!(store.list_jobs(None, page(1, 1)).await.expect("jobs").total, 14);
    assert_eq!(store.list_jobs(Some(other_run), page(1, 10)).await.expect("jobs").total, 1);
    let events = store.list_events(job, page(2, 5)).await.expect("events");
    assert_eq!(events.total, 12);
    let contents: Vec<&str> = events.items.iter().map(|e| e.event_content.as_str()).collect();
    assert_eq!(contents, vec!["event 6", "event 5", "event 4", "event 3", "event 2"]);
    assert_eq!(store.list_outputs(Some(run), page(1, 100)).await.expect("outputs").total, 12);
    assert_eq!(store.list_outputs(Some(other_run), page(1, 100)).await.expect("outputs").total, 0);
}

pub async fn delete_run_removes_everything_of_that_run_only(store: &dyn Store) {
    let (run, job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let (kept_run, kept_job) = run_with_job(store, "2026-02-24T10:00:00").await;
    for (r, j) in [(run, job), (kept_run, kept_job)] {
        apply_ok(
            store,
            &[
                Mutation::CreateEvent(new_event(Uuid::new_v4(), j, "2026-02-24T10:00:01", "e")),
                Mutation::CreateOutput(new_output(r, Some(j), "2026-02-24T10:00:02", serde_json::json!({}))),
                Mutation::CreateOutput(new_output(r, None, "2026-02-24T10:00:02", serde_json::json!({}))),
                Mutation::AppendLog(log(j, "line\n")),
            ],
        )
        .await;
    }
    assert!(store.delete_run(run).await.expect("delete"), "an existing run is deleted");
    assert_eq!(store.get_run(run).await.expect("get"), None);
    assert_eq!(store.get_job(job).await.expect("get"), None);
    assert_eq!(store.list_jobs(Some(run), page(1, 10)).await.expect("jobs").total, 0);
    assert_eq!(store.list_events(job, page(1, 10)).await.expect("events").total, 0);
    assert_eq!(store.list_outputs(Some(run), page(1, 10)).await.expect("outputs").total, 0);
    assert_eq!(store.job_logs(job, 1024).await.expect("logs"), "");
    assert!(!store.delete_run(run).await.expect("delete"), "a second delete finds nothing");

    assert!(store.get_run(kept_run).await.expect("get").is_some(), "other runs are untouched");
    assert_eq!(store.list_events(kept_job, page(1, 10)).await.expect("events").total, 1);
    assert_eq!(store.list_outputs(Some(kept_run), page(1, 10)).await.expect("outputs").total, 2);
    assert_eq!(store.job_logs(kept_job, 1024).await.expect("logs"), "line\n");

    // The ids are free again: a re-created run starts empty.
    apply_ok(store, &[Mutation::CreateRun(new_run(run, "2026-02-24T12:00:00"))]).await;
    assert_eq!(store.list_jobs(Some(run), page(1, 10)).await.expect("jobs").total, 0);
}

pub async fn finish_open_jobs_closes_only_open_jobs(store: &dyn Store) {
    let (run, running) = run_with_job(store, "2026-02-24T10:00:00").await;
    let (other_run, other_job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let (queued, success, failed) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut queued_job = new_job(queued, run, "2026-02-24T10:00:01");
    queued_job.job_status = status::QUEUED.into();
    queued_job.job_index = Some(1);
    let mut success_job = new_job(success, run, "2026-02-24T10:00:02");
    success_job.job_status = status::SUCCESS.into();
    let mut failed_job = new_job(failed, run, "2026-02-24T10:00:03");
    failed_job.job_status = status::FAILED.into();
    apply_ok(
        store,
        &[Mutation::CreateJob(queued_job), Mutation::CreateJob(success_job), Mutation::CreateJob(failed_job)],
    )
    .await;

    let closed = store.finish_open_jobs(run, status::CANCELLED, "run cancelled").await.expect("finish");
    let mut closed_ids: Vec<Uuid> = closed.iter().map(|j| j.job_uuid).collect();
    closed_ids.sort();
    let mut expected = vec![running, queued];
    expected.sort();
    assert_eq!(closed_ids, expected, "only Running and Queued jobs are closed");
    for job in &closed {
        assert_eq!(job.job_status, status::CANCELLED);
        assert_eq!(job.job_detail.as_deref(), Some("run cancelled"));
        assert!(job.job_finished.is_some());
        assert_eq!(store.get_job(job.job_uuid).await.expect("get").as_ref(), Some(job), "returned = stored");
    }
    let untouched = store.get_job(success).await.expect("get").expect("job");
    assert_eq!((untouched.job_status.as_str(), untouched.job_detail), (status::SUCCESS, None));
    assert_eq!(store.get_job(other_job).await.expect("get").expect("job").job_status, status::RUNNING);
    assert!(store.finish_open_jobs(run, status::FAILED, "again").await.expect("finish").is_empty());
    assert_eq!(store.finish_open_jobs(other_run, status::FAILED, "x").await.expect("finish").len(), 1);
}

pub async fn job_logs_keep_the_newest_bytes_and_ignore_replayed_chunks(store: &dyn Store) {
    let (_, job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let first = log(job, "first line\n");
    apply_ok(store, &[Mutation::AppendLog(first.clone()), Mutation::AppendLog(log(job, "second line\n"))]).await;
    let replay = apply_ok(store, &[Mutation::AppendLog(first)]).await;
    assert!(!replay[0].changed(), "a replayed chunk is not appended twice");
    apply_ok(store, &[Mutation::AppendLog(log(job, "third\n"))]).await;
    assert_eq!(store.job_logs(job, 1 << 20).await.expect("logs"), "first line\nsecond line\nthird\n");
    assert_eq!(store.job_logs(job, 10).await.expect("logs"), "ine\nthird\n", "the newest 10 bytes");
    assert_eq!(store.job_logs(job, 6).await.expect("logs"), "third\n");
    assert_eq!(store.job_logs(job, 0).await.expect("logs"), "");
    assert_eq!(store.job_logs(Uuid::new_v4(), 100).await.expect("logs"), "", "unknown job: no logs");
}

pub async fn datetimes_round_trip_with_microseconds(store: &dyn Store) {
    let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
    for raw in
        ["2026-02-24T10:30:00", "2026-02-24T10:30:00.123", "2026-02-24T10:30:00.123456Z", "1969-12-31T23:59:59.5Z"]
    {
        let at = ts(raw);
        let r = Uuid::new_v4();
        apply_ok(store, &[Mutation::CreateRun(new_run(r, raw))]).await;
        let stored: Run = store.get_run(r).await.expect("get").expect("run");
        assert_eq!(stored.run_datetime, at, "{raw}");
        assert_eq!(stored.run_datetime.as_micros(), at.as_micros(), "{raw}");
    }
    apply_ok(
        store,
        &[
            Mutation::CreateRun(new_run(run, "2026-02-24T10:30:00")),
            Mutation::CreateJob(new_job(job, run, "2026-02-24T10:30:00.000001")),
        ],
    )
    .await;
    let stored = store.get_job(job).await.expect("get").expect("job");
    assert_eq!(stored.job_datetime.to_string(), "2026-02-24T10:30:00.000001Z");
}

pub async fn outputs_keep_their_json_and_job(store: &dyn Store) {
    let (run, job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let data = serde_json::json!({"zeta": 1, "alpha": [1, 2, {"nested": null}], "text": "é ✓", "float": 1.5});
    let output = new_output(run, Some(job), "2026-02-24T10:00:01.25", data.clone());
    let created = apply_ok(store, &[Mutation::CreateOutput(output.clone())]).await;
    let listed = store.list_outputs(Some(run), page(1, 10)).await.expect("outputs").items;
    assert_eq!(listed.len(), 1);
    let Applied::Output { output: returned, changed: true } = &created[0] else { panic!("{created:?}") };
    assert_eq!(&listed[0], returned, "listed = returned on create");
    assert_eq!(listed[0].data, data);
    assert_eq!(
        serde_json::to_string(&listed[0].data).expect("json"),
        serde_json::to_string(&data).expect("json"),
        "key order is kept"
    );
    assert_eq!(
        (listed[0].job_uuid, listed[0].output_uuid, listed[0].timestamp),
        (Some(job), output.output_uuid, output.timestamp)
    );
}

pub async fn jobs_are_counted_by_status(store: &dyn Store) {
    let (run, _) = run_with_job(store, "2026-02-24T10:00:00").await;
    let mut batch = Vec::new();
    for (i, s) in [status::SUCCESS, status::SUCCESS, status::FAILED, status::QUEUED].iter().enumerate() {
        let mut job = new_job(Uuid::new_v4(), run, "2026-02-24T10:00:01");
        job.job_status = (*s).into();
        job.job_index = Some(i as i64);
        batch.push(Mutation::CreateJob(job));
    }
    apply_ok(store, &batch).await;
    let mut counts = store.count_jobs_by_status(run).await.expect("counts");
    counts.sort();
    let expected: Vec<(String, u64)> =
        vec![("Failed".into(), 1), ("Queued".into(), 1), ("Running".into(), 1), ("Success".into(), 2)];
    assert_eq!(counts, expected);
    assert!(store.count_jobs_by_status(Uuid::new_v4()).await.expect("counts").is_empty());
}

pub async fn agents_are_summarised_from_their_jobs(store: &dyn Store) {
    let run = Uuid::new_v4();
    apply_ok(store, &[Mutation::CreateRun(new_run(run, "2026-02-24T10:00:00"))]).await;
    let running = Uuid::new_v4();
    let mut batch = Vec::new();
    for (agent, s, at) in [
        ("agent-0", status::SUCCESS, "2026-02-24T10:00:01"),
        ("agent-0", status::FAILED, "2026-02-24T10:00:02"),
        ("agent-0", status::RUNNING, "2026-02-24T10:00:03"),
        ("agent-1", status::SUCCESS, "2026-02-24T10:00:04"),
        ("Unknown", status::QUEUED, "2026-02-24T10:00:05"),
    ] {
        let id = if s == status::RUNNING { running } else { Uuid::new_v4() };
        let mut job = new_job(id, run, at);
        job.job_associated_agent = agent.into();
        job.job_status = s.into();
        batch.push(Mutation::CreateJob(job));
    }
    apply_ok(store, &batch).await;
    let agents = store.agent_summaries(run).await.expect("summaries");
    assert_eq!(agents.len(), 2, "queued jobs belong to no agent: {agents:?}");
    assert_eq!(agents[0].agent, "agent-0");
    assert_eq!((agents[0].jobs_taken, agents[0].succeeded, agents[0].failed), (3, 1, 1));
    assert_eq!(agents[0].current_job, Some(running));
    assert_eq!(agents[0].last_seen, Some(ts("2026-02-24T10:00:03")));
    assert_eq!((agents[1].agent.as_str(), agents[1].jobs_taken, agents[1].current_job), ("agent-1", 1, None));
    assert!(store.agent_summaries(Uuid::new_v4()).await.expect("summaries").is_empty());
}

pub async fn finished_jobs_are_counted_per_time_bucket(store: &dyn Store) {
    let (run, running) = run_with_job(store, "2026-02-24T10:00:00").await;
    let (other_run, other_job) = run_with_job(store, "2026-02-24T10:00:00").await;
    let mut batch = Vec::new();
    let mut updates = vec![(other_job, status::SUCCESS, Some("2026-02-24T10:00:10"))];
    for (s, started, finished) in [
        (status::SUCCESS, "2026-02-24T09:59:59", Some("2026-02-24T10:00:05")),
        (status::FAILED, "2026-02-24T10:00:01", Some("2026-02-24T10:00:59.999")),
        (status::SUCCESS, "2026-02-24T10:01:10", None),
        (status::CANCELLED, "2026-02-24T10:00:02", Some("2026-02-24T10:02:01")),
        (status::QUEUED, "2026-02-24T10:00:03", None),
    ] {
        let job = Uuid::new_v4();
        batch.push(Mutation::CreateJob(new_job(job, run, started)));
        updates.push((job, s, finished));
    }
    batch.extend(updates.into_iter().map(|(job_uuid, s, finished)| {
        Mutation::UpdateJob(JobUpdate {
            job_uuid,
            job_status: Some(s.into()),
            job_finished: finished.map(ts),
            ..JobUpdate::default()
        })
    }));
    apply_ok(store, &batch).await;
    let bucket = |start: &str, success, failed, cancelled| crate::model::TimelineBucket {
        start: ts(start),
        success,
        failed,
        cancelled,
    };
    assert_eq!(
        store.job_timeline(run, 60).await.expect("timeline"),
        vec![
            bucket("2026-02-24T10:00:00", 1, 1, 0),
            bucket("2026-02-24T10:01:00", 1, 0, 0),
            bucket("2026-02-24T10:02:00", 0, 0, 1),
        ],
        "running {running} and queued jobs are not counted; a job without job_finished counts at job_datetime"
    );
    assert_eq!(store.job_timeline(run, 3600).await.expect("timeline"), vec![bucket("2026-02-24T10:00:00", 2, 1, 1)]);
    assert_eq!(store.job_timeline(other_run, 60).await.expect("timeline").len(), 1, "only the run's own jobs");
    assert!(store.job_timeline(Uuid::new_v4(), 60).await.expect("timeline").is_empty());
}

pub async fn connectivity_check_passes(store: &dyn Store) {
    store.check_connectivity().await.expect("a fresh store is reachable");
    assert!(!store.describe().is_empty());
}
