//! # hostexec-nsenter: run host commands and resolve host paths, natively
//!
//! The real [`hostexec_api`] backend. Build one [`NsEnter`] for the host — a [`Target`] names
//! it — and hand it to host logic written against the api's traits:
//!
//! ```no_run
//! use hostexec_api::{Executor, HostCommand, PathResolver, Resolve};
//! use hostexec_nsenter::{NsEnter, Target};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // A pod with a /rootfs hostPath: root /rootfs, PID 1's namespaces through /rootfs/proc.
//! let host = NsEnter::new(Target::default())?;
//! // A pod with hostPID instead: `Target::pid(1)`.
//! let out = host.run(HostCommand::new("uname").arg("-r")).await?.check()?;
//! println!("host kernel {}", out.stdout_text());
//! let real = host.resolve("/var/lib/kubelet".as_ref(), Resolve::MustExist).await?;
//! println!("{}", real.display());
//! # Ok(()) }
//! ```
//!
//! Every command has the contract's timeout, process-group kill and bounded capture; path
//! resolution and file operations ([`hostexec_api::HostFs`]) never spawn a process. One
//! `NsEnter` is cheap to share (`Clone`, `Send + Sync`) and is meant to live as long as the
//! program.
//!
//! ## Why
//!
//! Go's `k8s.io/utils/nsenter` spawns util-linux `nsenter` for every command and `nsenter` +
//! `realpath` for every path resolution, enters only the mount namespace, has no timeouts, and
//! assumes systemd works when its binary exists. Here the kernel does the work in-process, and
//! the namespaces are joined once.
//!
//! [`NsEnter`] reaches a [`Target`] (the host behind a `/rootfs` bind mount, or any process)
//! through one of two [`Launcher`]s:
//!
//! - [`Launcher::HostThread`] (the default): a dedicated OS thread calls `unshare(CLONE_FS)`
//!   and then `setns` for each namespace, once; so does each of the spawner threads that
//!   commands are spawned from (`hostexec-supervise`), so each child is born in the target's
//!   namespaces by `posix_spawn`, whose cost does not grow with the caller's memory (a
//!   fork-based spawn with 1 GiB resident took ~42 ms per `/bin/true` here; posix_spawn
//!   ~1 ms). Descriptors this process holds without `FD_CLOEXEC` are closed in the child by
//!   the spawn's file actions, without leaving that path. A spawn stuck on a hung mount (the
//!   program or working directory there) is given up on at the call's deadline and never
//!   delays another command.
//! - [`Launcher::NsenterBinary`]: Go's route, `nsenter --mount=<ns file> -- <host path> args…`,
//!   for processes that may not call `setns` (and for joining a time namespace, which a
//!   multithreaded process cannot: `setns` gives EUSERS). It refuses a command with a
//!   [`controlling_tty`](hostexec_api::HostCommand::controlling_tty)
//!   ([`CommandError::InvalidInput`]): `nsenter`
//!   would lead the session and fork the command into it.
//!
//! The measured costs of both, against Go's route in the same run, are in the repository's
//! `docs/BENCHMARKS.md` (`cargo xtask bench`).
//!
//! ## Kernel facts this rests on (setns(2), unshare(2); checked on Linux 6.18)
//!
//! - `setns(CLONE_NEWNS)` is EINVAL for a thread sharing its `fs_struct`, i.e. every thread
//!   of a tokio program, unless it first calls `unshare(CLONE_FS)`; then only that thread
//!   moves and its root and working directory become the namespace's root (`mntns_install`
//!   in the kernel's `fs/namespace.c` refuses when `fs->users != 1`).
//! - The same thread can join uts, ipc, net, pid and cgroup namespaces; a child it spawns is in
//!   all of them (for pid: the children are, the thread itself is not).
//! - `pidfd_open` + `setns(pidfd, …)` (Linux ≥ 5.8) joins a process's namespaces and cannot be
//!   fooled by PID reuse. nix 0.32 lacks pidfd_open and statx; this crate uses rustix's safe
//!   wrappers for pidfd and setns, and nix for `unshare(CLONE_FS)` (rustix deprecates its safe
//!   `unshare`) and signals.
//!
//! Namespaces are joined in util-linux nsenter's order ([`Namespace::JOIN_ORDER`]: cgroup, ipc,
//! uts, net, pid, mount, time), every handle opened `O_CLOEXEC` before the first `setns`
//! (as runc does). Path resolution and file operations never spawn a process: they run
//! [`hostexec_rootfs::RootFs`] (the one resolution algorithm, shared with `hostexec-fake`) on
//! a descriptor of the host's `/` opened by the host thread, or of [`Target::local_root`] for
//! the nsenter-binary launcher.
//!
//! ## The host-view worker pool
//!
//! A `stat`, or a `resolve` with [`Resolve::MustExist`], that the kernel answers from its
//! lookup caches on a local file system runs on the caller's thread (no file system is asked;
//! see docs/ARCHITECTURE.md, "Which calls hop to the pool"). The other async file calls run
//! on this crate's own pool of worker threads: a file system call
//! may block (on a hung NFS mount, say) and must neither stall a runtime worker nor outlive the
//! call's deadline. The pool is kept apart from tokio's blocking pool for isolation: a hung
//! mount ties up at most its own 32 threads, never the application's blocking pool, and a busy
//! application pool does not delay host calls. The hop costs a few microseconds, about what
//! `spawn_blocking` costs; [`NsEnter::root_fs`] gives the blocking [`RootFs`] for callers that
//! manage threads themselves.
//!
//! ## Hung mounts
//!
//! Every file call ([`PathResolver`], [`HostFs`]) has a deadline ([`DEFAULT_FS_TIMEOUT`], or
//! [`NsEnterBuilder::fs_timeout`], or per call [`NsEnter::with_fs_timeout`]): callers need
//! not wrap them in timeouts of their own. A call that overran it fails with
//! [`PathError::TimedOut`]; the mount it was stuck in is then marked unresponsive
//! ([`NsEnter::unresponsive_mounts`]) and later calls that would enter it fail at once with
//! [`PathError::Unresponsive`], until a background probe sees the mount answer again. Threads
//! left in the kernel by such calls do not count against the pool's capacity
//! ([`NsEnter::fs_pool_stats`]): calls on healthy mounts never wait behind a hung one.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use hostexec_api::{
    path::check_host_path, CommandError, Executor, FileStat, HostCommand, HostFs, MountRequest,
    MountRoute, NativeMount, NativeMountError, Output, PathError, PathResolver, Resolve,
    SecretBytes, UnmountRequest, HOST_BIN_DIRS,
};
use hostexec_rootfs::RootFs;
use hostexec_supervise::{Engine, EngineConfig, Launch as Start, RunError as EngineError};
use rustix::fs::{Mode, OFlags};

mod alive;
mod error;
mod fs_pool;
mod fstypes;
mod host_thread;
mod native_mount;
mod one_mount;
mod pieces;
mod target;
mod watch;

pub use error::NsEnterError;
pub use fs_pool::FsPoolStats;
pub use hostexec_supervise::Containment;
pub use target::{Namespace, Target, UnknownNamespace};

use fs_pool::{FsPool, RunError};
use host_thread::{Answer, Handles, HostThread, ProcessRoot};
use target::Source;
use watch::MountWatch;

/// The deadline of a file call ([`PathResolver`] and [`HostFs`] methods) unless the
/// [`NsEnterBuilder::fs_timeout`] or [`NsEnter::with_fs_timeout`] says otherwise. A call on a
/// healthy mount takes microseconds; one that has not returned after this long is in a file
/// system that does not answer (see [`NsEnter::unresponsive_mounts`]).
pub const DEFAULT_FS_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a native unmount keeps trying while the kernel answers `EBUSY` (see
/// `unmount_native` in [`NsEnter`]'s [`NativeMount`]): long enough for a child that any thread
/// of this process is starting to exec even on a loaded node, short enough that a mount that
/// is really in use is reported soon.
pub const BUSY_RETRY: Duration = Duration::from_millis(500);

/// How commands reach the target's namespaces.
///
/// `#[non_exhaustive]`: more launchers may come; match with a wildcard arm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Launcher {
    /// Spawned from a dedicated thread that joined the namespaces once (no process per join).
    #[default]
    HostThread,
    /// Spawned through util-linux `nsenter --mount=… -- program args…`, as Go does.
    NsenterBinary,
}

/// Builds an [`NsEnter`] with a chosen [`Launcher`].
#[derive(Clone, Debug)]
pub struct NsEnterBuilder {
    target: Target,
    launcher: Launcher,
    nsenter_binary: Option<PathBuf>,
    new_mount_api: bool,
    statmount: bool,
    fs_timeout: Duration,
    containment: Option<Containment>,
}

impl NsEnterBuilder {
    /// The deadline of each file call (default [`DEFAULT_FS_TIMEOUT`]); see
    /// [`NsEnter::with_fs_timeout`].
    pub fn fs_timeout(mut self, limit: Duration) -> Self {
        self.fs_timeout = limit;
        self
    }

    /// The launcher (default [`Launcher::HostThread`]).
    pub fn launcher(mut self, launcher: Launcher) -> Self {
        self.launcher = launcher;
        self
    }

    /// The util-linux `nsenter` binary for [`Launcher::NsenterBinary`], as this process sees
    /// it (default: `nsenter` found in this process's `PATH`, as Go's os/exec does).
    pub fn nsenter_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.nsenter_binary = Some(path.into());
        self
    }

    /// How the processes of a command are found and killed on a timeout or a drop (default:
    /// [`Containment::detect`], at the first command: a cgroup2 group per command where this
    /// process's cgroup2 group is writable, else the `/proc` walk under a child subreaper). For
    /// [`Containment::Cgroup`], the directory is in this process's view.
    pub fn containment(mut self, c: Containment) -> Self {
        self.containment = Some(c);
        self
    }

    /// Whether native mounts may use the new mount API (`fsopen`, `open_tree`, `move_mount`,
    /// `mount_setattr`; default `true`). With `false` they take the `mount(2)` route, as on a
    /// kernel without the new API or under a seccomp profile that denies it (tests of that
    /// fallback use this switch).
    pub fn new_mount_api(mut self, enabled: bool) -> Self {
        self.new_mount_api = enabled;
        self
    }

    /// Whether the calls answered on the caller's thread may learn a mount's type with
    /// `statmount(2)` by its unique ID (default `true`; used where the kernel has it, Linux
    /// 6.8+). With `false` they read the type from the target's mount table, polled for
    /// changes on every call, as on a kernel without `statmount` or where seccomp refuses it
    /// (tests of that fallback use this switch). See docs/ARCHITECTURE.md, "Which calls hop
    /// to the pool".
    pub fn statmount(mut self, enabled: bool) -> Self {
        self.statmount = enabled;
        self
    }

    /// Opens the target's namespaces and root and, for [`Launcher::HostThread`], starts the
    /// host thread and joins them. Fails with an error naming the namespace and the OS error.
    pub fn build(self) -> Result<NsEnter, NsEnterError> {
        let target = self.target;
        let pidfd = match target.source {
            Source::Pid(pid) => Some(open_pidfd(pid)?),
            Source::HostRoot => None,
        };
        // Left open, the containment is detected at the first command: a handle that runs
        // none (a mount table listing, a path resolution) never probes the cgroup tree.
        let mut config = EngineConfig::new("hostexec-spawn");
        if let Some(c) = self.containment {
            config = config.containment(c);
        }
        if target.get_namespaces().contains(&Namespace::Mount) {
            config = config.mount_ns(target.ns_file(Namespace::Mount));
        }
        let mut proc_fds = None;
        let (launch, root) = match self.launcher {
            Launcher::HostThread => {
                if target.get_namespaces().contains(&Namespace::Time) {
                    return Err(NsEnterError::Unsupported {
                        ns: Namespace::Time,
                        reason: "a multithreaded process cannot join a time namespace (setns \
                                 gives EUSERS); use Launcher::NsenterBinary"
                            .into(),
                    });
                }
                let mut handles = Handles::default();
                let mut by_pidfd = Vec::new();
                for &ns in target.get_namespaces() {
                    match (&pidfd, target.explicit_ns_path(ns)) {
                        (Some(_), None) => by_pidfd.push(ns),
                        _ => handles.files.push((ns, open_ns_file(&target, ns)?)),
                    }
                }
                if let Some(fd) = &pidfd {
                    if !by_pidfd.is_empty() {
                        let dup = fd.try_clone().map_err(|source| NsEnterError::OpenProcess {
                            pid: target.get_pid().unwrap_or_default(),
                            source,
                        })?;
                        handles.pidfd = Some((dup, by_pidfd));
                    }
                }
                let joins_mount = target.get_namespaces().contains(&Namespace::Mount);
                // Opened in this process's view before any join: the native mounts reach
                // their descriptors through it (see `native_mount`).
                if joins_mount {
                    proc_fds = Some(Arc::new(native_mount::open_proc_fds().map_err(|e| {
                        NsEnterError::OpenRoot {
                            path: "/proc/self/fd".into(),
                            source: e,
                        }
                    })?));
                }
                // A process's root is entered after the joins; a failure to open it is
                // reported after them too, since a join refused for want of privileges
                // (EPERM from setns) says more than the EACCES of /proc/PID/root.
                let mut root_error = None;
                if let (Some(fd), Some(pid)) = (&pidfd, target.get_pid()) {
                    match open_process_root(pid, fd) {
                        Ok(r) => handles.root = Some(r),
                        Err(e) => root_error = Some(e),
                    }
                }
                // Each spawner thread joins the namespaces (and enters the root) as the host
                // thread does.
                let spawner_handles =
                    handles
                        .try_clone()
                        .map_err(|source| NsEnterError::OpenProcess {
                            pid: target.get_pid().unwrap_or_default(),
                            source,
                        })?;
                config = config.init(Arc::new(move || {
                    host_thread::join(&spawner_handles).map_err(std::io::Error::other)
                }));
                let open_root = joins_mount || target.get_pid().is_some();
                let (thread, root_fd) = HostThread::start(handles, open_root)?;
                if let Some(e) = root_error {
                    return Err(e);
                }
                let root = match root_fd {
                    Some(fd) => RootFs::from_fd(fd),
                    None => open_local_root(&target)?,
                };
                (Launch::HostThread(thread), root)
            }
            Launcher::NsenterBinary => {
                // Open each namespace file once now, so that a wrong target fails here with
                // a clear error rather than as an nsenter exit status later.
                for &ns in target.get_namespaces() {
                    drop(open_ns_file(&target, ns)?);
                }
                // For a process, its root as nsenter's --root will enter it.
                let root = match (&pidfd, target.get_pid()) {
                    (Some(fd), Some(pid)) => RootFs::from_fd(open_process_root(pid, fd)?.root),
                    _ => open_local_root(&target)?,
                };
                (
                    Launch::Binary {
                        nsenter: self.nsenter_binary,
                        found: OnceLock::new(),
                    },
                    root,
                )
            }
        };
        let probe_root = root
            .try_clone_unguarded()
            .map_err(|e| NsEnterError::OpenRoot {
                path: target.local_root().to_path_buf(),
                source: e,
            })?;
        let watch = Arc::new(MountWatch::new(probe_root, target.mountinfo_path()));
        let root = root.with_guard(Arc::clone(&watch) as Arc<dyn hostexec_rootfs::MountGuard>);
        // The target's mount namespace, where statmount(2) looks for the root's mounts (the
        // map checks that it holds the root's own mount before it uses it).
        let mnt_ns = open_ns_file(&target, Namespace::Mount).ok();
        let fstypes = fstypes::FsTypes::open(
            root.as_fd(),
            mnt_ns.as_ref().map(|fd| fd.as_fd()),
            &target.mountinfo_path(),
            if self.statmount {
                fstypes::Lookup::Statmount
            } else {
                fstypes::Lookup::Table
            },
        );
        drop(mnt_ns);
        let weak = Arc::downgrade(&watch);
        let fs = FsPool::new(Box::new(move |mnt_id, about| {
            if let Some(w) = weak.upgrade() {
                w.overran(mnt_id, about);
            }
        }));
        Ok(NsEnter {
            fs_timeout: self.fs_timeout,
            inner: Arc::new(Inner {
                target,
                alive: pidfd.map(alive::Liveness::new),
                launch,
                root: Arc::new(root),
                engine: Engine::new(config),
                watch,
                fstypes: Arc::new(fstypes),
                fs,
                bin_cache: Mutex::new(HashMap::new()),
                systemd: tokio::sync::OnceCell::new(),
                proc_fds,
                new_mount_api: self.new_mount_api,
            }),
        })
    }
}

fn open_pidfd(pid: u32) -> Result<OwnedFd, NsEnterError> {
    let err = |source: std::io::Error| NsEnterError::OpenProcess { pid, source };
    let raw = i32::try_from(pid).map_err(|_| err(std::io::Error::from_raw_os_error(3)))?;
    let p = rustix::process::Pid::from_raw(raw)
        .ok_or_else(|| err(std::io::Error::from_raw_os_error(3)))?;
    // pidfds are always close-on-exec.
    rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).map_err(|e| err(e.into()))
}

/// `/proc/PID/root` and `/proc/PID/cwd` as `O_PATH` directory descriptors. They are opened
/// through the PID, then the pidfd is asked: a process still alive after the opens held the
/// PID while they were made, so they are its own, never a reused PID's.
fn open_process_root(pid: u32, pidfd: &OwnedFd) -> Result<ProcessRoot, NsEnterError> {
    let open = |what: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/{what}"));
        rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| NsEnterError::EnterRoot {
            pid,
            path,
            source: e.into(),
        })
    };
    let root = open("root")?;
    let cwd = open("cwd")?;
    if alive::pidfd_readable(pidfd) {
        return Err(NsEnterError::TargetGone {
            pid,
            source: std::io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error()),
        });
    }
    Ok(ProcessRoot { pid, root, cwd })
}

fn open_ns_file(target: &Target, ns: Namespace) -> Result<OwnedFd, NsEnterError> {
    let path = target.ns_file(ns);
    rustix::fs::open(&path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
        NsEnterError::OpenNamespace {
            ns,
            path,
            source: e.into(),
        }
    })
}

fn open_local_root(target: &Target) -> Result<RootFs, NsEnterError> {
    RootFs::open(target.local_root()).map_err(|e| NsEnterError::OpenRoot {
        path: target.local_root().to_path_buf(),
        source: e,
    })
}

enum Launch {
    HostThread(HostThread),
    Binary {
        nsenter: Option<PathBuf>,
        found: OnceLock<PathBuf>,
    },
}

struct Inner {
    target: Target,
    /// For [`Target::pid`]: the process, to tell before each call whether it still exists.
    alive: Option<alive::Liveness>,
    launch: Launch,
    root: Arc<RootFs>,
    /// Spawns and supervises commands (spawner threads in the target's namespaces for the
    /// host-thread launcher, in this process's for the nsenter binary).
    engine: Engine,
    /// The mounts that stopped answering (the guard of `root`'s walks).
    watch: Arc<MountWatch>,
    /// Which mounts answer from memory (for calls on the caller's thread).
    fstypes: Arc<fstypes::FsTypes>,
    /// Runs the blocking file operations of the async API (see [`fs_pool`]).
    fs: FsPool,
    bin_cache: Mutex<HashMap<OsString, PathBuf>>,
    systemd: tokio::sync::OnceCell<bool>,
    /// This process's `/proc/PID/fd`, for native mounts (host thread joined to the mount
    /// namespace only).
    proc_fds: Option<Arc<OwnedFd>>,
    new_mount_api: bool,
}

/// Runs commands, resolves paths and does file operations on a [`Target`] host.
///
/// Cheap to clone (an `Arc` inside); the host thread ends when the last clone is dropped.
/// Its methods need a tokio runtime with I/O and time enabled.
#[derive(Clone)]
pub struct NsEnter {
    inner: Arc<Inner>,
    fs_timeout: Duration,
}

impl fmt::Debug for NsEnter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NsEnter")
            .field("target", &self.inner.target)
            .field("launcher", &self.launcher())
            .field("fs_timeout", &self.fs_timeout)
            .finish_non_exhaustive()
    }
}

impl NsEnter {
    /// An `NsEnter` with the [`Launcher::HostThread`] launcher.
    pub fn new(target: Target) -> Result<NsEnter, NsEnterError> {
        Self::builder(target).build()
    }

    /// A builder, to choose the launcher.
    pub fn builder(target: Target) -> NsEnterBuilder {
        NsEnterBuilder {
            target,
            launcher: Launcher::default(),
            nsenter_binary: None,
            new_mount_api: true,
            statmount: true,
            fs_timeout: DEFAULT_FS_TIMEOUT,
            containment: None,
        }
    }

    /// The same host (a clone: same host thread, pool and marks) whose file calls have the
    /// deadline `limit`: the per-call deadline, e.g.
    /// `host.with_fs_timeout(Duration::from_secs(1)).stat(path, true)`.
    ///
    /// A file call that has not returned by its deadline fails with
    /// [`PathError::TimedOut`]; the mount it was stuck in is then marked unresponsive (see
    /// [`unresponsive_mounts`](Self::unresponsive_mounts)) and later calls that would enter it
    /// fail at once with [`PathError::Unresponsive`] until it answers again. The worker thread
    /// left in the kernel does not count against the pool's capacity, so calls on healthy
    /// mounts never wait behind it.
    pub fn with_fs_timeout(&self, limit: Duration) -> NsEnter {
        NsEnter {
            inner: Arc::clone(&self.inner),
            fs_timeout: limit,
        }
    }

    /// The deadline of this handle's file calls.
    pub fn fs_timeout(&self) -> Duration {
        self.fs_timeout
    }

    /// The mount points (host paths) of the mounts marked unresponsive now: a file call
    /// overran its deadline there and the mount has not answered since. Calls into them fail
    /// at once with [`PathError::Unresponsive`]; a background probe clears the mark when the
    /// mount answers (also with an error, such as `ENOTCONN` from an aborted FUSE connection).
    pub fn unresponsive_mounts(&self) -> Vec<PathBuf> {
        self.inner.watch.marked()
    }

    /// The file call pool's threads now: how many, and how many are stuck in calls that
    /// overran their deadline.
    pub fn fs_pool_stats(&self) -> FsPoolStats {
        self.inner.fs.counts()
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.inner.target
    }

    /// The launcher in use.
    pub fn launcher(&self) -> Launcher {
        match self.inner.launch {
            Launch::HostThread(_) => Launcher::HostThread,
            Launch::Binary { .. } => Launcher::NsenterBinary,
        }
    }

    /// The host's root directory, for file operations beyond [`HostFs`] (blocking calls).
    pub fn root_fs(&self) -> &Arc<RootFs> {
        &self.inner.root
    }

    /// Runs `f` on the host thread, i.e. in the target's namespaces (for `mount(2)`,
    /// `umount2(2)` and other calls that act on the calling thread's mount namespace).
    ///
    /// `f` must be short (it delays every other request to the host thread) and must not
    /// change the thread's namespaces, root or working directory. The calling thread looks for
    /// the answer for up to 50 µs before it awaits it (a wake-up costs more than a short job;
    /// see the host thread in docs/ARCHITECTURE.md): an executor thread is held that long at
    /// most, and not at all behind another caller's job.
    /// [`NsEnterError::NeedsHostThread`] with [`Launcher::NsenterBinary`].
    pub async fn on_host_thread<R, F>(&self, f: F) -> Result<R, NsEnterError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.check_alive()?;
        match &self.inner.launch {
            Launch::HostThread(t) => t.call(f).await,
            Launch::Binary { .. } => Err(NsEnterError::NeedsHostThread {
                what: "on_host_thread",
            }),
        }
    }

    /// For a [`Target::pid`] target: fails if the process has exited (its pidfd is readable),
    /// so that a reused PID is never taken for the target.
    fn check_alive(&self) -> Result<(), NsEnterError> {
        match &self.inner.alive {
            Some(a) if a.exited() => Err(self.target_gone()),
            _ => Ok(()),
        }
    }

    /// [`check_alive`](Self::check_alive) without a system call, for the calls answered on
    /// the caller's thread through the held root descriptor alone (never a `/proc/PID` path):
    /// the watcher's flag (see the `alive` module for why the moment between the exit and
    /// the flag is harmless there).
    fn check_alive_inline(&self) -> Result<(), NsEnterError> {
        match &self.inner.alive {
            Some(a) if a.exited_fast() => Err(self.target_gone()),
            _ => Ok(()),
        }
    }

    fn target_gone(&self) -> NsEnterError {
        NsEnterError::TargetGone {
            pid: self.inner.target.get_pid().unwrap_or_default(),
            source: std::io::Error::from_raw_os_error(rustix::io::Errno::SRCH.raw_os_error()),
        }
    }

    /// Runs a blocking operation on the host root on the host-view worker pool, under the
    /// file-call deadline: `path` must be a host path and a [`Target::pid`] target alive;
    /// an operation that overruns is [`PathError::TimedOut`] on `path`, one that never
    /// completes [`PathError::HostUnavailable`]. `E` is the caller's error: a [`PathError`],
    /// or a [`NativeMountError`] for the walk of a native mount.
    async fn fs_op<T, E, F>(&self, path: &Path, f: F) -> Result<T, E>
    where
        F: FnOnce(&RootFs) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<PathError> + Send + 'static,
    {
        check_host_path(path)?;
        self.check_alive().map_err(PathError::from)?;
        let root = Arc::clone(&self.inner.root);
        match self
            .inner
            .fs
            .run(Some(self.fs_timeout), Some(path), move || f(&root))
            .await
        {
            Ok(r) => r,
            Err(RunError::Overran) => Err(PathError::TimedOut {
                path: path.to_path_buf(),
                timeout: self.fs_timeout,
            }
            .into()),
            Err(RunError::Lost) => Err(PathError::host_unavailable(
                "a file operation did not complete (it panicked, or no worker thread could be \
                 started)",
            )
            .into()),
        }
    }

    /// The host path of a bare program name, cached.
    async fn host_binary(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        if let Some(p) = self.cached(name) {
            return Ok(p);
        }
        let root = Arc::clone(&self.inner.root);
        let owned = name.to_os_string();
        let found = match self
            .inner
            .fs
            .run(Some(self.fs_timeout), None, move || {
                root.look_path(&owned, HOST_BIN_DIRS)
            })
            .await
        {
            Ok(r) => r?,
            Err(RunError::Overran) => {
                return Err(CommandError::TimedOut {
                    program: name.to_os_string(),
                    timeout: self.fs_timeout,
                    lingering: None,
                })
            }
            Err(RunError::Lost) => {
                return Err(CommandError::host_unavailable(
                    "a host binary lookup did not complete",
                ))
            }
        };
        if let Ok(mut c) = self.inner.bin_cache.lock() {
            c.insert(name.to_os_string(), found.clone());
        }
        Ok(found)
    }

    fn cached(&self, name: &OsStr) -> Option<PathBuf> {
        self.inner.bin_cache.lock().ok()?.get(name).cloned()
    }

    fn forget(&self, name: &OsStr) {
        if let Ok(mut c) = self.inner.bin_cache.lock() {
            c.remove(name);
        }
    }

    /// Whether `path` exists in the host's view (following symlinks).
    async fn host_exists(&self, path: &Path) -> bool {
        matches!(self.host_lookup(path).await, Ok(true))
    }

    /// Whether `path` exists in the host's view (following symlinks); an error when this
    /// could not be told (EMFILE, EIO, the host gone), rather than "missing".
    async fn host_lookup(&self, path: &Path) -> Result<bool, PathError> {
        let p = path.to_path_buf();
        match self.fs_op(path, move |r| r.stat(&p, true)).await {
            Ok(_) => Ok(true),
            Err(e @ (PathError::Io { .. } | PathError::HostUnavailable { .. })) => Err(e),
            Err(_) => Ok(false),
        }
    }

    /// One attempt at running `cmd` as `program` (an absolute host path), within `deadline`
    /// (the whole call's: lookups, spawn, run, kill and reap).
    async fn run_at(
        &self,
        program: &Path,
        cmd: &HostCommand,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<Output, CommandError> {
        let name = cmd.get_program().to_os_string();
        let spawn_err = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CommandError::NotFound {
                    program: name.clone(),
                    searched: vec![program.to_path_buf()],
                }
            } else {
                CommandError::Spawn {
                    program: name.clone(),
                    source,
                }
            }
        };
        let start = match &self.inner.launch {
            Launch::HostThread(_) => {
                let mut argv: Vec<OsString> = vec![program.as_os_str().to_os_string()];
                argv.extend(cmd.get_args().map(OsStr::to_os_string));
                // A host path: the child does the chdir, in the host's mount namespace.
                Start::new(
                    name.clone(),
                    program,
                    argv,
                    cmd.get_current_dir().map(Path::to_path_buf),
                )
            }
            Launch::Binary { .. } if cmd.get_controlling_tty().is_some() => {
                // nsenter(1) would lead the session and fork the command into it (for a pid
                // namespace), so the command would be neither its leader nor alone in it.
                return Err(CommandError::InvalidInput {
                    program: name,
                    reason: "a controlling terminal needs the host-thread launcher \
                             (the nsenter binary cannot make the command a session leader)"
                        .into(),
                });
            }
            Launch::Binary { nsenter, found } => {
                // nsenter would only report a missing program as exit status 127: look first.
                match bounded(deadline, cmd, async { Ok(self.host_lookup(program).await) }).await? {
                    Ok(true) => {}
                    Ok(false) => return Err(spawn_err(std::io::ErrorKind::NotFound.into())),
                    Err(PathError::HostUnavailable { source }) => {
                        return Err(CommandError::HostUnavailable { source })
                    }
                    Err(e) => {
                        return Err(CommandError::Io {
                            program: name,
                            source: std::io::Error::new(
                                e.raw_os_error().map_or(std::io::ErrorKind::Other, |n| {
                                    std::io::Error::from_raw_os_error(n).kind()
                                }),
                                format!("could not look for it: {e}"),
                            ),
                        })
                    }
                }
                let bin = match nsenter {
                    Some(b) => b.clone(),
                    None => found.get_or_init(find_nsenter).clone(),
                };
                let mut argv: Vec<OsString> = vec![bin.as_os_str().to_os_string()];
                for &ns in self.inner.target.get_namespaces() {
                    let mut opt = OsString::from(ns.nsenter_option());
                    opt.push("=");
                    opt.push(self.inner.target.ns_file(ns));
                    argv.push(opt);
                }
                if let Some(pid) = self.inner.target.get_pid() {
                    // nsenter -r -w: the process's root and working directory, opened by
                    // nsenter before it joins (in this process's view, where these name them).
                    argv.push(format!("--root=/proc/{pid}/root").into());
                    argv.push(format!("--wd=/proc/{pid}/cwd").into());
                }
                argv.push("--".into());
                if let Some(dir) = cmd.get_current_dir() {
                    // nsenter opens its --wd directory *before* joining (in this process's
                    // view), so a host path would miss: the host's `env --chdir` does the
                    // chdir after the join, without a shell.
                    let env = bounded(deadline, cmd, self.host_binary(OsStr::new("env"))).await?;
                    let mut chdir = OsString::from("--chdir=");
                    chdir.push(dir);
                    argv.extend([env.into_os_string(), chdir, "--".into()]);
                }
                argv.push(program.into());
                argv.extend(cmd.get_args().map(OsStr::to_os_string));
                Start::new(name.clone(), bin, argv, None)
            }
        };
        let nsenter_bin = match &self.inner.launch {
            Launch::Binary { .. } => Some(start.program.clone()),
            Launch::HostThread(_) => None,
        };
        match self.inner.engine.run(start, cmd, deadline).await {
            Ok(out) => Ok(out),
            Err(EngineError::Command(e)) => Err(e),
            Err(EngineError::Spawn(e)) => match (nsenter_bin, cmd.get_current_dir()) {
                (Some(bin), _) => Err(CommandError::Spawn {
                    program: bin.into_os_string(),
                    source: e,
                }),
                // posix_spawn reports a failed chdir like a missing program: tell them apart.
                (None, Some(dir))
                    if e.kind() == std::io::ErrorKind::NotFound
                        && bounded(deadline, cmd, async {
                            Ok(self.host_exists(program).await)
                        })
                        .await? =>
                {
                    Err(CommandError::Spawn {
                        program: name,
                        source: std::io::Error::new(
                            e.kind(),
                            format!("working directory {}: {e}", dir.display()),
                        ),
                    })
                }
                (None, _) => Err(spawn_err(e)),
            },
            Err(e) => Err(CommandError::Io {
                program: name,
                source: std::io::Error::other(format!("{e:?}")),
            }),
        }
    }
}

/// `fut`, unless `deadline` passes first: then `cmd`'s [`CommandError::TimedOut`] (the
/// blocked lookup is left to finish on its worker).
async fn bounded<T>(
    deadline: Option<tokio::time::Instant>,
    cmd: &HostCommand,
    fut: impl std::future::Future<Output = Result<T, CommandError>>,
) -> Result<T, CommandError> {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, fut)
            .await
            .unwrap_or_else(|_| Err(hostexec_supervise::timed_out(cmd))),
        None => fut.await,
    }
}

/// `nsenter` in this process's `PATH` (os/exec's LookPath), else `/usr/bin/nsenter`.
fn find_nsenter() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join("nsenter"))
        .find(|p| {
            p.is_absolute()
                && std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from("/usr/bin/nsenter"))
}

#[async_trait]
impl Executor for NsEnter {
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
        cmd.validate()?;
        self.check_alive()?;
        // One deadline for the whole call: lookup, spawn, run, kill and reap.
        let deadline = hostexec_supervise::deadline(&cmd);
        if !cmd.program_is_bare_name() {
            let p = PathBuf::from(cmd.get_program());
            return self.run_at(&p, &cmd, deadline).await;
        }
        let was_cached = self.cached(cmd.get_program()).is_some();
        let program = bounded(deadline, &cmd, self.host_binary(cmd.get_program())).await?;
        match self.run_at(&program, &cmd, deadline).await {
            // The cached binary went away (a package upgrade): look again, once.
            Err(CommandError::NotFound { .. }) if was_cached => {
                self.forget(cmd.get_program());
                let program = bounded(deadline, &cmd, self.host_binary(cmd.get_program())).await?;
                self.run_at(&program, &cmd, deadline).await
            }
            r => r,
        }
    }

    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        self.check_alive()?;
        if name.as_encoded_bytes().contains(&b'/') {
            let p = PathBuf::from(name);
            check_host_path(&p).map_err(|e| CommandError::InvalidInput {
                program: name.to_os_string(),
                reason: e.to_string(),
            })?;
            return match self
                .fs_op(&p, {
                    let p = p.clone();
                    move |r| r.stat(&p, true)
                })
                .await
            {
                Ok(_) => Ok(p),
                Err(_) => Err(CommandError::NotFound {
                    program: name.to_os_string(),
                    searched: vec![p],
                }),
            };
        }
        self.host_binary(name).await
    }

    async fn supports_systemd(&self) -> bool {
        *self
            .inner
            .systemd
            .get_or_init(|| hostexec_api::probe_systemd(self))
            .await
    }
}

#[async_trait]
impl PathResolver for NsEnter {
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        // MustExist on the caller's thread when the kernel answers from its lookup caches and
        // the object is on a local file system (see the `fstypes` rule); anything else hops.
        if mode == Resolve::MustExist {
            check_host_path(path)?;
            self.check_alive_inline()?;
            if let Some(p) = self.inner.root.resolve_cached(path, &*self.inner.fstypes)? {
                return Ok(p);
            }
        }
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.resolve(&p, mode)).await
    }

    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
        let local = hostexec_api::path::host_to_local(self.inner.target.local_root(), host_path)?;
        // For Target::pid the mapping goes through /proc/PID/root: once the target has exited,
        // that names whichever process gets the PID next.
        self.check_alive()?;
        Ok(local)
    }
}

#[async_trait]
impl HostFs for NsEnter {
    async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
        // On the caller's thread when the kernel answers from its caches on a local file
        // system (see the `fstypes` rule); anything else hops to the pool. `stat_cached`
        // checks the path.
        self.check_alive_inline()?;
        if let Some(st) = self
            .inner
            .root
            .stat_cached(path, follow, &*self.inner.fstypes)?
        {
            return Ok(st);
        }
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.stat(&p, follow)).await
    }

    async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.read_file(&p, limit)).await
    }

    async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.create_dir_all(&p)).await
    }

    async fn create_file(&self, path: &Path) -> Result<(), PathError> {
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.create_file(&p)).await
    }

    async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
        let p = path.to_path_buf();
        self.fs_op(path, move |r| r.remove_dir(&p)).await
    }

    async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
        self.on_mountinfo(|p| std::fs::read(p).map_err(|e| PathError::from_io(p, e)))
            .await
    }

    /// The table as [`read_mountinfo`](HostFs::read_mountinfo) reads it (the same checks,
    /// the same file, the same file-call deadline), in pieces of about 32 KiB of whole lines,
    /// each handed to `piece` as soon as it is read, on the file-pool thread that reads.
    /// `piece` is dropped when the read ends, or, if the read overruns the deadline, when
    /// the stuck read does.
    async fn read_mountinfo_pieces(
        &self,
        mut piece: Box<dyn FnMut(Vec<u8>) + Send>,
    ) -> Result<(), PathError> {
        self.on_mountinfo(move |p| {
            std::fs::File::open(p)
                .and_then(|mut f| pieces::read_pieces(&mut f, pieces::PIECE, &mut *piece))
                .map_err(|e| PathError::from_io(p, e))
        })
        .await
    }

    /// `statmount(2)` of the mount holding `path`: the walk opens `path` on the file pool
    /// (under the file-call deadline) and reads its unique mount ID (`statx`
    /// `STATX_MNT_ID_UNIQUE`, from the kernel's cached attributes: a hung mount is not
    /// asked); the host thread, in the target's mount namespace and root, reads that one
    /// mount. `Unsupported` with the nsenter launcher (no host thread), before Linux 6.8
    /// (`ENOSYS`) and where seccomp refuses the call (`EPERM`).
    async fn read_mount_entry(&self, path: &Path) -> Result<Vec<u8>, PathError> {
        let unsupported = |why: &str| PathError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::Unsupported, why.to_string()),
        };
        let Launch::HostThread(thread) = &self.inner.launch else {
            return Err(unsupported("statmount needs the host thread"));
        };
        let p = path.to_path_buf();
        let id = self
            .fs_op(path, move |r| {
                let (_, fd) = r.open_resolved(&p, true)?;
                let st = rustix::fs::statx(
                    &fd,
                    "",
                    rustix::fs::AtFlags::EMPTY_PATH | rustix::fs::AtFlags::STATX_DONT_SYNC,
                    rustix::fs::StatxFlags::from_bits_retain(native_mount::STATX_MNT_ID_UNIQUE),
                )
                .map_err(|e| PathError::from_io(&p, e.into()))?;
                Ok::<_, PathError>(
                    (st.stx_mask & native_mount::STATX_MNT_ID_UNIQUE != 0).then_some(st.stx_mnt_id),
                )
            })
            .await?;
        let Some(id) = id else {
            return Err(unsupported("no unique mount ID from statx (Linux < 6.8)"));
        };
        let sm = thread
            .call(move || hostexec_sys::mount::statmount(id))
            .await
            .map_err(|e| PathError::HostUnavailable {
                source: Box::new(e),
            })?;
        match sm {
            Ok(sm) => Ok(one_mount::render(&sm)),
            Err(e) if matches!(e.raw_os_error(), Some(38) | Some(1)) => {
                Err(unsupported(&format!("statmount: {e}")))
            }
            Err(e) => Err(PathError::from_io(path, e)),
        }
    }
}

impl NsEnter {
    /// Runs `read` with the target's mountinfo path on the file pool, under the file-call
    /// deadline, once the target is known to be alive.
    async fn on_mountinfo<R: Send + 'static>(
        &self,
        read: impl FnOnce(&Path) -> Result<R, PathError> + Send + 'static,
    ) -> Result<R, PathError> {
        self.check_alive()?;
        let path = self.inner.target.mountinfo_path();
        let p = path.clone();
        match self
            .inner
            .fs
            .run(Some(self.fs_timeout), None, move || read(&p))
            .await
        {
            Ok(r) => r,
            Err(RunError::Overran) => Err(PathError::TimedOut {
                path,
                timeout: self.fs_timeout,
            }),
            Err(RunError::Lost) => Err(PathError::host_unavailable(
                "reading the mount table did not complete",
            )),
        }
    }

    /// The host thread and the descriptors native mounts need, or why there are none.
    fn native_parts(&self) -> Result<(&HostThread, Arc<OwnedFd>), NativeMountError> {
        let unsupported = |reason: &str| NativeMountError::Unsupported {
            route: MountRoute::NewApi,
            reason: reason.into(),
            source: None,
        };
        let Launch::HostThread(thread) = &self.inner.launch else {
            return Err(unsupported(
                "the nsenter-binary launcher has no thread in the host's mount namespace",
            ));
        };
        let Some(proc_fds) = &self.inner.proc_fds else {
            return Err(unsupported("the target's mount namespace is not joined"));
        };
        // The watcher's flag, not a `poll` of the pidfd: a native call reaches the target only
        // through descriptors this process holds (the host root, the walk's descriptors, this
        // process's own `/proc/PID/fd`) and the host thread, which stays in the target's mount
        // namespace; no `/proc/PID` path of the target is used, so a call in the moment
        // between the exit and the flag is ordered before the exit (see the `alive` module).
        self.check_alive_inline()
            .map_err(|e| NativeMountError::Unsupported {
                route: MountRoute::NewApi,
                reason: e.to_string(),
                source: None,
            })?;
        Ok((thread, Arc::clone(proc_fds)))
    }
}

impl NsEnter {
    /// A native mount or unmount whose paths the kernel's lookup caches did not answer for:
    /// `walk` opens `target` on the file pool (held by descriptor from then on, and giving
    /// the typed errors), then `act` mounts or unmounts through it on the host thread.
    async fn native_call<O, W, A>(
        &self,
        target: &Path,
        new_api: bool,
        answer: Answer,
        walk: W,
        act: A,
    ) -> Result<MountRoute, NativeMountError>
    where
        O: Send + 'static,
        W: FnOnce(&RootFs) -> Result<O, NativeMountError> + Send + 'static,
        A: FnOnce(&native_mount::HostSide<'_>, O) -> Result<MountRoute, NativeMountError>
            + Send
            + 'static,
    {
        let (thread, proc_fds) = self.native_parts()?;
        check_host_path(target)?;
        let opened = self.fs_op(target, walk).await?;
        self.native_on_host(thread, proc_fds, new_api, answer, move |host| {
            act(host, opened)
        })
        .await?
    }

    /// A native mount or unmount in one hop: on the host thread, `cached` opens the paths
    /// from the kernel's lookup caches and `act` mounts or unmounts through the descriptors.
    /// `Ok(None)`: the caches did not answer, nothing was changed (the caller then takes
    /// [`native_call`](Self::native_call)).
    ///
    /// Why on the host thread: a cached walk never waits for a file system, so the host
    /// thread may run it, and there it reads the mount structures and dentries the last
    /// mount or unmount changed on that CPU instead of fetching them from the caller's. On
    /// the benchmark VM, in its phases where the two vCPUs share no cache (a cache-line round
    /// trip of ~0.5 µs between them), that took 2 µs off a tmpfs unmount and 3 µs off a
    /// read-only bind mount.
    async fn cached_on_host<O, R>(
        &self,
        target: &Path,
        new_api: bool,
        answer: Answer,
        cached: impl FnOnce(&RootFs) -> Result<Option<O>, NativeMountError> + Send + 'static,
        act: impl FnOnce(&native_mount::HostSide<'_>, O) -> R + Send + 'static,
    ) -> Result<Option<R>, NativeMountError>
    where
        R: Send + 'static,
    {
        let (thread, proc_fds) = self.native_parts()?;
        check_host_path(target)?;
        let root = Arc::clone(&self.inner.root);
        self.native_on_host(thread, proc_fds, new_api, answer, move |host| {
            Ok(cached(&root)?.map(|o| act(host, o)))
        })
        .await?
    }

    /// One native unmount: one hop, in which the host thread opens the target's directory
    /// from the kernel's caches and unmounts, unless the caches do not answer or it finds no
    /// plain mount root at the name (`WalkFirst`, nothing changed); then the walk on the pool
    /// decides.
    async fn unmount_once(&self, request: &UnmountRequest) -> Result<MountRoute, NativeMountError> {
        let (act, walked, local) = (
            request.clone(),
            request.clone(),
            Arc::clone(&self.inner.fstypes),
        );
        let done = self
            .cached_on_host(
                request.target(),
                true,
                Answer::Sleep,
                move |root| native_mount::open_for_unmount_cached(root, &walked, &*local),
                move |host, t| native_mount::unmount(host, &act, &t),
            )
            .await?;
        if let Some(Ok(r)) = done {
            return r;
        }
        let (walk, act) = (request.clone(), request.clone());
        self.native_call(
            request.target(),
            true,
            Answer::Sleep,
            move |root| native_mount::open_for_unmount(root, &walk),
            move |host, target| {
                // The walk on the pool read the mount ID, so the host thread only compares.
                native_mount::unmount(host, &act, &target).unwrap_or_else(|_| {
                    Err(NativeMountError::NotMounted {
                        target: act.target().to_path_buf(),
                    })
                })
            },
        )
        .await
    }

    /// A new memory filesystem ([`native_mount::prepares_alone`]): sent to the host thread
    /// first, which makes it while this thread opens the target from the kernel's caches and
    /// hands it over ([`native_mount::mount_prepared`]), so the walk takes no time of its own.
    /// `None`: the caches did not answer, nothing was attached, and the walk goes to the pool.
    async fn mount_prepared(
        &self,
        request: &MountRequest,
    ) -> Result<Option<MountRoute>, NativeMountError> {
        let (thread, proc_fds) = self.native_parts()?;
        check_host_path(request.target())?;
        let (hand, take) = std::sync::mpsc::sync_channel(1);
        let act = request.clone();
        let sent = thread
            .send(self.host_job(proc_fds, true, move |host| {
                native_mount::mount_prepared(host, &act, &take)
            }))
            .map_err(host_thread_lost)?;
        // No await before the hand-over: the host thread waits for this thread only while
        // the cached walk runs, which never waits for a filesystem. Any way out of this
        // block drops `hand`, and the host thread then frees what it made.
        let walked = match native_mount::open_for_mount_cached(&self.inner.root, request) {
            Ok(Some(opened)) => hand
                .send(opened)
                .map(|()| true)
                .map_err(|_| host_thread_lost(NsEnterError::HostThread("has stopped".into()))),
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        };
        drop(hand);
        let done = thread
            .answer(sent, Answer::Look)
            .await
            .map_err(host_thread_lost)?;
        match (walked?, done) {
            (true, Ok(r)) => r.map(Some),
            (false, _) => Ok(None),
            (true, Err(native_mount::NoTarget)) => Err(host_thread_lost(NsEnterError::HostThread(
                "lost a handed-over target".into(),
            ))),
        }
    }

    /// The job that runs `f` on the host thread with the [`native_mount::HostSide`] it needs.
    fn host_job<R>(
        &self,
        proc_fds: Arc<OwnedFd>,
        new_api: bool,
        f: impl FnOnce(&native_mount::HostSide<'_>) -> R + Send + 'static,
    ) -> impl FnOnce() -> R + Send + 'static {
        let root = Arc::clone(&self.inner.root);
        move || {
            let host = native_mount::HostSide {
                proc_fds: proc_fds.as_fd(),
                root: root.as_fd(),
                new_api,
            };
            f(&host)
        }
    }

    /// Runs `f` on the host thread with the [`native_mount::HostSide`] it needs.
    async fn native_on_host<R: Send + 'static>(
        &self,
        thread: &HostThread,
        proc_fds: Arc<OwnedFd>,
        new_api: bool,
        answer: Answer,
        f: impl FnOnce(&native_mount::HostSide<'_>) -> R + Send + 'static,
    ) -> Result<R, NativeMountError> {
        thread
            .call_with(answer, self.host_job(proc_fds, new_api, f))
            .await
            .map_err(host_thread_lost)
    }
}

fn host_thread_lost(e: NsEnterError) -> NativeMountError {
    NativeMountError::from(PathError::HostUnavailable {
        source: Box::new(e),
    })
}

/// Native mounts on the host thread: see the `native_mount` module docs for the routes. A
/// target held by descriptor from the walk (from the kernel's caches, else on the file pool)
/// to the mount call (on the host thread).
#[async_trait]
impl NativeMount for NsEnter {
    async fn mount_native(&self, request: &MountRequest) -> Result<MountRoute, NativeMountError> {
        let new_api = self.inner.new_mount_api;
        // A new tmpfs or ramfs overlaps the walk with the mount; any other mount makes the
        // walk on the host thread, in the same hop.
        if native_mount::prepares_alone(request, new_api) {
            if let Some(route) = self.mount_prepared(request).await? {
                return Ok(route);
            }
        } else {
            let (walked, act) = (request.clone(), request.clone());
            let done = self
                .cached_on_host(
                    request.target(),
                    new_api,
                    Answer::Look,
                    move |root| native_mount::open_for_mount_cached(root, &walked),
                    move |host, opened| native_mount::mount(host, &act, &opened),
                )
                .await?;
            if let Some(r) = done {
                return r;
            }
        }
        // The caches did not answer: the walk on the pool.
        let (walk, act) = (request.clone(), request.clone());
        self.native_call(
            request.target(),
            new_api,
            Answer::Look,
            move |root| native_mount::open_for_mount(root, &walk),
            move |host, opened| native_mount::mount(host, &act, &opened),
        )
        .await
    }

    /// An `EBUSY` from `umount2` is tried again, the whole call (walk, check, unmount), for
    /// up to [`BUSY_RETRY`]: a child this process is starting (`posix_spawn`, `fork`) holds a
    /// copy of every descriptor the process had open at that moment until it execs (clone(2)
    /// without `CLONE_FILES` copies the descriptor table), so a descriptor of this mount that
    /// was already closed here — the walk's, or one a `stat` on another task just used — can
    /// still keep the mount busy for that short while. A mount that stays busy is `EBUSY`
    /// after the window.
    async fn unmount_native(
        &self,
        request: &UnmountRequest,
    ) -> Result<MountRoute, NativeMountError> {
        let give_up = std::time::Instant::now() + BUSY_RETRY;
        let mut pause = Duration::from_millis(1);
        loop {
            let r = self.unmount_once(request).await;
            match &r {
                Err(NativeMountError::Kernel {
                    call: "umount2",
                    source,
                    ..
                }) if source.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error())
                    && std::time::Instant::now() + pause < give_up =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                _ => return r,
            }
        }
    }

    /// On the file pool, under the file-call deadline, through the host root: the walk of
    /// `path`'s directories, then `openat(O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)`.
    async fn create_secret_file(
        &self,
        path: &Path,
        contents: &SecretBytes,
    ) -> Result<(), PathError> {
        let (p, c) = (path.to_path_buf(), contents.clone());
        self.fs_op(path, move |r| r.create_secret_file(&p, c.expose()))
            .await
    }

    /// On the calling thread (so it can run in `Drop`): the walk and `unlinkat` through the
    /// host root, a few system calls on the local staging tmpfs.
    fn remove_secret_file(&self, path: &Path) -> Result<(), PathError> {
        check_host_path(path)?;
        self.inner.root.remove_file(path)
    }
}
