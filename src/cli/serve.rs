//! `armada serve`: run the chosen roles in one process.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::app::{self, AppState};
use crate::roles::{Role, parse_roles};
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Roles to serve, comma-separated: backend, orchestrator, frontend, proxy-provider,
    /// fingerprint-provider. Default: all of them.
    #[arg(long, value_name = "R1,R2", value_parser = parse_roles_arg)]
    roles: Option<Vec<Role>>,

    /// Address to listen on. Default 127.0.0.1 on port 8080, or the seed's port of a role served
    /// alone (backend 8000, proxy-provider 5001, fingerprint-provider 5005).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn parse_roles_arg(raw: &str) -> Result<Vec<Role>, String> {
    parse_roles(raw).map_err(|e| e.to_string())
}

pub async fn run(args: ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(args.roles.unwrap_or_default(), args.listen, log_format)?;
    let listen = settings.listen;
    let roles: Vec<&str> = settings.enabled_roles().into_iter().map(Role::name).collect();
    tracing::info!(database = %settings.database.describe(), roles = ?roles, "starting");
    let state = AppState::build(settings).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another process using it? pick another with --listen)")
    })?;
    tracing::info!(address = %listen, "listening");
    app::serve(listener, state, super::shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}
