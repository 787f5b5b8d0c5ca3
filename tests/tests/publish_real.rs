//! `publish_volume` against the real backend, in a sandbox host: a process in its own mount
//! namespace. util-linux inside the sandbox (`findmnt`, `touch`) is the oracle.

use std::ffi::OsStr;
use std::path::Path;

use hostexec_integration_tests::{publish_volume, PublishError};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_read_only_in_a_real_mount_namespace() {
    if skip_without_namespaces("publishes_read_only_in_a_real_mount_namespace") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let s = sb.scratch().to_path_buf();
    let staging = s.join("staging/vol1");
    let pods = s.join("pods");
    sb.mkdir_all(&staging).unwrap();
    sb.write_file(&staging.join("data"), b"payload").unwrap();
    sb.mkdir_all(&pods.join("p1/vol1")).unwrap();
    sb.symlink(pods.join("p1"), &pods.join("alias")).unwrap();
    sb.symlink("/etc", &pods.join("evil")).unwrap();

    let ns = NsEnter::new(sb.target()).unwrap();
    let got = publish_volume(&ns, &ns, &staging, &pods.join("alias/vol1"), &pods, true)
        .await
        .unwrap();
    assert_eq!(got, pods.join("p1/vol1"));

    // The oracle, inside the sandbox: findmnt sees the bind mount, read-only.
    let out = sb.oracle(&[
        OsStr::new("findmnt"),
        OsStr::new("--noheadings"),
        OsStr::new("--output"),
        OsStr::new("OPTIONS"),
        got.as_os_str(),
    ]);
    let opts = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "findmnt: {out:?}");
    assert!(
        opts.split(',').next().map(str::trim) == Some("ro"),
        "options {opts}"
    );
    let data = sb.oracle(&[OsStr::new("cat"), got.join("data").as_os_str()]);
    assert_eq!(data.stdout, b"payload");
    let touch = sb.oracle(&[OsStr::new("touch"), got.join("new").as_os_str()]);
    assert!(!touch.status.success(), "the published volume is read-only");
    // The caller's namespace never saw the mount.
    assert!(!Path::new(&got).join("data").exists());

    let err = publish_volume(&ns, &ns, &staging, &pods.join("evil"), &pods, false)
        .await
        .unwrap_err();
    assert!(matches!(err, PublishError::OutsidePods { .. }), "{err}");
}
