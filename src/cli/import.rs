//! `armada import proxies|fingerprints FILE.csv`: fill the providers' inventory from the
//! original's bulk CSV files. The whole file is validated first; then it is stored in one
//! transaction, all or nothing. Rows already stored are skipped and counted.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::ConfigError;
use crate::infra::db::{self, ImportOutcome};
use crate::inventory;
use crate::settings::LogFormat;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    what: Inventory,
}

#[derive(Debug, Subcommand)]
enum Inventory {
    /// Proxies: proxy_url,proxy_provider_name,proxy_type,proxy_rotation_strategy,proxy_location
    /// (duplicates: the same proxy_url).
    Proxies {
        /// The CSV file.
        file: PathBuf,
    },
    /// Fingerprints: antibot_vendor,website,data,collecting_date (duplicates: the same vendor,
    /// website, data and date).
    Fingerprints {
        /// The CSV file.
        file: PathBuf,
    },
}

pub async fn run(args: ImportArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(Vec::new(), None, log_format)?;
    let (file, kind) = match &args.what {
        Inventory::Proxies { file } => (file, ("proxy", "proxies")),
        Inventory::Fingerprints { file } => (file, ("fingerprint", "fingerprints")),
    };
    let bytes = std::fs::read(file).map_err(|e| ConfigError(format!("cannot read {}: {e}", file.display())))?;
    let name = file.display().to_string();
    // Validate before touching the database: a bad file needs no database to be refused.
    let parsed = Parsed::from_file(&args.what, &name, &bytes)?;
    let store = db::open(&settings.database)
        .await
        .with_context(|| format!("failed to open the database {}", settings.database.describe()))?;
    store.migrate().await.context("failed to apply database migrations")?;
    let outcome = match &parsed {
        Parsed::Proxies(file) => store.import_proxies(&file.rows).await,
        Parsed::Fingerprints(file) => store.import_fingerprints(&file.rows).await,
    }
    .with_context(|| format!("failed to store {name} in {}; nothing was imported", store.describe()))?;
    println!("{}", summary(kind, outcome, parsed.placeholder_rows(), file));
    Ok(ExitCode::SUCCESS)
}

enum Parsed {
    Proxies(inventory::ImportFile<db::NewProxy>),
    Fingerprints(inventory::ImportFile<db::NewFingerprint>),
}

impl Parsed {
    fn from_file(what: &Inventory, name: &str, bytes: &[u8]) -> Result<Self, ConfigError> {
        let refused = |e: inventory::ImportError| ConfigError(e.to_string());
        Ok(match what {
            Inventory::Proxies { .. } => Parsed::Proxies(inventory::parse_proxies(name, bytes).map_err(refused)?),
            Inventory::Fingerprints { .. } => {
                Parsed::Fingerprints(inventory::parse_fingerprints(name, bytes).map_err(refused)?)
            }
        })
    }

    fn placeholder_rows(&self) -> &[usize] {
        match self {
            Parsed::Proxies(file) => &file.placeholder_rows,
            Parsed::Fingerprints(file) => &file.placeholder_rows,
        }
    }
}

/// `imported 120 proxies, skipped 3 duplicates` (+ the template's placeholder rows, if any).
/// `kind` is the (singular, plural) noun.
fn summary(kind: (&str, &str), outcome: ImportOutcome, placeholder_rows: &[usize], file: &Path) -> String {
    let mut line = format!(
        "imported {} {}, skipped {} duplicate{}",
        outcome.imported,
        if outcome.imported == 1 { kind.0 } else { kind.1 },
        outcome.duplicates,
        if outcome.duplicates == 1 { "" } else { "s" }
    );
    if !placeholder_rows.is_empty() {
        let rows: Vec<String> = placeholder_rows.iter().map(ToString::to_string).collect();
        line.push_str(&format!(
            ", skipped {} placeholder row{} of the template (row {}: {}) in {}",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" },
            rows.join(", "),
            inventory::TEMPLATE_PLACEHOLDER_URL,
            file.display()
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_what_was_done() {
        let (proxies, fingerprints) = (("proxy", "proxies"), ("fingerprint", "fingerprints"));
        let line = |kind, imported, duplicates, placeholders: &[usize]| {
            summary(kind, ImportOutcome { imported, duplicates }, placeholders, Path::new("p.csv"))
        };
        assert_eq!(line(proxies, 120, 3, &[]), "imported 120 proxies, skipped 3 duplicates");
        assert_eq!(line(fingerprints, 1, 1, &[]), "imported 1 fingerprint, skipped 1 duplicate");
        assert_eq!(line(fingerprints, 0, 0, &[]), "imported 0 fingerprints, skipped 0 duplicates");
        assert_eq!(
            line(proxies, 0, 0, &[2]),
            "imported 0 proxies, skipped 0 duplicates, skipped 1 placeholder row of the template \
             (row 2: http://USER:PASS@HOST:PORT) in p.csv"
        );
    }
}
