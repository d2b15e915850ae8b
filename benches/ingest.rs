//! `cargo bench --bench ingest [-- SECONDS]`: event ingestion through the HTTP API with 50
//! live-stream clients (one stalled) attached; prints events/s and latency percentiles.
//! Under `cargo test --all-targets` (no `--bench` argument) it only says how to run it: the
//! integration test `ws::the_ingest_benchmark_runs_and_reports` exercises the same code.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("ingest benchmark: run it with `cargo bench --bench ingest [-- SECONDS]`");
        return Ok(());
    }
    let seconds: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(10);
    let options = armada::roles::backend::bench::IngestOptions {
        duration: std::time::Duration::from_secs(seconds),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(armada::roles::backend::bench::bench_ingest(options.clone()))?;
    println!(
        "ingest ({} connections, {} readers + {} stalled WebSocket clients): {report}",
        options.connections, options.ws_readers, options.ws_stalled
    );
    Ok(())
}
