//! Whether a [`Target::pid`](crate::Target::pid) process still exists, told without a system
//! call on the hot path.
//!
//! The process is held by a pidfd, which becomes readable when the process exits (pidfd_open(2)).
//! A watcher thread waits in `poll` on it and sets a flag when it does; calls that need no
//! more than the flag read it with one atomic load ([`Liveness::exited_fast`]). Calls that name
//! the process by its PID (a `/proc/PID/…` path, nsenter's arguments) ask the pidfd itself
//! ([`Liveness::exited`]), which also sets the flag, so once any call has seen the exit every
//! call refuses.
//!
//! **The window.** Between the exit and the watcher setting the flag (the watcher's wake-up,
//! microseconds on an idle machine), a call that reads only the flag goes ahead. That is
//! harmless for the calls that use it (the inline file calls, and the native mount calls,
//! which also act on the host thread that stays in the target's mount namespace): they reach
//! the target through the host root descriptor this process holds, which names the target's
//! root directory itself (a mount and a dentry the descriptor pins), not the PID. An exit does not change what it names
//! and a reused PID cannot redirect it, so such a call sees exactly the tree a call made an
//! instant before the exit would have seen: it is ordered before the exit. No `/proc/PID`
//! path is ever used on that route.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The target process's pidfd, and the watcher's verdict.
#[derive(Debug)]
pub(crate) struct Liveness {
    pidfd: OwnedFd,
    /// Set once the process is known to have exited (by the watcher or by a strict check).
    exited: Arc<AtomicBool>,
    /// Whether a watcher thread sets `exited`; without one, every check asks the pidfd.
    watched: bool,
    /// The write end of the watcher's stop pipe: dropping it (with the `NsEnter`) ends the
    /// watcher.
    _stop: Option<OwnedFd>,
}

impl Liveness {
    /// Holds `pidfd` and starts its watcher thread (without one, if the thread or its pipe
    /// cannot be made: then every check is a `poll`).
    pub(crate) fn new(pidfd: OwnedFd) -> Liveness {
        let exited = Arc::new(AtomicBool::new(false));
        let watcher = pidfd.try_clone().ok().and_then(|fd| {
            let (stop_r, stop_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
            let flag = Arc::clone(&exited);
            std::thread::Builder::new()
                .name("hostexec-alive".into())
                .spawn(move || watch(&fd, &stop_r, &flag))
                .ok()?;
            Some(stop_w)
        });
        Liveness {
            pidfd,
            exited,
            watched: watcher.is_some(),
            _stop: watcher,
        }
    }

    /// Whether the process has exited, asking the pidfd (a `poll`) unless that is known
    /// already. For calls that name the process by its PID.
    pub(crate) fn exited(&self) -> bool {
        if self.exited.load(Ordering::Acquire) {
            return true;
        }
        let gone = pidfd_readable(&self.pidfd);
        if gone {
            self.exited.store(true, Ordering::Release);
        }
        gone
    }

    /// Whether the process is known to have exited: the watcher's flag, one atomic load (a
    /// `poll` when there is no watcher). Only for calls through the held root descriptor; see
    /// the [module docs](self) for why the window before the flag is set is harmless there.
    pub(crate) fn exited_fast(&self) -> bool {
        if self.watched {
            self.exited.load(Ordering::Acquire)
        } else {
            self.exited()
        }
    }
}

/// True once the process of `pidfd` has exited (its pidfd is readable), or when that cannot
/// be told.
pub(crate) fn pidfd_readable(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
}

/// The watcher: waits for the pidfd to become readable (the exit: sets `flag`) or the stop
/// pipe to close (the `NsEnter` is gone), whichever comes first.
fn watch(pidfd: &OwnedFd, stop: &OwnedFd, flag: &AtomicBool) {
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => {
                // Cannot wait: say nothing the pidfd did not say.
                if pidfd_readable(pidfd) {
                    flag.store(true, Ordering::Release);
                }
                return;
            }
            Ok(_) => {
                if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                    flag.store(true, Ordering::Release);
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pidfd_of(child: &std::process::Child) -> OwnedFd {
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).unwrap()
    }

    fn wait_for(what: &str, done: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !done() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    #[test]
    fn the_watcher_sees_the_exit_and_a_strict_check_at_once() {
        let mut c = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let (watched, strict) = (Liveness::new(pidfd_of(&c)), Liveness::new(pidfd_of(&c)));
        assert!(watched.watched);
        assert!(!watched.exited_fast() && !watched.exited());
        c.kill().unwrap();
        c.wait().unwrap();
        // The strict check asks the pidfd: no wait.
        assert!(strict.exited());
        // The watcher sets the flag on its own (a thread's wake-up: a bounded wait).
        wait_for("the watcher did not see the exit", || {
            watched.exited.load(Ordering::Acquire)
        });
        assert!(watched.exited_fast());
    }

    #[test]
    fn the_watcher_ends_with_its_liveness() {
        let mut c = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let l = Liveness::new(pidfd_of(&c));
        let flag = Arc::clone(&l.exited);
        assert_eq!(
            Arc::strong_count(&flag),
            3,
            "this test, the Liveness, the watcher"
        );
        drop(l);
        wait_for("the watcher outlived its Liveness", || {
            Arc::strong_count(&flag) == 1
        });
        assert!(!flag.load(Ordering::Acquire), "the process is alive");
        c.kill().unwrap();
        c.wait().unwrap();
    }
}
