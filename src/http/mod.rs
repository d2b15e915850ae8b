//! HTTP plumbing shared by every role: the error shape, the JSON extractor, the token check,
//! path aliases of the original deployment, and request metrics.

pub mod auth;
pub mod error;
pub mod extract;
pub mod paths;

pub use error::ApiError;
pub use extract::{Json, PathUuid, Query};
