//! [`Worker`]: one running worker process, its socket connection and its log readers.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;
use uuid::Uuid;

use super::logs::{LogPump, LogSink, LogStream};
use super::protocol::{
    self, FrameError, FrameReader, FromWorker, JobRequest, MAX_LINE_BYTES, PROTOCOL_VERSION, Reply, ToWorker,
    WorkerCall,
};
use super::socket::WorkerSocket;
use super::{JobOutcome, SOCKET_ENV, WorkerCalls, WorkerError, WorkerSpec, agent_name};
use crate::process::{ChildProcess, ChildSpec, ExitStatus};

/// After the worker closes its connection, how long it has to exit before it counts as hung.
const EXIT_AFTER_CLOSE: Duration = Duration::from_secs(5);
/// After the worker exits, how long to wait for lines still in the socket (its last calls).
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(500);
/// How long to wait for the pipes to deliver a finished job's last prints.
const LOG_SETTLE: Duration = Duration::from_secs(2);
/// How long to wait, after a kill, for the process to be reaped.
const REAP: Duration = Duration::from_secs(10);

/// What happened next on the connection.
enum Event {
    Line(Vec<u8>),
    /// The worker exited; any lines it had sent before were delivered first.
    Exited(ExitStatus),
    /// The worker closed its connection and, `EXIT_AFTER_CLOSE` later, is still running.
    Closed,
    Deadline,
    Broken(String),
}

/// A worker process that said hello and is ready for jobs. Dropping it kills its whole
/// process group.
pub struct Worker {
    // Field order is drop order: kill the process group first, then stop the readers.
    process: ChildProcess,
    reader: FrameReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    logs: LogPump,
    _socket: WorkerSocket,
    command: String,
    name: String,
    closed: bool,
    /// Set once the worker can take no more jobs, with the reason.
    unusable: Option<String>,
}

impl Worker {
    /// Spawns the worker, waits for it to connect and say hello, sends `init` and waits for
    /// `ready`. Calls the worker makes during init (an `output`) go to `calls`.
    pub async fn start(
        spec: WorkerSpec,
        logs: Arc<dyn LogSink>,
        calls: &dyn WorkerCalls,
    ) -> Result<Worker, WorkerError> {
        let command = spec.display_command();
        let Some((program, args)) = spec.command.split_first() else {
            return Err(WorkerError::Spawn {
                command,
                workdir: spec.workdir.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "the worker command is empty"),
            });
        };
        let socket = WorkerSocket::bind(&spec.workdir)
            .map_err(|source| WorkerError::Socket { workdir: spec.workdir.clone(), source })?;
        let mut child = ChildSpec::new(program, &spec.workdir)
            .args(args)
            .env("RUN_ID", spec.context.run_id.to_string())
            .env("POD_INDEX", spec.context.pod_index.to_string());
        for (name, value) in &spec.env {
            child = child.env(name, value);
        }
        let mut process = child.env(SOCKET_ENV, socket.path()).spawn().map_err(|source| WorkerError::Spawn {
            command: command.clone(),
            workdir: spec.workdir.clone(),
            source,
        })?;
        let mut pump = LogPump::new();
        if let Some(stdout) = process.take_stdout() {
            pump.attach(LogStream::Stdout, stdout, logs.clone());
        }
        if let Some(stderr) = process.take_stderr() {
            pump.attach(LogStream::Stderr, stderr, logs);
        }
        tracing::info!(command = %command, pid = process.pid(), workdir = %spec.workdir.display(), "worker started");

        let pid = process.pid();
        let stream = tokio::select! {
            stream = socket.accept_from(pid) => stream.map_err(|source| WorkerError::Io { phase: "while accepting the worker's connection", source })?,
            status = process.wait() => {
                let status = status.map_err(|source| WorkerError::Io { phase: "while waiting for the worker", source })?;
                let _ = process.kill(); // what it started may hold the pipes open
                let stderr_tail = pump.finish(LOG_SETTLE).await;
                return Err(WorkerError::Exited { command, phase: "before it connected", status, stderr_tail });
            }
            _ = tokio::time::sleep(spec.connect_timeout) => {
                let _ = process.kill();
                return Err(WorkerError::ConnectTimeout { command, after: spec.connect_timeout, stderr_tail: pump.stderr_tail() });
            }
        };
        let (read_half, writer) = stream.into_split();
        let mut worker = Worker {
            process,
            reader: FrameReader::new(read_half, MAX_LINE_BYTES),
            writer,
            logs: pump,
            _socket: socket,
            command,
            name: String::new(),
            closed: false,
            unusable: None,
        };
        worker.handshake(Instant::now() + spec.connect_timeout, spec.connect_timeout).await?;
        let init = ToWorker::Init { agent_message: spec.agent_message, context: spec.context };
        worker.initialise(init, spec.init_timeout, calls).await?;
        tracing::info!(command = %worker.command, worker = %worker.name, pid, "worker ready");
        Ok(worker)
    }

    async fn handshake(&mut self, deadline: Instant, timeout: Duration) -> Result<(), WorkerError> {
        let hello = ToWorker::Hello { protocol: PROTOCOL_VERSION, agent: agent_name() };
        // A failed write shows up as the worker's exit or closed connection just below.
        let _ = self.send(&hello).await;
        let line = match self.next_event(deadline).await {
            Event::Line(line) => line,
            Event::Deadline => {
                let stderr_tail = self.logs.stderr_tail();
                return Err(WorkerError::ConnectTimeout { command: self.command.clone(), after: timeout, stderr_tail });
            }
            other => return Err(self.start_failure(other, "during the handshake").await),
        };
        let (protocol, worker) = protocol::parse_hello(&line)
            .map_err(|message| WorkerError::Protocol { phase: "in the handshake", message })?;
        if protocol != u64::from(PROTOCOL_VERSION) {
            return Err(WorkerError::VersionMismatch {
                agent: agent_name(),
                agent_protocol: PROTOCOL_VERSION,
                worker,
                worker_protocol: protocol,
            });
        }
        self.name = worker;
        Ok(())
    }

    async fn initialise(
        &mut self,
        init: ToWorker,
        timeout: Duration,
        calls: &dyn WorkerCalls,
    ) -> Result<(), WorkerError> {
        let deadline = Instant::now() + timeout;
        let _ = self.send(&init).await;
        loop {
            let line = match self.next_event(deadline).await {
                Event::Line(line) => line,
                Event::Deadline => {
                    return Err(WorkerError::InitTimeout { command: self.command.clone(), after: timeout });
                }
                other => return Err(self.start_failure(other, "during init").await),
            };
            let phase = "during init";
            match parse_message(&line).map_err(|message| WorkerError::Protocol { phase, message })? {
                FromWorker::Ready => return Ok(()),
                FromWorker::InitFailed { error } => return Err(WorkerError::InitFailed(error)),
                FromWorker::Call { id, method, params } => {
                    if self.serve_call(id, &method, params, None, calls, deadline).await.is_err() {
                        return Err(WorkerError::InitTimeout { command: self.command.clone(), after: timeout });
                    }
                }
                other => {
                    let message = format!("expected ready or init_failed, got {}", message_type(&other));
                    return Err(WorkerError::Protocol { phase, message });
                }
            }
        }
    }

    /// Turns what ended the start early into an error (the process is killed when `self` drops).
    async fn start_failure(&mut self, event: Event, phase: &'static str) -> WorkerError {
        let message = match event {
            Event::Exited(status) => {
                let _ = self.process.kill(); // what it started may hold the pipes open
                let stderr_tail = self.logs.finish(LOG_SETTLE).await;
                return WorkerError::Exited { command: self.command.clone(), phase, status, stderr_tail };
            }
            Event::Closed => "the worker closed its connection".into(),
            Event::Broken(message) => message,
            Event::Deadline => "the deadline passed".into(),
            Event::Line(line) => format!("unexpected line {}", protocol::preview(&line)),
        };
        WorkerError::Protocol { phase, message }
    }

    /// Runs one job to its end. Never fails: a crash, a hang or a broken protocol is the
    /// job's outcome, and after any outcome but `Done` this worker is gone.
    pub async fn run_job(&mut self, job: JobRequest, timeout: Duration, calls: &dyn WorkerCalls) -> JobOutcome {
        if let Some(reason) = &self.unusable {
            return JobOutcome::ProtocolError { message: format!("the worker can take no more jobs: {reason}") };
        }
        let job_uuid = job.job_uuid;
        self.logs.set_job(Some(job_uuid));
        let outcome = self.converse(job, timeout, calls).await;
        match &outcome {
            JobOutcome::Done { .. } => self.logs.settle(LOG_SETTLE).await,
            JobOutcome::Crashed { .. } => {}
            JobOutcome::TimedOut { .. } | JobOutcome::ProtocolError { .. } => self.kill_and_reap().await,
        }
        let outcome = match outcome {
            JobOutcome::Crashed { exit_code, signal, .. } => {
                // The process is gone; its group may not be. Then collect its last words.
                let _ = self.process.kill();
                JobOutcome::Crashed { exit_code, signal, stderr_tail: self.logs.finish(LOG_SETTLE).await }
            }
            other => other,
        };
        self.logs.set_job(None);
        if !outcome.worker_survives() {
            self.unusable = outcome.failure_reason(job_uuid);
        }
        tracing::debug!(job_uuid = %job_uuid, status = outcome.status().as_str(), reason = outcome.failure_reason(job_uuid), "job ended");
        outcome
    }

    async fn converse(&mut self, job: JobRequest, timeout: Duration, calls: &dyn WorkerCalls) -> JobOutcome {
        let job_uuid = job.job_uuid;
        let deadline = Instant::now() + timeout;
        let _ = self.send(&ToWorker::Job(job)).await;
        loop {
            let line = match self.next_event(deadline).await {
                Event::Line(line) => line,
                Event::Exited(status) => {
                    return JobOutcome::Crashed {
                        exit_code: status.code,
                        signal: status.signal,
                        stderr_tail: Vec::new(),
                    };
                }
                Event::Deadline => return JobOutcome::TimedOut { after: timeout },
                Event::Closed => {
                    let message = "the worker closed its connection but did not exit".to_string();
                    return JobOutcome::ProtocolError { message };
                }
                Event::Broken(message) => return JobOutcome::ProtocolError { message },
            };
            match parse_message(&line) {
                Ok(FromWorker::Call { id, method, params }) => {
                    if self.serve_call(id, &method, params, Some(job_uuid), calls, deadline).await.is_err() {
                        return JobOutcome::TimedOut { after: timeout };
                    }
                }
                Ok(FromWorker::Done { job_uuid: done, status, error }) if done == job_uuid => {
                    return JobOutcome::Done { status, error };
                }
                Ok(FromWorker::Done { job_uuid: done, .. }) => {
                    let message = format!("the worker reported job {done} done while it was running job {job_uuid}");
                    return JobOutcome::ProtocolError { message };
                }
                Ok(other) => {
                    let message = format!("expected calls or done, got {}", message_type(&other));
                    return JobOutcome::ProtocolError { message };
                }
                Err(message) => return JobOutcome::ProtocolError { message },
            }
        }
    }

    /// Asks the worker to tear down and exit, serving its last calls; kills it after `grace`.
    pub async fn shutdown(mut self, grace: Duration, calls: &dyn WorkerCalls) -> Result<ExitStatus, WorkerError> {
        let deadline = Instant::now() + grace;
        if self.unusable.is_none() {
            let _ = self.send(&ToWorker::Shutdown).await;
        }
        loop {
            match self.next_event(deadline).await {
                Event::Line(line) => {
                    if let Ok(FromWorker::Call { id, method, params }) = parse_message(&line) {
                        let _ = self.serve_call(id, &method, params, None, calls, deadline).await;
                    }
                }
                Event::Exited(status) => {
                    let _ = self.process.kill();
                    self.logs.finish(LOG_SETTLE).await;
                    tracing::info!(worker = %self.name, %status, "worker stopped");
                    return Ok(status);
                }
                Event::Closed => continue,
                Event::Deadline => {
                    self.kill_and_reap().await;
                    return Err(WorkerError::ShutdownTimedOut { grace });
                }
                Event::Broken(message) => {
                    self.kill_and_reap().await;
                    return Err(WorkerError::Protocol { phase: "at shutdown", message });
                }
            }
        }
    }

    /// The worker's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The name the worker gave in its hello, e.g. `armada_worker/0.1.0 (python 3.11.7)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Answers one call: checked here, stored by `calls`. `Err` when the deadline passed first.
    async fn serve_call(
        &mut self,
        id: u64,
        method: &str,
        params: serde_json::Value,
        current_job: Option<Uuid>,
        calls: &dyn WorkerCalls,
        deadline: Instant,
    ) -> Result<(), tokio::time::error::Elapsed> {
        let outcome = match WorkerCall::parse(method, &params, current_job) {
            Ok(call) => tokio::time::timeout_at(deadline, calls.call(call.job_uuid(), method, params)).await?,
            Err(error) => Err(error),
        };
        if let Err(error) = &outcome {
            tracing::debug!(method, error = %error, "worker call refused");
        }
        // A failed write means the worker is gone; the next event says how.
        let _ = self.send(&ToWorker::Reply(Reply::new(id, outcome))).await;
        Ok(())
    }

    async fn send(&mut self, message: &ToWorker) -> std::io::Result<()> {
        self.writer.write_all(&protocol::encode(message)).await
    }

    /// The next line from the worker, or what prevents one.
    async fn next_event(&mut self, deadline: Instant) -> Event {
        loop {
            if self.closed {
                let limit = deadline.min(Instant::now() + EXIT_AFTER_CLOSE);
                return match tokio::time::timeout_at(limit, self.process.wait()).await {
                    Ok(Ok(status)) => Event::Exited(status),
                    Ok(Err(err)) => Event::Broken(format!("cannot wait for the worker: {err}")),
                    Err(_) if Instant::now() >= deadline => Event::Deadline,
                    Err(_) => Event::Closed,
                };
            }
            if let Ok(Some(status)) = self.process.try_wait() {
                // It has exited: deliver what it sent before, then report the exit.
                return match tokio::time::timeout(DRAIN_AFTER_EXIT, self.reader.next_line()).await {
                    Ok(Ok(Some(line))) => Event::Line(line),
                    _ => {
                        self.closed = true;
                        Event::Exited(status)
                    }
                };
            }
            tokio::select! {
                biased;
                line = self.reader.next_line() => match line {
                    Ok(Some(line)) => return Event::Line(line),
                    Ok(None) | Err(FrameError::Io(_)) => self.closed = true,
                    Err(err @ FrameError::TooLong { .. }) => return Event::Broken(format!("the worker sent {err}")),
                },
                status = self.process.wait() => if let Err(err) = status {
                    return Event::Broken(format!("cannot wait for the worker: {err}"));
                },
                _ = tokio::time::sleep_until(deadline) => return Event::Deadline,
            }
        }
    }

    async fn kill_and_reap(&mut self) {
        let _ = self.process.kill();
        let _ = tokio::time::timeout(REAP, self.process.wait()).await;
        self.closed = true;
    }
}

fn parse_message(line: &[u8]) -> Result<FromWorker, String> {
    serde_json::from_slice(line).map_err(|err| {
        format!("the worker sent a line that is not a protocol message ({err}): {}", protocol::preview(line))
    })
}

fn message_type(message: &FromWorker) -> &'static str {
    match message {
        FromWorker::Hello { .. } => "hello",
        FromWorker::Ready => "ready",
        FromWorker::InitFailed { .. } => "init_failed",
        FromWorker::Call { .. } => "call",
        FromWorker::Done { .. } => "done",
    }
}
