//! `armada kube …` run as a real binary, and the Kubernetes launcher with pods played by real
//! processes, all against the stand-in API server (`support::kube_api`). `run`: whole runs of
//! `examples/hello` through the launcher, its pods running the real `armada agent`. `failures`:
//! runs whose pods never start (an image that cannot be pulled, pods the Job controller cannot
//! create) fail with the reason instead of running forever.

mod failures;
mod run;

use std::path::{Path, PathBuf};
use std::time::Duration;

use armada::infra::launcher::kube::job::{SQL_SERVER_KEYS, SQL_SERVER_SECRET};
use armada::infra::launcher::kube::{KubeContext, KubeLauncher, agent_job, connect_with_kubeconfig};
use armada::infra::launcher::{AgentPhase, AgentStatus, LaunchSpec, Launcher};
use armada::process::ChildSpec;
use armada::settings::{Distrib, Secret};
use k8s_openapi::api::batch::v1::Job;
use uuid::Uuid;

use crate::support::kube_api::{KubeApi, scripts};
use crate::support::kube_process::process_script;
use crate::support::{eventually, run_armada};

const RUN_ID: &str = "00000000-0000-4000-8000-000000000000";
const NS: &str = "armada";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The settings an orchestrator of the Helm chart has, as variables.
const CLUSTER_ENV: [(&str, &str); 7] = [
    ("ARMADA_KUBE_NAMESPACE", NS),
    ("DOCKER_HUB_USERNAME", "acme"),
    ("REDIS_HOST", "armada-redis"),
    ("REDIS_PORT", "6379"),
    ("RABBITMQ_URL", "amqp://armada:s3cret@armada-rabbitmq:5672/%2f"),
    ("BACKEND_URL", "http://armada-backend:8000"),
    ("PROXY_PROVIDER_URL", "http://armada-proxy-provider:5001"),
];

fn cluster_context(distrib: Distrib) -> KubeContext {
    KubeContext {
        distrib,
        namespace: NS.into(),
        registry: "acme".into(),
        redis_host: "armada-redis".into(),
        redis_port: 6379,
        rabbitmq_url: Secret::new("amqp://armada:***@armada-rabbitmq:5672/%2f"),
        backend_url: "http://armada-backend:8000".into(),
        proxy_provider_url: "http://armada-proxy-provider:5001".into(),
        fingerprint_provider_url: String::new(),
        token_secret: None,
    }
}

/// The Job YAML `armada kube job` printed (after its comment line).
fn printed_job(stdout: &str) -> Job {
    assert!(stdout.starts_with("# The agent Job for run"), "{stdout}");
    yaml_serde::from_str(stdout).expect("the output is one batch/v1 Job")
}

#[tokio::test]
async fn kube_job_prints_the_seed_job_of_a_project_folder() {
    let cwd = tempfile::tempdir().unwrap();
    for (distrib, flag) in [(Distrib::Kube, "kube"), (Distrib::Minikube, "minikube")] {
        let template = repo("tests/fixtures/kube-project");
        let args = ["kube", "job", "--run-id", RUN_ID, "--template", template.to_str().unwrap(), "--distrib", flag];
        let out = run_armada(cwd.path(), &args, &CLUSTER_ENV).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(!out.stdout.contains("s3cret"), "the RabbitMQ password is never printed");
        let spec = LaunchSpec {
            run_id: Uuid::parse_str(RUN_ID).unwrap(),
            number_of_agents: 3,
            image_name: "armada-agent".into(),
            image_version: "1.2".into(),
            agent_cpu: Some("500m".into()), // from config_distant.json, not config_local.json
            agent_memory: Some("1Gi".into()),
            requirements_txt: Some("requests==2.32.0\n".into()),
        };
        assert_eq!(printed_job(&out.stdout), agent_job(&spec, &cluster_context(distrib)));
    }
}

#[tokio::test]
async fn kube_job_of_the_node_example_has_its_two_agents() {
    let cwd = tempfile::tempdir().unwrap();
    let template = repo("examples/node-worker");
    let args = ["kube", "job", "--run-id", RUN_ID, "--template", template.to_str().unwrap()];
    let out = run_armada(cwd.path(), &args, &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let job = printed_job(&out.stdout);
    assert_eq!(job.metadata.name.as_deref(), Some(format!("armada-agent-{RUN_ID}").as_str()));
    let spec = job.spec.unwrap();
    assert_eq!((spec.completions, spec.parallelism), (Some(2), Some(2)));
    assert!(out.stderr.contains("REDIS_HOST, RABBITMQ_URL, BACKEND_URL unset"), "{}", out.stderr);
}

#[tokio::test]
async fn kube_job_of_the_hello_example_is_the_seed_job() {
    let cwd = tempfile::tempdir().unwrap();
    let template = repo("examples/hello");
    let args = ["kube", "job", "--run-id", RUN_ID, "--template", template.to_str().unwrap()];
    // The Helm chart's orchestrator has every service URL.
    let mut env = CLUSTER_ENV.to_vec();
    env.push(("FINGERPRINT_PROVIDER_URL", "http://armada-fingerprint-provider:5005"));
    let out = run_armada(cwd.path(), &args, &env).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("s3cret"), "the RabbitMQ password is never printed");
    // The seed's "Agent Kubernetes Job Spec", item by item, for hello's 3 agents.
    let job = printed_job(&out.stdout);
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.completion_mode.as_deref(), Some("Indexed"));
    assert_eq!((spec.completions, spec.parallelism), (Some(3), Some(3)));
    assert_eq!(spec.ttl_seconds_after_finished, Some(1_000_000));
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let spread = &pod.topology_spread_constraints.unwrap()[0];
    assert_eq!(
        (spread.max_skew, spread.topology_key.as_str(), spread.when_unsatisfiable.as_str()),
        (1, "kubernetes.io/hostname", "ScheduleAnyway")
    );
    let requests = pod.containers[0].resources.clone().unwrap().requests.unwrap();
    assert_eq!((requests["cpu"].0.as_str(), requests["memory"].0.as_str()), ("250m", "256Mi"));
    assert_eq!(pod.containers[0].image_pull_policy.as_deref(), Some("Always"), "DISTRIB=kube");
    insta::assert_snapshot!("kube_job_examples_hello", out.stdout);
}

#[tokio::test]
async fn kube_job_of_a_folder_without_a_template_is_a_configuration_error() {
    let cwd = tempfile::tempdir().unwrap();
    let out = run_armada(cwd.path(), &["kube", "job", "--run-id", RUN_ID, "--template", "."], &[]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("config/config_template.json is missing"), "{}", out.stderr);
}

#[tokio::test]
async fn kube_check_lists_each_permission_of_the_role() {
    let api = KubeApi::start(scripts::exits_ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), NS);
    let env = [("KUBECONFIG", kubeconfig.to_str().unwrap()), ("ARMADA_KUBE_NAMESPACE", NS)];
    let out = run_armada(dir.path(), &["kube", "check"], &env).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let marks: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with('✔') || l.starts_with('✖')).collect();
    assert_eq!(
        marks,
        [
            "✔ create jobs.batch",
            "✔ delete jobs.batch",
            "✔ create pods",
            "✔ get pods",
            "✔ list pods",
            "✔ watch pods",
            "✔ delete pods",
            "✔ get configmaps",
            "✔ list configmaps",
        ]
    );
    let reviews = api.requests().into_iter().filter(|r| r.path.ends_with("/selfsubjectaccessreviews")).count();
    assert_eq!(reviews, 9);

    api.deny("", "pods", "watch");
    api.deny("batch", "jobs", "delete");
    let out = run_armada(dir.path(), &["kube", "check", "--kubeconfig", kubeconfig.to_str().unwrap()], &env).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains("✖ watch pods\n") && out.stdout.contains("✖ delete jobs.batch\n"), "{}", out.stdout);
    assert!(out.stdout.contains("2 of 9 permissions missing"), "{}", out.stdout);
}

#[tokio::test]
async fn bootstrap_secrets_creates_the_seed_secrets_and_never_prints_values() {
    let api = KubeApi::start(scripts::exits_ok()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = api.write_kubeconfig(dir.path(), NS);
    let values = [
        ("SQL_SERVER_NAME", "sql.example.internal"),
        ("SQL_SERVER_DB", "armada_db"),
        ("SQL_SERVER_USER", "armada_user"),
        ("SQL_SERVER_PASSWORD", "pa55-sql-value"),
        ("DOCKER_HUB_USERNAME", "acme"),
        ("DOCKER_HUB_PASSWORD", "dckr_pat_value"),
        ("IPQS_KEY", "ipqs-key-value"),
        ("ARMADA_TOKEN", "token-value"),
    ];
    let env_file = dir.path().join("prod.env");
    let text: String = values.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&env_file, text).unwrap();
    let args =
        ["kube", "bootstrap-secrets", "--env-file", env_file.to_str().unwrap(), "--namespace", NS, "--kubeconfig"];
    let args: Vec<&str> = args.into_iter().chain([kubeconfig.to_str().unwrap()]).collect();

    let out = run_armada(dir.path(), &args, &[]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for (_, value) in values.iter().filter(|(k, _)| *k != "DOCKER_HUB_USERNAME") {
        assert!(!out.stdout.contains(value) && !out.stderr.contains(value), "{value} printed:\n{out:?}");
    }
    for name in [
        "armada-sql-server-secret",
        "armada-docker-registry-secret",
        "armada-docker-username-secret",
        "armada-ipqualityscore-secret",
        "armada-token-secret",
    ] {
        assert!(out.stdout.contains(&format!("✔ {name} created")), "{name}:\n{}", out.stdout);
    }
    let keys = |name: &str| -> Vec<String> {
        api.secret(NS, name).unwrap_or_else(|| panic!("{name}")).data.unwrap().keys().cloned().collect()
    };
    assert_eq!(
        keys("armada-sql-server-secret"),
        ["SQL_SERVER_DB", "SQL_SERVER_NAME", "SQL_SERVER_PASSWORD", "SQL_SERVER_USER"]
    );
    assert_eq!(keys("armada-docker-username-secret"), ["DOCKER_HUB_USERNAME"]);
    assert_eq!(keys("armada-ipqualityscore-secret"), ["IPQS_KEY"]);
    assert_eq!(keys("armada-token-secret"), ["ARMADA_TOKEN"]);
    let registry = api.secret(NS, "armada-docker-registry-secret").unwrap();
    assert_eq!(registry.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
    let config: serde_json::Value = serde_json::from_slice(&registry.data.unwrap()[".dockerconfigjson"].0).unwrap();
    let auth = &config["auths"]["https://index.docker.io/v1/"];
    assert_eq!((auth["username"].as_str(), auth["password"].as_str()), (Some("acme"), Some("dckr_pat_value")));
    let sql = api.secret(NS, "armada-sql-server-secret").unwrap().data.unwrap();
    assert_eq!(sql["SQL_SERVER_PASSWORD"].0, b"pa55-sql-value");

    let again = run_armada(dir.path(), &args, &[]).await;
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout.matches(" replaced (").count(), 5, "{}", again.stdout);
}

/// A launcher on a stand-in whose pods are real processes built by `child`.
async fn process_launcher(
    child: impl Fn(&crate::support::kube_api::PodRun) -> ChildSpec + Send + Sync + 'static,
) -> (KubeApi, KubeLauncher, tempfile::TempDir) {
    let api = KubeApi::start(process_script(child)).await;
    let pairs: Vec<(&str, &str)> = SQL_SERVER_KEYS.iter().map(|k| (*k, "from-the-secret")).collect();
    api.put_secret(NS, SQL_SERVER_SECRET, &pairs);
    let dir = tempfile::tempdir().unwrap();
    let connection = connect_with_kubeconfig(&api.write_kubeconfig(dir.path(), NS)).await.unwrap();
    (api, KubeLauncher::new(connection, cluster_context(Distrib::Minikube)), dir)
}

async fn agents_until(
    launcher: &KubeLauncher,
    run_id: Uuid,
    check: impl Fn(&[AgentStatus]) -> bool,
) -> Vec<AgentStatus> {
    let mut agents = Vec::new();
    let held = eventually(Duration::from_secs(30), async || {
        agents = launcher.agents(run_id).await.expect("agents");
        check(&agents)
    })
    .await;
    assert!(held, "agents still {agents:#?}");
    agents
}

#[tokio::test]
async fn pods_run_one_process_per_completion_index_with_the_kubernetes_environment() {
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_path_buf();
    // Agent i writes what it was given, then exits with code i: 0 succeeds, 1 fails.
    let (_api, launcher, _dir) = process_launcher(move |_run| {
        ChildSpec::new("sh", &out_dir).args([
            "-c",
            "echo \"$POD_INDEX $JOB_COMPLETION_INDEX $RUN_ID $SQL_SERVER_PASSWORD $BACKEND_URL\" > agent-$POD_INDEX; \
             [ \"$POD_INDEX\" = 0 ] || { echo \"agent $POD_INDEX gave up\" >&2; exit 1; }",
        ])
    })
    .await;
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    let agents = agents_until(&launcher, run_id, |a| a.iter().all(|a| a.phase.is_final())).await;
    assert_eq!(agents[0].phase, AgentPhase::Succeeded, "{agents:#?}");
    assert_eq!(agents[1].phase, AgentPhase::Failed, "{agents:#?}");
    assert_eq!(agents[1].detail.as_deref(), Some("exited with code 1 (Error): agent 1 gave up"));
    for index in 0..2 {
        let seen = std::fs::read_to_string(out.path().join(format!("agent-{index}"))).unwrap();
        assert_eq!(seen.trim(), format!("{index} {index} {run_id} from-the-secret http://armada-backend:8000"));
    }
    launcher.stop(run_id).await.unwrap();
    launcher.forget(run_id).await.unwrap();
}

#[tokio::test]
async fn stopping_a_run_terminates_its_agent_processes() {
    let work = tempfile::tempdir().unwrap();
    let work_dir = work.path().to_path_buf();
    let (api, launcher, _dir) = process_launcher(move |_run| {
        ChildSpec::new("sh", &work_dir)
            .args(["-c", "trap 'exit 0' TERM; echo started > agent-$POD_INDEX; while :; do sleep 0.1; done"])
    })
    .await;
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 3)).await.unwrap();
    agents_until(&launcher, run_id, |a| a.iter().all(|a| a.phase == AgentPhase::Running)).await;
    assert!(
        eventually(Duration::from_secs(10), async || (0..3).all(|i| work.path().join(format!("agent-{i}")).exists()))
            .await
    );
    launcher.stop(run_id).await.unwrap();
    let agents = launcher.agents(run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.detail.is_none()), "{agents:#?}");
    assert!(api.pods(NS).is_empty(), "every pod (process) is gone");
}
