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

/// `struct mnt_id_req`, `MNT_ID_REQ_SIZE_VER1` (32 bytes, Linux 6.11): with the ID of the
/// mount namespace to look in.
#[repr(C)]
struct MntIdReqNs {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
    mnt_ns_id: u64,
}

/// `statmount(2)` into `buf`: the raw call. `ENOSYS` where this crate does not build it.
fn statmount_raw(mnt_id: u64, mask: u64, buf: &mut [u64]) -> std::io::Result<()> {
    statmount_raw_in(mnt_id, 0, mask, buf)
}

/// `statmount(2)` into `buf` in the mount namespace `mnt_ns_id` (0: the caller's, with the
/// `VER0` request every kernel since 6.8 takes). `ENOSYS` where this crate does not build it.
fn statmount_raw_in(
    mnt_id: u64,
    mnt_ns_id: u64,
    mask: u64,
    buf: &mut [u64],
) -> std::io::Result<()> {
    #[cfg(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "mips32r6",
        target_arch = "mips64r6"
    ))]
    {
        let _ = (mnt_id, mnt_ns_id, mask, buf);
        return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
    }
    #[cfg(not(any(
        target_arch = "mips",
        target_arch = "mips64",
        target_arch = "mips32r6",
        target_arch = "mips64r6"
    )))]
    {
        let v0 = MntIdReq {
            size: std::mem::size_of::<MntIdReq>() as u32,
            spare: 0,
            mnt_id,
            param: mask,
        };
        let v1 = MntIdReqNs {
            size: std::mem::size_of::<MntIdReqNs>() as u32,
            spare: 0,
            mnt_id,
            param: mask,
            mnt_ns_id,
        };
        let req: *const libc::c_void = if mnt_ns_id == 0 {
            (&v0 as *const MntIdReq).cast()
        } else {
            (&v1 as *const MntIdReqNs).cast()
        };
        let len = std::mem::size_of_val(buf);
        // SAFETY: `req` points to a live `struct mnt_id_req` (`v0` or `v1`, both alive until
        // the end of this block) whose `size` field says its size; `buf` is a writable, 8-byte
        // aligned buffer of `len` bytes that outlives the call; the kernel writes at most
        // `len` bytes to it and reads the request only.
        let rc = unsafe { libc::syscall(SYS_STATMOUNT, req, buf.as_mut_ptr(), len, 0u32) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The filesystem magic (`statfs(2)`'s `f_type`) of the mount with the unique ID `mnt_id`
/// (statx `STATX_MNT_ID_UNIQUE`) in the caller's mount namespace, from `statmount(2)`
/// without touching the filesystem itself: unlike `statfs`, it cannot hang on a dead NFS
/// server or FUSE daemon. `ENOSYS` before Linux 6.8; `ENOENT` when no such mount is in the
/// caller's namespace.
pub fn statmount_sb_magic(mnt_id: u64) -> std::io::Result<u64> {
    // 64-bit aligned, larger than the whole fixed `struct statmount` (512 bytes as of Linux
    // 6.18), so the kernel never answers EOVERFLOW for it (no string is asked for).
    let mut buf = [0u64; 128];
    statmount_raw(mnt_id, STATMOUNT_SB_BASIC, &mut buf)?;
    let head = Fixed::read(&buf);
    if head.mask & STATMOUNT_SB_BASIC == 0 {
        return Err(std::io::Error::from_raw_os_error(libc::ENODATA));
    }
    Ok(head.sb_magic)
}

/// [`statmount_sb_magic`] and the filesystem type's name (`tmpfs`, `nfs4`; a FUSE mount's
/// is `fuse`, its subtype apart) in one call, still without touching the filesystem.
pub fn statmount_sb_magic_and_type(mnt_id: u64) -> std::io::Result<(u64, Vec<u8>)> {
    // Room for the fixed part and a type name (at most a few dozen bytes; EOVERFLOW beyond).
    let mut buf = [0u64; 128];
    statmount_raw(mnt_id, STATMOUNT_SB_BASIC | STATMOUNT_FS_TYPE, &mut buf)?;
    let head = Fixed::read(&buf);
    let need = STATMOUNT_SB_BASIC | STATMOUNT_FS_TYPE;
    if head.mask & need != need {
        return Err(std::io::Error::from_raw_os_error(libc::ENODATA));
    }
    Ok((
        head.sb_magic,
        string_at(&buf, &head, head.fs_type).unwrap_or_default(),
    ))
}

/// What [`statmount_type`] tells about one mount.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountType {
    /// The ID mountinfo shows (statx `STATX_MNT_ID`; reused after unmount).
    pub mnt_id_old: u32,
    /// The filesystem type, without the subtype (`fuse` for `fuse.sshfs`).
    pub fs_type: Vec<u8>,
}

/// The type and the mountinfo ID of the mount with the unique ID `mnt_id` (statx
/// `STATX_MNT_ID_UNIQUE`), from `statmount(2)` without touching the filesystem, looked up in
/// the mount namespace `mnt_ns_id` ([`mnt_ns_id`] of a namespace descriptor, Linux 6.11), or
/// in the caller's with 0. Unique IDs are never reused, so the answer is about that one
/// mount or an error: `ENOSYS` before Linux 6.8, `ENOENT` when no such mount is in the
/// namespace (or, for another namespace, without `CAP_SYS_ADMIN` over it), `EINVAL` for a
/// namespace ID before 6.11.
pub fn statmount_type(mnt_id: u64, mnt_ns_id: u64) -> std::io::Result<MountType> {
    // The fixed part (512 bytes) and the type string, which is short (a type name the kernel
    // registered): 2 KiB, on the stack. A longer answer is EOVERFLOW, passed on.
    let mut buf = [0u64; 256];
    statmount_raw_in(
        mnt_id,
        mnt_ns_id,
        STATMOUNT_MNT_BASIC | STATMOUNT_FS_TYPE,
        &mut buf,
    )?;
    let f = Fixed::read(&buf);
    let need = STATMOUNT_MNT_BASIC | STATMOUNT_FS_TYPE;
    if f.mask & need != need || f.mnt_id != mnt_id {
        return Err(std::io::Error::from_raw_os_error(libc::ENODATA));
    }
    Ok(MountType {
        mnt_id_old: f.mnt_id_old,
        fs_type: string_at(&buf, &f, f.fs_type).unwrap_or_default(),
    })
}

/// `ioctl(fd, NS_GET_MNTNS_ID)` (Linux 6.11): the 64-bit ID of the mount namespace `fd`
/// names (a `/proc/PID/ns/mnt` descriptor), which `statmount(2)` and `listmount(2)` take to
/// look in that namespace. `ENOTTY` before 6.11, `EINVAL` for a descriptor of another kind
/// of namespace.
pub fn mnt_ns_id(fd: impl AsFd) -> std::io::Result<u64> {
    /// `NS_GET_MNTNS_ID`: `_IOR(NSIO, 0x5, __u64)`, `NSIO` being 0xb7 (`<linux/nsfs.h>`).
    const NS_GET_MNTNS_ID: libc::Ioctl = libc::_IOR::<u64>(0xb7, 0x5);
    let mut id: u64 = 0;
    // SAFETY: the descriptor is borrowed for the call (so open); the request writes one
    // `__u64` through the pointer, which points to `id`, alive and aligned for the call.
    let rc = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NS_GET_MNTNS_ID, &mut id as *mut u64) };
    if rc == 0 {
        Ok(id)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `STATMOUNT_MNT_BASIC`: mount IDs, attributes and propagation.
const STATMOUNT_MNT_BASIC: u64 = 0x2;
/// `STATMOUNT_PROPAGATE_FROM`.
const STATMOUNT_PROPAGATE_FROM: u64 = 0x4;
/// `STATMOUNT_MNT_ROOT`.
const STATMOUNT_MNT_ROOT: u64 = 0x8;
/// `STATMOUNT_MNT_POINT`.
const STATMOUNT_MNT_POINT: u64 = 0x10;
/// `STATMOUNT_FS_TYPE`.
const STATMOUNT_FS_TYPE: u64 = 0x20;
/// `STATMOUNT_MNT_OPTS` (Linux 6.10).
const STATMOUNT_MNT_OPTS: u64 = 0x80;
/// `STATMOUNT_FS_SUBTYPE` (Linux 6.12).
const STATMOUNT_FS_SUBTYPE: u64 = 0x100;
/// `STATMOUNT_SB_SOURCE` (Linux 6.12).
const STATMOUNT_SB_SOURCE: u64 = 0x200;

/// The fixed part of `struct statmount` this crate reads (`<linux/mount.h>`, the layout of
/// Linux 6.18; fields added later sit in the spare space after it). String fields are
/// offsets into the strings that follow the fixed 512 bytes.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Fixed {
    size: u32,
    mnt_opts: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    _mnt_ns_id: u64,
    fs_subtype: u32,
    sb_source: u32,
}

/// Where the strings start: `sizeof(struct statmount)`, the same since Linux 6.8.
const STRINGS_AT: usize = 512;

/// The NUL-terminated string at offset `off` of a `statmount(2)` answer's string area, within
/// the bytes the kernel wrote (`size`, which includes the strings); `None` when `off` lies
/// beyond them.
fn string_at(buf: &[u64], f: &Fixed, off: u32) -> Option<Vec<u8>> {
    let total = (f.size as usize).min(std::mem::size_of_val(buf));
    let start = STRINGS_AT + off as usize;
    (start <= total).then(|| {
        buf.iter()
            .flat_map(|w| w.to_ne_bytes())
            .take(total)
            .skip(start)
            .take_while(|&b| b != 0)
            .collect()
    })
}

impl Fixed {
    fn read(buf: &[u64]) -> Fixed {
        let mut f = Fixed::default();
        let n = std::mem::size_of::<Fixed>().min(std::mem::size_of_val(buf));
        // SAFETY: `Fixed` is plain old data (integers only) for which every bit pattern is
        // valid; at most `n` bytes are copied, which both the source buffer and `f` hold, and
        // the two do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                buf.as_ptr().cast::<u8>(),
                (&mut f as *mut Fixed).cast::<u8>(),
                n,
            );
        }
        f
    }
}

/// Everything `statmount(2)` says about one mount that `/proc/PID/mountinfo` shows too, read
/// without touching the filesystem. Strings are raw bytes (no `\ooo` escapes); a string the
/// kernel did not fill (too old for it) is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatMount {
    /// The unique 64-bit mount ID (statx `STATX_MNT_ID_UNIQUE`).
    pub mnt_id: u64,
    /// The unique ID of the parent mount.
    pub parent_id: u64,
    /// The ID mountinfo shows (statx `STATX_MNT_ID`; reused after unmount).
    pub mnt_id_old: u32,
    /// The parent's ID as mountinfo shows it.
    pub parent_id_old: u32,
    /// The superblock's device (`st_dev`), major and minor.
    pub dev: (u32, u32),
    /// The filesystem magic (`statfs(2)`'s `f_type`).
    pub sb_magic: u64,
    /// `SB_RDONLY`, `SB_SYNCHRONOUS`, `SB_DIRSYNC`, `SB_LAZYTIME` (see [`sb`]).
    pub sb_flags: u32,
    /// The per-mount attributes, `MOUNT_ATTR_*` (see [`attr`]).
    pub mnt_attr: u64,
    /// `MS_SHARED`, `MS_SLAVE`, `MS_PRIVATE`, `MS_UNBINDABLE` (see [`propagation`]).
    pub propagation: u64,
    /// The peer group ID of a shared mount (mountinfo's `shared:N`).
    pub peer_group: u64,
    /// The peer group a slave receives from (mountinfo's `master:N`).
    pub master: u64,
    /// The closest dominating peer group in the caller's namespace (`propagate_from:N`).
    pub propagate_from: u64,
    /// The root of the mount within its filesystem.
    pub root: Vec<u8>,
    /// The mount point, relative to the calling thread's root.
    pub mount_point: Vec<u8>,
    /// The filesystem type (without the subtype).
    pub fs_type: Vec<u8>,
    /// The subtype (`fuse.sshfs` → `sshfs`); empty when there is none.
    pub fs_subtype: Option<Vec<u8>>,
    /// The source (mountinfo's mount source), `None` where the kernel has none.
    pub source: Option<Vec<u8>>,
    /// The filesystem's own options as the filesystem prints them (security options first;
    /// escaped by the filesystem as in mountinfo), comma separated.
    pub fs_options: Option<Vec<u8>>,
}

/// `SB_*` flags of [`StatMount::sb_flags`].
pub mod sb {
    /// `SB_RDONLY`.
    pub const RDONLY: u32 = 1;
    /// `SB_SYNCHRONOUS`.
    pub const SYNCHRONOUS: u32 = 16;
    /// `SB_DIRSYNC`.
    pub const DIRSYNC: u32 = 128;
    /// `SB_LAZYTIME`.
    pub const LAZYTIME: u32 = 1 << 25;
}

/// `statmount(2)` (Linux ≥ 6.8) of the mount with the unique ID `mnt_id` (statx
/// `STATX_MNT_ID_UNIQUE`) in the calling thread's mount namespace: one mount, read from the
/// kernel's mount structures without touching the filesystem and without reading the whole
/// mount table. The buffer grows while the kernel answers `EOVERFLOW`. `ENOSYS` before Linux
/// 6.8 (or where seccomp filters it), `ENOENT` when no such mount is in the namespace.
pub fn statmount(mnt_id: u64) -> std::io::Result<StatMount> {
    let mask = STATMOUNT_SB_BASIC
        | STATMOUNT_MNT_BASIC
        | STATMOUNT_PROPAGATE_FROM
        | STATMOUNT_MNT_ROOT
        | STATMOUNT_MNT_POINT
        | STATMOUNT_FS_TYPE
        | STATMOUNT_MNT_OPTS
        | STATMOUNT_FS_SUBTYPE
        | STATMOUNT_SB_SOURCE;
    let mut words = 1024;
    let buf = loop {
        let mut buf = vec![0u64; words];
        match statmount_raw(mnt_id, mask, &mut buf) {
            Ok(()) => break buf,
            Err(e) if e.raw_os_error() == Some(libc::EOVERFLOW) && words < (1 << 20) => {
                words *= 4;
            }
            Err(e) => return Err(e),
        }
    };
    let f = Fixed::read(&buf);
    let need = STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE;
    if f.mask & need != need {
        return Err(std::io::Error::from_raw_os_error(libc::ENODATA));
    }
    let string = |bit: u64, off: u32| {
        if f.mask & bit == 0 {
            return None;
        }
        string_at(&buf, &f, off)
    };
    Ok(StatMount {
        mnt_id: f.mnt_id,
        parent_id: f.mnt_parent_id,
        mnt_id_old: f.mnt_id_old,
        parent_id_old: f.mnt_parent_id_old,
        dev: (f.sb_dev_major, f.sb_dev_minor),
        sb_magic: f.sb_magic,
        sb_flags: f.sb_flags,
        mnt_attr: f.mnt_attr,
        propagation: f.mnt_propagation,
        peer_group: f.mnt_peer_group,
        master: f.mnt_master,
        propagate_from: if f.mask & STATMOUNT_PROPAGATE_FROM != 0 {
            f.propagate_from
        } else {
            0
        },
        root: string(STATMOUNT_MNT_ROOT, f.mnt_root).unwrap_or_default(),
        mount_point: string(STATMOUNT_MNT_POINT, f.mnt_point).unwrap_or_default(),
        fs_type: string(STATMOUNT_FS_TYPE, f.fs_type).unwrap_or_default(),
        fs_subtype: string(STATMOUNT_FS_SUBTYPE, f.fs_subtype),
        source: string(STATMOUNT_SB_SOURCE, f.sb_source),
        fs_options: string(STATMOUNT_MNT_OPTS, f.mnt_opts),
    })
}

#[cfg(test)]
mod statmount_tests {
    use super::*;

    /// statx of /proc, asking for its mount's unique ID (`STATX_MNT_ID_UNIQUE` = 0x4000).
    fn proc_statx() -> rustix::fs::Statx {
        rustix::fs::statx(
            rustix::fs::CWD,
            "/proc",
            rustix::fs::AtFlags::empty(),
            rustix::fs::StatxFlags::from_bits_retain(0x4000),
        )
        .expect("statx /proc")
    }

    #[test]
    fn the_magic_of_procs_mount_is_procs() {
        let st = proc_statx();
        match statmount_sb_magic(st.stx_mnt_id) {
            Ok(magic) => assert_eq!(magic, 0x9fa0, "PROC_SUPER_MAGIC"),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}"),
        }
        assert!(statmount_sb_magic(u64::MAX).is_err());
        match statmount_sb_magic_and_type(st.stx_mnt_id) {
            Ok((magic, name)) => assert_eq!((magic, &name[..]), (0x9fa0, &b"proc"[..])),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}"),
        }
        assert!(statmount_sb_magic_and_type(u64::MAX).is_err());
    }

    #[test]
    fn statmount_agrees_with_this_process_mountinfo_for_proc() {
        let st = proc_statx();
        let sm = match statmount(st.stx_mnt_id) {
            Ok(sm) => sm,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSYS), "{e}");
                return;
            }
        };
        assert_eq!(sm.mnt_id, st.stx_mnt_id);
        assert_eq!(sm.sb_magic, 0x9fa0);
        assert_eq!(sm.fs_type, b"proc");
        assert_eq!(sm.mount_point, b"/proc");
        assert_eq!(sm.root, b"/");
        // The same mount in mountinfo, by its old ID: same parent, device and source.
        let table = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let line = table
            .lines()
            .find(|l| l.split(' ').next() == Some(&sm.mnt_id_old.to_string()))
            .expect("the mount is in mountinfo");
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f[1], sm.parent_id_old.to_string());
        assert_eq!(f[2], format!("{}:{}", sm.dev.0, sm.dev.1));
        assert_eq!(f[4], "/proc");
        let after = line.split(" - ").nth(1).expect("separator");
        let mut post = after.split(' ');
        assert_eq!(post.next(), Some("proc"));
        assert_eq!(post.next().map(str::as_bytes), sm.source.as_deref());
        assert_eq!(
            statmount(u64::MAX).map(|_| ()).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
