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

/// A `tokio::process::Command` for `program` with `hc`'s stdio, environment
/// ([`HostCommand::final_env`]) and process group; `args` come first (the nsenter options), then `hc`'s arguments.
///
/// No `pre_exec` is set here (only by [`close_inherited_on_exec`], when this process holds
/// inheritable descriptors): std then spawns with `posix_spawn` (vfork-like), whose cost does
/// not grow with the caller's memory, and whose child starts in the namespaces of the thread
/// that spawned it. Checked with strace (rustc 1.95, glibc): with `process_group(0)` and
/// `current_dir` the spawn is still one `clone3(CLONE_VM|CLONE_VFORK)` from the host thread.
/// std would fall back to fork if PATH were changed for a bare program name; the program here
/// is always an absolute path.
///
/// A stdin or output mode this backend does not know (the api's enums are non-exhaustive) is
/// [`CommandError::InvalidInput`], before anything is spawned.
pub(crate) fn command(
    program: &Path,
    pre_args: &[OsString],
    hc: &HostCommand,
) -> Result<Command, CommandError> {
    let mut cmd = Command::new(program);
    cmd.args(pre_args).args(hc.get_args());
    // Exactly the environment the command says (by default PATH alone): nothing of this
    // process's reaches the host unless asked for. For the nsenter launcher, nsenter itself
    // runs with it too, so a caller's LD_PRELOAD never loads into it either.
    cmd.env_clear().envs(hc.final_env(std::env::vars_os));
    cmd.stdin(match hc.get_stdin() {
        Stdin::Null => Stdio::null(),
        Stdin::Bytes(_) => Stdio::piped(),
        Stdin::Inherit => Stdio::inherit(),
        other => return Err(unsupported(hc, format!("stdin {other:?}"))),
    });
    cmd.stdout(stdio(hc, hc.get_stdout())?);
    cmd.stderr(stdio(hc, hc.get_stderr())?);
    // Its own process group, so that a timeout or a drop reaches everything it started.
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    Ok(cmd)
}

fn unsupported(hc: &HostCommand, what: String) -> CommandError {
    CommandError::InvalidInput {
        program: hc.get_program().to_os_string(),
        reason: format!("{what} is not supported by hostexec-nsenter"),
    }
}

/// The descriptors above 2 that this process holds without `FD_CLOEXEC`: every child would
/// inherit them (a job runner or a shell may leave some open, e.g. 10 and 251 here). Read
/// from `/proc/self/fdinfo` (its `flags:` field shows `O_CLOEXEC`), which needs no `unsafe`
/// borrow of a raw descriptor number. When `/proc` cannot be read, the answer is "maybe":
/// `Some(vec![])`, and the caller closes on exec anyway. `None` means there are none.
///
/// Runs on the caller's thread, in this process's view: the host thread's `/proc` may be
/// the target's.
pub(crate) fn inherited_descriptors() -> Option<Vec<i32>> {
    /// `O_CLOEXEC` as fdinfo shows it (octal `flags:`).
    const O_CLOEXEC: u32 = 0o2_000_000;
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Some(Vec::new());
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if fd <= 2 {
            continue;
        }
        // A descriptor closed since the listing (or the listing's own) has no fdinfo.
        let Ok(info) = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
        if flags.is_none_or(|f| f & O_CLOEXEC == 0) {
            found.push(fd);
        }
    }
    (!found.is_empty()).then_some(found)
}

/// `CLOSE_RANGE_CLOEXEC` (linux/close_range.h, Linux ≥ 5.11).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;

/// Makes the child drop every descriptor above 2 at `execve`, including `inherited`, which
/// this process holds without `FD_CLOEXEC` (see [`inherited_descriptors`]).
///
/// This is the one `unsafe` of the project: a `pre_exec` hook. It costs the `posix_spawn`
/// path: std then spawns with fork, whose cost grows with the caller's memory (~42 ms per
/// `/bin/true` with 1 GiB resident, against ~1 ms). It is used only when such descriptors
/// exist. The hook marks the descriptors close-on-exec rather than closing them, so that
/// std's own close-on-exec error pipe still reports a failed `execve`.
#[allow(unsafe_code)]
pub(crate) fn close_inherited_on_exec(cmd: &mut Command, inherited: Vec<i32>) {
    // SAFETY: the hook runs in the forked child, where only async-signal-safe calls are
    // allowed: it makes two raw system calls (close_range, and fcntl as the fallback on
    // kernels without CLOSE_RANGE_CLOEXEC), reads a vector allocated before the fork, and
    // neither allocates, locks nor touches Rust-managed descriptors of the parent (the child
    // has its own descriptor table, a copy made by fork).
    unsafe {
        cmd.pre_exec(move || {
            let all = libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                libc::c_uint::MAX,
                CLOSE_RANGE_CLOEXEC,
            );
            if all != 0 {
                for &fd in &inherited {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
}

fn stdio(hc: &HostCommand, mode: OutputMode) -> Result<Stdio, CommandError> {
    Ok(match mode {
        OutputMode::Capture => Stdio::piped(),
        OutputMode::Inherit => Stdio::inherit(),
        OutputMode::Null => Stdio::null(),
        other => return Err(unsupported(hc, format!("output mode {other:?}"))),
    })
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
    let mut output = Output::new(program, status)
        .with_stdout(out.buf)
        .with_stderr(err.buf);
    output.stdout_truncated = out.truncated;
    output.stderr_truncated = err.truncated;
    Ok(output)
}
