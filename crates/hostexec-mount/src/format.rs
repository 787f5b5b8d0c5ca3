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

/// What `format_and_mount` may do besides mounting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatOptions {
    /// Extra arguments for `mkfs.<type>`, before the ones added here (`-b 1024`).
    pub mkfs_args: Vec<OsString>,
    /// Bound on `mkfs` (large disks take time).
    pub mkfs_timeout: Duration,
    /// Bound on `blkid` and `fsck`.
    pub probe_timeout: Duration,
}

impl Default for FormatOptions {
    fn default() -> Self {
        FormatOptions {
            mkfs_args: Vec::new(),
            mkfs_timeout: Duration::from_secs(600),
            probe_timeout: Duration::from_secs(60),
        }
    }
}

/// What the device held before the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Mounts `device` on `target` as `fstype` (default `ext4`), formatting it first if it holds
/// nothing, and checking it with `fsck -a` first if it holds a filesystem and the mount is
/// read-write. `defaults` is added to the options, as mount-utils does.
///
/// Only the public [`Mount`] and [`Executor`] APIs are used: see the module docs.
pub async fn format_and_mount<M, E>(
    mounter: &M,
    exec: &E,
    device: &Path,
    target: &Path,
    fstype: &str,
    options: &MountOptions,
    format: &FormatOptions,
) -> Result<FormatOutcome, FormatError>
where
    M: Mount + ?Sized,
    E: Executor + ?Sized,
{
    // blkid, mkfs and fsck take the device as a positional argument; an absolute path can
    // never be read as one of their options.
    check_host_path(device).map_err(MountError::from)?;
    let fstype = if fstype.is_empty() { "ext4" } else { fstype };
    let read_only = options.has("ro");
    let options = options.clone().option("defaults");
    let found = disk_format(exec, device, format.probe_timeout).await?;
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
            mkfs(exec, device, fstype, format).await?;
            outcome.formatted = true;
        }
        DiskFormat::Filesystem(have) => {
            if have != fstype {
                mismatch = Some(have.clone());
            }
            if !read_only {
                outcome.fsck_code = fsck(exec, device, format.probe_timeout).await?;
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
    format: &FormatOptions,
) -> Result<(), FormatError> {
    let mut cmd = HostCommand::new(format!("mkfs.{fstype}")).args(&format.mkfs_args);
    cmd = match fstype {
        "ext2" | "ext3" | "ext4" => cmd.args(["-F", "-m0"]),
        "xfs" => cmd.arg("-f"),
        _ => cmd,
    };
    let cmd = cmd
        .arg(device)
        .env("LC_ALL", "C")
        .timeout(format.mkfs_timeout);
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
