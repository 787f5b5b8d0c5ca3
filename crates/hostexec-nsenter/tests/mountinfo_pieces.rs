//! `NsEnter`'s `HostFs::read_mountinfo_pieces` against a sandbox host with a large table: the pieces
//! are whole lines and, joined, are exactly what `read_mountinfo` reads.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::sync::{Arc, Mutex};

use hostexec_api::HostFs;
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

#[tokio::test(flavor = "current_thread")]
async fn pieces_are_whole_lines_that_join_to_the_table() {
    if skip_without_namespaces("pieces_are_whole_lines_that_join_to_the_table") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let base = sb.scratch().join("many");
    sb.mkdir_all(&base).unwrap();
    sb.mount_many_tmpfs(&base, 0, 2_000).unwrap();
    let host = NsEnter::new(sb.target()).unwrap();
    let whole = host.read_mountinfo().await.unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    host.read_mountinfo_pieces(Box::new(move |p| sink.lock().unwrap().push(p)))
        .await
        .unwrap();
    let pieces = got.lock().unwrap();
    // ~180 KiB in pieces of ~32 KiB.
    assert!(
        pieces.len() >= 4,
        "{} pieces of {} bytes",
        pieces.len(),
        whole.len()
    );
    for p in pieces.iter() {
        assert_eq!(p.last(), Some(&b'\n'), "a piece ends a line");
    }
    assert_eq!(pieces.concat(), whole);
}
