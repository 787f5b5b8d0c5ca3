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
//!
//! ## Example: a backend of your own, checked by the conformance suite
//!
//! A third-party backend implements the traits with the `async_trait` attribute that
//! `hostexec-api` re-exports (no direct dependency on `async-trait` needed), then runs the api's
//! conformance suite (feature `conformance`) against itself — all of it (`executor_contract`,
//! `resolver_contract`, `host_fs_contract`), or check by check while it is being built. The
//! backend here is a layer that counts the calls it forwards to another backend (this crate's
//! passthrough executor and fake host); one that reaches the host its own way implements the
//! same methods and runs the same checks.
//!
//! ```
//! use std::ffi::OsStr;
//! use std::path::{Path, PathBuf};
//! use std::sync::atomic::{AtomicUsize, Ordering};
//!
//! use hostexec_api::{
//!     async_trait, conformance, CommandError, Executor, FileStat, HostCommand, HostFs, Output,
//!     PathError, PathResolver, Resolve,
//! };
//!
//! /// The backend: counts calls, and reaches the host through `inner`.
//! struct Counting<H> {
//!     inner: H,
//!     calls: AtomicUsize,
//! }
//!
//! impl<H> Counting<H> {
//!     fn count(&self) {
//!         self.calls.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! #[async_trait]
//! impl<H: Executor> Executor for Counting<H> {
//!     async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
//!         self.count();
//!         self.inner.run(cmd).await
//!     }
//!     async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
//!         self.count();
//!         self.inner.look_path(name).await
//!     }
//!     // `supports_systemd` is provided: it probes through `run`. Override it to cache.
//! }
//!
//! #[async_trait]
//! impl<H: PathResolver> PathResolver for Counting<H> {
//!     async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
//!         self.count();
//!         self.inner.resolve(path, mode).await
//!     }
//!     fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
//!         self.inner.local_path(host_path)
//!     }
//! }
//!
//! #[async_trait]
//! impl<H: HostFs> HostFs for Counting<H> {
//!     async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
//!         self.count();
//!         self.inner.stat(path, follow).await
//!     }
//!     async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
//!         self.count();
//!         self.inner.read_file(path, limit).await
//!     }
//!     async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
//!         self.count();
//!         self.inner.create_dir_all(path).await
//!     }
//!     async fn create_file(&self, path: &Path) -> Result<(), PathError> {
//!         self.count();
//!         self.inner.create_file(path).await
//!     }
//!     async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
//!         self.count();
//!         self.inner.remove_dir(path).await
//!     }
//!     async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
//!         self.count();
//!         self.inner.read_mountinfo().await
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Commands: the Executor checks, one by one (real processes, timeouts, group kills).
//! // A complete backend runs them all with `conformance::executor_contract(&exec)`; this one
//! // forwards to the fake's passthrough, which passes on descriptors the test process
//! // inherited without FD_CLOEXEC, so `no_descriptor_leaks` is the one check it leaves out.
//! let exec = Counting { inner: hostexec_fake::FakeExecutor::passthrough(), calls: AtomicUsize::new(0) };
//! conformance::exit_codes(&exec).await;
//! conformance::killed_by_signal(&exec).await;
//! conformance::arguments_arrive_literally(&exec).await;
//! conformance::standard_streams(&exec).await;
//! conformance::environment(&exec).await;
//! conformance::working_directory(&exec).await;
//! conformance::missing_programs(&exec).await;
//! conformance::capture_is_capped(&exec).await;
//! conformance::timeout_kills_the_group(&exec).await;
//! conformance::timeout_escalates_to_sigkill(&exec).await;
//! conformance::drop_kills_the_group(&exec).await;
//! conformance::grandchild_holding_pipes(&exec).await;
//! conformance::concurrent_commands(&exec).await;
//! assert!(exec.calls.load(Ordering::Relaxed) > 0);
//!
//! // Paths and files: the resolver and HostFs contracts, in an empty host directory each.
//! let fake = hostexec_fake::FakeHost::new()?;
//! fake.dir("/base/r")?.dir("/base/f")?;
//! let host = Counting { inner: fake, calls: AtomicUsize::new(0) };
//! conformance::resolver_contract(&host, Path::new("/base/r")).await;
//! conformance::host_fs_contract(&host, Path::new("/base/f")).await;
//! assert!(host.calls.load(Ordering::Relaxed) > 0);
//! # Ok(())
//! # }
//! ```

mod executor;
mod host;
mod passthrough;

pub use executor::{Expectation, FakeExecutor, UnexpectedCommand, VerifyError};
pub use host::{FakeHost, FakeMount};
