//! FakeExecutor::passthrough stops escapers as the real backend does (the same engine): no
//! process a command started survives a timeout or a drop, whatever it did to escape. A test
//! binary of its own, one test: without a cgroup2 hierarchy the engine attributes a daemon
//! that left every group and session by when it started, so no other command of this
//! process may run meanwhile.

use hostexec_api::conformance;
use hostexec_fake::FakeExecutor;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_leaves_no_escaper_after_timeout_or_drop() {
    let fake = FakeExecutor::passthrough();
    conformance::escapers_do_not_survive(&fake).await;
    conformance::drop_terms_then_kills(&fake).await;
    assert!(fake.calls().len() >= 3, "{:?}", fake.calls().len());
}
