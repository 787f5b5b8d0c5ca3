//! No descriptor of this process reaches a host command, also one it holds *without*
//! `FD_CLOEXEC` (as a job runner's pipes are): for both launchers. A test binary of its own:
//! it makes an inheritable descriptor on purpose, which every child of this process would get.

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use hostexec_api::{CommandError, Executor, HostCommand};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};
use rustix::io::FdFlags;

fn fds_of(stdout: &[u8]) -> BTreeSet<i32> {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// A pipe end with `FD_CLOEXEC` cleared.
fn inheritable_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    rustix::io::fcntl_setfd(&w, FdFlags::empty()).unwrap();
    assert!(!rustix::io::fcntl_getfd(&w)
        .unwrap()
        .contains(FdFlags::CLOEXEC));
    (r, w)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inheritable_descriptor_of_the_caller_does_not_reach_the_command() {
    if skip_without_namespaces("an_inheritable_descriptor_of_the_caller_does_not_reach_the_command")
    {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let (_r, leaky) = inheritable_pipe();
    let n = leaky.as_raw_fd();
    // It is inheritable: a plain child of this process gets it.
    let plain = std::process::Command::new("ls")
        .arg("/proc/self/fd")
        .output()
        .unwrap();
    assert!(fds_of(&plain.stdout).contains(&n), "{plain:?}");
    for l in [Launcher::HostThread, Launcher::NsenterBinary] {
        let h = NsEnter::builder(sb.target()).launcher(l).build().unwrap();
        let out = h
            .run(HostCommand::new("ls").arg("/proc/self/fd"))
            .await
            .unwrap()
            .check()
            .unwrap();
        let fds = fds_of(&out.stdout);
        assert!(
            !fds.contains(&n),
            "{l:?}: fd {n} reached the command: {fds:?}"
        );
        // 0, 1, 2 and ls's own directory descriptor.
        assert!(
            fds.len() <= 4 && fds.iter().all(|&fd| fd <= 3),
            "{l:?}: {fds:?}"
        );
        // The command still runs in the target's mount namespace (the fork path keeps the
        // host thread's namespaces) ...
        let mnt = h
            .run(HostCommand::new("readlink").arg("/proc/self/ns/mnt"))
            .await
            .unwrap();
        let theirs = std::fs::read_link(format!("/proc/{}/ns/mnt", sb.pid())).unwrap();
        assert_eq!(mnt.stdout_text().trim(), theirs.to_str().unwrap(), "{l:?}");
        // ... and a failed execve is still reported as such (std's error pipe survives).
        match h
            .run(HostCommand::new(sb.scratch().join("no-such-program")))
            .await
        {
            Err(CommandError::NotFound { .. }) => {}
            other => panic!("{l:?}: {other:?}"),
        }
        // Its working directory too.
        let dir = sb.scratch().join("wd");
        sb.mkdir_all(&dir).unwrap();
        let pwd = h
            .run(HostCommand::new("pwd").current_dir(&dir))
            .await
            .unwrap()
            .check()
            .unwrap();
        assert_eq!(pwd.stdout_text().trim(), dir.to_str().unwrap(), "{l:?}");
    }
    // The caller's own descriptor is untouched: still open and still inheritable.
    assert!(!rustix::io::fcntl_getfd(&leaky)
        .unwrap()
        .contains(FdFlags::CLOEXEC));
}
