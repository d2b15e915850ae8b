//! Integration tests: the in-process app over real loopback HTTP and WebSocket.

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod platform;
mod ws;
