//! `armada kube check`: one `SelfSubjectAccessReview` per permission the launcher needs, printed
//! as a ✔/✖ list; exits 1 when any is missing.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::infra::launcher::kube::access::check_access;
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Namespace the orchestrator creates Jobs in. Default: ARMADA_KUBE_NAMESPACE, else default.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,

    /// Kubeconfig to use. Default: KUBECONFIG or ~/.kube/config, or the service account in a pod.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

pub async fn run(args: CheckArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::load_settings(Vec::new(), None, log_format)?;
    let namespace = super::namespace(args.namespace, &settings);
    let connection = super::secrets::connection(args.kubeconfig.as_deref()).await?;
    println!("Kubernetes API {} — what the launcher needs in namespace {namespace}:", connection.server);
    let checks = check_access(&connection, &namespace).await?;
    for check in &checks {
        let mark = if check.allowed { '✔' } else { '✖' };
        match (&check.reason, check.allowed) {
            (Some(reason), false) => println!("{mark} {} ({reason})", check.permission.describe()),
            _ => println!("{mark} {}", check.permission.describe()),
        }
    }
    let denied = checks.iter().filter(|c| !c.allowed).count();
    if denied == 0 {
        println!("all {} permissions allowed", checks.len());
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "{denied} of {} permissions missing: bind the Role armada-role of deploy/templates/rbac.yaml to this identity",
            checks.len()
        );
        Ok(ExitCode::from(1))
    }
}
