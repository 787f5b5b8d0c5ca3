//! A real pty for the `hostexec_api::conformance::controlling_tty` contract:
//! a controller this process reads and a terminal side held open until the command has ended
//! (with no holder, the controller reads as hung up before the command opens its side).

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;

/// A new pty of this process's `/dev/ptmx`: its terminal's path (`/dev/pts/N` as this process
/// sees it) and the call that returns what was written to it (see the module docs).
pub fn open() -> io::Result<(PathBuf, Box<dyn FnOnce() -> String + Send>)> {
    let controller = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY)?;
    rustix::pty::grantpt(&controller)?;
    rustix::pty::unlockpt(&controller)?;
    let name = rustix::pty::ptsname(&controller, Vec::new())?;
    let held = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let path = PathBuf::from(
        <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(name.into_bytes()),
    );
    Ok((path, Box::new(move || read_all(controller, held))))
}

/// Lets go of the terminal side and reads the controller until it is hung up (no holder left)
/// or 5 s have passed.
fn read_all(controller: OwnedFd, held: OwnedFd) -> String {
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut fds = [rustix::event::PollFd::new(
            &controller,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            }),
        ) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => match rustix::io::read(&controller, &mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(rustix::io::Errno::INTR) => {}
                // EIO: the last holder of the terminal side is gone.
                Err(_) => break,
            },
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
