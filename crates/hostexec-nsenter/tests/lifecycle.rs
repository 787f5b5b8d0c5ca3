//! The host thread's life: one per `NsEnter`, shared by clones, gone with the last clone.
//! (A test binary of its own: it counts this process's threads.)

use std::time::{Duration, Instant};

use hostexec_api::{Executor, HostCommand};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn host_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.trim() == "hostexec-host")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_thread_ends_with_the_last_clone() {
    if skip_without_namespaces("the_host_thread_ends_with_the_last_clone") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    assert_eq!(host_threads(), 0);
    let a = NsEnter::new(sb.target()).unwrap();
    let b = a.clone();
    assert_eq!(host_threads(), 1);
    // The host thread is in the target's mount namespace; the caller's threads are not.
    let mnt = |tid: &str| std::fs::read_link(format!("/proc/self/task/{tid}/ns/mnt")).unwrap();
    let theirs = std::fs::read_link(format!("/proc/{}/ns/mnt", sb.pid())).unwrap();
    let mut in_target = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let tid = t.file_name().into_string().unwrap();
        if mnt(&tid) == theirs {
            in_target += 1;
        }
    }
    assert_eq!(in_target, 1, "exactly one thread (the host thread) joined");
    drop(a);
    assert!(b.run(HostCommand::new("true")).await.unwrap().success());
    assert_eq!(host_threads(), 1);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while host_threads() != 0 {
        assert!(
            Instant::now() < deadline,
            "the host thread outlived its last handle"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
