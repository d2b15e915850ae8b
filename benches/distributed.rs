//! `cargo bench --bench distributed [-- MESSAGES JOBS]`: Armada on real RabbitMQ and Redis.
//!
//! Starts a RabbitMQ and a Redis on free loopback ports (as the tests do: Debian's
//! `rabbitmq-server` and `redis-server`; or `ARMADA_TEST_RABBITMQ_URL` / `ARMADA_TEST_REDIS_URL`),
//! then prints:
//! 1. publishing MESSAGES (default 100,000) job messages with confirms and draining them with
//!    prefetch 1 and acks, through Armada's broker and through a bare `lapin` loop, with the
//!    ratio (`armada::infra::broker::amqp::bench`);
//! 2. `armada bench e2e --jobs JOBS` (default 10,000) with `PLATFORM=local` on 1 and 4 agent
//!    processes, and with in-process agents on 4, both on these servers: jobs/s, per-job
//!    overhead, completion latency after the last outcome, agent RSS.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it only says how to run it.

use std::process::Command;

/// The test suites' servers: started on free loopback ports, stopped when this process exits.
#[allow(dead_code)]
#[path = "../src/infra/testing.rs"]
mod servers;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("distributed benchmark: run it with `cargo bench --bench distributed [-- MESSAGES JOBS]`");
        return Ok(());
    }
    let mut numbers = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let messages = numbers.next().unwrap_or(100_000);
    let jobs = numbers.next().unwrap_or(10_000);

    let (Some(rabbitmq), Some(redis)) = (servers::rabbitmq_url(), servers::redis_url()) else {
        anyhow::bail!("RabbitMQ and Redis are needed: apt-get install rabbitmq-server redis-server");
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(armada::infra::broker::amqp::bench::bench_amqp(&rabbitmq, messages));
    println!("amqp: {}", report.map_err(anyhow::Error::msg)?);

    let redis_authority = redis.split_once("://").map_or(redis.as_str(), |(_, rest)| rest).trim_end_matches('/');
    let (redis_host, redis_port) = redis_authority.rsplit_once(':').unwrap_or((redis_authority, "6379"));
    let work = tempfile::tempdir()?;
    for (platform, agents) in [(Some("local"), "1,4"), (None, "4")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_armada"));
        command
            .args(["bench", "e2e", "--jobs", &jobs.to_string(), "--agents", agents])
            .current_dir(work.path())
            .env("REDIS_HOST", redis_host)
            .env("REDIS_PORT", redis_port)
            .env("RABBITMQ_URL", &rabbitmq)
            .env_remove("PLATFORM");
        if let Some(platform) = platform {
            command.env("PLATFORM", platform);
        }
        let status = command.status()?;
        anyhow::ensure!(status.success(), "armada bench e2e (PLATFORM={platform:?}) {status}");
    }
    Ok(())
}
