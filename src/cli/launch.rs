//! `armada launch DIR`: the dashboard's Launch from a terminal. The project is read and
//! validated here first, by the very function the server runs (`roles::orchestrator::prepare`,
//! on the same parts), so a bad project fails with the server's message before anything is
//! sent; then it goes up as one `project` archive (plus `tune` or `configtune`, and `run_uuid`),
//! and `--follow` follows the run to its end.
//!
//! Exit codes: 0 every job succeeded (or `--no-follow` and the run started), 1 a job `Failed`
//! or the run failed or was cancelled, 2 a configuration error (bad project, flag or token),
//! 3 the server could not be reached.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use uuid::Uuid;

use super::ConfigError;
use super::client::{ApiClient, ServerArgs, ServerError, UPLOAD_TIMEOUT};
use super::display::plural;
use crate::project::{Project, ProjectError, TuneKind};
use crate::roles::orchestrator::{
    OrchestratorSettings, PreparedRun, Started, Upload, parse_run_uuid, parse_tune, prepare,
};
use crate::settings::{LogFormat, Settings};

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The project folder (the one that holds config/config_template.json), or a .zip / .tar.gz
    /// of it.
    dir: PathBuf,

    #[command(flatten)]
    server: ServerArgs,

    /// The values for the $env_ placeholders: `local` (config/config_local.json), `distant`
    /// (config/config_distant.json), or a JSON FILE. Default: the server's choice (distant when
    /// its agents run on Kubernetes, local otherwise); checked here with the local one.
    #[arg(long, value_name = "local|distant|FILE")]
    tune: Option<String>,

    /// Follow the run live until it ends: a progress bar, then a summary (the default when
    /// standard output is a terminal).
    #[arg(long, overrides_with = "no_follow")]
    follow: bool,

    /// Print the run id and return as soon as the run has started.
    #[arg(long, overrides_with = "follow")]
    no_follow: bool,

    /// The run's id: a UUID no run has yet. Default: a new one.
    #[arg(long, value_name = "UUID")]
    run_id: Option<String>,

    /// How long to wait for the server to answer (it may still be starting) before giving up
    /// with exit code 3.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    wait: f64,
}

/// The tune as it travels: the `tune` part, or a file as the `configtune` part.
enum TuneChoice {
    ServerDefault,
    Kind(TuneKind),
    File { name: String, bytes: Vec<u8> },
}

pub async fn run(args: LaunchArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    crate::observability::init_logging_at(log_format.unwrap_or_default(), "warn");
    let client = ApiClient::from_args(&args.server)?;
    let follow = if args.no_follow { false } else { args.follow || std::io::stdout().is_terminal() };
    if !args.wait.is_finite() || args.wait < 0.0 {
        return Err(ConfigError(format!("--wait {}: expected a number of seconds, 0 or more", args.wait)).into());
    }
    let run_id = match &args.run_id {
        Some(raw) => parse_run_uuid(raw.trim()).map_err(|e| ConfigError(format!("--run-id: {}", e.detail)))?,
        None => None,
    }
    .unwrap_or_else(Uuid::new_v4);
    let tune = tune_choice(args.tune.as_deref())?;

    let project =
        tokio::task::block_in_place(|| Project::from_path(&args.dir, crate::project::ProjectLimits::default()))
            .map_err(|e| project_error(&args.dir, e))?;
    let archive = project.to_bundle().context("cannot pack the project")?;
    let archive_name = format!("{}.tar.gz", project_name(&args.dir));
    let prepared = tokio::task::block_in_place(|| validate(&archive_name, &archive.bytes, &tune, run_id))?;
    let (agents, jobs) = (prepared.settings.number_of_agents, prepared.settings.number_of_jobs);
    drop(prepared);

    client
        .wait_until_up(Duration::from_secs_f64(args.wait), || {
            eprintln!("armada: waiting for the server at {} …", client.base_url());
        })
        .await?;
    let mut form = Form::new()
        .part(
            "project",
            Part::bytes(archive.bytes.to_vec())
                .file_name(archive_name)
                .mime_str("application/gzip")
                .context("cannot build the upload")?,
        )
        .text("run_uuid", run_id.to_string());
    form = match &tune {
        TuneChoice::ServerDefault => form,
        TuneChoice::Kind(kind) => form.text("tune", if *kind == TuneKind::Distant { "distant" } else { "local" }),
        TuneChoice::File { name, bytes } => form.part("configtune", Part::bytes(bytes.clone()).file_name(name.clone())),
    };
    let request = client.request(Method::POST, "/bot/start").multipart(form).timeout(UPLOAD_TIMEOUT);
    let started: Started = match client.send(request).await {
        Ok(response) => client.decode(response, "/bot/start").await?,
        Err(error) => return Err(start_refused(error)),
    };
    let run_id = started.run_uuid;

    let what = format!("{}, {}", plural(agents as u64, "agent"), plural(jobs as u64, "job"));
    if !follow {
        println!("{run_id}");
        let flag = client.server_flag();
        eprintln!(
            "armada: run {run_id} started: {what} ({}); follow it: armada runs follow {run_id}{flag}",
            args.dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("run {run_id} started: {what} ({} on {})", args.dir.display(), client.base_url());
    super::follow::follow(&client, run_id).await
}

/// `--tune`: `local`, `distant` (the server's own words and errors), else a file to upload.
fn tune_choice(raw: Option<&str>) -> anyhow::Result<TuneChoice> {
    let Some(raw) = raw.map(str::trim).filter(|raw| !raw.is_empty()) else {
        return Ok(TuneChoice::ServerDefault);
    };
    if matches!(raw.to_ascii_lowercase().as_str(), "local" | "distant") {
        let kind = parse_tune(raw).map_err(|e| ConfigError(e.detail))?;
        return Ok(kind.map_or(TuneChoice::ServerDefault, TuneChoice::Kind));
    }
    let path = Path::new(raw);
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError(format!("--tune {raw}: not `local`, `distant` or a readable JSON file ({e})")))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "config_tune.json".into());
    Ok(TuneChoice::File { name, bytes })
}

/// The server's own validation on the parts about to be sent. Without `--tune` the server picks
/// its default tune; this checks with the local one, the embedded server's default.
fn validate(
    archive_name: &str,
    archive: &bytes::Bytes,
    tune: &TuneChoice,
    run_id: Uuid,
) -> anyhow::Result<PreparedRun> {
    let mut upload = Upload::default();
    upload.parts.project = Some((archive_name.to_owned(), archive.clone()));
    match tune {
        TuneChoice::ServerDefault => {}
        TuneChoice::Kind(kind) => upload.tune = Some(kind.clone()),
        TuneChoice::File { name, bytes } => upload.parts.configtune = Some((name.clone(), bytes.clone().into())),
    }
    upload.run_uuid = Some(run_id);
    let settings = OrchestratorSettings::from_settings(&Settings::embedded(Path::new("unused.db")));
    prepare(upload, &settings).map_err(|error| ConfigError(error.detail).into())
}

/// Reading the folder failed: the project's fault (exit 2), or the disk's.
fn project_error(dir: &Path, error: ProjectError) -> anyhow::Error {
    match error {
        ProjectError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            ConfigError(format!("{}: no such project folder or archive", dir.display())).into()
        }
        error if error.is_input_error() => ConfigError(error.to_string()).into(),
        error => anyhow::Error::new(error).context(format!("cannot read the project {}", dir.display())),
    }
}

/// `hello` for `examples/hello/` (or `hello.zip`): the archive's name on the server.
fn project_name(dir: &Path) -> String {
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "project".into());
    let stem = name.split('.').next().unwrap_or_default();
    if stem.is_empty() { "project".into() } else { stem.to_owned() }
}

/// The server refused the start: its 4xx are the user's to fix (exit 2); anything else stays.
fn start_refused(error: anyhow::Error) -> anyhow::Error {
    match error.downcast::<ServerError>() {
        Ok(refused) if refused.status.is_client_error() && refused.status != StatusCode::NOT_FOUND => {
            ConfigError(format!("the server refused the project: {}", refused.detail)).into()
        }
        Ok(other) => anyhow::Error::new(other).context("the server could not start the run"),
        Err(error) => error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tune_is_a_kind_or_a_file() {
        assert!(matches!(tune_choice(None).expect("ok"), TuneChoice::ServerDefault));
        assert!(matches!(tune_choice(Some("Distant")).expect("ok"), TuneChoice::Kind(TuneKind::Distant)));
        let missing = tune_choice(Some("no/such/tune.json")).err().expect("refused");
        assert!(missing.is::<ConfigError>() && missing.to_string().starts_with("--tune no/such/tune.json: not"));
    }

    #[test]
    fn project_names_drop_folders_and_extensions() {
        let dir = tempfile::tempdir().expect("dir");
        let hello = dir.path().join("hello");
        std::fs::create_dir(&hello).expect("mkdir");
        assert_eq!(project_name(&hello), "hello");
        assert_eq!(project_name(&dir.path().join("hello/.")), "hello");
        assert_eq!(project_name(Path::new("/no/such/hello.tar.gz")), "project");
    }
}
