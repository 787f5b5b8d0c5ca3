//! [`FakeExecutor`]: a scripted, recording [`Executor`].

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use hostexec_api::{CommandError, Executor, ExitStatus, HostCommand, Output, OutputMode};

use crate::passthrough;

type Predicate = Arc<dyn Fn(&HostCommand) -> bool + Send + Sync>;
type AnswerFn = Arc<dyn Fn(&HostCommand) -> Result<Output, CommandError> + Send + Sync>;

/// A scripted, recording [`Executor`] for tests that run without root.
///
/// Each expectation says which commands it accepts (program, then optionally the arguments
/// exactly, as a prefix, or by a predicate), how often ([`Expectation::times`], default once)
/// and how it answers ([`Expectation::returns`] and friends, default: exit 0 with no output).
/// A command no expectation accepts is an error of `run` — [`CommandError::Backend`] whose
/// source is an [`UnexpectedCommand`] naming the command (masked arguments masked) and listing
/// what was expected — never a panic, so the code under test sees an ordinary failure (Go's
/// `FakeExec` in `k8s.io/utils/exec/testing` panics instead).
///
/// ```
/// use hostexec_api::{Executor, HostCommand};
/// use hostexec_fake::FakeExecutor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let fake = FakeExecutor::new();
/// fake.expect("uname").args(["-r"]).returns_ok_stdout(b"6.18.0\n");
/// let out = fake.run(HostCommand::new("uname").arg("-r")).await.unwrap();
/// assert_eq!(out.stdout_text(), "6.18.0");
/// assert!(fake.run(HostCommand::new("reboot")).await.is_err());
/// assert_eq!(fake.calls().len(), 2);
/// # fake.no_verify_on_drop();
/// # }
/// ```
///
/// What it does that Go's fakes (`k8s.io/utils/exec/testing`'s `FakeExec`/`FakeCmd`,
/// `NewFakeNsenter`) did not: they ignored the context, dropped stderr in `Output` and
/// `CombinedOutput`, logged the scripted argv instead of the received one, and failed only by
/// panicking.
///
/// - **The whole command is recorded** ([`FakeExecutor::calls`]): the [`HostCommand`] as
///   received, with environment, working directory and stdin, not the scripted argv.
/// - **Stderr and exit status reach the caller** as in any [`Output`]; the capture settings of
///   the command are honoured (a stream that is not captured comes back empty, a capture limit
///   truncates and flags).
/// - **Timeouts are honoured** on tokio's clock: an answer delayed ([`Expectation::after`])
///   beyond the command's timeout is [`CommandError::TimedOut`] at the timeout, so tests with
///   paused time finish at once.
/// - **Commands are validated** like a real backend does ([`HostCommand::validate`]), so a NUL
///   byte in an argument fails the same way under test as in production.
/// - **Unmet expectations are reported** by [`FakeExecutor::verify`] and, unless turned off,
///   when the last clone is dropped; so are commands that were refused, in case the code under
///   test swallowed the error.
/// - **It is safe to share**: `Clone` shares one script, `Send + Sync`, every counter locked.
///
/// With [`FakeExecutor::passthrough`] commands that no expectation accepts run for real in the
/// current namespaces (what Go's `NewFakeNsenter` does), with the real backend's guarantees:
/// process group, timeout and drop kill the group, capped capture.
#[derive(Clone)]
pub struct FakeExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    ordered: bool,
    verify_on_drop: AtomicBool,
}

#[derive(Default)]
struct State {
    expectations: Vec<Expect>,
    /// Ordered mode: expectations before this index are closed.
    cursor: usize,
    calls: Vec<HostCommand>,
    /// Commands refused, as shown in the error.
    refused: Vec<String>,
    passthrough: bool,
    bins: BTreeMap<OsString, PathBuf>,
    host: Option<crate::FakeHost>,
    systemd: bool,
}

/// Which arguments an expectation accepts.
#[derive(Clone)]
enum ArgsMatch {
    Any,
    Exact(Vec<OsString>),
    Prefix(Vec<OsString>),
}

#[derive(Clone)]
enum Answer {
    Output(Output),
    Status {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    Error(Arc<CommandError>),
    With(AnswerFn),
    Passthrough,
}

struct Expect {
    program: Option<OsString>,
    args: ArgsMatch,
    predicates: Vec<Predicate>,
    label: Option<String>,
    min: usize,
    max: Option<usize>,
    calls: usize,
    answer: Answer,
    delay: Option<Duration>,
}

impl Expect {
    fn accepts(&self, cmd: &HostCommand) -> bool {
        if let Some(p) = &self.program {
            if p.as_os_str() != cmd.get_program() {
                return false;
            }
        }
        let args_ok = match &self.args {
            ArgsMatch::Any => true,
            ArgsMatch::Exact(want) => cmd.get_args().eq(want.iter().map(OsString::as_os_str)),
            ArgsMatch::Prefix(want) => {
                cmd.get_args().len() >= want.len()
                    && cmd
                        .get_args()
                        .zip(want.iter())
                        .all(|(got, w)| got == w.as_os_str())
            }
        };
        args_ok && self.predicates.iter().all(|p| p(cmd))
    }

    fn exhausted(&self) -> bool {
        self.max.is_some_and(|m| self.calls >= m)
    }

    fn satisfied(&self) -> bool {
        self.calls >= self.min
    }

    /// The expectation as shown in errors: `mount -t tmpfs tmpfs /mnt (called 0 of 1 times)`.
    fn describe(&self) -> String {
        let program = self
            .program
            .as_ref()
            .map_or_else(|| "<any program>".to_owned(), |p| shown(p));
        let mut s = match &self.args {
            ArgsMatch::Any => format!("{program} <any arguments>"),
            ArgsMatch::Exact(a) if a.is_empty() => format!("{program} <no arguments>"),
            ArgsMatch::Exact(a) => format!("{program} {}", shown_args(a)),
            ArgsMatch::Prefix(a) => format!("{program} {} <more arguments>", shown_args(a)),
        };
        match (&self.label, self.predicates.len()) {
            (Some(l), _) => s.push_str(&format!(" where {l}")),
            (None, 0) => {}
            (None, 1) => s.push_str(" where <a predicate>"),
            (None, n) => s.push_str(&format!(" where <{n} predicates>")),
        }
        let count = match (self.min, self.max) {
            (0, None) => format!("called {} times, any number allowed", self.calls),
            (min, None) => format!("called {} times, at least {min}", self.calls),
            (min, Some(max)) if min == max => format!("called {} of {max} times", self.calls),
            (min, Some(max)) => format!("called {} times, {min} to {max}", self.calls),
        };
        s.push_str(&format!(" ({count})"));
        s
    }
}

fn shown(s: &OsStr) -> String {
    // HostCommand's Display quotes exactly as a log would.
    HostCommand::new(s).to_string()
}

fn shown_args(args: &[OsString]) -> String {
    let cmd = HostCommand::new("x").args(args.iter().cloned());
    let full = cmd.to_string();
    full.strip_prefix("x ").unwrap_or(&full).to_owned()
}

/// A boxed cause copied: an [`UnexpectedCommand`] as itself, anything else as its text and
/// the OS error of its chain (a boxed error cannot be cloned).
fn copy_cause(e: &(dyn std::error::Error + Send + Sync + 'static)) -> hostexec_api::BoxError {
    if let Some(u) = e.downcast_ref::<UnexpectedCommand>() {
        return Box::new(u.clone());
    }
    let mut os = None;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = next {
        if let Some(n) = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            os = Some(std::io::Error::from_raw_os_error(n));
            break;
        }
        next = c.source();
    }
    Box::new(CopiedCause {
        text: e.to_string(),
        os,
    })
}

/// A scripted error's cause, copied (see `copy_cause`).
#[derive(Debug)]
struct CopiedCause {
    text: String,
    os: Option<std::io::Error>,
}

impl fmt::Display for CopiedCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CopiedCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.os.as_ref().map(|e| e as _)
    }
}

/// A new copy of a scripted error, for an expectation answered more than once.
fn copy_error(e: &CommandError) -> CommandError {
    fn copy_io(e: &std::io::Error) -> std::io::Error {
        match e.raw_os_error() {
            Some(n) => std::io::Error::from_raw_os_error(n),
            None => std::io::Error::new(e.kind(), e.to_string()),
        }
    }
    match e {
        CommandError::NotFound { program, searched } => CommandError::NotFound {
            program: program.clone(),
            searched: searched.clone(),
        },
        CommandError::InvalidInput { program, reason } => CommandError::InvalidInput {
            program: program.clone(),
            reason: reason.clone(),
        },
        CommandError::Spawn { program, source } => CommandError::Spawn {
            program: program.clone(),
            source: copy_io(source),
        },
        CommandError::TimedOut { program, timeout } => CommandError::TimedOut {
            program: program.clone(),
            timeout: *timeout,
        },
        CommandError::Failed {
            program,
            status,
            stderr,
        } => CommandError::Failed {
            program: program.clone(),
            status: *status,
            stderr: stderr.clone(),
        },
        CommandError::HostUnavailable { source } => {
            CommandError::host_unavailable(copy_cause(source.as_ref()))
        }
        CommandError::Io { program, source } => CommandError::Io {
            program: program.clone(),
            source: copy_io(source),
        },
        CommandError::Backend { program, source } => {
            CommandError::backend(program.clone(), copy_cause(source.as_ref()))
        }
        // A variant added to the api later: keep its text (and errno, through the chain).
        other => CommandError::backend(OsString::new(), copy_cause(other)),
    }
}

/// The scripted output as the command's capture settings let it through: a stream that is not
/// captured is empty, a captured one is cut at the capture limit and flagged.
fn apply_capture(cmd: &HostCommand, mut out: Output) -> Output {
    let limit = cmd.get_capture_limit();
    for (mode, buf, flag) in [
        (cmd.get_stdout(), &mut out.stdout, &mut out.stdout_truncated),
        (cmd.get_stderr(), &mut out.stderr, &mut out.stderr_truncated),
    ] {
        if mode != OutputMode::Capture {
            buf.clear();
            *flag = false;
        } else if buf.len() > limit {
            buf.truncate(limit);
            *flag = true;
        }
    }
    out
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not make every other check panic too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl FakeExecutor {
    /// An executor whose expectations match in any order.
    pub fn new() -> Self {
        Self::with_mode(false)
    }

    /// An executor whose expectations must be met in the order they were declared. An
    /// expectation that was called at least its minimum number of times may be passed over;
    /// once a later one matched, earlier ones are closed.
    pub fn ordered() -> Self {
        Self::with_mode(true)
    }

    /// An unordered executor that runs every command no expectation accepts for real, in the
    /// current namespaces (what Go's `NewFakeNsenter` does): for tests that want real tools.
    /// The run keeps the [`Executor`] contract: bare names looked up in
    /// [`HOST_BIN_DIRS`](hostexec_api::HOST_BIN_DIRS), its own process group, timeout and
    /// drop kill the group (SIGTERM, then SIGKILL after the kill grace), capped capture,
    /// bounded wait after exit. `look_path` then also searches the real directories.
    ///
    /// One difference from `hostexec-nsenter`: a descriptor that the test process itself
    /// holds without `FD_CLOEXEC` (inherited from whatever started it) is passed on to the
    /// command. Closing it in the child needs a `pre_exec` hook, i.e. `unsafe`, which the
    /// workspace denies outside one item of `hostexec-nsenter`; every descriptor hostexec
    /// opens is `O_CLOEXEC` either way.
    pub fn passthrough() -> Self {
        Self::new().pass_unexpected_through()
    }

    fn with_mode(ordered: bool) -> Self {
        FakeExecutor {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                ordered,
                verify_on_drop: AtomicBool::new(true),
            }),
        }
    }

    /// Runs commands that no expectation accepts for real instead of refusing them (see
    /// [`FakeExecutor::passthrough`]).
    pub fn pass_unexpected_through(self) -> Self {
        self.inner.lock().passthrough = true;
        self
    }

    /// Turns off the check when the last clone is dropped (for every clone); call
    /// [`FakeExecutor::verify`] yourself instead. At construction,
    /// `FakeExecutor::new().no_verify_on_drop()`, or at the end of a test.
    pub fn no_verify_on_drop(self) -> Self {
        self.inner.verify_on_drop.store(false, Ordering::Relaxed);
        self
    }

    /// Adds an expectation for `program` (compared exactly with [`HostCommand::get_program`]:
    /// `mount` does not accept `/usr/bin/mount`). Without more, it accepts any arguments once
    /// and answers exit 0 with no output.
    pub fn expect(&self, program: impl Into<OsString>) -> Expectation {
        self.push(Some(program.into()))
    }

    /// Adds an expectation for any program; narrow it with [`Expectation::matching`].
    pub fn expect_any(&self) -> Expectation {
        self.push(None)
    }

    fn push(&self, program: Option<OsString>) -> Expectation {
        let mut st = self.inner.lock();
        st.expectations.push(Expect {
            program,
            args: ArgsMatch::Any,
            predicates: Vec::new(),
            label: None,
            min: 1,
            max: Some(1),
            calls: 0,
            answer: Answer::Status {
                status: ExitStatus::Code(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
            },
            delay: None,
        });
        Expectation {
            inner: Arc::clone(&self.inner),
            index: st.expectations.len() - 1,
        }
    }

    /// Makes `look_path(name)` (and nothing else) find `path`. `path` is a host path; with a
    /// bare name, the binary is taken to be in `/usr/bin`.
    pub fn with_bin(self, path: impl AsRef<Path>) -> Self {
        let path = path.as_ref();
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            Path::new("/usr/bin").join(path)
        };
        if let Some(name) = full.file_name() {
            let name = name.to_os_string();
            self.inner.lock().bins.insert(name, full);
        }
        self
    }

    /// [`FakeExecutor::with_bin`] for several binaries.
    pub fn with_bins<I, P>(self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        paths.into_iter().fold(self, |f, p| f.with_bin(p))
    }

    /// Answers `look_path` from `host`'s bin directories (after binaries added with
    /// [`FakeExecutor::with_bin`]); see [`FakeHost::bin`](crate::FakeHost::bin).
    pub fn with_host(self, host: &crate::FakeHost) -> Self {
        self.inner.lock().host = Some(host.clone());
        self
    }

    /// What [`Executor::supports_systemd`] answers (default `false`).
    pub fn with_systemd(self, supported: bool) -> Self {
        self.inner.lock().systemd = supported;
        self
    }

    /// Every command received, in order, as received (refused and invalid ones included).
    pub fn calls(&self) -> Vec<HostCommand> {
        self.inner.lock().calls.clone()
    }

    /// The commands that were refused, as shown in their errors.
    pub fn refused(&self) -> Vec<String> {
        self.inner.lock().refused.clone()
    }

    /// Checks that every expectation was called at least its minimum number of times and that
    /// no command was refused.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let st = self.inner.lock();
        let unmet: Vec<String> = st
            .expectations
            .iter()
            .filter(|e| !e.satisfied())
            .map(Expect::describe)
            .collect();
        if unmet.is_empty() && st.refused.is_empty() {
            Ok(())
        } else {
            Err(VerifyError {
                unmet,
                refused: st.refused.clone(),
            })
        }
    }

    /// Picks the expectation for `cmd` (and counts the call), or says why there is none.
    fn select(&self, st: &mut State, cmd: &HostCommand) -> Result<Option<usize>, Vec<String>> {
        let n = st.expectations.len();
        if self.inner.ordered {
            let mut i = st.cursor;
            while i < n {
                let e = &st.expectations[i];
                if !e.exhausted() && e.accepts(cmd) {
                    st.cursor = i;
                    st.expectations[i].calls += 1;
                    return Ok(Some(i));
                }
                if !e.satisfied() {
                    break;
                }
                i += 1;
            }
            if st.passthrough {
                return Ok(None);
            }
            let list = st.expectations[st.cursor..]
                .iter()
                .enumerate()
                .map(|(k, e)| {
                    let next = if st.cursor + k == i {
                        "next in order: "
                    } else {
                        ""
                    };
                    format!("{next}{}", e.describe())
                })
                .collect();
            Err(list)
        } else {
            if let Some(i) = st
                .expectations
                .iter()
                .position(|e| !e.exhausted() && e.accepts(cmd))
            {
                st.expectations[i].calls += 1;
                return Ok(Some(i));
            }
            if st.passthrough {
                return Ok(None);
            }
            Err(st
                .expectations
                .iter()
                .map(|e| {
                    if e.exhausted() && e.accepts(cmd) {
                        format!("{} — no more calls allowed", e.describe())
                    } else {
                        e.describe()
                    }
                })
                .collect())
        }
    }
}

impl Default for FakeExecutor {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("FakeExecutor")
            .field("ordered", &self.inner.ordered)
            .field("passthrough", &st.passthrough)
            .field(
                "expectations",
                &st.expectations
                    .iter()
                    .map(Expect::describe)
                    .collect::<Vec<_>>(),
            )
            .field("calls", &st.calls.len())
            .field("refused", &st.refused)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.verify_on_drop.load(Ordering::Relaxed) || std::thread::panicking() {
            return;
        }
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        let unmet: Vec<String> = st
            .expectations
            .iter()
            .filter(|e| !e.satisfied())
            .map(Expect::describe)
            .collect();
        if !unmet.is_empty() || !st.refused.is_empty() {
            let err = VerifyError {
                unmet,
                refused: std::mem::take(&mut st.refused),
            };
            // The one panic of this crate: a test double dropped with its script unmet is a
            // failed test (turn it off with no_verify_on_drop).
            panic!("{err} (FakeExecutor checked on drop; see no_verify_on_drop)");
        }
    }
}

#[async_trait]
impl Executor for FakeExecutor {
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
        self.inner.lock().calls.push(cmd.clone());
        // Invalid input fails as on a real backend, before any expectation is used up.
        cmd.validate()?;
        let picked = {
            let mut st = self.inner.lock();
            let picked = self.select(&mut st, &cmd);
            match picked {
                Ok(Some(i)) => {
                    let e = &st.expectations[i];
                    Some((e.answer.clone(), e.delay))
                }
                Ok(None) => None,
                Err(expected) => {
                    let command = cmd.to_string();
                    st.refused.push(command.clone());
                    return Err(CommandError::backend(
                        cmd.get_program(),
                        UnexpectedCommand { command, expected },
                    ));
                }
            }
        };
        let Some((answer, delay)) = picked else {
            return passthrough::run(&cmd).await;
        };
        if let Some(delay) = delay {
            match cmd.get_timeout() {
                Some(t) if delay > t => {
                    tokio::time::sleep(t).await;
                    return Err(CommandError::TimedOut {
                        program: cmd.get_program().to_os_string(),
                        timeout: t,
                    });
                }
                _ => tokio::time::sleep(delay).await,
            }
        }
        let out = match answer {
            Answer::Output(out) => out,
            Answer::Status {
                status,
                stdout,
                stderr,
            } => Output::new(cmd.get_program(), status)
                .with_stdout(stdout)
                .with_stderr(stderr),
            Answer::Error(e) => return Err(copy_error(&e)),
            Answer::With(f) => f(&cmd)?,
            Answer::Passthrough => return passthrough::run(&cmd).await,
        };
        Ok(apply_capture(&cmd, out))
    }

    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        let (bin, host, real) = {
            let st = self.inner.lock();
            (st.bins.get(name).cloned(), st.host.clone(), st.passthrough)
        };
        if let Some(p) = bin {
            return Ok(p);
        }
        if let Some(host) = host {
            match host.look_path(name) {
                Err(CommandError::NotFound { .. }) if real => {}
                r => return r,
            }
        }
        if real {
            return passthrough::look_path(name);
        }
        Err(CommandError::NotFound {
            program: name.to_os_string(),
            searched: hostexec_api::HOST_BIN_DIRS
                .iter()
                .map(PathBuf::from)
                .collect(),
        })
    }

    async fn supports_systemd(&self) -> bool {
        self.inner.lock().systemd
    }
}

/// The error a [`FakeExecutor`] answers a command with when none of its expectations accepts
/// it: the source of a [`CommandError::Backend`]. A test double's concept, so it lives here
/// and not in the api's contract.
///
/// ```
/// use hostexec_api::{CommandError, Executor, HostCommand};
/// use hostexec_fake::{FakeExecutor, UnexpectedCommand};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let fake = FakeExecutor::new();
/// fake.expect("true");
/// let err = fake.run(HostCommand::new("reboot")).await.unwrap_err();
/// let refused = UnexpectedCommand::of(&err).expect("refused by the script");
/// assert_eq!(refused.command, "reboot");
/// assert_eq!(refused.expected.len(), 1);
/// assert!(err.to_string().starts_with("reboot: unexpected command `reboot`; expected [1] true"));
/// # fake.no_verify_on_drop();
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnexpectedCommand {
    /// The command as it may be shown (masked arguments masked).
    pub command: String,
    /// Why it was refused and what was expected instead, one entry per expectation.
    pub expected: Vec<String>,
}

impl UnexpectedCommand {
    /// The `UnexpectedCommand` inside `err`, if `err` is one.
    pub fn of(err: &CommandError) -> Option<&UnexpectedCommand> {
        match err {
            CommandError::Backend { source, .. } => source.downcast_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for UnexpectedCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unexpected command `{}`; expected ", self.command)?;
        if self.expected.is_empty() {
            return f.write_str("no command");
        }
        for (i, e) in self.expected.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "[{}] {e}", i + 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for UnexpectedCommand {}

/// One expectation of a [`FakeExecutor`], registered when it was created; its methods refine
/// it. It keeps the executor alive while it exists.
pub struct Expectation {
    inner: Arc<Inner>,
    index: usize,
}

impl Expectation {
    fn edit(self, f: impl FnOnce(&mut Expect)) -> Self {
        {
            let mut st = self.inner.lock();
            if let Some(e) = st.expectations.get_mut(self.index) {
                f(e);
            }
        }
        self
    }

    /// Accepts only these arguments, exactly.
    pub fn args<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args = args.into_iter().map(Into::into).collect();
        self.edit(|e| e.args = ArgsMatch::Exact(args))
    }

    /// Accepts only arguments that start with these.
    pub fn args_prefix<I, S>(self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args = args.into_iter().map(Into::into).collect();
        self.edit(|e| e.args = ArgsMatch::Prefix(args))
    }

    /// Accepts only commands for which `pred` is true (in addition to the program and argument
    /// matchers). The predicate runs under the executor's lock: it must not call the executor.
    pub fn matching(self, pred: impl Fn(&HostCommand) -> bool + Send + Sync + 'static) -> Self {
        self.edit(|e| e.predicates.push(Arc::new(pred)))
    }

    /// A text that describes the predicates in messages (`where <label>`).
    pub fn named(self, label: impl Into<String>) -> Self {
        let label = label.into();
        self.edit(|e| e.label = Some(label))
    }

    /// Expects exactly `n` calls (the default is 1). With 0 the expectation never accepts a
    /// command: a matching one is refused, with this expectation listed.
    pub fn times(self, n: usize) -> Self {
        self.edit(|e| {
            e.min = n;
            e.max = Some(n);
        })
    }

    /// Accepts any number of calls, none included.
    pub fn times_any(self) -> Self {
        self.edit(|e| {
            e.min = 0;
            e.max = None;
        })
    }

    /// Expects at least `n` calls, with no upper bound.
    pub fn at_least(self, n: usize) -> Self {
        self.edit(|e| {
            e.min = n;
            e.max = None;
        })
    }

    /// Answers with this output (its capture settings applied: see [`FakeExecutor`]).
    pub fn returns(self, out: Output) -> Self {
        self.edit(|e| e.answer = Answer::Output(out))
    }

    /// Answers exit 0 with this stdout.
    pub fn returns_ok_stdout(self, stdout: impl Into<Vec<u8>>) -> Self {
        let stdout = stdout.into();
        self.edit(|e| {
            e.answer = Answer::Status {
                status: ExitStatus::Code(0),
                stdout,
                stderr: Vec::new(),
            }
        })
    }

    /// Answers with this status and stderr, no stdout (a command that ran and failed).
    pub fn returns_status(self, status: ExitStatus, stderr: impl Into<Vec<u8>>) -> Self {
        let stderr = stderr.into();
        self.edit(|e| {
            e.answer = Answer::Status {
                status,
                stdout: Vec::new(),
                stderr,
            }
        })
    }

    /// Answers with this error (a copy of it for every call).
    pub fn fails_with(self, err: CommandError) -> Self {
        self.edit(|e| e.answer = Answer::Error(Arc::new(err)))
    }

    /// Answers with what `f` makes of the command received. `f` runs outside the executor's
    /// lock (it may use a [`FakeHost`](crate::FakeHost), or even the executor).
    pub fn answer_with(
        self,
        f: impl Fn(&HostCommand) -> Result<Output, CommandError> + Send + Sync + 'static,
    ) -> Self {
        self.edit(|e| e.answer = Answer::With(Arc::new(f)))
    }

    /// Runs the accepted command for real in the current namespaces (see
    /// [`FakeExecutor::passthrough`]).
    pub fn passes_through(self) -> Self {
        self.edit(|e| e.answer = Answer::Passthrough)
    }

    /// Answers after `delay` on tokio's clock. If the command's timeout is shorter, the answer
    /// is [`CommandError::TimedOut`] at the timeout instead, as a real hung command would give.
    pub fn after(self, delay: Duration) -> Self {
        self.edit(|e| e.delay = Some(delay))
    }

    /// How often this expectation has been called so far.
    pub fn call_count(&self) -> usize {
        self.inner
            .lock()
            .expectations
            .get(self.index)
            .map_or(0, |e| e.calls)
    }
}

impl fmt::Debug for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        let d = st
            .expectations
            .get(self.index)
            .map(Expect::describe)
            .unwrap_or_default();
        f.debug_tuple("Expectation").field(&d).finish()
    }
}

/// What [`FakeExecutor::verify`] found: expectations called fewer times than expected, and
/// commands that were refused. `#[non_exhaustive]`: only the fake builds one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyError {
    /// The unmet expectations, described with their counts.
    pub unmet: Vec<String>,
    /// The commands refused, as shown in their errors.
    pub refused: Vec<String>,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        if !self.unmet.is_empty() {
            write!(f, "{} expectation(s) not met:", self.unmet.len())?;
            for u in &self.unmet {
                write!(f, "\n  - {u}")?;
            }
            first = false;
        }
        if !self.refused.is_empty() {
            if !first {
                f.write_str("\n")?;
            }
            write!(f, "{} unexpected command(s) refused:", self.refused.len())?;
            for r in &self.refused {
                write!(f, "\n  - {r}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {}
