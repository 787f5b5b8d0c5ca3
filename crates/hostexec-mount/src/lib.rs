//! # hostexec-mount: the host's mounts, from inside a container
//!
//! Mount, unmount and inspect the *host's* mounts from a privileged container: wrap a
//! hostexec backend (`hostexec-nsenter` in production, `hostexec-fake` in tests) in a
//! [`HostMounter`] and call [`Mount`]'s methods with host paths (the [example](#example)
//! below does a whole round). It is the Rust counterpart of Go's `k8s.io/mount-utils`
//! `Interface` and of the old kubernetes `NsenterMounter` (`pkg/volume/util/nsenter`, removed
//! with `--containerized` in 1.16):
//!
//! - [`mountinfo`]: a pure parser of `/proc/PID/mountinfo`, `/proc/PID/mounts` and fstab,
//!   byte-exact (octal escapes decoded, paths never through lossy UTF-8), tolerant of what the
//!   kernel really prints (an empty source, `//deleted` roots, quoted options).
//! - [`Mount`], implemented by [`HostMounter`]: list the **target host's** table, check mount
//!   points, mount and unmount (natively, through the backend's
//!   [`NativeMount`](hostexec_api::NativeMount), where the host allows it, else through the
//!   host's mount(8) and umount(8); [`MountOptions::helper_only`] forces the latter),
//!   `make_rshared`. A
//!   `Mount` is also a [`HostFs`](hostexec_api::HostFs), which gives the file helpers the
//!   `NsenterMounter` had (`create_dir_all`, `create_file`, `stat`).
//! - [`MountExt`], for every `Mount`: mount references, cleanup, `is_likely_not_mount_point`,
//!   built from the essentials (bring it into scope to call them).
//! - [`check_mount_health`]: Go's `IsCorruptedMnt`, which also answers "hung", fast.
//! - [`format`](mod@format): `format_and_mount`, the worked example of adding a utility without touching
//!   the core (docs/extending-mounts.md).
//!
//! ## Why it is built this way
//!
//! The Go code it replaces had known weaknesses, each answered here:
//!
//! | Go | here |
//! |---|---|
//! | findmnt's padded columns made `/` and `/mnt` look unmounted (findmnt pads the TARGET column even with `--noheadings`) | no findmnt: `is_mount_point` asks the kernel (statx `STATX_ATTR_MOUNT_ROOT` through [`HostFs::stat`](hostexec_api::HostFs::stat)), flat cost in the number of mounts, bind mounts included |
//! | octal escapes never decoded (moby/moby#38458 is the same bug), an empty source failed the parse (kubernetes/kubernetes#66134) | decoded to bytes; fields split on single spaces |
//! | the container's own table read instead of the host's (kubernetes/kubernetes#27378) | [`HostFs::read_mountinfo`](hostexec_api::HostFs::read_mountinfo): the target's table |
//! | no bound on unmount (kubernetes/kubernetes#96844, kubernetes/mount-utils#14) | [`UnmountOptions`]: overall timeout, force after, lazy; "not mounted" is [`MountError::NotMounted`] |
//! | secrets in logs, errors and Debug (kubernetes/utils#138) | [`MountOptions::sensitive`]: masked through `HostCommand::arg_masked`, scrubbed from mount's messages |
//! | systemd-run assumed to work when its binary exists | the scope only when [`Executor::supports_systemd`](hostexec_api::Executor::supports_systemd) (a probe) says so |
//! | bind remount order random (Go map iteration), `bind,ro` losing the source's `nosuid` | fixed order, source restrictions kept unless the caller chose otherwise |
//! | fsck codes compared exactly (`== 4`) | a bitmask |
//!
//! ## Example
//!
//! ```no_run
//! use std::path::Path;
//! use hostexec_api::HostFs;
//! use hostexec_mount::{HostMounter, Mount, MountExt, MountOptions, UnmountOptions};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = hostexec_nsenter::NsEnter::new(hostexec_nsenter::Target::pid(1))?;
//! let mounter = HostMounter::new(host);
//! let target = Path::new("/mnt/scratch");
//! mounter.create_dir_all(target).await?;
//! mounter
//!     .mount("tmpfs".as_ref(), target, "tmpfs", &MountOptions::new().option("size=16m"))
//!     .await?;
//! assert!(mounter.is_mount_point(target).await?);
//! mounter.cleanup_mount_point(target, &UnmountOptions::new()).await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! - `mock`: `MockMount` (mockall), to mock the mounter in downstream tests.
//! - `serde`: `serde::Serialize` for [`MountInfo`] and [`mountinfo::MountEntry`] (strings
//!   decoded as findmnt `--json` prints them; non-UTF-8 bytes become U+FFFD, where findmnt
//!   writes invalid JSON).

mod consistent;
mod error;
mod ext;
pub mod format;
mod health;
#[cfg(any(test, feature = "mock"))]
mod mocks;
mod mounter;
pub mod mountinfo;
mod options;
mod table;

pub use consistent::{consistent_read, ConsistentReadError};
pub use error::{is_corrupted_mount, MountError, MountFailure};
pub use ext::MountExt;
pub use health::{check_mount_health, MountHealth};
#[cfg(any(test, feature = "mock"))]
pub use mocks::MockMount;
pub use mounter::{HostMounter, Mount, STAGING_DIR, SYSTEMD_DESCRIPTION};
pub use mountinfo::{MountInfo, MountInfoFields, OptionalField, OptionalFields, Options};
pub use options::{
    MountOptions, UnmountOptions, DEFAULT_MOUNT_TIMEOUT, DEFAULT_UNMOUNT_TIMEOUT, MASKED,
};
pub use table::read_mount_table;
