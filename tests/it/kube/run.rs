//! Whole runs of `examples/hello` through the Kubernetes launcher: an orchestrator and backend
//! (`TestApp`) on real Redis and RabbitMQ, a `KubeLauncher` on the stand-in API server reached
//! through a kubeconfig, and pods that are real `armada agent` processes started with exactly
//! the Job's environment as Kubernetes resolves it (Secrets included). Launched through
//! `POST /bot/start`, as the dashboard does.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use armada::infra::launcher::kube::job::{SQL_SERVER_KEYS, SQL_SERVER_SECRET, TOKEN_SECRET};
use armada::infra::launcher::kube::{KubeContext, KubeLauncher, connect_with_kubeconfig};
use armada::roles::Role;
use armada::settings::{Distrib, Secret};
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use uuid::Uuid;

use super::NS;
use crate::agent::LiveMessages;
use crate::support::agents::{RUN_LIMIT, example};
use crate::support::kube_api::KubeApi;
use crate::support::kube_process::armada_pods;
use crate::support::servers::{self, loud};
use crate::support::{TestApp, eventually};

const TOKEN: &str = "kube-run-token";

/// The orchestrator and backend, the stand-in whose pods are `armada agent` processes, and
/// where those run.
struct Cluster {
    app: TestApp,
    api: KubeApi,
    /// The pods' working directories (`agent-{index}`).
    pods: tempfile::TempDir,
    _kubeconfig: tempfile::TempDir,
}

async fn cluster() -> Option<Cluster> {
    let (Some(redis), Some(rabbitmq)) = (servers::redis_url(), servers::rabbitmq_url()) else {
        loud("SKIPPED kube::run: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)");
        return None;
    };
    let pods = tempfile::tempdir().unwrap();
    let api = KubeApi::start(armada_pods(pods.path().to_path_buf())).await;
    // The Secrets the Job refers to, as `armada kube bootstrap-secrets` creates them.
    let sql: Vec<(&str, &str)> = SQL_SERVER_KEYS.iter().map(|key| (*key, "from-the-sql-secret")).collect();
    api.put_secret(NS, SQL_SERVER_SECRET, &sql);
    api.put_secret(NS, TOKEN_SECRET, &[("ARMADA_TOKEN", TOKEN)]);
    // Bound first: the Job tells the agents where the backend is.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_url = format!("http://{}", listener.local_addr().unwrap());
    let redis_port: u16 = redis.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).unwrap();
    let ctx = KubeContext {
        distrib: Distrib::Minikube,
        namespace: NS.into(),
        registry: "acme".into(),
        redis_host: "127.0.0.1".into(),
        redis_port,
        rabbitmq_url: Secret::new(rabbitmq.clone()),
        backend_url,
        proxy_provider_url: String::new(),
        fingerprint_provider_url: String::new(),
        token_secret: Some(TOKEN_SECRET.into()),
    };
    let kubeconfig = tempfile::tempdir().unwrap();
    let connection = connect_with_kubeconfig(&api.write_kubeconfig(kubeconfig.path(), NS)).await.unwrap();
    let app = TestApp::builder()
        .roles([Role::Orchestrator, Role::Backend])
        .token(Some(TOKEN))
        .var("REDIS_URL", redis)
        .var("RABBITMQ_URL", rabbitmq)
        .launcher(Arc::new(KubeLauncher::new(connection, ctx)))
        .listener(listener)
        .spawn()
        .await;
    Some(Cluster { app, api, pods, _kubeconfig: kubeconfig })
}

/// `examples/hello` as the dashboard's folder upload (`files` parts named `hello/…`), its
/// template replaced when `template` is given, with the distant tune.
pub(super) fn hello_upload(template: Option<&Value>) -> Form {
    let root = example("hello");
    let mut form = Form::new().text("tune", "distant");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    for (path, mut bytes) in files {
        if path == "config/config_template.json"
            && let Some(template) = template
        {
            bytes = serde_json::to_vec(template).unwrap();
        }
        form = form.part("files", Part::bytes(bytes).file_name(format!("hello/{path}")));
    }
    form
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "__pycache__") {
                collect(root, &path, files);
            }
        } else {
            let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            files.push((relative, std::fs::read(&path).unwrap()));
        }
    }
}

pub(super) async fn start(app: &TestApp, form: Form) -> (StatusCode, Value) {
    app.send(app.client.post(app.url("/bot/start")).multipart(form)).await
}

pub(super) async fn view(app: &TestApp, run_id: Uuid) -> Value {
    let (status, body) = app.get(&format!("/bot/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The run view once `check` holds for it.
pub(super) async fn view_until(app: &TestApp, run_id: Uuid, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    let held = eventually(RUN_LIMIT, async || {
        last = view(app, run_id).await;
        check(&last)
    })
    .await;
    assert!(held, "run {run_id}: {what} never held; last view: {last:#}");
    last
}

pub(super) fn phases(view: &Value) -> Vec<Value> {
    view["agents"].as_array().unwrap().iter().map(|agent| agent["phase"].clone()).collect()
}

/// The run's pods (real processes) that still exist.
pub(super) fn pods_of(api: &KubeApi, run_id: Uuid) -> usize {
    let job = format!("armada-agent-{run_id}");
    api.pods(NS)
        .iter()
        .filter(|pod| pod.metadata.labels.as_ref().and_then(|l| l.get("batch.kubernetes.io/job-name")) == Some(&job))
        .count()
}

/// The agents' working directories (the Job sets no ARMADA_WORK_DIR: the default, under the
/// temporary folder).
fn remove_agent_dirs(run_id: Uuid) {
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join("armada-agents").join(run_id.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_runs_to_completion_through_the_kubernetes_launcher_and_cancel_and_refusals_end_runs() {
    let Some(Cluster { app, api, pods, .. }) = cluster().await else { return };
    let live = LiveMessages::connect(&app.ws(&format!("/ws/events?token={TOKEN}"))).await;

    // 1. A whole run: 3 pods, 20 jobs, 19 Success and 1 Failed (the row that asks to fail).
    let (status, body) = start(&app, hello_upload(None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run_id = Uuid::parse_str(body["run_uuid"].as_str().unwrap()).unwrap();
    let done = view_until(&app, run_id, "completed with every agent succeeded", |v| {
        v["status"] == "completed" && phases(v).iter().all(|phase| phase == "succeeded")
    })
    .await;
    assert_eq!(done["detail"], "20 jobs: 19 succeeded, 1 failed", "{done:#}");
    assert_eq!(done["counts"], json!({"Success": 19, "Failed": 1}), "{done:#}");
    let agents = done["agents"].as_array().unwrap();
    assert_eq!(agents.iter().map(|a| a["pod_index"].clone()).collect::<Vec<_>>(), [json!(0), json!(1), json!(2)]);
    let taken: u64 = agents.iter().map(|a| a["jobs_taken"].as_u64().unwrap_or(0)).sum();
    assert_eq!(taken, 20, "every job was taken by a pod's agent: {done:#}");
    for (index, agent) in agents.iter().enumerate() {
        assert_eq!(agent["agent"], format!("agent-{index}"), "{agent}");
        assert!(agent["detail"].is_null(), "{agent}");
    }
    // The Job the launcher created is the seed's, for this run and project.
    let created = api.created_jobs();
    assert_eq!(created.len(), 1);
    let job = &created[0];
    assert_eq!(job.metadata.name.as_deref(), Some(format!("armada-agent-{run_id}").as_str()));
    let spec = job.spec.as_ref().unwrap();
    assert_eq!(
        (spec.completion_mode.as_deref(), spec.completions, spec.parallelism),
        (Some("Indexed"), Some(3), Some(3))
    );
    // Each pod's agent found its own message, keyed by the completion index.
    let page = armada::model::PageRequest::new(Some(1), Some(100), 100).unwrap();
    let outputs = app.state.store().list_outputs(Some(run_id), page).await.unwrap().items;
    let mut inits: Vec<(u64, String)> = outputs
        .iter()
        .filter(|o| o.data["kind"] == "agent_init")
        .map(|o| (o.data["agent"].as_u64().unwrap(), o.data["greeting"].as_str().unwrap_or_default().to_string()))
        .collect();
    inits.sort();
    assert_eq!(inits, [(0, "bonjour".into()), (1, "hola".into()), (2, "hello".into())]);
    assert_eq!(outputs.iter().filter(|o| o.data["screen_visible"] == 0).count(), 22, "the distant tune");

    // 2. Cancelling a run mid-job deletes its Job (background propagation) and stops its agents.
    let mut slow: Value =
        serde_json::from_slice(&std::fs::read(example("hello/config/config_template.json")).unwrap()).unwrap();
    slow["run_message"]["job_timeout_secs"] = json!(900);
    slow["default_job_message"]["pause_secs"] = json!(600);
    let (status, body) = start(&app, hello_upload(Some(&slow))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let slow_id = Uuid::parse_str(body["run_uuid"].as_str().unwrap()).unwrap();
    view_until(&app, slow_id, "three agents running a job each", |v| {
        v["counts"]["Running"] == 3 && phases(v).iter().all(|phase| phase == "running")
    })
    .await;
    assert_eq!(pods_of(&api, slow_id), 3);
    let (status, cancelled) = app.post(&format!("/bot/runs/{slow_id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled", "{cancelled:#}");
    assert_eq!(cancelled["counts"], json!({"Cancelled": 20}), "{cancelled:#}");
    assert!(phases(&cancelled).iter().all(|phase| phase == "stopped"), "{cancelled:#}");
    let job_name = format!("armada-agent-{slow_id}");
    let deletes: Vec<_> =
        api.requests().into_iter().filter(|r| r.method == "DELETE" && r.path.ends_with(&job_name)).collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].body.as_ref().map(|b| b["propagationPolicy"].clone()), Some(json!("Background")));
    assert!(!api.job_exists(NS, &job_name), "the Job is gone");
    assert_eq!(pods_of(&api, slow_id), 0, "every agent process exited and its pod went");

    // 3. A Job the API refuses fails the start with the API's reason, recorded on the run.
    let forbidden = "jobs.batch is forbidden: User \"system:serviceaccount:armada:default\" cannot create resource \
                     \"jobs\" in API group \"batch\" in the namespace \"armada\"";
    api.refuse("POST", "jobs", 403, "Forbidden", forbidden);
    let refused_id = Uuid::new_v4();
    let (status, body) = start(&app, hello_upload(None).text("run_uuid", refused_id.to_string())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.starts_with("could not start the run: launching the agents failed:"), "{detail}");
    assert!(detail.contains(forbidden) && detail.contains("HTTP 403"), "{detail}");
    let failed = eventually(Duration::from_secs(10), async || {
        live.of_type("update_run_status").iter().any(|run| {
            run["run_uuid"] == json!(refused_id)
                && run["run_status"] == "failed"
                && run["run_detail"].as_str().is_some_and(|d| d.contains(forbidden))
        })
    })
    .await;
    assert!(failed, "the run was recorded failed with the API's reason: {:#?}", live.of_type("update_run_status"));
    assert!(!api.job_exists(NS, &format!("armada-agent-{refused_id}")), "the refused Job was not created");
    assert_eq!(pods_of(&api, refused_id), 0);

    drop(pods);
    remove_agent_dirs(run_id);
    remove_agent_dirs(slow_id);
}
