//! Pods read as agents, and a run's state under watch events, without a cluster.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn time(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + seconds).unwrap())
}

fn pod(name: &str, index: usize, created: i64, phase: &str, state: ContainerState) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            creation_timestamp: Some(time(created)),
            annotations: Some(BTreeMap::from([(COMPLETION_INDEX_ANNOTATION.to_string(), index.to_string())])),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: Some(vec![ContainerStatus {
                name: "agent".into(),
                state: Some(state),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn waiting(reason: &str, message: &str) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: Some(message.into()) }),
        ..Default::default()
    }
}

fn running(at: i64) -> ContainerState {
    ContainerState { running: Some(ContainerStateRunning { started_at: Some(time(at)) }), ..Default::default() }
}

fn terminated(code: i32, reason: &str, message: Option<&str>) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(reason.into()),
            message: message.map(String::from),
            started_at: Some(time(1)),
            finished_at: Some(time(9)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn index_comes_from_the_annotation_else_the_label() {
    let mut p = pod("a", 4, 0, "Pending", ContainerState::default());
    assert_eq!(pod_index(&p), Some(4));
    p.metadata.labels = p.metadata.annotations.take();
    assert_eq!(pod_index(&p), Some(4));
    p.metadata.labels = None;
    assert_eq!(pod_index(&p), None);
}

#[test]
fn a_waiting_container_says_why() {
    let p = pod("a", 0, 0, "Pending", waiting("ImagePullBackOff", "Back-off pulling image \"armadasvc/x:1\""));
    let status = pod_agent_status(0, &p);
    assert_eq!(status.phase, AgentPhase::Pending);
    assert_eq!(status.detail.as_deref(), Some("ImagePullBackOff: Back-off pulling image \"armadasvc/x:1\""));
}

#[test]
fn an_unschedulable_pod_says_why() {
    let mut p = pod("a", 0, 0, "Pending", ContainerState::default());
    let status = p.status.as_mut().unwrap();
    status.container_statuses = None;
    status.conditions = Some(vec![PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some("0/3 nodes are available: 3 Insufficient cpu.".into()),
        ..Default::default()
    }]);
    let status = pod_agent_status(0, &p);
    assert_eq!(status.detail.as_deref(), Some("Unschedulable: 0/3 nodes are available: 3 Insufficient cpu."));
}

#[test]
fn running_and_ended_pods_carry_their_times() {
    let status = pod_agent_status(2, &pod("a", 2, 0, "Running", running(5)));
    assert_eq!((status.pod_index, status.phase, status.detail.clone()), (2, AgentPhase::Running, None));
    assert_eq!(status.started_at, Some(Timestamp::from_micros(time(5).0.as_microsecond())));
    assert!(status.finished_at.is_none());
    let status = pod_agent_status(2, &pod("a", 2, 0, "Succeeded", terminated(0, "Completed", None)));
    assert_eq!((status.phase, status.detail.clone()), (AgentPhase::Succeeded, None));
    assert_eq!(status.finished_at, Some(Timestamp::from_micros(time(9).0.as_microsecond())));
}

#[test]
fn a_failed_pod_says_how_it_ended() {
    let status = pod_agent_status(0, &pod("a", 0, 0, "Failed", terminated(1, "Error", Some("worker crashed\n"))));
    assert_eq!(status.phase, AgentPhase::Failed);
    assert_eq!(status.detail.as_deref(), Some("exited with code 1 (Error): worker crashed"));
    let status = pod_agent_status(0, &pod("a", 0, 0, "Failed", terminated(137, "OOMKilled", None)));
    assert_eq!(status.detail.as_deref(), Some("exited with code 137 (OOMKilled)"));

    let mut evicted = pod("a", 0, 0, "Failed", ContainerState::default());
    let status = evicted.status.as_mut().unwrap();
    status.reason = Some("Evicted".into());
    status.message = Some("The node was low on resource: memory.".into());
    let status = pod_agent_status(0, &evicted);
    assert_eq!(status.detail.as_deref(), Some("Evicted: The node was low on resource: memory."));
}

#[test]
fn each_index_follows_its_newest_pod() {
    let mut run = RunPods::new(2);
    run.apply(&pod("a-0-old", 0, 0, "Failed", terminated(1, "Error", Some("first try"))));
    assert_eq!(run.agents()[0].phase, AgentPhase::Failed);
    // Kubernetes replaces the failed pod of index 0.
    run.apply(&pod("a-0-new", 0, 10, "Running", running(11)));
    assert_eq!(run.agents()[0].phase, AgentPhase::Running);
    // A late event about the old pod changes nothing.
    run.apply(&pod("a-0-old", 0, 0, "Failed", terminated(1, "Error", Some("first try"))));
    run.delete(&pod("a-0-old", 0, 0, "Failed", terminated(1, "Error", Some("first try"))));
    assert_eq!(run.agents()[0].phase, AgentPhase::Running);
    assert_eq!(run.agents()[1].phase, AgentPhase::Pending, "index 1 has no pod yet");
    // Pods of other jobs' indexes beyond the run are ignored.
    run.apply(&pod("stray", 7, 0, "Running", running(1)));
    assert_eq!(run.agents().len(), 2);
}

#[test]
fn deletion_never_rewrites_an_ended_agent_and_fails_a_running_one() {
    let mut run = RunPods::new(2);
    let done = pod("a-0", 0, 0, "Succeeded", terminated(0, "Completed", None));
    run.apply(&done);
    run.delete(&done);
    assert_eq!(run.agents()[0].phase, AgentPhase::Succeeded);
    let busy = pod("a-1", 1, 0, "Running", running(1));
    run.apply(&busy);
    run.delete(&busy);
    let agent = &run.agents()[1];
    assert_eq!(agent.phase, AgentPhase::Failed);
    assert_eq!(agent.detail.as_deref(), Some("pod a-1 was deleted before the agent ended"));
    assert!(agent.finished_at.is_some());
}

#[test]
fn while_stopping_agents_that_end_are_stopped() {
    let mut run = RunPods::new(3);
    for i in 0..3 {
        run.apply(&pod(&format!("a-{i}"), i, 0, "Running", running(1)));
    }
    run.stopping();
    run.apply(&pod("a-0", 0, 0, "Failed", terminated(143, "Error", None)));
    run.delete(&pod("a-1", 1, 0, "Running", running(1)));
    assert_eq!(run.unfinished_pods(), ["a-2"]);
    run.force_stopped(&["a-2".to_string()], "forced");
    run.delete(&pod("a-2", 2, 0, "Running", running(1)));
    run.mark_stopped(None);
    let agents = run.agents();
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Stopped && a.finished_at.is_some()), "{agents:#?}");
    assert_eq!(agents[0].detail.as_deref(), Some("stopped; the agent exited with code 143 (Error)"));
    assert_eq!(agents[1].detail, None);
    assert_eq!(agents[2].detail.as_deref(), Some("forced"));
    // An agent that had ended before the stop keeps how it ended when its pod goes.
    let mut ended = RunPods::new(1);
    let done = pod("b-0", 0, 0, "Succeeded", terminated(0, "Completed", None));
    ended.apply(&done);
    ended.stopping();
    ended.delete(&done);
    ended.mark_stopped(None);
    assert_eq!(ended.agents()[0].phase, AgentPhase::Succeeded);
    // Later events about stopped agents change nothing.
    run.apply(&pod("a-1", 1, 0, "Running", running(1)));
    assert_eq!(run.agents()[1].phase, AgentPhase::Stopped);
}

#[test]
fn a_relist_deletes_pods_that_went_while_the_watch_was_down() {
    let mut run = RunPods::new(2);
    assert!(!run.synced());
    run.relist_started();
    run.apply(&pod("a-0", 0, 0, "Running", running(1)));
    run.apply(&pod("a-1", 1, 0, "Running", running(1)));
    run.relist_done();
    assert!(run.synced());
    run.relist_started();
    run.apply(&pod("a-0", 0, 0, "Running", running(1)));
    run.relist_done();
    assert_eq!(run.unfinished_pods(), ["a-0"]);
    assert_eq!(run.agents()[1].phase, AgentPhase::Failed);
}

#[test]
fn mark_stopped_leaves_ended_agents_alone() {
    let mut run = RunPods::new(2);
    run.apply(&pod("a-0", 0, 0, "Succeeded", terminated(0, "Completed", None)));
    assert!(run.any_unfinished());
    run.mark_stopped(Some("why"));
    let agents = run.agents();
    assert_eq!((agents[0].phase, agents[1].phase), (AgentPhase::Succeeded, AgentPhase::Stopped));
    assert_eq!(agents[1].detail.as_deref(), Some("why"));
    assert!(!run.any_unfinished());
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn with_rule(agents: usize) -> RunPods {
    let rule = PendingRule { timeout: TIMEOUT, job_name: "armada-agent-x".into(), namespace: "armada".into() };
    RunPods::new(agents).with_pending_rule(rule)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn a_pod_stuck_pulling_its_image_fails_after_the_timeout() {
    let mut run = with_rule(2);
    let t0 = Instant::now();
    run.apply_at(&pod("a-0", 0, 0, "Pending", waiting("ErrImagePull", "pull access denied")), t0);
    // The kubelet alternates between the two; the wait counts from the first.
    let backoff = waiting("ImagePullBackOff", "Back-off pulling image \"armadasvc/x:1\"");
    run.apply_at(&pod("a-0", 0, 0, "Pending", backoff), t0 + secs(6));
    run.apply_at(&pod("a-1", 1, 0, "Running", running(1)), t0);
    let before = run.agents_at(t0 + secs(9));
    assert_eq!((before[0].phase, before[1].phase), (AgentPhase::Pending, AgentPhase::Running));
    let after = run.agents_at(t0 + TIMEOUT);
    assert_eq!(after[0].phase, AgentPhase::Failed);
    assert_eq!(
        after[0].detail.as_deref(),
        Some("ImagePullBackOff: Back-off pulling image \"armadasvc/x:1\" (the container had not started after 10 s)")
    );
    assert!(after[0].finished_at.is_some());
    assert_eq!(after[1].phase, AgentPhase::Running);
    assert!(run.any_unfinished(), "the stuck pod is still there: its Job must be deleted");
}

#[test]
fn a_pod_that_leaves_its_stuck_reason_starts_its_wait_over_and_reads_as_it_is() {
    let mut run = with_rule(1);
    let t0 = Instant::now();
    run.apply_at(&pod("a-0", 0, 0, "Pending", waiting("ErrImagePull", "timeout")), t0);
    run.apply_at(&pod("a-0", 0, 0, "Pending", waiting("ContainerCreating", "")), t0 + secs(8));
    run.apply_at(&pod("a-0", 0, 0, "Pending", waiting("CreateContainerError", "no such device")), t0 + secs(9));
    assert_eq!(run.agents_at(t0 + secs(15))[0].phase, AgentPhase::Pending, "waiting since t0+9 only");
    let given_up = run.agents_at(t0 + secs(19));
    assert_eq!(given_up[0].phase, AgentPhase::Failed);
    assert!(given_up[0].detail.as_deref().is_some_and(|d| d.starts_with("CreateContainerError: no such device")));
    // A verdict made on reading: a pod that starts after all reads as running.
    run.apply_at(&pod("a-0", 0, 0, "Running", running(30)), t0 + secs(30));
    assert_eq!(run.agents_at(t0 + secs(31))[0].phase, AgentPhase::Running);
}

#[test]
fn an_invalid_image_name_fails_at_once() {
    let mut run = with_rule(1);
    let t0 = Instant::now();
    let message = "Failed to apply default image tag \"Bad Name\": couldn't parse image name";
    run.apply_at(&pod("a-0", 0, 0, "Pending", waiting("InvalidImageName", message)), t0);
    let agents = run.agents_at(t0);
    assert_eq!(agents[0].phase, AgentPhase::Failed);
    assert_eq!(agents[0].detail, Some(format!("InvalidImageName: {message}")));
}

#[test]
fn an_index_without_a_pod_fails_after_the_timeout_saying_what_to_inspect() {
    let mut run = with_rule(2);
    let launched = Instant::now();
    run.relist_started();
    run.apply(&pod("a-0", 0, 0, "Running", running(1)));
    run.relist_done();
    assert_eq!(run.agents_at(launched)[1].phase, AgentPhase::Pending);
    let later = run.agents_at(launched + TIMEOUT + secs(1));
    assert_eq!(later[0].phase, AgentPhase::Running);
    assert_eq!(later[1].phase, AgentPhase::Failed);
    let detail = later[1].detail.clone().unwrap_or_default();
    assert!(detail.starts_with("no pod was created within 10 s of Job armada-agent-x"), "{detail}");
    assert!(detail.contains("kubectl describe job armada-agent-x -n armada"), "{detail}");
    // Before the watch listed anything, the message says the watch is what is missing.
    let unlisted = with_rule(1).agents_at(Instant::now() + TIMEOUT + secs(1));
    assert!(unlisted[0].detail.as_deref().is_some_and(|d| d.contains("pod watch has not listed")), "{unlisted:#?}");
    assert!(run.any_unfinished(), "the Job would keep trying to create the pod: it must be deleted");
}

#[test]
fn the_pending_rule_is_off_while_stopping_and_without_a_rule() {
    let stuck = pod("a-0", 0, 0, "Pending", waiting("ImagePullBackOff", "Back-off"));
    let t0 = Instant::now();
    let mut stopping = with_rule(1);
    stopping.apply_at(&stuck, t0);
    stopping.stopping();
    assert_eq!(stopping.agents_at(t0 + TIMEOUT * 2)[0].phase, AgentPhase::Pending);
    let mut no_rule = RunPods::new(2);
    no_rule.apply_at(&stuck, t0);
    let agents = no_rule.agents_at(t0 + secs(86_400));
    assert!(agents.iter().all(|a| a.phase == AgentPhase::Pending), "{agents:#?}");
}
