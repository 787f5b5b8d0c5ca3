//! Load: many host commands through one `NsEnter`, and many concurrent resolutions,
//! in a real sandbox host (a process in its own mount namespace).
//!
//! - 1,000 commands with 64 in flight all succeed with their own output, really run at the
//!   same time on the host (each command counts, on the host, how many have started and not
//!   yet ended: the peak is above 1 and never above 64), and afterwards this process holds
//!   as many fds and threads as before (measured after a warm-up, so the
//!   runtime's own steady state — its signal pipe, its idle blocking threads — counts as
//!   "before"). A leaked pipe, pidfd or thread per command would show as +1,000.
//! - 100,000 `resolve` calls from 8 tasks agree, answer for answer, with a sequential run.
//!
//! The two tests share one lock: the fd and thread counts are of the whole process.

mod common;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Tree;
use hostexec_api::{Executor, HostCommand, PathResolver, Resolve};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

static WHOLE_PROCESS: Mutex<()> = Mutex::new(());

fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Waits (up to `within`) until `f()` is at most `limit`; returns the last value.
fn settles_to(f: fn() -> usize, limit: usize, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let n = f();
        if n <= limit || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A runtime whose idle blocking threads go away quickly, so that the thread count settles
/// within the test instead of after tokio's default 10 s keep-alive.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(100))
        .enable_all()
        .build()
        .unwrap()
}

/// What a command of [`run_batch`] runs: it reads the host-only marker (`$1`), marks itself
/// started in `$3/s/$2`, lives a little, counts on the host the commands started and not yet
/// ended (the `s` markers minus the `e` markers; shell globs, so no extra process), marks
/// itself ended, and prints the marker's text, its number and the count.
///
/// The two globs are read one after the other, starts first: every end has its start before
/// it, so the count is a lower bound of the commands running when the `s` glob was read
/// (never above the true figure), and negative when more commands ended between the two
/// globs than were running — which a loaded machine does (seen: -85).
const COUNTING_COMMAND: &str = r#"read -r x < "$1" || exit 1
i=$2 d=$3
: > "$d/s/$i"
sleep 0.05
set -- "$d"/s/*; s=$#
set -- "$d"/e/*; if [ -e "$1" ]; then e=$#; else e=0; fi
: > "$d/e/$i"
printf '%s %s %s' "$x" "$i" "$((s - e))""#;

/// Runs `range` as commands, `in_flight` at a time; returns how many succeeded and the most
/// commands the host saw running at once. `counters` is a fresh host directory holding `s/`
/// and `e/`.
async fn run_batch(
    ns: &NsEnter,
    marker: &Path,
    counters: &Path,
    range: std::ops::Range<usize>,
    in_flight: usize,
) -> (usize, usize) {
    use tokio::task::JoinSet;
    let mut set = JoinSet::new();
    let mut peak = 0;
    let mut ok = 0;
    let mut next = range.start;
    while next < range.end || !set.is_empty() {
        while next < range.end && set.len() < in_flight {
            let ns = ns.clone();
            let marker = marker.to_path_buf();
            let counters = counters.to_path_buf();
            let i = next;
            set.spawn(async move {
                // A host-only file proves the command ran in the sandbox, the argument that
                // it is this command's output and no other's.
                let out = ns
                    .run(
                        HostCommand::new("sh")
                            .args(["-c", COUNTING_COMMAND])
                            .arg("sh")
                            .arg(marker)
                            .arg(i.to_string())
                            .arg(counters)
                            .timeout(Duration::from_secs(30)),
                    )
                    .await;
                (i, out)
            });
            next += 1;
        }
        let (i, out) = set.join_next().await.unwrap().unwrap();
        let out = out.unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert!(out.success(), "command {i}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let running = text
            .strip_prefix(&format!("host-only {i} "))
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("command {i}: unexpected output {text:?}"));
        peak = peak.max(usize::try_from(running).unwrap_or(0));
        ok += 1;
    }
    (ok, peak)
}

#[test]
fn a_thousand_commands_64_in_flight_leave_no_fds_or_threads_behind() {
    let _whole = WHOLE_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if skip_without_namespaces("a_thousand_commands_64_in_flight_leave_no_fds_or_threads_behind") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    // The marker lives on the scratch tmpfs, which only the sandbox sees.
    let tree = Tree::scratch(&sb);
    tree.mkdir_all("m");
    tree.file("m/marker", b"host-only\n");
    let marker = tree.host_path("m/marker");
    for d in ["warm-up/s", "warm-up/e", "run/s", "run/e"] {
        tree.mkdir_all(d);
    }
    assert!(
        !marker.exists(),
        "the marker is visible outside the sandbox"
    );
    let rt = runtime();
    let ns = NsEnter::new(sb.target()).unwrap();

    // Warm-up: the runtime's signal handling, the cached `sh` lookup, the blocking pool at
    // its steady state.
    rt.block_on(run_batch(
        &ns,
        &marker,
        &tree.host_path("warm-up"),
        0..128,
        64,
    ));
    let fds0 = settles_to(hostexec_testing::fds::count, 0, Duration::from_millis(300))
        .min(hostexec_testing::fds::count());
    let threads0 = settles_to(thread_count, 0, Duration::from_millis(500)).min(thread_count());

    let started = Instant::now();
    let (ok, peak) = rt.block_on(run_batch(&ns, &marker, &tree.host_path("run"), 0..1000, 64));
    assert_eq!(ok, 1000);
    eprintln!(
        "1000 commands, 64 in flight: {:?}, at most {peak} running at once on the host \
         (fds {fds0}, threads {threads0} before)",
        started.elapsed()
    );
    // Counted on the host: a backend that ran one command at a time would give 1; more than
    // 64 would mean commands outlive the task that waits for them.
    assert!(
        (2..=64).contains(&peak),
        "commands running at once on the host: {peak}, expected 2 to 64"
    );

    let fds = settles_to(hostexec_testing::fds::count, fds0, Duration::from_secs(5));
    assert!(
        fds <= fds0,
        "fds leaked by 1000 commands: {fds}, before: {fds0}"
    );
    let threads = settles_to(thread_count, threads0, Duration::from_secs(5));
    assert!(
        threads <= threads0,
        "threads after 1000 commands: {threads}, before: {threads0}"
    );
    // The host thread itself is still one thread, and still works.
    let out = rt
        .block_on(ns.run(HostCommand::new("cat").arg(marker)))
        .unwrap();
    assert_eq!(out.stdout, b"host-only\n");
}

/// Directory names and link targets of the resolve tree: relative and absolute links, links
/// to links, `..` through links, a loop, a dangling link, a non-UTF-8 name.
fn build_resolve_tree(t: &Tree) -> Vec<Vec<u8>> {
    let s = t.host.as_os_str().as_bytes().to_vec();
    let abs = |rel: &str| {
        let mut v = s.clone();
        v.push(b'/');
        v.extend_from_slice(rel.as_bytes());
        v
    };
    t.mkdir_all("a/b/c/d");
    t.mkdir_all(b"x/\xff\xfe/y");
    t.file("a/b/c/d/file", b"f");
    t.symlink("b", "a/lb");
    t.symlink("lb/c", "a/lc");
    t.symlink(abs("a/b/c"), "abs-c");
    t.symlink("../a/lc/d", "x/to-d");
    t.symlink("/", "x/root");
    t.symlink(b"\xff\xfe/y", "x/lw");
    t.symlink("loop2", "loop1");
    t.symlink("loop1", "loop2");
    t.symlink("missing/deeper", "dangling");
    t.symlink("../../..", "a/b/up3");
    let tails = [
        "",
        "/",
        "/.",
        "/..",
        "/file",
        "/file/",
        "/missing",
        "/missing/..",
        "/d",
        "/d/file",
    ];
    let heads = [
        "a",
        "a/lb",
        "a/lc",
        "a/lc/d",
        "abs-c",
        "x/to-d",
        "x/root",
        "x/lw",
        "loop1",
        "dangling",
        "a/b/up3",
        "a/b/c/d",
        "a/./b/../lb/c",
    ];
    let mut q = Vec::new();
    for h in heads {
        for tail in tails {
            let mut v = abs(h);
            v.extend_from_slice(tail.as_bytes());
            q.push(v);
        }
    }
    q.push(b"/".to_vec());
    q.push(b"/..".to_vec());
    q
}

type Answer = Result<PathBuf, String>;

fn answer(r: Result<PathBuf, hostexec_api::PathError>) -> Answer {
    // Compare errors by their kind and errno; the Display names the path too.
    r.map_err(|e| format!("{:?} {e}", e.raw_os_error()))
}

#[test]
fn a_hundred_thousand_concurrent_resolutions_agree_with_a_sequential_run() {
    let _whole = WHOLE_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
    if skip_without_namespaces(
        "a_hundred_thousand_concurrent_resolutions_agree_with_a_sequential_run",
    ) {
        return;
    }
    const TOTAL: usize = 100_000;
    const TASKS: usize = 8;
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    let queries: Vec<PathBuf> = build_resolve_tree(&tree)
        .into_iter()
        .map(|b| PathBuf::from(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&b))))
        .collect();
    let rt = runtime();
    let ns = NsEnter::new(sb.target()).unwrap();
    let modes = [Resolve::MustExist, Resolve::AllowMissing];

    // The sequential run.
    let mut expected: BTreeMap<(usize, usize), Answer> = BTreeMap::new();
    rt.block_on(async {
        for (qi, q) in queries.iter().enumerate() {
            for (mi, m) in modes.iter().enumerate() {
                expected.insert((qi, mi), answer(ns.resolve(q, *m).await));
            }
        }
    });
    // The sequential answers are not all alike: successes and each kind of error occur.
    let oks = expected.values().filter(|a| a.is_ok()).count();
    for errno in ["Some(2)", "Some(20)", "Some(40)"] {
        assert!(
            expected
                .values()
                .any(|a| matches!(a, Err(e) if e.starts_with(errno))),
            "no {errno} among the sequential answers"
        );
    }
    assert!(
        oks > expected.len() / 3,
        "{oks} of {} resolved",
        expected.len()
    );
    // Spot checks against what the tree says.
    let want_d = tree.host_path("a/b/c/d");
    assert_eq!(
        expected[&(
            queries
                .iter()
                .position(|q| q == &tree.host_path("x/to-d"))
                .unwrap(),
            0
        )],
        Ok(want_d)
    );

    let queries = Arc::new(queries);
    let expected = Arc::new(expected);
    let started = Instant::now();
    let checked: usize = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let ns = ns.clone();
            let queries = Arc::clone(&queries);
            let expected = Arc::clone(&expected);
            tasks.push(tokio::spawn(async move {
                let per = TOTAL / TASKS;
                let n = queries.len() * modes.len();
                for k in 0..per {
                    // Each task walks the (query, mode) pairs from its own offset.
                    let idx = (k * 7 + t * 13) % n;
                    let (qi, mi) = (idx / modes.len(), idx % modes.len());
                    let got = answer(ns.resolve(&queries[qi], modes[mi]).await);
                    assert_eq!(
                        got,
                        expected[&(qi, mi)],
                        "task {t} call {k}: {} {:?}",
                        common::show(&queries[qi]),
                        modes[mi]
                    );
                }
                per
            }));
        }
        let mut sum = 0;
        for t in tasks {
            sum += t.await.unwrap();
        }
        sum
    });
    assert_eq!(checked, TOTAL);
    eprintln!(
        "{TOTAL} resolutions from {TASKS} tasks: {:?}",
        started.elapsed()
    );
}
