//! The write side without a server: how a batch is cut, and that every statement it builds
//! binds exactly as many values as its SQL has placeholders.

use super::*;
use crate::infra::db::{JobUpdate, NewEvent, NewJob, NewLogChunk, NewOutput, NewRun};
use crate::model::{Job, Run, Timestamp, status};

fn ts(raw: &str) -> Timestamp {
    Timestamp::parse(raw).expect("timestamp")
}

fn run() -> Mutation {
    Mutation::CreateRun(NewRun {
        run_uuid: Uuid::new_v4(),
        run_datetime: ts("2026-02-24T10:30:00"),
        run_status: Some(RunStatus::Dispatching),
        number_of_agents: Some(2),
        number_of_jobs: None,
    })
}

fn job(status: &str) -> Mutation {
    Mutation::CreateJob(NewJob {
        job_uuid: Uuid::new_v4(),
        run_uuid: Uuid::new_v4(),
        job_datetime: ts("2026-02-24T10:30:00"),
        job_associated_agent: "agent-0".into(),
        job_status: status.into(),
        job_index: Some(3),
    })
}

fn event() -> Mutation {
    Mutation::CreateEvent(NewEvent {
        event_uuid: Uuid::new_v4(),
        event_content: "page_loaded".into(),
        job_uuid: Uuid::new_v4(),
        event_datetime: ts("2026-02-24T10:30:00.000001"),
        event_status: status::RUNNING.into(),
    })
}

fn output() -> Mutation {
    Mutation::CreateOutput(NewOutput {
        output_uuid: Uuid::new_v4(),
        run_uuid: Uuid::new_v4(),
        job_uuid: None,
        data: serde_json::json!({"k": 1}),
        timestamp: ts("2026-02-24T10:30:00"),
    })
}

fn log() -> Mutation {
    Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid: Uuid::new_v4(), text: "line\n".into() })
}

fn update_event() -> Mutation {
    Mutation::UpdateEvent { event_uuid: Uuid::new_v4(), event_status: status::SUCCESS.into() }
}

#[test]
fn consecutive_creates_of_one_kind_share_a_segment() {
    let batch =
        vec![run(), job("Queued"), job("Queued"), event(), event(), update_event(), event(), log(), log(), output()];
    assert_eq!(
        segments(&batch),
        vec![
            Segment::Creates("armada_runs", 0..1),
            Segment::Creates("armada_jobs", 1..3),
            Segment::Creates("armada_events", 3..5),
            Segment::Update(5),
            Segment::Creates("armada_events", 6..7),
            Segment::Creates("armada_job_logs", 7..9),
            Segment::Creates("armada_output", 9..10),
        ]
    );
    assert!(segments(&[]).is_empty());
}

#[test]
fn every_create_binds_one_value_per_insert_column() {
    for mutation in [run(), job("Queued"), event(), output(), log()] {
        let target = target(&mutation).expect("a create");
        let (key, values) = row_values(&mutation).expect("valid");
        assert_eq!(values.len(), target.columns.len(), "{}", target.table);
        assert_eq!(values[0], Param::uuid(key), "{}: the key is bound first", target.table);
        let rows: Vec<Row> = (0..3).map(|index| Row { index, key: Uuid::new_v4(), values: values.clone() }).collect();
        let statement = insert_statement(target, rows.iter().map(|row| row.values.as_slice())).expect("counts agree");
        assert_eq!(statement.params.len(), 3 * target.params_per_row());
        assert_eq!(statement.params[target.params_per_row()], Param::bigint(1), "each row starts with its position");
    }
    assert!(row_values(&update_event()).is_err(), "an update has no insert row");
}

#[test]
fn values_sql_server_cannot_store_reject_that_item_only() {
    let long = "x".repeat(256);
    let err = row_values(&job(&long)).unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m.starts_with("job_status")), "{err:?}");
    let Mutation::CreateRun(mut new) = run() else { unreachable!() };
    new.run_datetime = Timestamp::from_micros(i64::MAX / 2);
    let err = row_values(&Mutation::CreateRun(new)).unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m.starts_with("run_datetime")), "{err:?}");
    let update = JobUpdate { job_uuid: Uuid::new_v4(), job_associated_agent: Some(long), ..JobUpdate::default() };
    assert!(check_job_update(&update).is_err());
}

#[test]
fn update_delete_and_finish_statements_bind_what_their_sql_declares() {
    let run = Run {
        run_uuid: Uuid::new_v4(),
        run_datetime: ts("2026-02-24T10:30:00"),
        run_status: Some(RunStatus::Failed),
        number_of_agents: None,
        number_of_jobs: None,
        run_detail: Some("why".into()),
        run_finished: Some(ts("2026-02-24T10:31:00")),
    };
    update_run_statement(&run).expect("update run");
    let job = Job {
        job_uuid: Uuid::new_v4(),
        run_uuid: run.run_uuid,
        job_datetime: ts("2026-02-24T10:30:00"),
        job_associated_agent: "agent-1".into(),
        job_status: status::FAILED.into(),
        job_index: None,
        job_attempts: Some(2),
        job_detail: None,
        job_finished: None,
    };
    update_job_statement(&job).expect("update job");
    update_event_statement(Uuid::new_v4(), status::SUCCESS).expect("update event");
    assert_eq!(delete_run_statements(run.run_uuid).expect("delete").len(), 4);
    finish_open_jobs_statement(run.run_uuid, status::CANCELLED, "run cancelled", Timestamp::now()).expect("finish");
}
