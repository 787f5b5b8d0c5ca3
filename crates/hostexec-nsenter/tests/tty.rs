//! `HostCommand::controlling_tty` in a sandbox host, on a real pty: the host-thread launcher
//! keeps the contract (session leader, controlling terminal, exit status, timeout); the
//! nsenter-binary launcher refuses the command before starting anything.

use hostexec_api::{conformance, CommandError, Executor, HostCommand};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlling_tty_with_either_launcher() {
    if skip_without_namespaces("controlling_tty_with_either_launcher") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let h = NsEnter::builder(sb.target()).build().unwrap();
    // The sandbox's /dev is this process's: the pty's path names it there too.
    conformance::controlling_tty(&h, &mut || hostexec_testing::pty::open().expect("a pty")).await;

    let h = NsEnter::builder(sb.target())
        .launcher(Launcher::NsenterBinary)
        .build()
        .unwrap();
    let (path, finish) = hostexec_testing::pty::open().unwrap();
    let r = h
        .run(
            HostCommand::new("sh")
                .args(["-c", "echo ran"])
                .controlling_tty(&path),
        )
        .await;
    assert!(
        matches!(&r, Err(CommandError::InvalidInput { reason, .. }) if reason.contains("host-thread launcher")),
        "{r:?}"
    );
    assert_eq!(finish(), "", "nothing ran");
}
