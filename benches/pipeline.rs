//! `cargo bench --bench pipeline [-- ROWS]`: expands a generated data_job.csv (4 columns, one
//! JSON cell) with a 10-key nested default job message into job messages, and prints the time
//! spent in `plan_run` and the process's peak memory. Target: 100,000 rows under 1 s and
//! 500 MB on a 2-core machine. Under `cargo test --all-targets` it only says how to run it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("pipeline benchmark: run it with `cargo bench --bench pipeline [-- ROWS]`");
        return;
    }
    let rows: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    let before = armada::pipeline::peak_rss_kib();
    let report = armada::pipeline::bench_pipeline(rows);
    let peak = armada::pipeline::peak_rss_kib();
    let mib = |kib: Option<u64>| kib.map(|k| format!("{:.0} MiB", k as f64 / 1024.0)).unwrap_or_else(|| "n/a".into());
    println!(
        "pipeline: {} rows ({:.1} MiB of CSV) -> {} job messages ({:.1} MiB of JSON) + {} agent messages in {:.3} s ({:.0} rows/s); peak RSS {} (before: {})",
        report.rows,
        report.csv_bytes as f64 / (1024.0 * 1024.0),
        report.job_messages,
        report.job_message_bytes as f64 / (1024.0 * 1024.0),
        report.agent_messages,
        report.elapsed.as_secs_f64(),
        report.rows as f64 / report.elapsed.as_secs_f64().max(1e-9),
        mib(peak),
        mib(before),
    );
}
