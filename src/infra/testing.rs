//! Test support for the engines: runs a conformance test body or says loudly why it was
//! skipped.

use std::future::Future;
use std::time::Duration;

/// No conformance test may run longer than this; a hung engine fails the test instead of
/// hanging the whole run.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs `body`, or, when the suite's constructor found no engine (`None`), prints a SKIPPED
/// line: the constructor itself prints why and how to enable it.
pub async fn run_conformance<F: Future<Output = ()>>(engine: &str, suite: &str, test: &str, body: Option<F>) {
    let Some(body) = body else {
        eprintln!("SKIPPED: {engine} conformance test {suite}::{test}: the engine is not available here (see above)");
        return;
    };
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("{engine} conformance test {suite}::{test} did not finish within {TEST_LIMIT:?}");
    }
}
