//! Sensitive mount options never reach an error or a log, with every crate logging at TRACE
//! (the backend included, from its own threads: hence a global subscriber, and this test in a
//! binary of its own), on a real sandbox host.

use hostexec_api::HostFs;
use hostexec_mount::{HostMounter, Mount, MountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::logs::Capture;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_in_errors_or_trace_logs() {
    if skip_without_namespaces("secrets_never_in_errors_or_trace_logs") {
        return;
    }
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

    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns);
    let t = sb.scratch().join("s");
    m.create_dir_all(&t).await.unwrap();

    // tmpfs refuses the option: the kernel refuses it (native route: fsconfig, whose
    // message is in the error) or mount(8) fails (helper route).
    const SECRET: &str = "Hunter2-c0rrect-h0rse";
    const UID: &str = "uid=48151";
    for (helper, shown) in [
        (false, "size=1m,password=<masked>"),
        (true, "size=1m,<masked>"),
    ] {
        let base = || {
            let o = MountOptions::new();
            if helper {
                o.helper_only()
            } else {
                o
            }
        };
        let err = m
            .mount(
                "tmpfs".as_ref(),
                &t,
                "tmpfs",
                &base()
                    .option("size=1m")
                    .sensitive(format!("password={SECRET}")),
            )
            .await
            .unwrap_err();
        // A mount that succeeds with a sensitive option (uid= is accepted by tmpfs).
        m.mount("tmpfs".as_ref(), &t, "tmpfs", &base().sensitive(UID))
            .await
            .unwrap();
        let text = format!("{err}\n{err:?}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("48151"), "{text}");
        assert!(text.contains(shown), "{text}");
        if !helper {
            assert!(text.contains("Unknown parameter 'password'"), "{text}");
        }
    }
    let logs = logs.text();
    assert!(logs.contains("mounting"), "nothing was captured: {logs}");
    assert!(logs.contains("<masked>"), "{logs}");
    assert!(!logs.contains(SECRET), "{logs}");
    assert!(!logs.contains(UID), "{logs}");
}
