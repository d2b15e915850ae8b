//! The worker's stdout and stderr, read line by line, tagged with the job that was running,
//! and handed to a [`LogSink`].

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::model::Timestamp;

/// Longest log line kept whole; longer lines are cut into pieces of this size.
pub const MAX_LOG_LINE_BYTES: usize = 64 * 1024;

/// How many of the last stderr lines a crash report carries.
pub const STDERR_TAIL_LINES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One line the worker printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: LogStream,
    /// The line without its newline, invalid UTF-8 replaced.
    pub text: String,
    /// When the agent read it.
    pub at: Timestamp,
    /// The job that was running when the line was printed; `None` during init, between jobs
    /// and at shutdown.
    pub job_uuid: Option<Uuid>,
}

/// Where the worker's lines go: per-job logs in the agent, the terminal in `armada workbench`.
///
/// Called from the tasks that read the pipes, so it must not block; a closure or an
/// unbounded channel sender will do.
pub trait LogSink: Send + Sync + 'static {
    fn line(&self, line: LogLine);
}

impl<F: Fn(LogLine) + Send + Sync + 'static> LogSink for F {
    fn line(&self, line: LogLine) {
        self(line)
    }
}

impl LogSink for mpsc::UnboundedSender<LogLine> {
    fn line(&self, line: LogLine) {
        // The receiver has gone: nobody wants the logs any more, which is fine.
        let _ = self.send(line);
    }
}

/// The two pipe readers of one worker, plus what the supervisor needs from them.
pub(super) struct LogPump {
    current_job: Arc<Mutex<Option<Uuid>>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<PipeReader>,
}

struct PipeReader {
    settle: mpsc::Sender<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl LogPump {
    pub(super) fn new() -> Self {
        Self { current_job: Default::default(), stderr_tail: Default::default(), readers: Vec::new() }
    }

    pub(super) fn attach<P>(&mut self, stream: LogStream, pipe: P, sink: Arc<dyn LogSink>)
    where
        P: AsyncRead + AsRawFd + Unpin + Send + 'static,
    {
        let (settle, settle_requests) = mpsc::channel(4);
        let shared = Shared { stream, sink, current_job: self.current_job.clone(), tail: self.stderr_tail.clone() };
        let task = tokio::spawn(pump(pipe, shared, settle_requests));
        self.readers.push(PipeReader { settle, task });
    }

    /// Lines printed from now on belong to `job` (`None`: to no job).
    pub(super) fn set_job(&self, job: Option<Uuid>) {
        *lock(&self.current_job) = job;
        if job.is_some() {
            lock(&self.stderr_tail).clear();
        }
    }

    /// Waits until every complete line already written to the pipes has reached the sink, so
    /// that a job's last prints are attributed to it. Bounded: a stuck reader costs `limit`.
    pub(super) async fn settle(&self, limit: Duration) {
        let all = futures::future::join_all(self.readers.iter().map(|reader| async {
            let (done, wait) = oneshot::channel();
            if reader.settle.send(done).await.is_ok() {
                let _ = wait.await;
            }
        }));
        let _ = tokio::time::timeout(limit, all).await;
    }

    /// Waits (up to `limit`) for both pipes to reach end of file, i.e. for the worker and
    /// everything it started to have closed them; then returns the stderr tail.
    pub(super) async fn finish(&mut self, limit: Duration) -> Vec<String> {
        let all = futures::future::join_all(self.readers.iter_mut().map(|reader| &mut reader.task));
        let _ = tokio::time::timeout(limit, all).await;
        self.stderr_tail()
    }

    pub(super) fn stderr_tail(&self) -> Vec<String> {
        lock(&self.stderr_tail).iter().cloned().collect()
    }
}

impl Drop for LogPump {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Shared {
    stream: LogStream,
    sink: Arc<dyn LogSink>,
    current_job: Arc<Mutex<Option<Uuid>>>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Shared {
    /// Emits one line, cut into pieces of at most `MAX_LOG_LINE_BYTES`.
    fn emit(&self, bytes: &[u8]) {
        for piece in bytes.chunks(MAX_LOG_LINE_BYTES) {
            self.emit_piece(piece);
        }
    }

    fn emit_piece(&self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes).trim_end_matches('\r').to_string();
        if self.stream == LogStream::Stderr {
            let mut tail = lock(&self.tail);
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.clone());
        }
        let job_uuid = *lock(&self.current_job);
        self.sink.line(LogLine { stream: self.stream, text, at: Timestamp::now(), job_uuid });
    }
}

async fn pump<P>(mut pipe: P, shared: Shared, mut settle_requests: mpsc::Receiver<oneshot::Sender<()>>)
where
    P: AsyncRead + AsRawFd + Unpin,
{
    let fd = pipe.as_raw_fd();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        tokio::select! {
            biased;
            read = pipe.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    emit_complete_lines(&mut buf, &shared);
                }
            },
            Some(request) = settle_requests.recv() => waiting.push(request),
        }
        // Every complete line read so far has been emitted; if the pipe holds nothing more,
        // everything written before the settle request has reached the sink.
        if !waiting.is_empty() && bytes_pending(fd) == 0 {
            for request in waiting.drain(..) {
                let _ = request.send(());
            }
        }
    }
    if !buf.is_empty() {
        shared.emit(&buf);
    }
    // Dropping `waiting` and `settle_requests` tells every waiter that nothing more will come.
}

fn emit_complete_lines(buf: &mut Vec<u8>, shared: &Shared) {
    let mut start = 0;
    while let Some(offset) = buf[start..].iter().position(|&b| b == b'\n') {
        shared.emit(&buf[start..start + offset]);
        start += offset + 1;
    }
    buf.drain(..start);
    if buf.len() >= MAX_LOG_LINE_BYTES {
        // A line this long without its end yet: emit what there is rather than hold it all.
        let whole = buf.len() - buf.len() % MAX_LOG_LINE_BYTES;
        shared.emit(&buf[..whole]);
        buf.drain(..whole);
    }
}

/// Bytes written to the pipe and not read yet (`FIONREAD`); 0 if that cannot be told.
fn bytes_pending(fd: RawFd) -> usize {
    let mut pending: libc::c_int = 0;
    // SAFETY: `fd` is the pipe this task owns and keeps open; FIONREAD writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut pending) };
    if rc == 0 { usize::try_from(pending).unwrap_or(0) } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collecting_sink() -> (Arc<dyn LogSink>, mpsc::UnboundedReceiver<LogLine>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Arc::new(tx), rx)
    }

    #[tokio::test]
    async fn lines_are_split_cut_and_attributed_to_the_current_job() {
        let (mut writer, reader) = tokio::net::unix::pipe::pipe().unwrap();
        let (sink, mut lines) = collecting_sink();
        let mut pump = LogPump::new();
        let job = Uuid::new_v4();
        pump.set_job(Some(job));
        pump.attach(LogStream::Stderr, reader, sink);
        let long = "x".repeat(MAX_LOG_LINE_BYTES + 10);
        let written = [format!("one\r\ntwo\n{long}\n").as_bytes(), b"bad \xff\n"].concat();
        tokio::io::AsyncWriteExt::write_all(&mut writer, &written).await.unwrap();
        pump.settle(Duration::from_secs(10)).await;
        pump.set_job(None);
        tokio::io::AsyncWriteExt::write_all(&mut writer, b"after\npartial").await.unwrap();
        drop(writer);
        pump.finish(Duration::from_secs(10)).await;
        let mut got = Vec::new();
        while let Ok(line) = lines.try_recv() {
            got.push((line.text.len().min(20), line.text.chars().take(5).collect::<String>(), line.job_uuid));
        }
        assert_eq!(
            got,
            [
                (3, "one".into(), Some(job)),
                (3, "two".into(), Some(job)),
                (20, "xxxxx".into(), Some(job)),
                (10, "xxxxx".into(), Some(job)),
                (7, "bad \u{fffd}".into(), Some(job)),
                (5, "after".into(), None),
                (7, "parti".into(), None),
            ]
        );
        assert_eq!(pump.stderr_tail().first().map(String::as_str), Some("one"));
    }
}
