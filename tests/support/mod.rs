//! Test support: `TestApp` starts the real service (`app::serve`) in-process on a loopback
//! port with a fresh SQLite file, and hands back URLs, an HTTP client and the shared state.
//!
//! ```ignore
//! let app = TestApp::builder().roles([Role::Backend]).token(Some("t")).spawn().await;
//! let response = app.client.get(app.url("/api/runs")).bearer_auth("t").send().await?;
//! let (ws, _) = tokio_tungstenite::connect_async(app.ws_url("/ws/events?token=t")).await?;
//! ```
//!
//! Extending it (engines, launchers, …): add a builder method that records the choice, and
//! apply it in `spawn` — as a variable through `var(…)` when `Settings` reads one, or on the
//! `Settings`/`AppState` directly. Keep every test's resources inside the `TestApp` so drop
//! cleans them up.
#![allow(dead_code)]

pub mod agents;
pub mod engines;
pub mod kube_api;
pub mod kube_process;
pub mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use armada::agent::runtime::InProcessDeps;
use armada::app::{self, AppState, Engines};
use armada::infra::broker::Broker;
use armada::infra::config_store::ConfigStore;
use armada::infra::db::Store;
use armada::infra::launcher::Launcher;
use armada::infra::launcher::in_process::AgentEntry;
use armada::roles::Role;
use armada::roles::orchestrator::Orchestrator;
use armada::settings::{Secret, Settings, Vars};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Real Redis and RabbitMQ servers, started once per test binary when installed (the engines'
/// own helper: `redis_url()`, `rabbitmq_url()`, each `None` after a loud SKIPPED line).
#[path = "../../src/infra/testing.rs"]
pub mod servers;

/// A running app; stops (and its temporary folder goes) when dropped.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// `ws://127.0.0.1:PORT/ws/events`
    pub ws_url: String,
    pub addr: SocketAddr,
    /// A plain client: no token, no proxy.
    pub client: reqwest::Client,
    pub state: AppState,
    pub token: Option<String>,
    /// Holds the SQLite file (and anything else a test puts there).
    pub dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

#[derive(Default)]
pub struct TestAppBuilder {
    roles: Vec<Role>,
    token: Option<String>,
    cors: Option<Vec<String>>,
    max_body: Option<usize>,
    ws_queue: Option<usize>,
    ws_heartbeat: Option<Duration>,
    store: Option<Arc<dyn Store>>,
    vars: Vec<(String, String)>,
    engines: Engines,
    launcher_from: Option<LauncherFactory>,
    listener: Option<tokio::net::TcpListener>,
}

/// Makes the orchestrator's launcher from the app's own settings (see [`TestAppBuilder::launcher_from`]).
type LauncherFactory = Box<dyn FnOnce(&Settings) -> Arc<dyn Launcher> + Send>;

impl TestAppBuilder {
    /// Roles to serve; all of them when never called.
    pub fn roles(mut self, roles: impl IntoIterator<Item = Role>) -> Self {
        self.roles = roles.into_iter().collect();
        self
    }

    /// `ARMADA_TOKEN`.
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(String::from);
        self
    }

    /// `ARMADA_CORS_ORIGINS`.
    pub fn cors<S: Into<String>>(mut self, origins: impl IntoIterator<Item = S>) -> Self {
        self.cors = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// `ARMADA_MAX_BODY_BYTES`.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = Some(bytes);
        self
    }

    /// `ARMADA_WS_QUEUE`.
    pub fn ws_queue(mut self, messages: usize) -> Self {
        self.ws_queue = Some(messages);
        self
    }

    /// `ARMADA_WS_HEARTBEAT_SECS`, with sub-second precision for tests.
    pub fn ws_heartbeat(mut self, interval: Duration) -> Self {
        self.ws_heartbeat = Some(interval);
        self
    }

    /// Use this store instead of a fresh SQLite file (e.g. one that fails, to test outages).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The orchestrator's config store instead of a fresh in-process one.
    pub fn config_store(mut self, store: Arc<dyn ConfigStore>) -> Self {
        self.engines.config_store = Some(store);
        self
    }

    /// The orchestrator's broker instead of a fresh in-process one (e.g. one that fails).
    pub fn broker(mut self, broker: Arc<dyn Broker>) -> Self {
        self.engines.broker = Some(broker);
        self
    }

    /// The orchestrator's launcher instead of in-process agents.
    pub fn launcher(mut self, launcher: Arc<dyn Launcher>) -> Self {
        self.engines.launcher = Some(launcher);
        self
    }

    /// The orchestrator's launcher, made from the app's settings once they exist (its address,
    /// database, Redis and RabbitMQ): e.g. a process launcher whose agents reach this app.
    pub fn launcher_from(mut self, make: impl FnOnce(&Settings) -> Arc<dyn Launcher> + Send + 'static) -> Self {
        self.launcher_from = Some(Box::new(make));
        self
    }

    /// What in-process agents run instead of the real agent runtime (test agents), made from
    /// the engines the app opened.
    pub fn agent_entry(mut self, make: impl FnOnce(InProcessDeps) -> AgentEntry + Send + 'static) -> Self {
        self.engines.agent_entry = Some(Box::new(make));
        self
    }

    /// Serve on this listener instead of a fresh one: its address is known before `spawn`
    /// (e.g. for agents started elsewhere that must reach the backend).
    pub fn listener(mut self, listener: tokio::net::TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Any variable `Settings` reads, as if set in the environment.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.push((key.into(), value.into()));
        self
    }

    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut vars =
            Vars::from_pairs([("ARMADA_DATABASE_URL", format!("sqlite:{}", dir.path().join("armada.db").display()))]);
        for (key, value) in self.vars {
            vars.set(key, value);
        }
        let listener = match self.listener {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback"),
        };
        let addr = listener.local_addr().expect("local address");
        let mut settings = Settings::from_vars(vars, self.roles, Some(addr)).expect("valid test settings");
        if let Some(token) = &self.token {
            settings.token = Some(Secret::new(token.clone()));
        }
        if let Some(cors) = self.cors {
            settings.cors_origins = cors;
        }
        if let Some(bytes) = self.max_body {
            settings.max_body_bytes = bytes;
        }
        if let Some(queue) = self.ws_queue {
            settings.ws_queue = queue;
        }
        if let Some(interval) = self.ws_heartbeat {
            settings.ws_heartbeat = interval;
        }
        let mut engines = self.engines;
        engines.store = self.store;
        if let Some(make) = self.launcher_from {
            engines.launcher = Some(make(&settings));
        }
        let state = AppState::build_with(settings, engines).await.expect("app state");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(app::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        TestApp {
            base_url: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/ws/events"),
            addr,
            client: reqwest::Client::builder().no_proxy().build().expect("HTTP client"),
            state,
            token: self.token,
            dir,
            shutdown: Some(shutdown),
            server,
        }
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// Backend only, no token: what most backend tests want.
    pub async fn backend() -> TestApp {
        Self::builder().roles([Role::Backend]).spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn ws(&self, path_and_query: &str) -> String {
        format!("ws://{}{path_and_query}", self.addr)
    }

    /// Sends and returns the status and the JSON body (`Value::Null` when the body is not JSON).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> (reqwest::StatusCode, Value) {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.bytes().await.expect("response body");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (reqwest::StatusCode, Value) {
        self.send(self.client.patch(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (reqwest::StatusCode, Value) {
        self.send(self.client.delete(self.url(path))).await
    }

    /// The orchestrator (its engines and active runs), when the role is served.
    pub fn orchestrator(&self) -> &Arc<Orchestrator> {
        self.state.orchestrator.as_ref().expect("the orchestrator role is served")
    }

    /// Sends the shutdown signal and waits for `serve` to return, as `armada serve` does on
    /// SIGTERM (the orchestrator stops every agent).
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        tokio::time::timeout(Duration::from_secs(60), &mut self.server)
            .await
            .expect("serve returns after the shutdown signal")
            .expect("server task")
    }

    /// `GET /metrics` as text.
    pub async fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().await.expect("metrics").text().await.expect("metrics text")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Open WebSockets would keep a graceful shutdown waiting; the test is over anyway.
        self.server.abort();
    }
}

/// The sum of every sample of `name` (all label sets) in Prometheus text.
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Polls `check` until it holds or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What a run of the `armada` binary printed and how it exited.
#[derive(Debug)]
pub struct BinOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real `armada` binary in `dir` with `args`, only the safe inherited variables
/// (`armada::process`) plus `env`, and no standard input.
pub async fn run_armada(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> BinOutput {
    spawn_armada(dir, args, env).finish(Duration::from_secs(300)).await
}

/// The real `armada` binary started as [`run_armada`] does, its output read in the background.
pub fn spawn_armada(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> ArmadaChild {
    use tokio::io::AsyncReadExt;
    let spec = env
        .iter()
        .fold(armada::process::ChildSpec::new(env!("CARGO_BIN_EXE_armada"), dir).args(args), |spec, (name, value)| {
            spec.env(name, value)
        });
    let mut child = spec.spawn().expect("start armada");
    let (mut out, mut err) = (child.take_stdout().expect("stdout"), child.take_stderr().expect("stderr"));
    let stdout = tokio::spawn(async move {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text).await;
        text
    });
    let stderr_so_far = Arc::new(std::sync::Mutex::new(String::new()));
    let sink = stderr_so_far.clone();
    let stderr = tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        while let Ok(read) = err.read(&mut chunk).await {
            if read == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk[..read]));
        }
        sink.lock().unwrap().clone()
    });
    ArmadaChild { child, stdout, stderr, stderr_so_far, args: args.iter().map(|a| a.to_string()).collect() }
}

/// A running `armada` process (killed with its process group when dropped).
pub struct ArmadaChild {
    pub child: armada::process::ChildProcess,
    stdout: JoinHandle<String>,
    stderr: JoinHandle<String>,
    stderr_so_far: Arc<std::sync::Mutex<String>>,
    args: Vec<String>,
}

impl ArmadaChild {
    /// Waits until its standard error holds `text`; false after `within`.
    pub async fn printed_to_stderr(&self, text: &str, within: Duration) -> bool {
        eventually(within, async || self.stderr_so_far.lock().unwrap().contains(text)).await
    }

    /// Waits for it to exit (killing it and failing the test after `within`) and returns what
    /// it printed.
    pub async fn finish(mut self, within: Duration) -> BinOutput {
        let exited = tokio::time::timeout(within, self.child.wait()).await;
        if exited.is_err() {
            let _ = self.child.kill();
        }
        let stdout = self.stdout.await.unwrap_or_default();
        let stderr = self.stderr.await.unwrap_or_default();
        match exited {
            Ok(status) => BinOutput { code: status.expect("wait for armada").code, stdout, stderr },
            Err(_) => panic!("armada {:?} did not exit within {within:?}\n{stdout}\n{stderr}", self.args),
        }
    }
}
