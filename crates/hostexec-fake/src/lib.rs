//! # hostexec-fake: test host logic without root
//!
//! Code that acts on a host — a CSI node plugin publishing a volume, a node agent checking a
//! mount — is written against [`hostexec_api`]'s traits. In production it gets
//! `hostexec-nsenter`, which needs root and the host's namespaces; in an ordinary
//! `cargo test` it gets this crate. Choosing one or the other is a change of dependency, not of
//! code: both implement the same traits, and both keep the same contract (this crate runs the
//! api's conformance suite against itself).
//!
//! - [`FakeExecutor`]: a scripted, recording [`Executor`](hostexec_api::Executor).
//!   Expectations match a command by program and arguments (exactly, by prefix, by predicate),
//!   in order or not, a number of times, and answer with an output, an error, a closure, or
//!   after a delay on tokio's clock. An unexpected command is an error naming it, not a panic;
//!   [`FakeExecutor::verify`] reports what was never called. Go's `exec/testing.FakeExec`
//!   panicked, dropped stderr, ignored contexts and logged the scripted argv instead of the
//!   received one (`k8s.io/utils/exec/testing`); this does none of that.
//! - [`FakeExecutor::passthrough`]: runs commands for real in the current namespaces, as Go's
//!   `NewFakeNsenter` did, but with the contract's timeout, process-group kill and bounded
//!   capture (Go's fake returned a nil command from `CommandContext`).
//!   Unlike the real backend it passes on descriptors the test process inherited without
//!   `FD_CLOEXEC` (see [`FakeExecutor::passthrough`]).
//!
//! - [`FakeHost`]: a temp directory that stands for the host's `/`, with a
//!   [`PathResolver`](hostexec_api::PathResolver) and [`HostFs`](hostexec_api::HostFs) that
//!   use the **same** resolution code as the real backend (`hostexec-rootfs`), so absolute
//!   symlinks stay inside the fake root and fuzzing one covers both; a table of fake mounts
//!   rendered as mountinfo; and [`FakeHost::mount_handler`] to answer `mount`/`umount`
//!   commands of a [`FakeExecutor`] from that table.
//!
//! ## Example: a mount flow against a fake host
//!
//! ```
//! use std::path::Path;
//! use hostexec_api::{Executor, HostCommand, HostFs, PathResolver, Resolve};
//! use hostexec_fake::{FakeExecutor, FakeHost};
//!
//! /// Downstream code: generic over the traits, unaware of the fakes.
//! async fn publish<E: Executor, F: HostFs>(exec: &E, fs: &F, target: &Path) -> Result<(), String> {
//!     let target = fs.resolve(target, Resolve::AllowMissing).await.map_err(|e| e.to_string())?;
//!     fs.create_dir_all(&target).await.map_err(|e| e.to_string())?;
//!     if fs.stat(&target, true).await.map_err(|e| e.to_string())?.mount_root == Some(true) {
//!         return Ok(()); // already published
//!     }
//!     let cmd = HostCommand::new("mount").args(["-t", "tmpfs", "tmpfs"]).arg(&target);
//!     exec.run(cmd).await.map_err(|e| e.to_string())?.check().map_err(|e| e.to_string())?;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let host = FakeHost::new()?;
//! host.dir("/var/lib/kubelet")?.symlink("/var/lib/kubelet", "/kubelet")?;
//! let exec = FakeExecutor::new();
//! // Exactly one mount, answered from the host's mount table.
//! exec.expect("mount")
//!     .args_prefix(["-t", "tmpfs", "tmpfs"])
//!     .answer_with(host.mount_handler());
//!
//! publish(&exec, &host, Path::new("/kubelet/vol")).await?;
//! publish(&exec, &host, Path::new("/kubelet/vol")).await?; // idempotent: no second mount
//! exec.verify()?;
//! let table = String::from_utf8(host.read_mountinfo().await?)?;
//! assert!(table.contains(" / /var/lib/kubelet/vol rw,relatime - tmpfs tmpfs rw\n"));
//! # Ok(())
//! # }
//! ```
//!
//! ## Which double to use
//!
//! - [`FakeExecutor`] + [`FakeHost`]: code that runs commands *and* looks at the host (resolves
//!   paths, stats, reads the mount table). The host behaves like one: links, missing paths and
//!   mounts give the errors and answers the real backend gives, because it uses the same code.
//! - `hostexec_api::MockExecutor` (feature `mock`, mockall): pure interaction tests where
//!   mockall's matchers and sequences are what you want, and nothing needs to be real.
//! - [`FakeExecutor::passthrough`]: tests that want real tools but no host namespaces.
//! - The real backend (`hostexec-nsenter`), as root: integration tests against a sandbox host.
//!
//! [`FakeExecutor`] and everything in this crate are `Send + Sync` and cheap to clone (one
//! shared state behind an `Arc`), for multi-threaded tokio tests.

mod executor;
mod host;
mod passthrough;

pub use executor::{Expectation, FakeExecutor, VerifyError};
pub use host::{FakeHost, FakeMount};
