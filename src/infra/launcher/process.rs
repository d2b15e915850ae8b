//! `PLATFORM=local`: each agent of a run is a child `armada agent` process of the server (the
//! seed's compose/local mode), started through [`crate::process::ChildSpec`] in its own process
//! group, with the seed's agent environment ([`command`]).
//!
//! One supervisor task per agent owns its process: it records the phase (`running` with the
//! pid once started; `succeeded`, or `failed` with the exit code or signal and the last lines
//! of stderr; `stopped`), and carries out stops — SIGTERM to the process group, SIGKILL after
//! the stop grace. What agents print goes to `{work_dir}/{run_id}/agent-{i}.log` and to the
//! server's log ([`output`]). `forget`, `shutdown` and dropping the launcher leave no process;
//! a server killed outright leaves none either, on Linux, through the parent-death signal every
//! child gets (see [`crate::process`]).

pub mod command;
pub mod output;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

pub use command::AgentCommand;
use output::{AgentOutput, Stream};

use super::runs::{Ended, RunTable, lock};
use super::{AgentPhase, AgentStatus, DEFAULT_STOP_GRACE, LaunchError, LaunchSpec, Launcher, validate_spec};
use crate::model::Timestamp;
use crate::process::{ChildProcess, ExitStatus};

/// How long `stop` waits, after the grace and SIGKILL, for the processes to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long, after an agent exited, its last output may take to be read.
const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

pub struct ProcessLauncher {
    command: AgentCommand,
    stop_grace: Duration,
    runs: RunTable<ProcessRun>,
}

struct ProcessRun {
    run_id: Uuid,
    agents: Vec<AgentProcess>,
}

/// The launcher's side of one agent: its status, and the line to its supervisor.
struct AgentProcess {
    status: Arc<Mutex<AgentStatus>>,
    control: mpsc::UnboundedSender<Control>,
    /// Once the supervisor recorded the final phase (the process is reaped).
    done: Ended,
}

#[derive(Debug)]
enum Control {
    /// SIGTERM now, SIGKILL after the grace.
    Stop(Duration),
    /// SIGKILL now.
    Kill(&'static str),
}

/// How the supervisor ended the process, if it did.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Asked(Duration),
    Forced(Duration),
    Killed(&'static str),
}

impl ProcessLauncher {
    pub fn new(command: AgentCommand) -> Self {
        Self { command, stop_grace: DEFAULT_STOP_GRACE, runs: RunTable::new("agent processes") }
    }

    /// How long `stop` waits after SIGTERM before SIGKILL.
    pub fn with_stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    fn start_agent(&self, spec: &LaunchSpec, pod_index: usize) -> Result<AgentProcess, LaunchError> {
        let run_id = spec.run_id;
        let child = self.command.child(spec, pod_index);
        let mut process = child.spawn().map_err(|e| {
            LaunchError::Unavailable(format!(
                "cannot start agent {pod_index} of run {run_id} ({}): {e}",
                self.command.program().to_string_lossy()
            ))
        })?;
        let pid = process.pid();
        let span = tracing::info_span!("agent", %run_id, pod_index, pid);
        let output = AgentOutput::open(&command::log_path(&self.command.run_dir(spec), pod_index), span.clone());
        let pumps: Vec<JoinHandle<()>> = [
            process.take_stdout().map(|out| tokio::spawn(output.clone().pump(out, Stream::Stdout))),
            process.take_stderr().map(|err| tokio::spawn(output.clone().pump(err, Stream::Stderr))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let status = Arc::new(Mutex::new(AgentStatus {
            phase: AgentPhase::Running,
            pid: Some(pid),
            started_at: Some(Timestamp::now()),
            ..AgentStatus::pending(pod_index)
        }));
        let (control, commands) = mpsc::unbounded_channel();
        let (done_tx, done) = Ended::channel();
        span.in_scope(|| tracing::info!(log = %output.path().display(), "agent process started"));
        let supervisor = Supervisor { process, output, pumps, status: status.clone(), commands };
        tokio::spawn(
            async move {
                supervisor.run().await;
                let _ = done_tx.send(true);
            }
            .instrument(span),
        );
        Ok(AgentProcess { status, control, done })
    }

    async fn stop_run(&self, run: &ProcessRun) -> Result<(), LaunchError> {
        for agent in &run.agents {
            // An agent that ended has no supervisor left to tell: nothing to do.
            let _ = agent.control.send(Control::Stop(self.stop_grace));
        }
        if tokio::time::timeout(self.stop_grace + KILL_WAIT, run.wait_all()).await.is_err() {
            return Err(LaunchError::Unavailable(format!(
                "run {}: agent processes {:?} were killed but have not ended",
                run.run_id,
                run.unfinished()
            )));
        }
        Ok(())
    }
}

impl ProcessRun {
    async fn wait_all(&self) {
        Ended::all(self.agents.iter().map(|a| &a.done)).await;
    }

    fn unfinished(&self) -> Vec<usize> {
        Ended::unfinished(self.agents.iter().map(|a| &a.done))
    }

    fn kill_all(&self, why: &'static str) {
        for agent in &self.agents {
            let _ = agent.control.send(Control::Kill(why));
        }
    }
}

/// Owns one agent process until it is reaped.
struct Supervisor {
    process: ChildProcess,
    output: Arc<AgentOutput>,
    pumps: Vec<JoinHandle<()>>,
    status: Arc<Mutex<AgentStatus>>,
    commands: mpsc::UnboundedReceiver<Control>,
}

impl Supervisor {
    async fn run(mut self) {
        let mut ending: Option<Ending> = None;
        let mut kill_at: Option<Instant> = None;
        let mut listening = true;
        let exit = loop {
            let deadline = kill_at;
            tokio::select! {
                exit = self.process.wait() => break exit,
                command = self.commands.recv(), if listening => {
                    let command = command.unwrap_or_else(|| {
                        // The launcher forgot the run or was dropped: no process outlives it.
                        listening = false;
                        Control::Kill("the launcher let go of the run")
                    });
                    match command {
                        Control::Stop(grace) if ending.is_none() => {
                            ending = Some(Ending::Asked(grace));
                            kill_at = Some(Instant::now() + grace);
                            if let Err(e) = self.process.ask_to_stop() {
                                tracing::warn!(error = %e, "cannot send SIGTERM to the agent");
                            }
                        }
                        Control::Stop(_) => {}
                        Control::Kill(why) => {
                            ending = Some(Ending::Killed(why));
                            kill_at = None;
                            self.kill();
                        }
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    if let Some(Ending::Asked(grace)) = ending {
                        tracing::warn!(?grace, "agent did not stop within the grace; killing it");
                        ending = Some(Ending::Forced(grace));
                    }
                    kill_at = None;
                    self.kill();
                }
            }
        };
        // Whatever the agent started in its process group goes with it.
        self.kill();
        for pump in &mut self.pumps {
            let _ = tokio::time::timeout(OUTPUT_DRAIN, pump).await;
        }
        let (phase, detail) = match exit {
            Ok(exit) => outcome(exit, ending, self.output.stderr_tail()),
            Err(e) => (AgentPhase::Failed, Some(format!("cannot wait for the agent process: {e}"))),
        };
        match phase {
            AgentPhase::Failed => tracing::warn!(?phase, detail = detail.as_deref(), "agent process ended"),
            _ => tracing::info!(?phase, detail = detail.as_deref(), "agent process ended"),
        }
        let mut status = lock(&self.status);
        status.phase = phase;
        status.detail = detail;
        status.finished_at = Some(Timestamp::now());
    }

    fn kill(&self) {
        if let Err(e) = self.process.kill() {
            tracing::warn!(error = %e, "cannot send SIGKILL to the agent");
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The phase and detail of an agent that exited with `exit`, after `ending` if the launcher
/// ended it, with `tail` the last lines of its stderr.
fn outcome(exit: ExitStatus, ending: Option<Ending>, tail: Option<String>) -> (AgentPhase, Option<String>) {
    let said = |what: String| match &tail {
        Some(tail) => format!("{what}; its last words:\n{tail}"),
        None => what,
    };
    let clean = exit.success() || exit.signal == Some(libc::SIGTERM);
    match ending {
        Some(Ending::Forced(grace)) => {
            (AgentPhase::Stopped, Some(format!("did not stop within the {grace:?} grace period; killed (SIGKILL)")))
        }
        Some(Ending::Killed(why)) => (AgentPhase::Stopped, Some(format!("killed: {why}"))),
        Some(Ending::Asked(_)) if clean => (AgentPhase::Stopped, None),
        Some(Ending::Asked(_)) => (AgentPhase::Stopped, Some(said(format!("stopped; the agent {exit}")))),
        None if exit.success() => (AgentPhase::Succeeded, None),
        None => (AgentPhase::Failed, Some(said(format!("the agent process {exit}")))),
    }
}

#[async_trait]
impl Launcher for ProcessLauncher {
    fn describe(&self) -> String {
        format!("child agent processes ({})", self.command.program().to_string_lossy())
    }

    /// The agent program is still there (a binary replaced or removed under a running server
    /// cannot start agents).
    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        let program = std::path::Path::new(self.command.program());
        if program.components().count() > 1 && !program.is_file() {
            return Err(LaunchError::Unavailable(format!(
                "the agent program {} is gone (replaced or removed?); restart the server",
                program.display()
            )));
        }
        Ok(())
    }

    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError> {
        validate_spec(spec)?;
        let run_dir = self.command.run_dir(spec);
        self.runs.insert_with(spec.run_id, || {
            std::fs::create_dir_all(&run_dir).map_err(|e| {
                LaunchError::Unavailable(format!("cannot create the agents' folder {}: {e}", run_dir.display()))
            })?;
            // A start that fails part-way drops the agents started so far: their supervisors kill them.
            let agents = (0..spec.number_of_agents)
                .map(|pod_index| self.start_agent(spec, pod_index))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ProcessRun { run_id: spec.run_id, agents })
        })?;
        tracing::info!(run_id = %spec.run_id, agents = spec.number_of_agents, folder = %run_dir.display(), "agent processes launched");
        Ok(())
    }

    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        let run = self.runs.get(run_id)?;
        Ok(run.agents.iter().map(|agent| lock(&agent.status).clone()).collect())
    }

    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError> {
        match self.runs.get(run_id) {
            Ok(run) => self.stop_run(&run).await,
            Err(_) => Ok(()),
        }
    }

    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError> {
        let Some(run) = self.runs.remove(run_id) else {
            return Ok(());
        };
        if !run.unfinished().is_empty() {
            tracing::warn!(%run_id, "forgetting a run whose agent processes still run; killing them");
            run.kill_all("the run was forgotten while it ran");
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), LaunchError> {
        let runs = self.runs.all();
        let results = futures::future::join_all(runs.iter().map(|run| self.stop_run(run))).await;
        results.into_iter().collect()
    }
}

impl Drop for ProcessLauncher {
    /// Agent processes never outlive their launcher (a supervisor whose runtime is gone drops
    /// its process, which kills the process group too).
    fn drop(&mut self) {
        for run in self.runs.all() {
            run.kill_all("the launcher was dropped");
        }
    }
}

#[cfg(test)]
mod tests;
