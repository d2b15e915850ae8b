//! The operator's terminal commands, the real binary against a real server: `armada launch`
//! (local validation, upload, live follow, exit codes), `armada runs`, `armada outputs`, with
//! real agents running Python workers — in-process (`TestApp` with every role) or in an
//! `armada serve` child process, as the README's first command starts it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use armada::model::status;
use serde_json::Value;
use uuid::Uuid;

use crate::agent::LiveMessages;
use crate::orchestrator::queue_is_gone;
use crate::support::agents::{copy_project, example, expected_agent};
use crate::support::{BinOutput, TestApp, eventually, run_armada, spawn_armada};

/// Generous: the machine is shared and busy.
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// Every role in-process, real agents (the in-process launcher) working under `work`.
async fn app(work: &Path, token: Option<&str>) -> TestApp {
    TestApp::builder().var("ARMADA_WORK_DIR", work.display().to_string()).token(token).spawn().await
}

fn hello() -> String {
    example("hello").display().to_string()
}

fn sleepy() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sleepy").display().to_string()
}

/// `armada ARGS --server URL` in a fresh folder, within [`RUN_LIMIT`].
async fn armada(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> BinOutput {
    let cwd = tempfile::tempdir().expect("cwd");
    let args: Vec<&str> = args.iter().copied().chain(["--server", app.base_url.as_str()]).collect();
    spawn_armada(cwd.path(), &args, env).finish(RUN_LIMIT).await
}

fn shown(output: &BinOutput) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", output.code, output.stdout, output.stderr)
}

/// The run id `armada launch --follow` printed first (`run ID started: …`).
fn started_run(output: &BinOutput) -> Uuid {
    let first = output.stdout.lines().next().unwrap_or_default();
    let id = first.strip_prefix("run ").and_then(|rest| rest.split_whitespace().next()).unwrap_or_default();
    Uuid::parse_str(id).unwrap_or_else(|_| panic!("no run id in the first line\n{}", shown(output)))
}

async fn json(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get(path).await;
    assert!(status.is_success(), "GET {path}: {status} {body}");
    body
}

async fn wait_for_status(app: &TestApp, run_id: Uuid, wanted: &str) {
    let ended = eventually(RUN_LIMIT, async || json(app, &format!("/api/runs/{run_id}")).await["run_status"] == wanted);
    assert!(ended.await, "run {run_id} never became {wanted}: {}", json(app, &format!("/bot/runs/{run_id}")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_follow_runs_hello_on_real_agents_and_exits_1_for_its_failing_job() {
    let work = tempfile::tempdir().expect("work");
    let app = app(work.path(), None).await;
    let live = LiveMessages::connect(&app.ws_url).await;

    let output = armada(&app, &["launch", &hello(), "--follow"], &[]).await;
    assert_eq!(output.code, Some(1), "one job fails by design\n{}", shown(&output));
    let run_id = started_run(&output);
    let stdout = &output.stdout;
    assert!(stdout.contains("started: 3 agents, 20 jobs"), "{}", shown(&output));
    assert!(stdout.contains(&format!("run {run_id} completed after")), "{}", shown(&output));
    assert!(stdout.contains("\n20 jobs: 19 succeeded, 1 failed\n"), "{}", shown(&output));
    assert!(stdout.contains("hugo: this row asks to fail (should_fail=true)"), "the failure's reason\n{stdout}");
    assert!(stdout.contains(&format!("armada runs show {run_id} --server {}", app.base_url)), "{stdout}");
    assert!(stdout.contains(&format!("dashboard: {}/#/runs/{run_id}", app.base_url)), "{stdout}");
    assert!(
        stdout.contains("progress: 20/20 jobs done (19 succeeded, 1 failed)"),
        "plain lines off a terminal\n{stdout}"
    );

    let summary = json(&app, &format!("/api/runs/{run_id}/summary")).await;
    assert_eq!(summary["run"]["run_status"], "completed");
    assert_eq!(summary["total_jobs"], 20);
    assert_eq!((summary["counts"]["Success"].as_u64(), summary["counts"]["Failed"].as_u64()), (Some(19), Some(1)));

    let jobs = json(&app, &format!("/api/jobs?run_uuid={run_id}&page_size=100")).await;
    let jobs = jobs["jobs"].as_array().expect("jobs").clone();
    assert_eq!(jobs.len(), 20);
    let mut events_total = 0;
    for job in &jobs {
        let events = json(&app, &format!("/api/events?job_uuid={}", job["job_uuid"].as_str().unwrap())).await;
        let count = events.as_array().expect("events").len();
        let expected = if job["job_status"] == status::FAILED { 2 } else { 3 };
        assert_eq!(count, expected, "events of {job}");
        events_total += count;
    }

    let outputs = json(&app, &format!("/api/outputs?run_uuid={run_id}&page_size=100")).await;
    let outputs = outputs["outputs"].as_array().expect("outputs").clone();
    assert_eq!(outputs.len(), 22, "19 job outputs and one agent_init per agent");
    let mut inits: BTreeMap<u64, usize> = BTreeMap::new();
    for output in &outputs {
        let data = &output["data"];
        let agent = data["agent"].as_u64().expect("every output names its agent");
        let (greeting, location) = expected_agent(agent);
        assert_eq!((data["greeting"].as_str(), data["proxy_location"].as_str()), (Some(greeting), Some(location)));
        if data["kind"] == "agent_init" {
            *inits.entry(agent).or_default() += 1;
        }
    }
    assert_eq!(inits, BTreeMap::from([(0, 1), (1, 1), (2, 1)]), "each agent initialised once, with its own row");

    let job_ids: Vec<&str> = jobs.iter().map(|j| j["job_uuid"].as_str().unwrap()).collect();
    let streamed = async || {
        live.of_type("new_event").iter().filter(|e| job_ids.contains(&e["job_uuid"].as_str().unwrap_or(""))).count()
    };
    assert!(eventually(Duration::from_secs(30), async || streamed().await == events_total).await);
}

/// The README's first command: `armada serve` started in the background, `armada launch`
/// right after it, before the server listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_waits_for_a_starting_serve_and_follows_hello_to_its_end() {
    let cwd = tempfile::tempdir().expect("cwd");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let server = format!("http://127.0.0.1:{port}");
    let hello = hello();
    let launch = spawn_armada(cwd.path(), &["launch", &hello, "--server", &server, "--follow", "--wait", "60"], &[]);
    let waiting = format!("waiting for the server at {server}");
    assert!(launch.printed_to_stderr(&waiting, RUN_LIMIT).await, "launch found nobody listening and waits");
    let listen = format!("127.0.0.1:{port}");
    let mut serve = spawn_armada(cwd.path(), &["serve", "--listen", &listen], &[]);

    let output = launch.finish(RUN_LIMIT).await;
    assert_eq!(output.code, Some(1), "{}", shown(&output));
    assert!(output.stdout.contains("\n20 jobs: 19 succeeded, 1 failed\n"), "{}", shown(&output));
    let run_id = started_run(&output);
    assert!(cwd.path().join("armada.db").is_file(), "serve keeps its SQLite file in the working directory");
    assert!(cwd.path().join("armada-work").join(run_id.to_string()).is_dir(), "and the agents' working dirs");
    serve.child.terminate(Duration::from_secs(20)).await.expect("serve stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_no_follow_returns_the_run_id_then_runs_and_outputs_read_the_run_back() {
    let work = tempfile::tempdir().expect("work");
    let app = app(work.path(), None).await;
    let output = armada(&app, &["launch", &hello(), "--no-follow"], &[]).await;
    assert_eq!(output.code, Some(0), "{}", shown(&output));
    let run_id = Uuid::parse_str(output.stdout.trim()).unwrap_or_else(|_| panic!("{}", shown(&output)));
    assert!(output.stderr.contains(&format!("run {run_id} started: 3 agents, 20 jobs")), "{}", shown(&output));
    wait_for_status(&app, run_id, "completed").await;
    // The agents leave once the run's queue is deleted, a moment after it completed.
    let left = eventually(RUN_LIMIT, async || {
        let view = json(&app, &format!("/bot/runs/{run_id}")).await;
        view["agents"].as_array().is_some_and(|agents| agents.iter().all(|a| a["phase"] == "succeeded"))
    });
    assert!(left.await, "agents still there: {}", json(&app, &format!("/bot/runs/{run_id}")).await);

    let list = armada(&app, &["runs", "list"], &[]).await;
    assert_eq!(list.code, Some(0), "{}", shown(&list));
    let row = list.stdout.lines().find(|l| l.starts_with(&run_id.to_string())).expect("the run is listed");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[3..], ["completed", "20/20", "1"], "{}", list.stdout);
    assert!(list.stdout.contains("page 1 of 1 (1 run)"), "{}", list.stdout);

    let show = armada(&app, &["runs", "show", &run_id.to_string()], &[]).await;
    assert_eq!(show.code, Some(0), "{}", shown(&show));
    assert!(show.stdout.contains("status    completed\n"), "{}", show.stdout);
    assert!(show.stdout.contains("jobs      20 jobs: 19 succeeded, 1 failed\n"), "{}", show.stdout);
    let agents: Vec<&str> = show.stdout.lines().filter(|l| l.trim_start().starts_with("agent-")).collect();
    assert_eq!(agents.len(), 3, "{}", show.stdout);
    let taken: u64 = agents.iter().map(|l| l.split_whitespace().nth(2).unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(taken, 20, "jobs taken by the agents add up\n{}", show.stdout);
    assert!(agents.iter().all(|l| l.split_whitespace().nth(1) == Some("succeeded")), "{}", show.stdout);

    let csv = armada(&app, &["outputs", &run_id.to_string(), "--format", "csv"], &[]).await;
    assert_eq!(csv.code, Some(0), "{}", shown(&csv));
    let lines: Vec<&str> = csv.stdout.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 23, "a header and 22 outputs\n{}", csv.stdout);
    assert_eq!(
        lines[0], "kind,agent,greeting,proxy_location,screen_visible,name,details,job_uuid,timestamp,output_uuid",
        "data keys in first-seen order (oldest first: an agent_init row), then the record's fields"
    );
    assert!(lines[1].starts_with("agent_init,"), "oldest first: {}", lines[1]);
    assert_eq!(lines.iter().filter(|l| l.starts_with("job,")).count(), 19);
    assert!(
        lines.iter().any(|l| l.contains(r#","{""row"":0,""tags"":[""demo"",""even""],""weight"":0}","#)),
        "JSON cells"
    );

    let file = work.path().join("outputs.jsonl");
    let jsonl =
        armada(&app, &["outputs", &run_id.to_string(), "--format", "jsonl", "--output", file.to_str().unwrap()], &[])
            .await;
    assert_eq!(jsonl.code, Some(0), "{}", shown(&jsonl));
    assert!(jsonl.stderr.contains("wrote 22 outputs"), "{}", shown(&jsonl));
    let rows: Vec<Value> = std::fs::read_to_string(&file)
        .expect("the file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(rows.len(), 22);
    assert!(rows.iter().all(|row| row["run_uuid"] == run_id.to_string() && row["output_uuid"].is_string()));
    let times: Vec<&str> = rows.iter().map(|row| row["timestamp"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "oldest first: {times:?}");

    let delete = armada(&app, &["runs", "delete", &run_id.to_string()], &[]).await;
    assert_eq!(delete.code, Some(0), "{}", shown(&delete));
    assert_eq!(app.get(&format!("/api/runs/{run_id}")).await.0, 404);
    let again = armada(&app, &["runs", "show", &run_id.to_string()], &[]).await;
    assert_eq!(again.code, Some(1), "{}", shown(&again));
    assert!(again.stderr.contains(&format!("run {run_id} not found")), "{}", shown(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_of_a_bad_project_exits_2_naming_file_and_row_and_sends_nothing() {
    let work = tempfile::tempdir().expect("work");
    let app = app(work.path(), None).await;
    let project = copy_project(&example("hello"));
    let csv = project.path().join("config/data_job.csv");
    let text = std::fs::read_to_string(&csv).expect("csv");
    let broken: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 3 { format!("{l},one too many") } else { l.to_owned() })
        .collect();
    std::fs::write(&csv, broken.join("\n")).expect("write");

    let output = armada(&app, &["launch", project.path().to_str().unwrap(), "--follow"], &[]).await;
    assert_eq!(output.code, Some(2), "{}", shown(&output));
    assert!(
        output.stderr.starts_with("armada: error: config/data_job.csv row 4: 4 cells, header has 3"),
        "the server's own message, naming the file and row\n{}",
        shown(&output)
    );
    assert_eq!(output.stdout, "", "nothing started");
    assert_eq!(json(&app, "/api/runs").await["total"], 0, "no run exists on the server");
    assert!(app.orchestrator().active_runs_view().runs.is_empty());
}

#[tokio::test]
async fn launch_to_an_unreachable_server_exits_3() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
    let server = format!("http://127.0.0.1:{port}");
    let cwd = tempfile::tempdir().expect("cwd");
    let output = run_armada(cwd.path(), &["launch", &hello(), "--server", &server, "--wait", "0.5"], &[]).await;
    assert_eq!(output.code, Some(3), "{}", shown(&output));
    assert!(
        output.stderr.contains(&format!("cannot reach the server at {server}: Connection refused")),
        "{}",
        shown(&output)
    );
    assert!(output.stderr.contains("is `armada serve` running there?"), "{}", shown(&output));
    let list = run_armada(cwd.path(), &["runs", "list", "--server", &server], &[]).await;
    assert_eq!(list.code, Some(3), "{}", shown(&list));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_run_stops_real_agents_and_the_follower_exits_1() {
    let work = tempfile::tempdir().expect("work");
    let app = app(work.path(), None).await;
    let run_id = Uuid::new_v4();
    let cwd = tempfile::tempdir().expect("cwd");
    let (sleepy, id) = (sleepy(), run_id.to_string());
    let follower =
        spawn_armada(cwd.path(), &["launch", &sleepy, "--follow", "--run-id", &id, "--server", &app.base_url], &[]);
    let busy = eventually(RUN_LIMIT, async || {
        let (status, view) = app.get(&format!("/bot/runs/{run_id}")).await;
        status == 200 && view["counts"]["Running"] == 2
    });
    assert!(busy.await, "both agents took a job: {}", app.get(&format!("/bot/runs/{run_id}")).await.1);

    let refused = armada(&app, &["runs", "delete", &id], &[]).await;
    assert_eq!(refused.code, Some(1), "{}", shown(&refused));
    assert!(refused.stderr.contains("is running; cancel it first"), "the server's 409\n{}", shown(&refused));
    assert!(refused.stderr.contains(&format!("armada runs cancel {id}")), "{}", shown(&refused));

    let asked = Instant::now();
    let asked_at = armada::model::Timestamp::now();
    let cancel = armada(&app, &["runs", "cancel", &id], &[]).await;
    let took = asked.elapsed();
    assert_eq!(cancel.code, Some(0), "{}", shown(&cancel));
    assert!(cancel.stdout.starts_with(&format!("run {id} cancelled: 6 jobs: 0 succeeded, 0 failed, 6 cancelled")));
    let view = json(&app, &format!("/bot/runs/{run_id}")).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(view["counts"], serde_json::json!({"Cancelled": 6}), "queued and running jobs closed: {view}");
    assert!(view["queue"].is_null(), "{view}");
    let phases: Vec<&str> = view["agents"].as_array().unwrap().iter().map(|a| a["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["stopped", "stopped"], "agents stopped by the time cancel answered: {view}");
    // Each agent ended within the 2 s stop grace of the request (plus the kill itself and the
    // `armada runs cancel` process starting), by the server's own clock.
    for agent in view["agents"].as_array().unwrap() {
        let finished = armada::model::Timestamp::parse(agent["finished_at"].as_str().expect("finished_at")).unwrap();
        let after = Duration::from_micros((finished.as_micros() - asked_at.as_micros()).max(0) as u64);
        assert!(
            after < Duration::from_millis(3500),
            "agent {} stopped {after:?} after the cancel: {view}",
            agent["pod_index"]
        );
    }
    // The stop grace is 2 s; the rest is two process starts on a busy machine.
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert!(queue_is_gone(&app, run_id).await);

    let followed = follower.finish(Duration::from_secs(60)).await;
    assert_eq!(followed.code, Some(1), "{}", shown(&followed));
    assert!(followed.stdout.contains(&format!("run {id} cancelled after")), "{}", shown(&followed));
    assert!(followed.stdout.contains("6 jobs: 0 succeeded, 0 failed, 6 cancelled"), "{}", shown(&followed));

    let delete = armada(&app, &["runs", "delete", &id], &[]).await;
    assert_eq!(delete.code, Some(0), "{}", shown(&delete));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_a_token_needs_armada_token() {
    let work = tempfile::tempdir().expect("work");
    let app = app(work.path(), Some("s3cret")).await;
    let list = armada(&app, &["runs", "list"], &[]).await;
    assert_eq!(list.code, Some(2), "{}", shown(&list));
    assert!(list.stderr.contains("this server requires a token: set ARMADA_TOKEN"), "{}", shown(&list));
    let launch = armada(&app, &["launch", &hello(), "--follow"], &[]).await;
    assert_eq!(launch.code, Some(2), "{}", shown(&launch));
    assert!(launch.stderr.contains("this server requires a token: set ARMADA_TOKEN"), "{}", shown(&launch));
    assert_eq!(json(&app, "/api/runs").await["total"], 0, "nothing started without the token");

    let wrong = armada(&app, &["runs", "list"], &[("ARMADA_TOKEN", "guess")]).await;
    assert_eq!(wrong.code, Some(2), "{}", shown(&wrong));
    assert!(wrong.stderr.contains("refused the token in ARMADA_TOKEN"), "{}", shown(&wrong));

    let token = [("ARMADA_TOKEN", "s3cret")];
    let launch = armada(&app, &["launch", &hello(), "--follow"], &token).await;
    assert_eq!(launch.code, Some(1), "followed live through the token-protected stream\n{}", shown(&launch));
    assert!(launch.stdout.contains("\n20 jobs: 19 succeeded, 1 failed\n"), "{}", shown(&launch));
    let list = armada(&app, &["runs", "list"], &token).await;
    assert_eq!(list.code, Some(0), "{}", shown(&list));
    assert!(list.stdout.contains(&started_run(&launch).to_string()), "{}", list.stdout);
}
