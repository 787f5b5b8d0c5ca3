//! Unit and table tests of the walk rules (the differential fuzzing is in `fuzz.rs`).

use super::*;
use std::collections::BTreeSet;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

pub(crate) fn os(b: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(b))
}

/// A temp dir with `f` (file), `d/` with `d/x`, and links.
struct Tree {
    dir: tempfile::TempDir,
    root: RootFs,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("d/e")).unwrap();
        std::fs::write(p.join("f"), b"file").unwrap();
        std::fs::write(p.join("d/x"), b"x").unwrap();
        symlink("d", p.join("dl")).unwrap();
        symlink("f", p.join("fl")).unwrap();
        symlink("/d/e", p.join("abs")).unwrap();
        symlink("nowhere/q", p.join("dang")).unwrap();
        symlink("loop", p.join("loop")).unwrap();
        symlink("pong", p.join("ping")).unwrap();
        symlink("ping", p.join("pong")).unwrap();
        symlink("../../../../..", p.join("d/up")).unwrap();
        symlink("/../../d", p.join("absup")).unwrap();
        let root = RootFs::open(p).unwrap();
        Tree { dir, root }
    }
    fn link(&self, target: &str, at: &str) {
        symlink(target, self.dir.path().join(at)).unwrap();
    }
    fn ok(&self, q: &str, mode: Resolve) -> String {
        match self.root.resolve(Path::new(q), mode) {
            Ok(p) => p.to_str().unwrap().to_owned(),
            Err(e) => panic!("{q} ({mode:?}): {e}"),
        }
    }
    fn err(&self, q: &str, mode: Resolve) -> PathError {
        match self.root.resolve(Path::new(q), mode) {
            Ok(p) => panic!("{q} ({mode:?}) resolved to {}", p.display()),
            Err(e) => {
                assert_eq!(e.path(), Some(Path::new(q)), "errors name the path asked");
                e
            }
        }
    }
}

use Resolve::{AllowMissing as M, MustExist as E};

#[test]
fn table_both_modes() {
    let t = Tree::new();
    // (query, -e answer or error errno, -m answer); errno as in PathError::raw_os_error.
    type Want = Result<&'static str, i32>;
    let cases: &[(&str, Want, Want)] = &[
        ("/", Ok("/"), Ok("/")),
        ("//", Ok("/"), Ok("/")),
        ("/f", Ok("/f"), Ok("/f")),
        ("/d/.", Ok("/d"), Ok("/d")),
        ("//d//x", Ok("/d/x"), Ok("/d/x")),
        ("/dl/", Ok("/d"), Ok("/d")),
        ("/dl/x", Ok("/d/x"), Ok("/d/x")),
        ("/fl", Ok("/f"), Ok("/f")),
        ("/f/", Err(20), Ok("/f")),
        ("/f/.", Err(20), Ok("/f")),
        ("/f/..", Err(20), Ok("/")),
        ("/f/../d", Err(20), Ok("/d")),
        ("/f/x", Err(20), Ok("/f/x")),
        ("/fl/", Err(20), Ok("/f")),
        ("/missing", Err(2), Ok("/missing")),
        ("/missing/..", Err(2), Ok("/")),
        ("/missing/../dl/x", Err(2), Ok("/d/x")),
        ("/a/missing/../../dl", Err(2), Ok("/d")),
        ("/dang", Err(2), Ok("/nowhere/q")),
        ("/dang/../y", Err(2), Ok("/nowhere/y")),
        // `..` clamps at the root (GNU would climb to the temp dir's parent).
        ("/..", Ok("/"), Ok("/")),
        ("/../../d/../../f", Ok("/f"), Ok("/f")),
        ("/d/up", Ok("/"), Ok("/")),
        ("/d/up/f", Ok("/f"), Ok("/f")),
        // Absolute targets are read against the root.
        ("/abs", Ok("/d/e"), Ok("/d/e")),
        ("/abs/../x", Ok("/d/x"), Ok("/d/x")),
        ("/absup/x", Ok("/d/x"), Ok("/d/x")),
        // Loops are errors in both modes (GNU -m returns the path).
        ("/loop", Err(40), Err(40)),
        ("/loop/foo", Err(40), Err(40)),
        ("/ping/x", Err(40), Err(40)),
        ("/loop/../f", Err(40), Err(40)),
    ];
    for (q, e, m) in cases {
        for (mode, want) in [(E, e), (M, m)] {
            match want {
                Ok(p) => assert_eq!(t.ok(q, mode), *p, "{q} {mode:?}"),
                Err(n) => assert_eq!(t.err(q, mode).raw_os_error(), Some(*n), "{q} {mode:?}"),
            }
        }
    }
}

/// [`Resolve::AllButLast`] against GNU `readlink -f` and GNU `realpath` (no option), both run
/// on the tree's directory itself (relative links only, no `..` above the root, where the two
/// must agree byte for byte, errors included).
#[test]
fn all_but_last_is_readlink_f() {
    let t = Tree::new();
    t.link("d/nothere", "dang_ok");
    t.link("dang_ok", "dang_ok2");
    t.link("d/missing/x", "dang_deep");
    // (query, answer or errno)
    let cases: &[(&str, Result<&str, i32>)] = &[
        ("/", Ok("/")),
        ("/f", Ok("/f")),
        ("/d/.", Ok("/d")),
        ("/dl/x", Ok("/d/x")),
        ("/missing", Ok("/missing")),
        ("/d/missing", Ok("/d/missing")),
        ("/d/missing/", Ok("/d/missing")),
        ("/d/missing//", Ok("/d/missing")),
        ("/dl/missing", Ok("/d/missing")),
        ("/dang_ok", Ok("/d/nothere")),
        ("/dang_ok/", Ok("/d/nothere")),
        ("/dang_ok2", Ok("/d/nothere")),
        ("/dang", Err(2)),
        ("/dang_deep", Err(2)),
        ("/missing/..", Err(2)),
        ("/missing/.", Err(2)),
        ("/d/missing/x", Err(2)),
        ("/f/", Err(20)),
        ("/f/x", Err(20)),
        ("/f/..", Err(20)),
        ("/fl/", Err(20)),
        ("/loop", Err(40)),
        ("/ping/x", Err(40)),
    ];
    let errno = |msg: &str| match msg.trim_end() {
        "No such file or directory" => 2,
        "Not a directory" => 20,
        "Too many levels of symbolic links" => 40,
        other => panic!("unexpected message {other:?}"),
    };
    let top = t.dir.path().canonicalize().unwrap();
    for (q, want) in cases {
        let ours = match t.root.resolve(Path::new(q), Resolve::AllButLast) {
            Ok(p) => Ok(p.to_str().unwrap().to_owned()),
            Err(e) => Err(e.raw_os_error().unwrap()),
        };
        assert_eq!(ours.as_deref().map_err(|e| *e), *want, "{q}");
        let local = format!("{}{q}", top.display());
        for tool in [&["realpath", "--"][..], &["readlink", "-fv", "--"][..]] {
            let out = std::process::Command::new(tool[0])
                .args(&tool[1..])
                .arg(&local)
                .output()
                .unwrap();
            let gnu = if out.status.success() {
                let text = String::from_utf8(out.stdout).unwrap();
                let host = text.trim_end().strip_prefix(top.to_str().unwrap()).unwrap();
                Ok(if host.is_empty() {
                    "/".to_owned()
                } else {
                    host.to_owned()
                })
            } else {
                let err = String::from_utf8_lossy(&out.stderr).into_owned();
                let (_, msg) = err.trim_end().rsplit_once(": ").unwrap();
                Err(errno(msg))
            };
            assert_eq!(gnu, ours, "{q}: GNU {} disagrees", tool[0]);
        }
    }
}

/// A chain `c0 -> c1 -> … -> c{n-1} -> d`: n hops.
fn chain(t: &Tree, prefix: &str, n: usize) {
    for i in 0..n {
        let target = if i + 1 == n {
            "d".to_owned()
        } else {
            format!("{prefix}{}", i + 1)
        };
        t.link(&target, &format!("{prefix}{i}"));
    }
}

#[test]
fn forty_hops_resolve_forty_one_are_a_loop() {
    let _oracle = crate::kernel_oracle_lock();
    let t = Tree::new();
    chain(&t, "c", 40);
    chain(&t, "k", 41);
    assert_eq!(t.ok("/c0/x", E), "/d/x");
    assert_eq!(t.ok("/c0/x", M), "/d/x");
    // GNU realpath follows any chain without a cycle; the contract says ELOOP, as the kernel.
    assert!(matches!(t.err("/k0/x", E), PathError::Loop { .. }));
    assert!(matches!(t.err("/k0/x", M), PathError::Loop { .. }));
    // The count is per resolution, not per link: 40 + 1 is too many.
    t.link("/c0", "d/e/back");
    assert!(matches!(t.err("/c1/e/back", E), PathError::Loop { .. }));
    // The kernel agrees on both sides of the limit.
    let k = |q: &str| {
        rustix::fs::openat2(
            t.root.as_fd(),
            q,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            rustix::fs::ResolveFlags::IN_ROOT,
        )
        .map(drop)
    };
    assert_eq!(k("/c0/x"), Ok(()));
    assert_eq!(k("/k0/x"), Err(Errno::LOOP));
    assert_eq!(k("/c1/e/back"), Err(Errno::LOOP));
}

#[test]
fn input_checks() {
    let t = Tree::new();
    for mode in [E, M] {
        assert!(
            matches!(t.root.resolve(Path::new("f"), mode), Err(PathError::NotAbsolute { path }) if path == Path::new("f"))
        );
        assert!(matches!(
            t.root.resolve(Path::new(""), mode),
            Err(PathError::NotAbsolute { .. })
        ));
        assert!(matches!(
            t.root.resolve(os(b"/d\0x"), mode),
            Err(PathError::ContainsNul { .. })
        ));
        let long_name = format!("/{}", "n".repeat(NAME_MAX + 1));
        assert!(matches!(
            t.err(&long_name, mode),
            PathError::NameTooLong { .. }
        ));
        // Exactly NAME_MAX is fine (and missing).
        let max_name = format!("/{}", "n".repeat(NAME_MAX));
        if mode == M {
            assert_eq!(t.ok(&max_name, mode), max_name);
        } else {
            assert!(t.err(&max_name, mode).is_not_found());
        }
        let long_path = "/a".repeat(PATH_MAX / 2);
        assert!(matches!(
            t.err(&long_path, mode),
            PathError::NameTooLong { .. }
        ));
    }
    // A result that grows past PATH_MAX through links is refused too.
    let long_target = format!("/{}", "b".repeat(250)).repeat(10);
    t.link(&long_target, "big");
    let query = format!("/big{}", format!("/{}", "c".repeat(250)).repeat(7));
    assert!(query.len() < PATH_MAX);
    assert!(matches!(t.err(&query, M), PathError::NameTooLong { .. }));
}

#[test]
fn non_utf8_names_round_trip() {
    let t = Tree::new();
    let name = OsStr::from_bytes(b"n\xff\xfe m");
    std::fs::create_dir(t.dir.path().join(name)).unwrap();
    symlink(
        OsStr::from_bytes(b"n\xff\xfe m"),
        t.dir.path().join("to\x01"),
    )
    .unwrap();
    assert_eq!(
        t.root.resolve(os(b"/to\x01/"), E).unwrap(),
        os(b"/n\xff\xfe m")
    );
    assert_eq!(
        t.root.resolve(os(b"/to\x01/\x80missing"), M).unwrap(),
        os(b"/n\xff\xfe m/\x80missing")
    );
    let e = t.root.resolve(os(b"/\xc3missing"), E).unwrap_err();
    assert_eq!(e.path(), Some(os(b"/\xc3missing")));
}

#[test]
fn absolute_links_never_reach_the_callers_root() {
    let t = Tree::new();
    // A directory that exists in this process's view, outside the root.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"s").unwrap();
    let out = outside.path().to_str().unwrap().to_owned();
    t.link(&out, "toout");
    t.link("/", "slash");
    t.link("../../../../../../../../..", "dotdots");
    assert!(t.err("/toout/secret", E).is_not_found());
    assert_eq!(t.ok("/toout/secret", M), format!("{out}/secret"));
    assert_eq!(t.ok("/slash/slash/../f", E), "/f");
    assert_eq!(t.ok("/dotdots/d/x", E), "/d/x");
    assert_eq!(t.ok("/dotdots/../../etc", M), "/etc");
    // What looks like the caller's /etc/passwd is the root's.
    assert!(t.err("/dotdots/etc/passwd", E).is_not_found());
}

#[test]
fn open_resolved_and_stat() {
    let t = Tree::new();
    let (p, fd) = t.root.open_resolved(Path::new("/fl"), true).unwrap();
    assert_eq!(p, Path::new("/f"));
    let st = rustix::fs::fstat(&fd).unwrap();
    assert_eq!(FileType::from_raw_mode(st.st_mode), FileType::RegularFile);
    let (p, fd) = t.root.open_resolved(Path::new("/dl/../fl"), false).unwrap();
    assert_eq!(p, Path::new("/fl"));
    assert_eq!(
        rustix::fs::readlinkat(&fd, "", Vec::new())
            .unwrap()
            .to_bytes(),
        b"f"
    );
    // A trailing slash follows the final link even without follow.
    let (p, _) = t.root.open_resolved(Path::new("/dl/"), false).unwrap();
    assert_eq!(p, Path::new("/d"));
    let (p, fd) = t.root.open_resolved(Path::new("/.."), false).unwrap();
    assert_eq!(p, Path::new("/"));
    let st = rustix::fs::fstat(&fd).unwrap();
    let real = std::fs::metadata(t.dir.path()).unwrap();
    assert_eq!(st.st_ino, real.ino());
    assert!(t.root.open_resolved(Path::new("/dang"), false).is_ok());
    assert!(t
        .root
        .open_resolved(Path::new("/dang"), true)
        .unwrap_err()
        .is_not_found());

    let f = t.root.stat(Path::new("/fl"), true).unwrap();
    assert_eq!(f.kind, FileKind::File);
    assert_eq!(f.size, 4);
    let meta = std::fs::metadata(t.dir.path().join("f")).unwrap();
    assert_eq!(f.ino, meta.ino());
    assert_eq!(f.mode, meta.mode());
    assert_eq!(f.uid, meta.uid());
    assert_eq!(
        f.dev,
        (rustix::fs::major(meta.dev()), rustix::fs::minor(meta.dev()))
    );
    // Kernel 5.8+: a temp dir's file is not a mount root, and a mount ID is reported.
    assert_eq!(f.mount_root, Some(false));
    assert!(f.mount_id.is_some());
    let l = t.root.stat(Path::new("/fl"), false).unwrap();
    assert_eq!(l.kind, FileKind::Symlink);
    assert_eq!(l.size, 1);
    assert_eq!(
        t.root.stat(Path::new("/dl"), true).unwrap().kind,
        FileKind::Dir
    );
    assert!(matches!(
        t.root.stat(Path::new("/loop"), true),
        Err(PathError::Loop { path }) if path == Path::new("/loop")
    ));
    assert!(matches!(
        t.root.stat(Path::new("/f/"), false),
        Err(PathError::NotADirectory { .. })
    ));
    let dev_null = RootFs::open(Path::new("/"))
        .unwrap()
        .stat(Path::new("/dev/null"), true)
        .unwrap();
    assert_eq!(dev_null.kind, FileKind::CharDevice);
    assert_eq!(dev_null.rdev, (1, 3));
    // "/" of the process is a mount root.
    assert_eq!(
        RootFs::open(Path::new("/"))
            .unwrap()
            .stat(Path::new("/"), true)
            .unwrap()
            .mount_root,
        Some(true)
    );
}

#[test]
fn handles() {
    let t = Tree::new();
    let c = t.root.try_clone().unwrap();
    assert_eq!(c.resolve(Path::new("/dl"), E).unwrap(), Path::new("/d"));
    let fd = rustix::fs::open(
        t.dir.path(),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let r = RootFs::from_fd(fd);
    assert_eq!(r.resolve(Path::new("/abs"), E).unwrap(), Path::new("/d/e"));
    assert!(format!("{r:?}").contains("RootFs"));
    fn send_sync<T: Send + Sync>() {}
    send_sync::<RootFs>();
    assert!(RootFs::open(&t.dir.path().join("f")).is_err());
}

#[test]
fn read_file_bounded() {
    let t = Tree::new();
    assert_eq!(t.root.read_file(Path::new("/fl"), 4).unwrap(), b"file");
    assert_eq!(t.root.read_file(Path::new("/abs/../x"), 100).unwrap(), b"x");
    let e = t.root.read_file(Path::new("/fl"), 3).unwrap_err();
    assert!(matches!(&e, PathError::Io { path, .. } if path == Path::new("/fl")));
    assert_eq!(e.raw_os_error(), Some(Errno::FBIG.raw_os_error()));
    assert_eq!(
        t.root
            .read_file(Path::new("/d"), 10)
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::ISDIR.raw_os_error())
    );
    assert!(t
        .root
        .read_file(Path::new("/dang"), 10)
        .unwrap_err()
        .is_not_found());
    assert!(matches!(
        t.root.read_file(Path::new("/loop"), 10),
        Err(PathError::Loop { .. })
    ));
    // A file whose size says 0 (procfs) is still read.
    let proc_root = RootFs::open(Path::new("/proc/self")).unwrap();
    let status = proc_root.read_file(Path::new("/status"), 1 << 20).unwrap();
    assert!(status.starts_with(b"Name:"));
    // A fifo does not block the read.
    nix::unistd::mkfifo(
        &t.dir.path().join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    assert_eq!(t.root.read_file(Path::new("/fifo"), 10).unwrap(), b"");
}

#[test]
fn create_dir_all_inside_the_root() {
    let t = Tree::new();
    let p = t.dir.path();
    t.root.create_dir_all(Path::new("/new/a/b")).unwrap();
    assert!(p.join("new/a/b").is_dir());
    assert_eq!(
        p.join("new/a").metadata().unwrap().mode() & 0o777,
        0o755 & !umask()
    );
    // Again: nothing to do, no error (mkdir -p).
    t.root.create_dir_all(Path::new("/new/a/b/")).unwrap();
    t.root.create_dir_all(Path::new("/")).unwrap();
    // Through links, inside the root: `dang -> nowhere/q`, `absup -> /../../d`.
    t.root.create_dir_all(Path::new("/dang/r")).unwrap();
    assert!(p.join("nowhere/q/r").is_dir());
    t.root.create_dir_all(Path::new("/absup/made")).unwrap();
    assert!(p.join("d/made").is_dir());
    // `..` after a missing name: made too, as by `mkdir -p` (and the kernel then agrees).
    t.root.create_dir_all(Path::new("/d/zz/../yy")).unwrap();
    assert!(p.join("d/yy").is_dir() && p.join("d/zz").is_dir());
    assert!(
        matches!(t.root.create_dir_all(Path::new("/f")), Err(PathError::AlreadyExists { path }) if path == Path::new("/f"))
    );
    assert!(matches!(
        t.root.create_dir_all(Path::new("/fl")),
        Err(PathError::AlreadyExists { .. })
    ));
    assert!(matches!(
        t.root.create_dir_all(Path::new("/f/sub")),
        Err(PathError::NotADirectory { .. })
    ));
    // A file used as a directory stays an error, even if `..` comes next (as for mkdir -p).
    assert!(matches!(
        t.root.create_dir_all(Path::new("/f/../after")),
        Err(PathError::NotADirectory { .. })
    ));
    assert!(!p.join("after").exists());
    assert!(matches!(
        t.root.create_dir_all(Path::new("/loop/sub")),
        Err(PathError::Loop { .. })
    ));
    assert!(matches!(
        t.root.create_dir_all(Path::new("rel")),
        Err(PathError::NotAbsolute { .. })
    ));
    // Concurrent mkdir -p of the same tree: EEXIST races are tolerated.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| t.root.create_dir_all(Path::new("/race/a/b/c/d/e")).unwrap());
        }
    });
    assert!(p.join("race/a/b/c/d/e").is_dir());
}

fn umask() -> u32 {
    let probe = tempfile::tempdir().unwrap();
    std::fs::create_dir(probe.path().join("m")).unwrap();
    !probe.path().join("m").metadata().unwrap().mode() & 0o777
}

#[test]
fn secret_files_are_new_0600_and_never_follow_a_final_symlink() {
    let t = Tree::new();
    let p = t.dir.path();
    t.root
        .create_secret_file(Path::new("/dl/cred"), b"password=p\n")
        .unwrap();
    let m = p.join("d/cred").metadata().unwrap();
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(std::fs::read(p.join("d/cred")).unwrap(), b"password=p\n");
    // Anything already there is refused and untouched: a file, a dangling link (its
    // target is not created), a link to a file (not written through).
    for q in ["/d/cred", "/dang", "/fl"] {
        assert!(
            matches!(
                t.root.create_secret_file(Path::new(q), b"x"),
                Err(PathError::AlreadyExists { .. })
            ),
            "{q}"
        );
    }
    assert!(!p.join("nowhere").exists());
    assert_eq!(std::fs::read(p.join("f")).unwrap(), b"file");
    assert!(t
        .root
        .create_secret_file(Path::new("/nope/c"), b"x")
        .unwrap_err()
        .is_not_found());
    // unlink(2): the file goes; a final link is removed itself; a directory is refused.
    t.root.remove_file(Path::new("/dl/cred")).unwrap();
    assert!(!p.join("d/cred").exists());
    assert!(t
        .root
        .remove_file(Path::new("/d/cred"))
        .unwrap_err()
        .is_not_found());
    t.root.remove_file(Path::new("/fl")).unwrap();
    assert!(p.join("f").is_file() && p.join("fl").symlink_metadata().is_err());
    assert_eq!(
        t.root
            .remove_file(Path::new("/d"))
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::ISDIR.raw_os_error())
    );
}

#[test]
fn create_file_and_remove_dir() {
    let t = Tree::new();
    let p = t.dir.path();
    t.root.create_file(Path::new("/d/new")).unwrap();
    let m = p.join("d/new").metadata().unwrap();
    assert!(m.is_file() && m.len() == 0);
    assert_eq!(m.mode() & 0o777, 0o644 & !umask());
    // Existing things are left alone, content included.
    t.root.create_file(Path::new("/fl")).unwrap();
    assert_eq!(std::fs::read(p.join("f")).unwrap(), b"file");
    t.root.create_file(Path::new("/d")).unwrap();
    // A dangling absolute link gets its target, inside the root.
    t.link("/d/target", "dangabs");
    t.root.create_file(Path::new("/dangabs")).unwrap();
    assert!(p.join("d/target").is_file());
    // O_CREAT rules: a missing directory on the way is not skipped by a later `..`.
    assert!(t
        .root
        .create_file(Path::new("/nope/../d/nope2"))
        .unwrap_err()
        .is_not_found());
    assert!(!p.join("d/nope2").exists());
    assert!(t
        .root
        .create_file(Path::new("/nope/x"))
        .unwrap_err()
        .is_not_found());
    assert!(matches!(
        t.root.create_file(Path::new("/f/x")),
        Err(PathError::NotADirectory { .. })
    ));
    assert!(matches!(
        t.root.create_file(Path::new("/f/")),
        Err(PathError::NotADirectory { .. })
    ));
    assert!(matches!(
        t.root.create_file(Path::new("/ping")),
        Err(PathError::Loop { .. })
    ));

    t.root.create_dir_all(Path::new("/gone/inner")).unwrap();
    assert!(
        t.root
            .remove_dir(Path::new("/gone"))
            .unwrap_err()
            .raw_os_error()
            == Some(Errno::NOTEMPTY.raw_os_error())
    );
    t.root.remove_dir(Path::new("/gone/inner")).unwrap();
    t.link("gone", "gonel");
    assert!(matches!(
        t.root.remove_dir(Path::new("/gonel")),
        Err(PathError::NotADirectory { .. })
    ));
    assert!(p.join("gone").is_dir());
    // rmdir(2): `link/` is ENOTDIR, a final `.` EINVAL, a final `..` ENOTEMPTY.
    assert!(
        matches!(t.root.remove_dir(Path::new("/gonel/")), Err(PathError::NotADirectory { path }) if path == Path::new("/gonel/"))
    );
    for (q, errno) in [
        ("/gone/.", Errno::INVAL),
        ("/gone/..", Errno::NOTEMPTY),
        ("//", Errno::BUSY),
    ] {
        assert_eq!(
            t.root.remove_dir(Path::new(q)).unwrap_err().raw_os_error(),
            Some(errno.raw_os_error()),
            "{q}"
        );
    }
    assert!(p.join("gone").is_dir());
    t.root.remove_dir(Path::new("/dl/../gone//")).unwrap();
    assert!(!p.join("gone").exists());
    assert!(t
        .root
        .remove_dir(Path::new("/gone"))
        .unwrap_err()
        .is_not_found());
    assert!(matches!(
        t.root.remove_dir(Path::new("/f")),
        Err(PathError::NotADirectory { .. })
    ));
    assert_eq!(
        t.root
            .remove_dir(Path::new("/.."))
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::NOTEMPTY.raw_os_error())
    );
    assert!(p.is_dir());
}

#[test]
fn look_path_in_the_roots_view() {
    let t = Tree::new();
    let p = t.dir.path();
    for d in ["bin", "usr/bin", "usr/sbin", "opt"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    let exe = |rel: &str, mode: u32| {
        std::fs::write(p.join(rel), b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p.join(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    };
    exe("usr/bin/mount", 0o755);
    exe("bin/noexec", 0o644);
    exe("usr/bin/noexec", 0o700);
    exe("mount", 0o755);
    std::fs::create_dir(p.join("usr/sbin/dirprog")).unwrap();
    exe("opt/real", 0o755);
    // An absolute link, read inside the root; the answer keeps the name looked up.
    t.link("/opt/real", "usr/sbin/linked");
    t.link("/does/not/exist", "bin/dangling");
    let dirs = hostexec_api::HOST_BIN_DIRS;
    // Go's order: `/` first.
    assert_eq!(
        t.root.look_path("mount".as_ref(), dirs).unwrap(),
        Path::new("/mount")
    );
    assert_eq!(
        t.root
            .look_path("mount".as_ref(), &["/usr/bin", "/"])
            .unwrap(),
        Path::new("/usr/bin/mount")
    );
    assert_eq!(
        t.root.look_path("noexec".as_ref(), dirs).unwrap(),
        Path::new("/usr/bin/noexec")
    );
    assert_eq!(
        t.root.look_path("linked".as_ref(), dirs).unwrap(),
        Path::new("/usr/sbin/linked")
    );
    match t.root.look_path("dirprog".as_ref(), dirs) {
        Err(CommandError::NotFound { program, searched }) => {
            assert_eq!(program, "dirprog");
            assert_eq!(searched, dirs.iter().map(PathBuf::from).collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.root.look_path("dangling".as_ref(), dirs),
        Err(CommandError::NotFound { .. })
    ));
    for bad in ["", "a/b", "..", "/mount"] {
        assert!(
            matches!(
                t.root.look_path(bad.as_ref(), dirs),
                Err(CommandError::InvalidInput { .. })
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        t.root.look_path(OsStr::from_bytes(b"a\0"), dirs),
        Err(CommandError::InvalidInput { .. })
    ));
    // Non-UTF-8 names work.
    exe("bin/pr\u{e9}", 0o755);
    let name = OsStr::from_bytes(b"pr\xc3\xa9");
    assert_eq!(
        t.root.look_path(name, dirs).unwrap(),
        os(b"/bin/pr\xc3\xa9")
    );
}

/// Runs `f` on a thread without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH in its effective set
/// (capabilities are per thread), so that a mode-000 directory denies access even as root.
fn without_dac_override<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use rustix::thread::{capabilities, set_capabilities, CapabilitySet};
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut caps = capabilities(None).unwrap();
            caps.effective -= CapabilitySet::DAC_OVERRIDE | CapabilitySet::DAC_READ_SEARCH;
            set_capabilities(None, caps).unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn permission_denied_in_both_modes() {
    let t = Tree::new();
    std::fs::create_dir_all(t.dir.path().join("closed/inner")).unwrap();
    std::fs::set_permissions(
        t.dir.path().join("closed"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    t.link("closed/inner", "via");
    without_dac_override(|| {
        for mode in [E, M] {
            // GNU `realpath -m` prints /closed/inner/x here and hides the error (kubernetes/kubernetes#63143).
            for q in ["/closed/inner/x", "/via", "/closed/missing/../../f"] {
                let e = t.err(q, mode);
                assert!(
                    matches!(e, PathError::PermissionDenied { .. }),
                    "{q} {mode:?}: {e}"
                );
            }
        }
        // The directory itself can still be named and opened O_PATH.
        assert_eq!(t.ok("/closed", E), "/closed");
        assert!(matches!(
            t.root.create_dir_all(Path::new("/closed/new")),
            Err(PathError::PermissionDenied { .. })
        ));
        assert!(matches!(
            t.root.read_file(Path::new("/via/f"), 1),
            Err(PathError::PermissionDenied { .. })
        ));
    });
    std::fs::set_permissions(
        t.dir.path().join("closed"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
}

/// A directory moved out of the root while being walked: `..` pops the walk's own stack, so it
/// never reaches what lies around the directory's new place (the kernel's `..` would). The
/// window is narrow, so this is a smoke test of the property the walk has by construction.
#[test]
fn dotdot_never_follows_a_directory_moved_out_of_the_root() {
    let _oracle = crate::kernel_oracle_lock();
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(tmp.path()).unwrap();
    let root_path = top.join("root");
    std::fs::create_dir_all(root_path.join("a/b/c")).unwrap();
    std::fs::write(root_path.join("x"), b"x").unwrap();
    std::fs::create_dir(top.join("outside")).unwrap();
    std::fs::write(top.join("outside/secret"), b"s").unwrap();
    let root = RootFs::open(&root_path).unwrap();
    let stop = AtomicBool::new(false);
    let (mut found_x, mut missing) = (0usize, 0usize);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(root_path.join("a/b"), top.join("outside/b")).unwrap();
                std::fs::rename(top.join("outside/b"), root_path.join("a/b")).unwrap();
            }
        });
        for _ in 0..3000 {
            match root.open_resolved(Path::new("/a/b/c/../../../x"), true) {
                Ok((host, fd)) => {
                    assert_eq!(host, Path::new("/x"));
                    let at = std::fs::read_link(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(&fd)
                    ))
                    .unwrap();
                    assert_eq!(at, root_path.join("x"));
                    found_x += 1;
                }
                Err(e) => {
                    assert!(e.is_not_found(), "{e}");
                    missing += 1;
                }
            }
            // `outside/secret` is what the kernel's `..` from a moved `b` would reach.
            let e = root
                .resolve(Path::new("/a/b/c/../../secret"), E)
                .unwrap_err();
            assert!(e.is_not_found(), "{e}");
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(found_x > 0, "the walk never got through");
    eprintln!("moved-directory race: {found_x} resolved, {missing} found b away");
}

#[test]
fn deep_paths_below_path_max() {
    let t = Tree::new();
    // 1500 levels: longer than PATH_MAX as a path of this process (root prefix included), fine
    // for the walk, which never hands the kernel more than one name.
    let deep = "/a".repeat(1500);
    t.root.create_dir_all(Path::new(&deep)).unwrap();
    assert_eq!(t.ok(&format!("{deep}/.."), E), "/a".repeat(1499));
    assert_eq!(
        t.ok(&format!("{deep}/../../x"), M),
        format!("{}/x", "/a".repeat(1498))
    );
    let st = t.root.stat(Path::new(&deep), true).unwrap();
    assert_eq!(st.kind, FileKind::Dir);
    t.root.remove_dir(Path::new(&deep)).unwrap();
    assert!(t.err(&deep, E).is_not_found());
}

#[test]
fn mount_targets_refuse_a_final_symlink_and_symlinks_beneath_a_base() {
    let t = Tree::new();
    let same = |fd: &OwnedFd, rel: &str| {
        let a = rustix::fs::fstat(fd).unwrap();
        let b = std::fs::metadata(t.dir.path().join(rel)).unwrap();
        a.st_ino == b.ino() && a.st_dev == b.dev()
    };
    // Refused by default, naming the link and its text.
    match t
        .root
        .open_mount_target(Path::new("/dl"), &TargetLookup::RefuseFinalSymlink)
    {
        Err(NativeMountError::Symlink { path, points_to }) => {
            assert_eq!(path, Path::new("/dl"));
            assert_eq!(points_to, Path::new("d"));
        }
        other => panic!("{other:?}"),
    }
    // Earlier components still follow links (inside the root).
    let (p, fd) = t
        .root
        .open_mount_target(Path::new("/dl/e"), &TargetLookup::RefuseFinalSymlink)
        .unwrap();
    assert_eq!(p, Path::new("/d/e"));
    assert!(same(&fd, "d/e"));
    // Opted in: followed.
    let (p, fd) = t
        .root
        .open_mount_target(Path::new("/dl"), &TargetLookup::FollowFinalSymlink)
        .unwrap();
    assert_eq!(p, Path::new("/d"));
    assert!(same(&fd, "d"));
    // Beneath a base: no symlink at all below it, no way out of it.
    let base = TargetLookup::Beneath(PathBuf::from("/d"));
    let (p, fd) = t.root.open_mount_target(Path::new("/d/e"), &base).unwrap();
    assert_eq!(p, Path::new("/d/e"));
    assert!(same(&fd, "d/e"));
    t.link("e", "d/el");
    for bad in ["/d/el", "/d/up", "/f", "/d/../f"] {
        match t.root.open_mount_target(Path::new(bad), &base) {
            Err(NativeMountError::NotBeneath { path, .. }) => assert_eq!(path, Path::new(bad)),
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The base itself may be reached through a link (it is trusted).
    let (p, _) = t
        .root
        .open_mount_target(Path::new("/dl/e"), &TargetLookup::Beneath("/dl".into()))
        .unwrap();
    assert_eq!(p, Path::new("/d/e"));
    // A missing target is a path error.
    assert!(matches!(
        t.root.open_mount_target(Path::new("/d/none"), &base),
        Err(NativeMountError::Path(PathError::NotFound { .. }))
    ));
}

/// Records the mounts a walk enters and refuses one of them.
#[derive(Debug, Default)]
struct RecordingGuard {
    seen: std::sync::Mutex<Vec<u64>>,
    refuse: Option<u64>,
}

impl MountGuard for RecordingGuard {
    fn entering(&self, mnt_id: u64, path: &Path) -> Result<(), PathError> {
        self.seen.lock().unwrap().push(mnt_id);
        match self.refuse {
            Some(id) if id == mnt_id => Err(PathError::Unresponsive {
                path: path.to_path_buf(),
                mount: "/proc".into(),
            }),
            _ => Ok(()),
        }
    }
}

fn mount_id_of(path: &str) -> u64 {
    rustix::fs::statx(
        rustix::fs::CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::MNT_ID,
    )
    .unwrap()
    .stx_mnt_id
}

#[test]
fn the_guard_hears_of_each_mount_entered_and_can_stop_the_walk() {
    let (root_mnt, proc_mnt) = (mount_id_of("/"), mount_id_of("/proc"));
    assert_ne!(root_mnt, proc_mnt, "/proc is a mount of its own");
    let guard = Arc::new(RecordingGuard::default());
    let root = RootFs::open(Path::new("/"))
        .unwrap()
        .with_guard(guard.clone());
    // Every component of /proc/self/.. stays on /proc once entered: one call per change.
    assert_eq!(
        root.resolve(Path::new("/proc/sys/kernel"), Resolve::MustExist)
            .unwrap(),
        Path::new("/proc/sys/kernel")
    );
    let seen = guard.seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&proc_mnt), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0] != w[1]), "{seen:?}");
    // A guard that refuses /proc stops every operation that enters it, with its error.
    let refusing = Arc::new(RecordingGuard {
        refuse: Some(proc_mnt),
        ..Default::default()
    });
    let root = root.try_clone().unwrap().with_guard(refusing);
    for r in [
        root.resolve(Path::new("/proc/self/../1"), Resolve::MustExist)
            .map(drop),
        root.stat(Path::new("/proc"), false).map(drop),
        root.read_file(Path::new("/proc/version"), 4096).map(drop),
    ] {
        assert!(
            matches!(&r, Err(PathError::Unresponsive { mount, .. }) if mount == Path::new("/proc")),
            "{r:?}"
        );
    }
    // Nothing on / alone is refused, and the unguarded clone walks into /proc.
    assert!(root.stat(Path::new("/etc"), true).is_ok());
    assert!(root
        .try_clone_unguarded()
        .unwrap()
        .stat(Path::new("/proc/version"), true)
        .is_ok());
}

/// Sets `fs.protected_symlinks` (one host-wide value) while alive and puts the old value back.
/// Only this test binary's `protected_symlinks_as_the_kernel` changes it, under
/// [`crate::kernel_oracle_lock`].
struct ProtectedSymlinks(Vec<u8>);

const PROTECTED_SYMLINKS: &str = "/proc/sys/fs/protected_symlinks";

impl ProtectedSymlinks {
    fn set(value: &[u8]) -> ProtectedSymlinks {
        let old = std::fs::read(PROTECTED_SYMLINKS).unwrap();
        std::fs::write(PROTECTED_SYMLINKS, value).unwrap();
        ProtectedSymlinks(old)
    }
}

impl Drop for ProtectedSymlinks {
    fn drop(&mut self) {
        let _ = std::fs::write(PROTECTED_SYMLINKS, &self.0);
    }
}

/// The kernel refuses (`EACCES`) to follow a link in a sticky world-writable directory as
/// the last component (or the last of a final link's target) when `fs.protected_symlinks = 1`
/// and the link is owned neither by the follower nor by the directory's owner
/// (proc_sys_fs(5)); a link in the middle of a path is followed. Resolution refuses exactly
/// where the kernel does, by the walk and by the kernel fast path, in every mode, and follows
/// everywhere when the sysctl is 0.
#[test]
fn protected_symlinks_as_the_kernel() {
    let _oracle = crate::kernel_oracle_lock();
    if rustix::process::geteuid().as_raw() != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI runs this as root");
        eprintln!("skipping protected_symlinks_as_the_kernel: needs root (lchown, the sysctl)");
        return;
    }
    let t = Tree::new();
    let p = t.dir.path();
    let dir = |name: &str, mode: u32, owner: u32| {
        std::fs::create_dir(p.join(name)).unwrap();
        std::fs::set_permissions(p.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(p.join(name), Some(owner), Some(owner)).unwrap();
    };
    let link = |target: &str, at: &str, owner: u32| {
        t.link(target, at);
        std::os::unix::fs::lchown(p.join(at), Some(owner), Some(owner)).unwrap();
    };
    dir("sticky", 0o1777, 0);
    dir("sticky_1000", 0o1777, 1000);
    dir("plain", 0o777, 0);
    link("/d", "sticky/other", 1000);
    link("/d", "sticky/mine", 0);
    link("/d", "sticky_1000/owners", 1000);
    link("/d", "plain/other", 1000);
    link("/sticky/other", "plain/chain", 0);
    let kernel = |q: &str| {
        rustix::fs::openat2(
            &t.root.fd,
            q,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )
        .map(|_| ())
        .map_err(|e| Some(e.raw_os_error()))
    };
    let errno = |r: Result<PathBuf, PathError>| r.map(|_| ()).map_err(|e| e.raw_os_error());
    let mut refused = BTreeSet::new();
    for value in [&b"1"[..], b"0"] {
        let _set = ProtectedSymlinks::set(value);
        for (q, answer) in [
            ("/sticky/other", "/d"),
            ("/sticky/other/", "/d"),
            ("/sticky/other/x", "/d/x"),
            ("/sticky/mine", "/d"),
            ("/sticky_1000/owners", "/d"),
            ("/plain/other", "/d"),
            ("/plain/chain", "/d"),
            ("/plain/chain/x", "/d/x"),
        ] {
            let k = kernel(q);
            let fast = errno(t.root.resolve(Path::new(q), E));
            let walk = errno(t.root.resolve_by_walk(Path::new(q), E));
            assert_eq!(
                (&fast, &walk),
                (&k, &k),
                "{q}, protected_symlinks {value:?}"
            );
            if k.is_err() {
                assert_eq!(k, Err(Some(13)), "{q}");
                assert!(matches!(t.err(q, M), PathError::PermissionDenied { .. }));
                refused.insert((q, value));
            } else {
                assert_eq!(t.ok(q, E), answer);
                assert_eq!(t.ok(q, M), answer);
            }
        }
    }
    let one = &b"1"[..];
    assert_eq!(
        refused,
        BTreeSet::from([
            ("/sticky/other", one),
            ("/sticky/other/", one),
            ("/plain/chain", one)
        ]),
        "a final link of another owner in a sticky world-writable directory, sysctl on"
    );
}
