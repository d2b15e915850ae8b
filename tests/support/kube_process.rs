//! Pods of the stand-in API server played by real processes, one per completion index, with
//! the environment Kubernetes would give the container (`POD_INDEX` from the completion-index
//! annotation, `JOB_COMPLETION_INDEX`, the Job's env with Secrets resolved).
//!
//! The end-to-end test of a run through the Kubernetes launcher starts the stand-in with
//! [`armada_pods`]: each pod runs the Job's own command (`armada agent`) with this build's binary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use armada::process::ChildSpec;
use tokio::io::AsyncReadExt;

use super::kube_api::{PodExit, PodRun, PodScript, script};

/// How long a process may take to exit after SIGTERM before SIGKILL (a pod's grace period).
const TERMINATION_GRACE: Duration = Duration::from_secs(10);

/// Plays each pod with the process `child` describes; the pod's environment is added to it.
/// The pod runs while the process does; SIGTERM on graceful deletion; the exit code is the
/// container's, and the tail of stderr its termination message (`FallbackToLogsOnError`).
pub fn process_script(child: impl Fn(&PodRun) -> ChildSpec + Send + Sync + 'static) -> PodScript {
    let child = Arc::new(child);
    script(move |run| {
        let spec = run.env.iter().fold(child(&run), |spec, (name, value)| spec.env(name, value));
        async move {
            let mut process = match spec.spawn() {
                Ok(process) => process,
                Err(e) => return PodExit { code: 128, reason: "StartError".into(), message: Some(e.to_string()) },
            };
            run.running();
            let mut stdout = process.take_stdout().expect("piped stdout");
            let mut stderr = process.take_stderr().expect("piped stderr");
            let drain = tokio::spawn(async move {
                let mut sink = Vec::new();
                let _ = stdout.read_to_end(&mut sink).await;
            });
            let tail = tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                text
            });
            let status = tokio::select! {
                status = process.wait() => status,
                _ = run.terminating() => process.terminate(TERMINATION_GRACE).await,
            };
            drain.abort();
            let stderr = tokio::time::timeout(Duration::from_secs(2), tail).await.ok().and_then(Result::ok);
            let (code, reason) = match status {
                Ok(status) if status.success() => (0, "Completed"),
                Ok(status) => (status.code.unwrap_or_else(|| 128 + status.signal.unwrap_or(0)), "Error"),
                Err(_) => (128, "Error"),
            };
            let message = stderr.filter(|_| code != 0).map(|text| {
                let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                lines[lines.len().saturating_sub(5)..].join("\n")
            });
            PodExit { code, reason: reason.into(), message }
        }
    })
}

/// Pods that run the Job's own command (`armada agent`) with this build's `armada` binary, each
/// in `workdir/agent-{index}`, with the pod's environment (`RUN_ID`, `POD_INDEX`, Redis,
/// RabbitMQ, backend, …): the end-to-end run of a project through the Kubernetes launcher.
pub fn armada_pods(workdir: PathBuf) -> PodScript {
    process_script(move |run| {
        let dir = workdir.join(format!("agent-{}", run.index));
        std::fs::create_dir_all(&dir).expect("agent working directory");
        ChildSpec::new(env!("CARGO_BIN_EXE_armada"), dir).args(run.command.iter().skip(1))
    })
}
