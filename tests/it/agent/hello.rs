//! `examples/hello` on three agents, and the Node example worker through the agent, in every
//! configuration of engines.

use std::collections::BTreeMap;
use std::time::Duration;

use armada::model::status;
use serde_json::{Value, json};

use super::LiveMessages;
use crate::support::agents::{AgentHarness, Engines, copy_project, example, expected_agent};
use crate::support::engines::on_every_engine;
use crate::support::eventually;

on_every_engine!(
    hello_example_on_three_agents_records_and_streams_every_outcome,
    node_example_worker_runs_through_the_agent
);

async fn hello_example_on_three_agents_records_and_streams_every_outcome(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let live = LiveMessages::connect(&harness.app.ws_url).await;
    let staged = harness.start(&example("hello")).await;
    assert_eq!((staged.number_of_agents, staged.jobs.len()), (3, 20));

    let summary = harness.finish(&staged).await;
    assert_eq!((summary.count(status::SUCCESS), summary.count(status::FAILED)), (19, 1), "{:?}", summary.counts);
    harness.assert_agents_succeeded(staged.run_id).await;

    let mut events_total = 0;
    for (job_uuid, message) in &staged.jobs {
        let job = harness.job(*job_uuid).await;
        let events = harness.events(*job_uuid).await;
        events_total += events.len();
        let name = message["name"].as_str().unwrap();
        assert!(job.job_associated_agent.starts_with("agent-"), "{job:?}");
        assert_eq!(job.job_attempts, Some(1), "{job:?}");
        assert!(job.job_finished.is_some(), "{job:?}");
        let contents: Vec<&str> = events.iter().map(|e| e.event_content.as_str()).collect();
        if name == "hugo" {
            assert_eq!(job.job_status, status::FAILED);
            assert_eq!(job.job_detail.as_deref(), Some("hugo: this row asks to fail (should_fail=true)"));
            assert_eq!(events.len(), 2, "{contents:?}");
            assert_eq!(events[1].event_status, status::FAILED);
        } else {
            assert_eq!(job.job_status, status::SUCCESS, "{job:?}");
            assert_eq!(events.len(), 3, "{contents:?}");
            assert!(contents[1].starts_with(&format!("visited https://example.org/hello/{name}")), "{contents:?}");
            assert_eq!(contents[2], format!("done with {name}"));
        }
        let index: u64 = job.job_associated_agent["agent-".len()..].parse().unwrap();
        assert_eq!(contents[0], format!("{}, {name}!", expected_agent(index).0), "the agent's merged greeting");
        assert!(harness.logs(*job_uuid).await.contains(&format!("job for {name} on agent-{index}")));
    }

    let outputs = harness.outputs(staged.run_id).await;
    let mut inits: BTreeMap<u64, usize> = BTreeMap::new();
    let mut job_outputs = 0;
    for output in &outputs {
        let data = &output.data;
        let agent = data["agent"].as_u64().expect("agent index in every output");
        let (greeting, location) = expected_agent(agent);
        assert_eq!((data["greeting"].as_str(), data["proxy_location"].as_str()), (Some(greeting), Some(location)));
        assert_eq!(data["screen_visible"], json!(1), "the $env_ placeholder took config_local.json's value");
        match data["kind"].as_str() {
            Some("agent_init") => *inits.entry(agent).or_default() += 1,
            Some("job") => {
                job_outputs += 1;
                let job = harness.job(output.job_uuid.expect("a job output names its job")).await;
                assert_eq!(job.job_associated_agent, format!("agent-{agent}"));
                assert!(data["details"]["tags"].is_array(), "the JSON cell arrived as JSON: {data}");
            }
            other => panic!("unexpected output kind {other:?}"),
        }
    }
    assert_eq!(job_outputs, 19);
    assert_eq!(inits, BTreeMap::from([(0, 1), (1, 1), (2, 1)]), "each agent initialised exactly once");

    let streamed = eventually(Duration::from_secs(30), async || {
        live.of_type("new_event").len() == events_total && live.of_type("new_output").len() == outputs.len()
    })
    .await;
    assert!(
        streamed,
        "streamed {} events of {events_total}, {} outputs of {}",
        live.of_type("new_event").len(),
        live.of_type("new_output").len(),
        outputs.len()
    );
    let finals: Vec<Value> =
        live.of_type("update_job_status").into_iter().filter(|job| job["job_finished"].is_string()).collect();
    assert!(finals.len() >= 20, "every outcome streamed: {}", finals.len());
}

async fn node_example_worker_runs_through_the_agent(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let project = copy_project(&example("node-worker"));
    let staged = harness.start(project.path()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;
    assert_eq!(summary.total_jobs, 4);

    let mut failed = 0;
    for (job_uuid, message) in &staged.jobs {
        let job = harness.job(*job_uuid).await;
        let word = message["word"].as_str().unwrap();
        let fails = message["fail"] == json!(true) || message["fail"] == json!("true");
        if fails {
            failed += 1;
            assert_eq!(job.job_status, status::FAILED);
            assert_eq!(job.job_detail.as_deref(), Some(format!("Error: asked to fail on {word}").as_str()));
        } else {
            assert_eq!(job.job_status, status::SUCCESS, "{job:?}");
            let events = harness.events(*job_uuid).await;
            assert_eq!(events.last().map(|e| e.event_content.clone()), Some(format!("done with {word}")));
        }
        assert!(harness.logs(*job_uuid).await.contains(&format!("job {job_uuid} (attempt 1): {word}")));
    }
    assert_eq!(failed, 1, "the example's data_job.csv has one failing row");
    assert_eq!(summary.count(status::FAILED), failed);
    let outputs = harness.outputs(staged.run_id).await;
    let greetings = outputs.iter().filter(|o| o.data["greeting"] == "hello from a Node worker").count();
    assert_eq!(greetings, 2, "one init output per agent");
    assert_eq!(outputs.len() as u64, 2 + summary.count(status::SUCCESS));
}
