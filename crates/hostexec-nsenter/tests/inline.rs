//! No hop where none is needed: a `stat` or a `resolve` (MustExist) the kernel answers from
//! its caches on a local file system runs on the caller's thread (no pool worker is ever
//! started for it), and calls that would have to ask a file system (here a hung FUSE mount)
//! still go to the pool and end at their deadline, never blocking the caller's thread (a
//! single-threaded runtime, watched by a thread that fails the test if it hangs).
//!
//! Each test runs with both ways of learning a mount's type: by unique mount ID and
//! `statmount(2)` (the default where the kernel has them), and by the mount table
//! (`NsEnterBuilder::statmount(false)`, as on a kernel without `statmount`).
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::path::Path;
use std::time::Duration;

use hostexec_api::{Executor, FileKind, HostCommand, HostFs, PathError, PathResolver, Resolve};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// Both type lookups: `statmount(2)` by unique ID, and the mount table.
const LOOKUPS: [bool; 2] = [true, false];

/// The sandbox's `NsEnter` with file calls ending at `deadline`, learning mount types with
/// `statmount(2)` or from the table.
fn host(sb: &SandboxHost, deadline: Duration, statmount: bool) -> NsEnter {
    NsEnter::builder(sb.target())
        .fs_timeout(deadline)
        .statmount(statmount)
        .build()
        .unwrap()
}

/// Fails the test (the whole process) if `done` is not set within 30 s: a call that blocked
/// the only runtime thread would otherwise hang the test, since no timeout could fire.
fn watchdog(what: &'static str) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = std::sync::Arc::clone(&done);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(30));
        if !watch.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!("{what}: a call into a hung mount blocked the caller's thread for 30 s");
            std::process::exit(101);
        }
    });
    done
}

#[tokio::test(flavor = "current_thread")]
async fn local_stats_run_inline_and_hung_calls_still_hop() {
    if skip_without_namespaces("local_stats_run_inline_and_hung_calls_still_hop") {
        return;
    }
    for statmount in LOOKUPS {
        inline_and_hung(statmount).await;
    }
}

async fn inline_and_hung(statmount: bool) {
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    sb.mkdir_all(&s.join("real/dir")).unwrap();
    sb.symlink("real/dir", &s.join("rel")).unwrap();
    sb.symlink(s.join("rel"), &s.join("abs")).unwrap();
    sb.mkdir_all(&s.join("hung")).unwrap();
    let hung = sb.hung_fuse_mount(&s.join("hung")).unwrap();
    let deadline = Duration::from_millis(200);
    let ns = host(&sb, deadline, statmount);
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
        "a local stat or resolve hopped to the pool (statmount {statmount})"
    );
    // If a call below blocked this (the only runtime) thread, no timeout could fire: a
    // watchdog thread fails the test instead of letting it hang.
    let done = watchdog("local_stats_run_inline_and_hung_calls_still_hop");
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

/// A mount's type is remembered by the mount, not by the place: a tmpfs at a directory is
/// answered inline; once it is unmounted and a hung FUSE file system is mounted at the same
/// directory (with the table lookup, often under the same, reused, mountinfo ID), a `stat`
/// there is judged by the FUSE mount's own type: it hops and ends at its deadline, never
/// blocking the caller's thread. A `stat` inside the tmpfs's old place answered from the
/// old type would have hung this thread in the FUSE mount's `getattr`.
#[tokio::test(flavor = "current_thread")]
async fn a_new_mount_at_a_reused_place_is_judged_by_its_own_type() {
    if skip_without_namespaces("a_new_mount_at_a_reused_place_is_judged_by_its_own_type") {
        return;
    }
    let done = watchdog("a_new_mount_at_a_reused_place_is_judged_by_its_own_type");
    for statmount in LOOKUPS {
        reused_place(statmount).await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
}

async fn reused_place(statmount: bool) {
    let sb = SandboxHost::start().unwrap();
    let place = sb.scratch().join("place");
    sb.mkdir_all(&place).unwrap();
    let deadline = Duration::from_millis(200);
    let ns = host(&sb, deadline, statmount);
    sb.mount_tmpfs(&place, "size=1m").unwrap();
    // Warm the caches through the walk, then stat inline: a local mount, no hop.
    let walked = ns.root_fs().stat(&place, true).unwrap();
    let st = ns.stat(&place, true).await.unwrap();
    assert_eq!(st.mount_root, Some(true));
    assert_eq!(st.mount_id, walked.mount_id, "statmount {statmount}");
    assert_eq!(ns.fs_pool_stats().workers, 0, "statmount {statmount}");
    let tmpfs_id = st.mount_id.expect("a mount ID");
    let out = ns
        .run(HostCommand::new("umount").arg(&place))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let hung = sb.hung_fuse_mount(&place).unwrap();
    let fuse_id = mount_id_at(&ns, &place).await;
    eprintln!(
        "statmount {statmount}: tmpfs mount ID {tmpfs_id}, FUSE mount ID {fuse_id} ({})",
        if fuse_id == tmpfs_id {
            "reused"
        } else {
            "not reused this time"
        }
    );
    // The mount's root is in the caches (the mount just put it there), on a FUSE mount:
    // the stat hops, and the pool's stat asks FUSE, which never answers.
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), ns.stat(&place, true))
        .await
        .expect("a stat of the new FUSE mount blocked the caller's thread");
    assert!(
        matches!(
            r,
            Err(PathError::TimedOut { .. } | PathError::Unresponsive { .. })
        ),
        "statmount {statmount}: {r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(ns.fs_pool_stats().workers >= 1, "it hopped");
    drop(hung);
}

/// The mountinfo ID of the topmost mount at `point`, from the target's table.
async fn mount_id_at(ns: &NsEnter, point: &Path) -> u64 {
    let table = ns.read_mountinfo().await.unwrap();
    let want = point.as_os_str().as_encoded_bytes();
    table
        .split(|&b| b == b'\n')
        .rev()
        .filter_map(|l| {
            let f: Vec<&[u8]> = l.split(|&b| b == b' ').collect();
            (f.get(4) == Some(&want)).then(|| std::str::from_utf8(f[0]).ok()?.parse().ok())?
        })
        .next()
        .expect("the mount is in the table")
}
