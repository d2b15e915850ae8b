//! The deployment files against the seed (`shared/seed/resource-topology.txt`): the Helm chart as
//! Helm renders it (`tests/fixtures/helm/*.yaml`, kept current and schema-checked by
//! `scripts/test-deploy.sh`) deserialised into `k8s-openapi` types, `docker-compose.yml`, and
//! the Dockerfile.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, EnvVar, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use serde::Deserialize;
use serde_json::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One rendering of the chart, by kind and name.
#[derive(Default)]
struct Rendered {
    deployments: BTreeMap<String, Deployment>,
    services: BTreeMap<String, Service>,
    roles: Vec<Role>,
    bindings: Vec<RoleBinding>,
    ingresses: Vec<Ingress>,
}

/// `value` as a `T`, or a panic naming the document.
fn typed<T: serde::de::DeserializeOwned>(value: Value, case: &str, what: &str) -> T {
    let name = format!("{case}: {}/{}", value["kind"], value["metadata"]["name"]);
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{name} is not a valid {what}: {e}"))
}

fn rendered(case: &str) -> Rendered {
    let text = read(&format!("tests/fixtures/helm/{case}.yaml"));
    let mut out = Rendered::default();
    for document in yaml_serde::Deserializer::from_str(&text) {
        let value = Value::deserialize(document).expect("a YAML document");
        let name = value["metadata"]["name"].as_str().unwrap_or_default().to_string();
        match value["kind"].as_str().unwrap_or_default() {
            "Deployment" => {
                out.deployments.insert(name, typed(value, case, "apps/v1 Deployment"));
            }
            "Service" => {
                out.services.insert(name, typed(value, case, "v1 Service"));
            }
            "Role" => out.roles.push(typed(value, case, "rbac/v1 Role")),
            "RoleBinding" => out.bindings.push(typed(value, case, "rbac/v1 RoleBinding")),
            "Ingress" => out.ingresses.push(typed(value, case, "networking/v1 Ingress")),
            other => panic!("{case}: unexpected {other} {name} (the chart references Secrets, never creates them)"),
        }
    }
    out
}

/// The seed's seven Deployments: name, image, container ports, role (for the armada image).
const SEED: [(&str, &str, &[i32], Option<&str>); 7] = [
    ("armada-orchestrator", "armadasvc/armada:latest", &[8080], Some("orchestrator")),
    ("armada-backend", "armadasvc/armada:latest", &[8000], Some("backend")),
    ("armada-frontend", "armadasvc/armada:latest", &[8080], Some("frontend")),
    ("armada-proxy-provider", "armadasvc/armada:latest", &[5001], Some("proxy-provider")),
    ("armada-fingerprint-provider", "armadasvc/armada:latest", &[5005], Some("fingerprint-provider")),
    ("armada-redis", "redis:7-alpine", &[6379], None),
    ("armada-rabbitmq", "rabbitmq:3-management-alpine", &[5672, 15672], None),
];

fn container(deployment: &Deployment) -> &Container {
    let pod = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1);
    &pod.containers[0]
}

fn env<'a>(deployment: &'a Deployment, name: &str) -> Option<&'a EnvVar> {
    container(deployment).env.iter().flatten().find(|v| v.name == name)
}

fn value(deployment: &Deployment, name: &str) -> String {
    let var = env(deployment, name).unwrap_or_else(|| panic!("{name} missing"));
    var.value.clone().unwrap_or_else(|| panic!("{name} has no plain value"))
}

fn secret_ref(deployment: &Deployment, name: &str) -> (String, String) {
    let var = env(deployment, name).unwrap_or_else(|| panic!("{name} missing"));
    let selector = var.value_from.as_ref().and_then(|s| s.secret_key_ref.as_ref()).expect("secretKeyRef");
    (selector.name.clone(), selector.key.clone())
}

fn probe_path(probe: Option<&k8s_openapi::api::core::v1::Probe>) -> Option<String> {
    probe?.http_get.as_ref()?.path.clone()
}

fn assert_seed_chart(chart: &Rendered, pull_policy: &str, namespace: &str) {
    let names: Vec<&str> = chart.deployments.keys().map(String::as_str).collect();
    let mut expected: Vec<&str> = SEED.iter().map(|(name, ..)| *name).collect();
    expected.sort();
    assert_eq!(names, expected, "the seed's seven Deployments");
    for (name, image, ports, role) in SEED {
        let deployment = &chart.deployments[name];
        let container = container(deployment);
        assert_eq!(container.image.as_deref(), Some(image), "{name}");
        let container_ports: Vec<i32> = container.ports.iter().flatten().map(|p| p.container_port).collect();
        assert_eq!(container_ports, ports, "{name}");
        let labels = deployment.spec.as_ref().unwrap().selector.match_labels.clone().unwrap();
        assert_eq!(labels["app"], name);
        if let Some(role) = role {
            let listen = format!("0.0.0.0:{}", ports[0]);
            assert_eq!(container.args.clone().unwrap(), ["serve", "--roles", role, "--listen", listen.as_str()]);
            assert_eq!(container.image_pull_policy.as_deref(), Some(pull_policy), "{name}");
        }
        let service = &chart.services[name];
        let spec = service.spec.as_ref().unwrap();
        assert_eq!(spec.selector.clone().unwrap()["app"], name);
        let service_ports: Vec<i32> = spec.ports.iter().flatten().map(|p| p.port).collect();
        assert_eq!(service_ports, ports, "Service {name}");
    }
    assert_eq!(chart.services.len(), 7);

    let backend = container(&chart.deployments["armada-backend"]);
    assert_eq!(probe_path(backend.liveness_probe.as_ref()).as_deref(), Some("/docs"));
    assert_eq!(probe_path(backend.readiness_probe.as_ref()).as_deref(), Some("/docs"));
    let frontend = container(&chart.deployments["armada-frontend"]);
    assert_eq!(probe_path(frontend.liveness_probe.as_ref()).as_deref(), Some("/"));
    assert_eq!(probe_path(frontend.readiness_probe.as_ref()).as_deref(), Some("/"));

    let orchestrator = &chart.deployments["armada-orchestrator"];
    assert_eq!(value(orchestrator, "PLATFORM"), "distant");
    assert_eq!(value(orchestrator, "ARMADA_KUBE_NAMESPACE"), namespace);
    assert_eq!(value(orchestrator, "ARMADA_KUBE_PENDING_TIMEOUT_SECS"), "300");
    assert_eq!(value(orchestrator, "REDIS_HOST"), "armada-redis");
    assert_eq!(value(orchestrator, "REDIS_PORT"), "6379");
    assert!(value(orchestrator, "RABBITMQ_URL").ends_with("@armada-rabbitmq:5672/%2f"));
    assert_eq!(value(orchestrator, "BACKEND_URL"), "http://armada-backend:8000");
    assert_eq!(value(orchestrator, "PROXY_PROVIDER_URL"), "http://armada-proxy-provider:5001");
    assert_eq!(value(orchestrator, "FINGERPRINT_PROVIDER_URL"), "http://armada-fingerprint-provider:5005");
    assert_eq!(
        secret_ref(orchestrator, "DOCKER_HUB_USERNAME"),
        ("armada-docker-username-secret".into(), "DOCKER_HUB_USERNAME".into())
    );
    for name in ["armada-backend", "armada-proxy-provider", "armada-fingerprint-provider"] {
        for key in ["SQL_SERVER_NAME", "SQL_SERVER_DB", "SQL_SERVER_USER", "SQL_SERVER_PASSWORD"] {
            assert_eq!(
                secret_ref(&chart.deployments[name], key),
                ("armada-sql-server-secret".into(), key.into()),
                "{name}"
            );
        }
    }
    assert_eq!(
        secret_ref(&chart.deployments["armada-proxy-provider"], "IPQS_KEY"),
        ("armada-ipqualityscore-secret".into(), "IPQS_KEY".into())
    );
    let frontend = &chart.deployments["armada-frontend"];
    assert_eq!(value(frontend, "BACKEND_URL"), "http://armada-backend:8000");
    assert_eq!(value(frontend, "ORCHESTRATOR_URL"), "http://armada-orchestrator:8080");

    assert_eq!(chart.roles.len(), 1);
    let role = &chart.roles[0];
    assert_eq!(role.metadata.name.as_deref(), Some("armada-role"));
    let rule = |groups: &[&str], resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(groups.iter().map(|s| s.to_string()).collect()),
        resources: Some(resources.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    assert_eq!(
        role.rules.clone().unwrap(),
        [
            rule(&["batch"], &["jobs"], &["create", "delete"]),
            rule(&[""], &["pods"], &["create", "get", "list", "watch", "delete"]),
            rule(&[""], &["configmaps"], &["get", "list"]),
        ]
    );
    assert_eq!(chart.bindings.len(), 1);
    let binding = &chart.bindings[0];
    assert_eq!(binding.metadata.name.as_deref(), Some("armada-role-binding"));
    let subjects = binding.subjects.clone().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(
        (subjects[0].kind.as_str(), subjects[0].name.as_str(), subjects[0].namespace.as_deref()),
        ("ServiceAccount", "default", Some(namespace))
    );
    assert_eq!(
        (binding.role_ref.kind.as_str(), binding.role_ref.name.as_str(), binding.role_ref.api_group.as_str()),
        ("Role", "armada-role", "rbac.authorization.k8s.io")
    );
}

#[test]
fn chart_with_default_values_is_the_seed_topology() {
    let chart = rendered("default");
    assert_seed_chart(&chart, "Always", "default");
    assert_eq!(value(&chart.deployments["armada-orchestrator"], "DISTRIB"), "kube");
    assert!(chart.ingresses.is_empty());
    assert!(env(&chart.deployments["armada-backend"], "ARMADA_TOKEN").is_none());
}

#[test]
fn chart_for_minikube_uses_local_images() {
    let chart = rendered("minikube");
    assert_seed_chart(&chart, "Never", "default");
    assert_eq!(value(&chart.deployments["armada-orchestrator"], "DISTRIB"), "minikube");
}

#[test]
fn chart_options_token_cors_ingress_and_another_namespace() {
    let chart = rendered("options");
    let names: Vec<&String> = chart.deployments.keys().collect();
    assert_eq!(names.len(), 7);
    // In another namespace the RoleBinding's subject follows the release's namespace.
    let subjects = chart.bindings[0].subjects.clone().unwrap();
    assert_eq!(subjects[0].namespace.as_deref(), Some("armada"));
    for (name, _, _, role) in SEED {
        if role.is_some() {
            let deployment = &chart.deployments[name];
            assert_eq!(secret_ref(deployment, "ARMADA_TOKEN"), ("armada-token-secret".into(), "ARMADA_TOKEN".into()));
            assert_eq!(value(deployment, "ARMADA_CORS_ORIGINS"), "https://armada.example.com");
            assert_eq!(container(deployment).image.as_deref(), Some("armadasvc/armada:0.1.0"));
        }
    }
    let orchestrator = &chart.deployments["armada-orchestrator"];
    assert_eq!(value(orchestrator, "ARMADA_KUBE_TOKEN_SECRET"), "armada-token-secret");
    assert_eq!(value(orchestrator, "ARMADA_KUBE_NAMESPACE"), "armada");
    let requests = container(orchestrator).resources.clone().unwrap().requests.unwrap();
    assert_eq!(requests["cpu"].0, "250m");

    assert_eq!(chart.ingresses.len(), 1);
    let spec = chart.ingresses[0].spec.clone().unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let rule = &spec.rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("armada.example.com"));
    let paths: Vec<(String, String, i32)> = rule
        .http
        .clone()
        .unwrap()
        .paths
        .into_iter()
        .map(|p| {
            let service = p.backend.service.unwrap();
            (p.path.unwrap(), service.name, service.port.unwrap().number.unwrap())
        })
        .collect();
    assert_eq!(
        paths,
        [("/tracking".to_string(), "armada-backend".to_string(), 8000), ("/".into(), "armada-frontend".into(), 8080)]
    );
    assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("armada-tls"));
}

/// `docker-compose.yml` with its `<<: *armada` merges applied, as JSON.
fn compose() -> Value {
    let mut yaml: yaml_serde::Value = yaml_serde::from_str(&read("docker-compose.yml")).expect("valid YAML");
    yaml.apply_merge().expect("merge keys");
    serde_json::to_value(yaml).expect("as JSON")
}

#[test]
fn compose_has_the_seed_services_and_ports() {
    let compose = compose();
    let services = compose["services"].as_object().expect("services");
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "armada-redis",
            "armada-rabbitmq",
            "armada-proxy-provider",
            "armada-fingerprint-provider",
            "armada-backend",
            "armada-orchestrator",
            "armada-frontend",
        ]
    );
    let ports = |name: &str| -> Vec<&str> {
        services[name]["ports"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect()
    };
    assert_eq!(ports("armada-redis"), ["127.0.0.1:6379:6379"]);
    assert_eq!(ports("armada-rabbitmq"), ["127.0.0.1:5672:5672", "127.0.0.1:15672:15672"]);
    assert_eq!(ports("armada-proxy-provider"), ["127.0.0.1:5001:5001"]);
    assert_eq!(ports("armada-fingerprint-provider"), ["127.0.0.1:5005:5005"]);
    assert_eq!(ports("armada-backend"), ["127.0.0.1:8000:8000"]);
    assert_eq!(ports("armada-orchestrator"), ["127.0.0.1:8080:8080"]);
    assert_eq!(ports("armada-frontend"), ["127.0.0.1:3000:8080"]);
    assert_eq!(services["armada-redis"]["image"], "redis:7-alpine");
    assert_eq!(services["armada-rabbitmq"]["image"], "rabbitmq:3-management-alpine");

    for (name, role, port) in [
        ("armada-proxy-provider", "proxy-provider", 5001),
        ("armada-fingerprint-provider", "fingerprint-provider", 5005),
        ("armada-backend", "backend", 8000),
        ("armada-orchestrator", "orchestrator", 8080),
        ("armada-frontend", "frontend", 8080),
    ] {
        let service = &services[name];
        assert_eq!(service["build"], ".", "{name} is built from the root Dockerfile");
        assert_eq!(service["env_file"], ".env", "{name} reads the root .env");
        let listen = format!("0.0.0.0:{port}");
        assert_eq!(service["command"], serde_json::json!(["serve", "--roles", role, "--listen", listen]), "{name}");
    }
    let orchestrator = &services["armada-orchestrator"]["environment"];
    assert_eq!(orchestrator["PLATFORM"], "local");
    assert_eq!(orchestrator["REDIS_HOST"], "armada-redis");
    assert!(orchestrator["RABBITMQ_URL"].as_str().unwrap().contains("@armada-rabbitmq:5672"));
    assert_eq!(orchestrator["BACKEND_URL"], "http://armada-backend:8000");
    assert_eq!(orchestrator["PROXY_PROVIDER_URL"], "http://armada-proxy-provider:5001");
    assert_eq!(orchestrator["FINGERPRINT_PROVIDER_URL"], "http://armada-fingerprint-provider:5005");
    let frontend = &services["armada-frontend"]["environment"];
    assert_eq!(frontend["BACKEND_URL"], "http://armada-backend:8000");
    assert_eq!(frontend["ORCHESTRATOR_URL"], "http://armada-orchestrator:8080");
}

#[test]
fn dockerfile_builds_the_binary_then_a_slim_non_root_runtime() {
    let dockerfile = read("Dockerfile");
    let from: Vec<&str> = dockerfile.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(from.len(), 2, "multi-stage: {from:?}");
    assert!(from[0].starts_with("FROM rust:") && from[0].ends_with(" AS build"), "{}", from[0]);
    assert!(from[1].starts_with("FROM debian:") && from[1].contains("-slim"), "{}", from[1]);
    assert!(dockerfile.contains("cargo build --release --locked --bin armada"));
    for package in ["ca-certificates", "python3 ", "python3-venv", "python3-pip"] {
        assert!(dockerfile.contains(package), "runtime installs {package}");
    }
    assert!(dockerfile.lines().any(|l| l == "USER 10001"), "runs as a non-root user");
    assert!(dockerfile.lines().any(|l| l == "ENTRYPOINT [\"armada\"]"));
    assert!(dockerfile.lines().any(|l| l.starts_with("CMD [\"serve\"")));
}

/// The top-level paths the release build reads: the manifest, `src/`, bench targets, and every
/// folder or file the code embeds (`#[folder = …]`, `sqlx::migrate!(…)`, `include_str!(…)`).
fn build_inputs() -> std::collections::BTreeSet<String> {
    fn quoted_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
        let rest = &line[line.find(marker)? + marker.len()..];
        let start = rest.find('"')? + 1;
        let end = start + rest[start..].find('"')?;
        Some(&rest[start..end])
    }
    fn top(path: &Path) -> String {
        let mut parts = Vec::new();
        for component in path.components() {
            match component {
                std::path::Component::ParentDir => {
                    parts.pop();
                }
                std::path::Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        parts.first().cloned().unwrap_or_default()
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs: std::collections::BTreeSet<String> =
        ["Cargo.toml", "Cargo.lock", "src"].into_iter().map(String::from).collect();
    if read("Cargo.toml").contains("[[bench]]") {
        inputs.insert("benches".into());
    }
    let mut folders = vec![root.join("src")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            // Test-only files are not part of the release build.
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.extension().is_none_or(|e| e != "rs") || name == "tests.rs" || name == "conformance.rs" {
                continue;
            }
            let relative = path.parent().unwrap().strip_prefix(root).unwrap().to_path_buf();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(folder) = quoted_after(line, "#[folder =") {
                    inputs.insert(top(Path::new(folder)));
                } else if let Some(dir) = quoted_after(line, "migrate!(") {
                    inputs.insert(top(Path::new(dir)));
                } else if let Some(file) = quoted_after(line, "include_str!(").or(quoted_after(line, "include_bytes!("))
                {
                    inputs.insert(top(&relative.join(file)));
                }
            }
        }
    }
    inputs
}

#[test]
fn dockerfile_copies_everything_the_build_reads_and_dockerignore_keeps_it() {
    let inputs = build_inputs();
    for expected in ["python", "static", "migrations", "benches"] {
        assert!(inputs.contains(expected), "the scan found what the code embeds: {inputs:?}");
    }
    let dockerfile = read("Dockerfile");
    // The text from the first FROM (the build stage) to the second.
    let build_stage = dockerfile.split("\nFROM ").nth(1).expect("a build stage");
    let copied: Vec<&str> = build_stage
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|args| !args.starts_with("--from"))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            words[..words.len() - 1].to_vec()
        })
        .collect();
    let ignored: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.trim_end_matches('/').to_string())
        .collect();
    for input in &inputs {
        assert!(copied.contains(&input.as_str()), "the build stage does not COPY {input} (it copies {copied:?})");
        assert!(!ignored.contains(input), ".dockerignore leaves {input} out of the build context");
    }
    let rust_version = read("Cargo.toml")
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = ").map(|v| v.trim_matches('"').to_string()));
    if let Some(version) = rust_version {
        let image = build_stage.lines().next().unwrap_or_default();
        assert!(image.starts_with(&format!("rust:{version}")), "FROM {image} does not build with rust {version}");
    }
}
