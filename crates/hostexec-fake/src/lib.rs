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
//!   received one (go-originals §1.3, §3 #30); this does none of that.
//! - [`FakeExecutor::passthrough`]: runs commands for real in the current namespaces, as Go's
//!   `NewFakeNsenter` did, but with the contract's timeout, process-group kill and bounded
//!   capture (Go's fake returned a nil command from `CommandContext`: go-originals §1.1).
//!
//! - [`FakeHost`]: a temp directory that stands for the host's `/`, with a
//!   [`PathResolver`](hostexec_api::PathResolver) and [`HostFs`](hostexec_api::HostFs) that
//!   use the **same** resolution code as the real backend (`hostexec-rootfs`), so absolute
//!   symlinks stay inside the fake root and fuzzing one covers both; a table of fake mounts
//!   rendered as mountinfo; and [`FakeHost::mount_handler`] to answer `mount`/`umount`
//!   commands of a [`FakeExecutor`] from that table.
//!
//! [`FakeExecutor`] and everything in this crate are `Send + Sync` and cheap to clone (one
//! shared state behind an `Arc`), for multi-threaded tokio tests.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]
#![warn(clippy::unwrap_used)]

mod executor;
mod host;
mod passthrough;

pub use executor::{Expectation, FakeExecutor, VerifyError};
pub use host::{FakeHost, FakeMount};
