//! The host-view worker pool: a few OS threads that run file operations on the host root
//! descriptor (resolve, stat, read, …) for the async API, each with a deadline.
//!
//! Why not tokio's blocking pool: a `spawn_blocking` round trip cost ~17 µs here, next to a
//! ~27 µs resolve; this pool's is a mutex, a condition variable and a oneshot. Why not the
//! caller's thread: a file system call can block indefinitely (a hung NFS or FUSE mount) and
//! must never stall a runtime worker, and the call's deadline must still fire.
//!
//! Workers are started on demand whenever a job finds none idle, up to [`MAX_WORKERS`]
//! *healthy* ones, and an idle worker beyond the first exits after [`IDLE_EXIT`]. Idle workers
//! sleep on the condition variable (spinning first, with `sched_yield`, measured slower on 2
//! loaded cores: 15–17 µs against 10–12 µs per `stat`). Every job runs on the descriptors it
//! was given; the workers never change namespaces, root or working directory.
//!
//! **Stuck workers do not count.** A job that overran its deadline (its caller was told
//! [`RunError::Overran`], or it was seen overdue when another job was submitted) leaves its
//! worker *stuck*: the kernel may keep that thread for as long as the mount stays hung, even
//! in state `D`, immune to signals. Stuck workers are not counted against [`MAX_WORKERS`], so
//! a hung mount never starves calls on healthy ones; the overrun hook is told the mount the
//! job was last seen entering (see [`note_mount`]), so that the backend refuses later calls
//! into it at once instead of sending more threads after the first. At most [`MAX_STUCK`]
//! stuck threads are kept; beyond that jobs queue for a healthy worker. A stuck worker that
//! finally returns serves on as a normal one. A queued job whose caller has gone (timed out,
//! dropped) is discarded unrun.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// At most this many healthy workers (the blocking pool's 512 is far more than a host needs).
pub(crate) const MAX_WORKERS: usize = 32;
/// At most this many workers stuck in calls that overran their deadline.
pub(crate) const MAX_STUCK: usize = 512;
/// An idle worker (other than the last) exits after this long without work.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(1);

/// Told the mount id a job was last seen entering (0: none) and the path it was about when
/// the job overran.
pub(crate) type OverrunHook = Box<dyn Fn(u64, Option<&Path>) + Send + Sync>;

thread_local! {
    /// The progress cell of the job this thread is running.
    static PROGRESS: RefCell<Option<Arc<AtomicU64>>> = const { RefCell::new(None) };
}

/// Records that the job running on this thread is entering mount `mnt_id` (a no-op outside a
/// pool job).
pub(crate) fn note_mount(mnt_id: u64) {
    PROGRESS.with(|p| {
        if let Some(cell) = p.borrow().as_ref() {
            cell.store(mnt_id, Ordering::Relaxed);
        }
    });
}

struct Queued {
    id: u64,
    deadline: Option<Instant>,
    about: Option<PathBuf>,
    progress: Arc<AtomicU64>,
    job: Job,
}

struct Running {
    deadline: Option<Instant>,
    about: Option<PathBuf>,
    progress: Arc<AtomicU64>,
    stuck: bool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Queued>,
    running: HashMap<u64, Running>,
    next_id: u64,
    idle: usize,
    workers: usize,
    /// Workers whose job overran its deadline (counted in `workers`).
    stuck: usize,
    closed: bool,
}

impl State {
    /// Marks running jobs past their deadline as stuck; returns their progress.
    fn reap_overdue(&mut self, now: Instant) -> Vec<(u64, Option<PathBuf>)> {
        let mut found = Vec::new();
        for r in self.running.values_mut() {
            if !r.stuck && r.deadline.is_some_and(|d| d <= now) {
                r.stuck = true;
                found.push((r.progress.load(Ordering::Relaxed), r.about.clone()));
            }
        }
        self.stuck += found.len();
        found
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    on_overrun: OverrunHook,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and their panics are caught: a poisoned lock still
        // holds a consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool; its workers exit once it is dropped and the queue is empty.
pub(crate) struct FsPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FsPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("FsPool")
            .field("workers", &st.workers)
            .field("idle", &st.idle)
            .field("stuck", &st.stuck)
            .field("queued", &st.queue.len())
            .finish()
    }
}

/// Why a job gave no answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RunError {
    /// Dropped without an answer (it panicked, or no worker could be started).
    Lost,
    /// Not done by its deadline; its worker, if it started, is counted as stuck.
    Overran,
}

/// The worker threads of an `NsEnter`'s file call pool, now (see
/// [`NsEnter::fs_pool_stats`](crate::NsEnter::fs_pool_stats)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsPoolStats {
    /// Worker threads, stuck ones included.
    pub workers: usize,
    /// Workers left in a call that overran its deadline (in a mount that does not answer);
    /// they do not count against the pool's capacity of healthy workers.
    pub stuck: usize,
}

impl FsPool {
    /// A pool whose `on_overrun` is told the mount each overrunning job was last seen in.
    pub(crate) fn new(on_overrun: OverrunHook) -> FsPool {
        FsPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                on_overrun,
            }),
        }
    }

    pub(crate) fn counts(&self) -> FsPoolStats {
        let st = self.shared.lock();
        FsPoolStats {
            workers: st.workers,
            stuck: st.stuck,
        }
    }

    /// Runs `f` on a worker and returns its result, or [`RunError::Overran`] once `limit` has
    /// passed (the job then runs on, unwatched, or never starts if it was still queued).
    pub(crate) async fn run<R, F>(
        &self,
        limit: Option<Duration>,
        about: Option<&Path>,
        f: F,
    ) -> Result<R, RunError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let deadline = limit.map(|l| Instant::now() + l);
        let progress = Arc::new(AtomicU64::new(0));
        let cell = Arc::clone(&progress);
        let id = self.submit(
            deadline,
            about.map(Path::to_path_buf),
            progress,
            Box::new(move || {
                // Its caller is gone (its own timeout, or dropped): nothing to do.
                if tx.is_closed() {
                    return;
                }
                PROGRESS.with(|p| *p.borrow_mut() = Some(cell));
                let r = f();
                PROGRESS.with(|p| *p.borrow_mut() = None);
                let _ = tx.send(r);
            }),
        );
        let Some(deadline) = deadline else {
            return rx.await.map_err(|_| RunError::Lost);
        };
        // If the caller goes away first (its own timeout, a dropped future), the deadline is
        // still watched: the job is then known to be stuck even if no other job comes along.
        let mut watch = Abandoned {
            shared: Some(Arc::clone(&self.shared)),
            id,
            deadline,
        };
        let r = match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(r) => r.map_err(|_| RunError::Lost),
            Err(_) => {
                overran(&self.shared, id);
                Err(RunError::Overran)
            }
        };
        watch.shared = None;
        r
    }
}

/// Dropped with its caller's future before the job answered: watches the deadline on the
/// runtime (if there is one), then counts the job as overrun if it is still running.
struct Abandoned {
    shared: Option<Arc<Shared>>,
    id: u64,
    deadline: Instant,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(shared) = self.shared.take() else {
            return;
        };
        let (id, deadline) = (self.id, self.deadline);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                overran(&shared, id);
            });
        }
    }
}

impl FsPool {}

/// The job `id` missed its deadline: drop it if it is still queued, else count its worker
/// as stuck and tell the hook (once), then start a worker for what is queued.
fn overran(shared: &Arc<Shared>, id: u64) {
    {
        let mut guard = shared.lock();
        let st = &mut *guard;
        st.queue.retain(|q| q.id != id);
        let mut overdue = st.reap_overdue(Instant::now());
        if let Some(r) = st.running.get_mut(&id) {
            if !r.stuck {
                r.stuck = true;
                st.stuck += 1;
                overdue.push((r.progress.load(Ordering::Relaxed), r.about.clone()));
            }
        }
        let start = !st.queue.is_empty() && st.idle == 0 && may_start(st);
        drop(guard);
        if start {
            start_worker(shared);
        }
        for (mnt, about) in overdue {
            (shared.on_overrun)(mnt, about.as_deref());
        }
    }
}

impl FsPool {
    fn submit(
        &self,
        deadline: Option<Instant>,
        about: Option<PathBuf>,
        progress: Arc<AtomicU64>,
        job: Job,
    ) -> u64 {
        let mut st = self.shared.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.queue.push_back(Queued {
            id,
            deadline,
            about,
            progress,
            job,
        });
        if st.idle > 0 {
            drop(st);
            self.shared.wake.notify_one();
            return id;
        }
        // Every worker busy: the ones whose jobs are overdue are stuck, not busy.
        let overdue = st.reap_overdue(Instant::now());
        let start = may_start(&mut st);
        drop(st);
        if start {
            start_worker(&self.shared);
        }
        for (mnt, about) in overdue {
            (self.shared.on_overrun)(mnt, about.as_deref());
        }
        id
    }
}

impl Drop for FsPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

/// Whether another worker may start; counts it if so.
fn may_start(st: &mut State) -> bool {
    if st.workers - st.stuck < MAX_WORKERS && st.workers < MAX_WORKERS + MAX_STUCK {
        st.workers += 1;
        // Counted as idle until it takes its first job, so that a burst does not start
        // one thread per job.
        st.idle += 1;
        true
    } else {
        false
    }
}

/// Starts one worker, already counted by [`may_start`].
fn start_worker(shared: &Arc<Shared>) {
    let s = Arc::clone(shared);
    let started = std::thread::Builder::new()
        .name("hostexec-fs".into())
        .spawn(move || worker(&s));
    if started.is_err() {
        // No thread: the job stays queued for a running worker, or, with none healthy,
        // is dropped (its caller sees Lost).
        let mut st = shared.lock();
        st.workers -= 1;
        st.idle -= 1;
        if st.workers == st.stuck {
            st.queue.clear();
        }
    }
}

fn worker(shared: &Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if let Some(q) = st.queue.pop_front() {
            st.idle -= 1;
            // More queued and nobody idle (a burst, or a job that will hang): a successor.
            if !st.queue.is_empty() && st.idle == 0 && may_start(&mut st) {
                drop(st);
                start_worker(shared);
                st = shared.lock();
            }
            st.running.insert(
                q.id,
                Running {
                    deadline: q.deadline,
                    about: q.about,
                    progress: q.progress,
                    stuck: false,
                },
            );
            drop(st);
            let _ = std::panic::catch_unwind(AssertUnwindSafe(q.job));
            st = shared.lock();
            if st.running.remove(&q.id).is_some_and(|r| r.stuck) {
                st.stuck -= 1;
            }
            st.idle += 1;
            continue;
        }
        if st.closed {
            break;
        }
        let (guard, timeout) = shared
            .wake
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|p| p.into_inner());
        st = guard;
        if timeout.timed_out() && st.queue.is_empty() && st.workers > 1 {
            break;
        }
    }
    st.idle -= 1;
    st.workers -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> (FsPool, Arc<Mutex<Vec<u64>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        (
            FsPool::new(Box::new(move |m, _| s.lock().unwrap().push(m))),
            seen,
        )
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hung_job_blocks_neither_the_runtime_nor_the_other_jobs() {
        let (pool, _) = pool();
        let (release, hang) = std::sync::mpsc::channel::<()>();
        // Like a call into a hung mount: blocks its worker until released.
        let hung = pool.run(None, None, move || hang.recv().is_ok());
        tokio::pin!(hung);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut hung)
                .await
                .is_err(),
            "the hung job must still be pending (and the timeout must fire)"
        );
        // Meanwhile other jobs complete on another worker; the runtime's only thread runs on.
        for i in 0..100 {
            assert_eq!(pool.run(None, None, move || i * 2).await.unwrap(), i * 2);
        }
        release.send(()).unwrap();
        assert!(hung.await.unwrap());
        let st = pool.shared.lock();
        assert!((2..=MAX_WORKERS).contains(&st.workers), "{}", st.workers);
    }

    /// The starvation bug: with more hung jobs than MAX_WORKERS, abandoned by their callers,
    /// a later job still runs at once, and the overrun hook hears of each hung job's mount.
    #[tokio::test(flavor = "current_thread")]
    async fn stuck_workers_do_not_count_against_the_capacity() {
        let (pool, seen) = pool();
        let pool = Arc::new(pool);
        let (release, hang) = std::sync::mpsc::channel::<()>();
        let hang = Arc::new(Mutex::new(hang));
        let started = Arc::new(AtomicU64::new(0));
        // Long enough for a loaded machine to start a wave's threads before the callers'
        // deadline drops their still-queued jobs (500 ms lost a job now and then at a load
        // average of 13 on 2 cores: a caller gone before its job started, so the wave never
        // filled).
        const LIMIT: Duration = Duration::from_secs(3);
        let waves = 3;
        for wave in 1..=waves {
            let mut callers = Vec::new();
            for _ in 0..MAX_WORKERS {
                let (p, h, s) = (Arc::clone(&pool), Arc::clone(&hang), Arc::clone(&started));
                callers.push(tokio::spawn(async move {
                    p.run(Some(LIMIT), None, move || {
                        note_mount(67);
                        s.fetch_add(1, Ordering::SeqCst);
                        // Each waits for a release of its own (one message each).
                        let _ = h.lock().map(|rx| rx.recv());
                    })
                    .await
                }));
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while started.load(Ordering::SeqCst) < (wave * MAX_WORKERS) as u64 {
                assert!(Instant::now() < deadline, "{:?}", pool.counts());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Abandoned: the callers go away while their jobs hang.
            for c in callers {
                c.abort();
            }
            tokio::time::sleep(LIMIT + Duration::from_millis(50)).await;
        }
        // All are overdue now; a healthy job finds a healthy worker at once.
        let t = Instant::now();
        assert_eq!(
            pool.run(Some(Duration::from_secs(5)), None, || 7).await,
            Ok(7),
            "a healthy job waited behind hung ones"
        );
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        let c = pool.counts();
        assert_eq!(c.stuck, waves * MAX_WORKERS, "{c:?}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), waves * MAX_WORKERS);
        assert!(seen.iter().all(|&m| m == 67), "{seen:?}");
        let n = waves * MAX_WORKERS;
        // A job that overruns while its caller waits: Overran, and its worker is stuck.
        let h = Arc::clone(&hang);
        let r = pool
            .run(Some(Duration::from_millis(20)), None, move || {
                let _ = h.lock().map(|rx| rx.recv());
            })
            .await;
        assert_eq!(r, Err(RunError::Overran));
        // Released, the stuck workers serve on as healthy ones.
        for _ in 0..=n {
            let _ = release.send(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while pool.counts().stuck != 0 {
            assert!(Instant::now() < deadline, "{:?}", pool.counts());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            pool.run(Some(Duration::from_secs(5)), None, || 8).await,
            Ok(8)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_queued_job_past_its_deadline_never_runs() {
        let (pool, _) = pool();
        let ran = Arc::new(AtomicU64::new(0));
        let r = Arc::clone(&ran);
        // Its caller is gone before a worker picks it (the closure checks first).
        let job = pool.run(Some(Duration::from_secs(5)), None, move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        drop(job);
        assert_eq!(pool.run(None, None, || 1).await, Ok(1));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_job_is_lost_and_the_pool_serves_on() {
        let (pool, _) = pool();
        let r: Result<(), RunError> = pool.run(None, None, || panic!("boom")).await;
        assert_eq!(r, Err(RunError::Lost));
        assert_eq!(pool.run(None, None, || 7).await.unwrap(), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_exit_when_the_pool_is_dropped() {
        let (pool, _) = pool();
        let shared = Arc::clone(&pool.shared);
        let jobs = (0..8).map(|i| pool.run(None, None, move || i));
        for (i, j) in jobs.enumerate() {
            assert_eq!(j.await.unwrap(), i);
        }
        drop(pool);
        let deadline = Instant::now() + Duration::from_secs(5);
        while shared.lock().workers != 0 {
            assert!(Instant::now() < deadline, "workers outlived the pool");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
