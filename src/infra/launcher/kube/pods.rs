//! What a run's pods say about its agents: each pod read as an [`AgentStatus`] by its
//! completion index, and [`RunPods`], the per-run state the pod watch feeds. Pure: the watch
//! task in `mod.rs` does the IO.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::job::COMPLETION_INDEX_ANNOTATION;
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

/// A run's agents as its pods' watch reports them.
///
/// Rules: each index follows its newest pod (Kubernetes replaces a failed pod of an index up to
/// the Job's backoff limit); an ended agent's phase is never rewritten by its pod's deletion;
/// a pod deleted before it ended is `Stopped` when the run is being stopped, else `Failed`;
/// once the run is stopping, agents that end are `Stopped`.
#[derive(Debug, Clone)]
pub struct RunPods {
    agents: Vec<AgentStatus>,
    /// Name of the pod each index follows.
    current: Vec<Option<String>>,
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
            live: BTreeMap::new(),
            stopping: false,
            relist: None,
            synced: false,
        }
    }

    pub fn agents(&self) -> Vec<AgentStatus> {
        self.agents.clone()
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

    /// True when some agent has not ended.
    pub fn any_unfinished(&self) -> bool {
        self.agents.iter().any(|a| !a.phase.is_final())
    }
}

#[cfg(test)]
mod tests;
