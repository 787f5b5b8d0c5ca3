//! `publish_volume` against mockall mocks: exact interactions, and failures that are hard to
//! build on a real tree.

use std::path::{Path, PathBuf};

use hostexec_api::{ExitStatus, MockExecutor, MockPathResolver, Output, PathError, Resolve};
use hostexec_integration_tests::{publish_volume, PublishError};
use mockall::{predicate::eq, Sequence};

fn resolver(map: &'static [(&'static str, &'static str)]) -> MockPathResolver {
    let mut r = MockPathResolver::new();
    r.expect_resolve()
        .withf(|_, mode| *mode == Resolve::MustExist)
        .returning(move |p, _| {
            map.iter()
                .find(|(from, _)| Path::new(from) == p)
                .map(|(_, to)| PathBuf::from(to))
                .ok_or_else(|| PathError::from_errno(p, 2))
        });
    r
}

#[tokio::test]
async fn mounts_exactly_once_without_remount_when_writable() {
    let paths = resolver(&[
        ("/staging/v", "/staging/v"),
        ("/pods", "/pods"),
        ("/pods/p/v", "/pods/p/v"),
    ]);
    let mut exec = MockExecutor::new();
    let mut seq = Sequence::new();
    exec.expect_run()
        .withf(|c| {
            c.get_program() == "mount" && c.get_args().eq(["--bind", "/staging/v", "/pods/p/v"])
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|c| Ok(Output::new(c.get_program(), ExitStatus::Code(0))));
    publish_volume(
        &exec,
        &paths,
        Path::new("/staging/v"),
        Path::new("/pods/p/v"),
        Path::new("/pods"),
        false,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_resolver_error_stops_before_any_command() {
    let mut paths = MockPathResolver::new();
    paths
        .expect_resolve()
        .with(eq(Path::new("/staging/v")), eq(Resolve::MustExist))
        .times(1)
        .returning(|p, _| Err(PathError::from_errno(p, 40)));
    let exec = MockExecutor::new(); // any call would fail the test
    let err = publish_volume(
        &exec,
        &paths,
        Path::new("/staging/v"),
        Path::new("/pods/p/v"),
        Path::new("/pods"),
        false,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::Resolve {
                source: PathError::Loop { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("Too many levels of symbolic links"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failed_remount_is_reported() {
    let paths = resolver(&[("/s", "/s"), ("/pods", "/pods"), ("/pods/t", "/pods/t")]);
    let mut exec = MockExecutor::new();
    exec.expect_run()
        .withf(|c| c.get_args().next() == Some("--bind".as_ref()))
        .times(1)
        .returning(|c| Ok(Output::new(c.get_program(), ExitStatus::Code(0))));
    exec.expect_run()
        .withf(|c| c.get_args().eq(["-o", "remount,bind,ro", "/pods/t"]))
        .times(1)
        .returning(|c| {
            Ok(Output::new(c.get_program(), ExitStatus::Code(32))
                .with_stderr("mount: /pods/t: not mounted."))
        });
    let err = publish_volume(
        &exec,
        &paths,
        Path::new("/s"),
        Path::new("/pods/t"),
        Path::new("/pods"),
        true,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not mounted"), "{err}");
}
