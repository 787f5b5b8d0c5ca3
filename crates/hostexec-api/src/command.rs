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

/// The `PATH` of a host command unless the caller sets one: the host's standard binary
/// directories, as `sudo`'s `secure_path` and systemd's default `PATH` on a merged or split
/// `/usr`. The same directories as [`HOST_BIN_DIRS`](crate::HOST_BIN_DIRS) without `/`.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a command's environment starts from, before the variables of [`EnvChanges`] apply.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EnvBase {
    /// Only `PATH=`[`HOST_PATH`]: nothing of the caller's (the default).
    #[default]
    Minimal,
    /// Nothing at all ([`HostCommand::env_clear`]).
    Empty,
    /// The caller's whole environment ([`HostCommand::inherit_env`]).
    Caller,
}

/// What [`EnvChanges`] does to one variable.
#[non_exhaustive]
#[derive(Clone, PartialEq, Eq)]
pub enum EnvVar {
    /// Set to this value.
    Set(OsString),
    /// Set to this value, a secret: `Debug` shows `<masked>` ([`HostCommand::env_masked`]).
    Masked(OsString),
    /// The caller's value, when the caller has the variable; else unset
    /// ([`HostCommand::env_from_caller`]).
    FromCaller,
    /// Removed ([`HostCommand::env_remove`]).
    Removed,
}

impl EnvVar {
    /// The value set ([`EnvVar::Set`] or [`EnvVar::Masked`]), secrets included.
    pub fn value(&self) -> Option<&OsStr> {
        match self {
            EnvVar::Set(v) | EnvVar::Masked(v) => Some(v),
            EnvVar::FromCaller | EnvVar::Removed => None,
        }
    }
}

impl fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvVar::Set(v) => write!(f, "{v:?}"),
            EnvVar::Masked(_) => f.write_str(MASKED),
            EnvVar::FromCaller => f.write_str("<from caller>"),
            EnvVar::Removed => f.write_str("<removed>"),
        }
    }
}

/// What `Debug` shows for a masked environment value.
const MASKED: &str = "<masked>";

/// A command's environment: what it starts from ([`EnvBase`]) and the variables set, masked,
/// taken from the caller or removed on top of that. Built with [`HostCommand::env`] and its
/// siblings; [`EnvChanges::apply`] computes the final environment.
///
/// `Debug` shows masked values as `<masked>`:
///
/// ```
/// use hostexec_api::{EnvBase, EnvVar, HostCommand};
///
/// let cmd = HostCommand::new("mount.cifs").env("LC_ALL", "C").env_masked("PASSWD", "hunter2");
/// let env = cmd.get_env();
/// assert_eq!(env.base(), EnvBase::Minimal);
/// assert_eq!(env.get("PASSWD"), Some(&EnvVar::Masked("hunter2".into())));
/// assert!(!format!("{env:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvChanges {
    base: EnvBase,
    vars: BTreeMap<OsString, EnvVar>,
}

impl EnvChanges {
    /// What the environment starts from.
    pub fn base(&self) -> EnvBase {
        self.base
    }

    /// The change to the variable `name`, if any.
    pub fn get(&self, name: impl AsRef<OsStr>) -> Option<&EnvVar> {
        self.vars.get(name.as_ref())
    }

    /// Every change, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&OsStr, &EnvVar)> + '_ {
        self.vars.iter().map(|(k, v)| (k.as_os_str(), v))
    }

    /// True if a value was set with [`HostCommand::env_masked`].
    pub fn has_masked(&self) -> bool {
        self.vars.values().any(|v| matches!(v, EnvVar::Masked(_)))
    }

    /// True if the final environment depends on the caller's ([`EnvBase::Caller`] or an
    /// [`EnvVar::FromCaller`] variable).
    pub fn reads_caller(&self) -> bool {
        self.base == EnvBase::Caller || self.vars.values().any(|v| *v == EnvVar::FromCaller)
    }

    /// The environment the command gets, sorted by name: the base ([`EnvBase`]), then each
    /// change. `caller` gives the caller's environment (pass [`std::env::vars_os`]); it is
    /// called only when [`EnvChanges::reads_caller`], and this function does nothing else
    /// outside its arguments: every backend computes a command's environment here, so they
    /// all agree.
    ///
    /// ```
    /// use std::ffi::OsString;
    /// use hostexec_api::{HostCommand, HOST_PATH};
    ///
    /// let caller = || vec![
    ///     (OsString::from("LD_PRELOAD"), OsString::from("/tmp/evil.so")),
    ///     (OsString::from("HOME"), OsString::from("/root")),
    /// ];
    /// let env = |cmd: HostCommand| cmd.get_env().apply(caller);
    /// let pairs = |v: &[(&str, &str)]| -> Vec<(OsString, OsString)> {
    ///     v.iter().map(|(k, v)| (k.into(), v.into())).collect()
    /// };
    /// // By default: PATH only, nothing of the caller's.
    /// assert_eq!(env(HostCommand::new("true")), pairs(&[("PATH", HOST_PATH)]));
    /// // Chosen variables of the caller, and set ones.
    /// assert_eq!(
    ///     env(HostCommand::new("true").env_from_caller("HOME").env_from_caller("TERM").env("LC_ALL", "C")),
    ///     pairs(&[("HOME", "/root"), ("LC_ALL", "C"), ("PATH", HOST_PATH)]),
    /// );
    /// // Everything of the caller's, when asked for.
    /// assert_eq!(
    ///     env(HostCommand::new("true").inherit_env().env_remove("HOME")),
    ///     pairs(&[("LD_PRELOAD", "/tmp/evil.so")]),
    /// );
    /// ```
    pub fn apply<I>(&self, caller: impl FnOnce() -> I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        let caller_env: Option<BTreeMap<OsString, OsString>> =
            self.reads_caller().then(|| caller().into_iter().collect());
        // With the caller's environment as the base, a variable taken from the caller is
        // already there; otherwise it is looked up in `from_caller`.
        let (mut env, mut from_caller) = match self.base {
            EnvBase::Minimal => (
                BTreeMap::from([(OsString::from("PATH"), OsString::from(HOST_PATH))]),
                caller_env,
            ),
            EnvBase::Empty => (BTreeMap::new(), caller_env),
            EnvBase::Caller => (caller_env.unwrap_or_default(), None),
        };
        for (k, v) in &self.vars {
            match v {
                EnvVar::Set(v) | EnvVar::Masked(v) => {
                    env.insert(k.clone(), v.clone());
                }
                EnvVar::Removed => {
                    env.remove(k);
                }
                EnvVar::FromCaller => {
                    if let Some(c) = from_caller.as_mut() {
                        match c.remove(k) {
                            Some(v) => env.insert(k.clone(), v),
                            None => env.remove(k),
                        };
                    }
                }
            }
        }
        env.into_iter().collect()
    }
}

impl fmt::Debug for EnvChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvChanges")
            .field("base", &self.base)
            .field("vars", &self.vars)
            .finish()
    }
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
    controlling_tty: Option<PathBuf>,
}

impl HostCommand {
    /// A command that runs `program` with no arguments, the minimal environment
    /// (`PATH=`[`HOST_PATH`], nothing of the caller's), the target's working directory (the
    /// host's `/`; a target process's own, as `nsenter -w`, where a backend targets one), stdin from `/dev/null`, stdout and stderr captured, no timeout.
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
            controlling_tty: None,
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
    ///
    /// A command's environment starts from `PATH=`[`HOST_PATH`] alone, never from the caller's
    /// (see [`EnvChanges::apply`]): as `sudo` and `systemd-run` do, nothing of the container's
    /// environment (`LD_PRELOAD`, `LD_LIBRARY_PATH`, a `PATH` of container directories) reaches
    /// a host program unless asked for with [`HostCommand::env_from_caller`] or
    /// [`HostCommand::inherit_env`].
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.vars.insert(key.into(), EnvVar::Set(value.into()));
        self
    }

    /// Sets an environment variable that carries a secret (`PASSWD` for `mount.cifs`). The
    /// program receives `value`; `Debug`, errors and logs show `<masked>` (and `Display`
    /// shows no environment at all).
    ///
    /// ```
    /// use hostexec_api::HostCommand;
    ///
    /// let cmd = HostCommand::new("mount.cifs").env_masked("PASSWD", "hunter2");
    /// assert!(!format!("{cmd:?}").contains("hunter2"));
    /// assert_eq!(cmd.get_env().get("PASSWD").and_then(|v| v.value()), Some("hunter2".as_ref()));
    /// ```
    pub fn env_masked(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env
            .vars
            .insert(key.into(), EnvVar::Masked(value.into()));
        self
    }

    /// Passes the caller's value of `key` on (nothing, when the caller does not have it),
    /// as `sudo`'s `env_keep`. The value is read when the command runs.
    pub fn env_from_caller(mut self, key: impl Into<OsString>) -> Self {
        self.env.vars.insert(key.into(), EnvVar::FromCaller);
        self
    }

    /// Starts from the caller's whole environment instead of the minimal one; variables set,
    /// removed or masked still apply. The caller's `PATH`, `LD_PRELOAD`, `LD_LIBRARY_PATH` and
    /// paths name files in the *caller's* view, which the host reads as host paths: pass only
    /// an environment meant for the host.
    pub fn inherit_env(mut self) -> Self {
        self.env.base = EnvBase::Caller;
        self
    }

    /// Removes an environment variable (from the minimal `PATH`, or from the caller's
    /// environment with [`HostCommand::inherit_env`]).
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.vars.insert(key.into(), EnvVar::Removed);
        self
    }

    /// Starts from an empty environment, without even `PATH`; variables set, masked or taken
    /// from the caller still apply.
    pub fn env_clear(mut self) -> Self {
        self.env.base = EnvBase::Empty;
        self.env.vars.retain(|_, v| *v != EnvVar::Removed);
        self
    }

    /// Sets the working directory, a path in the host's view (default: the host's `/`, or a
    /// target process's working directory where the backend targets a process).
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

    /// Runs the command as the leader of a new session (`setsid(2)`) whose controlling
    /// terminal is `terminal`, a terminal device named in the host's view (a pty's
    /// `/dev/pts/N`), as a login or `setsid -c` does: job control, the terminal's signals
    /// (Ctrl-C, Ctrl-Z, a hang-up) and `tty(1)` then work as on a console.
    ///
    /// The terminal is opened in the child, after its `setsid` and without `O_NOCTTY`
    /// (`open(2)`: the first terminal a session leader without one opens becomes its
    /// controlling terminal), and is its standard input, output and error: the
    /// [`stdin`](Self::stdin), [`stdout`](Self::stdout) and [`stderr`](Self::stderr) settings
    /// are ignored and nothing is captured. The command is still its own process group (the
    /// session's), so a timeout or a drop stops it and what it started as without the option.
    ///
    /// # Contract
    /// A backend that cannot give a command a controlling terminal refuses it with
    /// [`CommandError::InvalidInput`](crate::CommandError::InvalidInput) before starting
    /// anything. An exit by a signal is reported as [`ExitStatus::Signal`](crate::ExitStatus::Signal),
    /// as for any command.
    ///
    /// ```
    /// use hostexec_api::HostCommand;
    ///
    /// let cmd = HostCommand::new("bash").controlling_tty("/dev/pts/3");
    /// assert_eq!(cmd.get_controlling_tty(), Some(std::path::Path::new("/dev/pts/3")));
    /// ```
    pub fn controlling_tty(mut self, terminal: impl Into<PathBuf>) -> Self {
        self.controlling_tty = Some(terminal.into());
        self
    }

    /// The terminal set by [`controlling_tty`](Self::controlling_tty), if any.
    pub fn get_controlling_tty(&self) -> Option<&Path> {
        self.controlling_tty.as_deref()
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

    /// The environment: its base and changes (see [`HostCommand::final_env`] for the result).
    pub fn get_env(&self) -> &EnvChanges {
        &self.env
    }

    /// The environment the command gets: [`EnvChanges::apply`] with the caller's environment
    /// from `caller` (pass [`std::env::vars_os`]). Every backend builds a command's
    /// environment with this and nothing else.
    pub fn final_env<I>(&self, caller: impl FnOnce() -> I) -> Vec<(OsString, OsString)>
    where
        I: IntoIterator<Item = (OsString, OsString)>,
    {
        self.env.apply(caller)
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
    /// a relative program path with a slash, a relative working directory, a relative controlling terminal.
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
            if v.value().is_some_and(|v| v.as_encoded_bytes().contains(&0)) {
                return bad(format!(
                    "environment variable {} contains a NUL byte",
                    k.to_string_lossy()
                ));
            }
        }
        for (path, what) in [
            (&self.cwd, "the working directory"),
            (&self.controlling_tty, "the controlling terminal"),
        ] {
            let Some(b) = path.as_ref().map(|p| p.as_os_str().as_encoded_bytes()) else {
                continue;
            };
            if b.first() != Some(&b'/') {
                return bad(format!("{what} must be an absolute host path"));
            }
            if b.contains(&0) {
                return bad(format!("{what} contains a NUL byte"));
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
            .field("controlling_tty", &self.controlling_tty)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for HostCommand {
    /// The command line as it may be shown in a log: program and shown arguments, each quoted
    /// when it holds a space or a quote. The environment is not shown (`Debug` shows it, with
    /// masked values as `<masked>`).
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
        assert_eq!(cmd.get_env().get("K"), Some(&EnvVar::Set("V".into())));
        assert_eq!(cmd.get_env().get("PATH"), Some(&EnvVar::Removed));
        assert_eq!(cmd.get_env().base(), EnvBase::Minimal);
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
        assert_eq!(cmd.get_env().base(), EnvBase::Empty);
        assert_eq!(cmd.get_env().iter().count(), 2);
        assert_eq!(cmd.get_env().get("B"), None);
        let env = cmd.final_env(Vec::new);
        assert_eq!(
            env,
            [("A".into(), "1".into()), ("C".into(), "3".into())] as [(OsString, OsString); 2]
        );
    }

    fn caller() -> Vec<(OsString, OsString)> {
        [
            ("LD_PRELOAD", "/evil.so"),
            ("PATH", "/container/bin"),
            ("TERM", "xterm"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        v.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn the_default_environment_is_path_alone_and_never_reads_the_caller() {
        let env = HostCommand::new("true").final_env(|| -> Vec<(OsString, OsString)> {
            panic!("the caller's environment was read")
        });
        assert_eq!(env, pairs(&[("PATH", HOST_PATH)]));
        let env = HostCommand::new("true").env("PATH", "/x").final_env(caller);
        assert_eq!(env, pairs(&[("PATH", "/x")]));
        let env = HostCommand::new("true")
            .env_remove("PATH")
            .final_env(caller);
        assert_eq!(env, pairs(&[]));
    }

    #[test]
    fn the_caller_environment_only_when_asked() {
        let chosen = HostCommand::new("true")
            .env_from_caller("TERM")
            .env_from_caller("NOT_SET")
            .final_env(caller);
        assert_eq!(chosen, pairs(&[("PATH", HOST_PATH), ("TERM", "xterm")]));
        // A chosen variable the caller lacks removes the base's.
        let chosen = HostCommand::new("true")
            .env_from_caller("PATH")
            .final_env(Vec::new);
        assert_eq!(chosen, pairs(&[]));
        let all = HostCommand::new("true")
            .inherit_env()
            .env_remove("LD_PRELOAD")
            .env_masked("PASSWD", "s3cr3t")
            .env_from_caller("TERM")
            .final_env(caller);
        assert_eq!(
            all,
            pairs(&[
                ("PASSWD", "s3cr3t"),
                ("PATH", "/container/bin"),
                ("TERM", "xterm")
            ])
        );
        let cleared = HostCommand::new("true")
            .inherit_env()
            .env_remove("X")
            .env_clear()
            .env_from_caller("TERM")
            .final_env(caller);
        assert_eq!(cleared, pairs(&[("TERM", "xterm")]));
    }

    #[test]
    fn masked_env_values_never_shown() {
        let cmd = HostCommand::new("mount.cifs")
            .env("LC_ALL", "C")
            .env_masked("PASSWD", "s3cr3t-pw")
            .env_from_caller("TERM")
            .env_remove("X");
        for shown in [format!("{cmd:?}"), format!("{cmd:#?}"), cmd.to_string()] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
        }
        let dbg = format!("{cmd:?}");
        assert!(dbg.contains(r#""PASSWD": <masked>"#), "{dbg}");
        assert!(dbg.contains(r#""LC_ALL": "C""#), "{dbg}");
        assert!(dbg.contains(r#""TERM": <from caller>"#), "{dbg}");
        assert!(cmd.get_env().has_masked());
        let bad = cmd.clone().env_masked("PASSWD", "s3cr3t\0x");
        let err = bad
            .validate()
            .map(|()| String::new())
            .unwrap_or_else(|e| format!("{e} {e:?}"));
        assert!(err.contains("PASSWD") && !err.contains("s3cr3t"), "{err}");
        assert_eq!(
            cmd.final_env(caller),
            pairs(&[
                ("LC_ALL", "C"),
                ("PASSWD", "s3cr3t-pw"),
                ("PATH", HOST_PATH),
                ("TERM", "xterm")
            ])
        );
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
            HostCommand::new("sh").controlling_tty("pts/3"),
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
