//! `exec -t` / `-it`: the host command on a pty of the host's own devpts.
//!
//! What happens, and why:
//! 1. The pty is allocated in the host's view: `/dev/ptmx` is resolved as the host sees it and
//!    opened through the host's root (`/proc/PID/root/dev/…` or `<host-root>/dev/…`), so the
//!    controller belongs to the host's devpts instance (the kernel ties a `ptmx` node to the
//!    `pts` directory beside it, devpts(5)); the terminal side is opened from the controller
//!    (`TIOCGPTPEER`, no path lookup at all).
//! 2. The command runs as `setsid -c -w -- CMD…` (util-linux setsid(1)): a new session whose
//!    leader has the pty as its controlling terminal (`TIOCSCTTY` on its stdin), so job control,
//!    Ctrl-C and Ctrl-Z behave as on a console; `-w` passes its exit status back. The pty is the
//!    command's stdin, stdout and stderr (given as hostexec's own for the duration of the run:
//!    the launchers pass hostexec's standard streams on).
//! 3. The local terminal is put in raw mode (keys, Ctrl-C included, go to the host's line
//!    discipline, which sends the signals there) and restored by a guard on every way out: normal
//!    exit, error, SIGINT/SIGTERM/SIGHUP to hostexec (handled, then the guard runs), panic
//!    (unwinding). The window size is copied at the start and on every SIGWINCH. End of file on
//!    a non-terminal stdin is sent as the pty's EOF character.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hostexec_api::{Executor, HostCommand, OutputMode, PathResolver, Resolve, Stdin};
use hostexec_nsenter::NsEnter;
use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions, SpecialCodeIndex, Termios};

use crate::cli::{ExecArgs, Global};
use crate::error::{code, CliError};

/// Why the pty could not be set up.
fn pty_err(what: &str, e: impl Into<io::Error>) -> CliError {
    CliError::Refused(format!(
        "exec -t: {what}: {}",
        crate::error::OsText(&e.into())
    ))
}

/// Opens a pty pair in the host's devpts: (controller, terminal).
async fn host_pty(host: &NsEnter) -> Result<(OwnedFd, OwnedFd), CliError> {
    let ptmx = host
        .resolve(Path::new("/dev/ptmx"), Resolve::MustExist)
        .await
        .map_err(|e| pty_err("the host's /dev/ptmx", io::Error::other(e.to_string())))?;
    let local = host
        .local_path(&ptmx)
        .map_err(|e| pty_err("the host's /dev/ptmx", io::Error::other(e.to_string())))?;
    let controller = rustix::fs::open(
        &local,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| pty_err(&format!("opening {}", local.display()), e))?;
    rustix::pty::unlockpt(&controller).map_err(|e| pty_err("unlockpt", e))?;
    let terminal = rustix::pty::ioctl_tiocgptpeer(
        &controller,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )
    .map_err(|e| pty_err("opening the pty's terminal (TIOCGPTPEER)", e))?;
    Ok((controller, terminal))
}

/// hostexec's standard streams as they were, put back on drop.
struct SavedStdio {
    fds: [OwnedFd; 3],
}

impl SavedStdio {
    fn save() -> io::Result<SavedStdio> {
        let dup = |fd: BorrowedFd<'_>| rustix::io::fcntl_dupfd_cloexec(fd, 3);
        Ok(SavedStdio {
            fds: [
                dup(rustix::stdio::stdin())?,
                dup(rustix::stdio::stdout())?,
                dup(rustix::stdio::stderr())?,
            ],
        })
    }

    fn point_at(&self, terminal: &OwnedFd) -> io::Result<()> {
        rustix::stdio::dup2_stdin(terminal)?;
        rustix::stdio::dup2_stdout(terminal)?;
        rustix::stdio::dup2_stderr(terminal)?;
        Ok(())
    }
}

impl Drop for SavedStdio {
    fn drop(&mut self) {
        let _ = rustix::stdio::dup2_stdin(&self.fds[0]);
        let _ = rustix::stdio::dup2_stdout(&self.fds[1]);
        let _ = rustix::stdio::dup2_stderr(&self.fds[2]);
    }
}

/// The local terminal's settings, restored on drop.
struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    fn enter(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Flush, &raw)?;
        Ok(RawMode {
            fd: rustix::io::fcntl_dupfd_cloexec(fd, 3)?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, OptionalActions::Now, &self.saved);
    }
}

/// Copies the local window size to the pty, if the local side is a terminal.
fn copy_winsize(local: BorrowedFd<'_>, controller: &OwnedFd) {
    if let Ok(size) = termios::tcgetwinsize(local) {
        let _ = termios::tcsetwinsize(controller, size);
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match rustix::io::write(fd, buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `exec -t`: runs the command on a host pty and relays between it and hostexec's streams.
pub(crate) async fn exec_tty(host: &NsEnter, g: &Global, a: ExecArgs) -> Result<u8, CliError> {
    let Some((program, args)) = a.command.split_first() else {
        return Err(CliError::Usage("exec: no command given".into()));
    };
    let (controller, terminal) = host_pty(host).await?;
    let controller = Arc::new(controller);
    let saved = SavedStdio::save().map_err(|e| pty_err("saving the standard streams", e))?;
    let local_in = saved.fds[0].try_clone().map_err(|e| pty_err("stdin", e))?;
    let local_out = saved.fds[1].try_clone().map_err(|e| pty_err("stdout", e))?;
    let in_is_tty = termios::isatty(&local_in);
    let size_from = if termios::isatty(&local_out) {
        local_out.try_clone()
    } else {
        local_in.try_clone()
    }
    .map_err(|e| pty_err("stdout", e))?;
    copy_winsize(size_from.as_fd(), &controller);
    // Raw mode only when the keys are forwarded: otherwise Ctrl-C stays hostexec's.
    let raw = if a.interactive && in_is_tty {
        Some(RawMode::enter(local_in.as_fd()).map_err(|e| pty_err("raw mode", e))?)
    } else {
        None
    };

    // Output: everything the pty shows, until the last holder of its terminal side is gone.
    let out_thread = {
        let controller = Arc::clone(&controller);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match rustix::io::read(&*controller, &mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if write_all(local_out.as_fd(), &buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    // EIO: no process holds the terminal side any more.
                    Err(_) => break,
                }
            }
        })
    };
    // Input: keys (or a pipe) to the pty; a pipe's end of file as the EOF character.
    if a.interactive {
        let controller = Arc::clone(&controller);
        let eof = termios::tcgetattr(&*controller)
            .map(|t| t.special_codes[SpecialCodeIndex::VEOF])
            .unwrap_or(4);
        // Not joined: a read of a terminal cannot be interrupted, and the process exits.
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match rustix::io::read(&local_in, &mut buf) {
                    Ok(0) => {
                        if !in_is_tty {
                            let _ = write_all(controller.as_fd(), &[eof]);
                        }
                        break;
                    }
                    Ok(n) => {
                        if write_all(controller.as_fd(), &buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(rustix::io::Errno::INTR) => {}
                    Err(_) => break,
                }
            }
        });
    }

    saved
        .point_at(&terminal)
        .map_err(|e| pty_err("giving the pty to the command", e))?;
    drop(terminal);
    let mut cmd = HostCommand::new("setsid")
        .args(["-c", "-w", "--"])
        .arg(program)
        .args(args)
        .stdin(Stdin::Inherit)
        .stdout(OutputMode::Inherit)
        .stderr(OutputMode::Inherit);
    // A terminal program needs to know the terminal: the caller's TERM goes along (as docker
    // exec -t sets one); everything else of hostexec's environment only when asked for.
    cmd = cmd.env_from_caller("TERM");
    if a.inherit_env {
        cmd = cmd.inherit_env();
    }
    for k in &a.env_from_caller {
        cmd = cmd.env_from_caller(k);
    }
    for (k, v) in &a.env {
        cmd = cmd.env(k, v);
    }
    if let Some(cwd) = &a.cwd {
        cmd = cmd.current_dir(cwd);
    }
    if let Some(t) = g.timeout {
        cmd = cmd.timeout(t);
    }
    tracing::debug!(command = %cmd, "exec -t");
    let run = host.run(cmd);
    tokio::pin!(run);
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let result = loop {
        tokio::select! {
            r = &mut run => break r.map_err(|source| match source {
                hostexec_api::CommandError::NotFound { .. } => CliError::Refused(
                    "exec -t needs setsid(1) (util-linux) on the host, which was not found".into(),
                ),
                source => CliError::Command { context: "exec".into(), source },
            }),
            Some(()) = async {
                match winch.as_mut() {
                    Some(w) => w.recv().await,
                    None => std::future::pending().await,
                }
            } => copy_winsize(size_from.as_fd(), &controller),
            n = crate::commands::termination_signal() => {
                tracing::info!(signal = n, "stopping the command");
                // Dropping `run` kills the command's process group; closing the pty hangs
                // the session up (SIGHUP to its leader).
                break Ok(hostexec_api::Output::new(
                    "setsid",
                    hostexec_api::ExitStatus::Signal(n),
                ));
            }
        }
    };
    // Our copies of the terminal side go (the saved streams come back); the output thread
    // ends when the command's copies are gone too, and has a moment to drain what is left.
    drop(saved);
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while !out_thread.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(raw);
    let _ = io::stdout().flush();
    let out = result?;
    // 128+N for a signal (Output::exit_code).
    Ok(u8::try_from(out.exit_code()).unwrap_or(code::FAILURE))
}
