//! `cargo xtask bench [--quick] [FILTER]`: runs the criterion benchmarks of hostexec-nsenter,
//! hostexec-mount and hostexec-cli, reads criterion's estimates from this run only, and writes the one
//! benchmark table of docs/BENCHMARKS.md.
//!
//! Why it is built this way:
//! - every ratio divides two estimates of the same run: the criterion output directory
//!   (`CRITERION_HOME`) is emptied before the run, so no stale estimate from an older run (or
//!   another machine state) can be paired with a fresh one;
//! - the statistic is criterion's median with its 95 % bootstrap interval: the machine has 2
//!   shared cores, and the median is the estimate that load spikes from other processes move
//!   least; the ratio's interval is the worst case of both intervals;
//! - only a full default run writes docs/BENCHMARKS.md: a `--quick` or filtered run is a smoke
//!   run, and its table goes to the target directory instead (a committed table must come from
//!   a full measurement);
//! - other load is measured, not guessed: /proc/loadavg before and after, and the CPU time the
//!   whole machine spent busy during the run minus the CPU time of the benchmark processes
//!   themselves (our waited-for children, /proc/self/stat `cutime`+`cstime`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The benchmark binaries this table is built from: (package, bench target).
const BENCHES: [(&str, &str); 4] = [
    ("hostexec-nsenter", "nsenter"),
    ("hostexec-mount", "mounts"),
    ("hostexec-cli", "cli"),
    ("hostexec-cli", "mounts_cli"),
];

/// Hand-written analysis kept across regenerations of docs/BENCHMARKS.md.
const NOTES_BEGIN: &str = "<!-- notes: kept by cargo xtask bench -->";
const NOTES_END: &str = "<!-- /notes -->";

/// Linux reports /proc/stat and /proc/PID/stat times in USER_HZ, 100 on every architecture
/// Linux supports for userland.
const USER_HZ: f64 = 100.0;

/// What a row's ratio (hostexec time / reference time) must be.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The ratio is at most this.
    AtMost(f64),
    /// No target: the row is there for context.
    None,
}

/// One row of the table: hostexec's benchmark against the reference route's, same run.
#[derive(Debug)]
struct Row {
    operation: String,
    ours: String,
    reference: String,
    reference_label: String,
    target: Target,
    /// The wording of the target in the table.
    target_label: String,
}

fn rows() -> Vec<Row> {
    let row = |operation: &str,
               ours: &str,
               reference: &str,
               reference_label: &str,
               target: Target,
               target_label: &str| Row {
        operation: operation.to_string(),
        ours: ours.to_string(),
        reference: reference.to_string(),
        reference_label: reference_label.to_string(),
        target,
        target_label: target_label.to_string(),
    };
    let mut v = vec![
        row(
            "`resolve` (MustExist, a relative and an absolute link on the way)",
            "resolve/hostexec",
            "resolve/go_nsenter_realpath",
            "Go: `nsenter --mount=… -- realpath -e P`",
            Target::AtMost(1.0 / 150.0),
            "≥ 150× faster",
        ),
        row(
            "`resolve` against the kernel floor",
            "resolve/hostexec",
            "resolve/kernel_floor_openat2_readlink",
            "one `openat2(RESOLVE_IN_ROOT)` + readlink of `/proc/self/fd/N`",
            Target::AtMost(2.5),
            "≤ 2.5×",
        ),
        row(
            "`resolve` while 100 calls are stuck in a hung FUSE mount",
            "resolve_while_stuck/hostexec_100_stuck",
            "resolve/hostexec",
            "the same resolve, idle (same run)",
            Target::AtMost(1.2),
            "within 1.2×",
        ),
        row(
            "`HostFs::stat`",
            "stat/hostexec",
            "stat/statx_direct",
            "one `statx` relative to the host root descriptor",
            Target::AtMost(1.5),
            "≤ 1.5×",
        ),
        row(
            "the safe kernel route of a `stat`: `openat2(RESOLVE_IN_ROOT|RESOLVE_CACHED)` + \
             `statx` of the descriptor + `close`",
            "stat/safe_floor_openat2_statx",
            "stat/statx_direct",
            "one `statx` relative to the host root descriptor",
            Target::None,
            "—",
        ),
        row(
            "`HostFs::stat` against the safe kernel route",
            "stat/hostexec",
            "stat/safe_floor_openat2_statx",
            "`openat2(RESOLVE_IN_ROOT|RESOLVE_CACHED)` + `statx` of the descriptor + `close`",
            Target::None,
            "—",
        ),
        row(
            "`hostexec realpath -e` over 300 paths, one process (start-up included)",
            "cli_realpath_300/hostexec",
            "cli_realpath_300/gnu_realpath_in_host",
            "one GNU `realpath -e` process with the same 300 paths in the host (`nsenter --mount=… --`)",
            Target::AtMost(1.5),
            "≤ 1.5×",
        ),
        row(
            "`resolve`, RootFs called directly (no hop to tokio's blocking pool)",
            "resolve/hostexec_rootfs_direct",
            "resolve/go_nsenter_realpath",
            "Go: `nsenter --mount=… -- realpath -e P`",
            Target::None,
            "—",
        ),
        row(
            "launch `/bin/true`: host thread",
            "launch_true/host_thread",
            "launch_true/nsenter_binary",
            "nsenter-binary launcher (Go's route)",
            Target::AtMost(0.5),
            "≤ 0.5×",
        ),
        row(
            "launch `/bin/true`: host thread, 1 GiB resident",
            "launch_true_1gib/host_thread",
            "launch_true/host_thread",
            "the host thread with small memory (same run)",
            Target::AtMost(1.1),
            "within 1.1×",
        ),
        row(
            "launch `/bin/true`: host thread, 1 GiB resident and a descriptor without \
             `FD_CLOEXEC` (closed in the child by `posix_spawn`)",
            "launch_true_1gib/host_thread_inherited_fd",
            "launch_true/host_thread",
            "the host thread with small memory (same run)",
            Target::AtMost(1.1),
            "within 1.1×",
        ),
        row(
            "launch `/bin/true` with 1 GiB resident: host thread",
            "launch_true_1gib/host_thread",
            "launch_true_1gib/nsenter_binary",
            "nsenter-binary launcher, 1 GiB resident",
            Target::None,
            "—",
        ),
    ];
    for n in ["100", "1000", "10000"] {
        let at_target = n == "10000";
        let shown = match n {
            "1000" => "1,000",
            "10000" => "10,000",
            other => other,
        };
        v.push(row(
            &format!("`list()` at {shown} mounts"),
            &format!("list/host_mounter_list/{n}"),
            &format!("list/bare_read/{n}"),
            "bare read of /proc/PID/mountinfo",
            if at_target {
                Target::AtMost(1.3)
            } else {
                Target::None
            },
            if at_target {
                "≤ 1.3×"
            } else {
                "— (set at 10,000)"
            },
        ));
        v.push(row(
            &format!("`list()` at {shown} mounts"),
            &format!("list/host_mounter_list/{n}"),
            &format!("list/findmnt_process/{n}"),
            "`findmnt --list --task PID` as a process",
            if at_target {
                Target::AtMost(0.5)
            } else {
                Target::None
            },
            if at_target {
                "≤ 0.5×"
            } else {
                "— (set at 10,000)"
            },
        ));
    }
    for (n, shown) in [("100", "100"), ("1000", "1,000"), ("10000", "10,000")] {
        v.push(row(
            &format!("one mount's entry (`mount_of`) at {shown} mounts"),
            &format!("mount_of/statmount/{n}"),
            &format!("mount_of/full_parse/{n}"),
            "the whole table read, parsed and searched by mount ID (same run)",
            Target::None,
            "—",
        ));
    }
    v.push(row(
        "`hostexec --json mounts` at 5,000 mounts (whole process)",
        "mounts_cli/hostexec_json/5000",
        "mounts_cli/findmnt_json/5000",
        "`findmnt --list --json --task PID` as a process",
        Target::AtMost(0.5),
        "≤ 0.5×",
    ));
    v.push(row(
        "`hostexec mounts` (table) at 5,000 mounts (whole process)",
        "mounts_cli/hostexec_table/5000",
        "mounts_cli/findmnt_table/5000",
        "`findmnt --list --task PID` as a process",
        Target::None,
        "—",
    ));
    v.push(row(
        "`is_mount_point` at 1,000 mounts",
        "is_mount_point/host_mounter/1000",
        "is_mount_point/nsenter_findmnt/1000",
        "NsenterMounter: `nsenter --mount=… findmnt -o target,fstype --noheadings --first-only --target P`",
        Target::AtMost(0.001),
        "≥ 1000× faster",
    ));
    v.push(row(
        "`is_mount_point` at 1,000 mounts against the kernel floor",
        "is_mount_point/host_mounter/1000",
        "is_mount_point/statx_floor/1000",
        "one `statx` relative to the host root descriptor",
        Target::AtMost(3.0),
        "≤ 3×",
    ));
    v.push(row(
        "the safe kernel route of `is_mount_point` at 1,000 mounts",
        "is_mount_point/safe_floor/1000",
        "is_mount_point/statx_floor/1000",
        "one `statx` relative to the host root descriptor",
        Target::None,
        "—",
    ));
    v.push(row(
        "tmpfs mount + unmount, native (new mount API, target by descriptor)",
        "mount_tmpfs/hostexec_native",
        "mount_tmpfs/mount8_route",
        "the mount(8) route: `mount -t tmpfs` + `umount` as host processes",
        Target::AtMost(1.0 / 50.0),
        "≥ 50× faster",
    ));
    v.push(row(
        "tmpfs mount + unmount, native through the `mount(2)` fallback",
        "mount_tmpfs/hostexec_mount2",
        "mount_tmpfs/mount8_route",
        "the mount(8) route: `mount -t tmpfs` + `umount` as host processes",
        Target::None,
        "—",
    ));
    for (n, shown) in [("100", "100"), ("10000", "10,000")] {
        v.push(row(
            &format!("read-only bind mount + unmount at {shown} mounts, native"),
            &format!("bind_ro/hostexec_native/{n}"),
            &format!("bind_ro/mount8_route/{n}"),
            "the mount(8) route: `mount --bind`, `mount -o bind,remount,ro`, `umount`",
            Target::AtMost(0.01),
            "≥ 100× faster",
        ));
    }
    v.push(row(
        "tmpfs mount + unmount, native, against the host-thread floor",
        "mount_tmpfs/hostexec_native",
        "mount_tmpfs/host_thread_floor",
        "one hop to the host thread, `fsopen` … `move_mount` + `umount2` by absolute path",
        Target::None,
        "—",
    ));
    for (n, shown) in [("100", "100"), ("10000", "10,000")] {
        v.push(row(
            &format!(
                "read-only bind mount + unmount at {shown} mounts, native, against the host-thread floor"
            ),
            &format!("bind_ro/hostexec_native/{n}"),
            &format!("bind_ro/host_thread_floor/{n}"),
            "one hop to the host thread, `mount(2)` bind + read-only remount + `umount2` by absolute path",
            Target::None,
            "—",
        ));
    }
    v.push(row(
        "read-only bind mount + unmount, native, at 10,000 mounts",
        "bind_ro/hostexec_native/10000",
        "bind_ro/hostexec_native/100",
        "the same at 100 mounts (same run)",
        Target::AtMost(1.5),
        "flat: within 1.5×",
    ));
    v.push(row(
        "read-only bind mount + unmount at 10,000 mounts, native, the source on the mount that holds the 10,000",
        "bind_ro_siblings/hostexec_native/10000",
        "bind_ro_siblings/host_thread_floor/10000",
        "the host-thread floor in the same layout (the kernel looks at every mount below the source's mount)",
        Target::None,
        "—",
    ));
    v
}

/// A criterion estimate in nanoseconds: point and 95 % interval.
#[derive(Clone, Copy, Debug)]
struct Estimate {
    point: f64,
    lower: f64,
    upper: f64,
}

#[derive(Debug)]
struct Options {
    quick: bool,
    filter: Option<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        filter: None,
    };
    for a in args {
        match a.as_str() {
            "--quick" => o.quick = true,
            "-h" | "--help" => return Err(usage()),
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}\n{}", usage())),
            s => {
                if o.filter.replace(s.to_string()).is_some() {
                    return Err(format!("only one FILTER is allowed\n{}", usage()));
                }
            }
        }
    }
    Ok(o)
}

fn usage() -> String {
    "usage: cargo xtask bench [--quick] [FILTER]\n  \
     --quick  criterion's quick mode (no warm-up, stops once two samples agree): a smoke run\n  \
     FILTER   a criterion regex on benchmark ids, e.g. `resolve` or `list/.*/10000`\n\
     A full default run writes docs/BENCHMARKS.md; a quick or filtered run writes \
     $CARGO_TARGET_DIR/xtask-bench/BENCHMARKS.md."
        .to_string()
}

/// The workspace's root directory (xtask lives in its `xtask/`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if Path::new(&d).is_absolute() => PathBuf::from(d),
        Some(d) => workspace_root().join(d),
        None => workspace_root().join("target"),
    }
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let root = workspace_root();
    let criterion_home = target_dir().join("xtask-bench").join("criterion");
    if criterion_home.exists() {
        std::fs::remove_dir_all(&criterion_home)
            .map_err(|e| format!("cannot empty {}: {e}", criterion_home.display()))?;
    }
    std::fs::create_dir_all(&criterion_home)
        .map_err(|e| format!("cannot create {}: {e}", criterion_home.display()))?;
    let home = criterion_home.to_string_lossy().into_owned();

    let mut cargo_args: Vec<&str> = vec!["bench"];
    for (package, bench) in BENCHES {
        cargo_args.extend(["-p", package, "--bench", bench]);
    }
    // Build first, so that compile time is neither in the wall time nor in the load figures.
    let mut build = cargo_args.clone();
    build.push("--no-run");
    crate::cargo(&build, &[])?;

    cargo_args.push("--");
    if opts.quick {
        cargo_args.push("--quick");
    }
    if let Some(f) = &opts.filter {
        cargo_args.push(f);
    }
    let load_before = loadavg();
    let busy_before = machine_busy_seconds();
    let ours_before = children_cpu_seconds();
    let start = Instant::now();
    crate::cargo(&cargo_args, &[("CRITERION_HOME", &home)])?;
    let wall = start.elapsed().as_secs_f64();
    let others = match (
        busy_before,
        machine_busy_seconds(),
        ours_before,
        children_cpu_seconds(),
    ) {
        (Some(b0), Some(b1), Some(o0), Some(o1)) if wall > 0.0 => {
            Some((((b1 - b0) - (o1 - o0)) / wall).max(0.0))
        }
        _ => None,
    };
    let load_after = loadavg();

    let estimates = read_estimates(&criterion_home)?;
    if estimates.is_empty() {
        return Err(format!(
            "criterion wrote no estimates under {} (did the benches skip for lack of \
             CAP_SYS_ADMIN, or does the filter match nothing?)",
            criterion_home.display()
        ));
    }
    let full_run = !opts.quick && opts.filter.is_none();
    let out = if full_run {
        root.join("docs/BENCHMARKS.md")
    } else {
        target_dir().join("xtask-bench/BENCHMARKS.md")
    };
    let notes = std::fs::read_to_string(&out)
        .ok()
        .and_then(|old| kept_notes(&old));
    let load = Load {
        before: load_before,
        after: load_after,
        others_cores: others,
        wall,
    };
    let doc = render(&opts, &estimates, &load, notes.as_deref(), full_run)?;
    print!("{doc}");
    std::fs::write(&out, &doc).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    eprintln!("xtask bench: wrote {}", out.display());
    Ok(())
}

/// Every `new/estimates.json` under `dir`, keyed by criterion's full id
/// (`group/function[/value]`, taken from the sibling benchmark.json, not the sanitized
/// directory names).
fn read_estimates(dir: &Path) -> Result<BTreeMap<String, Estimate>, String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).map_err(|e| format!("cannot list {}: {e}", d.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot list {}: {e}", d.display()))?;
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                continue;
            }
            if path.file_name().is_some_and(|n| n == "new") {
                let bench = read_json(&path.join("benchmark.json"))?;
                let estimates = read_json(&path.join("estimates.json"))?;
                let id =
                    full_id(&bench).ok_or_else(|| format!("{}: no group_id", path.display()))?;
                let median = estimate(&estimates, "median")
                    .ok_or_else(|| format!("{}: no median in estimates.json", path.display()))?;
                found.insert(id, median);
            } else {
                stack.push(path);
            }
        }
    }
    Ok(found)
}

fn read_json(p: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

fn full_id(bench: &Value) -> Option<String> {
    let mut id = bench.get("group_id")?.as_str()?.to_string();
    for key in ["function_id", "value_str"] {
        if let Some(s) = bench.get(key).and_then(Value::as_str) {
            id.push('/');
            id.push_str(s);
        }
    }
    Some(id)
}

fn estimate(estimates: &Value, stat: &str) -> Option<Estimate> {
    let s = estimates.get(stat)?;
    let ci = s.get("confidence_interval")?;
    Some(Estimate {
        point: s.get("point_estimate")?.as_f64()?,
        lower: ci.get("lower_bound")?.as_f64()?,
        upper: ci.get("upper_bound")?.as_f64()?,
    })
}

#[derive(Debug)]
struct Load {
    before: Option<String>,
    after: Option<String>,
    /// Cores' worth of CPU that processes other than the benchmarks used, on average.
    others_cores: Option<f64>,
    wall: f64,
}

fn loadavg() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

/// Seconds the whole machine spent not idle (all CPUs), from /proc/stat's `cpu` line.
fn machine_busy_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is already in user).
    let busy: f64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    Some(busy / USER_HZ)
}

/// CPU seconds of this process's waited-for children (cargo and the bench binaries).
fn children_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may contain spaces; fields are counted after its closing ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 of stat(5) is f[0]; cutime is field 16, cstime field 17.
    let cutime: f64 = f.get(13)?.parse().ok()?;
    let cstime: f64 = f.get(14)?.parse().ok()?;
    Some((cutime + cstime) / USER_HZ)
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("unknown (`{cmd} {}` failed)", args.join(" ")))
}

fn machine() -> Vec<(&'static str, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let online = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let usable = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    vec![
        ("kernel", kernel),
        ("CPU", model),
        (
            "cores",
            format!("{online} online, {usable} usable by this process"),
        ),
        ("memory", mem),
        ("util-linux", first_line("nsenter", &["--version"])),
        ("coreutils", first_line("realpath", &["--version"])),
        ("rustc", first_line("rustc", &["--version"])),
        ("commit", git_commit()),
    ]
}

fn git_commit() -> String {
    let root = workspace_root();
    let head = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let Some(head) = head else {
        return "unknown (not a git checkout)".into();
    };
    // The measured code: the two crates and what they build on.
    let dirty = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["status", "--porcelain", "--", "crates/"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0);
    if dirty == 0 {
        head
    } else {
        format!("{head} (plus {dirty} uncommitted file(s) under crates/ in the working tree)")
    }
}

fn kept_notes(old: &str) -> Option<String> {
    let start = old.find(NOTES_BEGIN)? + NOTES_BEGIN.len();
    let end = start + old[start..].find(NOTES_END)?;
    Some(old[start..end].trim().to_string())
}

/// A duration in ns, shown with a unit that keeps three significant figures.
fn time(ns: f64) -> String {
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn ratio_text(r: f64) -> String {
    if r < 1.0 {
        format!("{} = {:.0}× faster", sig(r), 1.0 / r)
    } else {
        format!("{}×", sig(r))
    }
}

/// Three significant figures.
fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (2 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

fn verdict(target: Target, ratio: Estimate) -> String {
    match target {
        Target::None => "—".into(),
        Target::AtMost(t) if ratio.point <= t => {
            if ratio.upper <= t {
                "yes".into()
            } else {
                "yes (interval straddles the target)".into()
            }
        }
        Target::AtMost(t) => {
            let by = ratio.point / t;
            let hint = if ratio.lower <= t {
                ", interval straddles the target"
            } else {
                ""
            };
            format!("**no**: missed by {}×{hint}", sig(by))
        }
    }
}

fn render(
    opts: &Options,
    est: &BTreeMap<String, Estimate>,
    load: &Load,
    notes: Option<&str>,
    full_run: bool,
) -> Result<String, String> {
    let mut d = String::new();
    let generated = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.as_secs())
        .unwrap_or(0);
    let _ = writeln!(d, "# Benchmarks\n");
    let _ = writeln!(
        d,
        "Generated by `cargo xtask bench` (do not edit by hand, except between the notes markers \
         below); unix time {generated}. Each ratio is hostexec's time divided by the reference \
         route's, both measured in this one run on a real sandbox host (a process in its own \
         mount namespace, as in the tests). Times are criterion's median per iteration; the \
         ratio interval combines both medians' 95 % intervals (worst case).\n"
    );
    if !full_run {
        let _ = writeln!(
            d,
            "**Smoke run** ({}{}): not the committed figures.\n",
            if opts.quick {
                "--quick"
            } else {
                "full measurement"
            },
            opts.filter
                .as_deref()
                .map(|f| format!(", filter `{f}`"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(
        d,
        "| operation | hostexec | reference route | reference | ratio (95 % interval) | target | met? |"
    );
    let _ = writeln!(d, "|---|---|---|---|---|---|---|");
    let mut used = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for r in rows() {
        let (Some(a), Some(b)) = (est.get(&r.ours), est.get(&r.reference)) else {
            missing.push(r);
            continue;
        };
        used.insert(r.ours.clone());
        used.insert(r.reference.clone());
        let ratio = Estimate {
            point: a.point / b.point,
            lower: a.lower / b.upper,
            upper: a.upper / b.lower,
        };
        let _ = writeln!(
            d,
            "| {} | {} | {} | {} | {} [{}–{}] | {} | {} |",
            r.operation,
            time(a.point),
            r.reference_label,
            time(b.point),
            ratio_text(ratio.point),
            sig(ratio.lower),
            sig(ratio.upper),
            r.target_label,
            verdict(r.target, ratio),
        );
    }
    if full_run && !missing.is_empty() {
        let ids: Vec<String> = missing
            .iter()
            .flat_map(|r| [r.ours.clone(), r.reference.clone()])
            .filter(|id| !est.contains_key(id))
            .collect();
        return Err(format!(
            "a full run produced no estimate for {ids:?}: were the benchmarks renamed? \
             (xtask/src/bench.rs lists the ids; criterion produced {:?})",
            est.keys().collect::<Vec<_>>()
        ));
    }

    let _ = writeln!(d, "\n## Every estimate of this run\n");
    let _ = writeln!(
        d,
        "The table's inputs and the breakdowns no target is set on (`parse_only`: parsing an \
         in-memory mountinfo; `backend_read`: the backend's read of the file through the host \
         root descriptor).\n"
    );
    let _ = writeln!(
        d,
        "| benchmark id | median | 95 % interval | in the table |"
    );
    let _ = writeln!(d, "|---|---|---|---|");
    for (id, e) in est {
        let _ = writeln!(
            d,
            "| `{id}` | {} | {} – {} | {} |",
            time(e.point),
            time(e.lower),
            time(e.upper),
            if used.contains(id) { "yes" } else { "no" }
        );
    }

    let _ = writeln!(d, "\n## Machine\n");
    for (k, v) in machine() {
        let _ = writeln!(d, "- {k}: {v}");
    }
    let show = |l: &Option<String>| l.clone().unwrap_or_else(|| "unreadable".into());
    let _ = writeln!(
        d,
        "- /proc/loadavg (1, 5, 15 min) before the run: {}; after: {} (the after figure \
         includes the benchmarks themselves)",
        show(&load.before),
        show(&load.after)
    );
    let _ = writeln!(d, "- measuring took {:.0} s (build excluded)", load.wall);
    match load.others_cores {
        Some(c) => {
            let verdict = if c >= 0.1 {
                "**the machine had other load** during the run: ratios of process-spawning \
                 routes are the most affected"
            } else {
                "the machine was otherwise idle"
            };
            let _ = writeln!(
                d,
                "- other processes used {c:.2} cores on average during the run (busy CPU time \
                 from /proc/stat minus the benchmarks' own): {verdict}"
            );
        }
        None => {
            let _ = writeln!(d, "- other load: not measurable (/proc unreadable)");
        }
    }

    let _ = writeln!(d, "\n## Reproduce\n");
    let _ = writeln!(
        d,
        "As root with CAP_SYS_ADMIN (the benchmarks start a sandbox host; without the capability \
         they print why and measure nothing), with util-linux, coreutils and python3 installed:\n\n\
         ```sh\n\
         cargo xtask bench            # the full run, a few minutes on 2 cores; rewrites this file\n\
         cargo xtask bench --quick    # smoke run; table in $CARGO_TARGET_DIR/xtask-bench/\n\
         cargo xtask bench list/      # only ids matching a criterion regex (also a smoke run)\n\
         ```\n\n\
         The benchmarks themselves: `crates/hostexec-nsenter/benches/nsenter.rs`, \
         `crates/hostexec-mount/benches/mounts.rs`, `crates/hostexec-cli/benches/cli.rs` and \
         `crates/hostexec-cli/benches/mounts_cli.rs` (`cargo bench -p hostexec-nsenter --bench \
         nsenter`, `cargo bench -p hostexec-mount --bench mounts`, `cargo bench -p hostexec-cli \
         --bench cli`, `cargo bench -p hostexec-cli --bench mounts_cli`); criterion's raw output of \
         this run is in `$CARGO_TARGET_DIR/xtask-bench/criterion/`."
    );

    let _ = writeln!(d, "\n## Notes\n");
    let _ = writeln!(d, "{NOTES_BEGIN}");
    match notes {
        Some(n) if !n.is_empty() => {
            let _ = writeln!(d, "{n}");
        }
        _ => {
            let _ = writeln!(d, "(no notes yet)");
        }
    }
    let _ = writeln!(d, "{NOTES_END}");
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_id_joins_group_function_and_value() {
        let b: Value = serde_json::from_str(
            r#"{"group_id":"list","function_id":"bare_read","value_str":"100"}"#,
        )
        .unwrap();
        assert_eq!(full_id(&b).unwrap(), "list/bare_read/100");
        let b: Value =
            serde_json::from_str(r#"{"group_id":"x","function_id":null,"value_str":null}"#)
                .unwrap();
        assert_eq!(full_id(&b).unwrap(), "x");
    }

    #[test]
    fn verdict_reports_the_miss_factor() {
        let e = |point, lower, upper| Estimate {
            point,
            lower,
            upper,
        };
        assert_eq!(verdict(Target::AtMost(0.5), e(0.2, 0.1, 0.3)), "yes");
        assert!(verdict(Target::AtMost(0.5), e(0.4, 0.3, 0.6)).contains("straddles"));
        assert_eq!(
            verdict(Target::AtMost(0.01), e(0.02, 0.015, 0.03)),
            "**no**: missed by 2.00×"
        );
        assert_eq!(verdict(Target::None, e(1.0, 1.0, 1.0)), "—");
    }

    #[test]
    fn notes_survive_regeneration() {
        let old = format!("x\n{NOTES_BEGIN}\nwhy it missed\n{NOTES_END}\ny");
        assert_eq!(kept_notes(&old).unwrap(), "why it missed");
        assert_eq!(kept_notes("no markers"), None);
    }

    #[test]
    fn times_and_ratios_read_well() {
        assert_eq!(time(1_234.0), "1.23 µs");
        assert_eq!(time(2_500_000.0), "2.50 ms");
        assert_eq!(ratio_text(0.005), "0.00500 = 200× faster");
        assert_eq!(ratio_text(1.05), "1.05×");
    }
}
