//! A mount's health, hung included: [`check_mount_health`].
//!
//! Go's `mount.IsCorruptedMnt(err)` tells a broken mount only from the error a call *returned*
//! (`ENOTCONN`, `ESTALE`, `EIO`, `EACCES`, `EHOSTDOWN`): a mount whose server is gone and which
//! is mounted `hard` returns nothing at all, and the caller that asked is stuck with it. This
//! check asks the mount (a `stat` of the path, symlinks followed) under a deadline of its own
//! and also answers [`MountHealth::Hung`]: when the backend already knows the mount does not
//! answer ([`PathError::Unresponsive`], at once, without a new thread in the kernel), when the
//! backend's own deadline ran out ([`PathError::TimedOut`]), or when `within` passed first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostexec_api::{HostFs, PathError};

use crate::{is_corrupted_mount, MountError};

/// What [`check_mount_health`] found.
#[derive(Debug)]
#[non_exhaustive]
pub enum MountHealth {
    /// The mount answered.
    Healthy,
    /// The mount answered with an error that means it is broken (Go's `IsCorruptedMnt` list:
    /// a FUSE daemon gone, a stale NFS handle, …): unmount it and mount it again.
    Corrupted(PathError),
    /// The mount did not answer in time, or the backend knows it has stopped answering.
    Hung {
        /// The mount point that does not answer, when the backend named it.
        mount: Option<PathBuf>,
    },
}

impl MountHealth {
    /// True for [`MountHealth::Healthy`].
    pub fn is_healthy(&self) -> bool {
        matches!(self, MountHealth::Healthy)
    }
}

/// Asks the mount at (or holding) `path` whether it answers: a `stat` of `path` in the host's
/// view, symlinks followed, given at most `within`.
///
/// Errors other than the corrupted-mount ones (a missing path, a loop, …) are returned as
/// errors: they say nothing about the mount's health. With `hostexec-nsenter`, pass a handle
/// whose file-call deadline is `within` (`NsEnter::with_fs_timeout`) so that a hung mount is
/// also *marked* after `within` (later calls into it then fail at once), rather than after the
/// handle's default deadline.
pub async fn check_mount_health<F: HostFs + ?Sized>(
    fs: &F,
    path: &Path,
    within: Duration,
) -> Result<MountHealth, MountError> {
    match tokio::time::timeout(within, fs.stat(path, true)).await {
        Err(_) => Ok(MountHealth::Hung { mount: None }),
        Ok(Ok(_)) => Ok(MountHealth::Healthy),
        Ok(Err(PathError::Unresponsive { mount, .. })) => {
            Ok(MountHealth::Hung { mount: Some(mount) })
        }
        Ok(Err(PathError::TimedOut { .. })) => Ok(MountHealth::Hung { mount: None }),
        Ok(Err(e)) if is_corrupted_mount(&e) => Ok(MountHealth::Corrupted(e)),
        Ok(Err(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostexec_api::MockHostFs;
    use hostexec_api::{FileKind, FileStat};

    fn stat() -> FileStat {
        let mut st = FileStat::new(FileKind::Dir);
        st.mode = 0o40755;
        st.dev = (0, 1);
        st.ino = 1;
        st.mount_root = Some(true);
        st.mount_id = Some(1);
        st
    }

    #[tokio::test(start_paused = true)]
    async fn each_answer_maps_to_its_health() {
        let within = Duration::from_secs(1);
        let p = Path::new("/mnt/x");

        let mut ok = MockHostFs::new();
        ok.expect_stat().returning(|_, _| Ok(stat()));
        assert!(check_mount_health(&ok, p, within)
            .await
            .unwrap()
            .is_healthy());

        let mut gone = MockHostFs::new();
        gone.expect_stat()
            .returning(|p, _| Err(PathError::from_errno(p, 107)));
        assert!(matches!(
            check_mount_health(&gone, p, within).await.unwrap(),
            MountHealth::Corrupted(e) if e.raw_os_error() == Some(107)
        ));

        let mut marked = MockHostFs::new();
        marked.expect_stat().returning(|p, _| {
            Err(PathError::Unresponsive {
                path: p.to_path_buf(),
                mount: "/mnt".into(),
            })
        });
        assert!(matches!(
            check_mount_health(&marked, p, within).await.unwrap(),
            MountHealth::Hung { mount: Some(m) } if m == Path::new("/mnt")
        ));

        let mut missing = MockHostFs::new();
        missing
            .expect_stat()
            .returning(|p, _| Err(PathError::from_errno(p, 2)));
        assert!(check_mount_health(&missing, p, within)
            .await
            .unwrap_err()
            .is_not_found());
    }

    /// A backend that never answers: Hung once `within` has passed (tokio's paused clock).
    #[tokio::test(start_paused = true)]
    async fn no_answer_within_the_time_is_hung() {
        #[derive(Debug)]
        struct Never;
        #[async_trait::async_trait]
        impl hostexec_api::PathResolver for Never {
            async fn resolve(
                &self,
                _: &Path,
                _: hostexec_api::Resolve,
            ) -> Result<PathBuf, PathError> {
                std::future::pending().await
            }
            fn local_path(&self, p: &Path) -> Result<PathBuf, PathError> {
                Ok(p.to_path_buf())
            }
        }
        #[async_trait::async_trait]
        impl HostFs for Never {
            async fn stat(&self, _: &Path, _: bool) -> Result<FileStat, PathError> {
                std::future::pending().await
            }
            async fn read_file(&self, _: &Path, _: usize) -> Result<Vec<u8>, PathError> {
                std::future::pending().await
            }
            async fn create_dir_all(&self, _: &Path) -> Result<(), PathError> {
                std::future::pending().await
            }
            async fn create_file(&self, _: &Path) -> Result<(), PathError> {
                std::future::pending().await
            }
            async fn remove_dir(&self, _: &Path) -> Result<(), PathError> {
                std::future::pending().await
            }
            async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
                std::future::pending().await
            }
        }
        let t = tokio::time::Instant::now();
        let h = check_mount_health(&Never, Path::new("/mnt/nfs"), Duration::from_secs(3))
            .await
            .unwrap();
        assert!(matches!(h, MountHealth::Hung { mount: None }), "{h:?}");
        assert_eq!(t.elapsed(), Duration::from_secs(3));
    }
}
