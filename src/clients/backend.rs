//! The backend as the orchestrator and the agents see it, chosen once at start: an in-process
//! handle on `Records` when the backend role runs in this process, an HTTP client of
//! `BACKEND_URL` otherwise. Callers cannot tell which; both reach the same `Records::apply`, so
//! every write is broadcast on the live stream either way.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::infra::db::{Mutation, StoreError};
use crate::model::{Job, Run, RunSummary};
use crate::records::Records;
use crate::records::wire::RecordOp;
use crate::settings::Secret;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackendError {
    /// The backend or its database cannot be reached: retrying later may work (agents spool).
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend refused the request (bad input, unknown id): retrying will not help.
    #[error("backend refused ({status}): {detail}")]
    Rejected { status: u16, detail: String },
}

impl BackendError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, BackendError::Unavailable(_))
    }
}

impl From<StoreError> for BackendError {
    fn from(error: StoreError) -> Self {
        let detail = error.to_string();
        match error {
            StoreError::Unavailable(_) => BackendError::Unavailable(detail),
            StoreError::NotFound(_) => BackendError::Rejected { status: 404, detail },
            StoreError::Invalid(_) => BackendError::Rejected { status: 422, detail },
            StoreError::Conflict(_) => BackendError::Rejected { status: 409, detail },
        }
    }
}

/// The outcome of one item of a batch: whether it changed anything (false = a replay), or
/// why it was refused.
pub type ItemOutcome = Result<bool, BackendError>;

/// One message of the live stream.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveItem {
    /// `{"type": kind, "data": data}` as `WS /ws/events` sends it.
    Message { kind: String, data: Value },
    /// Messages may have been missed (the listener lagged, or the connection was re-made):
    /// re-read whatever state matters.
    Gap,
}

pub type LiveStream = BoxStream<'static, LiveItem>;

#[async_trait]
pub trait BackendClient: Send + Sync + 'static {
    /// In-process, or the URL: never a token.
    fn describe(&self) -> String;
    async fn check_connectivity(&self) -> Result<(), BackendError>;
    /// Applies the batch in one transaction. The outer error means nothing was stored.
    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<ItemOutcome>, BackendError>;
    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, BackendError>;
    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, BackendError>;
    async fn run_summary(&self, run_uuid: Uuid) -> Result<Option<RunSummary>, BackendError>;
    /// Gives every job of the run without an outcome the status and reason; returns how many.
    async fn close_jobs(&self, run_uuid: Uuid, job_status: &str, job_detail: &str) -> Result<u64, BackendError>;
    /// Deletes the run and everything under it; false when there was no such run.
    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, BackendError>;
    /// Every change from now on. The HTTP client reconnects by itself (yielding `Gap`).
    async fn live(&self) -> Result<LiveStream, BackendError>;
}

/// The backend role in this very process.
#[derive(Clone)]
pub struct InProcessBackend {
    records: Records,
}

impl InProcessBackend {
    pub fn new(records: Records) -> Self {
        Self { records }
    }
}

#[async_trait]
impl BackendClient for InProcessBackend {
    fn describe(&self) -> String {
        format!("in-process ({})", self.records.store().describe())
    }

    async fn check_connectivity(&self) -> Result<(), BackendError> {
        Ok(self.records.store().check_connectivity().await?)
    }

    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<ItemOutcome>, BackendError> {
        let results = self.records.apply_owned(batch).await?;
        Ok(results.into_iter().map(|r| r.map(|applied| applied.changed()).map_err(BackendError::from)).collect())
    }

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, BackendError> {
        Ok(self.records.store().get_run(run_uuid).await?)
    }

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, BackendError> {
        Ok(self.records.store().get_job(job_uuid).await?)
    }

    async fn run_summary(&self, run_uuid: Uuid) -> Result<Option<RunSummary>, BackendError> {
        Ok(self.records.run_summary(run_uuid).await?)
    }

    async fn close_jobs(&self, run_uuid: Uuid, job_status: &str, job_detail: &str) -> Result<u64, BackendError> {
        Ok(self.records.finish_open_jobs(run_uuid, job_status, job_detail).await?.len() as u64)
    }

    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, BackendError> {
        Ok(self.records.delete_run(run_uuid).await?)
    }

    async fn live(&self) -> Result<LiveStream, BackendError> {
        let receiver = self.records.hub().subscribe();
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            use tokio::sync::broadcast::error::RecvError;
            match receiver.recv().await {
                Ok(text) => Some((parse_live(text.as_str()), receiver)),
                Err(RecvError::Lagged(_)) => Some((LiveItem::Gap, receiver)),
                Err(RecvError::Closed) => None,
            }
        });
        Ok(stream.boxed())
    }
}

/// A live-stream text frame as a `LiveItem`; a frame that is not the expected shape counts as
/// a gap (something was missed).
fn parse_live(text: &str) -> LiveItem {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        data: Value,
    }
    match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => LiveItem::Message { kind: envelope.kind, data: envelope.data },
        Err(_) => LiveItem::Gap,
    }
}

/// The backend role of another process, at `BACKEND_URL`.
#[derive(Clone)]
pub struct HttpBackend {
    base_url: String,
    token: Option<Secret>,
    client: reqwest::Client,
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct ItemAnswer {
    ok: bool,
    #[serde(default)]
    changed: Option<bool>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    detail: Option<String>,
}

#[derive(Deserialize)]
struct ClosedAnswer {
    closed: u64,
}

impl HttpBackend {
    pub fn new(base_url: &str, token: Option<Secret>) -> Result<Self, BackendError> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| BackendError::Unavailable(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self { base_url: base_url.trim_end_matches('/').to_string(), token, client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token.expose()),
            None => builder,
        }
    }

    /// Sends and decodes; `Ok(None)` for a 404 when `missing_ok`.
    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        missing_ok: bool,
    ) -> Result<Option<T>, BackendError> {
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND && missing_ok {
            return Ok(None);
        }
        if status.is_success() {
            return response.json::<T>().await.map(Some).map_err(|e| self.unreachable(e));
        }
        let detail = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|body| body.get("detail").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| status.to_string());
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            Err(BackendError::Unavailable(format!("{} answered {status}: {detail}", self.base_url)))
        } else {
            Err(BackendError::Rejected { status: status.as_u16(), detail })
        }
    }

    fn unreachable(&self, error: reqwest::Error) -> BackendError {
        BackendError::Unavailable(format!("{}: {error}", self.base_url))
    }

    fn ws_url(&self) -> String {
        let base = if let Some(rest) = self.base_url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = self.base_url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            self.base_url.clone()
        };
        match &self.token {
            Some(token) => format!(
                "{base}/ws/events?token={}",
                percent_encoding::utf8_percent_encode(token.expose(), percent_encoding::NON_ALPHANUMERIC)
            ),
            None => format!("{base}/ws/events"),
        }
    }
}

#[async_trait]
impl BackendClient for HttpBackend {
    fn describe(&self) -> String {
        crate::settings::redact_url(&self.base_url)
    }

    async fn check_connectivity(&self) -> Result<(), BackendError> {
        let response = self.client.get(self.url("/health")).send().await.map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(BackendError::Unavailable(format!("{} /health answered {}", self.base_url, response.status())))
        }
    }

    async fn apply(&self, batch: Vec<Mutation>) -> Result<Vec<ItemOutcome>, BackendError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let expected = batch.len();
        let ops: Vec<RecordOp> = batch.into_iter().map(RecordOp::from).collect();
        let answers: Vec<ItemAnswer> =
            self.call(self.request(reqwest::Method::POST, "/api/records").json(&ops), false).await?.unwrap_or_default();
        if answers.len() != expected {
            return Err(BackendError::Unavailable(format!(
                "{} answered {} outcomes for {expected} records",
                self.base_url,
                answers.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|a| {
                if a.ok {
                    Ok(a.changed.unwrap_or(true))
                } else {
                    let status = a.status.unwrap_or(422);
                    let detail = a.detail.unwrap_or_else(|| "refused".into());
                    if status >= 500 {
                        Err(BackendError::Unavailable(detail))
                    } else {
                        Err(BackendError::Rejected { status, detail })
                    }
                }
            })
            .collect())
    }

    async fn get_run(&self, run_uuid: Uuid) -> Result<Option<Run>, BackendError> {
        self.call(self.request(reqwest::Method::GET, &format!("/api/runs/{run_uuid}")), true).await
    }

    async fn get_job(&self, job_uuid: Uuid) -> Result<Option<Job>, BackendError> {
        self.call(self.request(reqwest::Method::GET, &format!("/api/jobs/{job_uuid}")), true).await
    }

    async fn run_summary(&self, run_uuid: Uuid) -> Result<Option<RunSummary>, BackendError> {
        self.call(self.request(reqwest::Method::GET, &format!("/api/runs/{run_uuid}/summary")), true).await
    }

    async fn close_jobs(&self, run_uuid: Uuid, job_status: &str, job_detail: &str) -> Result<u64, BackendError> {
        let body = serde_json::json!({"job_status": job_status, "job_detail": job_detail});
        let request = self.request(reqwest::Method::POST, &format!("/api/runs/{run_uuid}/close-jobs")).json(&body);
        Ok(self.call::<ClosedAnswer>(request, true).await?.map(|a| a.closed).unwrap_or_default())
    }

    async fn delete_run(&self, run_uuid: Uuid) -> Result<bool, BackendError> {
        let request = self.request(reqwest::Method::DELETE, &format!("/api/runs/{run_uuid}"));
        Ok(self.call::<Value>(request, true).await?.is_some())
    }

    async fn live(&self) -> Result<LiveStream, BackendError> {
        let url = self.ws_url();
        // Connect once up front so a wrong URL or token is an error now, not a silent retry loop.
        let (first, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .map_err(|e| BackendError::Unavailable(format!("live stream {}: {e}", self.describe())))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(follow_live(url, first, sender));
        Ok(tokio_stream::wrappers::ReceiverStream::new(receiver).boxed())
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Forwards frames until the receiver is dropped, reconnecting (with a `Gap`) when the
/// connection ends.
async fn follow_live(url: String, mut socket: WsStream, sender: tokio::sync::mpsc::Sender<LiveItem>) {
    use tokio_tungstenite::tungstenite::Message;
    loop {
        while let Some(frame) = socket.next().await {
            let item = match frame {
                Ok(Message::Text(text)) => parse_live(text.as_str()),
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(_) => continue,
            };
            if sender.send(item).await.is_err() {
                return;
            }
        }
        let mut delay = Duration::from_millis(100);
        socket = loop {
            if sender.is_closed() {
                return;
            }
            tokio::time::sleep(delay).await;
            match tokio_tungstenite::connect_async(url.as_str()).await {
                Ok((socket, _)) => break socket,
                Err(_) => delay = (delay * 2).min(Duration::from_secs(5)),
            }
        };
        if sender.send(LiveItem::Gap).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_frames_parse_or_count_as_gaps() {
        assert_eq!(
            parse_live(r#"{"type":"new_job","data":{"job_uuid":"x"}}"#),
            LiveItem::Message { kind: "new_job".into(), data: serde_json::json!({"job_uuid": "x"}) }
        );
        assert_eq!(parse_live("not json"), LiveItem::Gap);
    }

    #[test]
    fn store_errors_map_to_retry_or_refusal() {
        assert!(BackendError::from(StoreError::Unavailable("down".into())).is_unavailable());
        assert_eq!(
            BackendError::from(StoreError::NotFound("job x not found".into())),
            BackendError::Rejected { status: 404, detail: "job x not found".into() }
        );
    }

    #[test]
    fn ws_url_follows_the_scheme_and_carries_the_token() {
        let backend = HttpBackend::new("https://example.test:8000/", Some(Secret::new("a b"))).expect("client");
        assert_eq!(backend.ws_url(), "wss://example.test:8000/ws/events?token=a%20b");
        let backend = HttpBackend::new("http://127.0.0.1:8000", None).expect("client");
        assert_eq!(backend.ws_url(), "ws://127.0.0.1:8000/ws/events");
    }
}
