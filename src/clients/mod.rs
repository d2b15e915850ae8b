//! Clients of roles, for the parts that need another role without importing it: an in-process
//! handle when the role runs in this process, HTTP when it does not, chosen once at start.

pub mod backend;
pub mod providers;

pub use backend::{BackendClient, BackendError, HttpBackend, InProcessBackend, LiveItem, LiveStream};
pub use providers::{ProviderClients, ProviderError, ProxyRequest};
