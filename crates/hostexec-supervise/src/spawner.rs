//! Spawner threads: the threads `posix_spawn` is called from, any of which may hang.
//!
//! `posix_spawn` returns only once the child has called `execve` (glibc reports exec errors
//! to the parent through the shared, vfork'ed memory). When the program or the working
//! directory is on a hung mount (a dead NFS server, a FUSE daemon that never answers), the
//! child blocks in the kernel inside `chdir` or `execve`, and so does the spawning thread.
//! Spawning from one thread would then stall every later command. So each spawn is a job on
//! a small pool: a job whose caller's deadline passes while it is still running is given up
//! on; its thread is counted as stuck, no longer against the pool's capacity, and later jobs
//! get other threads (new ones started when none is idle). When the stuck spawn finally
//! returns (the mount is aborted), the abandoned result is handed to the job's cleanup (the
//! command is killed and reaped: nobody waits for it any more) and the thread serves again.
//!
//! Each thread first runs the pool's `init` (for the real backend: `unshare(CLONE_FS)` and
//! `setns` into the target's namespaces, so that the children are born there).

use std::collections::VecDeque;
use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Run on each new spawner thread before its first job.
pub type ThreadInit = Arc<dyn Fn() -> io::Result<()> + Send + Sync>;

/// At most this many spawner threads that are not stuck.
pub const MAX_SPAWNERS: usize = 16;
/// No more threads than this, stuck ones included (beyond it jobs wait in the queue, and
/// their callers' deadlines still end them).
pub const MAX_THREADS: usize = 256;
/// An idle thread other than the last exits after this long.
const IDLE_EXIT: Duration = Duration::from_secs(5);

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const DONE: u8 = 2;
const ABANDONED: u8 = 3;
const ABANDONED_RUNNING: u8 = 4;

/// A job's result on its way to the caller. Dropped before the caller took it — the caller's
/// future was dropped after the job sent it, while it sat in the channel, or the send found
/// the caller gone — it hands the result to the job's `abandoned`, exactly as a result that
/// comes after the deadline: a started command is never left running because its caller
/// left at the wrong instant.
struct Delivery<R, A: FnOnce(R)> {
    value: Option<R>,
    abandoned: Option<A>,
}

impl<R, A: FnOnce(R)> Drop for Delivery<R, A> {
    fn drop(&mut self) {
        if let (Some(v), Some(a)) = (self.value.take(), self.abandoned.take()) {
            a(v);
        }
    }
}

/// A job's body: given the outcome of its thread's `init`.
type JobFn = Box<dyn FnOnce(Result<(), &io::Error>) + Send>;

struct Job {
    state: Arc<AtomicU8>,
    run: JobFn,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
    stuck: usize,
    closed: bool,
}

struct Shared {
    name: String,
    init: Option<ThreadInit>,
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs run outside the lock and their panics are caught: the state stays consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a job gave no result.
#[derive(Debug)]
pub enum SpawnWait {
    /// The deadline passed first; the job was given up on (see the module docs).
    TimedOut,
    /// No thread could run it: its `init` failed, or no thread could be started.
    Unavailable(io::Error),
}

/// A pool of spawner threads. See the [module docs](self).
pub struct Spawners {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Spawners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("Spawners")
            .field("name", &self.shared.name)
            .field("threads", &st.threads)
            .field("idle", &st.idle)
            .field("stuck", &st.stuck)
            .finish()
    }
}

impl Drop for Spawners {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
    }
}

impl Spawners {
    /// A pool whose threads are named `name` and run `init` first.
    pub fn new(name: &str, init: Option<ThreadInit>) -> Spawners {
        Spawners {
            shared: Arc::new(Shared {
                name: name.to_owned(),
                init,
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
            }),
        }
    }

    /// How many threads are stuck in a job that was given up on.
    pub fn stuck(&self) -> usize {
        self.shared.lock().stuck
    }

    /// Runs `f` on a spawner thread and waits for its result until `deadline`. When the
    /// deadline passes first, `f` either never runs (it was still queued) or its result,
    /// once it comes, goes to `abandoned`.
    pub async fn run<R, F, A>(
        &self,
        deadline: Option<tokio::time::Instant>,
        f: F,
        abandoned: A,
    ) -> Result<R, SpawnWait>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
        A: FnOnce(R) + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<Delivery<R, A>, io::Error>>();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let job = Job {
            state: Arc::clone(&state),
            run: Box::new(move |init: Result<(), &io::Error>| {
                let r = match init {
                    Ok(()) => Ok(Delivery {
                        value: Some(f()),
                        abandoned: Some(abandoned),
                    }),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                };
                // A caller already gone: the result goes to `abandoned` as it is dropped.
                let _ = tx.send(r);
            }),
        };
        self.submit(job)?;
        let answer = match deadline {
            Some(d) => match tokio::time::timeout_at(d, rx).await {
                Ok(a) => a,
                Err(_) => {
                    self.give_up(&state);
                    return Err(SpawnWait::TimedOut);
                }
            },
            None => rx.await,
        };
        match answer {
            Ok(Ok(mut d)) => {
                d.abandoned = None;
                d.value.take().ok_or_else(|| {
                    SpawnWait::Unavailable(io::Error::other("the job's result was taken"))
                })
            }
            Ok(Err(e)) => Err(SpawnWait::Unavailable(e)),
            Err(_) => Err(SpawnWait::Unavailable(io::Error::other(
                "the spawner thread dropped the job (it panicked)",
            ))),
        }
    }

    fn submit(&self, job: Job) -> Result<(), SpawnWait> {
        let mut st = self.shared.lock();
        st.queue.push_back(job);
        if st.idle == 0 && st.threads - st.stuck < MAX_SPAWNERS && st.threads < MAX_THREADS {
            if let Err(e) = self.start_thread(&mut st) {
                // Another thread may still serve it; if there is none, fail it now.
                if st.threads == 0 {
                    st.queue.pop_back();
                    return Err(SpawnWait::Unavailable(e));
                }
            }
        } else {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    fn give_up(&self, state: &AtomicU8) {
        let mut st = self.shared.lock();
        if state
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return;
        }
        if state
            .compare_exchange(
                RUNNING,
                ABANDONED_RUNNING,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            st.stuck += 1;
            // Its capacity is free again: serve what waits.
            if !st.queue.is_empty() && st.idle == 0 && st.threads < MAX_THREADS {
                let _ = self.start_thread(&mut st);
            }
        }
    }

    fn start_thread(&self, st: &mut State) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        std::thread::Builder::new()
            .name(self.shared.name.clone())
            .spawn(move || worker(&shared))?;
        st.threads += 1;
        Ok(())
    }
}

fn worker(shared: &Shared) {
    if let Some(init) = &shared.init {
        if let Err(e) = init() {
            let job = {
                let mut st = shared.lock();
                st.threads -= 1;
                st.queue.pop_front()
            };
            if let Some(job) = job {
                (job.run)(Err(&e));
            }
            return;
        }
    }
    let mut st = shared.lock();
    loop {
        let Some(job) = st.queue.pop_front() else {
            if st.closed {
                break;
            }
            st.idle += 1;
            let (guard, wait) = shared
                .wake
                .wait_timeout(st, IDLE_EXIT)
                .unwrap_or_else(|p| p.into_inner());
            st = guard;
            st.idle -= 1;
            if wait.timed_out() && st.queue.is_empty() && st.threads - st.stuck > 1 {
                break;
            }
            continue;
        };
        if job
            .state
            .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // Given up on before it started: never run it.
            continue;
        }
        drop(st);
        let state = Arc::clone(&job.state);
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || (job.run)(Ok(()))));
        st = shared.lock();
        if state
            .compare_exchange(RUNNING, DONE, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            // It was given up on while it ran: this thread is no longer stuck.
            st.stuck -= 1;
        }
    }
    st.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    /// The caller's future dropped after the job sent its result but before the future was
    /// polled again: the result still goes to `abandoned` (a spawned command would otherwise
    /// run on with nobody to stop it).
    #[test]
    fn a_result_left_in_the_channel_goes_to_abandoned() {
        use std::future::Future;
        use std::sync::atomic::AtomicBool;
        let pool = Spawners::new("test-spawner", None);
        let ran = Arc::new(AtomicBool::new(false));
        let (abandoned_tx, abandoned_rx) = mpsc::channel::<u32>();
        let r2 = Arc::clone(&ran);
        // The job waits for `go`, sent after the first poll: on a loaded machine the spawner
        // thread could otherwise run it and send its result between the submit and that
        // poll, which then answers Ready (seen once in a full test run).
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let mut fut = Box::pin(pool.run(
            None,
            move || {
                let _ = go_rx.recv();
                r2.store(true, Ordering::SeqCst);
                9u32
            },
            move |r| {
                let _ = abandoned_tx.send(r);
            },
        ));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The first poll submits the job; it waits for `go`, so nothing has been sent yet.
        if let std::task::Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
            panic!("answered before the job could run: {r:?}");
        }
        go_tx.send(()).unwrap();
        let start = Instant::now();
        while !ran.load(Ordering::SeqCst) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the job never ran"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The send follows the job at once; give it time, then drop without polling.
        std::thread::sleep(Duration::from_millis(100));
        drop(fut);
        assert_eq!(
            abandoned_rx.recv_timeout(Duration::from_secs(5)),
            Ok(9),
            "the result sat in the channel and was dropped with it"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stuck_job_is_given_up_on_and_does_not_block_others() {
        let pool = Spawners::new("test-spawner", None);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (abandoned_tx, abandoned_rx) = mpsc::channel::<u32>();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let stuck = pool
            .run(
                Some(deadline),
                move || {
                    let _ = release_rx.recv();
                    7u32
                },
                move |r| {
                    let _ = abandoned_tx.send(r);
                },
            )
            .await;
        assert!(matches!(stuck, Err(SpawnWait::TimedOut)), "{stuck:?}");
        assert_eq!(pool.stuck(), 1);
        // Another job runs meanwhile, on another thread.
        let started = Instant::now();
        let r = pool.run(None, || 5u32, |_| {}).await.unwrap();
        assert_eq!(r, 5);
        assert!(started.elapsed() < Duration::from_secs(2));
        // Released, the stuck job's result goes to its cleanup, and the thread is free.
        release_tx.send(()).unwrap();
        assert_eq!(abandoned_rx.recv_timeout(Duration::from_secs(5)), Ok(7));
        let t = Instant::now();
        while pool.stuck() != 0 {
            assert!(t.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_init_fails_the_job_with_its_error() {
        let init: ThreadInit = Arc::new(|| Err(io::Error::from_raw_os_error(1)));
        let pool = Spawners::new("test-spawner", Some(init));
        let r = pool.run(None, || (), |_| {}).await;
        match r {
            Err(SpawnWait::Unavailable(e)) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
            other => panic!("{other:?}"),
        }
    }
}
