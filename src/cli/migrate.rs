//! `armada migrate`: apply pending database migrations and exit.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::infra::db;
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct MigrateArgs {}

pub async fn run(_args: MigrateArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(Vec::new(), None, log_format)?;
    let store = db::open(&settings.database)
        .await
        .with_context(|| format!("failed to open the database {}", settings.database.describe()))?;
    let applied = store.migrate().await.context("failed to apply migrations")?;
    if applied.is_empty() {
        println!("{}: up to date, nothing to apply", store.describe());
    } else {
        for name in &applied {
            println!("applied {name}");
        }
        println!("{}: {} migration(s) applied", store.describe(), applied.len());
    }
    Ok(ExitCode::SUCCESS)
}
