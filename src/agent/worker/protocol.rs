//! The worker protocol's messages and framing: one JSON object per line, each with a `type`.
//!
//! docs/worker-protocol.md is the reference for worker authors; this file is its Rust half.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt};
use uuid::Uuid;

use crate::model::status;

/// Version of the protocol this agent speaks; both hellos carry it and must agree.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest line either side may send, newline excluded.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// What the agent tells the worker about its place in the run, beside the agent message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitContext {
    pub run_id: Uuid,
    pub pod_index: u32,
    /// The local proxy the agent prepared (`http://127.0.0.1:8081`), if any.
    pub proxy_url: Option<String>,
    /// The fingerprint the agent fetched, if any.
    pub fingerprint: Option<Value>,
}

/// One job handed to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    pub job_uuid: Uuid,
    /// 1 for the first delivery, 2 for the first retry, …
    pub attempt: u32,
    pub job_message: Value,
}

/// Agent → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    Hello { protocol: u32, agent: String },
    Init { agent_message: Value, context: InitContext },
    Job(JobRequest),
    Reply(Reply),
    Shutdown,
}

/// Worker → agent. The worker's hello is read separately (see [`parse_hello`]) so that a
/// worker of another protocol version is recognised even if its hello has another shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    Hello {
        protocol: u32,
        worker: String,
    },
    Ready,
    InitFailed {
        error: String,
    },
    Call {
        id: u64,
        method: String,
        #[serde(default)]
        params: Value,
    },
    Done {
        job_uuid: Uuid,
        status: FinalStatus,
        #[serde(default)]
        error: Option<String>,
    },
}

/// The answer to one call: `ok` with a `result`, or not `ok` with an `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn new(id: u64, outcome: Result<Value, String>) -> Self {
        match outcome {
            Ok(result) => Self { id, ok: true, result: Some(result), error: None },
            Err(error) => Self { id, ok: false, result: None, error: Some(error) },
        }
    }
}

/// A field that is there, even as `null`, is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// How a job ended, as the worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinalStatus {
    Success,
    Failed,
}

impl FinalStatus {
    /// The job status to record (`Success` / `Failed`, the original's spellings).
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Success => status::SUCCESS,
            FinalStatus::Failed => status::FAILED,
        }
    }
}

/// The status of an event or a job as a worker may set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallStatus {
    Running,
    Success,
    Failed,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Running => status::RUNNING,
            CallStatus::Success => status::SUCCESS,
            CallStatus::Failed => status::FAILED,
        }
    }
}

/// A worker's call, checked and with its job resolved (absent `job_uuid` = the current job).
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerCall {
    /// One event; with `final_status` it also sets the job's status.
    Event {
        job_uuid: Uuid,
        content: String,
        status: CallStatus,
        final_status: bool,
    },
    JobStatus {
        job_uuid: Uuid,
        status: CallStatus,
    },
    /// User code registered a job of its own (never the current one: the helper skips that).
    CreateJob {
        job_uuid: Uuid,
    },
    /// One output row; `job_uuid` is `None` for outputs sent outside a job (e.g. during init).
    Output {
        job_uuid: Option<Uuid>,
        data: serde_json::Map<String, Value>,
    },
    /// A request about the agent's network, answered with data rather than stored.
    Network(NetworkCall),
}

/// What a worker may ask of the agent's network (its local proxy, its fingerprint provider).
#[derive(Debug, Clone, PartialEq)]
pub enum NetworkCall {
    /// `switch_proxy`: another upstream for the local proxy, with the same filters.
    SwitchProxy,
    /// `fingerprint`: a fresh fingerprint from the provider. `config` replaces the agent
    /// message's `config_fingerprint` as the request when given; `additional_data` replaces
    /// its `additional_data` when given.
    Fingerprint {
        config: Option<serde_json::Map<String, Value>>,
        additional_data: Option<serde_json::Map<String, Value>>,
    },
}

/// Every method a worker may call, for the error on an unknown one.
const METHODS: &str = "event, job_status, create_job, output, switch_proxy, fingerprint";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventParams {
    content: String,
    status: CallStatus,
    #[serde(default, rename = "final")]
    final_status: bool,
    #[serde(default)]
    job_uuid: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobStatusParams {
    status: CallStatus,
    #[serde(default)]
    job_uuid: Option<Uuid>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateJobParams {
    job_uuid: Uuid,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchProxyParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FingerprintParams {
    #[serde(default)]
    config_fingerprint: Option<serde_json::Map<String, Value>>,
    #[serde(default)]
    additional_data: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputParams {
    data: serde_json::Map<String, Value>,
    #[serde(default)]
    job_uuid: Option<Uuid>,
}

impl WorkerCall {
    /// Checks a call's method and params. `current_job` is the job the worker is running, if any.
    /// The error is the text the worker gets back in its `reply`.
    pub fn parse(method: &str, params: &Value, current_job: Option<Uuid>) -> Result<WorkerCall, String> {
        fn params_of<T: serde::de::DeserializeOwned>(method: &str, params: &Value) -> Result<T, String> {
            let params = if params.is_null() { Value::Object(Default::default()) } else { params.clone() };
            serde_json::from_value(params).map_err(|err| format!("bad params for `{method}`: {err}"))
        }
        let job = |explicit: Option<Uuid>| {
            explicit.or(current_job).ok_or_else(|| {
                format!("`{method}` needs a job: no job is running, so pass a job_uuid or call it from inside a job")
            })
        };
        match method {
            "event" => {
                let p: EventParams = params_of(method, params)?;
                if p.final_status && p.status == CallStatus::Running {
                    return Err("a final event must have status Success or Failed, not Running".into());
                }
                Ok(WorkerCall::Event {
                    job_uuid: job(p.job_uuid)?,
                    content: p.content,
                    status: p.status,
                    final_status: p.final_status,
                })
            }
            "job_status" => {
                let p: JobStatusParams = params_of(method, params)?;
                Ok(WorkerCall::JobStatus { job_uuid: job(p.job_uuid)?, status: p.status })
            }
            "create_job" => {
                let p: CreateJobParams = params_of(method, params)?;
                Ok(WorkerCall::CreateJob { job_uuid: p.job_uuid })
            }
            "output" => {
                let p: OutputParams = params_of(method, params)?;
                Ok(WorkerCall::Output { job_uuid: p.job_uuid.or(current_job), data: p.data })
            }
            "switch_proxy" => {
                let SwitchProxyParams {} = params_of(method, params)?;
                Ok(WorkerCall::Network(NetworkCall::SwitchProxy))
            }
            "fingerprint" => {
                let p: FingerprintParams = params_of(method, params)?;
                Ok(WorkerCall::Network(NetworkCall::Fingerprint {
                    config: p.config_fingerprint,
                    additional_data: p.additional_data,
                }))
            }
            other => Err(format!("unknown method `{other}`; methods are: {METHODS}")),
        }
    }

    /// The job this call is about, if any.
    pub fn job_uuid(&self) -> Option<Uuid> {
        match self {
            WorkerCall::Event { job_uuid, .. }
            | WorkerCall::JobStatus { job_uuid, .. }
            | WorkerCall::CreateJob { job_uuid } => Some(*job_uuid),
            WorkerCall::Output { job_uuid, .. } => *job_uuid,
            WorkerCall::Network(_) => None,
        }
    }
}

/// Reads a worker's hello leniently: `(protocol, worker name)`, or why the line is not a hello.
pub fn parse_hello(line: &[u8]) -> Result<(u64, String), String> {
    let value: Value = serde_json::from_slice(line).map_err(|_| format!("not JSON: {}", preview(line)))?;
    if value.get("type").and_then(Value::as_str) != Some("hello") {
        return Err(format!("expected a hello, got {}", preview(line)));
    }
    let protocol = value
        .get("protocol")
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("hello without a protocol number: {}", preview(line)))?;
    let worker = value.get("worker").and_then(Value::as_str).unwrap_or("unnamed worker").to_string();
    Ok((protocol, worker))
}

/// The first 200 characters of a line, for error messages.
pub fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// One message as a line, newline included.
pub fn encode(message: &ToWorker) -> Vec<u8> {
    // Serialising these types cannot fail: every map key is a string and no value is a float NaN.
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a line longer than {max} bytes (the protocol's limit)")]
    TooLong { max: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Splits a byte stream into lines. Cancel-safe: a partly read line stays in the buffer.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    max: usize,
    eof: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        Self { inner, buf: Vec::new(), scanned: 0, max, eof: false }
    }

    /// The next line without its `\n`; `None` at the end of the stream. A last line without
    /// a newline is returned as a line.
    pub async fn next_line(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let Some(offset) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + offset;
                if end > self.max {
                    return Err(FrameError::TooLong { max: self.max });
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                return Ok(Some(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(FrameError::TooLong { max: self.max });
            }
            if self.eof {
                self.scanned = 0;
                return Ok(if self.buf.is_empty() { None } else { Some(std::mem::take(&mut self.buf)) });
            }
            self.buf.reserve(64 * 1024);
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
