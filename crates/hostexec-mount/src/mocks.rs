//! `MockMount` (feature `mock`), declared in a private module and re-exported so that the
//! helper modules mockall generates stay out of the documentation. The `mock!` repeats the
//! traits' signatures; the compiler checks them against the traits.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use hostexec_api::{FileStat, HostFs, PathError, PathResolver, Resolve};

use crate::{Mount, MountError, MountInfo, MountOptions, UnmountOptions};

mockall::mock! {
    /// A **mock** [`Mount`] with its [`HostFs`] and [`PathResolver`] supertraits (mockall;
    /// feature `mock`), to mock the mounter in downstream tests as Go users do with
    /// `FakeMounter`: `expect_mount()`, `expect_is_mount_point()`, `expect_list()`,
    /// `expect_stat()`, …. It mounts nothing; the [`MountExt`](crate::MountExt) conveniences
    /// run on it through the essentials they call.
    pub Mount {}

    #[async_trait]
    impl PathResolver for Mount {
        async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;
        fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
    }

    #[async_trait]
    impl HostFs for Mount {
        async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError>;
        async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError>;
        async fn create_dir_all(&self, path: &Path) -> Result<(), PathError>;
        async fn create_file(&self, path: &Path) -> Result<(), PathError>;
        async fn remove_dir(&self, path: &Path) -> Result<(), PathError>;
        async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError>;
    }

    #[async_trait]
    impl Mount for Mount {
        async fn list(&self) -> Result<Vec<MountInfo>, MountError>;
        async fn is_mount_point(&self, path: &Path) -> Result<bool, MountError>;
        async fn mount(
            &self,
            source: &OsStr,
            target: &Path,
            fstype: &str,
            options: &MountOptions,
        ) -> Result<(), MountError>;
        async fn unmount(&self, target: &Path, options: &UnmountOptions) -> Result<(), MountError>;
        async fn make_rshared(&self, path: &Path) -> Result<(), MountError>;
    }
}
