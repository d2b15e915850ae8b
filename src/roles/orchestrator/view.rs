//! What the orchestrator shows about runs: one run's [`RunView`] (its record and counts from the
//! backend, its queue from the broker, each agent from the launcher and the jobs), the list of
//! active runs, and a run's bundle.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Orchestrator;
use super::dispatch::NO_AGENT;
use super::error::StepFailure;
use super::registry::ActiveRun;
use crate::http::ApiError;
use crate::infra::broker::job_queue_name;
use crate::infra::launcher::AgentStatus;
use crate::model::{AgentSummary, RunStatus, Timestamp, agent_name};

/// `GET /bot/runs/{run_uuid}` (read back by `armada launch` and `armada runs`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunView {
    pub run_uuid: Uuid,
    /// `dispatching`, `running`, `completed`, `failed`, `cancelled`; `null` for a run recorded
    /// through the monitoring API.
    pub status: Option<RunStatus>,
    /// Why it failed or was cancelled; the job counts once it completed.
    pub detail: Option<String>,
    pub number_of_agents: Option<i64>,
    pub number_of_jobs: Option<i64>,
    /// Jobs by status (`Queued`, `Running`, `Success`, `Failed`, `Cancelled`).
    pub counts: BTreeMap<String, u64>,
    /// Jobs with an outcome.
    pub finished_jobs: u64,
    pub started: Timestamp,
    pub finished: Option<Timestamp>,
    /// The job queue, while the run is dispatching or running.
    pub queue: Option<QueueView>,
    /// One per pod index, then any other agent name the jobs were recorded under (but
    /// `Unknown`, the name of jobs no agent took).
    pub agents: Vec<AgentView>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueView {
    /// Jobs waiting.
    pub ready: u64,
    /// Jobs delivered and not acknowledged, when the broker can tell.
    pub unacked: Option<u64>,
    /// Agents consuming.
    pub consumers: u32,
}

/// One agent: the launcher's view (phase, pid) merged with what its jobs say.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AgentView {
    /// `null` for a name the jobs carry that is no pod index of the run.
    pub pod_index: Option<usize>,
    /// `agent-{pod_index}`, as the agents record their jobs.
    pub agent: String,
    /// `pending`, `running`, `succeeded`, `failed`, `stopped`; `null` when this orchestrator
    /// does not know the agent (another process launched it, or the run ended long ago).
    #[schema(value_type = Option<String>)]
    pub phase: Option<crate::infra::launcher::AgentPhase>,
    pub detail: Option<String>,
    pub pid: Option<u32>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub jobs_taken: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub current_job: Option<Uuid>,
    pub last_seen: Option<Timestamp>,
}

/// `GET /bot/runs`: the runs this orchestrator is dispatching or watching.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveRunsView {
    pub runs: Vec<ActiveRunView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ActiveRunView {
    pub run_uuid: Uuid,
    pub status: RunStatus,
    pub number_of_agents: usize,
    pub number_of_jobs: usize,
    pub started: Timestamp,
    /// The queue as last polled (about once a second); `null` before the first poll.
    pub queue: Option<QueueView>,
}

impl Orchestrator {
    /// The run as the backend, the broker and the launcher see it; `Ok(None)` for an unknown run.
    pub async fn run_view(&self, run_id: Uuid) -> Result<Option<RunView>, StepFailure> {
        let Some(summary) =
            self.backend.run_summary(run_id).await.map_err(|e| StepFailure::backend("reading the run", e))?
        else {
            return Ok(None);
        };
        let run = summary.run;
        let active = run.run_status.is_some_and(|s| !s.is_final());
        let queue = if active {
            self.broker.stats(&job_queue_name(run_id)).await.ok().map(|stats| QueueView {
                ready: stats.ready,
                unacked: stats.unacked,
                consumers: stats.consumers,
            })
        } else {
            None
        };
        let launched = self.agent_statuses(run_id).await;
        let pods = run.number_of_agents.map_or(0, |n| n.max(0) as usize).max(launched.len());
        Ok(Some(RunView {
            run_uuid: run.run_uuid,
            status: run.run_status,
            detail: run.run_detail,
            number_of_agents: run.number_of_agents,
            number_of_jobs: run.number_of_jobs,
            finished_jobs: summary
                .counts
                .iter()
                .filter(|(s, _)| crate::model::status::is_final(s))
                .map(|(_, n)| n)
                .sum(),
            counts: summary.counts,
            started: run.run_datetime,
            finished: run.run_finished,
            queue,
            agents: merge_agents(pods, &launched, summary.agents),
        }))
    }

    pub fn active_runs_view(&self) -> ActiveRunsView {
        ActiveRunsView { runs: self.active_runs().iter().map(|run| active_run_view(run)).collect() }
    }

    /// The run's project bundle (tar.gz) while its keys last.
    pub async fn bundle(&self, run_id: Uuid) -> Result<Option<Bytes>, StepFailure> {
        self.config_store.get_bundle(run_id).await.map_err(|e| StepFailure::config_store("reading the bundle", e))
    }
}

fn active_run_view(run: &ActiveRun) -> ActiveRunView {
    use std::sync::atomic::Ordering;
    ActiveRunView {
        run_uuid: run.run_id,
        status: run.status(),
        number_of_agents: run.number_of_agents,
        number_of_jobs: run.number_of_jobs,
        started: run.started,
        queue: run.queue_polled.load(Ordering::Relaxed).then(|| QueueView {
            ready: run.queue_ready.load(Ordering::Relaxed),
            unacked: None,
            consumers: run.queue_consumers.load(Ordering::Relaxed) as u32,
        }),
    }
}

/// One entry per pod index (launcher status by index, job summary by `agent-{i}`), then the
/// job summaries of any other agent name but `Unknown` (jobs no agent took: queued, or closed
/// by a cancel or a failure).
fn merge_agents(pods: usize, launched: &[AgentStatus], mut summaries: Vec<AgentSummary>) -> Vec<AgentView> {
    summaries.retain(|summary| summary.agent != NO_AGENT);
    let mut views: Vec<AgentView> = (0..pods)
        .map(|pod_index| {
            let name = agent_name(pod_index);
            let status = launched.iter().find(|s| s.pod_index == pod_index);
            let summary = summaries.iter().position(|s| s.agent == name).map(|i| summaries.swap_remove(i));
            view(Some(pod_index), name, status, summary)
        })
        .collect();
    summaries.sort_by(|a, b| a.agent.cmp(&b.agent));
    views.extend(summaries.into_iter().map(|summary| view(None, summary.agent.clone(), None, Some(summary))));
    views
}

fn view(
    pod_index: Option<usize>,
    agent: String,
    status: Option<&AgentStatus>,
    jobs: Option<AgentSummary>,
) -> AgentView {
    AgentView {
        pod_index,
        agent,
        phase: status.map(|s| s.phase),
        detail: status.and_then(|s| s.detail.clone()),
        pid: status.and_then(|s| s.pid),
        started_at: status.and_then(|s| s.started_at),
        finished_at: status.and_then(|s| s.finished_at),
        jobs_taken: jobs.as_ref().map_or(0, |j| j.jobs_taken),
        succeeded: jobs.as_ref().map_or(0, |j| j.succeeded),
        failed: jobs.as_ref().map_or(0, |j| j.failed),
        current_job: jobs.as_ref().and_then(|j| j.current_job),
        last_seen: jobs.as_ref().and_then(|j| j.last_seen),
    }
}

/// A view lookup that failed, as HTTP.
pub fn view_error(failure: StepFailure) -> ApiError {
    failure.into_api_error("could not read the run", "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::launcher::AgentPhase;

    fn summary(agent: &str, jobs_taken: u64) -> AgentSummary {
        AgentSummary {
            agent: agent.into(),
            jobs_taken,
            succeeded: jobs_taken,
            failed: 0,
            current_job: None,
            last_seen: None,
        }
    }

    #[test]
    fn agents_merge_by_pod_index_and_keep_other_names() {
        let launched = [AgentStatus { phase: AgentPhase::Running, ..AgentStatus::pending(1) }, AgentStatus::pending(0)];
        let summaries = vec![summary("Unknown", 3), summary("legacy-bot", 1), summary("agent-1", 4)];
        let views = merge_agents(2, &launched, summaries);
        let shown: Vec<(Option<usize>, &str, Option<AgentPhase>, u64)> =
            views.iter().map(|v| (v.pod_index, v.agent.as_str(), v.phase, v.jobs_taken)).collect();
        assert_eq!(
            shown,
            [
                (Some(0), "agent-0", Some(AgentPhase::Pending), 0),
                (Some(1), "agent-1", Some(AgentPhase::Running), 4),
                (None, "legacy-bot", None, 1)
            ]
        );
    }
}
