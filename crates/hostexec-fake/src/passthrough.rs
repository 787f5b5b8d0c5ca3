//! Running a [`HostCommand`] for real in the current namespaces, with the [`Executor`]
//! contract's guarantees (what Go's `NewFakeNsenter` does, with a timeout, a process group and
//! bounded capture, none of which it had; its `CommandContext` even returned a nil command).
//!
//! [`Executor`]: hostexec_api::Executor

use std::ffi::OsStr;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hostexec_api::{
    CommandError, ExitStatus, HostCommand, Output, OutputMode, Stdin, HOST_BIN_DIRS,
};
use rustix::process::{kill_process_group, Pid, Signal};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::task::AbortHandle;

/// Where `name` is among [`HOST_BIN_DIRS`] of the current namespace: the same lookup as the
/// real backend's ([`RootFs::look_path`](hostexec_rootfs::RootFs::look_path)), on `/`.
pub(crate) fn look_path(name: &OsStr) -> Result<PathBuf, CommandError> {
    let root = hostexec_rootfs::RootFs::open(Path::new("/")).map_err(|e| CommandError::Io {
        program: name.to_os_string(),
        source: e,
    })?;
    root.look_path(name, HOST_BIN_DIRS)
}

/// What a reader task has captured so far; shared so that what was read survives when the
/// task is abandoned after the wait delay.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
    truncated: bool,
}

type SharedCapture = Arc<Mutex<Capture>>;

fn take(c: &SharedCapture) -> Capture {
    std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner()))
}

async fn read_capped<R: AsyncRead + Unpin>(mut r: R, limit: usize, cap: SharedCapture) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut c = cap.lock().unwrap_or_else(|e| e.into_inner());
        let room = limit.saturating_sub(c.bytes.len());
        if n > room {
            c.bytes.extend_from_slice(&chunk[..room]);
            c.truncated = true;
        } else {
            c.bytes.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Owns the running command. Dropped before [`Running::finish`] (the caller dropped the
/// `run` future), it stops the process group the same way a timeout does, in the background.
struct Running {
    child: Option<Child>,
    pgid: Option<Pid>,
    grace: Duration,
    tasks: Vec<AbortHandle>,
}

impl Running {
    fn signal(&self, sig: Signal) {
        if let Some(pg) = self.pgid {
            // ESRCH: the whole group is already gone.
            let _ = kill_process_group(pg, sig);
        }
    }

    /// SIGTERM to the group, SIGKILL after the grace period (to the group again: a grandchild
    /// may ignore SIGTERM after the leader died), then reap the leader.
    async fn stop(&mut self) {
        self.signal(Signal::TERM);
        if let Some(child) = self.child.as_mut() {
            let _ = tokio::time::timeout(self.grace, child.wait()).await;
        }
        self.signal(Signal::KILL);
        if let Some(child) = self.child.as_mut() {
            let _ = child.wait().await;
        }
        self.child = None;
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(child) = self.child.take() else {
            for t in &self.tasks {
                t.abort();
            }
            return;
        };
        let mut rest = Running {
            child: Some(child),
            pgid: self.pgid,
            grace: self.grace,
            tasks: std::mem::take(&mut self.tasks),
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move { rest.stop().await });
            }
            Err(_) => {
                // No runtime left to wait on: kill at once; tokio reaps the orphan.
                rest.signal(Signal::KILL);
                rest.child = None;
            }
        }
    }
}

fn spawn_error(cmd: &HostCommand, e: io::Error) -> CommandError {
    CommandError::Spawn {
        program: cmd.get_program().to_os_string(),
        source: e,
    }
}

fn stdio(cmd: &HostCommand, mode: OutputMode) -> Result<Stdio, CommandError> {
    Ok(match mode {
        OutputMode::Capture => Stdio::piped(),
        OutputMode::Inherit => Stdio::inherit(),
        OutputMode::Null => Stdio::null(),
        other => return Err(unsupported(cmd, format!("output mode {other:?}"))),
    })
}

/// A stdin or output mode the passthrough does not know (the api's enums are non-exhaustive).
fn unsupported(cmd: &HostCommand, what: String) -> CommandError {
    CommandError::InvalidInput {
        program: cmd.get_program().to_os_string(),
        reason: format!("{what} is not supported by the fake's passthrough"),
    }
}

/// Runs `cmd` (already validated) in the current namespaces.
pub(crate) async fn run(cmd: &HostCommand) -> Result<Output, CommandError> {
    let program = if cmd.program_is_bare_name() {
        look_path(cmd.get_program())?
    } else {
        let p = PathBuf::from(cmd.get_program());
        if std::fs::symlink_metadata(&p).is_err() {
            return Err(CommandError::NotFound {
                program: cmd.get_program().to_os_string(),
                searched: vec![p],
            });
        }
        p
    };
    let mut command = Command::new(&program);
    command.args(cmd.get_args());
    // The same environment as the real backend's: HostCommand::final_env, nothing more.
    command.env_clear().envs(cmd.final_env(std::env::vars_os));
    // The contract's default working directory is the host's `/`, not the caller's.
    command.current_dir(cmd.get_current_dir().unwrap_or(Path::new("/")));
    command.stdin(match cmd.get_stdin() {
        Stdin::Null => Stdio::null(),
        Stdin::Bytes(_) => Stdio::piped(),
        Stdin::Inherit => Stdio::inherit(),
        other => return Err(unsupported(cmd, format!("stdin {other:?}"))),
    });
    command.stdout(stdio(cmd, cmd.get_stdout())?);
    command.stderr(stdio(cmd, cmd.get_stderr())?);
    // Its own process group, so that a timeout or a drop reaches every process it started.
    command.process_group(0);

    let mut child = command.spawn().map_err(|e| spawn_error(cmd, e))?;
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let limit = cmd.get_capture_limit();
    let mut tasks = Vec::new();
    let mut readers = Vec::new();
    let out_cap = SharedCapture::default();
    let err_cap = SharedCapture::default();
    if let Some(pipe) = child.stdout.take() {
        let t = tokio::spawn(read_capped(pipe, limit, Arc::clone(&out_cap)));
        tasks.push(t.abort_handle());
        readers.push(t);
    }
    if let Some(pipe) = child.stderr.take() {
        let t = tokio::spawn(read_capped(pipe, limit, Arc::clone(&err_cap)));
        tasks.push(t.abort_handle());
        readers.push(t);
    }
    if let (Some(mut pipe), Stdin::Bytes(bytes)) = (child.stdin.take(), cmd.get_stdin()) {
        let bytes = bytes.clone();
        // A command that does not read its input (EPIPE) is not an error of ours.
        let t = tokio::spawn(async move {
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        });
        tasks.push(t.abort_handle());
    }
    let mut running = Running {
        child: Some(child),
        pgid,
        grace: cmd.get_kill_grace(),
        tasks,
    };

    let waited = {
        let Some(child) = running.child.as_mut() else {
            return Err(CommandError::Io {
                program: cmd.get_program().to_os_string(),
                source: io::Error::other("child handle lost"),
            });
        };
        match cmd.get_timeout() {
            Some(t) => tokio::time::timeout(t, child.wait()).await.ok(),
            None => Some(child.wait().await),
        }
    };
    let status = match waited {
        None => {
            running.stop().await;
            return Err(CommandError::TimedOut {
                program: cmd.get_program().to_os_string(),
                timeout: cmd.get_timeout().unwrap_or_default(),
            });
        }
        Some(Err(e)) => {
            running.stop().await;
            return Err(CommandError::Io {
                program: cmd.get_program().to_os_string(),
                source: e,
            });
        }
        Some(Ok(status)) => status,
    };
    // Reaped: nothing left for the drop guard to stop. A daemon it started is not ours to kill.
    running.child = None;
    let join = async {
        for r in readers {
            let _ = r.await;
        }
    };
    let _ = tokio::time::timeout(cmd.get_wait_delay(), join).await;
    for t in &running.tasks {
        t.abort();
    }
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => ExitStatus::Code(-1),
    };
    let out = take(&out_cap);
    let err = take(&err_cap);
    let mut output = Output::new(cmd.get_program(), status)
        .with_stdout(out.bytes)
        .with_stderr(err.bytes);
    output.stdout_truncated = out.truncated;
    output.stderr_truncated = err.truncated;
    Ok(output)
}
