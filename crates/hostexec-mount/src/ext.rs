//! [`MountExt`]: what every [`Mount`] can do with its essential methods.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hostexec_api::path::check_host_path;
use hostexec_api::{PathError, Resolve};
use std::time::Duration;

use crate::error::{is_corrupted_mount, MountError};
use crate::health::{check_mount_health, MountHealth};
use crate::mountinfo::{self, MountInfo};
use crate::options::UnmountOptions;
use crate::Mount;

mod sealed {
    /// Keeps [`MountExt`](super::MountExt) implemented by its blanket impl only, so that
    /// methods can be added to it without breaking anyone.
    pub trait Sealed {}
    impl<T: crate::Mount + ?Sized> Sealed for T {}
}

/// Conveniences built from [`Mount`]'s essential methods and its [`HostFs`](hostexec_api::HostFs)
/// supertrait, implemented for every `Mount` (`dyn Mount` included): mount-utils'
/// `GetMountRefs`, `CleanupMountPoint` and `IsLikelyNotMountPoint`.
///
/// Sealed (object_store's `ObjectStoreExt` is the model): it cannot be implemented outside this
/// crate, so these stay one implementation for every mounter, and new conveniences can be
/// added without a breaking change. Bring it into scope to call them:
/// `use hostexec_mount::MountExt;`. To test code that calls them, script the essentials they
/// use (`MockMount`'s `expect_list`, `expect_resolve`, …) or use `HostMounter` over
/// `hostexec-fake`.
#[async_trait]
pub trait MountExt: Mount + sealed::Sealed {
    /// mount-utils' `IsLikelyNotMountPoint`: `true` when `path` is probably not a mount point.
    /// Where the kernel tells mount roots (statx `STATX_ATTR_MOUNT_ROOT`, Linux 5.8+) the
    /// answer is exact; otherwise it compares the device with the parent's, which misses bind
    /// mounts of the same filesystem (as mount-utils' does). A missing path is an error.
    async fn is_likely_not_mount_point(&self, path: &Path) -> Result<bool, MountError> {
        check_host_path(path)?;
        let resolved = self.resolve(path, Resolve::MustExist).await?;
        if resolved == Path::new("/") {
            return Ok(false);
        }
        let st = self.stat(&resolved, true).await?;
        if let Some(root) = st.mount_root {
            return Ok(!root);
        }
        // The old heuristic: same device as the parent (blind to bind mounts of the same
        // filesystem: kubernetes/kubernetes#72347).
        let parent = self.stat(parent_of(&resolved), true).await?;
        Ok(st.dev == parent.dev)
    }

    /// The other mount points of what is mounted at `path` (mount-utils' `GetMountRefs`);
    /// empty when `path` does not exist or is a broken mount.
    async fn mount_refs(&self, path: &Path) -> Result<Vec<PathBuf>, MountError> {
        check_host_path(path)?;
        let resolved = match self.resolve(path, Resolve::MustExist).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) if is_corrupted_mount(&e) => {
                tracing::warn!(path = %path.display(), "mount_refs found a corrupted mount; treating it as unmounted");
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        };
        let table = self.list().await?;
        Ok(mountinfo::mount_refs(&table, &resolved))
    }

    /// Unmounts `path` if it is mounted (or broken), then removes the directory. A missing
    /// path is fine.
    async fn cleanup_mount_point(
        &self,
        path: &Path,
        options: &UnmountOptions,
    ) -> Result<(), MountError> {
        check_host_path(path)?;
        let mounted = match self.is_mount_point(path).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => {
                tracing::warn!(path = %path.display(), "cleanup: nothing there");
                return Ok(());
            }
            Err(MountError::Path(e)) if is_corrupted_mount(&e) => true,
            Err(e) => return Err(e),
        };
        if mounted {
            match self.unmount(path, options).await {
                Ok(()) | Err(MountError::NotMounted { .. }) => {}
                Err(e) => return Err(e),
            }
            if self.is_mount_point(path).await? {
                return Err(MountError::StillMounted {
                    path: path.to_path_buf(),
                });
            }
        }
        match self.remove_dir(path).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The mount that holds `path` (symlinks followed; for a mount point, the mount on top of
    /// it), with its options and propagation: findmnt's `--target`. Where the backend reads
    /// one mount alone ([`HostFs::read_mount_entry`](hostexec_api::HostFs::read_mount_entry):
    /// `statmount(2)` with `hostexec-nsenter` on Linux 6.8+), only that mount is read, at the
    /// same cost at 10 or 10,000 mounts. Otherwise (`Unsupported`) the whole table is read
    /// and the mount found by the mount ID of `path`'s stat, or, without one, as the deepest
    /// mount point above the path, the last one mounted there (what is on top).
    async fn mount_of(&self, path: &Path) -> Result<MountInfo, MountError> {
        check_host_path(path)?;
        match self.read_mount_entry(path).await {
            Ok(line) => {
                return mountinfo::parse_mountinfo(&line)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| {
                        MountError::Path(PathError::Io {
                            path: path.to_path_buf(),
                            source: std::io::Error::other("the backend returned no mount entry"),
                        })
                    });
            }
            Err(PathError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::Unsupported => {}
            Err(e) => return Err(e.into()),
        }
        self.mount_of_by_table(path).await
    }

    /// [`mount_of`](MountExt::mount_of) from the whole table, always (the fallback, and the
    /// reference its one-mount route is tested against).
    async fn mount_of_by_table(&self, path: &Path) -> Result<MountInfo, MountError> {
        check_host_path(path)?;
        let st = self.stat(path, true).await?;
        let table = self.list().await?;
        if let Some(m) = st
            .mount_id
            .and_then(|id| table.iter().rev().find(|m| m.id == id))
        {
            return Ok(m.clone());
        }
        let resolved = self.resolve(path, Resolve::MustExist).await?;
        table
            .iter()
            .filter(|m| resolved.starts_with(m.mount_point()))
            .max_by_key(|m| m.mount_point().as_os_str().len())
            .cloned()
            .ok_or_else(|| {
                MountError::Path(PathError::NotFound {
                    path: path.to_path_buf(),
                })
            })
    }

    /// A hang-aware health check of the mount at (or holding) `path`: [`check_mount_health`]
    /// with this mounter as the host view (the free function takes any
    /// [`HostFs`](hostexec_api::HostFs), a mounter or not).
    async fn check_health(&self, path: &Path, within: Duration) -> Result<MountHealth, MountError> {
        check_mount_health(self, path, within).await
    }
}

#[async_trait]
impl<T: Mount + ?Sized> MountExt for T {}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}
