//! `bench_pipeline`: times `plan_run` on a generated project, for `benches/` and release checks.

use std::time::{Duration, Instant};

use super::NamedBytes;
use super::plan::{ProjectInput, plan_run};
use super::settings::MAX_JOBS;

/// What one benchmark run measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchReport {
    /// `data_job.csv` rows generated (clamped to `MAX_JOBS`).
    pub rows: usize,
    /// Size of the generated `data_job.csv`.
    pub csv_bytes: usize,
    pub agent_messages: usize,
    pub job_messages: usize,
    /// Total size of the job messages serialised as JSON.
    pub job_message_bytes: usize,
    /// Time spent in `plan_run` and serialising its job messages (generating the input is not counted).
    pub elapsed: Duration,
}

impl BenchReport {
    /// Agent and job messages together.
    pub fn messages(&self) -> usize {
        self.agent_messages + self.job_messages
    }
}

const BENCH_AGENTS: usize = 4;

const BENCH_TEMPLATE: &str = r#"{
  "run_message": {"number_of_agents": "$env_AGENTS", "number_of_jobs": "$env_JOBS", "image_name": "armada-agent"},
  "default_agent_message": {"screen_visible": "$env_SCREEN_VISIBLE", "code": "print('hi')"},
  "default_job_message": {
    "account": "",
    "message": "",
    "payload": {"a": 0, "b": "", "c": [1, 2, 3]},
    "attempt": 1,
    "screen_visible": "$env_SCREEN_VISIBLE",
    "config_proxy": {"upstream_proxy_enabled": 2, "proxy_location": "", "verify_ip": 0},
    "fingerprint": {"browser": "chrome", "screen": {"width": 1920, "height": 1080}},
    "tags": ["bench", "armada"],
    "created_at": "2026-02-24 10:30:00",
    "note": null
  }
}"#;

/// Builds in memory a `data_job.csv` of `rows` rows with 4 columns (one a quoted JSON
/// object cell) and a template whose `default_job_message` has 10 keys with some nesting,
/// then times `plan_run` on them plus the making and serialising of every job message (as the
/// orchestrator does before publishing). Panics only if the pipeline rejects this known-good
/// input, which would be a bug worth a loud failure in a benchmark.
pub fn bench_pipeline(rows: usize) -> BenchReport {
    let rows = rows.min(MAX_JOBS);
    let csv = job_csv(rows);
    let jobs = rows.max(1);
    let tune = format!(r#"{{"tune": {{"AGENTS": {BENCH_AGENTS}, "JOBS": {jobs}, "SCREEN_VISIBLE": 0}}}}"#);
    let input = ProjectInput {
        template: NamedBytes { name: "config/config_template.json", bytes: BENCH_TEMPLATE.as_bytes() },
        tune: Some(NamedBytes { name: "config/config_local.json", bytes: tune.as_bytes() }),
        data_agent: None,
        data_job: Some(NamedBytes { name: "config/data_job.csv", bytes: csv.as_bytes() }),
        run_id: None,
    };

    let started = Instant::now();
    let plan = match plan_run(&input) {
        Ok(plan) => plan,
        Err(error) => panic!("the benchmark's generated project was rejected: {error}"),
    };
    // Every job message made and serialised, as the orchestrator does before publishing.
    let job_bytes: Vec<Vec<u8>> =
        plan.job_messages.iter().map(|m| serde_json::to_vec(&m).unwrap_or_default()).collect();
    let elapsed = started.elapsed();

    BenchReport {
        rows,
        csv_bytes: csv.len(),
        agent_messages: plan.agent_messages.len(),
        job_messages: job_bytes.len(),
        job_message_bytes: job_bytes.iter().map(Vec::len).sum(),
        elapsed,
    }
}

fn job_csv(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut csv = String::with_capacity(64 + rows * 64);
    csv.push_str("account,message,payload,attempt\n");
    for index in 0..rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            csv,
            "user{index}@example.com,  hello number {index}  ,\"{{\"\"a\"\":{index},\"\"b\"\":\"\"x\"\"}}\",{}",
            index % 3 + 1
        );
    }
    csv
}

/// Peak resident set size of this process in KiB (`VmHWM` in `/proc/self/status`), where
/// the platform has it. The one function of the pipeline that reads a file.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_pipeline_plans_one_message_per_row() {
        let report = bench_pipeline(50);
        assert_eq!(report.rows, 50);
        assert_eq!(report.job_messages, 50);
        assert_eq!(report.agent_messages, BENCH_AGENTS);
        assert_eq!(report.messages(), 54);
        assert!(report.csv_bytes > 50 * 40, "{report:?}");
    }

    #[test]
    fn bench_pipeline_with_no_rows_plans_one_default_job() {
        let report = bench_pipeline(0);
        assert_eq!((report.rows, report.job_messages), (0, 1));
    }

    #[test]
    fn bench_csv_rows_carry_a_json_object_cell() {
        let csv = job_csv(2);
        let rows = crate::pipeline::parse_csv_rows(
            NamedBytes { name: "config/data_job.csv", bytes: csv.as_bytes() },
            crate::pipeline::RowTarget::Job,
            None,
        )
        .expect("generated CSV is valid");
        assert_eq!(
            serde_json::Value::Object(rows[1].clone()),
            serde_json::json!({
                "account": "user1@example.com",
                "message": "hello number 1",
                "payload": {"a": 1, "b": "x"},
                "attempt": "2",
                "targetted_job": 1,
            })
        );
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_kib().is_some_and(|kib| kib > 0));
        } else {
            assert_eq!(peak_rss_kib(), None);
        }
    }
}
