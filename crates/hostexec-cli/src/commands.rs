//! The subcommands, each on top of the hostexec traits: [`Executor`] for `exec` and `which`,
//! [`PathResolver`] for `realpath`, [`Mount`] (from hostexec-mount) for the mount commands.

use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hostexec_api::{Executor, HostCommand, OutputMode, PathError, PathResolver, Resolve, Stdin};
use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};
use hostexec_nsenter::{Launcher, Namespace, NsEnter, Target};

use crate::cli::{
    Cli, Command, ExecArgs, Global, IsMountpointArgs, LauncherArg, MountArgs, RealpathArgs,
    UmountArgs, WhichArgs, DEFAULT_HOST_ROOT,
};
use crate::error::{code, CliError};
use crate::output;

/// Runs the subcommand and returns the exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, CliError> {
    // A SOURCE starting with '-' (`-oremount,ro`) is safe to pass on: HostMounter ends
    // mount(8)'s options with `--` and keeps such a source from mount.TYPE helpers
    // (`--internal-only`), so it is mounted as the literal source it is.
    let host = Arc::new(connect(&cli.global)?);
    let g = &cli.global;
    match cli.command {
        // These three bound their host commands themselves (process-group kill).
        Command::Exec(a) => exec(&host, g, a).await,
        Command::Mount(a) => mount(&host, g, a).await,
        Command::Umount(a) => umount(&host, g, a).await,
        // These run no command: file system calls on the host thread or the blocking pool,
        // which a hung mount (dead NFS server, stalled FUSE daemon) can block forever.
        Command::Realpath(a) => bounded("realpath", g, realpath(&host, g, a)).await,
        Command::Which(a) => bounded("which", g, which(&host, g, a)).await,
        Command::Mounts => bounded("mounts", g, mounts(&host, g)).await,
        Command::IsMountpoint(a) => bounded("is-mountpoint", g, is_mountpoint(&host, g, a)).await,
    }
}

/// Applies `--timeout` to an in-process operation. A system call blocked in the kernel cannot
/// be cancelled; giving up on it is what can be done ([`CliError::TimedOut`], exit 124, and
/// `main` leaves the blocked thread behind instead of waiting for it).
async fn bounded(
    what: &'static str,
    g: &Global,
    op: impl std::future::Future<Output = Result<u8, CliError>>,
) -> Result<u8, CliError> {
    match g.timeout {
        None => op.await,
        Some(after) => tokio::time::timeout(after, op)
            .await
            .unwrap_or(Err(CliError::TimedOut { what, after })),
    }
}

/// The target the global options describe. Every check that can be made before touching the
/// host is made here, so that a typo is a clear message rather than an OS error.
pub(crate) fn target(g: &Global) -> Result<Target, CliError> {
    let namespaces = parse_namespaces(&g.namespaces)?;
    let target = match &g.target_pid {
        Some(text) => Target::pid(parse_pid(text)?),
        None => {
            let root = g
                .host_root
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_HOST_ROOT));
            match std::fs::metadata(&root) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(CliError::MissingHostRoot {
                        path: root,
                        source: io::Error::from_raw_os_error(20),
                    })
                }
                Err(source) => return Err(CliError::MissingHostRoot { path: root, source }),
            }
            Target::host_root(root)
        }
    };
    let mut target = target.namespaces(&namespaces);
    if let Some(ns) = &g.mount_ns {
        target = target.ns_path(Namespace::Mount, ns);
    }
    Ok(target)
}

/// `--ns mnt,net`: names as in `/proc/PID/ns/`.
fn parse_namespaces(list: &str) -> Result<Vec<Namespace>, CliError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(CliError::BadInput(format!(
                "--ns {list:?}: empty namespace name (expected a comma-separated list of mnt, \
                 uts, ipc, net, pid, cgroup, time)"
            )));
        }
        let ns = name
            .parse::<Namespace>()
            .map_err(|e| CliError::BadInput(format!("--ns: {e}")))?;
        out.push(ns);
    }
    Ok(out)
}

/// `--target-pid 1234`: a positive decimal number.
fn parse_pid(text: &str) -> Result<u32, CliError> {
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(CliError::BadInput(format!(
            "--target-pid {text:?}: not a process ID (a positive number)"
        ))),
    }
}

/// Opens the host the options name.
fn connect(g: &Global) -> Result<NsEnter, CliError> {
    let target = target(g)?;
    let launcher = match g.launcher {
        LauncherArg::HostThread => Launcher::HostThread,
        LauncherArg::Nsenter => Launcher::NsenterBinary,
    };
    tracing::info!(?target, ?launcher, "reaching the host");
    Ok(NsEnter::builder(target).launcher(launcher).build()?)
}

fn out_err(e: io::Error) -> CliError {
    CliError::Output(e)
}

/// Waits for SIGINT, SIGTERM or SIGHUP and returns its number; never returns if the handlers
/// cannot be installed (then the default action applies, as without them).
async fn termination_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    let kinds = [
        (SignalKind::interrupt(), 2),
        (SignalKind::terminate(), 15),
        (SignalKind::hangup(), 1),
    ];
    let mut streams = Vec::new();
    for (kind, n) in kinds {
        if let Ok(s) = signal(kind) {
            streams.push((s, n));
        }
    }
    if streams.is_empty() {
        return std::future::pending().await;
    }
    let waits = streams.iter_mut().map(|(s, n)| {
        let n = *n;
        Box::pin(async move {
            s.recv().await;
            n
        })
    });
    futures_select_first(waits.collect()).await
}

/// The first of several futures to finish (a tiny `select_all`, to avoid a dependency).
async fn futures_select_first<F>(mut futs: Vec<std::pin::Pin<Box<F>>>) -> i32
where
    F: std::future::Future<Output = i32>,
{
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let std::task::Poll::Ready(n) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(n);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

async fn exec(host: &Arc<NsEnter>, g: &Global, a: ExecArgs) -> Result<u8, CliError> {
    let Some((program, args)) = a.command.split_first() else {
        return Err(CliError::Usage("exec: no command given".into()));
    };
    let mut cmd = HostCommand::new(program)
        .args(args)
        .stdin(Stdin::Inherit)
        .stdout(OutputMode::Inherit)
        .stderr(OutputMode::Inherit);
    // Nothing of hostexec's own environment reaches the host unless asked for.
    if a.inherit_env {
        cmd = cmd.inherit_env();
    }
    for k in a.env_from_caller {
        cmd = cmd.env_from_caller(k);
    }
    for (k, v) in a.env {
        cmd = cmd.env(k, v);
    }
    if let Some(cwd) = a.cwd {
        cmd = cmd.current_dir(cwd);
    }
    if let Some(t) = g.timeout {
        cmd = cmd.timeout(t);
    }
    tracing::debug!(command = %cmd, "exec");
    // The errors name the program themselves ("sleep timed out after 1s").
    let context = "exec".to_owned();
    tokio::select! {
        result = host.run(cmd) => match result {
            Ok(out) => Ok(u8::try_from(out.exit_code()).unwrap_or(code::FAILURE)),
            Err(source) => Err(CliError::Command { context, source }),
        },
        // Dropping the run future kills the command's process group (the Executor
        // contract): a Ctrl-C or a pod's SIGTERM never leaves it running on the host.
        n = termination_signal() => {
            tracing::info!(signal = n, "stopping the command");
            Ok(code::SIGNAL_BASE + u8::try_from(n).unwrap_or(0))
        }
    }
}

async fn realpath(host: &Arc<NsEnter>, g: &Global, a: RealpathArgs) -> Result<u8, CliError> {
    let mode = if a.allow_missing {
        Resolve::AllowMissing
    } else {
        Resolve::MustExist
    };
    let stdout = io::stdout();
    let mut failed = false;
    let mut rows = Vec::new();
    for path in &a.paths {
        match host.resolve(path, mode).await {
            Ok(real) if g.json => rows.push(output::RealpathJson::resolved(path, &real)),
            Ok(real) => output::os_line(&mut stdout.lock(), real.as_os_str()).map_err(out_err)?,
            Err(e) => {
                failed = true;
                let text = path_error_text(path, &e);
                eprintln!("hostexec: realpath: {text}");
                if g.json {
                    rows.push(output::RealpathJson::failed(path, &text));
                }
            }
        }
    }
    if g.json {
        output::json(&mut stdout.lock(), &rows).map_err(out_err)?;
    }
    Ok(if failed { code::FAILURE } else { code::OK })
}

/// `PATH: <strerror>` for a path error, naming `path` even when the error does not.
fn path_error_text(path: &Path, e: &PathError) -> String {
    let text = crate::error::one_line(e);
    if e.path().is_some() {
        text
    } else {
        format!("{}: {text}", path.display())
    }
}

async fn which(host: &Arc<NsEnter>, g: &Global, a: WhichArgs) -> Result<u8, CliError> {
    let found = host
        .look_path(&a.name)
        .await
        .map_err(|source| CliError::Lookup {
            context: "which",
            source,
        })?;
    let mut out = io::stdout().lock();
    if g.json {
        let row = serde_json::json!({
            "name": a.name.to_string_lossy(),
            "path": found.to_string_lossy(),
        });
        output::json(&mut out, &row).map_err(out_err)?;
    } else {
        output::os_line(&mut out, found.as_os_str()).map_err(out_err)?;
    }
    Ok(code::OK)
}

fn mounter(host: &Arc<NsEnter>) -> HostMounter<Arc<NsEnter>, Arc<NsEnter>> {
    HostMounter::new(Arc::clone(host), Arc::clone(host))
}

async fn mounts(host: &Arc<NsEnter>, g: &Global) -> Result<u8, CliError> {
    let list = mounter(host)
        .list()
        .await
        .map_err(|source| CliError::Mount {
            context: "mounts",
            source: Box::new(source),
        })?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if g.json {
        output::mounts_json(&mut out, &list).map_err(out_err)?;
    } else {
        output::mounts_table(&mut out, &list).map_err(out_err)?;
    }
    out.flush().map_err(out_err)?;
    Ok(code::OK)
}

async fn is_mountpoint(
    host: &Arc<NsEnter>,
    g: &Global,
    a: IsMountpointArgs,
) -> Result<u8, CliError> {
    let is = mounter(host)
        .is_mount_point(&a.path)
        .await
        .map_err(|source| CliError::Mount {
            context: "is-mountpoint",
            source: Box::new(source),
        })?;
    let mut out = io::stdout().lock();
    if g.json {
        let row = serde_json::json!({"path": a.path.to_string_lossy(), "mountpoint": is});
        output::json(&mut out, &row).map_err(out_err)?;
    } else {
        let mut line = a.path.as_os_str().as_bytes().to_vec();
        line.extend_from_slice(if is {
            b" is a mountpoint"
        } else {
            b" is not a mountpoint"
        });
        output::line(&mut out, &line).map_err(out_err)?;
    }
    Ok(if is { code::OK } else { code::NOT_A_MOUNTPOINT })
}

/// Splits `-o a,b,c` into options (no quote handling: mount(8) does none either).
fn split_options(opts: Option<&str>) -> Vec<String> {
    opts.map(|o| {
        o.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

async fn mount(host: &Arc<NsEnter>, g: &Global, a: MountArgs) -> Result<u8, CliError> {
    let mut opts = MountOptions::new().options(split_options(a.options.as_deref()));
    for secret in split_options(a.sensitive_options.as_deref()) {
        opts = opts.sensitive(secret);
    }
    if a.no_systemd {
        opts = opts.without_systemd();
    }
    if let Some(t) = g.timeout {
        opts = opts.timeout(t);
    }
    tracing::debug!(source = %a.source.to_string_lossy(), target = %a.target.display(), options = %opts.shown(), "mount");
    mounter(host)
        .mount(
            &a.source,
            &a.target,
            a.fstype.as_deref().unwrap_or(""),
            &opts,
        )
        .await
        .map_err(|source| CliError::Mount {
            context: "mount",
            source: Box::new(source),
        })?;
    Ok(code::OK)
}

async fn umount(host: &Arc<NsEnter>, g: &Global, a: UmountArgs) -> Result<u8, CliError> {
    let mut opts = UnmountOptions::new();
    if a.lazy {
        opts = opts.lazy();
    }
    if let Some(after) = a.force_after {
        opts = opts.force_after(after);
    }
    if let Some(t) = g.timeout {
        opts = opts.timeout(t);
    }
    mounter(host)
        .unmount(&a.target, &opts)
        .await
        .map_err(|source| CliError::Mount {
            context: "umount",
            source: Box::new(source),
        })?;
    Ok(code::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_lists() {
        assert_eq!(
            parse_namespaces("mnt, net").unwrap(),
            [Namespace::Mount, Namespace::Net]
        );
        let e = parse_namespaces("mnt,user").unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("unknown namespace \"user\""), "{e}");
        assert!(parse_namespaces("mnt,,net").is_err());
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pid("42").unwrap(), 42);
        for bad in ["", "0", "-1", "abc", "1.5", "99999999999"] {
            let e = parse_pid(bad).unwrap_err();
            assert!(e.to_string().contains("not a process ID"), "{bad}: {e}");
        }
    }

    #[test]
    fn options_split_on_commas() {
        assert_eq!(split_options(Some("ro,,size=1m")), ["ro", "size=1m"]);
        assert!(split_options(None).is_empty());
    }
}
