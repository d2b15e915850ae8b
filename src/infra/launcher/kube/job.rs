//! The agent Job of the seed ("Agent Kubernetes Job Spec"): a pure function of the run's
//! [`LaunchSpec`] and the cluster it goes to ([`KubeContext`]). No IO, so every field is
//! tested against the seed without a cluster.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, LocalObjectReference, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecretKeySelector, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::infra::launcher::{LaunchError, LaunchSpec};
use crate::pipeline::{DEFAULT_IMAGE_NAME, DEFAULT_IMAGE_VERSION};
use crate::settings::{BrokerSettings, ConfigStoreSettings, Distrib, LauncherSettings, Secret, Settings, redact_url};

/// SQL Server credentials: agent pods, backend, providers (`SQL_SERVER_NAME/_DB/_USER/_PASSWORD`).
pub const SQL_SERVER_SECRET: &str = "armada-sql-server-secret";
/// Docker config JSON for pulling agent images (`imagePullSecrets`, `DISTRIB=kube`).
pub const DOCKER_REGISTRY_SECRET: &str = "armada-docker-registry-secret";
/// `DOCKER_HUB_USERNAME` for the orchestrator.
pub const DOCKER_USERNAME_SECRET: &str = "armada-docker-username-secret";
/// `IPQS_KEY` for the proxy provider.
pub const IPQS_SECRET: &str = "armada-ipqualityscore-secret";
/// `ARMADA_TOKEN`, when the API requires one (not in the seed: Armada's own addition).
pub const TOKEN_SECRET: &str = "armada-token-secret";
/// The four `SQL_SERVER_*` keys, in the seed's order.
pub const SQL_SERVER_KEYS: [&str; 4] = ["SQL_SERVER_NAME", "SQL_SERVER_DB", "SQL_SERVER_USER", "SQL_SERVER_PASSWORD"];

/// Set by Kubernetes on every pod of an Indexed Job (annotation and, since 1.28, label).
pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// Set by Kubernetes on every pod of a Job.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// ~11.5 days before Kubernetes removes a finished Job and its pods.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 1_000_000;
/// The public images' registry prefix when `DOCKER_HUB_USERNAME` is unset.
pub const DEFAULT_REGISTRY: &str = "armadasvc";
pub const AGENT_CONTAINER: &str = "agent";
/// The longest Job name: Kubernetes copies it into the pods' `job-name` label (a label value).
pub const MAX_JOB_NAME: usize = 63;

/// Where the agent Job goes and what its pods are told.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeContext {
    pub distrib: Distrib,
    pub namespace: String,
    /// `DOCKER_HUB_USERNAME`: the image is `{registry}/{image_name}:{image_version}`.
    pub registry: String,
    /// `REDIS_HOST_VAR_ENV` / `REDIS_PORT_VAR_ENV` of the agents; empty when unset.
    pub redis_host: String,
    pub redis_port: u16,
    /// `RABBITMQ_URL` of the agents (holds credentials: never logged).
    pub rabbitmq_url: Secret,
    pub backend_url: String,
    pub proxy_provider_url: String,
    pub fingerprint_provider_url: String,
    /// A Secret with key `ARMADA_TOKEN` handed to agents as `ARMADA_TOKEN`.
    pub token_secret: Option<String>,
}

impl KubeContext {
    /// The context from settings: `DISTRIB`, `ARMADA_KUBE_NAMESPACE` (default `default`),
    /// `DOCKER_HUB_USERNAME` (default `armadasvc`), the Redis and RabbitMQ the server uses,
    /// the roles' URLs, and `ARMADA_KUBE_TOKEN_SECRET` (default `armada-token-secret` when
    /// `ARMADA_TOKEN` is set). Values that are unset stay empty: see [`KubeContext::missing`].
    pub fn from_settings(settings: &Settings) -> Self {
        let (distrib, namespace) = match &settings.launcher {
            LauncherSettings::Kube { distrib, namespace, .. } => (*distrib, namespace.clone()),
            _ => {
                let distrib = match settings.vars.get("DISTRIB").map(str::to_ascii_lowercase).as_deref() {
                    Some("minikube") => Distrib::Minikube,
                    _ => Distrib::Kube,
                };
                (distrib, settings.vars.get("ARMADA_KUBE_NAMESPACE").unwrap_or("default").to_string())
            }
        };
        let (redis_host, redis_port) = match &settings.config_store {
            ConfigStoreSettings::Redis { host, port, .. } => (host.clone(), *port),
            ConfigStoreSettings::InProcess => (String::new(), 6379),
        };
        let rabbitmq_url = match &settings.broker {
            BrokerSettings::Amqp { url } => url.clone(),
            BrokerSettings::InProcess => Secret::new(""),
        };
        let token_secret = match settings.vars.get("ARMADA_KUBE_TOKEN_SECRET") {
            Some(name) => Some(name.to_string()),
            None => settings.token.as_ref().map(|_| TOKEN_SECRET.to_string()),
        };
        Self {
            distrib,
            namespace,
            registry: settings.docker_hub_username.clone().unwrap_or_else(|| DEFAULT_REGISTRY.to_string()),
            redis_host,
            redis_port,
            rabbitmq_url,
            backend_url: settings.backend_url.clone().unwrap_or_default(),
            proxy_provider_url: settings.proxy_provider_url.clone().unwrap_or_default(),
            fingerprint_provider_url: settings.fingerprint_provider_url.clone().unwrap_or_default(),
            token_secret,
        }
    }

    /// The settings agents in pods cannot work without that are unset: they reach Redis,
    /// RabbitMQ and the backend over the network, so in-process engines will not do.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.redis_host.is_empty() {
            missing.push("REDIS_HOST");
        }
        if self.rabbitmq_url.expose().is_empty() {
            missing.push("RABBITMQ_URL");
        }
        if self.backend_url.is_empty() {
            missing.push("BACKEND_URL");
        }
        missing
    }

    /// `Always` from the registry with the pull secret, or `Never` for minikube's local images.
    pub fn image_pull_policy(&self) -> &'static str {
        match self.distrib {
            Distrib::Kube => "Always",
            Distrib::Minikube => "Never",
        }
    }
}

/// The spec's image name and version, with the pipeline's defaults when empty.
pub fn image_of(spec: &LaunchSpec) -> (&str, &str) {
    let name = spec.image_name.trim();
    let version = spec.image_version.trim();
    (
        if name.is_empty() { DEFAULT_IMAGE_NAME } else { name },
        if version.is_empty() { DEFAULT_IMAGE_VERSION } else { version },
    )
}

/// `{image_name}-{run_id}`: `armada-agent-{run_id}` with the default image.
pub fn job_name(spec: &LaunchSpec) -> String {
    format!("{}-{}", image_of(spec).0, spec.run_id)
}

/// Refuses what Kubernetes would refuse later with a less helpful message: the Job name must
/// be a DNS label of at most 63 characters (it becomes the pods' `job-name` label).
pub fn validate_names(spec: &LaunchSpec) -> Result<(), LaunchError> {
    let (image, _) = image_of(spec);
    let name = job_name(spec);
    let dns_label = image.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && image.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !dns_label || name.len() > MAX_JOB_NAME {
        let room = MAX_JOB_NAME - 1 - spec.run_id.to_string().len();
        return Err(LaunchError::Invalid(format!(
            "run {}: run_message.image_name {image:?} cannot name a Kubernetes Job ({name:?}): it must be lowercase \
             letters, digits and '-', start with a letter or digit, and have at most {room} characters",
            spec.run_id
        )));
    }
    Ok(())
}

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn env_from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar { name: name.into(), value_from: Some(source), ..Default::default() }
}

fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    let selector = SecretKeySelector { name: secret.into(), key: key.into(), optional: None };
    env_from(name, EnvVarSource { secret_key_ref: Some(selector), ..Default::default() })
}

/// The agent's environment, in the seed's order, then `ARMADA_TOKEN` when configured.
pub fn agent_env(spec: &LaunchSpec, ctx: &KubeContext) -> Vec<EnvVar> {
    let requirements = spec.requirements_txt.as_deref().unwrap_or_default();
    let pod_index = ObjectFieldSelector {
        field_path: format!("metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"),
        api_version: None,
    };
    let mut vars = vec![
        plain("RUN_ID", spec.run_id.to_string()),
        plain("REDIS_HOST_VAR_ENV", ctx.redis_host.clone()),
        plain("REDIS_PORT_VAR_ENV", ctx.redis_port.to_string()),
        plain("RABBITMQ_URL", ctx.rabbitmq_url.expose()),
    ];
    vars.extend(SQL_SERVER_KEYS.iter().map(|key| secret_env(key, SQL_SERVER_SECRET, key)));
    vars.extend([
        plain("PROXY_PROVIDER_URL", ctx.proxy_provider_url.clone()),
        plain("FINGERPRINT_PROVIDER_URL", ctx.fingerprint_provider_url.clone()),
        plain("BACKEND_URL", ctx.backend_url.clone()),
        plain("REQUIREMENTS_TXT", base64::engine::general_purpose::STANDARD.encode(requirements)),
        env_from("POD_INDEX", EnvVarSource { field_ref: Some(pod_index), ..Default::default() }),
    ]);
    if let Some(secret) = &ctx.token_secret {
        vars.push(secret_env("ARMADA_TOKEN", secret, "ARMADA_TOKEN"));
    }
    vars
}

/// The Indexed Job that runs the run's `number_of_agents` agents, one pod per completion index.
pub fn agent_job(spec: &LaunchSpec, ctx: &KubeContext) -> Job {
    let (image_name, image_version) = image_of(spec);
    let agents = i32::try_from(spec.number_of_agents).unwrap_or(i32::MAX);
    let app = BTreeMap::from([("app".to_string(), image_name.to_string())]);
    let requests: BTreeMap<String, Quantity> = [("cpu", &spec.agent_cpu), ("memory", &spec.agent_memory)]
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value.as_deref()?.trim();
            (!value.is_empty()).then(|| (name.to_string(), Quantity(value.to_string())))
        })
        .collect();
    let container = Container {
        name: AGENT_CONTAINER.into(),
        image: Some(format!("{}/{image_name}:{image_version}", ctx.registry)),
        image_pull_policy: Some(ctx.image_pull_policy().into()),
        command: Some(vec!["armada".into()]),
        args: Some(vec!["agent".into()]),
        env: Some(agent_env(spec, ctx)),
        resources: (!requests.is_empty())
            .then(|| ResourceRequirements { requests: Some(requests), ..Default::default() }),
        ..Default::default()
    };
    let image_pull_secrets = match ctx.distrib {
        Distrib::Kube => Some(vec![LocalObjectReference { name: DOCKER_REGISTRY_SECRET.into() }]),
        Distrib::Minikube => None,
    };
    let spread = TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "kubernetes.io/hostname".into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        label_selector: Some(LabelSelector { match_labels: Some(app.clone()), ..Default::default() }),
        ..Default::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(spec)),
            namespace: Some(ctx.namespace.clone()),
            ..Default::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(agents),
            parallelism: Some(agents),
            ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(app), ..Default::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    topology_spread_constraints: Some(vec![spread]),
                    image_pull_secrets,
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// The Job as YAML for people: `RABBITMQ_URL`'s password shown as `***`.
pub fn job_yaml_redacted(job: &Job) -> Result<String, String> {
    let mut job = job.clone();
    let containers =
        job.spec.iter_mut().filter_map(|spec| spec.template.spec.as_mut()).flat_map(|pod| &mut pod.containers);
    for var in containers.flat_map(|c| c.env.iter_mut().flatten()) {
        if var.name == "RABBITMQ_URL"
            && let Some(value) = &mut var.value
        {
            *value = redact_url(value);
        }
    }
    yaml_serde::to_string(&job).map_err(|e| format!("cannot write the Job as YAML: {e}"))
}

#[cfg(test)]
pub(super) mod tests;
