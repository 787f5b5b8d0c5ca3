//! # `hostexec`: act on the host from a privileged container
//!
//! A node agent, a CSI plugin or an operator in a `kubectl debug node/…` pod often has to run
//! the *host's* binaries in the host's namespaces, resolve a path the way the host sees it, or
//! inspect and change the host's mounts. The usual answer is a shell pipeline of `nsenter`,
//! `findmnt`, `mountpoint` and `realpath`, each with its own output format and its own
//! pitfalls (`realpath -m` hides symlink loops, kubernetes/kubernetes#63143; findmnt pads
//! short targets to its column width, so `/` and `/mnt` look unmounted; no timeouts).
//! `hostexec` does the same jobs through the hostexec libraries: one binary, one
//! way to name the host (`--host-root` or `--target-pid`), timeouts on every host command,
//! exit codes that scripts can rely on, and output that keeps paths byte for byte.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error, 32 a failed mount or umount (as mount(8))
//! or "not a mountpoint" (as mountpoint(1)), 124 when `--timeout` ran out (a host command, or
//! a file system call on a hung mount), and for `exec` the command's own status, 126 when it
//! exists but cannot be executed, 127 when it is not on the host, 128+N when it was killed by
//! signal N.
//!
//! This library holds the binary's code so that `cargo xtask man` can render the man page from
//! the same definition ([`command`]); the binary calls [`main`].

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

mod cli;
mod commands;
mod error;
mod output;
mod tty;

use cli::Cli;
use error::{code, one_line, CliError};

/// The command-line definition (for man pages and completions).
pub fn command() -> clap::Command {
    Cli::command()
}

/// Whether `--json` is among the options (before any `--`), for errors found before the
/// command line is parsed.
fn json_asked() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Runs `hostexec` with this process's arguments.
pub fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(&e, json_asked()),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(&e, json_asked()),
    };
    let json = cli.global.json;
    // clap's `conflicts_with` would also fire for HOSTEXEC_HOST_ROOT from the environment,
    // which a DaemonSet sets for everyone; only an explicit --host-root conflicts.
    if cli.global.target_pid.is_some()
        && matches.value_source("host_root") == Some(ValueSource::CommandLine)
    {
        return report(
            &CliError::Usage(
                "--target-pid and --host-root cannot be used together (the target's root is \
                 /proc/PID/root)"
                    .into(),
            ),
            json,
            Some(cli.command.name()),
        );
    }
    init_tracing(cli.global.verbose);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(&CliError::Runtime(e), json, None),
    };
    let name = cli.command.name();
    let result = runtime.block_on(commands::run(cli));
    // A blocking-pool thread may still be stuck in a system call on a hung host mount (after
    // a --timeout): do not wait for it, the process exit ends it.
    runtime.shutdown_background();
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => report(&e, json, Some(name)),
    }
}

/// Prints a clap error as `hostexec: …` naming what is wrong, plus a hint naming the
/// subcommand's help, or the help/version text it carries. With `--json`, also a JSON error
/// object on stdout.
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Help asked for (or a bare `hostexec`): clap prints it; a bare call is a usage error.
        let _ = e.print();
        return ExitCode::from(
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                code::USAGE
            } else {
                code::OK
            },
        );
    }
    let rendered = e.render().to_string();
    let (message, subcommand) = usage_message(&rendered);
    // A global option that failed before the subcommand was parsed: the subcommand named on
    // the command line.
    let subcommand = subcommand.or_else(|| {
        let cmd = Cli::command();
        std::env::args_os()
            .skip(1)
            .take_while(|a| a != "--")
            .filter_map(|a| a.into_string().ok())
            .find(|a| cmd.get_subcommands().any(|s| s.get_name() == a))
    });
    let help = match &subcommand {
        Some(sub) => format!("hostexec {sub} --help"),
        None => "hostexec --help".to_owned(),
    };
    if json {
        let _ = output::json_error(&mut std::io::stdout().lock(), &message, code::USAGE);
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "hostexec: {message}");
    let _ = writeln!(err, "Try '{help}' for more information.");
    ExitCode::from(code::USAGE)
}

/// From clap's rendered error: its first paragraph on one line (the first line and the
/// indented lines after it, which name the missing arguments), and the subcommand its
/// `Usage:` line names.
fn usage_message(rendered: &str) -> (String, Option<String>) {
    let mut lines = rendered.lines();
    let mut message = lines
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ")
        .to_owned();
    for l in lines.by_ref() {
        if l.trim().is_empty() {
            break;
        }
        if l.starts_with(' ') {
            if !message.ends_with(':') {
                message.push(',');
            }
            message.push(' ');
            message.push_str(l.trim());
        }
    }
    let subcommand = rendered
        .lines()
        .find_map(|l| l.strip_prefix("Usage: hostexec "))
        .and_then(|rest| rest.split_whitespace().next())
        .filter(|w| !w.starts_with(['[', '<', '-']))
        .map(str::to_owned);
    (message, subcommand)
}

/// Prints `e` as one `hostexec: …` line (unless it is a closed stdout) and returns its code.
/// With `--json`, stdout also gets `{"error": …, "exit_code": …}`.
fn report(e: &CliError, json: bool, subcommand: Option<&str>) -> ExitCode {
    let code = e.exit_code();
    if !e.is_silent() {
        let text = one_line(e);
        if json {
            let _ = output::json_error(&mut std::io::stdout().lock(), &text, code);
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "hostexec: {text}");
        if code == code::USAGE {
            let help = subcommand.map_or("hostexec --help".to_owned(), |s| {
                format!("hostexec {s} --help")
            });
            let _ = writeln!(err, "Try '{help}' for more information.");
        }
    }
    ExitCode::from(code)
}

/// Logs go to stderr: `-v` raises the default level, `HOSTEXEC_LOG` (env-filter syntax,
/// e.g. `hostexec_nsenter=debug`) adds directives on top.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let base = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let directives = match std::env::var(cli::LOG_ENV) {
        Ok(extra) if !extra.trim().is_empty() => format!("{base},{extra}"),
        _ => base.to_owned(),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "hostexec: ignoring {}: {e}",
            cli::LOG_ENV
        );
        EnvFilter::new(base)
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
