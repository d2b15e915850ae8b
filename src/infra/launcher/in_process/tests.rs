use std::sync::atomic::AtomicUsize;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::*;
use crate::infra::broker::memory::MemoryBroker;
use crate::infra::broker::{Broker, job_queue_name};
use crate::infra::launcher::conformance::{AgentBehaviour, FAILURE_DETAIL, LauncherFixture, launcher_suite};

fn entry_for(behaviour: AgentBehaviour) -> AgentEntry {
    agent_entry(move |assignment: AgentAssignment| async move {
        match behaviour {
            AgentBehaviour::RunsUntilStopped => {
                assignment.cancel.cancelled().await;
                Ok(())
            }
            AgentBehaviour::IgnoresStop => std::future::pending().await,
            AgentBehaviour::ExitsOk => Ok(()),
            AgentBehaviour::ExitsWithError => Err(format!("{FAILURE_DETAIL} (agent {})", assignment.pod_index)),
        }
    })
}

launcher_suite!(in_process_launcher, |fixture: LauncherFixture| async move {
    Some(Arc::new(InProcessLauncher::new(entry_for(fixture.behaviour)).with_stop_grace(fixture.stop_grace))
        as Arc<dyn Launcher>)
});

/// Sets its flag when dropped: shows an aborted agent's resources were released.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn wait_for_phases(launcher: &InProcessLauncher, run_id: Uuid, expected: &[AgentPhase]) -> Vec<AgentStatus> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let agents = launcher.agents(run_id).await.unwrap();
        if agents.iter().map(|a| a.phase).eq(expected.iter().copied()) {
            return agents;
        }
        assert!(tokio::time::Instant::now() < deadline, "expected {expected:?}, agents are {agents:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_calls_the_entry_once_per_agent_with_its_index() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let launcher = InProcessLauncher::new(agent_entry(move |a: AgentAssignment| {
        let tx = tx.clone();
        async move {
            tx.send((a.run_id, a.pod_index)).unwrap();
            a.cancel.cancelled().await;
            Ok(())
        }
    }));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 4)).await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..4 {
        calls.push(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap());
    }
    calls.sort();
    assert_eq!(calls, (0..4).map(|i| (run_id, i)).collect::<Vec<_>>());
    launcher.stop(run_id).await.unwrap();
    assert!(rx.try_recv().is_err(), "an entry was called more than once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_cancels_every_agent_token_and_waits_for_them() {
    let returned = Arc::new(AtomicUsize::new(0));
    let counter = returned.clone();
    let launcher = InProcessLauncher::new(agent_entry(move |a: AgentAssignment| {
        let counter = counter.clone();
        async move {
            a.cancel.cancelled().await;
            // Cleanup that takes a moment: stop must wait for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 3)).await.unwrap();
    wait_for_phases(&launcher, run_id, &[AgentPhase::Running; 3]).await;
    launcher.stop(run_id).await.unwrap();
    assert_eq!(returned.load(Ordering::SeqCst), 3, "stop returned before every agent finished its cleanup");
    let agents = launcher.agents(run_id).await.unwrap();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.detail.is_none()), "{agents:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ignoring_cancellation_is_aborted_after_the_grace() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let launcher = InProcessLauncher::new(agent_entry(move |_: AgentAssignment| {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            std::future::pending::<()>().await;
            Ok(())
        }
    }))
    .with_stop_grace(Duration::from_millis(200));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    wait_for_phases(&launcher, run_id, &[AgentPhase::Running]).await;
    launcher.stop(run_id).await.unwrap();
    assert!(dropped.load(Ordering::SeqCst), "the aborted agent's state was not dropped");
    let agents = launcher.agents(run_id).await.unwrap();
    assert_eq!(agents[0].phase, AgentPhase::Stopped);
    assert!(agents[0].detail.as_deref().unwrap_or_default().contains("aborted"), "{agents:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_agent_is_failed_with_the_panic_message_and_the_others_keep_running() {
    let launcher = InProcessLauncher::new(agent_entry(|a: AgentAssignment| async move {
        if a.pod_index == 1 {
            panic!("boom in agent {}", a.pod_index);
        }
        a.cancel.cancelled().await;
        Ok(())
    }));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 3)).await.unwrap();
    let agents =
        wait_for_phases(&launcher, run_id, &[AgentPhase::Running, AgentPhase::Failed, AgentPhase::Running]).await;
    let detail = agents[1].detail.as_deref().unwrap_or_default();
    assert!(detail.contains("panicked") && detail.contains("boom in agent 1"), "{detail:?}");
    launcher.stop(run_id).await.unwrap();
    let agents =
        wait_for_phases(&launcher, run_id, &[AgentPhase::Stopped, AgentPhase::Failed, AgentPhase::Stopped]).await;
    assert!(agents[1].detail.as_deref().unwrap_or_default().contains("boom"), "stop rewrote the failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_agent_aborts_only_that_agent() {
    let flags: Vec<Arc<AtomicBool>> = (0..3).map(|_| Arc::new(AtomicBool::new(false))).collect();
    let entry_flags = flags.clone();
    let launcher = InProcessLauncher::new(agent_entry(move |a: AgentAssignment| {
        let guard = DropFlag(entry_flags[a.pod_index].clone());
        async move {
            let _guard = guard;
            a.cancel.cancelled().await;
            Ok(())
        }
    }));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 3)).await.unwrap();
    wait_for_phases(&launcher, run_id, &[AgentPhase::Running; 3]).await;
    launcher.kill_agent(run_id, 1).await.unwrap();
    let agents = launcher.agents(run_id).await.unwrap();
    assert_eq!(
        agents.iter().map(|a| a.phase).collect::<Vec<_>>(),
        [AgentPhase::Running, AgentPhase::Failed, AgentPhase::Running]
    );
    assert_eq!(agents[1].detail.as_deref(), Some("killed"));
    let dropped: Vec<bool> = flags.iter().map(|f| f.load(Ordering::SeqCst)).collect();
    assert_eq!(dropped, [false, true, false]);
    assert!(matches!(launcher.kill_agent(run_id, 3).await, Err(LaunchError::NotFound(_))));
    assert!(matches!(launcher.kill_agent(Uuid::new_v4(), 0).await, Err(LaunchError::NotFound(_))));
    launcher.stop(run_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_aborts_agents_still_running() {
    let dropped = Arc::new(AtomicBool::new(false));
    let flag = dropped.clone();
    let launcher = InProcessLauncher::new(agent_entry(move |a: AgentAssignment| {
        let guard = DropFlag(flag.clone());
        async move {
            let _guard = guard;
            a.cancel.cancelled().await;
            Ok(())
        }
    }));
    let run_id = Uuid::new_v4();
    launcher.launch(&LaunchSpec::new(run_id, 1)).await.unwrap();
    wait_for_phases(&launcher, run_id, &[AgentPhase::Running]).await;
    launcher.forget(run_id).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !dropped.load(Ordering::SeqCst) {
        assert!(tokio::time::Instant::now() < deadline, "the forgotten agent still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(launcher.agents(run_id).await, Err(LaunchError::NotFound(_))));
}

/// The fault the whole design exists for: an agent killed while it holds a job loses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_job_job_is_redelivered_to_another_agent() {
    let broker: Arc<dyn Broker> = Arc::new(MemoryBroker::new());
    let run_id = Uuid::new_v4();
    let queue = job_queue_name(run_id);
    broker.declare(&queue, &Default::default()).await.unwrap();
    broker.publish(&queue, &[Bytes::from_static(b"job-0")]).await.unwrap();

    // Each agent takes a job; a first delivery is held forever (the agent "hangs" mid-job), a
    // redelivered one is acknowledged and reported.
    let (took_tx, mut took_rx) = mpsc::unbounded_channel::<(usize, String, bool)>();
    let entry_broker = broker.clone();
    let launcher = InProcessLauncher::new(agent_entry(move |a: AgentAssignment| {
        let (broker, took, queue) = (entry_broker.clone(), took_tx.clone(), queue.clone());
        async move {
            let mut consumer = broker.consume(&queue, 1).await.map_err(|e| e.to_string())?;
            let delivery = tokio::select! {
                next = consumer.next() => next.ok_or("queue gone")?.map_err(|e| e.to_string())?,
                _ = a.cancel.cancelled() => return Ok(()),
            };
            let body = String::from_utf8_lossy(&delivery.body).into_owned();
            took.send((a.pod_index, body, delivery.redelivered)).map_err(|e| e.to_string())?;
            if delivery.redelivered {
                delivery.ack().await.map_err(|e| e.to_string())?;
                a.cancel.cancelled().await;
            } else {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }));
    launcher.launch(&LaunchSpec::new(run_id, 2)).await.unwrap();

    async fn recv(rx: &mut mpsc::UnboundedReceiver<(usize, String, bool)>) -> (usize, String, bool) {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an agent took the job").unwrap()
    }
    let (holder, body, redelivered) = recv(&mut took_rx).await;
    assert_eq!((body.as_str(), redelivered), ("job-0", false));
    launcher.kill_agent(run_id, holder).await.unwrap();

    let (rescuer, body, redelivered) = recv(&mut took_rx).await;
    assert_ne!(rescuer, holder, "the killed agent cannot take it back");
    assert_eq!((body.as_str(), redelivered), ("job-0", true));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stats = broker.stats(&job_queue_name(run_id)).await.unwrap();
        if (stats.ready, stats.unacked) == (0, Some(0)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the job was not acknowledged: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    launcher.stop(run_id).await.unwrap();
    let agents = launcher.agents(run_id).await.unwrap();
    assert_eq!(agents[holder].phase, AgentPhase::Failed);
    assert_eq!(agents[rescuer].phase, AgentPhase::Stopped);
    assert!(took_rx.try_recv().is_err(), "the job was delivered a third time");
}
