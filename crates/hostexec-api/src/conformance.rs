//! The conformance suite: the promises of [`Executor`], [`PathResolver`] and [`HostFs`] as
//! checks that any implementation can run against itself.
//!
//! Each check is an `async fn` that panics, with a message naming the promise, when the
//! implementation breaks it. The `*_contract` functions run all of a trait's checks. Backends
//! call them from their own tests; a third-party backend can do the same:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread")]
//! async fn my_backend_keeps_the_contract() {
//!     let exec = MyBackend::new();
//!     hostexec_api::conformance::executor_contract(&exec).await;
//! }
//! ```
//!
//! A complete, compiled example — a backend implementing all three traits with
//! [`async_trait`](macro@crate::async_trait), checked by these functions — is on the front page of
//! `hostexec-fake` (it needs a backend to run commands through, which this crate does not
//! have). Each check is also public on its own, so a backend under construction can run the
//! ones it already keeps.
//!
//! What the checks need of the host: a POSIX `sh` and coreutils (`true`, `false`, `printf`,
//! `cat`, `env`, `pwd`, `sleep`, `head`, `ls`) among [`HOST_BIN_DIRS`](crate::HOST_BIN_DIRS)
//! (and, for [`escapers_do_not_survive`], `bash` and util-linux `setsid`), and
//! for the process checks, that the command's processes are visible in this process's `/proc`
//! (true for every backend that runs on the same machine, pid namespaces included, since a
//! parent namespace sees its children's processes). The environment checks need GNU `env -0`
//! and a variable besides `PATH` in this process's environment. The resolver and file checks need an empty
//! host directory that this process can write through [`PathResolver::local_path`].
//!
//! Not a stable API: checks are added as the contract is sharpened.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{
    CommandError, Executor, ExitStatus, FileKind, HostCommand, HostFs, NativeMount, OutputMode,
    PathError, PathResolver, Resolve, SecretBytes, Stdin, HOST_PATH, MAX_SYMLINK_HOPS,
};

async fn run_ok<E: Executor + ?Sized>(exec: &E, cmd: HostCommand) -> crate::Output {
    let shown = cmd.to_string();
    match exec.run(cmd).await {
        Ok(out) => out,
        Err(e) => panic!("contract: `{shown}` should run, got error: {e}"),
    }
}

/// A token unique to this process and call, to find a command's processes in `/proc`.
fn unique_token() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // `sleep` takes a fractional number of seconds: the digits make the command line unique.
    format!("3{}.{}{:04}", std::process::id() % 1000, 1 + n, n)
}

/// Pids of live processes (not zombies: their command line is empty) whose command line
/// contains `token`.
fn processes_with(token: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(token.len()).any(|w| w == token.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Zombie children of this process (their exit status never collected).
fn zombie_children() -> Vec<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in dir.flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split(' ');
        let state = f.next();
        let ppid = f.next().and_then(|p| p.parse::<u32>().ok());
        if state == Some("Z") && ppid == Some(me) {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) {
                found.push(pid);
            }
        }
    }
    found
}

/// Waits (at most 5 s) for no live process with `token` and no zombie child to remain.
async fn assert_all_gone(token: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let live = processes_with(token);
        let zombies = zombie_children();
        if live.is_empty() && zombies.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "contract: after {what}, processes of the command remain: live {live:?}, zombie children {zombies:?} {:?}", zombies.iter().map(|z| std::fs::read_to_string(format!("/proc/{z}/stat")).unwrap_or_default()).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a process with `token` exists (the command really started).
async fn wait_started(token: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while processes_with(token).is_empty() {
        assert!(
            Instant::now() < deadline,
            "contract: the command with {token} never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `true` succeeds with nothing printed; `false` ends with code 1; `exit 7` with 7.
pub async fn exit_codes<E: Executor + ?Sized>(exec: &E) {
    let out = run_ok(exec, HostCommand::new("true")).await;
    assert_eq!(out.status, ExitStatus::Code(0), "contract: `true` exits 0");
    assert!(out.success() && out.stdout.is_empty() && out.stderr.is_empty());
    let out = run_ok(exec, HostCommand::new("false")).await;
    assert_eq!(out.status, ExitStatus::Code(1), "contract: `false` exits 1");
    assert!(
        matches!(
            out.clone().check(),
            Err(CommandError::Failed {
                status: ExitStatus::Code(1),
                ..
            })
        ),
        "contract: check() of a failure is CommandError::Failed"
    );
    let out = run_ok(exec, HostCommand::new("sh").args(["-c", "exit 7"])).await;
    assert_eq!(out.exit_code(), 7, "contract: exit codes pass through");
}

/// A command killed by signal N reports `Signal(N)`, exit code 128+N.
pub async fn killed_by_signal<E: Executor + ?Sized>(exec: &E) {
    let out = run_ok(exec, HostCommand::new("sh").args(["-c", "kill -TERM $$"])).await;
    assert_eq!(
        out.status,
        ExitStatus::Signal(15),
        "contract: a command killed by SIGTERM reports Signal(15)"
    );
    assert_eq!(out.exit_code(), 143);
}

/// A fresh terminal for [`controlling_tty`]: its path as the backend's host sees it, and a call
/// that, once the command has ended, lets go of the terminal side and returns all the command
/// wrote to it.
pub type TestTerminal = (PathBuf, Box<dyn FnOnce() -> String + Send>);

/// [`HostCommand::controlling_tty`]: the command leads a new session whose controlling
/// terminal is the given one (`tty(1)` names it, the `tty_nr` of `/proc/PID/stat`, proc(5), is
/// its device), its exit status passes through (128+N for a signal N), and a timeout still
/// stops it and what it started. `terminal` gives a fresh terminal per command (a pty).
pub async fn controlling_tty<E: Executor + ?Sized>(
    exec: &E,
    terminal: &mut dyn FnMut() -> TestTerminal,
) {
    // tty_nr decoded as the kernel encodes it (major bits 15..8, minor bits 7..0 and 31..20),
    // compared with the device of what `tty` names.
    let script = r#"t=$(tty) || exit 90; echo "tty=$t"
set -- $(cut -d' ' -f6,7 /proc/$$/stat)
[ "$1" = $$ ] && echo leader
n=$2; printf 'nr=%x:%x\n' $(( (n >> 8) & 4095 )) $(( (n & 255) | ((n >> 12) & 1048320) ))
echo "dev=$(stat -L -c '%t:%T' "$t")"
exit 7"#;
    let (path, finish) = terminal();
    let out = run_ok(
        exec,
        HostCommand::new("sh")
            .args(["-c", script])
            .controlling_tty(&path),
    )
    .await;
    let text = finish().replace('\r', "");
    assert_eq!(
        out.exit_code(),
        7,
        "contract: the status passes through: {text}"
    );
    assert!(out.stdout.is_empty(), "contract: nothing is captured");
    assert!(
        text.contains(&format!("tty={}\n", path.display())),
        "contract: the terminal is the command's stdin: {text}"
    );
    assert!(
        text.contains("leader\n"),
        "contract: the command leads its session: {text}"
    );
    let nr = text.lines().find_map(|l| l.strip_prefix("nr="));
    let dev = text.lines().find_map(|l| l.strip_prefix("dev="));
    assert!(
        nr.is_some() && nr == dev,
        "contract: the terminal is the session's controlling terminal: {text}"
    );

    let (path, finish) = terminal();
    let out = run_ok(
        exec,
        HostCommand::new("sh")
            .args(["-c", "kill -TERM $$"])
            .controlling_tty(&path),
    )
    .await;
    let text = finish();
    assert_eq!(
        (out.status, out.exit_code()),
        (ExitStatus::Signal(15), 143),
        "contract: a session leader killed by SIGTERM reports Signal(15): {text}"
    );

    let token = unique_token();
    let (path, finish) = terminal();
    let run = exec.run(
        HostCommand::new("sh")
            .args(["-c", &format!("sleep {token} & sleep {token}; wait")])
            .controlling_tty(&path)
            .timeout(Duration::from_secs(2)),
    );
    let (r, ()) = tokio::join!(run, wait_started(&token));
    match r {
        Err(CommandError::TimedOut { .. }) => {}
        other => panic!("contract: a hung session leader gives TimedOut, got {other:?}"),
    }
    assert_all_gone(&token, "a session leader's timeout").await;
    drop(finish());
}

/// Arguments arrive byte for byte: spaces, `$(id)`, globs, quotes, newlines, empty strings and
/// non-UTF-8 bytes, never through a shell.
pub async fn arguments_arrive_literally<E: Executor + ?Sized>(exec: &E) {
    let args: Vec<OsString> = vec![
        "a b".into(),
        "$(id)".into(),
        "`id`".into(),
        "*".into(),
        "".into(),
        "'\"\\".into(),
        "line1\nline2".into(),
        "; rm -rf /nonexistent-hostexec".into(),
        OsStr::from_bytes(b"\xff\xfe\x80").into(),
        "-n".into(),
    ];
    let out = run_ok(
        exec,
        HostCommand::new("printf")
            .arg("%s\\0")
            .args(args.iter().cloned()),
    )
    .await;
    let mut want = Vec::new();
    for a in &args {
        want.extend_from_slice(a.as_bytes());
        want.push(0);
    }
    assert_eq!(
        out.stdout,
        want,
        "contract: arguments reach the program byte for byte (got {:?})",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Stdin bytes reach the command; stdout and stderr are captured apart; `Null` stdin reads EOF.
pub async fn standard_streams<E: Executor + ?Sized>(exec: &E) {
    let input: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = run_ok(
        exec,
        HostCommand::new("cat").stdin(Stdin::Bytes(input.clone())),
    )
    .await;
    assert!(out.success());
    assert!(
        out.stdout == input,
        "contract: stdin bytes come back through cat unchanged ({} of {} bytes)",
        out.stdout.len(),
        input.len()
    );
    let out = run_ok(
        exec,
        HostCommand::new("sh").args(["-c", "echo out; echo err >&2; echo out2"]),
    )
    .await;
    assert_eq!(out.stdout, b"out\nout2\n", "contract: stdout kept apart");
    assert_eq!(out.stderr, b"err\n", "contract: stderr kept apart");
    let out = run_ok(exec, HostCommand::new("cat")).await;
    assert!(
        out.success() && out.stdout.is_empty(),
        "contract: default stdin is /dev/null"
    );
    let out = run_ok(
        exec,
        HostCommand::new("sh")
            .args(["-c", "echo out; echo err >&2"])
            .stdout(OutputMode::Null)
            .stderr(OutputMode::Null),
    )
    .await;
    assert!(
        out.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "contract: Null streams capture nothing"
    );
}

/// Environment: set, remove and clear behave as documented.
pub async fn environment<E: Executor + ?Sized>(exec: &E) {
    let out = run_ok(
        exec,
        HostCommand::new("env")
            .env("HOSTEXEC_A", "x y")
            .env("HOSTEXEC_B", "2"),
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().any(|l| l == "HOSTEXEC_A=x y") && text.lines().any(|l| l == "HOSTEXEC_B=2"),
        "contract: env() sets variables: {text}"
    );
    let out = run_ok(
        exec,
        HostCommand::new("env")
            .env("HOSTEXEC_C", "1")
            .env_remove("HOSTEXEC_C"),
    )
    .await;
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("HOSTEXEC_C="),
        "contract: env_remove() removes a variable"
    );
    let out = run_ok(
        exec,
        HostCommand::new("env").env_clear().env("ONLY", "this"),
    )
    .await;
    assert_eq!(
        out.stdout, b"ONLY=this\n",
        "contract: env_clear() starts from an empty environment"
    );
}

/// The environment a command sees, from `env -0` (so that values may hold newlines).
async fn env_of<E: Executor + ?Sized>(exec: &E, cmd: HostCommand) -> BTreeMap<OsString, OsString> {
    let out = run_ok(exec, cmd).await;
    assert!(out.success(), "contract: `env -0` runs: {out:?}");
    out.stdout
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (k, v) = match e.iter().skip(1).position(|&b| b == b'=') {
                Some(i) => (&e[..=i], &e[i + 2..]),
                None => (e, &[][..]),
            };
            (
                OsStr::from_bytes(k).to_owned(),
                OsStr::from_bytes(v).to_owned(),
            )
        })
        .collect()
}

/// A variable of this process's environment other than `PATH`, to tell whether it leaks.
fn a_caller_variable() -> (OsString, OsString) {
    std::env::vars_os()
        .find(|(k, _)| k != "PATH")
        .unwrap_or_else(|| {
            panic!(
                "the environment checks need a variable besides PATH in this process's \
                 environment (cargo test sets several)"
            )
        })
}

/// By default a command gets `PATH=`[`HOST_PATH`] and nothing else: no variable of the
/// caller's (`LD_PRELOAD`, the caller's `PATH`, …) reaches the host.
pub async fn environment_is_minimal_by_default<E: Executor + ?Sized>(exec: &E) {
    let (name, _) = a_caller_variable();
    let env = env_of(exec, HostCommand::new("env").arg("-0")).await;
    let want = BTreeMap::from([(OsString::from("PATH"), OsString::from(HOST_PATH))]);
    assert_eq!(
        env, want,
        "contract: the default environment is PATH={HOST_PATH} alone, nothing of the caller's \
         (this process has {name:?})"
    );
    // What the command then finds through PATH is the host's.
    let out = run_ok(exec, HostCommand::new("sh").args(["-c", "command -v env"])).await;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        HOST_PATH
            .split(':')
            .any(|d| Path::new(&found).parent() == Some(Path::new(d))),
        "contract: a host command finds programs in the host's PATH: {found:?}"
    );
}

/// The caller's variables reach a command only when asked for: one by one
/// ([`HostCommand::env_from_caller`]) or all ([`HostCommand::inherit_env`]).
pub async fn caller_environment_only_on_request<E: Executor + ?Sized>(exec: &E) {
    let (name, value) = a_caller_variable();
    let missing = "HOSTEXEC_CONFORMANCE_SURELY_UNSET";
    assert!(std::env::var_os(missing).is_none());
    let env = env_of(
        exec,
        HostCommand::new("env")
            .arg("-0")
            .env_from_caller(&name)
            .env_from_caller(missing),
    )
    .await;
    let want = BTreeMap::from([
        (OsString::from("PATH"), OsString::from(HOST_PATH)),
        (name.clone(), value.clone()),
    ]);
    assert_eq!(
        env, want,
        "contract: env_from_caller({name:?}) passes that variable alone (and a variable the \
         caller lacks stays unset)"
    );
    let env = env_of(
        exec,
        HostCommand::new("env")
            .arg("-0")
            .inherit_env()
            .env("HOSTEXEC_SET", "1")
            .env_remove(&name),
    )
    .await;
    let mut want: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
    want.remove(&name);
    want.insert("HOSTEXEC_SET".into(), "1".into());
    assert_eq!(
        env, want,
        "contract: inherit_env() passes the caller's whole environment, with the changes applied"
    );
}

/// A value set with [`HostCommand::env_masked`] reaches the program and never `Debug`,
/// `Display` or an error of the backend.
pub async fn masked_environment_values_never_shown<E: Executor + ?Sized>(exec: &E) {
    let secret = "hostexec-conformance-s3cr3t";
    let env = env_of(
        exec,
        HostCommand::new("env")
            .arg("-0")
            .env_masked("HOSTEXEC_SECRET", secret),
    )
    .await;
    assert_eq!(
        env.get(OsStr::new("HOSTEXEC_SECRET")),
        Some(&OsString::from(secret)),
        "contract: a masked value reaches the program"
    );
    let failing = [
        HostCommand::new("hostexec-no-such-program"),
        HostCommand::new("/nonexistent-hostexec/prog"),
        HostCommand::new("true").current_dir("/nonexistent-hostexec-dir"),
        HostCommand::new("sleep")
            .arg("5")
            .timeout(Duration::from_millis(100))
            .kill_grace(Duration::from_millis(100)),
        HostCommand::new("a\0b"),
    ];
    for cmd in failing {
        let cmd = cmd.env_masked("HOSTEXEC_SECRET", secret);
        let shown = [format!("{cmd:?}"), cmd.to_string()];
        let errors = match exec.run(cmd).await {
            Ok(out) => [format!("{out:?}"), String::new()],
            Err(e) => [format!("{e:?}"), e.to_string()],
        };
        for text in shown.iter().chain(&errors) {
            assert!(
                !text.contains(secret),
                "contract: a masked environment value is never shown: {text}"
            );
        }
    }
}

/// The working directory is a host path; by default it is the host's `/` (for a backend that
/// targets a process, run this against a process whose working directory is `/`).
pub async fn working_directory<E: Executor + ?Sized>(exec: &E) {
    let out = run_ok(exec, HostCommand::new("pwd").current_dir("/usr")).await;
    assert_eq!(out.stdout, b"/usr\n", "contract: current_dir() is honoured");
    let out = run_ok(exec, HostCommand::new("pwd")).await;
    assert_eq!(
        out.stdout, b"/\n",
        "contract: the default working directory is /"
    );
    let r = exec
        .run(HostCommand::new("pwd").current_dir("/nonexistent-hostexec-dir"))
        .await;
    match r {
        Err(CommandError::Spawn { .. }) | Err(CommandError::NotFound { .. }) => {}
        Ok(out) if !out.success() => {}
        other => panic!("contract: a missing working directory is an error, got {other:?}"),
    }
}

/// A missing program is `NotFound` naming it (bare name or absolute path); `look_path` finds
/// host binaries and reports missing ones.
pub async fn missing_programs<E: Executor + ?Sized>(exec: &E) {
    for prog in ["hostexec-no-such-program", "/nonexistent-hostexec/prog"] {
        match exec.run(HostCommand::new(prog)).await {
            Err(e @ CommandError::NotFound { .. }) => {
                assert!(
                    e.to_string().contains(prog),
                    "contract: NotFound names the program: {e}"
                );
            }
            other => panic!("contract: running missing {prog} is NotFound, got {other:?}"),
        }
    }
    let sh = exec
        .look_path(OsStr::new("sh"))
        .await
        .unwrap_or_else(|e| panic!("contract: look_path(sh) finds the host's sh: {e}"));
    assert!(
        sh.is_absolute() && sh.ends_with("sh"),
        "look_path gives an absolute path: {sh:?}"
    );
    match exec.look_path(OsStr::new("hostexec-no-such-program")).await {
        Err(CommandError::NotFound { .. }) => {}
        other => panic!("contract: look_path of a missing binary is NotFound, got {other:?}"),
    }
    match exec.run(HostCommand::new("a\0b")).await {
        Err(CommandError::InvalidInput { .. }) => {}
        other => panic!("contract: a NUL in the program is InvalidInput, got {other:?}"),
    }
}

/// Captured output stops at the capture limit and is flagged; the command still completes.
pub async fn capture_is_capped<E: Executor + ?Sized>(exec: &E) {
    let out = run_ok(
        exec,
        HostCommand::new("head")
            .args(["-c", "3000000", "/dev/zero"])
            .capture_limit(1000),
    )
    .await;
    assert!(
        out.success(),
        "contract: a capped command still completes: {out:?}"
    );
    assert_eq!(
        out.stdout.len(),
        1000,
        "contract: stdout is cut at the limit"
    );
    assert!(out.stdout_truncated, "contract: truncation is flagged");
    assert!(!out.stderr_truncated);
    let out = run_ok(
        exec,
        HostCommand::new("printf").arg("12345").capture_limit(5),
    )
    .await;
    assert_eq!(out.stdout, b"12345");
    assert!(
        !out.stdout_truncated,
        "contract: exactly the limit is not truncated"
    );
}

/// A hung command times out: `TimedOut`, and its whole process group (a background child
/// included) is killed and reaped.
pub async fn timeout_kills_the_group<E: Executor + ?Sized>(exec: &E) {
    let token = unique_token();
    let script = format!("sleep {token} & sleep {token}; wait");
    let started = Instant::now();
    let r = exec
        .run(
            HostCommand::new("sh")
                .args(["-c", &script])
                .timeout(Duration::from_millis(300)),
        )
        .await;
    match r {
        Err(CommandError::TimedOut { timeout, .. }) => {
            assert_eq!(timeout, Duration::from_millis(300))
        }
        other => panic!("contract: a hung command gives TimedOut, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "contract: the timeout returns promptly"
    );
    assert_all_gone(&token, "a timeout").await;
}

/// A command that ignores SIGTERM still ends: SIGKILL after the grace period.
pub async fn timeout_escalates_to_sigkill<E: Executor + ?Sized>(exec: &E) {
    let token = unique_token();
    let script = format!("trap '' TERM; sleep {token}; sleep {token}");
    let r = exec
        .run(
            HostCommand::new("sh")
                .args(["-c", &script])
                .timeout(Duration::from_millis(200))
                .kill_grace(Duration::from_millis(200)),
        )
        .await;
    assert!(
        matches!(r, Err(CommandError::TimedOut { .. })),
        "contract: a command ignoring SIGTERM still times out: {r:?}"
    );
    assert_all_gone(&token, "a timeout of a command that ignores SIGTERM").await;
}

/// Dropping the future of `run` kills the command's process group and reaps it.
pub async fn drop_kills_the_group<E: Executor + ?Sized>(exec: &E) {
    let token = unique_token();
    let script = format!("sleep {token} & sleep {token}; wait");
    let fut = exec.run(HostCommand::new("sh").args(["-c", &script]));
    let watch = async {
        wait_started(&token).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::select! {
        r = fut => panic!("contract: the command should still be running, got {r:?}"),
        _ = watch => {}
    }
    assert_all_gone(&token, "dropping the future").await;
}

/// `token` cut in two, for a script that must not contain it (its shell's command line would
/// then match before the process it starts exists): `"$1$2"` in the script joins the halves.
fn halves(token: &str) -> [String; 2] {
    let (a, b) = token.split_at(token.len() / 2);
    [a.to_string(), b.to_string()]
}

/// Dropping the future of `run` stops the command as a timeout does: SIGTERM first (a
/// command that traps it gets to run its handler during the grace period), SIGKILL after
/// [`HostCommand::kill_grace`], everything reaped.
pub async fn drop_terms_then_kills<E: Executor + ?Sized>(exec: &E) {
    let running = unique_token();
    let handler = unique_token();
    // On SIGTERM the shell's handler starts `sleep <handler>`, which only SIGKILL ends (the
    // loop: a shell whose last command ended may exit before it runs a pending trap). The
    // tokens are passed in halves: the shell's own command line never matches them, so
    // `sleep <running>` seen means the trap is set.
    let script = r#"trap 'sleep "$3$4"' TERM; while :; do sleep "$1$2"; done"#;
    let grace = Duration::from_secs(3);
    let [r1, r2] = halves(&running);
    let [h1, h2] = halves(&handler);
    let fut = exec.run(
        HostCommand::new("sh")
            .args(["-c", script, "sh", &r1, &r2, &h1, &h2])
            .kill_grace(grace),
    );
    let watch = async {
        wait_started(&running).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::select! {
        r = fut => panic!("contract: the command should still be running, got {r:?}"),
        _ = watch => {}
    }
    let dropped = Instant::now();
    while processes_with(&handler).is_empty() {
        if dropped.elapsed() > grace {
            panic!(
                "contract: dropping the future sends SIGTERM first and waits the kill grace \
                 (the command's TERM handler never ran)"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The handler runs until SIGKILL, after the grace.
    assert_all_gone(&handler, "dropping the future (after the grace)").await;
    assert_all_gone(&running, "dropping the future").await;
}

/// The command of [`escapers_do_not_survive`]: four processes that leave the command's
/// process group in four ways, each `sleep <token>` (tokens passed in halves, see [`halves`]).
fn escaper_command(t: &[String; 4]) -> HostCommand {
    let script = r#"setsid sleep "$1$2" &
(sleep "$3$4" &)
bash -c 'set -m; sleep "$1$2" & wait' bash "$5" "$6" &
(setsid sh -c 'sleep "$1$2" & exit 0' sh "$7" "$8" &)
wait"#;
    let mut args: Vec<String> = vec!["-c".into(), script.into(), "sh".into()];
    for token in t {
        args.extend(halves(token));
    }
    HostCommand::new("sh").args(args)
}

/// No process the command started survives a timeout or a drop, whatever it did to escape:
/// a `setsid` (new session and group), a double fork (re-parented away from the command), a
/// new process group (`set -m` in bash), and a double fork that also called `setsid` (a
/// classic daemon).
///
/// Run it where no other command of this process runs at the same time: a backend without
/// a cgroup2 hierarchy may only be able to attribute a daemon that left every group and
/// session of the command by when it started.
pub async fn escapers_do_not_survive<E: Executor + ?Sized>(exec: &E) {
    // After a timeout.
    let t: [String; 4] = std::array::from_fn(|_| unique_token());
    let started = Instant::now();
    let run = exec.run(
        escaper_command(&t)
            .timeout(Duration::from_secs(2))
            .kill_grace(Duration::from_millis(200)),
    );
    let all_started = std::sync::atomic::AtomicBool::new(false);
    let watch = async {
        for token in &t {
            wait_started(token).await;
        }
        all_started.store(true, std::sync::atomic::Ordering::Relaxed);
        std::future::pending::<()>().await;
    };
    let r = tokio::select! {
        r = run => r,
        _ = watch => unreachable!(),
    };
    assert!(
        all_started.load(std::sync::atomic::Ordering::Relaxed),
        "contract: the escapers all started before the timeout"
    );
    assert!(
        matches!(r, Err(CommandError::TimedOut { .. })),
        "contract: the escaping command times out, got {r:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    for (token, how) in t.iter().zip([
        "setsid",
        "double fork",
        "new process group",
        "setsid daemon",
    ]) {
        assert_all_gone(token, &format!("a timeout (an escaper: {how})")).await;
    }

    // After a drop.
    let t: [String; 4] = std::array::from_fn(|_| unique_token());
    let fut = exec.run(escaper_command(&t).kill_grace(Duration::from_millis(200)));
    let watch = async {
        for token in &t {
            wait_started(token).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::select! {
        r = fut => panic!("contract: the command should still be running, got {r:?}"),
        _ = watch => {}
    }
    for (token, how) in t.iter().zip([
        "setsid",
        "double fork",
        "new process group",
        "setsid daemon",
    ]) {
        assert_all_gone(token, &format!("dropping the future (an escaper: {how})")).await;
    }
}

/// After the command exits, a grandchild holding stdout open delays the result at most
/// `wait_delay`, and what was printed before is kept.
pub async fn grandchild_holding_pipes<E: Executor + ?Sized>(exec: &E) {
    let token = unique_token();
    // The background sleep inherits stdout and keeps the pipe open after sh exits.
    let script = format!("echo before; sleep {token} & exit 0");
    let started = Instant::now();
    let out = run_ok(
        exec,
        HostCommand::new("sh")
            .args(["-c", &script])
            .wait_delay(Duration::from_millis(200))
            .timeout(Duration::from_secs(20)),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "contract: a grandchild holding the pipe does not hang run()"
    );
    assert!(out.success(), "{out:?}");
    assert_eq!(
        out.stdout, b"before\n",
        "contract: output before exit is kept"
    );
    // The grandchild is not ours to kill after a normal exit; clean it up for the next checks.
    for pid in processes_with(&token) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// The command gets its standard streams and no other descriptor of the caller's: strict for
/// every descriptor, also those the calling process holds without `FD_CLOEXEC` (a job runner
/// may leave some; a backend must not pass them on).
pub async fn no_descriptor_leaks<E: Executor + ?Sized>(exec: &E) {
    // Make sure the caller has descriptors above 3 for a leak to show.
    let held: Vec<std::fs::File> = (0..4)
        .filter_map(|_| std::fs::File::open("/proc/self/status").ok())
        .collect();
    assert!(!held.is_empty());
    let out = run_ok(exec, HostCommand::new("ls").arg("/proc/self/fd")).await;
    let fds: BTreeSet<u32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    // 0, 1, 2 and the directory ls itself opened to list /proc/self/fd.
    assert!(
        fds.len() <= 4 && fds.iter().all(|&fd| fd <= 3),
        "contract: no descriptor leaks into the command; it saw {fds:?}"
    );
    drop(held);
}

/// Many commands at once all succeed with their own output.
pub async fn concurrent_commands<E: Executor + ?Sized>(exec: &E) {
    let runs = (0..16).map(|i| {
        let cmd = HostCommand::new("printf").arg(format!("n{i}"));
        async move { (i, exec.run(cmd).await) }
    });
    for (i, r) in join_all(runs).await {
        match r {
            Ok(out) => assert_eq!(out.stdout, format!("n{i}").as_bytes()),
            Err(e) => panic!("contract: concurrent command {i} failed: {e}"),
        }
    }
}

async fn join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    // Polls all futures together on the current task (no extra dependency).
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futs.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Every [`Executor`] check, in order, but [`escapers_do_not_survive`] (which wants the
/// process to itself: run it from a test of its own).
pub async fn executor_contract<E: Executor + ?Sized>(exec: &E) {
    exit_codes(exec).await;
    killed_by_signal(exec).await;
    arguments_arrive_literally(exec).await;
    standard_streams(exec).await;
    environment(exec).await;
    environment_is_minimal_by_default(exec).await;
    caller_environment_only_on_request(exec).await;
    masked_environment_values_never_shown(exec).await;
    working_directory(exec).await;
    missing_programs(exec).await;
    capture_is_capped(exec).await;
    timeout_kills_the_group(exec).await;
    timeout_escalates_to_sigkill(exec).await;
    drop_kills_the_group(exec).await;
    drop_terms_then_kills(exec).await;
    grandchild_holding_pipes(exec).await;
    no_descriptor_leaks(exec).await;
    concurrent_commands(exec).await;
}

/// A tree under `base` (a host path), built through the resolver's local mapping:
///
/// ```text
/// base/dir/           base/dir/file        base/rel -> dir       base/abs -> <base>/dir
/// base/dangling -> missing                 base/self -> self     base/a -> b, base/b -> a
/// base/up -> ../../../../../../../..       base/rootlink -> /    base/\xff\xfe/ (non-UTF-8)
/// base/chain0 -> chain1 -> ... -> chain40 -> dir  (41 links: 41 hops, one too many)
/// base/chain1 is 40 hops from dir
/// ```
fn build_tree<R: PathResolver + ?Sized>(res: &R, base: &Path) -> PathBuf {
    use std::os::unix::fs::symlink;
    let local = res
        .local_path(base)
        .unwrap_or_else(|e| panic!("contract: local_path({base:?}) works: {e}"));
    let l = |p: &str| local.join(p);
    std::fs::create_dir_all(l("dir")).expect("create base/dir through local_path");
    std::fs::write(l("dir/file"), b"x").expect("write base/dir/file");
    symlink("dir", l("rel")).expect("symlink");
    symlink(base.join("dir"), l("abs")).expect("symlink");
    symlink("missing", l("dangling")).expect("symlink");
    symlink("self", l("self")).expect("symlink");
    symlink("b", l("a")).expect("symlink");
    symlink("a", l("b")).expect("symlink");
    symlink("../../../../../../../..", l("up")).expect("symlink");
    symlink("/", l("rootlink")).expect("symlink");
    std::fs::create_dir(local.join(OsStr::from_bytes(b"\xff\xfe"))).expect("non-UTF-8 dir");
    let hops = MAX_SYMLINK_HOPS + 1;
    for i in 0..hops {
        let target = if i + 1 == hops {
            "dir".to_string()
        } else {
            format!("chain{}", i + 1)
        };
        symlink(target, l(&format!("chain{i}"))).expect("symlink chain");
    }
    local
}

/// Every [`PathResolver`] check, on a tree built under `base`, an empty host directory that
/// this process can write through `res.local_path(base)`.
pub async fn resolver_contract<R: PathResolver + ?Sized>(res: &R, base: &Path) {
    let local = build_tree(res, base);
    let b = |p: &str| base.join(p);
    let ok = |p: PathBuf, mode: Resolve| async move {
        match res.resolve(&p, mode).await {
            Ok(r) => r,
            Err(e) => panic!("contract: resolve({p:?}, {mode:?}) should succeed: {e}"),
        }
    };
    let err = |p: PathBuf, mode: Resolve| async move {
        match res.resolve(&p, mode).await {
            Ok(r) => panic!("contract: resolve({p:?}, {mode:?}) should fail, got {r:?}"),
            Err(e) => e,
        }
    };
    use Resolve::*;
    for mode in [MustExist, AllowMissing, AllButLast] {
        assert_eq!(ok(b("dir/file"), mode).await, b("dir/file"));
        assert_eq!(
            ok(b("rel/file"), mode).await,
            b("dir/file"),
            "relative link"
        );
        assert_eq!(
            ok(b("abs/file"), mode).await,
            b("dir/file"),
            "an absolute link target is read against the host root"
        );
        assert_eq!(ok(b("./dir//./file"), mode).await, b("dir/file"));
        assert_eq!(ok(b("dir/../rel"), mode).await, b("dir"));
        assert_eq!(ok(PathBuf::from("/../../.."), mode).await, Path::new("/"));
        assert_eq!(
            ok(b("up"), mode).await,
            Path::new("/"),
            "`..` in a link clamps at the host root"
        );
        assert_eq!(ok(b("rootlink"), mode).await, Path::new("/"));
        let nonutf8 = base.join(OsStr::from_bytes(b"\xff\xfe"));
        assert_eq!(
            ok(nonutf8.clone(), mode).await,
            nonutf8,
            "non-UTF-8 names round-trip"
        );
        assert_eq!(
            ok(b("chain1/file"), mode).await,
            b("dir/file"),
            "exactly MAX_SYMLINK_HOPS hops is allowed"
        );
        for looping in ["chain0/file", "self", "self/x", "a/q", "b"] {
            let e = err(b(looping), mode).await;
            assert!(
                matches!(e, PathError::Loop { .. }),
                "contract: {looping} is a Loop in {mode:?} mode, got {e}"
            );
            assert!(e.to_string().ends_with("Too many levels of symbolic links"));
        }
        let e = err(PathBuf::from("relative/path"), mode).await;
        assert!(matches!(e, PathError::NotAbsolute { .. }), "{e}");
        let e = err(PathBuf::from(OsStr::from_bytes(b"/a\0b")), mode).await;
        assert!(matches!(e, PathError::ContainsNul { .. }), "{e}");
    }
    let e = err(b("dangling"), MustExist).await;
    assert!(
        matches!(e, PathError::NotFound { ref path } if path == &b("dangling")),
        "contract: errors name the path asked about: {e:?}"
    );
    let e = err(b("dir/file/"), MustExist).await;
    assert!(matches!(e, PathError::NotADirectory { .. }), "{e}");
    let e = err(b("dir/file/x"), MustExist).await;
    assert!(matches!(e, PathError::NotADirectory { .. }), "{e}");
    assert_eq!(ok(b("dangling"), AllowMissing).await, b("missing"));
    assert_eq!(ok(b("rel/x/y"), AllowMissing).await, b("dir/x/y"));
    assert_eq!(ok(b("dir/nope/../file"), AllowMissing).await, b("dir/file"));
    // AllButLast (`readlink -f`): the last component may be missing, nothing before it.
    assert_eq!(ok(b("dangling"), AllButLast).await, b("missing"));
    assert_eq!(ok(b("rel/nope/"), AllButLast).await, b("dir/nope"));
    for (bad, not_dir) in [
        ("rel/x/y", false),
        ("dir/nope/../file", false),
        ("dir/nope/.", false),
        ("dir/file/", true),
        ("dir/file/x", true),
    ] {
        let e = err(b(bad), AllButLast).await;
        if not_dir {
            assert!(matches!(e, PathError::NotADirectory { .. }), "{bad}: {e}");
        } else {
            assert!(matches!(e, PathError::NotFound { .. }), "{bad}: {e}");
        }
    }
    let long = base.join("x".repeat(300));
    let e = err(long, MustExist).await;
    assert!(matches!(e, PathError::NameTooLong { .. }), "{e}");

    let root_local = res.local_path(Path::new("/")).expect("local_path(/)");
    for p in ["/../../etc", "/a/../../..", "/"] {
        let l = res.local_path(Path::new(p)).expect("local_path");
        assert!(
            l.starts_with(&root_local),
            "contract: local_path({p}) = {l:?} stays under {root_local:?}"
        );
    }
    assert_eq!(
        res.local_path(&b("dir/file")).expect("local_path"),
        local.join("dir/file")
    );
}

/// Every [`HostFs`] check, under `base`, an empty host directory that this process can write
/// through `fs.local_path(base)`.
pub async fn host_fs_contract<F: HostFs + ?Sized>(fs: &F, base: &Path) {
    let local = fs.local_path(base).expect("local_path");
    let b = |p: &str| base.join(p);
    fs.create_dir_all(&b("d1/d2/d3"))
        .await
        .expect("contract: create_dir_all makes parents");
    fs.create_dir_all(&b("d1/d2/d3"))
        .await
        .expect("contract: create_dir_all of an existing directory succeeds");
    assert!(local.join("d1/d2/d3").is_dir());
    fs.create_file(&b("d1/f")).await.expect("create_file");
    fs.create_file(&b("d1/f"))
        .await
        .expect("contract: create_file of an existing file succeeds");
    std::fs::write(local.join("d1/f"), b"hello").expect("write");
    assert_eq!(
        fs.read_file(&b("d1/f"), 100).await.expect("read_file"),
        b"hello"
    );
    let e = fs
        .read_file(&b("d1/f"), 3)
        .await
        .expect_err("over the limit");
    assert!(
        matches!(e, PathError::Io { .. }),
        "contract: a file over the limit is an Io error: {e}"
    );
    std::os::unix::fs::symlink("d1", local.join("link")).expect("symlink");
    let st = fs.stat(&b("link"), false).await.expect("stat");
    assert_eq!(
        st.kind,
        FileKind::Symlink,
        "contract: stat without follow sees the link"
    );
    let st = fs.stat(&b("link"), true).await.expect("stat");
    assert_eq!(
        st.kind,
        FileKind::Dir,
        "contract: stat with follow sees the directory"
    );
    let st = fs.stat(&b("link/f"), false).await.expect("stat");
    assert_eq!((st.kind, st.size), (FileKind::File, 5));
    assert_ne!(
        st.mount_root,
        Some(true),
        "contract: a plain file is no mount root"
    );
    let e = fs.stat(&b("nope"), true).await.expect_err("missing");
    assert!(e.is_not_found(), "{e}");
    let e = fs
        .create_dir_all(&b("d1/f/x"))
        .await
        .expect_err("under a file");
    assert!(
        matches!(
            e,
            PathError::NotADirectory { .. } | PathError::AlreadyExists { .. }
        ),
        "{e}"
    );
    fs.remove_dir(&b("d1/d2/d3")).await.expect("remove_dir");
    assert!(!local.join("d1/d2/d3").exists());
    let e = fs.remove_dir(&b("d1")).await.expect_err("not empty");
    assert!(matches!(e, PathError::Io { .. }), "{e}");
    let root = fs.stat(Path::new("/"), true).await.expect("stat /");
    assert_eq!(root.kind, FileKind::Dir);
    let mi = fs.read_mountinfo().await.expect("read_mountinfo");
    let text = String::from_utf8_lossy(&mi);
    assert!(
        text.lines().any(|l| l.split(' ').nth(4) == Some("/")),
        "contract: the mount table has the root mount: {text}"
    );
    mountinfo_pieces_join_to_the_table(fs).await;
}

/// [`HostFs::read_mountinfo_pieces`] hands over whole lines, in order, that joined are
/// exactly the bytes of [`HostFs::read_mountinfo`]. The two are compared when a whole read
/// before and one after the pieces agree (a table that other work changes meanwhile is read
/// again, a few times).
pub async fn mountinfo_pieces_join_to_the_table<F: HostFs + ?Sized>(fs: &F) {
    for _ in 0..5 {
        let before = fs.read_mountinfo().await.expect("read_mountinfo");
        let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
        let sink = std::sync::Arc::clone(&got);
        fs.read_mountinfo_pieces(Box::new(move |p| {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(p)
        }))
        .await
        .expect("read_mountinfo_pieces");
        let after = fs.read_mountinfo().await.expect("read_mountinfo");
        if before != after {
            continue;
        }
        let pieces = std::mem::take(&mut *got.lock().unwrap_or_else(|e| e.into_inner()));
        let n = pieces.len();
        for (i, p) in pieces.iter().enumerate() {
            assert!(!p.is_empty(), "contract: piece {i} of {n} is not empty");
            assert!(
                i + 1 == n || p.ends_with(b"\n"),
                "contract: mountinfo pieces are whole lines: piece {i} of {n} ends with {:?}",
                String::from_utf8_lossy(&p[p.len().saturating_sub(40)..])
            );
        }
        assert!(
            pieces.concat() == before,
            "contract: the mountinfo pieces joined are read_mountinfo's bytes \
             ({n} pieces, {} bytes joined, {} read whole)",
            pieces.iter().map(Vec::len).sum::<usize>(),
            before.len()
        );
        return;
    }
    panic!("contract: the mount table changed between every two reads of five");
}

/// The secret-file promises of [`NativeMount::create_secret_file`] and
/// [`NativeMount::remove_secret_file`], under `base`, an empty host directory that this
/// process can read through `fs.local_path(base)`.
pub async fn secret_file_contract<F: NativeMount + PathResolver + ?Sized>(fs: &F, base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let local = fs.local_path(base).expect("local_path");
    let file = base.join("cred");
    let secret = SecretBytes::new("username=u\npassword=p\n");
    fs.create_secret_file(&file, &secret)
        .await
        .expect("create_secret_file");
    let meta = std::fs::symlink_metadata(local.join("cred")).expect("the file exists");
    assert!(meta.is_file(), "contract: a secret file is a regular file");
    assert_eq!(
        meta.mode() & 0o7777,
        0o600,
        "contract: a secret file has mode 0600"
    );
    assert_eq!(
        std::fs::read(local.join("cred")).expect("read"),
        secret.expose(),
        "contract: a secret file holds the contents whole"
    );
    let e = fs
        .create_secret_file(&file, &SecretBytes::new("other"))
        .await
        .expect_err("an existing file");
    assert!(
        matches!(e, PathError::AlreadyExists { .. }),
        "contract: an existing file is AlreadyExists: {e}"
    );
    assert_eq!(
        std::fs::read(local.join("cred")).expect("read"),
        secret.expose(),
        "contract: an existing file is left alone"
    );
    // A symlink is never followed: not a dangling one (its target is not created) nor one to
    // a file (not written through).
    std::os::unix::fs::symlink("made-through-link", local.join("dangling")).expect("symlink");
    std::os::unix::fs::symlink("cred", local.join("to-cred")).expect("symlink");
    for name in ["dangling", "to-cred"] {
        let e = fs
            .create_secret_file(&base.join(name), &SecretBytes::new("x"))
            .await
            .expect_err("a symlink");
        assert!(
            matches!(e, PathError::AlreadyExists { .. }),
            "contract: a final symlink is AlreadyExists, never followed: {e}"
        );
    }
    assert!(
        !local.join("made-through-link").exists(),
        "contract: a dangling link's target is not created"
    );
    fs.remove_secret_file(&base.join("to-cred"))
        .expect("remove a link");
    assert!(
        local.join("cred").exists(),
        "contract: removing a link leaves its target"
    );
    fs.remove_secret_file(&file).expect("remove_secret_file");
    assert!(
        std::fs::symlink_metadata(local.join("cred")).is_err(),
        "contract: remove_secret_file removes the file"
    );
    let e = fs.remove_secret_file(&file).expect_err("gone");
    assert!(
        e.is_not_found(),
        "contract: a missing file is NotFound: {e}"
    );
    fs.remove_secret_file(&base.join("dangling"))
        .expect("remove a link");
}

#[cfg(test)]
mod tests {
    //! The checks must be able to fail: each broken implementation below breaks one promise.
    use super::*;
    use crate::{MockExecutor, MockPathResolver, Output};

    fn always(status: ExitStatus) -> MockExecutor {
        let mut m = MockExecutor::new();
        m.expect_run()
            .returning(move |c| Ok(Output::new(c.get_program(), status)));
        m
    }

    #[tokio::test]
    #[should_panic(expected = "mode 0600")]
    async fn secret_file_check_catches_a_file_others_can_read() {
        // A backend that writes the secret with std::fs (mode 0644 under the usual umask).
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let mut m = crate::MockHostFs::new();
        let r = root.clone();
        m.expect_local_path()
            .returning(move |p| crate::path::host_to_local(&r, p));
        let r = root.clone();
        m.expect_create_secret_file().returning(move |p, c| {
            let local = crate::path::host_to_local(&r, p)?;
            std::fs::write(&local, c.expose()).map_err(|e| PathError::from_io(p, e))?;
            std::fs::set_permissions(&local, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .map_err(|e| PathError::from_io(p, e))
        });
        secret_file_contract(&m, Path::new("/")).await;
    }

    #[tokio::test]
    #[should_panic(expected = "`false` exits 1")]
    async fn exit_codes_catch_an_executor_that_always_succeeds() {
        exit_codes(&always(ExitStatus::Code(0))).await;
    }

    #[tokio::test]
    #[should_panic(expected = "SIGTERM reports Signal(15)")]
    async fn signal_check_catches_a_code_instead_of_a_signal() {
        killed_by_signal(&always(ExitStatus::Code(143))).await;
    }

    #[tokio::test]
    #[should_panic(expected = "byte for byte")]
    async fn argument_check_catches_a_shell_joined_command_line() {
        // What a backend that joins arguments into one `sh -c` string would print.
        let mut m = MockExecutor::new();
        m.expect_run().returning(|c| {
            let joined: Vec<String> = c
                .get_args()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            Ok(Output::new(c.get_program(), ExitStatus::Code(0)).with_stdout(joined.join(" ")))
        });
        arguments_arrive_literally(&m).await;
    }

    #[tokio::test]
    #[should_panic(expected = "truncation is flagged")]
    async fn capture_check_catches_an_unflagged_cut() {
        let mut m = MockExecutor::new();
        m.expect_run().returning(|c| {
            Ok(Output::new(c.get_program(), ExitStatus::Code(0)).with_stdout(vec![0; 1000]))
        });
        capture_is_capped(&m).await;
    }

    #[tokio::test]
    #[should_panic(expected = "gives TimedOut")]
    async fn timeout_check_catches_an_executor_without_timeouts() {
        timeout_kills_the_group(&always(ExitStatus::Code(0))).await;
    }

    /// Go's `CommandContext` as an executor: the direct child only, SIGKILL at once on a
    /// timeout or a drop, no process group.
    struct KillsTheChildOnly;

    #[async_trait::async_trait]
    impl Executor for KillsTheChildOnly {
        async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
            let child = std::process::Command::new(cmd.get_program())
                .args(cmd.get_args())
                .spawn()
                .map_err(|source| CommandError::Spawn {
                    program: cmd.get_program().into(),
                    source,
                })?;
            /// Kills the child (only) when dropped while it runs.
            struct Kill(Option<std::process::Child>);
            impl Drop for Kill {
                fn drop(&mut self) {
                    if let Some(c) = self.0.as_mut() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
            }
            let started = Instant::now();
            let mut guard = Kill(Some(child));
            loop {
                let exited = guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten());
                if let Some(st) = exited {
                    guard.0 = None;
                    let code = st.code().unwrap_or(-1);
                    return Ok(Output::new(cmd.get_program(), ExitStatus::Code(code)));
                }
                if cmd.get_timeout().is_some_and(|t| started.elapsed() > t) {
                    drop(guard);
                    return Err(CommandError::TimedOut {
                        program: cmd.get_program().into(),
                        timeout: cmd.get_timeout().unwrap_or_default(),
                        lingering: None,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
            Ok(PathBuf::from(name))
        }
        async fn supports_systemd(&self) -> bool {
            false
        }
    }

    /// Runs a check against [`KillsTheChildOnly`], expecting it to fail with `expected`, and
    /// kills what the broken executor left behind.
    async fn must_fail<F: std::future::Future<Output = ()> + Send + 'static>(
        check: F,
        expected: &str,
    ) {
        let before: BTreeSet<u32> = all_sleeps();
        let r = tokio::spawn(check).await;
        for pid in all_sleeps().difference(&before) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let e = r.expect_err("the check passed a broken executor");
        let payload = e.into_panic();
        let msg = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(p) => p
                .downcast::<&str>()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        };
        assert!(msg.contains(expected), "{msg}");
    }

    /// `sleep` processes whose argument looks like a token of this process.
    fn all_sleeps() -> BTreeSet<u32> {
        processes_with(&format!("3{}.", std::process::id() % 1000))
            .into_iter()
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn drop_check_catches_a_kill_without_sigterm() {
        must_fail(
            async { drop_terms_then_kills(&KillsTheChildOnly).await },
            "sends SIGTERM first",
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn escaper_check_catches_an_executor_that_kills_the_child_only() {
        must_fail(
            async { escapers_do_not_survive(&KillsTheChildOnly).await },
            "an escaper",
        )
        .await;
    }

    /// `env -0` output of the caller's own environment: a backend that passes it through.
    fn leaky() -> MockExecutor {
        let mut m = MockExecutor::new();
        m.expect_run().returning(|c| {
            let mut out = Vec::new();
            for (k, v) in c
                .final_env(std::env::vars_os)
                .into_iter()
                .chain(std::env::vars_os())
            {
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
            Ok(Output::new(c.get_program(), ExitStatus::Code(0)).with_stdout(out))
        });
        m
    }

    #[tokio::test]
    #[should_panic(expected = "nothing of the caller's")]
    async fn environment_check_catches_a_backend_that_passes_the_callers_environment() {
        environment_is_minimal_by_default(&leaky()).await;
    }

    #[tokio::test]
    #[should_panic(expected = "passes that variable alone")]
    async fn caller_check_catches_a_backend_that_passes_the_callers_environment() {
        caller_environment_only_on_request(&leaky()).await;
    }

    #[tokio::test]
    #[should_panic(expected = "a masked environment value is never shown")]
    async fn masked_check_catches_a_backend_that_prints_the_environment_in_errors() {
        let mut m = MockExecutor::new();
        m.expect_run().returning(|c| {
            if c.get_program() == "env" {
                let mut out = Vec::new();
                for (k, v) in c.final_env(Vec::new) {
                    out.extend_from_slice(k.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(v.as_bytes());
                    out.push(0);
                }
                return Ok(Output::new(c.get_program(), ExitStatus::Code(0)).with_stdout(out));
            }
            Err(CommandError::Spawn {
                program: c.get_program().to_owned(),
                source: std::io::Error::other(format!("env {:?}", c.final_env(Vec::new))),
            })
        });
        masked_environment_values_never_shown(&m).await;
    }

    /// A mount table backend whose pieces are cut by `cut` from a fixed table.
    struct Pieces {
        table: &'static [u8],
        cut: fn(&'static [u8]) -> Vec<Vec<u8>>,
    }

    #[async_trait::async_trait]
    impl PathResolver for Pieces {
        async fn resolve(&self, path: &Path, _: Resolve) -> Result<PathBuf, PathError> {
            Ok(path.to_path_buf())
        }
        fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
            Ok(host_path.to_path_buf())
        }
    }

    #[async_trait::async_trait]
    impl HostFs for Pieces {
        async fn stat(&self, path: &Path, _: bool) -> Result<crate::FileStat, PathError> {
            Err(PathError::NotFound { path: path.into() })
        }
        async fn read_file(&self, path: &Path, _: usize) -> Result<Vec<u8>, PathError> {
            Err(PathError::NotFound { path: path.into() })
        }
        async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
            Err(PathError::NotFound { path: path.into() })
        }
        async fn create_file(&self, path: &Path) -> Result<(), PathError> {
            Err(PathError::NotFound { path: path.into() })
        }
        async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
            Err(PathError::NotFound { path: path.into() })
        }
        async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
            Ok(self.table.to_vec())
        }
        async fn read_mountinfo_pieces(
            &self,
            mut piece: Box<dyn FnMut(Vec<u8>) + Send>,
        ) -> Result<(), PathError> {
            for p in (self.cut)(self.table) {
                piece(p);
            }
            Ok(())
        }
    }

    const TABLE: &[u8] = b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n\
        2 1 0:5 / /proc rw - proc proc rw\n\
        3 1 0:6 / /tmp rw - tmpfs tmpfs rw\n";

    #[tokio::test]
    async fn pieces_check_passes_whole_lines() {
        // Line by line, and the default's one piece: both keep the contract.
        let lines = Pieces {
            table: TABLE,
            cut: |t| {
                t.split_inclusive(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect()
            },
        };
        mountinfo_pieces_join_to_the_table(&lines).await;
        let mut m = crate::MockHostFs::new();
        m.expect_read_mountinfo().returning(|| Ok(TABLE.to_vec()));
        mountinfo_pieces_join_to_the_table(&m).await;
    }

    #[tokio::test]
    #[should_panic(expected = "pieces joined are read_mountinfo's bytes")]
    async fn pieces_check_catches_a_lost_last_line() {
        // A reader that hands on a piece only when its buffer fills, forgetting the rest.
        let broken = Pieces {
            table: TABLE,
            cut: |t| {
                t.split_inclusive(|&b| b == b'\n')
                    .take(2)
                    .map(<[u8]>::to_vec)
                    .collect()
            },
        };
        mountinfo_pieces_join_to_the_table(&broken).await;
    }

    #[tokio::test]
    #[should_panic(expected = "pieces are whole lines")]
    async fn pieces_check_catches_pieces_cut_mid_line() {
        // Fixed-size chunks: joined they are the table, but a parser of each piece sees
        // half lines.
        let broken = Pieces {
            table: TABLE,
            cut: |t| t.chunks(16).map(<[u8]>::to_vec).collect(),
        };
        mountinfo_pieces_join_to_the_table(&broken).await;
    }

    #[tokio::test]
    #[should_panic(expected = "is a Loop")]
    async fn resolver_check_catches_a_lexical_resolver() {
        // A resolver that only normalises lexically: it never sees symlinks, let alone loops.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("base")).unwrap();
        let mut m = MockPathResolver::new();
        m.expect_resolve().returning(|p, _| {
            crate::path::check_host_path(p)?;
            Ok(crate::path::normalize(p))
        });
        let r2 = root.clone();
        m.expect_local_path()
            .returning(move |p| crate::path::host_to_local(&r2, p));
        // Only loops and hops would catch it; skip the cases it passes by accident.
        let local = build_tree(&m, Path::new("/base"));
        assert!(local.join("self").symlink_metadata().is_ok());
        match m.resolve(Path::new("/base/self"), Resolve::MustExist).await {
            Err(PathError::Loop { .. }) => {}
            other => panic!("contract: /base/self is a Loop, got {other:?}"),
        }
    }
}
