//! The seed's four Secrets (plus the optional token Secret) built from a `.env` file, and
//! created or replaced in a namespace: `armada kube bootstrap-secrets`. Values never leave
//! these objects: what is reported is names and keys.
//!
//! | Secret | keys | from the `.env` |
//! |---|---|---|
//! | `armada-sql-server-secret` | `SQL_SERVER_NAME`, `_DB`, `_USER`, `_PASSWORD` | the same names (all four) |
//! | `armada-docker-registry-secret` | `.dockerconfigjson` (type `kubernetes.io/dockerconfigjson`) | `DOCKER_CONFIG_JSON` (inline JSON or a file path), else `DOCKER_HUB_USERNAME` + `DOCKER_HUB_PASSWORD` for `DOCKER_REGISTRY_SERVER` (default Docker Hub) |
//! | `armada-docker-username-secret` | `DOCKER_HUB_USERNAME` | the same name |
//! | `armada-ipqualityscore-secret` | `IPQS_KEY` | the same name |
//! | `armada-token-secret` | `ARMADA_TOKEN` | the same name (optional) |

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use super::client::{Connection, api_error, is_already_exists};
use super::job::{
    DOCKER_REGISTRY_SECRET, DOCKER_USERNAME_SECRET, IPQS_SECRET, SQL_SERVER_KEYS, SQL_SERVER_SECRET, TOKEN_SECRET,
};
use crate::infra::launcher::LaunchError;

/// Docker Hub's registry key in a Docker config.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// One Secret to create, or why it is left out.
#[derive(Clone, PartialEq)]
pub enum SecretPlan {
    Apply {
        secret: Box<Secret>,
        /// Where its content came from, for the report (names only).
        source: String,
    },
    Skip {
        name: &'static str,
        reason: String,
    },
}

impl std::fmt::Debug for SecretPlan {
    /// Names and keys only: the values are secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Apply { secret, source } => f
                .debug_struct("Apply")
                .field("name", &secret.metadata.name)
                .field("keys", &secret_keys(secret))
                .field("source", source)
                .finish(),
            Self::Skip { name, reason } => f.debug_struct("Skip").field("name", name).field("reason", reason).finish(),
        }
    }
}

/// The keys a Secret holds, in order.
pub fn secret_keys(secret: &Secret) -> Vec<String> {
    secret.data.iter().flat_map(|data| data.keys().cloned()).collect()
}

fn secret(name: &str, type_: Option<&str>, data: BTreeMap<String, Vec<u8>>) -> Secret {
    Secret {
        metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() },
        type_: type_.map(String::from),
        data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
        ..Default::default()
    }
}

fn from_keys(name: &'static str, env: &BTreeMap<String, String>, keys: &[&str]) -> SecretPlan {
    let missing: Vec<&str> = keys.iter().copied().filter(|k| !env.contains_key(*k)).collect();
    if !missing.is_empty() {
        return SecretPlan::Skip { name, reason: format!("{} not set in the .env file", missing.join(", ")) };
    }
    let data = keys.iter().map(|k| (k.to_string(), env[*k].clone().into_bytes())).collect();
    SecretPlan::Apply { secret: Box::new(secret(name, None, data)), source: keys.join(", ") }
}

fn registry_secret(env: &BTreeMap<String, String>, env_dir: &Path) -> Result<SecretPlan, String> {
    let (json, source) = if let Some(raw) = env.get("DOCKER_CONFIG_JSON") {
        if raw.trim_start().starts_with('{') {
            (raw.clone(), "DOCKER_CONFIG_JSON (inline)".to_string())
        } else {
            let path = env_dir.join(raw);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("DOCKER_CONFIG_JSON: cannot read {}: {e}", path.display()))?;
            (text, format!("DOCKER_CONFIG_JSON ({})", path.display()))
        }
    } else if let (Some(user), Some(password)) = (env.get("DOCKER_HUB_USERNAME"), env.get("DOCKER_HUB_PASSWORD")) {
        let server = env.get("DOCKER_REGISTRY_SERVER").map(String::as_str).unwrap_or(DOCKER_HUB_SERVER);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let config = serde_json::json!({"auths": {server: {"username": user, "password": password, "auth": auth}}});
        (config.to_string(), format!("DOCKER_HUB_USERNAME + DOCKER_HUB_PASSWORD for {server}"))
    } else {
        return Ok(SecretPlan::Skip {
            name: DOCKER_REGISTRY_SECRET,
            reason: "neither DOCKER_CONFIG_JSON nor DOCKER_HUB_USERNAME + DOCKER_HUB_PASSWORD is set in the .env file \
                     (not needed with DISTRIB=minikube or public images)"
                .into(),
        });
    };
    let parsed: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("{source}: not a Docker config JSON: {e}"))?;
    if !parsed.get("auths").is_some_and(serde_json::Value::is_object) {
        return Err(format!("{source}: a Docker config JSON needs an \"auths\" object"));
    }
    let data = BTreeMap::from([(".dockerconfigjson".to_string(), json.into_bytes())]);
    Ok(SecretPlan::Apply {
        secret: Box::new(secret(DOCKER_REGISTRY_SECRET, Some("kubernetes.io/dockerconfigjson"), data)),
        source,
    })
}

/// The Secrets a `.env` file's values make. `env_dir` resolves a relative `DOCKER_CONFIG_JSON`
/// path. An unreadable or malformed Docker config is an error; a missing value skips its Secret.
pub fn plan_secrets(env: &BTreeMap<String, String>, env_dir: &Path) -> Result<Vec<SecretPlan>, String> {
    let env: BTreeMap<String, String> =
        env.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut plans = vec![
        from_keys(SQL_SERVER_SECRET, &env, &SQL_SERVER_KEYS),
        registry_secret(&env, env_dir)?,
        from_keys(DOCKER_USERNAME_SECRET, &env, &["DOCKER_HUB_USERNAME"]),
        from_keys(IPQS_SECRET, &env, &["IPQS_KEY"]),
    ];
    if env.contains_key("ARMADA_TOKEN") {
        plans.push(from_keys(TOKEN_SECRET, &env, &["ARMADA_TOKEN"]));
    }
    Ok(plans)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Created,
    Replaced,
}

/// Creates the Secret in `namespace`, or replaces the one of that name with it.
pub async fn apply_secret(connection: &Connection, namespace: &str, secret: &Secret) -> Result<Applied, LaunchError> {
    let api: Api<Secret> = Api::namespaced(connection.client.clone(), namespace);
    let name = secret.metadata.name.clone().unwrap_or_default();
    let action = |verb: &str| format!("{verb} Secret {name} in namespace {namespace}");
    match api.create(&PostParams::default(), secret).await {
        Ok(_) => Ok(Applied::Created),
        Err(e) if is_already_exists(&e) => api
            .replace(&name, &PostParams::default(), secret)
            .await
            .map(|_| Applied::Replaced)
            .map_err(|e| api_error(&action("replace"), e)),
        Err(e) => Err(api_error(&action("create"), e)),
    }
}
