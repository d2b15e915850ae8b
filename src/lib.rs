//! Armada: run one automation script at scale. The library behind the `armada` binary; the
//! map of its modules is ARCHITECTURE.md at the repository root.

pub mod agent;
pub mod app;
pub mod cli;
pub mod clients;
pub mod docs;
pub mod health;
pub mod http;
pub mod infra;
pub mod inventory;
pub mod model;
pub mod observability;
pub mod pipeline;
pub mod process;
pub mod project;
pub mod records;
pub mod roles;
pub mod settings;
