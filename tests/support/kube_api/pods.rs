//! Pods of the stand-in: created per completion index of a Job, played by a [`PodScript`],
//! deleted gracefully (the script is told) or at once (the script is dropped).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use tokio_util::sync::CancellationToken;

use super::ApiState;

/// Plays one pod: reports it waiting or running through [`PodRun`], and returns how its
/// container exited. Dropped (the pod force-deleted) at any await.
pub type PodScript = Arc<dyn Fn(PodRun) -> BoxFuture<'static, PodExit> + Send + Sync>;

/// A script from an async closure.
pub fn script<F, Fut>(f: F) -> PodScript
where
    F: Fn(PodRun) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = PodExit> + Send + 'static,
{
    Arc::new(move |run| Box::pin(f(run)))
}

/// How a pod's container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodExit {
    pub code: i32,
    pub reason: String,
    pub message: Option<String>,
}

impl PodExit {
    pub fn ok() -> Self {
        Self { code: 0, reason: "Completed".into(), message: None }
    }

    pub fn failed(code: i32, message: impl Into<String>) -> Self {
        Self { code, reason: "Error".into(), message: Some(message.into()) }
    }
}

/// What a script gets: the pod's index, its container's command and resolved environment
/// (as the kubelet would set it, plus `JOB_COMPLETION_INDEX`), and ways to report state.
pub struct PodRun {
    pub index: usize,
    pub pod_name: String,
    pub namespace: String,
    pub image: String,
    /// `command` then `args` of the first container.
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub(super) state: Arc<ApiState>,
    pub(super) terminating: CancellationToken,
}

impl PodRun {
    /// Pending, its container waiting for `reason` (`ContainerCreating`, `ImagePullBackOff`, …).
    pub fn waiting(&self, reason: &str, message: Option<&str>) {
        let waiting = ContainerStateWaiting { reason: Some(reason.into()), message: message.map(String::from) };
        self.state.update_pod(&self.namespace, &self.pod_name, |pod| {
            let status = pod.status.get_or_insert_with(Default::default);
            status.phase = Some("Pending".into());
            status.container_statuses =
                Some(vec![container_status(ContainerState { waiting: Some(waiting), ..Default::default() })]);
        });
    }

    /// Running since now.
    pub fn running(&self) {
        let now = now();
        self.state.update_pod(&self.namespace, &self.pod_name, |pod| {
            let status = pod.status.get_or_insert_with(Default::default);
            status.phase = Some("Running".into());
            status.start_time = Some(now.clone());
            status.container_statuses = Some(vec![container_status(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(now) }),
                ..Default::default()
            })]);
        });
    }

    /// Resolves once the pod is being deleted gracefully (its container got SIGTERM).
    pub async fn terminating(&self) {
        self.terminating.cancelled().await;
    }

    pub fn is_terminating(&self) -> bool {
        self.terminating.is_cancelled()
    }
}

fn container_status(state: ContainerState) -> ContainerStatus {
    ContainerStatus { name: "agent".into(), ready: state.running.is_some(), state: Some(state), ..Default::default() }
}

pub(super) fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The pod the Job controller creates for completion `index`.
pub(super) fn new_pod(job: &Job, namespace: &str, index: usize, serial: u64) -> Pod {
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let job_uid = job.metadata.uid.clone().unwrap_or_default();
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    for (key, value) in [
        ("job-name", job_name.clone()),
        ("batch.kubernetes.io/job-name", job_name.clone()),
        ("controller-uid", job_uid.clone()),
        ("batch.kubernetes.io/controller-uid", job_uid.clone()),
        ("batch.kubernetes.io/job-completion-index", index.to_string()),
    ] {
        labels.insert(key.into(), value);
    }
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "Job".into(),
        name: job_name.clone(),
        uid: job_uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{job_name}-{index}-{:05x}", serial & 0xfffff)),
            namespace: Some(namespace.into()),
            uid: Some(format!("pod-uid-{serial}")),
            creation_timestamp: Some(now()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "batch.kubernetes.io/job-completion-index".to_string(),
                index.to_string(),
            )])),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: template.spec,
        status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
    }
}

/// The container's environment as the kubelet resolves it; `Err` is the
/// `CreateContainerConfigError` message when a referenced Secret or key is missing.
pub(super) fn resolve_env(state: &ApiState, pod: &Pod, index: usize) -> Result<BTreeMap<String, String>, String> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let container = pod.spec.as_ref().and_then(|s| s.containers.first().cloned()).unwrap_or_default();
    let mut env = BTreeMap::from([("JOB_COMPLETION_INDEX".to_string(), index.to_string())]);
    for var in container.env.unwrap_or_default() {
        let value = match (var.value, var.value_from) {
            (Some(value), _) => value,
            (None, Some(source)) => {
                if let Some(selector) = source.secret_key_ref {
                    match state.secret_value(&namespace, &selector.name, &selector.key) {
                        Some(value) => value,
                        None if selector.optional == Some(true) => continue,
                        None => return Err(format!("secret \"{}\" not found (key {})", selector.name, selector.key)),
                    }
                } else if let Some(field) = source.field_ref {
                    field_value(pod, &field.field_path)
                        .ok_or_else(|| format!("unsupported fieldPath {}", field.field_path))?
                } else {
                    return Err(format!("env {}: unsupported valueFrom", var.name));
                }
            }
            (None, None) => String::new(),
        };
        env.insert(var.name, value);
    }
    Ok(env)
}

fn field_value(pod: &Pod, path: &str) -> Option<String> {
    let annotation = |key: &str| pod.metadata.annotations.as_ref()?.get(key).cloned();
    let label = |key: &str| pod.metadata.labels.as_ref()?.get(key).cloned();
    if let Some(key) = path.strip_prefix("metadata.annotations['").and_then(|r| r.strip_suffix("']")) {
        return annotation(key);
    }
    if let Some(key) = path.strip_prefix("metadata.labels['").and_then(|r| r.strip_suffix("']")) {
        return label(key);
    }
    match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        _ => None,
    }
}

/// The pod's final state once its script returned.
pub(super) fn terminate(pod: &mut Pod, exit: &PodExit) {
    let status = pod.status.get_or_insert_with(Default::default);
    let started_at = status.start_time.clone();
    status.phase = Some(if exit.code == 0 { "Succeeded" } else { "Failed" }.into());
    status.container_statuses = Some(vec![container_status(ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: exit.code,
            reason: Some(exit.reason.clone()),
            message: exit.message.clone(),
            started_at,
            finished_at: Some(now()),
            ..Default::default()
        }),
        ..Default::default()
    })]);
}

/// Scripts for the launcher's conformance behaviours and for pod failures.
pub mod scripts {
    use super::*;

    /// Kubelet-like start: a moment in `ContainerCreating`, then running.
    async fn start(run: &PodRun) {
        run.waiting("ContainerCreating", None);
        tokio::time::sleep(Duration::from_millis(20)).await;
        run.running();
    }

    /// Runs until its pod is deleted, then exits cleanly (as an agent handling SIGTERM does).
    pub fn runs_until_stopped() -> PodScript {
        script(|run| async move {
            start(&run).await;
            run.terminating().await;
            PodExit::ok()
        })
    }

    /// Runs until its pod is deleted, then dies of the SIGTERM (exit code 143).
    pub fn killed_by_sigterm() -> PodScript {
        script(|run| async move {
            start(&run).await;
            run.terminating().await;
            PodExit { code: 143, reason: "Error".into(), message: None }
        })
    }

    /// Runs until force-deleted: ignores SIGTERM.
    pub fn ignores_stop() -> PodScript {
        script(|run| async move {
            start(&run).await;
            std::future::pending::<PodExit>().await
        })
    }

    pub fn exits_ok() -> PodScript {
        script(|run| async move {
            start(&run).await;
            PodExit::ok()
        })
    }

    /// Exits with code 1 and `message` as its termination message.
    pub fn exits_with_error(message: &str) -> PodScript {
        let message = message.to_string();
        script(move |run| {
            let message = message.clone();
            async move {
                start(&run).await;
                PodExit::failed(1, message)
            }
        })
    }

    /// Never starts: the image cannot be pulled (until the pod is deleted).
    pub fn image_pull_backoff() -> PodScript {
        script(|run| async move {
            let text = format!("Back-off pulling image \"{}\"", run.image);
            run.waiting("ErrImagePull", Some("pull access denied"));
            tokio::time::sleep(Duration::from_millis(20)).await;
            run.waiting("ImagePullBackOff", Some(&text));
            run.terminating().await;
            PodExit { code: 0, reason: "ContainerStatusUnknown".into(), message: None }
        })
    }
}
