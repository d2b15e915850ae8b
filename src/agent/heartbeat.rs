//! The agent's heartbeat: while an agent lives it stores [`AgentHeartbeat`] under
//! `{run_id}:heartbeat:agent-{i}` in the config store, renewed every `every` and expiring after
//! `ttl`, naming the job it is running. An agent handed a job that another agent recorded as
//! `Running` reads that agent's heartbeat to tell "still running there" from "that agent is
//! gone" (the redelivery rule in `jobs`).
//!
//! Beats are written by one background task, so a slow or unreachable config store never delays
//! a job: the task writes whenever the running job changes and on every tick, and a last beat
//! naming no job when the agent ends (also when its task is aborted).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use uuid::Uuid;

use crate::infra::config_store::{AgentHeartbeat, ConfigStore, ConfigStoreError};

/// How often beats are written and how long each one lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatTiming {
    pub every: Duration,
    /// Several `every`s: a beat or two lost to a slow store must not make a live agent look gone.
    pub ttl: Duration,
}

impl Default for HeartbeatTiming {
    fn default() -> Self {
        Self { every: Duration::from_secs(3), ttl: Duration::from_secs(10) }
    }
}

/// This agent's heartbeat, and the reader of other agents' ones. Dropping it writes a last beat
/// naming no job (its background task does, then ends).
pub struct Heartbeat {
    store: Arc<dyn ConfigStore>,
    run_id: Uuid,
    current: watch::Sender<Option<Uuid>>,
}

impl Heartbeat {
    /// Starts beating for `agent` (`agent-{i}`): a first beat at once, naming no job.
    pub fn start(store: Arc<dyn ConfigStore>, run_id: Uuid, agent: String, timing: HeartbeatTiming) -> Self {
        let (current, mut changes) = watch::channel(None::<Uuid>);
        let writer = store.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(timing.every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                let ended = tokio::select! {
                    _ = ticks.tick() => false,
                    changed = changes.changed() => changed.is_err(),
                };
                let job = if ended { None } else { *changes.borrow_and_update() };
                let beat = writer.put_heartbeat(run_id, &agent, &AgentHeartbeat { job }, timing.ttl).await;
                match beat {
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!(%run_id, %agent, "heartbeat stored again");
                    }
                    Ok(()) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%run_id, %agent, %error, "cannot store the heartbeat; retrying every beat");
                    }
                    Err(_) => {}
                }
                if ended {
                    break;
                }
            }
        });
        Self { store, run_id, current }
    }

    /// The agent is running `job`: written at once.
    pub fn running(&self, job: Uuid) {
        self.current.send_replace(Some(job));
    }

    /// The job's outcome is recorded: the next regular beat names no job. Not written at once
    /// (one write per job is enough): meanwhile a reader finds the outcome first.
    pub fn finished(&self) {
        self.current.send_if_modified(|current| {
            *current = None;
            false
        });
    }

    /// The job went back to the queue without an outcome: written at once, so the agent that
    /// gets it next runs it without waiting for this beat to lapse.
    pub fn released(&self) {
        self.current.send_replace(None);
    }

    /// Agent `agent`'s last heartbeat in this run; `None` once it lapsed.
    pub async fn of(&self, agent: &str) -> Result<Option<AgentHeartbeat>, ConfigStoreError> {
        self.store.get_heartbeat(self.run_id, agent).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::config_store::memory::MemoryConfigStore;

    const FAST: HeartbeatTiming =
        HeartbeatTiming { every: Duration::from_millis(100), ttl: Duration::from_millis(400) };

    async fn read(store: &MemoryConfigStore, run_id: Uuid) -> Option<AgentHeartbeat> {
        store.get_heartbeat(run_id, "agent-0").await.unwrap()
    }

    /// Polls until the stored heartbeat is `wanted`.
    async fn until(store: &MemoryConfigStore, run_id: Uuid, wanted: Option<AgentHeartbeat>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while read(store, run_id).await != wanted {
            assert!(tokio::time::Instant::now() < deadline, "heartbeat never became {wanted:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_heartbeat_names_the_running_job_lives_while_the_agent_does_and_names_none_at_the_end() {
        let store = Arc::new(MemoryConfigStore::new());
        let run_id = Uuid::new_v4();
        let job = Uuid::new_v4();
        let heartbeat = Heartbeat::start(store.clone(), run_id, "agent-0".into(), FAST);
        until(&store, run_id, Some(AgentHeartbeat { job: None })).await;
        heartbeat.running(job);
        until(&store, run_id, Some(AgentHeartbeat { job: Some(job) })).await;
        // Renewed: still there after several ttls.
        tokio::time::sleep(FAST.ttl * 3).await;
        assert_eq!(read(&store, run_id).await, Some(AgentHeartbeat { job: Some(job) }));
        assert_eq!(heartbeat.of("agent-0").await.unwrap(), Some(AgentHeartbeat { job: Some(job) }));
        assert_eq!(heartbeat.of("agent-1").await.unwrap(), None, "another agent never beat");

        heartbeat.finished();
        until(&store, run_id, Some(AgentHeartbeat { job: None })).await;
        heartbeat.running(job);
        until(&store, run_id, Some(AgentHeartbeat { job: Some(job) })).await;
        drop(heartbeat);
        until(&store, run_id, Some(AgentHeartbeat { job: None })).await;
        until(&store, run_id, None).await;
    }

    #[tokio::test]
    async fn a_released_job_is_written_at_once() {
        let store = Arc::new(MemoryConfigStore::new());
        let run_id = Uuid::new_v4();
        let slow = HeartbeatTiming { every: Duration::from_secs(60), ttl: Duration::from_secs(120) };
        let heartbeat = Heartbeat::start(store.clone(), run_id, "agent-0".into(), slow);
        heartbeat.running(Uuid::new_v4());
        until(&store, run_id, Some(AgentHeartbeat { job: heartbeat.current.borrow().to_owned() })).await;
        heartbeat.released();
        until(&store, run_id, Some(AgentHeartbeat { job: None })).await;
    }
}
