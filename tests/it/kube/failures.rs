//! Runs whose agents never start, through `POST /bot/start` and the Kubernetes launcher on the
//! stand-in API server: pods stuck in `ImagePullBackOff`, and a Job whose pods the Job
//! controller cannot create (a compute quota). Kubernetes retries both forever; with
//! `ARMADA_KUBE_PENDING_TIMEOUT_SECS` the agents count as failed, the run fails with their
//! reason and its Job is deleted. No agent ever runs, so the orchestrator's engines are the
//! embedded ones.

use std::sync::Arc;
use std::time::Duration;

use armada::infra::launcher::kube::job::{SQL_SERVER_KEYS, SQL_SERVER_SECRET};
use armada::infra::launcher::kube::{KubeLauncher, connect_with_kubeconfig};
use armada::roles::Role;
use armada::settings::{Settings, Vars};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use super::NS;
use super::run::{hello_upload, phases, pods_of, start, view_until};
use crate::support::kube_api::{KubeApi, PodScript, Recorded, scripts};
use crate::support::{TestApp, eventually};

/// An orchestrator and backend whose launcher is built from the settings of a Helm-chart
/// orchestrator with a one-second pending timeout, on a stand-in whose pods play `script`
/// (the SQL Secret the pods refer to exists).
async fn cluster(script: PodScript) -> (TestApp, KubeApi, tempfile::TempDir) {
    let api = KubeApi::start(script).await;
    let sql: Vec<(&str, &str)> = SQL_SERVER_KEYS.iter().map(|key| (*key, "from-the-sql-secret")).collect();
    api.put_secret(NS, SQL_SERVER_SECRET, &sql);
    let dir = tempfile::tempdir().unwrap();
    let connection = connect_with_kubeconfig(&api.write_kubeconfig(dir.path(), NS)).await.unwrap();
    let vars = Vars::from_pairs([
        ("PLATFORM", "distant"),
        ("ARMADA_KUBE_NAMESPACE", NS),
        ("ARMADA_KUBE_PENDING_TIMEOUT_SECS", "1"),
        ("DOCKER_HUB_USERNAME", "acme"),
        ("REDIS_HOST", "armada-redis"),
        ("RABBITMQ_URL", "amqp://armada-rabbitmq:5672/%2f"),
        ("BACKEND_URL", "http://armada-backend:8000"),
    ]);
    let settings = Settings::from_vars(vars, Vec::new(), None).unwrap();
    let launcher = KubeLauncher::with_settings(connection, &settings).expect("a launcher from the settings");
    let app = TestApp::builder().roles([Role::Orchestrator, Role::Backend]).launcher(Arc::new(launcher)).spawn().await;
    (app, api, dir)
}

/// Starts `examples/hello` (3 agents, 20 jobs) and returns its run id.
async fn start_hello(app: &TestApp) -> Uuid {
    let (status, body) = start(app, hello_upload(None)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Uuid::parse_str(body["run_uuid"].as_str().unwrap_or_default()).expect("a run id")
}

/// The run once it failed, with every agent failed.
async fn failed_view(app: &TestApp, run_id: Uuid) -> Value {
    view_until(app, run_id, "failed with every agent failed", |v| {
        v["status"] == "failed" && phases(v).iter().all(|phase| phase == "failed")
    })
    .await
}

/// Once the run failed: its Job was deleted with background propagation, and no pod is left.
async fn assert_job_deleted(api: &KubeApi, run_id: Uuid) {
    let job = format!("armada-agent-{run_id}");
    let gone =
        eventually(Duration::from_secs(30), async || !api.job_exists(NS, &job) && pods_of(api, run_id) == 0).await;
    assert!(gone, "the Job {job} and its pods are still there: {:#?}", api.pods(NS));
    let deletes: Vec<Recorded> =
        api.requests().into_iter().filter(|r| r.method == "DELETE" && r.path.ends_with(&job)).collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].body.as_ref().map(|b| b["propagationPolicy"].clone()), Some(json!("Background")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_image_cannot_be_pulled_fails_with_the_reason_and_its_job_is_deleted() {
    let (app, api, _dir) = cluster(scripts::image_pull_backoff()).await;
    let run_id = start_hello(&app).await;
    let image = api.created_jobs()[0].spec.as_ref().and_then(|s| s.template.spec.as_ref()).unwrap().containers[0]
        .image
        .clone()
        .unwrap_or_default();
    assert!(image.starts_with("acme/armada-agent:"), "{image}");

    let failed = failed_view(&app, run_id).await;
    let reason =
        format!("ImagePullBackOff: Back-off pulling image \"{image}\" (the container had not started after 1 s)");
    assert_eq!(
        failed["detail"],
        format!(
            "every agent ended with 20 of 20 jobs unfinished (agent-0, agent-1, agent-2: {reason}); \
             20 jobs: 0 succeeded, 20 failed"
        ),
        "{failed:#}"
    );
    assert_eq!(failed["counts"], json!({"Failed": 20}), "{failed:#}");
    for agent in failed["agents"].as_array().unwrap() {
        assert_eq!(agent["detail"], reason, "{agent}");
        assert!(agent["finished_at"].is_string(), "{agent}");
    }
    assert_job_deleted(&api, run_id).await;
    let (_, active) = app.get("/bot/runs").await;
    assert_eq!(active["runs"], json!([]), "nothing is left watching the run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_pods_the_job_controller_cannot_create_fails_saying_what_to_check() {
    let (app, api, _dir) = cluster(scripts::runs_until_stopped()).await;
    // In a real cluster a compute quota is checked per pod: the Job is accepted, its pods are not.
    let quota = "pods \"armada-agent-0-x\" is forbidden: exceeded quota: compute, requested: requests.cpu=250m, \
                 used: requests.cpu=4, limited: requests.cpu=4";
    api.refuse_pod_creation(quota);
    let run_id = start_hello(&app).await;
    let job = format!("armada-agent-{run_id}");
    assert_eq!(api.failed_creates(), [(NS.to_string(), job.clone(), format!("Error creating: {quota}"))]);

    let failed = failed_view(&app, run_id).await;
    let detail = failed["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with(&format!(
            "every agent ended with 20 of 20 jobs unfinished (agent-0, agent-1, agent-2: no pod was created \
             within 1 s of Job {job}: the Job controller's pod creations are refused"
        )),
        "{detail}"
    );
    assert!(detail.contains(&format!("`kubectl describe job {job} -n {NS}`")), "{detail}");
    assert!(detail.contains("which the orchestrator's Role cannot read"), "{detail}");
    assert!(detail.ends_with("; 20 jobs: 0 succeeded, 20 failed"), "{detail}");
    assert_job_deleted(&api, run_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_pods_lack_their_secret_fails_with_create_container_config_error() {
    let (app, api, _dir) = cluster(scripts::runs_until_stopped()).await;
    api.delete_secret(NS, SQL_SERVER_SECRET);
    let run_id = start_hello(&app).await;
    let failed = failed_view(&app, run_id).await;
    let reason = "CreateContainerConfigError: secret \"armada-sql-server-secret\" not found (key SQL_SERVER_NAME) \
                  (the container had not started after 1 s)";
    let detail = failed["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("(agent-0, agent-1, agent-2: {reason})")), "{detail}");
    assert_job_deleted(&api, run_id).await;
}
