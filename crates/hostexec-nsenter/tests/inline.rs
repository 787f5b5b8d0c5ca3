//! No hop where none is needed: a `stat` the kernel answers from its caches on a local file
//! system runs on the caller's thread (no pool worker is ever started for it), and calls that
//! would have to ask a file system (here a hung FUSE mount) still go to the pool and end at
//! their deadline.
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
        "a local stat hopped to the pool"
    );
    // Into the hung mount: a resolve always hops (the walk), and ends on time.
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        ns.resolve(&s.join("hung/x"), Resolve::MustExist),
    )
    .await
    .expect("a resolve into a hung mount blocked the caller's thread");
    assert!(matches!(r, Err(PathError::TimedOut { .. })), "{r:?}");
    assert!(ns.fs_pool_stats().workers >= 1);
    // A stat of the FUSE mount's root is in the caches but not on a local type: it hops too
    // (and is refused at once, the mount being marked by now, or times out).
    let r = tokio::time::timeout(Duration::from_secs(5), ns.stat(&s.join("hung"), true))
        .await
        .expect("a stat of a hung mount blocked the caller's thread");
    assert!(r.as_ref().is_err_and(PathError::is_unresponsive), "{r:?}");
    drop(hung);
}
