//! `armada kube bootstrap-secrets --env-file .env`: creates or replaces the seed's Secrets from
//! the file's values. Prints Secret names and key names, never a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::cli::ConfigError;
use crate::infra::launcher::kube::secrets::{Applied, SecretPlan, apply_secret, plan_secrets, secret_keys};
use crate::infra::launcher::kube::{Connection, connect, connect_with_kubeconfig};
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct SecretsArgs {
    /// The .env file holding the values (SQL_SERVER_*, DOCKER_HUB_USERNAME, DOCKER_HUB_PASSWORD or
    /// DOCKER_CONFIG_JSON, IPQS_KEY, ARMADA_TOKEN).
    #[arg(long, value_name = "FILE", default_value = ".env")]
    env_file: PathBuf,

    /// Namespace of the Secrets. Default: the file's ARMADA_KUBE_NAMESPACE, else the environment's, else default.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,

    /// Kubeconfig to use. Default: KUBECONFIG or ~/.kube/config.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,

    /// Show what would be created without contacting the cluster.
    #[arg(long)]
    dry_run: bool,
}

/// The kubeconfig given, else the usual inference.
pub(super) async fn connection(kubeconfig: Option<&Path>) -> anyhow::Result<Connection> {
    Ok(match kubeconfig {
        Some(path) => connect_with_kubeconfig(path).await?,
        None => connect().await?,
    })
}

fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let iter =
        dotenvy::from_path_iter(path).map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    iter.map(|item| item.map_err(|e| ConfigError(format!("{}: {e}", path.display())))).collect()
}

pub async fn run(args: SecretsArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::load_settings(Vec::new(), None, log_format)?;
    let env = read_env_file(&args.env_file)?;
    let env_dir = args.env_file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let plans = plan_secrets(&env, env_dir).map_err(ConfigError)?;
    let namespace = args
        .namespace
        .or_else(|| env.get("ARMADA_KUBE_NAMESPACE").filter(|ns| !ns.is_empty()).cloned())
        .unwrap_or_else(|| super::namespace(None, &settings));
    let connection = if args.dry_run { None } else { Some(connection(args.kubeconfig.as_deref()).await?) };
    match &connection {
        Some(connection) => println!("Secrets in namespace {namespace} at {}:", connection.server),
        None => println!("Secrets that would be created or replaced in namespace {namespace} (dry run):"),
    }
    for plan in &plans {
        match plan {
            SecretPlan::Apply { secret, source } => {
                let name = secret.metadata.name.as_deref().unwrap_or_default();
                let what = match &connection {
                    Some(connection) => match apply_secret(connection, &namespace, secret).await? {
                        Applied::Created => "created",
                        Applied::Replaced => "replaced",
                    },
                    None => "would be applied",
                };
                let kind = secret.type_.as_deref().map(|t| format!("{t}, ")).unwrap_or_default();
                println!("✔ {name} {what} ({kind}from {source}): {}", secret_keys(secret).join(", "));
            }
            SecretPlan::Skip { name, reason } => println!("- {name} skipped: {reason}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
