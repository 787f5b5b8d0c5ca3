//! Differential fuzzing of [`RootFs::resolve`] against two oracles:
//!
//! 1. GNU `realpath -e` / `-m` / `-P` (its default mode, all but the last component must
//!    exist: `readlink -f`, [`Resolve::AllButLast`]), run (one process per tree and mode, `-z`) on the temp directory
//!    itself, for trees whose links are all relative: there the answers must agree exactly,
//!    modulo the root prefix, except for the contract's intended differences, which are asserted
//!    one by one (a loop or a chain of more than 40 links is `Loop`; `..` above the root stays
//!    at the root, detected by the walk's own clamp flag).
//! 2. The kernel, for `MustExist`: `openat2(root, path, RESOLVE_IN_ROOT)`, then the fd's
//!    `/proc/self/fd` link minus the root prefix, must equal our answer, and its errno our
//!    error's, in every tree (absolute links and `..` above the root included).
//!
//! Adversarial trees (absolute links, links to a directory that exists only in the caller's
//! view, `..` chains) must always stay inside the root: the object opened for a `MustExist`
//! answer really is under the root directory.
//!
//! `PROPTEST_CASES` sets the number of trees (default 256, a few seconds).

use super::*;
use crate::tests::os;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::fmt;
use std::os::unix::fs::symlink;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use Resolve::{AllButLast as L, AllowMissing as M, MustExist as E};

/// Bytes shown as an escaped string: shrunk failures stay readable.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.escape_ascii())
    }
}

/// What an entry of the tree is.
#[derive(Clone, Debug)]
enum Node {
    Dir,
    File,
    Link(Bytes),
    /// `len` links in a row: the entry, then hidden `.kN_i` siblings, the last pointing at
    /// `target`. Reaching the entry costs `len` hops.
    Chain {
        len: usize,
        target: Bytes,
    },
    /// An absolute link to a directory outside the root that exists in the caller's view
    /// (holding the names `a` and `b`).
    Outside,
}

#[derive(Clone, Debug)]
struct Entry {
    path: Bytes,
    node: Node,
}

#[derive(Clone)]
struct TreeSpec {
    entries: Vec<Entry>,
    absolute: bool,
}

impl fmt::Debug for TreeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tree (absolute links: {}) {{", self.absolute)?;
        for e in &self.entries {
            let p = e.path.0.escape_ascii();
            match &e.node {
                Node::Dir => writeln!(f, "  {p}/")?,
                Node::File => writeln!(f, "  {p}")?,
                Node::Link(t) => writeln!(f, "  {p} -> {t:?}")?,
                Node::Chain { len, target } => writeln!(f, "  {p} -> ({len} links) -> {target:?}")?,
                Node::Outside => writeln!(f, "  {p} -> <caller's dir outside the root>")?,
            }
        }
        write!(f, "}}")
    }
}

#[derive(Debug, Clone)]
struct Case {
    tree: TreeSpec,
    queries: Vec<Bytes>,
}

const NAMES: &[&[u8]] = &[b"a", b"b", b"c d", b"\xff\xfe", b"\xc3\xa9"];

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(NAMES).prop_map(<[u8]>::to_vec)
}

/// A piece of a query or link target: a name, `..`, `.` or empty (`//`).
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => name(),
        3 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(Vec::new()),
    ]
}

fn join(pieces: &[Vec<u8>]) -> Vec<u8> {
    pieces.join(&b'/')
}

fn link_target(absolute: bool) -> impl Strategy<Value = Bytes> {
    (
        proptest::collection::vec(piece(), 1..5),
        any::<bool>(),
        proptest::bool::weighted(0.15),
    )
        .prop_map(move |(mut pieces, lead, trailing)| {
            if pieces[0].is_empty() {
                pieces[0] = b".".to_vec();
            }
            let mut t = Vec::new();
            if absolute && lead {
                t.push(b'/');
            }
            t.extend(join(&pieces));
            if trailing {
                t.push(b'/');
            }
            Bytes(t)
        })
}

fn node(absolute: bool) -> BoxedStrategy<Node> {
    let chain = (
        proptest::sample::select(&[38usize, 39, 40, 41, 42, 50][..]),
        link_target(absolute),
    )
        .prop_map(|(len, target)| Node::Chain { len, target });
    let mut s = prop_oneof![
        3 => Just(Node::Dir),
        2 => Just(Node::File),
        5 => link_target(absolute).prop_map(Node::Link),
        1 => chain,
    ]
    .boxed();
    if absolute {
        s = prop_oneof![8 => s, 1 => Just(Node::Outside)].boxed();
    }
    s
}

fn tree() -> impl Strategy<Value = TreeSpec> {
    proptest::bool::weighted(0.3).prop_flat_map(|absolute| {
        let entry =
            (proptest::collection::vec(name(), 1..4), node(absolute)).prop_map(|(path, node)| {
                Entry {
                    path: Bytes(join(&path)),
                    node,
                }
            });
        proptest::collection::vec(entry, 1..24)
            .prop_map(move |entries| TreeSpec { entries, absolute })
    })
}

fn query() -> impl Strategy<Value = Bytes> {
    let piece = prop_oneof![
        8 => name(),
        2 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(Vec::new()),
    ];
    (
        proptest::collection::vec(piece, 0..7),
        proptest::bool::weighted(0.2),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(pieces, trailing, double)| {
            let mut q = vec![b'/'];
            if double {
                q.push(b'/');
            }
            q.extend(join(&pieces));
            if trailing {
                q.push(b'/');
            }
            Bytes(q)
        })
}

fn case() -> impl Strategy<Value = Case> {
    (tree(), proptest::collection::vec(query(), 1..28))
        .prop_map(|(tree, queries)| Case { tree, queries })
}

/// The temp directory `T` (canonical) with the root `T/root`, a sentinel file `T/sentinel`
/// and `T/outside/{a,b/}` that only the caller's view has.
struct Built {
    _tmp: tempfile::TempDir,
    top: PathBuf,
    root_path: PathBuf,
    root: RootFs,
}

/// Creates `rel` under `root` with every parent checked by lstat: no symlink is ever followed
/// while building (an absolute link in the tree must not make us write outside the temp dir).
/// Returns false when the entry cannot be placed (a parent is not a directory, or it exists).
fn place(root: &Path, rel: &[u8]) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    let parts: Vec<&[u8]> = rel.split(|&b| b == b'/').collect();
    let (last, parents) = parts.split_last()?;
    for p in parents {
        cur.push(OsStr::from_bytes(p));
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => std::fs::create_dir(&cur).ok()?,
        }
    }
    cur.push(OsStr::from_bytes(last));
    std::fs::symlink_metadata(&cur).is_err().then_some(cur)
}

fn build(tree: &TreeSpec) -> Built {
    let tmp = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(tmp.path()).unwrap();
    let root_path = top.join("root");
    std::fs::create_dir(&root_path).unwrap();
    std::fs::write(top.join("sentinel"), b"").unwrap();
    std::fs::create_dir_all(top.join("outside/b")).unwrap();
    std::fs::write(top.join("outside/a"), b"secret").unwrap();
    for (idx, e) in tree.entries.iter().enumerate() {
        let Some(at) = place(&root_path, &e.path.0) else {
            continue;
        };
        match &e.node {
            Node::Dir => std::fs::create_dir(&at).unwrap(),
            Node::File => std::fs::write(&at, b"f").unwrap(),
            Node::Link(t) => symlink(OsStr::from_bytes(&t.0), &at).unwrap(),
            Node::Outside => symlink(top.join("outside"), &at).unwrap(),
            Node::Chain { len, target } => {
                let dir = at.parent().unwrap().to_path_buf();
                let hidden = |i: usize| format!(".k{idx}_{i}");
                for i in 0..*len {
                    let here = if i == 0 {
                        at.clone()
                    } else {
                        dir.join(hidden(i))
                    };
                    if i + 1 == *len {
                        symlink(OsStr::from_bytes(&target.0), &here).unwrap();
                    } else {
                        symlink(hidden(i + 1), &here).unwrap();
                    }
                }
            }
        }
    }
    let root = RootFs::open(&root_path).unwrap();
    Built {
        _tmp: tmp,
        top,
        root_path,
        root,
    }
}

/// An answer in a form all three resolvers share: a host path, or an errno.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Path(Bytes),
    Errno(i32),
}

fn strip_root(root: &Path, local: &[u8]) -> Option<Vec<u8>> {
    let rest = local.strip_prefix(root.as_os_str().as_bytes())?;
    match rest {
        [] => Some(b"/".to_vec()),
        [b'/', ..] => Some(rest.to_vec()),
        _ => None,
    }
}

fn errno_of_gnu_message(msg: &str) -> i32 {
    match msg.trim_end() {
        "No such file or directory" => 2,
        "Not a directory" => 20,
        "Too many levels of symbolic links" => 40,
        "Permission denied" => 13,
        "File name too long" => 36,
        other => panic!("unexpected realpath message {other:?}"),
    }
}

/// GNU's answer to one query: a local path, an errno, or nothing within the time allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Gnu {
    Path(Vec<u8>),
    Errno(i32),
    /// GNU realpath (coreutils 9.1) never ends on a link that grows its own path
    /// (`a -> a/b`): its loop check looks for a repeated (link, rest of the path) pair, and the
    /// rest grows for ever, as its memory does. The kernel and the contract say ELOOP.
    Diverged,
    /// A path outside the root (only after a walk that goes on past where ours stopped).
    Escaped,
}

/// GNU realpath over many queries in one process, under `timeout -s KILL`:
/// `realpath -z <flag> -- R+q1 S R+q2 S …`, with the sentinel `S` after each query so that
/// failed queries (no output, one stderr line each) can be told apart. `None` when killed.
fn gnu_batch(b: &Built, flag: &str, queries: &[&Bytes], limit: &str) -> Option<Vec<Gnu>> {
    let sentinel = b.top.join("sentinel");
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", limit, "realpath", "-z", flag, "--"]);
    for q in queries {
        let mut local = b.root_path.as_os_str().as_bytes().to_vec();
        local.extend_from_slice(&q.0);
        cmd.arg(OsStr::from_bytes(&local)).arg(&sentinel);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("timeout + GNU realpath run");
    if !matches!(out.status.code(), Some(0) | Some(1)) {
        return None;
    }
    let mut tokens = out.stdout.split(|&b| b == 0);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut errors = stderr.lines();
    let s = sentinel.as_os_str().as_bytes();
    let mut answers = Vec::new();
    for q in queries {
        let tok = tokens.next().expect("realpath output for every query");
        if tok == s {
            let line = errors.next().expect("one stderr line per failed query");
            let (_, msg) = line.rsplit_once(": ").expect("realpath: NAME: MESSAGE");
            answers.push(Gnu::Errno(errno_of_gnu_message(msg)));
        } else {
            answers.push(Gnu::Path(tok.to_vec()));
            assert_eq!(
                tokens.next(),
                Some(s),
                "sentinel after {q:?} ({:?})",
                out.status
            );
        }
    }
    Some(answers)
}

/// How many looping queries per tree and mode are asked one by one after a batch timed out.
const DIVERGING_PROBES: usize = 2;

/// GNU's answers to `queries` (`None` where not asked). Queries we resolved without a loop are
/// the same walk for GNU, so they must finish: one batch with a generous guard. Queries we
/// found looping may make GNU run for ever: a short batch, then a few one by one.
///
/// Queries where our walk clamped a `..` at the root are not asked: GNU climbs out of the temp
/// directory there, into whatever this machine's `/tmp` and `/` hold, and the answer is not
/// compared anyway.
fn gnu_realpath(
    b: &Built,
    flag: &str,
    queries: &[Bytes],
    ours: &[(Result<PathBuf, PathError>, bool)],
) -> Vec<Option<Gnu>> {
    let mut answers = vec![None; queries.len()];
    let asked = (0..queries.len()).filter(|&i| !ours[i].1);
    let (looping, plain): (Vec<usize>, Vec<usize>) =
        asked.partition(|&i| matches!(ours[i].0, Err(PathError::Loop { .. })));
    let pick = |idx: &[usize]| idx.iter().map(|&i| &queries[i]).collect::<Vec<_>>();
    let got =
        gnu_batch(b, flag, &pick(&plain), "20").expect("GNU realpath ends on paths without loops");
    for (&i, g) in plain.iter().zip(got) {
        answers[i] = Some(g);
    }
    if looping.is_empty() {
        return answers;
    }
    if let Some(got) = gnu_batch(b, flag, &pick(&looping), "0.15") {
        for (&i, g) in looping.iter().zip(got) {
            answers[i] = Some(g);
        }
        return answers;
    }
    for &i in looping.iter().take(DIVERGING_PROBES) {
        answers[i] = Some(match gnu_batch(b, flag, &[&queries[i]], "0.1") {
            Some(mut g) => g.remove(0),
            None => Gnu::Diverged,
        });
    }
    answers
}

/// The kernel's `RESOLVE_IN_ROOT` answer for `q`.
fn kernel(b: &Built, q: &[u8]) -> Answer {
    match open_in_root(b, OsStr::from_bytes(q), OFlags::PATH | OFlags::CLOEXEC) {
        Ok(fd) => Answer::Path(Bytes(proc_fd_path(b, &fd))),
        Err(e) => Answer::Errno(e.raw_os_error()),
    }
}

/// `openat2(root, p, flags, RESOLVE_IN_ROOT)`, asked again on an answer that is no verdict
/// about `p`:
/// - EAGAIN: a `..` raced a rename or mount anywhere on the system (openat2(2));
/// - ELOOP: the kernel counts a lookup's links once per open, and an RCU walk that has to
///   restart in ref-walk mode (a concurrent mount or rename changed the sequence counts it
///   checks) keeps the links it already followed (fs/namei.c: `total_link_count` is set in
///   `set_nameidata`, not in `path_init`), so a chain of 21 to 40 links can answer ELOOP now
///   and then. A real loop answers ELOOP every time.
fn open_in_root(b: &Built, p: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    let open = || {
        rustix::fs::openat2(
            b.root.as_fd(),
            p,
            flags,
            Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT,
        )
    };
    let start = std::time::Instant::now();
    let (mut r, mut tries) = (open(), 0u32);
    loop {
        match r {
            Err(rustix::io::Errno::LOOP) if tries < 1000 => {}
            // A burst of mounts elsewhere (another test, a benchmark mounting in a loop) keeps
            // EAGAIN up for milliseconds, longer than a thousand immediate tries: up to 10 s,
            // pausing a millisecond after the first hundred.
            Err(rustix::io::Errno::AGAIN)
                if start.elapsed() < std::time::Duration::from_secs(10) =>
            {
                if tries > 100 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            _ => return r,
        }
        tries += 1;
        r = open();
    }
}

/// Where an fd really is, as a host path; panics if it is outside the root.
fn proc_fd_path(b: &Built, fd: &OwnedFd) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    let local = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    match strip_root(&b.root_path, local.as_os_str().as_bytes()) {
        Some(p) => p,
        None => panic!("fd outside the root: {}", local.display()),
    }
}

fn ours(r: &Result<PathBuf, PathError>) -> Answer {
    match r {
        Ok(p) => Answer::Path(Bytes(p.as_os_str().as_bytes().to_vec())),
        Err(e) => Answer::Errno(e.raw_os_error().unwrap_or(-1)),
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// How often each intended difference (and each interesting path) was seen, over a run.
#[derive(Default)]
struct Seen {
    gnu_compared: AtomicUsize,
    gnu_equal_ok: AtomicUsize,
    gnu_equal_err: AtomicUsize,
    loop_gnu_m_hides: AtomicUsize,
    gnu_diverges: AtomicUsize,
    loop_not_asked: AtomicUsize,
    long_chain_gnu_follows: AtomicUsize,
    clamped: AtomicUsize,
    kernel_ok: AtomicUsize,
    kernel_loop: AtomicUsize,
    outside_refused: AtomicUsize,
    dirs_made: AtomicUsize,
    fast_path: AtomicUsize,
    cached_open: AtomicUsize,
}

fn check(case: &Case, seen: &Seen) -> Result<(), TestCaseError> {
    let b = build(&case.tree);
    let e: Vec<_> = case
        .queries
        .iter()
        .map(|q| b.root.resolve_clamped(os(&q.0), E))
        .collect();
    let m: Vec<_> = case
        .queries
        .iter()
        .map(|q| b.root.resolve_clamped(os(&q.0), M))
        .collect();
    let l: Vec<_> = case
        .queries
        .iter()
        .map(|q| b.root.resolve_clamped(os(&q.0), L))
        .collect();
    // The kernel's answer (resolve_by_kernel) against the walk (resolve_clamped): wherever
    // the kernel answers, the same path; and how often it answered. `resolve` itself (the
    // kernel's answer first, the walk as fallback) and its cached-only variant agree too.
    for (q, (walk, _)) in case.queries.iter().zip(&e) {
        prop_assert_eq!(ours(&b.root.resolve(os(&q.0), E)), ours(walk), "{:?}", q);
        if let Ok(Some(c)) = b.root.resolve_cached(os(&q.0), &AllLocal) {
            prop_assert_eq!(Some(&c), walk.as_ref().ok(), "cached: {:?}", q);
        }
        if let Ok(Some(k)) = b.root.resolve_by_kernel(os(&q.0)) {
            prop_assert_eq!(Some(&k), walk.as_ref().ok(), "{:?}", q);
            seen.fast_path.fetch_add(1, Relaxed);
        }
        // The cached mount-target open (the native mount's walk on the caller's thread)
        // opens the object the walk opens, by both symlink rules, or leaves it to the walk;
        // the cached existence check answers as a stat by the walk would.
        for lookup in [
            TargetLookup::RefuseFinalSymlink,
            TargetLookup::FollowFinalSymlink,
        ] {
            for local in [None, Some(&AllLocal as &dyn LocalMounts)] {
                let Ok(Some(cfd)) = b.root.open_mount_target_cached(os(&q.0), &lookup, local)
                else {
                    continue;
                };
                let walked = b.root.open_mount_target(os(&q.0), &lookup);
                let Ok((_, wfd)) = walked else {
                    return Err(TestCaseError::fail(format!(
                        "cached open of {q:?} ({lookup:?}) where the walk fails"
                    )));
                };
                let (cs, ws) = (rustix::fs::fstat(&cfd), rustix::fs::fstat(&wfd));
                let same = |a: &rustix::fs::Stat, b: &rustix::fs::Stat| {
                    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
                };
                prop_assert!(
                    matches!((&cs, &ws), (Ok(a), Ok(b)) if same(a, b)),
                    "cached open of {:?}: another object",
                    q
                );
                seen.cached_open.fetch_add(1, Relaxed);
            }
        }
        if let Ok(Some(exists)) = b.root.exists_cached(os(&q.0)) {
            prop_assert_eq!(
                exists,
                b.root.stat(os(&q.0), true).is_ok(),
                "exists_cached: {:?}",
                q
            );
        }
    }
    let gnu = (!case.tree.absolute).then(|| {
        // All modes at once: a diverging query costs a timeout, which is waiting, not work.
        std::thread::scope(|s| {
            let m = s.spawn(|| gnu_realpath(&b, "-m", &case.queries, &m));
            let l = s.spawn(|| gnu_realpath(&b, "-P", &case.queries, &l));
            let e = gnu_realpath(&b, "-e", &case.queries, &e);
            (
                e,
                m.join().expect("GNU -m thread"),
                l.join().expect("GNU -P thread"),
            )
        })
    });
    for (i, q) in case.queries.iter().enumerate() {
        let (oe, om, ol) = (ours(&e[i].0), ours(&m[i].0), ours(&l[i].0));
        // Oracle 2, every tree: the kernel agrees with MustExist, path and errno alike.
        let k = kernel(&b, &q.0);
        prop_assert_eq!(&oe, &k, "MustExist vs kernel RESOLVE_IN_ROOT for {:?}", q);
        match &k {
            Answer::Path(_) => seen.kernel_ok.fetch_add(1, Relaxed),
            Answer::Errno(40) => seen.kernel_loop.fetch_add(1, Relaxed),
            Answer::Errno(_) => 0,
        };
        // Never outside the root: the object opened is under the root directory.
        if let Answer::Path(p) = &oe {
            let (host, fd) = b.root.open_resolved(os(&q.0), true).unwrap();
            prop_assert_eq!(host.as_os_str().as_bytes(), &p.0[..]);
            prop_assert_eq!(&proc_fd_path(&b, &fd), &p.0);
        }
        if case.tree.absolute && q.0.windows(2).any(|w| w == b"/a") && oe == Answer::Errno(2) {
            seen.outside_refused.fetch_add(1, Relaxed);
        }
        // Answers are normal and stable; MustExist's answer is AllowMissing's too.
        for (mode, r) in [(E, &e[i].0), (M, &m[i].0), (L, &l[i].0)] {
            if let Ok(p) = r {
                prop_assert_eq!(&normalize(p), p);
                let again = b.root.resolve(p, mode).unwrap();
                prop_assert_eq!(&again, p, "resolving the answer again ({:?})", mode);
            }
        }
        if matches!(oe, Answer::Path(_) | Answer::Errno(40)) {
            prop_assert_eq!(
                &om,
                &oe,
                "AllowMissing agrees where MustExist succeeds or loops"
            );
        }
        // AllButLast lies between the two: MustExist's answer where it has one (or loops), and
        // where it answers, AllowMissing gives the same.
        if matches!(oe, Answer::Path(_) | Answer::Errno(40)) {
            prop_assert_eq!(
                &ol,
                &oe,
                "AllButLast agrees where MustExist succeeds or loops"
            );
        }
        if matches!(ol, Answer::Path(_)) {
            prop_assert_eq!(&om, &ol, "AllowMissing agrees where AllButLast succeeds");
        }
        if !matches!(om, Answer::Path(_) | Answer::Errno(40)) {
            return Err(TestCaseError::fail(format!(
                "AllowMissing failed with {om:?} for {q:?}"
            )));
        }
        let Some((ge, gm, gl)) = &gnu else { continue };
        // Oracle 1, relative trees. Where the walk clamped a `..` at the root, GNU (run on the
        // directory itself) climbs above it: the intended difference; the kernel check above
        // covers MustExist there.
        let strip = |g: &Option<Gnu>| match g {
            None => None,
            Some(Gnu::Path(p)) => Some(match strip_root(&b.root_path, p) {
                Some(h) => Gnu::Path(h),
                None => Gnu::Escaped,
            }),
            Some(other) => Some(other.clone()),
        };
        for (mode, r, g) in [
            (E, &e[i], strip(&ge[i])),
            (M, &m[i], strip(&gm[i])),
            (L, &l[i], strip(&gl[i])),
        ] {
            let (r, clamped) = (&r.0, r.1);
            if clamped {
                seen.clamped.fetch_add(1, Relaxed);
                continue;
            }
            let Some(g) = g else {
                seen.loop_not_asked.fetch_add(1, Relaxed);
                continue;
            };
            seen.gnu_compared.fetch_add(1, Relaxed);
            match (r, &g) {
                (Ok(p), Gnu::Path(h)) if p.as_os_str().as_bytes() == &h[..] => {
                    seen.gnu_equal_ok.fetch_add(1, Relaxed);
                }
                (Err(err), Gnu::Errno(n)) if err.raw_os_error() == Some(*n) => {
                    seen.gnu_equal_err.fetch_add(1, Relaxed);
                }
                (Err(PathError::Loop { .. }), Gnu::Diverged) => {
                    seen.gnu_diverges.fetch_add(1, Relaxed);
                }
                // GNU -m hides loops (kubernetes/kubernetes#63143) and follows long chains; the contract
                // says Loop.
                (Err(PathError::Loop { .. }), Gnu::Path(_) | Gnu::Escaped) if mode == M => {
                    seen.loop_gnu_m_hides.fetch_add(1, Relaxed);
                }
                // GNU -e (and its default mode) follows chains of more than 40 links (and then
                // succeeds or fails elsewhere); the kernel and the contract say ELOOP.
                (Err(PathError::Loop { .. }), _) if mode == E => {
                    prop_assert_eq!(&k, &Answer::Errno(40));
                    seen.long_chain_gnu_follows.fetch_add(1, Relaxed);
                }
                (Err(PathError::Loop { .. }), _) if mode == L => {
                    // The walk is MustExist's up to the last component, and that loops.
                    prop_assert_eq!(&oe, &Answer::Errno(40));
                    seen.long_chain_gnu_follows.fetch_add(1, Relaxed);
                }
                (r, g) => {
                    return Err(TestCaseError::fail(format!(
                        "{mode:?} {q:?}: ours {r:?}, GNU realpath {g:?}"
                    )));
                }
            }
        }
    }
    // File operations on the same tree (they change it, so they come last): whatever they do,
    // they do it inside the root, and what they report is what the kernel then sees.
    for q in case.queries.iter().take(8) {
        let p = os(&q.0);
        let in_root = |want_dir: bool| {
            let flags = OFlags::PATH | OFlags::CLOEXEC;
            let flags = if want_dir {
                flags | OFlags::DIRECTORY
            } else {
                flags
            };
            open_in_root(&b, p.as_ref(), flags)
        };
        if b.root.create_dir_all(p).is_ok() {
            prop_assert!(
                in_root(true).is_ok(),
                "create_dir_all({:?}) made no directory",
                q
            );
            seen.dirs_made.fetch_add(1, Relaxed);
        }
        if b.root.create_file(p).is_ok() {
            prop_assert!(in_root(false).is_ok(), "create_file({:?}) made nothing", q);
        }
    }
    prop_assert_eq!(listing(&b.top), vec!["outside", "root", "sentinel"]);
    prop_assert_eq!(listing(&b.top.join("outside")), vec!["a", "b"]);
    prop_assert!(listing(&b.top.join("outside/b")).is_empty());
    prop_assert_eq!(std::fs::read(b.top.join("outside/a")).unwrap(), b"secret");
    Ok(())
}

#[test]
fn differential_against_gnu_realpath_and_the_kernel() {
    let _no_renames = crate::kernel_oracle_lock();
    let config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let cases = config.cases;
    let seen = Seen::default();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(), |c| check(&c, &seen));
    if let Err(e) = result {
        panic!("{e}");
    }
    let n = |a: &AtomicUsize| a.load(Relaxed);
    eprintln!(
        "{cases} trees: compared with GNU {} (equal paths {}, equal errors {}); intended differences: \
         loops hidden by GNU -m {}, GNU never ending {} (+{} looping queries not asked), chains > 40 followed by GNU {}, `..` clamped at the root {}; \
         kernel paths {}, kernel ELOOP {}; absolute links to the caller's side refused {}; \
         directories made {}; MustExist answered by the kernel's answer (resolve_by_kernel) {}; \
         mount targets opened from the caches (open_mount_target_cached) {}",
        n(&seen.gnu_compared),
        n(&seen.gnu_equal_ok),
        n(&seen.gnu_equal_err),
        n(&seen.loop_gnu_m_hides),
        n(&seen.gnu_diverges),
        n(&seen.loop_not_asked),
        n(&seen.long_chain_gnu_follows),
        n(&seen.clamped),
        n(&seen.kernel_ok),
        n(&seen.kernel_loop),
        n(&seen.outside_refused),
        n(&seen.dirs_made),
        n(&seen.fast_path),
        n(&seen.cached_open),
    );
    assert!(
        n(&seen.fast_path) > 0,
        "the kernel never answered: the comparison with the walk checked nothing"
    );
    // With a real run, every rule must have been exercised (a fuzzer that never reaches a
    // loop proves nothing about loops).
    if cases >= 128 {
        for (what, a) in [
            ("GNU equal paths", &seen.gnu_equal_ok),
            ("GNU equal errors", &seen.gnu_equal_err),
            ("loops hidden by GNU -m", &seen.loop_gnu_m_hides),
            ("chains > 40 followed by GNU", &seen.long_chain_gnu_follows),
            ("`..` clamped at the root", &seen.clamped),
            ("kernel ELOOP", &seen.kernel_loop),
            ("absolute links to the caller's side", &seen.outside_refused),
            ("directories made", &seen.dirs_made),
            ("mount targets opened from the caches", &seen.cached_open),
        ] {
            assert!(n(a) > 0, "the fuzzer never exercised: {what}");
        }
    }
}

/// Every mount local, by mountinfo ID: the cached lookup on its own, without a type rule.
struct AllLocal;

impl crate::LocalMounts for AllLocal {
    fn unique_ids(&self) -> bool {
        false
    }

    fn local(&self, mnt_id: u64) -> Option<u64> {
        Some(mnt_id)
    }
}
