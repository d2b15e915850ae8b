//! Test support for the engines: runs a conformance test body or says loudly why it was
//! skipped, and starts real Redis and RabbitMQ servers on free loopback ports in temp dirs.
//!
//! Servers: `ARMADA_TEST_REDIS_URL` / `ARMADA_TEST_RABBITMQ_URL` point the suites at servers
//! of your own; otherwise one server of each kind is started per test binary (when
//! installed) and stopped when the binary exits (an `atexit` hook; `PR_SET_PDEATHSIG` as a
//! backstop if the binary is killed). `ARMADA_TEST_LIVE_SERVERS=0` skips them all.
//!
//! `ARMADA_TEST_REQUIRE_LIVE=1` (set by `scripts/test.sh`, so CI) turns every such skip into a
//! failure: a test that needs Redis or RabbitMQ panics, saying why, instead of passing without
//! them.

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, Once, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// No conformance test may run longer than this; a hung engine fails the test instead of
/// hanging the whole run.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Runs `body`, or, when the suite's constructor found no engine (`None`), prints a SKIPPED
/// line: the constructor itself prints why and how to enable it.
pub async fn run_conformance<F: Future<Output = ()>>(engine: &str, suite: &str, test: &str, body: Option<F>) {
    let Some(body) = body else {
        loud(&format!(
            "SKIPPED: {engine} conformance test {suite}::{test}: the engine is not available here \
             (why, and how to enable it: the SKIPPED line naming the engine)"
        ));
        return;
    };
    if tokio::time::timeout(TEST_LIMIT, body).await.is_err() {
        panic!("{engine} conformance test {suite}::{test} did not finish within {TEST_LIMIT:?}");
    }
}

/// Straight to the process's stderr: the test harness captures `eprintln!` and shows it only
/// for failing tests, and a skip must be seen.
pub fn loud(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind 127.0.0.1:0")
}

/// `ARMADA_TEST_REQUIRE_LIVE=1`: a live server that is not available fails the test.
const REQUIRE_LIVE: &str = "ARMADA_TEST_REQUIRE_LIVE";

fn live_servers_required() -> bool {
    std::env::var(REQUIRE_LIVE).is_ok_and(|v| v == "1")
}

/// Skips `name` saying `why` and how to enable it — or, with `ARMADA_TEST_REQUIRE_LIVE=1`,
/// fails the test.
fn skip(name: &str, why: &str, enable: &str) -> Option<String> {
    if live_servers_required() {
        panic!("{name} is required ({REQUIRE_LIVE}=1) but {why}; {enable}, or unset {REQUIRE_LIVE} to skip");
    }
    loud(&format!("SKIPPED {name}: {why}; {enable}, to run against {name}"));
    None
}

/// The Redis URL the suites use: `ARMADA_TEST_REDIS_URL`, else a server started for this
/// test binary. `None` (after saying why) when there is none.
pub fn redis_url() -> Option<String> {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    shared_url("Redis", "ARMADA_TEST_REDIS_URL", "/usr/bin/redis-server", &SHARED, || {
        RedisServer::start().map(|server| {
            let url = server.url();
            std::mem::forget(server); // stopped and removed at exit
            url
        })
    })
}

/// The AMQP URL the suites use: `ARMADA_TEST_RABBITMQ_URL`, else a server started for this
/// test binary. `None` (after saying why) when there is none.
pub fn rabbitmq_url() -> Option<String> {
    static SHARED: OnceLock<Result<String, String>> = OnceLock::new();
    shared_url("RabbitMQ", "ARMADA_TEST_RABBITMQ_URL", RABBITMQ_SERVER, &SHARED, || {
        RabbitServer::start().map(|server| {
            let url = server.url();
            std::mem::forget(server); // stopped and removed at exit
            url
        })
    })
}

fn shared_url(
    name: &str,
    env: &str,
    binary: &str,
    shared: &OnceLock<Result<String, String>>,
    start: impl FnOnce() -> Result<String, String>,
) -> Option<String> {
    if let Ok(url) = std::env::var(env) {
        return Some(url);
    }
    if std::env::var("ARMADA_TEST_LIVE_SERVERS").is_ok_and(|v| v == "0") {
        return skip(name, "ARMADA_TEST_LIVE_SERVERS=0", &format!("unset it, or set {env}=…"));
    }
    if !Path::new(binary).exists() {
        let how = format!("install it (scripts/install-test-deps.sh), or set {env}=…");
        return skip(name, &format!("{binary} is not installed"), &how);
    }
    // The shared server lives until the test binary exits (see `stop_all_at_exit`).
    match shared.get_or_init(start) {
        Ok(url) => Some(url.clone()),
        Err(e) => panic!("{name} is installed but did not start: {e}"),
    }
}

/// A server process this test binary started.
struct Started {
    pid: i32,
    epmd_port: Option<u16>,
    dir: PathBuf,
}

static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());

extern "C" fn stop_all_at_exit() {
    let Ok(mut started) = STARTED.try_lock() else { return };
    for server in started.drain(..) {
        stop_process(server.pid, server.epmd_port);
        let _ = std::fs::remove_dir_all(&server.dir);
    }
}

/// SIGTERM, wait (RabbitMQ takes ~2 s), SIGKILL if it lingers; then its own epmd.
fn stop_process(pid: i32, epmd_port: Option<u16>) {
    // SAFETY: plain syscalls on a pid this process spawned and has not reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) == 0 {
            if Instant::now() > deadline {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if let Some(port) = epmd_port {
        let _ = Command::new("epmd").args(["-port", &port.to_string(), "-kill"]).stdout(Stdio::null()).status();
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<u32>>);

/// Spawns from one thread that lives as long as the test binary: `PR_SET_PDEATHSIG` fires
/// when the *thread* that spawned a child ends, and test threads end with their test.
fn spawn_server(command: Command) -> std::io::Result<i32> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    static AT_EXIT: Once = Once::new();
    // SAFETY: registers a plain `extern "C" fn` once.
    AT_EXIT.call_once(|| unsafe {
        libc::atexit(stop_all_at_exit);
    });
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::spawn(move || {
            for (mut command, reply) in rx {
                // SAFETY: prctl is async-signal-safe; runs in the child between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                        Ok(())
                    });
                }
                let _ = reply.send(command.spawn().map(|child| child.id()));
            }
        });
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .map_err(|_| std::io::Error::other("spawner poisoned"))?
        .send((command, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    let pid = reply_rx.recv().map_err(|_| std::io::Error::other("spawner thread gone"))??;
    Ok(i32::try_from(pid).expect("pid fits i32"))
}

/// Waits until `port` accepts connections or the process `pid` exits.
fn wait_for_port(pid: i32, port: u16, limit: Duration, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        // SAFETY: non-blocking status check of our own child.
        if unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) } == pid {
            return Err(format!("exited before listening on {port}: {}", tail(log)));
        }
        if Instant::now() > deadline {
            return Err(format!("not listening on {port} after {limit:?}: {}", tail(log)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn log_file(dir: &Path) -> std::io::Result<(Stdio, Stdio)> {
    let file = std::fs::File::create(dir.join("server.log"))?;
    Ok((Stdio::from(file.try_clone()?), Stdio::from(file)))
}

/// A Redis server of the test binary's own: `stop` and `start` again on the same port to
/// exercise reconnection. Stopped when dropped.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    pid: Option<i32>,
}

impl RedisServer {
    pub fn start() -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("armada-redis-").tempdir().map_err(|e| e.to_string())?;
        let mut server = Self { port: free_port(), dir, pid: None };
        server.start_again()?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start_again(&mut self) -> Result<(), String> {
        let (out, err) = log_file(self.dir.path()).map_err(|e| e.to_string())?;
        let mut command = Command::new("/usr/bin/redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let pid = spawn_server(command).map_err(|e| format!("redis-server: {e}"))?;
        register(pid, None, self.dir.path());
        self.pid = Some(pid);
        wait_for_port(pid, self.port, Duration::from_secs(20), &self.dir.path().join("server.log"))
    }

    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            unregister(pid);
            stop_process(pid, None);
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const RABBITMQ_CTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// A RabbitMQ node of the test binary's own, with its own epmd port, data kept across
/// `stop`/`start_again` (durable queues and persistent messages survive). Stopped when dropped.
pub struct RabbitServer {
    pub port: u16,
    dist_port: u16,
    epmd_port: u16,
    dir: tempfile::TempDir,
    pid: Option<i32>,
}

/// How a test RabbitMQ node is configured beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RabbitConfig {
    /// The broker-wide `consumer_timeout` (`rabbitmq.conf`): a delivery held longer than this
    /// gets its channel closed and is redelivered. RabbitMQ checks it on each channel tick
    /// (every 60 s by default), so the node's `channel_tick_interval` (`advanced.config`) is
    /// set to a tenth of it, at least 100 ms, to make it fire on time.
    pub consumer_timeout: Option<Duration>,
}

impl RabbitServer {
    pub fn start() -> Result<Self, String> {
        Self::start_with(&RabbitConfig::default())
    }

    pub fn start_with(settings: &RabbitConfig) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("armada-rabbitmq-").tempdir().map_err(|e| e.to_string())?;
        let mut server = Self { port: free_port(), dist_port: free_port(), epmd_port: free_port(), dir, pid: None };
        let mut config = format!(
            "listeners.tcp.default = 127.0.0.1:{}\ndisk_free_limit.absolute = 1MB\nlog.file.level = warning\n",
            server.port
        );
        let mut advanced = "[].\n".to_string();
        if let Some(timeout) = settings.consumer_timeout {
            config.push_str(&format!("consumer_timeout = {}\n", timeout.as_millis()));
            let tick = (timeout / 10).max(Duration::from_millis(100));
            advanced = format!("[{{rabbit, [{{channel_tick_interval, {}}}]}}].\n", tick.as_millis());
        }
        let write = |name: &str, text: &str| std::fs::write(server.dir.path().join(name), text);
        write("rabbitmq.conf", &config).map_err(|e| e.to_string())?;
        write("advanced.config", &advanced).map_err(|e| e.to_string())?;
        write("enabled_plugins", "[].\n").map_err(|e| e.to_string())?;
        server.start_again()?;
        Ok(server)
    }

    /// Runs `rabbitmqctl` against this node (`list_queues name arguments`, …); its output.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let dir = self.dir.path();
        let output = Command::new(RABBITMQ_CTL)
            .arg("-n")
            .arg(self.node_name())
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!("rabbitmqctl {args:?}: {}: {stdout}{}", output.status, String::from_utf8_lossy(&output.stderr)))
        }
    }

    /// What the node logged (warnings and worse, see `log.file.level`).
    pub fn log(&self) -> String {
        let Ok(entries) = std::fs::read_dir(self.dir.path().join("log")) else { return String::new() };
        let mut text = String::new();
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "log") {
                text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
            }
        }
        text
    }

    fn node_name(&self) -> String {
        format!("armada{}@localhost", self.port)
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    pub fn start_again(&mut self) -> Result<(), String> {
        let dir: PathBuf = self.dir.path().to_path_buf();
        let (out, err) = log_file(&dir).map_err(|e| e.to_string())?;
        let node = self.node_name();
        let mut command = Command::new(RABBITMQ_SERVER);
        command
            .current_dir(&dir)
            .env("HOME", &dir)
            .env("RABBITMQ_NODENAME", node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let pid = spawn_server(command).map_err(|e| format!("rabbitmq-server: {e}"))?;
        register(pid, Some(self.epmd_port), &dir);
        self.pid = Some(pid);
        wait_for_port(pid, self.port, Duration::from_secs(90), &dir.join("server.log"))
    }

    pub fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            unregister(pid);
            stop_process(pid, Some(self.epmd_port));
        }
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn register(pid: i32, epmd_port: Option<u16>, dir: &Path) {
    let started = Started { pid, epmd_port, dir: dir.to_path_buf() };
    STARTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(started);
}

fn unregister(pid: i32) {
    STARTED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|s| s.pid != pid);
}
