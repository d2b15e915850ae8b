//! The one way Armada starts a child process: working directory, a clean but complete
//! environment, piped stdio, its own process group, and no orphans.
//!
//! Nothing else in the crate calls `tokio::process::Command::new`. Every child gets its own
//! process group so that stopping it also stops whatever it started (a browser, a shell
//! pipeline); dropping the handle kills the whole group.
//!
//! A process killed outright (SIGKILL, the OOM killer) runs no `Drop`, so on Linux every child
//! also asks the kernel for a **parent-death signal**: SIGTERM when the process that started it
//! dies (`prctl(PR_SET_PDEATHSIG)`). A SIGKILLed `armada serve` thus still stops its `armada
//! agent` children, and a SIGKILLed agent its worker. Caveats: the kernel sends the signal when
//! the *thread* that forked the child ends, not the process, so children are forked from one
//! spawner thread that lives as long as the process (a tokio worker or blocking thread may end
//! earlier); it is SIGTERM, so a child that ignores SIGTERM survives; it reaches the direct
//! child only (each child's own children are its responsibility: Armada's children start theirs
//! here too); and it is Linux-only (elsewhere only `Drop` and the process groups apply).

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// Variables a child inherits from this process; everything else must be given explicitly.
///
/// The agent's own environment can hold secrets (API tokens, database passwords) that user
/// code has no business seeing, so it is not passed wholesale; but a child without `PATH`,
/// `HOME` or a locale misbehaves in ways that are hard to diagnose, so those are kept.
const INHERITED_VARS: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "TERM",
    "DISPLAY",
    "XDG_RUNTIME_DIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// What to start: program, arguments, working directory and extra environment.
#[derive(Clone)]
pub struct ChildSpec {
    program: OsString,
    args: Vec<OsString>,
    workdir: PathBuf,
    env: Vec<(OsString, OsString)>,
    stdin_piped: bool,
}

/// The environment's names only: its values hold secrets (tokens, passwords).
impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("workdir", &self.workdir)
            .field("env", &self.env.iter().map(|(name, _)| name).collect::<Vec<_>>())
            .field("stdin_piped", &self.stdin_piped)
            .finish()
    }
}

impl ChildSpec {
    pub fn new(program: impl Into<OsString>, workdir: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), args: Vec::new(), workdir: workdir.into(), env: Vec::new(), stdin_piped: false }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one variable on top of the inherited ones (a later value for the same name wins).
    pub fn env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Gives the child a pipe on stdin instead of `/dev/null`.
    pub fn stdin_piped(mut self) -> Self {
        self.stdin_piped = true;
        self
    }

    /// Starts the child. It is in a new process group whose id is its pid.
    pub fn spawn(&self) -> io::Result<ChildProcess> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.workdir)
            .env_clear()
            .envs(inherited_env())
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(if self.stdin_piped { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        die_with_parent(&mut command);
        let child = spawn_from_spawner_thread(command)?;
        let pid = child.id().ok_or_else(|| io::Error::other("the child exited before its pid was known"))?;
        Ok(ChildProcess { child, pid, status: None })
    }
}

/// SIGTERM to the child when this process dies (Linux; see the module documentation).
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id();
    // SAFETY: runs in the child between fork and exec, and calls only async-signal-safe
    // functions (prctl, getppid); the errors are built without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then nobody would signal us.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_command: &mut Command) {}

type SpawnRequest = (Command, tokio::runtime::Handle, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from the one spawner thread (inside the caller's runtime, which reaps the
/// child), so the parent-death signal fires only when the whole process dies. Outside a
/// runtime, or if that thread cannot be had, spawns from the calling thread.
fn spawn_from_spawner_thread(mut command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Option<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let Ok(handle) = tokio::runtime::Handle::try_current() else { return command.spawn() };
    let spawner = SPAWNER.get_or_init(|| {
        let (requests, incoming) = mpsc::channel::<SpawnRequest>();
        let thread = std::thread::Builder::new().name("armada-spawner".into()).spawn(move || {
            for (mut command, handle, reply) in incoming {
                let _runtime = handle.enter();
                // A panic here would end the thread, and with it every child it started.
                let spawned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| command.spawn()))
                    .unwrap_or_else(|_| Err(io::Error::other("spawning the child panicked")));
                let _ = reply.send(spawned);
            }
        });
        thread.ok().map(|_| requests)
    });
    let Some(spawner) = spawner else { return command.spawn() };
    let (reply, answer) = mpsc::channel();
    if let Err(mpsc::SendError((mut command, _, _))) = spawner.send((command, handle, reply)) {
        return command.spawn();
    }
    answer.recv().map_err(|_| io::Error::other("the spawner thread is gone"))?
}

fn inherited_env() -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            INHERITED_VARS.contains(&name.as_ref()) || name.starts_with("LC_")
        })
        .collect()
}

/// How a child ended: an exit code, or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(self) -> bool {
        self.code == Some(0)
    }
}

impl From<std::process::ExitStatus> for ExitStatus {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Self { code: status.code(), signal: status.signal() }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exited with code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal} ({})", signal_name(signal)),
            (None, None) => f.write_str("ended for an unknown reason"),
        }
    }
}

/// `SIGKILL` for 9, and so on for the signals a worker is likely to die of.
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        _ => "unknown signal",
    }
}

/// A running (or finished) child and its process group.
#[derive(Debug)]
pub struct ChildProcess {
    child: Child,
    pid: u32,
    status: Option<ExitStatus>,
}

impl ChildProcess {
    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }

    /// Sends `signal` to every process of the child's group. A group that is already gone is fine.
    fn signal_group(&self, signal: i32) -> io::Result<()> {
        let Ok(pgid) = libc::pid_t::try_from(self.pid) else { return Ok(()) };
        // SAFETY: killpg has no memory-safety preconditions; the group id is our child's pid.
        if unsafe { libc::killpg(pgid, signal) } == 0 {
            return Ok(());
        }
        match io::Error::last_os_error() {
            err if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            err => Err(err),
        }
    }

    /// SIGKILL to the whole process group; does not wait.
    pub fn kill(&self) -> io::Result<()> {
        self.signal_group(libc::SIGKILL)
    }

    /// SIGTERM to the whole process group, asking it to stop; does not wait.
    pub fn ask_to_stop(&self) -> io::Result<()> {
        self.signal_group(libc::SIGTERM)
    }

    /// SIGTERM to the group, then SIGKILL if the child has not exited after `grace`.
    pub async fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        self.signal_group(libc::SIGTERM)?;
        match tokio::time::timeout(grace, self.wait()).await {
            Ok(status) => status,
            Err(_) => {
                self.kill()?;
                self.wait().await
            }
        }
    }

    /// Waits for the child to exit (cancel-safe) and remembers how it ended.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = ExitStatus::from(self.child.wait().await?);
        self.status = Some(status);
        Ok(status)
    }

    /// How the child ended, if it has and that has been observed.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?.map(ExitStatus::from);
        }
        Ok(self.status)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // Even when the leader has exited, processes it started may still be in its group.
        // tokio's kill_on_drop then kills the leader (if still alive) and reaps it.
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_reads_like_a_sentence() {
        assert_eq!(ExitStatus { code: Some(3), signal: None }.to_string(), "exited with code 3");
        assert_eq!(ExitStatus { code: None, signal: Some(9) }.to_string(), "killed by signal 9 (SIGKILL)");
    }

    #[tokio::test]
    async fn child_gets_workdir_given_env_and_only_safe_inherited_vars() {
        // cargo sets CARGO_MANIFEST_DIR for the test process: it stands for a secret here.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let dir = tempfile::tempdir().unwrap();
        let mut child = ChildSpec::new("sh", dir.path())
            .args([
                "-c",
                "pwd; echo \"$GIVEN\"; echo \"path=${PATH:+set}\"; echo \"secret=${CARGO_MANIFEST_DIR:-absent}\"",
            ])
            .env("GIVEN", "value")
            .spawn()
            .unwrap();
        let mut stdout = child.take_stdout().unwrap();
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text).await.unwrap();
        assert!(child.wait().await.unwrap().success());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], dir.path().canonicalize().unwrap().to_str().unwrap());
        assert_eq!(&lines[1..], ["value", "path=set", "secret=absent"]);
    }

    /// The parent-death signal fires when the thread that forked the child ends: children must
    /// not depend on the (short-lived) thread that asked for them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_outlives_the_thread_that_started_it() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Handle::current();
        let workdir = dir.path().to_path_buf();
        let mut child = std::thread::spawn(move || {
            let _runtime = runtime.enter();
            ChildSpec::new("sleep", workdir).arg("30").spawn()
        })
        .join()
        .expect("the spawning thread")
        .expect("sleep starts");
        // The spawning thread has ended; a parent-death signal tied to it would have come by now.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(child.try_wait().unwrap(), None, "the child died with the thread that started it");
        child.kill().unwrap();
        assert_eq!(child.wait().await.unwrap().signal, Some(libc::SIGKILL));
    }

    #[tokio::test]
    async fn terminate_kills_the_whole_group_after_grace() {
        let dir = tempfile::tempdir().unwrap();
        // The shell ignores SIGTERM, so only the SIGKILL after the grace period ends it.
        let mut child =
            ChildSpec::new("sh", dir.path()).args(["-c", "trap '' TERM; echo ready; sleep 60"]).spawn().unwrap();
        let mut ready = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(child.take_stdout().as_mut().unwrap(), &mut ready).await.unwrap();
        let status = child.terminate(Duration::from_millis(300)).await.unwrap();
        assert_eq!(status, ExitStatus { code: None, signal: Some(libc::SIGKILL) });
    }
}
