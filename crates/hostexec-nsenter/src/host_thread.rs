//! The host thread: one dedicated OS thread that joined the target's namespaces and runs jobs
//! sent to it over a channel.
//!
//! Why a thread of its own (setns(2)): `setns(CLONE_NEWNS)` is refused
//! (EINVAL) to a thread that shares its `fs_struct` with other threads, which every thread of a
//! tokio program does; after `unshare(CLONE_FS)` a thread may join, and only that thread moves.
//! A tokio worker or blocking-pool thread must never do this: the namespace would leak into
//! every task that later runs there (kata-containers/kata-containers#5728). This thread runs nothing but our jobs and
//! ends when the last sender is dropped.
//!
//! Why both sides look briefly before they sleep (the hop's wake-up latency): a hop is a job
//! sent one way and an answer sent back. A side that sleeps in `futex(FUTEX_WAIT)` must be
//! woken by the other's `FUTEX_WAKE`: the scheduler picks a CPU for it, usually another one,
//! which must leave its idle state first (in a virtual machine the wake-up is an
//! inter-processor interrupt the hypervisor delivers, and an idle vCPU a halted thread of the
//! host). That costs microseconds per wake-up, measured at 5–10 µs on the benchmark VM, against
//! 15–25 µs for the system calls of a mount; a mount and its unmount are two hops, four
//! wake-ups. So, each bounded:
//! - the host thread, after a job, looks for the next one for [`HOST_SPIN`] before it sleeps
//!   in `recv`: the caller's next call (the unmount after the mount) finds it awake;
//! - the caller, after sending, looks for the answer for [`CALLER_SPIN`] before it awaits it,
//!   unless a job was queued or running already (then the answer is a whole job away, or that
//!   job is stuck: it awaits at once). A hung job costs its caller one [`CALLER_SPIN`], then
//!   the caller's timeout runs as before;
//! - except for a job that ends in an RCU grace period ([`Answer::Sleep`]: `umount2`). The
//!   kernel ends an unmount with `synchronize_rcu_expedited()` (`namespace_unlock` in
//!   fs/namespace.c), which must interrupt every CPU that is not idle and wait for it to
//!   answer; a caller looking for its answer keeps its CPU busy, so the unmount waits for an
//!   inter-processor interrupt round trip. Measured on the benchmark VM: `umount2` of a tmpfs
//!   took 19.6 µs with the caller looking and 10.0 µs with it asleep, against a 7.8 µs
//!   wake-up afterwards (docs/BENCHMARKS.md).
//!
//! Looking is one atomic load at a time with the CPU's spin-wait hint, with a `sched_yield`
//! every [`LOOKS_PER_YIELD`] looks: a thread queued on this CPU (the other side, if the
//! scheduler put it there) runs, and a yield that lets anything run for more than
//! [`YIELD_SAW_OTHERS`] ends the look, because on a contended CPU a looking thread only
//! delays the one it waits for. Each side also stops looking while looking does not pay: the
//! host thread after a wait longer than its window (calls are spaced: it sleeps right after
//! each job until they come close again), callers after an answer that took longer than
//! theirs. With no calls the host thread sleeps in `recv` and costs nothing; a job costs at
//! most one window of looking on each side.

use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

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

impl Handles {
    /// The same handles, duplicated (`F_DUPFD_CLOEXEC`), for the spawner threads.
    pub(crate) fn try_clone(&self) -> std::io::Result<Handles> {
        let pidfd = match &self.pidfd {
            Some((fd, ns)) => Some((fd.try_clone()?, ns.clone())),
            None => None,
        };
        let files = self
            .files
            .iter()
            .map(|(ns, fd)| Ok((*ns, fd.try_clone()?)))
            .collect::<std::io::Result<Vec<_>>>()?;
        let root = match &self.root {
            Some(r) => Some(ProcessRoot {
                pid: r.pid,
                root: r.root.try_clone()?,
                cwd: r.cwd.try_clone()?,
            }),
            None => None,
        };
        Ok(Handles { pidfd, files, root })
    }
}

/// How long the host thread looks for the next job after finishing one before it sleeps: the
/// gap between two calls of one caller (its answer travelling back, then the next call's walk
/// on the caller's thread, a few µs) fits with room for a busy machine.
const HOST_SPIN: Duration = Duration::from_micros(50);

/// How long a caller looks for its answer before it awaits it: about one mount system call
/// (15–25 µs for a tmpfs or a bind) plus the host thread's wake-up, so that an executor thread
/// is held no longer than a blocking call of its own would hold it.
const CALLER_SPIN: Duration = Duration::from_micros(50);

/// Looks between two `sched_yield`s of a spin (each look one atomic load, each with the CPU's
/// spin-wait hint).
const LOOKS_PER_YIELD: u32 = 8;

/// A `sched_yield` that returns later than this let another thread run: the CPU is contended
/// (or the other side just ran on it); the spin ends with one last look.
const YIELD_SAW_OTHERS: Duration = Duration::from_micros(5);

/// Calls `look` until it answers or `budget` has passed, or until a `sched_yield` showed that
/// other threads want this CPU (then a last look, and `None` if it does not answer).
fn spin_for<T>(budget: Duration, mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        for _ in 0..LOOKS_PER_YIELD {
            if let Some(v) = look() {
                return Some(v);
            }
            std::hint::spin_loop();
        }
        let before = Instant::now();
        if before.duration_since(start) >= budget {
            return look();
        }
        thread::yield_now();
        if before.elapsed() > YIELD_SAW_OTHERS {
            return look();
        }
    }
}

/// How a caller waits for a job's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Looks for it for up to [`CALLER_SPIN`] (unless a job is ahead), then sleeps.
    Look,
    /// Sleeps at once: the job ends in an RCU grace period, which an idle CPU does not delay
    /// (see the module docs).
    Sleep,
}

/// A handle on the host thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct HostThread {
    jobs: mpsc::Sender<Job>,
    /// Jobs sent and not yet done (answered, or dropped by a panic or a stopped thread).
    pending: Arc<AtomicUsize>,
    /// Whether a caller looks for its answer before awaiting it: the last answer (to a caller
    /// with no job ahead of it) came within [`CALLER_SPIN`].
    caller_spins: AtomicBool,
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
        let pending = Arc::new(AtomicUsize::new(0));
        thread::Builder::new()
            .name("hostexec-host".into())
            .spawn(move || {
                let joined = join(&handles).and_then(|()| {
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
                let mut spin = true;
                while let Some(job) = next_job(&job_rx, &mut spin) {
                    // A panicking job drops its reply channel (its caller sees an error); the
                    // thread keeps serving the others.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|e| NsEnterError::HostThread(format!("could not be started: {e}")))?;
        let root = ready_rx
            .recv()
            .map_err(|_| NsEnterError::HostThread("stopped while joining".into()))??;
        Ok((
            HostThread {
                jobs,
                pending,
                caller_spins: AtomicBool::new(true),
            },
            root,
        ))
    }

    /// Runs `f` on the host thread and returns its result.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, NsEnterError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.call_with(Answer::Look, f).await
    }

    /// [`call`](Self::call), waiting for the answer as `answer` says.
    pub(crate) async fn call_with<R, F>(&self, answer: Answer, f: F) -> Result<R, NsEnterError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let sent = self.send(f)?;
        self.answer(sent, answer).await
    }

    /// Sends `f` to the host thread; [`answer`](Self::answer) waits for its result. Between
    /// the two the caller can work alongside the job (see `NsEnter`'s prepared mount).
    pub(crate) fn send<R, F>(&self, f: F) -> Result<Sent<R>, NsEnterError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let at = Instant::now();
        let ahead = self.pending.fetch_add(1, Ordering::Relaxed);
        let reply = Reply {
            tx: Some(tx),
            pending: Arc::clone(&self.pending),
        };
        let job: Job = Box::new(move || reply.send(f()));
        // A job not sent is dropped here, its `Reply` with it: counted done.
        self.jobs
            .send(job)
            .map_err(|_| NsEnterError::HostThread("has stopped".into()))?;
        Ok(Sent { rx, at, ahead })
    }

    /// The answer to a job [`send`](Self::send) sent, waited for as `answer` says.
    pub(crate) async fn answer<R>(&self, sent: Sent<R>, answer: Answer) -> Result<R, NsEnterError> {
        let Sent { mut rx, at, ahead } = sent;
        let dropped = || NsEnterError::HostThread("dropped a request (a job panicked)".into());
        if ahead > 0 || answer == Answer::Sleep {
            // A whole job away at least, or behind a stuck one; or asked to sleep.
            return rx.await.map_err(|_| dropped());
        }
        if self.caller_spins.load(Ordering::Relaxed) {
            use tokio::sync::oneshot::error::TryRecvError;
            let looked = spin_for(CALLER_SPIN, || match rx.try_recv() {
                Ok(r) => Some(Ok(r)),
                Err(TryRecvError::Closed) => Some(Err(dropped())),
                Err(TryRecvError::Empty) => None,
            });
            if let Some(looked) = looked {
                return looked;
            }
        }
        let got = rx.await.map_err(|_| dropped());
        self.caller_spins
            .store(at.elapsed() <= CALLER_SPIN, Ordering::Relaxed);
        got
    }
}

/// A job sent to the host thread, its answer not yet taken.
#[derive(Debug)]
pub(crate) struct Sent<R> {
    rx: tokio::sync::oneshot::Receiver<R>,
    /// When it was sent.
    at: Instant,
    /// Jobs queued or running when it was sent.
    ahead: usize,
}

/// Waits for a value another thread hands this job while it runs (see [`HostThread::send`]):
/// looked for during [`CALLER_SPIN`] (the other side is working towards it), then waited for;
/// `None` if the other side dropped its sender.
pub(crate) fn handed<T>(from: &mpsc::Receiver<T>) -> Option<T> {
    let looked = spin_for(CALLER_SPIN, || match from.try_recv() {
        Ok(v) => Some(Some(v)),
        Err(mpsc::TryRecvError::Disconnected) => Some(None),
        Err(mpsc::TryRecvError::Empty) => None,
    });
    match looked {
        Some(v) => v,
        None => from.recv().ok(),
    }
}

/// A job's way back to its caller. The job is counted done first, then answered; a job that
/// panics or is never run drops it: counted done, and its caller sees the channel closed.
struct Reply<R> {
    tx: Option<tokio::sync::oneshot::Sender<R>>,
    pending: Arc<AtomicUsize>,
}

impl<R> Reply<R> {
    /// Counts the job done (once) and hands back the sender.
    fn done(&mut self) -> Option<tokio::sync::oneshot::Sender<R>> {
        let tx = self.tx.take();
        if tx.is_some() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
        tx
    }

    fn send(mut self, answer: R) {
        if let Some(tx) = self.done() {
            // The caller may have given up (its future dropped): nobody to answer.
            let _ = tx.send(answer);
        }
    }
}

impl<R> Drop for Reply<R> {
    fn drop(&mut self) {
        drop(self.done());
    }
}

/// The host thread's next job: looked for during [`HOST_SPIN`], then waited for; `None` once
/// every sender is gone.
fn next_job(jobs: &mpsc::Receiver<Job>, spin: &mut bool) -> Option<Job> {
    let idle = Instant::now();
    if *spin {
        let looked = spin_for(HOST_SPIN, || match jobs.try_recv() {
            Ok(job) => Some(Some(job)),
            Err(mpsc::TryRecvError::Disconnected) => Some(None),
            Err(mpsc::TryRecvError::Empty) => None,
        });
        if let Some(job) = looked {
            return job;
        }
    }
    let job = jobs.recv().ok();
    *spin = idle.elapsed() <= HOST_SPIN;
    job
}

/// `unshare(CLONE_FS)`, then the pidfd joins, then the files, each in join order. Run by
/// the host thread and by each spawner thread, first thing.
pub(crate) fn join(handles: &Handles) -> Result<(), NsEnterError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_look_answers_as_soon_as_it_can() {
        let mut looks = 0;
        let got = spin_for(Duration::from_secs(3600), || {
            looks += 1;
            (looks == 3).then_some("answer")
        });
        assert_eq!((got, looks), (Some("answer"), 3));
    }

    #[test]
    fn a_look_that_never_answers_ends_after_its_window() {
        // With a window of zero: one round of looks and the last one, then `None` (a window
        // that did not end would never return here).
        let mut looks = 0;
        let got: Option<()> = spin_for(Duration::ZERO, || {
            looks += 1;
            None
        });
        assert_eq!((got, looks), (None, LOOKS_PER_YIELD + 1));
    }

    fn start() -> HostThread {
        // No namespace to join: the thread only leaves the process's fs_struct.
        HostThread::start(Handles::default(), false).unwrap().0
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_behind_a_running_job_wait_for_it_and_get_their_own_answers() {
        let t = Arc::new(start());
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let t = Arc::clone(&t);
            async move {
                t.call(move || {
                    let _ = started_tx.send(());
                    wait.recv().map(|()| 1)
                })
                .await
            }
        });
        started.await.unwrap();
        // The host thread is inside the first job: these are queued behind it.
        let behind: Vec<_> = (2..6)
            .map(|i| {
                let t = Arc::clone(&t);
                tokio::spawn(async move { t.call(move || i).await })
            })
            .collect();
        go.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), Ok(1));
        for (i, b) in (2..6).zip(behind) {
            assert_eq!(b.await.unwrap().unwrap(), i);
        }
        assert_eq!(t.pending.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_sleeping_caller_gets_its_answer_and_leaves_the_look_setting_alone() {
        let t = start();
        // A slow answer to a looking caller switches looking off; to a sleeping one it does
        // not (the unmount's sleep says nothing about how soon answers come).
        let slow = || {
            thread::sleep(Duration::from_millis(20));
            5
        };
        assert_eq!(t.call_with(Answer::Sleep, slow).await.unwrap(), 5);
        assert!(t.caller_spins.load(Ordering::Relaxed));
        assert_eq!(t.call_with(Answer::Look, slow).await.unwrap(), 5);
        assert!(!t.caller_spins.load(Ordering::Relaxed));
        assert_eq!(t.pending.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_is_counted_done_and_the_next_call_is_answered() {
        let t = start();
        let err = t
            .call(|| -> u32 { panic!("job panics") })
            .await
            .unwrap_err();
        assert!(matches!(err, NsEnterError::HostThread(_)), "{err:?}");
        assert_eq!(t.call(|| 7).await.unwrap(), 7);
        // Counted done: a later caller is not taken for one queued behind a job.
        assert_eq!(t.pending.load(Ordering::Relaxed), 0);
    }
}
