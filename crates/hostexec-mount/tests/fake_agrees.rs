//! One `Mount` test function, run against a fake host (`HostMounter` over `FakeExecutor` and
//! `FakeHost`) and against a real sandbox host (`HostMounter<NsEnter>`, on the new mount API,
//! on the `mount(2)` fallback and on the mount(8) route): each step's observable result (type, per-mount flags,
//! propagation, as `Mount::list` shows them) must be the same. The real host's table is also
//! compared with findmnt run inside it, so the fake agrees with the kernel, not only with
//! hostexec.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::ffi::OsStr;
use std::path::Path;

use hostexec_fake::{FakeExecutor, FakeHost};
use hostexec_mount::mountinfo::OptionalField;
use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

/// What `list()` shows of the topmost mount at `base/rel`: `rel type flags propagation`, the
/// per-mount flags in the kernel's order.
async fn show<M: Mount>(m: &M, base: &Path, rel: &str) -> String {
    // Lexical: the fake's table has mounts whose directories its files do not show (what a
    // bind brings along exists in the kernel's view only).
    let at = base.join(rel);
    let table = m.list().await.unwrap();
    let Some(top) = table.iter().rev().find(|x| x.mount_point() == at) else {
        return format!("{rel} -");
    };
    let flags: Vec<String> = top
        .mount_options()
        .iter()
        .map(|o| o.to_string_lossy().into_owned())
        .collect();
    let prop = top
        .optional_fields()
        .iter()
        .map(|f| match f {
            OptionalField::Shared(_) => "shared",
            OptionalField::Master(_) => "slave",
            OptionalField::Unbindable => "unbindable",
            _ => "",
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("+");
    let prop = if prop.is_empty() { "private" } else { &prop };
    format!("{rel} {} {} {prop}", top.fs_type(), flags.join(","))
}

/// The steps, through the `Mount` trait only; returns what each step showed. With `helper`,
/// every mount and unmount is forced onto the mount(8) route.
async fn transcript<M: Mount>(m: &M, base: &Path, helper: bool) -> Vec<String> {
    let route = |o: MountOptions| if helper { o.helper_only() } else { o };
    let opts = |o: &str| route(MountOptions::new().options(o.split(',')));
    let p = |rel: &str| base.join(rel);
    // rb/inner: the fake's files do not show what a bind brings along, so the directory an
    // rbind copies a mount onto is made beforehand (on the real host the rbind covers it).
    for d in ["t", "b", "rb/inner", "prop", "peer"] {
        m.create_dir_all(&p(d)).await.unwrap();
    }
    let none = OsStr::new("");
    let unmount = if helper {
        UnmountOptions::new().helper_only()
    } else {
        UnmountOptions::new()
    };
    let mut out = Vec::new();

    // A tmpfs with per-mount flags and a filesystem option.
    m.mount(
        OsStr::new("agree"),
        &p("t"),
        "tmpfs",
        &opts("size=1m,nosuid,nodev,noatime"),
    )
    .await
    .unwrap();
    out.push(show(m, base, "t").await);
    // remount,ro then remount,rw (the superblock and the mount).
    m.mount(none, &p("t"), "", &opts("remount,ro"))
        .await
        .unwrap();
    out.push(show(m, base, "t").await);
    m.mount(none, &p("t"), "", &opts("remount,rw"))
        .await
        .unwrap();
    out.push(show(m, base, "t").await);

    // A bind keeps the source mount's flags; bind,remount,ro makes the bind read-only and
    // leaves its source writable.
    m.create_dir_all(&p("t/dir/inner")).await.unwrap();
    m.mount(p("t/dir").as_os_str(), &p("b"), "", &opts("bind"))
        .await
        .unwrap();
    out.push(show(m, base, "b").await);
    m.mount(none, &p("b"), "", &opts("bind,remount,ro"))
        .await
        .unwrap();
    out.push(show(m, base, "b").await);
    out.push(show(m, base, "t").await);
    m.unmount(&p("b"), &unmount).await.unwrap();
    out.push(show(m, base, "b").await);
    // bind,ro,noexec in one call.
    m.mount(p("t/dir").as_os_str(), &p("b"), "", &opts("bind,ro,noexec"))
        .await
        .unwrap();
    out.push(show(m, base, "b").await);
    m.unmount(&p("b"), &unmount).await.unwrap();

    // rbind takes the mounts below the source along; bind does not.
    m.mount(
        OsStr::new("inner"),
        &p("t/dir/inner"),
        "tmpfs",
        &opts("noexec"),
    )
    .await
    .unwrap();
    m.mount(p("t/dir").as_os_str(), &p("rb"), "", &opts("rbind"))
        .await
        .unwrap();
    out.push(show(m, base, "rb").await);
    out.push(show(m, base, "rb/inner").await);
    m.mount(p("t/dir").as_os_str(), &p("b"), "", &opts("bind"))
        .await
        .unwrap();
    out.push(show(m, base, "b/inner").await);
    m.unmount(&p("b"), &unmount).await.unwrap();
    m.unmount(&p("rb/inner"), &unmount).await.unwrap();
    m.unmount(&p("rb"), &unmount).await.unwrap();

    // Propagation: shared, a bind of it is its peer, slave, unbindable, private.
    m.mount(OsStr::new("prop"), &p("prop"), "tmpfs", &opts(""))
        .await
        .unwrap();
    out.push(show(m, base, "prop").await);
    let flag = |f: &str| route(MountOptions::new().flag(f.to_owned()));
    m.mount(none, &p("prop"), "", &flag("--make-shared"))
        .await
        .unwrap();
    out.push(show(m, base, "prop").await);
    m.mount(p("prop").as_os_str(), &p("peer"), "", &opts("bind"))
        .await
        .unwrap();
    out.push(show(m, base, "peer").await);
    m.mount(none, &p("peer"), "", &flag("--make-slave"))
        .await
        .unwrap();
    out.push(show(m, base, "peer").await);
    m.mount(none, &p("peer"), "", &flag("--make-unbindable"))
        .await
        .unwrap();
    out.push(show(m, base, "peer").await);
    m.mount(none, &p("peer"), "", &flag("--make-private"))
        .await
        .unwrap();
    out.push(show(m, base, "peer").await);
    m.unmount(&p("peer"), &unmount).await.unwrap();
    // make_rshared: the mount and those below it.
    m.create_dir_all(&p("prop/sub")).await.unwrap();
    m.mount(OsStr::new("sub"), &p("prop/sub"), "tmpfs", &opts(""))
        .await
        .unwrap();
    m.mount(none, &p("prop"), "", &flag("--make-rprivate"))
        .await
        .unwrap();
    m.make_rshared(&p("prop")).await.unwrap();
    out.push(show(m, base, "prop").await);
    out.push(show(m, base, "prop/sub").await);
    m.unmount(&p("prop/sub"), &unmount).await.unwrap();
    m.unmount(&p("prop"), &unmount).await.unwrap();
    m.unmount(&p("t/dir/inner"), &unmount).await.unwrap();
    m.unmount(&p("t"), &unmount).await.unwrap();
    out.push(show(m, base, "t").await);
    out
}

/// findmnt's `FSTYPE VFS-OPTIONS PROPAGATION` for the topmost mount at `p` in the sandbox.
fn findmnt(sb: &SandboxHost, p: &Path) -> String {
    let out = sb.oracle(&[
        "findmnt".as_ref(),
        "-n".as_ref(),
        "-r".as_ref(),
        "-o".as_ref(),
        "FSTYPE,VFS-OPTIONS,PROPAGATION".as_ref(),
        "--mountpoint".as_ref(),
        p.as_os_str(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().last().unwrap_or("").to_owned()
}

async fn real(test: &str, new_api: bool, helper: bool) -> Option<Vec<String>> {
    if skip_without_namespaces(test) {
        return None;
    }
    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::builder(sb.target())
        .new_mount_api(new_api)
        .build()
        .unwrap();
    let m = HostMounter::new(ns);
    let base = sb.scratch().join("agree");
    // The sandbox's scratch tmpfs may be shared; the steps start on a private mount, as the
    // fake's table does.
    sb.mkdir_all(&base).unwrap();
    sb.mount_tmpfs(&base, "").unwrap();
    let private = sb.oracle(&[
        "mount".as_ref(),
        "--make-private".as_ref(),
        base.as_os_str(),
    ]);
    assert!(private.status.success());
    let got = transcript(&m, &base, helper).await;
    // Spot checks against findmnt: the last state, and one mount made by hand the same way.
    assert!(got.last().unwrap().ends_with(" -"), "{got:?}");
    let t = base.join("t");
    m.mount(
        OsStr::new("agree"),
        &t,
        "tmpfs",
        &MountOptions::new().options(["nosuid", "nodev", "noatime", "ro"]),
    )
    .await
    .unwrap();
    let fm = findmnt(&sb, &t);
    let shown = show(&m, &base, "t").await;
    let mut f = fm.split(' ');
    let (fstype, vfs, prop) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
    assert_eq!(shown, format!("t {fstype} {vfs} {prop}"), "findmnt: {fm}");
    Some(got)
}

fn fake_transcript() -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = FakeHost::new().unwrap();
    let m = HostMounter::with_parts(FakeExecutor::new(), host);
    rt.block_on(transcript(&m, Path::new("/agree"), false))
}

/// Runs the transcript on a sandbox host by the route the two switches pick (see `real`) and
/// on the fake, and asserts they are equal.
async fn agrees_with_the_fake(test: &str, new_api: bool, helper: bool) {
    let Some(got) = real(test, new_api, helper).await else {
        return;
    };
    let fake = std::thread::spawn(fake_transcript).join().unwrap();
    assert_eq!(fake, got);
}

#[tokio::test]
async fn the_fake_and_the_new_mount_api_agree_step_by_step() {
    agrees_with_the_fake(
        "the_fake_and_the_new_mount_api_agree_step_by_step",
        true,
        false,
    )
    .await;
}

#[tokio::test]
async fn the_fake_and_the_mount2_fallback_agree_step_by_step() {
    agrees_with_the_fake(
        "the_fake_and_the_mount2_fallback_agree_step_by_step",
        false,
        false,
    )
    .await;
}

#[tokio::test]
async fn the_fake_and_the_mount8_route_agree_step_by_step() {
    agrees_with_the_fake(
        "the_fake_and_the_mount8_route_agree_step_by_step",
        true,
        true,
    )
    .await;
}

#[tokio::test]
async fn the_fake_follows_bind_remount_ro_and_every_flag() {
    let fake = std::thread::spawn(fake_transcript).join().unwrap();
    // The fake on its own, so a machine without namespaces still checks it.
    let want = [
        "t tmpfs rw,nosuid,nodev,noatime private",
        "t tmpfs ro,nosuid,nodev,noatime private",
        "t tmpfs rw,nosuid,nodev,noatime private",
        "b tmpfs rw,nosuid,nodev,noatime private",
        "b tmpfs ro,nosuid,nodev,noatime private",
        "t tmpfs rw,nosuid,nodev,noatime private",
        "b -",
        "b tmpfs ro,nosuid,nodev,noexec,noatime private",
        "rb tmpfs rw,nosuid,nodev,noatime private",
        "rb/inner tmpfs rw,noexec,relatime private",
        "b/inner -",
        "prop tmpfs rw,relatime private",
        "prop tmpfs rw,relatime shared",
        "peer tmpfs rw,relatime shared",
        "peer tmpfs rw,relatime slave",
        "peer tmpfs rw,relatime unbindable",
        "peer tmpfs rw,relatime private",
        "prop tmpfs rw,relatime shared",
        "prop/sub tmpfs rw,relatime shared",
        "t -",
    ];
    assert_eq!(fake, want);
}
