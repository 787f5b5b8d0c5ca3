//! FakeExecutor::passthrough: real commands in the current namespaces, keeping the Executor
//! contract (the api's conformance suite), and expectations taking precedence. No root needed.

use std::ffi::OsStr;
use std::time::Duration;

use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, Stdin};
use hostexec_fake::FakeExecutor;

/// The passthrough is a test double that spawns with std's `Command` in this process, and
/// the fake may not use `unsafe` (a `pre_exec` hook is the only way to drop such descriptors
/// in the child; hostexec-nsenter, the real backend, has that hook). So the passthrough
/// passes on what this process itself leaked: descriptors it holds without `FD_CLOEXEC`.
/// When there are none the whole contract runs; otherwise everything but the strict
/// descriptor check, and a leak check that allows exactly those (and nothing hostexec or
/// this test opened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_keeps_the_executor_contract_but_passes_on_descriptors_the_caller_leaked() {
    use hostexec_api::conformance as c;
    let fake = FakeExecutor::passthrough();
    let inherited = hostexec_testing::fds::inheritable();
    if inherited.is_empty() {
        c::executor_contract(&fake).await;
    } else {
        // executor_contract minus no_descriptor_leaks, which cannot pass when the test process
        // itself holds inheritable descriptors; the leak check below allows exactly those.
        eprintln!("note: this test process inherited descriptors {inherited:?} without CLOEXEC; checking leaks relative to them");
        c::exit_codes(&fake).await;
        c::killed_by_signal(&fake).await;
        c::arguments_arrive_literally(&fake).await;
        c::standard_streams(&fake).await;
        c::environment(&fake).await;
        c::working_directory(&fake).await;
        c::missing_programs(&fake).await;
        c::capture_is_capped(&fake).await;
        c::timeout_kills_the_group(&fake).await;
        c::timeout_escalates_to_sigkill(&fake).await;
        c::drop_kills_the_group(&fake).await;
        c::grandchild_holding_pipes(&fake).await;
        c::concurrent_commands(&fake).await;
    }
    // Our own leak check, always: descriptors this process opens never reach the command.
    let held: Vec<std::fs::File> = (0..4)
        .map(|_| std::fs::File::open("/proc/self/status").unwrap())
        .collect();
    let out = fake
        .run(HostCommand::new("ls").arg("/proc/self/fd"))
        .await
        .unwrap();
    let seen: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(|fd| *fd > 3 && !inherited.contains(fd))
        .collect();
    assert!(
        seen.is_empty(),
        "descriptors leaked into the command: {seen:?}"
    );
    drop(held);
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
