//! `armada agent` as processes, the way the process launcher and Kubernetes run it: the run's
//! messages in a real Redis, its jobs in a real RabbitMQ, records over HTTP to the backend.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use armada::agent::stage::{plan_project, stage_run};
use armada::clients::{BackendClient, InProcessBackend};
use armada::infra::broker::amqp::AmqpBroker;
use armada::infra::broker::{Broker, job_queue_name};
use armada::infra::config_store::redis::RedisConfigStore;
use armada::model::status;
use armada::project::{Project, ProjectLimits};

use crate::support::agents::{RUN_LIMIT, example};
use crate::support::servers::{self, loud};
use crate::support::{TestApp, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_processes_take_their_messages_from_redis_and_jobs_from_rabbitmq() {
    let (Some(redis), Some(rabbitmq)) = (servers::redis_url(), servers::rabbitmq_url()) else {
        loud("SKIPPED: agent::process: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)");
        return;
    };
    let app = TestApp::backend().await;
    let backend: Arc<dyn BackendClient> = Arc::new(InProcessBackend::new(app.state.records.clone()));
    let config_store = RedisConfigStore::connect(&redis, &redis).await.expect("redis");
    let broker = AmqpBroker::new(&rabbitmq);
    let project = Project::from_dir(example("hello"), ProjectLimits::default()).unwrap();
    let plan = plan_project(&project, None).unwrap();
    let staged = stage_run(&plan, &project, None, backend.as_ref(), &config_store, &broker).await.expect("staged");
    let work = tempfile::tempdir().unwrap();
    let redis_port = redis.rsplit(':').next().unwrap().to_string();

    let agents: Vec<_> = (0..staged.number_of_agents)
        .map(|index| {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_armada"));
            command
                .arg("agent")
                .current_dir(work.path())
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .env("HOME", std::env::var("HOME").unwrap_or_default())
                .env("RUN_ID", staged.run_id.to_string())
                .env("RABBITMQ_URL", &rabbitmq)
                .env("BACKEND_URL", &app.base_url)
                .env("ARMADA_WORK_DIR", work.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            // Each agent is told where it is the way one of the launchers tells it.
            match index {
                0 => command.env("POD_INDEX", "0").env("REDIS_URL", &redis),
                1 => command
                    .env("JOB_COMPLETION_INDEX", "1")
                    .env("REDIS_HOST", "127.0.0.1")
                    .env("REDIS_PORT", &redis_port),
                _ => command
                    .env("POD_INDEX", index.to_string())
                    .env("REDIS_HOST_VAR_ENV", "127.0.0.1")
                    .env("REDIS_PORT_VAR_ENV", &redis_port),
            };
            command.spawn().expect("armada agent starts")
        })
        .collect();

    let run_id = staged.run_id;
    let summary = || async { app.state.records.run_summary(run_id).await.unwrap().unwrap() };
    let finished = eventually(RUN_LIMIT, async || summary().await.finished() == 20).await;
    assert!(finished, "jobs: {:?}", summary().await.counts);
    // SIGTERM stops an idle agent gracefully: its worker is shut down (AgentContext exited).
    let mut agents = agents.into_iter();
    let first = agents.next().unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    assert_eq!(unsafe { libc::kill(first.id().unwrap() as libc::pid_t, libc::SIGTERM) }, 0);
    let output = tokio::time::timeout(Duration::from_secs(60), first.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stop signal received") && stderr.contains("agent-0: closing the browser after"),
        "{stderr}"
    );

    // The run is complete: the orchestrator deletes the queue, and the other agents leave.
    broker.delete(&job_queue_name(run_id)).await.unwrap();
    for (index, agent) in agents.enumerate() {
        let output = tokio::time::timeout(Duration::from_secs(120), agent.wait_with_output())
            .await
            .expect("the agent exits once its queue is gone")
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "agent {index}: {stderr}");
    }

    let summary = summary().await;
    assert_eq!((summary.count(status::SUCCESS), summary.count(status::FAILED)), (19, 1), "{:?}", summary.counts);
    let mut agents_seen: Vec<String> = summary.agents.iter().map(|a| a.agent.clone()).collect();
    agents_seen.sort();
    assert!(agents_seen.iter().all(|a| a.starts_with("agent-")), "{agents_seen:?}");
    let page = armada::model::PageRequest::new(Some(1), Some(100), 100).unwrap();
    let outputs = app.state.store().list_outputs(Some(run_id), page).await.unwrap().items;
    let mut inits: Vec<u64> =
        outputs.iter().filter(|o| o.data["kind"] == "agent_init").filter_map(|o| o.data["agent"].as_u64()).collect();
    inits.sort();
    assert_eq!(inits, [0, 1, 2], "each agent process found its own message");
}
