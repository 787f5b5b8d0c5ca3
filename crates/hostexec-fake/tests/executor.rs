//! FakeExecutor: matching, ordering, counts, errors and their messages, timeouts on paused
//! time, recording, verify and the drop check. No root needed.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, Output, OutputMode, Stdin};
use hostexec_fake::{FakeExecutor, UnexpectedCommand};

fn unexpected(r: Result<Output, CommandError>) -> (String, Vec<String>, String) {
    match r {
        Err(e) => match UnexpectedCommand::of(&e) {
            Some(u) => {
                // The program, then the fake's own error: nothing flattened on the way.
                let text = e.to_string();
                let program = match &e {
                    CommandError::Backend { program, .. } => program.to_string_lossy(),
                    _ => unreachable!(),
                };
                assert_eq!(text, format!("{program}: {u}"));
                (u.command.clone(), u.expected.clone(), text)
            }
            None => panic!("expected an UnexpectedCommand, got {e:?}"),
        },
        Ok(out) => panic!("expected an UnexpectedCommand, got {out:?}"),
    }
}

#[tokio::test]
async fn exact_args_match_and_the_whole_output_comes_back() {
    let fake = FakeExecutor::new();
    fake.expect("mount")
        .args(["-t", "tmpfs", "tmpfs", "/mnt"])
        .returns(
            Output::new("mount", ExitStatus::Code(32))
                .with_stdout("partial\n")
                .with_stderr("mount: /mnt: permission denied.\n"),
        );
    let out = fake
        .run(HostCommand::new("mount").args(["-t", "tmpfs", "tmpfs", "/mnt"]))
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(32));
    assert_eq!(out.stdout, b"partial\n");
    // Go's FakeCmd dropped stderr in CombinedOutput/Output (k8s.io/utils/exec/testing).
    assert_eq!(out.stderr, b"mount: /mnt: permission denied.\n");
    let err = out.check().unwrap_err();
    assert_eq!(
        err.to_string(),
        "mount failed with exit status 32: mount: /mnt: permission denied."
    );
    fake.verify().unwrap();
}

#[tokio::test]
async fn exact_args_refuse_extra_or_missing_arguments() {
    let fake = FakeExecutor::new();
    fake.expect("umount").args(["/mnt"]);
    for cmd in [
        HostCommand::new("umount"),
        HostCommand::new("umount").args(["/mnt", "-l"]),
        HostCommand::new("umount").args(["/mn"]),
        HostCommand::new("/usr/bin/umount").args(["/mnt"]),
    ] {
        let (_, expected, _) = unexpected(fake.run(cmd).await);
        assert_eq!(expected, vec!["umount /mnt (called 0 of 1 times)"]);
    }
    assert!(fake
        .run(HostCommand::new("umount").arg("/mnt"))
        .await
        .is_ok());
    assert_eq!(fake.refused().len(), 4);
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn prefix_and_predicate_matching() {
    let fake = FakeExecutor::new();
    fake.expect("findmnt")
        .args_prefix(["-n", "-o"])
        .times_any()
        .returns_ok_stdout(b"/\n");
    fake.expect("mount")
        .matching(|c| c.get_args().any(|a| a == "-o"))
        .named("it has -o")
        .returns_ok_stdout(b"mounted");
    let ok = fake
        .run(HostCommand::new("findmnt").args(["-n", "-o", "TARGET", "/"]))
        .await
        .unwrap();
    assert_eq!(ok.stdout, b"/\n");
    // The prefix itself, nothing more, also matches.
    assert!(fake
        .run(HostCommand::new("findmnt").args(["-n", "-o"]))
        .await
        .is_ok());
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("findmnt").arg("-n")).await);
    assert_eq!(
        expected[0],
        "findmnt -n -o <more arguments> (called 2 times, any number allowed)"
    );
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("mount").arg("/x")).await);
    assert_eq!(
        expected[1],
        "mount <any arguments> where it has -o (called 0 of 1 times)"
    );
    let out = fake
        .run(HostCommand::new("mount").args(["-o", "ro", "a", "/b"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"mounted");
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn unexpected_command_names_it_masked_and_lists_expectations() {
    let fake = FakeExecutor::new();
    fake.expect("umount").args(["/var/lib/vol"]);
    fake.expect_any().matching(|_| false);
    let cmd = HostCommand::new("mount")
        .args(["-t", "cifs", "-o"])
        .arg_masked("user=u,password=hunter2", "user=u,password=<masked>")
        .args(["//srv/share", "/var/lib/vol"]);
    let r = fake.run(cmd).await;
    let (command, expected, text) = unexpected(r);
    assert_eq!(
        command,
        "mount -t cifs -o user=u,password=<masked> //srv/share /var/lib/vol"
    );
    assert!(!text.contains("hunter2"), "{text}");
    assert_eq!(
        expected,
        vec![
            "umount /var/lib/vol (called 0 of 1 times)".to_string(),
            "<any program> <any arguments> where <a predicate> (called 0 of 1 times)".to_string(),
        ]
    );
    assert_eq!(
        text,
        "mount: unexpected command `mount -t cifs -o user=u,password=<masked> //srv/share /var/lib/vol`; \
         expected [1] umount /var/lib/vol (called 0 of 1 times); \
         [2] <any program> <any arguments> where <a predicate> (called 0 of 1 times)"
    );
    // verify reports both the unmet expectations and the refused command, still masked.
    let v = fake.verify().unwrap_err();
    assert_eq!(v.unmet.len(), 2);
    assert_eq!(v.refused.len(), 1);
    let shown = v.to_string();
    assert!(shown.contains("2 expectation(s) not met"), "{shown}");
    assert!(shown.contains("password=<masked>"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    // Nothing in Debug leaks the secret either.
    assert!(!format!("{fake:?}").contains("hunter2"));
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn an_empty_script_refuses_everything() {
    let fake = FakeExecutor::new();
    let (_, expected, text) = unexpected(fake.run(HostCommand::new("ls")).await);
    assert!(expected.is_empty());
    assert_eq!(text, "ls: unexpected command `ls`; expected no command");
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn counts_are_enforced() {
    let fake = FakeExecutor::new();
    let twice = fake.expect("sync").times(2);
    let many = fake.expect("true").times_any();
    let three = fake.expect("date").at_least(3);
    fake.run(HostCommand::new("sync")).await.unwrap();
    fake.run(HostCommand::new("sync")).await.unwrap();
    assert_eq!(twice.call_count(), 2);
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("sync")).await);
    assert_eq!(
        expected[0],
        "sync <any arguments> (called 2 of 2 times) — no more calls allowed"
    );
    assert_eq!(many.call_count(), 0);
    for _ in 0..5 {
        fake.run(HostCommand::new("date")).await.unwrap();
    }
    assert_eq!(three.call_count(), 5);
    // times(0): documented as "never": a matching command is refused with it listed.
    fake.expect("reboot").times(0);
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("reboot")).await);
    assert_eq!(
        expected[3],
        "reboot <any arguments> (called 0 of 0 times) — no more calls allowed"
    );
    // The third sync was refused: verify says so, though every count is met.
    let v = fake.verify().unwrap_err();
    assert!(v.unmet.is_empty(), "{v}");
    assert_eq!(v.refused, vec!["sync", "reboot"]);
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn verify_lists_unmet_expectations_with_counts() {
    let fake = FakeExecutor::new();
    fake.expect("mount").args(["/a"]).times(2);
    fake.expect("date").at_least(1);
    fake.expect("true").times_any();
    fake.run(HostCommand::new("mount").arg("/a")).await.unwrap();
    let v = fake.verify().unwrap_err();
    assert_eq!(
        v.unmet,
        vec![
            "mount /a (called 1 of 2 times)",
            "date <any arguments> (called 0 times, at least 1)"
        ]
    );
    assert_eq!(
        v.to_string(),
        "2 expectation(s) not met:\n  - mount /a (called 1 of 2 times)\n  - date <any arguments> (called 0 times, at least 1)"
    );
    fake.run(HostCommand::new("mount").arg("/a")).await.unwrap();
    fake.run(HostCommand::new("date")).await.unwrap();
    fake.verify().unwrap();
}

#[tokio::test]
async fn unordered_matching_takes_the_first_open_expectation() {
    let fake = FakeExecutor::new();
    fake.expect("cat").times(1).returns_ok_stdout(b"first");
    fake.expect("cat").times(1).returns_ok_stdout(b"second");
    fake.expect("ls").returns_ok_stdout(b"ls");
    assert_eq!(
        fake.run(HostCommand::new("ls")).await.unwrap().stdout,
        b"ls"
    );
    assert_eq!(
        fake.run(HostCommand::new("cat")).await.unwrap().stdout,
        b"first"
    );
    assert_eq!(
        fake.run(HostCommand::new("cat")).await.unwrap().stdout,
        b"second"
    );
    fake.verify().unwrap();
}

#[tokio::test]
async fn ordered_matching_enforces_the_declared_order() {
    let fake = FakeExecutor::ordered();
    fake.expect("mkdir").args(["-p", "/mnt/x"]);
    fake.expect("findmnt").times_any();
    fake.expect("mount").args_prefix(["-t"]);
    fake.expect("umount");

    // mount before mkdir: refused, and the message says what comes next.
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("mount").arg("-t")).await);
    assert_eq!(expected.len(), 4);
    assert_eq!(
        expected[0],
        "next in order: mkdir -p /mnt/x (called 0 of 1 times)"
    );
    fake.run(HostCommand::new("mkdir").args(["-p", "/mnt/x"]))
        .await
        .unwrap();
    // findmnt may be skipped (times_any is already satisfied).
    fake.run(HostCommand::new("mount").args(["-t", "tmpfs"]))
        .await
        .unwrap();
    // findmnt is closed now that a later expectation matched.
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("findmnt")).await);
    assert_eq!(
        expected,
        vec![
            "mount -t <more arguments> (called 1 of 1 times)",
            "next in order: umount <any arguments> (called 0 of 1 times)"
        ]
    );
    fake.run(HostCommand::new("umount")).await.unwrap();
    let v = fake.verify().unwrap_err();
    assert!(v.unmet.is_empty());
    assert_eq!(v.refused, vec!["mount -t", "findmnt"]);
    fake.no_verify_on_drop();
}

#[tokio::test]
async fn ordered_repeats_stay_on_the_current_expectation() {
    let fake = FakeExecutor::ordered();
    fake.expect("a").times(2);
    fake.expect("b");
    fake.run(HostCommand::new("a")).await.unwrap();
    // b cannot come before a's second call: a is not satisfied yet.
    let (_, expected, _) = unexpected(fake.run(HostCommand::new("b")).await);
    assert_eq!(
        expected[0],
        "next in order: a <any arguments> (called 1 of 2 times)"
    );
    fake.run(HostCommand::new("a")).await.unwrap();
    fake.run(HostCommand::new("b")).await.unwrap();
    fake.refused().iter().for_each(|r| assert_eq!(r, "b"));
    fake.no_verify_on_drop();
}

#[tokio::test(start_paused = true)]
async fn a_delay_beyond_the_timeout_times_out_at_the_timeout() {
    let fake = FakeExecutor::new();
    fake.expect("mount")
        .args(["nfs:/export", "/mnt"])
        .after(Duration::from_secs(3600))
        .returns_ok_stdout(b"never seen");
    let wall = std::time::Instant::now();
    let start = tokio::time::Instant::now();
    let r = fake
        .run(
            HostCommand::new("mount")
                .args(["nfs:/export", "/mnt"])
                .timeout(Duration::from_secs(30)),
        )
        .await;
    match r {
        Err(CommandError::TimedOut { program, timeout }) => {
            assert_eq!(program, "mount");
            assert_eq!(timeout, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    // Exactly at the timeout on tokio's clock, at once on the wall clock.
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    assert!(wall.elapsed() < Duration::from_secs(5));
    fake.verify().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delay_within_the_timeout_answers_after_the_delay() {
    let fake = FakeExecutor::new();
    fake.expect("sleep")
        .times(2)
        .after(Duration::from_secs(10))
        .returns_ok_stdout(b"done");
    let start = tokio::time::Instant::now();
    let out = fake
        .run(HostCommand::new("sleep").timeout(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"done");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    // No timeout at all: the delay alone.
    fake.run(HostCommand::new("sleep")).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn a_caller_side_timeout_cancels_a_delayed_answer() {
    let fake = FakeExecutor::new();
    fake.expect("hang").after(Duration::from_secs(600));
    let r = tokio::time::timeout(Duration::from_secs(1), fake.run(HostCommand::new("hang"))).await;
    assert!(r.is_err(), "the caller's own timeout fires first");
    // The call was received (and counted) even though it never finished.
    assert_eq!(fake.calls().len(), 1);
    fake.verify().unwrap();
}

#[tokio::test]
async fn every_received_command_is_recorded_in_full() {
    let fake = FakeExecutor::new();
    fake.expect("cryptsetup").times_any();
    let secret_arg = OsStr::from_bytes(b"key=\xff\x00x");
    let cmd = HostCommand::new("cryptsetup")
        .args(["open", "/dev/sdb"])
        .arg_masked("--key-file=/run/secret", "--key-file=<masked>")
        .env("LC_ALL", "C")
        .env_remove("HOME")
        .current_dir("/var/lib")
        .stdin(Stdin::Bytes(b"passphrase".to_vec()))
        .timeout(Duration::from_secs(5));
    fake.run(cmd.clone()).await.unwrap();
    // An invalid command is recorded too, and fails as a real backend would.
    let bad = HostCommand::new("cryptsetup").arg(secret_arg);
    assert!(matches!(
        fake.run(bad.clone()).await,
        Err(CommandError::InvalidInput { .. })
    ));
    let calls = fake.calls();
    assert_eq!(calls, vec![cmd, bad]);
    let c = &calls[0];
    // The received command, secrets and all: not the scripted argv (Go's FakeCmd logged that).
    assert_eq!(c.get_args().nth(2).unwrap(), "--key-file=/run/secret");
    assert_eq!(
        c.get_env().get("LC_ALL").and_then(|v| v.value()),
        Some(OsStr::new("C"))
    );
    assert_eq!(
        c.get_env().get("HOME"),
        Some(&hostexec_api::EnvVar::Removed)
    );
    assert_eq!(c.get_current_dir(), Some(Path::new("/var/lib")));
    assert_eq!(c.get_stdin(), &Stdin::Bytes(b"passphrase".to_vec()));
    assert_eq!(c.get_timeout(), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn invalid_commands_do_not_use_up_expectations() {
    let fake = FakeExecutor::new();
    let e = fake.expect("ls");
    let r = fake
        .run(HostCommand::new("ls").arg(OsStr::from_bytes(b"a\0b")))
        .await;
    assert!(matches!(r, Err(CommandError::InvalidInput { .. })), "{r:?}");
    assert_eq!(e.call_count(), 0);
    fake.run(HostCommand::new("ls")).await.unwrap();
    fake.verify().unwrap();
}

#[tokio::test]
async fn errors_and_closures_answer() {
    let fake = FakeExecutor::new();
    fake.expect("mount")
        .times(2)
        .fails_with(CommandError::Spawn {
            program: "mount".into(),
            source: std::io::Error::from_raw_os_error(13),
        });
    fake.expect("echo").times_any().answer_with(|cmd| {
        let mut s = cmd.display_args().join(" ");
        s.push('\n');
        Ok(Output::new(cmd.get_program(), ExitStatus::Code(0)).with_stdout(s))
    });
    fake.expect("kill-me")
        .returns_status(ExitStatus::Signal(9), "Killed\n");
    for _ in 0..2 {
        let e = fake.run(HostCommand::new("mount")).await.unwrap_err();
        assert_eq!(e.raw_os_error(), Some(13));
        assert_eq!(
            e.to_string(),
            "could not start mount: Permission denied (os error 13)"
        );
    }
    let out = fake
        .run(HostCommand::new("echo").args(["a", "b"]))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"a b\n");
    // A boxed backend cause, answered twice: its text and its OS error survive the copy.
    #[derive(Debug, thiserror::Error)]
    #[error("cannot join the mnt namespace: {0}")]
    struct Join(#[source] std::io::Error);
    fake.expect("gone")
        .times(2)
        .fails_with(CommandError::host_unavailable(Join(
            std::io::Error::from_raw_os_error(1),
        )));
    for _ in 0..2 {
        let e = fake.run(HostCommand::new("gone")).await.unwrap_err();
        assert!(matches!(e, CommandError::HostUnavailable { .. }), "{e:?}");
        assert_eq!(e.raw_os_error(), Some(1));
        assert_eq!(
            e.to_string(),
            "host unavailable: cannot join the mnt namespace: Operation not permitted (os error 1)"
        );
    }
    let out = fake.run(HostCommand::new("kill-me")).await.unwrap();
    assert_eq!(out.exit_code(), 137);
    assert_eq!(out.stderr, b"Killed\n");
    fake.verify().unwrap();
}

#[tokio::test]
async fn capture_settings_of_the_command_are_honoured() {
    let fake = FakeExecutor::new();
    fake.expect("blkid").times(3).returns(
        Output::new("blkid", ExitStatus::Code(0))
            .with_stdout("0123456789")
            .with_stderr("warn"),
    );
    let out = fake
        .run(HostCommand::new("blkid").capture_limit(4))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"0123");
    assert!(out.stdout_truncated);
    assert_eq!(out.stderr, b"warn");
    assert!(!out.stderr_truncated);
    let out = fake
        .run(
            HostCommand::new("blkid")
                .stdout(OutputMode::Null)
                .stderr(OutputMode::Inherit),
        )
        .await
        .unwrap();
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let out = fake
        .run(HostCommand::new("blkid").capture_limit(10))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"0123456789");
    assert!(!out.stdout_truncated, "exactly the limit is not truncated");
}

#[tokio::test]
async fn look_path_and_systemd_are_configurable() {
    let fake = FakeExecutor::new().with_bins(["mount", "/sbin/mkfs.ext4"]);
    assert_eq!(
        fake.look_path(OsStr::new("mount")).await.unwrap(),
        Path::new("/usr/bin/mount")
    );
    assert_eq!(
        fake.look_path(OsStr::new("mkfs.ext4")).await.unwrap(),
        Path::new("/sbin/mkfs.ext4")
    );
    match fake.look_path(OsStr::new("sh")).await {
        Err(e @ CommandError::NotFound { .. }) => {
            assert!(
                e.to_string()
                    .starts_with("sh: command not found on the host (searched /, /bin, /usr/sbin"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!fake.supports_systemd().await, "default false");
    assert!(
        FakeExecutor::new()
            .with_systemd(true)
            .supports_systemd()
            .await
    );
}

#[test]
fn drop_checks_unmet_expectations() {
    let r = std::panic::catch_unwind(|| {
        let fake = FakeExecutor::new();
        fake.expect("mount").args(["/a"]);
        drop(fake);
    });
    let msg = r.expect_err("an unmet expectation panics on drop");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("1 expectation(s) not met") && msg.contains("mount /a (called 0 of 1 times)"),
        "{msg}"
    );

    // Turned off: no panic.
    let fake = FakeExecutor::new().no_verify_on_drop();
    fake.expect("mount");
    drop(fake);

    // A clone keeps the script alive; only the last drop checks.
    let r = std::panic::catch_unwind(|| {
        let fake = FakeExecutor::new();
        let clone = fake.clone();
        fake.expect("x");
        drop(fake);
        // Still alive through the clone: the call is met there.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(clone.run(HostCommand::new("x"))).unwrap();
        drop(clone);
    });
    assert!(r.is_ok());

    // Already panicking: the drop check stays quiet (no double panic, no abort).
    let r = std::panic::catch_unwind(|| {
        let fake = FakeExecutor::new();
        fake.expect("never");
        panic!("the test's own failure");
    });
    let msg = r.unwrap_err();
    assert_eq!(
        msg.downcast_ref::<&str>().copied(),
        Some("the test's own failure")
    );
}

#[test]
fn send_sync_clone_debug() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_traits::<FakeExecutor>();
    fn assert_send<T: Send + Sync>() {}
    assert_send::<hostexec_fake::Expectation>();
    assert_send::<hostexec_fake::VerifyError>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_use_from_many_tasks() {
    let fake = FakeExecutor::new();
    fake.expect("stat").times(200).answer_with(|cmd| {
        Ok(Output::new(cmd.get_program(), ExitStatus::Code(0))
            .with_stdout(cmd.display_args().concat()))
    });
    let mut tasks = Vec::new();
    for i in 0..200 {
        let f = fake.clone();
        tasks.push(tokio::spawn(async move {
            let out = f
                .run(HostCommand::new("stat").arg(format!("/p{i}")))
                .await
                .unwrap();
            assert_eq!(out.stdout, format!("/p{i}").as_bytes());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(fake.calls().len(), 200);
    fake.verify().unwrap();
}
