//! # hostexec-supervise: one engine that runs a command to its end, whatever the host does
//!
//! Both hostexec backends (the real `hostexec-nsenter` and the fake's passthrough) run
//! commands through an [`Engine`]: give it a [`Launch`] (the resolved program, its argv, its
//! working directory) and the [`HostCommand`](hostexec_api::HostCommand) (stdio, capture
//! limit, grace, wait delay), with the call's deadline, and it returns the
//! [`Output`](hostexec_api::Output) or the contract's
//! [`CommandError`](hostexec_api::CommandError).
//!
//! ```no_run
//! use hostexec_api::HostCommand;
//! use hostexec_supervise::{deadline, Engine, EngineConfig, Launch};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let engine = Engine::new(EngineConfig::new("my-spawner"));
//! let hc = HostCommand::new("true").timeout(std::time::Duration::from_secs(5));
//! let launch = Launch::new("true", "/bin/true", vec!["true".into()], None);
//! let out = engine.run(launch, &hc, deadline(&hc)).await;
//! # Ok(()) }
//! ```
//!
//! ## What it guarantees, and the kernel facts behind it
//!
//! - **The deadline covers the whole call.** `posix_spawn` blocks its calling thread until
//!   the child has exec'ed; with the program or working directory on a hung mount, forever.
//!   Spawns run on [spawner threads](spawner) that the engine gives up on at the deadline
//!   (and replaces), so a stuck spawn never delays another command; a spawn that returns
//!   late is stopped at once.
//! - **Stopping** (the deadline passed, or the `run` future was dropped — one behaviour for
//!   both, the [`Executor`](hostexec_api::Executor) contract's): SIGTERM to everything the
//!   command started, up to the command's kill grace for it to end, then everything still
//!   there frozen with SIGSTOP and killed with SIGKILL (see [`Containment`] for how it is
//!   found: a cgroup2 group where one can be made, a `/proc` walk under a child subreaper
//!   always). Then the leader is waited for at most [`REAP_WAIT`]: a process in state `D`
//!   (blocked in the kernel on a hung NFS or FUSE mount) ignores SIGKILL until the wait
//!   ends, so the call returns [`CommandError::TimedOut`](hostexec_api::CommandError) on
//!   time with a [`Lingering`](hostexec_api::Lingering) note (pid, state), and a background
//!   thread reaps it when it finally ends: never a zombie. A timed-out call returns within
//!   timeout + kill grace + [`REAP_WAIT`] + a scan of `/proc`.
//! - **Exit** is read through a pidfd (`pidfd_open`, `waitid(P_PIDFD)`), never by PID, so
//!   a signal or a wait never reaches a process that reused the number; a wait status other
//!   than an exit or a death by signal is an error, not a made-up code.
//! - **Output** is captured per stream up to the capture limit (the rest read and dropped,
//!   flagged); a read error closes that pipe and is the call's error once the command ended;
//!   after the command exits, pipes held open by something it left running are read for at
//!   most the wait delay.
//! - **No descriptor of the caller reaches the command**: `hostexec-sys`'s `posix_spawn`
//!   closes every descriptor above 2 in the child, inherited ones without `FD_CLOEXEC`
//!   included, without leaving the `posix_spawn` path (no fork, whatever the caller's memory).

mod contain;
mod engine;
mod process;
mod reaper;
pub mod spawner;

pub use contain::{Containment, REAP_WAIT};
pub use engine::{deadline, environment, timed_out, Engine, EngineConfig, Launch, RunError};
pub use hostexec_sys::spawn::CloseOthers;
