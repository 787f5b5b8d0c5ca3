//! The `hostexec` command against GNU coreutils, start-up included, on a sandbox host.
//!
//! - `cli_realpath_300/hostexec`: one `hostexec --target-pid P realpath -e` process resolving
//!   300 host paths (each through a relative and an absolute symlink);
//! - `cli_realpath_300/gnu_realpath_in_host`: one GNU `realpath -e` process resolving the same
//!   300 paths inside the host, reached as a process there is (`nsenter --mount=… --`);
//! - `cli_realpath_300/nsenter_true`: `nsenter --mount=… -- true`, the cost of only getting
//!   a process into the host, to read the GNU row with.
//!
//! Needs CAP_SYS_ADMIN; without it the bench prints why and does nothing.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

const BIN: &str = env!("CARGO_BIN_EXE_hostexec");
const PATHS: usize = 300;

fn output(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output();
    let out = out.expect("the command starts");
    assert!(out.status.success(), "{cmd:?}: {:?}", out.status);
    out.stdout
}

fn benches(c: &mut Criterion) {
    if !can_use_namespaces() {
        eprintln!("skipping the hostexec-cli bench: it needs CAP_SYS_ADMIN");
        return;
    }
    let sb = SandboxHost::start().expect("sandbox");
    let s = sb.scratch().to_path_buf();
    let mut paths: Vec<PathBuf> = Vec::with_capacity(PATHS);
    for i in 0..PATHS {
        let d = s.join(format!("real/d{i}/sub"));
        sb.mkdir_all(&d).unwrap();
        sb.write_file(&d.join("file"), b"x").unwrap();
        sb.symlink(format!("real/d{i}"), &s.join(format!("rel{i}")))
            .unwrap();
        sb.symlink(s.join(format!("rel{i}/sub")), &s.join(format!("abs{i}")))
            .unwrap();
        paths.push(s.join(format!("abs{i}/file")));
    }
    let mnt: OsString = format!("--mount=/proc/{}/ns/mnt", sb.pid()).into();
    let pid = sb.pid().to_string();
    let ours = || {
        let mut cmd = Command::new(BIN);
        cmd.args(["--target-pid", &pid, "realpath", "-e"])
            .args(&paths);
        output(&mut cmd)
    };
    let gnu = || {
        let mut cmd = Command::new("nsenter");
        cmd.arg(&mnt).args(["--", "realpath", "-e"]).args(&paths);
        output(&mut cmd)
    };
    // Both give the same 300 lines before they are timed.
    assert_eq!(ours(), gnu());
    assert_eq!(ours().split(|&b| b == b'\n').count(), PATHS + 1);

    let mut g = c.benchmark_group("cli_realpath_300");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("hostexec", |b| b.iter(ours));
    g.bench_function("gnu_realpath_in_host", |b| b.iter(gnu));
    g.bench_function("nsenter_true", |b| {
        b.iter(|| output(Command::new("nsenter").arg(&mnt).args(["--", "true"])))
    });
    g.finish();
}

criterion_group!(cli, benches);

fn main() {
    cli();
    Criterion::default().configure_from_args().final_summary();
}
