//! A hung mount (a FUSE file system whose daemon never answers, standing for a dead NFS
//! server) in a sandbox host: abandoned calls into it never starve calls on healthy mounts,
//! the mount is marked unresponsive and later calls into it fail at once, the health check
//! answers "hung" fast, and the mark is cleared when the mount answers again (the connection
//! aborted: ENOTCONN).
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::time::{Duration, Instant};

use hostexec_api::{HostFs, PathError, PathResolver, Resolve};
use hostexec_mount::{check_mount_health, HostMounter, Mount, MountHealth};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// Generous bound for "returned promptly" on 2 loaded cores: a hung call never returns at all.
const PROMPT: Duration = Duration::from_secs(5);

async fn prompt<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    let t = Instant::now();
    match tokio::time::timeout(PROMPT, f).await {
        Ok(r) => r,
        Err(_) => panic!("{what} did not return within {PROMPT:?} (started {t:?})"),
    }
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_calls_into_a_hung_mount_never_starve_healthy_ones() {
    if skip_without_namespaces("abandoned_calls_into_a_hung_mount_never_starve_healthy_ones") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let base = sb.scratch().to_path_buf();
    let hung_dir = base.join("hung");
    sb.mkdir_all(&hung_dir).unwrap();
    sb.mkdir_all(&base.join("ok/sub")).unwrap();
    sb.write_file(&base.join("ok/sub/f"), b"data").unwrap();
    sb.symlink("ok/sub", &base.join("link")).unwrap();
    sb.symlink("hung/deep", &base.join("into-hung")).unwrap();
    let mut hung = sb.hung_fuse_mount(&hung_dir).unwrap();

    let deadline = Duration::from_millis(300);
    let ns = NsEnter::builder(sb.target())
        .fs_timeout(deadline)
        .build()
        .unwrap();
    let mounter = HostMounter::new(ns.clone());

    // 100 calls into the hung mount, each abandoned by its caller's own short timeout (as
    // the old docs advised), several per name so that some wait in state D.
    let mut callers = Vec::new();
    for i in 0..100 {
        let ns = ns.clone();
        let p = hung_dir.join(format!("x{}", i % 10));
        callers.push(tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_millis(50), async {
                match i % 3 {
                    0 => ns.resolve(&p, Resolve::MustExist).await.map(drop),
                    1 => ns.stat(&p, true).await.map(drop),
                    _ => ns.read_file(&p, 16).await.map(drop),
                }
            })
            .await;
            // Abandoned (timed out), or refused at once once the mount was marked.
            r.ok()
        }));
    }
    for c in callers {
        if let Some(r) = c.await.unwrap() {
            assert!(
                matches!(&r, Err(PathError::Unresponsive { mount, .. } | PathError::TimedOut { path: mount, .. }) if mount.starts_with(&hung_dir)),
                "{r:?}"
            );
        }
    }
    assert!(hung.is_hung());
    // Let the deadlines of the abandoned calls pass.
    tokio::time::sleep(deadline + Duration::from_millis(100)).await;

    // Healthy calls return promptly, with the right answers (the kernel's view, through
    // the sandbox oracle: realpath and mountpoint run inside the host).
    for _ in 0..3 {
        let r = prompt(
            "resolve",
            ns.resolve(&base.join("link/f"), Resolve::MustExist),
        )
        .await;
        assert_eq!(r.unwrap(), base.join("ok/sub/f"));
        let st = prompt("stat", ns.stat(&base.join("ok/sub/f"), true)).await;
        assert_eq!(st.unwrap().size, 4);
        let mp = prompt("is_mount_point", mounter.is_mount_point(&base)).await;
        assert!(mp.unwrap(), "the sandbox scratch dir is a tmpfs mount");
        let mp = prompt("is_mount_point", mounter.is_mount_point(&base.join("ok"))).await;
        assert!(!mp.unwrap());
    }
    let stats = ns.fs_pool_stats();
    assert!(stats.stuck >= 1, "{stats:?}");

    // The mount is marked; a call into it (also through a link) fails at once, naming it.
    wait_for("the mark", PROMPT, || {
        ns.unresponsive_mounts() == vec![hung_dir.clone()]
    })
    .await;
    for p in [hung_dir.join("new"), base.join("into-hung/z")] {
        let t = Instant::now();
        let r = prompt("a call into the marked mount", ns.stat(&p, true)).await;
        assert!(
            matches!(&r, Err(PathError::Unresponsive { path, mount }) if path == &p && mount == &hung_dir),
            "{r:?}"
        );
        assert!(
            t.elapsed() < deadline,
            "refused only after {:?}",
            t.elapsed()
        );
    }
    // The health check says hung, at once, naming the mount; a healthy mount is healthy.
    let h = prompt(
        "health",
        check_mount_health(&ns, &hung_dir, Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(
        matches!(&h, MountHealth::Hung { mount: Some(m) } if m == &hung_dir),
        "{h:?}"
    );
    let h = prompt(
        "health",
        check_mount_health(&ns, &base, Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(h.is_healthy(), "{h:?}");

    // The mount answers again (connection aborted: ENOTCONN): the probe clears the mark,
    // the stuck workers come back, and calls into it get the mount's own answer.
    hung.abort();
    wait_for("the mark to clear", Duration::from_secs(10), || {
        ns.unresponsive_mounts().is_empty()
    })
    .await;
    let r = prompt(
        "a call into the aborted mount",
        ns.stat(&hung_dir.join("y"), true),
    )
    .await;
    assert_eq!(r.unwrap_err().raw_os_error(), Some(107), "ENOTCONN");
    let h = prompt(
        "health",
        check_mount_health(&ns, &hung_dir.join("y"), Duration::from_secs(1)),
    )
    .await
    .unwrap();
    assert!(matches!(h, MountHealth::Corrupted(_)), "{h:?}");
    wait_for(
        "the stuck workers to return",
        Duration::from_secs(10),
        || ns.fs_pool_stats().stuck == 0,
    )
    .await;
    drop(hung);
}

/// A resolve through a link into the hung mount overruns, the mount is marked, and later
/// resolves into it fail at once, while resolves elsewhere go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resolve_through_a_link_into_a_hung_mount_marks_it() {
    if skip_without_namespaces("a_resolve_through_a_link_into_a_hung_mount_marks_it") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let base = sb.scratch().to_path_buf();
    let hung_dir = base.join("hung");
    sb.mkdir_all(&hung_dir).unwrap();
    sb.mkdir_all(&base.join("ok")).unwrap();
    sb.symlink("hung/a/b", &base.join("via")).unwrap();
    let mut hung = sb.hung_fuse_mount(&hung_dir).unwrap();
    let deadline = Duration::from_millis(200);
    let ns = NsEnter::builder(sb.target())
        .fs_timeout(deadline)
        .build()
        .unwrap();
    // Healthy first.
    assert_eq!(
        prompt("resolve", ns.resolve(&base.join("ok"), Resolve::MustExist))
            .await
            .unwrap(),
        base.join("ok")
    );
    let r = prompt(
        "resolve",
        ns.resolve(&base.join("via/c"), Resolve::MustExist),
    )
    .await;
    assert!(
        matches!(&r, Err(PathError::TimedOut { timeout, .. }) if *timeout == deadline),
        "{r:?}"
    );
    wait_for("the mark", PROMPT, || {
        ns.unresponsive_mounts() == vec![hung_dir.clone()]
    })
    .await;
    let r = prompt(
        "resolve",
        ns.resolve(&base.join("via/d"), Resolve::MustExist),
    )
    .await;
    assert!(
        matches!(&r, Err(PathError::Unresponsive { mount, .. }) if mount == &hung_dir),
        "{r:?}"
    );
    // While a mount is marked, resolves elsewhere go on.
    assert_eq!(
        prompt(
            "resolve",
            ns.resolve(&base.join("ok/."), Resolve::MustExist)
        )
        .await
        .unwrap(),
        base.join("ok")
    );
    hung.abort();
    wait_for("the mark to clear", Duration::from_secs(10), || {
        ns.unresponsive_mounts().is_empty()
    })
    .await;
}
