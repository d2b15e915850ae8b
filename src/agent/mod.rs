//! The agent runtime: fetch its message, prepare, supervise the worker, consume the queue, record outcomes.
//!
//! Architecture invariant: the agent imports no role; it reaches the backend through
//! `clients::BackendClient`, the providers through `clients::ProviderClients`, and the engines
//! through their traits.

pub mod forward_proxy;
pub mod network;
pub mod runtime;
pub mod worker;
