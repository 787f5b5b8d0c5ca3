//! The sandbox's populate helpers never write outside the sandbox's private tmpfs: not
//! through a symlink in the tree (to `/`, to an outside directory, `../..`), not onto a link,
//! not to a path on a file system the caller shares.
//!
//! The "outside" is a temporary directory of this process, outside the scratch tmpfs; the
//! sandbox sees it too (its `/` is the machine's `/`). The test first shows that writing
//! through `/proc/PID/root` with `std::fs` (what the helpers used to do) does land there, so
//! that the refusals below are refusals of real escapes.

use std::path::{Path, PathBuf};

use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walk(dir);
    v.sort();
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        out.push(e.path());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn populate_helpers_never_follow_links_out_of_the_sandbox() {
    if skip_without_namespaces("populate_helpers_never_follow_links_out_of_the_sandbox") {
        return;
    }
    let outside_tmp = tempfile::tempdir().unwrap();
    let outside = std::fs::canonicalize(outside_tmp.path()).unwrap();
    std::fs::create_dir(outside.join("etc")).unwrap();
    std::fs::write(outside.join("etc/passwd"), b"original").unwrap();
    let before = listing(&outside);

    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    assert!(!outside.starts_with(&s));
    sb.mkdir_all(&s.join("tree/deep")).unwrap();
    sb.symlink(&outside, &s.join("tree/to-outside")).unwrap();
    sb.symlink(outside.join("etc"), &s.join("tree/to-etc"))
        .unwrap();
    sb.symlink("/", &s.join("tree/to-root")).unwrap();
    // From tree/deep, enough ../ to reach / and then down to the outside directory.
    let ups = "../".repeat(s.components().count() + 2);
    let rel = format!("{ups}{}", outside.strip_prefix("/").unwrap().display());
    sb.symlink(&rel, &s.join("tree/deep/up")).unwrap();
    sb.symlink(outside.join("etc/passwd"), &s.join("tree/passwd"))
        .unwrap();

    // The links do lead out: std::fs through /proc/PID/root follows them.
    let probe = s.join("tree/deep/up/probe");
    std::fs::write(sb.local(&probe), b"escaped").unwrap();
    assert_eq!(std::fs::read(outside.join("probe")).unwrap(), b"escaped");
    std::fs::remove_file(outside.join("probe")).unwrap();
    assert_eq!(listing(&outside), before);

    let root_rel = outside.strip_prefix("/").unwrap();
    let through: Vec<PathBuf> = vec![
        s.join("tree/to-outside/new"),
        s.join("tree/to-etc/new"),
        s.join("tree/to-root").join(root_rel).join("new"),
        s.join("tree/deep/up/new"),
        s.join("tree/to-outside/etc/new"),
    ];
    for p in &through {
        let e = sb.write_file(p, b"x").unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{p:?}: {e}");
        let e = sb.mkdir_all(&p.join("a/b")).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{p:?}: {e}");
        assert!(sb.symlink("/", p).is_err(), "{p:?}");
        assert!(sb.mkdir_all(p).is_err(), "{p:?}");
        assert!(sb.set_mode(p, 0o777).is_err(), "{p:?}");
        assert!(sb.mount_tmpfs(p, "").is_err(), "{p:?}");
    }
    // Onto a link: the link is not followed (written through, truncated or chmod-ed).
    let e = sb.write_file(&s.join("tree/passwd"), b"pwned").unwrap_err();
    assert!(e.to_string().contains("is a symlink"), "{e}");
    assert!(sb.set_mode(&s.join("tree/passwd"), 0o777).is_err());
    assert!(sb.mkdir_all(&s.join("tree/to-etc")).is_err());
    assert!(sb.remove_file(&s.join("tree/to-etc/passwd")).is_err());
    // `..` never reaches the walk.
    let e = sb
        .write_file(&s.join("tree/deep/../../x"), b"x")
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
    // Paths on a file system the caller shares are refused even without a link.
    let e = sb.write_file(&outside.join("new"), b"x").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    assert!(sb.mkdir_all(&outside.join("etc/new")).is_err());
    assert!(sb.symlink("/", &outside.join("new")).is_err());
    assert!(sb.remove_file(&outside.join("etc/passwd")).is_err());
    assert!(sb.set_mode(&outside.join("etc/passwd"), 0o777).is_err());
    // Removing a tree removes its links, not what they point to.
    sb.remove_all(&s.join("tree")).unwrap();

    assert_eq!(listing(&outside), before, "the outside was changed");
    assert_eq!(
        std::fs::read(outside.join("etc/passwd")).unwrap(),
        b"original"
    );
    let m = std::fs::metadata(outside.join("etc/passwd")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_ne!(m.permissions().mode() & 0o777, 0o777);
}

#[test]
fn populate_helpers_work_inside_the_scratch_and_a_mounted_tmpfs() {
    if skip_without_namespaces("populate_helpers_work_inside_the_scratch_and_a_mounted_tmpfs") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    sb.mkdir_all(&s.join("a/b c/\u{e9}")).unwrap();
    sb.mkdir_all(&s.join("a/b c")).unwrap();
    sb.write_file(&s.join("a/b c/f"), b"one").unwrap();
    sb.write_file(&s.join("a/b c/f"), b"two").unwrap();
    sb.symlink("f", &s.join("a/b c/l")).unwrap();
    sb.set_mode(&s.join("a/b c/f"), 0o751).unwrap();
    let out = sb.oracle(&[
        "stat".as_ref(),
        "-c".as_ref(),
        "%a %s".as_ref(),
        s.join("a/b c/l").as_os_str(),
        "-L".as_ref(),
    ]);
    assert_eq!(out.stdout, b"751 3\n", "{out:?}");
    assert!(!s.join("a").exists(), "only the sandbox sees its tmpfs");
    // A tmpfs mounted over a directory outside the scratch makes it writable.
    let over = s.join("a/b c/\u{e9}");
    sb.mount_tmpfs(&over, "").unwrap();
    sb.write_file(&over.join("g"), b"g").unwrap();
    // The machine's /usr/local/bin only once a tmpfs covers it in the sandbox.
    let ulb = Path::new("/usr/local/bin/hostexec-sandbox-test");
    assert!(sb.write_file(ulb, b"x").is_err());
    sb.mount_tmpfs(Path::new("/usr/local/bin"), "mode=0755")
        .unwrap();
    sb.write_file(ulb, b"x").unwrap();
    assert!(!ulb.exists());
    sb.remove_file(ulb).unwrap();
    assert!(sb.remove_file(ulb).is_err());
    let cat = sb.oracle(&["cat".as_ref(), over.join("g").as_os_str()]);
    assert_eq!(cat.stdout, b"g");
    sb.remove_all(&over.join("g")).unwrap();
    // (A mount point of another mount namespace does not pin its directory: rmdir detaches.)
    sb.remove_all(&s.join("a")).unwrap();
    let ls = sb.oracle(&["ls".as_ref(), "-A".as_ref(), s.as_os_str()]);
    assert!(ls.status.success() && ls.stdout.is_empty(), "{ls:?}");
    sb.remove_all(&s.join("missing")).unwrap();
}
