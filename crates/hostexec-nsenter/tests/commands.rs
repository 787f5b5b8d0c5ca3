//! Commands through both launchers, in real namespaces: a sandbox host whose scratch tmpfs and
//! host name this process does not share.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, Stdin, HOST_BIN_DIRS};
use hostexec_nsenter::{Launcher, Namespace, NsEnter, NsEnterError, Target};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const LAUNCHERS: [Launcher; 2] = [Launcher::HostThread, Launcher::NsenterBinary];

fn host(sb: &SandboxHost, launcher: Launcher) -> NsEnter {
    NsEnter::builder(sb.target())
        .launcher(launcher)
        .build()
        .unwrap()
}

fn ns_link(pid: u32, ns: &str) -> Vec<u8> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .into_os_string()
        .into_encoded_bytes()
}

async fn stdout_of(h: &NsEnter, cmd: HostCommand) -> Vec<u8> {
    let out = h.run(cmd).await.unwrap().check().unwrap();
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_run_in_the_targets_mount_namespace() {
    if skip_without_namespaces("commands_run_in_the_targets_mount_namespace") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let only_host = sb.scratch().join("only-on-the-host");
    sb.write_file(&only_host, b"host data").unwrap();
    assert!(
        !only_host.exists(),
        "the caller must not see the sandbox's tmpfs"
    );
    let mine = ns_link(std::process::id(), "mnt");
    let theirs = ns_link(sb.pid(), "mnt");
    assert_ne!(mine, theirs);
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let seen = stdout_of(&h, HostCommand::new("readlink").arg("/proc/self/ns/mnt")).await;
        assert_eq!(seen, [theirs.as_slice(), b"\n"].concat(), "{l:?}");
        let data = stdout_of(&h, HostCommand::new("cat").arg(&only_host)).await;
        assert_eq!(data, b"host data", "{l:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn working_directory_is_a_host_path() {
    if skip_without_namespaces("working_directory_is_a_host_path") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    // A directory that exists only in the sandbox's view.
    let dir = sb.scratch().join("wd dir");
    sb.mkdir_all(&dir).unwrap();
    sb.write_file(&dir.join("marker"), b"").unwrap();
    assert!(!dir.exists());
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let out = stdout_of(
            &h,
            HostCommand::new("sh")
                .args(["-c", "pwd; ls"])
                .current_dir(&dir),
        )
        .await;
        let want = format!("{}\nmarker\n", dir.display());
        assert_eq!(String::from_utf8_lossy(&out), want, "{l:?}");
        let missing = h
            .run(HostCommand::new("pwd").current_dir(sb.scratch().join("nope")))
            .await;
        match missing {
            Err(CommandError::Spawn { ref source, .. }) => {
                assert!(
                    source.to_string().contains("working directory"),
                    "{missing:?}"
                )
            }
            Ok(ref out) => assert!(!out.success() && l == Launcher::NsenterBinary, "{out:?}"),
            ref other => panic!("{l:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_signals_streams_env_and_literal_arguments() {
    if skip_without_namespaces("exit_codes_signals_streams_env_and_literal_arguments") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let out = h
            .run(HostCommand::new("sh").args(["-c", "exit 42"]))
            .await
            .unwrap();
        assert_eq!(out.status, ExitStatus::Code(42), "{l:?}");
        let out = h
            .run(HostCommand::new("sh").args(["-c", "kill -TERM $$"]))
            .await
            .unwrap();
        assert_eq!(out.status, ExitStatus::Signal(15), "{l:?}");
        assert_eq!(out.exit_code(), 143);

        let out = h
            .run(
                HostCommand::new("sh")
                    .args(["-c", "cat; echo err >&2"])
                    .stdin(Stdin::Bytes(b"in put".to_vec())),
            )
            .await
            .unwrap();
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b"in put"[..], &b"err\n"[..])
        );

        let weird = OsStr::from_bytes(b"\xff\xfe bytes");
        let out = stdout_of(
            &h,
            HostCommand::new("printf").args([
                OsStr::new("[%s]"),
                OsStr::new("$(id)"),
                OsStr::new("a b"),
                OsStr::new("*"),
                weird,
            ]),
        )
        .await;
        assert_eq!(out, b"[$(id)][a b][*][\xff\xfe bytes]", "{l:?}");

        let out = stdout_of(
            &h,
            HostCommand::new("env")
                .env_clear()
                .env("HOSTEXEC_A", "1 2")
                .env("HOSTEXEC_B", weird),
        )
        .await;
        let mut lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            [&b"HOSTEXEC_A=1 2"[..], b"HOSTEXEC_B=\xff\xfe bytes"],
            "{l:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_names_are_looked_up_in_the_hosts_view() {
    if skip_without_namespaces("bare_names_are_looked_up_in_the_hosts_view") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    // A program that exists only on the "host": a tmpfs over /usr/local/bin in the sandbox.
    sb.mount_tmpfs(Path::new("/usr/local/bin"), "mode=0755")
        .unwrap();
    let prog = Path::new("/usr/local/bin/hostexec-only-on-host");
    sb.write_file(prog, b"#!/bin/sh\necho host program \"$@\"\n")
        .unwrap();
    let chmod = sb.oracle(&["chmod".as_ref(), "0755".as_ref(), prog.as_os_str()]);
    assert!(chmod.status.success());
    assert!(!prog.exists());
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let name = OsStr::new("hostexec-only-on-host");
        assert_eq!(h.look_path(name).await.unwrap(), prog, "{l:?}");
        let out = stdout_of(&h, HostCommand::new(name).arg("x")).await;
        assert_eq!(out, b"host program x\n", "{l:?}");
        match h.run(HostCommand::new("hostexec-missing-everywhere")).await {
            Err(CommandError::NotFound { program, searched }) => {
                assert_eq!(program, "hostexec-missing-everywhere");
                let want: Vec<PathBuf> = HOST_BIN_DIRS.iter().map(PathBuf::from).collect();
                assert_eq!(searched, want, "{l:?}: searched the host bin dirs in order");
            }
            other => panic!("{l:?}: {other:?}"),
        }
        match h
            .run(HostCommand::new("/usr/local/bin/hostexec-nope"))
            .await
        {
            Err(e @ CommandError::NotFound { .. }) => {
                assert!(e.to_string().contains("/usr/local/bin/hostexec-nope"))
            }
            other => panic!("{l:?}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_removed_after_caching_is_looked_up_again() {
    if skip_without_namespaces("a_binary_removed_after_caching_is_looked_up_again") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    sb.mount_tmpfs(Path::new("/usr/local/sbin"), "mode=0755")
        .unwrap();
    sb.mount_tmpfs(Path::new("/usr/local/bin"), "mode=0755")
        .unwrap();
    let first = Path::new("/usr/local/sbin/hostexec-moving");
    let second = Path::new("/usr/local/bin/hostexec-moving");
    for (p, text) in [(first, "first"), (second, "second")] {
        sb.write_file(p, format!("#!/bin/sh\necho {text}\n").as_bytes())
            .unwrap();
        assert!(sb
            .oracle(&["chmod".as_ref(), "0755".as_ref(), p.as_os_str()])
            .status
            .success());
    }
    let h = NsEnter::new(sb.target()).unwrap();
    assert_eq!(
        stdout_of(&h, HostCommand::new("hostexec-moving")).await,
        b"first\n"
    );
    sb.remove_file(first).unwrap();
    assert_eq!(
        stdout_of(&h, HostCommand::new("hostexec-moving")).await,
        b"second\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uts_net_and_pid_namespaces() {
    if skip_without_namespaces("uts_net_and_pid_namespaces") {
        return;
    }
    let sb = SandboxHost::builder()
        .uts("hostexec-sandbox-host")
        .net()
        .pid()
        .start()
        .unwrap();
    assert_eq!(
        sb.target().get_namespaces(),
        [
            Namespace::Uts,
            Namespace::Net,
            Namespace::Pid,
            Namespace::Mount
        ]
    );
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let name = stdout_of(&h, HostCommand::new("hostname")).await;
        assert_eq!(name, b"hostexec-sandbox-host\n", "{l:?}");
        // /proc/self/net is the reader's network namespace: only the loopback device.
        let dev = stdout_of(&h, HostCommand::new("cat").arg("/proc/self/net/dev")).await;
        let devs: Vec<String> = String::from_utf8_lossy(&dev)
            .lines()
            .skip(2)
            .filter_map(|l| l.split(':').next().map(|s| s.trim().to_owned()))
            .collect();
        assert_eq!(devs, ["lo"], "{l:?}");
        for ns in ["pid", "net", "uts", "mnt"] {
            let seen = stdout_of(
                &h,
                HostCommand::new("readlink").arg(format!("/proc/self/ns/{ns}")),
            )
            .await;
            assert_eq!(
                seen,
                [ns_link(sb.pid(), ns).as_slice(), b"\n"].concat(),
                "{l:?} {ns}"
            );
        }
    }
    // The sandbox's own view agrees (util-linux nsenter as the oracle).
    let oracle = sb.oracle(&["hostname".as_ref()]);
    assert_eq!(oracle.stdout, b"hostexec-sandbox-host\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_namespace_needs_the_nsenter_binary() {
    if skip_without_namespaces("time_namespace_needs_the_nsenter_binary") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let t = sb.target().namespaces(&[Namespace::Mount, Namespace::Time]);
    match NsEnter::new(t.clone()) {
        Err(
            e @ NsEnterError::Unsupported {
                ns: Namespace::Time,
                ..
            },
        ) => {
            assert!(e.to_string().contains("Launcher::NsenterBinary"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    let h = NsEnter::builder(t)
        .launcher(Launcher::NsenterBinary)
        .build()
        .unwrap();
    let seen = stdout_of(&h, HostCommand::new("readlink").arg("/proc/self/ns/time")).await;
    assert_eq!(seen, [ns_link(sb.pid(), "time").as_slice(), b"\n"].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_targets_give_clear_errors() {
    if skip_without_namespaces("unreachable_targets_give_clear_errors") {
        return;
    }
    match NsEnter::new(Target::host_root("/nonexistent-hostexec-root")) {
        Err(e @ NsEnterError::OpenNamespace { ns: Namespace::Mount, .. }) => assert_eq!(
            e.to_string(),
            "cannot open the mnt namespace file /nonexistent-hostexec-root/proc/1/ns/mnt: No such file or directory (os error 2)"
        ),
        other => panic!("{other:?}"),
    }
    // A PID that does not exist (beyond pid_max).
    match NsEnter::new(Target::pid(99_999_999)) {
        Err(NsEnterError::OpenProcess {
            pid: 99_999_999, ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // A file that is not a namespace.
    let t = Target::pid(std::process::id()).ns_path(Namespace::Net, "/dev/null");
    match NsEnter::new(t) {
        Err(
            e @ NsEnterError::Join {
                ns: Namespace::Net, ..
            },
        ) => {
            assert!(
                e.to_string().starts_with("cannot join the net namespace"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_exited_is_refused() {
    if skip_without_namespaces("a_target_that_exited_is_refused") {
        return;
    }
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let h = host(&sb, l);
        assert!(h.run(HostCommand::new("true")).await.unwrap().success());
        let pid = sb.pid();
        drop(sb);
        match h.run(HostCommand::new("true")).await {
            Err(e @ CommandError::HostUnavailable { .. }) => {
                assert!(
                    e.to_string()
                        .contains(&format!("target process {pid} has exited")),
                    "{e}"
                )
            }
            other => panic!("{l:?}: {other:?}"),
        }
        assert_resolve_refused(&h, l).await;
    }
}

/// A resolve (MustExist, answered inline unless refused) fails with the target gone.
async fn assert_resolve_refused(h: &NsEnter, l: Launcher) {
    let r =
        hostexec_api::PathResolver::resolve(h, Path::new("/"), hostexec_api::Resolve::MustExist)
            .await;
    assert!(
        matches!(r, Err(hostexec_api::PathError::HostUnavailable { .. })),
        "{l:?}: {r:?}"
    );
}

/// The calls answered on the caller's thread (`stat`, `resolve` MustExist) read the pidfd
/// watcher's flag instead of polling the pidfd: with no other call to ask the pidfd, they
/// still refuse a target that exited, as soon as the watcher has seen the exit (a thread's
/// wake-up; bounded here at 10 s), for either launcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_calls_refuse_a_target_that_exited_once_the_watcher_saw_it() {
    if skip_without_namespaces("inline_calls_refuse_a_target_that_exited_once_the_watcher_saw_it") {
        return;
    }
    for l in LAUNCHERS {
        let sb = SandboxHost::start().unwrap();
        let h = host(&sb, l);
        let scratch = sb.scratch().to_path_buf();
        hostexec_api::HostFs::stat(&h, &scratch, true)
            .await
            .unwrap();
        let pid = sb.pid();
        drop(sb);
        let gone = |r: &Result<hostexec_api::FileStat, hostexec_api::PathError>| {
            matches!(r, Err(hostexec_api::PathError::HostUnavailable { source })
                if source.to_string().contains(&format!("target process {pid} has exited")))
        };
        let start = std::time::Instant::now();
        loop {
            let r = hostexec_api::HostFs::stat(&h, &scratch, true).await;
            if gone(&r) {
                break;
            }
            // Before the watcher has seen the exit, the answer comes through the held root
            // (whatever is left of the target's tree there): any answer but a hang.
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{l:?}: an inline stat still answers 10 s after the target exited"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if l == Launcher::HostThread {
            // Native mounts read the same flag: refused, nothing reaches the host thread.
            let req = hostexec_api::MountRequest::filesystem("tmpfs", scratch.join("x"));
            let r = hostexec_api::NativeMount::mount_native(&h, &req).await;
            assert!(
                matches!(&r, Err(e @ hostexec_api::NativeMountError::Unsupported { .. })
                    if e.to_string().contains(&format!("target process {pid} has exited"))),
                "{r:?}"
            );
        }
        assert_resolve_refused(&h, l).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_of_a_command_ignoring_sigterm_is_bounded() {
    if skip_without_namespaces("timeout_of_a_command_ignoring_sigterm_is_bounded") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let start = std::time::Instant::now();
        let r = h
            .run(
                HostCommand::new("sh")
                    .args(["-c", "trap '' TERM; sleep 30"])
                    .timeout(Duration::from_millis(100))
                    .kill_grace(Duration::from_millis(100)),
            )
            .await;
        assert!(
            matches!(r, Err(CommandError::TimedOut { .. })),
            "{l:?}: {r:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5), "{l:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_host_thread_runs_in_the_targets_namespace() {
    if skip_without_namespaces("on_host_thread_runs_in_the_targets_namespace") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let h = NsEnter::new(sb.target()).unwrap();
    let theirs = ns_link(sb.pid(), "mnt");
    let seen = h
        .on_host_thread(|| std::fs::read_link("/proc/thread-self/ns/mnt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.into_os_string().into_encoded_bytes(), theirs);
    let only_host = sb.scratch().join("f");
    sb.write_file(&only_host, b"x").unwrap();
    let p = only_host.clone();
    assert!(h.on_host_thread(move || p.exists()).await.unwrap());
    let b = NsEnter::builder(sb.target())
        .launcher(Launcher::NsenterBinary)
        .build()
        .unwrap();
    assert!(matches!(
        b.on_host_thread(|| ()).await,
        Err(NsEnterError::NeedsHostThread { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_probed_not_guessed() {
    if skip_without_namespaces("systemd_is_probed_not_guessed") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let h = NsEnter::new(sb.target()).unwrap();
    // The probe's verdict must agree with running the probe command ourselves.
    let direct = sb.oracle(&[
        "systemd-run".as_ref(),
        "--description=hostexec test".as_ref(),
        "--scope".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(h.supports_systemd().await, direct.status.success());
    if Path::new("/proc/1/comm").exists()
        && std::fs::read_to_string("/proc/1/comm").unwrap().trim() != "systemd"
    {
        assert!(
            !h.supports_systemd().await,
            "no systemd as PID 1: must be false"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_root_target_with_an_explicit_namespace_file() {
    if skip_without_namespaces("a_host_root_target_with_an_explicit_namespace_file") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let only_host = sb.scratch().join("only-on-the-host");
    sb.write_file(&only_host, b"via ns file").unwrap();
    // Go's shape: a host root path plus a namespace file (here the sandbox's, explicitly).
    let t = Target::host_root(sb.local(Path::new("/")))
        .ns_path(Namespace::Mount, format!("/proc/{}/ns/mnt", sb.pid()));
    for l in LAUNCHERS {
        let h = NsEnter::builder(t.clone()).launcher(l).build().unwrap();
        let data = stdout_of(&h, HostCommand::new("cat").arg(&only_host)).await;
        assert_eq!(data, b"via ns file", "{l:?}");
        let seen = stdout_of(&h, HostCommand::new("readlink").arg("/proc/self/ns/mnt")).await;
        assert_eq!(
            seen,
            [ns_link(sb.pid(), "mnt").as_slice(), b"\n"].concat(),
            "{l:?}"
        );
        let st = hostexec_api::HostFs::stat(&h, &only_host, true)
            .await
            .unwrap();
        assert_eq!(st.size, 11, "{l:?}");
        assert_eq!(
            hostexec_api::PathResolver::local_path(&h, &only_host).unwrap(),
            sb.local(&only_host)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mount_table_is_the_targets() {
    if skip_without_namespaces("the_mount_table_is_the_targets") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let scratch = sb.scratch().as_os_str().as_bytes().to_vec();
    let has_scratch = |table: &[u8]| {
        table
            .split(|&b| b == b'\n')
            .any(|l| l.split(|&b| b == b' ').nth(4) == Some(scratch.as_slice()))
    };
    assert!(!has_scratch(
        &std::fs::read("/proc/self/mountinfo").unwrap()
    ));
    for l in LAUNCHERS {
        let h = host(&sb, l);
        let table = hostexec_api::HostFs::read_mountinfo(&h).await.unwrap();
        assert!(
            has_scratch(&table),
            "{l:?}: the sandbox's tmpfs is in its table"
        );
        // findmnt inside the sandbox (util-linux) agrees that it is a mount point.
        let f = sb.oracle(&[
            "findmnt".as_ref(),
            "-n".as_ref(),
            "-o".as_ref(),
            "FSTYPE".as_ref(),
            sb.scratch().as_os_str(),
        ]);
        assert_eq!(f.stdout, b"tmpfs\n");
        let st = hostexec_api::HostFs::stat(&h, sb.scratch(), true)
            .await
            .unwrap();
        assert_eq!(st.mount_root, Some(true), "{l:?}");
    }
}
