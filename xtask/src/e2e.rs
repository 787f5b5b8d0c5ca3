//! `cargo xtask e2e`: the `hostexec` binary in a real OCI container (runc), in the DaemonSet
//! shape of docs/deploy.md, against a simulated node; every check made from outside the
//! container.
//!
//! The node is a process with its own PID and mount namespaces (and its own `/proc`), whose
//! `/` is `rshared` as on a systemd host: `hostexec_testing`'s sandbox in its `node` form,
//! with a private tmpfs only the node sees. runc runs *on the node* (`nsenter -t NODE -m -p
//! runc …`), so that a container without a PID namespace of its own is in the node's PID
//! namespace (`hostPID: true`) and a bind of `/` is the node's `/`. The bundle is built here:
//! busybox-static, the `hostexec` binary and the shared libraries `ldd` names for it (none
//! for a static build), on a read-only root.
//!
//! How docs/deploy.md's DaemonSet maps onto the OCI config (see [`config`]):
//!
//! | manifest | OCI config |
//! |---|---|
//! | `privileged: true` | every capability of the bounding set; no seccomp, AppArmor, masked or read-only paths |
//! | `hostPID: true` | no `pid` namespace (the node's) |
//! | hostPath `/` at `/rootfs`, `mountPropagation: HostToContainer` | a `bind` mount of `/` at `/rootfs` with `rbind`, `rslave` |
//!
//! Five containers: the DaemonSet as written; one with only `CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`
//! and `CAP_SYS_CHROOT`, in which every operation must work; and three with every capability
//! but one of those, whose errors must name the one that is missing. Checks, each
//! against the node's own view (its mountinfo, its processes, GNU realpath run in it):
//! exec reads a node-only file; realpath equals the node's; a tmpfs mounted through the
//! container is in the node's mount table and propagates into the container's `/rootfs`;
//! umount removes it from both; a timeout leaves no process on the node; `exec -it` under
//! `runc exec -t` (driven from a pty made here) runs a session on a node pty, with the window
//! size and the exit status passed through.
//!
//! Everything is removed on every way out: containers (`runc delete --force`, which removes
//! their cgroups too), the node (its PID namespace dies with its init, and with it every
//! process and mount in it), the bundle and runc's state directory.

use std::ffi::OsStr;
use std::fmt::Display;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hostexec_testing::sandbox::{can_use_namespaces, SandboxHost};
use serde_json::{json, Value};

/// Capability names by bit (capability.h), for the bounding set read from /proc.
const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The capabilities hostexec needs, and no others.
const MINIMAL: [&str; 3] = ["CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_CHROOT"];

/// Where `hostexec` is in the container.
const BIN_IN_CONTAINER: &str = "/usr/local/bin/hostexec";

/// Runs the e2e. `args`: `[--bin PATH]` tests that binary instead of building the CLI.
pub(crate) fn e2e(args: &[String]) -> Result<(), String> {
    let bin = match args {
        [] => crate::demo::build_hostexec()?,
        [flag, path] if flag == "--bin" => PathBuf::from(path),
        _ => return Err("usage: cargo xtask e2e [--bin PATH]".into()),
    };
    if !can_use_namespaces() {
        return Err(
            "the e2e needs root (CAP_SYS_ADMIN): it creates namespaces and runs runc".into(),
        );
    }
    for (tool, package) in [
        ("runc", "runc"),
        ("busybox", "busybox-static"),
        ("ldd", "libc-bin"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("setsid", "util-linux"),
    ] {
        if which(tool).is_none() {
            return Err(format!("{tool} is missing (apt-get install {package})"));
        }
    }
    let started = Instant::now();
    let work = crate::ci::workspace_root()?
        .join("target/xtask-e2e")
        .join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = run(&bin, &work);
    let removed = std::fs::remove_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()));
    result?;
    removed?;
    println!(
        "e2e: all checks passed in {:.1}s (after the build)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Fails with `what` unless `ok`.
fn check(ok: bool, what: impl Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}"))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn io_err(what: impl Display) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// The node, runc's state and the containers; `Drop` deletes the containers (the node's
/// own `Drop` then ends its PID namespace).
struct Cluster {
    node: SandboxHost,
    state: PathBuf,
    containers: Vec<String>,
}

impl Cluster {
    /// `nsenter -t NODE -m -p -- runc --root STATE args…`: runc as the node runs it, under
    /// coreutils `timeout`, so that a hang fails the e2e instead of stalling CI. `timeout`
    /// puts the command in a process group of its own unless `foreground` (needed on a
    /// terminal, where only the foreground group may read).
    fn runc_cmd(&self, args: &[&OsStr], foreground: bool) -> Command {
        let mut c = Command::new("timeout");
        if foreground {
            c.arg("--foreground");
        }
        c.args([
            "--kill-after=5",
            "60",
            "nsenter",
            "-t",
            &self.node.pid().to_string(),
            "-m",
            "-p",
            "--",
            "runc",
            "--root",
        ])
        .arg(&self.state)
        .args(args);
        c
    }

    fn runc(&self, args: &[&OsStr]) -> Result<Output, String> {
        self.runc_cmd(args, false)
            .stdin(Stdio::null())
            .output()
            .map_err(io_err("cannot run nsenter/runc"))
    }

    /// Starts container `id` from `bundle`, detached. Its process inherits runc's standard
    /// streams, so they are not pipes (a pipe would stay open as long as the container).
    fn start(&mut self, id: &str, bundle: &Path) -> Result<(), String> {
        let log = bundle.join("runc-run.err");
        let err = std::fs::File::create(&log).map_err(io_err(log.display()))?;
        let status = self
            .runc_cmd(
                &[
                    "run".as_ref(),
                    "--detach".as_ref(),
                    "--bundle".as_ref(),
                    bundle.as_os_str(),
                    id.as_ref(),
                ],
                false,
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .status()
            .map_err(io_err("cannot run nsenter/runc"))?;
        self.containers.push(id.to_owned());
        check(
            status.success(),
            format!(
                "runc run {id}: {status} {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        )
    }

    /// `runc exec ID hostexec --target-pid 1 args…` in the container.
    fn hostexec(&self, id: &str, args: &[&str]) -> Result<Output, String> {
        let mut argv: Vec<&OsStr> = vec![
            "exec".as_ref(),
            id.as_ref(),
            BIN_IN_CONTAINER.as_ref(),
            "--target-pid".as_ref(),
            "1".as_ref(),
        ];
        argv.extend(args.iter().map(OsStr::new));
        let out = self.runc(&argv)?;
        println!("  [{id}] $ hostexec --target-pid 1 {}", args.join(" "));
        for l in text(&out.stdout).lines().chain(text(&out.stderr).lines()) {
            println!("      {l}");
        }
        check(
            !text(&out.stderr).contains("panicked"),
            format!("hostexec panicked: {}", text(&out.stderr)),
        )?;
        Ok(out)
    }

    /// A command in the container, not through hostexec (busybox).
    fn in_container(&self, id: &str, args: &[&str]) -> Result<Output, String> {
        let mut argv: Vec<&OsStr> = vec!["exec".as_ref(), id.as_ref(), "/bin/busybox".as_ref()];
        argv.extend(args.iter().map(OsStr::new));
        self.runc(&argv)
    }

    /// The node's mount table (its init's mountinfo, read from here).
    fn node_mounts(&self) -> Result<String, String> {
        std::fs::read_to_string(format!("/proc/{}/mountinfo", self.node.pid()))
            .map_err(io_err("the node's mountinfo"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in std::mem::take(&mut self.containers) {
            let _ = self.runc(&["delete".as_ref(), "--force".as_ref(), id.as_ref()]);
        }
    }
}

/// Mount points (field 5 of mountinfo) with the source (after " - TYPE ").
fn mount_points(mountinfo: &str) -> Vec<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?;
            let (_, after) = l.split_once(" - ")?;
            let source = after.split(' ').nth(1)?;
            Some((point.to_owned(), source.to_owned()))
        })
        .collect()
}

fn run(bin: &Path, work: &Path) -> Result<(), String> {
    let rootfs = work.join("rootfs");
    build_rootfs(bin, &rootfs)?;
    check_manifest()?;
    let caps = bounding_set()?;
    let id = |v: &str| format!("hostexec-e2e-{}-{v}", std::process::id());
    let variants = [
        ("daemonset", None),
        ("no-sys-admin", Some("CAP_SYS_ADMIN")),
        ("no-sys-ptrace", Some("CAP_SYS_PTRACE")),
        ("no-sys-chroot", Some("CAP_SYS_CHROOT")),
        ("minimal", None),
    ];
    for (name, drop) in variants {
        let bundle = work.join(name);
        std::fs::create_dir_all(&bundle).map_err(io_err(bundle.display()))?;
        let kept: Vec<&str> = if name == "minimal" {
            MINIMAL.to_vec()
        } else {
            caps.iter().copied().filter(|c| Some(*c) != drop).collect()
        };
        let cfg = config(&rootfs, &kept, &id(name));
        std::fs::write(bundle.join("config.json"), cfg.to_string())
            .map_err(io_err("config.json"))?;
    }
    let node = SandboxHost::builder()
        .node()
        .start()
        .map_err(|e| format!("cannot start the simulated node: {e}"))?;
    let state = work.join("runc-state");
    let mut cl = Cluster {
        node,
        state,
        containers: Vec::new(),
    };
    println!(
        "e2e: simulated node {} (own PID and mount namespaces, / rshared); containers by runc \
         on it",
        cl.node.pid()
    );
    for (name, _) in variants {
        cl.start(&id(name), &work.join(name))?;
    }
    let ds = id("daemonset");
    let scratch = cl.node.scratch().to_path_buf();
    let s = |p: &str| scratch.join(p).display().to_string();
    let io = |e: std::io::Error| format!("populating the node: {e}");

    // 1. exec reads a file only the node has.
    let secret = scratch.join("node-only");
    cl.node.write_file(&secret, b"on the node\n").map_err(io)?;
    check(!secret.exists(), "the node's file is not visible here")?;
    let theirs = cl.in_container(&ds, &["cat", &s("node-only")])?;
    check(
        !theirs.status.success(),
        "the node's file is not in the container's own view",
    )?;
    let out = cl.hostexec(&ds, &["exec", "--", "cat", &s("node-only")])?;
    check(
        out.status.code() == Some(0) && out.stdout == b"on the node\n",
        "exec read the node-only file",
    )?;

    // 2. realpath equals the node's GNU realpath.
    cl.node
        .mkdir_all(&scratch.join("releases/v2"))
        .map_err(io)?;
    cl.node
        .write_file(&scratch.join("releases/v2/config"), b"x")
        .map_err(io)?;
    cl.node
        .symlink("releases/v2", &scratch.join("current"))
        .map_err(io)?;
    cl.node
        .symlink(scratch.join("current"), &scratch.join("app"))
        .map_err(io)?;
    // GNU's default is -E (coreutils 9.1 has no -E flag itself).
    for (flag, path) in [
        ("-e", s("app/config")),
        ("-E", s("app/new")),
        ("-m", s("app/missing/deeper/../x")),
    ] {
        let ours = cl.hostexec(&ds, &["realpath", flag, &path])?;
        let gnu_flag = if flag == "-E" {
            None
        } else {
            Some(OsStr::new(flag))
        };
        let mut argv: Vec<&OsStr> = vec!["realpath".as_ref()];
        argv.extend(gnu_flag);
        argv.push(path.as_ref());
        let gnu = cl.node.oracle(&argv);
        check(
            ours.status.success() && gnu.status.success() && ours.stdout == gnu.stdout,
            format!(
                "realpath {flag} {path}: ours {:?}, the node's {:?} {}",
                text(&ours.stdout),
                text(&gnu.stdout),
                text(&gnu.stderr)
            ),
        )?;
    }

    // 3. A mount through the container: in the node's table, propagated into /rootfs.
    cl.node.mkdir_all(&scratch.join("mnt")).map_err(io)?;
    let target = s("mnt");
    let out = cl.hostexec(
        &ds,
        &[
            "mount",
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "hostexec-e2e",
            &target,
        ],
    )?;
    check(
        out.status.code() == Some(0),
        format!("mount exited {}", out.status),
    )?;
    let node_has = |m: &str| mount_points(m).contains(&(target.clone(), "hostexec-e2e".to_owned()));
    check(
        node_has(&cl.node_mounts()?),
        "the node's mount table has the tmpfs",
    )?;
    let rootfs_target = format!("/rootfs{target}");
    let in_ctr = cl.in_container(&ds, &["cat", "/proc/self/mountinfo"])?;
    check(
        mount_points(&text(&in_ctr.stdout))
            .contains(&(rootfs_target.clone(), "hostexec-e2e".to_owned())),
        format!("the mount propagated into the container's {rootfs_target}"),
    )?;
    // A file written in the node's view is read through the container's /rootfs.
    let write = cl.node.oracle(&[
        "sh".as_ref(),
        "-c".as_ref(),
        "echo through-rootfs > \"$1/probe\"".as_ref(),
        "sh".as_ref(),
        target.as_ref(),
    ]);
    check(
        write.status.success(),
        "writing into the new mount on the node",
    )?;
    let read = cl.in_container(&ds, &["cat", &format!("{rootfs_target}/probe")])?;
    check(
        read.stdout == b"through-rootfs\n",
        format!("the container reads the node's new mount at {rootfs_target}"),
    )?;

    // 4. umount removes it from both.
    let out = cl.hostexec(&ds, &["umount", &target])?;
    check(
        out.status.code() == Some(0),
        format!("umount exited {}", out.status),
    )?;
    check(
        !node_has(&cl.node_mounts()?),
        "the node's table no longer has it",
    )?;
    let in_ctr = cl.in_container(&ds, &["cat", "/proc/self/mountinfo"])?;
    check(
        !mount_points(&text(&in_ctr.stdout))
            .iter()
            .any(|(p, _)| *p == rootfs_target),
        "the unmount propagated into /rootfs",
    )?;

    // 5. A timeout leaves no process on the node.
    let t0 = Instant::now();
    let out = cl.hostexec(
        &ds,
        &[
            "--timeout",
            "1s",
            "exec",
            "--",
            "sh",
            "-c",
            "sleep 31337 & exec sleep 31338",
        ],
    )?;
    check(
        out.status.code() == Some(124),
        format!("timeout exited {}", out.status),
    )?;
    check(
        t0.elapsed() < Duration::from_secs(10),
        format!("the timeout took {:?}", t0.elapsed()),
    )?;
    let left = live_processes(&["31337", "31338"]);
    check(
        left.is_empty(),
        format!("processes left on the node: {left:?}"),
    )?;

    // 6. exec -it under runc exec -t, from a terminal.
    exec_it(&cl, &ds)?;

    // 7. The variants: each error names the capability that is missing.
    // 7. The three capabilities are enough: every operation works with them alone.
    let minimal = id("minimal");
    for args in [
        &["mounts", "-t", "tmpfs"][..],
        &["exec", "--", "cat", &s("node-only")],
        &["mount", "-t", "tmpfs", "hostexec-e2e", &s("mnt")],
        &["umount", &s("mnt")],
        &["--all", "exec", "--", "true"],
        &["exec", "-it", "--", "true"],
    ] {
        let out = cl.hostexec(&minimal, args)?;
        check(
            out.status.code() == Some(0),
            format!("with {MINIMAL:?} only, {args:?} exited {}", out.status),
        )?;
    }
    check(
        !node_has(&cl.node_mounts()?),
        "the node's table is clean again",
    )?;

    // 8. Without one of them, the error names it.
    for (name, missing) in [
        ("no-sys-admin", "CAP_SYS_ADMIN"),
        ("no-sys-ptrace", "CAP_SYS_PTRACE"),
        ("no-sys-chroot", "CAP_SYS_CHROOT"),
    ] {
        let out = cl.hostexec(&id(name), &["mounts"])?;
        let err = text(&out.stderr);
        check(
            out.status.code() == Some(1),
            format!("{name}: exit {}", out.status),
        )?;
        check(
            err.contains(&format!("hostexec lacks {missing};")),
            format!("{name}: the error names {missing}: {err}"),
        )?;
    }
    // Teardown, checked: no container left in runc's state, no cgroup, no node process.
    let node_pid = cl.node.pid();
    let state = cl.state.clone();
    drop(cl);
    let mut left: Vec<String> = std::fs::read_dir(&state)
        .map(|d| {
            d.flatten()
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    for (name, _) in variants {
        // cgroup v1 (one hierarchy checked) or v2.
        for cg in [
            format!("/sys/fs/cgroup/pids/{}", id(name)),
            format!("/sys/fs/cgroup/{}", id(name)),
        ] {
            if Path::new(&cg).exists() {
                left.push(cg);
            }
        }
    }
    let stat = std::fs::read_to_string(format!("/proc/{node_pid}/stat")).unwrap_or_default();
    if stat
        .rsplit_once(") ")
        .is_some_and(|(_, r)| !r.starts_with('Z'))
    {
        left.push(format!("the node, process {node_pid}"));
    }
    check(left.is_empty(), format!("left behind: {left:?}"))
}

/// Processes (here, and so on the node) that are alive and whose command line ends with one
/// of `markers`.
fn live_processes(markers: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec!["cannot read /proc".into()];
    };
    for e in dir.flatten() {
        let p = e.path();
        let Ok(cmdline) = std::fs::read(p.join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .collect();
        if args
            .last()
            .is_some_and(|a| markers.iter().any(|m| a == &m.as_bytes()))
        {
            let shown: Vec<u8> = cmdline
                .iter()
                .map(|b| if *b == 0 { b' ' } else { *b })
                .collect();
            found.push(format!("{}: {}", p.display(), text(&shown)));
        }
    }
    found
}

/// `exec -it` from a terminal: a pty made here is the terminal of `runc exec -t`, which gives
/// hostexec a pty of the container; hostexec gives the command one of the node's.
fn exec_it(cl: &Cluster, id: &str) -> Result<(), String> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let pty = |e: rustix::io::Errno| format!("the e2e's pty: {e}");
    let controller =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).map_err(pty)?;
    grantpt(&controller).map_err(pty)?;
    unlockpt(&controller).map_err(pty)?;
    let name = ptsname(&controller, Vec::new()).map_err(pty)?;
    let tty_path = PathBuf::from(OsStr::new(&*name.to_string_lossy()));
    let mut size = rustix::termios::tcgetwinsize(&controller).map_err(pty)?;
    size.ws_row = 33;
    size.ws_col = 97;
    rustix::termios::tcsetwinsize(&controller, size).map_err(pty)?;
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&tty_path)
            .map_err(io_err(tty_path.display()))
    };
    let script = "tty; stty size; read x; echo \"got:$x\"; exit 7";
    println!("  [{id}] $ runc exec -t {id} hostexec --target-pid 1 exec -it -- sh -c '{script}'");
    let mut args: Vec<&OsStr> = vec![
        "exec".as_ref(),
        "-t".as_ref(),
        id.as_ref(),
        BIN_IN_CONTAINER.as_ref(),
        "--target-pid".as_ref(),
        "1".as_ref(),
    ];
    args.extend(["exec", "-it", "--", "sh", "-c", script].map(OsStr::new));
    let runc = cl.runc_cmd(&args, true);
    // A session of its own with the pty as controlling terminal, as a login shell has.
    let mut cmd = Command::new("setsid");
    cmd.arg("-c").arg(runc.get_program()).args(runc.get_args());
    let mut child = cmd
        .stdin(open()?)
        .stdout(open()?)
        .stderr(open()?)
        .spawn()
        .map_err(io_err("cannot run setsid"))?;
    let mut seen = Vec::new();
    let result = (|| {
        read_until(&controller, &mut seen, |s| {
            s.contains("got:") || s.matches('\n').count() >= 2
        })?;
        check(
            text(&seen).contains("33 97"),
            format!("the window size reached the node's pty: {:?}", text(&seen)),
        )?;
        write_all(controller.as_fd(), b"hello\r")?;
        read_until(&controller, &mut seen, |s| s.contains("got:hello"))
    })();
    let status = wait_bounded(&mut child, Duration::from_secs(10));
    for l in text(&seen).lines() {
        println!("      {}", l.trim_end_matches('\r'));
    }
    result?;
    let status = status?;
    check(
        status.code() == Some(7),
        format!("exec -it passed the exit status 7 through: {status}"),
    )?;
    let shown = text(&seen);
    let first = shown.lines().next().unwrap_or("").trim();
    check(
        first.starts_with("/dev/pts/"),
        format!("the command's stdin is a pty: {first:?}"),
    )
}

fn write_all(fd: std::os::fd::BorrowedFd<'_>, mut buf: &[u8]) -> Result<(), String> {
    while !buf.is_empty() {
        let n = rustix::io::write(fd, buf).map_err(|e| format!("writing the pty: {e}"))?;
        buf = &buf[n..];
    }
    Ok(())
}

/// Reads the pty controller into `seen` until `done` holds on what was read (10 s at most).
fn read_until(
    controller: &OwnedFd,
    seen: &mut Vec<u8>,
    done: impl Fn(&str) -> bool,
) -> Result<(), String> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&text(seen)) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out reading the pty; saw {:?}", text(seen)));
        }
        let mut fds = [PollFd::new(controller, PollFlags::IN)];
        let ts = Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        poll(&mut fds, Some(&ts)).map_err(|e| format!("poll: {e}"))?;
        if fds[0].revents().is_empty() {
            continue;
        }
        let mut buf = [0u8; 4096];
        match rustix::io::read(controller, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => {
                return Err(format!("the pty closed; saw {:?}", text(seen)))
            }
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(e) => return Err(format!("reading the pty: {e}")),
        }
    }
    Ok(())
}

fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().map_err(io_err("waiting"))? {
            return Ok(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("runc exec -t did not end".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// This process's capability bounding set, by name: what `privileged: true` grants here.
fn bounding_set() -> Result<Vec<&'static str>, String> {
    let status =
        std::fs::read_to_string("/proc/self/status").map_err(io_err("/proc/self/status"))?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .ok_or("no CapBnd in /proc/self/status")?;
    let bits = u64::from_str_radix(hex.trim(), 16).map_err(|e| format!("CapBnd: {e}"))?;
    Ok(CAPS
        .iter()
        .enumerate()
        .filter(|(bit, _)| bits & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect())
}

/// The OCI runtime config of docs/deploy.md's DaemonSet (see the module docs), with `caps`.
fn config(rootfs: &Path, caps: &[&str], id: &str) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/busybox", "sleep", "3600"],
            "env": ["PATH=/usr/local/bin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": false,
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "hostexec-e2e",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]},
            // hostPath / at /rootfs, mountPropagation: HostToContainer.
            {"destination": "/rootfs", "type": "bind", "source": "/", "options": ["rbind", "rslave"]},
        ],
        "linux": {
            // hostPID: no pid namespace of its own.
            "namespaces": [
                {"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}
            ],
            "cgroupsPath": format!("/{id}"),
            "rootfsPropagation": "rslave",
        },
    })
}

/// The container's root: busybox-static at /bin/busybox, hostexec at [`BIN_IN_CONTAINER`]
/// and the libraries `ldd` names for it, at their paths.
fn build_rootfs(bin: &Path, rootfs: &Path) -> Result<(), String> {
    for d in [
        "bin",
        "usr/local/bin",
        "proc",
        "dev",
        "sys",
        "tmp",
        "rootfs",
    ] {
        std::fs::create_dir_all(rootfs.join(d)).map_err(io_err(d))?;
    }
    let busybox = which("busybox").ok_or("busybox is missing")?;
    let ldd = |p: &Path| -> Result<Output, String> {
        Command::new("ldd").arg(p).output().map_err(io_err("ldd"))
    };
    let bb = ldd(&busybox)?;
    check(
        !bb.status.success(),
        format!(
            "{} must be static (apt-get install busybox-static): {}",
            busybox.display(),
            text(&bb.stdout)
        ),
    )?;
    copy(&busybox, &rootfs.join("bin/busybox"))?;
    copy(bin, &rootfs.join(BIN_IN_CONTAINER.trim_start_matches('/')))?;
    let libs = ldd(bin)?;
    let mut n = 0;
    if libs.status.success() {
        for line in text(&libs.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux… (0x…)".
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line
                    .split_whitespace()
                    .next()
                    .filter(|p| p.starts_with('/')),
            };
            if let Some(p) = path.filter(|p| p.starts_with('/')) {
                let to = rootfs.join(p.trim_start_matches('/'));
                if let Some(dir) = to.parent() {
                    std::fs::create_dir_all(dir).map_err(io_err(dir.display()))?;
                }
                copy(Path::new(p), &to)?;
                n += 1;
            }
        }
    }
    println!(
        "e2e: bundle rootfs {}: busybox-static, {} and {n} libraries{}",
        rootfs.display(),
        bin.display(),
        if n == 0 { " (a static build)" } else { "" }
    );
    Ok(())
}

/// Copies a file, following symlinks (`/lib64/ld-linux-x86-64.so.2` is one); a hard link
/// when the file system allows (the debug binary is large).
fn copy(from: &Path, to: &Path) -> Result<(), String> {
    let from = &std::fs::canonicalize(from).map_err(io_err(from.display()))?;
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("copying {} to {}: {e}", from.display(), to.display()))
}

/// docs/deploy.md's DaemonSet must be the shape [`config`] runs: fails if the manifest lost
/// one of the settings the e2e maps.
fn check_manifest() -> Result<(), String> {
    let doc = std::fs::read_to_string(crate::ci::workspace_root()?.join("docs/deploy.md"))
        .map_err(io_err("docs/deploy.md"))?;
    let yaml = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split_once("```"))
        .map(|(y, _)| y)
        .ok_or("docs/deploy.md has no yaml block")?;
    for line in [
        "kind: DaemonSet",
        "hostPID: true",
        "privileged: true",
        "mountPath: /rootfs",
        "mountPropagation: HostToContainer",
        "hostPath: {path: /, type: Directory}",
    ] {
        check(
            yaml.contains(line),
            format!("docs/deploy.md's DaemonSet (its first yaml block) says {line:?}"),
        )?;
    }
    Ok(())
}
