//! Shared by the load, hostile-input and secrets tests: building trees in a sandbox's scratch
//! tmpfs with no-follow operations only.
//!
//! Why not `std::fs` through `SandboxHost::local`: that path is `/proc/PID/root/…`, and the
//! kernel reads an absolute symlink met on the way against *this* process's root, the real
//! `/`. A tree that holds links to `/` (as these tests' trees do) must therefore be built with
//! `*at` calls relative to a directory fd, one component at a time, never following a link.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use std::process::{Command, Stdio};

use hostexec_testing::sandbox::SandboxHost;
use rustix::fs::{Mode, OFlags};

/// `TMPFS_MAGIC` from statfs(2).
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A directory tree rooted at a directory fd; every operation is relative to it and follows no
/// symlink.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
    /// The host path of the root (for building expected answers).
    pub host: PathBuf,
}

fn open_dir_at(dir: impl AsFd, name: &[u8]) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

impl Tree {
    /// The sandbox's scratch tmpfs. Panics unless the directory opened really is a tmpfs (the
    /// sandbox's, not the empty directory of the same name in this process's view).
    pub fn scratch(sb: &SandboxHost) -> Tree {
        let fd = rustix::fs::open(
            sb.local(sb.scratch()),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .expect("open the sandbox scratch");
        // fstatfs needs a real fd, not O_PATH: reopen through the fd itself.
        let real = rustix::fs::openat(
            &fd,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let fs = rustix::fs::fstatfs(&real).unwrap();
        assert_eq!(
            fs.f_type as i64, TMPFS_MAGIC,
            "the scratch directory is not the sandbox's tmpfs"
        );
        Tree {
            root: fd,
            host: sb.scratch().to_path_buf(),
        }
    }

    /// A plain directory of this process (e.g. a temp dir) as the root.
    pub fn at(dir: &Path, host: impl Into<PathBuf>) -> Tree {
        let fd = rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        Tree {
            root: fd,
            host: host.into(),
        }
    }

    /// The fd of directory `rel` ("" for the root), reached without following any link.
    pub fn dir(&self, rel: &[u8]) -> OwnedFd {
        let mut fd = self.root.try_clone().unwrap();
        for c in rel.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            assert!(
                c != b".." && c != b".",
                "relative paths without dot components"
            );
            fd = open_dir_at(&fd, c).unwrap_or_else(|e| {
                panic!("{}: {e}", String::from_utf8_lossy(rel));
            });
        }
        fd
    }

    fn split(rel: &[u8]) -> (&[u8], &[u8]) {
        match rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&rel[..i], &rel[i + 1..]),
            None => (&b""[..], rel),
        }
    }

    /// `mkdir -p rel`, component by component, never through a link.
    pub fn mkdir_all(&self, rel: impl AsRef<[u8]>) {
        let mut fd = self.root.try_clone().unwrap();
        for c in rel.as_ref().split(|&b| b == b'/').filter(|c| !c.is_empty()) {
            match rustix::fs::mkdirat(&fd, OsStr::from_bytes(c), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => panic!("mkdir {}: {e}", String::from_utf8_lossy(c)),
            }
            fd = open_dir_at(&fd, c).unwrap();
        }
    }

    /// A symlink `rel` → `target` (stored as given).
    pub fn symlink(&self, target: impl AsRef<[u8]>, rel: impl AsRef<[u8]>) {
        let (parent, name) = Self::split(rel.as_ref());
        rustix::fs::symlinkat(
            OsStr::from_bytes(target.as_ref()),
            self.dir(parent),
            OsStr::from_bytes(name),
        )
        .unwrap();
    }

    /// A new regular file `rel` holding `data` (O_EXCL|O_NOFOLLOW: never an existing file).
    pub fn file(&self, rel: impl AsRef<[u8]>, data: &[u8]) {
        let (parent, name) = Self::split(rel.as_ref());
        let fd = rustix::fs::openat(
            self.dir(parent),
            OsStr::from_bytes(name),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        let mut done = 0;
        while done < data.len() {
            done += rustix::io::write(&fd, &data[done..]).unwrap();
        }
    }

    /// The host path of `rel`.
    pub fn host_path(&self, rel: impl AsRef<[u8]>) -> PathBuf {
        let mut p = self.host.as_os_str().as_bytes().to_vec();
        let rel = rel.as_ref();
        if !rel.is_empty() {
            p.push(b'/');
            p.extend_from_slice(rel);
        }
        PathBuf::from(OsStr::from_bytes(&p))
    }
}

/// Bytes of a path, for messages.
pub fn show(p: &Path) -> String {
    p.as_os_str().as_bytes().escape_ascii().to_string()
}

/// Runs `child`, a command that runs one test of this binary again (`--exact TEST
/// --nocapture`, itself or under a wrapper such as unshare(1)), with stdin from /dev/null,
/// and asserts that the child test passed and printed `done`.
pub fn run_child_test(mut child: Command, done: &str) {
    let out = child.stdin(Stdio::null()).output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the child test failed:\n{text}");
    assert!(
        text.contains(done),
        "the child did not run the test:\n{text}"
    );
}
