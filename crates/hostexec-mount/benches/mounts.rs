//! list() and is_mount_point() on a real sandbox host with 100 / 1,000 / 10,000 mounts,
//! against the reference routes measured in the same run:
//!
//! - list(): the bare read of `/proc/PID/mountinfo` (the floor), and `findmnt --list` as a
//!   process (`--task PID`, so no nsenter cost is charged to findmnt).
//! - is_mount_point(): the NsenterMounter route, `nsenter --mount=/proc/PID/ns/mnt -- findmnt
//!   -o target,fstype --noheadings --first-only --target P` (what kubernetes' `NsenterMounter.IsLikelyNotMountPoint` ran).
//!
//! - mount + unmount: a tmpfs, and a read-only bind at 100 and 10,000 mounts, through the
//!   native route (the kernel's mount calls on the host thread, targets held by descriptor)
//!   against the mount(8) route (`helper_only`: mount(8) and umount(8) as host processes; a
//!   read-only bind is two mount(8) runs, bind then remount) in the same run; the tmpfs also
//!   through mount(2) (the fallback with the new mount API switched off), for context; and the
//!   floor of any route on the host thread: one hop to it and the bare system calls by
//!   absolute path (`host_thread_floor`).
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
use hostexec_mount::{HostMounter, Mount, MountExt, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

fn grow(sb: &SandboxHost, base: &Path, from: usize, to: usize) {
    sb.mount_many_tmpfs(base, from, to - from).unwrap();
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

    // Mount + unmount, native against mount(8), before the table grows.
    let t = sb.scratch().join("bench-target");
    // The bind rows' source and target sit on a tmpfs of their own: the table grows to
    // 10,000 mounts elsewhere (under `base`), so the rows measure what a larger table costs.
    // Cloning a bind makes the kernel look at every mount directly below the source's mount
    // (`has_locked_children` in `__do_loopback`), a cost of where the source is, not of the
    // table: `bind_ro_siblings` measures that layout apart.
    let bind_fs = sb.scratch().join("bench-bind");
    sb.mkdir_all(&bind_fs).unwrap();
    sb.mount_tmpfs(&bind_fs, "").unwrap();
    let bind_src = bind_fs.join("source");
    let bt = bind_fs.join("t");
    let sibling_src = sb.scratch().join("bench-source");
    sb.mkdir_all(&t).unwrap();
    sb.mkdir_all(&bind_src).unwrap();
    sb.mkdir_all(&bt).unwrap();
    sb.mkdir_all(&sibling_src).unwrap();
    let mount2 = HostMounter::new(
        NsEnter::builder(sb.target())
            .new_mount_api(false)
            .build()
            .unwrap(),
    );
    let tmpfs = MountOptions::new().option("size=1m");
    let round = |m: &HostMounter<NsEnter>, o: &MountOptions, u: &UnmountOptions| {
        rt.block_on(async {
            m.mount(OsStr::new("bench"), &t, "tmpfs", o).await.unwrap();
            m.unmount(&t, u).await.unwrap();
        })
    };
    {
        let mut g = c.benchmark_group("mount_tmpfs");
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        let (native, helper) = (UnmountOptions::new(), UnmountOptions::new().helper_only());
        g.bench_function("hostexec_native", |b| b.iter(|| round(&m, &tmpfs, &native)));
        g.bench_function("hostexec_mount2", |b| {
            b.iter(|| round(&mount2, &tmpfs, &native))
        });
        let tmpfs8 = tmpfs.clone().helper_only();
        g.bench_function("mount8_route", |b| b.iter(|| round(&m, &tmpfs8, &helper)));
        // The floor of a mount made on the host thread: one hop to it and the bare system
        // calls by absolute path (no walk, no descriptor, no check).
        g.bench_function("host_thread_floor", |b| {
            b.iter(|| {
                let p = t.clone();
                rt.block_on(nsr.on_host_thread(move || {
                    use rustix::mount::*;
                    let fs = fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
                    fsconfig_set_string(&fs, "source", "bench").unwrap();
                    fsconfig_set_string(&fs, "size", "1m").unwrap();
                    fsconfig_create(&fs).unwrap();
                    let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())
                        .unwrap();
                    move_mount(
                        &mnt,
                        "",
                        rustix::fs::CWD,
                        &p,
                        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
                    )
                    .unwrap();
                    // An open descriptor of the mount would make umount2 EBUSY.
                    drop((mnt, fs));
                    unmount(&p, UnmountFlags::empty()).unwrap();
                }))
                .unwrap()
            })
        });
        g.finish();
    }
    let bind_ro =
        |m: &HostMounter<NsEnter>, src: &Path, to: &Path, o: &MountOptions, u: &UnmountOptions| {
            rt.block_on(async {
                m.mount(src.as_os_str(), to, "", o).await.unwrap();
                m.unmount(to, u).await.unwrap();
            })
        };
    let bind_floor = |src: &Path, to: &Path| {
        let (s, p) = (src.to_path_buf(), to.to_path_buf());
        rt.block_on(nsr.on_host_thread(move || {
            use rustix::mount::*;
            mount_bind(&s, &p).unwrap();
            mount_remount(&p, MountFlags::BIND | MountFlags::RDONLY, "").unwrap();
            unmount(&p, UnmountFlags::empty()).unwrap();
        }))
        .unwrap()
    };

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

        if n != 1_000 {
            let mut g = c.benchmark_group("bind_ro");
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            let ro = MountOptions::new().options(["bind", "ro"]);
            let ro8 = ro.clone().helper_only();
            let (native, helper) = (UnmountOptions::new(), UnmountOptions::new().helper_only());
            // Both routes make the same mount: a read-only bind, then nothing.
            for (o, u) in [(&ro, &native), (&ro8, &helper)] {
                rt.block_on(async {
                    m.mount(bind_src.as_os_str(), &bt, "", o).await.unwrap();
                    let table = m.list().await.unwrap();
                    let top = table.iter().rev().find(|x| x.mount_point() == bt);
                    assert!(top.unwrap().is_read_only(), "{o:?}");
                    m.unmount(&bt, u).await.unwrap();
                    assert!(!m.is_mount_point(&bt).await.unwrap());
                });
            }
            g.bench_with_input(BenchmarkId::new("hostexec_native", n), &n, |b, _| {
                b.iter(|| bind_ro(&m, &bind_src, &bt, &ro, &native))
            });
            g.bench_with_input(BenchmarkId::new("mount8_route", n), &n, |b, _| {
                b.iter(|| bind_ro(&m, &bind_src, &bt, &ro8, &helper))
            });
            // The floor on the host thread: one hop, `mount(2)` bind + read-only remount by
            // absolute path, `umount2`.
            g.bench_with_input(BenchmarkId::new("host_thread_floor", n), &n, |b, _| {
                b.iter(|| bind_floor(&bind_src, &bt))
            });
            g.finish();
        }
        if n == 10_000 {
            // The source on the mount that holds the 10,000 (see `bind_fs`).
            let mut g = c.benchmark_group("bind_ro_siblings");
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            let (ro, native) = (
                MountOptions::new().options(["bind", "ro"]),
                UnmountOptions::new(),
            );
            g.bench_with_input(BenchmarkId::new("hostexec_native", n), &n, |b, _| {
                b.iter(|| bind_ro(&m, &sibling_src, &t, &ro, &native))
            });
            g.bench_with_input(BenchmarkId::new("host_thread_floor", n), &n, |b, _| {
                b.iter(|| bind_floor(&sibling_src, &t))
            });
            g.finish();
        }
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
            // The safe floor: openat2(RESOLVE_IN_ROOT|RESOLVE_CACHED, O_PATH) + statx of the
            // descriptor + close, the system calls is_mount_point makes (a statx by path
            // cannot be confined to the host root).
            g.bench_with_input(BenchmarkId::new("safe_floor", n), &n, |b, _| {
                b.iter(|| hostexec_testing::safe_floor_stat(nsr.root_fs().as_fd(), &probe_rel))
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
