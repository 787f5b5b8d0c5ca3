//! `cargo xtask demo`: the real `hostexec` binary against a sandbox host, narrated and checked.
//!
//! The sandbox (`hostexec_testing::sandbox::SandboxHost`) is a process in its own mount
//! namespace with a private tmpfs that only it can see, so every step can show the difference
//! between "here" and "on the host": a file that does not exist here is read by the host's
//! `cat`, symlinks that do not exist here resolve, a mount made on the host is invisible here.
//! Every step checks what `hostexec` printed and how it exited (and, where one exists, against
//! util-linux or coreutils run through `nsenter` into the same sandbox); a wrong answer stops
//! the demo with an error.

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

use crate::fake_demo;

/// Runs the demo. `force_fake` shows the fake backend even with CAP_SYS_ADMIN.
pub(crate) fn demo(force_fake: bool) -> Result<(), String> {
    let started = Instant::now();
    if force_fake || !can_use_namespaces() {
        if !force_fake {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                return Err(
                    "CI=true but this process lacks CAP_SYS_ADMIN: CI must run the \
                            demo against a real sandbox host (run as root)"
                        .into(),
                );
            }
            println!(
                "This process lacks CAP_SYS_ADMIN, so it cannot create the sandbox host (a \
                 mount namespace) or join one: run `sudo cargo xtask demo` for the real thing.\n\
                 Meanwhile, here is what the fake backend (hostexec-fake) does without root.\n"
            );
        }
        fake_demo::run()?;
        println!(
            "\nfake demo done in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }

    let bin = build_hostexec()?;
    let started = Instant::now();
    let sb = SandboxHost::start().map_err(|e| {
        format!("cannot start the sandbox host (needs util-linux unshare and mount): {e}")
    })?;
    let pid = sb.pid();
    let scratch = sb.scratch().to_path_buf();
    println!(
        "\nThe sandbox host is process {pid}: its own mount namespace, with a private tmpfs at\n  \
         {}\n\
         that only it sees (here that directory is empty). Every command below is the real\n\
         hostexec binary ({}) run with --target-pid {pid}.",
        scratch.display(),
        bin.display()
    );
    let mut d = Demo {
        bin,
        pid,
        step: 0,
        sb: &sb,
    };
    d.run_steps(&scratch)?;
    drop(sb);
    teardown_check(pid, &scratch)?;
    println!(
        "\nAll {} steps checked in {:.1}s (after the build).",
        STEPS,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `cargo build -p hostexec-cli` and the path of the `hostexec` executable it produced.
pub(crate) fn build_hostexec() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("+ cargo build -p hostexec-cli");
    let out = Command::new(cargo)
        .args([
            "build",
            "-p",
            "hostexec-cli",
            "--bin",
            "hostexec",
            "--message-format=json-render-diagnostics",
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo build -p hostexec-cli failed ({})",
            out.status
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "hostexec")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo built hostexec-cli but named no hostexec executable".into())
}

const STEPS: usize = 7;

struct Demo<'a> {
    bin: PathBuf,
    pid: u32,
    step: usize,
    sb: &'a SandboxHost,
}

/// Fails the demo with `what` unless `ok`.
fn check(ok: bool, what: impl Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn shown(a: &OsStr) -> String {
    let s = a.to_string_lossy();
    if s.is_empty() || s.contains([' ', '\'', '"', '$', '\\']) {
        format!("{s:?}")
    } else {
        s.into_owned()
    }
}

fn indent(bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        println!("    {line}");
    }
}

impl Demo<'_> {
    fn step(&mut self, title: &str) {
        self.step += 1;
        println!("\n[{}/{STEPS}] {title}", self.step);
    }

    /// Runs `hostexec --target-pid PID args…`, shows the command line and what it printed.
    fn hostexec(&self, args: &[&OsStr]) -> Result<Output, String> {
        let pid = self.pid.to_string();
        let mut line = format!("  $ hostexec --target-pid {pid}");
        for a in args {
            line.push(' ');
            line.push_str(&shown(a));
        }
        println!("{line}");
        let out = Command::new(&self.bin)
            .arg("--target-pid")
            .arg(&pid)
            .args(args)
            .env_remove("HOSTEXEC_LOG")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        indent(&out.stdout);
        indent(&out.stderr);
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            !err.contains("panicked"),
            format!("hostexec panicked: {err}"),
        )?;
        Ok(out)
    }

    fn say(&self, text: &str) {
        println!("  {text}");
    }

    fn ok(&self, text: &str) {
        println!("  ok: {text}");
    }

    fn oracle(&self, argv: &[&OsStr]) -> Output {
        self.sb.oracle(argv)
    }

    fn run_steps(&mut self, s: &Path) -> Result<(), String> {
        let io = |e: std::io::Error| format!("preparing the sandbox: {e}");

        // 1. A command that reads a file only the host has.
        self.step("Run a host command that reads a file only the host has");
        let hello = s.join("hello.txt");
        let text = b"hello from the host's private tmpfs\n";
        self.sb.write_file(&hello, text).map_err(io)?;
        self.say(&format!(
            "here, {} exists: {}",
            hello.display(),
            hello.exists()
        ));
        check(
            !hello.exists(),
            "the sandbox's file must not be visible here",
        )?;
        let out = self.hostexec(&[
            OsStr::new("exec"),
            OsStr::new("--"),
            OsStr::new("cat"),
            hello.as_os_str(),
        ])?;
        check(
            out.status.code() == Some(0),
            format!("exec exited {}", out.status),
        )?;
        check(out.stdout == text, "exec printed the host file's content")?;
        self.ok("the host's cat read the host's file; hostexec exited with cat's status 0");

        // 2. realpath through symlinks that exist only on the host.
        self.step("Resolve a path through symlinks that exist only on the host");
        let real_dir = s.join("releases/v2");
        self.sb.mkdir_all(&real_dir).map_err(io)?;
        self.sb
            .write_file(&real_dir.join("config.toml"), b"answer = 42\n")
            .map_err(io)?;
        self.sb
            .symlink("releases/v2", &s.join("current"))
            .map_err(io)?;
        self.sb
            .symlink(s.join("current"), &s.join("app"))
            .map_err(io)?;
        self.say(&format!(
            "{} -> releases/v2 (relative), {} -> {} (absolute, read against the host's /)",
            s.join("current").display(),
            s.join("app").display(),
            s.join("current").display()
        ));
        let query = s.join("app/config.toml");
        let missing = s.join("app/missing.toml");
        let out = self.hostexec(&[
            OsStr::new("realpath"),
            OsStr::new("-e"),
            query.as_os_str(),
            missing.as_os_str(),
        ])?;
        let want = real_dir.join("config.toml");
        let mut want_line = want.as_os_str().as_encoded_bytes().to_vec();
        want_line.push(b'\n');
        check(
            out.stdout == want_line,
            "realpath printed the resolved path alone",
        )?;
        check(
            out.status.code() == Some(1),
            "realpath exits 1 when one path fails",
        )?;
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            err.trim_end()
                == format!(
                    "hostexec: realpath: {}: No such file or directory",
                    missing.display()
                ),
            format!("realpath's error line: {err}"),
        )?;
        let gnu = self.oracle(&[OsStr::new("realpath"), OsStr::new("-e"), query.as_os_str()]);
        check(gnu.stdout == want_line, "GNU realpath on the host agrees")?;
        self.ok(
            "same answer as GNU realpath run on the host; the missing path is one strerror line",
        );

        // 3. The host's mount table.
        self.step("List the host's mounts");
        let out = self.hostexec_quiet(&[OsStr::new("--json"), OsStr::new("mounts")])?;
        check(out.status.success(), "mounts --json succeeds")?;
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("mounts --json is not JSON: {e}"))?;
        let rows = rows.as_array().ok_or("mounts --json is not an array")?;
        let scratch_row = rows
            .iter()
            .find(|r| r["target"].as_str() == s.to_str())
            .ok_or("the sandbox's tmpfs is missing from mounts --json")?;
        check(
            scratch_row["fstype"] == "tmpfs" && scratch_row["source"] == "hostexec-sandbox",
            format!("the scratch row: {scratch_row}"),
        )?;
        let findmnt = self.oracle(&[
            OsStr::new("findmnt"),
            OsStr::new("--list"),
            OsStr::new("--noheadings"),
            OsStr::new("-o"),
            OsStr::new("ID"),
        ]);
        let findmnt_count = String::from_utf8_lossy(&findmnt.stdout).lines().count();
        check(
            rows.len() == findmnt_count,
            format!(
                "{} mounts, findmnt on the host says {findmnt_count}",
                rows.len()
            ),
        )?;
        println!(
            "    ({} mounts; the sandbox's own row:)\n    {}",
            rows.len(),
            scratch_row
        );
        let table = self.hostexec_quiet(&[OsStr::new("mounts")])?;
        let table = String::from_utf8_lossy(&table.stdout);
        let header = table.lines().next().unwrap_or_default();
        check(header.starts_with("TARGET"), "the table has a header")?;
        println!("    (the header and the rows under the scratch directory:)");
        println!("    {header}");
        for line in table
            .lines()
            .filter(|l| l.starts_with(&*s.to_string_lossy()))
        {
            println!("    {line}");
        }
        self.ok(&format!(
            "{} mounts, as many as findmnt counts on the host; the private tmpfs is among them",
            rows.len()
        ));

        // 4. Mount a tmpfs on the host.
        self.step("Mount a tmpfs on the host");
        let mnt = s.join("mnt");
        self.sb.mkdir_all(&mnt).map_err(io)?;
        let out = self.hostexec(&[
            OsStr::new("mount"),
            OsStr::new("-t"),
            OsStr::new("tmpfs"),
            OsStr::new("-o"),
            OsStr::new("size=4m,mode=0750"),
            OsStr::new("demo-tmpfs"),
            mnt.as_os_str(),
        ])?;
        check(out.status.success(), format!("mount exited {}", out.status))?;
        let found = self.oracle(&[
            OsStr::new("findmnt"),
            OsStr::new("-n"),
            OsStr::new("-o"),
            OsStr::new("SOURCE,FSTYPE,FS-OPTIONS"),
            mnt.as_os_str(),
        ]);
        let found = String::from_utf8_lossy(&found.stdout).trim().to_owned();
        println!("    findmnt on the host: {found}");
        check(
            found.starts_with("demo-tmpfs tmpfs") && found.contains("size=4096k"),
            format!("findmnt on the host shows the new tmpfs: {found}"),
        )?;
        check(
            Command::new("findmnt")
                .arg(&mnt)
                .stdout(Stdio::null())
                .status()
                .map(|st| !st.success())
                .unwrap_or(true),
            "the mount must not be visible here",
        )?;
        self.ok("findmnt on the host shows it; here nothing is mounted there");

        // 5. is-mountpoint.
        self.step("Ask whether host paths are mount points (mountpoint(1)'s exit codes)");
        let out = self.hostexec(&[OsStr::new("is-mountpoint"), mnt.as_os_str()])?;
        check(out.status.code() == Some(0), "a mount point: exit 0")?;
        check(
            out.stdout == format!("{} is a mountpoint\n", mnt.display()).as_bytes(),
            "says it is a mountpoint",
        )?;
        let plain = s.join("releases");
        let out = self.hostexec(&[OsStr::new("is-mountpoint"), plain.as_os_str()])?;
        check(out.status.code() == Some(32), "not a mount point: exit 32")?;
        let util_linux = self.oracle(&[OsStr::new("mountpoint"), plain.as_os_str()]);
        check(
            util_linux.stdout == out.stdout && util_linux.status.code() == Some(32),
            "util-linux mountpoint on the host agrees",
        )?;
        self.ok("exit 0 and 32, word for word what util-linux mountpoint says on the host");

        // 6. umount.
        self.step("Unmount it");
        let out = self.hostexec(&[OsStr::new("umount"), mnt.as_os_str()])?;
        check(
            out.status.success(),
            format!("umount exited {}", out.status),
        )?;
        let out = self.hostexec(&[OsStr::new("is-mountpoint"), mnt.as_os_str()])?;
        check(out.status.code() == Some(32), "gone after umount: exit 32")?;
        let util_linux =
            self.oracle(&[OsStr::new("mountpoint"), OsStr::new("-q"), mnt.as_os_str()]);
        check(
            util_linux.status.code() == Some(32),
            "util-linux agrees it is gone",
        )?;
        self.ok("unmounted on the host");

        // 7. A hung command, bounded.
        self.step("Bound a hung host command with --timeout");
        let pid_file = s.join("sleeper.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let t0 = Instant::now();
        let out = self.hostexec(&[
            OsStr::new("--timeout"),
            OsStr::new("500ms"),
            OsStr::new("exec"),
            OsStr::new("--"),
            OsStr::new("sh"),
            OsStr::new("-c"),
            OsStr::new(&script),
        ])?;
        let took = t0.elapsed();
        check(
            out.status.code() == Some(124),
            format!("exit {}", out.status),
        )?;
        check(
            String::from_utf8_lossy(&out.stderr).contains("timed out"),
            "the message says it timed out",
        )?;
        check(took < Duration::from_secs(10), format!("took {took:?}"))?;
        let sleeper = std::fs::read_to_string(self.sb.local(&pid_file))
            .map_err(|e| format!("reading the sleeper's pid: {e}"))?;
        let sleeper = sleeper.trim();
        // The sandbox shares this PID namespace, so the PID is valid here too.
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(sleeper) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        check(
            !alive(sleeper),
            format!("the background sleep {sleeper} was killed with its process group"),
        )?;
        self.ok(&format!(
            "exit 124 after {:.1}s; the background `sleep 30` (PID {sleeper}) died with the \
             command's process group",
            took.as_secs_f64()
        ));
        Ok(())
    }

    /// Like [`Demo::hostexec`] but shows only the command line (for long outputs).
    fn hostexec_quiet(&self, args: &[&OsStr]) -> Result<Output, String> {
        let out = Command::new(&self.bin)
            .arg("--target-pid")
            .arg(self.pid.to_string())
            .args(args)
            .env_remove("HOSTEXEC_LOG")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin.display()))?;
        let shown_args: Vec<String> = args.iter().map(|a| shown(a)).collect();
        println!(
            "  $ hostexec --target-pid {} {}",
            self.pid,
            shown_args.join(" ")
        );
        indent(&out.stderr);
        Ok(out)
    }
}

/// True if process `pid` exists and is not a zombie.
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// After the sandbox is dropped: its process is gone and its scratch directory removed.
fn teardown_check(pid: u32, scratch: &Path) -> Result<(), String> {
    println!("\nTearing down: the sandbox process is killed and reaped, its directory removed.");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    check(
        !Path::new(&format!("/proc/{pid}")).exists(),
        format!("the sandbox process {pid} is gone"),
    )?;
    check(
        !scratch.exists(),
        format!("{} is removed", scratch.display()),
    )?;
    println!(
        "  ok: process {pid} is gone; {} is removed",
        scratch.display()
    );
    Ok(())
}
