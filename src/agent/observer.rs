//! [`AgentObserver`]: a hook on what an agent does, for callers that show it live
//! (`armada workbench` prints every event and the worker's own prints as they happen).

use serde_json::Value;
use uuid::Uuid;

use super::worker::{LogLine, WorkerCall};

/// Called from the agent's tasks: implementations must not block. Every method has a no-op
/// default, so an observer implements only what it shows.
pub trait AgentObserver: Send + Sync + 'static {
    /// A step of the agent's own life ("worker ready", "queue ended").
    fn note(&self, _text: &str) {}
    /// A line the worker printed (`job_uuid` set while a job runs).
    fn worker_line(&self, _line: &LogLine) {}
    /// A job attempt is starting.
    fn job_started(&self, _job_uuid: Uuid, _attempt: u32, _job_message: &Value) {}
    /// A worker call was stored (or spooled).
    fn recorded(&self, _call: &WorkerCall) {}
    /// A job's outcome was recorded (`Success` or `Failed`, with the reason for a failure),
    /// or the job was skipped because it already had one.
    fn job_finished(&self, _job_uuid: Uuid, _status: &str, _reason: Option<&str>) {}
}

/// The observer of agents nobody watches.
pub struct Unobserved;

impl AgentObserver for Unobserved {}
