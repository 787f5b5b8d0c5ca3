//! The host thread: one dedicated OS thread that joined the target's namespaces and runs jobs
//! sent to it over a channel.
//!
//! Why a thread of its own (setns(2)): `setns(CLONE_NEWNS)` is refused
//! (EINVAL) to a thread that shares its `fs_struct` with other threads, which every thread of a
//! tokio program does; after `unshare(CLONE_FS)` a thread may join, and only that thread moves.
//! A tokio worker or blocking-pool thread must never do this: the namespace would leak into
//! every task that later runs there (kata-containers/kata-containers#5728). This thread runs nothing but our jobs and
//! ends when the last sender is dropped.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread;

use rustix::fs::{Mode, OFlags};

use crate::{Namespace, NsEnterError};

type Job = Box<dyn FnOnce() + Send>;

/// The namespace handles, opened (`O_CLOEXEC`) by the caller before the first `setns`.
#[derive(Debug, Default)]
pub(crate) struct Handles {
    /// A pidfd and the namespaces to join through it, in join order.
    pub(crate) pidfd: Option<(OwnedFd, Vec<Namespace>)>,
    /// Namespace files, in join order.
    pub(crate) files: Vec<(Namespace, OwnedFd)>,
    /// For [`Target::pid`](crate::Target::pid): the process's root and working directory
    /// (`/proc/PID/root`, `/proc/PID/cwd`), entered after the joins as nsenter `-r -w` does.
    pub(crate) root: Option<ProcessRoot>,
}

/// A process's root and working directory, as `O_PATH` directory descriptors.
#[derive(Debug)]
pub(crate) struct ProcessRoot {
    /// The PID, for errors.
    pub(crate) pid: u32,
    /// `/proc/PID/root`.
    pub(crate) root: OwnedFd,
    /// `/proc/PID/cwd`.
    pub(crate) cwd: OwnedFd,
}

/// A handle on the host thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct HostThread {
    jobs: mpsc::Sender<Job>,
}

impl HostThread {
    /// Starts the thread, joins the namespaces (and enters the process's root, see
    /// [`Handles::root`]) and, when `open_root` is set, opens the thread's `/` (the
    /// namespace's root, or the process's) as an `O_PATH` directory descriptor.
    pub(crate) fn start(
        handles: Handles,
        open_root: bool,
    ) -> Result<(HostThread, Option<OwnedFd>), NsEnterError> {
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let (jobs, job_rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("hostexec-host".into())
            .spawn(move || {
                let joined = join(handles).and_then(|()| {
                    if !open_root {
                        return Ok(None);
                    }
                    rustix::fs::open(
                        "/",
                        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map(Some)
                    .map_err(|e| NsEnterError::OpenRoot {
                        path: "/".into(),
                        source: e.into(),
                    })
                });
                let ok = joined.is_ok();
                if ready_tx.send(joined).is_err() || !ok {
                    return;
                }
                while let Ok(job) = job_rx.recv() {
                    // A panicking job drops its reply channel (its caller sees an error); the
                    // thread keeps serving the others.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|e| NsEnterError::HostThread(format!("could not be started: {e}")))?;
        let root = ready_rx
            .recv()
            .map_err(|_| NsEnterError::HostThread("stopped while joining".into()))??;
        Ok((HostThread { jobs }, root))
    }

    /// Runs `f` on the host thread and returns its result.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, NsEnterError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        self.jobs
            .send(job)
            .map_err(|_| NsEnterError::HostThread("has stopped".into()))?;
        rx.await
            .map_err(|_| NsEnterError::HostThread("dropped a request (a job panicked)".into()))
    }
}

/// `unshare(CLONE_FS)`, then the pidfd joins, then the files, each in join order.
fn join(handles: Handles) -> Result<(), NsEnterError> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS)
        .map_err(|e| NsEnterError::Unshare { source: e.into() })?;
    if let Some((pidfd, namespaces)) = &handles.pidfd {
        // One namespace per call (still through the pidfd, so never a reused PID): the error
        // then names the namespace that refused, and the order stays the documented one.
        for ns in namespaces {
            rustix::thread::move_into_thread_name_spaces(pidfd.as_fd(), ns.thread_type()).map_err(
                |e| NsEnterError::Join {
                    ns: *ns,
                    source: e.into(),
                },
            )?;
        }
    }
    for (ns, fd) in &handles.files {
        rustix::thread::move_into_link_name_space(
            std::os::fd::AsFd::as_fd(fd),
            Some(ns.link_type()),
        )
        .map_err(|e| NsEnterError::Join {
            ns: *ns,
            source: e.into(),
        })?;
    }
    if let Some(p) = &handles.root {
        enter_root(p)?;
    }
    Ok(())
}

/// What util-linux nsenter does for `-r -w` after its joins: `fchdir` to the root descriptor,
/// `chroot(".")`, then `fchdir` to the working directory's. Only this thread moves (it has its
/// own `fs_struct` since `unshare(CLONE_FS)`); the commands it spawns start there, and `/`
/// opened afterwards is the process's root.
fn enter_root(p: &ProcessRoot) -> Result<(), NsEnterError> {
    let err = |what: &'static str| {
        move |source: rustix::io::Errno| NsEnterError::EnterRoot {
            pid: p.pid,
            path: format!("/proc/{}/{what}", p.pid).into(),
            source: source.into(),
        }
    };
    rustix::process::fchdir(&p.root).map_err(err("root"))?;
    rustix::process::chroot(".").map_err(err("root"))?;
    rustix::process::fchdir(&p.cwd).map_err(err("cwd"))
}
