//! HostMounter against hostexec-fake's FakeExecutor (scripted, recording) and the api's
//! MockHostFs: the argv of plain, bind and bind-remount mounts, the systemd scope, how mount(8)
//! and umount(8) failures map to errors, masking, and the is_mount_point decision order.

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use hostexec_api::{
    CommandError, ExitStatus, FileKind, FileStat, HostCommand, MockHostFs, MountRoute,
    NativeMountError, PathError,
};
use hostexec_fake::FakeExecutor;
use hostexec_mount::format::{format_and_mount, DiskFormat, FormatAndMount, FormatError};
use hostexec_mount::{
    HostMounter, MockMount, Mount, MountError, MountExt, MountOptions, UnmountOptions, MASKED,
};

const TABLE: &str = "\
1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
20 1 0:40 / /srv/data rw,nosuid,nodev,relatime shared:2 - tmpfs tmpfs rw,size=1024k
21 1 0:41 / /srv/ro ro,relatime - tmpfs tmpfs rw
";

/// A host view whose paths resolve to themselves (directories, no symlinks), whose table is
/// TABLE, that has no `/sbin/mount.TYPE` helpers, and whose native mounting is unavailable
/// (an old kernel, a seccomp filter): every mount falls back to mount(8), whose argv these
/// tests check.
fn host() -> MockHostFs {
    let mut fs = MockHostFs::new();
    fs.expect_resolve().returning(|p, _| Ok(p.to_path_buf()));
    fs.expect_read_mountinfo()
        .returning(|| Ok(TABLE.as_bytes().to_vec()));
    fs.expect_stat().returning(|p, _| {
        if p.starts_with("/sbin") || p.starts_with("/usr/sbin") {
            Err(PathError::NotFound { path: p.into() })
        } else {
            Ok(stat(FileKind::Dir, Some(false), Some(3), (0, 1)))
        }
    });
    let unsupported = || NativeMountError::Unsupported {
        route: MountRoute::NewApi,
        reason: "fsopen: ENOSYS".into(),
        source: Some(std::io::Error::from_raw_os_error(38)),
    };
    fs.expect_mount_native()
        .returning(move |_| Err(unsupported()));
    fs.expect_unmount_native()
        .returning(move |_| Err(unsupported()));
    fs
}

fn args(cmd: &HostCommand) -> Vec<String> {
    cmd.get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[tokio::test]
async fn plain_mount_argv() {
    let exec = FakeExecutor::new();
    exec.expect("mount").args([
        "-t",
        "tmpfs",
        "-o",
        "size=1m,mode=700",
        "--",
        "tmpfs",
        "/mnt/x",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        OsStr::new("tmpfs"),
        Path::new("/mnt/x"),
        "tmpfs",
        &MountOptions::new().options(["size=1m", "mode=700"]),
    )
    .await
    .unwrap();
    exec.verify().unwrap();
    let call = &exec.calls()[0];
    assert_eq!(
        call.get_env().get("LC_ALL").and_then(|v| v.value()),
        Some(OsStr::new("C")),
        "English messages, so 'not mounted' can be recognised"
    );
    assert!(call.get_timeout().is_some(), "every mount is bounded");
}

#[tokio::test]
async fn argv_leaves_out_empty_parts() {
    // As mount-utils' MakeMountArgs: no -t without a type, no -o without options, no empty source.
    let exec = FakeExecutor::ordered();
    exec.expect("mount").args(["--", "/src", "/dst"]);
    exec.expect("mount")
        .args(["-o", "remount,ro", "--", "/mnt/x"]);
    exec.expect("mount").args([
        "--no-canonicalize",
        "-t",
        "ext4",
        "--",
        "/dev/sdb",
        "/mnt/y",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    let none = MountOptions::new();
    m.mount("/src".as_ref(), Path::new("/dst"), "", &none)
        .await
        .unwrap();
    m.mount(
        "".as_ref(),
        Path::new("/mnt/x"),
        "",
        &MountOptions::new().options(["remount", "ro"]),
    )
    .await
    .unwrap();
    m.mount(
        "/dev/sdb".as_ref(),
        Path::new("/mnt/y"),
        "ext4",
        &MountOptions::new().flag("--no-canonicalize"),
    )
    .await
    .unwrap();
    exec.verify().unwrap();
}

#[tokio::test]
async fn bind_is_split_and_keeps_the_source_restrictions() {
    let exec = FakeExecutor::ordered();
    exec.expect("mount")
        .args(["-o", "bind", "--", "/srv/data/vol", "/mnt/b"]);
    // The source mount is nosuid,nodev,relatime: a bare `bind,remount,ro` would clear those.
    // The caller asked for ro, so ro is not repeated.
    exec.expect("mount").args([
        "-o",
        "bind,remount,ro,nodev,nosuid,relatime",
        "--",
        "/srv/data/vol",
        "/mnt/b",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "/srv/data/vol".as_ref(),
        Path::new("/mnt/b"),
        "",
        &MountOptions::new().options(["bind", "ro"]),
    )
    .await
    .unwrap();
    exec.verify().unwrap();

    // The source's ro is kept, _netdev goes on the first step too, an explicit atime choice
    // wins over the source's.
    let exec = FakeExecutor::ordered();
    exec.expect("mount")
        .args(["-o", "bind,_netdev", "--", "/srv/ro", "/mnt/c"]);
    exec.expect("mount").args([
        "-o",
        "bind,remount,_netdev,noatime,ro",
        "--",
        "/srv/ro",
        "/mnt/c",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "/srv/ro".as_ref(),
        Path::new("/mnt/c"),
        "",
        &MountOptions::new().options(["bind", "_netdev", "noatime"]),
    )
    .await
    .unwrap();
    exec.verify().unwrap();
}

#[tokio::test]
async fn systemd_scope_only_when_the_backend_says_it_works() {
    let exec = FakeExecutor::new()
        .with_systemd(true)
        .with_bin("/usr/bin/mount");
    exec.expect("systemd-run").args([
        "--description=hostexec transient mount for /mnt/t",
        "--scope",
        "--",
        "/usr/bin/mount",
        "-t",
        "nfs",
        "--",
        "srv:/x",
        "/mnt/t",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "srv:/x".as_ref(),
        Path::new("/mnt/t"),
        "nfs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    exec.verify().unwrap();

    // Asked not to: no scope even though systemd works.
    let exec = FakeExecutor::new().with_systemd(true);
    exec.expect("mount")
        .args(["-t", "nfs", "--", "srv:/x", "/mnt/t"]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "srv:/x".as_ref(),
        Path::new("/mnt/t"),
        "nfs",
        &MountOptions::new().without_systemd(),
    )
    .await
    .unwrap();
    exec.verify().unwrap();

    // The probe says no (systemd-run present but not working): plain mount.
    let exec = FakeExecutor::new()
        .with_systemd(false)
        .with_bin("/usr/bin/systemd-run");
    exec.expect("mount")
        .args(["-t", "nfs", "--", "srv:/x", "/mnt/t"]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "srv:/x".as_ref(),
        Path::new("/mnt/t"),
        "nfs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    exec.verify().unwrap();
}

#[tokio::test]
async fn a_source_that_looks_like_an_option_stays_a_source() {
    // `mount -t tmpfs -oremount,ro /mnt/x` is a remount: `--` ends mount(8)'s options, and
    // `--internal-only` keeps the source from a mount.TYPE helper, which mount(8) would give
    // it as argv[1] without any `--` (see HostMounter's mount_command docs).
    let exec = FakeExecutor::ordered();
    exec.expect("mount").args([
        "--internal-only",
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "--",
        "-oremount,ro",
        "/mnt/x",
    ]);
    // A source that does not start with '-' keeps the helpers (mount.nfs needs them).
    exec.expect("mount")
        .args(["-t", "nfs", "--", "srv:/-o", "/mnt/y"]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "-oremount,ro".as_ref(),
        Path::new("/mnt/x"),
        "tmpfs",
        &MountOptions::new().option("size=1m"),
    )
    .await
    .unwrap();
    m.mount(
        "srv:/-o".as_ref(),
        Path::new("/mnt/y"),
        "nfs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    exec.verify().unwrap();

    // Through the systemd scope: systemd-run stops at its own `--` (getopt "+..."), so the
    // second `--` reaches mount(8).
    let exec = FakeExecutor::new()
        .with_systemd(true)
        .with_bin("/usr/bin/mount");
    exec.expect("systemd-run").args([
        "--description=hostexec transient mount for /mnt/x",
        "--scope",
        "--",
        "/usr/bin/mount",
        "--internal-only",
        "-t",
        "tmpfs",
        "--",
        "-oremount,ro",
        "/mnt/x",
    ]);
    let m = HostMounter::with_parts(exec.clone(), host());
    m.mount(
        "-oremount,ro".as_ref(),
        Path::new("/mnt/x"),
        "tmpfs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    exec.verify().unwrap();
}

#[tokio::test]
async fn format_and_mount_refuses_a_relative_device_before_any_command() {
    // blkid, mkfs and fsck get the device as a positional argument: `-x` would be an option.
    let exec = FakeExecutor::new();
    let mounter = MockMount::new();
    let job = FormatAndMount::new("-oremount", "/mnt/x");
    let e = format_and_mount(&mounter, &exec, &job).await.unwrap_err();
    assert!(
        matches!(
            e,
            FormatError::Mount(MountError::Path(PathError::NotAbsolute { .. }))
        ),
        "{e:?}"
    );
    assert!(exec.calls().is_empty());
}

#[tokio::test]
async fn sensitive_options_reach_mount_only() {
    let exec = FakeExecutor::new()
        .with_systemd(true)
        .with_bin("/usr/bin/mount");
    exec.expect("systemd-run").returns_status(
        ExitStatus::Code(32),
        "mount error(13): Permission denied for password=hunter2 (hunter2)\n",
    );
    let m = HostMounter::with_parts(exec.clone(), host());
    let opts = MountOptions::new()
        .option("vers=3.0")
        .sensitive("password=hunter2");
    let err = m
        .mount("//srv/share".as_ref(), Path::new("/mnt/s"), "cifs", &opts)
        .await
        .unwrap_err();
    let call = &exec.calls()[0];
    // The real argv carries the secret...
    assert!(args(call).iter().any(|a| a == "vers=3.0,password=hunter2"));
    // ...nothing that shows the command or the error does.
    for shown in [
        format!("{call:?}"),
        call.to_string(),
        err.to_string(),
        format!("{err:?}"),
        format!("{opts:?}"),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(err.to_string().contains("vers=3.0,<masked>"), "{err}");
    match &err {
        MountError::MountFailed(f) => {
            assert_eq!(f.status, ExitStatus::Code(32));
            assert_eq!(
                &f.stderr,
                &format!("mount error(13): Permission denied for {MASKED} ({MASKED})")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn scrubbing_covers_comma_parts_short_values_and_a_cut_capture() {
    let exec = FakeExecutor::ordered();
    // A helper reporting option by option; a short user name next to ordinary words.
    exec.expect("mount").returns_status(
        ExitStatus::Code(32),
        "mount.x: refusing user=u: bad option password=Fir5t-half\nmount.x: bad option s3cond-half for u\n",
    );
    // Stderr cut at the capture limit in the middle of the secret.
    let mut cut = hostexec_api::Output::new("mount", ExitStatus::Code(32))
        .with_stderr(b"mount.x: xxxxxxxx password=Fir5t-half,s3c".to_vec());
    cut.stderr_truncated = true;
    exec.expect("mount").returns(cut);
    let m = HostMounter::with_parts(exec.clone(), host());
    let opts = MountOptions::new()
        .sensitive("user=u")
        .sensitive("password=Fir5t-half,s3cond-half")
        .without_systemd();
    let stderr = |e: MountError| match e {
        MountError::MountFailed(f) => f.stderr,
        other => panic!("{other:?}"),
    };
    let e = m
        .mount("srv:/x".as_ref(), Path::new("/mnt/s"), "x", &opts)
        .await
        .unwrap_err();
    assert_eq!(
        stderr(e),
        format!("mount.x: refusing {MASKED}: bad option {MASKED}\nmount.x: bad option {MASKED} for {MASKED}")
    );
    let e = m
        .mount("srv:/x".as_ref(), Path::new("/mnt/s"), "x", &opts)
        .await
        .unwrap_err();
    assert_eq!(stderr(e), format!("mount.x: xxxxxxxx {MASKED}"));
    exec.verify().unwrap();
}

#[tokio::test]
async fn mount_failures_map_to_typed_errors() {
    let exec = FakeExecutor::new();
    exec.expect("mount").returns_status(
        ExitStatus::Code(32),
        "mount: /mnt/x: special device /dev/nope does not exist.\n",
    );
    exec.expect("mount").fails_with(CommandError::NotFound {
        program: "mount".into(),
        searched: vec!["/bin".into()],
    });
    exec.expect("mount").after(Duration::from_secs(3600));
    let m = HostMounter::with_parts(exec.clone(), host());
    let o = MountOptions::new().timeout(Duration::from_millis(50));
    let e = m
        .mount("/dev/nope".as_ref(), Path::new("/mnt/x"), "ext4", &o)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MountError::MountFailed(f) if f.status == ExitStatus::Code(32)
            && f.stderr.ends_with("does not exist.") && f.target == Path::new("/mnt/x")),
        "{e:?}"
    );
    let e = m
        .mount("/dev/nope".as_ref(), Path::new("/mnt/x"), "ext4", &o)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            MountError::Command {
                op: "mount",
                source: CommandError::NotFound { .. },
                ..
            }
        ),
        "{e:?}"
    );
    let e = m
        .mount("/dev/nope".as_ref(), Path::new("/mnt/x"), "ext4", &o)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            MountError::Command {
                source: CommandError::TimedOut { .. },
                ..
            }
        ),
        "{e:?}"
    );
    // Bad input never reaches a command.
    for (src, tgt) in [("a", "relative"), ("a\0b", "/x")] {
        let e = m
            .mount(src.as_ref(), Path::new(tgt), "", &MountOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                MountError::Path(PathError::NotAbsolute { .. }) | MountError::InvalidInput { .. }
            ),
            "{e:?}"
        );
    }
    assert_eq!(exec.calls().len(), 3);
}

#[tokio::test]
async fn unmount_kinds() {
    let exec = FakeExecutor::ordered();
    exec.expect("umount")
        .args(["--", "/mnt/a"])
        .returns_status(ExitStatus::Code(32), "umount: /mnt/a: not mounted.\n");
    exec.expect("umount").args(["-l", "--", "/mnt/b"]);
    exec.expect("umount").args(["--", "/mnt/c"]).returns_status(
        ExitStatus::Code(32),
        "umount: /mnt/c: no mount point specified.\n",
    );
    exec.expect("umount")
        .args(["--", "/mnt/d"])
        .returns_status(ExitStatus::Code(32), "umount: /mnt/d: target is busy.\n");
    let m = HostMounter::with_parts(exec.clone(), host());
    let e = m
        .unmount(Path::new("/mnt/a"), &UnmountOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_not_mounted(), "{e:?}");
    m.unmount(Path::new("/mnt/b"), &UnmountOptions::new().lazy())
        .await
        .unwrap();
    let e = m
        .unmount(Path::new("/mnt/c"), &UnmountOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    let e = m
        .unmount(Path::new("/mnt/d"), &UnmountOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, MountError::UnmountFailed { stderr, .. } if stderr.contains("busy")),
        "{e:?}"
    );
    exec.verify().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hung_unmount_is_forced_then_bounded() {
    let exec = FakeExecutor::ordered();
    exec.expect("umount")
        .args(["--", "/mnt/nfs"])
        .after(Duration::from_secs(3600));
    exec.expect("umount").args(["-f", "--", "/mnt/nfs"]);
    let m = HostMounter::with_parts(exec.clone(), host());
    let opts = UnmountOptions::new()
        .force_after(Duration::from_secs(5))
        .timeout(Duration::from_secs(20));
    let start = tokio::time::Instant::now();
    m.unmount(Path::new("/mnt/nfs"), &opts).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    let calls = exec.calls();
    assert_eq!(calls[0].get_timeout(), Some(Duration::from_secs(5)));
    assert_eq!(calls[1].get_timeout(), Some(Duration::from_secs(15)));
    exec.verify().unwrap();

    // Both hang: the whole thing ends at the overall timeout.
    let exec = FakeExecutor::new();
    exec.expect("umount")
        .times(2)
        .after(Duration::from_secs(3600));
    let m = HostMounter::with_parts(exec.clone(), host());
    let start = tokio::time::Instant::now();
    let e = m.unmount(Path::new("/mnt/nfs"), &opts).await.unwrap_err();
    assert!(
        matches!(e, MountError::UnmountTimedOut { timeout, .. } if timeout == Duration::from_secs(20)),
        "{e:?}"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(20));

    // No force step: one bounded try.
    let exec = FakeExecutor::new();
    exec.expect("umount").after(Duration::from_secs(3600));
    let m = HostMounter::with_parts(exec.clone(), host());
    let e = m
        .unmount(
            Path::new("/mnt/nfs"),
            &UnmountOptions::new().timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, MountError::UnmountTimedOut { .. }), "{e:?}");
}

fn stat(
    kind: FileKind,
    mount_root: Option<bool>,
    mount_id: Option<u64>,
    dev: (u32, u32),
) -> FileStat {
    let mut st = FileStat::new(kind);
    st.mode = 0o40755;
    st.dev = dev;
    st.ino = 1;
    st.mount_root = mount_root;
    st.mount_id = mount_id;
    st
}

#[tokio::test]
async fn is_mount_point_asks_the_kernel_first() {
    // The kernel knows: one stat (symlinks followed by it), no resolve, no table read.
    let mut fs = MockHostFs::new();
    fs.expect_resolve().times(0);
    fs.expect_stat()
        .withf(|p, follow| p == Path::new("/link") && *follow)
        .times(1)
        .returning(|_, _| Ok(stat(FileKind::Dir, Some(true), Some(7), (0, 1))));
    fs.expect_read_mountinfo().times(0);
    let m = HostMounter::with_parts(FakeExecutor::new(), fs);
    assert!(m.is_mount_point(Path::new("/link")).await.unwrap());

    // "/" is a mount point even when the kernel does not say.
    let mut fs = MockHostFs::new();
    fs.expect_resolve().returning(|p, _| Ok(p.to_path_buf()));
    fs.expect_stat()
        .returning(|_, _| Ok(stat(FileKind::Dir, None, None, (0, 1))));
    fs.expect_read_mountinfo().times(0);
    let m = HostMounter::with_parts(FakeExecutor::new(), fs);
    assert!(m.is_mount_point(Path::new("/")).await.unwrap());
    assert!(!m.is_likely_not_mount_point(Path::new("/")).await.unwrap());

    // Missing: a not-found error, not false.
    let mut fs = MockHostFs::new();
    fs.expect_resolve()
        .returning(|p, _| Err(PathError::NotFound { path: p.into() }));
    fs.expect_stat()
        .returning(|p, _| Err(PathError::NotFound { path: p.into() }));
    let m = HostMounter::with_parts(FakeExecutor::new(), fs);
    let e = m.is_mount_point(Path::new("/nope")).await.unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert!(m
        .is_likely_not_mount_point(Path::new("/nope"))
        .await
        .unwrap_err()
        .is_not_found());

    // No mount-root attribute: mount IDs against the parent's.
    let mut fs = MockHostFs::new();
    fs.expect_resolve().returning(|p, _| Ok(p.to_path_buf()));
    fs.expect_stat().returning(|p, _| {
        let id = if p == Path::new("/a/b") { 9 } else { 3 };
        Ok(stat(FileKind::Dir, None, Some(id), (0, 1)))
    });
    fs.expect_read_mountinfo().times(0);
    let m = HostMounter::with_parts(FakeExecutor::new(), fs);
    assert!(m.is_mount_point(Path::new("/a/b")).await.unwrap());

    // Neither: the table, by decoded path (a space in the mount point).
    let mut fs = MockHostFs::new();
    fs.expect_resolve().returning(|p, _| Ok(p.to_path_buf()));
    fs.expect_stat()
        .returning(|_, _| Ok(stat(FileKind::Dir, None, None, (0, 1))));
    fs.expect_read_mountinfo().returning(|| {
        Ok(
            b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:5 / /mnt/sp\\040ace rw - tmpfs t rw\n"
                .to_vec(),
        )
    });
    let m = HostMounter::with_parts(FakeExecutor::new(), fs);
    assert!(m.is_mount_point(Path::new("/mnt/sp ace")).await.unwrap());
    assert!(!m.is_mount_point(Path::new("/mnt")).await.unwrap());
}

#[tokio::test]
async fn format_and_mount_uses_only_the_public_api() {
    // Unformatted: blkid exit 2, mkfs, then the mount with `defaults`.
    let exec = FakeExecutor::ordered();
    exec.expect("blkid")
        .args([
            "-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export", "/dev/foo",
        ])
        .returns_status(ExitStatus::Code(2), "");
    exec.expect("mkfs.ext4")
        .args(["-b", "1024", "-F", "-m0", "/dev/foo"]);
    let mut mounter = MockMount::new();
    mounter
        .expect_mount()
        .withf(|src, tgt, fstype, o| {
            src == "/dev/foo"
                && tgt == Path::new("/mnt/f")
                && fstype == "ext4"
                && o.get_options().iter().any(|x| x == "defaults")
                && o.sensitive_count() == 1
        })
        .times(1)
        .returning(|_, _, _, _| Ok(()));
    let job = FormatAndMount::new("/dev/foo", "/mnt/f")
        .fstype("")
        .mount_options(MountOptions::new().sensitive("key=s"))
        .mkfs_args(["-b", "1024"]);
    let out = format_and_mount(&mounter, &exec, &job).await.unwrap();
    assert!(out.formatted);
    assert_eq!(out.found, DiskFormat::Unformatted);
    exec.verify().unwrap();

    // Formatted, read-write: fsck; exit 5 = 4|1 is "errors left" (Go's == let it pass).
    let exec = FakeExecutor::ordered();
    exec.expect("blkid").returns_ok_stdout("TYPE=ext4\n");
    exec.expect("fsck")
        .args(["-a", "/dev/foo"])
        .returns_status(ExitStatus::Code(5), "bad inode\n");
    let job = FormatAndMount::new("/dev/foo", "/mnt/f").fstype("ext4");
    let e = format_and_mount(&MockMount::new(), &exec, &job)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FormatError::HasFilesystemErrors { code: 5, .. }),
        "{e:?}"
    );

    // Read-only + formatted: blkid only. Read-only + unformatted: refused.
    let exec = FakeExecutor::ordered();
    exec.expect("blkid").returns_ok_stdout("TYPE=xfs\n");
    exec.expect("blkid").returns_status(ExitStatus::Code(2), "");
    exec.expect("blkid")
        .returns_status(ExitStatus::Code(4), "boom");
    exec.expect("blkid").returns_ok_stdout("PTTYPE=dos\n");
    let mut mounter = MockMount::new();
    mounter.expect_mount().times(1).returning(|_, _, _, _| {
        Err(MountError::NotMounted {
            target: "/mnt/f".into(),
        })
    });
    let ro = MountOptions::new().option("ro");
    let run = |o: MountOptions| {
        let (exec, mounter) = (&exec, &mounter);
        async move {
            let job = FormatAndMount::new("/dev/foo", "/mnt/f")
                .fstype("ext4")
                .mount_options(o);
            format_and_mount(mounter, exec, &job).await
        }
    };
    let e = run(ro.clone()).await.unwrap_err();
    assert!(
        matches!(&e, FormatError::FilesystemMismatch { found, wanted, .. } if found == "xfs" && wanted == "ext4"),
        "{e:?}"
    );
    assert!(matches!(
        run(ro.clone()).await.unwrap_err(),
        FormatError::UnformattedReadOnly { .. }
    ));
    assert!(matches!(
        run(ro.clone()).await.unwrap_err(),
        FormatError::GetDiskFormatFailed { .. }
    ));
    assert!(matches!(
        run(ro).await.unwrap_err(),
        FormatError::Partitioned { .. }
    ));
    exec.verify().unwrap();
}

#[tokio::test]
async fn a_dash_source_is_mounted_literally_on_a_fake_host() {
    // The whole route: HostMounter's argv (`--internal-only … -- SOURCE TARGET`), played by
    // FakeHost's util-linux-like mount handler, seen again through list().
    let host = hostexec_fake::FakeHost::new().unwrap();
    host.dir("/mnt/x").unwrap().dir("/mnt/y").unwrap();
    for systemd in [false, true] {
        let exec = FakeExecutor::new()
            .with_systemd(systemd)
            .with_bin("/usr/bin/mount");
        for prog in ["mount", "umount", "systemd-run"] {
            exec.expect(prog)
                .times_any()
                .answer_with(host.mount_handler());
        }
        let m = HostMounter::with_parts(exec.clone(), host.clone());
        for (source, target) in [("-oremount,ro", "/mnt/x"), ("--bind", "/mnt/y")] {
            m.mount(
                source.as_ref(),
                Path::new(target),
                "tmpfs",
                &MountOptions::new().option("size=1m").helper_only(),
            )
            .await
            .unwrap();
            let table = m.list().await.unwrap();
            let top = table.last().unwrap();
            assert_eq!(top.source(), OsStr::new(source));
            assert_eq!(top.mount_point(), Path::new(target));
            assert_eq!(top.fs_type(), "tmpfs");
            assert!(m.is_mount_point(Path::new(target)).await.unwrap());
        }
        let calls = exec.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].get_program(),
            if systemd { "systemd-run" } else { "mount" }
        );
        assert!(args(&calls[0]).iter().any(|a| a == "--internal-only"));
        for target in ["/mnt/x", "/mnt/y"] {
            m.unmount(
                Path::new(target),
                &UnmountOptions::new().lazy().helper_only(),
            )
            .await
            .unwrap();
            assert!(!m.is_mount_point(Path::new(target)).await.unwrap());
        }
        exec.verify().unwrap();
    }
    // Left: `/` and the staging tmpfs mount(8) mounted on before each move (nothing below it).
    let left: Vec<_> = host.mounts().into_iter().map(|m| m.target).collect();
    assert_eq!(
        left,
        [Path::new("/"), Path::new(hostexec_mount::STAGING_DIR)]
    );
}

#[tokio::test]
async fn mount_ext_runs_on_boxed_and_borrowed_trait_objects() {
    // MountExt's conveniences are built from the essentials, so a mock of the essentials
    // drives them, through `Box<dyn Mount>` and `&dyn Mount` (the forwarding impls).
    let mut m = MockMount::new();
    m.expect_resolve()
        .withf(|p, _| p == Path::new("/link/b"))
        .times(2)
        .returning(|_, _| Ok("/srv/data/b".into()));
    m.expect_list().times(2).returning(|| {
        Ok(hostexec_mount::mountinfo::parse_mountinfo(
            b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
              2 1 0:40 / /srv/data/b rw - tmpfs t rw\n\
              3 1 0:40 / /mnt/other rw - tmpfs t rw\n",
        )
        .unwrap())
    });
    let boxed: Box<dyn Mount> = Box::new(m);
    let refs = boxed.mount_refs(Path::new("/link/b")).await.unwrap();
    assert_eq!(refs, vec![std::path::PathBuf::from("/mnt/other")]);
    let borrowed: &dyn Mount = &boxed;
    assert_eq!(
        borrowed.mount_refs(Path::new("/link/b")).await.unwrap(),
        refs
    );
}
