//! `format_and_mount`: mount a block device, formatting it first if it holds no filesystem
//! (mount-utils' `SafeFormatAndMount`).
//!
//! This module is the worked example of extending the crate (docs/extending-mounts.md): it
//! uses only the public [`Mount`] trait, [`MountOptions`] and the [`Executor`] contract. No
//! private item of the crate is touched, so a utility of your own can live in your crate the
//! same way.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostexec_api::path::check_host_path;
use hostexec_api::{stderr_excerpt, CommandError, Executor, ExitStatus, HostCommand};

use crate::{Mount, MountError, MountOptions};

/// What [`format_and_mount`] does: which device, where, as what, with which mount options,
/// and the bounds and arguments of the tools it runs.
///
/// A builder (fields private, `get_*` to read), so that more settings can be added without
/// breaking callers:
///
/// ```
/// use std::time::Duration;
/// use hostexec_mount::format::FormatAndMount;
/// use hostexec_mount::MountOptions;
///
/// let job = FormatAndMount::new("/dev/sdb", "/var/lib/data")
///     .fstype("xfs")
///     .mount_options(MountOptions::new().option("noatime"))
///     .mkfs_args(["-L", "data"])
///     .mkfs_timeout(Duration::from_secs(1200));
/// assert_eq!(job.get_fstype(), "xfs");
/// assert_eq!(job.get_device().to_str(), Some("/dev/sdb"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatAndMount {
    device: PathBuf,
    target: PathBuf,
    fstype: String,
    mount_options: MountOptions,
    mkfs_args: Vec<OsString>,
    mkfs_timeout: Duration,
    probe_timeout: Duration,
}

impl FormatAndMount {
    /// Mount `device` on `target` (both host paths) as ext4 with no extra options, `mkfs`
    /// bounded by 10 minutes, `blkid` and `fsck` by 1 minute each.
    pub fn new(device: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        FormatAndMount {
            device: device.into(),
            target: target.into(),
            fstype: "ext4".into(),
            mount_options: MountOptions::new(),
            mkfs_args: Vec::new(),
            mkfs_timeout: Duration::from_secs(600),
            probe_timeout: Duration::from_secs(60),
        }
    }

    /// The filesystem type to mount, and to create if the device holds none (default `ext4`;
    /// an empty string means the default).
    pub fn fstype(mut self, fstype: impl Into<String>) -> Self {
        self.fstype = fstype.into();
        self
    }

    /// The mount options (`defaults` is added to them, as mount-utils does). `ro` also means:
    /// never format, never fsck.
    pub fn mount_options(mut self, options: MountOptions) -> Self {
        self.mount_options = options;
        self
    }

    /// Extra arguments for `mkfs.<type>`, before the ones added here (`-b 1024`).
    pub fn mkfs_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.mkfs_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Bound on `mkfs` (large disks take time).
    pub fn mkfs_timeout(mut self, timeout: Duration) -> Self {
        self.mkfs_timeout = timeout;
        self
    }

    /// Bound on `blkid` and `fsck`.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The device.
    pub fn get_device(&self) -> &Path {
        &self.device
    }

    /// The mount point.
    pub fn get_target(&self) -> &Path {
        &self.target
    }

    /// The filesystem type (`ext4` when none was given).
    pub fn get_fstype(&self) -> &str {
        if self.fstype.is_empty() {
            "ext4"
        } else {
            &self.fstype
        }
    }

    /// The mount options, as given.
    pub fn get_mount_options(&self) -> &MountOptions {
        &self.mount_options
    }

    /// The extra `mkfs` arguments.
    pub fn get_mkfs_args(&self) -> &[OsString] {
        &self.mkfs_args
    }

    /// The bound on `mkfs`.
    pub fn get_mkfs_timeout(&self) -> Duration {
        self.mkfs_timeout
    }

    /// The bound on `blkid` and `fsck`.
    pub fn get_probe_timeout(&self) -> Duration {
        self.probe_timeout
    }
}

/// What the device held before the mount.
///
/// `#[non_exhaustive]`: blkid knows more than these (a RAID member, an LVM physical volume, a
/// LUKS container are filesystems to it today); match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskFormat {
    /// No filesystem and no partition table (`blkid` exit 2).
    Unformatted,
    /// A filesystem of this type.
    Filesystem(String),
    /// A partition table: never formatted over.
    Partitioned,
}

/// What `format_and_mount` did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FormatOutcome {
    /// What `blkid` found.
    pub found: DiskFormat,
    /// True if `mkfs` ran.
    pub formatted: bool,
    /// The fsck exit code, if fsck ran (bit 1: errors corrected).
    pub fsck_code: Option<i32>,
}

/// Why `format_and_mount` failed; the variants are mount-utils' `MountErrorType`s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// `blkid` could not tell what the device holds.
    #[error("failed to get disk format of {}: {reason}", .device.display())]
    GetDiskFormatFailed {
        /// The device.
        device: PathBuf,
        /// Why.
        reason: String,
        /// The command error, if the probe could not run.
        #[source]
        source: Option<CommandError>,
    },
    /// The device is unformatted and the mount is read-only: nothing may be written.
    #[error("cannot format {} for a read-only mount", .device.display())]
    UnformattedReadOnly {
        /// The device.
        device: PathBuf,
    },
    /// The device holds a partition table; formatting it would destroy it.
    #[error("{} holds a partition table; refusing to format it", .device.display())]
    Partitioned {
        /// The device.
        device: PathBuf,
    },
    /// `mkfs` failed.
    #[error("mkfs.{fstype} of {} failed with {status}: {stderr}", .device.display())]
    FormatFailed {
        /// The device.
        device: PathBuf,
        /// The type asked for.
        fstype: String,
        /// How mkfs ended.
        status: ExitStatus,
        /// The end of its messages.
        stderr: String,
    },
    /// `mkfs` or `fsck` could not be run.
    #[error("{op} of {}: {source}", .device.display())]
    Command {
        /// `mkfs` or `fsck`.
        op: &'static str,
        /// The device.
        device: PathBuf,
        /// The cause.
        #[source]
        source: CommandError,
    },
    /// fsck found errors it could not correct (exit status with bit 4 set).
    #[error("fsck found errors on {} that it could not correct (exit {code}): {stderr}", .device.display())]
    HasFilesystemErrors {
        /// The device.
        device: PathBuf,
        /// fsck's exit status.
        code: i32,
        /// The end of its messages.
        stderr: String,
    },
    /// The mount failed and the device holds another filesystem type than asked for.
    #[error("{} holds {found}, not {wanted}, and the mount failed: {source}", .device.display())]
    FilesystemMismatch {
        /// The device.
        device: PathBuf,
        /// What blkid found.
        found: String,
        /// What was asked for.
        wanted: String,
        /// The mount error.
        #[source]
        source: MountError,
    },
    /// The mount failed.
    #[error(transparent)]
    Mount(#[from] MountError),
}

/// fsck(8)'s exit status is a bitmask: 1 errors corrected, 2 reboot needed, 4 errors left
/// uncorrected, 8 operational error, 16 usage error, 32 cancelled, 128 library error.
/// mount-utils compared it with `==` (`4` exactly), so 5 or 6 passed as fine.
pub const FSCK_ERRORS_UNCORRECTED: i32 = 4;

/// What `blkid -p -s TYPE -s PTTYPE -o export DEVICE` says the device holds.
pub async fn disk_format<E: Executor + ?Sized>(
    exec: &E,
    device: &Path,
    timeout: Duration,
) -> Result<DiskFormat, FormatError> {
    let cmd = HostCommand::new("blkid")
        .args(["-p", "-s", "TYPE", "-s", "PTTYPE", "-o", "export"])
        .arg(device)
        .env("LC_ALL", "C")
        .timeout(timeout);
    let failed = |reason: String, source| FormatError::GetDiskFormatFailed {
        device: device.to_path_buf(),
        reason,
        source,
    };
    let out = exec
        .run(cmd)
        .await
        .map_err(|e| failed("blkid could not run".into(), Some(e)))?;
    match out.status {
        ExitStatus::Code(0) => {}
        // blkid: 2 means nothing was found.
        ExitStatus::Code(2) => return Ok(DiskFormat::Unformatted),
        status => {
            return Err(failed(
                format!(
                    "blkid failed with {status}: {}",
                    stderr_excerpt(&out.stderr)
                ),
                None,
            ))
        }
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fstype = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some((k, v)) = line.split_once('=') else {
            return Err(failed(
                format!("blkid returned invalid output: {text:?}"),
                None,
            ));
        };
        match k {
            "PTTYPE" => return Ok(DiskFormat::Partitioned),
            "TYPE" => fstype = Some(v.to_owned()),
            _ => {}
        }
    }
    Ok(fstype.map_or(DiskFormat::Unformatted, DiskFormat::Filesystem))
}

/// Mounts the job's device on its target as its filesystem type, formatting the device first
/// if it holds nothing, and checking it with `fsck -a` first if it holds a filesystem and the
/// mount is read-write. `defaults` is added to the mount options, as mount-utils does.
///
/// Only the public [`Mount`] and [`Executor`] APIs are used: see the module docs.
///
/// ```no_run
/// use hostexec_mount::format::{format_and_mount, FormatAndMount};
/// use hostexec_mount::{HostMounter, MountOptions};
///
/// # async fn demo<H: hostexec_api::Executor + hostexec_api::HostFs + hostexec_api::NativeMount + Clone>(host: H) -> Result<(), hostexec_mount::format::FormatError> {
/// let mounter = HostMounter::new(host.clone());
/// let job = FormatAndMount::new("/dev/sdb", "/var/lib/data")
///     .mount_options(MountOptions::new().option("noatime"));
/// let done = format_and_mount(&mounter, &host, &job).await?;
/// println!("formatted: {}", done.formatted);
/// # Ok(()) }
/// ```
pub async fn format_and_mount<M, E>(
    mounter: &M,
    exec: &E,
    job: &FormatAndMount,
) -> Result<FormatOutcome, FormatError>
where
    M: Mount + ?Sized,
    E: Executor + ?Sized,
{
    let device = job.get_device();
    let target = job.get_target();
    let fstype = job.get_fstype();
    // blkid, mkfs and fsck take the device as a positional argument; an absolute path can
    // never be read as one of their options.
    check_host_path(device).map_err(MountError::from)?;
    let read_only = job.mount_options.has("ro");
    let options = job.mount_options.clone().option("defaults");
    let found = disk_format(exec, device, job.probe_timeout).await?;
    let mut outcome = FormatOutcome {
        found: found.clone(),
        formatted: false,
        fsck_code: None,
    };
    let mut mismatch = None;
    match &found {
        DiskFormat::Partitioned => {
            return Err(FormatError::Partitioned {
                device: device.to_path_buf(),
            })
        }
        DiskFormat::Unformatted if read_only => {
            return Err(FormatError::UnformattedReadOnly {
                device: device.to_path_buf(),
            })
        }
        DiskFormat::Unformatted => {
            mkfs(exec, device, fstype, job).await?;
            outcome.formatted = true;
        }
        DiskFormat::Filesystem(have) => {
            if have != fstype {
                mismatch = Some(have.clone());
            }
            if !read_only {
                outcome.fsck_code = fsck(exec, device, job.probe_timeout).await?;
            }
        }
    }
    match mounter
        .mount(device.as_os_str(), target, fstype, &options)
        .await
    {
        Ok(()) => Ok(outcome),
        Err(e) => Err(match mismatch {
            Some(found) => FormatError::FilesystemMismatch {
                device: device.to_path_buf(),
                found,
                wanted: fstype.to_owned(),
                source: e,
            },
            None => FormatError::Mount(e),
        }),
    }
}

async fn mkfs<E: Executor + ?Sized>(
    exec: &E,
    device: &Path,
    fstype: &str,
    job: &FormatAndMount,
) -> Result<(), FormatError> {
    let mut cmd = HostCommand::new(format!("mkfs.{fstype}")).args(&job.mkfs_args);
    cmd = match fstype {
        "ext2" | "ext3" | "ext4" => cmd.args(["-F", "-m0"]),
        "xfs" => cmd.arg("-f"),
        _ => cmd,
    };
    let cmd = cmd.arg(device).env("LC_ALL", "C").timeout(job.mkfs_timeout);
    tracing::info!(command = %cmd, "formatting");
    let out = exec.run(cmd).await.map_err(|e| FormatError::Command {
        op: "mkfs",
        device: device.to_path_buf(),
        source: e,
    })?;
    if out.success() {
        Ok(())
    } else {
        Err(FormatError::FormatFailed {
            device: device.to_path_buf(),
            fstype: fstype.to_owned(),
            status: out.status,
            stderr: stderr_excerpt(&out.stderr),
        })
    }
}

/// Runs `fsck -a`; `Ok(Some(code))` unless fsck is missing (a warning, as in mount-utils).
async fn fsck<E: Executor + ?Sized>(
    exec: &E,
    device: &Path,
    timeout: Duration,
) -> Result<Option<i32>, FormatError> {
    let cmd = HostCommand::new("fsck")
        .arg("-a")
        .arg(device)
        .env("LC_ALL", "C")
        .timeout(timeout);
    let out = match exec.run(cmd).await {
        Ok(out) => out,
        Err(CommandError::NotFound { .. }) => {
            tracing::warn!(device = %device.display(), "fsck not found on the host; mounting unchecked");
            return Ok(None);
        }
        Err(e) => {
            return Err(FormatError::Command {
                op: "fsck",
                device: device.to_path_buf(),
                source: e,
            })
        }
    };
    let code = out.exit_code();
    if code & FSCK_ERRORS_UNCORRECTED != 0 {
        return Err(FormatError::HasFilesystemErrors {
            device: device.to_path_buf(),
            code,
            stderr: stderr_excerpt(&out.stderr),
        });
    }
    if code & 1 != 0 {
        tracing::info!(device = %device.display(), "fsck corrected filesystem errors");
    }
    if code & !3 != 0 {
        tracing::warn!(device = %device.display(), code, "fsck reported a problem; mounting anyway");
    }
    Ok(Some(code))
}
