//! `armada agent`: one agent as a process, as a Kubernetes pod or the local process launcher
//! starts it. Everything comes from the environment, with the seed's names: `RUN_ID`,
//! `POD_INDEX` (else `JOB_COMPLETION_INDEX`), the config store (`REDIS_URL`, else the seed's
//! `REDIS_HOST_VAR_ENV` / `REDIS_PORT_VAR_ENV`, else `REDIS_HOST`/`REDIS_PORT`), `RABBITMQ_URL`,
//! `BACKEND_URL` (with `ARMADA_TOKEN`), `REQUIREMENTS_TXT` (base64), `ARMADA_WORK_DIR`.
//! SIGTERM stops it gracefully. Exit code 0 when the queue ended or it was stopped, 1 on a
//! failure, 2 on a configuration error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use clap::Args;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::ConfigError;
use crate::agent::network::NetworkDeps;
use crate::agent::{AgentDeps, AgentOptions, run_agent, worker_env};
use crate::clients::{BackendClient, HttpBackend};
use crate::infra::{broker, config_store};
use crate::settings::{BrokerSettings, ConfigStoreSettings, LogFormat, Secret, Settings, Vars};

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Where working directories are created (`{DIR}/{run_id}/agent-{i}`). Default
    /// `ARMADA_WORK_DIR`, else `armada-agents` in the system's temporary folder.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
}

/// What `armada agent` needs that the server's settings do not say.
#[derive(Debug)]
struct AgentSetup {
    run_id: Uuid,
    pod_index: usize,
    config_store: ConfigStoreSettings,
    backend_url: String,
    requirements_txt: Option<String>,
}

fn setup(settings: &Settings) -> Result<AgentSetup, ConfigError> {
    let vars = &settings.vars;
    let run_id = vars.get("RUN_ID").ok_or_else(|| {
        ConfigError("RUN_ID is not set: armada agent runs one agent of a run; set RUN_ID and POD_INDEX".into())
    })?;
    let run_id = Uuid::parse_str(run_id).map_err(|e| ConfigError(format!("RUN_ID={run_id:?} is not a uuid: {e}")))?;
    let (name, index) = match (vars.get("POD_INDEX"), vars.get("JOB_COMPLETION_INDEX")) {
        (Some(index), _) => ("POD_INDEX", index),
        (None, Some(index)) => ("JOB_COMPLETION_INDEX", index),
        (None, None) => {
            return Err(ConfigError(
                "POD_INDEX (or JOB_COMPLETION_INDEX) is not set: which agent of the run is this?".into(),
            ));
        }
    };
    let pod_index =
        index.parse().map_err(|_| ConfigError(format!("{name}={index:?} is not an agent index (0, 1, 2…)")))?;

    // A URL says all (password, database, TLS); the seed's pair is how pods are told.
    let config_store = match vars.get("REDIS_URL") {
        Some(_) => settings.config_store.clone(),
        None => seed_redis(vars).unwrap_or_else(|| settings.config_store.clone()),
    };
    let mut missing = Vec::new();
    if config_store == ConfigStoreSettings::InProcess {
        missing.push("the config store (REDIS_HOST/REDIS_PORT, REDIS_URL, or REDIS_HOST_VAR_ENV/REDIS_PORT_VAR_ENV)");
    }
    if settings.broker == BrokerSettings::InProcess {
        missing.push("the job queue (RABBITMQ_URL)");
    }
    if !missing.is_empty() {
        return Err(ConfigError(format!(
            "armada agent needs {}. Without Redis and RabbitMQ the server keeps its config store and job queue in its own \
             process, and a separate agent process cannot reach an in-process queue: such runs use in-process agents \
             (leave PLATFORM unset), or run the server with Redis and RabbitMQ for agent processes",
            missing.join(" and ")
        )));
    }
    let backend_url = settings
        .backend_url
        .clone()
        .ok_or_else(|| ConfigError("BACKEND_URL is not set: where should the agent record jobs and events?".into()))?;
    let requirements_txt = match vars.get("REQUIREMENTS_TXT") {
        None => None,
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| ConfigError(format!("REQUIREMENTS_TXT is not base64: {e}")))?;
            Some(String::from_utf8(bytes).map_err(|_| ConfigError("REQUIREMENTS_TXT is not UTF-8 text".into()))?)
        }
    };
    Ok(AgentSetup { run_id, pod_index, config_store, backend_url, requirements_txt })
}

/// The seed's agent variables, `REDIS_HOST_VAR_ENV` and `REDIS_PORT_VAR_ENV`, when set.
fn seed_redis(vars: &Vars) -> Option<ConfigStoreSettings> {
    let host = vars.get("REDIS_HOST_VAR_ENV");
    let port = vars.get("REDIS_PORT_VAR_ENV");
    if host.is_none() && port.is_none() {
        return None;
    }
    let host = host.unwrap_or("127.0.0.1").to_string();
    let port: u16 = port.and_then(|p| p.parse().ok()).unwrap_or(6379);
    let url = match vars.get("REDIS_PASSWORD") {
        Some(password) => format!("redis://:{password}@{host}:{port}"),
        None => format!("redis://{host}:{port}"),
    };
    Some(ConfigStoreSettings::Redis { url: Secret::new(url), host, port })
}

pub async fn run(args: AgentArgs, log_format: Option<LogFormat>) -> anyhow::Result<ExitCode> {
    let settings = super::load_settings(Vec::new(), None, log_format)?;
    let setup = setup(&settings)?;
    let config_store = config_store::open(&setup.config_store)
        .await
        .with_context(|| format!("failed to connect to the config store ({:?})", redacted(&setup.config_store)))?;
    let broker = broker::open_for_agent(&settings.broker).await.context("failed to open the job queue")?;
    let backend: Arc<dyn BackendClient> = Arc::new(
        HttpBackend::new(&setup.backend_url, settings.token.clone()).context("failed to set up the backend client")?,
    );
    let work_root = args
        .work_dir
        .or_else(|| settings.vars.get("ARMADA_WORK_DIR").map(PathBuf::from))
        .unwrap_or_else(|| std::env::temp_dir().join("armada-agents"));
    let deps = AgentDeps {
        config_store,
        broker,
        backend,
        work_root,
        worker_env: worker_env(&settings, false),
        requirements_txt: setup.requirements_txt,
        network: NetworkDeps::from_settings(&settings).context("failed to set up the providers' clients")?,
        options: AgentOptions::default(),
    };

    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        super::shutdown_signal().await;
        tracing::info!("stop signal received; finishing the current job");
        stop.cancel();
    });
    tracing::info!(run_id = %setup.run_id, pod_index = setup.pod_index, "agent starting");
    let report = run_agent(deps, setup.run_id, setup.pod_index, cancel, None)
        .await
        .with_context(|| format!("agent {} of run {} failed", setup.pod_index, setup.run_id))?;
    if let Some(path) = &report.spool_left {
        anyhow::bail!("the backend stayed unreachable; undelivered records are kept in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn redacted(settings: &ConfigStoreSettings) -> String {
    match settings {
        ConfigStoreSettings::InProcess => "in-process".into(),
        ConfigStoreSettings::Redis { host, port, .. } => format!("redis at {host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        Settings::from_vars(Vars::from_pairs(pairs.iter().copied()), Vec::new(), None).unwrap()
    }

    const RUN: &str = "6b2c1e0a-0d4a-4b8e-9a1f-2c3d4e5f6a7b";

    #[test]
    fn seed_variables_name_the_run_the_agent_and_redis() {
        let s = settings(&[
            ("RUN_ID", RUN),
            ("JOB_COMPLETION_INDEX", "4"),
            ("REDIS_HOST_VAR_ENV", "redis.internal"),
            ("RABBITMQ_URL", "amqp://guest:guest@rabbit:5672/%2f"),
            ("BACKEND_URL", "http://backend:8000"),
            ("REQUIREMENTS_TXT", "cmVxdWVzdHMK"),
        ]);
        let setup = setup(&s).unwrap();
        assert_eq!((setup.run_id.to_string().as_str(), setup.pod_index), (RUN, 4));
        assert!(
            matches!(setup.config_store, ConfigStoreSettings::Redis { ref host, port: 6379, .. } if host == "redis.internal")
        );
        assert_eq!(setup.requirements_txt.as_deref(), Some("requests\n"));
    }

    #[test]
    fn redis_url_wins_over_the_seed_pair_as_it_carries_the_password() {
        let s = settings(&[
            ("RUN_ID", RUN),
            ("POD_INDEX", "0"),
            ("REDIS_HOST_VAR_ENV", "10.0.0.5"),
            ("REDIS_PORT_VAR_ENV", "6380"),
            ("REDIS_URL", "redis://:pw@10.0.0.5:6380/2"),
            ("RABBITMQ_URL", "amqp://rabbit"),
            ("BACKEND_URL", "http://backend:8000"),
        ]);
        match setup(&s).unwrap().config_store {
            ConfigStoreSettings::Redis { url, .. } => assert_eq!(url.expose(), "redis://:pw@10.0.0.5:6380/2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn without_redis_and_rabbitmq_the_error_explains_why() {
        let err = setup(&settings(&[("RUN_ID", RUN), ("POD_INDEX", "0"), ("BACKEND_URL", "http://b")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("RABBITMQ_URL") && text.contains("REDIS_HOST"), "{text}");
        assert!(text.contains("cannot reach an in-process queue"), "{text}");
        let err = setup(&settings(&[("POD_INDEX", "0")])).unwrap_err();
        assert!(err.to_string().starts_with("RUN_ID is not set"), "{err}");
    }
}
