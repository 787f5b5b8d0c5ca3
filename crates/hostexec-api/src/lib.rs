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
//! Errors are typed, one enum per concern: [`CommandError`] and [`PathError`]. A backend's own
//! error is kept whole as the boxed source of [`CommandError::Backend`] or of a
//! `HostUnavailable` variant, never flattened into text.
//!
//! ## Implementing a backend
//!
//! Implement the traits with the [`async_trait`](macro@async_trait) attribute re-exported here
//! (`#[hostexec_api::async_trait]`), honour each trait's **Contract** section, and run the
//! [`conformance`] suite against the backend (feature `conformance`); `hostexec-fake`'s front
//! page has a complete compiled example. The traits are also implemented for `&T`, `Box<T>`
//! and `Arc<T>` of any implementation (trait objects included), and the structs a backend
//! returns are built through constructors ([`Output::new`], [`FileStat::new`]) because they
//! are `#[non_exhaustive]`.
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

/// The `async_trait` attribute the traits are declared with: implement them with
/// `#[hostexec_api::async_trait]` (no direct dependency on the `async-trait` crate needed).
pub use async_trait::async_trait;

mod command;
mod error;
mod forward;
#[cfg(any(test, feature = "mock"))]
mod mocks;
mod mount;
mod output;
pub mod path;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use command::{
    EnvBase, EnvChanges, EnvVar, HostCommand, OutputMode, Stdin, DEFAULT_CAPTURE_LIMIT,
    DEFAULT_KILL_GRACE, DEFAULT_WAIT_DELAY, HOST_PATH,
};
pub use error::{BoxError, CommandError, HumanDuration, Lingering, PathError};
#[cfg(any(test, feature = "mock"))]
pub use mocks::{MockExecutor, MockHostFs, MockPathResolver};
#[cfg(any(test, feature = "mock"))]
pub use mount::MockNativeMount;
pub use mount::{
    Atime, FsOption, MountAttrs, MountKind, MountRequest, MountRoute, NativeMount,
    NativeMountError, Propagation, SecretBytes, TargetLookup, UnmountRequest,
};
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
/// - **One tree for commands and paths.** A command's `/`, its working directory
///   ([`HostCommand::current_dir`]; by default the host's `/`, or a target process's own
///   working directory where the backend targets a process, as `nsenter -r -w`) and the bare
///   name lookup are in the same tree that [`PathResolver`] resolves in.
/// - **Arguments arrive byte for byte.** No shell ever interprets the program, an argument or an
///   environment value; `$(id)` and `a b` arrive literally, non-UTF-8 bytes unchanged.
/// - **A bare program name is looked up on the host** (in [`HOST_BIN_DIRS`] order, in the host's
///   view); a missing program is [`CommandError::NotFound`] naming it and the places searched.
///   An absolute program path is used as given, in the host's view.
/// - **The command ends with its caller.** The timeout ([`HostCommand::timeout`]) covers the
///   whole call: finding the program, starting it (also when that blocks on a hung mount),
///   running it, killing it and reaping it. On timeout everything the command started (its
///   process group, and processes that left it with `setsid`, a new group or a double fork)
///   gets SIGTERM, then SIGKILL after [`HostCommand::kill_grace`], and is reaped; the call
///   returns [`CommandError::TimedOut`]. A process that cannot be reaped in a bounded time
///   after SIGKILL (blocked in the kernel, state `D`) does not delay the call: it is named in
///   the error's [`Lingering`] note and reaped when it ends. When the future returned by
///   [`Executor::run`] is dropped before it completes, the command is stopped the same way
///   (SIGTERM, the grace, SIGKILL). No zombie and no orphan of the command is left behind.
/// - **Memory is bounded.** Captured output is capped per stream at
///   [`HostCommand::capture_limit`]; the rest is read and discarded, and the truncation flagged.
/// - **No descriptor leaks.** The command gets its three standard streams and nothing else that
///   the implementation opened; every descriptor hostexec opens is `O_CLOEXEC`.
/// - **Stopping is bounded after exit.** Once the command itself exited, captured output is read
///   for at most [`HostCommand::wait_delay`] more (a daemon it started may keep the pipes open).
/// - A command that runs and fails is **not** an error of `run`: it is an [`Output`] whose
///   status says so; [`Output::check`] turns it into [`CommandError::Failed`].
/// - **systemd is probed, not guessed.** [`Executor::supports_systemd`] is `true` only if
///   `systemd-run --scope` really ran on the host. The provided method runs [`probe_systemd`]
///   through [`Executor::run`] on every call; a backend that is asked often overrides it to
///   probe once and cache the answer (both backends of this workspace do), and a test double
///   overrides it to answer as scripted. An override must never answer `true` without a probe
///   or a script saying so.
///
/// Errors of the backend itself that no variant of [`CommandError`] describes travel as
/// [`CommandError::Backend`] (or [`CommandError::HostUnavailable`] when the host cannot be
/// reached), with the backend's own error as the `source`, so callers can downcast to it.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Runs `cmd` on the host to completion.
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError>;

    /// Where a host binary is: the first of [`HOST_BIN_DIRS`] (in the host's view) that holds an
    /// executable file of that name (Go's `AbsHostPath`; its `LookPath` was never implemented).
    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError>;

    /// True only if `systemd-run --scope` really works on the host (probed, not guessed from
    /// the binary's presence). Mount utilities wrap mounts in a systemd scope only when this
    /// says so.
    ///
    /// Provided: runs [`probe_systemd`] through [`Executor::run`] each time it is called.
    /// Override it to cache the answer (see the trait's contract).
    async fn supports_systemd(&self) -> bool {
        probe_systemd(self).await
    }
}

/// How [`PathResolver::resolve`] treats missing components.
///
/// `#[non_exhaustive]`: more modes may come (GNU `realpath -E`, all but the last component
/// must exist); match with a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resolve {
    /// Every component must exist (`realpath -e`).
    MustExist,
    /// Missing components are allowed and kept lexically (`realpath -m`), but a symlink loop is
    /// still an error.
    AllowMissing,
    /// Every component but the last must exist (GNU `realpath` without options, `realpath -E`,
    /// `readlink -f`): the answer names an object that exists or could be created.
    AllButLast,
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
/// - [`Resolve::AllButLast`] (GNU `realpath`'s default, `readlink -f`): as
///   [`Resolve::MustExist`], except that the last component may be missing, also when it is
///   reached through a symlink (a dangling link resolves to where it points if that directory
///   exists) and when only slashes follow it (`/dir/missing/` → `/dir/missing`). A missing
///   component with anything else after it (`/missing/..`, `/missing/.`, `/missing/x`) is
///   [`PathError::NotFound`]; a non-directory used as a directory is
///   [`PathError::NotADirectory`].
/// - Errors name the path that was asked about.
#[async_trait]
pub trait PathResolver: Send + Sync {
    /// The canonical host path of `path`.
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;

    /// The path through which *this* process reaches `host_path` (Go's `KubeletPath`, e.g.
    /// `/rootfs` + path). Lexical only: resolve first if the path may hold symlinks. Never
    /// leaves the host root (see [`path::host_to_local`]).
    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
}

/// The kind of a file: the seven file types of POSIX `st_mode` (`S_IFMT`), a closed set, so
/// this enum is exhaustive.
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
///
/// `#[non_exhaustive]` (more statx fields may be added): a backend outside this crate builds
/// one with [`FileStat::new`] and sets the public fields it knows.
///
/// ```
/// use hostexec_api::{FileKind, FileStat};
///
/// let mut st = FileStat::new(FileKind::File);
/// st.mode = 0o100644;
/// st.size = 3;
/// st.mount_root = Some(false);
/// assert_eq!(st.kind, FileKind::File);
/// assert_eq!(st.mount_id, None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

impl FileStat {
    /// A stat of a file of this kind with every other field zero, and `mount_root` and
    /// `mount_id` unknown (`None`). Set the fields the backend knows.
    pub fn new(kind: FileKind) -> Self {
        FileStat {
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            dev: (0, 0),
            rdev: (0, 0),
            ino: 0,
            mount_root: None,
            mount_id: None,
        }
    }
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

    /// The table [`read_mountinfo`](HostFs::read_mountinfo) reads, handed to `piece` in
    /// pieces as they are read, so that a caller can parse one piece while the next is read
    /// (Linux generates `/proc/PID/mountinfo` as it is read, about a microsecond per mount;
    /// at 10,000 mounts parsing it whole after the read adds a sixth to the read's time).
    ///
    /// # Contract
    ///
    /// - Pieces are whole lines: each piece is non-empty and ends with a newline, except
    ///   that the last one ends where the table does.
    /// - They come in order, and joined they are exactly the bytes `read_mountinfo` would
    ///   have returned (the same checks, the same file, the same deadline and errors).
    /// - `piece` may be called on any thread; it is dropped when the read ends (a caller
    ///   that receives pieces through a channel sees the channel close). An error is
    ///   returned after the pieces read before it; such pieces are no table.
    ///
    /// The default reads the table with `read_mountinfo` and hands it over as one piece (none
    /// when it is empty); backends that can read in pieces override it (`hostexec-nsenter`
    /// reads 32 KiB pieces of whole lines on its file pool). The conformance check is
    /// `conformance::mountinfo_pieces_join_to_the_table` (feature `conformance`).
    async fn read_mountinfo_pieces(
        &self,
        mut piece: Box<dyn FnMut(Vec<u8>) + Send>,
    ) -> Result<(), PathError> {
        let table = self.read_mountinfo().await?;
        if !table.is_empty() {
            piece(table);
        }
        Ok(())
    }

    /// The entry of the mount that holds `path` (symlinks followed; for a mount point, the
    /// mount on top), as one line of [`read_mountinfo`](HostFs::read_mountinfo)'s format
    /// without the newline: what that table says of this mount, read without reading the
    /// rest of it (Linux's `statmount(2)`, 6.8+, costs the same at 10 or 10,000 mounts).
    ///
    /// A backend that cannot read one mount alone answers [`PathError::Io`] whose source is
    /// of kind [`std::io::ErrorKind::Unsupported`] (the default); callers then look the mount
    /// up in the whole table (`hostexec-mount`'s `MountExt::mount_of` does).
    async fn read_mount_entry(&self, path: &Path) -> Result<Vec<u8>, PathError> {
        Err(PathError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "this backend reads the mount table whole only",
            ),
        })
    }
}

/// The probe behind [`Executor::supports_systemd`]: runs
/// `systemd-run --description=hostexec systemd probe --scope -- true` through `exec` and says
/// whether it succeeded. It is what [`Executor::supports_systemd`] runs unless a backend
/// overrides it; backends that override it to cache call it once.
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
    async fn references_boxes_and_arcs_forward() {
        async fn resolve_b<R: PathResolver>(r: R) -> PathBuf {
            r.resolve(Path::new("/a/../b"), Resolve::MustExist)
                .await
                .unwrap()
        }
        let mock = || {
            let mut m = MockPathResolver::new();
            m.expect_resolve()
                .times(1)
                .returning(|p, _| Ok(path::normalize(p)));
            m
        };
        let m = mock();
        assert_eq!(resolve_b(&m).await, Path::new("/b"));
        let boxed: Box<dyn PathResolver> = Box::new(mock());
        assert_eq!(resolve_b(boxed).await, Path::new("/b"));
        let mut m = mock();
        m.expect_local_path()
            .returning(|p| path::host_to_local(Path::new("/rootfs"), p));
        let a: std::sync::Arc<dyn PathResolver> = std::sync::Arc::new(m);
        assert_eq!(
            a.local_path(Path::new("/x")).unwrap(),
            Path::new("/rootfs/x")
        );
        assert_eq!(resolve_b(a).await, Path::new("/b"));

        let mut e = MockExecutor::new();
        e.expect_supports_systemd().times(1).return_const(true);
        async fn systemd<E: Executor>(e: E) -> bool {
            e.supports_systemd().await
        }
        // A reference to a box of a trait object: two forwarding layers.
        let e: Box<dyn Executor> = Box::new(e);
        assert!(systemd(&e).await);
    }

    /// An executor that implements only the required methods gets the probe.
    #[tokio::test]
    async fn supports_systemd_is_provided_over_the_probe() {
        struct Counting(std::sync::atomic::AtomicUsize, i32);
        #[async_trait]
        impl Executor for Counting {
            async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                assert_eq!(cmd.get_program(), "systemd-run");
                Ok(Output::new(cmd.get_program(), ExitStatus::Code(self.1)))
            }
            async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
                Ok(Path::new("/usr/bin").join(name))
            }
        }
        let yes = Counting(Default::default(), 0);
        assert!(yes.supports_systemd().await);
        assert!(yes.supports_systemd().await);
        // Not cached by default: each call probes.
        assert_eq!(yes.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(!Counting(Default::default(), 1).supports_systemd().await);
    }
}
