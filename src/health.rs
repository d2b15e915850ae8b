//! `GET /health`: the version, the roles served, and each configured dependency up or down.
//! Built from the engines' `check_connectivity()`, as is `armada check`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures::future::BoxFuture;
use serde::Serialize;

use crate::app::AppState;
use crate::roles::Role;

type CheckFn = dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync;

/// One engine the process relies on (database, config store, broker, launcher).
#[derive(Clone)]
pub struct Dependency {
    pub name: &'static str,
    /// What it is, safe to show: engine and address, never credentials.
    pub describe: String,
    check: Arc<CheckFn>,
}

impl Dependency {
    pub fn new<F>(name: &'static str, describe: impl Into<String>, check: F) -> Self
    where
        F: Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync + 'static,
    {
        Self { name, describe: describe.into(), check: Arc::new(check) }
    }

    /// Runs the check with a timeout, so one hung engine cannot hang `/health`.
    pub async fn check(&self) -> Result<(), String> {
        match tokio::time::timeout(Duration::from_secs(3), (self.check)()).await {
            Ok(result) => result,
            Err(_) => Err("no answer within 3 s".into()),
        }
    }
}

#[derive(Serialize)]
pub struct HealthReport {
    pub status: &'static str,
    pub version: &'static str,
    pub roles: Vec<RoleHealth>,
    pub dependencies: Vec<DependencyHealth>,
}

#[derive(Serialize)]
pub struct RoleHealth {
    pub name: Role,
    pub state: &'static str,
}

#[derive(Serialize)]
pub struct DependencyHealth {
    pub name: &'static str,
    pub engine: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub async fn report(state: &AppState) -> HealthReport {
    let checks = futures::future::join_all(state.dependencies.iter().map(|d| d.check())).await;
    let dependencies: Vec<DependencyHealth> = state
        .dependencies
        .iter()
        .zip(checks)
        .map(|(dep, result)| DependencyHealth {
            name: dep.name,
            engine: dep.describe.clone(),
            status: if result.is_ok() { "up" } else { "down" },
            error: result.err(),
        })
        .collect();
    let roles = state
        .settings
        .enabled_roles()
        .into_iter()
        .map(|role| RoleHealth {
            name: role,
            state: if crate::roles::is_built(role) {
                "serving"
            } else {
                "not built yet: serves /health and /metrics only"
            },
        })
        .collect();
    let all_up = dependencies.iter().all(|d| d.status == "up");
    HealthReport {
        status: if all_up { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        roles,
        dependencies,
    }
}

pub async fn handler(State(state): State<AppState>) -> impl IntoResponse {
    let report = report(&state).await;
    let status = if report.status == "ok" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(report))
}
