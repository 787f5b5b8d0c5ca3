//! Secrets: sensitive mount options, through `HostMounter` + `NsEnter` on a real
//! sandbox host, with every crate logging at TRACE into a buffer (a global subscriber: the
//! backend logs from its own threads too; hence this binary of its own), leave the secret in no
//! log line, no error `Display`, `Debug` or `source()` chain, no `Debug` of `MountOptions` or
//! `HostCommand`, and no panic message.
//!
//! The cases: a tmpfs mount that succeeds with a sensitive option; a bind mount with a
//! sensitive option; a tmpfs mount that mount(8) refuses; and a mount whose helper,
//! `/sbin/mount.TYPE`, prints its whole argv (the secret included, as a real helper's usage
//! message or a verbose CIFS helper does) on stderr and on stdout before failing: what
//! mount(8) and its helpers print must be scrubbed before it reaches an error.

mod common;

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::OnceLock;

use common::Tree;
use hostexec_api::HostCommand;
use hostexec_mount::{HostMounter, Mount, MountError, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::logs::Capture;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// The captured log text and panic messages, installed once for the binary.
fn capture() -> &'static (Capture, Capture) {
    static C: OnceLock<(Capture, Capture)> = OnceLock::new();
    C.get_or_init(|| {
        let logs = Capture::new();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        )
        .unwrap();
        let panics = Capture::new();
        let sink = panics.clone();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            sink.push(format!("{info}\n").as_bytes());
            default_hook(info);
        }));
        (logs, panics)
    })
}

fn text(c: &Capture) -> String {
    c.text()
}

/// Every way an error can be shown: Display, Debug, pretty Debug, each source's Display and
/// Debug, and the message of a panic from `unwrap()` on it.
fn every_rendering<E: std::error::Error + 'static>(err: E) -> String {
    let mut out = format!("{err}\n{err:?}\n{err:#?}\n");
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&err);
    while let Some(s) = src {
        out.push_str(&format!("{s}\n{s:?}\n"));
        src = s.source();
    }
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        // What a caller's `.unwrap()` on the mount result prints.
        let r: Result<(), E> = std::hint::black_box(Err(err));
        r.unwrap();
    }))
    .unwrap_err();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .expect("a panic message");
    assert!(msg.contains("called `Result::unwrap()`"), "{msg}");
    out.push_str(&msg);
    out
}

/// Writes an executable helper `name` into `dir` (a tmpfs of the sandbox), no link followed.
fn helper(sb: &SandboxHost, dir: &Path, name: &str, script: &[u8]) {
    let fd = rustix::fs::open(
        sb.local(dir),
        rustix::fs::OFlags::PATH
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let f = rustix::fs::openat(
        fd.as_fd(),
        name,
        rustix::fs::OFlags::WRONLY
            | rustix::fs::OFlags::CREATE
            | rustix::fs::OFlags::EXCL
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::from_raw_mode(0o755),
    )
    .unwrap();
    assert_eq!(rustix::io::write(&f, script).unwrap(), script.len());
    let st = rustix::fs::fstatfs(&f).unwrap();
    assert_eq!(
        st.f_type as i64, 0x0102_1994,
        "the helper is on the sandbox's tmpfs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_options_reach_no_log_error_debug_or_panic() {
    let (logs, panics) = capture();
    if skip_without_namespaces("sensitive_options_reach_no_log_error_debug_or_panic") {
        return;
    }
    // Distinct secrets per case, so a leak says where it came from.
    const OK_SECRET: &str = "2718281"; // gid=: accepted by tmpfs
    const BIND_SECRET: &str = "B1nd-s3cret-9f1c";
    const REFUSED_SECRET: &str = "R3fused-s3cret-77aa";
    const HELPER_SECRET: &str = "H3lper-s3cret-c0de";
    let all = [OK_SECRET, BIND_SECRET, REFUSED_SECRET, HELPER_SECRET];

    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    for d in ["ok", "src", "bind", "refused", "helper"] {
        tree.mkdir_all(d);
    }
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns.clone());
    let mut shown = String::new();

    // 1. Succeeds: tmpfs takes gid=, and the kernel really got it (findmnt in the sandbox).
    let ok = tree.host_path("ok");
    let opts = MountOptions::new()
        .option("size=1m")
        .sensitive(format!("gid={OK_SECRET}"));
    shown.push_str(&format!("{opts:?}\n{opts:#?}\n{}\n", opts.shown()));
    m.mount("tmpfs".as_ref(), &ok, "tmpfs", &opts)
        .await
        .unwrap();
    let fs_opts = sb.oracle(&[
        OsStr::new("findmnt"),
        OsStr::new("-n"),
        OsStr::new("-o"),
        OsStr::new("FS-OPTIONS"),
        ok.as_os_str(),
    ]);
    assert!(
        String::from_utf8_lossy(&fs_opts.stdout).contains(&format!("gid={OK_SECRET}")),
        "the sensitive option did not reach the kernel: {fs_opts:?}"
    );
    assert!(m.is_mount_point(&ok).await.unwrap());
    m.unmount(&ok, &UnmountOptions::new()).await.unwrap();

    // 2. A bind mount with a sensitive option (both steps carry it). The kernel ignores mount
    //    data for a bind, so this may succeed; either way the secret stays hidden.
    let bind = m
        .mount(
            tree.host_path("src").as_os_str(),
            &tree.host_path("bind"),
            "",
            &MountOptions::new()
                .option("bind")
                .option("ro")
                .sensitive(format!("password={BIND_SECRET}")),
        )
        .await;
    match bind {
        Ok(()) => {
            assert!(m.is_mount_point(&tree.host_path("bind")).await.unwrap());
            m.unmount(&tree.host_path("bind"), &UnmountOptions::new())
                .await
                .unwrap();
        }
        Err(e) => shown.push_str(&every_rendering(e)),
    }

    // 3. Refused: tmpfs does not know password=. Natively the kernel's fsconfig refuses it
    //    (its fs-context message in the error); through mount(8), mount fails.
    let refused = m
        .mount(
            "tmpfs".as_ref(),
            &tree.host_path("refused"),
            "tmpfs",
            &MountOptions::new()
                .option("size=1m")
                .sensitive(format!("password={REFUSED_SECRET}")),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, MountError::Native { .. }), "{refused:?}");
    let r = every_rendering(refused);
    assert!(r.contains("size=1m,password=<masked>"), "{r}");
    assert!(r.contains("Unknown parameter 'password'"), "{r}");
    shown.push_str(&r);
    let refused = m
        .mount(
            "tmpfs".as_ref(),
            &tree.host_path("refused"),
            "tmpfs",
            &MountOptions::new()
                .option("size=1m")
                .sensitive(format!("password={REFUSED_SECRET}"))
                .helper_only(),
        )
        .await
        .unwrap_err();
    assert!(matches!(refused, MountError::MountFailed(_)), "{refused:?}");
    let r = every_rendering(refused);
    assert!(r.contains("size=1m,<masked>"), "{r}");
    shown.push_str(&r);

    // 4. A helper that echoes its argv (secret included) on both streams, then fails. The
    //    sandbox gets a tmpfs over /usr/sbin (= /sbin here) that holds only the helper.
    sb.mount_tmpfs(Path::new("/usr/sbin"), "mode=0755").unwrap();
    helper(
        &sb,
        Path::new("/usr/sbin"),
        "mount.hxsecret",
        b"#!/bin/sh\necho \"mount.hxsecret: cannot mount with $*\"\necho \"mount.hxsecret: refusing $*; value ${4#*password=}\" >&2\nexit 32\n",
    );
    let helped = m
        .mount(
            "server:/export".as_ref(),
            &tree.host_path("helper"),
            "hxsecret",
            &MountOptions::new()
                .option("vers=4")
                .sensitive(format!("password={HELPER_SECRET}"))
                .without_systemd(),
        )
        .await
        .unwrap_err();
    let MountError::MountFailed(f) = &helped else {
        panic!("{helped:?}")
    };
    // The helper ran (its message is there), and what it said about the secret is masked.
    assert!(f.stderr.contains("mount.hxsecret: refusing"), "{f:?}");
    assert!(f.stderr.contains("<masked>"), "{f:?}");
    shown.push_str(&every_rendering(helped));

    // HostCommand shows masked arguments masked.
    let cmd = HostCommand::new("mount")
        .arg("-o")
        .arg_masked(format!("password={HELPER_SECRET}"), "<masked>")
        .arg("--")
        .arg("x");
    shown.push_str(&format!("{cmd}\n{cmd:?}\n{cmd:#?}\n"));
    assert!(format!("{cmd}").contains("<masked>"));

    let logs = text(logs);
    let panics = text(panics);
    assert!(logs.contains("mounting"), "nothing was captured: {logs}");
    assert!(logs.contains("mount failed"), "{logs}");
    assert!(logs.contains("<masked>"), "{logs}");
    assert!(panics.contains("called `Result::unwrap()`"), "{panics}");
    for secret in all {
        for (what, t) in [
            ("a log line", &logs),
            ("a panic message", &panics),
            ("an error or Debug output", &shown),
        ] {
            assert!(!t.contains(secret), "{secret} reached {what}:\n{t}");
        }
    }
}

/// A sensitive value holding a comma reaches mount(8) as two options (`-o` is split on
/// commas), and a helper that reports option by option prints each part alone: both parts
/// must still be scrubbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sensitive_value_with_a_comma_is_scrubbed_part_by_part() {
    let (logs, _) = capture();
    if skip_without_namespaces("a_sensitive_value_with_a_comma_is_scrubbed_part_by_part") {
        return;
    }
    const FIRST: &str = "C0mma-first-half-4242";
    const SECOND: &str = "c0mma-second-half-2424";
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    tree.mkdir_all("t");
    sb.mount_tmpfs(Path::new("/usr/sbin"), "mode=0755").unwrap();
    helper(
        &sb,
        Path::new("/usr/sbin"),
        "mount.hxcomma",
        b"#!/bin/sh\necho \"$4\" | tr , '\\n' | while read -r o; do echo \"mount.hxcomma: bad option $o\" >&2; done\nexit 32\n",
    );
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns);
    let err = m
        .mount(
            "server:/x".as_ref(),
            &tree.host_path("t"),
            "hxcomma",
            &MountOptions::new()
                .option("vers=4")
                .sensitive(format!("password={FIRST},{SECOND}"))
                .without_systemd(),
        )
        .await
        .unwrap_err();
    let MountError::MountFailed(f) = &err else {
        panic!("{err:?}")
    };
    assert!(
        f.stderr.contains("mount.hxcomma: bad option vers=4"),
        "{f:?}"
    );
    let shown = every_rendering(err);
    let logs = text(logs);
    for secret in [FIRST, SECOND] {
        assert!(!shown.contains(secret), "{secret} in an error:\n{shown}");
        assert!(!logs.contains(secret), "{secret} in a log line:\n{logs}");
    }
}

/// Captured stderr is cut at the capture limit (16 MiB): when a helper's output reaches the
/// limit in the middle of the secret, the part before the cut is no longer the whole secret,
/// so matching it whole cannot scrub it, and the excerpt (the end of what was captured) shows
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_cut_by_the_capture_limit_is_still_scrubbed() {
    let (logs, _) = capture();
    if skip_without_namespaces("a_secret_cut_by_the_capture_limit_is_still_scrubbed") {
        return;
    }
    const SECRET: &str = "Cut-by-the-limit-s3cret-0123456789";
    const SHOWN_PART: usize = 20; // of the secret, before the cut
    let sb = SandboxHost::start().unwrap();
    let tree = Tree::scratch(&sb);
    tree.mkdir_all("t");
    sb.mount_tmpfs(Path::new("/usr/sbin"), "mode=0755").unwrap();
    let junk = hostexec_api::DEFAULT_CAPTURE_LIMIT - "password=".len() - SHOWN_PART;
    helper(
        &sb,
        Path::new("/usr/sbin"),
        "mount.hxcut",
        format!(
            "#!/bin/sh\nhead -c {junk} /dev/zero | tr '\\0' x >&2\nprintf '%s\\n' \"${{4#*vers=4,}}\" >&2\nexit 32\n"
        )
        .as_bytes(),
    );
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns);
    let err = m
        .mount(
            "server:/x".as_ref(),
            &tree.host_path("t"),
            "hxcut",
            &MountOptions::new()
                .option("vers=4")
                .sensitive(format!("password={SECRET}"))
                .without_systemd(),
        )
        .await
        .unwrap_err();
    let MountError::MountFailed(f) = &err else {
        panic!("{err:?}")
    };
    assert!(f.stderr.contains("xxxxxxxx"), "the helper's output: {f:?}");
    let shown = every_rendering(err);
    let logs = text(logs);
    let part = &SECRET[..SHOWN_PART];
    assert!(!shown.contains(part), "{part} in an error:\n{shown}");
    assert!(!logs.contains(part), "{part} in a log line");
}

/// A value set with `HostCommand::env_masked` (mount.cifs' `PASSWD`) reaches the program, through
/// both launchers and the fake's passthrough, and nothing that shows the command or its errors:
/// `Debug`, `Display`, a caller's TRACE log of either, errors of commands that are missing,
/// time out, fail or cannot start in their directory, and panics from `unwrap()` on those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn masked_environment_values_reach_no_log_error_debug_or_panic() {
    use hostexec_api::{CommandError, Executor};
    use hostexec_nsenter::Launcher;
    let (logs, panics) = capture();
    if skip_without_namespaces("masked_environment_values_reach_no_log_error_debug_or_panic") {
        return;
    }
    const SECRET: &str = "env-s3cret-5ea1";
    let sb = SandboxHost::start().unwrap();
    let mut backends: Vec<(&str, Box<dyn Executor>)> = Vec::new();
    for (name, launcher) in [
        ("host thread", Launcher::HostThread),
        ("nsenter binary", Launcher::NsenterBinary),
    ] {
        let ns = NsEnter::builder(sb.target())
            .launcher(launcher)
            .build()
            .unwrap();
        backends.push((name, Box::new(ns)));
    }
    backends.push((
        "passthrough",
        Box::new(hostexec_fake::FakeExecutor::passthrough()),
    ));
    let mut shown = String::new();
    for (name, exec) in &backends {
        let with_secret = |cmd: HostCommand| cmd.env_masked("PASSWD", SECRET);
        // It arrives (shown transformed, so that the output itself never holds it).
        let cmd =
            with_secret(HostCommand::new("sh").args(["-c", r#"printf %s "$PASSWD" | tr a-z A-Z"#]));
        tracing::trace!(command = ?cmd, display = %cmd, "running");
        shown.push_str(&format!("{cmd}\n{cmd:?}\n{cmd:#?}\n{:?}\n", cmd.get_env()));
        let out = exec.run(cmd).await.unwrap();
        assert_eq!(
            out.stdout_text(),
            SECRET.to_uppercase(),
            "{name}: the value arrives"
        );
        let failing = [
            HostCommand::new("hostexec-no-such-program"),
            HostCommand::new("true").current_dir("/nonexistent-hostexec-dir"),
            HostCommand::new("sleep")
                .arg("5")
                .timeout(std::time::Duration::from_millis(100))
                .kill_grace(std::time::Duration::from_millis(100)),
            HostCommand::new("sh").args(["-c", "echo failing >&2; exit 3"]),
        ];
        for cmd in failing {
            let cmd = with_secret(cmd);
            tracing::trace!(command = ?cmd, "running");
            shown.push_str(&format!("{cmd}\n{cmd:?}\n{cmd:#?}\n"));
            let err: CommandError = match exec.run(cmd).await {
                Ok(out) => out.check().map(|_| ()).expect_err("the command fails"),
                Err(e) => e,
            };
            tracing::trace!(error = ?err, display = %err, "failed");
            shown.push_str(&every_rendering(err));
        }
    }
    let logs = text(logs);
    let panics = text(panics);
    assert!(
        logs.contains("running") && logs.contains("<masked>"),
        "nothing was captured: {logs}"
    );
    assert!(panics.contains("called `Result::unwrap()`"), "{panics}");
    for error in [
        "command not found on the host",
        "timed out after 100ms",
        "failed with exit status 3",
    ] {
        assert!(shown.contains(error), "no {error:?} among:\n{shown}");
    }
    for (what, t) in [
        ("a log line", &logs),
        ("a panic message", &panics),
        ("an error or Debug output", &shown),
    ] {
        assert!(!t.contains(SECRET), "the masked value reached {what}:\n{t}");
    }
}
