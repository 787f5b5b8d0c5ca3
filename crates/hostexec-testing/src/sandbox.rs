//! A sandbox host for tests and demos: a real process in its own mount
//! namespace, with a private tmpfs that only that namespace sees.
//!
//! Tests of a host backend need a "host" whose view differs from the test process's, or they
//! cannot tell "ran on the host" from "ran here". [`SandboxHost::start`] runs util-linux
//! `unshare --mount --propagation private` with a small script that mounts a tmpfs at
//! [`SandboxHost::scratch`] and then waits for its stdin to close (so that a killed test
//! process leaves no sandbox behind). The scratch directory exists (empty) in the
//! caller's view too, so a path that works there but shows the wrong contents proves that a
//! backend looked in the wrong namespace. Optional uts, net and pid namespaces come from the
//! [`SandboxBuilder`].
//!
//! [`SandboxHost::oracle`] runs util-linux `nsenter -t PID -m …` into the sandbox: the
//! reference route against which the backend is compared (GNU `realpath`, `findmnt`, …).
//!
//! ## Populating the sandbox
//!
//! The sandbox's `/` is this machine's `/`; only [`SandboxHost::scratch`] (and what tests
//! mount with [`SandboxHost::mount_tmpfs`]) is private. A tree under test holds symlinks to
//! `/`, `/etc` or `../..`, so writing through `/proc/PID/root/<path>` with `std::fs` would
//! follow them into the machine's real file system. The populate helpers
//! ([`write_file`](SandboxHost::write_file), [`mkdir_all`](SandboxHost::mkdir_all),
//! [`symlink`](SandboxHost::symlink), [`remove_file`](SandboxHost::remove_file),
//! [`remove_all`](SandboxHost::remove_all), [`set_mode`](SandboxHost::set_mode)) therefore
//! walk from a descriptor of the scratch tmpfs (or of the sandbox's `/`, opened at start)
//! one component at a time with `O_NOFOLLOW`, refuse `..`, fail when a component is a
//! symlink, and create or change something only in a directory on a tmpfs or overlay that
//! is mounted nowhere in the caller's mount namespace.
//!
//! Dropping the sandbox kills it, waits for it and removes the scratch directory, also while a
//! test panics.
//!
//! ```no_run
//! use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};
//!
//! if !skip_without_namespaces("my_test") {
//!     let sb = SandboxHost::builder().uts("sandbox-host").start().unwrap();
//!     let f = sb.scratch().join("only-on-the-host");
//!     sb.write_file(&f, b"hello").unwrap();
//!     assert!(!f.exists()); // the tmpfs is not mounted in this process's namespace
//!     let out = sb.oracle(&["cat".as_ref(), f.as_os_str()]);
//!     assert_eq!(out.stdout, b"hello");
//! }
//! ```

use std::ffi::{OsStr, OsString};
use std::io::{self, BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hostexec_nsenter::{Namespace, Target};

/// The bit of `CAP_SYS_ADMIN` in the capability sets.
const CAP_SYS_ADMIN: u32 = 21;

/// True if this process has `CAP_SYS_ADMIN` in its effective set (needed for `setns`,
/// `unshare` and `mount`).
pub fn can_use_namespaces() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// For a test that needs namespaces: returns `true` (after printing why) when the test should
/// be skipped because this process lacks `CAP_SYS_ADMIN`. With `CI=true` it panics instead:
/// CI runs as root and must never skip these tests.
pub fn skip_without_namespaces(test: &str) -> bool {
    if can_use_namespaces() {
        return false;
    }
    let msg = format!("{test}: needs CAP_SYS_ADMIN (run as root) to create namespaces");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}; CI=true forbids skipping");
    }
    eprintln!("skipping {msg}");
    true
}

/// Options of a [`SandboxHost`]: which namespaces besides its mount namespace.
#[derive(Clone, Debug, Default)]
pub struct SandboxBuilder {
    hostname: Option<String>,
    net: bool,
    pid: bool,
    node: bool,
}

impl SandboxBuilder {
    /// Its own UTS namespace, with this host name.
    pub fn uts(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Its own network namespace (only a loopback device, down).
    pub fn net(mut self) -> Self {
        self.net = true;
        self
    }

    /// Its own PID namespace: the sandbox process is its PID 1.
    pub fn pid(mut self) -> Self {
        self.pid = true;
        self
    }

    /// A simulated node, as a container runtime sees one: its own PID namespace with its own
    /// `/proc` (as [`pid`](Self::pid), plus `unshare --mount-proc`), and `/` made `rshared`
    /// — after `unshare --propagation private` cut it off from the caller, so that nothing
    /// mounted in the node propagates out. Mounts the node makes under `/` then propagate
    /// into the `rslave` copies a container runtime makes of them (mount_namespaces(7)).
    pub fn node(mut self) -> Self {
        self.pid = true;
        self.node = true;
        self
    }

    /// The namespaces a [`Target`] for this sandbox joins.
    fn namespaces(&self) -> Vec<Namespace> {
        let mut ns = vec![Namespace::Mount];
        if self.hostname.is_some() {
            ns.push(Namespace::Uts);
        }
        if self.net {
            ns.push(Namespace::Net);
        }
        if self.pid {
            ns.push(Namespace::Pid);
        }
        ns
    }

    /// Starts the sandbox and waits until its tmpfs is mounted.
    pub fn start(self) -> io::Result<SandboxHost> {
        let dir = tempfile::Builder::new()
            .prefix("hostexec-sandbox-")
            .tempdir()?;
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch)?;

        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private"]);
        if self.hostname.is_some() {
            cmd.arg("--uts");
        }
        if self.net {
            cmd.arg("--net");
        }
        if self.pid {
            // The forked child is the one in the new PID namespace; it dies with unshare.
            cmd.args(["--pid", "--fork", "--kill-child"]);
        }
        if self.node {
            cmd.arg("--mount-proc");
        }
        // The script's arguments come as "$1", "$2": nothing is interpolated into it.
        cmd.args([
            "--",
            "sh",
            "-c",
            r#"set -e
if [ -n "$3" ]; then mount --make-rshared /; fi
mount -t tmpfs -o mode=0755 hostexec-sandbox "$1"
if [ -n "$2" ]; then hostname "$2"; fi
echo ready
# Lives until its stdin (a pipe held by the SandboxHost) closes: also when the test process
# is killed outright and no Drop runs.
read -r _ || true"#,
            "hostexec-sandbox",
        ]);
        cmd.arg(&scratch);
        cmd.arg(self.hostname.as_deref().unwrap_or(""));
        cmd.arg(if self.node { "node" } else { "" });
        // In `/`, as a host's PID 1: commands for a `Target::pid` start in its directory.
        cmd.current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        if !matches!(read, Some(Ok(_))) || line.trim() != "ready" {
            let _ = child.kill();
            let out = child.wait_with_output()?;
            return Err(io::Error::other(format!(
                "the sandbox did not start ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pid = if self.pid {
            child_of(child.id())?
        } else {
            child.id()
        };
        let lifeline = child.stdin.take();
        let mut sb = SandboxHost {
            lifeline,
            child,
            pid,
            dir: Some(dir),
            scratch,
            namespaces: self.namespaces(),
            root_fd: None,
            scratch_fd: None,
        };
        // Opened before anything is populated, so nothing in the sandbox can redirect them;
        // the tmpfs check proves that the descriptor is the sandbox's, not the caller's dir.
        let root = format!("/proc/{}/root", sb.pid);
        let open = |p: &Path| {
            rustix::fs::open(
                p,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        };
        let root_fd = open(Path::new(&root))?;
        let scratch_fd = open(&sb.local(&sb.scratch))?;
        if i128::from(rustix::fs::fstatfs(&scratch_fd)?.f_type) != TMPFS_MAGIC {
            return Err(io::Error::other("the sandbox's scratch is not its tmpfs"));
        }
        sb.root_fd = Some(root_fd);
        sb.scratch_fd = Some(scratch_fd);
        Ok(sb)
    }
}

/// The only child of `pid` (unshare's forked child, PID 1 of the new PID namespace).
fn child_of(pid: u32) -> io::Result<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
    text.split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("process {pid} has no child")))
}

/// A process in its own mount namespace with a private tmpfs at [`SandboxHost::scratch`]:
/// a "host" for tests. See the [module docs](self).
#[derive(Debug)]
pub struct SandboxHost {
    /// The sandbox's stdin: it exits when this closes.
    lifeline: Option<std::process::ChildStdin>,
    child: Child,
    pid: u32,
    dir: Option<tempfile::TempDir>,
    scratch: PathBuf,
    namespaces: Vec<Namespace>,
    /// The sandbox's `/` (the machine's `/`, seen from its mount namespace).
    root_fd: Option<OwnedFd>,
    /// The scratch tmpfs.
    scratch_fd: Option<OwnedFd>,
}

impl SandboxHost {
    /// A sandbox with its own mount namespace only.
    pub fn start() -> io::Result<SandboxHost> {
        SandboxBuilder::default().start()
    }

    /// A builder for a sandbox with more namespaces.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// The PID (in this process's PID namespace) of the process whose namespaces are the
    /// sandbox's.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// [`Target::pid`] of the sandbox, with all its namespaces.
    pub fn target(&self) -> Target {
        Target::pid(self.pid).namespaces(&self.namespaces)
    }

    /// The host path of the private tmpfs. The same path exists, as an empty directory, in
    /// the caller's view; only the sandbox sees the tmpfs.
    pub fn scratch(&self) -> &Path {
        &self.scratch
    }

    /// Where this process reaches a sandbox path: `/proc/PID/root/<host_path>`.
    ///
    /// For reading and for handing to code under test. Never write through it: the path is
    /// resolved with every symlink in the sandbox followed, and the sandbox's `/` is the
    /// machine's `/`. Use the populate helpers ([`write_file`](Self::write_file), …).
    pub fn local(&self, host_path: &Path) -> PathBuf {
        hostexec_api::path::host_to_local(Path::new(&format!("/proc/{}/root", self.pid)), host_path)
            .unwrap_or_else(|_| PathBuf::from(format!("/proc/{}/root/.invalid", self.pid)))
    }

    /// Writes a file in the sandbox (its parent must exist), replacing an existing file.
    ///
    /// Like every populate helper, it never follows a symlink (see the [module docs](self#populating-the-sandbox)):
    /// a path through a link, or onto a link, is an error, as is a directory on a file
    /// system the caller also sees.
    pub fn write_file(&self, host_path: &Path, data: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let (dir, name) = self.parent_of(host_path)?;
        self.check_private(&dir, host_path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| refusal(host_path, &dir, &name, e))?;
        std::fs::File::from(fd).write_all(data)
    }

    /// Creates a directory and its parents in the sandbox (existing directories are fine;
    /// a symlink on the way is an error).
    pub fn mkdir_all(&self, host_path: &Path) -> io::Result<()> {
        let (mut cur, comps) = self.anchor(host_path)?;
        for c in &comps {
            let next = match open_dir_nofollow(&cur, c) {
                Err(rustix::io::Errno::NOENT) => {
                    self.check_private(&cur, host_path)?;
                    match rustix::fs::mkdirat(&cur, c.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(rustix::io::Errno::EXIST) => open_dir_nofollow(&cur, c),
                        Err(e) => Err(e),
                    }
                }
                r => r,
            };
            cur = next.map_err(|e| refusal(host_path, &cur, c, e))?;
        }
        Ok(())
    }

    /// Creates a symlink `link` → `target` in the sandbox (`target` is stored as given and
    /// never followed here).
    pub fn symlink(&self, target: impl AsRef<OsStr>, link: &Path) -> io::Result<()> {
        let (dir, name) = self.parent_of(link)?;
        self.check_private(&dir, link)?;
        rustix::fs::symlinkat(target.as_ref(), &dir, name.as_os_str())
            .map_err(|e| refusal(link, &dir, &name, e))
    }

    /// Removes a file or a symlink (not what it points to) in the sandbox.
    pub fn remove_file(&self, host_path: &Path) -> io::Result<()> {
        let (dir, name) = self.parent_of(host_path)?;
        self.check_private(&dir, host_path)?;
        rustix::fs::unlinkat(&dir, name.as_os_str(), AtFlags::empty())
            .map_err(|e| refusal(host_path, &dir, &name, e))
    }

    /// Removes a directory tree in the sandbox, like `rm -r` without following any link
    /// (a link in the tree is removed, not followed). A missing path is not an error.
    pub fn remove_all(&self, host_path: &Path) -> io::Result<()> {
        let (dir, name) = match self.parent_of(host_path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            r => r?,
        };
        self.check_private(&dir, host_path)?;
        match remove_tree(&dir, &name) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(refusal(host_path, &dir, &name, e)),
        }
    }

    /// Sets the permission bits of a file or directory in the sandbox (not through a link).
    pub fn set_mode(&self, host_path: &Path, mode: u32) -> io::Result<()> {
        let (dir, name) = self.parent_of(host_path)?;
        self.check_private(&dir, host_path)?;
        let fd = rustix::fs::openat(
            &dir,
            name.as_os_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refusal(host_path, &dir, &name, e))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(io::Error::from)
    }

    /// The directory to start a walk from and the components of `host_path` after it:
    /// the scratch tmpfs for paths under [`scratch`](Self::scratch), the sandbox's `/`
    /// otherwise. Only plain names: `..` is refused (it could climb out of a private mount).
    fn anchor(&self, host_path: &Path) -> io::Result<(OwnedFd, Vec<OsString>)> {
        let bad = |why: &str| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("sandbox path {}: {why}", host_path.display()),
            )
        };
        if !host_path.is_absolute() {
            return Err(bad("not absolute"));
        }
        let (start, rest) = match host_path.strip_prefix(&self.scratch) {
            Ok(rest) => (&self.scratch_fd, rest),
            Err(_) => (&self.root_fd, host_path),
        };
        let start = start
            .as_ref()
            .ok_or_else(|| io::Error::other("the sandbox has not started"))?;
        let mut comps = Vec::new();
        for c in rest.components() {
            match c {
                Component::RootDir | Component::CurDir => {}
                Component::Normal(n) => comps.push(n.to_os_string()),
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(bad("'..' is not allowed in the sandbox helpers"))
                }
            }
        }
        Ok((start.try_clone()?, comps))
    }

    /// An `O_PATH` descriptor of the directory `host_path`, walked without following links.
    pub(crate) fn open_dir(&self, host_path: &Path) -> io::Result<OwnedFd> {
        let (dir, name) = self.parent_of(host_path)?;
        open_dir_nofollow(&dir, &name).map_err(|e| refusal(host_path, &dir, &name, e))
    }

    /// The parent directory of `host_path` (walked without following links) and its last
    /// component.
    fn parent_of(&self, host_path: &Path) -> io::Result<(OwnedFd, OsString)> {
        let (mut cur, mut comps) = self.anchor(host_path)?;
        let Some(last) = comps.pop() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("sandbox path {}: names no entry", host_path.display()),
            ));
        };
        for c in &comps {
            cur = open_dir_nofollow(&cur, c).map_err(|e| refusal(host_path, &cur, c, e))?;
        }
        Ok((cur, last))
    }

    /// Refuses to create or change anything in `dir` unless its file system is one only the
    /// sandbox sees: a tmpfs or an overlay whose device is mounted nowhere in the caller's
    /// mount namespace. The sandbox's `/` is the machine's `/`: a write there is a write to
    /// this machine.
    fn check_private(&self, dir: &OwnedFd, host_path: &Path) -> io::Result<()> {
        let st = rustix::fs::fstat(dir)?;
        let fs = rustix::fs::fstatfs(dir)?;
        let dev = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
        let kind = i128::from(fs.f_type);
        let private_kind = kind == TMPFS_MAGIC || kind == OVERLAYFS_MAGIC;
        if private_kind && !caller_devices()?.contains(&dev) {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to write {}: its directory is on a file system this process also                  sees (device {}:{}), not on a tmpfs private to the sandbox",
                host_path.display(),
                dev.0,
                dev.1
            ),
        ))
    }

    /// Mounts a tmpfs at `host_path` in the sandbox (with `mount -t tmpfs -o options`;
    /// `options` may be empty).
    ///
    /// `host_path` must be an existing directory reached without a symlink (checked, as in
    /// the other helpers); the mount itself only changes the sandbox's mount namespace.
    /// Paths under the new tmpfs can then be populated.
    pub fn mount_tmpfs(&self, host_path: &Path, options: &str) -> io::Result<()> {
        let (dir, name) = self.parent_of(host_path)?;
        open_dir_nofollow(&dir, &name).map_err(|e| refusal(host_path, &dir, &name, e))?;
        let mut argv: Vec<&OsStr> = vec!["mount".as_ref(), "-t".as_ref(), "tmpfs".as_ref()];
        if !options.is_empty() {
            argv.push("-o".as_ref());
            argv.push(options.as_ref());
        }
        argv.push("hostexec-sandbox".as_ref());
        argv.push(host_path.as_os_str());
        let out = self.oracle(&argv);
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "mount tmpfs at {} in the sandbox: {}",
                host_path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Installs an executable `/sbin/NAME` (such as a `mount.TYPE` helper mount(8) runs) in
    /// the sandbox host only: an overlay on the directory `/sbin` resolves to (`/usr/sbin` on a
    /// merged-/usr system), its upper layer in the scratch tmpfs, mounted in the sandbox's
    /// mount namespace. Each call adds one overlay layer.
    pub fn install_sbin(&self, name: &str, script: &[u8]) -> io::Result<()> {
        let sbin = std::fs::canonicalize("/sbin")?;
        let layer = self.scratch().join(format!("sbin-{name}"));
        let (upper, work) = (layer.join("upper"), layer.join("work"));
        self.mkdir_all(&upper)?;
        self.mkdir_all(&work)?;
        let program = upper.join(name);
        self.write_file(&program, script)?;
        self.set_mode(&program, 0o755)?;
        let mut opts = OsString::from("lowerdir=");
        opts.push(&sbin);
        opts.push(",upperdir=");
        opts.push(&upper);
        opts.push(",workdir=");
        opts.push(&work);
        let out = self.oracle(&[
            "mount".as_ref(),
            "-t".as_ref(),
            "overlay".as_ref(),
            "-o".as_ref(),
            opts.as_os_str(),
            "hostexec-sbin".as_ref(),
            sbin.as_os_str(),
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "overlay on {} in the sandbox: {}",
                sbin.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Mounts `n` small tmpfs instances at `base/mSTART` … `base/m(START+n-1)` in the sandbox
    /// (creating the directories), in one process: a mount table of thousands of entries
    /// for benchmarks, in well under a second. `base` must exist in the sandbox.
    pub fn mount_many_tmpfs(&self, base: &Path, start: usize, n: usize) -> io::Result<()> {
        const MAKE_MOUNTS: &str = r#"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
base, start, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(start, start + n):
    d = "%s/m%d" % (base, i)
    os.makedirs(d, exist_ok=True)
    if libc.mount(b"bench", d.encode(), b"tmpfs", 0, b"size=16k") != 0:
        raise OSError(ctypes.get_errno(), d)
"#;
        self.open_dir(base)?;
        let out = self.oracle(&[
            "python3".as_ref(),
            "-c".as_ref(),
            MAKE_MOUNTS.as_ref(),
            base.as_os_str(),
            start.to_string().as_ref(),
            n.to_string().as_ref(),
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "mounting {n} tmpfs under {} in the sandbox: {}",
                base.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The nsenter options that join the sandbox's namespaces.
    pub(crate) fn nsenter_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-t".into(), self.pid.to_string().into()];
        for ns in &self.namespaces {
            // `--mount` etc. without a file: the namespace of the `-t` process (`Namespace`
            // is non-exhaustive; its own method knows every variant).
            a.push(ns.nsenter_option().into());
        }
        a
    }

    /// findmnt's `FSTYPE SOURCE VFS-OPTIONS FS-OPTIONS PROPAGATION` row (raw: names still
    /// `\xHH`-escaped, fields separated by one space) of the topmost mount at `mount_point`
    /// inside the sandbox, or `None` when nothing is mounted there: the oracle the mount
    /// tests compare every route with.
    pub fn findmnt_top(&self, mount_point: &Path) -> Option<String> {
        let out = self.oracle(&[
            "findmnt".as_ref(),
            "-n".as_ref(),
            "-r".as_ref(),
            "-o".as_ref(),
            "FSTYPE,SOURCE,VFS-OPTIONS,FS-OPTIONS,PROPAGATION".as_ref(),
            "--mountpoint".as_ref(),
            mount_point.as_os_str(),
        ]);
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .map(str::to_owned)
    }

    /// Runs `nsenter -t PID -m [-u] [-n] [-p] -- argv…` (util-linux) and returns its output:
    /// the reference route into the sandbox. A failure to start nsenter is reported as an
    /// output with exit status 127 and the error on stderr.
    pub fn oracle(&self, argv: &[&OsStr]) -> std::process::Output {
        let r = Command::new("nsenter")
            .args(self.nsenter_args())
            .arg("--")
            .args(argv)
            .stdin(Stdio::null())
            .output();
        match r {
            Ok(out) => out,
            Err(e) => {
                use std::os::unix::process::ExitStatusExt;
                std::process::Output {
                    status: std::process::ExitStatus::from_raw(127 << 8),
                    stdout: Vec::new(),
                    stderr: format!("could not run nsenter: {e}").into_bytes(),
                }
            }
        }
    }
}

impl Drop for SandboxHost {
    fn drop(&mut self) {
        self.root_fd = None;
        self.scratch_fd = None;
        drop(self.lifeline.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        // With a PID namespace, its init is unshare's child: wait until it is gone too.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.pid != self.child.id() && is_live(self.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// True if `pid` exists and is not a zombie.
fn is_live(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// `TMPFS_MAGIC` (linux/magic.h).
const TMPFS_MAGIC: i128 = 0x0102_1994;
/// `OVERLAYFS_SUPER_MAGIC` (linux/magic.h).
const OVERLAYFS_MAGIC: i128 = 0x794c_7630;

/// Opens the directory `name` in `dir` without following a symlink there (`O_NOFOLLOW`:
/// a link gives ELOOP or ENOTDIR).
fn open_dir_nofollow(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The error for `e` at component `name` in `dir`; says so when the component is a symlink
/// (which the helpers never follow).
fn refusal(host_path: &Path, dir: &OwnedFd, name: &OsStr, e: rustix::io::Errno) -> io::Error {
    let is_link = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_symlink());
    let os = io::Error::from(e);
    let msg = if is_link {
        format!(
            "sandbox path {}: {:?} is a symlink, and the sandbox helpers never follow one ({os})",
            host_path.display(),
            name
        )
    } else {
        format!("sandbox path {}: {:?}: {os}", host_path.display(), name)
    };
    io::Error::new(os.kind(), msg)
}

/// Removes `name` in `dir`: a directory with its contents (walked by descriptor, never
/// through a link), anything else with unlink.
fn remove_tree(dir: &OwnedFd, name: &OsStr) -> rustix::io::Result<()> {
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Err(rustix::io::Errno::ISDIR) => {}
        r => return r,
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub)? {
        let n = std::ffi::OsStr::from_bytes(entry?.file_name().to_bytes()).to_os_string();
        if n != "." && n != ".." {
            names.push(n);
        }
    }
    for n in names {
        remove_tree(&sub, &n)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
}

/// The devices (major, minor) of every mount in this process's mount namespace.
fn caller_devices() -> io::Result<Vec<(u32, u32)>> {
    let table = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(table
        .lines()
        .filter_map(|l| {
            let (maj, min) = l.split(' ').nth(2)?.split_once(':')?;
            Some((maj.parse().ok()?, min.parse().ok()?))
        })
        .collect())
}
