//! The hostexec-api conformance suite against `NsEnter`, for both launchers, on a sandbox host
//! (a real mount namespace whose scratch tmpfs this process cannot see directly).

use hostexec_api::conformance;
use hostexec_api::conformance::executor_contract;
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

// The descriptor check is the suite's strict one: descriptors this test process inherited
// without FD_CLOEXEC (a job runner leaves some) must not reach the command either
// (tests/descriptors.rs makes such a descriptor on purpose).

async fn contract(launcher: Launcher) {
    let sb = SandboxHost::start().unwrap();
    let host = NsEnter::builder(sb.target())
        .launcher(launcher)
        .build()
        .unwrap();
    executor_contract(&host).await;
    let res_base = sb.scratch().join("resolver");
    sb.mkdir_all(&res_base).unwrap();
    conformance::resolver_contract(&host, &res_base).await;
    let fs_base = sb.scratch().join("fs");
    sb.mkdir_all(&fs_base).unwrap();
    conformance::host_fs_contract(&host, &fs_base).await;
    let secret_base = sb.scratch().join("secret");
    sb.mkdir_all(&secret_base).unwrap();
    conformance::secret_file_contract(&host, &secret_base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_thread_keeps_the_contract() {
    if skip_without_namespaces("host_thread_keeps_the_contract") {
        return;
    }
    contract(Launcher::HostThread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsenter_binary_keeps_the_contract() {
    if skip_without_namespaces("nsenter_binary_keeps_the_contract") {
        return;
    }
    contract(Launcher::NsenterBinary).await;
}

#[tokio::test(flavor = "current_thread")]
async fn host_thread_keeps_the_contract_on_a_current_thread_runtime() {
    if skip_without_namespaces("host_thread_keeps_the_contract_on_a_current_thread_runtime") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let host = NsEnter::new(sb.target()).unwrap();
    executor_contract(&host).await;
}
