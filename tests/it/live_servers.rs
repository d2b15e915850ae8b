//! What a test that needs Redis and RabbitMQ does where they are not available: it says
//! SKIPPED and passes — or, with `ARMADA_TEST_REQUIRE_LIVE=1` (`scripts/test.sh` sets it, so CI
//! cannot pass by skipping), fails saying why. Checked on this very test binary, running one
//! distributed test with the servers switched off (`ARMADA_TEST_LIVE_SERVERS=0`).

use std::process::{Command, Output};

const DISTRIBUTED_TEST: &str = "agent::hello::node_example_worker_runs_through_the_agent::distributed";

fn run_distributed_test(require_live: bool) -> (Output, String) {
    let mut command = Command::new(std::env::current_exe().expect("this test binary"));
    command
        .args(["--exact", DISTRIBUTED_TEST, "--test-threads", "1"])
        .env("ARMADA_TEST_LIVE_SERVERS", "0")
        .env_remove("ARMADA_TEST_REDIS_URL")
        .env_remove("ARMADA_TEST_RABBITMQ_URL")
        .env_remove("ARMADA_TEST_REQUIRE_LIVE");
    if require_live {
        command.env("ARMADA_TEST_REQUIRE_LIVE", "1");
    }
    let output = command.output().expect("the test binary runs");
    let shown = format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, shown)
}

#[test]
fn without_live_servers_a_distributed_test_says_skipped_and_passes() {
    let (output, shown) = run_distributed_test(false);
    assert!(output.status.success(), "{shown}");
    assert!(shown.contains("1 passed"), "exactly the one test ran: {shown}");
    assert!(shown.contains("SKIPPED Redis: ARMADA_TEST_LIVE_SERVERS=0; unset it"), "{shown}");
    assert!(shown.contains(&format!("SKIPPED: {DISTRIBUTED_TEST}")), "the test names itself: {shown}");
}

#[test]
fn with_armada_test_require_live_a_missing_server_fails_the_test() {
    let (output, shown) = run_distributed_test(true);
    assert!(!output.status.success(), "{shown}");
    assert!(shown.contains("1 failed"), "{shown}");
    assert!(shown.contains("Redis is required (ARMADA_TEST_REQUIRE_LIVE=1) but ARMADA_TEST_LIVE_SERVERS=0"), "{shown}");
    assert!(!shown.contains("SKIPPED"), "{shown}");
}
