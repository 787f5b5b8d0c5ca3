//! Building a child process from a [`HostCommand`] and supervising it to the end: timeout,
//! process-group kill, capped capture, bounded wait after exit. Shared by both launchers.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use hostexec_api::{CommandError, ExitStatus, HostCommand, Output, OutputMode, Stdin};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// A `tokio::process::Command` for `program` with `hc`'s stdio, environment and process
/// group; `args` come first (the nsenter options), then `hc`'s arguments.
///
/// No `pre_exec` is ever set: std then spawns with `posix_spawn` (vfork-like), whose cost does
/// not grow with the caller's memory, and whose child starts in the namespaces of the thread
/// that spawned it. Checked with strace (rustc 1.95, glibc): with `process_group(0)` and
/// `current_dir` the spawn is still one `clone3(CLONE_VM|CLONE_VFORK)` from the host thread.
/// std would fall back to fork if PATH were changed for a bare program name; the program here
/// is always an absolute path.
pub(crate) fn command(program: &Path, pre_args: &[OsString], hc: &HostCommand) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(pre_args).args(hc.get_args());
    let env = hc.get_env();
    if env.clear {
        cmd.env_clear();
    }
    for (k, v) in &env.vars {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(match hc.get_stdin() {
        Stdin::Null => Stdio::null(),
        Stdin::Bytes(_) => Stdio::piped(),
        Stdin::Inherit => Stdio::inherit(),
    });
    cmd.stdout(stdio(hc.get_stdout()));
    cmd.stderr(stdio(hc.get_stderr()));
    // Its own process group, so that a timeout or a drop reaches everything it started.
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    cmd
}

fn stdio(mode: OutputMode) -> Stdio {
    match mode {
        OutputMode::Capture => Stdio::piped(),
        OutputMode::Inherit => Stdio::inherit(),
        OutputMode::Null => Stdio::null(),
    }
}

/// Kills the child's process group when dropped while armed (the caller's future was dropped).
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH: the group is already empty.
            let _ = killpg(pgid, sig);
        }
    }
    fn disarm(mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        // The direct child is killed and reaped by tokio (kill_on_drop + its orphan reaper);
        // this reaches the rest of the group.
        self.signal(Signal::SIGKILL);
    }
}

/// Captured bytes of one stream, capped.
struct Capture {
    buf: Vec<u8>,
    truncated: bool,
    limit: usize,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Capture {
            buf: Vec::new(),
            truncated: false,
            limit,
        }
    }
}

/// Reads `r` to its end into `cap`, discarding (and flagging) what is beyond the cap.
async fn drain<R: AsyncRead + Unpin>(r: Option<R>, cap: &mut Capture) -> io::Result<()> {
    let Some(mut r) = r else { return Ok(()) };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        let room = cap.limit.saturating_sub(cap.buf.len());
        if n > room {
            cap.truncated = true;
        }
        cap.buf.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Supervises a started child until it ends, as the [`Executor`](hostexec_api::Executor)
/// contract says. `program` names the command in errors and in the [`Output`].
pub(crate) async fn supervise(
    program: OsString,
    mut child: Child,
    hc: &HostCommand,
) -> Result<Output, CommandError> {
    let guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    };
    let io_err = |source: io::Error| CommandError::Io {
        program: program.clone(),
        source,
    };
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let bytes = match hc.get_stdin() {
        Stdin::Bytes(b) => Some(b.clone()),
        _ => None,
    };
    let mut out = Capture::new(hc.get_capture_limit());
    let mut err = Capture::new(hc.get_capture_limit());
    let deadline = hc.get_timeout().map(|t| tokio::time::Instant::now() + t);

    let (status, io_result) = {
        let io = async {
            let feed = async {
                if let (Some(mut w), Some(b)) = (stdin, bytes) {
                    // EPIPE (the command does not read its input) is not an error.
                    let _ = w.write_all(&b).await;
                    let _ = w.shutdown().await;
                }
            };
            let ((), a, b) = tokio::join!(feed, drain(stdout, &mut out), drain(stderr, &mut err));
            a.and(b)
        };
        tokio::pin!(io);
        let wait = child.wait();
        tokio::pin!(wait);
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        let mut io_result = None;
        let status = loop {
            tokio::select! {
                st = &mut wait => break st.map_err(io_err)?,
                r = &mut io, if io_result.is_none() => io_result = Some(r),
                () = &mut expiry => {
                    guard.signal(Signal::SIGTERM);
                    let grace = tokio::time::sleep(hc.get_kill_grace());
                    tokio::select! {
                        _ = &mut wait => {}
                        () = grace => {
                            guard.signal(Signal::SIGKILL);
                            let _ = (&mut wait).await;
                        }
                    }
                    // Whatever in the group outlived its leader's SIGTERM.
                    guard.signal(Signal::SIGKILL);
                    guard.disarm();
                    return Err(CommandError::TimedOut {
                        program: program.clone(),
                        timeout: hc.get_timeout().unwrap_or_default(),
                    });
                }
            }
        };
        if io_result.is_none() {
            // Something the command started may hold the pipes open: read for a bounded time.
            if let Ok(r) = tokio::time::timeout(hc.get_wait_delay(), &mut io).await {
                io_result = Some(r);
            }
        }
        (status, io_result)
    };
    guard.disarm();
    if let Some(Err(e)) = io_result {
        return Err(io_err(e));
    }
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => ExitStatus::Code(c),
        (None, Some(s)) => ExitStatus::Signal(s),
        (None, None) => {
            return Err(io_err(io::Error::other(format!(
                "unexpected wait status {status:?}"
            ))))
        }
    };
    Ok(Output {
        program,
        status,
        stdout: out.buf,
        stderr: err.buf,
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
    })
}
