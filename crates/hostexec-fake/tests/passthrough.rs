//! FakeExecutor::passthrough: real commands in the current namespaces, keeping the Executor
//! contract (the api's conformance suite), and expectations taking precedence. No root needed.

use std::ffi::OsStr;
use std::time::Duration;

use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, Stdin};
use hostexec_fake::FakeExecutor;

/// The passthrough runs on the real backend's engine (hostexec-supervise), whose
/// posix_spawn closes every descriptor above 2 in the child: the whole contract holds, the
/// strict descriptor check included, even with a descriptor this process holds without
/// `FD_CLOEXEC` (made here on purpose, as a shell or a Go parent may leave one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_keeps_the_executor_contract() {
    use hostexec_api::conformance as c;
    let fake = FakeExecutor::passthrough();
    let leaked = rustix::fs::open(
        "/dev/null",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    assert!(
        !hostexec_testing::fds::inheritable().is_empty(),
        "the test holds an inheritable descriptor"
    );
    c::executor_contract(&fake).await;
    drop(leaked);
    // Everything ran for real and was recorded; nothing was refused.
    assert!(fake.calls().len() > 20, "{}", fake.calls().len());
    fake.verify().unwrap();
}

#[tokio::test]
async fn passthrough_runs_real_tools_with_the_whole_command() {
    let fake = FakeExecutor::passthrough();
    let out = fake
        .run(
            HostCommand::new("sh")
                .args([
                    "-c",
                    "printf '%s|%s|' \"$1\" \"$K\"; pwd; cat; echo err >&2; exit 3",
                    "sh",
                    "a b",
                ])
                .env_clear()
                .env("K", "v")
                .current_dir("/tmp")
                .stdin(Stdin::Bytes(b"in\n".to_vec())),
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout, b"a b|v|/tmp\nin\n");
    assert_eq!(out.stderr, b"err\n");
    let sh = fake.look_path(OsStr::new("sh")).await.unwrap();
    assert!(sh.is_absolute() && sh.ends_with("sh"), "{sh:?}");
}

#[tokio::test]
async fn expectations_take_precedence_over_passthrough() {
    let fake = FakeExecutor::passthrough();
    fake.expect("mount").returns_ok_stdout(b"scripted");
    let out = fake.run(HostCommand::new("mount")).await.unwrap();
    assert_eq!(out.stdout, b"scripted");
    let out = fake
        .run(HostCommand::new("echo").arg("real"))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"real\n");
    assert_eq!(fake.calls().len(), 2);
    fake.verify().unwrap();
}

#[tokio::test]
async fn one_expectation_can_pass_through_in_a_strict_script() {
    let fake = FakeExecutor::ordered();
    fake.expect("printf").args(["x"]).passes_through();
    fake.expect("sleep")
        .passes_through()
        .matching(|c| c.get_timeout().is_some());
    let out = fake.run(HostCommand::new("printf").arg("x")).await.unwrap();
    assert_eq!(out.stdout, b"x");
    let r = fake
        .run(
            HostCommand::new("sleep")
                .arg("30")
                .timeout(Duration::from_millis(100))
                .kill_grace(Duration::from_millis(100)),
        )
        .await;
    assert!(matches!(r, Err(CommandError::TimedOut { .. })), "{r:?}");
    // Not passthrough mode: anything else is still refused.
    let refused = fake.run(HostCommand::new("true")).await.unwrap_err();
    assert!(
        hostexec_fake::UnexpectedCommand::of(&refused).is_some(),
        "{refused:?}"
    );
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn stdin_a_command_does_not_read_is_no_error() {
    let fake = FakeExecutor::passthrough();
    // More than a pipe buffer, to a command that exits without reading: EPIPE is ours to eat.
    let out = fake
        .run(
            HostCommand::new("true")
                .stdin(Stdin::Bytes(vec![b'x'; 4 << 20]))
                .timeout(Duration::from_secs(20)),
        )
        .await
        .unwrap();
    assert!(out.success());
    // A non-UTF-8 argument arrives byte for byte.
    use std::os::unix::ffi::OsStrExt;
    let out = fake
        .run(HostCommand::new("printf").args([OsStr::new("%s"), OsStr::from_bytes(b"\xff\xfe")]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"\xff\xfe");
}

/// The passthrough shares the real backend's engine, so a hung mount (reached here through
/// the sandbox's `/proc/PID/root`) is handled the same way: a D-state child times out on
/// time with a lingering note and is reaped once the mount answers; a spawn stuck on a hung
/// program path, and one whose working directory is on the hung mount, time out while a
/// healthy command runs meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_on_a_hung_mount_ends_on_time_and_reaps() {
    use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};
    use std::time::Instant;
    if skip_without_namespaces("passthrough_on_a_hung_mount_ends_on_time_and_reaps") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let dir = sb.scratch().join("hung");
    sb.mkdir_all(&dir).unwrap();
    let mut hung = sb.hung_fuse_mount(&dir).unwrap();
    hung.park_waiter("x").unwrap();
    let fake = FakeExecutor::passthrough();
    let local = sb.local(&dir);

    let started = Instant::now();
    let stuck_spawn = tokio::spawn({
        let fake = fake.clone();
        let prog = local.join("bin/prog");
        async move {
            fake.run(HostCommand::new(prog).timeout(Duration::from_secs(2)))
                .await
        }
    });
    let r = fake
        .run(
            HostCommand::new("stat")
                .arg("--")
                .arg(local.join("x"))
                .timeout(Duration::from_secs(1))
                .kill_grace(Duration::from_millis(200)),
        )
        .await;
    let took = started.elapsed();
    let lingering = match r {
        Err(CommandError::TimedOut {
            lingering: Some(l), ..
        }) => l,
        other => panic!("a D-state child gives TimedOut with a lingering note: {other:?}"),
    };
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(lingering.state, 'D');
    // A healthy command meanwhile.
    let out = fake
        .run(
            HostCommand::new("echo")
                .arg("ok")
                .timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"ok\n");
    let r = stuck_spawn.await.unwrap();
    assert!(matches!(r, Err(CommandError::TimedOut { .. })), "{r:?}");

    // A working directory on the hung mount: the spawn's chdir blocks; the call still ends
    // on time and a healthy command runs meanwhile.
    let started = Instant::now();
    let stuck_cwd = tokio::spawn({
        let fake = fake.clone();
        let cwd = local.join("sub");
        async move {
            fake.run(
                HostCommand::new("true")
                    .current_dir(cwd)
                    .timeout(Duration::from_secs(2)),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let out = fake
        .run(
            HostCommand::new("echo")
                .arg("ok")
                .timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"ok\n");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let r = stuck_cwd.await.unwrap();
    assert!(matches!(r, Err(CommandError::TimedOut { .. })), "{r:?}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    hung.abort();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(format!("/proc/{}", lingering.pid)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the lingering child was never reaped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `HostCommand::controlling_tty` on the passthrough (the real backend's engine): the same
/// contract as the real backend's, on a real pty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_gives_a_controlling_terminal() {
    let fake = FakeExecutor::passthrough();
    hostexec_api::conformance::controlling_tty(&fake, &mut || {
        hostexec_testing::pty::open().expect("a pty")
    })
    .await;
    fake.verify().unwrap();
}
