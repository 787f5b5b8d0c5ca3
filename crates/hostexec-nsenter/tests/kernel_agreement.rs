//! Resolution agrees with what the host kernel does when it opens the path: a symlink on a
//! `nosymfollow` mount (mount(8)) is not followed (`ELOOP`, [`PathError::Loop`]), wherever it
//! is on the path, through the caller-thread fast path, the pool and the walk alike; GNU
//! `realpath -e` (which reads links with readlink(2)) follows it, the documented difference.
//! util-linux `stat -L` run in the sandbox is the kernel's oracle.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::ffi::OsStr;
use std::path::Path;

use hostexec_api::{PathError, PathResolver, Resolve};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn kernel_follows(sb: &SandboxHost, path: &Path) -> bool {
    let argv: [&OsStr; 3] = ["stat".as_ref(), "-L".as_ref(), path.as_os_str()];
    let out = sb.oracle(&argv);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Too many levels of symbolic links"),
            "stat -L {}: {err}",
            path.display()
        );
    }
    out.status.success()
}

fn gnu_realpath(sb: &SandboxHost, path: &Path) -> Option<Vec<u8>> {
    let argv: [&OsStr; 3] = ["realpath".as_ref(), "-e".as_ref(), path.as_os_str()];
    let out = sb.oracle(&argv);
    out.status.success().then_some(out.stdout)
}

#[tokio::test(flavor = "current_thread")]
async fn nosymfollow_mounts_refuse_links_as_the_kernel_does() {
    if skip_without_namespaces("nosymfollow_mounts_refuse_links_as_the_kernel_does") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    let m = s.join("nsf");
    sb.mkdir_all(&m).unwrap();
    sb.mount_tmpfs(&m, "nosymfollow").unwrap();
    sb.mkdir_all(&m.join("real/dir")).unwrap();
    sb.write_file(&m.join("real/dir/f"), b"f").unwrap();
    sb.symlink("real/dir", &m.join("rel")).unwrap();
    sb.symlink(m.join("real"), &m.join("abs")).unwrap();
    // A link on an ordinary mount into the nosymfollow one: followed.
    sb.symlink(m.join("real/dir"), &s.join("into")).unwrap();
    let ns = NsEnter::new(sb.target()).unwrap();
    let cases = [
        (m.join("rel"), None),
        (m.join("rel/f"), None),
        (m.join("abs/dir/f"), None),
        (s.join("into/f"), Some(m.join("real/dir/f"))),
        (m.join("real/dir/f"), Some(m.join("real/dir/f"))),
    ];
    let mut refused = 0;
    for (q, want) in &cases {
        assert_eq!(kernel_follows(&sb, q), want.is_some(), "{}", q.display());
        // Twice: the second call meets warm caches (the caller-thread fast path).
        for _ in 0..2 {
            let got = ns.resolve(q, Resolve::MustExist).await;
            let walk = ns.root_fs().resolve_by_walk(q, Resolve::MustExist);
            let missing = ns.resolve(q, Resolve::AllowMissing).await;
            match want {
                Some(w) => {
                    assert_eq!(got.as_ref().ok(), Some(w), "{}", q.display());
                    assert_eq!(walk.as_ref().ok(), Some(w), "{}", q.display());
                    assert_eq!(missing.as_ref().ok(), Some(w), "{}", q.display());
                }
                None => {
                    for r in [&got, &walk, &missing] {
                        assert!(
                            matches!(r, Err(PathError::Loop { path }) if path == q),
                            "{}: {r:?}",
                            q.display()
                        );
                    }
                    refused += 1;
                }
            }
        }
        if want.is_none() {
            // GNU realpath reads the link instead of following it: it answers.
            assert!(gnu_realpath(&sb, q).is_some(), "{}", q.display());
        }
    }
    assert_eq!(refused, 6);
}
