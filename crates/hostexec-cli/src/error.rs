//! [`CliError`]: everything that ends a `hostexec` run early, with its exit code.

use std::fmt;
use std::io;
use std::path::PathBuf;

use hostexec_api::CommandError;
use hostexec_mount::MountError;
use hostexec_nsenter::{Namespace, NsEnterError};

/// Exit codes, in one place (`hostexec --help` lists them).
pub(crate) mod code {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// Any failure that has no code of its own.
    pub(crate) const FAILURE: u8 = 1;
    /// The command line is wrong.
    pub(crate) const USAGE: u8 = 2;
    /// `is-mountpoint`: the path is not a mount point (util-linux mountpoint(1)).
    pub(crate) const NOT_A_MOUNTPOINT: u8 = 32;
    /// `mount`, `umount`: the operation failed (util-linux mount(8), umount(8)).
    pub(crate) const MOUNT_FAILED: u8 = 32;
    /// `exec`: the command exists but cannot be executed (the shell's code).
    pub(crate) const NOT_EXECUTABLE: u8 = 126;
    /// `exec --timeout`: the command ran out of time (timeout(1)).
    pub(crate) const TIMED_OUT: u8 = 124;
    /// `exec`: the command is not on the host (the shell's code).
    pub(crate) const NOT_FOUND: u8 = 127;
    /// Killed by signal N: 128 + N (the shell's convention).
    pub(crate) const SIGNAL_BASE: u8 = 128;
}

/// Why `hostexec` stopped; `Display` is the text after `hostexec: `.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The command line is wrong in a way clap cannot see.
    #[error("{0}")]
    Usage(String),
    /// The host root directory is not there.
    #[error("the host root {}: {} (give --host-root DIR or set HOSTEXEC_HOST_ROOT; or --target-pid PID, e.g. --target-pid 1 with hostPID)", .path.display(), OsText(.source))]
    MissingHostRoot {
        /// The directory.
        path: PathBuf,
        /// Why it cannot be used.
        source: io::Error,
    },
    /// The host's namespaces or root could not be opened or joined.
    #[error("{}", host_text(.0))]
    Host(NsEnterError),
    /// hostexec refuses to do this (the safety rail of `--allow-own-namespace`).
    #[error("{0}")]
    Refused(String),
    /// A host command could not be run, or failed.
    #[error("{context}: {source}")]
    Command {
        /// The subcommand, or the program.
        context: String,
        /// The cause.
        source: CommandError,
    },
    /// A host binary could not be found (`which`: exit 1, not the shell's 127).
    #[error("{context}: {source}")]
    Lookup {
        /// The subcommand.
        context: &'static str,
        /// The cause.
        source: CommandError,
    },
    /// A mount operation failed.
    #[error("{context}: {source}")]
    Mount {
        /// The subcommand.
        context: &'static str,
        /// The cause (boxed: mount errors are large, and rare).
        source: Box<MountError>,
    },
    /// An in-process host operation (a path walk, a stat) did not finish within `--timeout`.
    #[error("{what} timed out after {} (a host file system is not answering)", hostexec_api::HumanDuration(*.after))]
    TimedOut {
        /// The subcommand.
        what: &'static str,
        /// The timeout.
        after: std::time::Duration,
    },
    /// Writing the output failed.
    #[error("writing the output: {}", OsText(.0))]
    Output(io::Error),
    /// The tokio runtime could not be started.
    #[error("cannot start the runtime: {}", OsText(.0))]
    Runtime(io::Error),
}

// Not `#[from]`: that would make the library error a `source`, and `one_line` would repeat
// its text (with the library's wording) after the CLI's.
impl From<NsEnterError> for CliError {
    fn from(e: NsEnterError) -> CliError {
        CliError::Host(e)
    }
}

impl CliError {
    /// The exit code for this error.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => code::USAGE,
            CliError::Command { source, .. } => match source {
                CommandError::TimedOut { .. } => code::TIMED_OUT,
                CommandError::NotFound { .. } => code::NOT_FOUND,
                // EACCES, ENOEXEC, EISDIR: there, but not something to execute (bash's 126).
                CommandError::Spawn { source, .. }
                    if matches!(source.raw_os_error(), Some(13 | 8 | 21)) =>
                {
                    code::NOT_EXECUTABLE
                }
                _ => code::FAILURE,
            },
            CliError::TimedOut { .. } => code::TIMED_OUT,
            CliError::Mount { context, source } => match source.as_ref() {
                MountError::UnmountTimedOut { .. }
                | MountError::Command {
                    source: CommandError::TimedOut { .. },
                    ..
                } => code::TIMED_OUT,
                // A relative target, a NUL byte: the command line is wrong.
                MountError::InvalidInput { .. } => code::USAGE,
                _ if matches!(*context, "mount" | "umount") => code::MOUNT_FAILED,
                _ => code::FAILURE,
            },
            CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                // As if killed by SIGPIPE, which a reader that went away would have done.
                code::SIGNAL_BASE + 13
            }
            _ => code::FAILURE,
        }
    }

    /// Whether the error is worth a line on stderr (a closed stdout is not: the reader left).
    pub(crate) fn is_silent(&self) -> bool {
        matches!(self, CliError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// An [`NsEnterError`] in the CLI's terms: flags instead of library types, and for a refusal
/// by the kernel (EPERM, EACCES) the capabilities hostexec lacks.
fn host_text(e: &NsEnterError) -> String {
    match e {
        NsEnterError::Unsupported {
            ns: Namespace::Time,
            ..
        } => "--ns time needs --launcher nsenter (a multithreaded process cannot join a time \
              namespace: setns gives EUSERS)"
            .into(),
        NsEnterError::NeedsHostThread { what } => format!("{what} needs --launcher host-thread"),
        _ => {
            let text = one_line(e);
            let refused = matches!(
                e,
                NsEnterError::OpenNamespace { source, .. }
                    | NsEnterError::OpenProcess { source, .. }
                    | NsEnterError::Join { source, .. }
                    | NsEnterError::Unshare { source }
                    | NsEnterError::OpenRoot { source, .. }
                    | NsEnterError::EnterRoot { source, .. }
                    if matches!(source.raw_os_error(), Some(1 | 13))
            );
            if refused {
                format!("{text} ({})", capability_hint(&own_capabilities()))
            } else {
                text
            }
        }
    }
}

/// The capabilities reaching the host needs: setns(2) into a mount namespace needs
/// CAP_SYS_ADMIN and CAP_SYS_CHROOT; opening another process's namespaces and root (a
/// ptrace-mode access check, ptrace(2)) needs CAP_SYS_PTRACE unless its capabilities are a
/// subset of ours.
pub(crate) const NEEDED_CAPS: [(u32, &str); 3] = [
    (21, "CAP_SYS_ADMIN"),
    (19, "CAP_SYS_PTRACE"),
    (18, "CAP_SYS_CHROOT"),
];

/// This process's effective capability set (`CapEff` of /proc/self/status), if readable.
pub(crate) fn own_capabilities() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Which of [`NEEDED_CAPS`] are missing from `caps`, in words.
pub(crate) fn capability_hint(caps: &Option<u64>) -> String {
    let all = "reaching the host needs CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_SYS_CHROOT";
    let Some(caps) = caps else {
        return all.to_owned();
    };
    let missing: Vec<&str> = NEEDED_CAPS
        .iter()
        .filter(|(bit, _)| caps & (1u64 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    match missing.as_slice() {
        [] => "hostexec has CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_SYS_CHROOT: a user namespace, \
               seccomp or LSM profile refuses it, or the target is not the host"
            .to_owned(),
        [one] => format!("hostexec lacks {one}; {all}"),
        many => format!("hostexec lacks {}; {all}", many.join(" and ")),
    }
}

/// An I/O error as its strerror text, without Rust's ` (os error N)` suffix.
pub(crate) struct OsText<'a>(pub(crate) &'a io::Error);

impl fmt::Display for OsText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        match text.rfind(" (os error ") {
            Some(i) if text.ends_with(')') => f.write_str(&text[..i]),
            _ => f.write_str(&text),
        }
    }
}

/// Renders `e` and its chain of causes on one line, skipping causes whose text the message
/// already holds (thiserror messages often embed their source).
pub(crate) fn one_line(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        let text = match c.downcast_ref::<io::Error>() {
            Some(io) => OsText(io).to_string(),
            None => text,
        };
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    // One line, whatever a cause's text held; strerror text without Rust's errno suffix.
    let joined: Vec<&str> = line
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    strip_errno_suffixes(&joined.join(" "))
}

/// Removes every ` (os error N)` that io::Error's Display appends.
fn strip_errno_suffixes(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(MARK) {
        let after = &rest[i + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..i]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..i + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_text_drops_the_errno_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(OsText(&e).to_string(), "No such file or directory");
        let custom = io::Error::other("plain");
        assert_eq!(OsText(&custom).to_string(), "plain");
    }

    #[test]
    fn exit_codes_follow_the_cause() {
        let timed_out = CliError::Command {
            context: "exec".into(),
            source: CommandError::TimedOut {
                program: "sleep".into(),
                timeout: std::time::Duration::from_secs(1),
                lingering: None,
            },
        };
        assert_eq!(timed_out.exit_code(), 124);
        assert!(timed_out.to_string().contains("timed out"));
        let missing = CliError::Command {
            context: "exec".into(),
            source: CommandError::NotFound {
                program: "nope".into(),
                searched: vec!["/bin".into()],
            },
        };
        assert_eq!(missing.exit_code(), 127);
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        let hung = CliError::TimedOut {
            what: "realpath",
            after: std::time::Duration::from_millis(1500),
        };
        assert_eq!(hung.exit_code(), 124);
        assert!(
            hung.to_string()
                .starts_with("realpath timed out after 1.5s"),
            "{hung}"
        );
        assert_eq!(CliError::Refused("x".into()).exit_code(), 1);
        let not_exec = CliError::Command {
            context: "exec".into(),
            source: CommandError::Spawn {
                program: "/etc/passwd".into(),
                source: io::Error::from_raw_os_error(13),
            },
        };
        assert_eq!(not_exec.exit_code(), 126);
        let not_mounted = |context| CliError::Mount {
            context,
            source: Box::new(MountError::NotMounted {
                target: "/x".into(),
            }),
        };
        assert_eq!(not_mounted("umount").exit_code(), 32);
        assert_eq!(not_mounted("mount").exit_code(), 32);
        assert_eq!(not_mounted("is-mountpoint").exit_code(), 1);
        let relative = CliError::Mount {
            context: "mount",
            source: Box::new(MountError::InvalidInput {
                path: "x".into(),
                reason: "relative",
            }),
        };
        assert_eq!(relative.exit_code(), 2);
        let pipe = CliError::Output(io::Error::from(io::ErrorKind::BrokenPipe));
        assert_eq!(pipe.exit_code(), 141);
        assert!(pipe.is_silent());
    }

    #[test]
    fn one_line_joins_causes_once() {
        let e = CliError::Command {
            context: "exec".into(),
            source: CommandError::Spawn {
                program: "/bin/x".into(),
                source: io::Error::from_raw_os_error(13),
            },
        };
        let line = one_line(&e);
        assert_eq!(line.matches("Permission denied").count(), 1, "{line}");
        assert!(!line.contains('\n'));
        assert!(!line.contains("os error"), "{line}");
        let multi = CliError::Refused("mount: bad option.\n       dmesg(1) may know\n".into());
        assert_eq!(one_line(&multi), "mount: bad option. dmesg(1) may know");
    }

    #[test]
    fn host_errors_name_flags_and_missing_capabilities() {
        let time = CliError::Host(NsEnterError::Unsupported {
            ns: Namespace::Time,
            reason: "x".into(),
        });
        assert!(time
            .to_string()
            .starts_with("--ns time needs --launcher nsenter"));
        let needs = CliError::Host(NsEnterError::NeedsHostThread { what: "stat" });
        assert_eq!(needs.to_string(), "stat needs --launcher host-thread");
        for e in [&time, &needs] {
            assert!(!e.to_string().contains("::"), "{e}");
        }
        let full = Some(u64::MAX);
        assert!(capability_hint(&full).starts_with("hostexec has CAP_SYS_ADMIN"));
        let no_ptrace = Some(!(1u64 << 19));
        assert!(
            capability_hint(&no_ptrace).starts_with("hostexec lacks CAP_SYS_PTRACE;"),
            "{}",
            capability_hint(&no_ptrace)
        );
        let none = Some(0);
        assert!(capability_hint(&none)
            .starts_with("hostexec lacks CAP_SYS_ADMIN and CAP_SYS_PTRACE and CAP_SYS_CHROOT"));
        let denied = CliError::Host(NsEnterError::Join {
            ns: Namespace::Mount,
            source: io::Error::from_raw_os_error(1),
        });
        let text = denied.to_string();
        assert!(text.starts_with("cannot join the mnt namespace: Operation not permitted ("));
        assert!(text.contains("CAP_SYS_PTRACE"), "{text}");
    }

    #[test]
    fn errno_suffixes_go_but_other_parentheses_stay() {
        assert_eq!(
            strip_errno_suffixes("a: No such file (os error 2): b (os error x) (os error 13)"),
            "a: No such file: b (os error x)"
        );
    }
}
