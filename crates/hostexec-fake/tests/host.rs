//! FakeHost: the api's resolver and HostFs conformance suites, the populate helpers (absolute
//! links stay in the fake root), local_path, look_path, the mount table and its mountinfo
//! rendering, and the mount/umount handler. No root needed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hostexec_api::{
    Executor, ExitStatus, FileKind, HostCommand, HostFs, PathError, PathResolver, Resolve,
};
use hostexec_fake::{FakeExecutor, FakeHost};

#[tokio::test]
async fn resolver_and_host_fs_keep_the_contract() {
    let host = FakeHost::new().unwrap();
    host.dir("/base/r").unwrap().dir("/base/f").unwrap();
    hostexec_api::conformance::resolver_contract(&host, Path::new("/base/r")).await;
    hostexec_api::conformance::host_fs_contract(&host, Path::new("/base/f")).await;
    host.dir("/base/s").unwrap();
    hostexec_api::conformance::secret_file_contract(&host, Path::new("/base/s")).await;
    // A base below a symlinked directory works too (the tree is built through local_path,
    // which is lexical, so the base itself must be canonical: use a deeper canonical one).
    host.dir("/deep/er/base").unwrap();
    hostexec_api::conformance::resolver_contract(&host, Path::new("/deep/er/base")).await;
}

#[tokio::test]
async fn populate_helpers_never_leave_the_fake_root() {
    let host = FakeHost::new().unwrap();
    // Links that would reach the real / if the kernel followed them from the temp dir.
    host.symlink("/etc", "/link-to-etc")
        .unwrap()
        .symlink("../../../../../../../../tmp", "/up")
        .unwrap();
    host.file("/link-to-etc/hostexec-fake-probe", b"fake")
        .unwrap();
    assert_eq!(
        std::fs::read(host.root().join("etc/hostexec-fake-probe")).unwrap(),
        b"fake"
    );
    assert!(!Path::new("/etc/hostexec-fake-probe").exists());
    let marker = format!("hostexec-fake-escape-{}", std::process::id());
    host.file(format!("/up/{marker}"), b"x").unwrap();
    assert!(host.root().join("tmp").join(&marker).is_file());
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "a `..` link climbed out of the fake root"
    );
    // The stored link target is kept as given.
    assert_eq!(
        std::fs::read_link(host.root().join("link-to-etc")).unwrap(),
        Path::new("/etc")
    );
    // Bad names are errors, not panics.
    for bad in ["/", "/a/..", "relative", "/a/."] {
        assert!(host.file(bad, b"").is_err(), "{bad}");
    }
    // A final symlink is not written through.
    let e = host.file("/link-to-etc", b"x").unwrap_err();
    assert!(matches!(e, PathError::Loop { .. }), "{e}");
}

#[tokio::test]
async fn resolution_reads_absolute_links_against_the_fake_root() {
    let host = FakeHost::new().unwrap();
    host.dir("/var/lib/kubelet/pods")
        .unwrap()
        .symlink("/var/lib/kubelet", "/kubelet")
        .unwrap()
        .symlink("/../../../var/lib/../lib", "/weird")
        .unwrap();
    let r = |p: &'static str, m| {
        let host = host.clone();
        async move { host.resolve(Path::new(p), m).await }
    };
    assert_eq!(
        r("/kubelet/pods", Resolve::MustExist).await.unwrap(),
        Path::new("/var/lib/kubelet/pods")
    );
    // `/../../..` inside an absolute target clamps at the fake root; `lib/..` is physical.
    assert_eq!(
        r("/weird/x", Resolve::AllowMissing).await.unwrap(),
        Path::new("/var/lib/x")
    );
    assert!(r("/weird/x", Resolve::MustExist)
        .await
        .unwrap_err()
        .is_not_found());
    // local_path is lexical and never leaves the temp directory.
    assert_eq!(
        host.local_path(Path::new("/../etc/./x")).unwrap(),
        host.root().join("etc/x")
    );
    assert_eq!(host.local_path(Path::new("/")).unwrap(), host.root());
    assert!(matches!(
        host.local_path(Path::new("etc")),
        Err(PathError::NotAbsolute { .. })
    ));
}

#[tokio::test]
async fn look_path_over_the_fake_bin_dirs() {
    let host = FakeHost::new().unwrap();
    assert_eq!(host.bin("mount").unwrap(), Path::new("/usr/bin/mount"));
    host.bin_at("/sbin/mkfs.ext4").unwrap();
    host.file("/bin/not-executable", b"").unwrap();
    host.symlink("usr/bin", "/bin2").unwrap();
    assert_eq!(
        host.look_path(OsStr::new("mount")).unwrap(),
        Path::new("/usr/bin/mount")
    );
    let fake = FakeExecutor::new()
        .with_host(&host)
        .with_bin("/opt/x/findmnt");
    assert_eq!(
        fake.look_path(OsStr::new("mkfs.ext4")).await.unwrap(),
        Path::new("/sbin/mkfs.ext4")
    );
    assert_eq!(
        fake.look_path(OsStr::new("findmnt")).await.unwrap(),
        Path::new("/opt/x/findmnt"),
        "explicit bins come first"
    );
    for missing in ["not-executable", "sh"] {
        match fake.look_path(OsStr::new(missing)).await {
            Err(hostexec_api::CommandError::NotFound { searched, .. }) => {
                assert_eq!(searched.len(), hostexec_api::HOST_BIN_DIRS.len())
            }
            other => panic!("{missing}: {other:?}"),
        }
    }
    // The stub is a real executable script.
    let st = host.stat(Path::new("/usr/bin/mount"), true).await.unwrap();
    assert_eq!((st.kind, st.mode & 0o777), (FileKind::File, 0o755));
}

#[tokio::test]
async fn mount_table_renders_exact_mountinfo() {
    let host = FakeHost::new().unwrap();
    host.dir("/mnt/sp ace")
        .unwrap()
        .dir("/mnt/t\tab\\nl\n")
        .unwrap()
        .dir("/data/sub")
        .unwrap()
        .dir("/bound")
        .unwrap();
    let root_dev = host.stat(Path::new("/"), true).await.unwrap().dev;
    let a = host
        .add_mount("tmpfs", "/mnt/sp ace", "tmpfs", "rw,nosuid,size=1m")
        .unwrap();
    let b = host
        .add_mount("", "/mnt/t\tab\\nl\n", "tmpfs", "ro,noatime")
        .unwrap();
    let c = host
        .add_mount("/dev/sdb1", "/data", "ext4", "defaults")
        .unwrap();
    let d = host
        .add_mount("/data/sub", "/bound", "none", "bind,nodev")
        .unwrap();
    assert_eq!((a, b, c, d), (22, 23, 24, 25));
    let mi = String::from_utf8(host.read_mountinfo().await.unwrap()).unwrap();
    let want = format!(
        "21 1 {}:{} / / rw,relatime - ext4 /dev/root rw\n\
         22 21 0:100 / /mnt/sp\\040ace rw,nosuid,relatime - tmpfs tmpfs rw,size=1m\n\
         23 21 0:101 / /mnt/t\\011ab\\134nl\\012 ro,noatime - tmpfs  ro\n\
         24 21 0:102 / /data rw,relatime - ext4 /dev/sdb1 rw\n\
         25 21 0:102 /sub /bound rw,nodev,relatime - ext4 /dev/sdb1 rw\n",
        root_dev.0, root_dev.1
    );
    assert_eq!(mi, want);
    // Each line has the kernel's shape: 6 fields, '-', 3 fields, single spaces (the empty
    // source of line 23 is an empty field, as the kernel prints it).
    for l in mi.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 10, "{l}");
        assert_eq!(f[6], "-", "{l}");
    }
}

#[tokio::test]
async fn stat_reports_mount_roots_from_the_table() {
    let host = FakeHost::new().unwrap();
    host.dir("/mnt/a/inner")
        .unwrap()
        .symlink("mnt/a", "/via-link")
        .unwrap();
    let st = |p: &'static str, follow: bool| {
        let host = host.clone();
        async move { host.stat(Path::new(p), follow).await.unwrap() }
    };
    assert_eq!(st("/", true).await.mount_root, Some(true), "/ is a mount");
    assert_eq!(st("/", true).await.mount_id, Some(21));
    assert_eq!(st("/mnt/a", true).await.mount_root, Some(false));
    let id = host.add_mount("tmpfs", "/mnt/a", "tmpfs", "").unwrap();
    assert!(host.is_mount_point(Path::new("/via-link")).unwrap());
    let root = st("/mnt/a", true).await;
    assert_eq!((root.mount_root, root.mount_id), (Some(true), Some(id)));
    assert_eq!(root.dev, (0, 100), "dev is the mounted filesystem's");
    assert_eq!(st("/via-link", true).await.mount_root, Some(true));
    // Without follow, the link itself is no mount point.
    let link = st("/via-link", false).await;
    assert_eq!(
        (link.kind, link.mount_root, link.mount_id),
        (FileKind::Symlink, Some(false), Some(21))
    );
    let inner = st("/mnt/a/inner", true).await;
    assert_eq!(
        (inner.mount_root, inner.mount_id, inner.dev),
        (Some(false), Some(id), (0, 100))
    );
    assert_ne!(st("/mnt", true).await.dev, (0, 100));
    // A mount point cannot be removed.
    let e = host.remove_dir(Path::new("/mnt/a")).await.unwrap_err();
    assert_eq!(e.raw_os_error(), Some(16), "{e}");
    assert!(host
        .add_mount("x", "/missing", "tmpfs", "")
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn unmount_removes_only_the_top_of_a_stack() {
    let host = FakeHost::new().unwrap();
    host.dir("/m").unwrap();
    host.add_mount("first", "/m", "tmpfs", "size=1m").unwrap();
    host.add_mount("second", "/m", "tmpfs", "size=2m").unwrap();
    let top = host.remove_mount("/m").unwrap();
    assert_eq!(top.source, "second");
    let left = host.mounts();
    assert_eq!(left.len(), 2);
    // Go's FakeMounter dropped every stacked entry and lost the others' options.
    assert_eq!(left[1].source, "first");
    assert_eq!(left[1].super_options, "rw,size=1m");
    host.remove_mount("/m").unwrap();
    let e = host.remove_mount("/m").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(22), "not mounted: {e}");
    assert_eq!(host.remove_mount("/").unwrap_err().raw_os_error(), Some(16));
}

#[tokio::test]
async fn mount_handler_plays_mount_and_umount() {
    let host = FakeHost::new().unwrap();
    host.dir("/var/lib/vol one").unwrap().dir("/src").unwrap();
    let fake = FakeExecutor::new();
    fake.expect("mount")
        .times_any()
        .answer_with(host.mount_handler());
    fake.expect("/usr/bin/umount")
        .times_any()
        .answer_with(host.mount_handler());
    let out = fake
        .run(HostCommand::new("mount").args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "-o",
            "nosuid",
            "tmpfs",
            "/var/lib/vol one",
        ]))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let mi = String::from_utf8(host.read_mountinfo().await.unwrap()).unwrap();
    assert!(
        mi.contains(" / /var/lib/vol\\040one rw,nosuid,relatime - tmpfs tmpfs rw,size=1m\n"),
        "{mi}"
    );
    let out = fake
        .run(HostCommand::new("mount").args(["--bind", "/src", "/var/lib/vol one"]))
        .await
        .unwrap();
    assert!(out.success());
    let out = fake
        .run(HostCommand::new("mount").args(["-o", "remount,ro", "/var/lib/vol one"]))
        .await
        .unwrap();
    assert!(out.success());
    let out = fake
        .run(HostCommand::new("mount").args(["-t", "tmpfs", "tmpfs", "/nope"]))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(32));
    assert_eq!(out.stderr, b"mount: /nope: mount point does not exist.\n");
    let out = fake
        .run(HostCommand::new("mount").args(["--bind", "/gone", "/src"]))
        .await
        .unwrap();
    assert_eq!(
        out.stderr,
        b"mount: /src: special device /gone does not exist.\n"
    );
    for _ in 0..2 {
        let out = fake
            .run(HostCommand::new("/usr/bin/umount").arg("/var/lib/vol one"))
            .await
            .unwrap();
        assert!(out.success(), "{out:?}");
    }
    let out = fake
        .run(HostCommand::new("/usr/bin/umount").args(["-l", "/var/lib/vol one"]))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(32));
    assert_eq!(out.stderr, b"umount: /var/lib/vol one: not mounted.\n");
    let err = out.check().unwrap_err();
    assert!(err.to_string().ends_with("not mounted."), "{err}");
    assert_eq!(host.mounts().len(), 1);
    fake.verify().unwrap();
}

#[test]
fn send_sync_clone_debug() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_traits::<FakeHost>();
    let host = FakeHost::new().unwrap();
    let root: PathBuf = host.root().to_path_buf();
    let clone = host.clone();
    drop(host);
    assert!(root.is_dir(), "a clone keeps the temp directory");
    assert!(format!("{clone:?}").contains("FakeHost"));
    drop(clone);
    assert!(!root.exists(), "the last clone removes it");
}

#[tokio::test]
async fn non_utf8_names_round_trip() {
    let host = FakeHost::new().unwrap();
    let name = Path::new(OsStr::from_bytes(b"/d\xff\xfe/f\x80"));
    host.file(name, b"bytes").unwrap();
    assert_eq!(host.resolve(name, Resolve::MustExist).await.unwrap(), name);
    assert_eq!(host.read_file(name, 10).await.unwrap(), b"bytes");
}

#[tokio::test]
async fn mount_handler_keeps_secrets_out_and_unwraps_systemd_run() {
    let host = FakeHost::new().unwrap();
    host.dir("/mnt/share").unwrap();
    let fake = FakeExecutor::new().with_systemd(true);
    fake.expect("systemd-run")
        .times_any()
        .answer_with(host.mount_handler());
    let out = fake
        .run(
            HostCommand::new("systemd-run")
                .args([
                    "--description=hostexec mount",
                    "--scope",
                    "--",
                    "mount",
                    "-t",
                    "cifs",
                    "-o",
                ])
                .arg_masked("user=u,password=hunter2", "user=u,password=<masked>")
                .args(["//srv/share", "/mnt/share"]),
        )
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    let mi = String::from_utf8(host.read_mountinfo().await.unwrap()).unwrap();
    assert!(
        mi.ends_with(" / /mnt/share rw,relatime - cifs //srv/share rw,user=u,password=<masked>\n"),
        "{mi}"
    );
    assert!(!mi.contains("hunter2"));
    assert!(!format!("{:?}", host.mounts()).contains("hunter2"));
    let out = fake
        .run(HostCommand::new("systemd-run").args(["--scope", "--", "umount", "/mnt/share"]))
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert_eq!(host.mounts().len(), 1);
    let out = fake
        .run(HostCommand::new("systemd-run").arg("--scope"))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(1));
    // A program the handler does not play is a clear failure, not a silent success.
    let odd = FakeExecutor::new();
    odd.expect("findmnt").answer_with(host.mount_handler());
    let out = odd.run(HostCommand::new("findmnt")).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither mount nor umount"));
}

#[tokio::test]
async fn mount_handler_splits_argv_as_util_linux_does() {
    let host = FakeHost::new().unwrap();
    host.dir("/mnt/x").unwrap().dir("/mnt/y").unwrap();
    let fake = FakeExecutor::new();
    fake.expect("mount")
        .times_any()
        .answer_with(host.mount_handler());
    fake.expect("umount")
        .times_any()
        .answer_with(host.mount_handler());
    let run = |prog: &'static str, args: &'static [&'static str]| {
        let fake = fake.clone();
        async move { fake.run(HostCommand::new(prog).args(args)).await.unwrap() }
    };
    let last = |host: &FakeHost| host.mounts().last().cloned().unwrap();

    // `--` ends the options: a source starting with '-' is a source, not a remount, and
    // `--internal-only` is an option, not a positional.
    let out = run(
        "mount",
        &[
            "--internal-only",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "--",
            "-oremount,ro",
            "/mnt/x",
        ],
    )
    .await;
    assert!(out.success(), "{out:?}");
    let m = last(&host);
    assert_eq!(m.source, OsStr::new("-oremount,ro"));
    assert_eq!(m.target, Path::new("/mnt/x"));
    assert_eq!(m.super_options, "rw,size=1m");
    // After `--` even a valid option's spelling is positional: three positionals.
    let out = run("mount", &["-t", "tmpfs", "--", "tmpfs", "/mnt/y", "-i"]).await;
    assert_eq!(out.status, ExitStatus::Code(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad usage"));
    // Short clusters and attached arguments, long `=` forms, options after positionals
    // (GNU permutation), and `-i`.
    let out = run("mount", &["-ttmpfs", "tmpfs", "/mnt/y", "-nio", "nosuid"]).await;
    assert!(out.success(), "{out:?}");
    assert_eq!(last(&host).mount_options, "rw,nosuid,relatime");
    let out = run(
        "mount",
        &["--types=tmpfs", "--options=size=2m", "-i", "t2", "/mnt/y"],
    )
    .await;
    assert!(out.success(), "{out:?}");
    let m = last(&host);
    assert_eq!(
        (m.fstype.as_str(), m.source.as_os_str()),
        ("tmpfs", OsStr::new("t2"))
    );
    assert_eq!(m.super_options, "rw,size=2m");
    // A lone '-' is positional; unknown options are usage errors, as util-linux says them.
    for (args, msg) in [
        (
            &["--frobnicate", "a", "/mnt/y"][..],
            "mount: unrecognized option '--frobnicate'\n",
        ),
        (&["-Z", "a", "/mnt/y"][..], "mount: invalid option -- 'Z'\n"),
        (
            &["a", "/mnt/y", "-t"][..],
            "mount: option requires an argument -- 't'\n",
        ),
        (
            &["--bind=x", "a", "/mnt/y"][..],
            "mount: option '--bind' doesn't allow an argument\n",
        ),
    ] {
        let out = fake
            .run(HostCommand::new("mount").args(args))
            .await
            .unwrap();
        assert_eq!(out.status, ExitStatus::Code(1), "{args:?}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(msg), "{args:?}: {err}");
        assert!(
            err.ends_with("Try 'mount --help' for more information.\n"),
            "{err}"
        );
    }
    let out = run("mount", &["-t", "tmpfs", "-", "/mnt/y"]).await;
    assert!(out.success(), "{out:?}");
    assert_eq!(last(&host).source, OsStr::new("-"));

    // umount: `--`, `-i`, clusters and options after the target.
    assert_eq!(host.mounts().len(), 5);
    for args in [
        &["-i", "--", "/mnt/y"][..],
        &["/mnt/y", "-lf"][..],
        &["--internal-only", "--lazy", "/mnt/y"][..],
    ] {
        let out = fake
            .run(HostCommand::new("umount").args(args))
            .await
            .unwrap();
        assert!(out.success(), "{args:?}: {out:?}");
    }
    assert_eq!(host.mounts().len(), 2);
    // After `--`, `-l` is a second target: bad usage, nothing unmounted.
    let out = run("umount", &["--", "/mnt/x", "-l"]).await;
    assert_eq!(out.status, ExitStatus::Code(1), "{out:?}");
    let out = run("umount", &["--recursive-nope", "/mnt/x"]).await;
    assert_eq!(
        out.stderr,
        b"umount: unrecognized option '--recursive-nope'\nTry 'umount --help' for more information.\n"
    );
    assert_eq!(host.mounts().len(), 2);
    let out = run("umount", &["-i", "--", "/mnt/x"]).await;
    assert!(out.success(), "{out:?}");
    assert_eq!(host.mounts().len(), 1);
    fake.verify().unwrap();
}
