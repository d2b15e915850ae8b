//! Integration tests, one binary (each test binary links the whole dependency tree): the
//! in-process app and real processes over loopback HTTP and WebSocket.

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod clients;
mod deploy;
mod kube;
mod platform;
mod worker;
mod ws;
