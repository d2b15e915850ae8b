//! The agent runtime: fetch its message, prepare, supervise the worker, consume the queue, record outcomes.
//!
//! Architecture invariant: the agent imports no role; it reaches the backend through
//! `clients::BackendClient`, the providers through `clients::ProviderClients`, and the engines
//! through their traits.
//!
//! - [`runtime`]: [`run_agent`], the one code path of every agent, and the in-process entry.
//! - [`prepare`]: message, run config, working directory, bundle, helper, virtualenv.
//! - `jobs`: the job loop (deliveries, retries, outcomes, acks), and the rule for redeliveries.
//! - [`heartbeat`]: the agent's sign of life, and the job it is running, in the config store.
//! - `calls`: the worker's calls as records; `logs`: its prints as job logs.
//! - [`spool`]: the backend client that keeps records through an outage.
//! - [`stage`]: a run set up the way the orchestrator does it (workbench, tests, bench).
//! - [`network`]: the proxy and fingerprint an agent's message asks for; [`forward_proxy`]: the
//!   local proxy its browser uses.
//! - [`worker`]: the worker process and its protocol.

pub mod bench;
mod calls;
pub mod forward_proxy;
pub mod heartbeat;
mod jobs;
mod logs;
pub mod network;
pub mod observer;
pub mod prepare;
pub mod runtime;
pub mod spool;
pub mod stage;
#[cfg(test)]
mod test_support;
pub mod worker;

pub use observer::AgentObserver;
pub use runtime::{
    AgentDeps, AgentEnd, AgentError, AgentOptions, AgentReport, InProcessDeps, in_process_entry, run_agent, worker_env,
};
pub use spool::SpoolingBackend;
