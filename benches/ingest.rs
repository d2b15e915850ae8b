//! `cargo bench --bench ingest [-- SECONDS]`: event ingestion through the HTTP API with 50
//! live-stream clients (one stalled) attached; prints events/s and latency percentiles.

fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
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
