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
