//! util-linux and coreutils manners of the `hostexec` binary, each against the tool it
//! imitates as the oracle (run through `nsenter` into the same sandbox host): realpath's
//! modes (GNU realpath, readlink -f), which with several names, mounts' filters and columns
//! (findmnt), is-mountpoint -q (mountpoint -q), mount --bind/--rbind/-o remount (findmnt),
//! exit codes 126 (sh), the safety rail, --all, a terminal on stdin, completions, --version
//! and the per-subcommand help.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

mod common;
use common::{code, os, run, run_on as on, sandbox, stderr, BIN};

// ---------------------------------------------------------------- realpath

#[test]
fn realpath_defaults_to_gnu_realpath_and_readlink_f() {
    let Some(sb) = sandbox("realpath_defaults_to_gnu_realpath_and_readlink_f") else {
        return;
    };
    let s = sb.scratch();
    sb.mkdir_all(&s.join("d")).unwrap();
    sb.write_file(&s.join("f"), b"").unwrap();
    sb.symlink("d/nothere", &s.join("dangling")).unwrap();
    sb.symlink("nodir/x", &s.join("deep")).unwrap();
    sb.symlink("loop", &s.join("loop")).unwrap();
    let queries = [
        "d",
        "d/missing",
        "d/missing/",
        "missing/..",
        "d/missing/x",
        "f/",
        "f/x",
        "dangling",
        "dangling/",
        "deep",
        "loop",
        "d/.",
        "missing/.",
    ];
    for q in queries {
        let p = s.join(q);
        // "d/missing/" keeps its slash: Path::join would not drop it, but be sure.
        let mut raw = s.as_os_str().as_bytes().to_vec();
        raw.push(b'/');
        raw.extend_from_slice(q.as_bytes());
        let p = if q.ends_with('/') {
            std::path::PathBuf::from(OsStr::from_bytes(&raw))
        } else {
            p
        };
        for flags in [&[][..], &["-E"][..]] {
            let mut args = vec![os("realpath")];
            args.extend(flags.iter().map(|f| os(f)));
            args.push(p.as_os_str());
            let ours = on(&sb, &args);
            let gnu = sb.oracle(&[os("realpath"), p.as_os_str()]);
            let readlink = sb.oracle(&[os("readlink"), os("-f"), p.as_os_str()]);
            assert_eq!(code(&ours), gnu.status.code().unwrap(), "{q} {flags:?}");
            assert_eq!(ours.stdout, gnu.stdout, "{q} {flags:?}: GNU realpath");
            assert_eq!(ours.stdout, readlink.stdout, "{q} {flags:?}: readlink -f");
            if !gnu.status.success() {
                // Same strerror text as GNU's line.
                let theirs = String::from_utf8_lossy(&gnu.stderr);
                let msg = theirs.trim_end().rsplit(": ").next().unwrap().to_owned();
                assert!(
                    stderr(&ours).trim_end().ends_with(&msg),
                    "{q}: {}",
                    stderr(&ours)
                );
            }
        }
    }
    // -e and -m still mean what they did; -z ends lines with NUL like GNU's.
    let missing = s.join("d/missing");
    assert_eq!(
        code(&on(&sb, &[os("realpath"), os("-e"), missing.as_os_str()])),
        1
    );
    let m = on(&sb, &[os("realpath"), os("-m"), s.join("x/y").as_os_str()]);
    assert_eq!(
        m.stdout,
        sb.oracle(&[os("realpath"), os("-m"), s.join("x/y").as_os_str()])
            .stdout
    );
    let (sd, sf) = (s.join("d"), s.join("f"));
    let args = [os("realpath"), os("-z"), sd.as_os_str(), sf.as_os_str()];
    let z = on(&sb, &args);
    assert_eq!(code(&z), 0);
    assert_eq!(z.stdout, sb.oracle(&args).stdout);
    assert!(z.stdout.ends_with(b"\0") && !z.stdout.contains(&b'\n'));
}

// ---------------------------------------------------------------- which

#[test]
fn which_takes_several_names_and_fails_for_a_missing_one() {
    let Some(sb) = sandbox("which_takes_several_names_and_fails_for_a_missing_one") else {
        return;
    };
    let out = on(
        &sb,
        &[os("which"), os("sh"), os("no-such-tool-xyz"), os("mount")],
    );
    assert_eq!(code(&out), 1);
    let lines: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), 2, "the two found, in order");
    for (line, name) in lines.iter().zip(["sh", "mount"]) {
        assert!(line.ends_with(format!("/{name}").as_bytes()));
        // The path is the host's: the oracle's `command -v` agrees it is executable there.
        let test = sb.oracle(&[os("test"), os("-x"), OsStr::from_bytes(line)]);
        assert!(test.status.success());
    }
    assert!(
        stderr(&out).contains("no-such-tool-xyz"),
        "{}",
        stderr(&out)
    );
    let json = on(
        &sb,
        &[os("--json"), os("which"), os("sh"), os("no-such-tool-xyz")],
    );
    assert_eq!(code(&json), 1);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v[0]["name"], "sh");
    assert!(v[0]["path"].as_str().unwrap().ends_with("/sh"));
    assert_eq!(v[1]["name"], "no-such-tool-xyz");
    assert!(v[1]["error"].as_str().unwrap().contains("not found"), "{v}");
}

// ---------------------------------------------------------------- mounts

fn findmnt_json(sb: &SandboxHost, args: &[&str]) -> Vec<serde_json::Value> {
    let mut argv = vec![os("findmnt"), os("--json"), os("--list")];
    argv.extend(args.iter().map(|a| os(a)));
    let out = sb.oracle(&argv);
    if out.stdout.is_empty() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["filesystems"].as_array().unwrap().clone()
}

#[test]
fn mounts_filters_and_columns_match_findmnt() {
    let Some(sb) = sandbox("mounts_filters_and_columns_match_findmnt") else {
        return;
    };
    let a = sb.scratch().join("a");
    sb.mkdir_all(&a).unwrap();
    sb.mount_tmpfs(&a, "size=2m").unwrap();
    // -t, plain and negated, as findmnt -t.
    for types in ["tmpfs", "notmpfs", "proc,tmpfs", "nosysfs,proc"] {
        let ours = on(
            &sb,
            &[
                os("--json"),
                os("mounts"),
                os("-t"),
                os(types),
                os("-o"),
                os("TARGET"),
            ],
        );
        assert_eq!(code(&ours), 0, "{types}: {}", stderr(&ours));
        let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
        let theirs = findmnt_json(&sb, &["-t", types, "-o", "TARGET"]);
        let ours: Vec<&serde_json::Value> = ours
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["target"])
            .collect();
        let theirs: Vec<&serde_json::Value> = theirs.iter().map(|r| &r["target"]).collect();
        assert_eq!(ours, theirs, "-t {types}");
    }
    // TARGET: the one mount there.
    let out = on(
        &sb,
        &[
            os("mounts"),
            os("-o"),
            os("TARGET,FSTYPE,OPTIONS"),
            a.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["TARGET", "FSTYPE", "OPTIONS"]);
    let theirs = sb.oracle(&[
        os("findmnt"),
        os("-n"),
        os("-o"),
        os("TARGET,FSTYPE,OPTIONS"),
        a.as_os_str(),
    ]);
    let theirs = String::from_utf8_lossy(&theirs.stdout);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        theirs.split_whitespace().collect::<Vec<_>>()
    );
    assert!(lines[1].contains("size=2048k"), "{}", lines[1]);
    // Nothing there: exit 1 and no output, as findmnt.
    let plain = sb.scratch();
    sb.mkdir_all(&plain.join("not-a-mount")).unwrap();
    let none = on(&sb, &[os("mounts"), plain.join("not-a-mount").as_os_str()]);
    let theirs = sb.oracle(&[os("findmnt"), plain.join("not-a-mount").as_os_str()]);
    assert_eq!(code(&none), 1);
    assert_eq!(theirs.status.code(), Some(1));
    assert!(none.stdout.is_empty());
    // A type that matches nothing: exit 0 and no output, as findmnt.
    let none = on(&sb, &[os("mounts"), os("-t"), os("xyzfs")]);
    let theirs = sb.oracle(&[os("findmnt"), os("-t"), os("xyzfs")]);
    assert_eq!(theirs.status.code(), Some(0));
    assert_eq!(code(&none), 0);
    assert!(none.stdout.is_empty() && theirs.stdout.is_empty());
    // Every column, table and JSON agree on the row.
    let all =
        "TARGET,SOURCE,FSTYPE,OPTIONS,VFS-OPTIONS,FS-OPTIONS,PROPAGATION,ID,PARENT,MAJ:MIN,FSROOT";
    let ours = on(
        &sb,
        &[os("--json"), os("mounts"), os("-o"), os(all), a.as_os_str()],
    );
    let ours: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
    let theirs = findmnt_json(&sb, &["-o", all, a.to_str().unwrap()]);
    let (o, t) = (&ours[0], &theirs[0]);
    assert_eq!(o["target"], t["target"]);
    assert_eq!(o["source"], t["source"]);
    assert_eq!(o["options"], t["options"]);
    assert_eq!(o["vfs_options"], t["vfs-options"]);
    assert_eq!(o["super_options"], t["fs-options"]);
    assert_eq!(o["propagation"], t["propagation"]);
    assert_eq!(o["id"], t["id"]);
    assert_eq!(o["parent_id"], t["parent"]);
    assert_eq!(o["root"], t["fsroot"]);
    assert_eq!(
        format!("{}:{}", o["major"], o["minor"]),
        t["maj:min"].as_str().unwrap()
    );
    assert!(
        o.get("optional_fields").is_none(),
        "-o limits the keys: {o}"
    );
}

// ---------------------------------------------------------------- is-mountpoint, mount

#[test]
fn is_mountpoint_quiet_says_it_by_status_only() {
    let Some(sb) = sandbox("is_mountpoint_quiet_says_it_by_status_only") else {
        return;
    };
    let s = sb.scratch();
    sb.mkdir_all(&s.join("plain")).unwrap();
    for (p, want) in [(s.to_path_buf(), 0), (s.join("plain"), 32)] {
        let out = on(&sb, &[os("is-mountpoint"), os("-q"), p.as_os_str()]);
        let theirs = sb.oracle(&[os("mountpoint"), os("-q"), p.as_os_str()]);
        assert_eq!(code(&out), want);
        assert_eq!(theirs.status.code(), Some(want));
        assert!(out.stdout.is_empty() && out.stderr.is_empty());
        let json = on(
            &sb,
            &[os("--json"), os("is-mountpoint"), os("-q"), p.as_os_str()],
        );
        assert_eq!(code(&json), want);
        assert!(json.stdout.is_empty());
    }
    // An error is still an error (exit 1), and with --json a JSON object.
    let missing = s.join("missing");
    let out = on(
        &sb,
        &[
            os("--json"),
            os("is-mountpoint"),
            os("-q"),
            missing.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert_eq!(v["exit_code"], 1);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{v}"
    );
}

fn findmnt_row(sb: &SandboxHost, target: &Path) -> Vec<serde_json::Value> {
    findmnt_json(
        sb,
        &[
            "-o",
            "TARGET,SOURCE,FSROOT,VFS-OPTIONS",
            "--mountpoint",
            target.to_str().unwrap(),
        ],
    )
}

#[test]
fn mount_bind_rbind_and_remount_with_one_argument() {
    let Some(sb) = sandbox("mount_bind_rbind_and_remount_with_one_argument") else {
        return;
    };
    let s = sb.scratch();
    let (src, dst, rdst) = (s.join("src"), s.join("dst"), s.join("rdst"));
    for d in [&src, &dst, &rdst, &src.join("inner")] {
        sb.mkdir_all(d).unwrap();
    }
    sb.mount_tmpfs(&src.join("inner"), "size=1m").unwrap();
    sb.write_file(&src.join("hello"), b"hi").unwrap();
    let out = on(
        &sb,
        &[
            os("mount"),
            os("--bind"),
            os("--no-systemd"),
            src.as_os_str(),
            dst.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let row = findmnt_row(&sb, &dst);
    assert_eq!(row.len(), 1, "a bind mount at {}: {row:?}", dst.display());
    let cat = sb.oracle(&[os("cat"), dst.join("hello").as_os_str()]);
    assert_eq!(cat.stdout, b"hi");
    let inner = |at: &Path| {
        sb.oracle(&[os("mountpoint"), os("-q"), at.join("inner").as_os_str()])
            .status
            .code()
    };
    assert_eq!(inner(&dst), Some(32), "--bind is not recursive");
    let out = on(
        &sb,
        &[
            os("mount"),
            os("--rbind"),
            os("--no-systemd"),
            src.as_os_str(),
            rdst.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(inner(&rdst), Some(0), "--rbind takes the mounts below");
    // -o remount,ro TARGET: one argument is the target.
    let t = src.join("inner");
    let out = on(
        &sb,
        &[
            os("mount"),
            os("--no-systemd"),
            os("-o"),
            os("remount,ro"),
            t.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let row = findmnt_row(&sb, &t);
    let opts = row[0]["vfs-options"].as_str().unwrap();
    assert!(opts.split(',').any(|o| o == "ro"), "{opts}");
    // A failed mount is 32, as mount(8).
    let out = on(
        &sb,
        &[
            os("mount"),
            os("--bind"),
            os("--no-systemd"),
            s.join("nope").as_os_str(),
            dst.as_os_str(),
        ],
    );
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    for d in [&rdst, &dst] {
        let out = on(&sb, &[os("umount"), os("-l"), d.as_os_str()]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
}

// ---------------------------------------------------------------- exec

#[test]
fn exec_of_a_file_that_cannot_be_executed_is_126_as_in_sh() {
    let Some(sb) = sandbox("exec_of_a_file_that_cannot_be_executed_is_126_as_in_sh") else {
        return;
    };
    let f = sb.scratch().join("data");
    sb.write_file(&f, b"not a program").unwrap();
    sb.set_mode(&f, 0o644).unwrap();
    for p in [f.clone(), sb.scratch().to_path_buf()] {
        let out = on(&sb, &[os("exec"), os("--"), p.as_os_str()]);
        let sh = sb.oracle(&[os("sh"), os("-c"), os("\"$0\""), p.as_os_str()]);
        assert_eq!(sh.status.code(), Some(126));
        assert_eq!(code(&out), 126, "{}: {}", p.display(), stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}

/// The safety rail: this test process's own mount namespace as the "host".
#[test]
fn own_mount_namespace_refuses_mount_and_umount_and_warns_for_exec() {
    if skip_without_namespaces("own_mount_namespace_refuses_mount_and_umount_and_warns_for_exec") {
        return;
    }
    let me = std::process::id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().as_os_str();
    let base = [os("--target-pid"), os(&me)];
    let cases: [&[&OsStr]; 2] = [
        &[os("mount"), os("-t"), os("tmpfs"), os("x"), d],
        &[os("umount"), d],
    ];
    for rest in cases {
        let args: Vec<&OsStr> = base.iter().copied().chain(rest.iter().copied()).collect();
        let out = run(&args);
        assert_eq!(code(&out), 1, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("refusing: the target's mount namespace is hostexec's own"),
            "{err}"
        );
        assert!(err.contains("--allow-own-namespace"), "{err}");
    }
    // Nothing was mounted.
    let mp = Command::new("mountpoint")
        .arg("-q")
        .arg(d)
        .status()
        .unwrap();
    assert_eq!(mp.code(), Some(32));
    // Allowed explicitly: umount runs (and fails as umount does: not mounted).
    let args = [
        os("--target-pid"),
        os(&me),
        os("--allow-own-namespace"),
        os("umount"),
        d,
    ];
    let out = run(&args);
    assert_eq!(code(&out), 32, "{}", stderr(&out));
    // exec warns and runs.
    let out = run(&[
        os("--target-pid"),
        os(&me),
        os("exec"),
        os("--"),
        os("echo"),
        os("ran"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ran\n");
    assert!(stderr(&out)
        .starts_with("hostexec: warning: the target's mount namespace is hostexec's own"));
    // --ns without mnt is our own mount namespace as well.
    let sb = SandboxHost::start().unwrap();
    let pid = sb.pid().to_string();
    let out = run(&[
        os("--target-pid"),
        os(&pid),
        os("--ns"),
        os("uts"),
        os("umount"),
        d,
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--ns leaves out mnt"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn all_joins_the_namespaces_that_differ() {
    if skip_without_namespaces("all_joins_the_namespaces_that_differ") {
        return;
    }
    let sb = SandboxHost::builder().uts("hostexec-all").start().unwrap();
    let pid = sb.pid().to_string();
    let read = |args: &[&OsStr]| {
        let out = run(args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let script = "hostname; readlink /proc/self/ns/mnt /proc/self/ns/net";
    let ours = read(&[
        os("--target-pid"),
        os(&pid),
        os("--all"),
        os("exec"),
        os("--"),
        os("sh"),
        os("-c"),
        os(script),
    ]);
    let theirs = sb.oracle(&[os("sh"), os("-c"), os(script)]);
    assert_eq!(ours, String::from_utf8(theirs.stdout).unwrap());
    assert!(ours.starts_with("hostexec-all\n"), "{ours}");
    // nsenter -a gives the same namespaces.
    let nsenter = Command::new("nsenter")
        .args(["-t", &pid, "-a", "--", "sh", "-c", script])
        .output()
        .unwrap();
    assert_eq!(ours, String::from_utf8(nsenter.stdout).unwrap());
}

// ---------------------------------------------------------------- a terminal on stdin

/// A pty pair: the controller and the path of the terminal.
fn pty() -> (std::os::fd::OwnedFd, std::path::PathBuf) {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let controller =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    (
        controller,
        std::path::PathBuf::from(OsStr::from_bytes(name.as_bytes())),
    )
}

#[test]
fn a_terminal_on_stdin_never_hangs_exec() {
    let Some(sb) = sandbox("a_terminal_on_stdin_never_hangs_exec") else {
        return;
    };
    let (_controller, tty) = pty();
    let pid = sb.pid().to_string();
    let spawn = |args: &[&str]| {
        let term = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tty)
            .unwrap();
        Command::new(BIN)
            .args(["--target-pid", &pid])
            .args(args)
            .stdin(term)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let wait = |mut child: std::process::Child| {
        let start = Instant::now();
        loop {
            if let Some(_status) = child.try_wait().unwrap() {
                return child.wait_with_output().unwrap();
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("hostexec hung with a terminal on stdin");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Without -i: the command gets /dev/null (as kubectl exec without -i) and ends.
    let out = wait(spawn(&[
        "exec",
        "--",
        "sh",
        "-c",
        "cat; readlink /proc/self/fd/0",
    ]));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"/dev/null\n");
    // -i without -t: refused at once, saying why.
    let out = wait(spawn(&["exec", "-i", "--", "cat"]));
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("use -it"), "{}", stderr(&out));
}

// ---------------------------------------------------------------- help, completions, version

#[test]
fn subcommand_help_puts_its_own_options_first_with_examples_and_exit_codes() {
    for sub in [
        "exec",
        "realpath",
        "which",
        "mounts",
        "is-mountpoint",
        "mount",
        "umount",
        "completions",
    ] {
        let out = run(&[os(sub), os("--help")]);
        assert_eq!(code(&out), 0);
        let text = String::from_utf8(out.stdout).unwrap();
        let own = text
            .find("\nOptions:\n")
            .unwrap_or_else(|| panic!("{sub}: {text}"));
        let global = text
            .find("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{sub}: {text}"));
        assert!(own < global, "{sub}: its own options first");
        assert!(text.contains("Examples:\n  hostexec "), "{sub}: {text}");
        assert!(text.contains("Exit status:"), "{sub}: {text}");
        assert!(!text.contains("::"), "{sub}: a Rust path in the help");
    }
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&[os("completions"), os(shell)]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        for word in [
            "is-mountpoint",
            "realpath",
            "target-pid",
            "canonicalize-missing",
        ] {
            assert!(text.contains(word), "{shell}: {word} missing");
        }
    }
    // bash can parse its script.
    let script = run(&[os("completions"), os("bash")]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hostexec.bash");
    std::fs::write(&f, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(check.success());
    let complete = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(hostexec is-m); COMP_CWORD=1; _hostexec hostexec is-m hostexec; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            f.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&complete.stdout).trim(),
        "is-mountpoint"
    );
}

#[test]
fn version_names_the_commit() {
    let out = run(&[os("--version")]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8(out.stdout).unwrap();
    let want = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let commit = std::env::var("HOSTEXEC_GIT_COMMIT")
        .ok()
        .or(want)
        .unwrap_or_else(|| "unknown".into());
    assert_eq!(
        text,
        format!("hostexec {} (commit {commit})\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn messages_name_flags_not_library_types() {
    let Some(sb) = sandbox("messages_name_flags_not_library_types") else {
        return;
    };
    let out = on(
        &sb,
        &[os("--ns"), os("mnt,time"), os("exec"), os("--"), os("true")],
    );
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(
        err.starts_with("hostexec: --ns time needs --launcher nsenter"),
        "{err}"
    );
    assert!(!err.contains("::"), "{err}");
    // And --json makes it a JSON object on stdout.
    let out = on(
        &sb,
        &[
            os("--json"),
            os("--ns"),
            os("mnt,time"),
            os("exec"),
            os("--"),
            os("true"),
        ],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["exit_code"], 1);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .starts_with("--ns time needs --launcher nsenter"));
}

/// Reads from the pty controller until `want` shows up (or panics after 10 s).
fn read_until(controller: &std::os::fd::OwnedFd, seen: &mut Vec<u8>, want: &str) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(want) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "waited for {want:?}, saw {:?}",
            String::from_utf8_lossy(seen)
        );
        match rustix::event::poll(
            &mut [rustix::event::PollFd::new(
                controller,
                rustix::event::PollFlags::IN,
            )],
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            }),
        ) {
            Ok(0) => continue,
            Ok(_) => match rustix::io::read(controller, &mut buf) {
                Ok(n) => seen.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "reading the pty: {e}; saw {:?}",
                    String::from_utf8_lossy(seen)
                ),
            },
            Err(e) => panic!("poll: {e}"),
        }
    }
}

/// `exec -it` from a real terminal: hostexec runs as the session leader of a pty this test
/// holds (setsid -c), as under `kubectl exec -it` or `runc exec -t`.
#[test]
fn exec_it_runs_a_session_on_a_host_pty() {
    let Some(sb) = sandbox("exec_it_runs_a_session_on_a_host_pty") else {
        return;
    };
    let (controller, tty) = pty();
    let term = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tty)
        .unwrap();
    rustix::termios::tcsetwinsize(
        &term,
        rustix::termios::Winsize {
            ws_row: 33,
            ws_col: 111,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let before = rustix::termios::tcgetattr(&term).unwrap();
    let script = "printf 'size=%s term=%s\\n' \"$(stty size)\" \"$TERM\"; \
        read -r sid rest < /proc/$$/stat; set -- $(cut -d' ' -f6,7 /proc/$$/stat); \
        [ \"$1\" = $$ ] && echo leader; [ \"$2\" != 0 ] && echo has-ctty; \
        echo ready; read -r line; echo \"got:$line\"; \
        printf 'size=%s\\n' \"$(stty size)\"; exit 7";
    let pid = sb.pid().to_string();
    let mut child = Command::new("setsid")
        .args([
            "-c",
            BIN,
            "--target-pid",
            &pid,
            "exec",
            "-it",
            "--",
            "sh",
            "-c",
            script,
        ])
        .stdin(term.try_clone().unwrap())
        .stdout(term.try_clone().unwrap())
        .stderr(term.try_clone().unwrap())
        .env_remove("HOSTEXEC_LOG")
        .env("TERM", "xterm-hostexec")
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    read_until(&controller, &mut seen, "ready");
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(
        text.contains("term=xterm-hostexec"),
        "TERM goes along: {text}"
    );
    assert!(
        text.contains("size=33 111"),
        "the window size at start: {text}"
    );
    assert!(
        text.contains("leader"),
        "the command leads its session: {text}"
    );
    assert!(
        text.contains("has-ctty"),
        "the pty is its controlling terminal: {text}"
    );
    // Raw mode: hostexec turned echo and canonical mode off on our terminal.
    let during = rustix::termios::tcgetattr(&term).unwrap();
    assert!(!during
        .local_modes
        .contains(rustix::termios::LocalModes::ICANON));
    assert!(!during
        .local_modes
        .contains(rustix::termios::LocalModes::ECHO));
    // SIGWINCH: hostexec is the foreground of our terminal, the kernel signals it.
    rustix::termios::tcsetwinsize(
        &term,
        rustix::termios::Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    rustix::io::write(&controller, b"hello\r").unwrap();
    read_until(&controller, &mut seen, "size=40 120");
    assert!(String::from_utf8_lossy(&seen).contains("got:hello"));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "hostexec did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(7),
        "the command's status passes through"
    );
    // The local terminal is as it was.
    let after = rustix::termios::tcgetattr(&term).unwrap();
    assert_eq!(after.local_modes, before.local_modes);
    assert_eq!(after.input_modes, before.input_modes);
    assert_eq!(after.output_modes, before.output_modes);
}

/// `exec -t` with a pipe on stdin: the pipe's end of file reaches the command as the pty's
/// EOF, and Ctrl-C from the keyboard is the host pty's SIGINT for the command.
#[test]
fn exec_it_forwards_eof_and_keys() {
    let Some(sb) = sandbox("exec_it_forwards_eof_and_keys") else {
        return;
    };
    let pid = sb.pid().to_string();
    let mut child = Command::new(BIN)
        .args([
            "--target-pid",
            &pid,
            "exec",
            "-it",
            "--",
            "sh",
            "-c",
            "cat; echo after-eof",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        input.write_all(b"line one\n").unwrap();
    }
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "EOF was not forwarded"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // The pty echoes and translates newlines: what a terminal shows.
    assert!(text.contains("line one\r\n"), "{text:?}");
    assert!(text.ends_with("after-eof\r\n"), "{text:?}");

    // Ctrl-C as a key: the host pty's line discipline interrupts the command.
    let (controller, tty) = pty();
    let term = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tty)
        .unwrap();
    let mut child = Command::new("setsid")
        .args([
            "-c",
            BIN,
            "--target-pid",
            &pid,
            "exec",
            "-it",
            "--",
            "sh",
            "-c",
            "echo ready; sleep 100; echo not-interrupted",
        ])
        .stdin(term.try_clone().unwrap())
        .stdout(term.try_clone().unwrap())
        .stderr(term.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    read_until(&controller, &mut seen, "ready");
    std::thread::sleep(Duration::from_millis(200));
    rustix::io::write(&controller, b"\x03").unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "Ctrl-C did not reach the command"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!String::from_utf8_lossy(&seen).contains("not-interrupted"));
    // Killed by SIGINT: 128+2, as a shell reports it.
    assert_eq!(status.code(), Some(130));
}

/// `exec -t` without util-linux setsid(1): the command leads a session on the host pty (its
/// controlling terminal, named by `tty`), a signal N is exit status 128+N with nothing
/// printed about it, `--timeout` stops the session and what it started, and the nsenter
/// launcher, which cannot make the command a session leader, is refused with the flag named.
#[test]
fn exec_t_is_a_session_whose_signals_exit_128_plus_n() {
    let Some(sb) = sandbox("exec_t_is_a_session_whose_signals_exit_128_plus_n") else {
        return;
    };
    let pid = sb.pid().to_string();
    let run_t = |pre: &[&str], script: &str| {
        let mut args: Vec<&str> = vec!["--target-pid", &pid];
        args.extend_from_slice(pre);
        args.extend_from_slice(&["exec", "-t", "--", "sh", "-c", script]);
        Command::new(BIN)
            .args(&args)
            .stdin(Stdio::null())
            .env_remove("HOSTEXEC_LOG")
            .output()
            .unwrap()
    };
    let out = run_t(
        &[],
        "tty; set -- $(cut -d' ' -f6,7 /proc/$$/stat); [ \"$1\" = $$ ] && echo leader; \
         [ \"$2\" != 0 ] && echo has-ctty; kill -TERM $$",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        code(&out),
        143,
        "SIGTERM is 128+15: {text} {}",
        stderr(&out)
    );
    assert!(text.starts_with("/dev/pts/"), "tty names the pty: {text:?}");
    assert!(
        text.contains("leader") && text.contains("has-ctty"),
        "{text:?}"
    );
    assert!(!text.contains("did not exit normally"), "{text:?}");
    let out = run_t(&[], "exit 5");
    assert_eq!(code(&out), 5, "{}", stderr(&out));

    let token = format!("4{}.{}", std::process::id() % 1000, 7171);
    let started = Instant::now();
    let out = run_t(
        &["--timeout", "1s"],
        &format!("sleep {token} & sleep {token}; wait"),
    );
    assert_eq!(code(&out), 124, "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(10));
    let left = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&token))
            })
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while left() > 0 {
        assert!(
            Instant::now() < deadline,
            "the timeout left processes behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let out = run_t(&["--launcher", "nsenter"], "echo ran");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("--launcher host-thread"),
        "{}",
        stderr(&out)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ran"));
}
