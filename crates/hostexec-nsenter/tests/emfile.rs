//! A lowered fd limit: with every descriptor up to RLIMIT_NOFILE in use,
//! commands and file operations fail with a clear error that names EMFILE (never "not
//! found"), and work again once descriptors are free. A test binary of its own: the limit
//! and the exhausted descriptor table are the whole process's.

use hostexec_api::{CommandError, Executor, HostCommand, PathError, PathResolver, Resolve};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Restores the fd limit when dropped (also when an assertion fails).
struct RestoreLimit(Rlimit);

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        let _ = setrlimit(Resource::Nofile, self.0);
    }
}

/// Opens files until EMFILE; returns them (dropping them frees the table).
fn exhaust() -> Vec<std::fs::File> {
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(24), "{e}");
                return held;
            }
        }
    }
}

fn says_emfile(e: &dyn std::error::Error) -> bool {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(x) = cur {
        if x.to_string().contains("Too many open files") {
            return true;
        }
        cur = x.source();
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emfile_is_a_clear_error_and_the_next_call_works() {
    if skip_without_namespaces("emfile_is_a_clear_error_and_the_next_call_works") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let f = sb.scratch().join("f");
    sb.write_file(&f, b"data").unwrap();
    let hosts: Vec<NsEnter> = [Launcher::HostThread, Launcher::NsenterBinary]
        .into_iter()
        .map(|l| NsEnter::builder(sb.target()).launcher(l).build().unwrap())
        .collect();
    // Warm up: runtime threads, pool workers and the binary cache exist before the limit.
    for h in &hosts {
        assert!(h.run(HostCommand::new("true")).await.unwrap().success());
        h.resolve(&f, Resolve::MustExist).await.unwrap();
    }

    let old = getrlimit(Resource::Nofile);
    let _restore = RestoreLimit(old);
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(open_now + 16),
            maximum: old.maximum,
        },
    )
    .unwrap();
    let held = exhaust();
    assert!(!held.is_empty());

    for h in &hosts {
        let l = h.launcher();
        for cmd in [
            HostCommand::new("cat").arg(&f),
            HostCommand::new("/bin/cat").arg(&f),
            HostCommand::new("hostexec-not-yet-cached"),
        ] {
            match h.run(cmd.clone()).await {
                Err(CommandError::NotFound { .. }) => {
                    panic!(
                        "{l:?}: {cmd:?}: EMFILE reported as not found: {:?}",
                        h.run(cmd.clone()).await
                    )
                }
                Err(e) => assert!(says_emfile(&e), "{l:?}: {cmd:?}: unclear error: {e}"),
                Ok(o) => panic!("{l:?}: {cmd:?} ran with no descriptor free: {o:?}"),
            }
        }
        match h.resolve(&f, Resolve::MustExist).await {
            Err(e @ PathError::Io { .. }) | Err(e @ PathError::HostUnavailable { .. }) => {
                assert!(says_emfile(&e), "{l:?}: unclear error: {e}");
                assert_eq!(e.raw_os_error(), Some(24), "{l:?}: {e}");
            }
            other => panic!("{l:?}: resolve with no descriptor free: {other:?}"),
        }
    }

    drop(held);
    for h in &hosts {
        let l = h.launcher();
        let out = h
            .run(HostCommand::new("cat").arg(&f))
            .await
            .unwrap()
            .check()
            .unwrap();
        assert_eq!(out.stdout, b"data", "{l:?}");
        assert_eq!(h.resolve(&f, Resolve::MustExist).await.unwrap(), f, "{l:?}");
        let nf = h.run(HostCommand::new("hostexec-not-yet-cached")).await;
        assert!(
            matches!(nf, Err(CommandError::NotFound { .. })),
            "{l:?}: {nf:?}"
        );
    }
}
