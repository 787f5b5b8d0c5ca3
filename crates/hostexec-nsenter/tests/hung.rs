//! A host that misbehaves: commands on a hung mount (a FUSE mount whose daemon never answers,
//! standing for a dead NFS server), for both launchers. The call ends on time; a child stuck
//! in state D is reported as lingering and reaped once the mount answers; a spawn stuck in
//! `execve` or `chdir` never delays another command on the same `NsEnter`.

use std::path::Path;
use std::time::{Duration, Instant};

use hostexec_api::{CommandError, Executor, HostCommand};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const LAUNCHERS: [Launcher; 2] = [Launcher::HostThread, Launcher::NsenterBinary];

fn host(sb: &SandboxHost, l: Launcher) -> NsEnter {
    NsEnter::builder(sb.target()).launcher(l).build().unwrap()
}

/// The state letter of `pid`, `None` once it is gone (reaped).
fn state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
}

/// Waits (bounded) until `pid` no longer exists at all: neither running nor a zombie.
fn wait_reaped(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(s) = state(pid) {
        assert!(
            Instant::now() < deadline,
            "{what}: {pid} still there in state {s}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Bounds a call: a hang is a failure, not a stuck test.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what} hangs"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_d_state_child_times_out_on_time_lingers_and_is_reaped_once_the_mount_answers() {
    if skip_without_namespaces("a_d_state_child_times_out_on_time") {
        return;
    }
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let dir = sb.scratch().join("hung");
        sb.mkdir_all(&dir).unwrap();
        let mut hung = sb.hung_fuse_mount(&dir).unwrap();
        hung.park_waiter("x").unwrap();
        let h = host(&sb, l);
        let timeout = Duration::from_secs(1);
        let grace = Duration::from_millis(200);
        let started = Instant::now();
        let r = bounded(
            "a D-state command",
            h.run(
                HostCommand::new("stat")
                    .arg("--")
                    .arg(dir.join("x"))
                    .timeout(timeout)
                    .kill_grace(grace),
            ),
        )
        .await;
        let took = started.elapsed();
        let lingering = match r {
            Err(CommandError::TimedOut {
                timeout: t,
                lingering: Some(l),
                ..
            }) => {
                assert_eq!(t, timeout);
                l
            }
            other => {
                panic!("{l:?}: a D-state child gives TimedOut with a lingering note: {other:?}")
            }
        };
        assert!(
            took < timeout + grace + Duration::from_secs(3),
            "{l:?}: returned after {took:?}"
        );
        assert_eq!(lingering.state, 'D', "{l:?}: {lingering:?}");
        assert_eq!(state(lingering.pid), Some('D'), "{l:?}: still blocked");
        // The mount answers (ENOTCONN): the killed process ends and is reaped, no zombie.
        hung.abort();
        wait_reaped(lingering.pid, &format!("{l:?}: the lingering child"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawn_stuck_on_a_hung_program_or_cwd_times_out_and_never_blocks_others() {
    if skip_without_namespaces("a_spawn_stuck_on_a_hung_program_or_cwd") {
        return;
    }
    for l in LAUNCHERS {
        for case in ["program", "cwd"] {
            let sb = SandboxHost::start().unwrap();
            let dir = sb.scratch().join("hung");
            sb.mkdir_all(&dir).unwrap();
            let mut hung = sb.hung_fuse_mount(&dir).unwrap();
            let h = host(&sb, l);
            let stuck_cmd = match case {
                "program" => HostCommand::new(dir.join("bin/prog")),
                _ => HostCommand::new("true").current_dir(dir.join("sub")),
            }
            .timeout(Duration::from_secs(3));
            let started = Instant::now();
            let stuck = tokio::spawn({
                let h = h.clone();
                async move { h.run(stuck_cmd).await }
            });
            // Let it reach the mount first.
            tokio::time::sleep(Duration::from_millis(300)).await;
            for i in 0..3 {
                let t = Instant::now();
                let out = bounded(
                    "a healthy command",
                    h.run(
                        HostCommand::new("echo")
                            .arg(format!("healthy {i}"))
                            .timeout(Duration::from_secs(1)),
                    ),
                )
                .await
                .unwrap_or_else(|e| panic!("{l:?} {case}: a healthy command failed: {e}"));
                assert_eq!(out.stdout, format!("healthy {i}\n").as_bytes());
                assert!(t.elapsed() < Duration::from_secs(1), "{l:?} {case}");
            }
            let r = bounded("the stuck command", stuck).await.unwrap();
            assert!(
                matches!(r, Err(CommandError::TimedOut { .. })),
                "{l:?} {case}: {r:?}"
            );
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(3) + Duration::from_secs(3),
                "{l:?} {case}: returned after {took:?}"
            );
            // Aborted, the stuck spawn returns (ENOTCONN) and nothing of it is left running.
            hung.abort();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again = bounded(
                "a command after the abort",
                h.run(HostCommand::new("true").timeout(Duration::from_secs(5))),
            )
            .await;
            assert!(again.is_ok(), "{l:?} {case}: {again:?}");
            assert_no_child_in(Path::new(&dir), &format!("{l:?} {case}"));
        }
    }
}

/// No process of this test is left whose working directory or executable is under `dir`
/// (as the sandbox sees it: the paths are the same strings).
fn assert_no_child_in(dir: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
                cwd.is_some_and(|c| c.starts_with(dir))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: left running in {dir:?}: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
