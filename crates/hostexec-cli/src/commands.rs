//! The subcommands, each on top of the hostexec traits: [`Executor`] for `exec` and `which`,
//! [`PathResolver`] for `realpath`, [`Mount`] (from hostexec-mount) for the mount commands.

use std::ffi::{OsStr, OsString};
use std::io::{self, IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use hostexec_api::{Executor, HostCommand, OutputMode, PathError, PathResolver, Resolve, Stdin};
use hostexec_mount::mountinfo::MountInfo;
use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};
use hostexec_nsenter::{Launcher, Namespace, NsEnter, Target};

use crate::cli::{
    Cli, Column, Command, CompletionsArgs, ExecArgs, Global, IsMountpointArgs, LauncherArg,
    MountArgs, MountsArgs, RealpathArgs, RouteArgs, ShellArg, UmountArgs, WhichArgs,
    DEFAULT_HOST_ROOT,
};
use crate::error::{code, CliError};
use crate::output;

/// Runs the subcommand and returns the exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, CliError> {
    if let Command::Completions(a) = &cli.command {
        return completions(a);
    }
    // A SOURCE starting with '-' (`-oremount,ro`) is safe to pass on: HostMounter ends
    // mount(8)'s options with `--` and keeps such a source from mount.TYPE helpers
    // (`--internal-only`), so it is mounted as the literal source it is.
    let g = &cli.global;
    precheck(&cli.command)?;
    let target = target(g)?;
    safety_rail(g, &target, &cli.command)?;
    let host = connect(g, target)?;
    match cli.command {
        // These three bound their host commands themselves (process-group kill).
        Command::Exec(a) => exec(&host, g, a).await,
        Command::Mount(a) => mount(&host, g, a).await,
        Command::Umount(a) => umount(&host, g, a).await,
        // These run no command: file system calls on the host thread or the blocking pool,
        // which a hung mount (dead NFS server, stalled FUSE daemon) can block forever.
        Command::Realpath(a) => bounded("realpath", g, realpath(&host, g, a)).await,
        Command::Which(a) => bounded("which", g, which(&host, g, a)).await,
        Command::Mounts(a) => bounded("mounts", g, mounts(&host, g, a)).await,
        Command::IsMountpoint(a) => bounded("is-mountpoint", g, is_mountpoint(&host, g, a)).await,
        Command::Completions(_) => Ok(code::OK),
    }
}

/// The usage errors that clap cannot see, found before the host is touched.
fn precheck(command: &Command) -> Result<(), CliError> {
    match command {
        Command::Mount(a) if a.target.is_none() && !is_remount(a.options.as_deref()) => {
            Err(CliError::Usage(
                "mount: TARGET is missing (give SOURCE TARGET; one argument only with -o \
                 remount,...)"
                    .into(),
            ))
        }
        Command::Exec(a) if a.interactive && !a.tty && io::stdin().is_terminal() => {
            Err(CliError::Usage(
                "exec -i: standard input is a terminal, which a host command can only read \
                 through a pty: use -it (or redirect standard input)"
                    .into(),
            ))
        }
        _ => Ok(()),
    }
}

fn is_remount(options: Option<&str>) -> bool {
    split_options(options).iter().any(|o| o == "remount")
}

/// `hostexec completions SHELL`: the script clap_complete generates from the definition.
fn completions(a: &CompletionsArgs) -> Result<u8, CliError> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match a.shell {
        ShellArg::Bash => Shell::Bash,
        ShellArg::Zsh => Shell::Zsh,
        ShellArg::Fish => Shell::Fish,
    };
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "hostexec", &mut buf);
    io::stdout().lock().write_all(&buf).map_err(out_err)?;
    Ok(code::OK)
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

/// Whether the namespace file `theirs` is the namespace `/proc/self/ns/<name>` (same nsfs
/// device and inode, as `stat -L` compares them); `None` when either cannot be stat'ed.
fn same_namespace(theirs: &Path, name: &str) -> Option<bool> {
    let theirs = std::fs::metadata(theirs).ok()?;
    let ours = std::fs::metadata(format!("/proc/self/ns/{name}")).ok()?;
    Some(theirs.dev() == ours.dev() && theirs.ino() == ours.ino())
}

/// The safety rail: a mount namespace that is our own is not the host's (`--target-pid 1` in
/// a pod without hostPID names the container's own init). mount and umount refuse it unless
/// `--allow-own-namespace`; exec warns.
fn safety_rail(g: &Global, target: &Target, command: &Command) -> Result<(), CliError> {
    let own = if target.get_namespaces().contains(&Namespace::Mount) {
        same_namespace(&target.ns_file(Namespace::Mount), "mnt").unwrap_or(false)
    } else {
        true
    };
    if !own || g.allow_own_namespace {
        return Ok(());
    }
    let why = "the target's mount namespace is hostexec's own, not the host's (without hostPID, \
               --target-pid 1 is this container's init; or --ns leaves out mnt)";
    match command {
        Command::Mount(_) | Command::Umount(_) => Err(CliError::Refused(format!(
            "{}: refusing: {why}; give --allow-own-namespace to do it anyway",
            command.name()
        ))),
        Command::Exec(_) => {
            eprintln!("hostexec: warning: {why}; the command runs in this mount namespace");
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The target the global options describe. Every check that can be made before touching the
/// host is made here, so that a typo is a clear message rather than an OS error.
pub(crate) fn target(g: &Global) -> Result<Target, CliError> {
    let namespaces = if g.all {
        Vec::new()
    } else {
        parse_namespaces(&g.namespaces)?
    };
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
    if g.all {
        // nsenter -a: every namespace whose file differs from ours (the user namespace is not
        // among hostexec's: joining it would drop the capabilities the rest needs).
        let differ: Vec<Namespace> = Namespace::JOIN_ORDER
            .into_iter()
            .filter(|&ns| same_namespace(&target.ns_file(ns), ns.proc_name()) == Some(false))
            .collect();
        tracing::info!(?differ, "--all");
        target = target.namespaces(&differ);
    }
    Ok(target)
}

const NS_LIST: &str = "expected a comma-separated list of mnt, uts, ipc, net, pid, cgroup, time";

/// `--ns mnt,net`: names as in `/proc/PID/ns/`.
fn parse_namespaces(list: &str) -> Result<Vec<Namespace>, CliError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim) {
        if name.is_empty() {
            return Err(CliError::Usage(format!(
                "--ns {list:?}: empty namespace name ({NS_LIST})"
            )));
        }
        let ns = name
            .parse::<Namespace>()
            .map_err(|e| CliError::Usage(format!("--ns: {e}")))?;
        out.push(ns);
    }
    Ok(out)
}

/// `--target-pid 1234`: a positive decimal number.
fn parse_pid(text: &str) -> Result<u32, CliError> {
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(CliError::Usage(format!(
            "--target-pid {text:?}: not a process ID (a positive number)"
        ))),
    }
}

/// Opens the host the options name.
fn connect(g: &Global, target: Target) -> Result<NsEnter, CliError> {
    let launcher = match g.launcher {
        LauncherArg::HostThread => Launcher::HostThread,
        LauncherArg::Nsenter => Launcher::NsenterBinary,
    };
    tracing::info!(?target, launcher = g.launcher.flag(), "reaching the host");
    Ok(NsEnter::builder(target).launcher(launcher).build()?)
}

fn out_err(e: io::Error) -> CliError {
    CliError::Output(e)
}

/// Waits for SIGINT, SIGTERM or SIGHUP and returns its number; never returns if the handlers
/// cannot be installed (then the default action applies, as without them).
pub(crate) async fn termination_signal() -> i32 {
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

async fn exec(host: &NsEnter, g: &Global, a: ExecArgs) -> Result<u8, CliError> {
    if a.tty {
        return crate::tty::exec_tty(host, g, a).await;
    }
    let Some((program, args)) = a.command.split_first() else {
        return Err(CliError::Usage("exec: no command given".into()));
    };
    // A command in its own process group that reads a terminal is stopped (SIGTTIN) and the
    // run would hang: a terminal is passed on only when asked for, and then needs a pty.
    // (`-i` with a terminal was refused by `precheck`.)
    let stdin = if io::stdin().is_terminal() {
        Stdin::Null
    } else {
        Stdin::Inherit
    };
    let mut cmd = HostCommand::new(program)
        .args(args)
        .stdin(stdin)
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

async fn realpath(host: &NsEnter, g: &Global, a: RealpathArgs) -> Result<u8, CliError> {
    let mode = if a.allow_missing {
        Resolve::AllowMissing
    } else if a.must_exist {
        Resolve::MustExist
    } else {
        Resolve::AllButLast
    };
    let end: &[u8] = if a.zero { b"\0" } else { b"\n" };
    let stdout = io::stdout();
    let mut failed = false;
    let mut rows = Vec::new();
    // Answers are collected and written in large pieces (as GNU realpath's stdio does on a
    // pipe), not one write(2) per line: `stdout` is line-buffered. What was collected goes
    // out before an error line, so the two streams keep their order on a terminal.
    let mut pending = Vec::with_capacity(8192);
    let flush = |pending: &mut Vec<u8>| -> Result<(), CliError> {
        if !pending.is_empty() {
            stdout.lock().write_all(pending).map_err(out_err)?;
            pending.clear();
        }
        Ok(())
    };
    for path in &a.paths {
        match host.resolve(path, mode).await {
            Ok(real) if g.json => rows.push(output::RealpathJson::resolved(path, &real)),
            Ok(real) => {
                pending.extend_from_slice(real.as_os_str().as_bytes());
                pending.extend_from_slice(end);
                if pending.len() >= 64 * 1024 {
                    flush(&mut pending)?;
                }
            }
            Err(e) => {
                flush(&mut pending)?;
                failed = true;
                let text = path_error_text(path, &e);
                eprintln!("hostexec: realpath: {text}");
                if g.json {
                    rows.push(output::RealpathJson::failed(path, &text));
                }
            }
        }
    }
    flush(&mut pending)?;
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

async fn which(host: &NsEnter, g: &Global, a: WhichArgs) -> Result<u8, CliError> {
    let mut failed = false;
    let mut rows = Vec::new();
    for name in &a.names {
        match host.look_path(name).await {
            Ok(found) if g.json => rows.push(serde_json::json!({
                "name": name.to_string_lossy(),
                "path": found.to_string_lossy(),
            })),
            Ok(found) => {
                output::os_line(&mut io::stdout().lock(), found.as_os_str()).map_err(out_err)?
            }
            Err(source) => {
                failed = true;
                let e = CliError::Lookup {
                    context: "which",
                    source,
                };
                let text = crate::error::one_line(&e);
                eprintln!("hostexec: {text}");
                if g.json {
                    rows.push(serde_json::json!({
                        "name": name.to_string_lossy(),
                        "error": text.strip_prefix("which: ").unwrap_or(&text),
                    }));
                }
            }
        }
    }
    if g.json {
        output::json(&mut io::stdout().lock(), &rows).map_err(out_err)?;
    }
    Ok(if failed { code::FAILURE } else { code::OK })
}

fn mounter(host: &NsEnter) -> HostMounter<NsEnter> {
    HostMounter::new(host.clone())
}

/// libmount's `mnt_match_fstype`: a comma-separated list, each name optionally prefixed with
/// `no`; a `no` in front of the whole list negates it (`-t nosysfs,proc` lists neither).
pub(crate) fn match_fstype(fstype: &[u8], pattern: &str) -> bool {
    let (negated, list) = match pattern.strip_prefix("no") {
        Some(rest) => (true, rest),
        None => (false, pattern),
    };
    for item in list.split(',') {
        if item.as_bytes().strip_prefix(b"no") == Some(fstype) {
            return false;
        }
        if item.as_bytes() == fstype {
            return !negated;
        }
    }
    negated
}

async fn mounts(host: &NsEnter, g: &Global, a: MountsArgs) -> Result<u8, CliError> {
    // findmnt TARGET: a mount point (canonicalized in the host's view) or a source.
    let wanted = match &a.target {
        None => None,
        Some(t) => {
            let resolved = host.resolve(Path::new(t), Resolve::MustExist).await.ok();
            Some((t.clone(), resolved))
        }
    };
    let keep = |m: &MountInfo| {
        a.types
            .as_deref()
            .is_none_or(|t| match_fstype(m.fs_type_full().as_bytes(), t))
            && match &wanted {
                None => true,
                Some((raw, resolved)) => {
                    resolved.as_deref() == Some(m.mount_point())
                        || m.source() == raw.as_os_str()
                        || Path::new(raw) == m.mount_point()
                }
            }
    };
    let columns = a.columns.as_ref().map(|c| c.0.as_slice());
    let mut json = g.json.then(|| output::JsonMounts::new(columns));
    let mut table = Vec::new();
    let mut shown = 0usize;
    // Each piece is parsed and formatted as it comes, while the kernel generates the rest.
    read_mount_table(host, |m| {
        if keep(&m) {
            shown += 1;
            match &mut json {
                Some(json) => json.push(&m),
                None => table.push(m),
            }
        }
    })
    .await?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if let Some(json) = json {
        json.finish(&mut out).map_err(out_err)?;
    } else if !table.is_empty() {
        let cols = a.columns.as_ref().map_or(&Column::DEFAULT[..], |c| &c.0);
        let refs: Vec<&MountInfo> = table.iter().collect();
        output::mounts_table(&mut out, &refs, cols).map_err(out_err)?;
    }
    out.flush().map_err(out_err)?;
    // findmnt: a TARGET that names no mount is exit 1 (a -t that matches nothing is not).
    Ok(if shown == 0 && a.target.is_some() {
        code::FAILURE
    } else {
        code::OK
    })
}

/// The target's mount table, each entry handed to `each` in order: the library's
/// `Mount::list()` (`hostexec_mount::read_mount_table`: the same file, checks and deadline,
/// the same entries and errors), each piece parsed, filtered and formatted on this thread
/// while the file pool reads the next, so that little is left to do when the kernel's read
/// ends (at 5,000 mounts the read takes ~6 ms, the parse and the JSON ~3 ms).
async fn read_mount_table(host: &NsEnter, mut each: impl FnMut(MountInfo)) -> Result<(), CliError> {
    hostexec_mount::read_mount_table(host, |piece| piece.drain(..).for_each(&mut each))
        .await
        .map_err(|source| CliError::Mount {
            context: "mounts",
            source: Box::new(source),
        })
}

async fn is_mountpoint(host: &NsEnter, g: &Global, a: IsMountpointArgs) -> Result<u8, CliError> {
    let is = mounter(host)
        .is_mount_point(&a.path)
        .await
        .map_err(|source| CliError::Mount {
            context: "is-mountpoint",
            source: Box::new(source),
        })?;
    let mut out = io::stdout().lock();
    if a.quiet {
        // mountpoint -q: the status says it.
    } else if g.json {
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

async fn mount(host: &NsEnter, g: &Global, a: MountArgs) -> Result<u8, CliError> {
    let mut options = split_options(a.options.as_deref());
    let remount = is_remount(a.options.as_deref());
    // `mount -o remount,ro TARGET`: one positional is the target (mount(8) would look the
    // other half up in fstab, which is not ours to read).
    let (source, target) = match (a.target, remount) {
        (Some(t), _) => (a.source, t),
        (None, true) => (Default::default(), PathBuf::from(&a.source)),
        (None, false) => unreachable_usage()?,
    };
    if a.bind || a.rbind {
        // As mount(8): --bind is -o bind, --rbind is -o rbind.
        options.insert(0, if a.rbind { "rbind" } else { "bind" }.to_owned());
    }
    let mut opts = MountOptions::new().options(options);
    for secret in split_options(a.sensitive_options.as_deref()) {
        opts = opts.sensitive(secret);
    }
    if a.no_systemd {
        opts = opts.without_systemd();
    }
    if let Some(t) = g.timeout {
        opts = opts.timeout(t);
    }
    let opts = with_route(
        opts,
        a.route,
        MountOptions::follow_symlinks,
        |o, b| o.beneath(b),
        MountOptions::helper_only,
    );
    tracing::debug!(source = %source.to_string_lossy(), target = %target.display(), options = %opts.shown(), "mount");
    mounter(host)
        .mount(
            OsStr::new(&source),
            &target,
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

/// `--follow`, `--beneath BASE` and `--helper`, for the options of a mount or an unmount.
fn with_route<O>(
    mut opts: O,
    route: RouteArgs,
    follow: fn(O) -> O,
    beneath: fn(O, PathBuf) -> O,
    helper: fn(O) -> O,
) -> O {
    if route.follow {
        opts = follow(opts);
    }
    if let Some(base) = route.beneath {
        opts = beneath(opts, base);
    }
    if route.helper {
        opts = helper(opts);
    }
    opts
}

/// A case `precheck` has already refused.
fn unreachable_usage() -> Result<(OsString, PathBuf), CliError> {
    Err(CliError::Usage("mount: TARGET is missing".into()))
}

async fn umount(host: &NsEnter, g: &Global, a: UmountArgs) -> Result<u8, CliError> {
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
    let opts = with_route(
        opts,
        a.route,
        UnmountOptions::follow_symlinks,
        |o, b| o.beneath(b),
        UnmountOptions::helper_only,
    );
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
    use hostexec_mount::mountinfo::{parse_mountinfo, parse_mountinfo_piece, ParseError};

    #[test]
    fn namespace_lists() {
        assert_eq!(
            parse_namespaces("mnt, net").unwrap(),
            [Namespace::Mount, Namespace::Net]
        );
        let e = parse_namespaces("mnt,user").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("unknown namespace \"user\""), "{e}");
        assert!(parse_namespaces("mnt,,net").is_err());
    }

    #[test]
    fn pids() {
        assert_eq!(parse_pid("42").unwrap(), 42);
        for bad in ["", "0", "-1", "abc", "1.5", "99999999999"] {
            let e = parse_pid(bad).unwrap_err();
            assert!(e.to_string().contains("not a process ID"), "{bad}: {e}");
            assert_eq!(e.exit_code(), 2);
        }
    }

    /// A large mountinfo table with the names the kernel escapes (space, tab, newline,
    /// backslash), quotes, non-UTF-8 bytes, quoted options and propagation tags.
    fn tricky_table(rows: usize) -> Vec<u8> {
        let mut table = Vec::new();
        for i in 0..rows {
            let name: &[u8] = match i % 7 {
                0 => b"sp\\040ace",
                1 => b"t\\011ab\\012new\\012line",
                2 => b"back\\134slash\\040\"quoted\"",
                3 => b"\xff\xfe\\040not\\040utf-8\\040\xc3\x28",
                4 => b"caf\xc3\xa9",
                _ => b"plain",
            };
            let tags = match i % 5 {
                0 => " shared:3",
                1 => " master:9 unbindable",
                2 => " shared:4 master:1 propagate_from:2",
                _ => "",
            };
            table.extend_from_slice(
                format!("{} 22 0:{} /r{i} /mnt/{i}/", i + 100, i % 256).as_bytes(),
            );
            table.extend_from_slice(name);
            table.extend_from_slice(
                format!(
                    " rw,relatime{tags} - fuse.s\\040x src\\040{i} rw,size={i}k,context=\"a,b\"\n"
                )
                .as_bytes(),
            );
        }
        table
    }

    /// One piece parsed as `read_mount_table` parses it.
    fn parse_piece(piece: &[u8], lines: &mut usize) -> Result<Vec<MountInfo>, ParseError> {
        let mut out = Vec::new();
        parse_mountinfo_piece(piece, lines, &mut out)?;
        Ok(out)
    }

    /// `mounts`' way: pieces of whole lines parsed as they come, into one JSON array.
    fn json_of_pieces(pieces: &[&[u8]], columns: Option<&[Column]>) -> Vec<u8> {
        let mut json = output::JsonMounts::new(columns);
        let mut lines = 0;
        for p in pieces {
            for m in parse_piece(p, &mut lines).unwrap() {
                json.push(&m);
            }
        }
        let mut out = Vec::new();
        json.finish(&mut out).unwrap();
        out
    }

    /// `table` cut after every `n` lines.
    fn cut(table: &[u8], n: usize) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let (mut start, mut seen) = (0, 0);
        for (i, &b) in table.iter().enumerate() {
            if b == b'\n' {
                seen += 1;
                if seen % n == 0 {
                    pieces.push(&table[start..=i]);
                    start = i + 1;
                }
            }
        }
        if start < table.len() {
            pieces.push(&table[start..]);
        }
        pieces
    }

    #[test]
    fn json_of_a_table_in_pieces_is_the_json_of_the_whole_table() {
        let table = tricky_table(3_000);
        let whole = parse_mountinfo(&table).unwrap();
        let refs: Vec<&MountInfo> = whole.iter().collect();
        for columns in [None, Some(&[Column::Target, Column::Options][..])] {
            let mut one = Vec::new();
            output::mounts_json(&mut one, &refs, columns).unwrap();
            for n in [1, 7, 350, 2_999, 3_000, 5_000] {
                assert_eq!(
                    json_of_pieces(&cut(&table, n), columns),
                    one,
                    "pieces of {n}"
                );
            }
            let v: serde_json::Value = serde_json::from_slice(&one).unwrap();
            assert_eq!(v.as_array().unwrap().len(), 3_000);
            assert_eq!(v[0]["target"], "/mnt/0/sp ace");
            assert_eq!(v[2997]["target"], "/mnt/2997/t\tab\nnew\nline");
            assert_eq!(v[2998]["target"], "/mnt/2998/back\\slash \"quoted\"");
            assert_eq!(
                v[2999]["target"],
                "/mnt/2999/\u{fffd}\u{fffd} not utf-8 \u{fffd}("
            );
        }
        assert_eq!(json_of_pieces(&[], None), b"[]\n");
    }

    #[test]
    fn a_bad_line_in_a_later_piece_is_reported_with_its_number_in_the_table() {
        let mut table = tricky_table(1_000);
        table.extend_from_slice(b"\n1 2 not a mount line\n");
        table.extend_from_slice(&tricky_table(10));
        let want = parse_mountinfo(&table).unwrap_err();
        assert_eq!(want.line_no, 1_002);
        for n in [1, 7, 300] {
            let mut lines = 0;
            let got = cut(&table, n)
                .into_iter()
                .map(|p| parse_piece(p, &mut lines))
                .find_map(Result::err)
                .expect("the bad line fails");
            assert_eq!(got, want, "pieces of {n}");
        }
    }

    #[test]
    fn fstype_patterns_follow_libmount() {
        let m = |t: &str, p: &str| match_fstype(t.as_bytes(), p);
        assert!(m("tmpfs", "tmpfs"));
        assert!(m("tmpfs", "ext4,tmpfs"));
        assert!(!m("tmpfs", "ext4"));
        assert!(!m("tmpfs", "notmpfs"));
        assert!(m("ext4", "notmpfs"));
        assert!(!m("proc", "nosysfs,proc"));
        assert!(m("ext4", "nosysfs,proc"));
        assert!(!m("tmpfs", "ext4,notmpfs"));
        assert!(!m("tmpfs", "tmp"));
        assert!(m("fuse.sshfs", "fuse.sshfs"));
    }

    #[test]
    fn options_split_on_commas() {
        assert_eq!(split_options(Some("ro,,size=1m")), ["ro", "size=1m"]);
        assert!(split_options(None).is_empty());
    }
}
