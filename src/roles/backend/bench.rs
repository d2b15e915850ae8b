//! `bench_ingest`: the backend's write path under load, end to end. Starts the app in-process
//! on loopback with a temporary SQLite file, attaches WebSocket clients (one of them stalled:
//! a 4 KiB receive buffer it never reads), then POSTs `/api/events` from keep-alive
//! connections against one run/job for a while and reports throughput and latency.
//! Client and server share the machine, so the figures are a floor, not a ceiling.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::app::{self, AppState};
use crate::roles::Role;
use crate::settings::Settings;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// How long the writers run.
    pub duration: Duration,
    /// Concurrent HTTP connections posting events (one keep-alive client each).
    pub connections: usize,
    /// Live-stream clients that read everything.
    pub ws_readers: usize,
    /// Live-stream clients that never read.
    pub ws_stalled: usize,
    /// Size of each event's `event_content`.
    pub content_bytes: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self { duration: Duration::from_secs(10), connections: 32, ws_readers: 49, ws_stalled: 1, content_bytes: 64 }
    }
}

#[derive(Debug, Clone)]
pub struct IngestReport {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub requests_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Messages the reading WebSocket clients received, all together.
    pub ws_messages_received: u64,
    /// WebSocket clients still connected at the end (a stalled one should be gone).
    pub ws_clients_connected: usize,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} events in {:.1} s: {:.0} events/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors; \
             live stream: {} messages delivered, {} clients still connected",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.requests_per_sec,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3,
            self.errors,
            self.ws_messages_received,
            self.ws_clients_connected,
        )
    }
}

/// Runs the benchmark; see the module documentation.
pub async fn bench_ingest(options: IngestOptions) -> anyhow::Result<IngestReport> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let mut settings = Settings::embedded(&dir.path().join("bench.db"));
    settings.roles = vec![Role::Backend];
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot bind loopback")?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(listener, state.clone(), async move {
        let _ = stopped.await;
    }));
    let result = drive(&options, addr, &state).await;
    let _ = stop.send(());
    server.abort();
    result
}

async fn drive(options: &IngestOptions, addr: SocketAddr, state: &AppState) -> anyhow::Result<IngestReport> {
    let base = format!("http://{addr}");
    let setup = reqwest::Client::builder().no_proxy().build()?;
    let run = Uuid::new_v4();
    let job = Uuid::new_v4();
    let created = setup
        .post(format!("{base}/api/runs"))
        .json(&json!({"run_uuid": run, "run_datetime": "2026-02-24T10:30:00"}))
        .send()
        .await?;
    let job_created = setup
        .post(format!("{base}/api/jobs"))
        .json(&json!({"run_uuid": run, "job_uuid": job, "job_datetime": "2026-02-24T10:30:00"}))
        .send()
        .await?;
    if !created.status().is_success() || !job_created.status().is_success() {
        bail!("cannot create the benchmark's run and job: {} / {}", created.status(), job_created.status());
    }

    let ws_url = format!("ws://{addr}/ws/events");
    let received = Arc::new(AtomicU64::new(0));
    let mut stalled = Vec::new();
    for _ in 0..options.ws_stalled {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(4096)?;
        let stream = socket.connect(addr).await?;
        stalled.push(tokio_tungstenite::client_async(ws_url.as_str(), stream).await?.0);
    }
    let mut readers = Vec::new();
    for _ in 0..options.ws_readers {
        let (mut socket, _) = tokio_tungstenite::connect_async(ws_url.as_str()).await?;
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Some(Ok(message)) = socket.next().await {
                if message.is_text() {
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let content = "x".repeat(options.content_bytes);
    let started = Instant::now();
    let deadline = started + options.duration;
    let mut writers = Vec::new();
    for _ in 0..options.connections {
        let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(1).tcp_nodelay(true).build()?;
        let url = format!("{base}/api/events");
        let body = serde_json::to_vec(&json!({"event_content": content, "job_uuid": job,
                                              "event_datetime": "2026-02-24T10:30:00"}))?;
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome =
                    client.post(&url).header("content-type", "application/json").body(body.clone()).send().await;
                match outcome {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.bytes().await;
                        latencies.push(sent.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for writer in writers {
        let (mine, failed) = writer.await.context("a writer task failed")?;
        latencies.extend(mine);
        errors += failed;
    }
    let elapsed = started.elapsed();
    // Let the stream catch up before counting what it delivered.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ws_clients_connected = state.records.hub().clients();
    for reader in &readers {
        reader.abort();
    }
    drop(stalled);

    latencies.sort_unstable();
    let percentile = |p: f64| -> Duration {
        if latencies.is_empty() {
            return Duration::ZERO;
        }
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies[index.min(latencies.len() - 1)]
    };
    let requests = latencies.len() as u64;
    Ok(IngestReport {
        requests,
        errors,
        elapsed,
        requests_per_sec: requests as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        ws_messages_received: received.load(Ordering::Relaxed),
        ws_clients_connected,
    })
}
