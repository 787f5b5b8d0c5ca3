//! `mount_setattr(2)` (Linux ≥ 5.12), which rustix 1.1 does not wrap.
//!
//! It changes the per-mount attributes (read-only, nosuid, nodev, noexec, atime, nosymfollow)
//! and the propagation of the mount a descriptor names, optionally of the whole subtree
//! (`AT_RECURSIVE`); it works on detached mounts from `open_tree(OPEN_TREE_CLONE)` too, so that
//! a bind mount is attached already restricted.

use std::os::fd::{AsFd, AsRawFd};

/// `MOUNT_ATTR_*` bits, as in `<linux/mount.h>`.
pub mod attr {
    /// `MOUNT_ATTR_RDONLY`.
    pub const RDONLY: u64 = 0x0000_0001;
    /// `MOUNT_ATTR_NOSUID`.
    pub const NOSUID: u64 = 0x0000_0002;
    /// `MOUNT_ATTR_NODEV`.
    pub const NODEV: u64 = 0x0000_0004;
    /// `MOUNT_ATTR_NOEXEC`.
    pub const NOEXEC: u64 = 0x0000_0008;
    /// `MOUNT_ATTR__ATIME`: the mask of the atime mode (clear it to set one of the three).
    pub const ATIME_MASK: u64 = 0x0000_0070;
    /// `MOUNT_ATTR_RELATIME` (the value 0 within [`ATIME_MASK`]).
    pub const RELATIME: u64 = 0x0000_0000;
    /// `MOUNT_ATTR_NOATIME`.
    pub const NOATIME: u64 = 0x0000_0010;
    /// `MOUNT_ATTR_STRICTATIME`.
    pub const STRICTATIME: u64 = 0x0000_0020;
    /// `MOUNT_ATTR_NODIRATIME`.
    pub const NODIRATIME: u64 = 0x0000_0080;
    /// `MOUNT_ATTR_NOSYMFOLLOW`.
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// Propagation types for [`MountAttr::propagation`] (`MS_*` values, as `mount_setattr(2)`
/// takes them).
pub mod propagation {
    /// `MS_UNBINDABLE`.
    pub const UNBINDABLE: u64 = 1 << 17;
    /// `MS_PRIVATE`.
    pub const PRIVATE: u64 = 1 << 18;
    /// `MS_SLAVE`.
    pub const SLAVE: u64 = 1 << 19;
    /// `MS_SHARED`.
    pub const SHARED: u64 = 1 << 20;
}

/// The `struct mount_attr` argument of `mount_setattr(2)` (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MountAttr {
    /// Attributes to set (`MOUNT_ATTR_*`).
    pub attr_set: u64,
    /// Attributes to clear.
    pub attr_clr: u64,
    /// A propagation type (one of [`propagation`]), or 0 to leave it.
    pub propagation: u64,
    /// A user namespace fd for `MOUNT_ATTR_IDMAP`; unused here (0).
    pub userns_fd: u64,
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], attr, sizeof attr)`: changes the mount
/// `fd` names (the mount whose root `fd` is, or the mount it is on). Never resolves a path.
pub fn mount_setattr_fd(fd: impl AsFd, recursive: bool, attr: &MountAttr) -> std::io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    let empty = c"";
    // SAFETY: the descriptor is borrowed for the call (so open), the path is a valid
    // NUL-terminated empty string, and `attr` points to a live, properly aligned
    // `struct mount_attr` whose size is passed alongside; the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_fd().as_raw_fd(),
            empty.as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_is_the_kernels_size_ver0() {
        assert_eq!(std::mem::size_of::<MountAttr>(), 32);
    }

    #[test]
    fn a_non_mount_descriptor_is_refused_not_crashed() {
        // A pipe lives on the kernel's internal pipefs mount, in no namespace: making it
        // read-only is refused (EINVAL; ENOSYS/EPERM where the call is missing or filtered).
        let (r, _w) = std::io::pipe().expect("pipe");
        let ro = MountAttr {
            attr_set: attr::RDONLY,
            ..MountAttr::default()
        };
        let err = mount_setattr_fd(&r, false, &ro).unwrap_err();
        assert!(err.raw_os_error().is_some(), "{err}");
    }
}

/// `statmount(2)` (Linux ≥ 6.8) is system call 457 wherever the numbers of new calls are
/// shared (every architecture but alpha and mips, which this crate does not build the call
/// for: there it answers `ENOSYS`).
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "mips32r6",
    target_arch = "mips64r6"
)))]
const SYS_STATMOUNT: libc::c_long = 457;

/// `STATMOUNT_SB_BASIC`: the superblock's device, magic and flags.
const STATMOUNT_SB_BASIC: u64 = 0x1;

/// `struct mnt_id_req`, `MNT_ID_REQ_SIZE_VER0` (24 bytes).
#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// The fixed head of `struct statmount` up to `sb_magic` (the kernel fills the fields asked
/// for; the buffer given is larger).
#[repr(C)]
#[derive(Clone, Copy)]
struct StatmountHead {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
}

/// The filesystem magic (`statfs(2)`'s `f_type`) of the mount with the unique ID `mnt_id`
/// (statx `STATX_MNT_ID_UNIQUE`) in the caller's mount namespace, from `statmount(2)`
/// without touching the filesystem itself: unlike `statfs`, it cannot hang on a dead NFS
/// server or FUSE daemon. `ENOSYS` before Linux 6.8; `ENOENT` when no such mount is in the
/// caller's namespace.
pub fn statmount_sb_magic(mnt_id: u64) -> std::io::Result<u64> {
    #[cfg(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "mips32r6",
        target_arch = "mips64r6"
    ))]
    {
        let _ = mnt_id;
        return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
    }
    #[cfg(not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "mips32r6",
        target_arch = "mips64r6"
    )))]
    {
        let req = MntIdReq {
            size: std::mem::size_of::<MntIdReq>() as u32,
            spare: 0,
            mnt_id,
            param: STATMOUNT_SB_BASIC,
        };
        // 64-bit aligned, larger than the whole fixed `struct statmount` (512 bytes as of
        // Linux 6.18), so the kernel never answers EOVERFLOW for it.
        let mut buf = [0u64; 128];
        let len = std::mem::size_of_val(&buf);
        // SAFETY: `req` is a live `struct mnt_id_req` whose `size` field says its size; `buf`
        // is a writable, 8-byte aligned buffer of `len` bytes that outlives the call; the
        // kernel writes at most `len` bytes to it and reads `req` only.
        let rc = unsafe {
            libc::syscall(
                SYS_STATMOUNT,
                &req as *const MntIdReq,
                buf.as_mut_ptr(),
                len,
                0u32,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `buf` is 8-byte aligned and larger than `StatmountHead`, a plain-old-data
        // struct every bit pattern of which is valid.
        let head: StatmountHead = unsafe { std::ptr::read(buf.as_ptr().cast::<StatmountHead>()) };
        if head.mask & STATMOUNT_SB_BASIC == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::ENODATA));
        }
        Ok(head.sb_magic)
    }
}

#[cfg(test)]
mod statmount_tests {
    use super::*;

    #[test]
    fn the_magic_of_procs_mount_is_procs() {
        // /proc's mount, by its unique ID (statx STATX_MNT_ID_UNIQUE = 0x4000).
        let st = rustix::fs::statx(
            rustix::fs::CWD,
            "/proc",
            rustix::fs::AtFlags::empty(),
            rustix::fs::StatxFlags::from_bits_retain(0x4000),
        )
        .expect("statx /proc");
        match statmount_sb_magic(st.stx_mnt_id) {
            Ok(magic) => assert_eq!(magic, 0x9fa0, "PROC_SUPER_MAGIC"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}"),
        }
        assert!(statmount_sb_magic(u64::MAX).is_err());
    }
}
