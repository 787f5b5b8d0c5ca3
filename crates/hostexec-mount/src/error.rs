//! [`MountError`]: why a mount operation failed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostexec_api::{CommandError, ExitStatus, NativeMountError, PathError};

use crate::mountinfo::ParseError;

/// Why a mount operation failed. Nothing in it carries a sensitive option: those are
/// `<masked>` in [`MountFailure::options`] and scrubbed from
/// [`MountFailure::stderr`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The input cannot be used (a relative target, a NUL byte, an empty fs type for a
    /// format).
    #[error("{}: {reason}", .path.display())]
    InvalidInput {
        /// The path or value concerned.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A host path could not be resolved or a file operation failed (a missing path is
    /// [`PathError::NotFound`]: see [`MountError::is_not_found`]).
    #[error(transparent)]
    Path(#[from] PathError),
    /// The mount table could not be parsed.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The mount table changed between every two of several reads.
    #[error("the mount table changed on each of {attempts} re-reads")]
    InconsistentTable {
        /// Re-reads made.
        attempts: usize,
    },
    /// A host command could not be run (not found, could not start, timed out, host gone).
    #[error("{op} {}: {source}", .target.display())]
    Command {
        /// What was being done (`mount`, `umount`, `blkid`, …).
        op: &'static str,
        /// The path it was done to.
        target: PathBuf,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// mount(8) ran and failed.
    #[error(transparent)]
    MountFailed(Box<MountFailure>),
    /// The target is not mounted (`umount` said `not mounted`).
    #[error("{}: not mounted", .target.display())]
    NotMounted {
        /// The target.
        target: PathBuf,
    },
    /// umount(8) ran and failed.
    #[error("unmount of {} failed with {status}{}", .target.display(), colon(.stderr))]
    UnmountFailed {
        /// The target.
        target: PathBuf,
        /// How umount(8) ended.
        status: ExitStatus,
        /// The end of its messages.
        stderr: String,
    },
    /// The unmount, force step included, did not finish in time; its processes were killed.
    #[error("unmount of {} did not finish within {timeout:?}", .target.display())]
    UnmountTimedOut {
        /// The target.
        target: PathBuf,
        /// The overall bound.
        timeout: Duration,
    },
    /// A native mount or unmount (no helper process) failed: the kernel refused a step (its
    /// fs-context messages and the route are in the error), or the target or a bind source
    /// ends in a symlink or leaves a trusted base.
    #[error("{op}{}: {source}", with_options(.options))]
    Native {
        /// `mount` or `unmount`.
        op: &'static str,
        /// The filesystem options as shown (sensitive values `<masked>`); empty for an
        /// unmount.
        options: String,
        /// The cause (boxed: it is large, and rare).
        #[source]
        source: Box<NativeMountError>,
    },
    /// A native mount did not finish in time (the host thread may still be in the call).
    #[error("mount on {} did not finish within {timeout:?}", .target.display())]
    MountTimedOut {
        /// The target.
        target: PathBuf,
        /// The bound.
        timeout: Duration,
    },
    /// Cleanup unmounted the path but it is still a mount point (stacked mounts).
    #[error("{}: still a mount point after unmounting", .path.display())]
    StillMounted {
        /// The path.
        path: PathBuf,
    },
}

/// The details of a failed mount(8) run ([`MountError::MountFailed`]).
///
/// `#[non_exhaustive]`: a backend outside this crate builds one with [`MountFailure::new`]
/// and sets the other public fields.
#[derive(Debug, thiserror::Error)]
#[error("mount of {} on {} (type {fstype:?}, options {options:?}) failed with {status}{}",
    .mount_source.to_string_lossy(), .target.display(), colon(.stderr))]
#[non_exhaustive]
pub struct MountFailure {
    /// What was to be mounted.
    pub mount_source: OsString,
    /// Where.
    pub target: PathBuf,
    /// The filesystem type given (may be empty).
    pub fstype: String,
    /// The options as shown: sensitive ones `<masked>`.
    pub options: String,
    /// How mount(8) ended (32 is "mount failure").
    pub status: ExitStatus,
    /// The end of its messages, sensitive values scrubbed.
    pub stderr: String,
}

impl MountFailure {
    /// mount(8) of `mount_source` on `target` ended with `status`; no filesystem type,
    /// options or messages yet (set [`fstype`](Self::fstype), [`options`](Self::options)
    /// (masked) and [`stderr`](Self::stderr) (scrubbed) where known).
    ///
    /// ```
    /// use hostexec_api::ExitStatus;
    /// use hostexec_mount::MountFailure;
    /// let mut f = MountFailure::new("/dev/sdb", "/mnt/data", ExitStatus::Code(32));
    /// f.fstype = "ext4".into();
    /// assert_eq!(
    ///     f.to_string(),
    ///     "mount of /dev/sdb on /mnt/data (type \"ext4\", options \"\") failed with exit status 32"
    /// );
    /// ```
    pub fn new(
        mount_source: impl Into<OsString>,
        target: impl Into<PathBuf>,
        status: ExitStatus,
    ) -> Self {
        MountFailure {
            mount_source: mount_source.into(),
            target: target.into(),
            fstype: String::new(),
            options: String::new(),
            status,
            stderr: String::new(),
        }
    }
}

fn with_options(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (options {s})")
    }
}

fn colon(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

impl MountError {
    /// True if a path does not exist (distinct from "not a mount point").
    pub fn is_not_found(&self) -> bool {
        matches!(self, MountError::Path(e) if e.is_not_found())
    }

    /// True for [`MountError::NotMounted`].
    pub fn is_not_mounted(&self) -> bool {
        matches!(self, MountError::NotMounted { .. })
    }

    /// The OS error number behind this error, where there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            MountError::Path(e) => e.raw_os_error(),
            MountError::Command { source, .. } => source.raw_os_error(),
            MountError::Native { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// A native error: `NotMounted` and path errors become this enum's own variants.
    pub(crate) fn native(op: &'static str, options: String, e: NativeMountError) -> Self {
        match e {
            NativeMountError::NotMounted { target } => MountError::NotMounted { target },
            NativeMountError::Path(p) => MountError::Path(p),
            source => MountError::Native {
                op,
                options,
                source: Box::new(source),
            },
        }
    }

    pub(crate) fn command(op: &'static str, target: &Path, source: CommandError) -> Self {
        MountError::Command {
            op,
            target: target.to_path_buf(),
            source,
        }
    }
}

/// Errnos that mean a mount is there but broken (mount-utils' `IsCorruptedMnt`): ENOTCONN
/// (FUSE daemon gone), ESTALE, EIO, EACCES, EHOSTDOWN, EWOULDBLOCK, ENODEV. EACCES counts, as
/// in mount-utils, so cleanup can remove a mount whose server now refuses us
/// (the caveat: a path that is merely inaccessible counts as corrupted too).
pub fn is_corrupted_mount(err: &PathError) -> bool {
    const ENOTCONN: i32 = 107;
    const ESTALE: i32 = 116;
    const EIO: i32 = 5;
    const EACCES: i32 = 13;
    const EHOSTDOWN: i32 = 112;
    const EWOULDBLOCK: i32 = 11;
    const ENODEV: i32 = 19;
    matches!(
        err.raw_os_error(),
        Some(ENOTCONN | ESTALE | EIO | EACCES | EHOSTDOWN | EWOULDBLOCK | ENODEV)
    )
}
