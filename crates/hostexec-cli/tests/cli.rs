//! The `hostexec` binary against a sandbox host (a process in its own mount namespace with a
//! private tmpfs), compared with util-linux and coreutils run through `nsenter` into the same
//! sandbox. Tests that need namespaces skip, with a printed reason, only without
//! CAP_SYS_ADMIN, and never under CI=true.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostexec_testing::chroot::{ChrootedProcess, INSIDE};
use hostexec_testing::preload::MarkingLibrary;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

mod common;
use common::{assert_no_panic, code, on, os, run, run_on, run_with, sandbox, stderr, BIN};

// ---------------------------------------------------------------- exec

#[test]
fn exec_reads_a_file_only_the_host_sees() {
    let Some(sb) = sandbox("exec_reads_a_file_only_the_host_sees") else {
        return;
    };
    let f = sb.scratch().join("secret-of-the-host");
    sb.write_file(&f, b"only on the host\n").unwrap();
    assert!(!f.exists(), "the sandbox's tmpfs must not be visible here");
    let out = run_on(&sb, &[os("exec"), os("--"), os("cat"), f.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"only on the host\n");
    let oracle = sb.oracle(&[os("cat"), f.as_os_str()]);
    assert_eq!(out.stdout, oracle.stdout);
}

#[test]
fn exec_passes_stdin_and_arguments_through_byte_for_byte() {
    let Some(sb) = sandbox("exec_passes_stdin_and_arguments_through_byte_for_byte") else {
        return;
    };
    let weird = OsString::from_vec(b"$(id) a b;\xff\xfe".to_vec());
    let out = run_on(
        &sb,
        &[
            os("exec"),
            os("--"),
            os("printf"),
            os("%s|"),
            &weird,
            os("--json"),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"$(id) a b;\xff\xfe|--json|");

    let args = on(&sb, &[os("exec"), os("--"), os("cat")]);
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let out = run_with(&refs, &[], b"through stdin\x00\xff");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"through stdin\x00\xff");
}

#[test]
fn exec_env_and_cwd_are_the_hosts() {
    let Some(sb) = sandbox("exec_env_and_cwd_are_the_hosts") else {
        return;
    };
    let out = run_on(
        &sb,
        &[
            os("exec"),
            os("--env"),
            os("GREETING=a=b"),
            os("--cwd"),
            sb.scratch().as_os_str(),
            os("--"),
            os("sh"),
            os("-c"),
            os("printf '%s\\n' \"$GREETING\"; pwd; mount | grep -c hostexec-sandbox >/dev/null && echo host-view"),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let want = format!("a=b\n{}\nhost-view\n", sb.scratch().display());
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
}

/// `env -0` output as sorted `K=V` entries.
fn env_entries(stdout: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = stdout
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn exec_environment_is_path_alone_unless_asked_and_a_host_only_ld_preload_never_loads() {
    let Some(sb) = sandbox(
        "exec_environment_is_path_alone_unless_asked_and_a_host_only_ld_preload_never_loads",
    ) else {
        return;
    };
    // A library that exists only in the host's view, as a container's LD_PRELOAD could name.
    let lib = MarkingLibrary::in_sandbox(&sb, &sb.scratch().join("lib")).unwrap();
    let so = lib.so.to_str().unwrap().to_owned();
    let libdir = sb.scratch().join("lib").to_str().unwrap().to_owned();
    let mount_point = sb.scratch().join("mnt");
    sb.mkdir_all(&mount_point).unwrap();
    let caller: [(&str, &str); 4] = [
        ("LD_PRELOAD", &so),
        ("LD_LIBRARY_PATH", &libdir),
        ("PATH", "/container/bin:/usr/bin:/bin"),
        ("HOSTEXEC_CALLER_ONLY", "from the container"),
    ];
    let path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    for launcher in ["host-thread", "nsenter"] {
        // `hostexec --target-pid P --launcher L <sub> <rest…>` with the caller's environment.
        let hostexec = |sub: &str, rest: &[&OsStr]| {
            let mut args = on(&sb, &[os("--launcher"), os(launcher), os(sub)]);
            args.extend(rest.iter().map(|a| a.to_os_string()));
            let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
            let out = run_with(&refs, &caller, b"");
            assert_eq!(code(&out), 0, "{launcher} {sub} {rest:?}: {}", stderr(&out));
            out
        };
        let exec = |flags: &[&str], cmd: &[&str]| {
            let rest: Vec<&OsStr> = flags
                .iter()
                .chain(&["--"])
                .chain(cmd)
                .map(|a| os(a))
                .collect();
            hostexec("exec", &rest)
        };
        exec(&[], &["true"]);
        exec(&[], &["sh", "-c", "true"]);
        let target = mount_point.as_os_str();
        hostexec(
            "mount",
            &[os("-t"), os("tmpfs"), os("hostexec-env"), target],
        );
        hostexec("umount", &[target]);
        assert_eq!(
            lib.pids(),
            Vec::<u32>::new(),
            "{launcher}: the host loaded the caller's LD_PRELOAD"
        );
        let out = exec(&[], &["env", "-0"]);
        assert_eq!(
            env_entries(&out.stdout),
            [path],
            "{launcher}: env shows PATH alone"
        );
        let out = exec(
            &[
                "--env-from-caller",
                "HOSTEXEC_CALLER_ONLY",
                "--env-from-caller",
                "UNSET_HERE",
                "--env",
                "K=V",
            ],
            &["env", "-0"],
        );
        assert_eq!(
            env_entries(&out.stdout),
            ["HOSTEXEC_CALLER_ONLY=from the container", "K=V", path],
            "{launcher}: --env-from-caller passes that variable alone"
        );
        assert_eq!(lib.pids(), Vec::<u32>::new(), "{launcher}");
        // Asked for, the caller's environment does reach the host, LD_PRELOAD included.
        let out = exec(&["--inherit-env"], &["env", "-0"]);
        let entries = env_entries(&out.stdout);
        assert!(
            entries
                .iter()
                .any(|e| e == "HOSTEXEC_CALLER_ONLY=from the container")
                && entries
                    .iter()
                    .any(|e| e == "PATH=/container/bin:/usr/bin:/bin"),
            "{launcher}: --inherit-env: {entries:?}"
        );
        assert_eq!(
            lib.pids().len(),
            1,
            "{launcher}: --inherit-env passes LD_PRELOAD"
        );
        lib.clear().unwrap();
        exec(&["--env-from-caller", "LD_PRELOAD"], &["true"]);
        assert_eq!(
            lib.pids().len(),
            1,
            "{launcher}: --env-from-caller LD_PRELOAD"
        );
        lib.clear().unwrap();
    }
}

#[test]
fn a_chrooted_target_pid_is_run_and_resolved_in_its_root_and_directory() {
    let Some(sb) = sandbox("a_chrooted_target_pid_is_run_and_resolved_in_its_root_and_directory")
    else {
        return;
    };
    let p = ChrootedProcess::start(&sb, &sb.scratch().join("chroot")).unwrap();
    let pid = p.pid().to_string();
    for launcher in ["host-thread", "nsenter"] {
        let run_p = |rest: &[&str]| {
            let mut args = vec!["--target-pid", &pid, "--launcher", launcher];
            args.extend(rest);
            let refs: Vec<&OsStr> = args.iter().map(|a| os(a)).collect();
            let out = run(&refs);
            assert_eq!(code(&out), 0, "{launcher} {rest:?}: {}", stderr(&out));
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(run_p(&["exec", "--", "pwd"]), "/work\n", "{launcher}");
        assert_eq!(
            run_p(&["exec", "--cwd", "/", "--", "pwd"]),
            "/\n",
            "{launcher}"
        );
        assert_eq!(
            run_p(&["exec", "--", "cat", "/inside"]).as_bytes(),
            INSIDE,
            "{launcher}"
        );
        assert_eq!(run_p(&["realpath", "/link"]), "/inside\n", "{launcher}");
        // The binary `which` finds is in P's root and runs there.
        let cat = run_p(&["which", "cat"]);
        assert_eq!(
            run_p(&["exec", "--", cat.trim_end(), "/inside"]).as_bytes(),
            INSIDE,
            "{launcher}"
        );
    }
}

#[test]
fn exec_exit_status_is_the_commands_and_signals_are_128_plus_n() {
    let Some(sb) = sandbox("exec_exit_status_is_the_commands_and_signals_are_128_plus_n") else {
        return;
    };
    let out = run_on(
        &sb,
        &[os("exec"), os("--"), os("sh"), os("-c"), os("exit 7")],
    );
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        out.stderr.is_empty(),
        "a failing command is not a hostexec error: {}",
        stderr(&out)
    );
    let out = run_on(&sb, &[os("exec"), os("--"), os("false")]);
    assert_eq!(code(&out), 1);
    let out = run_on(
        &sb,
        &[
            os("exec"),
            os("--"),
            os("sh"),
            os("-c"),
            os("kill -TERM $$"),
        ],
    );
    assert_eq!(code(&out), 128 + 15, "{}", stderr(&out));
    let out = run_on(
        &sb,
        &[
            os("exec"),
            os("--"),
            os("sh"),
            os("-c"),
            os("kill -KILL $$"),
        ],
    );
    assert_eq!(code(&out), 128 + 9, "{}", stderr(&out));
}

#[test]
fn exec_of_a_missing_command_is_127_and_names_it() {
    let Some(sb) = sandbox("exec_of_a_missing_command_is_127_and_names_it") else {
        return;
    };
    let out = run_on(&sb, &[os("exec"), os("--"), os("no-such-tool-on-the-host")]);
    assert_eq!(code(&out), 127);
    let err = stderr(&out);
    assert!(err.starts_with("hostexec: "), "{err}");
    assert!(err.contains("no-such-tool-on-the-host"), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    let missing_abs = sb.scratch().join("nope");
    let out = run_on(&sb, &[os("exec"), os("--"), missing_abs.as_os_str()]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stderr(&out).contains("nope"));
}

#[test]
fn exec_timeout_is_124_and_kills_the_whole_process_group() {
    let Some(sb) = sandbox("exec_timeout_is_124_and_kills_the_whole_process_group") else {
        return;
    };
    let pid_file = sb.scratch().join("grandchild.pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let start = Instant::now();
    let out = run_on(
        &sb,
        &[
            os("--timeout"),
            os("300ms"),
            os("exec"),
            os("--"),
            os("sh"),
            os("-c"),
            os(&script),
        ],
    );
    let took = start.elapsed();
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("timed out"), "{err}");
    assert!(err.starts_with("hostexec: "), "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let pid: u32 = std::fs::read_to_string(sb.local(&pid_file))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The sandbox shares this PID namespace: the grandchild's PID is ours too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !alive(pid),
        "the grandchild sleep {pid} survived the timeout"
    );
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn sigterm_to_hostexec_kills_the_host_command_and_exits_143() {
    let Some(sb) = sandbox("sigterm_to_hostexec_kills_the_host_command_and_exits_143") else {
        return;
    };
    let pid_file = sb.scratch().join("sleeper.pid");
    let script = format!("sleep 60 & echo $! > {}; wait", pid_file.display());
    let child = Command::new(BIN)
        .args(on(
            &sb,
            &[os("exec"), os("--"), os("sh"), os("-c"), os(&script)],
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let local = sb.local(&pid_file);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleeper: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&local)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the host command never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(sleeper) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        !alive(sleeper),
        "the host command's sleep {sleeper} outlived hostexec"
    );
}

#[test]
fn exec_leaks_no_descriptor_into_the_host_command() {
    let Some(sb) = sandbox("exec_leaks_no_descriptor_into_the_host_command") else {
        return;
    };
    // Whatever this test process itself inherited (a CI runner's descriptors) passes through
    // hostexec like through any program; nothing hostexec opened (pidfd, namespace files, the
    // host root, tokio's epoll and pipes) may reach the host command.
    let mut allowed: Vec<u32> = vec![0, 1, 2];
    allowed.extend(hostexec_testing::fds::inheritable());
    for launcher in ["host-thread", "nsenter"] {
        let out = run_on(
            &sb,
            &[
                os("--launcher"),
                os(launcher),
                os("exec"),
                os("--"),
                os("sh"),
                os("-c"),
                os("ls /proc/$$/fd"),
            ],
        );
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut fds: Vec<u32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        fds.sort_unstable();
        assert!(fds.starts_with(&[0, 1, 2]), "{launcher}: {fds:?}");
        let leaked: Vec<u32> = fds
            .iter()
            .copied()
            .filter(|fd| !allowed.contains(fd))
            .collect();
        assert!(
            leaked.is_empty(),
            "{launcher}: descriptors leaked into the host command: {leaked:?} (all: {fds:?})"
        );
    }
}

#[test]
fn exec_through_the_nsenter_launcher_and_a_host_root() {
    let Some(sb) = sandbox("exec_through_the_nsenter_launcher_and_a_host_root") else {
        return;
    };
    let f = sb.scratch().join("f");
    sb.write_file(&f, b"via nsenter").unwrap();
    let out = run_on(
        &sb,
        &[
            os("--launcher"),
            os("nsenter"),
            os("exec"),
            os("--"),
            os("cat"),
            f.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"via nsenter");

    // The same host named by a root directory and a mount namespace file.
    let root = format!("/proc/{}/root", sb.pid());
    let mnt = format!("/proc/{}/ns/mnt", sb.pid());
    let out = run(&[
        os("--host-root"),
        os(&root),
        os("--mount-ns"),
        os(&mnt),
        os("exec"),
        os("--"),
        os("cat"),
        f.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"via nsenter");

    // HOSTEXEC_HOST_ROOT from the environment does not conflict with --target-pid.
    let args = on(&sb, &[os("exec"), os("--"), os("cat"), f.as_os_str()]);
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let out = run_with(&refs, &[("HOSTEXEC_HOST_ROOT", "/nonexistent")], b"");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn ns_list_joins_the_uts_namespace_too() {
    if skip_without_namespaces("ns_list_joins_the_uts_namespace_too") {
        return;
    }
    let sb = SandboxHost::builder().uts("hostexec-sbx").start().unwrap();
    let out = run_on(
        &sb,
        &[
            os("--ns"),
            os("mnt,uts"),
            os("exec"),
            os("--"),
            os("hostname"),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hostexec-sbx\n");
    let out = run_on(
        &sb,
        &[os("--ns"), os("mnt"), os("exec"), os("--"), os("hostname")],
    );
    assert_ne!(
        out.stdout, b"hostexec-sbx\n",
        "without uts the caller's hostname shows"
    );
    // The host thread cannot join a time namespace: a clear error, not a crash.
    let out = run_on(
        &sb,
        &[os("--ns"), os("mnt,time"), os("exec"), os("--"), os("true")],
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("time"), "{}", stderr(&out));
}

// ---------------------------------------------------------------- realpath, which

#[test]
fn realpath_follows_host_only_symlinks_like_gnu_realpath() {
    let Some(sb) = sandbox("realpath_follows_host_only_symlinks_like_gnu_realpath") else {
        return;
    };
    let s = sb.scratch();
    sb.mkdir_all(&s.join("real/dir")).unwrap();
    sb.write_file(&s.join("real/dir/file"), b"x").unwrap();
    sb.symlink(s.join("real"), &s.join("abs")).unwrap();
    sb.symlink("abs/dir", &s.join("rel")).unwrap();
    let queries = [
        s.join("rel/file"),
        s.join("abs/dir/../dir/file"),
        s.join("abs"),
        s.join("rel/"),
    ];
    let mut args = vec![os("realpath")];
    args.extend(queries.iter().map(|p| p.as_os_str()));
    let out = run_on(&sb, &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut oracle_args = vec![os("realpath"), os("-e")];
    oracle_args.extend(queries.iter().map(|p| p.as_os_str()));
    let oracle = sb.oracle(&oracle_args);
    assert!(oracle.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&oracle.stdout)
    );
    assert_eq!(
        out.stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        4
    );

    // -m: missing components are kept lexically.
    let missing = s.join("rel/missing/../other");
    let out = run_on(&sb, &[os("realpath"), os("-m"), missing.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let oracle = sb.oracle(&[os("realpath"), os("-m"), missing.as_os_str()]);
    assert_eq!(out.stdout, oracle.stdout);
}

#[test]
fn realpath_errors_are_strerror_lines_and_the_rest_carries_on() {
    let Some(sb) = sandbox("realpath_errors_are_strerror_lines_and_the_rest_carries_on") else {
        return;
    };
    let s = sb.scratch();
    sb.write_file(&s.join("file"), b"").unwrap();
    sb.symlink("loop", &s.join("loop")).unwrap();
    let missing = s.join("missing");
    let notdir = s.join("file/x");
    let looped = s.join("loop");
    let good = s.join("file");
    let out = run_on(
        &sb,
        &[
            os("realpath"),
            os("-e"),
            missing.as_os_str(),
            good.as_os_str(),
            notdir.as_os_str(),
            looped.as_os_str(),
            os("relative/path"),
        ],
    );
    assert_eq!(code(&out), 1);
    let mut want_out = good.as_os_str().as_bytes().to_vec();
    want_out.push(b'\n');
    assert_eq!(out.stdout, want_out, "only the good path on stdout");
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "hostexec: realpath: {}: No such file or directory",
                missing.display()
            ),
            format!("hostexec: realpath: {}: Not a directory", notdir.display()),
            format!(
                "hostexec: realpath: {}: Too many levels of symbolic links",
                looped.display()
            ),
            "hostexec: realpath: relative/path: not an absolute path".to_owned(),
        ]
    );
    // A loop is an error with -m too (GNU realpath -m would print the path).
    let out = run_on(
        &sb,
        &[os("realpath"), os("-m"), s.join("loop/x").as_os_str()],
    );
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).ends_with("Too many levels of symbolic links\n"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn json_output_of_realpath_which_and_is_mountpoint() {
    let Some(sb) = sandbox("json_output_of_realpath_which_and_is_mountpoint") else {
        return;
    };
    let s = sb.scratch();
    sb.symlink(s, &s.join("link")).unwrap();
    let missing = s.join("missing");
    let out = run_on(
        &sb,
        &[
            os("--json"),
            os("realpath"),
            os("-e"),
            s.join("link").as_os_str(),
            missing.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        serde_json::json!([
            {"path": s.join("link").to_str().unwrap(), "resolved": s.to_str().unwrap()},
            {"path": missing.to_str().unwrap(), "error": "No such file or directory"},
        ])
    );
    assert!(
        stderr(&out).contains("No such file or directory"),
        "the error line stays on stderr"
    );

    let out = run_on(&sb, &[os("--json"), os("which"), os("sh")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v[0]["name"], "sh");
    let plain = run_on(&sb, &[os("which"), os("sh")]);
    assert_eq!(
        format!("{}\n", v[0]["path"].as_str().unwrap()).as_bytes(),
        plain.stdout
    );

    for (path, want, exit) in [
        (s.to_path_buf(), true, 0),
        (s.join("link"), true, 0),
        (PathBuf::from("/proc/self"), false, 32),
    ] {
        let out = run_on(&sb, &[os("--json"), os("is-mountpoint"), path.as_os_str()]);
        assert_eq!(code(&out), exit, "{}: {}", path.display(), stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(
            v,
            serde_json::json!({"path": path.to_str().unwrap(), "mountpoint": want})
        );
    }
}

#[test]
fn realpath_round_trips_non_utf8_names_byte_for_byte() {
    let Some(sb) = sandbox("realpath_round_trips_non_utf8_names_byte_for_byte") else {
        return;
    };
    let s = sb.scratch();
    let mut raw = s.as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/d\xff\xfe\n x");
    let weird = PathBuf::from(OsString::from_vec(raw.clone()));
    sb.mkdir_all(&weird).unwrap();
    sb.symlink(&weird, &s.join("link")).unwrap();
    let out = run_on(&sb, &[os("realpath"), s.join("link").as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut want = raw;
    want.push(b'\n');
    assert_eq!(out.stdout, want);
}

#[test]
fn which_finds_a_host_only_binary_and_exec_runs_it() {
    let Some(sb) = sandbox("which_finds_a_host_only_binary_and_exec_runs_it") else {
        return;
    };
    // A tmpfs over /usr/local/sbin in the sandbox only: the tool exists on the "host" alone.
    let dir = Path::new("/usr/local/sbin");
    sb.mount_tmpfs(dir, "mode=0755").unwrap();
    let tool = dir.join("hostexec-test-tool");
    sb.write_file(&tool, b"#!/bin/sh\necho host tool \"$@\"\n")
        .unwrap();
    sb.set_mode(&tool, 0o755).unwrap();
    assert!(!tool.exists());
    let out = run_on(&sb, &[os("which"), os("hostexec-test-tool")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"/usr/local/sbin/hostexec-test-tool\n");
    let out = run_on(
        &sb,
        &[os("exec"), os("--"), os("hostexec-test-tool"), os("x")],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"host tool x\n");

    let out = run_on(&sb, &[os("which"), os("no-such-tool-on-the-host")]);
    assert_eq!(code(&out), 1, "which exits 1, not 127");
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.starts_with("hostexec: which: no-such-tool-on-the-host"),
        "{err}"
    );
}

// ---------------------------------------------------------------- mounts

/// findmnt's view of the sandbox, as (id → JSON object).
fn findmnt(sb: &SandboxHost) -> Vec<serde_json::Value> {
    let out = sb.oracle(&[
        os("findmnt"),
        os("--json"),
        os("--list"),
        os("-o"),
        os("ID,PARENT,TARGET,SOURCE,FSTYPE,FSROOT,OPTIONS,VFS-OPTIONS,FS-OPTIONS,PROPAGATION,MAJ:MIN"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["filesystems"].as_array().unwrap().clone()
}

#[test]
fn mounts_json_matches_findmnt_field_for_field() {
    let Some(sb) = sandbox("mounts_json_matches_findmnt_field_for_field") else {
        return;
    };
    let spaced = sb.scratch().join("with space");
    sb.mkdir_all(&spaced).unwrap();
    sb.mount_tmpfs(&spaced, "size=1m").unwrap();
    let out = run_on(&sb, &[os("--json"), os("mounts")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let ours = ours.as_array().expect("a JSON array");
    let theirs = findmnt(&sb);
    assert_eq!(ours.len(), theirs.len());
    for (a, b) in ours.iter().zip(&theirs) {
        for key in [
            "id",
            "parent_id",
            "target",
            "source",
            "fstype",
            "root",
            "options",
            "vfs_options",
            "super_options",
            "propagation",
            "major",
            "minor",
            "optional_fields",
        ] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["parent_id"], b["parent"]);
        assert_eq!(a["target"], b["target"]);
        assert_eq!(a["fstype"], b["fstype"]);
        assert_eq!(a["root"], b["fsroot"]);
        // OPTIONS merges the VFS and the file system options, as findmnt's does.
        assert_eq!(a["options"], b["options"]);
        assert_eq!(a["vfs_options"], b["vfs-options"]);
        assert_eq!(a["super_options"], b["fs-options"]);
        assert_eq!(a["propagation"], b["propagation"]);
        assert_eq!(
            format!("{}:{}", a["major"], a["minor"]),
            b["maj:min"].as_str().unwrap()
        );
        // findmnt prints no source for an empty one, and rewrites some (btrfs subvolumes).
        if b["source"].is_string() && a["target"] == b["target"] && a["fstype"] == "tmpfs" {
            assert_eq!(a["source"], b["source"]);
        }
    }
    let row = ours
        .iter()
        .find(|m| m["target"] == spaced.to_str().unwrap())
        .expect("the mount with a space, decoded");
    assert_eq!(row["fstype"], "tmpfs");
    assert_eq!(row["source"], "hostexec-sandbox");
    assert!(row["super_options"]
        .as_str()
        .unwrap()
        .contains("size=1024k"));
    assert!(
        row["options"].as_str().unwrap().contains("size=1024k"),
        "a script reading options sees the tmpfs size: {row}"
    );
}

#[test]
fn mounts_table_has_the_four_columns_and_escapes_control_characters() {
    let Some(sb) = sandbox("mounts_table_has_the_four_columns_and_escapes_control_characters")
    else {
        return;
    };
    let mut raw = sb.scratch().as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/evil\nfake-row tmpfs");
    let evil = PathBuf::from(OsString::from_vec(raw));
    sb.mkdir_all(&evil).unwrap();
    sb.mount_tmpfs(&evil, "").unwrap();
    let out = run_on(&sb, &[os("mounts")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["TARGET", "SOURCE", "FSTYPE", "OPTIONS"]);
    assert_eq!(
        text.lines().count() - 1,
        findmnt(&sb).len(),
        "one row per mount"
    );
    assert!(!text.lines().any(|l| l.starts_with("fake-row")), "{text}");
    let escaped = format!("{}/evil\\x0afake-row tmpfs", sb.scratch().display());
    assert!(text.lines().any(|l| l.starts_with(&escaped)), "{text}");
    let scratch_row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(sb.scratch().to_str().unwrap()))
        .expect("the scratch tmpfs is listed");
    let cols: Vec<&str> = scratch_row.split_whitespace().collect();
    assert_eq!(&cols[1..3], ["hostexec-sandbox", "tmpfs"]);
    assert!(cols[3].starts_with("rw,"), "{scratch_row}");
}

#[test]
fn mount_is_mountpoint_umount_round_trip() {
    let Some(sb) = sandbox("mount_is_mountpoint_umount_round_trip") else {
        return;
    };
    let target = sb.scratch().join("mnt");
    sb.mkdir_all(&target).unwrap();
    let t = target.as_os_str();

    let out = run_on(&sb, &[os("is-mountpoint"), t]);
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        format!("{} is not a mountpoint\n", target.display()).as_bytes()
    );
    let oracle = sb.oracle(&[os("mountpoint"), t]);
    assert_eq!(oracle.status.code(), Some(32));

    let out = run_on(
        &sb,
        &[
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("-o"),
            os("size=2m,mode=0700"),
            os("demo-tmpfs"),
            t,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let found = sb.oracle(&[
        os("findmnt"),
        os("-n"),
        os("-o"),
        os("SOURCE,FSTYPE,FS-OPTIONS"),
        t,
    ]);
    let found = String::from_utf8_lossy(&found.stdout);
    assert!(found.starts_with("demo-tmpfs tmpfs"), "{found}");
    assert!(
        found.contains("size=2048k") && found.contains("mode=700"),
        "{found}"
    );

    let out = run_on(&sb, &[os("is-mountpoint"), t]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        format!("{} is a mountpoint\n", target.display()).as_bytes()
    );
    assert_eq!(
        sb.oracle(&[os("mountpoint"), os("-q"), t]).status.code(),
        Some(0)
    );

    let out = run_on(&sb, &[os("umount"), t]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sb.oracle(&[os("mountpoint"), os("-q"), t]).status.code(),
        Some(32)
    );
    let out = run_on(&sb, &[os("is-mountpoint"), t]);
    assert_eq!(code(&out), 32);

    // Lazy, and with a forced step armed.
    sb.mount_tmpfs(&target, "").unwrap();
    let out = run_on(
        &sb,
        &[os("umount"), os("--lazy"), os("--force-after"), os("5s"), t],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        sb.oracle(&[os("mountpoint"), os("-q"), t]).status.code(),
        Some(32)
    );
}

/// Whether findmnt inside the sandbox sees a mount exactly at `p`.
fn mounted_at(sb: &SandboxHost, p: &Path) -> bool {
    sb.oracle(&[os("mountpoint"), os("-q"), p.as_os_str()])
        .status
        .code()
        == Some(0)
}

#[test]
fn mount_follow_beneath_and_helper_flags() {
    let Some(sb) = sandbox("mount_follow_beneath_and_helper_flags") else {
        return;
    };
    let s = sb.scratch().to_path_buf();
    let real = s.join("real");
    let link = s.join("link");
    sb.mkdir_all(&real).unwrap();
    sb.symlink(real.as_os_str(), &link).unwrap();
    let tmpfs = |extra: &[&OsStr], target: &Path| {
        let mut args = vec![os("mount")];
        args.extend_from_slice(extra);
        args.extend([os("-t"), os("tmpfs"), os("flags-test"), target.as_os_str()]);
        run_on(&sb, &args)
    };

    // A final symlink is refused by default, for mount and umount, naming the link.
    let out = tmpfs(&[], &link);
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("symlink") && stderr(&out).contains(&*link.to_string_lossy()),
        "{}",
        stderr(&out)
    );
    assert!(!mounted_at(&sb, &real));
    // --follow: mounted where the link points.
    let out = tmpfs(&[os("--follow")], &link);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(mounted_at(&sb, &real));
    let out = run_on(&sb, &[os("umount"), link.as_os_str()]);
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    assert!(stderr(&out).contains("symlink"), "{}", stderr(&out));
    assert!(mounted_at(&sb, &real));
    let out = run_on(&sb, &[os("umount"), os("--follow"), link.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!mounted_at(&sb, &real));

    // --beneath BASE: a symlink anywhere below BASE is refused; a plain path is mounted.
    let base = s.join("base");
    sb.mkdir_all(&base.join("pods/x")).unwrap();
    sb.symlink("pods", &base.join("plink")).unwrap();
    let beneath = [os("--beneath"), base.as_os_str()];
    let out = tmpfs(&beneath, &base.join("plink/x"));
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    assert!(stderr(&out).contains("below"), "{}", stderr(&out));
    assert!(!mounted_at(&sb, &base.join("pods/x")));
    let out = tmpfs(&beneath, &base.join("pods/x"));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(mounted_at(&sb, &base.join("pods/x")));
    let mut umount = vec![os("umount")];
    umount.extend(beneath);
    let out = run_on(
        &sb,
        &[&umount[..], &[base.join("plink/x").as_os_str()]].concat(),
    );
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    assert!(mounted_at(&sb, &base.join("pods/x")));
    let out = run_on(
        &sb,
        &[&umount[..], &[base.join("pods/x").as_os_str()]].concat(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!mounted_at(&sb, &base.join("pods/x")));

    // --helper: mount(8) and umount(8) run (their command lines are logged at debug); without
    // it, the kernel's calls do the work and no command runs.
    let logged = |args: &[&OsStr]| {
        let all = on(&sb, args);
        let refs: Vec<&OsStr> = all.iter().map(OsString::as_os_str).collect();
        let out = run_with(&refs, &[("HOSTEXEC_LOG", "hostexec_mount=debug")], b"");
        assert_eq!(code(&out), 0, "{args:?}: {}", stderr(&out));
        assert!(mounted_at(&sb, &real) == (args[0] == "mount"));
        stderr(&out)
    };
    let t = real.as_os_str();
    let log = logged(&[os("mount"), os("-t"), os("tmpfs"), os("x"), t]);
    assert!(
        log.contains("mounted natively") && !log.contains("command="),
        "{log}"
    );
    let log = logged(&[os("umount"), t]);
    assert!(
        log.contains("unmounted natively") && !log.contains("command="),
        "{log}"
    );
    let log = logged(&[
        os("mount"),
        os("--helper"),
        os("-t"),
        os("tmpfs"),
        os("x"),
        t,
    ]);
    assert!(
        log.contains("command=mount") && !log.contains("natively"),
        "{log}"
    );
    let log = logged(&[os("umount"), os("--helper"), t]);
    assert!(
        log.contains("command=umount") && !log.contains("natively"),
        "{log}"
    );

    // --follow and --beneath exclude each other.
    let out = run_on(
        &sb,
        &[
            os("mount"),
            os("--follow"),
            os("--beneath"),
            os("/"),
            os("x"),
            t,
        ],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
}

#[test]
fn a_source_that_looks_like_an_option_is_mounted_literally() {
    let Some(sb) = sandbox("a_source_that_looks_like_an_option_is_mounted_literally") else {
        return;
    };
    // Already a mount point: read as an option, `-oremount,ro` would remount it read-only.
    let target = sb.scratch().join("mnt");
    sb.mkdir_all(&target).unwrap();
    sb.mount_tmpfs(&target, "").unwrap();
    let t = target.as_os_str();
    let out = run_on(
        &sb,
        &[
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("--"),
            os("-oremount,ro"),
            t,
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let found = sb.oracle(&[
        os("findmnt"),
        os("-n"),
        os("--raw"),
        os("-o"),
        os("SOURCE,VFS-OPTIONS"),
        os("--mountpoint"),
        t,
    ]);
    let found = String::from_utf8_lossy(&found.stdout);
    let rows: Vec<&str> = found.lines().collect();
    assert_eq!(rows.len(), 2, "a new mount on top, not a remount: {found}");
    assert!(rows[0].starts_with("hostexec-sandbox rw,"), "{found}");
    assert!(rows[1].starts_with("-oremount,ro rw,"), "{found}");
}

#[test]
fn mount_failures_are_one_line_and_never_show_sensitive_options() {
    let Some(sb) = sandbox("mount_failures_are_one_line_and_never_show_sensitive_options") else {
        return;
    };
    let target = sb.scratch().join("mnt");
    sb.mkdir_all(&target).unwrap();
    // tmpfs refuses an unknown option, so the mount fails with the secret on its command line.
    let out = run_on(
        &sb,
        &[
            os("-vvv"),
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("-o"),
            os("size=1m"),
            os("--sensitive-options"),
            os("password=hunter2"),
            os("--no-systemd"),
            os("x"),
            target.as_os_str(),
        ],
    );
    // 32, as mount(8) itself exits for the same failure.
    assert_eq!(code(&out), 32);
    let util_linux = sb.oracle(&[
        os("mount"),
        os("-t"),
        os("tmpfs"),
        os("-o"),
        os("size=1m,password=hunter2"),
        os("x"),
        target.as_os_str(),
    ]);
    assert_eq!(util_linux.status.code(), Some(32));
    let err = stderr(&out);
    assert!(!err.contains("hunter2"), "a secret reached stderr: {err}");
    let last = err.lines().last().unwrap();
    assert!(last.starts_with("hostexec: mount: "), "{err}");
    assert_eq!(
        sb.oracle(&[os("mountpoint"), os("-q"), target.as_os_str()])
            .status
            .code(),
        Some(32)
    );

    // Sensitive options that the file system accepts do reach mount.
    let out = run_on(
        &sb,
        &[
            os("-vvv"),
            os("mount"),
            os("-t"),
            os("tmpfs"),
            os("--sensitive-options"),
            os("size=3m"),
            os("x"),
            target.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("size=3m"), "{}", stderr(&out));
    let opts = sb.oracle(&[
        os("findmnt"),
        os("-n"),
        os("-o"),
        os("FS-OPTIONS"),
        target.as_os_str(),
    ]);
    assert!(String::from_utf8_lossy(&opts.stdout).contains("size=3072k"));
}

#[test]
fn is_mountpoint_errors_exit_1_and_umount_of_a_non_mount_point_32() {
    let Some(sb) = sandbox("is_mountpoint_errors_exit_1_and_umount_of_a_non_mount_point_32") else {
        return;
    };
    let missing = sb.scratch().join("missing");
    let out = run_on(&sb, &[os("is-mountpoint"), missing.as_os_str()]);
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.starts_with("hostexec: is-mountpoint: "), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let plain = sb.scratch().join("plain");
    sb.mkdir_all(&plain).unwrap();
    let out = run_on(&sb, &[os("umount"), plain.as_os_str()]);
    // umount(8) says 32 for the same.
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    let util_linux = sb.oracle(&[os("umount"), plain.as_os_str()]);
    assert_eq!(util_linux.status.code(), Some(32));
    assert!(
        stderr(&out).starts_with("hostexec: umount: "),
        "{}",
        stderr(&out)
    );
}

/// A FUSE mount whose daemon never answers, in the sandbox: every access to it blocks in the
/// kernel, as on a dead NFS server. Returns the process that holds the FUSE connection.
fn hung_fuse_mount(sb: &SandboxHost, at: &Path) -> std::process::Child {
    sb.mkdir_all(at).unwrap();
    let script = r#"set -e
dev=/dev/fuse
if [ ! -c "$dev" ]; then dev="$2/fuse-dev"; mknod "$dev" c 10 229; fi
exec 3<>"$dev"
mount -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 hostexec-hung "$1"
echo mounted
exec sleep 120"#;
    let mut holder = Command::new("nsenter")
        .args([
            "-t",
            &sb.pid().to_string(),
            "-m",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(at)
        .arg(sb.scratch())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(
        line.trim(),
        "mounted",
        "the hung FUSE mount could not be set up"
    );
    holder
}

#[test]
fn timeout_bounds_in_process_operations_on_a_hung_mount() {
    let Some(sb) = sandbox("timeout_bounds_in_process_operations_on_a_hung_mount") else {
        return;
    };
    let hung = sb.scratch().join("hung");
    let mut holder = hung_fuse_mount(&sb, &hung);
    let inside = hung.join("x");
    for args in [
        vec![os("is-mountpoint"), hung.as_os_str()],
        vec![os("realpath"), inside.as_os_str()],
        vec![os("realpath"), os("-m"), inside.as_os_str()],
    ] {
        let mut full = vec![os("--timeout"), os("300ms")];
        full.extend(args.iter().copied());
        let start = Instant::now();
        let out = run_on(&sb, &full);
        let took = start.elapsed();
        assert_eq!(code(&out), 124, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("timed out after 300ms"), "{err}");
        assert!(took < Duration::from_secs(10), "{args:?} took {took:?}");
    }
    // umount of a hung mount: the bounded unmount gives up with 124; a lazy one detaches it.
    let out = run_on(
        &sb,
        &[os("--timeout"), os("500ms"), os("umount"), hung.as_os_str()],
    );
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("hostexec: umount: "),
        "{}",
        stderr(&out)
    );
    let out = run_on(
        &sb,
        &[
            os("--timeout"),
            os("5s"),
            os("umount"),
            os("--lazy"),
            hung.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        sb.oracle(&[os("mountpoint"), os("-q"), hung.as_os_str()])
            .status
            .code(),
        Some(32)
    );
}

// ---------------------------------------------------------------- logs

#[test]
fn logs_go_to_stderr_and_leave_stdout_alone() {
    let Some(sb) = sandbox("logs_go_to_stderr_and_leave_stdout_alone") else {
        return;
    };
    let out = run_on(&sb, &[os("-v"), os("realpath"), sb.scratch().as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        out.stdout,
        format!("{}\n", sb.scratch().display()).as_bytes()
    );
    assert!(
        stderr(&out).contains("reaching the host"),
        "{}",
        stderr(&out)
    );

    let args = on(&sb, &[os("realpath"), sb.scratch().as_os_str()]);
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    let quiet = run_with(&refs, &[], b"");
    assert!(quiet.stderr.is_empty(), "{}", stderr(&quiet));
    let logged = run_with(&refs, &[("HOSTEXEC_LOG", "info")], b"");
    assert!(stderr(&logged).contains("reaching the host"));
    let bad = run_with(&refs, &[("HOSTEXEC_LOG", "=[")], b"");
    assert_eq!(code(&bad), 0);
    assert!(
        stderr(&bad).contains("ignoring HOSTEXEC_LOG"),
        "{}",
        stderr(&bad)
    );
}

// ---------------------------------------------------------------- bad input, usage

#[test]
fn a_missing_host_root_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-rootfs");
    let out = run(&[os("--host-root"), missing.as_os_str(), os("mounts")]);
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "hostexec: the host root {}: No such file or directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("--target-pid"), "says what to do: {err}");
    // Through the environment, and the default /rootfs when nothing is set.
    let args = [os("realpath"), os("/")];
    let out = run_with(
        &args,
        &[("HOSTEXEC_HOST_ROOT", missing.to_str().unwrap())],
        b"",
    );
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("no-rootfs"), "{}", stderr(&out));
    if !Path::new("/rootfs").exists() {
        let out = run(&args);
        assert_eq!(code(&out), 1);
        assert!(
            stderr(&out).contains("the host root /rootfs"),
            "{}",
            stderr(&out)
        );
    }
    // A file is not a root.
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let out = run(&[os("--host-root"), file.as_os_str(), os("mounts")]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("Not a directory"), "{}", stderr(&out));
}

#[test]
fn bad_pids_and_namespace_names_are_usage_errors_with_a_message() {
    for bad in ["abc", "0", "-3", "12x"] {
        let out = run(&[os("--target-pid"), os(bad), os("mounts")]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(
            stderr(&out).ends_with("Try 'hostexec mounts --help' for more information.\n"),
            "{}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains("not a process ID"),
            "{}",
            stderr(&out)
        );
    }
    // A process that has exited (its PID is not reused this fast in practice; a reused PID
    // would still be a live process, and the check below would then be skipped).
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    if !Path::new(&format!("/proc/{pid}")).exists() {
        let out = run(&[os("--target-pid"), os(&pid.to_string()), os("mounts")]);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&pid.to_string()) && err.contains("No such process"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    let out = run(&[
        os("--target-pid"),
        os("1"),
        os("--ns"),
        os("mnt,user"),
        os("mounts"),
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("unknown namespace \"user\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_permission_to_join_is_a_clear_error() {
    // A file that is not a namespace: setns refuses it.
    let dir = tempfile::tempdir().unwrap();
    let fake_ns = dir.path().join("not-a-namespace");
    std::fs::write(&fake_ns, b"").unwrap();
    let out = run(&[
        os("--host-root"),
        os("/"),
        os("--mount-ns"),
        fake_ns.as_os_str(),
        os("exec"),
        os("--"),
        os("true"),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("hostexec: ") && err.contains("mnt"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // An unprivileged user may not join the sandbox's mount namespace (setpriv is util-linux).
    let Some(sb) = sandbox("no_permission_to_join_is_a_clear_error") else {
        return;
    };
    let pid = sb.pid().to_string();
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .arg(BIN)
        .args(["--target-pid", &pid, "exec", "--", "true"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("setpriv (util-linux) runs");
    assert_no_panic(&out);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err,
        "hostexec: cannot join the mnt namespace: Operation not permitted (hostexec lacks \
         CAP_SYS_ADMIN and CAP_SYS_PTRACE and CAP_SYS_CHROOT; reaching the host needs \
         CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_SYS_CHROOT)\n",
        "{err}"
    );
}

/// Root without one capability: the message names exactly that one (setpriv drops it from
/// the bounding set, so the exec'd hostexec never has it).
#[test]
fn a_missing_capability_is_named() {
    let Some(sb) = sandbox("a_missing_capability_is_named") else {
        return;
    };
    let pid = sb.pid().to_string();
    for (drop, name) in [
        ("-sys_ptrace", "CAP_SYS_PTRACE"),
        ("-sys_admin", "CAP_SYS_ADMIN"),
        ("-sys_chroot", "CAP_SYS_CHROOT"),
    ] {
        let out = Command::new("setpriv")
            .args(["--bounding-set", drop, "--inh-caps", drop, "--"])
            .arg(BIN)
            .args(["--target-pid", &pid, "exec", "--", "true"])
            .env("RUST_BACKTRACE", "1")
            .output()
            .expect("setpriv (util-linux) runs");
        assert_no_panic(&out);
        assert_eq!(code(&out), 1, "{drop}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("Operation not permitted"), "{drop}: {err}");
        assert!(
            err.contains(&format!("(hostexec lacks {name}; reaching the host needs")),
            "{drop}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["no-such-subcommand"],
        &["mounts", "--bogus-flag"],
        &["--timeout", "soon", "mounts"],
        &["--timeout", "0s", "mounts"],
        &["--launcher", "fork", "mounts"],
        &["--target-pid", "1", "--host-root", "/", "mounts"],
        &["--target-pid", "1", "--mount-ns", "/x", "mounts"],
        &["realpath"],
        &["realpath", "-e", "-m", "/"],
        &["exec"],
        &["exec", "--env", "NOEQUALS", "--", "true"],
        &["which"],
        &["is-mountpoint"],
        &["mount", "only-source"],
        &["mount", "-o", "ro", "only-source"],
        &["mount", "--bind", "--rbind", "/a", "/b"],
        &["mount", "--bind", "-t", "tmpfs", "/a", "/b"],
        &["umount", "--force-after", "forever", "/x"],
        &["--target-pid", "abc", "mounts"],
        &["--ns", "bogus", "mounts"],
        &["--ns", "mnt,,net", "mounts"],
        &["--all", "--ns", "net", "mounts"],
        &["realpath", "-E", "-e", "/"],
        &["mounts", "-o", "TARGET,SIZE"],
        &["completions", "tcsh"],
        &["is-mountpoint", "-x", "/"],
    ];
    for args in cases {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty() || args.is_empty(), "{args:?}");
        if !args.is_empty() {
            let err = stderr(&out);
            assert!(err.starts_with("hostexec: "), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 2, "{args:?}: {err}");
            // The hint names the subcommand's own help.
            let sub = args.iter().map(|a| a.to_str().unwrap()).find(|a| {
                [
                    "exec",
                    "realpath",
                    "which",
                    "mounts",
                    "is-mountpoint",
                    "mount",
                    "umount",
                    "completions",
                ]
                .contains(a)
            });
            let hint = match sub {
                Some(s) => format!("Try 'hostexec {s} --help' for more information.\n"),
                None => "Try 'hostexec --help' for more information.\n".to_owned(),
            };
            assert!(err.ends_with(&hint), "{args:?}: {err}");
        }
    }
    // What is missing is named, not only "required arguments were not provided".
    for (args, names) in [
        (&["exec"][..], "<CMD>"),
        (&["realpath"][..], "<PATH>"),
        (&["mount"][..], "<SOURCE>"),
        (&["umount"][..], "<TARGET>"),
        (&["mount", "tmpfs"][..], "TARGET is missing"),
    ] {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let err = stderr(&run(&args));
        assert!(
            err.lines().next().unwrap().contains(names),
            "{args:?}: {err}"
        );
    }
    // With --json, a usage error is also a JSON object on stdout.
    let out = run(&[os("--json"), os("--target-pid"), os("abc"), os("mounts")]);
    assert_eq!(code(&out), 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert_eq!(v["exit_code"], 2);
    assert!(
        v["error"].as_str().unwrap().contains("not a process ID"),
        "{v}"
    );
    let out = run(&[os("--json"), os("exec")]);
    assert_eq!(code(&out), 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(v["error"].as_str().unwrap().contains("<CMD>"), "{v}");
    let help = run(&[os("--help")]);
    assert_eq!(code(&help), 0);
    let text = String::from_utf8_lossy(&help.stdout);
    for sub in [
        "exec",
        "realpath",
        "which",
        "mounts",
        "is-mountpoint",
        "mount",
        "umount",
    ] {
        assert!(text.contains(sub), "{sub} missing from --help");
    }
    assert_eq!(code(&run(&[os("--version")])), 0);
}
