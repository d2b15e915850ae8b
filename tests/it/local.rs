//! `PLATFORM=local` end to end, as an operator runs it: a real `armada serve` child process on
//! real Redis (`REDIS_HOST`/`REDIS_PORT`) and RabbitMQ, `armada launch`, and agents that are
//! real `armada agent` child processes of the server — found in `/proc` while the run goes,
//! and gone after it ends, after a cancel, after SIGTERM and after SIGKILL of the server.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use uuid::Uuid;

use crate::support::agents::example;
use crate::support::servers::{self, loud};
use crate::support::{ArmadaChild, BinOutput, eventually, spawn_armada};

/// Generous: the machine is shared and busy.
pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `armada serve` with every role, `PLATFORM=local`, on real Redis and RabbitMQ.
pub(crate) struct LocalServe {
    pub(crate) serve: ArmadaChild,
    pub(crate) url: String,
    pub(crate) cwd: tempfile::TempDir,
    pub(crate) client: reqwest::Client,
}

impl LocalServe {
    /// On the shared Redis and RabbitMQ; `None` (after a SKIPPED line) when they are not installed.
    pub(crate) async fn start() -> Option<Self> {
        let (Some(redis), Some(rabbitmq)) = (servers::redis_url(), servers::rabbitmq_url()) else {
            loud("SKIPPED local: needs redis-server and rabbitmq-server (scripts/install-test-deps.sh)");
            return None;
        };
        Some(Self::start_on(&redis, &rabbitmq).await)
    }

    /// On the Redis at `redis` (`redis://host:port`, given as `REDIS_HOST`/`REDIS_PORT`) and the
    /// RabbitMQ at `rabbitmq`.
    pub(crate) async fn start_on(redis: &str, rabbitmq: &str) -> Self {
        let redis = reqwest::Url::parse(redis).expect("Redis URL");
        let (host, port) = (redis.host_str().expect("Redis host").to_string(), redis.port().unwrap_or(6379));
        let cwd = tempfile::tempdir().expect("cwd");
        let listen = format!("127.0.0.1:{}", servers::free_port());
        let port = port.to_string();
        let env = [
            ("REDIS_HOST", host.as_str()),
            ("REDIS_PORT", &port),
            ("RABBITMQ_URL", rabbitmq),
            ("PLATFORM", "local"),
            // Plain log lines, to find the agents' lines in serve's.
            ("NO_COLOR", "1"),
        ];
        let serve = spawn_armada(cwd.path(), &["serve", "--listen", &listen], &env);
        let client = reqwest::Client::builder().no_proxy().build().expect("HTTP client");
        let url = format!("http://{listen}");
        let up = eventually(Duration::from_secs(60), async || client.get(format!("{url}/health")).send().await.is_ok());
        assert!(up.await, "serve did not start listening");
        Self { serve, url, cwd, client }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.serve.child.pid()
    }

    /// `armada ARGS --server URL` in the server's folder.
    pub(crate) fn armada(&self, args: &[&str]) -> ArmadaChild {
        let args: Vec<&str> = args.iter().copied().chain(["--server", self.url.as_str()]).collect();
        spawn_armada(self.cwd.path(), &args, &[])
    }

    pub(crate) async fn view(&self, run_id: Uuid) -> Value {
        let response = self.client.get(format!("{}/bot/runs/{run_id}", self.url)).send().await.expect("run view");
        response.json().await.expect("run view JSON")
    }

    /// Starts `project` without following it; the run id is chosen here.
    pub(crate) async fn launch(&self, project: &Path) -> Uuid {
        let run_id = Uuid::new_v4();
        let (dir, id) = (project.display().to_string(), run_id.to_string());
        let output = self.armada(&["launch", &dir, "--no-follow", "--run-id", &id]).finish(RUN_LIMIT).await;
        assert_eq!(output.code, Some(0), "{}", shown(&output));
        run_id
    }

    /// The run's agent processes once both took a job (`sleepy` runs 2 agents).
    async fn busy_agents(&self, run_id: Uuid) -> Vec<u32> {
        let busy = eventually(RUN_LIMIT, async || self.view(run_id).await["counts"]["Running"] == 2);
        assert!(busy.await, "both agents took a job: {}", self.view(run_id).await);
        let agents = agent_processes(self.pid());
        assert_eq!(agents.len(), 2, "two `armada agent` children of serve");
        agents
    }
}

pub(crate) fn shown(output: &BinOutput) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", output.code, output.stdout, output.stderr)
}

fn sleepy() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sleepy")
}

/// `(pid, parent pid)` of every process there is, zombies left out.
pub(crate) fn processes() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold anything, so read after its last ')'.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let parent = fields.next()?.parse().ok()?;
            (state != "Z").then_some((pid, parent))
        })
        .collect()
}

pub(crate) fn command_line(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

/// The children of `parent` that run `… agent`.
pub(crate) fn agent_processes(parent: u32) -> Vec<u32> {
    let mut agents: Vec<u32> = processes()
        .into_iter()
        .filter(|(_, ppid)| *ppid == parent)
        .map(|(pid, _)| pid)
        .filter(|pid| command_line(*pid).get(1).is_some_and(|arg| arg == "agent"))
        .collect();
    agents.sort_unstable();
    agents
}

/// Every process descending from `roots` (children, grandchildren, …), roots excluded.
pub(crate) fn descendants(roots: &[u32]) -> Vec<u32> {
    let all = processes();
    let mut found: Vec<u32> = Vec::new();
    let mut frontier = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for (pid, _) in all.iter().filter(|(_, ppid)| *ppid == parent) {
            found.push(*pid);
            frontier.push(*pid);
        }
    }
    found
}

pub(crate) fn alive(pid: u32) -> bool {
    processes().iter().any(|(p, _)| *p == pid)
}

pub(crate) async fn all_gone(pids: &[u32], within: Duration) -> bool {
    eventually(within, async || !pids.iter().any(|pid| alive(*pid))).await
}

pub(crate) fn agent_pids_in(view: &Value) -> Vec<u32> {
    let mut pids: Vec<u32> = view["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .filter_map(|a| a["pid"].as_u64().and_then(|p| u32::try_from(p).ok()))
        .collect();
    pids.sort_unstable();
    pids
}

pub(crate) fn phases(view: &Value) -> Vec<String> {
    view["agents"].as_array().expect("agents").iter().map(|a| a["phase"].as_str().unwrap_or("?").to_string()).collect()
}

/// The acceptance line: `REDIS_HOST=… REDIS_PORT=… RABBITMQ_URL=… PLATFORM=local armada
/// serve` + `armada launch examples/hello` runs with child agent processes, none left after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_runs_in_child_agent_processes_of_serve_and_none_is_left_when_it_ends() {
    let Some(mut local) = LocalServe::start().await else { return };
    let run_id = Uuid::new_v4();
    let (hello, id) = (example("hello").display().to_string(), run_id.to_string());
    let launch = local.armada(&["launch", &hello, "--follow", "--run-id", &id]);

    // While the run goes: its agents are `armada agent` children of serve, with the pids the
    // run view shows.
    let mut seen: Vec<u32> = Vec::new();
    let mut view_while_running = Value::Null;
    let watched = eventually(RUN_LIMIT, async || {
        let agents = agent_processes(local.pid());
        if agents.len() == 3 {
            let view = local.view(run_id).await;
            if phases(&view) == ["running"; 3] && agent_pids_in(&view) == agents {
                seen = agents;
                view_while_running = view;
                return true;
            }
        }
        false
    });
    assert!(watched.await, "never saw the run's 3 agents as children of serve: {}", local.view(run_id).await);
    for pid in &seen {
        let argv = command_line(*pid);
        assert_eq!(Path::new(&argv[0]).file_name().and_then(|n| n.to_str()), Some("armada"), "{argv:?}");
    }
    assert!(view_while_running["agents"].as_array().unwrap().iter().all(|a| a["started_at"].is_string()));

    let output = launch.finish(RUN_LIMIT).await;
    assert_eq!(output.code, Some(1), "one job fails by design\n{}", shown(&output));
    assert!(output.stdout.contains("started: 3 agents, 20 jobs"), "{}", shown(&output));
    assert!(output.stdout.contains("\n20 jobs: 19 succeeded, 1 failed\n"), "{}", shown(&output));

    // After it: the agents left on their own (the queue was deleted), and none is left.
    let left = eventually(Duration::from_secs(60), async || phases(&local.view(run_id).await) == ["succeeded"; 3]);
    assert!(left.await, "agents did not end: {}", local.view(run_id).await);
    assert!(all_gone(&seen, Duration::from_secs(10)).await, "agent processes left: {:?}", agent_processes(local.pid()));
    assert_eq!(agent_processes(local.pid()), Vec::<u32>::new());
    let view = local.view(run_id).await;
    assert_eq!(agent_pids_in(&view), seen, "the view keeps the pids of the agents that ended");
    assert_eq!(view["status"], "completed", "{view}");
    assert_eq!((view["counts"]["Success"].as_u64(), view["counts"]["Failed"].as_u64()), (Some(19), Some(1)), "{view}");

    // What they printed: a log file each in the run's folder, and serve's own log.
    let run_dir = local.cwd.path().join("armada-work").join(run_id.to_string());
    for index in 0..3 {
        let log = std::fs::read_to_string(run_dir.join(format!("agent-{index}.log"))).expect("agent log");
        assert!(log.contains("agent starting"), "agent-{index}.log: {log}");
        assert!(run_dir.join(format!("agent-{index}")).is_dir(), "the agent's working directory");
    }
    let forwarded = format!("agent{{run_id={run_id} pod_index=0 pid={}}}", seen[0]);
    assert!(local.serve.printed_to_stderr(&forwarded, Duration::from_secs(5)).await, "serve logs the agents' lines");
    local.serve.child.terminate(Duration::from_secs(30)).await.expect("serve stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_run_ends_the_agent_processes_and_their_workers_within_the_grace() {
    let Some(mut local) = LocalServe::start().await else { return };
    let run_id = local.launch(&sleepy()).await;
    let agents = local.busy_agents(run_id).await;
    let workers = descendants(&agents);
    assert!(!workers.is_empty(), "each agent runs a worker process");

    let asked = Instant::now();
    let id = run_id.to_string();
    let cancel = local.armada(&["runs", "cancel", &id]).finish(RUN_LIMIT).await;
    let took = asked.elapsed();
    assert_eq!(cancel.code, Some(0), "{}", shown(&cancel));
    // The stop grace is 2 s; cancel answers once the agents are gone.
    assert!(took < Duration::from_secs(10), "cancel took {took:?}");
    assert!(agents.iter().all(|pid| !alive(*pid)), "agents still there when cancel answered: {agents:?}");
    assert!(all_gone(&workers, Duration::from_secs(10)).await, "workers left: {workers:?}");
    let view = local.view(run_id).await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(phases(&view), ["stopped", "stopped"], "{view}");
    assert_eq!(agent_pids_in(&view), agents, "{view}");
    local.serve.child.terminate(Duration::from_secs(30)).await.expect("serve stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_serve_mid_run_leaves_no_agent_process() {
    let Some(mut local) = LocalServe::start().await else { return };
    let run_id = local.launch(&sleepy()).await;
    let agents = local.busy_agents(run_id).await;
    let workers = descendants(&agents);

    let status = local.serve.child.terminate(Duration::from_secs(60)).await.expect("serve stops");
    assert_eq!(status.code, Some(0), "serve stops cleanly on SIGTERM: {status}");
    assert!(agents.iter().all(|pid| !alive(*pid)), "agents outlived serve: {agents:?}");
    assert!(all_gone(&workers, Duration::from_secs(10)).await, "workers outlived serve: {workers:?}");
}

/// A server killed outright runs no cleanup: its agents get the parent-death signal (SIGTERM),
/// stop as told (the current job handed back after the agent's 10 s grace) and take their
/// workers with them. Without that signal they would run on until their jobs end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_to_serve_mid_run_leaves_no_agent_process_either() {
    let Some(local) = LocalServe::start().await else { return };
    let run_id = local.launch(&sleepy()).await;
    let agents = local.busy_agents(run_id).await;
    let workers = descendants(&agents);

    local.serve.child.kill().expect("SIGKILL serve");
    let killed = Instant::now();
    assert!(all_gone(&[local.pid()], Duration::from_secs(10)).await, "serve is gone");
    // Well before their jobs (2 minutes of sleep) would end and let unsignalled agents go.
    let left = all_gone(&[agents.as_slice(), workers.as_slice()].concat(), Duration::from_secs(60)).await;
    assert!(left, "orphans of a killed serve: agents {agents:?} workers {workers:?}");
    eprintln!("agents and workers gone {:?} after serve was killed", killed.elapsed());
}

#[tokio::test]
async fn serve_with_platform_local_on_the_embedded_engines_exits_2_naming_the_variables_to_set() {
    let cwd = tempfile::tempdir().expect("cwd");
    let listen = format!("127.0.0.1:{}", servers::free_port());
    let output =
        crate::support::run_armada(cwd.path(), &["serve", "--listen", &listen], &[("PLATFORM", "local")]).await;
    assert_eq!(output.code, Some(2), "a configuration error\n{}", shown(&output));
    assert!(
        output.stderr.contains("armada: error: PLATFORM: local starts agents as separate `armada agent` processes"),
        "{}",
        shown(&output)
    );
    assert!(output.stderr.contains("set REDIS_HOST/REDIS_PORT (or REDIS_URL) and RABBITMQ_URL"), "{}", shown(&output));
}
