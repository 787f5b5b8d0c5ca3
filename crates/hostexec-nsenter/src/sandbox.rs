//! A sandbox host for tests and demos (feature `sandbox`): a real process in its own mount
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
//! Dropping the sandbox kills it, waits for it and removes the scratch directory, also while a
//! test panics.
//!
//! ```no_run
//! use hostexec_nsenter::sandbox::{skip_without_namespaces, SandboxHost};
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
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Namespace, Target};

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
        // The script's arguments come as "$1", "$2": nothing is interpolated into it.
        cmd.args([
            "--",
            "sh",
            "-c",
            r#"set -e
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
        cmd.stdin(Stdio::piped())
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
        Ok(SandboxHost {
            lifeline,
            child,
            pid,
            dir: Some(dir),
            scratch,
            namespaces: self.namespaces(),
        })
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
    pub fn local(&self, host_path: &Path) -> PathBuf {
        hostexec_api::path::host_to_local(Path::new(&format!("/proc/{}/root", self.pid)), host_path)
            .unwrap_or_else(|_| PathBuf::from(format!("/proc/{}/root/.invalid", self.pid)))
    }

    /// Writes a file in the sandbox (its parent must exist).
    pub fn write_file(&self, host_path: &Path, data: &[u8]) -> io::Result<()> {
        std::fs::write(self.local(host_path), data)
    }

    /// Creates a directory and its parents in the sandbox.
    pub fn mkdir_all(&self, host_path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(self.local(host_path))
    }

    /// Creates a symlink `link` → `target` in the sandbox (`target` is stored as given).
    pub fn symlink(&self, target: impl AsRef<OsStr>, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target.as_ref(), self.local(link))
    }

    /// Mounts a tmpfs at `host_path` in the sandbox (with `mount -t tmpfs -o options`;
    /// `options` may be empty).
    pub fn mount_tmpfs(&self, host_path: &Path, options: &str) -> io::Result<()> {
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

    /// The nsenter options that join the sandbox's namespaces.
    fn nsenter_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["-t".into(), self.pid.to_string().into()];
        for ns in &self.namespaces {
            a.push(
                match ns {
                    Namespace::Mount => "-m",
                    Namespace::Uts => "-u",
                    Namespace::Net => "-n",
                    Namespace::Pid => "-p",
                    Namespace::Ipc => "-i",
                    Namespace::Cgroup => "-C",
                    Namespace::Time => "-T",
                }
                .into(),
            );
        }
        a
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
