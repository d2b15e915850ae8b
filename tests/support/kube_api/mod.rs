//! A stand-in Kubernetes API server on loopback, for the Kubernetes launcher and `armada kube`
//! tests (no cluster can run here). It serves the few endpoints they call — create/delete Job
//! (`batch/v1`), list/watch/delete Pods (`v1`), create/replace Secrets,
//! `SelfSubjectAccessReview` — parses every body into its `k8s-openapi` type, records every
//! request, and plays the Job controller and the kubelet: one pod per completion index, each
//! played by a [`PodScript`] (simulated states, or a real process per index). The Job
//! controller can also be refused its pod creations ([`KubeApi::refuse_pod_creation`]), as an
//! exceeded compute quota or an admission webhook refuses them in a real cluster: the Job is
//! accepted and no pod ever appears.
//!
//! Self-contained (external crates only) so that the library's unit tests and `tests/it` both
//! include it with `#[path]`.
#![allow(dead_code)]

mod pods;
mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::Value;
use tokio::task::{AbortHandle, JoinHandle};
use tokio_util::sync::CancellationToken;

pub use pods::{PodExit, PodRun, PodScript, script, scripts};

/// The seed's Role, as (API group, resource, verb): what access reviews allow by default.
pub const SEED_ROLE: [(&str, &str, &str); 9] = [
    ("batch", "jobs", "create"),
    ("batch", "jobs", "delete"),
    ("", "pods", "create"),
    ("", "pods", "get"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods", "delete"),
    ("", "configmaps", "get"),
    ("", "configmaps", "list"),
];

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The JSON body, if there was one.
    pub body: Option<Value>,
}

/// Answer `code` with a Kubernetes `Status` to requests of `method` on `resource`.
#[derive(Debug, Clone)]
struct Refusal {
    method: String,
    resource: String,
    code: u16,
    reason: String,
    message: String,
}

struct PodEntry {
    pod: Pod,
    terminating: CancellationToken,
    task: Option<AbortHandle>,
}

#[derive(Default)]
struct Inner {
    resource_version: u64,
    serial: u64,
    jobs: BTreeMap<(String, String), Job>,
    pods: BTreeMap<(String, String), PodEntry>,
    /// Every pod change: (resource version, namespace, ADDED|MODIFIED|DELETED, pod).
    log: Vec<(u64, String, &'static str, Pod)>,
    secrets: BTreeMap<(String, String), Secret>,
    requests: Vec<Recorded>,
    refusals: Vec<Refusal>,
    allowed: Vec<(String, String, String)>,
    /// Why the Job controller cannot create pods, when it cannot.
    pod_creation_refusal: Option<String>,
    /// The `FailedCreate` events the Job controller recorded: (namespace, Job, message).
    failed_creates: Vec<(String, String, String)>,
}

pub struct ApiState {
    inner: Mutex<Inner>,
    /// The latest resource version, for watches waiting on news.
    changed: tokio::sync::watch::Sender<u64>,
    script: Mutex<PodScript>,
    token: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running stand-in; stops when dropped.
pub struct KubeApi {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub token: String,
    state: Arc<ApiState>,
    server: JoinHandle<()>,
}

impl KubeApi {
    /// Starts on a free loopback port; pods are played by `script`.
    pub async fn start(script: PodScript) -> KubeApi {
        let token = "stand-in-token".to_string();
        let (changed, _) = tokio::sync::watch::channel(0);
        let inner = Inner {
            allowed: SEED_ROLE.iter().map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string())).collect(),
            ..Default::default()
        };
        let state =
            Arc::new(ApiState { inner: Mutex::new(inner), changed, script: Mutex::new(script), token: token.clone() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let app = server::router(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KubeApi { url, token, state, server }
    }

    /// A kubeconfig whose current context is this server, with `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {url}\n\
             users:\n- name: stand-in\n  user:\n    token: {token}\ncontexts:\n- name: stand-in\n  context:\n    \
             cluster: stand-in\n    user: stand-in\n    namespace: {namespace}\ncurrent-context: stand-in\n",
            url = self.url,
            token = self.token,
        )
    }

    /// Writes [`KubeApi::kubeconfig`] to `dir/kubeconfig` and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig(namespace)).expect("write kubeconfig");
        path
    }

    /// Pods created from now on are played by `script`.
    pub fn set_script(&self, script: PodScript) {
        *lock(&self.state.script) = script;
    }

    /// Answers `code` (`reason`, `message`) to every `method` request on `resource` (`jobs`, `pods`, …).
    pub fn refuse(&self, method: &str, resource: &str, code: u16, reason: &str, message: &str) {
        lock(&self.state.inner).refusals.push(Refusal {
            method: method.to_uppercase(),
            resource: resource.into(),
            code,
            reason: reason.into(),
            message: message.into(),
        });
    }

    /// From now on the Job controller's pod creations are refused with `message` (as a
    /// ResourceQuota or an admission webhook refuses them): Jobs are accepted, no pod appears,
    /// and each Job gets a `FailedCreate` event ([`KubeApi::failed_creates`]) that, as in a real
    /// cluster, only someone allowed to read events sees.
    pub fn refuse_pod_creation(&self, message: &str) {
        lock(&self.state.inner).pod_creation_refusal = Some(message.into());
    }

    /// The Job controller's `FailedCreate` events: (namespace, Job name, message).
    pub fn failed_creates(&self) -> Vec<(String, String, String)> {
        lock(&self.state.inner).failed_creates.clone()
    }

    /// Access reviews deny `verb` on `resource` of `group` from now on.
    pub fn deny(&self, group: &str, resource: &str, verb: &str) {
        lock(&self.state.inner).allowed.retain(|(g, r, v)| !(g == group && r == resource && v == verb));
    }

    pub fn put_secret(&self, namespace: &str, name: &str, data: &[(&str, &str)]) {
        let secret = Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            data: Some(
                data.iter().map(|(k, v)| (k.to_string(), k8s_openapi::ByteString(v.as_bytes().to_vec()))).collect(),
            ),
            ..Default::default()
        };
        lock(&self.state.inner).secrets.insert((namespace.into(), name.into()), secret);
    }

    pub fn delete_secret(&self, namespace: &str, name: &str) {
        lock(&self.state.inner).secrets.remove(&(namespace.into(), name.into()));
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<Secret> {
        lock(&self.state.inner).secrets.get(&(namespace.into(), name.into())).cloned()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.inner).requests.clone()
    }

    /// The Job bodies received by create calls, parsed.
    pub fn created_jobs(&self) -> Vec<Job> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/jobs"))
            .filter_map(|r| serde_json::from_value(r.body?).ok())
            .collect()
    }

    /// Pods that exist now in `namespace`.
    pub fn pods(&self, namespace: &str) -> Vec<Pod> {
        lock(&self.state.inner).pods.iter().filter(|((ns, _), _)| ns == namespace).map(|(_, e)| e.pod.clone()).collect()
    }

    pub fn job_exists(&self, namespace: &str, name: &str) -> bool {
        lock(&self.state.inner).jobs.contains_key(&(namespace.into(), name.into()))
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.server.abort();
        for entry in lock(&self.state.inner).pods.values() {
            if let Some(task) = &entry.task {
                task.abort();
            }
        }
    }
}

impl ApiState {
    fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        let inner = lock(&self.inner);
        let secret = inner.secrets.get(&(namespace.into(), name.into()))?;
        let from_data =
            secret.data.as_ref().and_then(|d| d.get(key)).map(|b| String::from_utf8_lossy(&b.0).into_owned());
        from_data.or_else(|| secret.string_data.as_ref()?.get(key).cloned())
    }

    /// Records a pod change in the log under a new resource version and wakes the watches.
    fn emit(&self, inner: &mut Inner, namespace: &str, kind: &'static str, mut pod: Pod) -> Pod {
        inner.resource_version += 1;
        let version = inner.resource_version;
        pod.metadata.resource_version = Some(version.to_string());
        inner.log.push((version, namespace.to_string(), kind, pod.clone()));
        self.changed.send_replace(version);
        pod
    }

    /// Changes a pod that still exists and reports it MODIFIED.
    fn update_pod(&self, namespace: &str, name: &str, change: impl FnOnce(&mut Pod)) {
        let mut inner = lock(&self.inner);
        let Some(entry) = inner.pods.get(&(namespace.into(), name.into())) else { return };
        let mut pod = entry.pod.clone();
        change(&mut pod);
        let pod = self.emit(&mut inner, namespace, "MODIFIED", pod);
        if let Some(entry) = inner.pods.get_mut(&(namespace.into(), name.into())) {
            entry.pod = pod;
        }
    }

    /// Removes a pod and reports it DELETED; its script (if still playing) is dropped.
    fn remove_pod(&self, inner: &mut Inner, namespace: &str, name: &str) {
        if let Some(entry) = inner.pods.remove(&(namespace.into(), name.into())) {
            if let Some(task) = entry.task {
                task.abort();
            }
            self.emit(inner, namespace, "DELETED", entry.pod);
        }
    }

    /// Graceful deletion: a pod that ended goes at once; a running one is marked terminating,
    /// its script told, and it goes when the script returns.
    fn delete_pod_gracefully(&self, inner: &mut Inner, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let Some(entry) = inner.pods.get(&key) else { return };
        let ended = matches!(entry.pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"));
        if ended || entry.task.is_none() {
            self.remove_pod(inner, namespace, name);
            return;
        }
        if entry.terminating.is_cancelled() {
            return;
        }
        entry.terminating.cancel();
        let mut pod = entry.pod.clone();
        pod.metadata.deletion_timestamp = Some(pods::now());
        pod.metadata.deletion_grace_period_seconds = Some(30);
        let pod = self.emit(inner, namespace, "MODIFIED", pod);
        if let Some(entry) = inner.pods.get_mut(&key) {
            entry.pod = pod;
        }
    }

    /// Plays the pod with the current script, or leaves it Pending with
    /// `CreateContainerConfigError` when its environment cannot be resolved.
    fn start_pod(self: &Arc<Self>, namespace: &str, pod: Pod, index: usize) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let terminating = CancellationToken::new();
        let env = pods::resolve_env(self, &pod, index);
        let container = pod.spec.as_ref().and_then(|s| s.containers.first().cloned()).unwrap_or_default();
        let mut inner = lock(&self.inner);
        let pod = self.emit(&mut inner, namespace, "ADDED", pod);
        inner
            .pods
            .insert((namespace.into(), name.clone()), PodEntry { pod, terminating: terminating.clone(), task: None });
        drop(inner);
        let run = match env {
            Ok(env) => PodRun {
                index,
                pod_name: name.clone(),
                namespace: namespace.into(),
                image: container.image.clone().unwrap_or_default(),
                command: container
                    .command
                    .unwrap_or_default()
                    .into_iter()
                    .chain(container.args.unwrap_or_default())
                    .collect(),
                env,
                state: self.clone(),
                terminating,
            },
            Err(message) => {
                let run = PodRun {
                    index,
                    pod_name: name,
                    namespace: namespace.into(),
                    image: String::new(),
                    command: Vec::new(),
                    env: BTreeMap::new(),
                    state: self.clone(),
                    terminating,
                };
                run.waiting("CreateContainerConfigError", Some(&message));
                return;
            }
        };
        let script = lock(&self.script).clone();
        let state = self.clone();
        let key = (run.namespace.clone(), run.pod_name.clone());
        let task_key = key.clone();
        let task = tokio::spawn(async move {
            let (namespace, pod_name) = task_key;
            let terminating = run.terminating.clone();
            let exit = script(run).await;
            state.update_pod(&namespace, &pod_name, |pod| pods::terminate(pod, &exit));
            let mut inner = lock(&state.inner);
            if terminating.is_cancelled() {
                state.remove_pod(&mut inner, &namespace, &pod_name);
            } else if let Some(entry) = inner.pods.get_mut(&(namespace, pod_name)) {
                entry.task = None;
            }
        });
        if let Some(entry) = lock(&self.inner).pods.get_mut(&key)
            && !task.is_finished()
        {
            entry.task = Some(task.abort_handle());
        }
    }
}
