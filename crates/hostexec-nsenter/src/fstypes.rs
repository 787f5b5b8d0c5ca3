//! Which mounts answer from memory: the rule that decides whether a file call may run on the
//! caller's thread.
//!
//! A call runs inline only when the kernel can answer it without waiting for a file system
//! that may never answer: the path must be in the kernel's lookup caches (`RESOLVE_CACHED`)
//! and the object must be on a mount whose type is not remote or FUSE. Remote and FUSE types
//! ([`is_remote`]: nfs, nfs4, cifs, smb3, ceph, glusterfs, 9p, fuse, fuse.*, …) and mounts
//! whose type cannot be learnt (unknown) go to the worker pool.
//!
//! The type of the object's mount is learnt one of two ways, chosen when the `NsEnter` is
//! built:
//!
//! - **By unique mount ID** (Linux 6.8+ with `statmount(2)`): the inline `statx` asks for
//!   `STATX_MNT_ID_UNIQUE`, and a map unique ID → (local or not, mountinfo ID) answers. A
//!   unique ID is never reused (statx(2)) and a mount's type never changes, so an entry never
//!   goes stale and nothing has to be watched: a hit costs a read lock and a hash lookup, no
//!   system call. A miss (the first call on a mount) asks `statmount(2)` for that one mount
//!   (`STATMOUNT_MNT_BASIC|STATMOUNT_FS_TYPE`, read from the kernel's mount structures, so a
//!   hung file system is not asked) in the mount namespace of the host root: by its ID
//!   (`mnt_id_req.mnt_ns_id`, Linux 6.11, from `ioctl(NS_GET_MNTNS_ID)` on the target's
//!   mount namespace), or the caller's own when the root is in it. Which namespace holds the
//!   root is checked when the map is built, by a `statmount` of the root's own mount; a
//!   namespace that does not hold it is never used, and a mount the lookup does not find is
//!   unknown (the call hops). The map holds at most [`MAX_MOUNTS`] entries; when full it is
//!   emptied and refilled on the next misses.
//! - **By the mount table** (older kernels, `statmount` missing or refused with `ENOSYS` or
//!   `EPERM`, or [`Lookup::Table`]): the inline `statx` asks for `STATX_MNT_ID`, and a map
//!   mountinfo ID → local is read from the target's mount table, held open: `poll` on it
//!   reports `POLLPRI` when the table changed (proc(5)), and the map is then read again, so a
//!   reused mount ID never keeps an old type. Cost: one `poll` per inline call; a re-read of
//!   the whole table after each mount or unmount on the host.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, RwLock};

use hostexec_rootfs::LocalMounts;
use rustix::fs::{AtFlags, StatxFlags};

/// How many mounts the unique-ID map remembers before it is emptied (a host with more mounts
/// than this pays a `statmount` per mount again after each wrap).
pub(crate) const MAX_MOUNTS: usize = 4096;

/// statx `STATX_MNT_ID_UNIQUE` (Linux 6.8).
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

/// Whether a file system type may block on a remote server or a user-space daemon: every
/// type whose superblock magic `native_mount`'s unmount sends to umount(8) (NFS, SMB, CIFS,
/// FUSE and virtiofs, Ceph, AFS, 9P, Coda, GFS2, OrangeFS as `pvfs2`, Lustre) and a few more,
/// so that an unmount's directory this map calls local is never one of those.
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
            | b"coda"
            | b"pvfs2"
    ) || fstype.starts_with(b"fuse.")
}

/// The hasher of the unique-ID map: one multiplication (Fibonacci hashing). The keys are
/// kernel-assigned counters, not input anyone chooses, so SipHash's defence against chosen
/// collisions buys nothing here and cost ~1.5 % of an inline `stat` (perf).
#[derive(Clone, Copy, Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Unique mount ID → the mountinfo ID when local, `None` when remote or FUSE.
type UniqueMap = HashMap<u64, Option<u32>, std::hash::BuildHasherDefault<IdHasher>>;

/// How the type of a mount is learnt (see the [module docs](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// By unique mount ID and `statmount(2)` where the kernel has them, else the table.
    Statmount,
    /// By the mount table alone, as on a kernel without `statmount(2)`.
    Table,
}

/// The map, and how it is filled.
#[derive(Debug)]
pub(crate) struct FsTypes {
    how: How,
}

#[derive(Debug)]
enum How {
    /// Unique mount ID → the mountinfo ID when local, `None` when remote or FUSE.
    Unique {
        /// The mount namespace to look in (`mnt_id_req.mnt_ns_id`; 0: the caller's).
        ns_id: u64,
        map: RwLock<UniqueMap>,
    },
    /// The table, held open, and mountinfo ID → local, read from it.
    Table(Mutex<Option<(std::fs::File, HashMap<u64, bool>)>>),
}

impl FsTypes {
    /// The map for the host root `root`: by unique ID where `lookup` allows it and a
    /// `statmount` of the root's own mount succeeds in the namespace of `mnt_ns` (a mount
    /// namespace descriptor: the target's) or in the caller's; otherwise by the table at
    /// `mountinfo` (without it, nothing is local: everything hops).
    pub(crate) fn open(
        root: BorrowedFd<'_>,
        mnt_ns: Option<BorrowedFd<'_>>,
        mountinfo: &std::path::Path,
        lookup: Lookup,
    ) -> FsTypes {
        if lookup == Lookup::Statmount {
            if let Some(ns_id) = root_namespace(root, mnt_ns) {
                return FsTypes {
                    how: How::Unique {
                        ns_id,
                        map: RwLock::new(UniqueMap::default()),
                    },
                };
            }
        }
        FsTypes::table(mountinfo)
    }

    /// The map read from the mount table at `mountinfo`.
    fn table(mountinfo: &std::path::Path) -> FsTypes {
        let map = std::fs::File::open(mountinfo)
            .ok()
            .map(|f| (f, HashMap::new()));
        FsTypes {
            how: How::Table(Mutex::new(map)),
        }
    }

    /// How the map is filled now (for tests).
    #[cfg(test)]
    fn lookup(&self) -> Lookup {
        match self.how {
            How::Unique { .. } => Lookup::Statmount,
            How::Table(_) => Lookup::Table,
        }
    }

    /// True when mount `mnt_id` (mountinfo's ID) is in the table and of a type that answers
    /// from memory.
    fn table_local(
        table: &Mutex<Option<(std::fs::File, HashMap<u64, bool>)>>,
        mnt_id: u64,
    ) -> bool {
        let Ok(mut guard) = table.lock() else {
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

    /// The mountinfo ID of the mount with unique ID `id` if it is local, from the map or, on a
    /// miss, from `statmount(2)` (remembered, local or not; an error is not).
    fn unique_local(ns_id: u64, map: &RwLock<UniqueMap>, id: u64) -> Option<u64> {
        if let Ok(m) = map.read() {
            if let Some(&known) = m.get(&id) {
                return known.map(u64::from);
            }
        }
        let found = hostexec_sys::mount::statmount_type(id, ns_id).ok()?;
        let local =
            (!found.fs_type.is_empty() && !is_remote(&found.fs_type)).then_some(found.mnt_id_old);
        if let Ok(mut m) = map.write() {
            if m.len() >= MAX_MOUNTS {
                m.clear();
            }
            m.insert(id, local);
        }
        local.map(u64::from)
    }
}

impl LocalMounts for FsTypes {
    fn unique_ids(&self) -> bool {
        matches!(self.how, How::Unique { .. })
    }

    fn local(&self, mnt_id: u64) -> Option<u64> {
        match &self.how {
            How::Unique { ns_id, map } => FsTypes::unique_local(*ns_id, map, mnt_id),
            How::Table(table) => FsTypes::table_local(table, mnt_id).then_some(mnt_id),
        }
    }
}

/// The mount namespace `statmount(2)` finds the root's own mount in: the target's (`mnt_ns`,
/// by its ID), else this thread's (by its ID, or 0 on a kernel without namespace IDs).
/// `None` when the kernel has no unique mount IDs or no `statmount`, or no candidate holds
/// the root's mount.
fn root_namespace(root: BorrowedFd<'_>, mnt_ns: Option<BorrowedFd<'_>>) -> Option<u64> {
    let st = rustix::fs::statx(
        root,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )
    .ok()?;
    if st.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
        return None;
    }
    let own = std::fs::File::open("/proc/thread-self/ns/mnt").ok();
    let candidates = [mnt_ns, own.as_ref().map(|f| f.as_fd())];
    let ids: Vec<u64> = candidates
        .into_iter()
        .flatten()
        .filter_map(|ns| hostexec_sys::mount::mnt_ns_id(ns).ok())
        .chain([0])
        .collect();
    ids.into_iter()
        .find(|&ns_id| hostexec_sys::mount::statmount_type(st.stx_mnt_id, ns_id).is_ok())
}

/// Whether the table changed since it was last read (`POLLPRI`, or an error: read again).
fn changed(file: &std::fs::File) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
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
            "coda",
            "pvfs2",
            "virtiofs",
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
        let t = FsTypes::table(&p);
        assert!(!t.unique_ids());
        assert_eq!(t.local(22), Some(22));
        assert_eq!(t.local(67), None);
        assert_eq!(t.local(68), None);
        assert_eq!(t.local(99), None, "unknown mounts are not local");
        assert_eq!(FsTypes::table(&dir.path().join("none")).local(22), None);
    }

    /// This process's `/proc` (a local type) by both lookups: the same mountinfo ID, and a
    /// unique ID no mount has is unknown.
    #[test]
    fn both_lookups_agree_on_a_local_mount() {
        let proc_dir = std::fs::File::open("/proc").unwrap();
        let old = rustix::fs::statx(&proc_dir, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)
            .unwrap()
            .stx_mnt_id;
        let table = FsTypes::open(
            proc_dir.as_fd(),
            None,
            "/proc/self/mountinfo".as_ref(),
            Lookup::Table,
        );
        assert_eq!(table.lookup(), Lookup::Table);
        assert_eq!(table.local(old), Some(old));
        let by_id = FsTypes::open(
            proc_dir.as_fd(),
            None,
            "/proc/self/mountinfo".as_ref(),
            Lookup::Statmount,
        );
        let unique = rustix::fs::statx(
            &proc_dir,
            "",
            AtFlags::EMPTY_PATH,
            StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
        )
        .unwrap();
        if unique.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
            // Linux < 6.8: the table it is.
            assert_eq!(by_id.lookup(), Lookup::Table);
            return;
        }
        assert_eq!(
            by_id.lookup(),
            Lookup::Statmount,
            "Linux 6.8+ has statmount"
        );
        assert_eq!(by_id.local(unique.stx_mnt_id), Some(old));
        assert_eq!(by_id.local(u64::MAX), None);
    }
}
