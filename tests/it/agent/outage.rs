//! The backend unreachable for 5 s in the middle of a run: agents spool their records and
//! replay them when it is back; nothing is lost, nothing is doubled. In every configuration of
//! engines: agents record through a proxy in front of the backend that the test switches off.

use std::collections::HashSet;
use std::time::Duration;

use armada::model::status;
use serde_json::json;

use crate::support::agents::{AgentHarness, Engines, RUN_LIMIT, write_template};
use crate::support::engines::on_every_engine;
use crate::support::eventually;
use crate::support::proxy::PausableProxy;

const SCRIPT: &str = include_str!("fixtures/behaviours/ctx_script.py");
const JOBS: usize = 12;

on_every_engine!(a_backend_outage_loses_and_doubles_no_record);

async fn a_backend_outage_loses_and_doubles_no_record(engines: Engines) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = PausableProxy::start(listener.local_addr().unwrap()).await;
    let harness =
        AgentHarness::builder(engines).app(|app| app.listener(listener)).agents_record_at(&proxy.url()).spawn().await;

    let (project, markers) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(project.path().join("ctx_script.py"), SCRIPT).unwrap();
    write_template(
        project.path(),
        &json!({
            "run_message": {"number_of_agents": 2, "number_of_jobs": JOBS},
            "default_agent_message": {},
            "default_job_message": {"mode": "steps", "marker_dir": markers.path().display().to_string()},
        }),
    );
    let staged = harness.start(project.path()).await;

    // Cut the backend off once the agents are busy, for 5 s.
    let busy = eventually(RUN_LIMIT, async || harness.summary(staged.run_id).await.count(status::SUCCESS) >= 1).await;
    assert!(busy, "no job finished before the outage");
    proxy.pause().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during = harness.summary(staged.run_id).await;
    proxy.resume().await;

    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;
    assert!(during.count(status::SUCCESS) < JOBS as u64, "the outage overlapped the run: {:?}", during.counts);
    assert_eq!(summary.count(status::SUCCESS), JOBS as u64, "{:?}", summary.counts);

    let mut event_uuids = HashSet::new();
    for (job_uuid, _) in &staged.jobs {
        let job = harness.job(*job_uuid).await;
        assert_eq!(job.job_attempts, Some(1), "{job:?}");
        let events: Vec<_> = harness.events(*job_uuid).await;
        let contents: Vec<&str> = events.iter().map(|e| e.event_content.as_str()).collect();
        assert_eq!(contents, ["started (steps)", "step 0", "step 1", "step 2", "done (steps)"], "job {job_uuid}");
        event_uuids.extend(events.iter().map(|e| e.event_uuid));
        let logs = harness.logs(*job_uuid).await;
        assert_eq!(logs, "step 0 done\nstep 1 done\nstep 2 done\n", "job {job_uuid}: logs once each");
    }
    assert_eq!(event_uuids.len(), JOBS * 5);
    let outputs = harness.outputs(staged.run_id).await;
    assert_eq!(outputs.len(), JOBS, "one output per job");
    let jobs_with_output: HashSet<_> = outputs.iter().map(|o| o.job_uuid).collect();
    assert_eq!(jobs_with_output.len(), JOBS);

    let spools: Vec<_> = std::fs::read_dir(harness.work_root.path().join(staged.run_id.to_string()))
        .unwrap()
        .map(|agent| agent.unwrap().path().join(".armada/spool.jsonl"))
        .filter(|spool| spool.exists())
        .collect();
    assert!(!spools.is_empty(), "the outage was ridden out through a spool");
    for spool in spools {
        assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0, "{} was replayed to the end", spool.display());
    }
}
