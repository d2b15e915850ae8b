//! The orchestrator role (SPEC §5): `POST /bot/start` → validated project and run plan → record,
//! store, register, publish, launch, watch; run status, cancel and bundle under `/bot/runs`.
//!
//! Files by concern: `upload` reads the multipart body, `prepare` validates it into a
//! `PreparedRun` (nothing stored yet), `dispatch` starts the run in SPEC order and undoes a
//! failed start, `watch` follows a running run to its end, `finish` ends it (and the server's
//! shutdown), `cancel` cancels, `view` shows runs, `registry` holds the `Orchestrator` and its
//! active runs, `wiring` opens the engines from the settings, `routes` are the thin handlers.
//!
//! The orchestrator records everything through `clients::BackendClient`, never the store, so
//! it works the same whether the backend role runs in this process or at `BACKEND_URL`.

mod cancel;
mod dispatch;
mod error;
mod finish;
mod prepare;
mod registry;
mod routes;
mod upload;
mod view;
mod watch;
mod wiring;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use cancel::{CANCELLED_DETAIL, CancelError};
pub use dispatch::{JOB_BATCH, PUBLISH_BATCH};
pub use error::{StartError, StepFailure};
pub use prepare::{CODE_KEY, PreparedRun, prepare, project_error};
pub use registry::{Orchestrator, OrchestratorSettings};
pub use routes::Started;
pub use upload::{EXTRA_PARTS, Upload, parse_run_uuid, parse_tune, read_upload};
pub use view::{ActiveRunView, ActiveRunsView, AgentView, QueueView, RunView};
pub use wiring::AgentEntryFactory;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        // The upload enforces ARMADA_MAX_UPLOAD_BYTES itself, part by part, instead of the
        // app-wide JSON body cap.
        .route("/bot/start", post(routes::start).layer(DefaultBodyLimit::disable()))
        .route("/bot/runs", get(routes::list))
        .route("/bot/runs/{run_uuid}", get(routes::get))
        .route("/bot/runs/{run_uuid}/cancel", post(routes::cancel))
        .route("/bot/runs/{run_uuid}/bundle", get(routes::bundle))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(routes::start, routes::list, routes::get, routes::cancel, routes::bundle),
    components(schemas(routes::StartForm, Started, RunView, crate::http::error::ErrorBody)),
    tags((name = "orchestrator", description = "Launching, following and cancelling runs"))
)]
struct OrchestratorApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <OrchestratorApi as utoipa::OpenApi>::openapi()
}
