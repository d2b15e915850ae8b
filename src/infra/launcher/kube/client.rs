//! Reaching the Kubernetes API: which configuration is used, and how the API's refusals become
//! [`LaunchError`]s that carry the API's own message (the orchestrator fails the run with it).

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::infra::launcher::LaunchError;

/// A client and the API server's URL (for messages; it holds no credentials).
#[derive(Clone)]
pub struct Connection {
    pub client: kube::Client,
    pub server: String,
}

/// In a pod, its service account (unless `KUBECONFIG` says otherwise); elsewhere `KUBECONFIG`
/// or `~/.kube/config`.
pub async fn connect() -> Result<Connection, LaunchError> {
    let in_cluster = if std::env::var_os("KUBECONFIG").is_none() { kube::Config::incluster().ok() } else { None };
    let config = match in_cluster {
        Some(config) => config,
        None => kube::Config::infer().await.map_err(|e| {
            LaunchError::Unavailable(format!(
                "no Kubernetes configuration: {e}; in a pod the service account is used, elsewhere set \
                 KUBECONFIG or write ~/.kube/config"
            ))
        })?,
    };
    from_config(config)
}

/// The cluster of a kubeconfig file's current context.
pub async fn connect_with_kubeconfig(path: &Path) -> Result<Connection, LaunchError> {
    let kubeconfig = Kubeconfig::read_from(path)
        .map_err(|e| LaunchError::Invalid(format!("cannot read the kubeconfig {}: {e}", path.display())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| LaunchError::Invalid(format!("kubeconfig {}: {e}", path.display())))?;
    from_config(config)
}

fn from_config(config: kube::Config) -> Result<Connection, LaunchError> {
    let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = kube::Client::try_from(config)
        .map_err(|e| LaunchError::Unavailable(format!("cannot build a Kubernetes client for {server}: {e}")))?;
    Ok(Connection { client, server })
}

/// `action` failed: the API's refusal with its message, or why the API could not be reached.
/// 409 is `Conflict`, 400/404/422 `Invalid` (a wrong name, namespace or field), everything else
/// (403 forbidden or over quota, 5xx, no connection) `Unavailable`.
pub fn api_error(action: &str, err: kube::Error) -> LaunchError {
    match err {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() { status.reason.clone() } else { status.message.clone() };
            let text = format!("Kubernetes refused to {action}: {message} (HTTP {} {})", status.code, status.reason);
            match status.code {
                409 => LaunchError::Conflict(text),
                400 | 404 | 422 => LaunchError::Invalid(text),
                403 => LaunchError::Unavailable(format!(
                    "{text}; `armada kube check` lists what the orchestrator's Role must allow"
                )),
                _ => LaunchError::Unavailable(text),
            }
        }
        other => LaunchError::Unavailable(format!("cannot {action}: {other}")),
    }
}

/// True when the API answered 404 (deleting what is already gone is fine).
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// True when the API answered 409 AlreadyExists.
pub fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}
