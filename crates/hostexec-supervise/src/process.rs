//! One child process held through a pidfd, and what `/proc` says about processes.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{
    pidfd_open, pidfd_send_signal, waitid, Pid, PidfdFlags, Signal, WaitId, WaitIdOptions,
    WaitIdStatus,
};

/// A process this process may signal and (when it is a child) reap, named by a pidfd: a
/// signal or a wait through it never reaches another process that got the same PID.
#[derive(Debug)]
pub(crate) struct Process {
    pid: u32,
    fd: OwnedFd,
}

impl Process {
    /// Takes hold of `pid`. For a child that is not yet reaped, the PID cannot have been
    /// reused, so the pidfd names exactly that child.
    pub(crate) fn open(pid: u32) -> io::Result<Process> {
        let raw = i32::try_from(pid).map_err(|_| io::Error::from_raw_os_error(3))?;
        let p = Pid::from_raw(raw).ok_or_else(|| io::Error::from_raw_os_error(3))?;
        let fd = pidfd_open(p, PidfdFlags::empty())?;
        Ok(Process { pid, fd })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// Sends `sig`; a process that already ended is not an error.
    pub(crate) fn signal(&self, sig: Signal) {
        let _ = pidfd_send_signal(self.fd.as_fd(), sig);
    }

    /// Reaps the process if it has ended (it must be a child of this process).
    pub(crate) fn try_reap(&self) -> io::Result<Option<WaitIdStatus>> {
        Ok(waitid(
            WaitId::PidFd(self.fd.as_fd()),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG,
        )?)
    }

    /// Reaps the process, waiting as long as it takes (for the background reaper).
    pub(crate) fn reap_blocking(&self) -> io::Result<Option<WaitIdStatus>> {
        Ok(waitid(
            WaitId::PidFd(self.fd.as_fd()),
            WaitIdOptions::EXITED,
        )?)
    }

    /// Waits at most `limit` for the process to end (its pidfd becomes readable); true when
    /// it has.
    pub(crate) fn wait_ended(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ts = rustix::time::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
            match poll(&mut fds, Some(&ts)) {
                Ok(n) if n > 0 => return true,
                Ok(_) => return false,
                Err(rustix::io::Errno::INTR) => continue,
                // A pidfd that cannot be polled: ask with a signal 0 instead.
                Err(_) => return self.has_ended(),
            }
        }
    }

    /// True once the process has ended (it may still be an unreaped zombie).
    pub(crate) fn has_ended(&self) -> bool {
        let mut fds = [PollFd::new(&self.fd, PollFlags::IN)];
        matches!(poll(&mut fds, Some(&rustix::time::Timespec::default())), Ok(n) if n > 0)
    }
}

/// A few fields of `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pid: u32,
    pub(crate) state: char,
    pub(crate) ppid: u32,
    pub(crate) pgrp: u32,
    pub(crate) session: u32,
    /// Clock ticks after boot at which the process started.
    pub(crate) start: u64,
}

/// Parses `/proc/PID/stat`; `comm` may hold spaces and parentheses, so fields are counted
/// after the last `)`.
pub(crate) fn parse_stat(pid: u32, text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(") ")?;
    let f: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); starttime is field 22.
    Some(Stat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

pub(crate) fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &text)
}

/// Every process this process can see in `/proc`.
pub(crate) fn all_processes() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter_map(read_stat)
        .collect()
}

/// Now, in clock ticks after boot (the unit of [`Stat::start`]).
pub(crate) fn now_ticks() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let hz = rustix::param::clock_ticks_per_second();
    (t.tv_sec as u64) * hz + (t.tv_nsec as u64) * hz / 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let line = "4242 (a) b (c) S 1 4242 4240 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let s = parse_stat(4242, line).unwrap();
        assert_eq!(
            (s.state, s.ppid, s.pgrp, s.session, s.start),
            ('S', 1, 4242, 4240, 987654)
        );
        assert_eq!(parse_stat(1, "1 (x"), None);
    }

    #[test]
    fn own_stat_is_read_and_starts_before_now() {
        let me = read_stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start <= now_ticks());
    }
}
