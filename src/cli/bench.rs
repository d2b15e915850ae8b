//! `armada bench e2e`: the agent's cost per job on 1, 2 and 4 in-process agents.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// No-op jobs through real agents and workers, embedded engines: jobs/s, per-job overhead, RSS.
    E2e {
        /// Jobs per configuration.
        #[arg(long, default_value_t = 5000)]
        jobs: usize,
        /// Agent counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
        agents: Vec<usize>,
    },
}

pub async fn run(args: BenchArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    crate::observability::init_logging_at(log_format.unwrap_or_default(), "warn");
    match args.what {
        BenchCommand::E2e { jobs, agents } => {
            for count in agents {
                let report = crate::agent::bench::bench_e2e(jobs, count.max(1)).await.map_err(anyhow::Error::msg)?;
                println!("{report}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
