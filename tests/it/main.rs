//! Integration tests, one binary (each test binary links the whole dependency tree): the
//! in-process app and real processes over loopback HTTP and WebSocket.

#[path = "../support/mod.rs"]
mod support;

mod agent;
mod backend;
mod cli;
mod clients;
mod deploy;
mod faults;
mod forward_proxy;
mod frontend;
mod kube;
mod live_servers;
mod local;
mod orchestrator;
mod platform;
mod providers;
mod worker;
mod ws;
