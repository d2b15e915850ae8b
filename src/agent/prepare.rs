//! Getting an agent ready to run jobs: its message and run config from the config store, the
//! project bundle (size cap and sha256 checked before unpacking) in a fresh working directory,
//! the Python helper, a virtualenv with `requirements.txt` when the project has one, and the
//! worker's command and environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use super::network::PreparedNetwork;
use super::worker::{DEFAULT_WORKER_COMMAND, InitContext, WorkerSpec, materialize_python_helper};
use super::{AgentDeps, AgentError};
use crate::infra::config_store::{ConfigStoreError, agent_key};
use crate::model::{AGENT_RUN_CONFIG_KEY, AgentRunConfig};
use crate::process::ChildSpec;
use crate::project::{Bundle, REQUIREMENTS_PATH};

/// How long `pip install` may take.
const PIP_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Lines of pip's output quoted when it fails.
const PIP_TAIL_LINES: usize = 15;

/// An agent ready to start its worker.
pub struct Prepared {
    pub workdir: PathBuf,
    pub config: AgentRunConfig,
    pub spec: WorkerSpec,
}

/// The agent's message, retried while it is not there yet (an agent may start before the
/// orchestrator finished storing) or the store is briefly unreachable.
pub async fn fetch_agent_message(deps: &AgentDeps, run_id: Uuid, index: usize) -> Result<Value, AgentError> {
    let key = agent_key(run_id, index);
    let deadline = tokio::time::Instant::now() + deps.options.message_wait;
    let mut delay = Duration::from_millis(50);
    loop {
        let last = match deps.config_store.get_agent_message(run_id, index).await {
            Ok(Some(message)) => return Ok(message),
            Ok(None) => None,
            Err(ConfigStoreError::Unavailable(reason)) => Some(reason),
            Err(other) => return Err(AgentError::ConfigStore(other.to_string())),
        };
        if tokio::time::Instant::now() + delay > deadline {
            return Err(match last {
                None => AgentError::MessageMissing {
                    key,
                    store: deps.config_store.describe(),
                    waited: deps.options.message_wait,
                },
                Some(reason) => AgentError::ConfigStore(reason),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Splits the agent message into what the worker sees and the run config.
pub fn split_message(mut message: Value) -> Result<(Value, AgentRunConfig), AgentError> {
    let config = match AgentRunConfig::from_agent_message(&message) {
        Some(Ok(config)) => config,
        Some(Err(reason)) => return Err(AgentError::Config(reason)),
        None => {
            return Err(AgentError::Config(format!(
                "the agent message has no `{AGENT_RUN_CONFIG_KEY}` run config; it was not stored by an armada orchestrator"
            )));
        }
    };
    if let Some(map) = message.as_object_mut() {
        map.remove(AGENT_RUN_CONFIG_KEY);
    }
    Ok((message, config))
}

/// `{work_root}/{run_id}/agent-{i}`, or `agent-{i}.2`, `.3`… when that exists already.
/// Always absolute (a relative `work_root` is taken from the current directory), because the
/// worker runs inside it and paths handed to it (`PYTHONPATH`, the socket) must not depend on
/// its own working directory.
pub fn fresh_workdir(work_root: &Path, run_id: Uuid, index: usize) -> Result<PathBuf, AgentError> {
    let io = |path: &Path| {
        let shown = path.display().to_string();
        move |source| AgentError::Io { what: format!("cannot create the working directory {shown}"), source }
    };
    let work_root = std::path::absolute(work_root).map_err(io(work_root))?;
    let parent = work_root.join(run_id.to_string());
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    let base = crate::model::agent_name(index);
    for n in 1u32.. {
        let name = if n == 1 { base.clone() } else { format!("{base}.{n}") };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(&dir)(e)),
        }
    }
    unreachable!("u32 ran out of working directory names")
}

/// Fetches, verifies and unpacks the run's bundle into `workdir` (when the run has one).
pub async fn unpack_bundle(
    deps: &AgentDeps,
    run_id: Uuid,
    config: &AgentRunConfig,
    workdir: &Path,
) -> Result<(), AgentError> {
    let Some(sha256) = config.bundle_sha256.clone() else { return Ok(()) };
    let bytes =
        deps.config_store.get_bundle(run_id).await.map_err(|e| AgentError::ConfigStore(e.to_string()))?.ok_or_else(
            || {
                AgentError::Bundle(format!(
                    "run {run_id} has no project bundle in {} (expired?)",
                    deps.config_store.describe()
                ))
            },
        )?;
    if let Some(size) = config.bundle_size
        && size != bytes.len() as u64
    {
        return Err(AgentError::Bundle(format!("the bundle is {} bytes, the run says {size}", bytes.len())));
    }
    let limits = deps.options.limits;
    let workdir = workdir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let project = Bundle::verify(&bytes, &sha256, limits).map_err(|e| AgentError::Bundle(e.to_string()))?;
        project.write_to(&workdir).map_err(|e| AgentError::Bundle(e.to_string()))
    })
    .await
    .map_err(|e| AgentError::Bundle(format!("unpacking failed: {e}")))?
}

/// Everything up to a worker spec: workdir, bundle, helper, virtualenv; the worker's init
/// context gets the local proxy and the fingerprint of `network`.
pub async fn prepare(
    deps: &AgentDeps,
    run_id: Uuid,
    index: usize,
    worker_message: Value,
    config: AgentRunConfig,
    network: &PreparedNetwork,
) -> Result<Prepared, AgentError> {
    let workdir = fresh_workdir(&deps.work_root, run_id, index)?;
    unpack_bundle(deps, run_id, &config, &workdir).await?;
    let private = workdir.join(".armada");
    let helper = materialize_python_helper(&private.join("python"))
        .map_err(|source| AgentError::Io { what: "cannot write the Python helper".into(), source })?;

    let mut command: Vec<String> = match &config.worker_command {
        Some(command) => command.clone(),
        None => DEFAULT_WORKER_COMMAND.map(String::from).to_vec(),
    };
    // The orchestrator refuses an empty command; a hand-written agent message may still hold one.
    if command.first().is_none_or(|program| program.trim().is_empty()) {
        return Err(AgentError::Config("worker_command is empty: give the program to start".into()));
    }
    let requirements = requirements_file(deps, &workdir, &private)?;
    let mut env = deps.worker_env.clone();
    if let Some(requirements) = requirements {
        let python = if is_python(&command[0]) { command[0].clone() } else { "python3".to_string() };
        let venv = install_requirements(&workdir, &private.join("venv"), &python, &requirements).await?;
        let bin = venv.join("bin");
        if is_python(&command[0]) {
            command[0] = bin.join("python").display().to_string();
        }
        let path = std::env::var("PATH").unwrap_or_default();
        env.push(("PATH".into(), format!("{}:{path}", bin.display())));
        env.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
    }

    let context = InitContext {
        run_id,
        pod_index: index as u32,
        proxy_url: network.proxy_url.clone(),
        fingerprint: network.fingerprint.clone(),
    };
    let mut spec = WorkerSpec::new(command, &workdir, worker_message, context);
    for (name, value) in env {
        spec = spec.env(name, value);
    }
    let mut spec = spec.with_python_helper(&helper);
    spec.connect_timeout = deps.options.connect_timeout;
    spec.init_timeout = deps.options.init_timeout;
    Ok(Prepared { workdir, config, spec })
}

fn is_python(program: &str) -> bool {
    let name = Path::new(program).file_name().and_then(|n| n.to_str()).unwrap_or(program);
    name == "python" || name.starts_with("python3")
}

/// The project's `requirements.txt`, else `REQUIREMENTS_TXT` written beside it; `None` = none.
fn requirements_file(deps: &AgentDeps, workdir: &Path, private: &Path) -> Result<Option<PathBuf>, AgentError> {
    let in_project = workdir.join(REQUIREMENTS_PATH);
    if in_project.is_file() {
        return Ok(Some(in_project));
    }
    let Some(text) = deps.requirements_txt.as_deref().filter(|t| !t.trim().is_empty()) else { return Ok(None) };
    let path = private.join("requirements.txt");
    std::fs::write(&path, text)
        .map_err(|source| AgentError::Io { what: format!("cannot write {}", path.display()), source })?;
    Ok(Some(path))
}

/// `python -m venv VENV` then `VENV/bin/python -m pip install -r REQUIREMENTS`; returns VENV.
async fn install_requirements(
    workdir: &Path,
    venv: &Path,
    python: &str,
    requirements: &Path,
) -> Result<PathBuf, AgentError> {
    tracing::info!(requirements = %requirements.display(), venv = %venv.display(), "installing requirements");
    let venv_arg = venv.display().to_string();
    run_step(ChildSpec::new(python, workdir).args(["-m", "venv", venv_arg.as_str()]), "creating the virtualenv")
        .await?;
    let venv_python = venv.join("bin/python").display().to_string();
    let requirements_arg = requirements.display().to_string();
    let pip = ChildSpec::new(venv_python, workdir)
        .args(["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-r", requirements_arg.as_str()])
        .env("PIP_NO_INPUT", "1");
    run_step(pip, "pip install -r requirements.txt").await?;
    Ok(venv.to_path_buf())
}

/// Runs a preparation step to its end; a failure carries the last lines it printed.
async fn run_step(spec: ChildSpec, step: &'static str) -> Result<(), AgentError> {
    let failed = |tail: Vec<String>, status: String| AgentError::Requirements { step, status, tail };
    let mut child = spec.spawn().map_err(|e| failed(Vec::new(), format!("could not start: {e}")))?;
    let mut stdout = child.take_stdout();
    let mut stderr = child.take_stderr();
    let read_all = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let read_out = async {
            if let Some(pipe) = stdout.as_mut() {
                let _ = pipe.read_to_end(&mut out).await;
            }
        };
        let read_err = async {
            if let Some(pipe) = stderr.as_mut() {
                let _ = pipe.read_to_end(&mut err).await;
            }
        };
        tokio::join!(read_out, read_err);
        let status = child.wait().await;
        (out, err, status)
    };
    let Ok((out, err, status)) = tokio::time::timeout(PIP_TIMEOUT, read_all).await else {
        return Err(failed(Vec::new(), format!("did not finish within {} minutes", PIP_TIMEOUT.as_secs() / 60)));
    };
    let status = status.map_err(|e| failed(Vec::new(), format!("could not be waited for: {e}")))?;
    if status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out), String::from_utf8_lossy(&err));
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(String::from).collect();
    let tail = lines[lines.len().saturating_sub(PIP_TAIL_LINES)..].to_vec();
    Err(failed(tail, status.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_are_fresh_even_when_the_name_is_taken() {
        let root = tempfile::tempdir().unwrap();
        let run = Uuid::new_v4();
        let first = fresh_workdir(root.path(), run, 3).unwrap();
        let second = fresh_workdir(root.path(), run, 3).unwrap();
        assert_eq!(first, root.path().join(run.to_string()).join("agent-3"));
        assert_eq!(second, root.path().join(run.to_string()).join("agent-3.2"));
    }

    #[test]
    fn workdirs_are_absolute_when_the_root_is_relative() {
        let root = tempfile::tempdir().unwrap();
        let cwd = std::env::current_dir().unwrap();
        // The same temporary folder, spelled relative to the current directory.
        let mut relative = PathBuf::new();
        for _ in cwd.components().skip(1) {
            relative.push("..");
        }
        relative.push(root.path().strip_prefix("/").unwrap());
        assert!(relative.is_relative());
        let run = Uuid::new_v4();
        let dir = fresh_workdir(&relative, run, 0).unwrap();
        assert!(dir.is_absolute(), "{}", dir.display());
        assert!(dir.ends_with(format!("{run}/agent-0")));
        assert!(dir.is_dir());
    }

    #[test]
    fn the_run_config_is_taken_out_of_what_the_worker_sees() {
        let message = serde_json::json!({"greeting": "hi", "_armada": {
            "job_timeout_secs": 5, "max_attempts": 2, "worker_command": null, "bundle_sha256": null,
            "bundle_size": null, "has_requirements": false, "number_of_agents": 1, "number_of_jobs": 1}});
        let (worker, config) = split_message(message).unwrap();
        assert_eq!(worker, serde_json::json!({"greeting": "hi"}));
        assert_eq!((config.job_timeout_secs, config.max_attempts), (5, 2));
        let err = split_message(serde_json::json!({"greeting": "hi"})).unwrap_err();
        assert!(err.to_string().contains("_armada"), "{err}");
    }

    #[test]
    fn python_programs_are_recognised() {
        assert!(is_python("python3") && is_python("/usr/bin/python3.11") && is_python("python"));
        assert!(!is_python("node") && !is_python("pythonista"));
    }
}
