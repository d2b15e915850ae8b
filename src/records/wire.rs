//! The wire shapes of record writes: the bodies of `POST /api/runs`, `/api/jobs`, `/api/events`,
//! `/api/outputs`, the `PATCH …/status` bodies, and the items of `POST /api/records`. Shared by
//! the backend's handlers and by HTTP clients of the backend (`From<Mutation> for RecordOp`).
//!
//! Defaults as the original API had them: `job_associated_agent` = `"Unknown"`, job and event
//! status = `"Running"`, a missing uuid is generated (send one to make retries idempotent),
//! a missing output `timestamp` is now.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::{JobUpdate, Mutation, NewEvent, NewJob, NewLogChunk, NewOutput, NewRun};
use crate::model::{MAX_STATUS_LEN, RunStatus, Timestamp, status};

/// What the original called an agent it did not know.
pub const UNKNOWN_AGENT: &str = "Unknown";

/// `POST /api/runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateRun {
    pub run_uuid: Uuid,
    pub run_datetime: Timestamp,
    /// Lifecycle fields, set by the orchestrator; absent for a plain monitoring run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_status: Option<RunStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_agents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_of_jobs: Option<i64>,
}

/// A run's lifecycle step (`update_run` in `POST /api/records`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdateRun {
    pub run_uuid: Uuid,
    pub run_status: RunStatus,
    /// Why it failed or was cancelled; absent leaves the stored detail as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_detail: Option<String>,
}

/// `POST /api/jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateJob {
    pub run_uuid: Uuid,
    pub job_datetime: Timestamp,
    /// Default `"Unknown"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_associated_agent: Option<String>,
    /// Default `"Running"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    /// Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_uuid: Option<Uuid>,
    /// Position in the run (0-based), for jobs registered by the orchestrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_index: Option<i64>,
}

/// A change to a job (`update_job` in `POST /api/records`); absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UpdateJob {
    pub job_uuid: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_associated_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_attempts: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_finished: Option<Timestamp>,
}

/// `PATCH /api/jobs/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobStatus {
    pub job_uuid: Uuid,
    pub job_status: String,
}

/// `POST /api/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateEvent {
    pub event_content: String,
    pub job_uuid: Uuid,
    pub event_datetime: Timestamp,
    /// Default `"Running"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_status: Option<String>,
    /// Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_uuid: Option<Uuid>,
}

/// `PATCH /api/events/status` (and `update_event` in `POST /api/records`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventStatus {
    pub event_uuid: Uuid,
    pub event_status: String,
}

/// `POST /api/outputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreateOutput {
    pub run_uuid: Uuid,
    /// Any JSON value, stored as sent.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Default: now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The job that produced it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_uuid: Option<Uuid>,
    /// Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_uuid: Option<Uuid>,
}

/// Captured worker output (`append_log` in `POST /api/records`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppendLog {
    /// Unique per chunk: a replayed chunk is not appended twice.
    pub chunk_uuid: Uuid,
    pub job_uuid: Uuid,
    pub text: String,
}

/// One item of `POST /api/records`: `{"op": "create_event", …the fields of that body…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum RecordOp {
    CreateRun(CreateRun),
    UpdateRun(UpdateRun),
    CreateJob(CreateJob),
    UpdateJob(UpdateJob),
    CreateEvent(CreateEvent),
    UpdateEvent(EventStatus),
    CreateOutput(CreateOutput),
    AppendLog(AppendLog),
}

/// A status as the API accepts it: 1 to `MAX_STATUS_LEN` characters, not blank.
pub fn check_status(field: &str, value: &str) -> Result<(), String> {
    let length = value.chars().count();
    if value.trim().is_empty() || length > MAX_STATUS_LEN {
        return Err(format!("{field} must be 1 to {MAX_STATUS_LEN} characters and not blank, got {length}: {value:?}"));
    }
    Ok(())
}

fn status_or_running(field: &str, value: Option<String>) -> Result<String, String> {
    let value = value.unwrap_or_else(|| status::RUNNING.to_string());
    check_status(field, &value)?;
    Ok(value)
}

impl CreateRun {
    pub fn into_mutation(self) -> Mutation {
        Mutation::CreateRun(NewRun {
            run_uuid: self.run_uuid,
            run_datetime: self.run_datetime,
            run_status: self.run_status,
            number_of_agents: self.number_of_agents,
            number_of_jobs: self.number_of_jobs,
        })
    }
}

impl CreateJob {
    pub fn into_mutation(self) -> Result<Mutation, String> {
        Ok(Mutation::CreateJob(NewJob {
            job_uuid: self.job_uuid.unwrap_or_else(Uuid::new_v4),
            run_uuid: self.run_uuid,
            job_datetime: self.job_datetime,
            job_associated_agent: self.job_associated_agent.unwrap_or_else(|| UNKNOWN_AGENT.to_string()),
            job_status: status_or_running("job_status", self.job_status)?,
            job_index: self.job_index,
        }))
    }
}

impl UpdateJob {
    pub fn into_mutation(self) -> Result<Mutation, String> {
        if let Some(value) = &self.job_status {
            check_status("job_status", value)?;
        }
        Ok(Mutation::UpdateJob(JobUpdate {
            job_uuid: self.job_uuid,
            job_status: self.job_status,
            job_associated_agent: self.job_associated_agent,
            job_attempts: self.job_attempts,
            job_detail: self.job_detail,
            job_finished: self.job_finished,
        }))
    }
}

impl JobStatus {
    pub fn into_mutation(self) -> Result<Mutation, String> {
        UpdateJob {
            job_uuid: self.job_uuid,
            job_status: Some(self.job_status),
            job_associated_agent: None,
            job_attempts: None,
            job_detail: None,
            job_finished: None,
        }
        .into_mutation()
    }
}

impl CreateEvent {
    pub fn into_mutation(self) -> Result<Mutation, String> {
        Ok(Mutation::CreateEvent(NewEvent {
            event_uuid: self.event_uuid.unwrap_or_else(Uuid::new_v4),
            event_content: self.event_content,
            job_uuid: self.job_uuid,
            event_datetime: self.event_datetime,
            event_status: status_or_running("event_status", self.event_status)?,
        }))
    }
}

impl EventStatus {
    pub fn into_mutation(self) -> Result<Mutation, String> {
        check_status("event_status", &self.event_status)?;
        Ok(Mutation::UpdateEvent { event_uuid: self.event_uuid, event_status: self.event_status })
    }
}

impl CreateOutput {
    pub fn into_mutation(self) -> Mutation {
        Mutation::CreateOutput(NewOutput {
            output_uuid: self.output_uuid.unwrap_or_else(Uuid::new_v4),
            run_uuid: self.run_uuid,
            job_uuid: self.job_uuid,
            data: self.data,
            timestamp: self.timestamp.unwrap_or_else(Timestamp::now),
        })
    }
}

impl RecordOp {
    /// The mutation this item asks for, with defaults filled in; `Err` says what is invalid.
    pub fn into_mutation(self) -> Result<Mutation, String> {
        match self {
            RecordOp::CreateRun(body) => Ok(body.into_mutation()),
            RecordOp::UpdateRun(body) => Ok(Mutation::UpdateRun {
                run_uuid: body.run_uuid,
                run_status: body.run_status,
                run_detail: body.run_detail,
            }),
            RecordOp::CreateJob(body) => body.into_mutation(),
            RecordOp::UpdateJob(body) => body.into_mutation(),
            RecordOp::CreateEvent(body) => body.into_mutation(),
            RecordOp::UpdateEvent(body) => body.into_mutation(),
            RecordOp::CreateOutput(body) => Ok(body.into_mutation()),
            RecordOp::AppendLog(body) => Ok(Mutation::AppendLog(NewLogChunk {
                chunk_uuid: body.chunk_uuid,
                job_uuid: body.job_uuid,
                text: body.text,
            })),
        }
    }
}

/// How an HTTP client of the backend sends a mutation: every uuid and default explicit, so
/// the server stores exactly what the in-process path would.
impl From<Mutation> for RecordOp {
    fn from(mutation: Mutation) -> Self {
        match mutation {
            Mutation::CreateRun(new) => RecordOp::CreateRun(CreateRun {
                run_uuid: new.run_uuid,
                run_datetime: new.run_datetime,
                run_status: new.run_status,
                number_of_agents: new.number_of_agents,
                number_of_jobs: new.number_of_jobs,
            }),
            Mutation::UpdateRun { run_uuid, run_status, run_detail } => {
                RecordOp::UpdateRun(UpdateRun { run_uuid, run_status, run_detail })
            }
            Mutation::CreateJob(new) => RecordOp::CreateJob(CreateJob {
                run_uuid: new.run_uuid,
                job_datetime: new.job_datetime,
                job_associated_agent: Some(new.job_associated_agent),
                job_status: Some(new.job_status),
                job_uuid: Some(new.job_uuid),
                job_index: new.job_index,
            }),
            Mutation::UpdateJob(update) => RecordOp::UpdateJob(UpdateJob {
                job_uuid: update.job_uuid,
                job_status: update.job_status,
                job_associated_agent: update.job_associated_agent,
                job_attempts: update.job_attempts,
                job_detail: update.job_detail,
                job_finished: update.job_finished,
            }),
            Mutation::CreateEvent(new) => RecordOp::CreateEvent(CreateEvent {
                event_content: new.event_content,
                job_uuid: new.job_uuid,
                event_datetime: new.event_datetime,
                event_status: Some(new.event_status),
                event_uuid: Some(new.event_uuid),
            }),
            Mutation::UpdateEvent { event_uuid, event_status } => {
                RecordOp::UpdateEvent(EventStatus { event_uuid, event_status })
            }
            Mutation::CreateOutput(new) => RecordOp::CreateOutput(CreateOutput {
                run_uuid: new.run_uuid,
                data: new.data,
                timestamp: Some(new.timestamp),
                job_uuid: new.job_uuid,
                output_uuid: Some(new.output_uuid),
            }),
            Mutation::AppendLog(chunk) => RecordOp::AppendLog(AppendLog {
                chunk_uuid: chunk.chunk_uuid,
                job_uuid: chunk.job_uuid,
                text: chunk.text,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(raw: &str) -> Timestamp {
        Timestamp::parse(raw).expect("timestamp")
    }

    #[test]
    fn every_mutation_survives_the_wire() {
        let (run, job) = (Uuid::new_v4(), Uuid::new_v4());
        let mutations = vec![
            Mutation::CreateRun(NewRun {
                run_uuid: run,
                run_datetime: ts("2026-02-24T10:30:00.123456Z"),
                run_status: Some(RunStatus::Dispatching),
                number_of_agents: Some(2),
                number_of_jobs: Some(5),
            }),
            Mutation::UpdateRun { run_uuid: run, run_status: RunStatus::Failed, run_detail: Some("boom".into()) },
            Mutation::CreateJob(NewJob {
                job_uuid: job,
                run_uuid: run,
                job_datetime: ts("2026-02-24T10:30:01"),
                job_associated_agent: "agent-0".into(),
                job_status: status::QUEUED.into(),
                job_index: Some(0),
            }),
            Mutation::UpdateJob(JobUpdate {
                job_uuid: job,
                job_status: Some(status::FAILED.into()),
                job_associated_agent: None,
                job_attempts: Some(3),
                job_detail: Some("timeout".into()),
                job_finished: Some(ts("2026-02-24T10:31:00")),
            }),
            Mutation::CreateEvent(NewEvent {
                event_uuid: Uuid::new_v4(),
                event_content: "page_loaded".into(),
                job_uuid: job,
                event_datetime: ts("2026-02-24T10:30:02"),
                event_status: status::SUCCESS.into(),
            }),
            Mutation::UpdateEvent { event_uuid: Uuid::new_v4(), event_status: status::FAILED.into() },
            Mutation::CreateOutput(NewOutput {
                output_uuid: Uuid::new_v4(),
                run_uuid: run,
                job_uuid: Some(job),
                data: serde_json::json!({"b": 1, "a": [true, null]}),
                timestamp: ts("2026-02-24T10:30:03"),
            }),
            Mutation::AppendLog(NewLogChunk { chunk_uuid: Uuid::new_v4(), job_uuid: job, text: "line\n".into() }),
        ];
        for mutation in mutations {
            let json = serde_json::to_string(&RecordOp::from(mutation.clone())).expect("serialise");
            let back: RecordOp = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back.into_mutation(), Ok(mutation), "{json}");
        }
    }

    #[test]
    fn items_are_tagged_by_op_and_defaults_fill_in() {
        let job = Uuid::new_v4();
        let raw = format!(
            r#"{{"op": "create_event", "event_content": "x", "job_uuid": "{job}", "event_datetime": "2026-02-24 10:30:00"}}"#
        );
        let op: RecordOp = serde_json::from_str(&raw).expect("parse");
        let Ok(Mutation::CreateEvent(event)) = op.into_mutation() else { panic!("not an event") };
        assert_eq!((event.event_status.as_str(), event.job_uuid), (status::RUNNING, job));
        assert!(!event.event_uuid.is_nil());
    }

    #[test]
    fn statuses_are_bounded_and_not_blank() {
        assert!(check_status("job_status", "Success").is_ok());
        assert!(check_status("job_status", &"x".repeat(MAX_STATUS_LEN)).is_ok());
        for bad in ["", "   ", &"x".repeat(MAX_STATUS_LEN + 1)] {
            let err = check_status("job_status", bad).unwrap_err();
            assert!(err.starts_with("job_status must be 1 to 64 characters"), "{err}");
        }
        let body = EventStatus { event_uuid: Uuid::new_v4(), event_status: String::new() };
        assert!(body.into_mutation().is_err());
    }
}
