//! [`NsEnterError`]: why the host cannot be reached.

use std::io;
use std::path::PathBuf;

use hostexec_api::{CommandError, PathError};

use crate::Namespace;

/// Why an [`NsEnter`](crate::NsEnter) could not be built, or can no longer reach its target.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsEnterError {
    /// A namespace file could not be opened.
    #[error("cannot open the {ns} namespace file {}: {source}", .path.display())]
    OpenNamespace {
        /// The namespace.
        ns: Namespace,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The target process could not be opened (`pidfd_open`).
    #[error("cannot open process {pid}: {source}")]
    OpenProcess {
        /// The PID.
        pid: u32,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Joining a namespace failed (`setns`).
    #[error("cannot join the {ns} namespace: {source}")]
    Join {
        /// The namespace.
        ns: Namespace,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Giving the host thread its own file system state failed (`unshare(CLONE_FS)`).
    #[error("cannot unshare the host thread's file system state: {source}")]
    Unshare {
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The host's root directory could not be opened.
    #[error("cannot open the host root {}: {source}", .path.display())]
    OpenRoot {
        /// The path, as this process (or the host thread) sees it.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The target process's root or working directory could not be entered (`fchdir`,
    /// `chroot`: needs `CAP_SYS_CHROOT`) or opened.
    #[error("cannot enter {} (process {pid}'s root or working directory): {source}", .path.display())]
    EnterRoot {
        /// The PID.
        pid: u32,
        /// `/proc/PID/root` or `/proc/PID/cwd`.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// This launcher cannot join this namespace.
    #[error("cannot join the {ns} namespace: {reason}")]
    Unsupported {
        /// The namespace.
        ns: Namespace,
        /// Why, and what to do instead.
        reason: String,
    },
    /// The operation needs the host thread, which the nsenter-binary launcher does not have.
    #[error("{what} needs the host-thread launcher (Launcher::HostThread)")]
    NeedsHostThread {
        /// What was asked.
        what: &'static str,
    },
    /// The target process has exited; its PID may already belong to another process.
    #[error("the target process {pid} has exited")]
    TargetGone {
        /// The PID it had.
        pid: u32,
        /// `ESRCH`, what the kernel answers for a process that is gone (its pidfd polled
        /// readable).
        #[source]
        source: io::Error,
    },
    /// The host thread could not be started or has stopped.
    #[error("the host thread {0}")]
    HostThread(String),
    /// No tokio runtime is running; the executor needs one.
    #[error("hostexec-nsenter must be used from within a tokio runtime")]
    NoRuntime,
}

// The backend's error is the cause, whole: callers downcast it to `NsEnterError`, and
// `raw_os_error` finds the OS error in its chain.
impl From<NsEnterError> for CommandError {
    fn from(e: NsEnterError) -> CommandError {
        CommandError::host_unavailable(e)
    }
}

impl From<NsEnterError> for PathError {
    fn from(e: NsEnterError) -> PathError {
        PathError::host_unavailable(e)
    }
}
