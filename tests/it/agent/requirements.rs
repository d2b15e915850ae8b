//! `requirements.txt`: installed into a per-agent virtualenv that the worker then runs in; a
//! failing install fails the agent with pip's own words. In every configuration of engines.

use armada::infra::launcher::AgentPhase;
use armada::model::status;
use serde_json::json;

use crate::support::agents::{AgentHarness, Engines, RUN_LIMIT, write_template};
use crate::support::engines::on_every_engine;
use crate::support::eventually;

on_every_engine!(
    requirements_are_installed_in_a_virtualenv_the_worker_runs_in,
    a_failing_install_fails_the_agent_with_pips_last_lines,
);

const SCRIPT: &str = r#"
import sys

async def ctx_script(job_ctx, agent_ctx):
    agent_ctx.output_manager.send({"prefix": sys.prefix, "executable": sys.executable})
"#;

fn project(requirements: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ctx_script.py"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("requirements.txt"), requirements).unwrap();
    write_template(
        dir.path(),
        &json!({"run_message": {"number_of_agents": 1, "number_of_jobs": 1}, "default_job_message": {}}),
    );
    dir
}

async fn requirements_are_installed_in_a_virtualenv_the_worker_runs_in(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let dir = project("# nothing to install, so no network is needed\n");
    let staged = harness.start(dir.path()).await;
    let summary = harness.finish(&staged).await;
    harness.assert_agents_succeeded(staged.run_id).await;
    assert_eq!(summary.count(status::SUCCESS), 1, "{:?}", summary.counts);

    let outputs = harness.outputs(staged.run_id).await;
    let prefix = outputs[0].data["prefix"].as_str().unwrap().to_string();
    let expected = harness.work_root.path().join(staged.run_id.to_string()).join("agent-0/.armada/venv");
    assert_eq!(std::fs::canonicalize(&prefix).unwrap(), std::fs::canonicalize(expected).unwrap());
}

async fn a_failing_install_fails_the_agent_with_pips_last_lines(engines: Engines) {
    let harness = AgentHarness::new(engines).await;
    let dir = project("this is not === a requirement\n");
    let staged = harness.start(dir.path()).await;
    let failed = eventually(RUN_LIMIT, async || harness.agents(staged.run_id).await[0].phase.is_final()).await;
    assert!(failed, "the agent did not end");

    let agent = harness.agents(staged.run_id).await.remove(0);
    assert_eq!(agent.phase, AgentPhase::Failed);
    // An agent process's detail is its exit and its last words, which hold the same reason.
    let detail = agent.detail.unwrap_or_default();
    assert!(
        detail.contains("installing requirements failed: pip install -r requirements.txt exited with code"),
        "{detail}"
    );
    assert!(detail.contains("this is not === a requirement"), "pip's words: {detail}");
    assert_eq!(harness.summary(staged.run_id).await.count(status::QUEUED), 1, "the job waits for another agent");
}
