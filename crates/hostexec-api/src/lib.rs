//! # hostexec-api: the contract between code that acts on a host and the backends that reach it
//!
//! A program inside a privileged container (a CSI node plugin, a node agent, a containerised
//! kubelet) often has to act on the *host*: run the host's `mount`, resolve a path the way the
//! host sees it, check whether a host path is a mount point. Go's `k8s.io/utils/nsenter` did this
//! by spawning util-linux `nsenter` (and `realpath`) for every call; hostexec splits the job into
//! this small contract and backends that implement it:
//!
//! - `hostexec-nsenter`: the real host, reached from a dedicated thread that has joined the
//!   host's namespaces;
//! - `hostexec-fake`: a scripted, recording executor and a temp-directory host, for tests that
//!   run without root;
//! - the mocks behind this crate's `mock` feature ([`MockExecutor`], [`MockPathResolver`],
//!   [`MockHostFs`]), for interaction tests.
//!
//! Code written against [`Executor`], [`PathResolver`] and [`HostFs`] picks its backend by
//! dependency, not by code change.
//!
//! The contract is three traits:
//! - [`Executor`]: run a [`HostCommand`] on the host and get its [`Output`]; find host binaries.
//! - [`PathResolver`]: resolve a host path the way the host sees it (`realpath -e` / `-m`,
//!   with loops reported in both modes), and map a host path to the path through which this
//!   process reaches it.
//! - [`HostFs`]: a few file operations in the host's view (stat with mount-root information,
//!   reading a bounded file, mkdir -p, touch, rmdir, the target's mount table) that mount
//!   utilities build on.
//!
//! Errors are typed, one enum per concern: [`CommandError`] and [`PathError`].
//!
//! ## Mocking downstream code
//!
//! With the `mock` feature, downstream tests mock the traits (mockall):
//!
#![cfg_attr(feature = "mock", doc = "```")]
#![cfg_attr(not(feature = "mock"), doc = "```ignore")]
//! use hostexec_api::{Executor, HostCommand, CommandError, MockExecutor, Output, ExitStatus};
//!
//! /// Downstream code: generic over any executor.
//! async fn kernel_release<E: Executor>(exec: &E) -> Result<String, CommandError> {
//!     let out = exec.run(HostCommand::new("uname").arg("-r")).await?.check()?;
//!     Ok(out.stdout_text())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut exec = MockExecutor::new();
//! exec.expect_run()
//!     .withf(|cmd| cmd.get_program() == "uname" && cmd.get_args().eq(["-r"]))
//!     .times(1)
//!     .returning(|cmd| Ok(Output::new(cmd.get_program(), ExitStatus::Code(0)).with_stdout("6.18.0\n")));
//! assert_eq!(kernel_release(&exec).await.unwrap(), "6.18.0");
//! # }
//! ```
//!
//! ## Conformance
//!
//! The `conformance` feature exposes [`conformance`], the checks every backend runs against
//! itself (object_store's integration suite is the model): third-party backends can run them
//! too.

#![cfg_attr(docsrs, feature(doc_cfg))]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

mod command;
mod error;
mod output;
pub mod path;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use command::{
    EnvBase, EnvChanges, EnvVar, HostCommand, OutputMode, Stdin, DEFAULT_CAPTURE_LIMIT,
    DEFAULT_KILL_GRACE, DEFAULT_WAIT_DELAY, HOST_PATH,
};
pub use error::{CommandError, PathError};
pub use output::{stderr_excerpt, ExitStatus, Output, STDERR_EXCERPT_BYTES};

/// The most symlinks one resolution follows, as the kernel (`MAXSYMLINKS`); one more is
/// [`PathError::Loop`].
pub const MAX_SYMLINK_HOPS: usize = 40;

/// The directories searched for a bare program name, in the host's view, in order: Go's
/// `initPaths` order first, then the rest of a usual `PATH`.
pub const HOST_BIN_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/usr/sbin",
    "/usr/bin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/sbin",
];

/// Runs commands on the host.
///
/// # Contract
///
/// Every implementation guarantees:
///
/// - **The environment is what the command says, and nothing of the caller's.** The command
///   gets exactly [`HostCommand::final_env`] computed from this process's environment: by
///   default `PATH=`[`HOST_PATH`] alone; the caller's variables only through
///   [`HostCommand::env_from_caller`] or [`HostCommand::inherit_env`]. Masked values
///   ([`HostCommand::env_masked`]) reach the program and never a log, an error or `Debug`.
/// - **Arguments arrive byte for byte.** No shell ever interprets the program, an argument or an
///   environment value; `$(id)` and `a b` arrive literally, non-UTF-8 bytes unchanged.
/// - **A bare program name is looked up on the host** (in [`HOST_BIN_DIRS`] order, in the host's
///   view); a missing program is [`CommandError::NotFound`] naming it and the places searched.
///   An absolute program path is used as given, in the host's view.
/// - **The command ends with its caller.** On timeout ([`HostCommand::timeout`]) the command's
///   whole process group gets SIGTERM, then SIGKILL after [`HostCommand::kill_grace`], and the
///   command is reaped; the call returns [`CommandError::TimedOut`]. When the future returned by
///   [`Executor::run`] is dropped before it completes, the process group is killed the same way.
///   No zombie and no orphan of the command is left behind.
/// - **Memory is bounded.** Captured output is capped per stream at
///   [`HostCommand::capture_limit`]; the rest is read and discarded, and the truncation flagged.
/// - **No descriptor leaks.** The command gets its three standard streams and nothing else that
///   the implementation opened; every descriptor hostexec opens is `O_CLOEXEC`.
/// - **Stopping is bounded after exit.** Once the command itself exited, captured output is read
///   for at most [`HostCommand::wait_delay`] more (a daemon it started may keep the pipes open).
/// - A command that runs and fails is **not** an error of `run`: it is an [`Output`] whose
///   status says so; [`Output::check`] turns it into [`CommandError::Failed`].
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs `cmd` on the host to completion.
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError>;

    /// Where a host binary is: the first of [`HOST_BIN_DIRS`] (in the host's view) that holds an
    /// executable file of that name (Go's `AbsHostPath`; its `LookPath` was never implemented).
    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError>;

    /// True only if `systemd-run --scope` really works on the host (probed, not guessed from
    /// the binary's presence, and cached by the implementation). Mount utilities wrap mounts in
    /// a systemd scope only when this says so.
    async fn supports_systemd(&self) -> bool;
}

/// How [`PathResolver::resolve`] treats missing components.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolve {
    /// Every component must exist (`realpath -e`).
    MustExist,
    /// Missing components are allowed and kept lexically (`realpath -m`), but a symlink loop is
    /// still an error.
    AllowMissing,
}

/// Resolves host paths as the host sees them.
///
/// # Contract
///
/// - The input must be absolute and free of NUL bytes: otherwise [`PathError::NotAbsolute`] or
///   [`PathError::ContainsNul`]. No working directory is ever used.
/// - Symlinks are followed in the host's view; an absolute link target is read against the
///   host's root, never the caller's.
/// - `..` at the host root stays at the host root; the result never leaves the host root.
/// - A symlink loop is [`PathError::Loop`] in **both** modes (GNU `realpath -m` and Go return
///   the unresolved path: kubernetes/kubernetes#63143). More than [`MAX_SYMLINK_HOPS`] hops in one
///   resolution is [`PathError::Loop`], as the kernel says.
/// - [`Resolve::MustExist`]: a missing component is [`PathError::NotFound`]; a non-directory used
///   as a directory (including a trailing `/` after a file) is [`PathError::NotADirectory`].
/// - [`Resolve::AllowMissing`] (GNU `realpath -m`): from the first missing component (or the
///   first non-directory used as a directory, `file/x`) on, names are kept as written; a later
///   `..` removes a kept name, and once none is left resolution goes on from the real directory
///   above (`/a/missing/../b` → `/a/b`, with `b` resolved if it is a symlink; `/file/` →
///   `/file`). Errors other than "missing" and "not a directory" still count (a loop,
///   permission denied, a name too long).
/// - Errors name the path that was asked about.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PathResolver: Send + Sync {
    /// The canonical host path of `path`.
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;

    /// The path through which *this* process reaches `host_path` (Go's `KubeletPath`, e.g.
    /// `/rootfs` + path). Lexical only: resolve first if the path may hold symlinks. Never
    /// leaves the host root (see [`path::host_to_local`]).
    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
}

/// The kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only from a stat that does not follow).
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
}

/// What a stat in the host's view tells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// The kind of file.
    pub kind: FileKind,
    /// Permission bits and file type, as `st_mode`.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Device of the filesystem holding the file (`major`, `minor`).
    pub dev: (u32, u32),
    /// For a device file, the device it stands for (`major`, `minor`).
    pub rdev: (u32, u32),
    /// Inode number.
    pub ino: u64,
    /// Whether the file is the root of a mount (statx `STATX_ATTR_MOUNT_ROOT`), where the kernel
    /// says so.
    pub mount_root: Option<bool>,
    /// The mount ID (statx `STATX_MNT_ID`, the first field of mountinfo), where known.
    pub mount_id: Option<u64>,
}

/// File operations in the host's view, on top of path resolution: what mount utilities need
/// besides running commands.
///
/// # Contract
///
/// Paths follow the [`PathResolver`] contract: absolute, NUL-free, resolved in the host's view
/// and never outside the host root; errors are [`PathError`]s naming the path asked about.
/// Implementations do these in process where they can (no process per call).
#[async_trait]
pub trait HostFs: PathResolver {
    /// Stats `path`. With `follow`, a final symlink is followed; without, it is reported as
    /// [`FileKind::Symlink`]. Symlinks in earlier components are always followed.
    async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError>;

    /// Reads at most `limit` bytes of a file (more is [`PathError::Io`] with `EFBIG`).
    async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError>;

    /// Creates a directory and its missing parents (`mkdir -p`, mode 0755).
    async fn create_dir_all(&self, path: &Path) -> Result<(), PathError>;

    /// Creates an empty file if nothing is there (`touch` without the time update; mode 0644).
    async fn create_file(&self, path: &Path) -> Result<(), PathError>;

    /// Removes an empty directory.
    async fn remove_dir(&self, path: &Path) -> Result<(), PathError>;

    /// The target's mount table: the bytes of its `/proc/PID/mountinfo` (mount points are
    /// relative to the target's root). Never the caller's own table.
    async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError>;
}

#[cfg(any(test, feature = "mock"))]
mockall::mock! {
    /// A mockall mock of [`HostFs`] and its [`PathResolver`] supertrait (`mock` feature).
    pub HostFs {}

    #[async_trait]
    impl PathResolver for HostFs {
        async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;
        fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
    }

    #[async_trait]
    impl HostFs for HostFs {
        async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError>;
        async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError>;
        async fn create_dir_all(&self, path: &Path) -> Result<(), PathError>;
        async fn create_file(&self, path: &Path) -> Result<(), PathError>;
        async fn remove_dir(&self, path: &Path) -> Result<(), PathError>;
        async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError>;
    }
}

#[async_trait]
impl<T: Executor + ?Sized> Executor for std::sync::Arc<T> {
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
        (**self).run(cmd).await
    }
    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        (**self).look_path(name).await
    }
    async fn supports_systemd(&self) -> bool {
        (**self).supports_systemd().await
    }
}

#[async_trait]
impl<T: PathResolver + ?Sized> PathResolver for std::sync::Arc<T> {
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        (**self).resolve(path, mode).await
    }
    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
        (**self).local_path(host_path)
    }
}

#[async_trait]
impl<T: HostFs + ?Sized> HostFs for std::sync::Arc<T> {
    async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
        (**self).stat(path, follow).await
    }
    async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
        (**self).read_file(path, limit).await
    }
    async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
        (**self).create_dir_all(path).await
    }
    async fn create_file(&self, path: &Path) -> Result<(), PathError> {
        (**self).create_file(path).await
    }
    async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
        (**self).remove_dir(path).await
    }
    async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
        (**self).read_mountinfo().await
    }
}

/// The probe behind [`Executor::supports_systemd`]: runs
/// `systemd-run --description=hostexec systemd probe --scope -- true` through `exec` and says
/// whether it succeeded. Backends call it once and cache the answer.
pub async fn probe_systemd<E: Executor + ?Sized>(exec: &E) -> bool {
    let cmd = HostCommand::new("systemd-run")
        .args([
            "--description=hostexec systemd probe",
            "--scope",
            "--",
            "true",
        ])
        .timeout(std::time::Duration::from_secs(10));
    matches!(exec.run(cmd).await, Ok(out) if out.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn probe_systemd_needs_a_real_success() {
        let mut exec = MockExecutor::new();
        exec.expect_run()
            .withf(|c| {
                c.get_program() == "systemd-run"
                    && c.get_args().eq([
                        "--description=hostexec systemd probe",
                        "--scope",
                        "--",
                        "true",
                    ])
            })
            .times(1)
            .returning(|c| {
                Ok(Output::new(c.get_program(), ExitStatus::Code(1))
                    .with_stderr("System has not been booted with systemd as init system (PID 1). Can't operate.\n"))
            });
        assert!(!probe_systemd(&exec).await);

        let mut ok = MockExecutor::new();
        ok.expect_run()
            .returning(|c| Ok(Output::new(c.get_program(), ExitStatus::Code(0))));
        assert!(probe_systemd(&ok).await);

        let mut missing = MockExecutor::new();
        missing.expect_run().returning(|c| {
            Err(CommandError::NotFound {
                program: c.get_program().into(),
                searched: vec![],
            })
        });
        assert!(!probe_systemd(&missing).await);
    }

    #[tokio::test]
    async fn arc_forwards() {
        let mut m = MockPathResolver::new();
        m.expect_resolve().returning(|p, _| Ok(path::normalize(p)));
        m.expect_local_path()
            .returning(|p| path::host_to_local(Path::new("/rootfs"), p));
        let a: std::sync::Arc<dyn PathResolver> = std::sync::Arc::new(m);
        assert_eq!(
            a.resolve(Path::new("/a/../b"), Resolve::MustExist)
                .await
                .unwrap(),
            Path::new("/b")
        );
        assert_eq!(
            a.local_path(Path::new("/x")).unwrap(),
            Path::new("/rootfs/x")
        );
    }
}
