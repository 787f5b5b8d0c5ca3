//! Every native filesystem type and option, mounted by `HostMounter` on a real sandbox host
//! through each route — the new mount API, `mount(2)` (the new API switched off, as on an old
//! kernel or under a seccomp filter) and mount(8) (`helper_only`) — and compared with findmnt
//! run inside the host: the three routes must give the same mount, field for field, and the
//! fields must say what was asked.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::ffi::OsStr;
use std::path::PathBuf;

use hostexec_mount::{HostMounter, Mount, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn run(sb: &SandboxHost, argv: &[&str]) -> String {
    let args: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
    let out = sb.oracle(&args);
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A loop device over a fresh ext4 image in the sandbox; detached on drop.
struct Loop<'a> {
    sb: &'a SandboxHost,
    dev: PathBuf,
}

impl<'a> Loop<'a> {
    fn ext4(sb: &'a SandboxHost) -> Loop<'a> {
        let img = sb.scratch().join("routes-ext4.img");
        let img = img.to_str().unwrap();
        run(sb, &["truncate", "-s", "16M", img]);
        run(sb, &["mkfs.ext4", "-q", "-F", img]);
        let dev = PathBuf::from(run(sb, &["losetup", "-f", "--show", img]));
        Loop { sb, dev }
    }
}

impl Drop for Loop<'_> {
    fn drop(&mut self) {
        let _ = self
            .sb
            .oracle(&["losetup".as_ref(), "-d".as_ref(), self.dev.as_os_str()]);
    }
}

/// One case: (source, type, options, what findmnt must show among its fields).
struct Case {
    source: String,
    fstype: &'static str,
    options: String,
    expect: Vec<String>,
}

fn case(source: &str, fstype: &'static str, options: &str, expect: &[&str]) -> Case {
    Case {
        source: source.to_owned(),
        fstype,
        options: options.to_owned(),
        expect: expect.iter().map(|s| (*s).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_native_type_is_the_same_mount_on_every_route() {
    if skip_without_namespaces("every_native_type_is_the_same_mount_on_every_route") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let new_api = HostMounter::new(NsEnter::new(sb.target()).unwrap());
    let mount2 = HostMounter::new(
        NsEnter::builder(sb.target())
            .new_mount_api(false)
            .build()
            .unwrap(),
    );
    let s = sb.scratch().join("routes");
    let t = s.join("t");
    for d in ["t", "lower", "upper", "work"] {
        sb.mkdir_all(&s.join(d)).unwrap();
    }
    sb.write_file(&s.join("lower/file"), b"lower").unwrap();
    let disk = Loop::ext4(&sb);
    let dev = disk.dev.to_str().unwrap().to_owned();
    let overlay = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.join("lower").display(),
        s.join("upper").display(),
        s.join("work").display()
    );
    let cases = [
        case(
            "tmp-src",
            "tmpfs",
            "size=2m,mode=0750,nosuid,nodev,noexec,noatime",
            &[
                "tmpfs",
                "tmp-src",
                "size=2048k",
                "mode=750",
                "noexec",
                "noatime",
            ],
        ),
        case(
            "ram-src",
            "ramfs",
            "mode=0700,nodev",
            &["ramfs", "ram-src", "mode=700", "nodev"],
        ),
        case(
            "proc",
            "proc",
            "nosuid,nodev,noexec,hidepid=2",
            &["proc", "noexec", "hidepid=invisible"],
        ),
        case(
            "sysfs",
            "sysfs",
            "ro,nosuid,nodev,noexec",
            &["sysfs", "ro", "nosuid"],
        ),
        case(
            "overlay",
            "overlay",
            &overlay,
            &["overlay", "lowerdir=", "upperdir="],
        ),
        case(
            &dev,
            "ext4",
            "noatime,errors=remount-ro",
            &["ext4", &dev, "noatime", "errors=remount-ro"],
        ),
        case(&dev, "ext4", "ro,nodev", &["ext4", "ro", "nodev"]),
    ];
    let unmount = UnmountOptions::new();
    for c in &cases {
        let mut seen = Vec::new();
        for route in ["new API", "mount(2)", "mount(8)"] {
            // A fresh overlay upper and work directory each time: overlayfs records state in
            // them (`uuid=on` once a new upper directory got its UUID).
            for d in ["upper", "work"] {
                sb.remove_all(&s.join(d)).unwrap();
                sb.mkdir_all(&s.join(d)).unwrap();
            }
            let (m, o, u) = match route {
                "new API" => (&new_api, MountOptions::new(), unmount.clone()),
                "mount(2)" => (&mount2, MountOptions::new(), unmount.clone()),
                _ => (
                    &new_api,
                    MountOptions::new().helper_only(),
                    unmount.clone().helper_only(),
                ),
            };
            let o = o.options(c.options.split(','));
            m.mount(OsStr::new(&c.source), &t, c.fstype, &o)
                .await
                .unwrap_or_else(|e| panic!("{} {route}: {e}", c.fstype));
            let row = sb
                .findmnt_top(&t)
                .unwrap_or_else(|| panic!("{} {route}: no mount", c.fstype));
            let fields: Vec<&str> = row.split([' ', ',']).collect();
            for want in &c.expect {
                assert!(
                    fields
                        .iter()
                        .any(|f| f == want || want.ends_with('=') && f.starts_with(want.as_str())),
                    "{} {route}: {want} not in {row}",
                    c.fstype
                );
            }
            m.unmount(&t, &u).await.unwrap();
            assert_eq!(
                sb.findmnt_top(&t),
                None,
                "{} {route}: still mounted",
                c.fstype
            );
            seen.push((route, row));
        }
        for (route, row) in &seen[1..] {
            assert_eq!(
                row, &seen[0].1,
                "{} {route} differs from the new API",
                c.fstype
            );
        }
    }
}
