//! A server stopped mid-run: RabbitMQ for 5 s (then started again), Redis for good.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::*;
use crate::support::servers::{RabbitServer, RedisServer};

/// RabbitMQ stopped for 5 s while both agents run jobs, then started again (its durable queue
/// and persistent messages kept): the agents' consumers resume, the run completes, and no job
/// is lost or run twice — the deliveries whose acks the outage swallowed come back marked
/// redelivered and are skipped, since their outcome is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_stopped_for_5_s_mid_run_the_run_completes_with_each_job_once() {
    let Some((redis, _)) = shared_servers() else { return };
    let mut rabbit = tokio::task::spawn_blocking(RabbitServer::start).await.expect("join").expect("dedicated RabbitMQ");
    let rabbitmq = rabbit.url();
    let local = LocalServe::start_on(&redis, &rabbitmq).await;
    let shape = Shape { agents: 2, jobs: 8, sleep_secs: 1.5, hold_secs: 1.5 };
    let run = FaultRun::launch(&local, &shape).await;

    // Mid-run: some jobs done, both agents on one, the rest queued.
    let mid_run = eventually(RUN_LIMIT, async || {
        let counts = local.view(run.run_id).await["counts"].clone();
        counts["Success"].as_u64().unwrap_or(0) >= 1 && counts["Running"] == 2
    });
    assert!(mid_run.await, "never mid-run: {}\n{}", local.view(run.run_id).await, agent_logs(&local, run.run_id));
    let before = local.view(run.run_id).await["counts"].clone();
    let outage = Instant::now();
    rabbit = tokio::task::spawn_blocking(move || {
        rabbit.stop();
        std::thread::sleep(Duration::from_secs(5));
        rabbit.start_again().map(|()| rabbit)
    })
    .await
    .expect("join")
    .expect("RabbitMQ starts again");
    println!("RabbitMQ down for {:?} (counts before: {before})", outage.elapsed());
    let left = local.view(run.run_id).await["counts"].clone();
    assert!(left["Queued"].as_u64().unwrap_or(0) >= 1, "jobs were left for after the outage: {left}");

    let view = ended(&local, &run).await;
    println!("run completed {:?} after RabbitMQ went down", outage.elapsed());
    let starts = assert_each_job_succeeded_once(&local, &run, &view).await;
    assert!(starts.values().all(|n| *n == 1), "no job's code ran twice: {starts:?}");
    // The agents rode out the outage: they ended when the queue went, not on errors.
    assert_agents_ended_on_their_own(&local, &run, None).await;
    assert!(queue_is_gone(&rabbitmq, run.run_id).await, "the run's queue is deleted");
    let skipped = agent_logs(&local, run.run_id).matches("redelivered job already has an outcome; skipped").count();
    println!("redeliveries skipped after the outage (their acks were lost): {skipped}");
    drop(local);
    drop(rabbit);
}

/// Redis stopped once both agents are running jobs: they already hold their messages and the
/// bundle, so the run completes (their heartbeats fail meanwhile, which only matters to a
/// redelivery). A new start meanwhile is a prompt 503 naming the config store, and leaves no
/// run, job or queue behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_after_the_agents_started_the_run_completes_and_a_new_start_is_503() {
    let Some((_, rabbitmq)) = shared_servers() else { return };
    let mut redis = tokio::task::spawn_blocking(RedisServer::start).await.expect("join").expect("dedicated Redis");
    let local = LocalServe::start_on(&redis.url(), &rabbitmq).await;
    let shape = Shape { agents: 2, jobs: 6, sleep_secs: 1.0, hold_secs: 1.0 };
    let run = FaultRun::launch(&local, &shape).await;

    let both_running = eventually(RUN_LIMIT, async || local.view(run.run_id).await["counts"]["Running"] == 2);
    assert!(both_running.await, "{}\n{}", local.view(run.run_id).await, agent_logs(&local, run.run_id));
    redis = tokio::task::spawn_blocking(move || {
        redis.stop();
        redis
    })
    .await
    .expect("join");
    let stopped = Instant::now();

    let view = ended(&local, &run).await;
    println!("run completed {:?} after Redis stopped", stopped.elapsed());
    let starts = assert_each_job_succeeded_once(&local, &run, &view).await;
    assert!(starts.values().all(|n| *n == 1), "no job's code ran twice: {starts:?}");
    // Nor does leaving need Redis: the agents end when the queue goes.
    assert_agents_ended_on_their_own(&local, &run, None).await;
    println!("agents ended {:?} after Redis stopped", stopped.elapsed());

    let refused = FaultRun::prepare(&shape);
    let (status, body, took) = start(&local, &refused).await;
    println!("a start with Redis down answered {status} in {took:?}: {body}");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let detail = body["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(
            "could not start the run: checking the config store failed: config store unavailable: Redis at "
        ),
        "names the config store and Redis: {detail}"
    );
    assert!(detail.contains("no connection to Redis; it is down or unreachable"), "{detail}");
    assert!(detail.ends_with("; nothing of the run was kept"), "{detail}");
    // Checked before anything is written: not a write's timeout plus an undo's (10 s).
    assert!(took < Duration::from_secs(8), "answered promptly, took {took:?}");
    assert_refused_run_left_nothing(&local, &rabbitmq, refused.run_id).await;
    drop(local);
    drop(redis);
}
