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

/// `--version`: the package version and the commit it was built from (see `build.rs`).
pub(crate) const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("HOSTEXEC_GIT_COMMIT"),
    ")"
);

const EXIT_CODES: &str = "Exit status: 0 success; 1 failure; 2 usage error; 32 mount or umount \
    failed, or not a mountpoint (is-mountpoint); 124 when --timeout ran out; for exec, the \
    command's own status, 126 when it exists but cannot be executed, 127 when it is not found \
    on the host, 128+N when it was killed by signal N.\n\
    Logs: -v, -vv, -vvv, or HOSTEXEC_LOG=<filter> (e.g. HOSTEXEC_LOG=debug).\n\
    Each subcommand's --help has examples and its own exit codes.";

/// `hostexec`: act on the host from a privileged container.
#[derive(Debug, Parser)]
#[command(
    name = "hostexec",
    version = VERSION,
    about = "Run host commands, resolve host paths and manage host mounts from a privileged container",
    long_about = "Run host commands, resolve host paths and manage host mounts from a privileged \
                  container, in the host's namespaces: one tool instead of nsenter, findmnt, \
                  mountpoint and realpath.\n\n\
                  The host is either a directory holding the host's root (--host-root, default \
                  /rootfs, with the host's namespaces under <host-root>/proc/1/ns/) or a process \
                  (--target-pid, e.g. 1 with hostPID: true).",
    after_help = EXIT_CODES,
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
#[command(next_help_heading = "Global options")]
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

    /// Take the root, working directory and namespaces from this process (/proc/PID/root,
    /// /proc/PID/cwd, /proc/PID/ns/*), as nsenter -t PID -r -w
    #[arg(long, value_name = "PID", global = true, allow_hyphen_values = true)]
    pub(crate) target_pid: Option<String>,

    /// Namespaces to join, comma-separated: mnt, uts, ipc, net, pid, cgroup, time
    #[arg(long = "ns", value_name = "LIST", global = true, default_value = "mnt")]
    pub(crate) namespaces: String,

    /// Join every namespace of the target that differs from hostexec's own (nsenter -a)
    #[arg(short = 'a', long, global = true, conflicts_with = "namespaces")]
    pub(crate) all: bool,

    /// How commands reach the host's namespaces
    #[arg(long, value_enum, global = true, default_value_t = LauncherArg::HostThread)]
    pub(crate) launcher: LauncherArg,

    /// Time limit for every host command (500ms, 30s, 2m)
    #[arg(long, value_name = "DURATION", global = true, value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,

    /// JSON output, errors included (a {"error", "exit_code"} object on stdout)
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Allow mount and umount when the target's mount namespace is hostexec's own
    #[arg(long, global = true)]
    pub(crate) allow_own_namespace: bool,

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

impl LauncherArg {
    /// The flag that selects it, for messages.
    pub(crate) fn flag(self) -> &'static str {
        match self {
            LauncherArg::HostThread => "--launcher host-thread",
            LauncherArg::Nsenter => "--launcher nsenter",
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a command on the host; its status is hostexec's
    Exec(ExecArgs),
    /// Resolve paths as the host sees them (GNU realpath)
    Realpath(RealpathArgs),
    /// Print the host path of host binaries
    Which(WhichArgs),
    /// List the host's mounts (findmnt --list)
    Mounts(MountsArgs),
    /// Say whether a host path is a mount point (as mountpoint(1): exit 0 or 32)
    #[command(name = "is-mountpoint")]
    IsMountpoint(IsMountpointArgs),
    /// Mount a file system on the host (mount(8))
    Mount(MountArgs),
    /// Unmount a host mount point (umount(8))
    Umount(UmountArgs),
    /// Print a shell completion script (bash, zsh, fish)
    Completions(CompletionsArgs),
}

impl Command {
    /// The subcommand's name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Command::Exec(_) => "exec",
            Command::Realpath(_) => "realpath",
            Command::Which(_) => "which",
            Command::Mounts(_) => "mounts",
            Command::IsMountpoint(_) => "is-mountpoint",
            Command::Mount(_) => "mount",
            Command::Umount(_) => "umount",
            Command::Completions(_) => "completions",
        }
    }
}

/// `exec`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec --target-pid 1 exec -- systemctl status kubelet\n  \
    hostexec --target-pid 1 --all exec -it -- bash -l\n  \
    hostexec exec --env LC_ALL=C --cwd /var/log -- ls -l\n  \
    echo data | hostexec exec -i -- tee /tmp/x\n\n\
    Standard input: passed on when it is a pipe or a file. When it is a terminal, the command \
    gets /dev/null unless -i is given (as kubectl exec without -i); -i with a terminal needs -t.\n\
    With -t the command runs on a pty of the host (in a new session, the pty its controlling \
    terminal); with -it the local terminal is in raw mode until the command ends, keys and \
    the window size are forwarded.\n\n\
    Exit status: the command's own; 126 when it exists but cannot be executed; 127 when it is \
    not found on the host; 128+N when it was killed by signal N (or hostexec was); 124 when \
    --timeout ran out; 1 or 2 for hostexec's own failures and usage errors.")]
pub(crate) struct ExecArgs {
    /// Pass standard input on to the command, also when it is a terminal (with -t)
    #[arg(short = 'i', long)]
    pub(crate) interactive: bool,

    /// Run the command on a pty of the host, as a session leader with it as controlling
    /// terminal (-it: an interactive shell); needs --launcher host-thread
    #[arg(short = 't', long)]
    pub(crate) tty: bool,

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

    /// The command's working directory, a host path [default: /, or with --target-pid the
    /// process's working directory]
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,

    /// The command and its arguments (after --)
    #[arg(value_name = "CMD", required = true, trailing_var_arg = true, allow_hyphen_values = true, num_args = 1..)]
    pub(crate) command: Vec<OsString>,
}

/// `realpath`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec realpath /var/lib/kubelet\n  \
    hostexec realpath -m /var/lib/kubelet/pods/x/volumes\n  \
    hostexec realpath -z /etc/a /etc/b | xargs -0 ...\n\n\
    Exit status: 0 when every path resolved; 1 when one did not (the others are still \
    printed); 2 usage error; 124 --timeout ran out.")]
pub(crate) struct RealpathArgs {
    /// Every component must exist
    #[arg(
        short = 'e',
        long = "canonicalize-existing",
        conflicts_with_all = ["allow_missing", "all_but_last"]
    )]
    pub(crate) must_exist: bool,

    /// Missing components are allowed (symlink loops are still errors)
    #[arg(
        short = 'm',
        long = "canonicalize-missing",
        conflicts_with = "all_but_last"
    )]
    pub(crate) allow_missing: bool,

    /// Every component but the last must exist (the default; readlink -f)
    #[arg(short = 'E', long = "canonicalize")]
    pub(crate) all_but_last: bool,

    /// End each output line with NUL, not newline
    #[arg(short = 'z', long = "zero")]
    pub(crate) zero: bool,

    /// Absolute host paths
    #[arg(value_name = "PATH", required = true, num_args = 1..)]
    pub(crate) paths: Vec<PathBuf>,
}

/// `which`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec which mount umount findmnt\n\n\
    Exit status: 0 when every name was found; 1 when one was not (the others are still \
    printed); 2 usage error.")]
pub(crate) struct WhichArgs {
    /// Bare program names
    #[arg(value_name = "NAME", required = true, num_args = 1..)]
    pub(crate) names: Vec<OsString>,
}

/// `mounts`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec mounts -t tmpfs,overlay\n  \
    hostexec mounts -o TARGET,PROPAGATION /var/lib/kubelet\n  \
    hostexec --json mounts -t nfs4 | jq -r '.[].target'\n\n\
    Columns: TARGET SOURCE FSTYPE OPTIONS (VFS and file system options merged, as findmnt's) \
    VFS-OPTIONS FS-OPTIONS PROPAGATION ID PARENT MAJ:MIN FSROOT.\n\
    JSON: an array of objects with id, parent_id, target, source, fstype, root, options \
    (merged), vfs_options, super_options, propagation, major, minor, optional_fields; with -o, \
    only the keys of those columns.\n\n\
    Exit status: 0 success (also when -t matches nothing, as findmnt); 1 when TARGET names no \
    mount (as findmnt) or the table could not be read; 2 usage error.")]
pub(crate) struct MountsArgs {
    /// Only these file system types, comma-separated; a leading "no" negates (as findmnt -t)
    #[arg(short = 't', long = "types", value_name = "LIST")]
    pub(crate) types: Option<String>,

    /// Columns to print, comma-separated [default: TARGET,SOURCE,FSTYPE,OPTIONS]
    #[arg(short = 'o', long = "output", value_name = "COLUMNS", value_parser = parse_columns)]
    pub(crate) columns: Option<Columns>,

    /// Only the mount on this mount point (or of this source), as findmnt TARGET
    #[arg(value_name = "TARGET")]
    pub(crate) target: Option<OsString>,
}

/// The columns of `mounts -o`, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Columns(pub(crate) Vec<Column>);

/// A column of `mounts -o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Column {
    Target,
    Source,
    FsType,
    Options,
    VfsOptions,
    FsOptions,
    Propagation,
    Id,
    Parent,
    MajMin,
    FsRoot,
}

impl Column {
    /// Every column with its heading, in `--help`'s order.
    pub(crate) const ALL: [(Column, &'static str); 11] = [
        (Column::Target, "TARGET"),
        (Column::Source, "SOURCE"),
        (Column::FsType, "FSTYPE"),
        (Column::Options, "OPTIONS"),
        (Column::VfsOptions, "VFS-OPTIONS"),
        (Column::FsOptions, "FS-OPTIONS"),
        (Column::Propagation, "PROPAGATION"),
        (Column::Id, "ID"),
        (Column::Parent, "PARENT"),
        (Column::MajMin, "MAJ:MIN"),
        (Column::FsRoot, "FSROOT"),
    ];

    /// The default columns.
    pub(crate) const DEFAULT: [Column; 4] = [
        Column::Target,
        Column::Source,
        Column::FsType,
        Column::Options,
    ];

    /// The heading.
    pub(crate) fn heading(self) -> &'static str {
        Column::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("?", |(_, h)| h)
    }
}

/// Parses `-o TARGET,SOURCE` (case-insensitive, as findmnt).
fn parse_columns(text: &str) -> Result<Columns, String> {
    let mut out = Vec::new();
    for name in text.split(',') {
        let name = name.trim();
        let col = Column::ALL
            .iter()
            .find(|(_, h)| h.eq_ignore_ascii_case(name))
            .map(|(c, _)| *c)
            .ok_or_else(|| {
                let all: Vec<&str> = Column::ALL.iter().map(|(_, h)| *h).collect();
                format!("unknown column {name:?} (known: {})", all.join(", "))
            })?;
        out.push(col);
    }
    Ok(Columns(out))
}

/// `is-mountpoint`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec is-mountpoint -q /var/lib/kubelet/pods/x/volumes/y && echo mounted\n\n\
    Exit status: 0 a mount point; 32 not a mount point; 1 the path could not be checked \
    (missing, permission); 2 usage error; 124 --timeout ran out.")]
pub(crate) struct IsMountpointArgs {
    /// Print nothing; the exit status says it (mountpoint -q)
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,

    /// An absolute host path
    #[arg(value_name = "PATH")]
    pub(crate) path: PathBuf,
}

/// `mount`.
#[derive(Debug, Args)]
#[command(
    override_usage = "hostexec mount [OPTIONS] [-t FSTYPE] [-o OPTS] SOURCE TARGET\n       \
                      hostexec mount --bind|--rbind [-o OPTS] SOURCE TARGET\n       \
                      hostexec mount -o remount,OPTS TARGET",
    after_help = "Examples:\n  \
    hostexec mount -t tmpfs -o size=64m,mode=0755 tmpfs /mnt/scratch\n  \
    hostexec mount --bind -o ro /var/lib/data /mnt/data\n  \
    hostexec mount -o remount,ro /mnt/data\n  \
    hostexec mount --beneath /var/lib/kubelet --bind /srv/vol /var/lib/kubelet/pods/x/volumes/v\n  \
    hostexec mount -t cifs --sensitive-options password=s3cret //srv/share /mnt/share\n\n\
    Exit status: 0 mounted; 32 the mount failed (as mount(8)); 2 usage error; 124 --timeout \
    ran out; 1 the host could not be reached."
)]
pub(crate) struct MountArgs {
    /// File system type (tmpfs, ext4, …)
    #[arg(short = 't', long = "types", value_name = "FSTYPE")]
    pub(crate) fstype: Option<String>,

    /// Mount options, comma-separated
    #[arg(short = 'o', long = "options", value_name = "OPTS")]
    pub(crate) options: Option<String>,

    /// Bind-mount SOURCE (a host directory or file) on TARGET (mount --bind)
    #[arg(short = 'B', long, conflicts_with_all = ["rbind", "fstype"])]
    pub(crate) bind: bool,

    /// Bind-mount SOURCE with every mount below it (mount --rbind)
    #[arg(short = 'R', long, conflicts_with = "fstype")]
    pub(crate) rbind: bool,

    /// Options that carry secrets: passed to mount, never shown in logs or errors
    #[arg(long, value_name = "OPTS")]
    pub(crate) sensitive_options: Option<String>,

    /// Do not wrap the mount in a systemd scope even where systemd runs
    #[arg(long)]
    pub(crate) no_systemd: bool,

    #[command(flatten)]
    pub(crate) route: RouteArgs,

    /// What to mount (a device, a directory for --bind, or a name such as tmpfs); with
    /// -o remount and one argument, that argument is TARGET
    #[arg(value_name = "SOURCE")]
    pub(crate) source: OsString,

    /// Where to mount it, an absolute host path
    #[arg(value_name = "TARGET")]
    pub(crate) target: Option<PathBuf>,
}

/// How `mount` and `umount` look up their paths and which route they take.
#[derive(Debug, Args)]
pub(crate) struct RouteArgs {
    /// Follow a symlink that is the final component of TARGET (or of a bind SOURCE); by
    /// default such a path is refused, since it may have been swapped since it was checked
    #[arg(long, conflicts_with = "beneath")]
    pub(crate) follow: bool,

    /// TARGET (and a bind SOURCE) must lie below the trusted host directory BASE, reached
    /// without any symlink below BASE
    #[arg(long, value_name = "BASE")]
    pub(crate) beneath: Option<PathBuf>,

    /// Use the host's mount(8)/umount(8) instead of the kernel's mount calls
    #[arg(long)]
    pub(crate) helper: bool,
}

/// `umount`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec umount /mnt/scratch\n  \
    hostexec umount --force-after 10s /mnt/nfs\n\n\
    Exit status: 0 unmounted; 32 the unmount failed or TARGET is not mounted (as umount(8)); \
    2 usage error; 124 --timeout ran out; 1 the host could not be reached.")]
pub(crate) struct UmountArgs {
    /// Detach now, clean up when no longer busy (umount -l)
    #[arg(short = 'l', long)]
    pub(crate) lazy: bool,

    /// If the unmount has not finished after DURATION, force it (umount -f)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) force_after: Option<Duration>,

    #[command(flatten)]
    pub(crate) route: RouteArgs,

    /// The mount point, an absolute host path
    #[arg(value_name = "TARGET")]
    pub(crate) target: PathBuf,
}

/// `completions`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hostexec completions bash > /etc/bash_completion.d/hostexec\n  \
    hostexec completions zsh > \"${fpath[1]}/_hostexec\"\n  \
    hostexec completions fish > ~/.config/fish/completions/hostexec.fish\n\n\
    Exit status: 0; 2 usage error.")]
pub(crate) struct CompletionsArgs {
    /// The shell
    #[arg(value_name = "SHELL")]
    pub(crate) shell: ShellArg,
}

/// The shells `completions` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShellArg {
    /// GNU bash
    Bash,
    /// zsh
    Zsh,
    /// fish
    Fish,
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
    fn columns() {
        assert_eq!(
            parse_columns("target,MAJ:MIN,fs-options").unwrap().0,
            [Column::Target, Column::MajMin, Column::FsOptions]
        );
        let e = parse_columns("TARGET,SIZE").unwrap_err();
        assert!(e.contains("unknown column \"SIZE\""), "{e}");
        assert!(e.contains("PROPAGATION"), "{e}");
        assert_eq!(Column::FsRoot.heading(), "FSROOT");
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
        for pair in [["-e", "-m"], ["-e", "-E"], ["-m", "-E"]] {
            assert_eq!(
                kind(&["hostexec", "realpath", pair[0], pair[1], "/"]),
                ErrorKind::ArgumentConflict
            );
        }
        assert_eq!(
            kind(&["hostexec", "mount", "--bind", "--rbind", "/a", "/b"]),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            kind(&["hostexec", "--all", "--ns", "net", "mounts"]),
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
            kind(&["hostexec", "which"]),
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
        assert_eq!(
            kind(&["hostexec", "mounts", "-o", "NOPE"]),
            ErrorKind::ValueValidation
        );
    }
}
