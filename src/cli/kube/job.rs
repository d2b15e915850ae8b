//! `armada kube job --run-id ID --template DIR`: plans the run from the project folder as the
//! orchestrator would (with `config/config_distant.json` as the tune when present) and prints
//! the agent Job it would create. Nothing is sent to a cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use uuid::Uuid;

use super::DistribArg;
use crate::cli::ConfigError;
use crate::infra::launcher::LaunchSpec;
use crate::infra::launcher::kube::job::{job_yaml_redacted, validate_names};
use crate::infra::launcher::kube::{KubeContext, agent_job};
use crate::pipeline::{NamedBytes, ProjectInput, RunPlan, plan_run};
use crate::project::{NamedFile, Project, ProjectLimits, TuneKind};
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct JobArgs {
    /// The run's id (a UUID); the Job is named {image_name}-{run_id}.
    #[arg(long, value_name = "UUID")]
    run_id: Uuid,

    /// The project folder (the one that holds config/config_template.json).
    #[arg(long, value_name = "DIR")]
    template: PathBuf,

    /// kube (pull from the registry) or minikube (local images). Default: DISTRIB, else kube.
    #[arg(long, value_enum)]
    distrib: Option<DistribArg>,

    /// Namespace of the Job. Default: ARMADA_KUBE_NAMESPACE, else default.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,

    /// Tune file in config/ filling the $env_ placeholders. Default: config_distant.json when present.
    #[arg(long, value_name = "FILE")]
    tune: Option<String>,
}

fn named(file: NamedFile<'_>) -> NamedBytes<'_> {
    NamedBytes { name: file.name, bytes: file.bytes }
}

/// The run plan of the project folder, and its `requirements.txt`.
fn plan(args: &JobArgs) -> Result<(RunPlan, Option<String>), ConfigError> {
    let project =
        Project::from_dir(&args.template, ProjectLimits::default()).map_err(|e| ConfigError(e.to_string()))?;
    let tune = match &args.tune {
        Some(name) => {
            let kind = TuneKind::Named(name.trim_start_matches("config/").to_string());
            Some(project.tune(&kind).ok_or_else(|| ConfigError(format!("{}: no such tune file", kind.path())))?)
        }
        None => project.tune(&TuneKind::Distant),
    };
    let input = ProjectInput {
        template: named(project.template()),
        tune: tune.map(named),
        data_agent: project.data_agent().map(named),
        data_job: project.data_job().map(named),
        run_id: Some(args.run_id),
    };
    let plan = plan_run(&input).map_err(|e| ConfigError(e.to_string()))?;
    let requirements = project.requirements_txt().map(|file| String::from_utf8_lossy(file.bytes).into_owned());
    Ok((plan, requirements))
}

pub async fn run(args: JobArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = crate::cli::load_settings(Vec::new(), None, log_format)?;
    let (plan, requirements_txt) = plan(&args)?;
    let mut ctx = KubeContext::from_settings(&settings);
    if let Some(distrib) = args.distrib {
        ctx.distrib = distrib.into();
    }
    if let Some(namespace) = args.namespace {
        ctx.namespace = namespace;
    }
    let missing = ctx.missing();
    if !missing.is_empty() {
        eprintln!(
            "note: {} unset here, so the Job below has them empty; the orchestrator of the Helm chart sets them",
            missing.join(", ")
        );
    }
    let spec = LaunchSpec {
        run_id: plan.run_id,
        number_of_agents: plan.settings.number_of_agents,
        image_name: plan.settings.image_name.clone(),
        image_version: plan.settings.image_version.clone(),
        agent_cpu: plan.settings.agent_cpu.clone(),
        agent_memory: plan.settings.agent_memory.clone(),
        requirements_txt,
    };
    validate_names(&spec).map_err(|e| ConfigError(e.to_string()))?;
    let yaml = job_yaml_redacted(&agent_job(&spec, &ctx)).map_err(anyhow::Error::msg)?;
    println!("# The agent Job for run {} (RABBITMQ_URL's password shown as ***).", plan.run_id);
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
