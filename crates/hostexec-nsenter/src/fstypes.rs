//! Which mounts answer from memory: the rule that decides whether a file call may run on the
//! caller's thread.
//!
//! A call runs inline only when the kernel can answer it without waiting for a file system
//! that may never answer: the path must be in the kernel's lookup caches (`RESOLVE_CACHED`)
//! and, for a `stat`, the object must be on a mount whose type is not remote or FUSE. Remote
//! and FUSE types ([`is_remote`]: nfs, nfs4, cifs, smb3, ceph, glusterfs, 9p, fuse, fuse.*,
//! …) and mounts missing from the table (unknown) go to the worker pool.
//!
//! The mount id → type map is read from the target's mount table, held open: `poll` on it
//! reports `POLLPRI` when the table changed (proc(5)), and the map is then read again, so a
//! reused mount id never keeps an old type. Cost: one `poll` per inline `stat`; a re-read
//! of the whole table after each mount or unmount on the host.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::sync::Mutex;

/// Whether a file system type may block on a remote server or a user-space daemon.
pub(crate) fn is_remote(fstype: &[u8]) -> bool {
    matches!(
        fstype,
        b"nfs"
            | b"nfs4"
            | b"cifs"
            | b"smb3"
            | b"smbfs"
            | b"ceph"
            | b"glusterfs"
            | b"9p"
            | b"fuse"
            | b"fuseblk"
            | b"afs"
            | b"lustre"
            | b"gfs2"
            | b"ocfs2"
            | b"virtiofs"
            | b"sshfs"
    ) || fstype.starts_with(b"fuse.")
}

/// The map, and the table it was read from.
#[derive(Debug)]
pub(crate) struct FsTypes {
    inner: Mutex<Option<(std::fs::File, HashMap<u64, bool>)>>,
}

impl FsTypes {
    /// Opens the mount table at `mountinfo`; without it, nothing is local (everything hops).
    pub(crate) fn open(mountinfo: &std::path::Path) -> FsTypes {
        let map = std::fs::File::open(mountinfo)
            .ok()
            .map(|f| (f, HashMap::new()));
        FsTypes {
            inner: Mutex::new(map),
        }
    }

    /// True when mount `mnt_id` is in the table and of a type that answers from memory.
    pub(crate) fn is_local(&self, mnt_id: u64) -> bool {
        let Ok(mut guard) = self.inner.lock() else {
            return false;
        };
        let Some((file, map)) = guard.as_mut() else {
            return false;
        };
        if (changed(file) || map.is_empty()) && read_table(file, map).is_err() {
            map.clear();
            return false;
        }
        map.get(&mnt_id).copied().unwrap_or(false)
    }
}

/// Whether the table changed since it was last read (`POLLPRI`, or an error: read again).
fn changed(file: &std::fs::File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .is_none_or(|r| r.intersects(PollFlags::POLLPRI | PollFlags::POLLERR)),
        Err(_) => true,
    }
}

/// Reads the whole table from the start: mount id (field 1) → local (the type after ` - `).
fn read_table(file: &mut std::fs::File, map: &mut HashMap<u64, bool>) -> std::io::Result<()> {
    file.rewind()?;
    let mut buf = Vec::with_capacity(64 * 1024);
    file.read_to_end(&mut buf)?;
    map.clear();
    for line in buf.split(|&b| b == b'\n') {
        let Some(id) = line
            .split(|&b| b == b' ')
            .next()
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| f.parse::<u64>().ok())
        else {
            continue;
        };
        let Some(sep) = line.windows(3).position(|w| w == b" - ") else {
            continue;
        };
        let fstype = line[sep + 3..].split(|&b| b == b' ').next().unwrap_or(b"");
        map.insert(id, !fstype.is_empty() && !is_remote(fstype));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_and_fuse_types_hop_and_the_table_is_read_by_id() {
        for t in [
            "nfs",
            "nfs4",
            "cifs",
            "smb3",
            "fuse.sshfs",
            "fuse",
            "ceph",
            "9p",
        ] {
            assert!(is_remote(t.as_bytes()), "{t}");
        }
        for t in ["ext4", "xfs", "tmpfs", "proc", "overlay", "btrfs"] {
            assert!(!is_remote(t.as_bytes()), "{t}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mountinfo");
        std::fs::write(
            &p,
            "22 1 0:21 / / rw shared:1 - ext4 /dev/sda1 rw\n\
             67 22 0:55 / /mnt/h rw,nosuid - fuse hostexec-hung rw\n\
             68 22 0:56 / /mnt/n rw - nfs4 srv:/x rw\n",
        )
        .unwrap();
        let t = FsTypes::open(&p);
        assert!(t.is_local(22));
        assert!(!t.is_local(67));
        assert!(!t.is_local(68));
        assert!(!t.is_local(99), "unknown mounts are not local");
        assert!(!FsTypes::open(&dir.path().join("none")).is_local(22));
    }
}
