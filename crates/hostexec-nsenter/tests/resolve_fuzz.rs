//! Differential fuzzing of host path resolution (proptest).
//!
//! Random trees of directories, files and symlinks (relative, absolute, `..` chains, dangling,
//! loops, chains longer than 40, names with spaces and non-UTF-8 bytes, trailing slashes,
//! `//`) are built in a sandbox host; random queries are resolved by `NsEnter` and by two
//! oracles:
//!
//! 1. GNU `realpath -e` / `-m`, run *inside* the sandbox (util-linux nsenter);
//! 2. the kernel: `openat2(RESOLVE_IN_ROOT)` on the host root descriptor, for existence, error
//!    kind and identity (device, inode) of the result.
//!
//! The contract's intended differences from GNU are asserted, not skipped:
//! - a loop, or more than 40 hops, is `Loop` in both modes (GNU `-m` returns the unresolved
//!   path, kubernetes/kubernetes#63143; GNU has no hop limit) — the kernel must then say ELOOP too;
//! - with `AllowMissing`, a non-directory used as a directory is `NotADirectory` (GNU `-m`
//!   carries on lexically) — the kernel must then say ENOTDIR too.
//!
//! `PROPTEST_CASES` sets the number of trees (default 250, each with up to 6 queries in both
//! modes: about 1700 differential checks in about a minute).

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hostexec_api::{PathError, PathResolver, Resolve};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const NAMES: &[&[u8]] = &[b"a", b"b", b"c d", b"\xff\xfe", b"e"];

#[derive(Clone, Debug)]
enum Node {
    Dir,
    File,
    /// A symlink; `{base}` in the target stands for the case's base directory.
    Link(Vec<u8>),
}

#[derive(Clone)]
struct Case {
    entries: Vec<(Vec<u8>, Node)>,
    /// A chain `chain0 -> chain1 -> … -> chain{n-1} -> <end>` at the base.
    chain: Option<(usize, Vec<u8>)>,
    queries: Vec<Vec<u8>>,
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\u{fffd}', "\\xff")
}

impl fmt::Debug for Case {
    // Shrunk failures print as a readable tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "tree (relative to {{base}}):")?;
        for (p, n) in &self.entries {
            match n {
                Node::Dir => writeln!(f, "  {}/", show(p))?,
                Node::File => writeln!(f, "  {}", show(p))?,
                Node::Link(t) => writeln!(f, "  {} -> {}", show(p), show(t))?,
            }
        }
        if let Some((n, end)) = &self.chain {
            writeln!(
                f,
                "  chain0 -> chain1 -> ... -> chain{} -> {}",
                n - 1,
                show(end)
            )?;
        }
        writeln!(f, "queries:")?;
        for q in &self.queries {
            writeln!(f, "  {}", show(q))?;
        }
        Ok(())
    }
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(NAMES).prop_map(<[u8]>::to_vec)
}

fn rel_path(max: usize) -> impl Strategy<Value = Vec<u8>> {
    let comp = prop_oneof![
        6 => name(),
        2 => Just(b"..".to_vec()),
        1 => Just(b".".to_vec()),
        1 => Just(Vec::new()),
        1 => Just(b"chain0".to_vec()),
    ];
    (proptest::collection::vec(comp, 1..=max), any::<bool>()).prop_map(|(cs, slash)| {
        let mut p = cs.join(&b'/');
        if slash {
            p.push(b'/');
        }
        p
    })
}

fn link_target() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        5 => rel_path(4),
        3 => rel_path(3).prop_map(|r| [b"{base}/".as_slice(), &r].concat()),
        2 => proptest::sample::select(vec![
            b"/".to_vec(),
            b"/..".to_vec(),
            b"../../../../../../../..".to_vec(),
            b"/etc".to_vec(),
            b"//{base}//a".to_vec(),
            // Exists only in the caller's view (under the sandbox's tmpfs).
            b"{scratch}/caller-only".to_vec(),
            b"/nonexistent-hostexec".to_vec(),
        ]),
    ]
}

fn node() -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => Just(Node::Dir),
        2 => Just(Node::File),
        5 => link_target().prop_map(Node::Link),
    ]
}

fn entry_path() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(name(), 1..=3).prop_map(|cs| cs.join(&b'/'))
}

fn case() -> impl Strategy<Value = Case> {
    (
        proptest::collection::vec((entry_path(), node()), 1..10),
        proptest::option::weighted(0.2, (38usize..=43, rel_path(2))),
        proptest::collection::vec(rel_path(5), 1..=6),
    )
        .prop_map(|(entries, chain, queries)| Case {
            entries,
            chain,
            queries,
        })
}

/// The errno that GNU realpath's message ends with.
fn gnu_errno(msg: &[u8]) -> Option<i32> {
    let m = String::from_utf8_lossy(msg);
    let m = m.trim_end();
    [
        ("No such file or directory", 2),
        ("Not a directory", 20),
        ("Too many levels of symbolic links", 40),
        ("Permission denied", 13),
        ("File name too long", 36),
    ]
    .into_iter()
    .find(|(t, _)| m.ends_with(t))
    .map(|(_, e)| e)
}

/// One nsenter into the sandbox running `realpath -z -e` and `-m` for every query. Per query
/// and mode the output is `Q\0` + (`RESULT\0` | `realpath: …: error\n`) + `\0RC\0`.
const ORACLE_SCRIPT: &str = r#"for p do
  for m in -e -m; do
    printf 'Q\0'; timeout 1 realpath -z "$m" -- "$p" 2>&1; printf '\0%d\0' "$?"
  done
done"#;

type Gnu = Result<Vec<u8>, Option<i32>>;

/// GNU realpath did not finish (see [`gnu_oracle`]).
const HUNG: Option<i32> = Some(-124);

fn gnu_oracle(sb: &SandboxHost, queries: &[Vec<u8>]) -> Vec<(Gnu, Gnu)> {
    let mut argv: Vec<&OsStr> = vec![
        "sh".as_ref(),
        "-c".as_ref(),
        ORACLE_SCRIPT.as_ref(),
        "sh".as_ref(),
    ];
    argv.extend(queries.iter().map(|q| OsStr::from_bytes(q)));
    let out = sb.oracle(&argv);
    assert!(out.status.success(), "oracle failed: {out:?}");
    let mut toks = out.stdout.split(|&b| b == 0).peekable();
    let mut one = || -> Gnu {
        assert_eq!(
            toks.next(),
            Some(&b"Q"[..]),
            "oracle output: {:?}",
            show(&out.stdout)
        );
        let first = toks.next().expect("oracle: a result or an error").to_vec();
        if first.first() == Some(&b'/') {
            assert_eq!(toks.next(), Some(&b""[..]));
            assert_eq!(toks.next(), Some(&b"0"[..]));
            Ok(first)
        } else {
            let rc = toks.next().expect("oracle: rc");
            assert_ne!(rc, b"0");
            if rc == b"124" {
                // GNU realpath 9.1 loops forever on `x -> /abs/x/` (an absolute self-link
                // with a trailing slash); `timeout` stopped it.
                return Err(HUNG);
            }
            Err(gnu_errno(&first))
        }
    };
    queries.iter().map(|_| (one(), one())).collect()
}

/// The kernel's answer: `openat2(root, q, O_PATH, RESOLVE_IN_ROOT)`, as (dev, ino) or errno.
/// EAGAIN (a rename or mount raced anywhere on the system during a `..`) is no verdict: ask
/// again.
fn kernel(h: &NsEnter, q: &[u8]) -> Result<(u64, u64), i32> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    let open = || {
        openat2(
            h.root_fs().as_fd(),
            OsStr::from_bytes(q),
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
    };
    // ELOOP is asked again too: the kernel counts the links of a lookup once per open, and
    // an RCU walk that has to restart in ref-walk mode (a concurrent mount or rename anywhere
    // on the machine changes the sequence counts it checks) keeps the links it had already
    // followed (fs/namei.c: `total_link_count` is set in `set_nameidata`, not in
    // `path_init`), so a chain of 21 to 40 links can answer ELOOP now and then. A real loop
    // answers ELOOP every time.
    let mut result = open();
    for _ in 0..1000 {
        match result {
            Err(rustix::io::Errno::AGAIN | rustix::io::Errno::LOOP) => result = open(),
            _ => break,
        }
    }
    let fd = result.map_err(|e| e.raw_os_error())?;
    let st = rustix::fs::fstat(&fd).map_err(|e| e.raw_os_error())?;
    Ok((st.st_dev, st.st_ino))
}

fn subst(t: &[u8], base: &Path, scratch: &Path) -> Vec<u8> {
    t.to_vec()
        .replace_bytes(b"{base}", base.as_os_str().as_bytes())
        .replace_bytes(b"{scratch}", scratch.as_os_str().as_bytes())
}

/// Byte-string replace (no UTF-8 assumptions).
trait ReplaceBytes {
    fn replace_bytes(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}
impl ReplaceBytes for Vec<u8> {
    fn replace_bytes(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut i = 0;
        while i < self.len() {
            if self[i..].starts_with(from) {
                out.extend_from_slice(to);
                i += from.len();
            } else {
                out.push(self[i]);
                i += 1;
            }
        }
        out
    }
}

/// Builds the tree under `base` (a sandbox path) with the sandbox's no-follow helpers only:
/// entries whose parent is not a directory, or is reached through a symlink, are left out
/// (the tree's links lead to `/`, `/etc` and `../..`: following one would write to this
/// machine's real file system).
fn build(sb: &SandboxHost, base: &Path, c: &Case) {
    sb.mkdir_all(base).unwrap();
    for (p, n) in &c.entries {
        let host = base.join(OsStr::from_bytes(p));
        if let Some(parent) = host.parent() {
            if sb.mkdir_all(parent).is_err() {
                continue;
            }
        }
        let _ = match n {
            Node::Dir => sb.mkdir_all(&host),
            Node::File => sb.write_file(&host, b"f"),
            Node::Link(t) => sb.symlink(OsStr::from_bytes(&subst(t, base, sb.scratch())), &host),
        };
    }
    if let Some((n, end)) = &c.chain {
        for i in 0..*n {
            let t = if i + 1 == *n {
                end.clone()
            } else {
                format!("chain{}", i + 1).into_bytes()
            };
            let _ = sb.symlink(OsStr::from_bytes(&t), &base.join(format!("chain{i}")));
        }
    }
}

fn errno_of(e: &PathError) -> Option<i32> {
    e.raw_os_error()
}

fn check_case(
    rt: &tokio::runtime::Runtime,
    sb: &SandboxHost,
    h: &NsEnter,
    n: usize,
    c: &Case,
) -> Result<(), TestCaseError> {
    let base = sb.scratch().join("fuzz").join(n.to_string());
    build(sb, &base, c);
    let queries: Vec<Vec<u8>> = c
        .queries
        .iter()
        .map(|q| [base.as_os_str().as_bytes(), b"/", q].concat())
        .collect();
    let gnu = gnu_oracle(sb, &queries);
    let result = (|| {
        for (q, (gnu_e, gnu_m)) in queries.iter().zip(gnu) {
            let qp = Path::new(OsStr::from_bytes(q));
            let resolve = |mode| {
                rt.block_on(async {
                    tokio::time::timeout(std::time::Duration::from_secs(10), h.resolve(qp, mode))
                        .await
                        .map_err(|_| {
                            TestCaseError::fail(format!("resolve({}, {mode:?}) hangs", show(q)))
                        })
                })
            };
            let ours_e = resolve(Resolve::MustExist)?;
            let ours_m = resolve(Resolve::AllowMissing)?;
            let k = kernel(h, q);
            // The walk (the reference) gives resolve's answer, and the kernel's answer
            // (resolve_by_kernel), wherever it answers, is the same.
            let walk = h.root_fs().resolve_by_walk(qp, Resolve::MustExist);
            match (&ours_e, &walk) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "walk: {}", show(q)),
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                _ => prop_assert!(false, "resolve {ours_e:?}, walk {walk:?}: {}", show(q)),
            }
            if let Ok(Some(fast)) = h.root_fs().resolve_by_kernel(qp) {
                prop_assert_eq!(
                    Some(&fast),
                    ours_e.as_ref().ok(),
                    "kernel answer: {}",
                    show(q)
                );
                FAST_PATH_ANSWERS[slot(h.launcher())]
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let g = |r: &Gnu| r.as_ref().map(|b| show(b)).map_err(|e| *e);
            let ctx = || {
                format!(
                    "query {}: ours -e {ours_e:?}, -m {ours_m:?}; GNU -e {:?}, -m {:?}; kernel {k:?}",
                    show(q),
                    g(&gnu_e),
                    g(&gnu_m)
                )
            };
            // Every error names the path asked about.
            for e in [&ours_e, &ours_m]
                .into_iter()
                .filter_map(|r| r.as_ref().err())
            {
                prop_assert_eq!(e.path(), Some(qp), "{}", ctx());
            }
            // Where GNU hangs, the kernel (below) is the only oracle: it must say ELOOP.
            // A Loop from AllowMissing is confirmed by the kernel's ELOOP, unless the hops
            // happen after a missing component (`missing/../link` follows `link`, as GNU
            // does), where the kernel stops at ENOENT; then -e must agree with the kernel.
            // (Likewise after a non-directory used as one, `file/../link`: ENOTDIR.)
            let loop_confirmed = match k.err() {
                Some(40) => true,
                Some(e @ (2 | 20)) => ours_e.as_ref().err().and_then(errno_of) == Some(e),
                _ => false,
            };
            if gnu_e == Err(HUNG) || gnu_m == Err(HUNG) {
                prop_assert!(
                    matches!(ours_m, Err(PathError::Loop { .. })),
                    "GNU hung: {}",
                    ctx()
                );
                prop_assert!(loop_confirmed, "GNU hung: {}", ctx());
                continue;
            }
            // The kernel as the oracle for MustExist: same verdict, same file, same errno.
            match (&ours_e, &k) {
                (Ok(p), Ok(id)) => {
                    let p_rel = p.as_os_str().as_bytes();
                    let again = kernel(h, p_rel);
                    prop_assert_eq!(again.as_ref(), Ok(id), "{}", ctx());
                }
                (Err(e), Err(errno)) => prop_assert_eq!(errno_of(e), Some(*errno), "{}", ctx()),
                _ => prop_assert!(false, "ours and the kernel disagree: {}", ctx()),
            }
            // GNU realpath -e.
            match (&ours_e, &gnu_e) {
                (Ok(p), Ok(g)) => {
                    prop_assert_eq!(p.as_os_str().as_bytes(), g.as_slice(), "{}", ctx())
                }
                (Err(PathError::Loop { .. }), g) if g.as_ref().err() != Some(&Some(40)) => {
                    // More than 40 hops: GNU has no hop limit (it then succeeds, or fails
                    // further on); the kernel agrees with us.
                    prop_assert_eq!(k.err(), Some(40), "{}", ctx())
                }
                (Err(e), Err(g)) => prop_assert_eq!(errno_of(e), *g, "{}", ctx()),
                _ => prop_assert!(false, "ours and GNU realpath -e disagree: {}", ctx()),
            }
            // GNU realpath -m.
            match (&ours_m, &gnu_m) {
                (Ok(p), Ok(g)) => {
                    prop_assert_eq!(p.as_os_str().as_bytes(), g.as_slice(), "{}", ctx())
                }
                (Err(PathError::Loop { .. }), g) if g.as_ref().err() != Some(&Some(40)) => {
                    // Intended: a loop, or more than 40 hops, is an error in both modes
                    // (kubernetes/kubernetes#63143).
                    prop_assert!(loop_confirmed, "{}", ctx())
                }
                (Err(PathError::NotADirectory { .. }), Ok(_)) => {
                    // Intended: errors other than "missing" still count.
                    prop_assert_eq!(k.err(), Some(20), "{}", ctx())
                }
                (Err(e), Err(g)) => prop_assert_eq!(errno_of(e), *g, "{}", ctx()),
                _ => prop_assert!(false, "ours and GNU realpath -m disagree: {}", ctx()),
            }
            // Never outside the root, never unnormalised.
            for p in [&ours_e, &ours_m]
                .into_iter()
                .filter_map(|r| r.as_ref().ok())
            {
                prop_assert_eq!(p, &hostexec_api::path::normalize(p), "{}", ctx());
            }
        }
        Ok(())
    })();
    sb.remove_all(&base).unwrap();
    result
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250)
}

/// How many MustExist queries the kernel fast path answered (it must answer some, or the
/// comparison above checked nothing).
/// One counter per launcher (the two fuzz tests run in parallel).
static FAST_PATH_ANSWERS: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

fn slot(launcher: Launcher) -> usize {
    usize::from(launcher != Launcher::HostThread)
}

fn fuzz(launcher: Launcher, cases: u32) {
    let sb = SandboxHost::start().unwrap();
    // A file that exists only in the caller's view, where the sandbox has its tmpfs.
    std::fs::write(sb.scratch().join("caller-only"), b"c").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let h = rt
        .block_on(async { NsEnter::builder(sb.target()).launcher(launcher).build() })
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    });
    let n = std::sync::atomic::AtomicUsize::new(0);
    let r = runner.run(&case(), |c| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        check_case(&rt, &sb, &h, i, &c)
    });
    if let Err(e) = r {
        panic!("{e}");
    }
    assert!(
        FAST_PATH_ANSWERS[slot(launcher)].load(std::sync::atomic::Ordering::Relaxed) > 0,
        "resolve_by_kernel never answered ({launcher:?})"
    );
}

#[test]
fn resolution_matches_gnu_realpath_and_the_kernel() {
    if skip_without_namespaces("resolution_matches_gnu_realpath_and_the_kernel") {
        return;
    }
    fuzz(Launcher::HostThread, cases());
}

#[test]
fn resolution_matches_with_the_nsenter_binary_launcher() {
    if skip_without_namespaces("resolution_matches_with_the_nsenter_binary_launcher") {
        return;
    }
    // The same algorithm on a descriptor of /proc/PID/root: fewer cases suffice.
    fuzz(Launcher::NsenterBinary, cases() / 8 + 1);
}

/// A host root that is a plain directory of this process: adversarial links must never
/// lead out of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_never_leaves_the_host_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/inside"), b"").unwrap();
    let outside = dir.path().join("outside-only");
    std::fs::write(&outside, b"").unwrap();
    use std::os::unix::fs::symlink;
    symlink("/", root.join("to-root")).unwrap();
    symlink("../../../../..", root.join("up")).unwrap();
    symlink(&outside, root.join("abs-outside")).unwrap();
    symlink("/../../etc/../..", root.join("up-abs")).unwrap();
    symlink("up/etc/inside", root.join("via-up")).unwrap();
    let t = hostexec_nsenter::Target::host_root(&root).namespaces(&[]);
    let h = NsEnter::new(t).unwrap();
    let r = |p: &str, m| {
        let h = h.clone();
        let p = PathBuf::from(p);
        async move { h.resolve(&p, m).await }
    };
    for p in ["/to-root", "/up", "/up-abs", "/..", "/../../.."] {
        assert_eq!(
            r(p, Resolve::MustExist).await.unwrap(),
            Path::new("/"),
            "{p}"
        );
    }
    assert_eq!(
        r("/via-up", Resolve::MustExist).await.unwrap(),
        Path::new("/etc/inside")
    );
    assert_eq!(
        r("/up/etc/../etc/inside", Resolve::MustExist)
            .await
            .unwrap(),
        Path::new("/etc/inside")
    );
    // The link's target exists only outside the host root: not found inside it.
    assert!(r("/abs-outside", Resolve::MustExist)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(
        r("/abs-outside", Resolve::AllowMissing).await.unwrap(),
        outside,
        "kept lexically, as a host path"
    );
    assert!(h
        .local_path(Path::new("/../../etc"))
        .unwrap()
        .starts_with(&root));
}
