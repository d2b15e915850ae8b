//! An agent process SIGKILLed mid-job: RabbitMQ redelivers its job to another agent.

use std::time::{Duration, Instant};

use armada::agent::heartbeat::HeartbeatTiming;
use armada::process::signal_name;

use super::*;
use crate::local::{agent_processes, all_gone, descendants};

/// An agent SIGKILLed while it runs a job: RabbitMQ hands the job to the other agent (which
/// holds it until the dead agent's heartbeat is gone: the orchestrator clears it as soon as the
/// launcher reports the agent ended, then runs it), the job ends `Success` once, and the run
/// completes with the dead agent reported failed by its signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_job_job_is_redelivered_and_succeeds_once() {
    let Some((redis, rabbitmq)) = shared_servers() else { return };
    let local = LocalServe::start_on(&redis, &rabbitmq).await;
    let shape = Shape { agents: 2, jobs: 4, sleep_secs: 0.5, hold_secs: 120.0 };
    let run = FaultRun::launch(&local, &shape).await;
    let run_id = run.run_id;

    // Job 0's first run holds on: wait until its code runs (its `started` event stored), and
    // find the agent running it.
    let mut victim: Option<(String, u32)> = None;
    let caught = eventually(RUN_LIMIT, async || {
        let Some(first) = jobs(&local, run_id).await.into_iter().find(|job| job.job_index == Some(0)) else {
            return false;
        };
        if first.job_status != "Running" || events(&local, first.job_uuid).await.is_empty() {
            return false;
        }
        let view = local.view(run_id).await;
        let agent = view["agents"].as_array().expect("agents").iter().find(|a| {
            a["agent"] == first.job_associated_agent.as_str()
                && a["phase"] == "running"
                && a["current_job"] == first.job_uuid.to_string()
        });
        victim =
            agent.and_then(|a| Some((first.job_associated_agent.clone(), u32::try_from(a["pid"].as_u64()?).ok()?)));
        victim.is_some()
    });
    assert!(caught.await, "job 0 never ran: {}\n{}", local.view(run_id).await, agent_logs(&local, run_id));
    let (agent, pid) = victim.expect("the agent running job 0");
    let first = jobs(&local, run_id).await.into_iter().find(|job| job.job_index == Some(0)).expect("job 0");
    assert!(agent_processes(local.pid()).contains(&pid), "{agent} (pid {pid}) is an `armada agent` child of serve");
    let worker = descendants(&[pid]);
    assert!(!worker.is_empty(), "{agent} runs a worker");

    // SAFETY: a plain kill(2) of a process this test found as a child of its own serve.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0, "SIGKILL {pid}");
    let killed = Instant::now();
    assert!(all_gone(&worker, Duration::from_secs(20)).await, "the killed agent's worker went with it: {worker:?}");

    // Job 0 starts again well before the dead agent's last beat would have lapsed on its own
    // (the orchestrator cleared it; the other agent looks again every second).
    let rerun = eventually(RUN_LIMIT, async || run.marks(first.job_uuid).len() >= 2).await;
    let rerun_after = killed.elapsed();
    assert!(rerun, "job 0 never ran again: {:?}\n{}", run.marks(first.job_uuid), agent_logs(&local, run_id));
    println!("job 0 started again {rerun_after:?} after {agent} was killed");
    let lapse = HeartbeatTiming::default().ttl;
    assert!(rerun_after < lapse, "job 0 waited {rerun_after:?} for the dead agent's beat to lapse ({lapse:?})");

    let view = ended(&local, &run).await;
    println!("run completed {:?} after {agent} was killed", killed.elapsed());
    let starts = assert_each_job_succeeded_once(&local, &run, &view).await;

    // Job 0: its code started under the killed agent and again under the other, which finished it.
    let job = jobs(&local, run_id).await.into_iter().find(|job| job.job_index == Some(0)).expect("job 0");
    assert_eq!(starts[&first.job_uuid], 2, "job 0 ran again after the kill: {:?}", run.marks(first.job_uuid));
    assert_ne!(job.job_associated_agent, agent, "redelivered to the other agent: {job:?}");
    let marks = run.marks(first.job_uuid);
    assert_ne!(marks[0].split_once("pid=").map(|m| m.1), marks[1].split_once("pid=").map(|m| m.1), "{marks:?}");
    for (id, count) in &starts {
        assert!(*id == first.job_uuid || *count == 1, "job {id} ran {count} times");
    }

    // The killed agent is reported as such; the other ended on its own when the queue went.
    let killed_view = view["agents"].as_array().expect("agents").iter().find(|a| a["agent"] == agent.as_str()).cloned();
    let killed_view = killed_view.expect("the killed agent in the view");
    assert_eq!((killed_view["phase"].as_str(), killed_view["pid"].as_u64()), (Some("failed"), Some(u64::from(pid))));
    let detail = killed_view["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(signal_name(libc::SIGKILL)), "the agent's detail names its signal: {killed_view}");
    assert_agents_ended_on_their_own(&local, &run, Some(&agent)).await;
    assert!(queue_is_gone(&rabbitmq, run_id).await, "the run's queue is deleted");
}
