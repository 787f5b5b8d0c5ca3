//! Finding and killing everything a command started: the two containment levels.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use hostexec_api::Lingering;
use rustix::process::{kill_process_group, Pid, Signal};

use crate::process::{all_processes, now_ticks, read_stat, Process, Stat};

/// How the processes of a command are found and killed: the two containment levels.
///
/// **cgroup v2** ([`Containment::Cgroup`]): each command gets a child group of a directory
/// of a writable cgroup2 hierarchy; its leader is moved there by the spawner thread right
/// after `posix_spawn` returns, and every process it starts afterwards is born there, whatever it does
/// (`setsid`, a new process group, a double fork: a process cannot leave its cgroup without
/// write access to another group's `cgroup.procs`). Stopping writes `1` to `cgroup.kill`
/// (Linux ≥ 5.14), which SIGKILLs every member at once, including processes forking at that
/// moment. The gap: a process the command forks before the move (the move follows the
/// `execve` at once, but a loaded machine may run the command first) is not in the group;
/// the walk below runs as well and catches it.
///
/// **Walk** (always; the only level without a writable cgroup2 hierarchy, e.g. on cgroup v1
/// hosts): this process becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`, see prctl(2)),
/// so a descendant whose parent exits is re-parented to this process instead of to the
/// host's init and stays findable. Stopping scans `/proc` for the command's processes: its
/// descendants through their parent links, members of process groups and sessions that
/// its processes lead (a `setsid` or `setpgid` escaper is still a child of one of them, or
/// leads its own), and processes this process adopted (children of its main thread that it
/// did not spawn) that started while this command, and no other, was running. Every process
/// found is frozen with SIGSTOP (a stopped process cannot fork), the scan repeats until it
/// finds nothing new, then all of them get SIGKILL through pidfds (never a reused PID), and
/// adopted ones are reaped. Guarantee: no descendant survives, whatever it did, provided it
/// did not escape before the subreaper was set (it is set before the first command) and,
/// for an adopted process, that its start can be attributed to exactly one command (an
/// orphan that started while two commands of this process were running is killed only
/// when a parent link, group or session ties it to the one being stopped). The kernel
/// re-parents an orphan to a subreaper only from a dying parent in the subreaper's own PID
/// namespace (`find_new_reaper` in `kernel/exit.c`): a command that runs in another PID
/// namespace (the target's, joined) leaves its orphans to that namespace's init, and the
/// walk finds them only through a group or session link; the cgroup2 level has no such gap.
///
/// The subreaper has a cost for the whole process: orphans of *any* child of this process
/// are re-parented here rather than to init. Orphans attributed to a command that exited
/// normally (a daemon it started, e.g. a FUSE daemon of `mount`) are left running and reaped
/// when they end; others are left to the application.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Containment {
    /// The `/proc` walk under a child subreaper only.
    #[default]
    Walk,
    /// A child group per command under this directory of a cgroup2 hierarchy (as this
    /// process sees it), plus the walk.
    Cgroup(PathBuf),
}

impl Containment {
    /// [`Containment::Cgroup`] on the cgroup2 group of this process when one is mounted and
    /// writable (a child group can be made there), else [`Containment::Walk`].
    pub fn detect() -> Containment {
        match own_cgroup2_dir() {
            Some(dir) if probe_cgroup_dir(&dir).is_ok() => Containment::Cgroup(dir),
            _ => Containment::Walk,
        }
    }
}

/// This process's cgroup2 group directory, from `/proc/self/cgroup` (`0::/path`) and the
/// first `cgroup2` mount in `/proc/self/mountinfo` whose root is `/`.
fn own_cgroup2_dir() -> Option<PathBuf> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let fstype = post.split(' ').next()?;
        let f: Vec<&str> = pre.split(' ').collect();
        if fstype == "cgroup2" && f.get(3) == Some(&"/") {
            f.get(4).map(PathBuf::from)
        } else {
            None
        }
    })?;
    Some(mount.join(rel.trim_start_matches('/')))
}

/// Whether a child group can be made (and removed) in `dir`, with `cgroup.kill` present.
pub(crate) fn probe_cgroup_dir(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!("hostexec-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)?;
    let ok = probe.join("cgroup.kill").exists();
    std::fs::remove_dir(&probe)?;
    if ok {
        Ok(())
    } else {
        Err(io::Error::other("no cgroup.kill (Linux < 5.14)"))
    }
}

/// A command's own cgroup2 group; removed when dropped if it is empty.
#[derive(Debug)]
pub(crate) struct Group {
    dir: PathBuf,
}

impl Group {
    /// Makes a new group under `base` and moves `pid` into it.
    pub(crate) fn new(base: &Path, pid: u32) -> io::Result<Group> {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = base.join(format!(
            "hostexec-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&dir)?;
        let g = Group { dir };
        std::fs::write(g.dir.join("cgroup.procs"), pid.to_string())?;
        Ok(g)
    }

    fn members(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    fn kill(&self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        match std::fs::remove_dir(&self.dir) {
            // EBUSY: members are still being torn down after a kill, or a daemon outlives a
            // normal exit; retry in the background for a while, then leave it.
            Err(e) if e.raw_os_error() == Some(16) => {
                let dir = std::mem::take(&mut self.dir);
                let _ = std::thread::Builder::new()
                    .name("hostexec-cgroup".into())
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        for _ in 0..100 {
                            std::thread::sleep(Duration::from_millis(20));
                            if std::fs::remove_dir(&dir).is_ok() {
                                return;
                            }
                        }
                    });
            }
            _ => {}
        }
    }
}

/// The commands of this process, for attributing adopted orphans.
#[derive(Default)]
struct Registry {
    /// Live leaders: (pid, start tick, mount namespace).
    live: Vec<(u32, u64, Option<String>)>,
    /// Recently ended commands: (pid, start, end) ticks, mount namespace.
    ended: VecDeque<(u32, u64, u64, Option<String>)>,
}

/// The mount namespace of `pid` (`mnt:[inode]`), to tell commands on different hosts apart.
fn mount_ns(pid: u32) -> Option<String> {
    namespace_id(Path::new(&format!("/proc/{pid}/ns/mnt")))
}

/// The identity (`mnt:[inode]`) of the namespace file `path` (a `/proc/PID/ns/*` link).
pub(crate) fn namespace_id(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Whether two mount namespaces may be the same (unknown counts as "may").
fn same_ns(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

fn registry() -> &'static Mutex<Registry> {
    static R: OnceLock<Mutex<Registry>> = OnceLock::new();
    R.get_or_init(Mutex::default)
}

fn lock_registry() -> std::sync::MutexGuard<'static, Registry> {
    registry().lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes this process a child subreaper, once. Errors are ignored: the walk then finds
/// fewer escapers, which the docs of [`Containment`] say.
pub(crate) fn ensure_subreaper() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    });
}

/// A command's leader, registered while it runs.
#[derive(Debug)]
pub(crate) struct Tracked {
    pub(crate) pid: u32,
    pub(crate) start: u64,
    mnt: Option<String>,
}

impl Tracked {
    /// Registers the leader `pid`; `mnt` is the mount namespace its processes run in when the
    /// caller knows it (a leader that joins it after its exec, as util-linux nsenter does,
    /// is still in the caller's now), else read from the leader.
    pub(crate) fn new(pid: u32, mnt: Option<String>) -> Tracked {
        let start = read_stat(pid).map_or_else(now_ticks, |s| s.start);
        let mnt = mnt.or_else(|| mount_ns(pid));
        lock_registry().live.push((pid, start, mnt.clone()));
        Tracked { pid, start, mnt }
    }
}

impl Tracked {
    /// The command has ended (exited, or everything it started was killed): from now on it
    /// starts nothing. Idempotent.
    pub(crate) fn end(&self) {
        let mut r = lock_registry();
        let Some(i) = r.live.iter().position(|(p, _, _)| *p == self.pid) else {
            return;
        };
        let (pid, start, mnt) = r.live.remove(i);
        r.ended.push_back((pid, start, now_ticks(), mnt));
        while r.ended.len() > 1024 {
            r.ended.pop_front();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.end();
    }
}

/// Whether an adopted process (`s`) can only be this command's: it started after the
/// command and in its mount namespace, and no other command of this process in that mount
/// namespace was running when it started.
fn attributable(me: &Tracked, s: &Stat) -> bool {
    if s.start < me.start {
        return false;
    }
    let ns = mount_ns(s.pid);
    if !same_ns(&ns, &me.mnt) {
        return false;
    }
    let r = lock_registry();
    let others_live = r
        .live
        .iter()
        .any(|(p, st, m)| *p != me.pid && *st <= s.start && same_ns(m, &ns));
    let others_ended = r
        .ended
        .iter()
        .any(|(p, st, e, m)| *p != me.pid && *st <= s.start && s.start < *e && same_ns(m, &ns));
    !others_live && !others_ended
}

fn is_leader(pid: u32) -> bool {
    lock_registry().live.iter().any(|(p, _, _)| *p == pid)
}

/// Children of this process's main thread (where the kernel re-parents orphans when this
/// process is their subreaper) that are not leaders of running commands.
fn adopted() -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_to_string(format!("/proc/{me}/task/{me}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&p| !is_leader(p))
        .collect()
}

/// The command's processes (other than its leader) not yet in `held`.
fn collect(
    leader: &Process,
    me: &Tracked,
    group: Option<&Group>,
    held: &HashMap<u32, Process>,
) -> Vec<u32> {
    let table: Vec<Stat> = all_processes();
    let self_pid = std::process::id();
    let adopted: HashSet<u32> = adopted()
        .into_iter()
        .filter(|p| {
            table
                .iter()
                .find(|s| s.pid == *p)
                .is_some_and(|s| attributable(me, s))
        })
        .collect();
    let mut inside: HashSet<u32> = held.keys().copied().collect();
    inside.insert(leader.pid());
    if let Some(g) = group {
        inside.extend(g.members());
    }
    let mut groups: HashSet<u32> = HashSet::from([leader.pid()]);
    let mut sessions: HashSet<u32> = HashSet::new();
    for s in &table {
        if inside.contains(&s.pid) {
            if s.pgrp == s.pid {
                groups.insert(s.pid);
            }
            if s.session == s.pid {
                sessions.insert(s.pid);
            }
        }
    }
    loop {
        let mut changed = false;
        for s in &table {
            if s.pid == self_pid || inside.contains(&s.pid) || matches!(s.state, 'Z' | 'X') {
                continue;
            }
            if inside.contains(&s.ppid)
                || groups.contains(&s.pgrp)
                || sessions.contains(&s.session)
                || adopted.contains(&s.pid)
            {
                inside.insert(s.pid);
                if s.pgrp == s.pid {
                    groups.insert(s.pid);
                }
                if s.session == s.pid {
                    sessions.insert(s.pid);
                }
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    inside
        .into_iter()
        .filter(|p| *p != leader.pid() && !held.contains_key(p))
        .collect()
}

fn signal_group(pgid: u32, sig: Signal) {
    if let Some(p) = i32::try_from(pgid).ok().and_then(Pid::from_raw) {
        let _ = kill_process_group(p, sig);
    }
}

/// After a command ends: hands adopted processes attributed to it to the background reaper
/// (after a normal exit they keep running: a daemon it started is not ours to kill; after a
/// stop they are dying) and reaps those that ended (zombies).
pub(crate) fn adopt_leftovers(me: &Tracked) {
    for pid in adopted() {
        let Some(s) = read_stat(pid) else { continue };
        if !attributable(me, &s) {
            continue;
        }
        if let Ok(p) = Process::open(pid) {
            crate::reaper::reap_later(p);
        }
    }
}

/// How long the leader may take to be reaped after SIGKILL before it is reported as
/// lingering and left to the background reaper.
pub const REAP_WAIT: Duration = Duration::from_millis(500);

/// Stops a command: SIGTERM to everything it started, up to `grace` for the leader to end,
/// then freeze-then-kill of everything still there, and a bounded wait for the leader.
/// Blocking (run on a thread of its own). The leader is reaped, or handed to the background
/// reaper and reported as [`Lingering`].
pub(crate) fn stop(
    leader: &std::sync::Arc<Process>,
    me: &Tracked,
    group: Option<&Group>,
    grace: Duration,
) -> Option<Lingering> {
    let mut held: HashMap<u32, Process> = HashMap::new();
    // Before SIGTERM, while the parent links still hold.
    hold(collect(leader, me, group, &held), &mut held, None);
    leader.signal(Signal::TERM);
    signal_group(leader.pid(), Signal::TERM);
    for p in held.values() {
        p.signal(Signal::TERM);
    }
    if !grace.is_zero() {
        leader.wait_ended(grace);
    }
    // Freeze: nothing stopped can fork; repeat until a scan finds nothing new.
    leader.signal(Signal::STOP);
    signal_group(leader.pid(), Signal::STOP);
    for p in held.values() {
        p.signal(Signal::STOP);
    }
    for _ in 0..1000 {
        let new = collect(leader, me, group, &held);
        if new.is_empty() {
            break;
        }
        hold(new, &mut held, Some(Signal::STOP));
    }
    if let Some(g) = group {
        g.kill();
    }
    leader.signal(Signal::KILL);
    signal_group(leader.pid(), Signal::KILL);
    for p in held.values() {
        p.signal(Signal::KILL);
    }
    // Nothing of it can start a process any more.
    me.end();
    let lingering = if leader.wait_ended(REAP_WAIT) {
        let _ = leader.try_reap();
        None
    } else {
        crate::reaper::reap_later_arc(std::sync::Arc::clone(leader));
        Some(Lingering::new(
            leader.pid(),
            read_stat(leader.pid()).map_or('?', |s| s.state),
        ))
    };
    // Descendants re-parented to this process (the subreaper) are reaped here or by the
    // background reaper; the rest by their parents or init.
    let mut lingering = lingering;
    for (pid, p) in held {
        if p.wait_ended(Duration::from_millis(100)) && matches!(p.try_reap(), Ok(Some(_))) {
            continue;
        }
        if !p.has_ended() && lingering.is_none() {
            lingering = Some(Lingering::new(pid, read_stat(pid).map_or('?', |s| s.state)));
        }
        // Not ended yet, or ended while its (dying) parent was still there: reaped in the
        // background once it is ours, or by its parent.
        crate::reaper::reap_later(p);
    }
    // Adopted ones that had already ended (zombies, never held) or end now.
    adopt_leftovers(me);
    lingering
}

fn hold(pids: Vec<u32>, held: &mut HashMap<u32, Process>, sig: Option<Signal>) {
    for pid in pids {
        if let Ok(p) = Process::open(pid) {
            if let Some(sig) = sig {
                p.signal(sig);
            }
            held.insert(pid, p);
        }
    }
}
