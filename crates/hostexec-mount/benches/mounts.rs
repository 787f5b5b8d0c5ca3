//! list() and is_mount_point() on a real sandbox host with 100 / 1,000 / 10,000 mounts,
//! against the reference routes measured in the same run:
//!
//! - list(): the bare read of `/proc/PID/mountinfo` (the floor), and `findmnt --list` as a
//!   process (`--task PID`, so no nsenter cost is charged to findmnt).
//! - is_mount_point(): the NsenterMounter route, `nsenter --mount=/proc/PID/ns/mnt -- findmnt
//!   -o target,fstype --noheadings --first-only --target P` (what kubernetes' `NsenterMounter.IsLikelyNotMountPoint` ran).
//!
//! - mount_of(): one mount's entry through `statmount(2)` (the path's unique mount ID, then
//!   that mount alone) against the whole table read, parsed and searched by the path's
//!   mount ID.
//!
//! Small samples (the machine has 2 shared cores): `cargo bench -p hostexec-mount`.
//! Needs CAP_SYS_ADMIN; prints why and does nothing without it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hostexec_mount::{HostMounter, Mount, MountExt};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

/// Mounts tmpfs at BASE/mI for I in [start, start+n) inside the sandbox, in one process.
const MAKE_MOUNTS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
base, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(start, start + n):
    d = "%s/m%d" % (base, i)
    os.makedirs(d, exist_ok=True)
    if libc.mount(b"bench", d.encode(), b"tmpfs", 0, b"size=16k") != 0:
        raise OSError(ctypes.get_errno(), d)
"#;

fn grow(sb: &SandboxHost, base: &Path, from: usize, to: usize) {
    let out = sb.oracle(&[
        "python3".as_ref(),
        "-c".as_ref(),
        MAKE_MOUNTS.as_ref(),
        base.as_os_str(),
        from.to_string().as_ref(),
        (to - from).to_string().as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn benches(c: &mut Criterion) {
    if !can_use_namespaces() {
        eprintln!("skipping the mount benchmarks: they need CAP_SYS_ADMIN");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::new(sb.target()).unwrap();
    let nsr = ns.clone();
    let m = HostMounter::new(ns);
    let base = sb.scratch().join("bench");
    sb.mkdir_all(&base).unwrap();
    let pid = sb.pid().to_string();
    let mountinfo = PathBuf::from(format!("/proc/{pid}/mountinfo"));
    let ns_mnt = format!("--mount=/proc/{pid}/ns/mnt");
    let probe = base.join("m50");

    let mut have = 0;
    for n in [100usize, 1_000, 10_000] {
        grow(&sb, &base, have, n);
        have = n;
        let count = rt.block_on(m.list()).unwrap().len();
        assert!(count >= n, "{count}");

        let mut g = c.benchmark_group("list");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        g.bench_with_input(BenchmarkId::new("bare_read", n), &n, |b, _| {
            b.iter(|| std::fs::read(&mountinfo).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("host_mounter_list", n), &n, |b, _| {
            b.iter(|| rt.block_on(m.list()).unwrap())
        });
        let bytes = std::fs::read(&mountinfo).unwrap();
        g.bench_with_input(BenchmarkId::new("parse_only", n), &n, |b, _| {
            b.iter(|| hostexec_mount::mountinfo::parse_mountinfo(&bytes).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("backend_read", n), &n, |b, _| {
            b.iter(|| {
                rt.block_on(hostexec_api::HostFs::read_mountinfo(&nsr))
                    .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("findmnt_process", n), &n, |b, _| {
            b.iter(|| {
                let out = Command::new("findmnt")
                    .args(["--list", "--task", &pid])
                    .output()
                    .unwrap();
                assert!(out.status.success());
                out.stdout.len()
            })
        });
        g.finish();

        // One mount's entry: statmount(2) of the mount holding the path (walk + host
        // thread) against finding it in the whole table (read + parse + search by ID).
        let mut g = c.benchmark_group("mount_of");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let one = rt.block_on(m.mount_of(&probe)).unwrap();
        let whole = rt.block_on(m.mount_of_by_table(&probe)).unwrap();
        assert_eq!(one.to_fields(), whole.to_fields());
        g.bench_with_input(BenchmarkId::new("statmount", n), &n, |b, _| {
            b.iter(|| rt.block_on(m.mount_of(&probe)).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("full_parse", n), &n, |b, _| {
            b.iter(|| rt.block_on(m.mount_of_by_table(&probe)).unwrap())
        });
        g.finish();

        if n == 1_000 {
            let mut g = c.benchmark_group("is_mount_point");
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            assert!(rt.block_on(m.is_mount_point(&probe)).unwrap());
            g.bench_with_input(BenchmarkId::new("host_mounter", n), &n, |b, _| {
                b.iter(|| rt.block_on(m.is_mount_point(&probe)).unwrap())
            });
            // The floor: one statx of the path relative to the host root descriptor.
            let probe_rel = probe.strip_prefix("/").unwrap().to_path_buf();
            g.bench_with_input(BenchmarkId::new("statx_floor", n), &n, |b, _| {
                b.iter(|| {
                    rustix::fs::statx(
                        nsr.root_fs().as_fd(),
                        &probe_rel,
                        rustix::fs::AtFlags::empty(),
                        rustix::fs::StatxFlags::BASIC_STATS | rustix::fs::StatxFlags::MNT_ID,
                    )
                    .unwrap()
                })
            });
            g.bench_with_input(BenchmarkId::new("nsenter_findmnt", n), &n, |b, _| {
                b.iter(|| {
                    let out = Command::new("nsenter")
                        .args([ns_mnt.as_str(), "--", "findmnt", "-o", "target,fstype"])
                        .args(["--noheadings", "--first-only", "--target"])
                        .arg(OsStr::new(&probe))
                        .output()
                        .unwrap();
                    assert!(out.status.success());
                    out.stdout.len()
                })
            });
            g.finish();
        }
    }
}

criterion_group!(mount_benches, benches);
criterion_main!(mount_benches);
