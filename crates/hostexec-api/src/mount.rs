//! Native mounting: the [`NativeMount`] capability, the requests it takes and its errors.
//!
//! A mount utility (such as `hostexec-mount`'s `HostMounter`) decides *what* to mount and
//! hands a [`MountRequest`] to the backend; the backend does it in the host's mount namespace
//! with no helper process, holding the target (and a bind source) by descriptor from the
//! moment it is resolved:
//!
//! ```text
//! target  = the in-root walk → O_PATH fd          (a final symlink refused: TargetLookup)
//! new fs  = fsopen(type) → fsconfig(source, key=value…) → fsconfig(CREATE) → fsmount(attrs)
//! bind    = open_tree(source_fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH [| AT_RECURSIVE])
//!           → mount_setattr(attrs)
//! attach  = move_mount(mnt_fd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
//! remount = mount_setattr(target_fd, "", AT_EMPTY_PATH, attrs)   (per-mount flags)
//! unmount = statx(target_fd): mount root? then umount2 through the fd's /proc link
//! ```
//!
//! Why: `mount(8)` and `mount(2)` take the target as a path string and resolve it again; a
//! host process that swaps the target for a symlink between the caller's check and the mount
//! makes the mount land elsewhere (the Kubernetes subpath bugs, CVE-2017-1002101 and
//! CVE-2021-25741). A descriptor names one object for the whole call, and refusing a final
//! symlink closes the window *between* calls (the caller's `is_mount_point` check, then the
//! mount). `mount_setattr(2)` and `move_mount(2)` act in the calling thread's mount namespace,
//! so the backend must make them from a thread that joined the host's.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::PathError;

/// The text shown instead of a sensitive filesystem option's value.
const MASKED: &str = "<masked>";

/// Mounts and unmounts in the host's mount namespace, natively (no helper process), with the
/// target held by descriptor.
///
/// # Contract
///
/// - **One object per call.** The target (and a bind source) is resolved once, inside the
///   host root, to a descriptor; every later step acts on that descriptor. A concurrent rename
///   or symlink swap can make the call fail, never make it mount on, or unmount, another
///   directory.
/// - **No symlink as the last word** unless asked: with [`TargetLookup::RefuseFinalSymlink`]
///   (the default) a target or bind source whose final component is a symlink is
///   [`NativeMountError::Symlink`], naming the link and where it points; with
///   [`TargetLookup::Beneath`] no symlink at all is followed below the base.
/// - **Attributes before visibility.** A new mount gets its [`MountAttrs`] before it is
///   attached (read-only is never briefly read-write).
/// - **Unmount only what the descriptor names**: a target that is not the root of a mount is
///   [`NativeMountError::NotMounted`], never its parent's mount.
/// - **Busy means busy.** A process that starts children holds, in each child between
///   `clone` and `exec`, a copy of every descriptor it had open (clone(2) without
///   `CLONE_FILES`), so a mount it just looked at can answer `EBUSY` for an instant. A backend
///   that starts processes waits such a moment out (a bounded retry) before it reports
///   `EBUSY` as a [`NativeMountError::Kernel`] error.
/// - **Secrets stay inside.** A sensitive option ([`MountRequest::sensitive_option`]) is
///   handed to the kernel and appears in no argv, environment, log, error or `Debug`.
/// - **Unsupported is not failure.** A backend that cannot mount natively here (no host
///   thread, a kernel without the new mount API, a seccomp filter) answers
///   [`NativeMountError::Unsupported`] *before* changing anything, so the caller can take the
///   mount(8) route.
/// - **A helper's type is the helper's.** A request made
///   [`unless_helper`](MountRequest::unless_helper) is
///   [`NativeMountError::HelperRequired`], before anything changes, when any of its
///   [`helper_paths`](MountRequest::helper_paths) exists in the host's view.
/// - The returned [`MountRoute`] says which kernel interface did the work.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait NativeMount: Send + Sync {
    /// Mounts as `request` says.
    async fn mount_native(&self, request: &MountRequest) -> Result<MountRoute, NativeMountError>;

    /// Unmounts the mount whose root the request's target is.
    async fn unmount_native(
        &self,
        request: &UnmountRequest,
    ) -> Result<MountRoute, NativeMountError>;

    /// Creates `path` (a host path in a directory only root can reach, such as a mount
    /// call's private staging area) as a new regular file of mode 0600 holding `contents`:
    /// for a mount helper that reads a secret from a file instead of its argv (mount.cifs(8)'s
    /// `credentials=FILE`).
    ///
    /// # Contract
    ///
    /// - **New, exactly.** Every component but the last is resolved inside the host root by
    ///   the usual rules; the last is created relative to its directory's descriptor with
    ///   `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`. Anything already there, a symlink
    ///   included, is [`PathError::AlreadyExists`] and is left alone.
    /// - **Mode 0600 whatever the umask**, owned by the caller (root).
    /// - **Whole or nothing.** `contents` is written whole before this returns; a write that
    ///   fails removes the file again.
    /// - **The secret stays inside**: `contents` appears in no argv, log, error or `Debug`.
    async fn create_secret_file(
        &self,
        path: &Path,
        contents: &SecretBytes,
    ) -> Result<(), PathError>;

    /// Removes the file at `path` (`unlink(2)`: a final symlink is removed itself, never
    /// followed; a directory is refused).
    ///
    /// # Contract
    ///
    /// - **Synchronous and bounded**: it makes a few system calls on the calling thread and
    ///   never waits for another thread of the backend, so a caller can call it from `Drop`
    ///   (a mount future dropped while its helper runs still removes its credentials file).
    /// - A missing file is [`PathError::NotFound`].
    fn remove_secret_file(&self, path: &Path) -> Result<(), PathError>;
}

/// Bytes that are a secret (the lines of a credentials file): `Debug` shows their length
/// only, and nothing in hostexec logs them.
///
/// ```
/// use hostexec_api::SecretBytes;
/// let s = SecretBytes::new("password=hunter2\n");
/// assert_eq!(format!("{s:?}"), "SecretBytes(<masked>, 17 bytes)");
/// assert_eq!(s.expose(), b"password=hunter2\n");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        SecretBytes(bytes.into())
    }

    /// The bytes themselves: hand them to the file and nowhere else.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes({MASKED}, {} bytes)", self.0.len())
    }
}

/// Which interface did (or tried) a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MountRoute {
    /// The new mount API on descriptors (`fsopen`/`fsmount`/`open_tree`/`move_mount`/
    /// `mount_setattr`, Linux ≥ 5.12).
    NewApi,
    /// `mount(2)`/`umount2(2)` on the host thread, through the descriptor's `/proc` link.
    Mount2,
    /// The host's `mount(8)`/`umount(8)`.
    Helper,
    /// A test double's table.
    Fake,
}

impl fmt::Display for MountRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MountRoute::NewApi => "new mount API",
            MountRoute::Mount2 => "mount(2)",
            MountRoute::Helper => "mount(8)",
            MountRoute::Fake => "fake table",
        })
    }
}

/// How the target (and a bind source) is looked up.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TargetLookup {
    /// Symlinks in earlier components are followed inside the host root; a final symlink is
    /// refused ([`NativeMountError::Symlink`]).
    #[default]
    RefuseFinalSymlink,
    /// A final symlink is followed too, inside the host root (mount(8)'s behaviour).
    FollowFinalSymlink,
    /// The path must lie below this trusted base (a host path, resolved normally), and no
    /// symlink at all is followed below it (`openat2` with `RESOLVE_BENEATH |
    /// RESOLVE_NO_SYMLINKS`), as kubelet's subpath fix does by hand.
    Beneath(PathBuf),
}

/// The atime mode of a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Atime {
    /// `relatime` (the kernel's default).
    Relative,
    /// `noatime`.
    Never,
    /// `strictatime`.
    Strict,
}

/// A propagation type (mount_namespaces(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Propagation {
    /// `shared`.
    Shared,
    /// `slave`.
    Slave,
    /// `private`.
    Private,
    /// `unbindable`.
    Unbindable,
}

/// Per-mount attributes (what `mount_setattr(2)` changes): `Some(true)` sets, `Some(false)`
/// clears, `None` leaves as it is (for a new filesystem: the kernel's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MountAttrs {
    /// `ro` / `rw`.
    pub read_only: Option<bool>,
    /// `nosuid` / `suid`.
    pub nosuid: Option<bool>,
    /// `nodev` / `dev`.
    pub nodev: Option<bool>,
    /// `noexec` / `exec`.
    pub noexec: Option<bool>,
    /// `nodiratime` / `diratime`.
    pub nodiratime: Option<bool>,
    /// `nosymfollow` / `symfollow`.
    pub nosymfollow: Option<bool>,
    /// The atime mode.
    pub atime: Option<Atime>,
    /// The propagation type.
    pub propagation: Option<Propagation>,
    /// Apply to the whole subtree (`AT_RECURSIVE`; the `r` of `rshared`, `rbind,ro`).
    pub recursive: bool,
}

impl MountAttrs {
    /// No change.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when nothing is to change.
    pub fn is_empty(&self) -> bool {
        let MountAttrs {
            read_only,
            nosuid,
            nodev,
            noexec,
            nodiratime,
            nosymfollow,
            atime,
            propagation,
            recursive: _,
        } = self;
        [read_only, nosuid, nodev, noexec, nodiratime, nosymfollow]
            .iter()
            .all(|o| o.is_none())
            && atime.is_none()
            && propagation.is_none()
    }

    /// Applies one mount(8) option if it is a per-mount (VFS) flag or a propagation type, as
    /// mount(8) splits `-o`: `ro`/`rw`, `nosuid`/`suid`, `nodev`/`dev`, `noexec`/`exec`,
    /// `noatime`/`relatime`/`strictatime`/`atime`, `nodiratime`/`diratime`,
    /// `nosymfollow`/`symfollow`, and `[r]shared`, `[r]slave`, `[r]private`, `[r]unbindable`.
    /// Returns `false` (and changes nothing) for any other option: a filesystem option.
    ///
    /// ```
    /// use hostexec_api::{Atime, MountAttrs};
    /// let mut a = MountAttrs::new();
    /// assert!(a.apply_option("ro") && a.apply_option("noatime") && a.apply_option("rshared"));
    /// assert!(!a.apply_option("size=1m"));
    /// assert_eq!((a.read_only, a.atime, a.recursive), (Some(true), Some(Atime::Never), true));
    /// ```
    pub fn apply_option(&mut self, option: &str) -> bool {
        let (name, recursive) = match option.strip_prefix('r') {
            Some(rest @ ("shared" | "slave" | "private" | "unbindable")) => (rest, true),
            _ => (option, false),
        };
        match name {
            "ro" => self.read_only = Some(true),
            "rw" => self.read_only = Some(false),
            "nosuid" => self.nosuid = Some(true),
            "suid" => self.nosuid = Some(false),
            "nodev" => self.nodev = Some(true),
            "dev" => self.nodev = Some(false),
            "noexec" => self.noexec = Some(true),
            "exec" => self.noexec = Some(false),
            "nodiratime" => self.nodiratime = Some(true),
            "diratime" => self.nodiratime = Some(false),
            "nosymfollow" => self.nosymfollow = Some(true),
            "symfollow" => self.nosymfollow = Some(false),
            "noatime" => self.atime = Some(Atime::Never),
            "relatime" | "atime" => self.atime = Some(Atime::Relative),
            "strictatime" => self.atime = Some(Atime::Strict),
            "shared" => self.propagation = Some(Propagation::Shared),
            "slave" => self.propagation = Some(Propagation::Slave),
            "private" => self.propagation = Some(Propagation::Private),
            "unbindable" => self.propagation = Some(Propagation::Unbindable),
            _ => return false,
        }
        if recursive {
            self.recursive = true;
        }
        true
    }

    /// Fills each attribute `self` leaves unset from `other`.
    pub fn or(self, other: MountAttrs) -> MountAttrs {
        MountAttrs {
            read_only: self.read_only.or(other.read_only),
            nosuid: self.nosuid.or(other.nosuid),
            nodev: self.nodev.or(other.nodev),
            noexec: self.noexec.or(other.noexec),
            nodiratime: self.nodiratime.or(other.nodiratime),
            nosymfollow: self.nosymfollow.or(other.nosymfollow),
            atime: self.atime.or(other.atime),
            propagation: self.propagation.or(other.propagation),
            recursive: self.recursive || other.recursive,
        }
    }
}

/// One filesystem option for `fsconfig(2)`: a flag (`key`) or `key=value`.
#[derive(Clone, PartialEq, Eq)]
pub struct FsOption {
    key: String,
    value: Option<OsString>,
    sensitive: bool,
}

impl FsOption {
    /// The key (`size`, `mode`, `lowerdir`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value, if any. For a sensitive option this is the secret: hand it to the kernel
    /// and nowhere else.
    pub fn value(&self) -> Option<&OsStr> {
        self.value.as_deref()
    }

    /// True for an option added with [`MountRequest::sensitive_option`].
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }

    /// The option as it may be shown: `key`, `key=value`, or `key=<masked>`.
    pub fn shown(&self) -> String {
        match (&self.value, self.sensitive) {
            (None, false) => self.key.clone(),
            (Some(v), false) => format!("{}={}", self.key, v.to_string_lossy()),
            (_, true) => format!("{}={MASKED}", self.key),
        }
    }
}

impl fmt::Debug for FsOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
    }
}

/// What a [`MountRequest`] mounts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MountKind {
    /// A new filesystem instance of a type (`fsopen`), with an optional `source` (a block
    /// device for ext4, a label for tmpfs).
    Filesystem {
        /// The filesystem type (`tmpfs`, `ext4`).
        fstype: String,
        /// The `source` parameter, if any.
        source: Option<OsString>,
    },
    /// A bind mount of a host path (`open_tree(OPEN_TREE_CLONE)`); `recursive` for rbind.
    Bind {
        /// The host path to bind.
        source: PathBuf,
        /// Include the mounts below the source (`rbind`).
        recursive: bool,
    },
    /// A change of the mount at the target: its attributes (`mount_setattr`) and, with
    /// filesystem options, its superblock (`fspick` + `FSCONFIG_CMD_RECONFIGURE`).
    Remount,
    /// Moves the mount whose root `source` is (a staging directory mount(8) mounted on) onto
    /// the target (`move_mount`, `MS_MOVE`). The source is looked up following symlinks: it
    /// is the caller's own staging path, not an input.
    Move {
        /// The root of the mount to move, a host path.
        source: PathBuf,
    },
}

/// A mount for [`NativeMount::mount_native`]: what, where, with which attributes and options.
///
/// `Debug` masks sensitive options.
///
/// ```
/// use hostexec_api::{MountAttrs, MountRequest};
/// let mut ro = MountAttrs::new();
/// ro.read_only = Some(true);
/// let r = MountRequest::filesystem("tmpfs", "/mnt/x")
///     .source("scratch")
///     .option("size", Some("16m"))
///     .sensitive_option("secret", "hunter2")
///     .attrs(ro);
/// assert!(!format!("{r:?}").contains("hunter2"));
/// assert_eq!(r.shown_options(), "size=16m,secret=<masked>");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountRequest {
    kind: MountKind,
    target: PathBuf,
    attrs: MountAttrs,
    options: Vec<FsOption>,
    lookup: TargetLookup,
    helper_for: Option<String>,
}

/// Where mount(8) looks for the `mount.TYPE` helper it runs for a filesystem type.
const HELPER_DIRS: [&str; 2] = ["/sbin", "/usr/sbin"];

impl MountRequest {
    fn with(kind: MountKind, target: impl Into<PathBuf>) -> Self {
        MountRequest {
            kind,
            target: target.into(),
            attrs: MountAttrs::default(),
            options: Vec::new(),
            lookup: TargetLookup::default(),
            helper_for: None,
        }
    }

    /// A new filesystem of type `fstype` on `target`.
    pub fn filesystem(fstype: impl Into<String>, target: impl Into<PathBuf>) -> Self {
        Self::with(
            MountKind::Filesystem {
                fstype: fstype.into(),
                source: None,
            },
            target,
        )
    }

    /// A bind mount of `source` on `target` (`recursive`: rbind).
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>, recursive: bool) -> Self {
        Self::with(
            MountKind::Bind {
                source: source.into(),
                recursive,
            },
            target,
        )
    }

    /// A change of the mount at `target`.
    pub fn remount(target: impl Into<PathBuf>) -> Self {
        Self::with(MountKind::Remount, target)
    }

    /// Moves the mount whose root is `source` onto `target`.
    pub fn move_mount(source: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        Self::with(
            MountKind::Move {
                source: source.into(),
            },
            target,
        )
    }

    /// Sets the `source` of a [`MountKind::Filesystem`] (ignored for the other kinds).
    pub fn source(mut self, source: impl Into<OsString>) -> Self {
        if let MountKind::Filesystem { source: s, .. } = &mut self.kind {
            *s = Some(source.into());
        }
        self
    }

    /// The per-mount attributes.
    pub fn attrs(mut self, attrs: MountAttrs) -> Self {
        self.attrs = attrs;
        self
    }

    /// Adds a filesystem option (`fsconfig`): a flag without a value, else `key=value`.
    pub fn option(mut self, key: impl Into<String>, value: Option<impl Into<OsString>>) -> Self {
        self.options.push(FsOption {
            key: key.into(),
            value: value.map(Into::into),
            sensitive: false,
        });
        self
    }

    /// Adds a sensitive filesystem option: its value reaches the kernel only.
    pub fn sensitive_option(mut self, key: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.options.push(FsOption {
            key: key.into(),
            value: Some(value.into()),
            sensitive: true,
        });
        self
    }

    /// How the target and a bind source are looked up (default
    /// [`TargetLookup::RefuseFinalSymlink`]).
    pub fn lookup(mut self, lookup: TargetLookup) -> Self {
        self.lookup = lookup;
        self
    }

    /// Refuse the mount with [`NativeMountError::HelperRequired`], changing nothing, when the
    /// host has a mount(8) helper for `fstype` (any of [`helper_paths`](Self::helper_paths)
    /// exists, symlinks followed): mount(8) would run it, so the mount is the helper's to
    /// make. The backend looks in the same step that opens the target, so the route choice
    /// costs no call of its own. An empty `fstype`, or one with a `/`, has no helper.
    pub fn unless_helper(mut self, fstype: impl Into<String>) -> Self {
        self.helper_for = Some(fstype.into());
        self
    }

    /// The host paths whose existence means a mount(8) helper for the type given to
    /// [`unless_helper`](Self::unless_helper) (`/sbin/mount.TYPE`, `/usr/sbin/mount.TYPE`);
    /// empty without one.
    pub fn helper_paths(&self) -> Vec<PathBuf> {
        match self.helper_for.as_deref() {
            Some(t) if !t.is_empty() && !t.contains('/') => HELPER_DIRS
                .iter()
                .map(|d| PathBuf::from(format!("{d}/mount.{t}")))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// What is mounted.
    pub fn kind(&self) -> &MountKind {
        &self.kind
    }

    /// The target, a host path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The per-mount attributes.
    pub fn get_attrs(&self) -> &MountAttrs {
        &self.attrs
    }

    /// The filesystem options, in order.
    pub fn get_options(&self) -> &[FsOption] {
        &self.options
    }

    /// The lookup rule.
    pub fn get_lookup(&self) -> &TargetLookup {
        &self.lookup
    }

    /// The filesystem type, for a [`MountKind::Filesystem`]; empty otherwise.
    pub fn fstype(&self) -> &str {
        match &self.kind {
            MountKind::Filesystem { fstype, .. } => fstype,
            _ => "",
        }
    }

    /// The filesystem options as they may be shown (sensitive values masked), comma-joined.
    pub fn shown_options(&self) -> String {
        self.options
            .iter()
            .map(FsOption::shown)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// An unmount for [`NativeMount::unmount_native`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnmountRequest {
    target: PathBuf,
    lazy: bool,
    force: bool,
    lookup: TargetLookup,
}

impl UnmountRequest {
    /// Unmount the mount whose root `target` is.
    pub fn new(target: impl Into<PathBuf>) -> Self {
        UnmountRequest {
            target: target.into(),
            lazy: false,
            force: false,
            lookup: TargetLookup::default(),
        }
    }

    /// Detach now, clean up when no longer busy (`MNT_DETACH`).
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Abort pending requests (`MNT_FORCE`; network filesystems).
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// How the target is looked up.
    pub fn lookup(mut self, lookup: TargetLookup) -> Self {
        self.lookup = lookup;
        self
    }

    /// The target, a host path.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// True for a lazy unmount.
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// True for a forced unmount.
    pub fn is_force(&self) -> bool {
        self.force
    }

    /// The lookup rule.
    pub fn get_lookup(&self) -> &TargetLookup {
        &self.lookup
    }
}

/// Why a native mount or unmount did not happen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NativeMountError {
    /// Native mounting is not available here (no host thread; the new mount API missing,
    /// `ENOSYS`, or denied, `EPERM`, and no fallback left): nothing was changed, the caller
    /// may use mount(8).
    #[error("native mounting unavailable ({route}): {reason}")]
    Unsupported {
        /// The route that was tried last.
        route: MountRoute,
        /// Why.
        reason: String,
        /// The OS error, where there is one.
        #[source]
        source: Option<io::Error>,
    },
    /// The call is for the host's mount(8) or umount(8), run by the caller under its own
    /// timeout; nothing was changed. For an unmount: the target was checked (resolved by the
    /// lookup rule, no refused symlink, the root of a mount), but its filesystem is one whose
    /// unmount may wait on a server or daemon (NFS, CIFS, FUSE, …), which must not block the
    /// backend's one thread in the host's mount namespace; `target` is the canonical host path
    /// found, for umount(8). For a mount made
    /// [`unless_helper`](MountRequest::unless_helper): the host has mount(8)'s helper for
    /// the type; `target` is the target as asked.
    #[error("{}: {reason}; use the host's mount(8) or umount(8)", .target.display())]
    HelperRequired {
        /// The target (for an unmount, the canonical host path of the checked target).
        target: PathBuf,
        /// Why.
        reason: String,
    },
    /// The target or bind source's final component is a symlink (refused by default).
    #[error("{}: is a symlink (to {}); refusing to follow it", .path.display(), .points_to.display())]
    Symlink {
        /// The path asked about.
        path: PathBuf,
        /// The link's target, as read.
        points_to: PathBuf,
    },
    /// A symlink was met below a trusted base ([`TargetLookup::Beneath`]), or the path
    /// leaves the base.
    #[error("{}: not reachable below {} without a symlink", .path.display(), .base.display())]
    NotBeneath {
        /// The path asked about.
        path: PathBuf,
        /// The trusted base.
        base: PathBuf,
        /// The OS error (`ELOOP`, `EXDEV`).
        #[source]
        source: io::Error,
    },
    /// The target is not the root of a mount.
    #[error("{}: not mounted", .target.display())]
    NotMounted {
        /// The target.
        target: PathBuf,
    },
    /// Resolving the target or source failed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The kernel refused a step.
    #[error("{call} for {} failed ({route}{}){}: {source}", .target.display(), FsType(.fstype), Messages(.messages))]
    Kernel {
        /// The system call that failed (`fsconfig`, `move_mount`).
        call: &'static str,
        /// The route.
        route: MountRoute,
        /// The target.
        target: PathBuf,
        /// The filesystem type, if any.
        fstype: String,
        /// The kernel's fs-context messages (read from the fs descriptor), if any.
        messages: Vec<String>,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

struct FsType<'a>(&'a str);
impl fmt::Display for FsType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ", type {}", self.0)
        }
    }
}

struct Messages<'a>(&'a [String]);
impl fmt::Display for Messages<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, " [{}]", self.0.join("; "))
        }
    }
}

impl NativeMountError {
    /// True for [`NativeMountError::Unsupported`] and [`NativeMountError::HelperRequired`]:
    /// nothing was changed, try the mount(8) route.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            NativeMountError::Unsupported { .. } | NativeMountError::HelperRequired { .. }
        )
    }

    /// The OS error number, where there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            NativeMountError::Unsupported { source, .. } => {
                source.as_ref().and_then(io::Error::raw_os_error)
            }
            NativeMountError::NotBeneath { source, .. }
            | NativeMountError::Kernel { source, .. } => source.raw_os_error(),
            NativeMountError::Path(p) => p.raw_os_error(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_never_show() {
        let r = MountRequest::filesystem("cifs", "/mnt/x")
            .option("vers", Some("3.0"))
            .sensitive_option("password", "hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
        assert_eq!(r.shown_options(), "vers=3.0,password=<masked>");
        assert_eq!(r.get_options()[1].value(), Some(OsStr::new("hunter2")));
    }

    #[test]
    fn attrs_merge_and_emptiness() {
        let mut a = MountAttrs::new();
        assert!(a.is_empty());
        a.read_only = Some(true);
        let mut b = MountAttrs::new();
        b.read_only = Some(false);
        b.nosuid = Some(true);
        let m = a.or(b);
        assert_eq!(m.read_only, Some(true));
        assert_eq!(m.nosuid, Some(true));
        assert!(!m.is_empty());
    }

    #[tokio::test]
    async fn mocks_and_forwarding() {
        let mut m = MockNativeMount::new();
        m.expect_mount_native()
            .withf(|r| r.target() == Path::new("/x") && r.fstype() == "tmpfs")
            .times(1)
            .returning(|_| Ok(MountRoute::NewApi));
        m.expect_unmount_native().returning(|r| {
            Err(NativeMountError::NotMounted {
                target: r.target().to_path_buf(),
            })
        });
        m.expect_remove_secret_file()
            .withf(|p| p == Path::new("/s/c"))
            .returning(|p| Err(PathError::NotFound { path: p.into() }));
        let a: std::sync::Arc<dyn NativeMount> = std::sync::Arc::new(m);
        assert!(a
            .remove_secret_file(Path::new("/s/c"))
            .unwrap_err()
            .is_not_found());
        assert_eq!(
            a.mount_native(&MountRequest::filesystem("tmpfs", "/x"))
                .await
                .unwrap(),
            MountRoute::NewApi
        );
        let by_ref: &dyn NativeMount = &a;
        let e = NativeMount::unmount_native(&by_ref, &UnmountRequest::new("/y"))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "/y: not mounted");
    }
}
