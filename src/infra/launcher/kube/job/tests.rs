//! The agent Job against the seed, item by item, for `DISTRIB=kube` and `DISTRIB=minikube`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec};
use uuid::Uuid;

use super::*;
use crate::settings::Vars;

pub(crate) const RUN_ID: &str = "00000000-0000-4000-8000-000000000000";

pub(crate) fn context(distrib: Distrib) -> KubeContext {
    KubeContext {
        distrib,
        namespace: "armada".into(),
        registry: "armadasvc".into(),
        redis_host: "armada-redis".into(),
        redis_port: 6379,
        rabbitmq_url: Secret::new("amqp://armada:s3cret@armada-rabbitmq:5672/%2f"),
        backend_url: "http://armada-backend:8000".into(),
        proxy_provider_url: "http://armada-proxy-provider:5001".into(),
        fingerprint_provider_url: "http://armada-fingerprint-provider:5005".into(),
        token_secret: None,
    }
}

pub(crate) fn spec() -> LaunchSpec {
    LaunchSpec {
        run_id: Uuid::parse_str(RUN_ID).unwrap(),
        number_of_agents: 3,
        image_name: "armada-agent".into(),
        image_version: "1.2".into(),
        agent_cpu: Some("500m".into()),
        agent_memory: Some("1Gi".into()),
        requirements_txt: Some("requests==2.32.0\n".into()),
    }
}

fn pod_spec(job: &Job) -> &PodSpec {
    job.spec.as_ref().unwrap().template.spec.as_ref().unwrap()
}

fn container(job: &Job) -> &Container {
    &pod_spec(job).containers[0]
}

fn env_var<'a>(job: &'a Job, name: &str) -> &'a EnvVar {
    container(job).env.as_ref().unwrap().iter().find(|v| v.name == name).unwrap_or_else(|| panic!("no env {name}"))
}

fn secret_ref(var: &EnvVar) -> (&str, &str) {
    let selector = var.value_from.as_ref().and_then(|s| s.secret_key_ref.as_ref()).expect("secretKeyRef");
    (selector.name.as_str(), selector.key.as_str())
}

/// Every item of the seed's Job spec and table that does not depend on DISTRIB.
fn assert_seed_job(job: &Job, ctx: &KubeContext) {
    let spec = spec();
    assert_eq!(job.metadata.name.as_deref(), Some(format!("armada-agent-{RUN_ID}").as_str()));
    assert_eq!(job.metadata.namespace.as_deref(), Some(ctx.namespace.as_str()));
    let job_spec = job.spec.as_ref().unwrap();
    assert_eq!(job_spec.completion_mode.as_deref(), Some("Indexed"), "each pod gets a completion index");
    assert_eq!(job_spec.completions, Some(3), "one pod per agent");
    assert_eq!(job_spec.parallelism, Some(3), "completions = parallelism: all agents start at once");
    assert_eq!(job_spec.ttl_seconds_after_finished, Some(1_000_000));
    let labels = job_spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap();
    assert_eq!(labels, BTreeMap::from([("app".to_string(), "armada-agent".to_string())]));

    let pod = pod_spec(job);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let spread = pod.topology_spread_constraints.as_ref().unwrap();
    assert_eq!(spread.len(), 1);
    assert_eq!(spread[0].max_skew, 1);
    assert_eq!(spread[0].topology_key, "kubernetes.io/hostname");
    assert_eq!(spread[0].when_unsatisfiable, "ScheduleAnyway");
    assert_eq!(spread[0].label_selector.as_ref().and_then(|s| s.match_labels.clone()), Some(labels));

    assert_eq!(pod.containers.len(), 1);
    let container = container(job);
    assert_eq!(container.image.as_deref(), Some("armadasvc/armada-agent:1.2"));
    assert_eq!(container.command, Some(vec!["armada".to_string()]));
    assert_eq!(container.args, Some(vec!["agent".to_string()]));
    let requests = container.resources.as_ref().and_then(|r| r.requests.clone()).unwrap();
    assert_eq!(requests["cpu"].0, "500m");
    assert_eq!(requests["memory"].0, "1Gi");
    assert!(container.resources.as_ref().unwrap().limits.is_none());

    let names: Vec<&str> = container.env.as_ref().unwrap().iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "RUN_ID",
            "REDIS_HOST_VAR_ENV",
            "REDIS_PORT_VAR_ENV",
            "RABBITMQ_URL",
            "SQL_SERVER_NAME",
            "SQL_SERVER_DB",
            "SQL_SERVER_USER",
            "SQL_SERVER_PASSWORD",
            "PROXY_PROVIDER_URL",
            "FINGERPRINT_PROVIDER_URL",
            "BACKEND_URL",
            "REQUIREMENTS_TXT",
            "POD_INDEX",
        ]
    );
    assert_eq!(env_var(job, "RUN_ID").value.as_deref(), Some(RUN_ID));
    assert_eq!(env_var(job, "REDIS_HOST_VAR_ENV").value.as_deref(), Some("armada-redis"));
    assert_eq!(env_var(job, "REDIS_PORT_VAR_ENV").value.as_deref(), Some("6379"));
    assert_eq!(env_var(job, "RABBITMQ_URL").value.as_deref(), Some(ctx.rabbitmq_url.expose()));
    for key in SQL_SERVER_KEYS {
        assert_eq!(secret_ref(env_var(job, key)), ("armada-sql-server-secret", key));
        assert!(env_var(job, key).value.is_none());
    }
    assert_eq!(env_var(job, "PROXY_PROVIDER_URL").value.as_deref(), Some("http://armada-proxy-provider:5001"));
    assert_eq!(
        env_var(job, "FINGERPRINT_PROVIDER_URL").value.as_deref(),
        Some("http://armada-fingerprint-provider:5005")
    );
    assert_eq!(env_var(job, "BACKEND_URL").value.as_deref(), Some("http://armada-backend:8000"));
    let requirements = env_var(job, "REQUIREMENTS_TXT").value.as_deref().unwrap();
    let decoded = base64::engine::general_purpose::STANDARD.decode(requirements).unwrap();
    assert_eq!(decoded, spec.requirements_txt.unwrap().as_bytes());
    let field = env_var(job, "POD_INDEX").value_from.as_ref().and_then(|s| s.field_ref.as_ref()).unwrap();
    assert_eq!(field.field_path, "metadata.annotations['batch.kubernetes.io/job-completion-index']");
}

#[test]
fn kube_job_matches_the_seed_and_pulls_with_the_registry_secret() {
    let ctx = context(Distrib::Kube);
    let job = agent_job(&spec(), &ctx);
    assert_seed_job(&job, &ctx);
    assert_eq!(container(&job).image_pull_policy.as_deref(), Some("Always"));
    let secrets: Vec<&str> = pod_spec(&job).image_pull_secrets.iter().flatten().map(|s| s.name.as_str()).collect();
    assert_eq!(secrets, ["armada-docker-registry-secret"]);
}

#[test]
fn minikube_job_matches_the_seed_and_uses_local_images() {
    let ctx = context(Distrib::Minikube);
    let job = agent_job(&spec(), &ctx);
    assert_seed_job(&job, &ctx);
    assert_eq!(container(&job).image_pull_policy.as_deref(), Some("Never"));
    assert!(pod_spec(&job).image_pull_secrets.is_none(), "no pull secret for minikube's local images");
}

#[test]
fn job_yaml_snapshots() {
    for (distrib, name) in [(Distrib::Kube, "agent_job_kube"), (Distrib::Minikube, "agent_job_minikube")] {
        let yaml = yaml_serde::to_string(&agent_job(&spec(), &context(distrib))).unwrap();
        insta::assert_snapshot!(name, yaml);
    }
}

#[test]
fn job_round_trips_through_yaml_and_json_as_a_batch_v1_job() {
    for distrib in [Distrib::Kube, Distrib::Minikube] {
        let job = agent_job(&spec(), &context(distrib));
        let yaml = yaml_serde::to_string(&job).unwrap();
        assert!(yaml.starts_with("apiVersion: batch/v1\nkind: Job\n"), "{yaml}");
        let back: Job = yaml_serde::from_str(&yaml).unwrap();
        assert_eq!(back, job);
        let json: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
        assert_eq!(json, job);
    }
}

#[test]
fn resource_requests_are_omitted_when_the_run_message_has_none() {
    let mut spec = spec();
    spec.agent_cpu = None;
    spec.agent_memory = Some("  ".into());
    assert!(container(&agent_job(&spec, &context(Distrib::Kube))).resources.is_none());
    spec.agent_cpu = Some("2".into());
    let job = agent_job(&spec, &context(Distrib::Kube));
    let requests = container(&job).resources.as_ref().and_then(|r| r.requests.clone()).unwrap();
    assert_eq!(requests.keys().collect::<Vec<_>>(), ["cpu"]);
}

#[test]
fn no_requirements_is_an_empty_requirements_txt() {
    let mut spec = spec();
    spec.requirements_txt = None;
    assert_eq!(env_var(&agent_job(&spec, &context(Distrib::Kube)), "REQUIREMENTS_TXT").value.as_deref(), Some(""));
}

#[test]
fn a_token_secret_hands_armada_token_to_agents() {
    let mut ctx = context(Distrib::Kube);
    ctx.token_secret = Some("armada-token-secret".into());
    let job = agent_job(&spec(), &ctx);
    assert_eq!(secret_ref(env_var(&job, "ARMADA_TOKEN")), ("armada-token-secret", "ARMADA_TOKEN"));
}

#[test]
fn empty_image_name_and_version_take_the_pipeline_defaults() {
    let spec = LaunchSpec::new(Uuid::parse_str(RUN_ID).unwrap(), 1);
    let job = agent_job(&spec, &context(Distrib::Kube));
    assert_eq!(job.metadata.name.as_deref(), Some(format!("armada-agent-{RUN_ID}").as_str()));
    assert_eq!(container(&job).image.as_deref(), Some("armadasvc/armada-agent:latest"));
    assert!(validate_names(&spec).is_ok());
}

#[test]
fn image_names_kubernetes_would_refuse_are_invalid_with_the_reason() {
    for bad in ["Armada_Agent", "-agent", "an-image-name-far-too-long-x"] {
        let mut spec = spec();
        spec.image_name = bad.into();
        match validate_names(&spec) {
            Err(LaunchError::Invalid(message)) => {
                assert!(message.contains(bad) && message.contains("at most 26 characters"), "{message}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    let mut spec = spec();
    spec.image_name = "an-image-name-of-26-chars0".into();
    assert!(validate_names(&spec).is_ok(), "26 characters fit: {}", job_name(&spec).len());
}

#[test]
fn printed_yaml_hides_the_rabbitmq_password() {
    let yaml = job_yaml_redacted(&agent_job(&spec(), &context(Distrib::Kube))).unwrap();
    assert!(!yaml.contains("s3cret"), "{yaml}");
    assert!(yaml.contains("amqp://armada:***@armada-rabbitmq:5672/%2f"), "{yaml}");
    assert!(!format!("{:?}", context(Distrib::Kube)).contains("s3cret"));
}

#[test]
fn context_comes_from_the_seed_variables() {
    let vars = Vars::from_pairs([
        ("PLATFORM", "distant"),
        ("DISTRIB", "minikube"),
        ("ARMADA_KUBE_NAMESPACE", "bots"),
        ("DOCKER_HUB_USERNAME", "acme"),
        ("REDIS_HOST", "armada-redis"),
        ("REDIS_PORT", "6380"),
        ("RABBITMQ_URL", "amqp://u:p@armada-rabbitmq:5672/%2f"),
        ("BACKEND_URL", "http://armada-backend:8000/"),
        ("PROXY_PROVIDER_URL", "http://armada-proxy-provider:5001"),
        ("FINGERPRINT_PROVIDER_URL", "http://armada-fingerprint-provider:5005"),
        ("ARMADA_TOKEN", "t"),
    ]);
    let settings = Settings::from_vars(vars, Vec::new(), None).unwrap();
    let ctx = KubeContext::from_settings(&settings);
    assert_eq!((ctx.distrib, ctx.namespace.as_str(), ctx.registry.as_str()), (Distrib::Minikube, "bots", "acme"));
    assert_eq!((ctx.redis_host.as_str(), ctx.redis_port), ("armada-redis", 6380));
    assert_eq!(ctx.rabbitmq_url.expose(), "amqp://u:p@armada-rabbitmq:5672/%2f");
    assert_eq!(ctx.backend_url, "http://armada-backend:8000");
    assert_eq!(ctx.token_secret.as_deref(), Some("armada-token-secret"));
    assert!(ctx.missing().is_empty());

    let bare = KubeContext::from_settings(&Settings::from_vars(Vars::default(), Vec::new(), None).unwrap());
    assert_eq!(
        (bare.distrib, bare.namespace.as_str(), bare.registry.as_str()),
        (Distrib::Kube, "default", "armadasvc")
    );
    assert_eq!(bare.missing(), ["REDIS_HOST", "RABBITMQ_URL", "BACKEND_URL"]);
    assert!(bare.token_secret.is_none());
}
