//! `PLATFORM=distant`: each run is one Kubernetes Indexed Job whose pods are the agents
//! (`armada agent`), created through `kube` + `k8s-openapi`.
//!
//! - [`job`]: the Job manifest, a pure function ([`agent_job`]), exactly the seed's.
//! - [`pods`]: how pods read as agents; a run's state fed by a pod watch.
//! - [`pending`]: when an agent that never started counts as failed (a pod stuck pulling its
//!   image or creating its container, or no pod at all) instead of pending forever.
//! - [`client`]: configuration (service account in a pod, else the kubeconfig) and API errors.
//! - [`access`]: the Role's permissions the launcher needs (`armada kube check`).
//! - [`secrets`]: the seed's four Secrets from a `.env` (`armada kube bootstrap-secrets`).
//!
//! The orchestrator's Role allows create/delete on Jobs and get/list/watch/delete on pods, so
//! the launcher never reads Jobs back: it watches the Job's pods (label
//! `batch.kubernetes.io/job-name`) and keeps each run's agents in memory. As the trait asks,
//! `shutdown` stops every run it launched (deletes their Jobs): agents do not outlive the
//! orchestrator that watches their run. `forget` deletes the Job of a run whose pods have not
//! all ended — typically pods that never started, which Kubernetes would retry forever.

pub mod access;
pub mod client;
pub mod job;
pub mod pending;
pub mod pods;
pub mod secrets;

#[cfg(test)]
#[path = "../../../../tests/support/kube_api/mod.rs"]
pub(crate) mod kube_api;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use uuid::Uuid;

pub use client::{Connection, api_error, connect, connect_with_kubeconfig};
pub use job::{KubeContext, agent_job, job_name};
pub use pending::PendingRule;
pub use pods::RunPods;

use super::{AgentStatus, LaunchError, LaunchSpec, Launcher, validate_spec};
use crate::settings::{DEFAULT_KUBE_PENDING_TIMEOUT, Distrib, LauncherSettings, Settings};
use job::{JOB_NAME_LABEL, image_of, validate_names};

/// How long `stop` waits for pods to end after their Job is deleted before force-deleting
/// them: Kubernetes' own default termination grace period.
pub const KUBE_STOP_GRACE: Duration = Duration::from_secs(30);
/// How long to wait for force-deleted pods to disappear from the watch.
const FORCE_WAIT: Duration = Duration::from_secs(5);

pub struct KubeLauncher {
    connection: Connection,
    ctx: KubeContext,
    stop_grace: Duration,
    pending_timeout: Duration,
    runs: Mutex<HashMap<Uuid, Arc<KubeRun>>>,
}

/// One launched run: its Job's name, the state its pod watch feeds, and that watch.
struct KubeRun {
    job_name: String,
    shared: Arc<RunShared>,
    watch: AbortHandle,
}

struct RunShared {
    pods: Mutex<RunPods>,
    /// Bumped after every watch event, so waiters re-check.
    changed: watch::Sender<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KubeLauncher {
    /// A launcher on `connection` creating Jobs as `ctx` says.
    pub fn new(connection: Connection, ctx: KubeContext) -> Self {
        Self {
            connection,
            ctx,
            stop_grace: KUBE_STOP_GRACE,
            pending_timeout: DEFAULT_KUBE_PENDING_TIMEOUT,
            runs: Mutex::new(HashMap::new()),
        }
    }

    /// The launcher `PLATFORM=distant` selects: the cluster from the pod's service account or
    /// the kubeconfig, the Job's context from the settings. Agents in pods reach Redis,
    /// RabbitMQ and the backend over the network, so those must be configured.
    pub async fn from_settings(settings: &Settings) -> Result<Self, LaunchError> {
        // Before connecting: a missing setting is the error to report, not a missing cluster.
        Self::check_settings(settings)?;
        Self::with_settings(connect().await?, settings)
    }

    /// The launcher `from_settings` builds, on a given connection.
    pub fn with_settings(connection: Connection, settings: &Settings) -> Result<Self, LaunchError> {
        Self::check_settings(settings)?;
        let pending_timeout = match &settings.launcher {
            LauncherSettings::Kube { pending_timeout, .. } => *pending_timeout,
            _ => DEFAULT_KUBE_PENDING_TIMEOUT,
        };
        Ok(Self::new(connection, KubeContext::from_settings(settings)).with_pending_timeout(pending_timeout))
    }

    fn check_settings(settings: &Settings) -> Result<(), LaunchError> {
        let missing = KubeContext::from_settings(settings).missing();
        if missing.is_empty() {
            return Ok(());
        }
        Err(LaunchError::Invalid(format!(
            "PLATFORM=distant runs agents in pods, which need {}; set them (the Helm chart in deploy/ does)",
            missing.join(", ")
        )))
    }

    /// How long `stop` waits for pods to end before force-deleting them.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// How long an agent may go without a started container before it counts as failed
    /// (`ARMADA_KUBE_PENDING_TIMEOUT_SECS`; see [`pending`]).
    pub fn with_pending_timeout(mut self, timeout: Duration) -> Self {
        self.pending_timeout = timeout;
        self
    }

    pub fn pending_timeout(&self) -> Duration {
        self.pending_timeout
    }

    pub fn context(&self) -> &KubeContext {
        &self.ctx
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.connection.client.clone(), &self.ctx.namespace)
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.connection.client.clone(), &self.ctx.namespace)
    }

    fn run(&self, run_id: Uuid) -> Option<Arc<KubeRun>> {
        lock(&self.runs).get(&run_id).cloned()
    }

    fn spawn_watch(&self, run_id: Uuid, job_name: &str, shared: Arc<RunShared>) -> AbortHandle {
        let config = watcher::Config::default().labels(&format!("{JOB_NAME_LABEL}={job_name}"));
        let mut events = watcher(self.pods(), config).default_backoff().boxed();
        tokio::spawn(async move {
            while let Some(event) = events.next().await {
                {
                    let mut pods = lock(&shared.pods);
                    match event {
                        Ok(watcher::Event::Init) => pods.relist_started(),
                        Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod)) => pods.apply(&pod),
                        Ok(watcher::Event::InitDone) => pods.relist_done(),
                        Ok(watcher::Event::Delete(pod)) => pods.delete(&pod),
                        Err(error) => tracing::warn!(%run_id, %error, "watching the run's pods failed; retrying"),
                    }
                }
                shared.changed.send_modify(|n| *n = n.wrapping_add(1));
            }
        })
        .abort_handle()
    }

    /// Waits until `done` holds for the run's pods or `deadline` passes; returns whether it held.
    async fn wait_until(shared: &RunShared, deadline: Instant, done: impl Fn(&RunPods) -> bool) -> bool {
        let mut changed = shared.changed.subscribe();
        loop {
            if done(&lock(&shared.pods)) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return done(&lock(&shared.pods)),
            }
        }
    }

    async fn delete_job(&self, name: &str) -> Result<(), LaunchError> {
        match self.jobs().delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(e) if client::is_not_found(&e) => Ok(()),
            Err(e) => Err(api_error(&format!("delete Job {name} in namespace {}", self.ctx.namespace), e)),
        }
    }

    async fn stop_run(&self, run_id: Uuid, run: &KubeRun) -> Result<(), LaunchError> {
        lock(&run.shared.pods).stopping();
        self.delete_job(&run.job_name).await?;
        let deadline = Instant::now() + self.stop_grace;
        let ended = |pods: &RunPods| pods.synced() && pods.unfinished_pods().is_empty();
        if Self::wait_until(&run.shared, deadline, ended).await {
            lock(&run.shared.pods).mark_stopped(None);
            return Ok(());
        }
        let (late, synced) = {
            let pods = lock(&run.shared.pods);
            (pods.unfinished_pods(), pods.synced())
        };
        let detail = if synced {
            format!("did not stop within the {:?} grace period; pod force-deleted", self.stop_grace)
        } else {
            "stopped without confirmation: the pod watch has not listed the run's pods yet".to_string()
        };
        tracing::warn!(%run_id, pods = ?late, grace = ?self.stop_grace, "agents did not stop in time; force-deleting");
        lock(&run.shared.pods).force_stopped(&late, &detail);
        let force = DeleteParams::background().grace_period(0);
        for name in &late {
            match self.pods().delete(name, &force).await {
                Ok(_) => {}
                Err(e) if client::is_not_found(&e) => {}
                Err(e) => return Err(api_error(&format!("force-delete pod {name}"), e)),
            }
        }
        Self::wait_until(&run.shared, Instant::now() + FORCE_WAIT, |pods| pods.unfinished_pods().is_empty()).await;
        lock(&run.shared.pods).mark_stopped(Some(&detail));
        Ok(())
    }
}

#[async_trait]
impl Launcher for KubeLauncher {
    fn describe(&self) -> String {
        let distrib = match self.ctx.distrib {
            Distrib::Kube => "kube",
            Distrib::Minikube => "minikube",
        };
        format!("Kubernetes Jobs in namespace {} at {} (DISTRIB={distrib})", self.ctx.namespace, self.connection.server)
    }

    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        self.pods()
            .list(&ListParams::default().limit(1))
            .await
            .map(|_| ())
            .map_err(|e| api_error(&format!("list pods in namespace {}", self.ctx.namespace), e))
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError> {
        validate_spec(spec)?;
        validate_names(spec)?;
        let run_id = spec.run_id;
        if self.run(run_id).is_some() {
            return Err(LaunchError::Conflict(format!("run {run_id} was already launched")));
        }
        let job = agent_job(spec, &self.ctx);
        let name = job_name(spec);
        self.jobs()
            .create(&PostParams::default(), &job)
            .await
            .map_err(|e| api_error(&format!("create Job {name} in namespace {}", self.ctx.namespace), e))?;
        let (image, version) = image_of(spec);
        tracing::info!(%run_id, job = %name, namespace = %self.ctx.namespace, agents = spec.number_of_agents,
            image = %format!("{}/{image}:{version}", self.ctx.registry), "agent Job created");
        let (changed, _) = watch::channel(0);
        let rule = PendingRule {
            timeout: self.pending_timeout,
            job_name: name.clone(),
            namespace: self.ctx.namespace.clone(),
        };
        let pods = RunPods::new(spec.number_of_agents).with_pending_rule(rule);
        let shared = Arc::new(RunShared { pods: Mutex::new(pods), changed });
        let watch = self.spawn_watch(run_id, &name, shared.clone());
        let previous = lock(&self.runs).insert(run_id, Arc::new(KubeRun { job_name: name, shared, watch }));
        if let Some(previous) = previous {
            previous.watch.abort();
        }
        Ok(())
    }

    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        let run = self.run(run_id).ok_or_else(|| {
            LaunchError::NotFound(format!("run {run_id} has no agent Job here (never launched, or forgotten)"))
        })?;
        Ok(lock(&run.shared.pods).agents())
    }

    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError> {
        match self.run(run_id) {
            Some(run) => self.stop_run(run_id, &run).await,
            None => Ok(()),
        }
    }

    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError> {
        let Some(run) = lock(&self.runs).remove(&run_id) else { return Ok(()) };
        run.watch.abort();
        // Agents still running, pods counted failed while they wait (Kubernetes would retry
        // their pull forever), or indexes whose pods the Job controller cannot create.
        if lock(&run.shared.pods).any_unfinished() {
            tracing::warn!(%run_id, job = %run.job_name, "forgetting a run whose pods have not all ended; deleting its Job");
            self.delete_job(&run.job_name).await?;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), LaunchError> {
        let runs: Vec<(Uuid, Arc<KubeRun>)> = lock(&self.runs).iter().map(|(id, run)| (*id, run.clone())).collect();
        let results = futures::future::join_all(runs.iter().map(|(id, run)| self.stop_run(*id, run))).await;
        results.into_iter().collect()
    }
}

impl Drop for KubeLauncher {
    /// The watches end with the launcher; the Jobs do not (Kubernetes owns them).
    fn drop(&mut self) {
        for run in lock(&self.runs).values() {
            run.watch.abort();
        }
    }
}
