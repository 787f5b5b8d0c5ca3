//! `NativeMount` for `NsEnter` against a real sandbox host, checked with util-linux findmnt
//! run inside that host, on both routes (the new mount API, and mount(2) with the new API
//! switched off).
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::ffi::OsStr;
use std::path::Path;

use hostexec_api::{
    Atime, MountAttrs, MountRequest, MountRoute, NativeMount, NativeMountError, TargetLookup,
    UnmountRequest,
};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// findmnt's `FSTYPE SOURCE VFS-OPTIONS FS-OPTIONS PROPAGATION` for a mount point in the
/// sandbox, or `None` if it is none.
fn findmnt(sb: &SandboxHost, target: &Path) -> Option<[String; 5]> {
    let last = sb.findmnt_top(target)?;
    let f: Vec<String> = last
        .split(' ')
        .map(|s| {
            String::from_utf8_lossy(&hostexec_testing::unescape_findmnt(s.as_bytes())).into_owned()
        })
        .collect();
    Some([
        f[0].clone(),
        f[1].clone(),
        f[2].clone(),
        f[3].clone(),
        f[4].clone(),
    ])
}

fn opts(field: &str) -> Vec<&str> {
    field.split(',').collect()
}

async fn exercise(test: &str, new_api: bool) {
    if skip_without_namespaces(test) {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::builder(sb.target())
        .new_mount_api(new_api)
        .build()
        .unwrap();
    let want_route = if new_api {
        MountRoute::NewApi
    } else {
        MountRoute::Mount2
    };
    let s = sb.scratch().to_path_buf();
    let t = s.join("t");
    sb.mkdir_all(&t).unwrap();

    // tmpfs with fs options and per-mount flags.
    let mut attrs = MountAttrs::new();
    attrs.read_only = Some(true);
    attrs.nosuid = Some(true);
    attrs.nodev = Some(true);
    attrs.atime = Some(Atime::Never);
    let req = MountRequest::filesystem("tmpfs", &t)
        .source("native-src")
        .option("size", Some("2m"))
        .option("mode", Some("0711"))
        .attrs(attrs);
    assert_eq!(ns.mount_native(&req).await.unwrap(), want_route);
    let [fstype, source, vfs, fs, _] = findmnt(&sb, &t).expect("mounted");
    assert_eq!(fstype, "tmpfs");
    assert_eq!(source, "native-src");
    for o in ["ro", "nosuid", "nodev", "noatime"] {
        assert!(opts(&vfs).contains(&o), "{o} in {vfs}");
    }
    assert!(opts(&fs).contains(&"size=2048k"), "{fs}");
    assert!(opts(&fs).contains(&"mode=711"), "{fs}");

    // A remount: read-write again, noexec; the kernel agrees.
    let mut rw = MountAttrs::new();
    rw.read_only = Some(false);
    rw.noexec = Some(true);
    // `rw` as a filesystem option too: the superblock was made read-only with the mount.
    ns.mount_native(
        &MountRequest::remount(&t)
            .option("rw", None::<&str>)
            .attrs(rw),
    )
    .await
    .unwrap();
    let [_, _, vfs, _, _] = findmnt(&sb, &t).unwrap();
    assert!(
        opts(&vfs).contains(&"rw") && opts(&vfs).contains(&"noexec"),
        "{vfs}"
    );

    // A bad option: the kernel's own message is in the error (new API only).
    let bad = MountRequest::filesystem("tmpfs", s.join("t")).option("size", Some("lots"));
    let e = ns.mount_native(&bad).await.unwrap_err();
    assert!(matches!(e, NativeMountError::Kernel { .. }), "{e:?}");
    if new_api {
        assert!(e.to_string().contains("size"), "{e}");
    }

    // Bind of a directory on the tmpfs, read-only; the source's nosuid is kept by the clone.
    let src = t.join("src");
    let b = s.join("b");
    sb.mkdir_all(&b).unwrap();
    ns.mount_native(&MountRequest::remount(&t).attrs(MountAttrs::new()))
        .await
        .unwrap();
    std::fs::create_dir(sb.local(&src)).unwrap();
    let mut ro = MountAttrs::new();
    ro.read_only = Some(true);
    assert_eq!(
        ns.mount_native(&MountRequest::bind(&src, &b, false).attrs(ro))
            .await
            .unwrap(),
        want_route
    );
    let [fstype, _, vfs, _, _] = findmnt(&sb, &b).expect("bound");
    assert_eq!(fstype, "tmpfs");
    assert!(opts(&vfs).contains(&"ro"), "{vfs}");
    if new_api {
        assert!(opts(&vfs).contains(&"nosuid"), "{vfs}");
    }

    // Unmount through the descriptor; twice is NotMounted; a plain directory is NotMounted.
    ns.unmount_native(&UnmountRequest::new(&b)).await.unwrap();
    assert!(findmnt(&sb, &b).is_none());
    assert!(matches!(
        ns.unmount_native(&UnmountRequest::new(&b)).await,
        Err(NativeMountError::NotMounted { .. })
    ));

    // A final symlink is refused for target, bind source and unmount, naming the link.
    let link = s.join("link");
    sb.symlink(t.as_os_str(), &link).unwrap();
    for r in [
        ns.mount_native(&MountRequest::filesystem("tmpfs", &link))
            .await
            .map(|_| ()),
        ns.mount_native(&MountRequest::bind(&link, &b, false))
            .await
            .map(|_| ()),
        ns.unmount_native(&UnmountRequest::new(&link))
            .await
            .map(|_| ()),
    ] {
        match r {
            Err(NativeMountError::Symlink { path, points_to }) => {
                assert_eq!(path, link);
                assert_eq!(points_to, t);
            }
            other => panic!("{other:?}"),
        }
    }
    // The table did not change: t is still the one tmpfs, nothing on b.
    assert!(findmnt(&sb, &b).is_none());
    // Opted in: followed.
    ns.unmount_native(&UnmountRequest::new(&link).lookup(TargetLookup::FollowFinalSymlink))
        .await
        .unwrap();
    assert!(findmnt(&sb, &t).is_none());

    // Beneath a trusted base: a symlink anywhere below it is refused.
    let deep = s.join("base/pods/x");
    sb.mkdir_all(&deep).unwrap();
    sb.symlink(OsStr::new("pods"), &s.join("base/plink"))
        .unwrap();
    let base = TargetLookup::Beneath(s.join("base"));
    let e = ns
        .mount_native(
            &MountRequest::filesystem("tmpfs", s.join("base/plink/x")).lookup(base.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, NativeMountError::NotBeneath { .. }), "{e:?}");
    ns.mount_native(&MountRequest::filesystem("tmpfs", &deep).lookup(base.clone()))
        .await
        .unwrap();
    assert_eq!(findmnt(&sb, &deep).unwrap()[0], "tmpfs");
    ns.unmount_native(&UnmountRequest::new(&deep).lookup(base))
        .await
        .unwrap();
    assert!(findmnt(&sb, &deep).is_none());
}

#[tokio::test]
async fn native_mounts_through_the_new_api_match_findmnt() {
    exercise("native_mounts_through_the_new_api_match_findmnt", true).await;
}

#[tokio::test]
async fn native_mounts_through_mount2_match_findmnt() {
    exercise("native_mounts_through_mount2_match_findmnt", false).await;
}

/// A descriptor of the mount held elsewhere for a short while — what a child between
/// `clone` and `exec` does with a copy of the descriptor table — does not fail the unmount;
/// one held for good is `EBUSY` once the retry window is over, and the mount stays.
#[tokio::test]
async fn unmount_waits_out_a_transient_holder_and_reports_a_lasting_one() {
    if skip_without_namespaces("unmount_waits_out_a_transient_holder_and_reports_a_lasting_one") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::builder(sb.target()).build().unwrap();
    let t = sb.scratch().join("busy");
    sb.mkdir_all(&t).unwrap();
    let hold = |ms: u64| {
        let fd = rustix::fs::open(
            sb.local(&t),
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(ms));
            drop(fd);
        })
    };

    ns.mount_native(&MountRequest::filesystem("tmpfs", &t))
        .await
        .unwrap();
    let holder = hold(50);
    ns.unmount_native(&UnmountRequest::new(&t)).await.unwrap();
    assert!(findmnt(&sb, &t).is_none());
    holder.join().unwrap();

    ns.mount_native(&MountRequest::filesystem("tmpfs", &t))
        .await
        .unwrap();
    let holder = hold(3000);
    let start = std::time::Instant::now();
    let e = ns
        .unmount_native(&UnmountRequest::new(&t))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, NativeMountError::Kernel { call: "umount2", source, .. }
            if source.raw_os_error() == Some(16)),
        "{e:?}"
    );
    let waited = start.elapsed();
    assert!(
        waited >= hostexec_nsenter::BUSY_RETRY / 2
            && waited < std::time::Duration::from_millis(2900),
        "{waited:?}"
    );
    assert!(findmnt(&sb, &t).is_some(), "a busy mount stays");
    holder.join().unwrap();
    ns.unmount_native(&UnmountRequest::new(&t)).await.unwrap();
}
