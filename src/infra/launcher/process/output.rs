//! What an agent process prints: read as it comes (a full pipe would stall the agent), each
//! line appended to the agent's log file and forwarded to the server's log (with the run id
//! and pod index of the agent's span), the last lines of stderr kept for its status detail.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tracing::Span;

/// Longer lines are cut (the rest of the line is dropped, the cut marked).
pub const MAX_LINE: usize = 16 * 1024;
/// Lines of stderr kept for the detail of an agent that failed.
const TAIL_LINES: usize = 5;
/// Characters of one kept line.
const TAIL_LINE_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// Where one agent's lines go. Shared by its two streams.
pub struct AgentOutput {
    span: Span,
    file: Option<Mutex<File>>,
    path: PathBuf,
    tail: Mutex<VecDeque<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AgentOutput {
    /// Lines go to `path` (appended; created with its folder) and to the server's log in `span`.
    /// A log file that cannot be opened is reported once; the server's log still gets every line.
    pub fn open(path: &Path, span: Span) -> Arc<Self> {
        let file = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| File::options().create(true).append(true).open(path));
        let file = match file {
            Ok(file) => Some(Mutex::new(file)),
            Err(e) => {
                span.in_scope(|| {
                    tracing::warn!(path = %path.display(), error = %e, "cannot open the agent's log file; its output goes to this log only");
                });
                None
            }
        };
        Arc::new(Self { span, file, path: path.to_path_buf(), tail: Mutex::new(VecDeque::new()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last lines of stderr that say something, oldest first, joined by newlines.
    pub fn stderr_tail(&self) -> Option<String> {
        let tail = lock(&self.tail);
        (!tail.is_empty()).then(|| tail.iter().map(String::as_str).collect::<Vec<_>>().join("\n"))
    }

    fn line(&self, stream: Stream, bytes: &[u8], cut: bool) {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        let text = String::from_utf8_lossy(bytes);
        let text = if cut { format!("{text} [line cut at {MAX_LINE} bytes]") } else { text.into_owned() };
        if let Some(file) = &self.file
            && let Err(e) = writeln!(lock(file), "{text}")
        {
            self.span
                .in_scope(|| tracing::debug!(path = %self.path.display(), error = %e, "agent log file write failed"));
        }
        self.span.in_scope(|| tracing::info!(stream = stream.name(), "{text}"));
        if stream == Stream::Stderr && !text.trim().is_empty() {
            let mut tail = lock(&self.tail);
            if tail.len() == TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(text.trim_end().chars().take(TAIL_LINE_CHARS).collect());
        }
    }

    /// Reads `reader` to its end, line by line, never holding more than [`MAX_LINE`] of a line.
    pub async fn pump(self: Arc<Self>, reader: impl AsyncRead + Unpin, stream: Stream) {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let mut line = Vec::new();
        let mut cut = false;
        loop {
            let (consumed, complete) = match reader.fill_buf().await {
                Ok([]) => break,
                Ok(buf) => {
                    let (chunk, consumed, complete) = match buf.iter().position(|&b| b == b'\n') {
                        Some(end) => (&buf[..end], end + 1, true),
                        None => (buf, buf.len(), false),
                    };
                    let room = MAX_LINE.saturating_sub(line.len());
                    line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    cut |= chunk.len() > room;
                    (consumed, complete)
                }
                Err(e) => {
                    self.span.in_scope(
                        || tracing::warn!(stream = stream.name(), error = %e, "cannot read the agent's output"),
                    );
                    break;
                }
            };
            reader.consume(consumed);
            if complete {
                self.line(stream, &line, cut);
                line.clear();
                cut = false;
            }
        }
        if !line.is_empty() {
            self.line(stream, &line, cut);
        }
    }
}
