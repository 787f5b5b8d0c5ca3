//! No hop where none is needed: a `stat` or a `resolve` (MustExist) the kernel answers from
//! its caches on a local file system runs on the caller's thread (no pool worker is ever
//! started for it), and calls that would have to ask a file system (here a hung FUSE mount)
//! still go to the pool and end at their deadline, never blocking the caller's thread (a
//! single-threaded runtime, watched by a thread that fails the test if it hangs).
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::time::Duration;

use hostexec_api::{FileKind, HostFs, PathError, PathResolver, Resolve};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

#[tokio::test(flavor = "current_thread")]
async fn local_stats_run_inline_and_hung_calls_still_hop() {
    if skip_without_namespaces("local_stats_run_inline_and_hung_calls_still_hop") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    sb.mkdir_all(&s.join("real/dir")).unwrap();
    sb.symlink("real/dir", &s.join("rel")).unwrap();
    sb.symlink(s.join("rel"), &s.join("abs")).unwrap();
    sb.mkdir_all(&s.join("hung")).unwrap();
    let hung = sb.hung_fuse_mount(&s.join("hung")).unwrap();
    let deadline = Duration::from_millis(200);
    let ns = NsEnter::builder(sb.target())
        .fs_timeout(deadline)
        .build()
        .unwrap();
    // Warm the dentry cache through the walk (blocking, on this thread), then resolve.
    ns.root_fs()
        .resolve_by_walk(&s.join("abs"), Resolve::MustExist)
        .unwrap();
    for _ in 0..50 {
        // resolve on a local (tmpfs) mount, the same answer as the walk's.
        let r = ns
            .resolve(&s.join("abs"), Resolve::MustExist)
            .await
            .unwrap();
        assert_eq!(r, s.join("real/dir"));
        // stat on a local (tmpfs) mount, the same answer as the walk's.
        let st = ns.stat(&s.join("abs"), true).await.unwrap();
        let walked = ns.root_fs().stat(&s.join("abs"), true).unwrap();
        assert_eq!(
            (st.ino, st.kind, st.mount_id),
            (walked.ino, walked.kind, walked.mount_id)
        );
        let link = ns.stat(&s.join("abs"), false).await.unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
    }
    assert_eq!(
        ns.fs_pool_stats().workers,
        0,
        "a local stat or resolve hopped to the pool"
    );
    // If a call below blocked this (the only runtime) thread, no timeout could fire: a
    // watchdog thread fails the test instead of letting it hang.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = std::sync::Arc::clone(&done);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        if !watch.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("a call into a hung mount blocked the caller's thread for 30 s");
            std::process::exit(101);
        }
    });
    // The mount's root itself is in the caches, but on a FUSE mount: it hops, and answers
    // (opening a mount root O_PATH asks nothing of its file system).
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        ns.resolve(&s.join("hung"), Resolve::MustExist),
    )
    .await
    .expect("a resolve of a hung mount's root blocked the caller's thread");
    assert_eq!(r.unwrap(), s.join("hung"));
    // Into the hung mount: a name there is not cached, so the resolve hops, and ends on time.
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        ns.resolve(&s.join("hung/x"), Resolve::MustExist),
    )
    .await
    .expect("a resolve into a hung mount blocked the caller's thread");
    assert!(matches!(r, Err(PathError::TimedOut { .. })), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the deadline is {deadline:?}"
    );
    assert!(ns.fs_pool_stats().workers >= 1);
    // A stat of the FUSE mount's root is in the caches but not on a local type: it hops too
    // (and is refused at once, the mount being marked by now, or times out).
    let r = tokio::time::timeout(Duration::from_secs(5), ns.stat(&s.join("hung"), true))
        .await
        .expect("a stat of a hung mount blocked the caller's thread");
    assert!(r.as_ref().is_err_and(PathError::is_unresponsive), "{r:?}");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(hung);
}
