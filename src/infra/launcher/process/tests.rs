//! The process launcher with real processes: small `sh` programs stand in for `armada agent`
//! (the real one runs in `tests/it/platform.rs`, under a real `armada serve`).

use std::path::PathBuf;
use std::sync::OnceLock;

use super::output::MAX_LINE;
use super::*;
use crate::infra::launcher::conformance::{AgentBehaviour, FAILURE_DETAIL, LauncherFixture, launcher_suite};

/// One folder for every run of these tests (runs are told apart by their ids).
fn work_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::Builder::new().prefix("armada-process-launcher-").tempdir().expect("temp dir"))
        .path()
        .to_path_buf()
}

fn sh(script: &str) -> AgentCommand {
    AgentCommand::new("sh", ["-c", script], work_dir(), vec![("SHARED".into(), "for every agent".into())])
}

/// What a script prints once it is set up (its traps installed): see [`ReadyWhenSaid`].
const READY: &str = "ready";

fn script_for(behaviour: AgentBehaviour) -> String {
    match behaviour {
        AgentBehaviour::RunsUntilStopped => format!("trap 'exit 0' TERM; echo {READY}; while :; do sleep 1; done"),
        // Ignored signals stay ignored across exec: `sleep` ignores SIGTERM too.
        AgentBehaviour::IgnoresStop => format!("trap '' TERM; echo {READY}; while :; do sleep 1; done"),
        AgentBehaviour::ExitsOk => "echo done".into(),
        AgentBehaviour::ExitsWithError => {
            format!("echo 'starting' >&2; echo '{FAILURE_DETAIL} (agent '$POD_INDEX')' >&2; exit 3")
        }
    }
}

launcher_suite!(process_launcher, |fixture: LauncherFixture| async move {
    let launcher = ProcessLauncher::new(sh(&script_for(fixture.behaviour))).with_stop_grace(fixture.stop_grace);
    Some(Arc::new(ReadyWhenSaid(launcher)) as Arc<dyn Launcher>)
});

/// The suite stops agents as soon as they are `running`; a process is running once started,
/// but a script ignores SIGTERM only once its `trap` ran. So for the suite a script's agent is
/// `pending` until its log shows [`READY`]; everything else is the launcher's own answer.
struct ReadyWhenSaid(ProcessLauncher);

#[async_trait]
impl Launcher for ReadyWhenSaid {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn check_connectivity(&self) -> Result<(), LaunchError> {
        self.0.check_connectivity().await
    }
    async fn launch(&self, spec: &LaunchSpec) -> Result<(), LaunchError> {
        self.0.launch(spec).await
    }
    async fn agents(&self, run_id: Uuid) -> Result<Vec<AgentStatus>, LaunchError> {
        let mut agents = self.0.agents(run_id).await?;
        for agent in agents.iter_mut().filter(|a| a.phase == AgentPhase::Running) {
            let log = std::fs::read_to_string(command::log_path(&work_dir().join(run_id.to_string()), agent.pod_index));
            if !log.is_ok_and(|log| log.lines().any(|l| l == READY)) {
                agent.phase = AgentPhase::Pending;
            }
        }
        Ok(agents)
    }
    async fn stop(&self, run_id: Uuid) -> Result<(), LaunchError> {
        self.0.stop(run_id).await
    }
    async fn forget(&self, run_id: Uuid) -> Result<(), LaunchError> {
        self.0.forget(run_id).await
    }
    async fn shutdown(&self) -> Result<(), LaunchError> {
        self.0.shutdown().await
    }
}

/// True while the process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) S …`: the state follows the last parenthesis (comm may hold any character).
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z")
}

async fn gone_within(pids: &[u32], within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while pids.iter().any(|pid| alive(*pid)) {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

async fn until(launcher: &ProcessLauncher, run_id: Uuid, phase: AgentPhase) -> Vec<AgentStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let agents = launcher.agents(run_id).await.unwrap();
        if agents.iter().all(|a| a.phase == phase) {
            return agents;
        }
        assert!(Instant::now() < deadline, "expected all {phase:?}: {agents:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn log_of(run_id: Uuid, pod_index: usize) -> String {
    let path = command::log_path(&work_dir().join(run_id.to_string()), pod_index);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn pids(agents: &[AgentStatus]) -> Vec<u32> {
    agents.iter().map(|a| a.pid.expect("a started agent has a pid")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_agent_gets_its_index_and_the_shared_environment_in_the_run_folder_and_its_output_is_logged() {
    let launcher = ProcessLauncher::new(sh("echo \"run=$RUN_ID index=$POD_INDEX shared=$SHARED\"; \
         echo \"work=$ARMADA_WORK_DIR cwd=$(pwd)\"; echo \"requirements=$REQUIREMENTS_TXT\"; \
         echo 'a line on stderr' >&2; printf 'no newline at the end'"));
    let run_id = Uuid::new_v4();
    let mut spec = LaunchSpec::new(run_id, 2);
    spec.requirements_txt = Some("requests==2.32.3\n".into());
    launcher.launch(&spec).await.unwrap();
    let agents = until(&launcher, run_id, AgentPhase::Succeeded).await;
    assert!(agents.iter().all(|a| a.detail.is_none() && a.started_at.is_some() && a.finished_at.is_some()));
    let run_dir = work_dir().join(run_id.to_string());
    for index in 0..2 {
        let log = log_of(run_id, index);
        assert!(log.contains(&format!("run={run_id} index={index} shared=for every agent\n")), "{log}");
        assert!(log.contains(&format!("work={} cwd={}\n", work_dir().display(), run_dir.display())), "{log}");
        assert!(log.contains("requirements=cmVxdWVzdHM9PTIuMzIuMwo=\n"), "base64 of the requirements: {log}");
        assert!(log.contains("a line on stderr\n"), "{log}");
        // The two streams are read apart: stderr's line may come after stdout's last one.
        assert!(log.lines().any(|l| l == "no newline at the end"), "the last partial line is kept: {log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_printing_megabytes_on_both_streams_never_blocks_and_loses_no_line() {
    // 3,000 lines of 1,000 bytes on each stream: far beyond a pipe's 64 KiB.
    let launcher = ProcessLauncher::new(sh("i=0; line=$(head -c 999 /dev/zero | tr '\\0' x); \
         while [ $i -lt 3000 ]; do echo \"$line\"; echo \"$line\" >&2; i=$((i+1)); done"));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    until(&launcher, run_id, AgentPhase::Succeeded).await;
    let log = log_of(run_id, 0);
    assert_eq!(log.lines().count(), 6000);
    assert!(log.lines().all(|l| l.len() == 999), "whole lines, never interleaved mid-line");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_longer_than_the_cap_is_cut_and_said_so() {
    let launcher = ProcessLauncher::new(sh("head -c 100000 /dev/zero | tr '\\0' y; echo; echo after"));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    until(&launcher, run_id, AgentPhase::Succeeded).await;
    let log = log_of(run_id, 0);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{} bytes", log.len());
    assert_eq!(lines[0], format!("{} [line cut at {MAX_LINE} bytes]", "y".repeat(MAX_LINE)));
    assert_eq!(lines[1], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_by_a_signal_is_failed_naming_it_with_its_last_words() {
    let launcher = ProcessLauncher::new(sh("echo 'about to crash' >&2; kill -SEGV $$"));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    let agents = until(&launcher, run_id, AgentPhase::Failed).await;
    let detail = agents[0].detail.as_deref().unwrap_or_default();
    assert!(detail.starts_with("the agent process killed by signal 11 (SIGSEGV)"), "{detail}");
    assert!(detail.ends_with("about to crash"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reported_pids_are_the_running_agents() {
    let launcher = ProcessLauncher::new(sh(&script_for(AgentBehaviour::RunsUntilStopped)));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    let agents = until(&launcher, run_id, AgentPhase::Running).await;
    for pid in pids(&agents) {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("the agent's process exists");
        let environ = String::from_utf8_lossy(&environ);
        assert!(environ.split('\0').any(|v| v == format!("RUN_ID={run_id}")), "pid {pid} is another process");
    }
    launcher.stop(run_id).await.unwrap();
    assert!(gone_within(&pids(&agents), Duration::ZERO).await, "stop returns once the processes are gone");
    let after = launcher.agents(run_id).await.unwrap();
    assert_eq!(pids(&after), pids(&agents), "the pids stay in the status after the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_also_ends_what_the_agent_started_in_its_process_group() {
    // The grandchild ignores SIGTERM and outlives the agent, until the group is killed.
    let launcher = ProcessLauncher::new(sh("(trap '' TERM; exec sleep 600) & echo \"grandchild=$!\"; wait"));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    until(&launcher, run_id, AgentPhase::Running).await;
    let mut grandchild = None;
    let deadline = Instant::now() + Duration::from_secs(10);
    while grandchild.is_none() && Instant::now() < deadline {
        let log = std::fs::read_to_string(command::log_path(&work_dir().join(run_id.to_string()), 0));
        grandchild = log.ok().and_then(|l| l.lines().find_map(|l| l.strip_prefix("grandchild=")?.parse::<u32>().ok()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let grandchild = grandchild.expect("the agent printed its child's pid");
    assert!(alive(grandchild));
    launcher.stop(run_id).await.unwrap();
    assert!(gone_within(&[grandchild], Duration::from_secs(5)).await, "the grandchild {grandchild} survived");
    assert_eq!(launcher.agents(run_id).await.unwrap()[0].phase, AgentPhase::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_and_dropping_the_launcher_kill_running_agents() {
    let launcher = ProcessLauncher::new(sh(&script_for(AgentBehaviour::IgnoresStop)));
    let (forgotten, dropped) = (Uuid::new_v4(), Uuid::new_v4());
    launcher.launch(&LaunchSpec::new(forgotten, 2)).await.unwrap();
    launcher.launch(&LaunchSpec::new(dropped, 2)).await.unwrap();
    let forgotten_pids = pids(&until(&launcher, forgotten, AgentPhase::Running).await);
    let dropped_pids = pids(&until(&launcher, dropped, AgentPhase::Running).await);
    launcher.forget(forgotten).await.unwrap();
    assert!(gone_within(&forgotten_pids, Duration::from_secs(10)).await, "forget left {forgotten_pids:?}");
    assert!(dropped_pids.iter().all(|pid| alive(*pid)), "forget ended another run's agents");
    drop(launcher);
    assert!(gone_within(&dropped_pids, Duration::from_secs(10)).await, "drop left {dropped_pids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_cannot_start_fails_the_launch_and_leaves_nothing() {
    let missing = work_dir().join("no-such-armada");
    let launcher = ProcessLauncher::new(AgentCommand::new(&missing, ["agent"], work_dir(), Vec::new()));
    match launcher.check_connectivity().await {
        Err(LaunchError::Unavailable(message)) => {
            assert!(message.contains(&missing.display().to_string()), "{message}");
        }
        other => panic!("check of a missing program: {other:?}"),
    }
    let run_id = Uuid::new_v4();
    match launcher.launch(&LaunchSpec::new(run_id, 2)).await {
        Err(LaunchError::Unavailable(message)) => {
            assert!(message.contains(&format!("cannot start agent 0 of run {run_id}")), "{message}");
            assert!(message.contains(&missing.display().to_string()), "{message}");
        }
        other => panic!("launch of a missing program: {other:?}"),
    }
    assert!(matches!(launcher.agents(run_id).await, Err(LaunchError::NotFound(_))));
}

#[test]
fn outcomes_read_as_the_run_view_shows_them() {
    let code = |code| ExitStatus { code: Some(code), signal: None };
    let signal = |signal| ExitStatus { code: None, signal: Some(signal) };
    let grace = Duration::from_secs(2);
    let tail = Some("last line".to_string());
    assert_eq!(outcome(code(0), None, tail.clone()), (AgentPhase::Succeeded, None));
    assert_eq!(
        outcome(code(2), None, tail.clone()),
        (AgentPhase::Failed, Some("the agent process exited with code 2; its last words:\nlast line".into()))
    );
    assert_eq!(outcome(code(1), None, None).1.as_deref(), Some("the agent process exited with code 1"));
    assert_eq!(outcome(signal(libc::SIGTERM), Some(Ending::Asked(grace)), None), (AgentPhase::Stopped, None));
    assert_eq!(outcome(code(0), Some(Ending::Asked(grace)), None), (AgentPhase::Stopped, None));
    assert_eq!(
        outcome(code(1), Some(Ending::Asked(grace)), tail).1.as_deref(),
        Some("stopped; the agent exited with code 1; its last words:\nlast line")
    );
    assert_eq!(
        outcome(signal(libc::SIGKILL), Some(Ending::Forced(grace)), None).1.as_deref(),
        Some("did not stop within the 2s grace period; killed (SIGKILL)")
    );
    assert_eq!(outcome(signal(libc::SIGKILL), Some(Ending::Killed("why")), None).0, AgentPhase::Stopped);
}
