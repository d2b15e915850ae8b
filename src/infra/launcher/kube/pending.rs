//! When an agent that never started counts as failed: its pod is stuck in a waiting reason that
//! does not clear without an operator (an image that cannot be pulled, a container that cannot be
//! created), or the Job has no pod for it at all (the Job controller's pod creations are refused:
//! an exceeded ResourceQuota, a LimitRange, an admission webhook). Kubernetes retries both
//! forever, so without this rule such a run would stay `running` with pending agents. Pure:
//! [`super::RunPods`] applies it whenever the agents are read.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;

/// Waiting reasons the kubelet keeps retrying but that rarely clear on their own.
pub const STUCK_REASONS: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "ErrImageNeverPull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

/// Waiting reasons that can never clear (a pod's image is immutable): failed at once.
pub const HOPELESS_REASONS: [&str; 1] = ["InvalidImageName"];

/// How long a run's agents may stay without a started container, and the Job they belong to
/// (named in the messages, so the operator knows what to inspect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRule {
    pub timeout: Duration,
    pub job_name: String,
    pub namespace: String,
}

/// The waiting reason of a pending pod whose container is stuck (one of [`STUCK_REASONS`]).
pub fn stuck_reason(pod: &Pod) -> Option<&str> {
    let status = pod.status.as_ref()?;
    if !matches!(status.phase.as_deref(), None | Some("Pending")) {
        return None;
    }
    let waiting = status.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    STUCK_REASONS.contains(&reason).then_some(reason)
}

/// `300` for five minutes, `0.5` for half a second.
fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

impl PendingRule {
    /// A pod stuck for longer than the timeout: its own reason (`ImagePullBackOff: Back-off
    /// pulling image "…"`), and how long it waited.
    pub fn stuck_detail(&self, reason: &str) -> String {
        format!("{reason} (the container had not started after {})", seconds(self.timeout))
    }

    /// No pod for an index, the timeout after the Job was created. When the watch has listed
    /// the Job's pods, the Job controller cannot create them; its events say why, and the seed's
    /// Role cannot read events, so the operator is told where to look.
    pub fn no_pod_detail(&self, watch_synced: bool) -> String {
        let (job, namespace, after) = (&self.job_name, &self.namespace, seconds(self.timeout));
        if watch_synced {
            format!(
                "no pod was created within {after} of Job {job}: the Job controller's pod creations are \
                 refused (an exceeded ResourceQuota, a LimitRange or an admission webhook?); \
                 `kubectl describe job {job} -n {namespace}` shows the reason in its events, which the \
                 orchestrator's Role cannot read"
            )
        } else {
            format!(
                "no pod seen within {after} of Job {job}: the pod watch has not listed the Job's pods \
                 (see the orchestrator's log; `armada kube check` shows whether its Role may list and \
                 watch pods in namespace {namespace})"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ContainerState, ContainerStateWaiting, ContainerStatus, PodStatus};

    use super::*;

    fn waiting_pod(phase: &str, reason: &str) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(vec![ContainerStatus {
                    state: Some(ContainerState {
                        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: None }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn only_pending_pods_waiting_for_a_stuck_reason_are_stuck() {
        for reason in STUCK_REASONS {
            assert_eq!(stuck_reason(&waiting_pod("Pending", reason)), Some(reason));
        }
        assert_eq!(stuck_reason(&waiting_pod("Pending", "ContainerCreating")), None);
        assert_eq!(stuck_reason(&waiting_pod("Running", "CreateContainerError")), None);
        assert_eq!(stuck_reason(&Pod::default()), None);
    }

    #[test]
    fn messages_name_the_wait_and_what_to_inspect() {
        let rule = PendingRule {
            timeout: Duration::from_millis(1500),
            job_name: "armada-agent-x".into(),
            namespace: "armada".into(),
        };
        assert_eq!(
            rule.stuck_detail("ImagePullBackOff: Back-off pulling image \"a/b:1\""),
            "ImagePullBackOff: Back-off pulling image \"a/b:1\" (the container had not started after 1.5 s)"
        );
        let no_pod = rule.no_pod_detail(true);
        assert!(no_pod.starts_with("no pod was created within 1.5 s of Job armada-agent-x"), "{no_pod}");
        assert!(no_pod.contains("`kubectl describe job armada-agent-x -n armada`"), "{no_pod}");
        assert!(no_pod.contains("Role cannot read"), "{no_pod}");
        let unlisted = rule.no_pod_detail(false);
        assert!(unlisted.contains("pod watch has not listed") && unlisted.contains("armada kube check"), "{unlisted}");
        assert_eq!(seconds(Duration::from_secs(300)), "300 s");
    }
}
