//! The host-view worker pool: a few OS threads that run file operations on the host root
//! descriptor (resolve, stat, read, …) for the async API.
//!
//! Why not tokio's blocking pool: a `spawn_blocking` round trip cost ~17 µs here, next to a
//! ~27 µs resolve; this pool's is a mutex, a condition variable and a oneshot. Why not the
//! caller's thread: a file system call can block indefinitely (a hung NFS or FUSE mount) and
//! must never stall a runtime worker, and a caller's `tokio::time::timeout` must still fire.
//!
//! Workers are started on demand whenever a job finds none idle, up to [`MAX_WORKERS`]
//! (so a few hung calls do not stop the others; beyond that, jobs queue), and an idle worker
//! beyond the first exits after [`IDLE_EXIT`]. Idle workers sleep on the condition variable
//! (spinning first, with `sched_yield`, measured slower on 2 loaded cores: 15–17 µs against
//! 10–12 µs per `stat`). Every job runs on the descriptors it was given; the workers
//! never change namespaces, root or working directory.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

/// At most this many workers (the blocking pool's 512 is far more than a host needs).
pub(crate) const MAX_WORKERS: usize = 32;
/// An idle worker (other than the last) exits after this long without work.
pub(crate) const IDLE_EXIT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
    workers: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
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
            .field("queued", &st.queue.len())
            .finish()
    }
}

/// The job was dropped without an answer (it panicked, or no worker could be started).
#[derive(Debug)]
pub(crate) struct Lost;

impl FsPool {
    pub(crate) fn new() -> FsPool {
        FsPool {
            shared: Arc::new(Shared::default()),
        }
    }

    /// Runs `f` on a worker and returns its result.
    pub(crate) async fn run<R, F>(&self, f: F) -> Result<R, Lost>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(f());
        }));
        rx.await.map_err(|_| Lost)
    }

    fn submit(&self, job: Job) {
        let mut st = self.shared.lock();
        st.queue.push_back(job);
        if st.idle > 0 {
            drop(st);
            self.shared.wake.notify_one();
            return;
        }
        if st.workers < MAX_WORKERS {
            st.workers += 1;
            // Counted as idle until it takes its first job, so that a burst does not start
            // one thread per job.
            st.idle += 1;
            drop(st);
            let shared = Arc::clone(&self.shared);
            let started = std::thread::Builder::new()
                .name("hostexec-fs".into())
                .spawn(move || worker(&shared));
            if started.is_err() {
                // No thread: the job stays queued for a running worker, or, with none,
                // is dropped (its caller sees Lost).
                let mut st = self.shared.lock();
                st.workers -= 1;
                st.idle -= 1;
                if st.workers == 0 {
                    st.queue.clear();
                }
            }
        }
    }
}

impl Drop for FsPool {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

fn worker(shared: &Shared) {
    let mut st = shared.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            st.idle -= 1;
            drop(st);
            let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
            st = shared.lock();
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
    use std::time::Instant;

    #[tokio::test(flavor = "current_thread")]
    async fn a_hung_job_blocks_neither_the_runtime_nor_the_other_jobs() {
        let pool = FsPool::new();
        let (release, hang) = std::sync::mpsc::channel::<()>();
        // Like a call into a hung mount: blocks its worker until released.
        let hung = pool.run(move || hang.recv().is_ok());
        tokio::pin!(hung);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), &mut hung)
                .await
                .is_err(),
            "the hung job must still be pending (and the timeout must fire)"
        );
        // Meanwhile other jobs complete on another worker; the runtime's only thread runs on.
        for i in 0..100 {
            assert_eq!(pool.run(move || i * 2).await.unwrap(), i * 2);
        }
        release.send(()).unwrap();
        assert!(hung.await.unwrap());
        let st = pool.shared.lock();
        assert!((2..=MAX_WORKERS).contains(&st.workers), "{}", st.workers);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_job_is_lost_and_the_pool_serves_on() {
        let pool = FsPool::new();
        let r: Result<(), Lost> = pool.run(|| panic!("boom")).await;
        assert!(r.is_err());
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn workers_exit_when_the_pool_is_dropped() {
        let pool = FsPool::new();
        let shared = Arc::clone(&pool.shared);
        let jobs = (0..8).map(|i| pool.run(move || i));
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
