//! The one test body every `Launcher` implementation passes.
//!
//! A launcher starts agents whose behaviour the suite must control, so the constructor gets a
//! [`LauncherFixture`] — how the agents it launches must behave and the stop grace to use —
//! and gives back `Option<Arc<dyn Launcher>>` (`None` = not available here; it says why and
//! how to enable it, and every test prints a SKIPPED line):
//!
//! ```text
//! crate::infra::launcher::conformance::launcher_suite!(in_process_launcher, |fixture: LauncherFixture| async move {
//!     Some(Arc::new(InProcessLauncher::new(entry_for(fixture.behaviour)).with_stop_grace(fixture.stop_grace))
//!         as Arc<dyn Launcher>)
//! });
//! ```
//!
//! A process launcher would run a small test program per behaviour; a Kubernetes launcher a
//! stand-in API server whose pods play it. Every test uses fresh run ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{AgentPhase, AgentStatus, LaunchError, LaunchSpec, Launcher};

/// How the agents a suite's launcher starts must behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentBehaviour {
    /// Run until asked to stop, then end promptly and cleanly.
    RunsUntilStopped,
    /// Run forever, ignoring the stop request: only forcing ends it.
    IgnoresStop,
    /// End successfully right away.
    ExitsOk,
    /// End right away with an error whose text contains [`FAILURE_DETAIL`].
    ExitsWithError,
}

/// The error text of an `ExitsWithError` agent; its status detail must contain it.
pub const FAILURE_DETAIL: &str = "agent failed on purpose";

#[derive(Debug, Clone, Copy)]
pub struct LauncherFixture {
    pub behaviour: AgentBehaviour,
    /// The launcher must use this stop grace.
    pub stop_grace: Duration,
}

/// Short, so the forced-stop tests stay quick.
pub const SUITE_STOP_GRACE: Duration = Duration::from_millis(500);

/// Expands to a module `$suite` with one `#[tokio::test]` per behaviour below. `$make` is a
/// closure `LauncherFixture -> impl Future<Output = Option<Arc<dyn Launcher>>>`.
macro_rules! launcher_suite {
    ($suite:ident, $make:expr) => {
        mod $suite {
            #[allow(unused_imports)]
            use super::*;
            $crate::infra::launcher::conformance::launcher_suite!(@tests $suite, $make;
                (connectivity_is_checked_and_described, RunsUntilStopped),
                (launch_starts_one_agent_per_index, RunsUntilStopped),
                (agents_that_end_on_their_own_succeed, ExitsOk),
                (agent_that_fails_is_failed_with_its_reason, ExitsWithError),
                (stop_ends_agents_that_honour_it, RunsUntilStopped),
                (stop_forces_agents_that_ignore_it_after_the_grace, IgnoresStop),
                (launching_a_run_twice_is_conflict, RunsUntilStopped),
                (zero_agents_is_invalid, RunsUntilStopped),
                (unknown_run_is_not_found_and_stopping_it_is_fine, RunsUntilStopped),
                (forget_drops_the_run, RunsUntilStopped),
                (shutdown_stops_every_run, RunsUntilStopped),
            );
        }
    };
    (@tests $suite:ident, $make:expr; $(($test:ident, $behaviour:ident)),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                use $crate::infra::launcher::conformance as suite;
                let fixture = suite::LauncherFixture {
                    behaviour: suite::AgentBehaviour::$behaviour,
                    stop_grace: suite::SUITE_STOP_GRACE,
                };
                let make = $make;
                let launcher: ::std::option::Option<::std::sync::Arc<dyn $crate::infra::launcher::Launcher>> =
                    make(fixture).await;
                $crate::infra::testing::run_conformance(
                    "launcher",
                    stringify!($suite),
                    stringify!($test),
                    launcher.map(|launcher| suite::$test(launcher, fixture)),
                )
                .await;
            }
        )+
    };
}
pub(crate) use launcher_suite;

const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `agents` until `check` holds for the whole list; returns that list.
pub(crate) async fn eventually_agents(
    launcher: &dyn Launcher,
    run_id: Uuid,
    what: &str,
    check: impl Fn(&[AgentStatus]) -> bool,
) -> Vec<AgentStatus> {
    let started = Instant::now();
    loop {
        let agents = launcher.agents(run_id).await.expect("agents of a launched run");
        if check(&agents) {
            return agents;
        }
        assert!(started.elapsed() < PATIENCE, "{what}: agents still {agents:#?} after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn all_in(phase: AgentPhase) -> impl Fn(&[AgentStatus]) -> bool {
    move |agents| agents.iter().all(|a| a.phase == phase)
}

async fn cleanup(launcher: &dyn Launcher, run_id: Uuid) {
    launcher.stop(run_id).await.expect("stop");
    launcher.forget(run_id).await.expect("forget");
}

pub async fn connectivity_is_checked_and_described(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    launcher.check_connectivity().await.expect("check_connectivity");
    assert!(!launcher.describe().is_empty());
}

pub async fn launch_starts_one_agent_per_index(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 3)).await.unwrap();
    let agents = eventually_agents(&*launcher, run_id, "all running", all_in(AgentPhase::Running)).await;
    assert_eq!(agents.iter().map(|a| a.pod_index).collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(agents.iter().all(|a| a.started_at.is_some() && a.finished_at.is_none()), "{agents:#?}");
    launcher.stop(run_id).await.unwrap();
    let agents = launcher.agents(run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.finished_at.is_some()), "{agents:#?}");
    launcher.forget(run_id).await.unwrap();
}

pub async fn agents_that_end_on_their_own_succeed(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    let agents = eventually_agents(&*launcher, run_id, "all succeeded", all_in(AgentPhase::Succeeded)).await;
    assert!(agents.iter().all(|a| a.finished_at.is_some() && a.detail.is_none()), "{agents:#?}");
    // Stopping a run whose agents ended does not rewrite how they ended.
    launcher.stop(run_id).await.unwrap();
    eventually_agents(&*launcher, run_id, "still succeeded", all_in(AgentPhase::Succeeded)).await;
    launcher.forget(run_id).await.unwrap();
}

pub async fn agent_that_fails_is_failed_with_its_reason(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    let agents = eventually_agents(&*launcher, run_id, "all failed", all_in(AgentPhase::Failed)).await;
    for agent in agents {
        let detail = agent.detail.unwrap_or_default();
        assert!(detail.contains(FAILURE_DETAIL), "agent {} detail {detail:?}", agent.pod_index);
    }
    cleanup(&*launcher, run_id).await;
}

pub async fn stop_ends_agents_that_honour_it(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    eventually_agents(&*launcher, run_id, "all running", all_in(AgentPhase::Running)).await;
    launcher.stop(run_id).await.unwrap();
    let agents = launcher.agents(run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped), "right after stop: {agents:#?}");
    launcher.stop(run_id).await.expect("stopping twice is fine");
    launcher.forget(run_id).await.unwrap();
}

pub async fn stop_forces_agents_that_ignore_it_after_the_grace(launcher: Arc<dyn Launcher>, fixture: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    eventually_agents(&*launcher, run_id, "all running", all_in(AgentPhase::Running)).await;
    let started = Instant::now();
    launcher.stop(run_id).await.unwrap();
    let took = started.elapsed();
    assert!(took >= fixture.stop_grace, "forced after {took:?}, before the {:?} grace", fixture.stop_grace);
    assert!(took < PATIENCE, "stop took {took:?}");
    let agents = launcher.agents(run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.detail.is_some()), "{agents:#?}");
    launcher.forget(run_id).await.unwrap();
}

pub async fn launching_a_run_twice_is_conflict(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    match launcher.launch(&LaunchSpec::new(run_id, 1)).await {
        Err(LaunchError::Conflict(message)) => assert!(message.contains(&run_id.to_string()), "{message:?}"),
        other => panic!("second launch: {other:?}"),
    }
    assert_eq!(launcher.agents(run_id).await.unwrap().len(), 1, "the second launch added agents");
    cleanup(&*launcher, run_id).await;
}

pub async fn zero_agents_is_invalid(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    match launcher.launch(&LaunchSpec::new(run_id, 0)).await {
        Err(LaunchError::Invalid(message)) => assert!(message.contains(&run_id.to_string()), "{message:?}"),
        other => panic!("launch of zero agents: {other:?}"),
    }
    assert!(matches!(launcher.agents(run_id).await, Err(LaunchError::NotFound(_))));
}

pub async fn unknown_run_is_not_found_and_stopping_it_is_fine(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    match launcher.agents(run_id).await {
        Err(LaunchError::NotFound(message)) => assert!(message.contains(&run_id.to_string()), "{message:?}"),
        other => panic!("agents of an unknown run: {other:?}"),
    }
    launcher.stop(run_id).await.expect("stop an unknown run");
    launcher.forget(run_id).await.expect("forget an unknown run");
}

pub async fn forget_drops_the_run(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();
    eventually_agents(&*launcher, run_id, "all running", all_in(AgentPhase::Running)).await;
    cleanup(&*launcher, run_id).await;
    assert!(matches!(launcher.agents(run_id).await, Err(LaunchError::NotFound(_))));
    // The run id is free again.
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.expect("launch again after forget");
    eventually_agents(&*launcher, run_id, "relaunched", |a| a.len() == 1 && a[0].phase == AgentPhase::Running).await;
    cleanup(&*launcher, run_id).await;
}

pub async fn shutdown_stops_every_run(launcher: Arc<dyn Launcher>, _: LauncherFixture) {
    let runs = [Uuid::new_v4(), Uuid::new_v4()];
    for (i, run_id) in runs.iter().enumerate() {
        launcher.launch(&LaunchSpec::new(*run_id, i + 1)).await.unwrap();
        eventually_agents(&*launcher, *run_id, "all running", all_in(AgentPhase::Running)).await;
    }
    launcher.shutdown().await.unwrap();
    for run_id in runs {
        let agents = launcher.agents(run_id).await.unwrap();
        assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped), "run {run_id}: {agents:#?}");
        launcher.forget(run_id).await.unwrap();
    }
}
