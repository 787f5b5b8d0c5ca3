//! `exec -t` / `-it`: the host command on a pty of the host's own devpts.
//!
//! What happens, and why:
//! 1. The pty is allocated in the host's view: `/dev/ptmx` is resolved as the host sees it and
//!    opened through the host's root (`/proc/PID/root/dev/…` or `<host-root>/dev/…`), so the
//!    controller belongs to the host's devpts instance (the kernel ties a `ptmx` node to the
//!    `pts` directory beside it, devpts(5)); the terminal side is opened from the controller
//!    (`TIOCGPTPEER`, no path lookup at all).
//! 2. The command leads a new session with the pty as its controlling terminal
//!    ([`HostCommand::controlling_tty`]: the spawn's `setsid`, then the pty's `/dev/pts/N`
//!    opened in the host's view without `O_NOCTTY` as its stdin, stdout and stderr), so job
//!    control, Ctrl-C and Ctrl-Z behave as on a console, and its exit status is its own (a
//!    signal N as 128+N, as a shell reports it). This needs the host-thread launcher.
//! 3. The local terminal is put in raw mode (keys, Ctrl-C included, go to the host's line
//!    discipline, which sends the signals there) and restored by a guard on every way out: normal
//!    exit, error, SIGINT/SIGTERM/SIGHUP to hostexec (handled, then the guard runs), panic
//!    (unwinding). The window size is copied at the start and on every SIGWINCH. End of file on
//!    a non-terminal stdin is sent as the pty's EOF character.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hostexec_api::{Executor, HostCommand, PathResolver, Resolve};
use hostexec_nsenter::{Launcher, NsEnter};
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

/// Opens a pty pair in the host's devpts: (controller, terminal, the terminal's path in the
/// host's view).
async fn host_pty(host: &NsEnter) -> Result<(OwnedFd, OwnedFd, PathBuf), CliError> {
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
    // The pty's number (TIOCGPTN) names it in the devpts instance of this ptmx: the `pts`
    // directory beside a `/dev/ptmx` node, or the one holding a `pts/ptmx` (devpts(5)).
    let name = rustix::pty::ptsname(&controller, Vec::new()).map_err(|e| pty_err("ptsname", e))?;
    let number = Path::new(std::ffi::OsStr::from_bytes(name.as_bytes()))
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .ok_or_else(|| pty_err("ptsname", io::Error::other("no pty number")))?;
    let dir = ptmx.parent().unwrap_or(Path::new("/dev"));
    let pts = if dir.file_name() == Some(std::ffi::OsStr::new("pts")) {
        dir.join(number)
    } else {
        dir.join("pts").join(number)
    };
    Ok((controller, terminal, pts))
}

/// Copies of hostexec's standard streams (for the relay threads).
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
    if host.launcher() != Launcher::HostThread {
        return Err(CliError::Refused(
            "exec -t needs --launcher host-thread (the nsenter binary cannot make the command \
             a session leader)"
                .into(),
        ));
    }
    let (controller, terminal, pts) = host_pty(host).await?;
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

    // `terminal` stays open until the command has ended: before the command has opened its
    // side, the controller would otherwise read as hung up (EIO) and the output relay stop.
    let mut cmd = HostCommand::new(program).args(args).controlling_tty(&pts);
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
            r = &mut run => break r.map_err(|source| CliError::Command {
                context: "exec".into(),
                source,
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
                    program.clone(),
                    hostexec_api::ExitStatus::Signal(n),
                ));
            }
        }
    };
    // Our copy of the terminal side goes; the output thread ends when the command's copies
    // are gone too, and has a moment to drain what is left.
    drop(terminal);
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
