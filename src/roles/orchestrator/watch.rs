//! Watching a running run until it ends, from the job outcomes rather than a timer.
//!
//! The watcher follows the backend's live stream (subscribed before the first job was
//! published) and counts this run's jobs that reached a final status. Its count may run ahead
//! of the truth (a message seen twice across a re-read) but never behind it, so when it
//! reaches the number of jobs one `run_summary` confirms the end: a run is marked complete a
//! moment after its last outcome is stored. A gap in the stream (a lagging or reconnected
//! listener) and a slow timer re-read the counts as a safety net. Every `agent_poll` it asks
//! the launcher how the agents are: an agent that ended without finishing (killed, crashed)
//! has its heartbeat cleared at once ([`release_ended_agents`]), and when all have ended with
//! jobs left, the run has failed.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use super::Orchestrator;
use super::finish::Outcome;
use super::registry::ActiveRun;
use crate::agent::heartbeat::HeartbeatTiming;
use crate::clients::{LiveItem, LiveStream};
use crate::infra::broker::job_queue_name;
use crate::infra::config_store::{AgentHeartbeat, ConfigStore};
use crate::infra::launcher::{AgentPhase, AgentStatus};
use crate::model::{agent_name, status};
use crate::observability::names;
use crate::records::hub::kind;

/// How long to wait before re-reading the counts after the backend could not answer.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
/// Distinct agent failure reasons quoted in a failed run's detail.
const MAX_REASONS: usize = 5;

/// Follows the run until it ends, then finishes it. Returns early when the run is cancelled or
/// the server stops (`stop_watching`).
pub(crate) async fn watch(orchestrator: Arc<Orchestrator>, run: Arc<ActiveRun>, live: LiveStream) {
    let mut watcher = Watcher {
        tally: Tally::new(run.run_id, run.number_of_jobs as u64),
        released: HashSet::new(),
        orchestrator,
        run,
    };
    if let Some(outcome) = watcher.follow(live).await {
        watcher.orchestrator.finish_run(&watcher.run, outcome).await;
    }
}

struct Watcher {
    orchestrator: Arc<Orchestrator>,
    run: Arc<ActiveRun>,
    tally: Tally,
    /// Agents whose heartbeat was cleared after they ended.
    released: HashSet<usize>,
}

impl Watcher {
    /// The run's outcome, or `None` when watching was stopped.
    async fn follow(&mut self, live: LiveStream) -> Option<Outcome> {
        let settings = &self.orchestrator.settings;
        let mut agent_poll = tokio::time::interval(settings.agent_poll);
        agent_poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // Its first tick is immediate: jobs may have ended while the start finished.
        let mut reconcile = tokio::time::interval(settings.reconcile_every);
        reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut live = Some(live);
        let mut check_at: Option<Instant> = None;
        loop {
            let due = check_at;
            let check_due = async move {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let next_item = async {
                match live.as_mut() {
                    Some(stream) => stream.next().await,
                    None => std::future::pending().await,
                }
            };
            // Not biased: a busy stream must not starve the checks and polls.
            let verdict = tokio::select! {
                () = self.run.stop_watching.cancelled() => return None,
                item = next_item => {
                    match item {
                        Some(LiveItem::Message { kind, data }) => {
                            if self.tally.observe(&kind, &data) {
                                check_at.get_or_insert_with(Instant::now);
                            }
                        }
                        Some(LiveItem::Gap) => check_at = Some(Instant::now()),
                        None => {
                            tracing::warn!(run_id = %self.run.run_id, "the live stream ended; following the counts until it is back");
                            live = None;
                            check_at = Some(Instant::now());
                        }
                    }
                    None
                }
                () = check_due => {
                    check_at = None;
                    let (verdict, retry) = self.check_counts().await;
                    if retry {
                        check_at = Some(Instant::now() + RETRY_AFTER);
                    }
                    verdict
                }
                _ = reconcile.tick() => {
                    if live.is_none() {
                        live = self.orchestrator.backend.live().await.ok();
                    }
                    check_at = Some(Instant::now());
                    None
                }
                _ = agent_poll.tick() => self.poll_agents().await,
            };
            if verdict.is_some() {
                return verdict;
            }
        }
    }

    /// Re-reads the run's counts: complete when every job has an outcome. The second value
    /// asks for a retry (the backend did not answer).
    async fn check_counts(&mut self) -> (Option<Outcome>, bool) {
        match self.orchestrator.backend.run_summary(self.run.run_id).await {
            Ok(Some(summary)) => {
                self.tally.resnapshot(summary.finished());
                let done = summary.finished() >= self.run.number_of_jobs as u64;
                (done.then_some(Outcome::Completed(summary)), false)
            }
            Ok(None) => (Some(Outcome::Vanished), false),
            Err(e) => {
                tracing::warn!(run_id = %self.run.run_id, error = %e, "cannot read the run's counts; retrying");
                (None, true)
            }
        }
    }

    /// Records the queue's depth, and ends the run when every agent has ended.
    async fn poll_agents(&mut self) -> Option<Outcome> {
        let run_id = self.run.run_id;
        if let Ok(stats) = self.orchestrator.broker.stats(&job_queue_name(run_id)).await {
            self.run.record_queue(stats.ready, stats.consumers);
        }
        let agents = self.orchestrator.launcher.agents(run_id).await.ok()?;
        release_ended_agents(self.orchestrator.config_store.as_ref(), run_id, &agents, &mut self.released).await;
        if agents.is_empty() || !agents.iter().all(|agent| agent.phase.is_final()) {
            return None;
        }
        // Every agent ended: either the work is done, or nobody is left to do it.
        match self.orchestrator.backend.run_summary(run_id).await {
            Ok(Some(summary)) => {
                let total = self.run.number_of_jobs as u64;
                if summary.finished() >= total {
                    return Some(Outcome::Completed(summary));
                }
                let unfinished = total - summary.finished();
                let reasons = agent_reasons(&agents);
                Some(Outcome::Failed {
                    reason: format!("every agent ended with {unfinished} of {total} jobs unfinished ({reasons})"),
                    job_detail: format!("no agent was left to run it ({reasons})"),
                })
            }
            Ok(None) => Some(Outcome::Vanished),
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "every agent ended but the run's counts cannot be read; retrying");
                None
            }
        }
    }
}

/// Clears the heartbeat of every agent that ended without finishing (killed, crashed, evicted,
/// forced to stop) and is not in `released` yet, adding it there. Such an agent runs nothing
/// any more (its worker went with it), but its last beat would still name its job until the
/// beat lapsed: an agent holding that job, redelivered, waits for the beat to end (the
/// redelivery rule in `agent::jobs`). Cleared, the job runs again at the holder's next look. A
/// store that cannot be written is tried again at the next poll; the beat lapses meanwhile.
async fn release_ended_agents(
    store: &dyn ConfigStore,
    run_id: Uuid,
    agents: &[AgentStatus],
    released: &mut HashSet<usize>,
) {
    let ended = agents.iter().filter(|a| matches!(a.phase, AgentPhase::Failed | AgentPhase::Stopped));
    for agent in ended {
        if released.contains(&agent.pod_index) {
            continue;
        }
        let name = agent_name(agent.pod_index);
        let idle = AgentHeartbeat { job: None };
        match store.put_heartbeat(run_id, &name, &idle, HeartbeatTiming::default().ttl).await {
            Ok(()) => {
                tracing::debug!(%run_id, agent = %name, "the ended agent's heartbeat is cleared");
                released.insert(agent.pod_index);
            }
            Err(error) => tracing::warn!(%run_id, agent = %name, %error, "cannot clear the ended agent's heartbeat"),
        }
    }
}

/// `agent-0, agent-1: cannot start the browser; agent-2: killed`: who ended how, identical
/// reasons together, the first few only.
pub(crate) fn agent_reasons(agents: &[AgentStatus]) -> String {
    let mut reasons: Vec<(String, Vec<String>)> = Vec::new();
    for agent in agents {
        let reason = agent.detail.clone().unwrap_or_else(|| format!("ended {:?}", agent.phase).to_lowercase());
        let name = agent_name(agent.pod_index);
        match reasons.iter_mut().find(|(known, _)| *known == reason) {
            Some((_, names)) => names.push(name),
            None => reasons.push((reason, vec![name])),
        }
    }
    let more = reasons.len().saturating_sub(MAX_REASONS);
    let mut text: Vec<String> = reasons
        .into_iter()
        .take(MAX_REASONS)
        .map(|(reason, names)| format!("{}: {reason}", names.join(", ")))
        .collect();
    if more > 0 {
        text.push(format!("and {more} other reasons"));
    }
    text.join("; ")
}

/// This run's finished jobs as the stream tells them: `base` (the last re-read) plus the jobs
/// seen finishing since. Never below the truth; above it only by messages that were in flight
/// at the re-read, which the confirming re-read corrects.
struct Tally {
    run_id: String,
    total: u64,
    base: u64,
    finished: HashSet<Uuid>,
    /// When each running job was seen starting, for the job duration histogram.
    running_since: HashMap<Uuid, Instant>,
}

/// Bound on `running_since` (entries whose end was missed in a gap would otherwise stay).
const MAX_TRACKED_RUNNING: usize = 100_000;

impl Tally {
    fn new(run_id: Uuid, total: u64) -> Self {
        Self { run_id: run_id.to_string(), total, base: 0, finished: HashSet::new(), running_since: HashMap::new() }
    }

    /// Counts one live message; true when the count reaches the number of jobs.
    fn observe(&mut self, message_kind: &str, data: &Value) -> bool {
        if message_kind != kind::UPDATE_JOB_STATUS && message_kind != kind::NEW_JOB {
            return false;
        }
        if data.get("run_uuid").and_then(Value::as_str) != Some(self.run_id.as_str()) {
            return false;
        }
        let job = data.get("job_uuid").and_then(Value::as_str).and_then(|raw| Uuid::parse_str(raw).ok());
        let (Some(job), Some(job_status)) = (job, data.get("job_status").and_then(Value::as_str)) else {
            return false;
        };
        if status::is_final(job_status) {
            if self.finished.insert(job)
                && let Some(since) = self.running_since.remove(&job)
            {
                metrics::histogram!(names::JOB_DURATION).record(since.elapsed().as_secs_f64());
            }
        } else {
            self.finished.remove(&job);
            if job_status == status::RUNNING {
                if self.running_since.len() >= MAX_TRACKED_RUNNING {
                    self.running_since.clear();
                }
                self.running_since.entry(job).or_insert_with(Instant::now);
            }
        }
        self.base + self.finished.len() as u64 >= self.total
    }

    /// After a re-read: everything seen so far is in `finished`.
    fn resnapshot(&mut self, finished: u64) {
        self.base = finished;
        self.finished.clear();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::infra::config_store::memory::MemoryConfigStore;

    fn job(run: Uuid, job: Uuid, status: &str) -> Value {
        json!({"run_uuid": run, "job_uuid": job, "job_status": status})
    }

    #[test]
    fn the_tally_counts_each_finished_job_of_its_run_once() {
        let (run, other) = (Uuid::new_v4(), Uuid::new_v4());
        let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        let mut tally = Tally::new(run, 3);
        assert!(!tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[0], "Running")));
        assert!(!tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[0], "Success")));
        assert!(!tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[0], "Failed")), "counted once");
        assert!(!tally.observe(kind::UPDATE_JOB_STATUS, &job(other, Uuid::new_v4(), "Success")), "another run");
        assert!(!tally.observe(kind::NEW_EVENT, &job(run, jobs[1], "Success")), "not a job message");
        assert!(!tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[1], "Failed")));
        assert!(tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[2], "Cancelled")));
    }

    #[test]
    fn after_a_reread_the_count_starts_from_it_and_never_falls_behind() {
        let run = Uuid::new_v4();
        let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
        let mut tally = Tally::new(run, 4);
        tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[0], "Success"));
        // A gap: two outcomes were missed; the re-read says 3 finished.
        tally.resnapshot(3);
        // A message that was in flight at the re-read counts again: ahead, never behind.
        assert!(tally.observe(kind::UPDATE_JOB_STATUS, &job(run, jobs[0], "Success")));
    }

    #[test]
    fn agent_reasons_group_identical_details() {
        let ended = |pod_index, detail: Option<&str>, phase| AgentStatus {
            detail: detail.map(str::to_owned),
            phase,
            ..AgentStatus::pending(pod_index)
        };
        let agents = [
            ended(0, Some("cannot start the browser"), AgentPhase::Failed),
            ended(1, Some("killed"), AgentPhase::Failed),
            ended(2, Some("cannot start the browser"), AgentPhase::Failed),
            ended(3, None, AgentPhase::Succeeded),
        ];
        assert_eq!(
            agent_reasons(&agents),
            "agent-0, agent-2: cannot start the browser; agent-1: killed; agent-3: ended succeeded"
        );
    }

    #[tokio::test]
    async fn an_agent_that_ended_without_finishing_has_its_heartbeat_cleared_once() {
        let store = MemoryConfigStore::new();
        let run = Uuid::new_v4();
        let long = std::time::Duration::from_secs(600);
        for i in 0..4 {
            let beat = AgentHeartbeat { job: Some(Uuid::new_v4()) };
            store.put_heartbeat(run, &agent_name(i), &beat, long).await.unwrap();
        }
        let with = |pod_index, phase| AgentStatus { phase, ..AgentStatus::pending(pod_index) };
        let agents = [
            with(0, AgentPhase::Running),
            with(1, AgentPhase::Failed),
            with(2, AgentPhase::Stopped),
            with(3, AgentPhase::Succeeded),
        ];
        let mut released = HashSet::new();
        release_ended_agents(&store, run, &agents, &mut released).await;
        assert_eq!(released, HashSet::from([1, 2]));
        let job_of = async |i| store.get_heartbeat(run, &agent_name(i)).await.unwrap().and_then(|beat| beat.job);
        assert!(job_of(0).await.is_some(), "a running agent keeps its beat");
        assert_eq!((job_of(1).await, job_of(2).await), (None, None), "the killed and the stopped one hold nothing");
        assert!(job_of(3).await.is_some(), "an agent that ended on its own wrote its own last beat");

        // Once only: a beat stored later under that name (a replacement pod of the same index)
        // is left alone.
        let beat = AgentHeartbeat { job: Some(Uuid::new_v4()) };
        store.put_heartbeat(run, &agent_name(1), &beat, long).await.unwrap();
        release_ended_agents(&store, run, &agents, &mut released).await;
        assert_eq!(job_of(1).await, beat.job);
    }
}
