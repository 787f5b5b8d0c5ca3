//! The hung-mount fixture does what the tests built on it rely on: a lookup blocks, a second
//! lookup of the same name blocks in state D and survives SIGKILL, aborting the connection
//! ends both with ENOTCONN, and dropping the fixture leaves no mount and no process.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn state(pid: u32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").and_then(|(_, r)| r.chars().next()))
}

fn mounted(sb: &SandboxHost, path: &Path) -> bool {
    let table = std::fs::read_to_string(format!("/proc/{}/mountinfo", sb.pid())).unwrap();
    table
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(path.to_str().unwrap()))
}

#[test]
fn a_hung_mount_blocks_in_d_state_until_aborted_and_leaves_nothing() {
    if skip_without_namespaces("a_hung_mount_blocks_in_d_state_until_aborted_and_leaves_nothing") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let dir = sb.scratch().join("hung");
    sb.mkdir_all(&dir).unwrap();
    let mut hung = sb.hung_fuse_mount(&dir).unwrap();
    assert!(mounted(&sb, &dir));
    assert!(hung.is_hung());
    let first = hung.park_waiter("x").unwrap();

    // A second lookup of the same name: state D, and SIGKILL does not end it.
    let mut second = Command::new("nsenter")
        .args(["-t", &sb.pid().to_string(), "-m", "--", "stat", "--"])
        .arg(dir.join("x"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = second.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(state(pid) == Some('D')
        && std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap() == "stat\n")
    {
        assert!(
            Instant::now() < deadline,
            "the second lookup never reached state D"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    second.kill().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(state(pid), Some('D'), "SIGKILL ended a D-state lookup");
    assert!(second.try_wait().unwrap().is_none());

    // Aborting answers everyone: the killed one dies, the first waiter fails with ENOTCONN.
    hung.abort();
    assert!(!hung.is_hung());
    let status = second.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    let out = sb.oracle(&["stat".as_ref(), dir.join("y").as_os_str()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Transport endpoint is not connected"),
        "{out:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while state(first).is_some_and(|s| s != 'Z') {
        assert!(Instant::now() < deadline, "the parked waiter never ended");
        std::thread::sleep(Duration::from_millis(5));
    }

    drop(hung);
    assert!(!mounted(&sb, &dir), "the hung mount outlived its fixture");
    assert!(state(first).is_none(), "the parked waiter was not reaped");
}
