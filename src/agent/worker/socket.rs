//! The Unix socket a worker connects to: short enough for `sun_path`, removed when done, and
//! open only to the worker's own process group.

use std::io;
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

/// `sun_path` holds 108 bytes on Linux and 104 on macOS, terminator included; stay below both.
const MAX_SOCKET_PATH_BYTES: usize = 100;

pub(super) struct WorkerSocket {
    path: PathBuf,
    listener: UnixListener,
    /// Set when the socket lives in a temporary directory (the workdir's path was too long).
    _temp_dir: Option<tempfile::TempDir>,
}

impl WorkerSocket {
    /// Binds `<workdir>/.armada/worker-<random>.sock`, or a socket in a fresh temporary
    /// directory when that path would be too long for a Unix socket.
    pub(super) fn bind(workdir: &Path) -> io::Result<Self> {
        let name = format!("worker-{}.sock", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let in_workdir = workdir.join(".armada").join(&name);
        let (path, temp_dir) = if socket_path_fits(&in_workdir) {
            std::fs::create_dir_all(workdir.join(".armada"))?;
            (in_workdir, None)
        } else {
            let dir = tempfile::Builder::new().prefix("armada-").tempdir()?;
            (dir.path().join(name), Some(dir))
        };
        let listener = UnixListener::bind(&path)?;
        Ok(Self { path, listener, _temp_dir: temp_dir })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts the first connection made by a process of the group `pgid` (the worker's);
    /// connections from anyone else are closed and logged.
    pub(super) async fn accept_from(&self, pgid: u32) -> io::Result<UnixStream> {
        loop {
            let (stream, _) = self.listener.accept().await?;
            let peer_pid = stream.peer_cred().ok().and_then(|cred| cred.pid());
            match peer_pid {
                Some(pid) if process_group_of(pid) != Some(pgid) => {
                    tracing::warn!(socket = %self.path.display(), peer_pid = pid, worker_pgid = pgid,
                        "refused a connection to the worker socket from outside the worker's process group");
                }
                _ => return Ok(stream),
            }
        }
    }
}

impl Drop for WorkerSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn socket_path_fits(path: &Path) -> bool {
    path.as_os_str().len() <= MAX_SOCKET_PATH_BYTES
}

fn process_group_of(pid: libc::pid_t) -> Option<u32> {
    // SAFETY: getpgid has no memory-safety preconditions.
    let pgid = unsafe { libc::getpgid(pid) };
    u32::try_from(pgid).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_goes_in_the_workdir_when_short_and_in_a_temp_dir_when_long() {
        let dir = tempfile::tempdir().unwrap();
        let short = WorkerSocket::bind(dir.path()).unwrap();
        assert!(short.path().starts_with(dir.path().join(".armada")));

        let long_dir = dir.path().join("a-directory-name-long-enough-to-overflow-sun-path-".repeat(3));
        std::fs::create_dir_all(&long_dir).unwrap();
        let long = WorkerSocket::bind(&long_dir).unwrap();
        assert!(!long.path().starts_with(&long_dir));
        assert!(long.path().as_os_str().len() <= MAX_SOCKET_PATH_BYTES);
        let (path_short, path_long) = (short.path().to_path_buf(), long.path().to_path_buf());
        assert!(path_short.exists() && path_long.exists());
        drop((short, long));
        assert!(!path_short.exists() && !path_long.exists());
    }
}
