//! No process a command started survives a timeout or a drop, whatever it did to escape
//! (`setsid`, a double fork, a new process group, a setsid'ed daemon): for both launchers,
//! with the `/proc` walk under a child subreaper (this machine's cgroup v1 layout has no
//! cgroup2 hierarchy) and with a cgroup2 group per command (a cgroup2 hierarchy mounted in the
//! sandbox host). A test binary of its own, one test: the walk attributes a daemon that left
//! every group and session by when it started, so no other command of this process may run
//! meanwhile.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use hostexec_api::conformance;
use hostexec_api::{Executor, HostCommand};
use hostexec_nsenter::{Containment, Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const LAUNCHERS: [Launcher; 2] = [Launcher::HostThread, Launcher::NsenterBinary];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escapers_are_gone_after_timeout_and_drop_with_either_containment() {
    if skip_without_namespaces("escapers_are_gone_after_timeout_and_drop") {
        return;
    }
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let h = NsEnter::builder(sb.target())
            .launcher(l)
            .containment(Containment::Walk)
            .build()
            .unwrap();
        conformance::escapers_do_not_survive(&h).await;
        conformance::drop_terms_then_kills(&h).await;
    }

    // The cgroup2 level: a cgroup2 hierarchy mounted in the sandbox host, reached by this
    // process through /proc/PID/root.
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let dir = sb.scratch().join("cgroup2");
        sb.mkdir_all(&dir).unwrap();
        let out = sb.oracle(&[
            OsStr::new("mount"),
            OsStr::new("-t"),
            OsStr::new("cgroup2"),
            OsStr::new("none"),
            dir.as_os_str(),
        ]);
        assert!(out.status.success(), "mount cgroup2: {out:?}");
        let local = sb.local(&dir);
        // The root group has no cgroup.kill; a child group has (Linux >= 5.14).
        assert!(
            local.join("cgroup.procs").exists(),
            "no cgroup2 at {local:?}"
        );
        let h = NsEnter::builder(sb.target())
            .launcher(l)
            .containment(Containment::Cgroup(local.clone()))
            .build()
            .unwrap();
        // The command runs in a group of its own under the directory (moved there right
        // after its exec: asked a moment later) ...
        let out = h
            .run(HostCommand::new("sh").args(["-c", "sleep 0.2; cat /proc/self/cgroup"]))
            .await
            .unwrap();
        let text = out.stdout_text();
        assert!(
            text.lines()
                .any(|l| l.starts_with("0::/hostexec-") || l.contains("::/hostexec-")),
            "{l:?}: not in a hostexec group: {text}"
        );
        conformance::escapers_do_not_survive(&h).await;
        conformance::drop_terms_then_kills(&h).await;
        // ... and its groups are removed once empty.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left: Vec<_> = std::fs::read_dir(&local)
                .unwrap()
                .flatten()
                .filter(|e| {
                    // The cgroup2 hierarchy is the machine's: only this process's groups.
                    let mine = format!("hostexec-{}-", std::process::id());
                    e.file_name().to_string_lossy().starts_with(&mine)
                })
                .map(|e| e.file_name())
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "{l:?}: groups left: {left:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
