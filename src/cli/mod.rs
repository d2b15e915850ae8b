//! The command line: one file per subcommand. `main` prints `armada: error: {chain}` and exits
//! 2 for configuration errors (bad flag, bad variable, bad file), 3 when the server a command
//! talks to cannot be reached (`launch`, `runs`, `outputs`), 1 for everything else.

mod agent;
mod bench;
mod client;
mod display;
mod follow;
mod import;
mod kube;
mod launch;
mod migrate;
mod outputs;
mod runs;
mod serve;
mod workbench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::settings::{LogFormat, Settings, SettingsError, Vars};

#[derive(Debug, Parser)]
#[command(
    name = "armada",
    version,
    about = "Run one automation script at scale: an orchestrator, N agents, a job queue, live monitoring.",
    long_about = "Run one automation script at scale.\n\n\
        `armada serve` runs every role (backend, orchestrator, frontend, proxy-provider, \
        fingerprint-provider) in one process on 127.0.0.1:8080 with embedded engines (SQLite, \
        in-process queue and config store). Set REDIS_*, RABBITMQ_URL, SQL_SERVER_* and PLATFORM \
        to use the distributed engines. Settings come from flags, the environment and a .env \
        file in the working directory (see config/.env.example)."
)]
pub struct Cli {
    /// Log format on stderr (RUST_LOG sets the level, e.g. RUST_LOG=debug).
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve roles over HTTP: all of them by default, or those named with --roles.
    Serve(serve::ServeArgs),
    /// Apply pending database migrations and exit (serve also applies them at start).
    Migrate(migrate::MigrateArgs),
    /// Run one agent of a run (as a pod or a local agent process starts it), configured by the
    /// environment: RUN_ID, POD_INDEX, Redis, RABBITMQ_URL, BACKEND_URL.
    Agent(agent::AgentArgs),
    /// Run one agent locally over a project folder, printing every event and the worker's
    /// prints live; no Redis, RabbitMQ or cluster needed.
    Workbench(workbench::WorkbenchArgs),
    /// Start a run of a project folder on a running server (validated here first), and follow
    /// it live to its end. Exit code 0 when every job succeeded, 1 when one failed or the run
    /// failed or was cancelled, 2 for a configuration error, 3 when the server is unreachable.
    Launch(launch::LaunchArgs),
    /// Runs on a running server: list, show, follow, cancel, delete.
    Runs(runs::RunsArgs),
    /// Every output row of a run, oldest first, as CSV (the dashboard's download) or JSON Lines.
    Outputs(outputs::OutputsArgs),
    /// Measure: `armada bench e2e` runs no-op jobs through real agents.
    Bench(bench::BenchArgs),
    /// Fill the providers' inventory from a CSV file (all or nothing; duplicates skipped).
    Import(import::ImportArgs),
    /// Kubernetes: print a run's agent Job, provision the Secrets, check the Role.
    Kube(kube::KubeArgs),
}

/// Errors that mean "fix your configuration", exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // An agent is one job at a time waiting on its worker, the broker and the backend: one
    // thread does it (fleets run several agents per core; each extra runtime thread is memory and
    // context switches). Everything else gets the multi-threaded runtime.
    let mut builder = match cli.command {
        Command::Agent(_) => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("armada: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("armada: error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args, cli.log_format).await,
        Command::Migrate(args) => migrate::run(args, cli.log_format).await,
        Command::Agent(args) => agent::run(args, cli.log_format).await,
        Command::Workbench(args) => workbench::run(args, cli.log_format).await,
        Command::Launch(args) => launch::run(args, cli.log_format).await,
        Command::Runs(args) => runs::run(args, cli.log_format).await,
        Command::Outputs(args) => outputs::run(args, cli.log_format).await,
        Command::Bench(args) => bench::run(args, cli.log_format).await,
        Command::Import(args) => import::run(args, cli.log_format).await,
        Command::Kube(args) => kube::run(args, cli.log_format).await,
    }
}

/// 3 when a server could not be reached, 2 for a configuration error, 1 otherwise.
fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<client::ServerUnreachable>()) {
        3
    } else if is_config_error(err) {
        2
    } else {
        1
    }
}

fn is_config_error(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<ConfigError>()
            || cause.is::<SettingsError>()
            || cause.is::<crate::roles::UnknownRole>()
            || matches!(cause.downcast_ref(), Some(crate::infra::launcher::LaunchError::Invalid(_)))
    })
}

/// Settings from the working directory's `.env` and the environment, with flags on top.
pub(crate) fn load_settings(
    roles: Vec<crate::roles::Role>,
    listen: Option<std::net::SocketAddr>,
    log_format: Option<LogFormat>,
) -> anyhow::Result<Settings> {
    let dir = std::env::current_dir().map_err(|e| ConfigError(format!("cannot read the working directory: {e}")))?;
    let vars = Vars::load(&dir)?;
    let mut settings = Settings::from_vars(vars, roles, listen)?;
    if let Some(format) = log_format {
        settings.log_format = format;
    }
    crate::observability::init_logging(settings.log_format);
    Ok(settings)
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes and compose send).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
