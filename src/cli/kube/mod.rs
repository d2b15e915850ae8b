//! `armada kube …`: the Kubernetes side of an operator's work — inspect the agent Job a run
//! would create (`job`), provision the seed's Secrets (`bootstrap-secrets`), and check that the
//! Role allows what the launcher does (`check`).

mod check;
mod job;
mod secrets;

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use crate::settings::{Distrib, LogFormat};

#[derive(Debug, Args)]
pub struct KubeArgs {
    #[command(subcommand)]
    command: KubeCommand,
}

#[derive(Debug, Subcommand)]
enum KubeCommand {
    /// Print the agent Job (YAML) the orchestrator would create for a project: nothing is sent.
    Job(job::JobArgs),
    /// Create or replace the seed's Secrets in a namespace from a .env file (values are never printed).
    BootstrapSecrets(secrets::SecretsArgs),
    /// Check with SelfSubjectAccessReview that this identity may do what the launcher does.
    Check(check::CheckArgs),
}

/// `--distrib kube|minikube`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DistribArg {
    /// Pull the agent image from the registry (imagePullPolicy Always, registry pull secret).
    Kube,
    /// Use images built into minikube's Docker (imagePullPolicy Never).
    Minikube,
}

impl From<DistribArg> for Distrib {
    fn from(arg: DistribArg) -> Self {
        match arg {
            DistribArg::Kube => Distrib::Kube,
            DistribArg::Minikube => Distrib::Minikube,
        }
    }
}

pub async fn run(args: KubeArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    match args.command {
        KubeCommand::Job(args) => job::run(args, log_format).await,
        KubeCommand::BootstrapSecrets(args) => secrets::run(args, log_format).await,
        KubeCommand::Check(args) => check::run(args, log_format).await,
    }
}

/// The namespace: the flag, else `ARMADA_KUBE_NAMESPACE`, else `default`.
fn namespace(flag: Option<String>, settings: &crate::settings::Settings) -> String {
    flag.unwrap_or_else(|| crate::infra::launcher::kube::KubeContext::from_settings(settings).namespace)
}
