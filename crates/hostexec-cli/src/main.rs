//! # `hostexec`: act on the host from a privileged container
//!
//! A node agent, a CSI plugin or an operator in a `kubectl debug node/…` pod often has to run
//! the *host's* binaries in the host's namespaces, resolve a path the way the host sees it, or
//! inspect and change the host's mounts. The usual answer is a shell pipeline of `nsenter`,
//! `findmnt`, `mountpoint` and `realpath`, each with its own output format and its own
//! pitfalls (`realpath -m` hides symlink loops, kubernetes/kubernetes#63143; findmnt pads
//! short targets to its column width, so `/` and `/mnt` look unmounted; no timeouts). `hostexec` does the same jobs through the hostexec libraries: one binary, one
//! way to name the host (`--host-root` or `--target-pid`), timeouts on every host command,
//! exit codes that scripts can rely on, and output that keeps paths byte for byte.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error, 32 "not a mountpoint", 124 when
//! `--timeout` ran out (a host command, or a file system call on a hung mount), and for `exec`
//! the command's own status, 127 when the command is not on the host, 128+N when it was
//! killed by signal N.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};

mod cli;
mod commands;
mod error;
mod output;

use cli::Cli;
use error::{code, one_line, CliError};

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    // clap's `conflicts_with` would also fire for HOSTEXEC_HOST_ROOT from the environment,
    // which a DaemonSet sets for everyone; only an explicit --host-root conflicts.
    if cli.global.target_pid.is_some()
        && matches.value_source("host_root") == Some(ValueSource::CommandLine)
    {
        return report(&CliError::Usage(
            "--target-pid and --host-root cannot be used together (the target's root is \
             /proc/PID/root)"
                .into(),
        ));
    }
    init_tracing(cli.global.verbose);

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return report(&CliError::Runtime(e)),
    };
    let result = runtime.block_on(commands::run(cli));
    // A blocking-pool thread may still be stuck in a system call on a hung host mount (after
    // a --timeout): do not wait for it, the process exit ends it.
    runtime.shutdown_background();
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => report(&e),
    }
}

/// Prints a clap error as `hostexec: …` plus a hint, or the help/version text it carries.
fn usage_error(e: &clap::Error) -> ExitCode {
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
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid command line")
        .trim_start_matches("error: ");
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "hostexec: {first}");
    let _ = writeln!(err, "Try 'hostexec --help' for more information.");
    ExitCode::from(code::USAGE)
}

/// Prints `e` as one `hostexec: …` line (unless it is a closed stdout) and returns its code.
fn report(e: &CliError) -> ExitCode {
    if !e.is_silent() {
        let _ = writeln!(std::io::stderr().lock(), "hostexec: {}", one_line(e));
    }
    ExitCode::from(e.exit_code())
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
