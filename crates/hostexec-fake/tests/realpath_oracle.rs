//! FakeHost's resolver against GNU `realpath` run on the temp directory itself.
//!
//! Random trees of directories, files and *relative* symlinks are built through FakeHost's own
//! helpers; random host paths are resolved by `FakeHost::resolve` and by `realpath -e`/`-m` on
//! `<root>/<path>`. Where the resolution never needed to clamp a `..` at the root (there GNU,
//! run on a subdirectory, climbs out while a host resolver must not), the two must agree
//! exactly, modulo the root prefix and the contract's loop rule (`-m` reports a loop instead
//! of GNU's unresolved answer). Trees with absolute links and `..` above the root are checked
//! for containment. The algorithm itself is fuzzed harder in `hostexec-rootfs`; this checks
//! the FakeHost wrapper: helper placement, local_path mapping, error naming.
//!
//! Cases: `PROPTEST_CASES` (default 48).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use hostexec_api::{PathError, PathResolver, Resolve};
use hostexec_fake::FakeHost;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Dir(Vec<&'static str>),
    File(Vec<&'static str>),
    Link(Vec<&'static str>, String),
}

fn name() -> BoxedStrategy<&'static str> {
    prop_oneof![Just("a"), Just("b"), Just("c")].boxed()
}

fn rel_target() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("c"), Just(".."), Just(".")],
        1..4,
    )
    .prop_map(|v| v.join("/"))
}

fn abs_target() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just(".."), Just("..")],
        0..5,
    )
    .prop_map(|v| format!("/{}", v.join("/")))
}

fn ops(target: BoxedStrategy<String>) -> impl Strategy<Value = Vec<Op>> {
    let path = proptest::collection::vec(name(), 1..4).boxed();
    proptest::collection::vec(
        prop_oneof![
            2 => path.clone().prop_map(Op::Dir),
            1 => path.clone().prop_map(Op::File),
            3 => (path, target).prop_map(|(p, t)| Op::Link(p, t)),
        ],
        1..12,
    )
}

fn query() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("a"),
            Just("b"),
            Just("c"),
            Just(".."),
            Just("."),
            Just("x"),
            Just("")
        ],
        1..6,
    )
    .prop_map(|v| format!("/{}", v.join("/")))
}

fn build(host: &FakeHost, ops: &[Op]) {
    for op in ops {
        // A helper may fail (a file where a directory is wanted): that op is skipped.
        let _ = match op {
            Op::Dir(p) => host.dir(format!("/{}", p.join("/"))).map(|_| ()),
            Op::File(p) => host.file(format!("/{}", p.join("/")), b"f").map(|_| ()),
            Op::Link(p, t) => host.symlink(t, format!("/{}", p.join("/"))).map(|_| ()),
        };
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

/// What [`gnu`] gives when realpath did not finish: GNU has no hop limit, and a few relative
/// links that expand into each other make it run for minutes and take gigabytes.
const GNU_GAVE_UP: &str = "GNU realpath killed after 1s";

/// GNU realpath's answer: Ok(path) or Err(stderr).
fn gnu(flag: &str, local: &Path) -> Result<PathBuf, String> {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "1", "realpath"])
        .arg(flag)
        .arg("--")
        .arg(local)
        .output()
        .expect("GNU realpath runs");
    if out.status.code() == Some(137) || out.status.code().is_none() {
        return Err(GNU_GAVE_UP.into());
    }
    if out.status.success() {
        let mut b = out.stdout;
        assert_eq!(b.pop(), Some(b'\n'));
        Ok(PathBuf::from(OsString::from_vec(b)))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `gnu` (a local path under `root`) as a host path.
fn to_host(root: &Path, gnu: &Path) -> PathBuf {
    let rest = gnu
        .strip_prefix(root)
        .unwrap_or_else(|_| panic!("GNU answer {gnu:?} is not under the root {root:?}"));
    Path::new("/").join(rest)
}

/// True if some prefix of `p` is a symlink (GNU gave up resolving it).
fn has_symlink(p: &Path) -> bool {
    let mut cur = PathBuf::new();
    p.components().any(|c| {
        cur.push(c);
        std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink())
    })
}

async fn compare(host: &FakeHost, root: &Path, q: &str) -> Result<(), TestCaseError> {
    let qp = Path::new(q);
    for (mode, flag) in [(Resolve::MustExist, "-e"), (Resolve::AllowMissing, "-m")] {
        let ours = host.resolve(qp, mode).await;
        if let Ok(p) = &ours {
            // Always: the answer is a canonical host path inside the fake root.
            prop_assert!(p.is_absolute());
            prop_assert!(host.local_path(p).unwrap().starts_with(host.root()));
        }
        let (_, clamped) = host.rootfs().resolve_clamped(qp, mode);
        if clamped {
            continue;
        }
        // The local path: root + the query as written (GNU resolves it physically too).
        let mut local = root.as_os_str().as_bytes().to_vec();
        local.extend_from_slice(q.as_bytes());
        let local = PathBuf::from(OsString::from_vec(local));
        let theirs = gnu(flag, &local);
        match (&ours, &theirs) {
            (Ok(o), Ok(t)) => prop_assert_eq!(o, &to_host(root, t), "{} {}", flag, q),
            (Err(PathError::Loop { path }), t) => {
                prop_assert_eq!(path.as_path(), qp, "errors name the path asked about");
                match t {
                    // More than 40 hops (the kernel's rule) where GNU expands on and on.
                    Err(msg) => prop_assert!(
                        msg.contains("Too many levels of symbolic links") || msg == GNU_GAVE_UP,
                        "{} {}: ours Loop, GNU {}",
                        flag,
                        q,
                        msg
                    ),
                    // The loop rule: GNU -m gives up on the loop and answers anyway, with the
                    // link left unresolved (or removed by a later `..`); `-e` shows the loop.
                    Ok(t) => {
                        let e_says_loop = matches!(gnu("-e", &local),
                            Err(m) if m.contains("Too many levels") || m == GNU_GAVE_UP);
                        prop_assert!(
                            flag == "-m" && (has_symlink(t) || e_says_loop),
                            "{} {}: ours Loop, GNU resolved {:?}",
                            flag,
                            q,
                            t
                        )
                    }
                }
            }
            (Err(PathError::NotFound { path }), Err(msg)) => {
                prop_assert_eq!(path.as_path(), qp);
                prop_assert!(
                    msg.contains("No such file or directory"),
                    "{} {}: {}",
                    flag,
                    q,
                    msg
                );
            }
            (Err(PathError::NotADirectory { path }), Err(msg)) => {
                prop_assert_eq!(path.as_path(), qp);
                prop_assert!(msg.contains("Not a directory"), "{} {}: {}", flag, q, msg);
            }
            (o, t) => prop_assert!(false, "{} {}: ours {:?}, GNU {:?}", flag, q, o, t),
        }
    }
    Ok(())
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn relative_trees_agree_with_gnu_realpath(
        tree in ops(rel_target().boxed()),
        queries in proptest::collection::vec(query(), 1..6),
    ) {
        let host = FakeHost::new().unwrap();
        build(&host, &tree);
        let root = std::fs::canonicalize(host.root()).unwrap();
        run(async {
            for q in &queries {
                compare(&host, &root, q).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }

    #[test]
    fn absolute_and_climbing_links_stay_in_the_fake_root(
        tree in ops(prop_oneof![rel_target(), abs_target()].boxed()),
        queries in proptest::collection::vec(query(), 1..6),
    ) {
        let host = FakeHost::new().unwrap();
        build(&host, &tree);
        run(async {
            for q in &queries {
                for mode in [Resolve::MustExist, Resolve::AllowMissing] {
                    if let Ok(p) = host.resolve(Path::new(q), mode).await {
                        prop_assert!(p.is_absolute() && !p.components().any(|c| c.as_os_str() == ".."));
                        let local = host.local_path(&p).unwrap();
                        prop_assert!(local.starts_with(host.root()), "{:?} -> {:?}", q, local);
                        // MustExist answers exist, in the fake root, as the kernel sees it there.
                        if mode == Resolve::MustExist {
                            prop_assert!(std::fs::symlink_metadata(&local).is_ok(), "{:?} -> {:?}", q, local);
                        }
                    }
                }
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}

#[test]
fn gnu_realpath_is_the_oracle() {
    // The oracle itself: GNU coreutils realpath with -e and -m.
    let out = Command::new("realpath").arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("GNU coreutils"));
    let host = FakeHost::new().unwrap();
    host.dir("/a/b").unwrap().symlink("a/b", "/l").unwrap();
    let root = std::fs::canonicalize(host.root()).unwrap();
    assert_eq!(
        to_host(&root, &gnu("-e", &root.join("l/../b")).unwrap()),
        Path::new("/a/b")
    );
    assert!(gnu("-e", &root.join("nope"))
        .unwrap_err()
        .contains("No such file or directory"));
}
