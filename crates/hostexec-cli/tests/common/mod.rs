//! What the `hostexec` binary's test files share (`mod common;` in each): running the binary
//! with a clean hostexec environment, against a sandbox host, and reading its output.

// Each test file uses a part of this module.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::{Command, Output, Stdio};

use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

pub const BIN: &str = env!("CARGO_BIN_EXE_hostexec");

/// Runs the binary with a clean hostexec environment, `env` added and `stdin` on its stdin.
pub fn run_with(args: &[&OsStr], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("HOSTEXEC_HOST_ROOT")
        .env_remove("HOSTEXEC_LOG")
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the hostexec binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert_no_panic(&out);
    out
}

/// Runs the binary with `args` and an empty stdin.
pub fn run(args: &[&OsStr]) -> Output {
    run_with(args, &[], b"")
}

/// Every run: no panic, no backtrace.
pub fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked")
            && !err.contains("stack backtrace")
            && !err.contains("RUST_BACKTRACE"),
        "hostexec panicked: {err}"
    );
}

/// The exit code (a run killed by a signal fails the test).
pub fn code(out: &Output) -> i32 {
    out.status.code().expect("hostexec exits, not killed")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// `--target-pid PID` for the sandbox, followed by `rest`.
pub fn on(sb: &SandboxHost, rest: &[&OsStr]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["--target-pid".into(), sb.pid().to_string().into()];
    v.extend(rest.iter().map(|s| s.to_os_string()));
    v
}

/// Runs the binary against the sandbox (`--target-pid`) with `rest` and `env` added.
pub fn run_on_env(sb: &SandboxHost, rest: &[&OsStr], env: &[(&str, &str)]) -> Output {
    let args = on(sb, rest);
    let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
    run_with(&refs, env, b"")
}

/// Runs the binary against the sandbox (`--target-pid`) with `rest`.
pub fn run_on(sb: &SandboxHost, rest: &[&OsStr]) -> Output {
    run_on_env(sb, rest, &[])
}

/// A sandbox host, or `None` where namespaces are unavailable (never under `CI=true`).
pub fn sandbox(test: &str) -> Option<SandboxHost> {
    if skip_without_namespaces(test) {
        return None;
    }
    Some(SandboxHost::start().expect("sandbox starts"))
}
