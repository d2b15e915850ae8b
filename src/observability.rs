//! Logs and metrics: `tracing` to stderr (text, or JSON with `--log-format json`), and one
//! process-wide Prometheus recorder rendered by every role's `GET /metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Installs the log subscriber once; later calls (tests) are no-ops.
pub fn init_logging(format: LogFormat) {
    init_logging_at(format, "info");
}

/// [`init_logging`] with another default level when `RUST_LOG` is not set (`armada workbench`
/// prints its own lines and wants only warnings from the logs).
pub fn init_logging_at(format: LogFormat, default_level: &str) {
    // lapin logs every channel the broker closes as an error, the normal end of a run included
    // (its queue is deleted under the agents' consumers); the broker code reports the closes that
    // matter itself, with what they mean.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!("{default_level},sqlx=warn,lapin=warn,lapin::channel=off,fred=warn,kube=warn"))
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The process-wide metrics recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders
            // what is recorded through it, and `metrics::` macros go to whichever is global.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Names of the metrics, in one place so dashboards and tests agree.
pub mod names {
    pub const HTTP_REQUESTS: &str = "armada_http_requests_total";
    pub const HTTP_DURATION: &str = "armada_http_request_duration_seconds";
    pub const WS_CLIENTS: &str = "armada_ws_clients";
    pub const WS_DROPPED_CLIENTS: &str = "armada_ws_clients_dropped_total";
    pub const WS_MESSAGES_DROPPED: &str = "armada_ws_messages_dropped_total";
    pub const WS_MESSAGES_SENT: &str = "armada_ws_messages_sent_total";
    pub const ROWS_WRITTEN: &str = "armada_rows_written_total";
    /// Runs that entered a status, `{status}`: `dispatching` (started), `running`, `completed`,
    /// `failed`, `cancelled`, and `aborted` (a start that failed and was undone).
    pub const RUNS: &str = "armada_runs_total";
    /// Jobs by final status (`Success`, `Failed`, `Cancelled`), counted when their run ends.
    pub const JOBS: &str = "armada_jobs_total";
    /// From a job seen `Running` to its outcome, as the orchestrator's watcher sees them.
    pub const JOB_DURATION: &str = "armada_job_duration_seconds";
    /// Per active run, `{run_id}`; rendered by the orchestrator and gone when the run ends.
    pub const QUEUE_DEPTH: &str = "armada_queue_depth";
    /// Per active run, `{run_id}`; rendered by the orchestrator and gone when the run ends.
    pub const QUEUE_CONSUMERS: &str = "armada_queue_consumers";
}

/// Records `armada_http_requests_total` and `armada_http_request_duration_seconds` by route
/// template (not raw path, so ids do not explode the label set).
pub async fn track_http(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(names::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(names::HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
