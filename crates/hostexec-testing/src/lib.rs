//! Test fixtures of the hostexec workspace (not published).
//!
//! - [`sandbox`]: a sandbox host — a real process in its own mount (and optionally uts, net,
//!   pid) namespace with a private tmpfs — and the populate helpers that never follow a link;
//!   [`sandbox::skip_without_namespaces`] for tests that need `CAP_SYS_ADMIN`.
//! - [`hung`]: a FUSE mount in a sandbox whose daemon never answers, standing for a dead NFS
//!   server, and a waiter process that makes later lookups block in state `D`.
//! - [`chroot`]: a process chrooted into a subtree of a sandbox host (a target whose root is
//!   not its namespace's).
//! - [`preload`]: a shared library that marks every process that loads it, built in a
//!   sandbox's view or this process's, to prove that `LD_PRELOAD` does not reach a command.
//! - [`pty`]: a real pty for the controlling-terminal contract.
//! - [`procscan`]: a scanner of every process's argv and environment, for secrets.
//! - [`fds`]: this process's open and inheritable descriptors.
//! - [`logs`]: a shared capture buffer for tracing output and panic messages.
//! - [`unescape_findmnt`]: findmnt's `\xHH` escapes decoded.
//! - [`safe_floor_stat`]: the kernel's own confined stat, the benches' floor row.
//!
//! Tests, benches and the demo depend on it as a dev-dependency (the demo as a dependency of
//! `xtask`); it depends on `hostexec-nsenter` for the sandbox's [`hostexec_nsenter::Target`].

pub mod chroot;
pub mod fds;
pub mod hung;
pub mod logs;
pub mod preload;
pub mod procscan;
pub mod pty;
pub mod sandbox;

/// The safe floor of a stat confined to a root, what `HostFs::stat` makes on the caller's
/// thread: `openat2(O_PATH, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_CACHED)` of `rel`
/// below `root`, `statx(fd, "", AT_EMPTY_PATH|AT_STATX_DONT_SYNC, STATX_BASIC_STATS|
/// STATX_MNT_ID_UNIQUE)` and `close` (a statx by path cannot refuse `..`, absolute or magic
/// links on the way out of the root). An `EAGAIN` (the RCU walk met a concurrent mount or
/// rename anywhere) is tried again, as the inline stat does.
///
/// # Panics
///
/// On any other error (a benchmark's fixture is broken).
pub fn safe_floor_stat(root: std::os::fd::BorrowedFd<'_>, rel: &std::path::Path) -> u64 {
    use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
    let fd = loop {
        match rustix::fs::openat2(
            root,
            rel,
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::CACHED,
        ) {
            Err(rustix::io::Errno::AGAIN) => continue,
            r => break r.expect("openat2 of the floor"),
        }
    };
    rustix::fs::statx(
        &fd,
        c"",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::BASIC_STATS | StatxFlags::from_bits_retain(0x4000),
    )
    .expect("statx of the floor")
    .stx_ino
}

/// Decodes findmnt's `\xHH` escapes (`--raw` and `--list` output) to the bytes they stand for;
/// anything else is kept as it is.
pub fn unescape_findmnt(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) if raw[i] == b'\\' && raw[i + 1] == b'x' => {
                out.push(b);
                i += 4;
            }
            _ => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn findmnt_escapes_are_decoded_and_the_rest_is_kept() {
        assert_eq!(
            super::unescape_findmnt(br"/mnt/a\x20b\x0a\xff\x5c\xzz\x4"),
            b"/mnt/a b\n\xff\\\\xzz\\x4"
        );
    }
}
