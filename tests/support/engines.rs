//! The configurations the end-to-end suite runs in, and `on_every_engine!`, which makes one
//! `#[tokio::test]` per configuration from one generic test body:
//!
//! ```ignore
//! async fn hello_runs(engines: Engines) {
//!     let harness = AgentHarness::new(engines).await;
//!     …
//! }
//! on_every_engine!(hello_runs); // hello_runs::embedded, ::distributed, ::distributed_processes
//! ```
//!
//! A distributed variant where Redis or RabbitMQ is not installed prints a SKIPPED line and
//! passes — unless `ARMADA_TEST_REQUIRE_LIVE=1` (see `servers`), which makes it fail.
#![allow(dead_code)]

use std::future::Future;

use super::servers;

/// Which config store, broker and launcher a test's agents run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    /// The embedded defaults: in-process config store and queue, agents as tasks of the server
    /// (the in-process launcher).
    Embedded,
    /// Redis and RabbitMQ (the shared test servers), agents as tasks of the server.
    Distributed,
    /// Redis and RabbitMQ, agents as real `armada agent` child processes of the test (the
    /// process launcher, `PLATFORM=local`), which reach the backend over HTTP at the app's URL.
    DistributedProcesses,
}

/// Where the shared test servers are.
#[derive(Debug, Clone)]
pub struct LiveServers {
    pub redis: String,
    pub rabbitmq: String,
}

impl Engines {
    pub const ALL: [Engines; 3] = [Engines::Embedded, Engines::Distributed, Engines::DistributedProcesses];

    pub fn is_distributed(self) -> bool {
        self != Engines::Embedded
    }

    /// Agents are `armada agent` processes (they have pids, and are killed with signals).
    pub fn agents_are_processes(self) -> bool {
        self == Engines::DistributedProcesses
    }

    /// The Redis and RabbitMQ servers a distributed configuration runs on, started on first
    /// use; `None` for the embedded one, or (after the servers' SKIPPED lines) when they are
    /// not installed.
    pub async fn live_servers(self) -> Option<LiveServers> {
        if !self.is_distributed() {
            return None;
        }
        // Starting RabbitMQ takes seconds of blocking waits: not on the test's runtime threads.
        let urls = tokio::task::spawn_blocking(|| (servers::redis_url(), servers::rabbitmq_url()))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        match urls {
            (Some(redis), Some(rabbitmq)) => Some(LiveServers { redis, rabbitmq }),
            _ => None,
        }
    }

    /// Whether this configuration can run here; when not, says so loudly (a SKIPPED line) for
    /// `test`. With `ARMADA_TEST_REQUIRE_LIVE=1` a missing server fails the test instead.
    pub async fn available(self, test: &str) -> bool {
        if !self.is_distributed() || self.live_servers().await.is_some() {
            return true;
        }
        servers::loud(&format!(
            "SKIPPED: {test}: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)"
        ));
        false
    }
}

/// Runs `body` on `engines`, or prints why it cannot run here (see [`Engines::available`]).
/// `test` is the test's path, `module_path!()`-style (the crate's name first, then dropped).
pub async fn run_on<F, Fut>(engines: Engines, test: &str, body: F)
where
    F: FnOnce(Engines) -> Fut,
    Fut: Future<Output = ()>,
{
    let test = test.split_once("::").map_or(test, |(_crate, path)| path);
    if engines.available(test).await {
        body(engines).await;
    }
}

/// For each `async fn NAME(engines: Engines)` named, a module `NAME` with one test per
/// configuration: `NAME::embedded`, `NAME::distributed`, `NAME::distributed_processes`.
macro_rules! on_every_engine {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                use $crate::support::engines::{Engines, run_on};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn embedded() {
                    run_on(Engines::Embedded, concat!(module_path!(), "::embedded"), super::$test).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn distributed() {
                    run_on(Engines::Distributed, concat!(module_path!(), "::distributed"), super::$test).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn distributed_processes() {
                    run_on(Engines::DistributedProcesses, concat!(module_path!(), "::distributed_processes"), super::$test).await;
                }
            }
        )+
    };
}
pub(crate) use on_every_engine;
