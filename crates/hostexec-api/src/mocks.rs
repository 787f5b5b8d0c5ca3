//! mockall mocks of the contract's traits (feature `mock`).
//!
//! They are declared here, in a private module, and re-exported at the crate root: mockall
//! generates a public helper module per mock (`__mock_MockExecutor…`) next to it, and those
//! stay out of the documentation this way. Each `mock!` repeats the trait's signatures; the
//! compiler checks them against the trait, so they cannot drift.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::{
    CommandError, Executor, FileStat, HostCommand, HostFs, MountRequest, MountRoute, NativeMount,
    NativeMountError, Output, PathError, PathResolver, Resolve, SecretBytes, UnmountRequest,
};

mockall::mock! {
    /// A **mock** [`Executor`] (mockall; feature `mock`), for interaction tests: set
    /// expectations with `expect_run()`, `expect_look_path()`, `expect_supports_systemd()`.
    /// It runs nothing; for a scripted executor that keeps the contract, use
    /// `hostexec-fake`'s `FakeExecutor`.
    pub Executor {}

    #[async_trait]
    impl Executor for Executor {
        async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError>;
        async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError>;
        async fn supports_systemd(&self) -> bool;
    }
}

mockall::mock! {
    /// A **mock** [`PathResolver`] (mockall; feature `mock`): `expect_resolve()`,
    /// `expect_local_path()`. It resolves nothing by itself; for a temp-directory host
    /// resolved with the real algorithm, use `hostexec-fake`'s `FakeHost`.
    pub PathResolver {}

    #[async_trait]
    impl PathResolver for PathResolver {
        async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;
        fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
    }
}

mockall::mock! {
    /// A **mock** [`HostFs`], its [`PathResolver`] supertrait and the [`NativeMount`]
    /// capability (mockall; feature `mock`):
    /// `expect_stat()`, `expect_read_mountinfo()`, `expect_resolve()`, …. It touches no file;
    /// for a host that behaves like one, use `hostexec-fake`'s `FakeHost`.
    pub HostFs {}

    #[async_trait]
    impl PathResolver for HostFs {
        async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError>;
        fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError>;
    }

    #[async_trait]
    impl HostFs for HostFs {
        async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError>;
        async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError>;
        async fn create_dir_all(&self, path: &Path) -> Result<(), PathError>;
        async fn create_file(&self, path: &Path) -> Result<(), PathError>;
        async fn remove_dir(&self, path: &Path) -> Result<(), PathError>;
        async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError>;
    }

    #[async_trait]
    impl NativeMount for HostFs {
        async fn mount_native(&self, request: &MountRequest) -> Result<MountRoute, NativeMountError>;
        async fn unmount_native(&self, request: &UnmountRequest) -> Result<MountRoute, NativeMountError>;
        async fn create_secret_file(&self, path: &Path, contents: &SecretBytes) -> Result<(), PathError>;
        fn remove_secret_file(&self, path: &Path) -> Result<(), PathError>;
    }
}
