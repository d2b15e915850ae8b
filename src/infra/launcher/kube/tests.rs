//! The Kubernetes launcher against the stand-in API server (`tests/support/kube_api`): the
//! conformance suite every launcher passes, then what only Kubernetes has — the Job on the
//! wire, the pod watch, pod reasons, deletion with background propagation, API refusals,
//! access reviews and Secrets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::job::tests::{context, spec};
use super::job::{SQL_SERVER_KEYS, SQL_SERVER_SECRET};
use super::kube_api::{KubeApi, PodScript, script, scripts};
use super::*;
use crate::infra::launcher::conformance::{AgentBehaviour, FAILURE_DETAIL, LauncherFixture, eventually_agents};
use crate::infra::launcher::{AgentPhase, LaunchError};

const NS: &str = "armada";

/// A launcher with the stand-in it talks to, kept alive together.
struct StandIn {
    api: KubeApi,
    launcher: KubeLauncher,
    _dir: tempfile::TempDir,
}

/// A stand-in whose pods play `script`, holding the SQL Secret agents reference, and a launcher
/// connected to it through a kubeconfig file.
async fn stand_in(script: PodScript) -> StandIn {
    let api = KubeApi::start(script).await;
    let pairs: Vec<(&str, &str)> = SQL_SERVER_KEYS.iter().map(|k| (*k, "value")).collect();
    api.put_secret(NS, SQL_SERVER_SECRET, &pairs);
    connected(api, context(Distrib::Kube)).await
}

async fn connected(api: KubeApi, ctx: KubeContext) -> StandIn {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), NS);
    let connection = connect_with_kubeconfig(&kubeconfig).await.expect("connect through the kubeconfig");
    StandIn { api, launcher: KubeLauncher::new(connection, ctx), _dir: dir }
}

#[async_trait]
impl Launcher for StandIn {
    fn describe(&self) -> String {
        self.launcher.describe()
    }
    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        self.launcher.check_connectivity().await
    }
    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError> {
        self.launcher.launch(spec).await
    }
    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        self.launcher.agents(run_id).await
    }
    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError> {
        self.launcher.stop(run_id).await
    }
    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError> {
        self.launcher.forget(run_id).await
    }
    async fn shutdown(&self) -> Result<(), LaunchError> {
        self.launcher.shutdown().await
    }
}

crate::infra::launcher::conformance::launcher_suite!(kube_launcher, |fixture: LauncherFixture| async move {
    let script = match fixture.behaviour {
        AgentBehaviour::RunsUntilStopped => scripts::runs_until_stopped(),
        AgentBehaviour::IgnoresStop => scripts::ignores_stop(),
        AgentBehaviour::ExitsOk => scripts::exits_ok(),
        AgentBehaviour::ExitsWithError => scripts::exits_with_error(FAILURE_DETAIL),
    };
    let mut stand_in = stand_in(script).await;
    stand_in.launcher = stand_in.launcher.with_stop_grace(fixture.stop_grace);
    Some(Arc::new(stand_in) as Arc<dyn Launcher>)
});

/// Polls `agents` until `check` holds for the whole list.
async fn agents_until(
    launcher: &KubeLauncher,
    run_id: Uuid,
    check: impl Fn(&[AgentStatus]) -> bool,
) -> Vec<AgentStatus> {
    eventually_agents(launcher, run_id, "agents", check).await
}

fn all(phase: AgentPhase) -> impl Fn(&[AgentStatus]) -> bool {
    move |agents| agents.iter().all(|a| a.phase == phase)
}

#[tokio::test]
async fn launch_posts_the_seed_job_and_each_pod_gets_its_index() {
    let seen: Arc<Mutex<BTreeMap<usize, BTreeMap<String, String>>>> = Arc::default();
    let record = seen.clone();
    let stand_in = stand_in(script(move |run| {
        record.lock().unwrap().insert(run.index, run.env.clone());
        async move {
            run.running();
            run.terminating().await;
            super::kube_api::PodExit::ok()
        }
    }))
    .await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.expect("launch");

    let jobs = stand_in.api.created_jobs();
    assert_eq!(jobs.len(), 1);
    let mut sent = jobs[0].clone();
    sent.metadata.namespace = Some(NS.into());
    assert_eq!(sent, agent_job(&spec, &context(Distrib::Kube)), "the body on the wire is the seed's Job");
    let create = stand_in.api.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(create.path, format!("/apis/batch/v1/namespaces/{NS}/jobs"));

    let agents = agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Running)).await;
    assert_eq!(agents.iter().map(|a| a.pod_index).collect::<Vec<_>>(), [0, 1, 2]);
    let watch = stand_in.api.requests().into_iter().find(|r| r.query.get("watch").is_some_and(|w| w == "true"));
    let selector = watch.expect("a pod watch").query.get("labelSelector").cloned();
    assert_eq!(selector, Some(format!("batch.kubernetes.io/job-name=armada-agent-{}", spec.run_id)));

    let envs = seen.lock().unwrap().clone();
    assert_eq!(envs.len(), 3);
    for (index, env) in envs {
        assert_eq!(env["POD_INDEX"], index.to_string(), "POD_INDEX from the completion-index annotation");
        assert_eq!(env["JOB_COMPLETION_INDEX"], index.to_string());
        assert_eq!(env["RUN_ID"], spec.run_id.to_string());
        assert_eq!(env["SQL_SERVER_PASSWORD"], "value", "resolved from armada-sql-server-secret");
        assert_eq!(env["BACKEND_URL"], "http://armada-backend:8000");
    }
    stand_in.launcher.stop(spec.run_id).await.unwrap();
}

#[tokio::test]
async fn stop_deletes_the_job_with_background_propagation() {
    let stand_in = stand_in(scripts::runs_until_stopped()).await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Running)).await;
    stand_in.launcher.stop(spec.run_id).await.unwrap();

    let name = job_name(&spec);
    let deletes: Vec<_> = stand_in.api.requests().into_iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "one DELETE, of the Job: {deletes:#?}");
    assert_eq!(deletes[0].path, format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}"));
    let options = deletes[0].body.clone().expect("DeleteOptions body");
    assert_eq!(options["propagationPolicy"], "Background", "{options}");
    assert!(!stand_in.api.job_exists(NS, &name));
    assert!(stand_in.api.pods(NS).is_empty(), "the Job's pods went with it");
    let agents = stand_in.launcher.agents(spec.run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.detail.is_none()), "{agents:#?}");
}

#[tokio::test]
async fn an_agent_that_dies_of_the_stop_signal_is_stopped_with_its_exit() {
    let stand_in = stand_in(scripts::killed_by_sigterm()).await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Running)).await;
    stand_in.launcher.stop(spec.run_id).await.unwrap();
    let agents = stand_in.launcher.agents(spec.run_id).await.unwrap();
    for agent in agents {
        assert_eq!(agent.phase, AgentPhase::Stopped);
        assert_eq!(agent.detail.as_deref(), Some("stopped; the agent exited with code 143 (Error)"));
    }
}

#[tokio::test]
async fn pods_that_cannot_pull_their_image_say_so_while_the_pending_timeout_runs() {
    let stand_in = stand_in(scripts::image_pull_backoff()).await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    let backoff = |agents: &[AgentStatus]| {
        agents.iter().all(|a| a.detail.as_deref().is_some_and(|d| d.starts_with("ImagePullBackOff")))
    };
    let agents = agents_until(&stand_in.launcher, spec.run_id, backoff).await;
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Pending), "{agents:#?}");
    assert_eq!(
        agents[0].detail.as_deref(),
        Some("ImagePullBackOff: Back-off pulling image \"armadasvc/armada-agent:1.2\"")
    );
    stand_in.launcher.stop(spec.run_id).await.unwrap();
}

/// The DELETE requests the stand-in received for `spec`'s Job.
fn job_deletes(api: &KubeApi, spec: &LaunchSpec) -> Vec<super::kube_api::Recorded> {
    let path = format!("/apis/batch/v1/namespaces/{NS}/jobs/{}", job_name(spec));
    api.requests().into_iter().filter(|r| r.method == "DELETE" && r.path == path).collect()
}

#[tokio::test]
async fn pods_stuck_pulling_their_image_fail_after_the_pending_timeout_and_forget_deletes_the_job() {
    let mut stand_in = stand_in(scripts::image_pull_backoff()).await;
    stand_in.launcher = stand_in.launcher.with_pending_timeout(Duration::from_secs(1));
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    let agents = agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Failed)).await;
    for agent in &agents {
        assert_eq!(
            agent.detail.as_deref(),
            Some(
                "ImagePullBackOff: Back-off pulling image \"armadasvc/armada-agent:1.2\" (the container had not \
                 started after 1 s)"
            ),
            "{agent:#?}"
        );
    }
    assert_eq!(stand_in.api.pods(NS).len(), 3, "the pods are still there, retrying their pull");
    assert!(job_deletes(&stand_in.api, &spec).is_empty(), "reading the agents deletes nothing");

    stand_in.launcher.forget(spec.run_id).await.unwrap();
    let deletes = job_deletes(&stand_in.api, &spec);
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert_eq!(deletes[0].body.as_ref().map(|b| b["propagationPolicy"].clone()), Some("Background".into()));
    assert!(!stand_in.api.job_exists(NS, &job_name(&spec)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !stand_in.api.pods(NS).is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stand_in.api.pods(NS).is_empty(), "the stuck pods went with their Job: {:#?}", stand_in.api.pods(NS));
}

#[tokio::test]
async fn a_job_whose_pods_cannot_be_created_fails_its_agents_after_the_pending_timeout() {
    let mut stand_in = stand_in(scripts::runs_until_stopped()).await;
    stand_in.launcher = stand_in.launcher.with_pending_timeout(Duration::from_secs(1));
    let quota = "pods \"armada-agent-x-0-abcde\" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, \
                 used: requests.cpu=4, limited: requests.cpu=4";
    stand_in.api.refuse_pod_creation(quota);
    let spec = spec();
    stand_in.launcher.launch(&spec).await.expect("the Job itself is accepted");
    let name = job_name(&spec);
    assert!(stand_in.api.job_exists(NS, &name));
    assert_eq!(stand_in.api.failed_creates(), [(NS.to_string(), name.clone(), format!("Error creating: {quota}"))]);
    let agents = agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Failed)).await;
    let expected = format!(
        "no pod was created within 1 s of Job {name}: the Job controller's pod creations are refused (an \
         exceeded ResourceQuota, a LimitRange or an admission webhook?); `kubectl describe job {name} -n {NS}` shows \
         the reason in its events, which the orchestrator's Role cannot read"
    );
    assert!(agents.iter().all(|a| a.detail.as_deref() == Some(expected.as_str())), "{agents:#?}");

    stand_in.launcher.forget(spec.run_id).await.unwrap();
    assert_eq!(job_deletes(&stand_in.api, &spec).len(), 1, "the Job would keep trying: it is deleted");
    assert!(!stand_in.api.job_exists(NS, &name));
}

#[tokio::test]
async fn forget_keeps_the_job_of_a_run_whose_pods_all_ended() {
    let stand_in = stand_in(scripts::exits_with_error(FAILURE_DETAIL)).await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    agents_until(&stand_in.launcher, spec.run_id, all(AgentPhase::Failed)).await;
    stand_in.launcher.forget(spec.run_id).await.unwrap();
    assert!(job_deletes(&stand_in.api, &spec).is_empty(), "its pods stay for `kubectl logs` until the Job's TTL");
    assert!(stand_in.api.job_exists(NS, &job_name(&spec)));
}

#[tokio::test]
async fn with_settings_takes_the_pending_timeout() {
    let stand_in = stand_in(scripts::exits_ok()).await;
    let vars = crate::settings::Vars::from_pairs([
        ("PLATFORM", "distant"),
        ("REDIS_HOST", "armada-redis"),
        ("RABBITMQ_URL", "amqp://armada-rabbitmq:5672/%2f"),
        ("BACKEND_URL", "http://armada-backend:8000"),
        ("ARMADA_KUBE_PENDING_TIMEOUT_SECS", "42"),
    ]);
    let settings = Settings::from_vars(vars, Vec::new(), None).unwrap();
    let launcher = KubeLauncher::with_settings(stand_in.launcher.connection.clone(), &settings).unwrap();
    assert_eq!(launcher.pending_timeout(), Duration::from_secs(42));
    let defaults = Settings::from_vars(
        crate::settings::Vars::from_pairs([
            ("REDIS_HOST", "r"),
            ("RABBITMQ_URL", "amqp://q"),
            ("BACKEND_URL", "http://b"),
        ]),
        Vec::new(),
        None,
    )
    .unwrap();
    let launcher = KubeLauncher::with_settings(stand_in.launcher.connection.clone(), &defaults).unwrap();
    assert_eq!(launcher.pending_timeout(), crate::settings::DEFAULT_KUBE_PENDING_TIMEOUT);
}

#[tokio::test]
async fn a_missing_secret_leaves_pods_pending_with_the_reason() {
    let api = KubeApi::start(scripts::runs_until_stopped()).await;
    let stand_in = connected(api, context(Distrib::Kube)).await;
    let spec = spec();
    stand_in.launcher.launch(&spec).await.unwrap();
    let agents = agents_until(&stand_in.launcher, spec.run_id, |a| a.iter().all(|a| a.detail.is_some())).await;
    assert_eq!(agents[0].phase, AgentPhase::Pending);
    assert_eq!(
        agents[0].detail.as_deref(),
        Some("CreateContainerConfigError: secret \"armada-sql-server-secret\" not found (key SQL_SERVER_NAME)")
    );
    stand_in.launcher.stop(spec.run_id).await.unwrap();
}

/// Launching while the API refuses with `code`: the error carries the API's message.
async fn refused_launch(code: u16, reason: &str, message: &str) -> LaunchError {
    let stand_in = stand_in(scripts::runs_until_stopped()).await;
    stand_in.api.refuse("POST", "jobs", code, reason, message);
    let spec = spec();
    let err = stand_in.launcher.launch(&spec).await.expect_err("refused");
    assert!(err.to_string().contains(message), "{err}");
    assert!(matches!(stand_in.launcher.agents(spec.run_id).await, Err(LaunchError::NotFound(_))));
    err
}

#[tokio::test]
async fn forbidden_create_is_a_launch_error_with_the_api_message() {
    let message = "jobs.batch is forbidden: User \"system:serviceaccount:armada:default\" cannot create resource \
                   \"jobs\" in API group \"batch\" in the namespace \"armada\"";
    let err = refused_launch(403, "Forbidden", message).await;
    assert!(matches!(err, LaunchError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("armada kube check"), "{err}");
}

/// An object-count quota on Jobs is checked when the Job is created, so the create itself is
/// refused. (A compute quota refuses the pods instead: see
/// `a_job_whose_pods_cannot_be_created_fails_its_agents_after_the_pending_timeout`.)
#[tokio::test]
async fn a_job_count_quota_refusing_the_job_is_a_launch_error_with_the_api_message() {
    let message = "jobs.batch \"armada-agent-x\" is forbidden: exceeded quota: object-counts, requested: \
                   count/jobs.batch=1, used: count/jobs.batch=10, limited: count/jobs.batch=10";
    let err = refused_launch(403, "Forbidden", message).await;
    assert!(matches!(err, LaunchError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn an_invalid_job_is_invalid_with_the_api_message() {
    let message = "Job.batch \"armada-agent-x\" is invalid: spec.template.spec.containers[0].resources.requests[cpu]: \
                   Invalid value: \"lots\": quantities must match the regular expression";
    let err = refused_launch(422, "Invalid", message).await;
    assert!(matches!(err, LaunchError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_job_that_already_exists_in_the_cluster_is_conflict() {
    let first = stand_in(scripts::runs_until_stopped()).await;
    let spec = spec();
    first.launcher.launch(&spec).await.unwrap();
    // Another orchestrator (or this one before a restart) launched the same run.
    let dir = tempfile::tempdir().unwrap();
    let connection = connect_with_kubeconfig(&first.api.write_kubeconfig(dir.path(), NS)).await.unwrap();
    let second = KubeLauncher::new(connection, context(Distrib::Kube));
    match second.launch(&spec).await {
        Err(LaunchError::Conflict(message)) => {
            assert!(message.contains(&spec.run_id.to_string()) && message.contains("already exists"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    first.launcher.stop(spec.run_id).await.unwrap();
}

#[tokio::test]
async fn connectivity_is_a_cheap_authorised_pod_list() {
    let stand_in = stand_in(scripts::exits_ok()).await;
    stand_in.launcher.check_connectivity().await.expect("reachable");
    let list = stand_in.api.requests().pop().unwrap();
    assert_eq!((list.method.as_str(), list.path.as_str()), ("GET", "/api/v1/namespaces/armada/pods"));
    assert_eq!(list.query.get("limit").map(String::as_str), Some("1"));
    assert!(stand_in.launcher.describe().contains(&stand_in.api.url), "{}", stand_in.launcher.describe());
    stand_in.api.refuse("GET", "pods", 403, "Forbidden", "pods is forbidden: no list for you");
    let err = stand_in.launcher.check_connectivity().await.unwrap_err();
    assert!(err.to_string().contains("pods is forbidden: no list for you"), "{err}");
}

#[tokio::test]
async fn from_settings_refuses_in_process_engines() {
    let settings =
        Settings::from_vars(crate::settings::Vars::from_pairs([("PLATFORM", "distant")]), Vec::new(), None).unwrap();
    match KubeLauncher::from_settings(&settings).await {
        Err(LaunchError::Invalid(message)) => {
            assert!(message.contains("REDIS_HOST, RABBITMQ_URL, BACKEND_URL"), "{message}")
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a launcher without Redis and RabbitMQ"),
    }
}

#[tokio::test]
async fn access_reviews_report_each_permission_of_the_role() {
    let stand_in = stand_in(scripts::exits_ok()).await;
    let checks = access::check_access(&stand_in.launcher.connection, NS).await.unwrap();
    assert_eq!(checks.len(), 9);
    assert!(checks.iter().all(|c| c.allowed), "{checks:#?}");
    stand_in.api.deny("", "pods", "watch");
    let checks = access::check_access(&stand_in.launcher.connection, NS).await.unwrap();
    let denied: Vec<String> = checks.iter().filter(|c| !c.allowed).map(|c| c.permission.describe()).collect();
    assert_eq!(denied, ["watch pods"]);
    let review = stand_in.api.requests().pop().unwrap();
    assert_eq!(review.path, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews");
    assert_eq!(review.body.unwrap()["spec"]["resourceAttributes"]["namespace"], NS);
}

#[tokio::test]
async fn secrets_are_created_then_replaced() {
    let stand_in = stand_in(scripts::exits_ok()).await;
    let env: BTreeMap<String, String> =
        [("DOCKER_HUB_USERNAME", "acme"), ("IPQS_KEY", "k1")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    let plans = secrets::plan_secrets(&env, std::path::Path::new(".")).unwrap();
    let ipqs = plans
        .iter()
        .find_map(|p| match p {
            secrets::SecretPlan::Apply { secret, .. } if secret.metadata.name.as_deref() == Some(job::IPQS_SECRET) => {
                Some(secret.clone())
            }
            _ => None,
        })
        .unwrap();
    let connection = &stand_in.launcher.connection;
    assert_eq!(secrets::apply_secret(connection, NS, &ipqs).await.unwrap(), secrets::Applied::Created);
    assert_eq!(secrets::apply_secret(connection, NS, &ipqs).await.unwrap(), secrets::Applied::Replaced);
    let stored = stand_in.api.secret(NS, job::IPQS_SECRET).unwrap();
    assert_eq!(stored.data.unwrap()["IPQS_KEY"].0, b"k1");
}
