//! `publish_volume` against `hostexec-fake`: a temp-directory host resolved with the real
//! algorithm, and a scripted, recording executor. No root needed.

use std::ffi::OsStr;
use std::path::Path;

use hostexec_api::{ExitStatus, Output};
use hostexec_fake::{FakeExecutor, FakeHost};
use hostexec_integration_tests::{publish_volume, PublishError};

const PODS: &str = "/var/lib/kubelet/pods";

fn host() -> FakeHost {
    let host = FakeHost::new().unwrap();
    host.dir("/var/lib/kubelet/plugins/csi/staging/vol1")
        .unwrap();
    host.dir("/var/lib/kubelet/pods/p1/volumes/vol1").unwrap();
    // The kubelet dir reached through a symlink, as on hosts with /var -> /data/var.
    host.symlink("/var/lib/kubelet/pods/p1", "/var/lib/kubelet/pods/alias")
        .unwrap();
    // A hostile target: a pod volume dir replaced by a link to /etc.
    host.dir("/etc").unwrap();
    host.symlink("/etc", "/var/lib/kubelet/pods/p2-evil")
        .unwrap();
    host
}

#[tokio::test]
async fn publishes_read_only_with_resolved_paths() {
    let host = host();
    let exec = FakeExecutor::ordered().with_host(&host);
    exec.expect("mount")
        .args([
            "--bind",
            "/var/lib/kubelet/plugins/csi/staging/vol1",
            "/var/lib/kubelet/pods/p1/volumes/vol1",
        ])
        .times(1)
        .answer_with(host.mount_handler());
    exec.expect("mount")
        .args([
            "-o",
            "remount,bind,ro",
            "/var/lib/kubelet/pods/p1/volumes/vol1",
        ])
        .times(1)
        .answer_with(host.mount_handler());

    let got = publish_volume(
        &exec,
        &host,
        Path::new("/var/lib/kubelet/plugins/csi/staging/vol1"),
        Path::new("/var/lib/kubelet/pods/alias/volumes/vol1"),
        Path::new(PODS),
        true,
    )
    .await
    .unwrap();
    assert_eq!(got, Path::new("/var/lib/kubelet/pods/p1/volumes/vol1"));
    exec.verify().unwrap();
    // The fake's mount table now has the bind mount, seen as a mount point by HostFs.
    assert!(host
        .is_mount_point(Path::new("/var/lib/kubelet/pods/p1/volumes/vol1"))
        .unwrap());
    let calls = exec.calls();
    assert_eq!(calls.len(), 2);
    assert!(
        calls.iter().all(|c| c.get_timeout().is_some()),
        "every mount has a timeout"
    );
}

#[tokio::test]
async fn refuses_a_target_that_a_symlink_leads_out_of_the_pods_dir() {
    let host = host();
    let exec = FakeExecutor::new().with_host(&host);
    let err = publish_volume(
        &exec,
        &host,
        Path::new("/var/lib/kubelet/plugins/csi/staging/vol1"),
        Path::new("/var/lib/kubelet/pods/p2-evil"),
        Path::new(PODS),
        false,
    )
    .await
    .unwrap_err();
    match err {
        PublishError::OutsidePods { resolved, .. } => assert_eq!(resolved, Path::new("/etc")),
        other => panic!("{other:?}"),
    }
    assert!(exec.calls().is_empty(), "nothing was mounted");
}

#[tokio::test]
async fn a_missing_staging_path_is_a_typed_not_found() {
    let host = host();
    let exec = FakeExecutor::new();
    let err = publish_volume(
        &exec,
        &host,
        Path::new("/var/lib/kubelet/plugins/csi/staging/nope"),
        Path::new("/var/lib/kubelet/pods/p1/volumes/vol1"),
        Path::new(PODS),
        false,
    )
    .await
    .unwrap_err();
    match err {
        PublishError::Resolve { what, source } => {
            assert_eq!(what, "staging path");
            assert!(source.is_not_found(), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_failing_mount_keeps_its_stderr() {
    let host = host();
    let exec = FakeExecutor::new();
    exec.expect("mount").times(1).returns(
        Output::new("mount", ExitStatus::Code(32))
            .with_stderr("mount: /var/lib/kubelet/pods/p1/volumes/vol1: permission denied.\n"),
    );
    let err = publish_volume(
        &exec,
        &host,
        Path::new("/var/lib/kubelet/plugins/csi/staging/vol1"),
        Path::new("/var/lib/kubelet/pods/p1/volumes/vol1"),
        Path::new(PODS),
        false,
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("exit status 32") && text.contains("permission denied"),
        "{text}"
    );
    assert_eq!(exec.calls()[0].get_program(), OsStr::new("mount"));
}
