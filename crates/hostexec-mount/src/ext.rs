//! [`MountExt`]: what every [`Mount`] can do with its essential methods.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hostexec_api::path::check_host_path;
use hostexec_api::Resolve;

use crate::error::{is_corrupted_mount, MountError};
use crate::mountinfo;
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
}

#[async_trait]
impl<T: Mount + ?Sized> MountExt for T {}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}
