//! A target process that is chrooted inside its mount namespace: for `Target::pid(P)`,
//! commands, resolution, `local_path` and the binary lookup all use P's root, and commands
//! start in P's working directory, as util-linux `nsenter -t P -m -r -w` does (the oracle).
//! `Target::host_root` uses the namespace's root.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use hostexec_api::{Executor, HostCommand, HostFs, PathError, PathResolver, Resolve};
use hostexec_nsenter::{Launcher, Namespace, NsEnter, Target};
use hostexec_testing::chroot::{ChrootedProcess, INSIDE};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const LAUNCHERS: [Launcher; 2] = [Launcher::HostThread, Launcher::NsenterBinary];

/// util-linux `nsenter -t PID -m -r -w -- argv…`: stdout.
fn oracle(pid: u32, argv: &[&str]) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "-r", "-w", "--"])
        .args(argv)
        .output()
        .unwrap();
    assert!(out.status.success(), "nsenter -r -w {argv:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn stdout(h: &NsEnter, cmd: HostCommand) -> String {
    let shown = cmd.to_string();
    let out = h.run(cmd).await.unwrap();
    assert!(out.success(), "{shown}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chrooted_target_is_run_and_resolved_in_its_own_root_and_directory() {
    if skip_without_namespaces(
        "a_chrooted_target_is_run_and_resolved_in_its_own_root_and_directory",
    ) {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let dir = sb.scratch().join("chroot");
    let p = ChrootedProcess::start(&sb, &dir).unwrap();
    let pid = p.pid();
    // Exists in the namespace's root, not in P's.
    let ns_only = sb.scratch().to_path_buf();

    // The oracle's view of P.
    assert_eq!(oracle(pid, &["pwd"]), "/work\n");
    assert_eq!(
        oracle(pid, &["cat", "/inside"]),
        String::from_utf8_lossy(INSIDE)
    );
    assert_eq!(oracle(pid, &["readlink", "-f", "/link"]), "/inside\n");
    let test_ns_only = format!("test -e '{}' && echo yes || echo no", ns_only.display());
    assert_eq!(oracle(pid, &["sh", "-c", &test_ns_only]), "no\n");

    for l in LAUNCHERS {
        let h = NsEnter::builder(Target::pid(pid))
            .launcher(l)
            .build()
            .unwrap();
        // Commands: P's root, and P's working directory unless told otherwise.
        assert_eq!(
            stdout(&h, HostCommand::new("pwd")).await,
            "/work\n",
            "{l:?}"
        );
        assert_eq!(
            stdout(&h, HostCommand::new("pwd").current_dir("/")).await,
            "/\n",
            "{l:?}"
        );
        assert_eq!(
            stdout(&h, HostCommand::new("ls").current_dir("/work")).await,
            "here\n",
            "{l:?}"
        );
        assert_eq!(
            stdout(&h, HostCommand::new("cat").arg("/inside")).await,
            String::from_utf8_lossy(INSIDE),
            "{l:?}"
        );
        assert_eq!(
            stdout(&h, HostCommand::new("sh").args(["-c", &test_ns_only])).await,
            "no\n",
            "{l:?}"
        );
        let readlink = stdout(&h, HostCommand::new("readlink").args(["-f", "/link"])).await;
        assert_eq!(readlink, oracle(pid, &["readlink", "-f", "/link"]), "{l:?}");

        // Resolution: the same tree.
        let resolved = h.resolve(Path::new("/link"), Resolve::MustExist).await;
        assert_eq!(
            resolved.as_deref().ok(),
            Some(Path::new(readlink.trim_end())),
            "{l:?}: resolve agrees with the command and the oracle"
        );
        match h.resolve(&ns_only, Resolve::MustExist).await {
            Err(PathError::NotFound { .. }) => {}
            other => panic!("{l:?}: {ns_only:?} is not in P's root: {other:?}"),
        }
        assert!(h.stat(Path::new("/work/here"), true).await.is_ok(), "{l:?}");
        // local_path names the same files.
        let local = h.local_path(Path::new("/inside")).unwrap();
        assert_eq!(std::fs::read(&local).unwrap(), INSIDE, "{l:?}");
        let local_work = h.local_path(Path::new("/work/here")).unwrap();
        assert!(local_work.exists(), "{l:?}: {local_work:?}");
        // A bare name is looked up in P's root and runs there.
        let cat = h.look_path(OsStr::new("cat")).await.unwrap();
        assert!(h.local_path(&cat).unwrap().exists(), "{l:?}: {cat:?}");
        assert_eq!(
            stdout(&h, HostCommand::new(&cat).arg("/inside")).await,
            String::from_utf8_lossy(INSIDE),
            "{l:?}"
        );
    }

    // Target::host_root: the namespace's root, for commands and resolution alike.
    for l in LAUNCHERS {
        let t = Target::host_root(sb.local(Path::new("/")))
            .ns_path(Namespace::Mount, format!("/proc/{pid}/ns/mnt"));
        let h = NsEnter::builder(t).launcher(l).build().unwrap();
        assert_eq!(stdout(&h, HostCommand::new("pwd")).await, "/\n", "{l:?}");
        assert_eq!(
            stdout(&h, HostCommand::new("sh").args(["-c", &test_ns_only])).await,
            "yes\n",
            "{l:?}"
        );
        let inside = dir.join("inside");
        assert_eq!(
            h.resolve(&inside, Resolve::MustExist).await.unwrap(),
            inside,
            "{l:?}"
        );
        assert_eq!(
            std::fs::read(h.local_path(&inside).unwrap()).unwrap(),
            INSIDE,
            "{l:?}"
        );
        assert!(
            h.run(HostCommand::new("cat").arg("/inside"))
                .await
                .is_ok_and(|o| !o.success()),
            "{l:?}: /inside is P's, not the namespace root's"
        );
    }
    drop(p);
}
