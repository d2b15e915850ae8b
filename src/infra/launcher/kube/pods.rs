//! What a run's pods say about its agents: each pod read as an [`AgentStatus`] by its
//! completion index, and [`RunPods`], the per-run state the pod watch feeds, which applies the
//! [`PendingRule`] to agents that never started. Pure: the watch task in `mod.rs` does the IO.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::job::COMPLETION_INDEX_ANNOTATION;
use super::pending::{HOPELESS_REASONS, PendingRule, stuck_reason};
use crate::infra::launcher::{AgentPhase, AgentStatus};
use crate::model::Timestamp;

fn timestamp(time: &Time) -> Timestamp {
    Timestamp::from_micros(time.0.as_microsecond())
}

/// The pod's completion index: its annotation, else its label (both set by Kubernetes).
pub fn pod_index(pod: &Pod) -> Option<usize> {
    let from = |map: &Option<BTreeMap<String, String>>| map.as_ref()?.get(COMPLETION_INDEX_ANNOTATION)?.parse().ok();
    from(&pod.metadata.annotations).or_else(|| from(&pod.metadata.labels))
}

fn describe_termination(t: &ContainerStateTerminated) -> String {
    let mut text = match t.signal {
        Some(signal) if t.exit_code == 0 => format!("killed by signal {signal}"),
        _ => format!("exited with code {}", t.exit_code),
    };
    if let Some(reason) = t.reason.as_deref().filter(|r| !r.is_empty()) {
        text.push_str(&format!(" ({reason})"));
    }
    if let Some(message) = t.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    text
}

fn reason_and_message(reason: Option<&str>, message: Option<&str>) -> Option<String> {
    let reason = reason.filter(|r| !r.is_empty());
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    match (reason, message) {
        (Some(reason), Some(message)) => Some(format!("{reason}: {message}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_string()),
        (None, None) => None,
    }
}

/// How one pod's agent is doing. Pending pods say why they wait (`ImagePullBackOff: …`,
/// `Unschedulable: …`); failed ones how they ended (`exited with code 1 (Error): …`,
/// `Evicted: …`).
pub fn pod_agent_status(index: usize, pod: &Pod) -> AgentStatus {
    let status = pod.status.clone().unwrap_or_default();
    let container = status.container_statuses.as_ref().and_then(|all| all.first());
    let state = container.and_then(|c| c.state.clone()).unwrap_or_default();
    let started_at = state
        .running
        .as_ref()
        .and_then(|r| r.started_at.as_ref())
        .or_else(|| state.terminated.as_ref().and_then(|t| t.started_at.as_ref()))
        .or(status.start_time.as_ref())
        .map(timestamp);
    let finished_at = state.terminated.as_ref().and_then(|t| t.finished_at.as_ref()).map(timestamp);
    let waiting = state.waiting.as_ref().and_then(|w| reason_and_message(w.reason.as_deref(), w.message.as_deref()));
    let pod_reason = reason_and_message(status.reason.as_deref(), status.message.as_deref());
    let (phase, detail) = match status.phase.as_deref() {
        Some("Running") => (AgentPhase::Running, None),
        Some("Succeeded") => (AgentPhase::Succeeded, None),
        Some("Failed") => {
            let detail = state
                .terminated
                .as_ref()
                .map(describe_termination)
                .or(pod_reason)
                .unwrap_or_else(|| "pod failed".into());
            (AgentPhase::Failed, Some(detail))
        }
        Some("Unknown") => {
            (AgentPhase::Running, Some(pod_reason.unwrap_or_else(|| "pod state unknown (node unreachable?)".into())))
        }
        _ => {
            let unscheduled =
                status.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled" && c.status == "False");
            let why = waiting
                .or_else(|| unscheduled.and_then(|c| reason_and_message(c.reason.as_deref(), c.message.as_deref())))
                .or(pod_reason);
            (AgentPhase::Pending, why)
        }
    };
    let finished_at = match phase {
        AgentPhase::Succeeded | AgentPhase::Failed => finished_at.or_else(|| Some(Timestamp::now())),
        _ => None,
    };
    AgentStatus { pod_index: index, phase, detail, pid: None, started_at, finished_at }
}

fn created(pod: &Pod) -> Option<&Time> {
    pod.metadata.creation_timestamp.as_ref()
}

/// A moment: monotonic for measuring waits, wall-clock for showing when an agent was given up.
#[derive(Debug, Clone, Copy)]
struct Since {
    at: Instant,
    wall: Timestamp,
}

impl Since {
    fn at(at: Instant) -> Self {
        Self { at, wall: Timestamp::now() }
    }

    fn wall_after(self, wait: Duration) -> Timestamp {
        let micros = i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
        Timestamp::from_micros(self.wall.as_micros().saturating_add(micros))
    }
}

/// A run's agents as its pods' watch reports them.
///
/// Rules: each index follows its newest pod (Kubernetes replaces a failed pod of an index up to
/// the Job's backoff limit); an ended agent's phase is never rewritten by its pod's deletion;
/// a pod deleted before it ended is `Stopped` when the run is being stopped, else `Failed`;
/// once the run is stopping, agents that end are `Stopped`. With a [`PendingRule`], an agent
/// whose pod is stuck (or that has no pod) for longer than its timeout reads as `Failed` — a
/// verdict made when the agents are read, so a pod that starts after all reads as it is.
#[derive(Debug, Clone)]
pub struct RunPods {
    /// How each index's pod last read, before the pending rule.
    agents: Vec<AgentStatus>,
    /// Name of the pod each index follows.
    current: Vec<Option<String>>,
    /// Since when the pod each index follows has been stuck (see [`stuck_reason`]).
    stuck_since: Vec<Option<Since>>,
    /// When the run's Job was created.
    launched: Since,
    pending: Option<PendingRule>,
    /// Pods that exist now, by name.
    live: BTreeMap<String, Pod>,
    stopping: bool,
    /// Names seen since the watch (re)started listing; `None` outside a relist.
    relist: Option<BTreeSet<String>>,
    /// True once the watch has listed the pods at least once.
    synced: bool,
}

impl RunPods {
    pub fn new(agents: usize) -> Self {
        Self {
            agents: (0..agents).map(AgentStatus::pending).collect(),
            current: vec![None; agents],
            stuck_since: vec![None; agents],
            launched: Since::at(Instant::now()),
            pending: None,
            live: BTreeMap::new(),
            stopping: false,
            relist: None,
            synced: false,
        }
    }

    /// Agents that never start are given up after `rule`'s timeout, counted from now (the
    /// Job's creation) or from when their pod got stuck.
    pub fn with_pending_rule(mut self, rule: PendingRule) -> Self {
        self.pending = Some(rule);
        self
    }

    /// The agents now.
    pub fn agents(&self) -> Vec<AgentStatus> {
        self.agents_at(Instant::now())
    }

    /// The agents as they read at `now`: the pods' statuses, with the pending rule applied to
    /// the agents that have not ended (unless the run is stopping: those are being stopped).
    pub fn agents_at(&self, now: Instant) -> Vec<AgentStatus> {
        let mut agents = self.agents.clone();
        let Some(rule) = self.pending.as_ref().filter(|_| !self.stopping) else { return agents };
        for (index, agent) in agents.iter_mut().enumerate().filter(|(_, a)| !a.phase.is_final()) {
            if let Some((detail, finished_at)) = self.given_up(rule, index, agent, now) {
                agent.phase = AgentPhase::Failed;
                agent.detail = Some(detail);
                agent.finished_at = Some(finished_at);
            }
        }
        agents
    }

    /// Why the agent at `index` (not ended) counts as failed at `now`, and since when.
    fn given_up(
        &self,
        rule: &PendingRule,
        index: usize,
        agent: &AgentStatus,
        now: Instant,
    ) -> Option<(String, Timestamp)> {
        let Some(name) = &self.current[index] else {
            let overdue = now.saturating_duration_since(self.launched.at) >= rule.timeout;
            return overdue.then(|| (rule.no_pod_detail(self.synced), self.launched.wall_after(rule.timeout)));
        };
        let reason = stuck_reason(self.live.get(name)?)?;
        let since = self.stuck_since[index]?;
        let detail = agent.detail.clone().unwrap_or_else(|| reason.to_string());
        if HOPELESS_REASONS.contains(&reason) {
            return Some((detail, since.wall));
        }
        let overdue = now.saturating_duration_since(since.at) >= rule.timeout;
        overdue.then(|| (rule.stuck_detail(&detail), since.wall_after(rule.timeout)))
    }

    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Pods that exist and have not ended: what stopping the run waits for.
    pub fn unfinished_pods(&self) -> Vec<String> {
        self.live
            .iter()
            .filter(|(_, pod)| {
                !matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
            })
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A pod was added or changed.
    pub fn apply(&mut self, pod: &Pod) {
        self.apply_at(pod, Instant::now());
    }

    /// A pod was added or changed, seen at `now`.
    pub fn apply_at(&mut self, pod: &Pod, now: Instant) {
        let (Some(name), Some(index)) = (pod.metadata.name.clone(), pod_index(pod)) else { return };
        if index >= self.agents.len() {
            return;
        }
        if let Some(relist) = &mut self.relist {
            relist.insert(name.clone());
        }
        self.live.insert(name.clone(), pod.clone());
        let same_pod = self.current[index].as_deref() == Some(name.as_str());
        let follows = match self.current[index].as_ref().and_then(|current| self.live.get(current)) {
            Some(current) if !same_pod => created(pod) >= created(current),
            _ => true,
        };
        // How a pod ended is final; only a newer pod of the index (a retry) moves the agent on.
        let ended =
            self.agents[index].phase == AgentPhase::Stopped || (same_pod && self.agents[index].phase.is_final());
        if !follows || ended {
            return;
        }
        self.current[index] = Some(name);
        // A stuck pod's wait is counted from when it was first seen stuck, across the reasons it
        // alternates between (ErrImagePull, ImagePullBackOff, ErrImagePull, …).
        self.stuck_since[index] = match (stuck_reason(pod), self.stuck_since[index]) {
            (None, _) => None,
            (Some(_), Some(since)) if same_pod => Some(since),
            (Some(_), _) => Some(Since::at(now)),
        };
        let mut status = pod_agent_status(index, pod);
        if self.stopping && status.phase.is_final() {
            status.detail = match status.phase {
                AgentPhase::Failed => status.detail.map(|d| format!("stopped; the agent {d}")),
                _ => None,
            };
            status.phase = AgentPhase::Stopped;
        }
        self.agents[index] = status;
    }

    /// A pod was deleted.
    pub fn delete(&mut self, pod: &Pod) {
        let Some(name) = pod.metadata.name.clone() else { return };
        let index = pod_index(pod).filter(|i| *i < self.agents.len());
        let followed = index.filter(|i| self.current[*i].as_deref() == Some(name.as_str()));
        if followed.is_some() {
            // Its last state may say it ended just before it went.
            self.apply(pod);
        }
        self.live.remove(&name);
        let Some(index) = followed else { return };
        let stopping = self.stopping;
        let agent = &mut self.agents[index];
        if !agent.phase.is_final() {
            agent.finished_at = Some(Timestamp::now());
            if stopping {
                agent.phase = AgentPhase::Stopped;
            } else {
                agent.phase = AgentPhase::Failed;
                agent.detail = Some(format!("pod {name} was deleted before the agent ended"));
            }
        }
    }

    /// The watch starts (re)listing every pod.
    pub fn relist_started(&mut self) {
        self.relist = Some(BTreeSet::new());
    }

    /// The relist is complete: pods that were not listed were deleted while the watch was down.
    pub fn relist_done(&mut self) {
        let Some(listed) = self.relist.take() else { return };
        let gone: Vec<Pod> =
            self.live.iter().filter(|(name, _)| !listed.contains(*name)).map(|(_, pod)| pod.clone()).collect();
        for pod in gone {
            self.delete(&pod);
        }
        self.synced = true;
    }

    /// From now on, agents that end are `Stopped`.
    pub fn stopping(&mut self) {
        self.stopping = true;
    }

    /// Every agent that has not ended is `Stopped`, with `detail` (why it was forced, if it was).
    pub fn mark_stopped(&mut self, detail: Option<&str>) {
        let now = Timestamp::now();
        for agent in self.agents.iter_mut().filter(|a| !a.phase.is_final()) {
            agent.phase = AgentPhase::Stopped;
            agent.detail = detail.map(String::from);
            agent.finished_at = Some(now);
        }
    }

    /// The agents these pods play are `Stopped` with `detail`: said before the pods are
    /// force-deleted, so that their deletion does not read as a plain stop.
    pub fn force_stopped(&mut self, pod_names: &[String], detail: &str) {
        let now = Timestamp::now();
        for (agent, current) in self.agents.iter_mut().zip(&self.current) {
            if !agent.phase.is_final() && current.as_ref().is_some_and(|name| pod_names.contains(name)) {
                agent.phase = AgentPhase::Stopped;
                agent.detail = Some(detail.to_string());
                agent.finished_at = Some(now);
            }
        }
    }

    /// True when some agent has not ended, the pending rule aside: a pod counted failed while
    /// it waits is still there (retrying a pull), and so is a Job with no pods (retrying to
    /// create them).
    pub fn any_unfinished(&self) -> bool {
        self.agents.iter().any(|a| !a.phase.is_final())
    }
}

#[cfg(test)]
mod tests;
