//! [`Output`]: how a host command ended and what it printed.

use std::ffi::OsString;
use std::fmt;

use crate::CommandError;

/// Bytes of stderr kept in a [`CommandError::Failed`].
pub const STDERR_EXCERPT_BYTES: usize = 2048;

/// How a command ended: the two outcomes wait(2) reports for a process that is gone (an exit
/// code or a terminating signal), a closed set, so this enum is exhaustive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl ExitStatus {
    /// True for exit code 0.
    pub fn success(self) -> bool {
        self == ExitStatus::Code(0)
    }

    /// The status in the shell's convention: the exit code, or 128+N for signal N.
    ///
    /// ```
    /// use hostexec_api::ExitStatus;
    /// assert_eq!(ExitStatus::Code(3).exit_code(), 3);
    /// assert_eq!(ExitStatus::Signal(9).exit_code(), 137);
    /// ```
    pub fn exit_code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit status {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
        }
    }
}

/// What a finished command left: its status and the captured output.
///
/// Streams that were not captured ([`OutputMode::Inherit`](crate::OutputMode) or `Null`) are
/// empty here.
///
/// ```
/// use hostexec_api::{ExitStatus, Output};
///
/// let out = Output::new("mount", ExitStatus::Code(32)).with_stderr("mount: /x: permission denied.\n");
/// assert!(!out.success());
/// let err = out.check().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "mount failed with exit status 32: mount: /x: permission denied."
/// );
/// ```
///
/// `#[non_exhaustive]`: a backend outside this crate builds one with [`Output::new`],
/// [`Output::with_stdout`] and [`Output::with_stderr`], and sets the public truncation flags
/// directly (`out.stdout_truncated = true`).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Output {
    /// The program, as the command named it.
    pub program: OsString,
    /// How it ended.
    pub status: ExitStatus,
    /// Captured standard output (at most the capture limit).
    pub stdout: Vec<u8>,
    /// Captured standard error (at most the capture limit).
    pub stderr: Vec<u8>,
    /// More stdout was written than the capture limit; the rest was discarded.
    pub stdout_truncated: bool,
    /// More stderr was written than the capture limit; the rest was discarded.
    pub stderr_truncated: bool,
}

impl Output {
    /// An output with this status and nothing captured.
    pub fn new(program: impl Into<OsString>, status: ExitStatus) -> Self {
        Output {
            program: program.into(),
            status,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
        }
    }

    /// Sets the captured stdout.
    pub fn with_stdout(mut self, stdout: impl Into<Vec<u8>>) -> Self {
        self.stdout = stdout.into();
        self
    }

    /// Sets the captured stderr.
    pub fn with_stderr(mut self, stderr: impl Into<Vec<u8>>) -> Self {
        self.stderr = stderr.into();
        self
    }

    /// True for exit code 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The status in the shell's convention (128+N for signal N).
    pub fn exit_code(&self) -> i32 {
        self.status.exit_code()
    }

    /// Stdout as text (lossy), without trailing newlines.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout)
            .trim_end_matches(['\n', '\r'])
            .to_owned()
    }

    /// Returns `self` on success; otherwise [`CommandError::Failed`] with the status and an
    /// excerpt of stderr (its last [`STDERR_EXCERPT_BYTES`] bytes, lossy, trimmed).
    pub fn check(self) -> Result<Output, CommandError> {
        if self.success() {
            Ok(self)
        } else {
            Err(CommandError::Failed {
                program: self.program.clone(),
                status: self.status,
                stderr: stderr_excerpt(&self.stderr),
            })
        }
    }
}

/// The last [`STDERR_EXCERPT_BYTES`] of `stderr` as trimmed, lossy text.
pub fn stderr_excerpt(stderr: &[u8]) -> String {
    let start = stderr.len().saturating_sub(STDERR_EXCERPT_BYTES);
    String::from_utf8_lossy(&stderr[start..]).trim().to_owned()
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Output")
            .field("program", &self.program)
            .field("status", &self.status)
            .field("stdout", &String::from_utf8_lossy(&self.stdout))
            .field("stderr", &String::from_utf8_lossy(&self.stderr))
            .field("stdout_truncated", &self.stdout_truncated)
            .field("stderr_truncated", &self.stderr_truncated)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(ExitStatus::Code(0).exit_code(), 0);
        assert_eq!(ExitStatus::Code(255).exit_code(), 255);
        assert_eq!(ExitStatus::Signal(15).exit_code(), 143);
        assert!(ExitStatus::Code(0).success());
        assert!(!ExitStatus::Signal(0).success());
        assert_eq!(ExitStatus::Signal(9).to_string(), "killed by signal 9");
    }

    #[test]
    fn check_passes_success_through() {
        let out = Output::new("true", ExitStatus::Code(0)).with_stdout("x\n");
        assert_eq!(out.clone().check().unwrap(), out);
        assert_eq!(out.stdout_text(), "x");
    }

    #[test]
    fn check_keeps_the_end_of_long_stderr() {
        let mut long = vec![b'a'; 10_000];
        long.extend_from_slice(b"the real error\n");
        let err = Output::new("x", ExitStatus::Signal(9))
            .with_stderr(long)
            .check()
            .unwrap_err();
        match &err {
            CommandError::Failed { status, stderr, .. } => {
                assert_eq!(*status, ExitStatus::Signal(9));
                assert!(stderr.len() <= STDERR_EXCERPT_BYTES);
                assert!(stderr.ends_with("the real error"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(err.exit_code(), Some(137));
    }

    #[test]
    fn failure_without_stderr_reads_cleanly() {
        let err = Output::new("false", ExitStatus::Code(1))
            .check()
            .unwrap_err();
        assert_eq!(err.to_string(), "false failed with exit status 1");
    }

    #[test]
    fn excerpt_is_lossy_on_bad_utf8() {
        assert_eq!(stderr_excerpt(b"\xffoops\n"), "\u{fffd}oops");
    }
}
