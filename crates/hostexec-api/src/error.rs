//! Typed errors: [`CommandError`] for running commands, [`PathError`] for resolving host paths
//! and for file operations in the host's view.
//!
//! A backend's own errors are not flattened into text: they travel as the boxed `source` of
//! [`CommandError::Backend`] and of the `HostUnavailable` variants ([`BoxError`]), so the
//! caller can downcast to the backend's type, and [`CommandError::raw_os_error`] finds the OS
//! error anywhere in that chain.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ExitStatus;

/// A backend's own error, boxed, as the `source` of [`CommandError::Backend`] and of the
/// `HostUnavailable` variants. A `String` or `&str` converts into it too.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a host command could not be run, or did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The program is not among the host's binaries.
    #[error("{}: command not found on the host (searched {})", .program.to_string_lossy(), DirList(.searched))]
    NotFound {
        /// The program, as given.
        program: OsString,
        /// The host directories that were searched.
        searched: Vec<PathBuf>,
    },
    /// The command cannot be run as given (a NUL byte, a relative program path, …).
    #[error("{}: invalid command: {reason}", .program.to_string_lossy())]
    InvalidInput {
        /// The program, as given.
        program: OsString,
        /// What is wrong.
        reason: String,
    },
    /// The program was found but could not be started.
    #[error("could not start {}: {source}", .program.to_string_lossy())]
    Spawn {
        /// The program, as given.
        program: OsString,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The command ran longer than its timeout; everything it started was killed.
    #[error("{} timed out after {}{}", .program.to_string_lossy(), HumanDuration(*.timeout), LingerNote(.lingering))]
    TimedOut {
        /// The program, as given.
        program: OsString,
        /// The timeout that ran out.
        timeout: Duration,
        /// A process of the command that was killed but had not ended when the call
        /// returned (blocked in the kernel, e.g. on a hung NFS mount); `None` when all were
        /// reaped.
        lingering: Option<Lingering>,
    },
    /// The command ran and did not succeed (from [`Output::check`](crate::Output::check)).
    #[error("{} failed with {status}{}", .program.to_string_lossy(), Excerpt(.stderr))]
    Failed {
        /// The program, as given.
        program: OsString,
        /// How it ended.
        status: ExitStatus,
        /// The end of its stderr, trimmed.
        stderr: String,
    },
    /// The host cannot be reached: its namespaces cannot be joined, the target process is
    /// gone, the backend's worker has stopped. The source is the backend's own error (for
    /// `hostexec-nsenter`, its `NsEnterError`), or a message.
    #[error("host unavailable: {source}")]
    HostUnavailable {
        /// What happened, as the backend's error (downcast it to the backend's type).
        #[source]
        source: BoxError,
    },
    /// An I/O error while running the command (pipes, waiting).
    #[error("{}: {source}", .program.to_string_lossy())]
    Io {
        /// The program, as given.
        program: OsString,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An error of the backend itself that no other variant describes, with the backend's own
    /// error as the source: for instance `hostexec-fake`'s `UnexpectedCommand`, which its
    /// `FakeExecutor` returns for a command it was not scripted to accept. Real backends map
    /// what the contract names to the other variants.
    #[error("{}: {source}", .program.to_string_lossy())]
    Backend {
        /// The program, as given.
        program: OsString,
        /// The backend's error (downcast it to the backend's type).
        #[source]
        source: BoxError,
    },
}

/// A killed process that had not ended yet when [`CommandError::TimedOut`] was returned.
///
/// A process blocked in an uninterruptible kernel wait (state `D`, e.g. a `stat` on a hard
/// NFS mount whose server is gone, or a hung FUSE mount) receives SIGKILL but ends only when
/// the wait ends. A backend does not wait for it past its bounded reap delay: it returns the
/// timeout on time with this note, and reaps the process in the background when it finally
/// ends, so that it never stays a zombie.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lingering {
    /// The process, as this process's PID namespace numbers it.
    pub pid: u32,
    /// Its state letter from `/proc/PID/stat` when the call returned (`D`: uninterruptible
    /// sleep), or `?` when it could not be read.
    pub state: char,
}

impl Lingering {
    /// A lingering process.
    pub fn new(pid: u32, state: char) -> Lingering {
        Lingering { pid, state }
    }
}

impl fmt::Display for Lingering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} (state {}) was killed but still lingers; it is reaped when it ends",
            self.pid, self.state
        )
    }
}

/// `; <lingering>` or nothing.
struct LingerNote<'a>(&'a Option<Lingering>);

impl fmt::Display for LingerNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, "; {l}"),
            None => Ok(()),
        }
    }
}

impl CommandError {
    /// [`CommandError::HostUnavailable`] with this cause (the backend's error, or a message).
    pub fn host_unavailable(source: impl Into<BoxError>) -> Self {
        CommandError::HostUnavailable {
            source: source.into(),
        }
    }

    /// [`CommandError::Backend`] for `program`, with the backend's error as the cause.
    pub fn backend(program: impl Into<OsString>, source: impl Into<BoxError>) -> Self {
        CommandError::Backend {
            program: program.into(),
            source: source.into(),
        }
    }

    /// The OS error number behind this error, where there is one: the first [`io::Error`]
    /// with an errno in the chain of sources, for boxed backend errors too.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CommandError::Spawn { source, .. } | CommandError::Io { source, .. } => {
                source.raw_os_error()
            }
            CommandError::HostUnavailable { source } | CommandError::Backend { source, .. } => {
                errno_in_chain(source.as_ref())
            }
            CommandError::NotFound { .. } => Some(libc_errno::ENOENT),
            _ => None,
        }
    }

    /// The exit code a shell would report for this error: the command's own status for
    /// [`CommandError::Failed`], 124 for a timeout (as timeout(1)), 127 for not found,
    /// 126 for a program that could not be started; `None` otherwise.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            CommandError::Failed { status, .. } => Some(status.exit_code()),
            CommandError::TimedOut { .. } => Some(124),
            CommandError::NotFound { .. } => Some(127),
            CommandError::Spawn { .. } => Some(126),
            _ => None,
        }
    }
}

/// Why a host path could not be resolved, or a file operation in the host's view failed.
///
/// `Display` is `PATH: <text>`, where the text is the familiar strerror text
/// (`No such file or directory`, `Not a directory`, `Too many levels of symbolic links`) so
/// that a CLI can print what `realpath` users know:
///
/// ```
/// use hostexec_api::PathError;
/// let e = PathError::from_errno("/etc/nope", 2);
/// assert_eq!(e.to_string(), "/etc/nope: No such file or directory");
/// assert_eq!(e.raw_os_error(), Some(2));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The path is not absolute (hostexec never resolves against a working directory).
    #[error("{}: not an absolute path", .path.display())]
    NotAbsolute {
        /// The path, as given.
        path: PathBuf,
    },
    /// The path contains a NUL byte, which no system call accepts.
    #[error("{}: Invalid argument (the path contains a NUL byte)", .path.display())]
    ContainsNul {
        /// The path, as given.
        path: PathBuf,
    },
    /// A component does not exist (ENOENT).
    #[error("{}: No such file or directory", .path.display())]
    NotFound {
        /// The path, as given.
        path: PathBuf,
    },
    /// A component used as a directory is not one (ENOTDIR).
    #[error("{}: Not a directory", .path.display())]
    NotADirectory {
        /// The path, as given.
        path: PathBuf,
    },
    /// A symlink loop, or more than [`MAX_SYMLINK_HOPS`](crate::MAX_SYMLINK_HOPS) hops (ELOOP).
    #[error("{}: Too many levels of symbolic links", .path.display())]
    Loop {
        /// The path, as given.
        path: PathBuf,
    },
    /// Permission denied (EACCES or EPERM).
    #[error("{}: Permission denied", .path.display())]
    PermissionDenied {
        /// The path, as given.
        path: PathBuf,
    },
    /// The path or a component is too long (ENAMETOOLONG).
    #[error("{}: File name too long", .path.display())]
    NameTooLong {
        /// The path, as given.
        path: PathBuf,
    },
    /// The file already exists and is of another kind (EEXIST).
    #[error("{}: File exists", .path.display())]
    AlreadyExists {
        /// The path, as given.
        path: PathBuf,
    },
    /// Any other I/O error.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The path, as given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The host cannot be reached (see [`CommandError::HostUnavailable`]).
    #[error("host unavailable: {source}")]
    HostUnavailable {
        /// What happened, as the backend's error (downcast it to the backend's type).
        #[source]
        source: BoxError,
    },
    /// The call did not complete within its deadline: the file system it was in did not
    /// answer (a hung NFS or FUSE mount). The thread that made the call may stay blocked in
    /// the kernel; the backend no longer waits for it.
    #[error("{}: no answer within {} (Connection timed out)", .path.display(), HumanDuration(*.timeout))]
    TimedOut {
        /// The path, as given.
        path: PathBuf,
        /// The deadline that ran out.
        timeout: Duration,
    },
    /// The path leads into a mount on which an earlier call overran its deadline, and which
    /// has not answered since: the call failed at once instead of blocking there too.
    #[error("{}: the mount at {} is not responding (Connection timed out)", .path.display(), .mount.display())]
    Unresponsive {
        /// The path, as given.
        path: PathBuf,
        /// The mount point (host path) of the mount that does not answer.
        mount: PathBuf,
    },
}

impl PathError {
    /// [`PathError::HostUnavailable`] with this cause (the backend's error, or a message).
    pub fn host_unavailable(source: impl Into<BoxError>) -> Self {
        PathError::HostUnavailable {
            source: source.into(),
        }
    }

    /// The error for `errno` on `path`, mapped to the typed variant where there is one.
    pub fn from_errno(path: impl Into<PathBuf>, errno: i32) -> Self {
        Self::from_io(path, io::Error::from_raw_os_error(errno))
    }

    /// The error for an [`io::Error`] on `path`, mapped to the typed variant where there is one.
    pub fn from_io(path: impl Into<PathBuf>, err: io::Error) -> Self {
        let path = path.into();
        use libc_errno::*;
        match err.raw_os_error() {
            Some(ENOENT) => PathError::NotFound { path },
            Some(ENOTDIR) => PathError::NotADirectory { path },
            Some(ELOOP) => PathError::Loop { path },
            Some(EACCES) | Some(EPERM) => PathError::PermissionDenied { path },
            Some(ENAMETOOLONG) => PathError::NameTooLong { path },
            Some(EEXIST) => PathError::AlreadyExists { path },
            _ => PathError::Io { path, source: err },
        }
    }

    /// The path the error is about (`None` for [`PathError::HostUnavailable`]).
    pub fn path(&self) -> Option<&Path> {
        match self {
            PathError::NotAbsolute { path }
            | PathError::ContainsNul { path }
            | PathError::NotFound { path }
            | PathError::NotADirectory { path }
            | PathError::Loop { path }
            | PathError::PermissionDenied { path }
            | PathError::NameTooLong { path }
            | PathError::AlreadyExists { path }
            | PathError::Io { path, .. }
            | PathError::TimedOut { path, .. }
            | PathError::Unresponsive { path, .. } => Some(path),
            PathError::HostUnavailable { .. } => None,
        }
    }

    /// The OS error number behind this error, where there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        use libc_errno::*;
        match self {
            PathError::NotAbsolute { .. } | PathError::ContainsNul { .. } => Some(EINVAL),
            PathError::NotFound { .. } => Some(ENOENT),
            PathError::NotADirectory { .. } => Some(ENOTDIR),
            PathError::Loop { .. } => Some(ELOOP),
            PathError::PermissionDenied { .. } => Some(EACCES),
            PathError::NameTooLong { .. } => Some(ENAMETOOLONG),
            PathError::AlreadyExists { .. } => Some(EEXIST),
            PathError::Io { source, .. } => source.raw_os_error(),
            PathError::HostUnavailable { source } => errno_in_chain(source.as_ref()),
            PathError::TimedOut { .. } | PathError::Unresponsive { .. } => Some(ETIMEDOUT),
        }
    }

    /// True when the file system did not answer: [`PathError::TimedOut`] (this call waited
    /// out its deadline) or [`PathError::Unresponsive`] (an earlier one did, and the mount has
    /// not answered since).
    pub fn is_unresponsive(&self) -> bool {
        matches!(
            self,
            PathError::TimedOut { .. } | PathError::Unresponsive { .. }
        )
    }

    /// True for [`PathError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, PathError::NotFound { .. })
    }

    /// The same error about another path (a resolver reports the path it was asked about,
    /// not the component that failed).
    pub fn with_path(self, new: impl Into<PathBuf>) -> Self {
        let new = new.into();
        match self {
            PathError::NotAbsolute { .. } => PathError::NotAbsolute { path: new },
            PathError::ContainsNul { .. } => PathError::ContainsNul { path: new },
            PathError::NotFound { .. } => PathError::NotFound { path: new },
            PathError::NotADirectory { .. } => PathError::NotADirectory { path: new },
            PathError::Loop { .. } => PathError::Loop { path: new },
            PathError::PermissionDenied { .. } => PathError::PermissionDenied { path: new },
            PathError::NameTooLong { .. } => PathError::NameTooLong { path: new },
            PathError::AlreadyExists { .. } => PathError::AlreadyExists { path: new },
            PathError::Io { source, .. } => PathError::Io { path: new, source },
            PathError::TimedOut { timeout, .. } => PathError::TimedOut { path: new, timeout },
            PathError::Unresponsive { mount, .. } => PathError::Unresponsive { path: new, mount },
            e @ PathError::HostUnavailable { .. } => e,
        }
    }
}

impl From<PathError> for io::Error {
    fn from(e: PathError) -> io::Error {
        let kind = match &e {
            PathError::Io { source, .. } => source.kind(),
            _ => match e.raw_os_error() {
                Some(n) => io::Error::from_raw_os_error(n).kind(),
                None => io::ErrorKind::Other,
            },
        };
        io::Error::new(kind, e)
    }
}

/// The errno of the first [`io::Error`] that has one, in `err` and its chain of sources.
fn errno_in_chain(err: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(n) = e
            .downcast_ref::<io::Error>()
            .and_then(io::Error::raw_os_error)
        {
            return Some(n);
        }
        next = e.source();
    }
    None
}

/// Linux errno values used for the mapping (this crate has no libc dependency).
mod libc_errno {
    pub(crate) const EPERM: i32 = 1;
    pub(crate) const ENOENT: i32 = 2;
    pub(crate) const EACCES: i32 = 13;
    pub(crate) const EEXIST: i32 = 17;
    pub(crate) const ENOTDIR: i32 = 20;
    pub(crate) const EINVAL: i32 = 22;
    pub(crate) const ENAMETOOLONG: i32 = 36;
    pub(crate) const ELOOP: i32 = 40;
    pub(crate) const ETIMEDOUT: i32 = 110;
}

struct DirList<'a>(&'a [PathBuf]);

impl fmt::Display for DirList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("nothing");
        }
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}", d.display())?;
        }
        Ok(())
    }
}

struct Excerpt<'a>(&'a str);

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            write!(f, ": {}", self.0)
        }
    }
}

/// A duration as hostexec's messages show it, the way the CLI takes durations: whole
/// minutes as `2m`, whole seconds as `30s`, less than a second as `500ms` (or `5µs`),
/// anything else as seconds to the millisecond (`1.5s`, `2.25s`). Backends and front ends
/// that word their own errors use it so that durations read alike everywhere.
///
/// ```
/// use std::time::Duration;
/// use hostexec_api::HumanDuration;
/// assert_eq!(HumanDuration(Duration::from_secs(120)).to_string(), "2m");
/// assert_eq!(HumanDuration(Duration::from_millis(1500)).to_string(), "1.5s");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let ms = d.as_millis();
        if ms == 0 {
            write!(f, "{}µs", d.as_micros())
        } else if ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else if ms < 1000 {
            write!(f, "{ms}ms")
        } else {
            let frac = format!("{:03}", ms % 1000);
            write!(f, "{}.{}s", ms / 1000, frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_errors_end_in_strerror_text() {
        let cases = [
            (2, "No such file or directory"),
            (20, "Not a directory"),
            (40, "Too many levels of symbolic links"),
            (13, "Permission denied"),
            (1, "Permission denied"),
            (36, "File name too long"),
            (17, "File exists"),
        ];
        for (errno, text) in cases {
            let e = PathError::from_errno("/a/b", errno);
            assert_eq!(e.to_string(), format!("/a/b: {text}"));
            let expect = if errno == 1 { 13 } else { errno };
            assert_eq!(e.raw_os_error(), Some(expect));
            assert_eq!(e.path(), Some(Path::new("/a/b")));
        }
        let other = PathError::from_errno("/x", 5);
        assert!(matches!(other, PathError::Io { .. }));
        assert_eq!(other.raw_os_error(), Some(5));
        assert!(other.to_string().starts_with("/x: Input/output error"));
    }

    #[test]
    fn unresponsive_errors_name_the_path_and_the_mount() {
        let t = PathError::TimedOut {
            path: "/mnt/nfs/x".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(
            t.to_string(),
            "/mnt/nfs/x: no answer within 250ms (Connection timed out)"
        );
        assert_eq!(t.raw_os_error(), Some(110));
        assert!(t.is_unresponsive());
        let u = PathError::Unresponsive {
            path: "/mnt/nfs/x".into(),
            mount: "/mnt/nfs".into(),
        }
        .with_path("/link");
        assert_eq!(
            u.to_string(),
            "/link: the mount at /mnt/nfs is not responding (Connection timed out)"
        );
        assert_eq!(u.path(), Some(Path::new("/link")));
        assert!(u.is_unresponsive());
        assert!(!PathError::from_errno("/x", 2).is_unresponsive());
    }

    #[test]
    fn with_path_keeps_the_kind() {
        let e = PathError::from_errno("/a/b/c", 40).with_path("/a");
        assert!(matches!(e, PathError::Loop { ref path } if path == Path::new("/a")));
        let io: io::Error = e.into();
        assert_eq!(io.raw_os_error(), None);
        assert!(io.to_string().contains("Too many levels"));
    }

    #[test]
    fn command_error_texts() {
        let nf = CommandError::NotFound {
            program: "findmnt".into(),
            searched: vec!["/bin".into(), "/usr/bin".into()],
        };
        assert_eq!(
            nf.to_string(),
            "findmnt: command not found on the host (searched /bin, /usr/bin)"
        );
        assert_eq!(nf.exit_code(), Some(127));
        assert_eq!(nf.raw_os_error(), Some(2));
        let to = CommandError::TimedOut {
            program: "sleep".into(),
            timeout: Duration::from_millis(1500),
            lingering: None,
        };
        assert_eq!(to.to_string(), "sleep timed out after 1.5s");
        let stuck = CommandError::TimedOut {
            program: "stat".into(),
            timeout: Duration::from_secs(1),
            lingering: Some(Lingering::new(42, 'D')),
        };
        assert_eq!(
            stuck.to_string(),
            "stat timed out after 1s; process 42 (state D) was killed but still lingers; \
             it is reaped when it ends"
        );
        assert_eq!(to.exit_code(), Some(124));
        let sp = CommandError::Spawn {
            program: "/bin/x".into(),
            source: io::Error::from_raw_os_error(13),
        };
        assert_eq!(sp.raw_os_error(), Some(13));
        assert!(sp
            .to_string()
            .starts_with("could not start /bin/x: Permission denied"));
    }

    #[test]
    fn boxed_backend_errors_keep_their_cause() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot join the mnt namespace: {source}")]
        struct JoinError {
            #[source]
            source: io::Error,
        }
        let e = CommandError::host_unavailable(JoinError {
            source: io::Error::from_raw_os_error(1),
        });
        assert!(e.to_string().starts_with(
            "host unavailable: cannot join the mnt namespace: Operation not permitted"
        ));
        // The errno is found in the chain, and the backend's type is still there.
        assert_eq!(e.raw_os_error(), Some(1));
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.downcast_ref::<JoinError>().is_some());

        let msg = PathError::host_unavailable("the worker pool has stopped");
        assert_eq!(
            msg.to_string(),
            "host unavailable: the worker pool has stopped"
        );
        assert_eq!(msg.raw_os_error(), None);
        assert_eq!(msg.path(), None);

        let b = CommandError::backend("mount", "refused by policy");
        assert_eq!(b.to_string(), "mount: refused by policy");
        assert_eq!(b.exit_code(), None);
    }

    #[test]
    fn human_durations() {
        for (d, s) in [
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_micros(5), "5µs"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(2050), "2.05s"),
            (Duration::from_millis(61_001), "61.001s"),
        ] {
            assert_eq!(HumanDuration(d).to_string(), s);
        }
    }
}
