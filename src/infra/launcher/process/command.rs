//! What the process launcher starts: the program (`armada agent` by default), where, and with
//! which environment — the seed's agent variables, as the Kubernetes Job gives them to its pods.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;

use crate::infra::launcher::LaunchSpec;
use crate::process::ChildSpec;
use crate::settings::{BrokerSettings, ConfigStoreSettings, Settings, SettingsError};

/// Settings an agent reads for itself that it should share with the server, passed on when set.
const PASSED_ON: &[&str] =
    &["RUST_LOG", "ARMADA_FORWARD_PROXY_PORT", "ARMADA_FORWARD_PROXY_PORTS", "ARMADA_UPSTREAM_CHECK_TIMEOUT_SECS"];

/// How every agent process is started: program and arguments, the folder runs live in, and the
/// variables all agents share (credentials included: `Debug` shows their names only).
#[derive(Clone)]
pub struct AgentCommand {
    program: OsString,
    args: Vec<OsString>,
    work_dir: PathBuf,
    env: Vec<(String, String)>,
}

impl fmt::Debug for AgentCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentCommand")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("work_dir", &self.work_dir)
            .field("env", &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .finish()
    }
}

impl AgentCommand {
    /// Agents are `program args…`, started in `{work_dir}/{run_id}` with `env` plus each agent's
    /// own variables (see [`AgentCommand::child`]). Tests substitute small programs here.
    pub fn new(
        program: impl Into<OsString>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        work_dir: impl Into<PathBuf>,
        env: Vec<(String, String)>,
    ) -> Self {
        let work_dir = work_dir.into();
        let work_dir = std::path::absolute(&work_dir).unwrap_or(work_dir);
        Self { program: program.into(), args: args.into_iter().map(Into::into).collect(), work_dir, env }
    }

    /// `PLATFORM=local`: this very binary's `armada agent`, told where the server's engines and
    /// roles are. `roles` says where the backend, the providers, the token and the database
    /// are, as agents inside this server are told (`agent::worker_env(settings, true)`); it must
    /// hold `BACKEND_URL`.
    ///
    /// An agent process cannot reach a config store or queue that lives inside the server, so
    /// Redis and RabbitMQ must be configured: otherwise this is a settings error naming them.
    pub fn armada_agent(settings: &Settings, roles: Vec<(String, String)>) -> Result<Self, SettingsError> {
        let program = std::env::current_exe().map_err(|e| SettingsError::Unusable {
            key: "PLATFORM".into(),
            message: format!("local: cannot tell which program this is, to start `armada agent` processes: {e}"),
        })?;
        Self::armada_agent_of(program, settings, roles)
    }

    /// [`AgentCommand::armada_agent`] with `program` as the `armada` binary: for callers that
    /// are not that binary themselves (the integration tests run the one cargo built).
    pub fn armada_agent_of(
        program: impl Into<OsString>,
        settings: &Settings,
        roles: Vec<(String, String)>,
    ) -> Result<Self, SettingsError> {
        let env = shared_env(settings, roles)?;
        Ok(Self::new(program, ["agent"], &settings.work_dir, env))
    }

    pub fn program(&self) -> &OsString {
        &self.program
    }

    /// `{work_dir}/{run_id}`: the run's agents start there, write their logs there
    /// (`agent-{i}.log`) and make their working directories there (`agent-{i}/`).
    pub fn run_dir(&self, spec: &LaunchSpec) -> PathBuf {
        self.work_dir.join(spec.run_id.to_string())
    }

    /// Agent `pod_index` of the run: the shared variables, then `RUN_ID`, `POD_INDEX`,
    /// `REQUIREMENTS_TXT` (base64, empty when the project has none) and `ARMADA_WORK_DIR`.
    pub fn child(&self, spec: &LaunchSpec, pod_index: usize) -> ChildSpec {
        let requirements = spec.requirements_txt.as_deref().unwrap_or_default();
        let own = [
            ("RUN_ID", spec.run_id.to_string()),
            ("POD_INDEX", pod_index.to_string()),
            ("REQUIREMENTS_TXT", base64::engine::general_purpose::STANDARD.encode(requirements)),
            ("ARMADA_WORK_DIR", self.work_dir.display().to_string()),
        ];
        let shared = self.env.iter().map(|(name, value)| (name.as_str(), value.clone()));
        shared
            .chain(own)
            .fold(ChildSpec::new(&self.program, self.run_dir(spec)).args(&self.args), |child, (name, value)| {
                child.env(name, value)
            })
    }
}

/// The variables every agent process of this server gets: Redis (`REDIS_HOST_VAR_ENV`,
/// `REDIS_PORT_VAR_ENV`, the seed's agent names, and `REDIS_URL`, which carries a password,
/// database or TLS the pair cannot), `RABBITMQ_URL`, `roles` (`BACKEND_URL`, the providers,
/// `ARMADA_TOKEN`, `SQL_SERVER_*` or `ARMADA_SQLITE_PATH`), the agent settings in
/// [`PASSED_ON`], and `NO_COLOR` (their logs are read as text).
fn shared_env(settings: &Settings, roles: Vec<(String, String)>) -> Result<Vec<(String, String)>, SettingsError> {
    let mut missing = Vec::new();
    let mut env = Vec::new();
    match &settings.config_store {
        ConfigStoreSettings::Redis { url, host, port } => env.extend([
            ("REDIS_HOST_VAR_ENV".to_string(), host.clone()),
            ("REDIS_PORT_VAR_ENV".to_string(), port.to_string()),
            ("REDIS_URL".to_string(), url.expose().to_string()),
        ]),
        ConfigStoreSettings::InProcess => missing.push("REDIS_HOST/REDIS_PORT (or REDIS_URL)"),
    }
    match &settings.broker {
        BrokerSettings::Amqp { url } => env.push(("RABBITMQ_URL".into(), url.expose().to_string())),
        BrokerSettings::InProcess => missing.push("RABBITMQ_URL"),
    }
    if !missing.is_empty() {
        return Err(SettingsError::Unusable {
            key: "PLATFORM".into(),
            message: format!(
                "local starts agents as separate `armada agent` processes, which cannot reach this server's \
                 in-process config store and job queue: set {} (or unset PLATFORM to run agents inside the server)",
                missing.join(" and ")
            ),
        });
    }
    if !roles.iter().any(|(name, _)| name == "BACKEND_URL") {
        return Err(SettingsError::Unusable {
            key: "BACKEND_URL".into(),
            message: "not set, and this server listens on no fixed port: PLATFORM=local agent processes record \
                      their jobs at BACKEND_URL; set it, or listen on a fixed port (--listen)"
                .into(),
        });
    }
    env.extend(roles);
    for name in PASSED_ON {
        if let Some(value) = settings.vars.get(name) {
            env.push(((*name).to_string(), value.to_string()));
        }
    }
    env.push(("NO_COLOR".into(), "1".into()));
    Ok(env)
}

/// `{run_dir}/agent-{i}.log`: everything agent `i` printed.
pub fn log_path(run_dir: &Path, pod_index: usize) -> PathBuf {
    run_dir.join(format!("agent-{pod_index}.log"))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use uuid::Uuid;

    use super::*;
    use crate::settings::Vars;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let listen = Some(SocketAddr::from(([127, 0, 0, 1], 8080)));
        Settings::from_vars(Vars::from_pairs(pairs.iter().copied()), Vec::new(), listen).unwrap()
    }

    fn roles() -> Vec<(String, String)> {
        vec![("BACKEND_URL".into(), "http://127.0.0.1:8080".into()), ("ARMADA_TOKEN".into(), "t0k".into())]
    }

    #[test]
    fn agents_get_the_seed_variables_their_own_index_and_the_roles() {
        let s = settings(&[
            ("REDIS_HOST", "10.0.0.5"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "pw"),
            ("RABBITMQ_URL", "amqp://u:p@rabbit:5672/%2f"),
            ("ARMADA_WORK_DIR", "/srv/armada-work"),
            ("RUST_LOG", "debug"),
            ("SOMETHING_ELSE", "not passed on"),
        ]);
        let command = AgentCommand::armada_agent(&s, roles()).unwrap();
        let mut spec = LaunchSpec::new(Uuid::nil(), 2);
        spec.requirements_txt = Some("requests\n".into());
        let debug = format!("{:?}", command.child(&spec, 1));
        for name in ["REDIS_HOST_VAR_ENV", "RUN_ID", "POD_INDEX", "BACKEND_URL", "ARMADA_TOKEN", "RUST_LOG"] {
            assert!(debug.contains(name), "{name} missing from {debug}");
        }
        assert!(!debug.contains("pw") && !debug.contains("t0k") && !debug.contains("u:p"), "values shown: {debug}");
        assert!(!debug.contains("SOMETHING_ELSE"), "{debug}");
        assert!(debug.contains(r#"args: ["agent"]"#), "{debug}");
        assert!(debug.contains(&format!("/srv/armada-work/{}", Uuid::nil())), "started in the run's folder: {debug}");

        let env: std::collections::HashMap<&str, &str> =
            command.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(env["REDIS_HOST_VAR_ENV"], "10.0.0.5");
        assert_eq!(env["REDIS_PORT_VAR_ENV"], "6380");
        assert_eq!(env["REDIS_URL"], "redis://:pw@10.0.0.5:6380", "the password travels in the URL");
        assert_eq!(env["RABBITMQ_URL"], "amqp://u:p@rabbit:5672/%2f");
        assert_eq!(env["NO_COLOR"], "1");
    }

    #[test]
    fn embedded_engines_are_a_settings_error_naming_what_to_set() {
        let err = AgentCommand::armada_agent(&settings(&[("PLATFORM", "local")]), roles()).unwrap_err().to_string();
        assert!(err.starts_with("PLATFORM: local starts agents as separate `armada agent` processes"), "{err}");
        assert!(err.contains("set REDIS_HOST/REDIS_PORT (or REDIS_URL) and RABBITMQ_URL"), "{err}");
        let err =
            AgentCommand::armada_agent(&settings(&[("REDIS_URL", "redis://r:6379")]), roles()).unwrap_err().to_string();
        assert!(err.contains("set RABBITMQ_URL (or unset PLATFORM"), "{err}");
    }

    #[test]
    fn without_a_backend_url_the_error_says_how_to_give_one() {
        let s = settings(&[("REDIS_URL", "redis://r:6379"), ("RABBITMQ_URL", "amqp://r")]);
        let err = AgentCommand::armada_agent(&s, Vec::new()).unwrap_err().to_string();
        assert!(err.starts_with("BACKEND_URL: not set") && err.contains("--listen"), "{err}");
    }
}
