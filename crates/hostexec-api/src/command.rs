//! [`HostCommand`]: what to run on the host, and how.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default cap on the bytes captured per output stream: 16 MiB.
pub const DEFAULT_CAPTURE_LIMIT: usize = 16 * 1024 * 1024;

/// Default time between SIGTERM and SIGKILL when a command is stopped.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// Default time to keep reading output after the command itself exited, while a
/// grandchild (a FUSE daemon, a mount helper) still holds the pipes open.
pub const DEFAULT_WAIT_DELAY: Duration = Duration::from_secs(1);

/// Where a command's standard input comes from.
///
/// `#[non_exhaustive]`: more sources may come (a terminal, a descriptor); a backend that meets
/// one it does not support refuses the command with [`CommandError::InvalidInput`](crate::CommandError::InvalidInput).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stdin {
    /// `/dev/null` (the default).
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// The caller's own standard input.
    Inherit,
}

impl fmt::Debug for Stdin {
    // Bytes on stdin can be secrets (a key for cryptsetup): show their length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Null => f.write_str("Null"),
            Stdin::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Stdin::Inherit => f.write_str("Inherit"),
        }
    }
}

/// Where a command's standard output or standard error goes.
///
/// `#[non_exhaustive]`: more destinations may come; a backend that meets one it does not
/// support refuses the command with [`CommandError::InvalidInput`](crate::CommandError::InvalidInput).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutputMode {
    /// Captured into [`Output`](crate::Output), up to the capture limit (the default).
    Capture,
    /// The caller's own stream.
    Inherit,
    /// `/dev/null`.
    Null,
}

/// One argument, with the text that stands for it wherever it is shown.
#[derive(Clone, PartialEq, Eq)]
struct Arg {
    value: OsString,
    /// `Some` for an argument that carries a secret: what logs, errors and `Debug` show instead.
    shown: Option<String>,
}

/// Changes to the environment the command inherits from the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvChanges {
    /// Start from an empty environment instead of the caller's.
    pub clear: bool,
    /// `Some(value)` sets a variable, `None` removes it. Applied after `clear`.
    pub vars: BTreeMap<OsString, Option<OsString>>,
}

/// A command to run on the host: program, arguments, environment, working directory,
/// standard streams, timeout and capture limit.
///
/// Arguments are passed to the program as they are, byte for byte: no shell ever sees them.
/// A bare program name (`mount`) is looked up among the host's binaries; a path with a slash
/// (`/usr/bin/mount`) is used as given, in the host's view.
///
/// ```
/// use std::time::Duration;
/// use hostexec_api::{HostCommand, Stdin};
///
/// let cmd = HostCommand::new("mount")
///     .args(["-t", "tmpfs", "tmpfs", "/mnt/scratch"])
///     .env("LC_ALL", "C")
///     .stdin(Stdin::Null)
///     .timeout(Duration::from_secs(30));
/// assert_eq!(cmd.get_program(), "mount");
/// assert_eq!(cmd.get_args().count(), 4);
/// ```
///
/// An argument that carries a secret is added with [`HostCommand::arg_masked`]; it reaches the
/// program unchanged, but `Debug` and [`HostCommand::display_args`] show the masked text:
///
/// ```
/// use hostexec_api::HostCommand;
///
/// let cmd = HostCommand::new("mount").arg("-o").arg_masked("ro,password=hunter2", "ro,<masked>");
/// assert!(!format!("{cmd:?}").contains("hunter2"));
/// assert_eq!(cmd.get_args().nth(1).unwrap(), "ro,password=hunter2");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HostCommand {
    program: OsString,
    args: Vec<Arg>,
    env: EnvChanges,
    cwd: Option<PathBuf>,
    stdin: Stdin,
    stdout: OutputMode,
    stderr: OutputMode,
    timeout: Option<Duration>,
    capture_limit: usize,
    kill_grace: Duration,
    wait_delay: Duration,
}

impl HostCommand {
    /// A command that runs `program` with no arguments, the caller's environment, the host's
    /// `/` as working directory, stdin from `/dev/null`, stdout and stderr captured, no timeout.
    pub fn new(program: impl Into<OsString>) -> Self {
        HostCommand {
            program: program.into(),
            args: Vec::new(),
            env: EnvChanges::default(),
            cwd: None,
            stdin: Stdin::Null,
            stdout: OutputMode::Capture,
            stderr: OutputMode::Capture,
            timeout: None,
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            kill_grace: DEFAULT_KILL_GRACE,
            wait_delay: DEFAULT_WAIT_DELAY,
        }
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(Arg {
            value: arg.into(),
            shown: None,
        });
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(|a| Arg {
            value: a.into(),
            shown: None,
        }));
        self
    }

    /// Appends an argument that carries a secret. The program receives `arg`; everything that
    /// shows the command (`Debug`, [`HostCommand::display_args`], errors, logs) shows `shown`.
    pub fn arg_masked(mut self, arg: impl Into<OsString>, shown: impl Into<String>) -> Self {
        self.args.push(Arg {
            value: arg.into(),
            shown: Some(shown.into()),
        });
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.vars.insert(key.into(), Some(value.into()));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.vars.insert(key.into(), None);
        self
    }

    /// Starts from an empty environment; variables set with [`HostCommand::env`] still apply.
    pub fn env_clear(mut self) -> Self {
        self.env.clear = true;
        self.env.vars.retain(|_, v| v.is_some());
        self
    }

    /// Sets the working directory, a path in the host's view (default: the host's `/`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets standard input.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Sets where standard output goes.
    pub fn stdout(mut self, mode: OutputMode) -> Self {
        self.stdout = mode;
        self
    }

    /// Sets where standard error goes.
    pub fn stderr(mut self, mode: OutputMode) -> Self {
        self.stderr = mode;
        self
    }

    /// Stops the command (its whole process group) if it has not finished after `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Caps the bytes captured per stream; beyond it output is dropped and flagged
    /// ([`Output::stdout_truncated`](crate::Output::stdout_truncated)). Default 16 MiB.
    pub fn capture_limit(mut self, bytes: usize) -> Self {
        self.capture_limit = bytes;
        self
    }

    /// Time between SIGTERM and SIGKILL when the command is stopped. Default 2 s.
    pub fn kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// How long to keep reading captured output after the command exited while something it
    /// started still holds the pipes open. Default 1 s; what was read by then is returned.
    pub fn wait_delay(mut self, delay: Duration) -> Self {
        self.wait_delay = delay;
        self
    }

    /// The program, as given.
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The arguments, as the program receives them (secrets included).
    pub fn get_args(&self) -> impl ExactSizeIterator<Item = &OsStr> + '_ {
        self.args.iter().map(|a| a.value.as_os_str())
    }

    /// The arguments as they may be shown: masked arguments replaced by their shown text,
    /// the others converted lossily to UTF-8.
    pub fn display_args(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| match &a.shown {
                Some(s) => s.clone(),
                None => a.value.to_string_lossy().into_owned(),
            })
            .collect()
    }

    /// True if any argument was added with [`HostCommand::arg_masked`].
    pub fn has_masked_args(&self) -> bool {
        self.args.iter().any(|a| a.shown.is_some())
    }

    /// The environment changes.
    pub fn get_env(&self) -> &EnvChanges {
        &self.env
    }

    /// The working directory in the host's view, if set.
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }

    /// Standard input.
    pub fn get_stdin(&self) -> &Stdin {
        &self.stdin
    }

    /// Where standard output goes.
    pub fn get_stdout(&self) -> OutputMode {
        self.stdout
    }

    /// Where standard error goes.
    pub fn get_stderr(&self) -> OutputMode {
        self.stderr
    }

    /// The timeout, if set.
    pub fn get_timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The cap on captured bytes per stream.
    pub fn get_capture_limit(&self) -> usize {
        self.capture_limit
    }

    /// Time between SIGTERM and SIGKILL.
    pub fn get_kill_grace(&self) -> Duration {
        self.kill_grace
    }

    /// How long output is still read after the command exited.
    pub fn get_wait_delay(&self) -> Duration {
        self.wait_delay
    }

    /// Replaces the program (a backend uses this after looking a bare name up).
    pub fn with_program(mut self, program: impl Into<OsString>) -> Self {
        self.program = program.into();
        self
    }

    /// True if the program is a bare name to be looked up on the host (no `/` in it).
    pub fn program_is_bare_name(&self) -> bool {
        !self.program.as_encoded_bytes().contains(&b'/')
    }

    /// Checks what no backend can run: an empty program, a NUL byte in the program, an
    /// argument, an environment entry or the working directory, a `=` in a variable name,
    /// a relative program path with a slash, a relative working directory.
    pub fn validate(&self) -> Result<(), crate::CommandError> {
        let bad = |reason: String| {
            Err(crate::CommandError::InvalidInput {
                program: self.program.clone(),
                reason,
            })
        };
        let p = self.program.as_encoded_bytes();
        if p.is_empty() {
            return bad("the program name is empty".into());
        }
        if p.contains(&0) {
            return bad("the program name contains a NUL byte".into());
        }
        if p.contains(&b'/') && p[0] != b'/' {
            return bad("a program path must be absolute (or a bare name)".into());
        }
        if let Some(i) = self
            .args
            .iter()
            .position(|a| a.value.as_encoded_bytes().contains(&0))
        {
            return bad(format!("argument {} contains a NUL byte", i + 1));
        }
        for (k, v) in &self.env.vars {
            let kb = k.as_encoded_bytes();
            if kb.is_empty() || kb.contains(&0) || kb.contains(&b'=') {
                return bad(format!(
                    "invalid environment variable name {:?}",
                    k.to_string_lossy()
                ));
            }
            if v.as_ref()
                .is_some_and(|v| v.as_encoded_bytes().contains(&0))
            {
                return bad(format!(
                    "environment variable {} contains a NUL byte",
                    k.to_string_lossy()
                ));
            }
        }
        if let Some(cwd) = &self.cwd {
            let b = cwd.as_os_str().as_encoded_bytes();
            if b.first() != Some(&b'/') {
                return bad("the working directory must be an absolute host path".into());
            }
            if b.contains(&0) {
                return bad("the working directory contains a NUL byte".into());
            }
        }
        Ok(())
    }
}

impl fmt::Debug for HostCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCommand")
            .field("program", &self.program)
            .field("args", &self.display_args())
            .field("env", &self.env)
            .field("cwd", &self.cwd)
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .field("timeout", &self.timeout)
            .field("capture_limit", &self.capture_limit)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HostCommand {
    /// The command line as it may be shown in a log: program and shown arguments, each quoted
    /// when it holds a space or a quote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", quote(&self.program.to_string_lossy()))?;
        for a in self.display_args() {
            write!(f, " {}", quote(&a))?;
        }
        Ok(())
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'\'' && b != b'"' && b != b'\\')
    {
        s.to_owned()
    } else {
        format!("{s:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_records_everything() {
        let cmd = HostCommand::new("/bin/echo")
            .arg("a b")
            .args(["$(id)", ""])
            .env("K", "V")
            .env_remove("PATH")
            .current_dir("/var")
            .stdin(Stdin::Bytes(b"in".to_vec()))
            .stdout(OutputMode::Inherit)
            .stderr(OutputMode::Null)
            .timeout(Duration::from_millis(5))
            .capture_limit(10)
            .kill_grace(Duration::from_millis(7));
        assert_eq!(cmd.get_program(), "/bin/echo");
        assert_eq!(
            cmd.get_args().collect::<Vec<_>>(),
            vec![OsStr::new("a b"), OsStr::new("$(id)"), OsStr::new("")]
        );
        assert_eq!(cmd.get_env().vars[OsStr::new("K")], Some("V".into()));
        assert_eq!(cmd.get_env().vars[OsStr::new("PATH")], None);
        assert!(!cmd.get_env().clear);
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/var")));
        assert_eq!(cmd.get_stdin(), &Stdin::Bytes(b"in".to_vec()));
        assert_eq!(cmd.get_stdout(), OutputMode::Inherit);
        assert_eq!(cmd.get_stderr(), OutputMode::Null);
        assert_eq!(cmd.get_timeout(), Some(Duration::from_millis(5)));
        assert_eq!(cmd.get_capture_limit(), 10);
        assert_eq!(cmd.get_kill_grace(), Duration::from_millis(7));
        assert!(!cmd.program_is_bare_name());
        assert!(cmd.validate().is_ok());
    }

    #[test]
    fn defaults() {
        let cmd = HostCommand::new("true");
        assert_eq!(cmd.get_stdin(), &Stdin::Null);
        assert_eq!(cmd.get_stdout(), OutputMode::Capture);
        assert_eq!(cmd.get_stderr(), OutputMode::Capture);
        assert_eq!(cmd.get_timeout(), None);
        assert_eq!(cmd.get_capture_limit(), DEFAULT_CAPTURE_LIMIT);
        assert!(cmd.program_is_bare_name());
    }

    #[test]
    fn env_clear_drops_pending_removals_keeps_sets() {
        let cmd = HostCommand::new("env")
            .env("A", "1")
            .env_remove("B")
            .env_clear()
            .env("C", "3");
        assert!(cmd.get_env().clear);
        assert_eq!(cmd.get_env().vars.len(), 2);
        assert!(!cmd.get_env().vars.contains_key(OsStr::new("B")));
    }

    #[test]
    fn masked_args_never_shown() {
        let cmd = HostCommand::new("mount")
            .arg("-o")
            .arg_masked("user=a,password=s3cr3t", "<masked>,<masked>")
            .stdin(Stdin::Bytes(b"s3cr3t".to_vec()));
        let dbg = format!("{cmd:?}");
        let disp = cmd.to_string();
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(!disp.contains("s3cr3t"), "{disp}");
        assert!(disp.contains("<masked>,<masked>"), "{disp}");
        assert!(cmd.has_masked_args());
        assert_eq!(
            cmd.get_args().nth(1),
            Some(OsStr::new("user=a,password=s3cr3t"))
        );
    }

    #[test]
    fn display_quotes_spaces() {
        let cmd = HostCommand::new("echo").args(["a b", "c", ""]);
        assert_eq!(cmd.to_string(), r#"echo "a b" c """#);
    }

    #[test]
    fn validate_rejects_bad_input() {
        use std::os::unix::ffi::OsStrExt;
        let cases = [
            HostCommand::new(""),
            HostCommand::new("a\0b"),
            HostCommand::new("bin/ls"),
            HostCommand::new("ls").arg(OsStr::from_bytes(b"x\0y")),
            HostCommand::new("ls").env("A=B", "c"),
            HostCommand::new("ls").env("", "c"),
            HostCommand::new("ls").env("A", OsStr::from_bytes(b"\0")),
            HostCommand::new("ls").current_dir("relative"),
            HostCommand::new("ls").current_dir(OsStr::from_bytes(b"/a\0")),
        ];
        for c in cases {
            match c.validate() {
                Err(crate::CommandError::InvalidInput { .. }) => {}
                other => panic!("{c:?}: {other:?}"),
            }
        }
        assert!(HostCommand::new("ls")
            .arg(OsStr::from_bytes(b"\xff\xfe"))
            .validate()
            .is_ok());
    }
}
