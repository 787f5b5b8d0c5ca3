//! The engine: one command from spawn to reaped, under one deadline.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hostexec_api::{CommandError, ExitStatus, HostCommand, Lingering, Output, OutputMode, Stdin};
use hostexec_sys::spawn::{CloseOthers, SpawnRequest};
use rustix::fs::{Mode, OFlags};
use rustix::pipe::{pipe_with, PipeFlags};
use rustix::process::WaitIdStatus;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::time::Instant;

use crate::contain::{self, Containment, Group, Tracked};
use crate::process::Process;
use crate::spawner::{SpawnWait, Spawners, ThreadInit};

/// How an [`Engine`] spawns and contains commands.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EngineConfig {
    /// The spawner threads' name.
    pub name: String,
    /// Run on each spawner thread before its first spawn (e.g. joining namespaces).
    pub init: Option<ThreadInit>,
    /// How a command's processes are found and killed; `None` (the default):
    /// [`Containment::detect`]ed when the engine first needs it (its first spawn), so that
    /// an engine that never runs a command never probes the cgroup tree.
    pub containment: Option<Containment>,
    /// How descriptors above 2 are kept from the child.
    pub close_others: CloseOthers,
    /// The mount namespace file the commands end up in (e.g. the target's
    /// `/proc/PID/ns/mnt`), when it is not the one they are spawned in: util-linux nsenter
    /// joins it after its exec. Used to attribute orphans to commands.
    pub mount_ns: Option<PathBuf>,
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("name", &self.name)
            .field("init", &self.init.is_some())
            .field("containment", &self.containment)
            .field("close_others", &self.close_others)
            .field("mount_ns", &self.mount_ns)
            .finish()
    }
}

impl EngineConfig {
    /// Spawner threads named `name` with no `init`, [`Containment::detect`]ed containment
    /// (detected at the first spawn).
    pub fn new(name: impl Into<String>) -> EngineConfig {
        EngineConfig {
            name: name.into(),
            init: None,
            containment: None,
            close_others: CloseOthers::Auto,
            mount_ns: None,
        }
    }

    /// The mount namespace file the commands end up in, when it is not the one they are
    /// spawned in (see [`EngineConfig::mount_ns`]).
    pub fn mount_ns(mut self, ns_file: impl Into<PathBuf>) -> EngineConfig {
        self.mount_ns = Some(ns_file.into());
        self
    }

    /// Runs `init` on each spawner thread first.
    pub fn init(mut self, init: ThreadInit) -> EngineConfig {
        self.init = Some(init);
        self
    }

    /// The containment level.
    pub fn containment(mut self, c: Containment) -> EngineConfig {
        self.containment = Some(c);
        self
    }

    /// How descriptors above 2 are closed in the child (the fallback is selectable to test
    /// and measure it).
    pub fn close_others(mut self, c: CloseOthers) -> EngineConfig {
        self.close_others = c;
        self
    }
}

/// What to start: the resolved program and its whole argv.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Launch {
    /// The program as the caller gave it (errors and [`Output::program`] name it).
    pub name: OsString,
    /// The absolute path to execute, in the spawner threads' view.
    pub program: PathBuf,
    /// `argv`, `argv[0]` included.
    pub argv: Vec<OsString>,
    /// The working directory, in the spawner threads' view.
    pub cwd: Option<PathBuf>,
}

impl Launch {
    /// `program` run as `name` with `argv` (`argv[0]` first) in `cwd`.
    pub fn new(
        name: impl Into<OsString>,
        program: impl Into<PathBuf>,
        argv: Vec<OsString>,
        cwd: Option<PathBuf>,
    ) -> Launch {
        Launch {
            name: name.into(),
            program: program.into(),
            argv,
            cwd,
        }
    }
}

/// Why [`Engine::run`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum RunError {
    /// `posix_spawn` failed with this error (the program or working directory is missing,
    /// not executable, …); the caller knows how to name it.
    Spawn(io::Error),
    /// Everything else, already in the contract's terms.
    Command(CommandError),
}

impl From<CommandError> for RunError {
    fn from(e: CommandError) -> RunError {
        RunError::Command(e)
    }
}

/// The deadline of a whole call that starts now: `None` without a timeout.
pub fn deadline(hc: &HostCommand) -> Option<Instant> {
    hc.get_timeout().map(|t| Instant::now() + t)
}

/// The [`CommandError::TimedOut`] of `hc`, for a call that ran out of time before or while
/// starting the command (nothing lingers: no process was started, or a spawn that may still
/// start one was given up on and will be stopped when it returns).
pub fn timed_out(hc: &HostCommand) -> CommandError {
    CommandError::TimedOut {
        program: hc.get_program().to_os_string(),
        timeout: hc.get_timeout().unwrap_or_default(),
        lingering: None,
    }
}

/// The environment a command gets: [`HostCommand::final_env`] with this process's
/// environment as the caller's (by default `PATH` alone; the caller's variables only on
/// request).
pub fn environment(hc: &HostCommand) -> Vec<(OsString, OsString)> {
    hc.final_env(std::env::vars_os)
}

/// Spawns and supervises commands. See the [crate docs](crate).
#[derive(Debug)]
pub struct Engine {
    spawners: Spawners,
    /// Set from the config, or detected when first asked for.
    containment: OnceLock<Containment>,
    close_others: CloseOthers,
    /// The identity of [`EngineConfig::mount_ns`], read once.
    mount_ns: Option<String>,
}

impl Engine {
    /// An engine with `config`. This process becomes a child subreaper (see
    /// [`Containment`]).
    pub fn new(config: EngineConfig) -> Engine {
        contain::ensure_subreaper();
        Engine {
            spawners: Spawners::new(&config.name, config.init),
            containment: config
                .containment
                .map_or_else(OnceLock::new, OnceLock::from),
            close_others: config.close_others,
            mount_ns: config.mount_ns.as_deref().and_then(contain::namespace_id),
        }
    }

    /// The containment level in use ([`Containment::detect`]ed now if the config left it
    /// open and no command ran yet).
    pub fn containment(&self) -> &Containment {
        self.containment.get_or_init(Containment::detect)
    }

    /// Spawner threads stuck in a spawn that was given up on.
    pub fn stuck_spawners(&self) -> usize {
        self.spawners.stuck()
    }

    /// Runs `launch` as `hc` says (stdio, capture, grace, wait delay; `hc`'s program and
    /// arguments are taken from `launch`) until `deadline`, which covers the spawn too.
    pub async fn run(
        &self,
        launch: Launch,
        hc: &HostCommand,
        deadline: Option<Instant>,
    ) -> Result<Output, RunError> {
        let name = launch.name.clone();
        let invalid = |what: &str| {
            RunError::Command(CommandError::InvalidInput {
                program: name.clone(),
                reason: format!("{what} contains a NUL byte"),
            })
        };
        let cstring = |s: &OsStr| CString::new(s.as_bytes());
        let program =
            cstring(launch.program.as_os_str()).map_err(|_| invalid("the program path"))?;
        let argv = launch
            .argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("an argument"))?;
        let envp = environment(hc)
            .into_iter()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                cstring(&kv)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| invalid("an environment variable"))?;
        let cwd = launch
            .cwd
            .as_ref()
            .map(|d| cstring(d.as_os_str()))
            .transpose()
            .map_err(|_| invalid("the working directory"))?;
        let tty = hc
            .get_controlling_tty()
            .map(|t| cstring(t.as_os_str()))
            .transpose()
            .map_err(|_| invalid("the controlling terminal's path"))?;

        let io_err = |source: io::Error| {
            RunError::Command(CommandError::Io {
                program: name.clone(),
                source,
            })
        };
        let (stdio, mut ends) = Stdio::new(hc).map_err(|e| {
            if e.kind() == io::ErrorKind::Unsupported {
                RunError::Command(CommandError::InvalidInput {
                    program: name.clone(),
                    reason: e.to_string(),
                })
            } else {
                io_err(e)
            }
        })?;
        let close_others = self.close_others;
        let grace = hc.get_kill_grace();
        let mount_ns = self.mount_ns.clone();
        let late_ns = mount_ns.clone();
        let cgroup = match self.containment() {
            Containment::Cgroup(base) => Some(base.clone()),
            Containment::Walk => None,
        };
        let spawned = self
            .spawners
            .run(
                deadline,
                move || -> io::Result<(Process, Option<Group>)> {
                    let fds = stdio.fds();
                    let req = SpawnRequest {
                        program: &program,
                        argv: &argv,
                        envp: &envp,
                        cwd: cwd.as_deref(),
                        stdio: [
                            fds[0].map(|f| f.as_fd()),
                            fds[1].map(|f| f.as_fd()),
                            fds[2].map(|f| f.as_fd()),
                        ],
                        close_others,
                        session_tty: tty.as_deref(),
                    };
                    let pid = hostexec_sys::spawn::spawn(&req)?;
                    // Into its group at once, before it has had time to fork much (the walk
                    // covers what it forked before this).
                    let group = cgroup.and_then(|base| Group::new(&base, pid).ok());
                    drop(stdio);
                    let p = Process::open(pid).inspect_err(|_| kill_unopened(pid))?;
                    Ok((p, group))
                },
                move |late: io::Result<(Process, Option<Group>)>| {
                    // The caller gave up before this spawn returned: nobody waits for the
                    // command, stop it as a drop would.
                    if let Ok((p, group)) = late {
                        let p = Arc::new(p);
                        let tracked = Tracked::new(p.pid(), late_ns);
                        drop(stop_in_background(p, tracked, group, grace, Vec::new()));
                    }
                },
            )
            .await;
        let (process, group) = match spawned {
            Ok(Ok((p, group))) => (Arc::new(p), group),
            Ok(Err(e)) => return Err(RunError::Spawn(e)),
            Err(SpawnWait::TimedOut) => return Err(timed_out(hc).into()),
            Err(SpawnWait::Unavailable(e)) => {
                return Err(CommandError::host_unavailable(io::Error::new(
                    e.kind(),
                    format!(
                        "no spawner thread could start {}: {e}",
                        name.to_string_lossy()
                    ),
                ))
                .into())
            }
        };
        let tracked = Tracked::new(process.pid(), mount_ns);
        let keep = std::mem::take(&mut ends.keep);
        let mut running = Running {
            process: Arc::clone(&process),
            parts: Some((tracked, group)),
            grace,
            keep,
        };
        supervise(&name, &process, &mut running, ends, hc, deadline)
            .await
            .map_err(RunError::Command)
    }
}

/// Kills and reaps a child that could not be held through a pidfd (EMFILE).
fn kill_unopened(pid: u32) {
    if let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
}

/// The child's ends of its standard streams (moved to the spawner thread, closed after the
/// spawn).
struct Stdio {
    fds: [Option<OwnedFd>; 3],
}

impl Stdio {
    fn fds(&self) -> [Option<&OwnedFd>; 3] {
        [
            self.fds[0].as_ref(),
            self.fds[1].as_ref(),
            self.fds[2].as_ref(),
        ]
    }
}

/// This process's ends of the command's pipes.
struct Ends {
    stdin: Option<(pipe::Sender, Vec<u8>)>,
    stdout: Option<pipe::Receiver>,
    stderr: Option<pipe::Receiver>,
    /// Second descriptors of the output pipes' read ends, held until the command is stopped
    /// and reaped: a command writing during its grace period (a TERM handler's message, or
    /// the shell's own "Terminated") must not die of SIGPIPE because the caller went away.
    keep: Vec<OwnedFd>,
}

impl Stdio {
    fn new(hc: &HostCommand) -> io::Result<(Stdio, Ends)> {
        let null = || -> io::Result<OwnedFd> {
            Ok(rustix::fs::open(
                "/dev/null",
                OFlags::RDWR | OFlags::CLOEXEC,
                Mode::empty(),
            )?)
        };
        let mut fds: [Option<OwnedFd>; 3] = [None, None, None];
        let mut ends = Ends {
            stdin: None,
            stdout: None,
            stderr: None,
            keep: Vec::new(),
        };
        if hc.get_controlling_tty().is_some() {
            // The terminal is all three (opened by the spawn): nothing to set up or capture.
            return Ok((Stdio { fds }, ends));
        }
        match hc.get_stdin() {
            Stdin::Null => fds[0] = Some(null()?),
            Stdin::Bytes(b) => {
                let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
                fds[0] = Some(r);
                ends.stdin = Some((pipe::Sender::from_owned_fd(w)?, b.clone()));
            }
            Stdin::Inherit => {}
            other => return Err(unsupported(format!("stdin {other:?}"))),
        }
        for (i, mode) in [(1, hc.get_stdout()), (2, hc.get_stderr())] {
            match mode {
                OutputMode::Capture => {
                    let (r, w) = pipe_with(PipeFlags::CLOEXEC)?;
                    fds[i] = Some(w);
                    ends.keep.push(r.try_clone()?);
                    let r = pipe::Receiver::from_owned_fd(r)?;
                    if i == 1 {
                        ends.stdout = Some(r);
                    } else {
                        ends.stderr = Some(r);
                    }
                }
                OutputMode::Null => fds[i] = Some(null()?),
                OutputMode::Inherit => {}
                other => return Err(unsupported(format!("output mode {other:?}"))),
            }
        }
        Ok((Stdio { fds }, ends))
    }
}

/// A stdin or output mode this engine does not know (the api's enums are non-exhaustive):
/// refused before anything is spawned.
fn unsupported(what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not supported by hostexec-supervise"),
    )
}

/// Owns a started command until it is reaped. Dropped before (the caller dropped the `run`
/// future), it stops the command exactly as a timeout does (SIGTERM, the grace, then the
/// freeze-then-kill of everything it started, then reaping), on a thread of its own, so that
/// it needs no runtime.
struct Running {
    process: Arc<Process>,
    parts: Option<(Tracked, Option<Group>)>,
    grace: Duration,
    /// See [`Ends::keep`].
    keep: Vec<OwnedFd>,
}

impl Running {
    /// Stops the command now and waits for the answer (the stop goes on if this future is
    /// dropped).
    async fn stop(&mut self) -> Option<Lingering> {
        let (tracked, group) = self.parts.take()?;
        let keep = std::mem::take(&mut self.keep);
        let rx = stop_in_background(Arc::clone(&self.process), tracked, group, self.grace, keep);
        rx.await.unwrap_or(None)
    }

    /// The command was reaped after exiting on its own: nothing to stop.
    fn finish(&mut self) {
        if let Some((tracked, group)) = self.parts.take() {
            // Daemons it left, adopted by this subreaper: reaped when they end.
            contain::adopt_leftovers(&tracked);
            drop(tracked);
            drop(group);
        }
        self.keep.clear();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some((tracked, group)) = self.parts.take() {
            drop(stop_in_background(
                Arc::clone(&self.process),
                tracked,
                group,
                self.grace,
                std::mem::take(&mut self.keep),
            ));
        }
    }
}

/// Runs [`contain::stop`] on a thread of its own; the answer comes on the channel.
fn stop_in_background(
    process: Arc<Process>,
    tracked: Tracked,
    group: Option<Group>,
    grace: Duration,
    keep: Vec<OwnedFd>,
) -> tokio::sync::oneshot::Receiver<Option<Lingering>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job = move || {
        let lingering = contain::stop(&process, &tracked, group.as_ref(), grace);
        let _ = tx.send(lingering);
        drop(keep);
        drop(group);
        drop(tracked);
    };
    let mut job = Some(job);
    let spawned = std::thread::Builder::new()
        .name("hostexec-stop".into())
        .spawn({
            let job = job.take();
            move || {
                if let Some(j) = job {
                    j();
                }
            }
        });
    if spawned.is_err() {
        // No thread could be started: stop here, blocking the caller for the grace period.
        if let Some(j) = job {
            j();
        }
    }
    rx
}

/// Captured bytes of one stream, capped.
struct Capture {
    buf: Vec<u8>,
    truncated: bool,
    limit: usize,
}

/// Reads `r` to its end into `cap`, discarding (and flagging) what is beyond the cap. A read
/// error ends the capture of that stream (the pipe is closed: a command still writing gets
/// EPIPE) and is the call's error once the command has ended.
async fn drain<R: AsyncRead + Unpin>(
    r: Option<R>,
    cap: &mut Capture,
    stream: &str,
) -> io::Result<()> {
    let Some(mut r) = r else { return Ok(()) };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = r
            .read(&mut chunk)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("reading its {stream}: {e}")))?;
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

/// Waits until the process has ended and reaps it.
async fn exited(fd: &AsyncFd<OwnedFd>, process: &Process) -> io::Result<WaitIdStatus> {
    loop {
        let mut ready = fd.readable().await?;
        if let Some(st) = process.try_reap()? {
            return Ok(st);
        }
        ready.clear_ready();
    }
}

/// The contract's status of a reaped process; anything but an exit or a death by signal is
/// an error (a wait status hostexec does not know how to report).
fn status_of(st: &WaitIdStatus) -> io::Result<ExitStatus> {
    if let Some(code) = st.exit_status() {
        if st.exited() {
            return Ok(ExitStatus::Code(code));
        }
    }
    if st.killed() || st.dumped() {
        if let Some(sig) = st.terminating_signal() {
            return Ok(ExitStatus::Signal(sig));
        }
    }
    Err(io::Error::other(format!(
        "unexpected wait status (code {}, status {})",
        st.raw_code(),
        st.exit_status().unwrap_or(-1)
    )))
}

async fn supervise(
    name: &OsStr,
    process: &Arc<Process>,
    running: &mut Running,
    ends: Ends,
    hc: &HostCommand,
    deadline: Option<Instant>,
) -> Result<Output, CommandError> {
    let io_err = |source: io::Error| CommandError::Io {
        program: name.to_os_string(),
        source,
    };
    // `AsyncFd::new` is deprecated because a `T` that merely borrows a descriptor could let
    // it be closed while registered (tokio-rs/tokio#8587); here `T` is an `OwnedFd` owned by
    // the `AsyncFd` itself, which is the sound case (the replacement, `register`, is
    // `unsafe`, and this crate has none).
    #[allow(deprecated)]
    let pidfd = AsyncFd::new(process.fd().try_clone().map_err(io_err)?).map_err(io_err)?;
    let mut out = Capture {
        buf: Vec::new(),
        truncated: false,
        limit: hc.get_capture_limit(),
    };
    let mut err = Capture {
        buf: Vec::new(),
        truncated: false,
        limit: hc.get_capture_limit(),
    };
    let Ends {
        stdin,
        stdout,
        stderr,
        keep: _,
    } = ends;
    let (waited, io_result) = {
        let io = async {
            let feed = async {
                if let Some((mut w, bytes)) = stdin {
                    // EPIPE (the command does not read its input) is not an error.
                    let _ = w.write_all(&bytes).await;
                    let _ = w.shutdown().await;
                }
            };
            let ((), a, b) = tokio::join!(
                feed,
                drain(stdout, &mut out, "stdout"),
                drain(stderr, &mut err, "stderr")
            );
            a.and(b)
        };
        tokio::pin!(io);
        let expiry = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        let mut io_result = None;
        let waited = loop {
            tokio::select! {
                st = exited(&pidfd, process) => break st,
                r = &mut io, if io_result.is_none() => io_result = Some(r),
                () = &mut expiry => {
                    let lingering = running.stop().await;
                    return Err(CommandError::TimedOut {
                        program: name.to_os_string(),
                        timeout: hc.get_timeout().unwrap_or_default(),
                        lingering,
                    });
                }
            }
        };
        if waited.is_ok() && io_result.is_none() {
            // Something the command started may hold the pipes open: read for a bounded
            // time (and never past the deadline).
            let mut limit = Instant::now() + hc.get_wait_delay();
            if let Some(d) = deadline {
                limit = limit.min(d.max(Instant::now()));
            }
            if let Ok(r) = tokio::time::timeout_at(limit, &mut io).await {
                io_result = Some(r);
            }
        }
        (waited, io_result)
    };
    let status = match waited {
        Ok(st) => {
            running.finish();
            status_of(&st).map_err(io_err)?
        }
        // Waiting failed (not a child any more?): stop whatever is left, then say why.
        Err(e) => {
            running.stop().await;
            return Err(io_err(e));
        }
    };
    if let Some(Err(e)) = io_result {
        return Err(io_err(e));
    }
    let mut output = Output::new(name, status)
        .with_stdout(out.buf)
        .with_stderr(err.buf);
    output.stdout_truncated = out.truncated;
    output.stderr_truncated = err.truncated;
    Ok(output)
}
