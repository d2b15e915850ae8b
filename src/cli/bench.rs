//! `armada bench e2e`: no-op jobs through a whole server on 1, 2 and 4 agents (`agent::bench`).

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
    /// No-op jobs through a whole server in this process (engines from the environment, as `serve`):
    /// jobs/s, per-job overhead, completion latency, agent RSS.
    E2e {
        /// Jobs per configuration.
        #[arg(long, default_value_t = 10000)]
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
