//! The agent runtime: fetch its message, prepare, supervise the worker, consume the queue, record outcomes.

pub mod worker;
