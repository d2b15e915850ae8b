//! Builds the HTTP service from the chosen roles and the shared state: each enabled role's
//! router is merged in, the cross-cutting layers (metrics, token, CORS, body cap) wrap them,
//! and the original deployment's path aliases are applied before routing.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::clients::BackendClient;
use crate::health::{self, Dependency};
use crate::http::{ApiError, auth, paths};
use crate::infra::broker::Broker;
use crate::infra::config_store::ConfigStore;
use crate::infra::db::{self, Store};
use crate::infra::launcher::Launcher;
use crate::observability;
use crate::records::{Hub, Records};
use crate::roles::Role;
use crate::roles::orchestrator::{AgentEntryFactory, Orchestrator};
use crate::settings::Settings;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub records: Records,
    pub metrics: PrometheusHandle,
    pub dependencies: Arc<Vec<Dependency>>,
    /// The orchestrator role's engines and active runs; `None` when the role is not served here.
    pub orchestrator: Option<Arc<Orchestrator>>,
}

/// Engines chosen by the caller instead of from the settings (tests, tools); `None` = from the
/// settings. The orchestrator's are used only when the orchestrator role is enabled.
#[derive(Default)]
pub struct Engines {
    /// Used as given: no migration is applied.
    pub store: Option<Arc<dyn Store>>,
    pub config_store: Option<Arc<dyn ConfigStore>>,
    pub broker: Option<Arc<dyn Broker>>,
    pub launcher: Option<Arc<dyn Launcher>>,
    /// The entry point of in-process agents, when the launcher is built from the settings.
    pub agent_entry: Option<AgentEntryFactory>,
    pub backend: Option<Arc<dyn BackendClient>>,
}

impl AppState {
    /// Opens the engines the settings name and applies pending migrations.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Engines::default()).await
    }

    /// [`AppState::build`] with some engines chosen by the caller.
    pub async fn build_with(settings: Settings, mut engines: Engines) -> anyhow::Result<Self> {
        let store = match engines.store.take() {
            Some(store) => store,
            None => {
                let store = db::open(&settings.database)
                    .await
                    .with_context(|| format!("failed to open the database {}", settings.database.describe()))?;
                let applied = store.migrate().await.context("failed to apply database migrations")?;
                if !applied.is_empty() {
                    tracing::info!(migrations = ?applied, "database migrated");
                }
                store
            }
        };
        let mut state = Self::with_store(settings, store);
        if state.settings.runs(Role::Orchestrator) {
            let records = state.settings.runs(Role::Backend).then_some(&state.records);
            let (orchestrator, dependencies) = Orchestrator::open(&state.settings, records, engines).await?;
            Arc::make_mut(&mut state.dependencies).extend(dependencies);
            state.orchestrator = Some(orchestrator);
        }
        Ok(state)
    }

    /// The database only: no orchestrator engines are opened.
    pub fn with_store(settings: Settings, store: Arc<dyn Store>) -> Self {
        let hub = Hub::new(settings.ws_queue, settings.ws_heartbeat);
        let db_check = store.clone();
        let mut dependencies = vec![Dependency::new("database", store.describe(), move || {
            let store = db_check.clone();
            Box::pin(async move { store.check_connectivity().await.map_err(|e| e.to_string()) })
        })];
        dependencies.extend(crate::roles::frontend::dependencies(&settings));
        Self {
            settings: Arc::new(settings),
            records: Records::new(store, hub),
            metrics: observability::metrics_handle(),
            dependencies: Arc::new(dependencies),
            orchestrator: None,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.records.store()
    }
}

/// The router of the enabled roles plus `/health`, `/metrics`, `/docs`, `/openapi.json`.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let mut router = Router::new()
        .route("/health", get(health::handler))
        .route("/metrics", get(metrics))
        .route("/docs", get(crate::docs::page))
        .route("/openapi.json", get(crate::docs::openapi_json));
    for role in settings.enabled_roles() {
        router = router.merge(crate::roles::router(role));
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(observability::track_http))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(middleware::from_fn_with_state(settings.token.clone(), auth::require_token))
        .layer(cors(&settings.cors_origins))
        .with_state(state)
}

/// The router behind the path-alias rewrite: what `serve` and the tests run.
pub fn service(
    state: AppState,
) -> impl Service<Request, Response = Response, Error = Infallible, Future: Send> + Clone + Send + 'static {
    tower::util::MapRequestLayer::new(paths::rewrite_request).layer(router(state))
}

/// Serves until `shutdown` resolves, then lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Nothing is left behind: as soon as the signal comes (or serving ends), every agent is
    // stopped and the runs they served end as failed, while open requests finish.
    let (fired, signalled) = tokio::sync::oneshot::channel::<()>();
    let signal = async move {
        shutdown.await;
        let _ = fired.send(());
    };
    let stopping = state.orchestrator.clone().map(|orchestrator| {
        tokio::spawn(async move {
            // Resolves on the signal, or when serving ended and dropped the sender.
            let _ = signalled.await;
            if tokio::time::timeout(SHUTDOWN_LIMIT, orchestrator.shutdown()).await.is_err() {
                tracing::warn!(limit = ?SHUTDOWN_LIMIT, "stopping the agents and ending the active runs took too long");
            }
        })
    });
    let service = service(state);
    // Agents' records and the live stream are small messages answered at once: no Nagle delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY on a connection");
        }
    });
    let served = axum::serve(listener, axum::ServiceExt::<Request>::into_make_service(service))
        .with_graceful_shutdown(signal)
        .await
        .context("HTTP server failed");
    if let Some(stopping) = stopping {
        let _ = stopping.await;
    }
    served
}

/// How long stopping the agents and ending the active runs may take at shutdown.
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut text = state.metrics.render();
    if let Some(orchestrator) = &state.orchestrator {
        text.push_str(&orchestrator.render_run_gauges());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}

fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}
