//! Jobs whose worker crashes, hangs, prints garbage or is killed, and agents that are killed or
//! stopped: every job still ends with one recorded outcome and the reason. Each runs in every
//! configuration of engines (`on_every_engine!`), with the same assertions.

use std::path::{Path, PathBuf};
use std::time::Duration;

use armada::model::status;
use serde_json::{Value, json};
use uuid::Uuid;

use super::LiveMessages;
use crate::support::agents::{AgentHarness, Engines, RUN_LIMIT, write_template};
use crate::support::engines::on_every_engine;
use crate::support::eventually;

on_every_engine!(
    a_crashed_worker_is_restarted_and_the_job_succeeds_on_retry,
    a_job_that_always_crashes_fails_with_the_reason_after_max_attempts,
    a_job_that_outlives_its_timeout_fails_after_max_attempts,
    garbage_printed_by_a_job_is_kept_as_its_logs_and_does_not_break_the_protocol,
    a_worker_killed_mid_job_is_replaced_and_the_job_succeeds_once,
    an_agent_killed_mid_job_loses_nothing_and_another_agent_succeeds_once,
    an_agent_stopped_mid_job_hands_the_job_back_after_its_grace,
    a_worker_that_fails_its_init_fails_the_agent_with_the_reason,
);

const SCRIPT: &str = include_str!("fixtures/behaviours/ctx_script.py");

/// A project of the behaviours script: one job per mode, `agents` agents.
pub(super) struct Behaviours {
    project: tempfile::TempDir,
    markers: tempfile::TempDir,
}

impl Behaviours {
    pub(super) fn new(modes: &[&str], agents: usize, run_message: Value) -> Self {
        let (project, markers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::write(project.path().join("ctx_script.py"), SCRIPT).unwrap();
        let mut run = json!({"number_of_agents": agents, "number_of_jobs": modes.len()});
        for (key, value) in run_message.as_object().unwrap() {
            run[key] = value.clone();
        }
        write_template(
            project.path(),
            &json!({
                "run_message": run,
                "default_agent_message": {},
                "default_job_message": {"marker_dir": markers.path().display().to_string()},
            }),
        );
        let rows: String = modes.iter().map(|mode| format!("{mode}\n")).collect();
        std::fs::write(project.path().join("config/data_job.csv"), format!("mode\n{rows}")).unwrap();
        Self { project, markers }
    }

    pub(super) fn dir(&self) -> &Path {
        self.project.path()
    }

    pub(super) fn marker(&self, job: Uuid, suffix: &str) -> PathBuf {
        self.markers.path().join(format!("{job}.{suffix}"))
    }

    /// Waits for the job's `block_once` marker and returns the pid of the worker holding it.
    pub(super) async fn blocked_worker(&self, job: Uuid) -> u32 {
        let path = self.marker(job, "started");
        assert!(eventually(RUN_LIMIT, async || path.exists()).await, "the job never started");
        std::fs::read_to_string(&path).unwrap().trim().parse().unwrap()
    }
}

pub(super) fn job_of_mode(staged: &armada::agent::stage::StagedRun, mode: &str) -> Uuid {
    staged.jobs.iter().find(|(_, m)| m["mode"] == mode).map(|(uuid, _)| *uuid).unwrap()
}

async fn a_crashed_worker_is_restarted_and_the_job_succeeds_on_retry(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let project = Behaviours::new(&["crash_once", "ok", "ok"], 1, json!({"max_attempts": 3}));
    let staged = harness.start(project.dir()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!(summary.count(status::SUCCESS), 3, "{:?}", summary.counts);
    let crashed = harness.job(job_of_mode(&staged, "crash_once")).await;
    assert_eq!(crashed.job_attempts, Some(2), "{crashed:?}");
    let detail = crashed.job_detail.unwrap_or_default();
    assert!(detail.starts_with("attempt 1: worker exited with code 3 during job"), "{detail}");
    let logs = harness.logs(crashed.job_uuid).await;
    assert!(logs.contains("crashing now"), "the crashed attempt's prints are kept: {logs:?}");
    let events: Vec<String> = harness.events(crashed.job_uuid).await.into_iter().map(|e| e.event_content).collect();
    assert_eq!(events, ["started (crash_once)", "started (crash_once)", "done (crash_once)"]);
}

async fn a_job_that_always_crashes_fails_with_the_reason_after_max_attempts(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let project = Behaviours::new(&["crash_always", "ok"], 1, json!({"max_attempts": 2}));
    let staged = harness.start(project.dir()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!((summary.count(status::SUCCESS), summary.count(status::FAILED)), (1, 1), "{:?}", summary.counts);
    let job = harness.job(job_of_mode(&staged, "crash_always")).await;
    assert_eq!((job.job_status.as_str(), job.job_attempts), (status::FAILED, Some(2)));
    let detail = job.job_detail.unwrap_or_default();
    assert!(detail.starts_with("worker exited with code 3 during job"), "{detail}");
    assert!(detail.contains("last stderr: about to crash"), "{detail}");
    assert!(detail.ends_with("(attempt 2 of 2)"), "{detail}");
}

async fn a_job_that_outlives_its_timeout_fails_after_max_attempts(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let project = Behaviours::new(&["hang", "ok"], 1, json!({"max_attempts": 2, "job_timeout_secs": 2}));
    let staged = harness.start(project.dir()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!((summary.count(status::SUCCESS), summary.count(status::FAILED)), (1, 1), "{:?}", summary.counts);
    let job = harness.job(job_of_mode(&staged, "hang")).await;
    assert_eq!((job.job_status.as_str(), job.job_attempts), (status::FAILED, Some(2)));
    let detail = job.job_detail.unwrap_or_default();
    assert!(detail.contains("timed out after 2 s (the worker was killed) (attempt 2 of 2)"), "{detail}");
    assert_eq!(harness.logs(job.job_uuid).await.matches("hanging").count(), 2, "both attempts' prints");
}

async fn garbage_printed_by_a_job_is_kept_as_its_logs_and_does_not_break_the_protocol(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let project = Behaviours::new(&["garbage", "ok"], 1, json!({}));
    let staged = harness.start(project.dir()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!(summary.count(status::SUCCESS), 2, "{:?}", summary.counts);
    let job = job_of_mode(&staged, "garbage");
    let logs = harness.logs(job).await;
    for expected in [
        format!(r#"{{"type":"done","job_uuid":"{job}","status":"Failed","error":"fake"}}"#),
        r#"{"type":"call","id":99,"method":"event","params":{"content":"fake","status":"Failed"}}"#.to_string(),
        "not json at all {{{ \u{1}\u{2}".to_string(),
        r#"{"type":"ready"}"#.to_string(),
        "no newline at the end".to_string(),
    ] {
        assert!(logs.lines().any(|line| line == expected), "{expected:?} missing from the logs");
    }
    assert!(logs.contains(&"x".repeat(65536)), "long lines are kept (cut in pieces)");
    let events: Vec<String> = harness.events(job).await.into_iter().map(|e| e.event_content).collect();
    assert_eq!(events, ["started (garbage)", "done (garbage)"], "nothing printed became a record");
}

/// Success transitions of one job on the live stream.
pub(super) fn success_transitions(live: &LiveMessages, job: Uuid) -> usize {
    let statuses: Vec<String> = live
        .of_type("update_job_status")
        .into_iter()
        .filter(|j| j["job_uuid"] == job.to_string())
        .map(|j| j["job_status"].as_str().unwrap_or_default().to_string())
        .collect();
    (0..statuses.len())
        .filter(|&i| statuses[i] == status::SUCCESS && (i == 0 || statuses[i - 1] != status::SUCCESS))
        .count()
}

async fn a_worker_killed_mid_job_is_replaced_and_the_job_succeeds_once(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let live = LiveMessages::connect(&harness.app.ws_url).await;
    let project = Behaviours::new(&["block_once", "ok"], 1, json!({"max_attempts": 3}));
    let staged = harness.start(project.dir()).await;
    let job = job_of_mode(&staged, "block_once");
    let pid = project.blocked_worker(job).await;
    // SAFETY: kill has no memory-safety preconditions; the pid is the worker the job reported.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);

    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;
    assert_eq!(summary.count(status::SUCCESS), 2, "{:?}", summary.counts);
    let record = harness.job(job).await;
    assert_eq!(record.job_attempts, Some(2));
    let detail = record.job_detail.unwrap_or_default();
    assert!(detail.starts_with("attempt 1: worker killed by signal 9 (SIGKILL)"), "{detail}");
    let dones = harness.events(job).await.into_iter().filter(|e| e.event_content.starts_with("done")).count();
    assert_eq!(dones, 1);
    let settled = eventually(Duration::from_secs(10), async || success_transitions(&live, job) == 1).await;
    assert!(settled, "Success transitions: {}", success_transitions(&live, job));
}

async fn an_agent_killed_mid_job_loses_nothing_and_another_agent_succeeds_once(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let live = LiveMessages::connect(&harness.app.ws_url).await;
    let project = Behaviours::new(&["block_once", "ok", "ok", "ok"], 2, json!({"max_attempts": 3}));
    let staged = harness.start(project.dir()).await;
    let job = job_of_mode(&staged, "block_once");
    let worker_pid = project.blocked_worker(job).await;
    let holder = harness.job(job).await.job_associated_agent;
    let index: usize = holder["agent-".len()..].parse().unwrap();

    harness.kill_agent(staged.run_id, index).await;
    let summary = harness.finish(&staged).await;

    assert_eq!(summary.count(status::SUCCESS), 4, "{:?}", summary.counts);
    let record = harness.job(job).await;
    assert_ne!(record.job_associated_agent, holder, "another agent took the redelivered job");
    assert_eq!(record.job_attempts, Some(2));
    let events: Vec<String> = harness.events(job).await.into_iter().map(|e| e.event_content).collect();
    assert_eq!(events, ["started (block_once)", "started (block_once)", "done (block_once)"]);
    let settled = eventually(Duration::from_secs(10), async || success_transitions(&live, job) == 1).await;
    assert!(settled, "Success transitions: {}", success_transitions(&live, job));
    let gone = eventually(Duration::from_secs(20), async || !crate::worker::running(worker_pid)).await;
    assert!(gone, "the killed agent's worker {worker_pid} was stopped with it");
    // The launchers word it their own way: `killed` (a task), `killed by signal 9` (a process).
    let killed = harness.agents(staged.run_id).await.remove(index);
    assert_eq!(killed.phase, armada::infra::launcher::AgentPhase::Failed, "{killed:?}");
    assert!(killed.detail.as_deref().unwrap_or_default().contains("killed"), "{killed:?}");
}

/// Embedded only: "every delivery was acknowledged" is read from the queue's unacknowledged
/// count, which RabbitMQ does not report (`QueueStats::unacked` is `None` there). The rule
/// itself is the agent's, whatever the broker; RabbitMQ's own redeliveries are tested in
/// `redelivery.rs` (consumer timeout) and by `an_agent_killed_mid_job_…::distributed*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_job_that_has_an_outcome_and_a_message_that_is_not_a_job_are_acked_and_skipped() {
    use armada::infra::broker::job_queue_name;
    use armada::infra::db::{JobUpdate, Mutation};
    use armada::infra::launcher::LaunchSpec;
    use armada::model::Timestamp;

    let harness = AgentHarness::new(Engines::Embedded).await;
    let project = Behaviours::new(&["ok", "ok", "ok"], 1, json!({}));
    let staged = harness.stage(project.dir()).await;
    let queue = job_queue_name(staged.run_id);

    // An agent finished the first job and recorded it, but its ack was lost.
    let mut consumer = harness.broker.consume(&queue, 1).await.unwrap();
    let delivery = consumer.next().await.unwrap().unwrap();
    let (done, _) = &staged.jobs[0];
    assert!(String::from_utf8_lossy(&delivery.body).contains(&done.to_string()));
    let outcome = Mutation::UpdateJob(JobUpdate {
        job_uuid: *done,
        job_status: Some(status::SUCCESS.into()),
        job_associated_agent: Some("agent-9".into()),
        job_attempts: Some(1),
        job_detail: None,
        job_finished: Some(Timestamp::now()),
    });
    assert_eq!(harness.backend.apply(vec![outcome]).await.unwrap(), vec![Ok(true)]);
    drop(delivery);
    drop(consumer);
    harness.broker.publish(&queue, &[bytes::Bytes::from_static(b"{not a job")]).await.unwrap();

    harness.launcher.launch(&LaunchSpec::new(staged.run_id, 1)).await.unwrap();
    let drained = eventually(RUN_LIMIT, async || {
        let stats = harness.broker.stats(&queue).await.unwrap();
        stats.ready == 0 && stats.unacked == Some(0)
    })
    .await;
    assert!(drained, "every delivery was acknowledged: {:?}", harness.broker.stats(&queue).await);
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;

    assert_eq!(summary.count(status::SUCCESS), 3, "{:?}", summary.counts);
    let skipped = harness.job(*done).await;
    assert_eq!((skipped.job_associated_agent.as_str(), skipped.job_attempts), ("agent-9", Some(1)), "not run again");
    assert!(harness.events(*done).await.is_empty(), "no event: the job did not run again");
    for (job, _) in &staged.jobs[1..] {
        assert_eq!(harness.job(*job).await.job_associated_agent, "agent-0");
    }
}

async fn an_agent_stopped_mid_job_hands_the_job_back_after_its_grace(engines: Engines) {
    use armada::infra::broker::job_queue_name;
    use armada::infra::launcher::AgentPhase;

    // The launcher waits longer than the agent's own 10 s grace for the job.
    let harness = AgentHarness::builder(engines).stop_grace(Duration::from_secs(30)).spawn().await;
    let project = Behaviours::new(&["block_once", "ok"], 1, json!({}));
    let staged = harness.start(project.dir()).await;
    let job = job_of_mode(&staged, "block_once");
    let worker_pid = project.blocked_worker(job).await;

    let started = std::time::Instant::now();
    harness.launcher.stop(staged.run_id).await.unwrap();
    let agent = harness.agents(staged.run_id).await.remove(0);
    assert_eq!(agent.phase, AgentPhase::Stopped, "{:?}", agent.detail);
    assert_eq!(agent.detail, None, "it returned by itself, within the launcher's grace");
    assert!(started.elapsed() >= Duration::from_secs(9), "the job had its 10 s grace first");

    // RabbitMQ requeues what a closed channel held as it notices the close: waited for.
    let queue = job_queue_name(staged.run_id);
    let back = eventually(Duration::from_secs(10), async || harness.broker.stats(&queue).await.unwrap().ready == 2);
    let stats = harness.broker.stats(&queue).await.unwrap();
    assert!(back.await, "the job went back to the queue, the other never left: {stats:?}");
    assert_eq!(stats.unacked.unwrap_or(0), 0, "nothing held (where the broker counts it): {stats:?}");
    assert_eq!(harness.job(job).await.job_status, status::RUNNING, "no outcome was made up");
    let gone = eventually(Duration::from_secs(20), async || !crate::worker::running(worker_pid)).await;
    assert!(gone, "the worker {worker_pid} was stopped");
}

async fn a_worker_that_fails_its_init_fails_the_agent_with_the_reason(engines: Engines) {
    use armada::infra::launcher::AgentPhase;

    let harness = AgentHarness::new(engines).await;
    let project = Behaviours::new(&["ok"], 1, json!({}));
    let broken =
        "class AgentContext:\n    async def __aenter__(self):\n        raise RuntimeError('no browser here')\n";
    std::fs::write(project.dir().join("ctx_agent_context.py"), broken).unwrap();
    let staged = harness.start(project.dir()).await;
    let ended = eventually(RUN_LIMIT, async || harness.agents(staged.run_id).await[0].phase.is_final()).await;
    assert!(ended, "the agent did not end");

    let agent = harness.agents(staged.run_id).await.remove(0);
    assert_eq!(agent.phase, AgentPhase::Failed);
    // An agent process's detail is its exit and its last words, which hold the same reason.
    let detail = agent.detail.unwrap_or_default();
    assert!(
        detail.contains("the worker could not be started: worker init failed: RuntimeError: no browser here"),
        "{detail}"
    );
    assert_eq!(harness.summary(staged.run_id).await.count(status::QUEUED), 1, "the job is left for other agents");
}
