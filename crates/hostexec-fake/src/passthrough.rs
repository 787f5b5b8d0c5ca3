//! Running a [`HostCommand`] for real in the current namespaces, with the [`Executor`]
//! contract's guarantees (what Go's `NewFakeNsenter` does, with a timeout, a process group and
//! bounded capture, none of which it had; its `CommandContext` even returned a nil command).
//! The supervision is `hostexec-supervise`'s [`Engine`], the one the real backend uses: same
//! spawn, deadline, stop and reaping.
//!
//! [`Executor`]: hostexec_api::Executor

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hostexec_api::{CommandError, HostCommand, Output, HOST_BIN_DIRS};
use hostexec_rootfs::RootFs;
use hostexec_supervise::{Engine, EngineConfig, Launch, RunError};

/// The passthrough's engine: spawner threads in this process's namespaces, shared by every
/// passthrough executor of the process.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineConfig::new("hostexec-fake-spawn")))
}

/// The current namespace's `/`, for lookups.
fn root(name: &OsStr) -> Result<Arc<RootFs>, CommandError> {
    static ROOT: OnceLock<Arc<RootFs>> = OnceLock::new();
    if let Some(r) = ROOT.get() {
        return Ok(Arc::clone(r));
    }
    let r = RootFs::open(Path::new("/")).map_err(|e| CommandError::Io {
        program: name.to_os_string(),
        source: e,
    })?;
    Ok(Arc::clone(ROOT.get_or_init(|| Arc::new(r))))
}

/// Where `name` is among [`HOST_BIN_DIRS`] of the current namespace: the same lookup as the
/// real backend's ([`RootFs::look_path`]), on `/`.
pub(crate) fn look_path(name: &OsStr) -> Result<PathBuf, CommandError> {
    root(name)?.look_path(name, HOST_BIN_DIRS)
}

/// [`look_path`] on a blocking thread, bounded by the call's deadline (a lookup on a hung
/// mount must not outlive it).
async fn look_path_until(
    name: &OsStr,
    cmd: &HostCommand,
    deadline: Option<tokio::time::Instant>,
) -> Result<PathBuf, CommandError> {
    let owned = name.to_os_string();
    let task = tokio::task::spawn_blocking(move || look_path(&owned));
    let joined = match deadline {
        Some(d) => match tokio::time::timeout_at(d, task).await {
            Ok(j) => j,
            Err(_) => return Err(hostexec_supervise::timed_out(cmd)),
        },
        None => task.await,
    };
    joined.map_err(|e| CommandError::Io {
        program: name.to_os_string(),
        source: std::io::Error::other(format!("the lookup did not complete: {e}")),
    })?
}

/// Runs `cmd` (already validated) in the current namespaces.
pub(crate) async fn run(cmd: &HostCommand) -> Result<Output, CommandError> {
    let deadline = hostexec_supervise::deadline(cmd);
    let program = if cmd.program_is_bare_name() {
        look_path_until(cmd.get_program(), cmd, deadline).await?
    } else {
        PathBuf::from(cmd.get_program())
    };
    let mut argv: Vec<OsString> = vec![program.as_os_str().to_os_string()];
    argv.extend(cmd.get_args().map(OsStr::to_os_string));
    // The contract's default working directory is the host's `/`, not the caller's.
    let cwd = cmd
        .get_current_dir()
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let launch = Launch::new(cmd.get_program(), &program, argv, Some(cwd));
    match engine().run(launch, cmd, deadline).await {
        Ok(out) => Ok(out),
        Err(RunError::Command(e)) => Err(e),
        Err(RunError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(CommandError::NotFound {
                program: cmd.get_program().to_os_string(),
                searched: vec![program],
            })
        }
        Err(RunError::Spawn(e)) => Err(CommandError::Spawn {
            program: cmd.get_program().to_os_string(),
            source: e,
        }),
        Err(e) => Err(CommandError::Io {
            program: cmd.get_program().to_os_string(),
            source: std::io::Error::other(format!("{e:?}")),
        }),
    }
}
