//! The command line: global options, subcommands, and the parsers for their values.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The environment variable that sets `--host-root`.
pub(crate) const HOST_ROOT_ENV: &str = "HOSTEXEC_HOST_ROOT";

/// The environment variable with the tracing filter (env-filter syntax).
pub(crate) const LOG_ENV: &str = "HOSTEXEC_LOG";

/// The host root when neither `--host-root` nor `HOSTEXEC_HOST_ROOT` says otherwise: Go's
/// `nsenter.DefaultHostRootFsPath`.
pub(crate) const DEFAULT_HOST_ROOT: &str = "/rootfs";

/// `hostexec`: act on the host from a privileged container.
#[derive(Debug, Parser)]
#[command(
    name = "hostexec",
    version,
    about = "Run host commands, resolve host paths and manage host mounts from a privileged container",
    long_about = "Run host commands, resolve host paths and manage host mounts from a privileged \
                  container, in the host's namespaces: one tool instead of nsenter, findmnt, \
                  mountpoint and realpath.\n\n\
                  The host is either a directory holding the host's root (--host-root, default \
                  /rootfs, with the host's namespaces under <host-root>/proc/1/ns/) or a process \
                  (--target-pid, e.g. 1 with hostPID: true).",
    after_help = "Exit status: 0 success; 1 failure; 2 usage error; 32 not a mountpoint \
                  (is-mountpoint); 124 when --timeout ran out; for exec, the command's own \
                  status, 127 when the command is not found on the host, 128+N when it was killed by signal N.\n\
                  Logs: -v, -vv, -vvv, or HOSTEXEC_LOG=<filter> (e.g. HOSTEXEC_LOG=debug).",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The options that choose the host and shape every subcommand's output.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// The host's root directory as this process sees it [default: /rootfs]
    #[arg(long, value_name = "DIR", global = true, env = HOST_ROOT_ENV)]
    pub(crate) host_root: Option<PathBuf>,

    /// The host's mount namespace file (default: the host root's `proc/1/ns/mnt`).
    #[arg(
        long,
        value_name = "PATH",
        global = true,
        conflicts_with = "target_pid",
        help = "The host's mount namespace file [default: <host-root>/proc/1/ns/mnt]"
    )]
    pub(crate) mount_ns: Option<PathBuf>,

    /// Take the root and the namespaces from this process (/proc/PID/root, /proc/PID/ns/*)
    #[arg(long, value_name = "PID", global = true, allow_hyphen_values = true)]
    pub(crate) target_pid: Option<String>,

    /// Namespaces to join, comma-separated: mnt, uts, ipc, net, pid, cgroup, time
    #[arg(long = "ns", value_name = "LIST", global = true, default_value = "mnt")]
    pub(crate) namespaces: String,

    /// How commands reach the host's namespaces
    #[arg(long, value_enum, global = true, default_value_t = LauncherArg::HostThread)]
    pub(crate) launcher: LauncherArg,

    /// Time limit for every host command (500ms, 30s, 2m)
    #[arg(long, value_name = "DURATION", global = true, value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,

    /// JSON output (mounts, realpath, which, is-mountpoint)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More log output on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

/// `--launcher`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LauncherArg {
    /// A thread of this process that joined the host's namespaces spawns the commands
    HostThread,
    /// util-linux nsenter(1) runs each command (Go's route)
    Nsenter,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command on the host; its status is hostexec's
    Exec(ExecArgs),
    /// Resolve paths as the host sees them
    Realpath(RealpathArgs),
    /// Print the host path of a host binary
    Which(WhichArgs),
    /// List the host's mounts (TARGET SOURCE FSTYPE OPTIONS, or JSON with --json)
    Mounts,
    /// Say whether a host path is a mount point (as mountpoint(1): exit 0 or 32)
    #[command(name = "is-mountpoint")]
    IsMountpoint(IsMountpointArgs),
    /// Mount a file system on the host
    Mount(MountArgs),
    /// Unmount a host mount point
    Umount(UmountArgs),
}

/// `exec`.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Set an environment variable for the command (repeatable). The command's environment
    /// is otherwise PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin alone
    #[arg(long = "env", value_name = "K=V", value_parser = parse_env)]
    pub(crate) env: Vec<(OsString, OsString)>,

    /// Pass this variable of hostexec's own environment on to the command, if set (repeatable)
    #[arg(long = "env-from-caller", value_name = "K", value_parser = parse_env_name)]
    pub(crate) env_from_caller: Vec<OsString>,

    /// Pass hostexec's whole environment on to the command (its paths name files in the
    /// container, which the host reads as host paths)
    #[arg(long)]
    pub(crate) inherit_env: bool,

    /// The command's working directory, a host path [default: /]
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,

    /// The command and its arguments (after --)
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub(crate) command: Vec<OsString>,
}

/// `realpath`.
#[derive(Debug, Args)]
pub(crate) struct RealpathArgs {
    /// Every component must exist (the default)
    #[arg(
        short = 'e',
        long = "canonicalize-existing",
        conflicts_with = "allow_missing"
    )]
    pub(crate) must_exist: bool,

    /// Missing components are allowed (symlink loops are still errors)
    #[arg(short = 'm', long = "canonicalize-missing")]
    pub(crate) allow_missing: bool,

    /// Absolute host paths
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub(crate) paths: Vec<PathBuf>,
}

/// `which`.
#[derive(Debug, Args)]
pub(crate) struct WhichArgs {
    /// A bare program name
    #[arg(value_name = "NAME")]
    pub(crate) name: OsString,
}

/// `is-mountpoint`.
#[derive(Debug, Args)]
pub(crate) struct IsMountpointArgs {
    /// An absolute host path
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,
}

/// `mount`.
#[derive(Debug, Args)]
pub(crate) struct MountArgs {
    /// File system type (tmpfs, ext4, …)
    #[arg(short = 't', long = "types", value_name = "FSTYPE")]
    pub(crate) fstype: Option<String>,

    /// Mount options, comma-separated
    #[arg(short = 'o', long = "options", value_name = "OPTS")]
    pub(crate) options: Option<String>,

    /// Options that carry secrets: passed to mount, never shown in logs or errors
    #[arg(long, value_name = "OPTS")]
    pub(crate) sensitive_options: Option<String>,

    /// Do not wrap the mount in a systemd scope even where systemd runs
    #[arg(long)]
    pub(crate) no_systemd: bool,

    /// What to mount (a device, a directory for bind, or a name such as tmpfs)
    #[arg(value_name = "SOURCE")]
    pub(crate) source: OsString,

    /// Where to mount it, an absolute host path
    #[arg(value_name = "TARGET")]
    pub(crate) target: PathBuf,
}

/// `umount`.
#[derive(Debug, Args)]
pub(crate) struct UmountArgs {
    /// Detach now, clean up when no longer busy (umount -l)
    #[arg(long)]
    pub(crate) lazy: bool,

    /// If the unmount has not finished after DURATION, force it (umount -f)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) force_after: Option<Duration>,

    /// The mount point, an absolute host path
    #[arg(value_name = "TARGET")]
    pub(crate) target: PathBuf,
}

/// Parses `500ms`, `30s`, `2m`, `1h`, `1.5s` or a bare number of seconds (as timeout(1)).
/// Zero is refused: it would mean "no time at all", never what a caller wants.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use ms, s, m or h: 500ms, 30s, 2m)"
            ))
        }
    };
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
        return Err(format!("{text:?} is not a duration (500ms, 30s, 2m)"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (500ms, 30s, 2m)"))?;
    let secs = value * scale;
    if secs <= 0.0 {
        return Err(format!("{text:?}: the duration must be greater than zero"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{text:?}: the duration is too long"))
}

/// A variable name for `exec --env-from-caller`: not empty, no `=`.
fn parse_env_name(text: &str) -> Result<OsString, String> {
    if text.is_empty() || text.contains('=') {
        return Err(format!(
            "{text:?} is not a variable name (expected K, without '=')"
        ));
    }
    Ok(text.into())
}

/// Parses `K=V` for `exec --env`: the name is what comes before the first `=`.
fn parse_env(text: &str) -> Result<(OsString, OsString), String> {
    match text.split_once('=') {
        Some(("", _)) => Err(format!("{text:?}: the variable name is empty")),
        Some((k, v)) => Ok((k.into(), v.into())),
        None => Err(format!("{text:?} is not K=V")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("30s", Duration::from_secs(30)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("7", Duration::from_secs(7)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        for bad in [
            "", "s", "5x", "ms", "-1s", "0", "0ms", "1.s", ".5s", "1e3s", "1 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn env_pairs() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert_eq!(parse_env("A="), Ok(("A".into(), "".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("A").is_err());
        assert_eq!(parse_env_name("TERM"), Ok("TERM".into()));
        assert!(parse_env_name("A=b").is_err());
        assert!(parse_env_name("").is_err());
    }

    #[test]
    fn exec_takes_everything_after_the_separator() {
        let cli = Cli::try_parse_from([
            "hostexec",
            "--timeout",
            "2m",
            "exec",
            "--env",
            "A=1",
            "--env-from-caller",
            "TERM",
            "--inherit-env",
            "--",
            "ls",
            "-l",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.global.timeout, Some(Duration::from_secs(120)));
        assert!(!cli.global.json, "--json after -- belongs to the command");
        match cli.command {
            Command::Exec(e) => {
                assert_eq!(e.command, ["ls", "-l", "--json"]);
                assert_eq!(e.env, [("A".into(), "1".into())]);
                assert_eq!(e.env_from_caller, ["TERM"]);
                assert!(e.inherit_env);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conflicts_and_missing_values_are_usage_errors() {
        use clap::error::ErrorKind;
        let kind = |args: &[&str]| Cli::try_parse_from(args).unwrap_err().kind();
        assert_eq!(
            kind(&[
                "hostexec",
                "--target-pid",
                "1",
                "--mount-ns",
                "/x",
                "mounts"
            ]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["hostexec", "realpath", "-e", "-m", "/"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["hostexec", "realpath"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["hostexec", "exec"]),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            kind(&["hostexec", "--launcher", "fork", "mounts"]),
            ErrorKind::InvalidValue
        );
        assert_eq!(
            kind(&["hostexec", "--timeout", "soon", "mounts"]),
            ErrorKind::ValueValidation
        );
    }
}
