//! Faults, for both launchers, against sandbox hosts: the target dies while commands
//! run; a command hangs, ignores SIGTERM, leaves a grandchild holding its stdout, or writes
//! 1 GiB; a PID-given target exits and its PID is reused. (A lowered fd limit is in
//! tests/emfile.rs: it changes the whole process.)

use std::path::Path;
use std::time::{Duration, Instant};

use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, PathError, PathResolver};
use hostexec_api::{HostFs, Resolve};
use hostexec_nsenter::{Launcher, NsEnter, NsEnterError, Target};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const LAUNCHERS: [Launcher; 2] = [Launcher::HostThread, Launcher::NsenterBinary];

fn host(sb: &SandboxHost, l: Launcher) -> NsEnter {
    NsEnter::builder(sb.target()).launcher(l).build().unwrap()
}

/// True while `pid` exists and is not a zombie.
fn is_live(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// Waits (bounded) until none of `pids` is alive; panics naming the survivors.
async fn all_gone(pids: &[u32], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live: Vec<u32> = pids.iter().copied().filter(|&p| is_live(p)).collect();
        if live.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: still alive: {live:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The PIDs a command wrote (space-separated) to `file` in the sandbox. Reading through
/// /proc/PID/root is fine: nothing is written that way.
async fn pids_in(sb: &SandboxHost, file: &Path) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(sb.local(file)).unwrap_or_default();
        if text.ends_with('\n') {
            return text
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
        }
        assert!(Instant::now() < deadline, "no pid file {file:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Bounds a call: a hang is a failure, not a stuck test.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hangs"))
}

fn assert_target_gone<T: std::fmt::Debug>(r: Result<T, CommandError>, pid: u32, what: &str) {
    match r {
        Err(e @ CommandError::HostUnavailable { .. }) => assert!(
            e.to_string()
                .contains(&format!("target process {pid} has exited")),
            "{what}: {e}"
        ),
        other => panic!("{what}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_target_dies_while_commands_run() {
    if skip_without_namespaces("the_target_dies_while_commands_run") {
        return;
    }
    for l in LAUNCHERS {
        // With its own PID namespace, the target's death kills the commands running in it.
        let sb = SandboxHost::builder().pid().start().unwrap();
        let pid = sb.pid();
        let h = host(&sb, l);
        let running: Vec<_> = (0..4)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.run(HostCommand::new("sleep").arg("30")).await })
            })
            .collect();
        // Wait until all four sleep in the target's PID namespace.
        let deadline = Instant::now() + Duration::from_secs(10);
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        while std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c == "sleep\n")
                    && std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|n| n == ns)
            })
            .count()
            < 4
        {
            assert!(
                Instant::now() < deadline,
                "{l:?}: the commands did not start"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let start = Instant::now();
        drop(sb);
        for r in running {
            let out = bounded("a command of a dead target", r).await.unwrap();
            // Killed with the PID namespace (SIGKILL); nsenter passes the signal on.
            match out {
                Ok(o) => assert!(
                    !o.success() && o.status != ExitStatus::Code(0),
                    "{l:?}: {o:?}"
                ),
                Err(e) => panic!("{l:?}: {e}"),
            }
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{l:?}");
        // Later calls fail at once and say why.
        assert_target_gone(
            bounded("run", h.run(HostCommand::new("true"))).await,
            pid,
            "run",
        );
        assert_target_gone(
            bounded("look_path", h.look_path("sh".as_ref())).await,
            pid,
            "look_path",
        );
        let r = bounded("resolve", h.resolve(Path::new("/"), Resolve::MustExist)).await;
        assert!(
            matches!(&r, Err(e @ PathError::HostUnavailable { .. }) if e.to_string().contains("has exited")),
            "{l:?}: {r:?}"
        );
        let r = bounded("stat", HostFs::stat(&h, Path::new("/"), true)).await;
        assert!(
            matches!(r, Err(PathError::HostUnavailable { .. })),
            "{l:?}: {r:?}"
        );
        // A new NsEnter on a new target works.
        let sb2 = SandboxHost::start().unwrap();
        let h2 = host(&sb2, l);
        let f = sb2.scratch().join("alive");
        sb2.write_file(&f, b"yes").unwrap();
        let out = bounded("new target", h2.run(HostCommand::new("cat").arg(&f)))
            .await
            .unwrap();
        assert_eq!(out.stdout, b"yes", "{l:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_command_times_out_and_is_reaped() {
    if skip_without_namespaces("a_hanging_command_times_out_and_is_reaped") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let f = sb.scratch().join(format!("hang-{l:?}"));
        let start = Instant::now();
        let cmd = HostCommand::new("sh")
            .arg("-c")
            .arg(r#"echo $$ > "$1"; exec sleep 30"#)
            .arg("sh")
            .arg(&f)
            .timeout(Duration::from_millis(300));
        let r = bounded("a hanging command", h.run(cmd)).await;
        match r {
            Err(CommandError::TimedOut { timeout, .. }) => {
                assert_eq!(timeout, Duration::from_millis(300))
            }
            other => panic!("{l:?}: {other:?}"),
        }
        // SIGTERM ends sleep: no kill grace needed.
        assert!(start.elapsed() < Duration::from_secs(2), "{l:?}");
        all_gone(&pids_in(&sb, &f).await, "the hung command").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    if skip_without_namespaces("a_command_ignoring_sigterm_is_killed_after_the_grace") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let f = sb.scratch().join(format!("term-{l:?}"));
        let start = Instant::now();
        // Both the shell and its sleep ignore SIGTERM (SIG_IGN survives exec). The timeout
        // leaves the shell a whole second to reach its `trap`: with a shorter one, a loaded
        // machine delivered SIGTERM before the trap was set, the shell died of it at once and
        // the call ended before any grace (seen at 202 ms with a 200 ms timeout).
        let cmd = HostCommand::new("sh")
            .arg("-c")
            .arg(r#"trap '' TERM; sleep 30 & echo $$ $! > "$1"; wait"#)
            .arg("sh")
            .arg(&f)
            .timeout(Duration::from_millis(1000))
            .kill_grace(Duration::from_millis(300));
        let r = bounded("a command ignoring SIGTERM", h.run(cmd)).await;
        assert!(
            matches!(r, Err(CommandError::TimedOut { .. })),
            "{l:?}: {r:?}"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1300) && took < Duration::from_secs(4),
            "{l:?}: SIGKILL comes after the grace: {took:?}"
        );
        let pids = pids_in(&sb, &f).await;
        assert_eq!(pids.len(), 2);
        all_gone(&pids, "the SIGTERM-ignoring group").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grandchild_holding_stdout_does_not_stop_the_timeout() {
    if skip_without_namespaces("a_grandchild_holding_stdout_does_not_stop_the_timeout") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        // A hung command whose grandchild (a FUSE daemon, a mount helper) holds stdout and
        // ignores SIGTERM: the timeout returns and the whole group dies.
        let f = sb.scratch().join(format!("gc-{l:?}"));
        let start = Instant::now();
        let cmd = HostCommand::new("sh")
            .arg("-c")
            .arg(r#"(trap '' TERM; exec sleep 30) & echo $$ $! > "$1"; exec sleep 30"#)
            .arg("sh")
            .arg(&f)
            .timeout(Duration::from_millis(300))
            .kill_grace(Duration::from_millis(200));
        let r = bounded("a command with a grandchild on stdout", h.run(cmd)).await;
        assert!(
            matches!(r, Err(CommandError::TimedOut { .. })),
            "{l:?}: {r:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(3), "{l:?}");
        let pids = pids_in(&sb, &f).await;
        assert_eq!(pids.len(), 2);
        all_gone(&pids, "the command and its grandchild").await;

        // The command exits at once, its grandchild keeps stdout open: the call returns after
        // the wait delay, long before the timeout.
        let f = sb.scratch().join(format!("gc2-{l:?}"));
        let start = Instant::now();
        let cmd = HostCommand::new("sh")
            .arg("-c")
            .arg(r#"sleep 30 & echo $! > "$1"; echo done"#)
            .arg("sh")
            .arg(&f)
            .timeout(Duration::from_secs(30))
            .wait_delay(Duration::from_millis(200));
        let out = bounded("a command that leaves a daemon", h.run(cmd))
            .await
            .unwrap();
        assert!(out.success(), "{l:?}: {out:?}");
        assert_eq!(out.stdout, b"done\n", "{l:?}");
        assert!(start.elapsed() < Duration::from_secs(3), "{l:?}");
        for p in pids_in(&sb, &f).await {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// VmRSS or VmHWM of this process, in KiB.
fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_on_stdout_is_capped_and_memory_stays_bounded() {
    if skip_without_namespaces("a_gibibyte_on_stdout_is_capped_and_memory_stays_bounded") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let cap = 4 << 20;
        let rss0 = status_kib("VmRSS:");
        // Reset this process's peak RSS (VmHWM) to its current RSS (proc(5), clear_refs "5").
        std::fs::write("/proc/self/clear_refs", b"5").unwrap();
        let cmd = HostCommand::new("sh")
            .args(["-c", "head -c 1073741824 /dev/zero; echo tail >&2"])
            .capture_limit(cap);
        let out = bounded("1 GiB of output", h.run(cmd)).await.unwrap();
        let peak = status_kib("VmHWM:");
        assert!(out.success(), "{l:?}: {:?}", out.status);
        assert_eq!(out.stdout.len(), cap, "{l:?}");
        assert!(out.stdout.iter().all(|&b| b == 0));
        assert!(out.stdout_truncated, "{l:?}");
        assert_eq!(out.stderr, b"tail\n", "{l:?}");
        assert!(!out.stderr_truncated);
        let growth_mib = peak.saturating_sub(rss0) / 1024;
        assert!(
            growth_mib < 200,
            "{l:?}: peak RSS grew by {growth_mib} MiB while 1 GiB was discarded"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_pid_that_exited_and_was_reused_is_refused() {
    if skip_without_namespaces("a_target_pid_that_exited_and_was_reused_is_refused") {
        return;
    }
    // Exited before the NsEnter is built: refused at build.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    match NsEnter::new(Target::pid(gone_pid)) {
        Err(NsEnterError::OpenProcess { pid, .. }) => assert_eq!(pid, gone_pid),
        other => panic!("{other:?}"),
    }
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let pid = sb.pid();
        let h = host(&sb, l);
        assert!(h.run(HostCommand::new("true")).await.unwrap().success());
        drop(sb);
        all_gone(&[pid], "the sandbox").await;
        // Give the PID to another process (in this PID namespace: its mount namespace is
        // this process's, not the target's): ns_last_pid makes the next fork get pid.
        let mut impostor = None;
        for _ in 0..200 {
            if std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_err() {
                break;
            }
            let c = std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap();
            if c.id() == pid {
                impostor = Some(c);
                break;
            }
            let mut c = c;
            let _ = c.kill();
            let _ = c.wait();
        }
        match &impostor {
            Some(_) => assert!(is_live(pid)),
            None => eprintln!("note: PID {pid} could not be reused; checking the exit alone"),
        }
        assert_target_gone(h.run(HostCommand::new("true")).await, pid, "run");
        let r = h.resolve(Path::new("/"), Resolve::MustExist).await;
        assert!(
            matches!(r, Err(PathError::HostUnavailable { .. })),
            "{l:?}: {r:?}"
        );
        let r = h.read_mountinfo().await;
        assert!(
            matches!(r, Err(PathError::HostUnavailable { .. })),
            "{l:?}: {r:?}"
        );
        // Nor a piece of it (no piece of the impostor's table either).
        let pieces = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&pieces);
        let r = h
            .read_mountinfo_pieces(Box::new(move |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }))
            .await;
        assert!(
            matches!(r, Err(PathError::HostUnavailable { .. })),
            "{l:?}: {r:?}"
        );
        assert_eq!(pieces.load(std::sync::atomic::Ordering::Relaxed), 0);
        if let Some(mut c) = impostor {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
