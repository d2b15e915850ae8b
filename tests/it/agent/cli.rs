//! The real binary: `armada workbench` over examples/hello, and `armada agent` without the
//! engines a separate agent process needs.

use std::process::{Command, Output};

use crate::support::agents::example;

fn armada(args: &[&str], cwd: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_armada"))
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("armada runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn workbench_runs_every_job_of_hello_prints_them_live_and_fails_on_a_failed_job() {
    let work = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let work_dir = work.path().join("work");
    let output = armada(&["workbench", hello.to_str().unwrap(), "--work-dir", work_dir.to_str().unwrap()], work.path());
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));

    assert_eq!(output.status.code(), Some(1), "a Failed job makes the exit code non-zero\n{stdout}\n{stderr}");
    assert!(stdout.contains("20 of 20 jobs"), "{stdout}");
    assert!(stdout.contains("summary: 20 jobs, 19 succeeded, 1 failed, 0 not run; 20 outputs"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.ends_with("] Success")).count(), 19, "{stdout}");
    assert!(stdout.contains("Failed: hugo: this row asks to fail (should_fail=true)"), "{stdout}");
    assert!(
        stdout.contains("[job 1/20] | job for ada on agent-0"),
        "the worker's prints, tagged with the job: {stdout}"
    );
    assert!(stdout.contains("[job 1/20] event Success: bonjour, ada!"), "agent 0's merged greeting: {stdout}");
    assert!(work_dir.join("armada.db").is_file(), "the database is where the summary says");
}

#[test]
fn workbench_jobs_1_runs_only_the_first_job() {
    let work = tempfile::tempdir().unwrap();
    let hello = example("hello");
    let work_dir = work.path().join("work");
    let args =
        ["workbench", hello.to_str().unwrap(), "--jobs", "1", "--agent", "2", "--work-dir", work_dir.to_str().unwrap()];
    let output = armada(&args, work.path());
    let stdout = text(&output.stdout);

    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", text(&output.stderr));
    assert!(stdout.contains("agent-2 of 3 agents, 1 of 20 jobs"), "{stdout}");
    assert!(stdout.contains("summary: 1 job, 1 succeeded, 0 failed, 0 not run; 2 outputs"), "{stdout}");
    assert!(stdout.contains("[job 1/1] event Success: hello, ada!"), "agent 2 has the default greeting: {stdout}");
    assert!(!stdout.contains("brian"), "{stdout}");
}

#[test]
fn agent_without_redis_and_rabbitmq_exits_2_and_says_why() {
    let cwd = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_armada"))
        .arg("agent")
        .current_dir(cwd.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUN_ID", uuid::Uuid::new_v4().to_string())
        .env("POD_INDEX", "0")
        .env("BACKEND_URL", "http://127.0.0.1:9")
        .output()
        .expect("armada runs");
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("armada: error: armada agent needs the config store"), "{stderr}");
    assert!(stderr.contains("RABBITMQ_URL") && stderr.contains("cannot reach an in-process queue"), "{stderr}");
}
