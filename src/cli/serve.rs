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
    roles: Option<RoleList>,

    /// Address to listen on. Default 127.0.0.1 on port 8080, or the seed's port of a role served
    /// alone (backend 8000, proxy-provider 5001, fingerprint-provider 5005).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

/// The parsed `--roles` list. A newtype, because clap reads an `Option<Vec<_>>` field as a
/// repeated argument and then fails to downcast what this parser returns.
#[derive(Debug, Clone)]
struct RoleList(Vec<Role>);

fn parse_roles_arg(raw: &str) -> Result<RoleList, String> {
    parse_roles(raw).map(RoleList).map_err(|e| e.to_string())
}

pub async fn run(args: ServeArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(args.roles.map(|list| list.0).unwrap_or_default(), args.listen, log_format)?;
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};
    use crate::roles::Role;

    #[test]
    fn roles_flag_takes_a_comma_separated_list() {
        let cli = Cli::try_parse_from(["armada", "serve", "--roles", "backend,orchestrator"]).expect("parses");
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert_eq!(args.roles.map(|list| list.0), Some(vec![Role::Backend, Role::Orchestrator]));
        let err = Cli::try_parse_from(["armada", "serve", "--roles", "backend,foo"]).expect_err("unknown role");
        assert!(err.to_string().contains("roles are: backend"), "{err}");
    }
}
