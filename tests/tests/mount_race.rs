//! The Kubernetes subpath race (CVE-2017-1002101, CVE-2021-25741) against the mounter: a host
//! process swaps the mount target (and, separately, a bind source) with a symlink to a
//! protected directory in a `renameat2(RENAME_EXCHANGE)` loop, while 200 rounds of check
//! (`is_mount_point`), mount and unmount run as separate calls. Nothing may ever be mounted
//! on, bound from, or unmounted from the protected directory; a swapped-in symlink is a typed
//! error.
//!
//! The swapper runs in the sandbox host's mount namespace (`nsenter -t PID -m`), as a host
//! process would: there a mount point cannot be renamed (EBUSY), exactly as on a real host.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hostexec_api::{HostFs, NativeMountError};
use hostexec_mount::{HostMounter, Mount, MountError, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

const ROUNDS: usize = 200;

/// Not a test of its own: the swapper, run as a child by the race tests (it returns at once
/// unless `HOSTEXEC_RACE_DIR` is set). Swaps `t` and `l` in that directory until killed.
#[test]
fn race_swapper_child() {
    let Some(dir) = std::env::var_os("HOSTEXEC_RACE_DIR") else {
        return;
    };
    let race = rustix::fs::open(
        Path::new(&dir),
        rustix::fs::OFlags::PATH
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("open the race directory");
    eprintln!("swapping");
    loop {
        // EBUSY while `t` is a mount point: the host kernel's own rule; keep trying.
        let _ =
            rustix::fs::renameat_with(&race, "t", &race, "l", rustix::fs::RenameFlags::EXCHANGE);
    }
}

struct Swapper(Child);

impl Drop for Swapper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_swapper(sb: &SandboxHost, race: &Path) -> Swapper {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new("nsenter")
        .args(["-t", &sb.pid().to_string(), "-m", "--"])
        .arg(exe)
        .args([
            "--exact",
            "race_swapper_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HOSTEXEC_RACE_DIR", race)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Swapper(child)
}

struct Setup {
    sb: SandboxHost,
    ns: NsEnter,
    m: HostMounter<NsEnter>,
    protected: PathBuf,
    race: PathBuf,
    /// `dev:inode` of the protected marker, as the host sees it.
    protected_id: String,
}

fn setup(test: &str) -> Option<Setup> {
    if skip_without_namespaces(test) {
        return None;
    }
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    let protected = s.join("protected");
    sb.mkdir_all(&protected).unwrap();
    sb.mount_tmpfs(&protected, "size=1m").unwrap();
    sb.write_file(&protected.join("marker"), b"protected")
        .unwrap();
    let race = s.join("race");
    sb.mkdir_all(&race.join("t")).unwrap();
    sb.symlink(protected.as_os_str(), &race.join("l")).unwrap();
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns.clone());
    let mut st = Setup {
        sb,
        ns,
        m,
        protected,
        race,
        protected_id: String::new(),
    };
    st.protected_id = st.marker_id();
    Some(st)
}

impl Setup {
    fn marker_id(&self) -> String {
        let out = self.sb.oracle(&[
            OsStr::new("stat"),
            OsStr::new("-c"),
            OsStr::new("%d:%i"),
            self.protected.join("marker").as_os_str(),
        ]);
        assert!(out.status.success(), "the protected marker is gone");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The protected directory is untouched: its own tmpfs with its marker, nothing on top
    /// (checked by findmnt and a stat in the host, not by the code under test).
    fn assert_protected(&self, round: usize) {
        let out = self.sb.oracle(&[
            OsStr::new("findmnt"),
            OsStr::new("-n"),
            OsStr::new("-r"),
            OsStr::new("-o"),
            OsStr::new("SOURCE"),
            OsStr::new("--mountpoint"),
            self.protected.as_os_str(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            ["hostexec-sandbox"],
            "round {round}: something was mounted on (or unmounted from) the protected directory"
        );
        assert_eq!(self.marker_id(), self.protected_id, "round {round}");
    }
}

fn is_symlink_refusal(e: &MountError) -> bool {
    matches!(e, MountError::Native { source, .. } if matches!(**source, NativeMountError::Symlink { .. }))
}

/// Installs `mount.fakefs` in the sandbox host's `/usr/sbin` (an overlay over it, in the
/// sandbox's mount namespace only): a mount(8) helper that appends the target it was given
/// and `MODE:OWNER` of that target's parent to `log`, then mounts a tmpfs there.
fn install_fake_helper(sb: &SandboxHost, log: &Path) {
    let script = format!(
        "#!/bin/sh\n\
         # mount.fakefs SOURCE TARGET [-o OPTIONS]\n\
         echo \"$2 $(stat -c %a:%U \"$(dirname \"$2\")\")\" >> '{}'\n\
         exec mount -i -t tmpfs -o size=1m fakefs-src \"$2\"\n",
        log.display()
    );
    sb.install_sbin("mount.fakefs", script.as_bytes()).unwrap();
}

async fn target_race(test: &str, fstype: &str, options: MountOptions, unmount: UnmountOptions) {
    let Some(st) = setup(test) else {
        return;
    };
    if fstype == "fakefs" {
        install_fake_helper(&st.sb, &st.sb.scratch().join("fakefs.log"));
    }
    let target = st.race.join("t");
    let swapper = start_swapper(&st.sb, &st.race);
    let (mut mounted, mut refused, mut unmounted) = (0, 0, 0);
    for round in 0..ROUNDS {
        // The check, as a caller makes it (the answer is ignored: the attacker's best case).
        let _ = st.m.is_mount_point(&target).await;
        match st
            .m
            .mount(
                "tmpfs".as_ref(),
                &target,
                fstype,
                &options.clone().option("size=1m"),
            )
            .await
        {
            Ok(()) => mounted += 1,
            Err(e) if is_symlink_refusal(&e) => refused += 1,
            // Mid-swap: the name was missing or not a directory for an instant.
            Err(e) if e.is_not_found() || e.raw_os_error() == Some(20) => {}
            Err(e) => panic!("round {round}: {e:?}"),
        }
        let _ = st.m.is_mount_point(&target).await;
        match st.m.unmount(&target, &unmount).await {
            Ok(()) => unmounted += 1,
            Err(e) if is_symlink_refusal(&e) || e.is_not_mounted() || e.is_not_found() => {}
            Err(e) => panic!("round {round}: unmount: {e:?}"),
        }
        // A mount made on the directory the target named when it was opened stays on that
        // directory if a swap renamed it to `l` before the mount (the descriptor's promise):
        // take it down there, by the same rules (`l`, when the symlink, is refused).
        match st.m.unmount(&st.race.join("l"), &unmount).await {
            Ok(()) => unmounted += 1,
            Err(e) if is_symlink_refusal(&e) || e.is_not_mounted() || e.is_not_found() => {}
            Err(e) => panic!("round {round}: unmount l: {e:?}"),
        }
        if round % 20 == 0 {
            st.assert_protected(round);
        }
    }
    drop(swapper);
    st.assert_protected(ROUNDS);
    // Whatever is left on the race directory is ours: take it down and look again.
    while st.ns.stat(&st.race.join("t"), false).await.is_ok()
        && st
            .m
            .unmount(&st.race.join("t"), &UnmountOptions::new())
            .await
            .is_ok()
    {}
    eprintln!("{test}: {mounted} mounted, {refused} refused as symlinks, {unmounted} unmounted");
    assert!(
        mounted > 0,
        "the race never let a mount through: nothing was tested"
    );
    assert!(refused > 0, "the swap was never seen: nothing was tested");
}

async fn source_race(test: &str, options: MountOptions) {
    let Some(st) = setup(test) else {
        return;
    };
    let source = st.race.join("t");
    let target = st.sb.scratch().join("bt");
    st.sb.mkdir_all(&target).unwrap();
    let swapper = start_swapper(&st.sb, &st.race);
    let (mut bound, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        let _ = st.m.is_mount_point(&target).await;
        match st
            .m
            .mount(
                source.as_os_str(),
                &target,
                "",
                &options.clone().options(["bind", "ro"]),
            )
            .await
        {
            Ok(()) => {
                bound += 1;
                // What was bound is the race directory, never the protected one.
                assert!(
                    st.ns.stat(&target.join("marker"), false).await.is_err(),
                    "round {round}: the protected directory was bound"
                );
                st.m.unmount(&target, &UnmountOptions::new())
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
            }
            Err(e) if is_symlink_refusal(&e) => refused += 1,
            Err(e) if e.is_not_found() || e.raw_os_error() == Some(20) => {}
            Err(e) => panic!("round {round}: {e:?}"),
        }
        if round % 20 == 0 {
            st.assert_protected(round);
        }
    }
    drop(swapper);
    st.assert_protected(ROUNDS);
    eprintln!("{test}: {bound} bound, {refused} refused as symlinks");
    assert!(
        bound > 0 && refused > 0,
        "{bound} bound, {refused} refused: the race was not exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_swapped_for_a_symlink_never_mounts_or_unmounts_elsewhere_native() {
    target_race(
        "target_swapped_for_a_symlink_never_mounts_or_unmounts_elsewhere_native",
        "tmpfs",
        MountOptions::new(),
        UnmountOptions::new(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_source_swapped_for_a_symlink_never_binds_elsewhere_native() {
    source_race(
        "bind_source_swapped_for_a_symlink_never_binds_elsewhere_native",
        MountOptions::new(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_swapped_for_a_symlink_never_mounts_elsewhere_mount8() {
    target_race(
        "target_swapped_for_a_symlink_never_mounts_elsewhere_mount8",
        "tmpfs",
        MountOptions::new().helper_only(),
        UnmountOptions::new(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_swapped_for_a_symlink_never_mounts_elsewhere_mount_helper() {
    target_race(
        "target_swapped_for_a_symlink_never_mounts_elsewhere_mount_helper",
        "fakefs",
        MountOptions::new(),
        UnmountOptions::new(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_helper_mounts_on_a_private_staging_directory_then_moves_it() {
    let Some(st) = setup("a_mount_helper_mounts_on_a_private_staging_directory_then_moves_it")
    else {
        return;
    };
    let log = st.sb.scratch().join("fakefs.log");
    install_fake_helper(&st.sb, &log);
    let target = st.sb.scratch().join("nfs-like");
    st.sb.mkdir_all(&target).unwrap();
    st.m.mount(
        "server:/export".as_ref(),
        &target,
        "fakefs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    // The helper ran on a staging directory below the 0700 root-owned staging tmpfs, never
    // on the target; the result is on the target.
    let logged = std::fs::read_to_string(st.sb.local(&log)).unwrap();
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 1, "{logged}");
    let (on, parent) = lines[0].split_once(' ').unwrap();
    assert!(
        Path::new(on).starts_with(hostexec_mount::STAGING_DIR) && Path::new(on) != target,
        "{logged}"
    );
    assert_eq!(parent, "700:root", "{logged}");
    let findmnt = |p: &Path| {
        let out = st.sb.oracle(&[
            OsStr::new("findmnt"),
            OsStr::new("-n"),
            OsStr::new("-r"),
            OsStr::new("-o"),
            OsStr::new("FSTYPE,SOURCE,PROPAGATION"),
            OsStr::new("--mountpoint"),
            p.as_os_str(),
        ]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert!(
        findmnt(&target).starts_with("tmpfs fakefs-src"),
        "{}",
        findmnt(&target)
    );
    // The staging tmpfs is private and holds nothing any more: no mount below it, and the
    // call's directory is gone.
    let staging = Path::new(hostexec_mount::STAGING_DIR);
    assert_eq!(findmnt(staging), "tmpfs hostexec-staging private");
    assert_eq!(findmnt(Path::new(on)), "");
    assert!(st.ns.stat(Path::new(on), false).await.is_err());
    st.m.unmount(&target, &UnmountOptions::new()).await.unwrap();
    assert_eq!(findmnt(&target), "");
}
