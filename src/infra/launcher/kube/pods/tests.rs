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
