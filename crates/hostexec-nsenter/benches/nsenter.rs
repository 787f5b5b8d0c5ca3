//! hostexec-nsenter against Go's routes, measured in the same run on a sandbox host.
//!
//! - `resolve`: `NsEnter::resolve` vs Go's `nsenter --mount=<ns> -- realpath -e P` (and the
//!   bare [`RootFs`](hostexec_rootfs::RootFs) walk, with and without a tokio blocking-pool hop);
//! - `launch_true`: `/bin/true` through the host thread vs the nsenter-binary launcher;
//! - `launch_true_1gib`: the same with 1 GiB resident in this process (every page touched):
//!   posix_spawn from the host thread should not care, a fork-based spawn would.
//!
//! - `launch_true_1gib/host_thread_inherited_fd`: the same while this process holds a
//!   descriptor without `FD_CLOEXEC` (as a shell or a Go parent may leave one). The spawn
//!   stays on `posix_spawn` and closes it in the child
//!   (`posix_spawn_file_actions_addclosefrom_np`): the cost must stay that of the
//!   small-memory row (a fork-based spawn took ~45 ms here).
//!
//! Small sample sizes keep `cargo bench -p hostexec-nsenter` around two minutes. Needs
//! CAP_SYS_ADMIN; without it the benches print why and do nothing.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use hostexec_api::{Executor, HostCommand, PathResolver, Resolve};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};

struct Fixture {
    sb: SandboxHost,
    rt: tokio::runtime::Runtime,
    thread: NsEnter,
    binary: NsEnter,
    path: std::path::PathBuf,
}

fn fixture() -> Option<Fixture> {
    if !can_use_namespaces() {
        eprintln!("skipping the hostexec-nsenter benches: they need CAP_SYS_ADMIN");
        return None;
    }
    let sb = SandboxHost::start().expect("sandbox");
    // A path with a relative and an absolute symlink on the way.
    let s = sb.scratch();
    sb.mkdir_all(&s.join("real/dir/sub")).unwrap();
    sb.write_file(&s.join("real/dir/sub/file"), b"x").unwrap();
    sb.symlink("real/dir", &s.join("rel")).unwrap();
    sb.symlink(s.join("rel/sub"), &s.join("abs")).unwrap();
    let path = s.join("abs/file");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (thread, binary) = rt.block_on(async {
        (
            NsEnter::new(sb.target()).unwrap(),
            NsEnter::builder(sb.target())
                .launcher(Launcher::NsenterBinary)
                .build()
                .unwrap(),
        )
    });
    Some(Fixture {
        sb,
        rt,
        thread,
        binary,
        path,
    })
}

fn go_realpath(mnt: &str, path: &Path) -> Vec<u8> {
    let out = Command::new("nsenter")
        .arg(mnt)
        .args(["--", "realpath", "-e"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn launch(f: &Fixture, h: &NsEnter) {
    let out = f.rt.block_on(h.run(HostCommand::new("/bin/true"))).unwrap();
    assert!(out.success());
}

fn benches(c: &mut Criterion) {
    let Some(f) = fixture() else { return };
    let mnt = format!("--mount=/proc/{}/ns/mnt", f.sb.pid());
    // Both routes agree before they are timed.
    let ours =
        f.rt.block_on(f.thread.resolve(&f.path, Resolve::MustExist))
            .unwrap();
    assert_eq!(
        go_realpath(&mnt, &f.path),
        [ours.as_os_str().as_encoded_bytes(), b"\n"].concat()
    );

    let mut g = c.benchmark_group("resolve");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("hostexec", |b| {
        b.iter(|| {
            f.rt.block_on(f.thread.resolve(&f.path, Resolve::MustExist))
                .unwrap()
        })
    });
    // The same walk without the async hop to tokio's blocking pool (what a caller already on
    // a blocking thread pays).
    g.bench_function("hostexec_rootfs_direct", |b| {
        b.iter(|| {
            f.thread
                .root_fs()
                .resolve(&f.path, Resolve::MustExist)
                .unwrap()
        })
    });
    // The previous route: the same walk behind a hop to tokio's blocking pool.
    g.bench_function("hostexec_rootfs_via_spawn_blocking", |b| {
        b.iter(|| {
            let root = std::sync::Arc::clone(f.thread.root_fs());
            let p = f.path.clone();
            f.rt.block_on(async move {
                tokio::task::spawn_blocking(move || root.resolve(&p, Resolve::MustExist))
                    .await
                    .unwrap()
            })
            .unwrap()
        })
    });
    g.bench_function("go_nsenter_realpath", |b| {
        b.iter(|| go_realpath(&mnt, &f.path))
    });
    // The kernel floor: one openat2(RESOLVE_IN_ROOT) and the descriptor's path read back.
    let rel = f.path.strip_prefix("/").unwrap().to_path_buf();
    let fds = rustix::fs::open(
        "/proc/self/fd",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    g.bench_function("kernel_floor_openat2_readlink", |b| {
        b.iter(|| {
            let fd = rustix::fs::openat2(
                f.thread.root_fs().as_fd(),
                &rel,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
                rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS,
            )
            .unwrap();
            let n = std::os::fd::AsRawFd::as_raw_fd(&fd).to_string();
            rustix::fs::readlinkat(&fds, n.as_str(), Vec::new()).unwrap()
        })
    });
    g.finish();

    // A healthy resolve while 100 calls are stuck in a hung FUSE mount (abandoned by their
    // callers, past their deadline), on the same NsEnter.
    {
        let hung_dir = f.sb.scratch().join("hung");
        f.sb.mkdir_all(&hung_dir).unwrap();
        let hung = f.sb.hung_fuse_mount(&hung_dir).unwrap();
        let h = f.thread.with_fs_timeout(Duration::from_millis(100));
        f.rt.block_on(async {
            let calls = (0..100).map(|i| {
                let h = h.clone();
                let p = hung_dir.join(format!("x{}", i % 10));
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        Duration::from_millis(20),
                        hostexec_api::HostFs::stat(&h, &p, true),
                    )
                    .await;
                })
            });
            for c in calls.collect::<Vec<_>>() {
                c.await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        });
        let mut g = c.benchmark_group("resolve_while_stuck");
        g.sample_size(20)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(3));
        g.bench_function("hostexec_100_stuck", |b| {
            b.iter(|| {
                f.rt.block_on(f.thread.resolve(&f.path, Resolve::MustExist))
                    .unwrap()
            })
        });
        g.finish();
        eprintln!(
            "resolve_while_stuck: pool {:?}, marked {:?}",
            f.thread.fs_pool_stats(),
            f.thread.unresponsive_mounts()
        );
        drop(hung);
    }

    // HostFs::stat (what hostexec-mount's is_mount_point costs): the pool hop vs the bare call.
    let mut g = c.benchmark_group("stat");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("hostexec", |b| {
        b.iter(|| {
            f.rt.block_on(hostexec_api::HostFs::stat(&f.thread, f.sb.scratch(), true))
                .unwrap()
        })
    });
    g.bench_function("hostexec_rootfs_direct", |b| {
        b.iter(|| f.thread.root_fs().stat(f.sb.scratch(), true).unwrap())
    });
    // The floor: one statx of the path, relative to the host root descriptor.
    let scratch_rel = f.sb.scratch().strip_prefix("/").unwrap().to_path_buf();
    g.bench_function("statx_direct", |b| {
        b.iter(|| {
            rustix::fs::statx(
                f.thread.root_fs().as_fd(),
                &scratch_rel,
                rustix::fs::AtFlags::empty(),
                rustix::fs::StatxFlags::BASIC_STATS | rustix::fs::StatxFlags::MNT_ID,
            )
            .unwrap()
        })
    });
    // The safe floor: what the kernel needs to stat a path confined to the host root (a
    // statx by path cannot refuse `..`, absolute or magic links on the way out).
    g.bench_function("safe_floor_openat2_statx", |b| {
        b.iter(|| hostexec_testing::safe_floor_stat(f.thread.root_fs().as_fd(), &scratch_rel))
    });
    g.finish();

    let mut g = c.benchmark_group("launch_true");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("host_thread", |b| b.iter(|| launch(&f, &f.thread)));
    g.bench_function("nsenter_binary", |b| b.iter(|| launch(&f, &f.binary)));
    g.finish();

    // 1 GiB resident: every page written.
    let mut big = vec![0u8; 1 << 30];
    for i in (0..big.len()).step_by(4096) {
        big[i] = 1;
    }
    std::hint::black_box(&big);
    let mut g = c.benchmark_group("launch_true_1gib");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(4));
    g.bench_function("host_thread", |b| b.iter(|| launch(&f, &f.thread)));
    g.bench_function("nsenter_binary", |b| b.iter(|| launch(&f, &f.binary)));
    // A descriptor without FD_CLOEXEC: still posix_spawn, closed in the child.
    let (_r, w): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
    rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty()).unwrap();
    g.bench_function("host_thread_inherited_fd", |b| {
        b.iter(|| launch(&f, &f.thread))
    });
    drop(w);
    g.finish();
    drop(std::hint::black_box(big));
}

criterion_group!(nsenter, benches);

fn main() {
    nsenter();
    Criterion::default().configure_from_args().final_summary();
}
