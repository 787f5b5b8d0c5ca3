//! The caller's environment never reaches a host command unless asked for.
//!
//! The attack: a container process runs `LD_PRELOAD=/x/evil.so hostexec exec -- true`, where
//! `/x/evil.so` exists only in the *host's* view. If the environment passed through, the host's
//! dynamic loader would run the library's constructor in every host command (and in mount(8)).
//!
//! The test builds such a library with `cc` inside a sandbox host's private tmpfs (the oracle,
//! util-linux nsenter + the loader, shows that it loads there and that its constructor leaves a
//! mark), then re-runs this test binary as a child whose environment holds `LD_PRELOAD`,
//! `LD_LIBRARY_PATH` and a `PATH` of container directories. The child runs commands and a
//! mount through both launchers and `env -0` through each: no mark, and `env` shows `PATH`
//! alone; then the same commands with `env_from_caller("LD_PRELOAD")` do leave a mark, so the
//! check can fail. The fake's passthrough (the "host" is the caller's own view) gets a second
//! copy of the library that the child itself preloads: the child's own process leaves its
//! mark, and no command run through the passthrough does.

mod common;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

use hostexec_api::{Executor, HostCommand, HOST_PATH};
use hostexec_fake::FakeExecutor;
use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};
use hostexec_nsenter::{Launcher, NsEnter, Target};
use hostexec_testing::preload::MarkingLibrary;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const TEST: &str = "a_host_only_ld_preload_never_loads_and_env_shows_only_path";
/// Set in the child: the sandbox's PID, then the host-only library, its mark, the local
/// library's mark and a mount point in the sandbox, one a line.
const CHILD: &str = "HOSTEXEC_ENV_TEST_CHILD";

#[test]
fn a_host_only_ld_preload_never_loads_and_env_shows_only_path() {
    if let Some(args) = std::env::var_os(CHILD) {
        return child(&args);
    }
    if skip_without_namespaces(TEST) {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    // Built by the host's cc, in the host's view: the library exists there only.
    let host_lib = MarkingLibrary::in_sandbox(&sb, &sb.scratch().join("lib")).unwrap();
    assert!(
        !host_lib.so.exists(),
        "the library must exist in the host's view only"
    );
    let mount_point = sb.scratch().join("mnt");
    sb.mkdir_all(&mount_point).unwrap();
    // A second copy in the caller's view, for the fake's passthrough.
    let local_dir = tempfile::tempdir().unwrap();
    let local_lib = MarkingLibrary::local(local_dir.path()).unwrap();

    let mut args = OsString::from(sb.pid().to_string());
    for p in [&host_lib.so, &host_lib.mark, &local_lib.mark, &mount_point] {
        args.push("\n");
        args.push(p);
    }
    let mut ld_preload = host_lib.so.clone().into_os_string();
    ld_preload.push(" ");
    ld_preload.push(&local_lib.so);
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, args)
        .env("LD_PRELOAD", &ld_preload)
        .env("LD_LIBRARY_PATH", sb.scratch().join("lib"))
        .env("PATH", "/container/bin:/usr/bin:/bin")
        .env("HOSTEXEC_CALLER_ONLY", "from the container");
    common::run_child_test(child, "ENV-CHILD-DONE");
}

/// The child: `LD_PRELOAD` names the host-only library (which its own loader cannot find)
/// and the local copy (which it loads: its own PID is the only mark there).
fn child(args: &OsStr) {
    let parts: Vec<&[u8]> = args.as_bytes().split(|&b| b == b'\n').collect();
    let pid: u32 = std::str::from_utf8(parts[0]).unwrap().parse().unwrap();
    let path = |i: usize| PathBuf::from(OsStr::from_bytes(parts[i]));
    let host_mark_local =
        PathBuf::from(format!("/proc/{pid}/root")).join(path(2).strip_prefix("/").unwrap());
    let host_lib = MarkingLibrary::at(path(1), path(2), host_mark_local);
    let local_lib = MarkingLibrary::at(PathBuf::new(), path(3), path(3));
    let mount_point = path(4);
    let me = std::process::id();
    assert_eq!(
        local_lib.pids(),
        [me],
        "this process preloaded the local library"
    );
    let caller_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    assert!(caller_env.iter().any(|(k, _)| k == "LD_PRELOAD"));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only_path = format!("PATH={HOST_PATH}\0").into_bytes();
    rt.block_on(async {
        // The fake's passthrough runs in this process's own view, where the local copy exists.
        let fake = FakeExecutor::passthrough();
        for cmd in [
            HostCommand::new("true"),
            HostCommand::new("sh").args(["-c", "true"]),
        ] {
            assert!(fake.run(cmd).await.unwrap().success());
        }
        let out = fake.run(HostCommand::new("env").arg("-0")).await.unwrap();
        assert_eq!(out.stdout, only_path, "passthrough: env shows PATH alone");
        assert_eq!(
            local_lib.pids(),
            [me],
            "passthrough: a command loaded the caller's LD_PRELOAD library"
        );
        let out = fake
            .run(HostCommand::new("true").env_from_caller("LD_PRELOAD"))
            .await
            .unwrap();
        assert!(out.success());
        assert_eq!(
            local_lib.pids().len(),
            2,
            "passthrough: the opt-in passes it"
        );

        for launcher in [Launcher::HostThread, Launcher::NsenterBinary] {
            // nsenter(1) itself runs in this process's view: a leak would load the local copy.
            let local_before = local_lib.pids();
            let host = NsEnter::builder(Target::pid(pid))
                .launcher(launcher)
                .build()
                .unwrap();
            for cmd in [
                HostCommand::new("true"),
                HostCommand::new("/bin/true"),
                HostCommand::new("sh").args(["-c", "true"]),
                HostCommand::new("true").current_dir("/tmp"),
            ] {
                let out = host.run(cmd.clone()).await.unwrap();
                assert!(out.success(), "{launcher:?} {cmd}: {out:?}");
            }
            // mount(8) and umount(8) through HostMounter.
            let m = HostMounter::new(host.clone());
            m.mount(
                OsStr::new("hostexec-env"),
                &mount_point,
                "tmpfs",
                &MountOptions::new().options(["size=1m"]),
            )
            .await
            .unwrap();
            m.unmount(&mount_point, &UnmountOptions::new())
                .await
                .unwrap();
            assert_eq!(
                host_lib.pids(),
                Vec::<u32>::new(),
                "{launcher:?}: the host-only library was loaded by a host command"
            );
            assert_eq!(
                local_lib.pids(),
                local_before,
                "{launcher:?}: the caller's LD_PRELOAD was loaded on the way to the host"
            );
            let out = host.run(HostCommand::new("env").arg("-0")).await.unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&only_path),
                "{launcher:?}: env shows PATH alone"
            );
            // The opt-in does pass it: the checks above can fail.
            let out = host
                .run(HostCommand::new("true").env_from_caller("LD_PRELOAD"))
                .await
                .unwrap();
            assert!(out.success(), "{out:?}");
            assert_eq!(
                host_lib.pids().len(),
                1,
                "{launcher:?}: with env_from_caller(LD_PRELOAD) the host loads {:?}",
                host_lib.so
            );
            host_lib.clear().unwrap();
            let out = host
                .run(HostCommand::new("env").arg("-0").inherit_env())
                .await
                .unwrap();
            assert!(
                out.stdout
                    .split(|&b| b == 0)
                    .any(|l| l == b"HOSTEXEC_CALLER_ONLY=from the container"),
                "{launcher:?}: inherit_env passes the caller's environment"
            );
            assert_eq!(host_lib.pids().len(), 1, "{launcher:?}: inherit_env");
            host_lib.clear().unwrap();
        }
    });
    println!("ENV-CHILD-DONE");
}
