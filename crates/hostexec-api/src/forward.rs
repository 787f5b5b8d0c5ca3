//! Forwarding implementations: every trait of the contract is implemented for `&T`, `Box<T>`
//! and `Arc<T>` of an implementation (`T` may be `dyn Trait`), so code generic over
//! `E: Executor` takes a borrowed backend, a boxed trait object or a shared one alike.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    CommandError, Executor, FileStat, HostCommand, HostFs, MountRequest, MountRoute, NativeMount,
    NativeMountError, Output, PathError, PathResolver, Resolve, SecretBytes, UnmountRequest,
};

macro_rules! forward {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: Executor + ?Sized> Executor for $ptr {
            async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
                (**self).run(cmd).await
            }
            async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
                (**self).look_path(name).await
            }
            async fn supports_systemd(&self) -> bool {
                (**self).supports_systemd().await
            }
        }

        #[async_trait]
        impl<T: PathResolver + ?Sized> PathResolver for $ptr {
            async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
                (**self).resolve(path, mode).await
            }
            fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
                (**self).local_path(host_path)
            }
        }

        #[async_trait]
        impl<T: HostFs + ?Sized> HostFs for $ptr {
            async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
                (**self).stat(path, follow).await
            }
            async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
                (**self).read_file(path, limit).await
            }
            async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
                (**self).create_dir_all(path).await
            }
            async fn create_file(&self, path: &Path) -> Result<(), PathError> {
                (**self).create_file(path).await
            }
            async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
                (**self).remove_dir(path).await
            }
            async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
                (**self).read_mountinfo().await
            }
            async fn read_mountinfo_pieces(
                &self,
                piece: Box<dyn FnMut(Vec<u8>) + Send>,
            ) -> Result<(), PathError> {
                (**self).read_mountinfo_pieces(piece).await
            }
            async fn read_mount_entry(&self, path: &Path) -> Result<Vec<u8>, PathError> {
                (**self).read_mount_entry(path).await
            }
        }

        #[async_trait]
        impl<T: NativeMount + ?Sized> NativeMount for $ptr {
            async fn mount_native(
                &self,
                request: &MountRequest,
            ) -> Result<MountRoute, NativeMountError> {
                (**self).mount_native(request).await
            }
            async fn unmount_native(
                &self,
                request: &UnmountRequest,
            ) -> Result<MountRoute, NativeMountError> {
                (**self).unmount_native(request).await
            }
            async fn create_secret_file(
                &self,
                path: &Path,
                contents: &SecretBytes,
            ) -> Result<(), PathError> {
                (**self).create_secret_file(path, contents).await
            }
            fn remove_secret_file(&self, path: &Path) -> Result<(), PathError> {
                (**self).remove_secret_file(path)
            }
        }
    )*};
}

forward!(&T, Box<T>, Arc<T>);
