//! Cross-crate integration tests of hostexec, and an example written the way a downstream user
//! writes code on top of it.
//!
//! [`publish_volume`] is what a CSI node plugin's `NodePublishVolume` does on the host: resolve
//! the staging and target paths as the host sees them, refuse a target that a symlink leads out
//! of the pods directory, and bind-mount (read-only if asked). It is generic over
//! [`Executor`] + [`PathResolver`], so the same code runs against every backend. Its tests show
//! the three ways to test such code — which one to use when:
//!
//! - **`hostexec-fake`** (`FakeExecutor` + `FakeHost`), in `tests/publish_fake.rs`: the default
//!   for behaviour tests. No root; a real temp-directory tree resolved with the real algorithm
//!   (symlink tricks behave as on a host); scripted answers; every command recorded.
//! - **mockall** (`MockExecutor`, `MockPathResolver` from `hostexec-api`'s `mock` feature), in
//!   `tests/publish_mock.rs`: for interaction tests — exactly which calls, with which
//!   arguments, in which order — and for failures that are hard to build (a path that cannot
//!   be resolved, a mount that fails with a given stderr).
//! - **the real backend** (`hostexec-nsenter` against a sandbox host: a process in its own
//!   mount namespace), in `tests/publish_real.rs`: the end-to-end proof, as root; it skips with
//!   a printed reason without `CAP_SYS_ADMIN` (never under `CI=true`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostexec_api::{CommandError, Executor, HostCommand, PathError, PathResolver, Resolve};

/// Why [`publish_volume`] refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A path could not be resolved on the host.
    #[error("cannot resolve {what}: {source}")]
    Resolve {
        /// Which path ("staging path", "target path", "pods directory").
        what: &'static str,
        /// The resolver's error.
        #[source]
        source: PathError,
    },
    /// The target resolves outside the pods directory (a symlink points elsewhere).
    #[error("target {} resolves to {}, outside {}", .target.display(), .resolved.display(), .pods_dir.display())]
    OutsidePods {
        /// The target as given.
        target: PathBuf,
        /// Where it resolves.
        resolved: PathBuf,
        /// The pods directory it must stay in.
        pods_dir: PathBuf,
    },
    /// mount(8) could not be run or failed.
    #[error("mount: {0}")]
    Mount(#[from] CommandError),
}

/// Bind-mounts `staging` onto `target` on the host, read-only if `read_only`, after checking
/// that `target` resolves inside `pods_dir`. Returns the resolved target.
pub async fn publish_volume<E, R>(
    exec: &E,
    paths: &R,
    staging: &Path,
    target: &Path,
    pods_dir: &Path,
    read_only: bool,
) -> Result<PathBuf, PublishError>
where
    E: Executor + ?Sized,
    R: PathResolver + ?Sized,
{
    let staging = must_exist(paths, "staging path", staging).await?;
    let pods = must_exist(paths, "pods directory", pods_dir).await?;
    let resolved = must_exist(paths, "target path", target).await?;
    if !resolved.starts_with(&pods) || resolved == pods {
        return Err(PublishError::OutsidePods {
            target: target.into(),
            resolved,
            pods_dir: pods,
        });
    }
    let timeout = Duration::from_secs(30);
    // Resolved paths go to mount(8): what was checked is what gets mounted.
    exec.run(
        HostCommand::new("mount")
            .arg("--bind")
            .arg(&staging)
            .arg(&resolved)
            .timeout(timeout),
    )
    .await?
    .check()?;
    if read_only {
        // A bind mount ignores `ro` on the first call; only a remount makes it read-only.
        exec.run(
            HostCommand::new("mount")
                .args(["-o", "remount,bind,ro"])
                .arg(&resolved)
                .timeout(timeout),
        )
        .await?
        .check()?;
    }
    Ok(resolved)
}

async fn must_exist<R: PathResolver + ?Sized>(
    paths: &R,
    what: &'static str,
    path: &Path,
) -> Result<PathBuf, PublishError> {
    paths
        .resolve(path, Resolve::MustExist)
        .await
        .map_err(|source| PublishError::Resolve { what, source })
}

/// The README's Rust examples, compiled and run as doctests so that they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;
