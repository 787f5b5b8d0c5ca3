//! Hostile input, against the real backend and mounter:
//!
//! - NUL bytes: a typed error from every path-taking API, and nothing run or changed;
//! - non-UTF-8 names: byte-exact through resolve, `list()` and mount/unmount;
//! - paths of 4,096 bytes and more, and components over NAME_MAX: `NameTooLong` (ENAMETOOLONG);
//! - mount points named with a newline, a tab, a backslash, a space and the literal text `\040`,
//!   each next to an unmounted decoy whose name is the *escaped* form of another: `list()` and
//!   `is_mount_point` agree with findmnt and mountpoint(1) run in the sandbox;
//! - a thread swapping a directory and a symlink out of the root with
//!   `renameat2(RENAME_EXCHANGE)` while resolutions run: every answer is one of the answers of
//!   the two states and lies inside the root (libpathrs' race tests are the model);
//! - PID reuse: a `Target::pid` whose process exited, and whose PID now belongs to another
//!   process in another mount namespace: every call fails instead of entering the newcomer.

mod common;

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{show, Tree};
use hostexec_api::{CommandError, Executor, HostCommand, HostFs, PathError, PathResolver, Resolve};
use hostexec_mount::{HostMounter, Mount, MountError, MountExt, MountOptions, UnmountOptions};
use hostexec_nsenter::{Launcher, NsEnter, Target};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn join(base: &Path, rel: &[u8]) -> PathBuf {
    let mut v = base.as_os_str().as_bytes().to_vec();
    v.push(b'/');
    v.extend_from_slice(rel);
    PathBuf::from(OsString::from_vec(v))
}

type Mounter = HostMounter<NsEnter>;

fn mounter(ns: &NsEnter) -> Mounter {
    HostMounter::new(ns.clone())
}

/// The sandbox's mount table through the oracle (what changed, if anything).
fn oracle_table(sb: &SandboxHost) -> Vec<u8> {
    sb.oracle(&[OsStr::new("cat"), OsStr::new("/proc/self/mountinfo")])
        .stdout
}

// ------------------------------------------------------------------------------------ NUL

fn nul_path(e: &PathError) -> bool {
    matches!(e, PathError::ContainsNul { .. })
}

fn nul_mount(e: &MountError) -> bool {
    match e {
        MountError::Path(p) => nul_path(p),
        MountError::InvalidInput { .. } => true,
        MountError::Command {
            source: CommandError::InvalidInput { .. },
            ..
        } => true,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_a_typed_error_from_every_api_and_change_nothing() {
    if skip_without_namespaces("nul_bytes_are_a_typed_error_from_every_api_and_change_nothing") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    tree.mkdir_all("d");
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = mounter(&ns);
    let good = tree.host_path("d");
    let bad = tree.host_path(b"d\0/../../etc");
    let before = oracle_table(&sb);

    for mode in [Resolve::MustExist, Resolve::AllowMissing] {
        let e = ns.resolve(&bad, mode).await.unwrap_err();
        assert!(nul_path(&e), "resolve {mode:?}: {e:?}");
        assert_eq!(e.raw_os_error(), Some(22), "EINVAL: {e:?}");
    }
    let e = ns.local_path(&bad).unwrap_err();
    assert!(nul_path(&e), "local_path: {e:?}");
    let checks: Vec<(&str, Result<(), PathError>)> = vec![
        ("stat", ns.stat(&bad, true).await.map(drop)),
        ("stat nofollow", ns.stat(&bad, false).await.map(drop)),
        ("read_file", ns.read_file(&bad, 10).await.map(drop)),
        ("create_dir_all", ns.create_dir_all(&bad).await),
        ("create_file", ns.create_file(&bad).await),
        ("remove_dir", ns.remove_dir(&bad).await),
    ];
    for (what, r) in checks {
        let e = r.unwrap_err();
        assert!(nul_path(&e), "{what}: {e:?}");
    }

    // The executor: a NUL in the program, an argument, an env value, the working directory.
    let cmds = [
        HostCommand::new(os(b"ca\0t")),
        HostCommand::new("echo").arg(os(b"a\0b")),
        HostCommand::new("true").env("K", os(b"v\0w")),
        HostCommand::new("true").current_dir(&bad),
    ];
    for c in cmds {
        let shown = format!("{c:?}");
        let e = ns.run(c).await.unwrap_err();
        assert!(
            matches!(e, CommandError::InvalidInput { .. }),
            "{shown}: {e:?}"
        );
    }
    let e = ns.look_path(os(b"mo\0unt")).await.unwrap_err();
    assert!(
        matches!(e, CommandError::InvalidInput { .. }),
        "look_path: {e:?}"
    );

    // The mounter: every path argument, the source, the type, an option.
    let opts = MountOptions::new();
    let mount_checks: Vec<(&str, Result<(), MountError>)> = vec![
        (
            "mount target",
            m.mount("tmpfs".as_ref(), &bad, "tmpfs", &opts).await,
        ),
        (
            "mount source",
            m.mount(os(b"tmp\0fs"), &good, "tmpfs", &opts).await,
        ),
        (
            "mount fstype",
            m.mount("tmpfs".as_ref(), &good, "tmp\0fs", &opts).await,
        ),
        (
            "mount option",
            m.mount(
                "tmpfs".as_ref(),
                &good,
                "tmpfs",
                &MountOptions::new().option(os(b"size=1m\0,ro")),
            )
            .await,
        ),
        (
            "mount sensitive option",
            m.mount(
                "tmpfs".as_ref(),
                &good,
                "tmpfs",
                &MountOptions::new().sensitive(os(b"size=1m\0,ro")),
            )
            .await,
        ),
        ("unmount", m.unmount(&bad, &UnmountOptions::new()).await),
        ("is_mount_point", m.is_mount_point(&bad).await.map(drop)),
        (
            "is_likely_not_mount_point",
            m.is_likely_not_mount_point(&bad).await.map(drop),
        ),
        ("mount_refs", m.mount_refs(&bad).await.map(drop)),
        (
            "cleanup_mount_point",
            m.cleanup_mount_point(&bad, &UnmountOptions::new()).await,
        ),
        ("make_rshared", m.make_rshared(&bad).await),
        // The host's files, through the mounter's HostFs.
        (
            "stat",
            m.stat(&bad, true).await.map(drop).map_err(MountError::from),
        ),
        (
            "create_dir_all",
            m.create_dir_all(&bad).await.map_err(MountError::from),
        ),
        (
            "create_file",
            m.create_file(&bad).await.map_err(MountError::from),
        ),
    ];
    for (what, r) in mount_checks {
        let e = r.unwrap_err();
        assert!(nul_mount(&e), "{what}: {e:?}");
        // The error says what was wrong in words a user can act on.
        let text = e.to_string();
        assert!(
            text.contains("NUL") || text.contains("nul") || text.contains("Invalid argument"),
            "{what}: {text}"
        );
    }
    assert_eq!(
        oracle_table(&sb),
        before,
        "a NUL input changed the mount table"
    );
    assert!(!m.is_mount_point(&good).await.unwrap());
    // Nothing was created through the truncated path (`d` would be `d\0…` cut at the NUL).
    let ls = sb.oracle(&[OsStr::new("ls"), OsStr::new("-A"), good.as_os_str()]);
    assert_eq!(ls.stdout, b"", "{ls:?}");
}

// ------------------------------------------------------------------------------ non-UTF-8

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_names_round_trip_byte_for_byte() {
    if skip_without_namespaces("non_utf8_names_round_trip_byte_for_byte") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    // Every byte that is not valid UTF-8 on its own, and an overlong encoding of '/'.
    let mut name: Vec<u8> = (0x80u8..=0xff).collect();
    name.extend_from_slice(b"\xc0\xaf-end");
    let (a, b) = name.split_at(100);
    let dir = [a, b"/", b].concat();
    tree.mkdir_all(&dir);
    tree.file([&dir[..], b"/f\xe9"].concat(), b"x");
    tree.symlink(&dir, b"l\xfe");
    tree.symlink(
        [tree.host.as_os_str().as_bytes(), b"/", &dir[..]].concat(),
        b"abs\xfd",
    );
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = mounter(&ns);
    let want = tree.host_path(&dir);

    for (q, mode) in [
        (tree.host_path(b"l\xfe"), Resolve::MustExist),
        (tree.host_path(b"abs\xfd"), Resolve::MustExist),
        (tree.host_path(b"l\xfe/./"), Resolve::AllowMissing),
    ] {
        let got = ns.resolve(&q, mode).await.unwrap();
        assert_eq!(
            got.as_os_str().as_bytes(),
            want.as_os_str().as_bytes(),
            "{}",
            show(&q)
        );
    }
    let missing = join(&want, b"no\xff/more\x80");
    assert_eq!(
        ns.resolve(
            &join(&tree.host_path(b"l\xfe"), b"no\xff/more\x80"),
            Resolve::AllowMissing
        )
        .await
        .unwrap(),
        missing
    );
    let e = ns
        .resolve(
            &join(&tree.host_path(b"l\xfe"), b"no\xff"),
            Resolve::MustExist,
        )
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
    assert_eq!(
        e.path().unwrap().as_os_str().as_bytes(),
        join(&tree.host_path(b"l\xfe"), b"no\xff")
            .as_os_str()
            .as_bytes(),
        "the error names the path asked about, bytes intact"
    );
    // GNU realpath in the sandbox agrees byte for byte.
    let gnu = sb.oracle(&[
        OsStr::new("realpath"),
        OsStr::new("-e"),
        tree.host_path(b"l\xfe").as_os_str(),
    ]);
    assert_eq!(gnu.stdout, [want.as_os_str().as_bytes(), b"\n"].concat());
    let data = ns
        .read_file(&join(&tree.host_path(b"abs\xfd"), b"f\xe9"), 10)
        .await
        .unwrap();
    assert_eq!(data, b"x");

    // A mount there: mount(8) gets the bytes, list() gives them back, is_mount_point sees it.
    m.mount(
        os(b"hx\xe9"),
        &want,
        "tmpfs",
        &MountOptions::new().option("size=1m"),
    )
    .await
    .unwrap();
    let listed = m.list().await.unwrap();
    let row = listed
        .iter()
        .find(|r| r.mount_point().as_os_str().as_bytes() == want.as_os_str().as_bytes())
        .unwrap_or_else(|| panic!("no row for {}", show(&want)));
    assert_eq!(row.fs_type(), "tmpfs");
    assert_eq!(row.source(), os(b"hx\xe9"), "a non-UTF-8 source too");
    // findmnt --raw hex-escapes every byte it cannot print; decode and compare.
    let raw = sb.oracle(&[
        OsStr::new("findmnt"),
        OsStr::new("--raw"),
        OsStr::new("-n"),
        OsStr::new("-o"),
        OsStr::new("TARGET"),
        OsStr::new("--mountpoint"),
        want.as_os_str(),
    ]);
    assert!(raw.status.success(), "findmnt: {raw:?}");
    assert_eq!(
        hostexec_testing::unescape_findmnt(raw.stdout.strip_suffix(b"\n").unwrap()),
        want.as_os_str().as_bytes(),
        "findmnt --raw: {}",
        raw.stdout.escape_ascii()
    );
    assert!(m.is_mount_point(&want).await.unwrap());
    assert!(
        m.is_mount_point(&tree.host_path(b"l\xfe")).await.unwrap(),
        "through the link"
    );
    m.unmount(&want, &UnmountOptions::new()).await.unwrap();
    assert!(!m.is_mount_point(&want).await.unwrap());
}

// ------------------------------------------------------------------------------ too long

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_of_path_max_and_more_are_name_too_long() {
    if skip_without_namespaces("paths_of_path_max_and_more_are_name_too_long") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    tree.mkdir_all("d");
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = mounter(&ns);
    let base = tree.host_path("d");
    // A path of exactly `len` bytes: base, then 200-byte components.
    let of_len = |len: usize| {
        let mut v = base.as_os_str().as_bytes().to_vec();
        while v.len() < len {
            v.push(b'/');
            let n = (len - v.len()).min(200);
            v.extend(std::iter::repeat_n(b'a', n));
        }
        assert_eq!(v.len(), len);
        PathBuf::from(OsString::from_vec(v))
    };
    let too_long =
        |e: &PathError| matches!(e, PathError::NameTooLong { .. }) && e.raw_os_error() == Some(36);

    // 4,095 bytes is still a path (the kernel's PATH_MAX counts the NUL): not found, or kept.
    let max = of_len(4095);
    assert!(ns
        .resolve(&max, Resolve::MustExist)
        .await
        .unwrap_err()
        .is_not_found());
    assert_eq!(ns.resolve(&max, Resolve::AllowMissing).await.unwrap(), max);
    let kernel = std::fs::symlink_metadata(&max).unwrap_err();
    assert_eq!(
        kernel.raw_os_error(),
        Some(2),
        "the kernel takes 4095 bytes too"
    );

    for len in [4096, 4097, 10_000, 70_000] {
        let p = of_len(len);
        let kernel = std::fs::symlink_metadata(&p).unwrap_err();
        assert_eq!(
            kernel.raw_os_error(),
            Some(36),
            "the kernel: ENAMETOOLONG at {len}"
        );
        for mode in [Resolve::MustExist, Resolve::AllowMissing] {
            let e = ns.resolve(&p, mode).await.unwrap_err();
            assert!(too_long(&e), "{len} {mode:?}: {e:?}");
            assert_eq!(e.path(), Some(p.as_path()), "the error names the path");
        }
        assert!(too_long(&ns.local_path(&p).unwrap_err()));
        assert!(too_long(&ns.stat(&p, true).await.unwrap_err()));
        assert!(too_long(&ns.read_file(&p, 1).await.unwrap_err()));
        assert!(too_long(&ns.create_dir_all(&p).await.unwrap_err()));
        assert!(too_long(&ns.create_file(&p).await.unwrap_err()));
        assert!(too_long(&ns.remove_dir(&p).await.unwrap_err()));
        for (what, r) in [
            ("is_mount_point", m.is_mount_point(&p).await.map(drop)),
            (
                "stat",
                m.stat(&p, true).await.map(drop).map_err(MountError::from),
            ),
            (
                "create_dir_all",
                m.create_dir_all(&p).await.map_err(MountError::from),
            ),
            ("unmount", m.unmount(&p, &UnmountOptions::new()).await),
            (
                "mount",
                m.mount("tmpfs".as_ref(), &p, "tmpfs", &MountOptions::new())
                    .await,
            ),
        ] {
            let e = r.unwrap_err();
            assert!(
                matches!(&e, MountError::Path(pe) if too_long(pe)),
                "{what} {len}: {e:?}"
            );
        }
    }

    // A component over NAME_MAX (255) in a short path: ENAMETOOLONG in both modes, as the
    // kernel says for the same path.
    let long_name = join(&base, &[b'n'; 256]);
    assert_eq!(
        std::fs::symlink_metadata(sb.local(&long_name))
            .unwrap_err()
            .raw_os_error(),
        Some(36)
    );
    for mode in [Resolve::MustExist, Resolve::AllowMissing] {
        let e = ns.resolve(&long_name, mode).await.unwrap_err();
        assert!(too_long(&e), "NAME_MAX {mode:?}: {e:?}");
    }
    let ok_name = join(&base, &[b'n'; 255]);
    assert!(ns
        .resolve(&ok_name, Resolve::MustExist)
        .await
        .unwrap_err()
        .is_not_found());
}

// ----------------------------------------------------------------- awkward mount points

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escaped_mount_point_names_agree_with_findmnt_and_mountpoint() {
    if skip_without_namespaces("escaped_mount_point_names_agree_with_findmnt_and_mountpoint") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    // (mounted, decoy): each decoy is the name the kernel's mountinfo escaping gives the other,
    // so a parser that does not decode (Go's mount-utils), or decodes twice, picks the wrong one.
    let pairs: [(&[u8], &[u8]); 6] = [
        (b"new\nline", b"new\\012line"),
        (b"tab\there", b"tab\\011here"),
        (b"back\\slash", b"back\\134slash"),
        (b"sp ace", b"sp\\040ace"),
        (b"lit\\040eral", b"lit eral"),
        (b"both\\134\\ \n\t", b"both\\134\\134\\134\\040\\012\\011"),
    ];
    for (a, b) in pairs {
        tree.mkdir_all(a);
        tree.mkdir_all(b);
    }
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = mounter(&ns);
    for (a, _) in pairs {
        m.mount(
            "hx".as_ref(),
            &tree.host_path(a),
            "tmpfs",
            &MountOptions::new().option("size=1m"),
        )
        .await
        .unwrap_or_else(|e| panic!("mount at {}: {e}", a.escape_ascii()));
    }
    let scratch = tree.host.as_os_str().as_bytes().to_vec();
    let under =
        |p: &[u8]| p.len() > scratch.len() && p.starts_with(&scratch) && p[scratch.len()] == b'/';

    // list(): exactly the mounted names, decoded.
    let ours: BTreeSet<Vec<u8>> = m
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.mount_point().as_os_str().as_bytes().to_vec())
        .filter(|p| under(p))
        .collect();
    let want: BTreeSet<Vec<u8>> = pairs
        .iter()
        .map(|(a, _)| tree.host_path(a).as_os_str().as_bytes().to_vec())
        .collect();
    assert_eq!(ours, want, "list()");
    // findmnt --json in the sandbox decodes too: the same set.
    let out = sb.oracle(&[
        OsStr::new("findmnt"),
        OsStr::new("--json"),
        OsStr::new("--list"),
        OsStr::new("-o"),
        OsStr::new("TARGET"),
    ]);
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs: BTreeSet<Vec<u8>> = v["filesystems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["target"].as_str().unwrap().as_bytes().to_vec())
        .filter(|p| under(p))
        .collect();
    assert_eq!(ours, theirs, "list() vs findmnt");

    // is_mount_point vs mountpoint(1), for every name and decoy, before and after unmounting.
    let agree = |phase: &'static str| {
        let m = &m;
        let sb = &sb;
        let tree = &tree;
        async move {
            for (a, b) in pairs {
                for name in [a, b] {
                    let p = tree.host_path(name);
                    let ours = m.is_mount_point(&p).await.unwrap();
                    let likely_not = m.is_likely_not_mount_point(&p).await.unwrap();
                    let mp =
                        sb.oracle(&[OsStr::new("mountpoint"), OsStr::new("-q"), p.as_os_str()]);
                    let theirs = match mp.status.code() {
                        Some(0) => true,
                        Some(32) => false,
                        _ => panic!("mountpoint {}: {mp:?}", name.escape_ascii()),
                    };
                    assert_eq!(
                        ours,
                        theirs,
                        "{phase}: is_mount_point({})",
                        name.escape_ascii()
                    );
                    assert_eq!(
                        likely_not,
                        !theirs,
                        "{phase}: is_likely_not({})",
                        name.escape_ascii()
                    );
                }
            }
        }
    };
    agree("mounted").await;
    for (a, _) in pairs {
        let p = tree.host_path(a);
        assert!(m.is_mount_point(&p).await.unwrap());
        m.unmount(&p, &UnmountOptions::new()).await.unwrap();
    }
    agree("unmounted").await;
    assert!(m
        .list()
        .await
        .unwrap()
        .iter()
        .all(|r| !under(r.mount_point().as_os_str().as_bytes())));
}

// ------------------------------------------------------------------ RENAME_EXCHANGE race

/// The race tree, in a host root that is a plain directory: `race/dir` (a directory) and
/// `race/link` (→ `/`) swap places; so do `race/dir2` (a directory) and `race/up`
/// (→ `../../..`, which the kernel's `..` would take out of the root). `outside-only` exists
/// next to the root, never in it.
struct Race {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    top: PathBuf,
}

fn race_tree() -> Race {
    let tmp = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(tmp.path()).unwrap();
    let t = Tree::at(&top, "/");
    t.mkdir_all("root/race/dir/sub");
    t.file("root/race/dir/sub/dirfile", b"d");
    t.symlink("/", "root/race/link");
    t.mkdir_all("root/race/dir2");
    t.file("root/race/dir2/x", b"x");
    t.symlink("../../..", "root/race/up");
    t.mkdir_all("root/sub");
    t.file("root/sub/rootfile", b"r");
    t.file("root/x", b"root x");
    t.file("outside-only", b"outside");
    Race {
        _tmp: tmp,
        root: top.join("root"),
        top,
    }
}

/// A race query: the path, the mode, and every answer allowed (`Err(())`: not found).
type RaceQuery = (&'static str, Resolve, Vec<Result<&'static str, ()>>);

/// Queries and every answer allowed: the answer of either state of each pair (atomically
/// swapped), and for [`Resolve::MustExist`] also any other name, in some state, of an object
/// one of those answers names. The kernel's answer (`resolve`'s fast path) is the object's
/// symlink-free name when it was checked, which after a swap is the swapped name of the same
/// object (`/race/link/sub/dirfile` for the `dirfile` reached through `/race/dir`); never a name
/// outside the root, and never an object no resolution of the query reaches.
fn race_queries() -> Vec<RaceQuery> {
    use Resolve::{AllowMissing as M, MustExist as E};
    vec![
        (
            "/race/dir/sub/dirfile",
            E,
            vec![
                Ok("/race/dir/sub/dirfile"),
                Ok("/race/link/sub/dirfile"),
                Err(()),
            ],
        ),
        (
            "/race/link/sub/dirfile",
            E,
            vec![
                Ok("/race/link/sub/dirfile"),
                Ok("/race/dir/sub/dirfile"),
                Err(()),
            ],
        ),
        (
            "/race/dir/sub/rootfile",
            E,
            vec![Ok("/sub/rootfile"), Err(())],
        ),
        ("/race/dir/../../..", E, vec![Ok("/")]),
        ("/race/link/../../..", E, vec![Ok("/")]),
        (
            "/race/dir2/x",
            E,
            vec![Ok("/race/dir2/x"), Ok("/race/up/x"), Ok("/x")],
        ),
        (
            "/race/up/x",
            E,
            vec![Ok("/race/up/x"), Ok("/race/dir2/x"), Ok("/x")],
        ),
        ("/race/dir2/../../outside-only", E, vec![Err(())]),
        ("/race/up/outside-only", E, vec![Err(())]),
        ("/race/up/../outside-only", E, vec![Err(())]),
        (
            "/race/dir2/../../../../outside-only",
            M,
            vec![Ok("/outside-only")],
        ),
        (
            "/race/dir/sub/none",
            M,
            vec![Ok("/race/dir/sub/none"), Ok("/sub/none")],
        ),
    ]
}

fn swapper(
    root: PathBuf,
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let race = rustix::fs::open(
            root.join("race"),
            rustix::fs::OFlags::PATH
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::NOFOLLOW
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        while !stop.load(Ordering::Relaxed) {
            for (a, b) in [("dir", "link"), ("dir2", "up")] {
                rustix::fs::renameat_with(&race, a, &race, b, rustix::fs::RenameFlags::EXCHANGE)
                    .unwrap();
            }
            swaps.fetch_add(1, Ordering::Relaxed);
        }
    })
}

fn check_race_answer(
    q: &str,
    got: &Result<PathBuf, PathError>,
    allowed: &[Result<&'static str, ()>],
    seen: &mut BTreeSet<(usize, String)>,
    qi: usize,
) {
    let ok = match got {
        Ok(p) => {
            assert!(
                p.is_absolute() && !p.components().any(|c| c.as_os_str() == ".."),
                "{q}: {}",
                p.display()
            );
            allowed
                .iter()
                .any(|a| a.as_ref().is_ok_and(|w| Path::new(w) == p))
        }
        Err(e) => {
            // Missing (or, mid-swap, "not a directory"): allowed only where the query may fail.
            assert!(
                e.is_not_found() || e.raw_os_error() == Some(20),
                "{q}: unexpected error {e:?}"
            );
            allowed.iter().any(|a| a.is_err())
        }
    };
    assert!(ok, "{q}: {got:?} is none of {allowed:?}");
    seen.insert((qi, format!("{:?}", got.as_ref().map_err(|_| ()))));
}

#[test]
fn rename_exchange_race_never_resolves_outside_the_root() {
    let race = race_tree();
    let rootfs = hostexec_rootfs::RootFs::open(&race.root).unwrap();
    let queries = race_queries();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let t = swapper(race.root.clone(), stop.clone(), swaps.clone());
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut calls = 0usize;
    let mut made = 0usize;
    while Instant::now() < deadline {
        // File operations under the same race: whatever they create lands inside the root.
        // Up to 1,000 distinct names, then the same ones again (bounded directory sizes).
        made = (made + 1).min(1000);
        for p in [
            format!("/race/up/made-{made}/deep"),
            format!("/race/dir2/../../../made-{made}"),
        ] {
            let _ = rootfs.create_dir_all(Path::new(&p));
        }
        for p in [
            format!("/race/up/file-{made}"),
            format!("/race/dir2/../../file-{made}"),
        ] {
            let _ = rootfs.create_file(Path::new(&p));
        }
        for (qi, (q, mode, allowed)) in queries.iter().enumerate() {
            let got = rootfs.resolve(Path::new(q), *mode);
            check_race_answer(q, &got, allowed, &mut seen, qi);
            calls += 1;
            // The object the walk ends on is inside the root, whatever name it had then.
            if *mode == Resolve::MustExist {
                if let Ok((host, fd)) = rootfs.open_resolved(Path::new(q), true) {
                    let at =
                        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
                    assert!(
                        at.starts_with(&race.root),
                        "{q} → {} opened {}",
                        host.display(),
                        at.display()
                    );
                    assert!(!at.starts_with(race.top.join("outside-only")));
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    let outside: BTreeSet<OsString> = std::fs::read_dir(&race.top)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside,
        BTreeSet::from(["root".into(), "outside-only".into()]),
        "something was created outside the root"
    );
    // ... and they did create, inside (at the root, or in a swapped directory).
    let real_dir = ["race/dir2", "race/up"]
        .into_iter()
        .map(|d| race.root.join(d))
        .find(|d| std::fs::symlink_metadata(d).unwrap().is_dir())
        .unwrap();
    let inside = std::fs::read_dir(&race.root).unwrap().count()
        + std::fs::read_dir(real_dir).unwrap().count();
    assert!(inside > 2 * made, "{inside} entries for {made} rounds");
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!("{calls} resolutions during {swaps} swap rounds; outcomes {seen:?}");
    assert!(swaps > 1000, "the swapper barely ran ({swaps})");
    // Both states were really met: each query with more than one answer gave two at least.
    for (qi, (q, _, allowed)) in queries.iter().enumerate() {
        if allowed.len() >= 2 {
            let n = seen.iter().filter(|(i, _)| *i == qi).count();
            assert!(n >= 2, "{q}: only one state was ever seen");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_exchange_race_through_nsenter_both_launchers() {
    let race = race_tree();
    let queries = race_queries();
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let t = swapper(race.root.clone(), stop.clone(), swaps.clone());
    let mut seen = BTreeSet::new();
    for launcher in [Launcher::HostThread, Launcher::NsenterBinary] {
        // No namespace to join: the host is the directory, "outside" is well defined.
        let ns = NsEnter::builder(Target::host_root(&race.root).namespaces(&[]))
            .launcher(launcher)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            let mut set = tokio::task::JoinSet::new();
            for (qi, (q, mode, _)) in queries.iter().enumerate() {
                let ns = ns.clone();
                let (q, mode) = (*q, *mode);
                set.spawn(async move { (qi, ns.resolve(Path::new(q), mode).await) });
            }
            while let Some(r) = set.join_next().await {
                let (qi, got) = r.unwrap();
                let (q, _, allowed) = &queries[qi];
                check_race_answer(q, &got, allowed, &mut seen, qi);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    assert!(swaps.load(Ordering::Relaxed) > 100);
    assert!(
        seen.len() > queries.len(),
        "no query ever saw the other state: {seen:?}"
    );
}

// ------------------------------------------------------------------------------ PID reuse

const PID_REUSE_CHILD: &str = "HOSTEXEC_STRESS_PID_REUSE_CHILD";
const PID_REUSE_TEST: &str = "a_pid_target_that_exited_fails_even_once_its_pid_is_reused";

/// A process in a mount namespace of its own with a tmpfs at `dir` holding `marker`.
fn marked_process(dir: &Path, marker: &str) -> std::process::Child {
    let mut c = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount -t tmpfs hostexec-pid-test "$1" && : > "$1/$2" && echo ready && exec sleep 1000"#)
        .args([OsStr::new("sh"), dir.as_os_str(), OsStr::new(marker)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    c
}

fn gone_cmd(e: &CommandError) -> bool {
    matches!(e, CommandError::HostUnavailable { .. }) && e.raw_os_error() == Some(3)
}

fn gone_path(e: &PathError) -> bool {
    matches!(e, PathError::HostUnavailable { .. }) && e.raw_os_error() == Some(3)
}

/// The test proper, run as PID 1 of a fresh PID namespace (with its own /proc), where nothing
/// else forks: there `ns_last_pid` hands the dead target's PID to the impostor.
fn pid_reuse_child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let original = dir.join("original");
    let impostor = dir.join("impostor");

    let mut target = marked_process(&dir, "original");
    let pid = target.id();
    let thread = NsEnter::new(Target::pid(pid)).unwrap();
    let binary = NsEnter::builder(Target::pid(pid))
        .launcher(Launcher::NsenterBinary)
        .build()
        .unwrap();
    rt.block_on(async {
        for ns in [&thread, &binary] {
            assert_eq!(
                ns.resolve(&original, Resolve::MustExist).await.unwrap(),
                original
            );
            let out = ns.run(HostCommand::new("ls").arg(&dir)).await.unwrap();
            assert_eq!(out.stdout, b"original\n", "{:?}", ns.launcher());
        }
    });

    target.kill().unwrap();
    target.wait().unwrap();
    let mut newcomer = None;
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", format!("{}", pid - 1)).unwrap();
        let c = marked_process(&dir, "impostor");
        if c.id() == pid {
            newcomer = Some(c);
            break;
        }
        let mut c = c;
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let mut newcomer = newcomer.expect("the PID was not handed out again");
    // The PID really is another process now, in another mount namespace.
    let fresh = NsEnter::new(Target::pid(pid)).unwrap();
    rt.block_on(async {
        assert!(fresh.resolve(&impostor, Resolve::MustExist).await.is_ok());
        assert!(fresh
            .resolve(&original, Resolve::MustExist)
            .await
            .unwrap_err()
            .is_not_found());

        for ns in [&thread, &binary] {
            let l = format!("{:?}", ns.launcher());
            let e = ns.run(HostCommand::new("ls").arg(&dir)).await.unwrap_err();
            assert!(gone_cmd(&e), "{l} run: {e:?}");
            let e = ns
                .run(HostCommand::new("/bin/ls").arg(&dir))
                .await
                .unwrap_err();
            assert!(gone_cmd(&e), "{l} run by path: {e:?}");
            let e = ns.look_path(OsStr::new("ls")).await.unwrap_err();
            assert!(gone_cmd(&e), "{l} look_path: {e:?}");
            for q in [&original, &impostor] {
                for mode in [Resolve::MustExist, Resolve::AllowMissing] {
                    let e = ns.resolve(q, mode).await.unwrap_err();
                    assert!(gone_path(&e), "{l} resolve {}: {e:?}", q.display());
                }
                assert!(gone_path(&ns.stat(q, true).await.unwrap_err()), "{l} stat");
                assert!(
                    gone_path(&ns.read_file(q, 10).await.unwrap_err()),
                    "{l} read_file"
                );
            }
            assert!(
                gone_path(&ns.create_file(&dir.join("new")).await.unwrap_err()),
                "{l} create_file"
            );
            assert!(
                gone_path(&ns.create_dir_all(&dir.join("newdir")).await.unwrap_err()),
                "{l} mkdir"
            );
            assert!(
                gone_path(&ns.read_mountinfo().await.unwrap_err()),
                "{l} read_mountinfo"
            );
            let m = HostMounter::new(ns.clone());
            assert!(m.list().await.is_err(), "{l} list");
            assert!(m.is_mount_point(&dir).await.is_err(), "{l} is_mount_point");
            assert!(
                m.mount("x".as_ref(), &dir, "tmpfs", &MountOptions::new())
                    .await
                    .is_err(),
                "{l} mount"
            );
        }
        assert!(
            thread.on_host_thread(|| ()).await.is_err(),
            "on_host_thread"
        );
    });
    // Nothing reached the impostor's tmpfs.
    let ls = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-m", "--", "ls"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(ls.stdout, b"impostor\n");
    newcomer.kill().unwrap();
    newcomer.wait().unwrap();
    println!("PID-REUSE-CHILD-DONE pid {pid}");
}

#[test]
fn a_pid_target_that_exited_fails_even_once_its_pid_is_reused() {
    if std::env::var_os(PID_REUSE_CHILD).is_some() {
        return pid_reuse_child();
    }
    if skip_without_namespaces(PID_REUSE_TEST) {
        return;
    }
    let mut child = Command::new("unshare");
    child
        .args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--mount-proc",
            "--",
        ])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", PID_REUSE_TEST, "--nocapture", "--test-threads=1"])
        .env(PID_REUSE_CHILD, "1");
    common::run_child_test(child, "PID-REUSE-CHILD-DONE");
}

/// `local_path` on a `Target::pid` whose process exited (and whose PID may be another's) must
/// fail: `/proc/PID/root/…` would be a path into whatever process has the PID now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_path_of_an_exited_pid_target_fails() {
    let mut c = Command::new("sleep").arg("1000").spawn().unwrap();
    let ns = NsEnter::builder(Target::pid(c.id()).namespaces(&[]))
        .build()
        .unwrap();
    assert!(ns.local_path(Path::new("/etc")).is_ok());
    c.kill().unwrap();
    c.wait().unwrap();
    // local_path names /proc/PID: it asks the pidfd itself, so it fails at once.
    let r = ns.local_path(Path::new("/etc"));
    assert!(r.is_err(), "local_path after exit: {r:?}");
    // And the exit it saw is every call's: the inline resolve (which reads the pidfd
    // watcher's flag) fails too, without waiting for the watcher.
    assert!(ns
        .resolve(Path::new("/"), Resolve::MustExist)
        .await
        .is_err());
}
