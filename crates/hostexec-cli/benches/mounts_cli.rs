//! The `hostexec` binary as an operator or a script runs it, at 5,000 mounts on a sandbox
//! host, against findmnt in the same run:
//!
//! - `hostexec --target-pid PID --json mounts` against `findmnt --list --json --task PID`;
//! - `hostexec --target-pid PID mounts` (the table) against `findmnt --list --task PID`.
//!
//! Both are whole processes (start, join or read, print to a pipe), so the ratio is what a
//! caller waits. findmnt reads `/proc/PID/mountinfo` from here (`--task`), so no nsenter cost
//! is charged to it; hostexec pays for opening and joining the host.
//!
//! `cargo bench -p hostexec-cli --bench mounts_cli`; `cargo xtask bench mounts_cli` for the
//! table rows.
//! Needs CAP_SYS_ADMIN; prints why and does nothing without it.

use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

const BIN: &str = env!("CARGO_BIN_EXE_hostexec");

/// Runs a command to completion, its output into a pipe; returns the bytes printed.
fn run(cmd: &mut Command) -> usize {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.len()
}

fn benches(c: &mut Criterion) {
    if !can_use_namespaces() {
        eprintln!("skipping the CLI benchmarks: they need CAP_SYS_ADMIN");
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let base = sb.scratch().join("bench");
    sb.mkdir_all(&base).unwrap();
    let n = 5_000;
    sb.mount_many_tmpfs(&base, 0, n).unwrap();
    let pid = sb.pid().to_string();
    let ours = |json: bool| {
        let mut c = Command::new(BIN);
        c.args(["--target-pid", &pid]);
        if json {
            c.arg("--json");
        }
        c.arg("mounts").env_remove("HOSTEXEC_LOG");
        c
    };
    let findmnt = |json: bool| {
        let mut c = Command::new("findmnt");
        c.args(["--list", "--task", &pid]);
        if json {
            c.arg("--json");
        }
        c
    };
    // The same mounts in both outputs (the sandbox's table, plus its scratch and bench dirs).
    let rows = run(&mut ours(false));
    assert!(rows > n * 20, "{rows} bytes for {n} mounts");

    let mut g = c.benchmark_group("mounts_cli");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_with_input(BenchmarkId::new("hostexec_json", n), &n, |b, _| {
        b.iter(|| run(&mut ours(true)))
    });
    g.bench_with_input(BenchmarkId::new("findmnt_json", n), &n, |b, _| {
        b.iter(|| run(&mut findmnt(true)))
    });
    g.bench_with_input(BenchmarkId::new("hostexec_table", n), &n, |b, _| {
        b.iter(|| run(&mut ours(false)))
    });
    g.bench_with_input(BenchmarkId::new("findmnt_table", n), &n, |b, _| {
        b.iter(|| run(&mut findmnt(false)))
    });
    g.finish();
}

criterion_group!(cli, benches);
criterion_main!(cli);
