//! A hung mount: a FUSE file system whose daemon never answers, standing for a dead NFS
//! server.
//!
//! [`SandboxHost::hung_fuse_mount`] opens `/dev/fuse` in this process and mounts a FUSE file
//! system with `fd=N,rootmode=40000,user_id=0,group_id=0` at a directory of the sandbox,
//! then never reads the device. The kernel queues every request for the daemon and the
//! caller waits for an answer that never comes: a `stat`, `open`, `chdir` or `execve` that
//! enters the mount blocks in the kernel, exactly as on an NFS mount whose server is gone
//! (`hard` mounts retry forever). A second process that looks up the same name while a
//! first one waits blocks in `d_wait_lookup`, in state `D`, which not even SIGKILL ends:
//! [`HungMount::park_waiter`] makes that first process.
//!
//! The descriptor of `/dev/fuse` held here is the connection's only one: closing it
//! ([`HungMount::abort`], or dropping the fixture) aborts the connection as writing to
//! `/sys/fs/fuse/connections/N/abort` does (see the kernel's
//! `Documentation/filesystems/fuse.rst`, "Aborting a filesystem connection"), and every
//! waiter and every later call gets `ENOTCONN` at once. Dropping the fixture then kills the
//! waiters and detaches the mount.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use rustix::fs::{Mode, OFlags};

use crate::sandbox::SandboxHost;

/// A FUSE mount in a sandbox host that never answers. See the [module docs](self).
#[derive(Debug)]
pub struct HungMount {
    /// `/dev/fuse`: the connection's only device descriptor. `None` once aborted.
    fuse: Option<OwnedFd>,
    /// The sandbox's mount namespace, to detach the mount in.
    mnt_ns: OwnedFd,
    path: PathBuf,
    /// `major:minor` of the mount (the fusectl connection is named by the minor).
    device: (u32, u32),
    nsenter_args: Vec<OsString>,
    waiters: Vec<Child>,
}

impl SandboxHost {
    /// Mounts a FUSE file system that never answers at `host_path`, an existing directory of
    /// the sandbox reached without a symlink. See [`HungMount`].
    pub fn hung_fuse_mount(&self, host_path: &Path) -> io::Result<HungMount> {
        let target = self.open_dir(host_path)?;
        let fuse = open_fuse_device()?;
        let mnt_ns = rustix::fs::open(
            format!("/proc/{}/ns/mnt", self.pid()),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let data = format!(
            "fd={},rootmode=40000,user_id=0,group_id=0",
            fuse.as_raw_fd()
        );
        // Through the descriptor of the directory: the kernel mounts on exactly it.
        let at = format!("/proc/self/fd/{}", target.as_raw_fd());
        in_mount_ns(&mnt_ns, move || {
            nix::mount::mount(
                Some("hostexec-hung"),
                at.as_str(),
                Some("fuse"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some(data.as_str()),
            )
        })
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "mount a hung FUSE file system at {}: {e}",
                    host_path.display()
                ),
            )
        })?;
        let device = mount_device(self.pid(), host_path)?;
        Ok(HungMount {
            fuse: Some(fuse),
            mnt_ns,
            path: host_path.to_path_buf(),
            device,
            nsenter_args: self.nsenter_args(),
            waiters: Vec::new(),
        })
    }
}

impl HungMount {
    /// The host path of the mount.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `major:minor` of the mount's device, as mountinfo shows it; the FUSE connection's
    /// directory under `/sys/fs/fuse/connections` is named by the minor.
    pub fn device(&self) -> (u32, u32) {
        self.device
    }

    /// Starts a process in the sandbox that looks up `name` in the mount (`stat PATH/name`)
    /// and waits until it is blocked there; returns its PID. It waits killably for the
    /// daemon's answer; a second lookup of the same name then blocks unkillably (state `D`)
    /// behind it, until the connection is aborted.
    pub fn park_waiter(&mut self, name: &str) -> io::Result<u32> {
        let child = Command::new("nsenter")
            .args(&self.nsenter_args)
            .arg("--")
            .arg("stat")
            .arg("--")
            .arg(self.path.join(name))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.waiters.push(child);
        wait_blocked(pid, Duration::from_secs(10))?;
        Ok(pid)
    }

    /// True until [`abort`](Self::abort): the mount answers nothing.
    pub fn is_hung(&self) -> bool {
        self.fuse.is_some()
    }

    /// Aborts the connection (closes the only `/dev/fuse` descriptor): every waiting and
    /// later call into the mount fails at once with `ENOTCONN`. The mount stays until the
    /// fixture is dropped.
    pub fn abort(&mut self) {
        self.fuse = None;
    }
}

impl Drop for HungMount {
    fn drop(&mut self) {
        self.abort();
        for w in &mut self.waiters {
            let _ = w.kill();
            let _ = w.wait();
        }
        let at = self.path.clone();
        let _ = in_mount_ns(&self.mnt_ns, move || {
            nix::mount::umount2(&at, MntFlags::MNT_DETACH)
        });
    }
}

/// State letters of `/proc/PID/stat` that mean "waiting in the kernel".
fn is_waiting(state: char) -> bool {
    matches!(state, 'S' | 'D')
}

/// Polls until `pid` runs `stat` and sleeps in a FUSE request (its wchan names fuse, or it is
/// asleep in `stat` after the lookup started), or fails after `limit`.
fn wait_blocked(pid: u32, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()));
        let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
        if comm.trim() == "stat"
            && state.is_some_and(is_waiting)
            && (wchan.contains("fuse") || wchan.contains("request_wait_answer"))
        {
            return Ok(());
        }
        if state.is_none() || state == Some('Z') {
            return Err(io::Error::other(format!(
                "the waiter {pid} ended instead of blocking in the hung mount"
            )));
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the waiter {pid} did not block in the hung mount (wchan {wchan:?})"),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `/dev/fuse`, opened read-write and close-on-exec; made in a private directory with
/// `mknod c 10 229` when the machine has no `/dev/fuse` node.
fn open_fuse_device() -> io::Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    match rustix::fs::open("/dev/fuse", flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) => {}
        r => return r.map_err(io::Error::from),
    }
    let dir = tempfile::tempdir()?;
    let node = dir.path().join("fuse");
    nix::sys::stat::mknod(
        &node,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(10, 229),
    )?;
    Ok(rustix::fs::open(&node, flags, Mode::empty())?)
}

/// Runs `f` on a new thread that joined the mount namespace `ns` (after
/// `unshare(CLONE_FS)`, which `setns` requires of a thread sharing its root with others).
fn in_mount_ns<F>(ns: &OwnedFd, f: F) -> io::Result<()>
where
    F: FnOnce() -> nix::Result<()> + Send + 'static,
{
    let ns = ns.as_fd().try_clone_to_owned()?;
    std::thread::spawn(move || -> nix::Result<()> {
        nix::sched::unshare(CloneFlags::CLONE_FS)?;
        nix::sched::setns(&ns, CloneFlags::CLONE_NEWNS)?;
        f()
    })
    .join()
    .map_err(|_| io::Error::other("the mount-namespace thread panicked"))?
    .map_err(io::Error::from)
}

/// The device (`major:minor`) of the last mount at `path` in `pid`'s mount table.
fn mount_device(pid: u32, path: &Path) -> io::Result<(u32, u32)> {
    let table = std::fs::read(format!("/proc/{pid}/mountinfo"))?;
    let want = mountinfo_escape(path.as_os_str().as_bytes());
    table
        .split(|&b| b == b'\n')
        .filter_map(|line| {
            let mut fields = line.split(|&b| b == b' ');
            let dev = fields.nth(2)?;
            let point = fields.nth(1)?;
            (point == want.as_slice()).then_some(dev)
        })
        .next_back()
        .and_then(|dev| {
            let dev = std::str::from_utf8(dev).ok()?;
            let (maj, min) = dev.split_once(':')?;
            Some((maj.parse().ok()?, min.parse().ok()?))
        })
        .ok_or_else(|| io::Error::other(format!("no mount at {} in the table", path.display())))
}

/// A path as mountinfo prints it: space, tab, newline and backslash as `\ooo`.
fn mountinfo_escape(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if matches!(b, b' ' | b'\t' | b'\n' | b'\\') {
            out.extend_from_slice(format!("\\{b:03o}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}
