//! Run, Job, Event and Output records and their statuses: the serde types every part shares.
//!
//! Field names are the original monitoring API's, so the original dashboard and agents work
//! unchanged. Job and event statuses keep the original's spellings (`Running`, `Success`,
//! `Failed`) and stay free-form strings on the wire, as they were.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Job and event statuses, in the original's spellings.
pub mod status {
    /// Registered by the orchestrator, waiting in the queue.
    pub const QUEUED: &str = "Queued";
    pub const RUNNING: &str = "Running";
    pub const SUCCESS: &str = "Success";
    pub const FAILED: &str = "Failed";
    /// The run was cancelled before this job ended.
    pub const CANCELLED: &str = "Cancelled";

    /// The final statuses: a job in one of them will not change any more.
    pub const FINAL: [&str; 3] = [SUCCESS, FAILED, CANCELLED];

    /// A job in one of these states will not change any more.
    pub fn is_final(status: &str) -> bool {
        FINAL.contains(&status)
    }
}

/// Longest status string accepted on the wire.
pub const MAX_STATUS_LEN: usize = 64;

/// A run's lifecycle: dispatching → running → completed | failed | cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Dispatching,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Dispatching => "dispatching",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(match raw {
            "dispatching" => RunStatus::Dispatching,
            "running" => RunStatus::Running,
            "completed" => RunStatus::Completed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            other => return Err(format!("unknown run status {other:?}")),
        })
    }
}

/// A point in time, UTC, with microsecond precision.
///
/// Accepted as `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`, with a space instead of `T` (the
/// original's bulk CSVs), or a bare date; returned as ISO 8601 with a `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    pub fn now() -> Self {
        Self::from_micros(Utc::now().timestamp_micros())
    }

    pub fn from_micros(micros: i64) -> Self {
        Self(DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default())
    }

    /// Microseconds since the Unix epoch: how the SQLite store keeps it (sortable, compact).
    pub fn as_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if let Ok(dt) = DateTime::parse_from_rfc3339(raw) {
            return Ok(Self::from_micros(dt.with_timezone(&Utc).timestamp_micros()));
        }
        let naive = raw.strip_suffix('Z').unwrap_or(raw);
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
            if let Ok(dt) = NaiveDateTime::parse_from_str(naive, format) {
                return Ok(Self::from_micros(dt.and_utc().timestamp_micros()));
            }
        }
        if let Ok(date) = NaiveDate::parse_from_str(naive, "%Y-%m-%d")
            && let Some(dt) = date.and_hms_opt(0, 0, 0)
        {
            return Ok(Self::from_micros(dt.and_utc().timestamp_micros()));
        }
        Err(format!("{raw:?} is not a datetime; expected YYYY-MM-DDTHH:MM:SS[.fff][Z]"))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%dT%H:%M:%S%.fZ"))
    }
}

impl FromStr for Timestamp {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Timestamp::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
            .examples([serde_json::json!("2026-02-24T10:30:00Z")])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

/// One launch of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Run {
    pub run_uuid: Uuid,
    pub run_datetime: Timestamp,
    /// `dispatching`, `running`, `completed`, `failed`, `cancelled`; absent for runs recorded
    /// through the plain monitoring API (`POST /api/runs/`), which have no lifecycle.
    pub run_status: Option<RunStatus>,
    pub number_of_agents: Option<i64>,
    pub number_of_jobs: Option<i64>,
    /// Why the run failed or was cancelled.
    pub run_detail: Option<String>,
    pub run_finished: Option<Timestamp>,
}

/// One unit of work of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub job_uuid: Uuid,
    pub run_uuid: Uuid,
    pub job_datetime: Timestamp,
    pub job_associated_agent: String,
    pub job_status: String,
    /// Position in the run (0-based), for jobs registered by the orchestrator.
    pub job_index: Option<i64>,
    /// How many times an agent started it.
    pub job_attempts: Option<i64>,
    /// Why it failed (exit code, timeout, exception text).
    pub job_detail: Option<String>,
    pub job_finished: Option<Timestamp>,
}

/// Something that happened inside a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    pub event_uuid: Uuid,
    pub event_content: String,
    pub job_uuid: Uuid,
    pub event_datetime: Timestamp,
    pub event_status: String,
}

/// One row a job produced (`StandardOutput.send`, `output_manager.send`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Output {
    pub output_uuid: Uuid,
    pub run_uuid: Uuid,
    pub job_uuid: Option<Uuid>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub timestamp: Timestamp,
}

/// Key of the job's uuid inside every job message (the orchestrator registers each job, with
/// this uuid, before publishing it).
pub const JOB_UUID_KEY: &str = "job_uuid";

/// Key under which every agent message carries the [`AgentRunConfig`].
pub const AGENT_RUN_CONFIG_KEY: &str = "_armada";

/// What the orchestrator tells every agent about its run, inside the agent message under
/// `"_armada"` (so it travels wherever the message does: in-process, Redis, a pod).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRunConfig {
    /// Seconds one attempt of a job may take before the worker is killed (`job_timeout_secs`).
    pub job_timeout_secs: u64,
    /// Attempts of a job whose worker crashed or timed out before it is `Failed` (`max_attempts`).
    pub max_attempts: u32,
    /// The worker command (`worker_command`); `None` = the Python helper (`python3 -m armada_worker`).
    pub worker_command: Option<Vec<String>>,
    /// The project bundle (tar.gz) stored beside the messages: its checksum and size.
    pub bundle_sha256: Option<String>,
    pub bundle_size: Option<u64>,
    /// Whether the project has a `requirements.txt` to install into the agent's environment.
    pub has_requirements: bool,
    pub number_of_agents: usize,
    pub number_of_jobs: usize,
}

impl AgentRunConfig {
    /// Reads it from an agent message; `None` when absent (a message written by another tool).
    pub fn from_agent_message(message: &serde_json::Value) -> Option<Result<Self, String>> {
        message.get(AGENT_RUN_CONFIG_KEY).map(|raw| {
            serde_json::from_value(raw.clone()).map_err(|e| format!("{AGENT_RUN_CONFIG_KEY} in the agent message: {e}"))
        })
    }
}

/// The name an agent records itself under (`job_associated_agent`): `agent-{pod_index}`.
pub fn agent_name(pod_index: usize) -> String {
    format!("agent-{pod_index}")
}

/// What a run's jobs say about one agent: the run view's agents panel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentSummary {
    /// `job_associated_agent` as the agents record it (`agent-3` for pod index 3).
    pub agent: String,
    /// Jobs it started (any status but `Queued`).
    pub jobs_taken: u64,
    pub succeeded: u64,
    pub failed: u64,
    /// The job it is running now, if any.
    pub current_job: Option<Uuid>,
    /// The last time one of its jobs started or finished.
    pub last_seen: Option<Timestamp>,
}

/// A run with its jobs counted by status and its agents: what progress views show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunSummary {
    pub run: Run,
    /// Jobs by status (`Queued`, `Running`, `Success`, `Failed`, `Cancelled`, …).
    pub counts: std::collections::BTreeMap<String, u64>,
    pub total_jobs: u64,
    pub agents: Vec<AgentSummary>,
}

impl RunSummary {
    pub fn count(&self, status: &str) -> u64 {
        self.counts.get(status).copied().unwrap_or_default()
    }

    /// Jobs with an outcome (`Success`, `Failed`, `Cancelled`).
    pub fn finished(&self) -> u64 {
        self.counts.iter().filter(|(s, _)| status::is_final(s)).map(|(_, n)| n).sum()
    }
}

/// Jobs that reached a final status within one time bucket of a run: the run view's
/// throughput and success-rate chart. A job counts at its `job_finished` time, or at its
/// `job_datetime` when it has none (a status set through `PATCH /api/jobs/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineBucket {
    /// Start of the bucket (a multiple of the bucket size since the Unix epoch).
    pub start: Timestamp,
    pub success: u64,
    pub failed: u64,
    pub cancelled: u64,
}

/// A page of a list, in the original API's shape (`{"runs": […], "total", "page", "page_size"}`
/// is built by the handler from this).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub page_size: u32,
}

/// A validated page request: page ≥ 1, 1 ≤ page_size ≤ 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: u32,
    pub page_size: u32,
}

impl PageRequest {
    pub const MAX_PAGE_SIZE: u32 = 100;

    pub fn new(page: Option<i64>, page_size: Option<i64>, default_size: u32) -> Result<Self, String> {
        let page = page.unwrap_or(1);
        let page_size = page_size.unwrap_or(i64::from(default_size));
        if page < 1 {
            return Err(format!("page must be 1 or more, got {page}"));
        }
        if !(1..=i64::from(Self::MAX_PAGE_SIZE)).contains(&page_size) {
            return Err(format!("page_size must be between 1 and {}, got {page_size}", Self::MAX_PAGE_SIZE));
        }
        let page = u32::try_from(page).map_err(|_| format!("page {page} is too large"))?;
        Ok(Self { page, page_size: page_size as u32 })
    }

    pub fn offset(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.page_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_accept_the_spec_forms_and_return_iso_8601() {
        for (input, expected) in [
            ("2026-02-24T10:30:00", "2026-02-24T10:30:00Z"),
            ("2026-02-24T10:30:00Z", "2026-02-24T10:30:00Z"),
            ("2026-02-24T10:30:00.123", "2026-02-24T10:30:00.123Z"),
            ("2026-02-24T10:30:00.123456Z", "2026-02-24T10:30:00.123456Z"),
            ("2026-02-24 10:30:00", "2026-02-24T10:30:00Z"),
            ("2026-02-24T12:30:00+02:00", "2026-02-24T10:30:00Z"),
            ("2026-02-24", "2026-02-24T00:00:00Z"),
        ] {
            let ts = Timestamp::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(ts.to_string(), expected, "for {input}");
            assert_eq!(Timestamp::parse(&ts.to_string()), Ok(ts), "round trip of {input}");
        }
    }

    #[test]
    fn bad_timestamps_say_what_is_expected() {
        let err = Timestamp::parse("yesterday").unwrap_err();
        assert!(err.contains("YYYY-MM-DDTHH:MM:SS"), "{err}");
        assert!(Timestamp::parse("2026-02-30T00:00:00").is_err());
    }

    #[test]
    fn page_bounds() {
        assert_eq!(PageRequest::new(None, None, 5), Ok(PageRequest { page: 1, page_size: 5 }));
        assert!(PageRequest::new(Some(0), None, 5).is_err());
        assert!(PageRequest::new(Some(1), Some(0), 5).is_err());
        assert!(PageRequest::new(Some(1), Some(101), 5).is_err());
        assert_eq!(PageRequest::new(Some(3), Some(100), 5).map(PageRequest::offset), Ok(200));
    }
}
