//! [`NativeMount`](hostexec_api::NativeMount) for `NsEnter`: the mount system calls, made on
//! the host thread (the only thread in the host's mount namespace), on descriptors the in-root
//! walk opened.
//!
//! The walk runs from the kernel's lookup caches when they answer it
//! ([`open_for_mount_cached`], [`open_for_unmount_cached`]: `RESOLVE_CACHED` lookups, which
//! never wait for a file system, made on the host thread inside the call's one hop, or for a
//! new tmpfs or ramfs on the caller's thread alongside it), else on the file pool under the
//! file-call deadline
//! ([`open_for_mount`], [`open_for_unmount`], which also give the typed errors: a refused
//! symlink, a target not beneath its base, nothing mounted). A request made
//! [`unless_helper`](hostexec_api::MountRequest::unless_helper) has its helper paths looked up
//! in the same step. So a call costs one hop (to the host thread) when the caches hold its
//! paths, two otherwise.
//!
//! System calls of a call whose paths are cached (strace, Linux 6.18): opening a target or
//! bind source is 2 (`openat2(RESOLVE_IN_ROOT | RESOLVE_CACHED)` and
//! one `statx` of the descriptor: its type for the final-symlink refusal and its mount ID for
//! the guard), plus one `openat2` per helper path. No canonical path is computed: the call
//! acts on the descriptor, and messages name the path asked. On the host thread, a tmpfs is
//! `fsopen`, one `fsconfig` per source and option, `FSCONFIG_CMD_CREATE`, `fsmount`,
//! `move_mount`, one `statx` of the new mount (its unique ID, see [`made`]) and 3 `close`; a
//! read-only bind is `open_tree`, `mount_setattr`, `move_mount` and 3 `close`. An unmount
//! opens the directory holding the target the same way, on the host thread (2; the `statx` reads the unique
//! mount ID, and the backend's mount-type map says whether that mount is local, so that
//! looking up the name cannot wait for a server); on the host thread `fchdir` to it, `statx`
//! of the name (the mount-root flag and unique mount ID; no descriptor of the mount is ever
//! opened), `statmount` of that mount unless this thread made it (its type: a network or
//! FUSE one goes to umount(8)), 2 `statx` for `/sbin/umount.TYPE` and
//! `/usr/sbin/umount.TYPE`, `umount2(UMOUNT_NOFOLLOW)`, `fchdir` back and `close`. Nothing
//! reads the mount table.
//!
//! **A new tmpfs or ramfs is made while the target is opened** ([`mount_prepared`]): the job
//! goes to the host thread first, which runs `fsopen` … `fsmount` (a detached mount no one
//! can see) while the caller's thread runs the cached walk and the helper lookups and then
//! hands it the target descriptor; the two halves of the call overlap instead of following
//! each other (4–5 µs of the walk hidden on the benchmark VM). When no target comes (the
//! caches did not answer, the target was refused, a helper exists) the detached mount is
//! freed: such a superblock is memory only, which is why other types (a device read, a
//! server asked, global cgroup options) keep the order walk, then mount.
//!
//! Routes, in order:
//!
//! 1. **The new mount API** (Linux ≥ 5.12 for `mount_setattr`): a new filesystem through
//!    `fsopen` → `fsconfig` (source, options) → `FSCONFIG_CMD_CREATE` → `fsmount(attributes)`;
//!    a bind through `open_tree(source_fd, "", OPEN_TREE_CLONE | AT_EMPTY_PATH [|
//!    AT_RECURSIVE])` and `mount_setattr`; both attached with `move_mount(…, target_fd, "",
//!    MOVE_MOUNT_T_EMPTY_PATH)`; a remount is `mount_setattr` on the target descriptor (and
//!    `fspick` + `FSCONFIG_CMD_RECONFIGURE` for filesystem options). Read-only and the other
//!    flags are set on the detached mount, before anyone can see it.
//! 2. **`mount(2)`**, when the first call of the new API answers `ENOSYS` (old kernel) or
//!    `EPERM` (a seccomp profile that denies it): the target is named by its descriptor's
//!    link in this process's `/proc/PID/fd`, which the kernel follows to exactly that object.
//!    The options go in `mount(2)`'s data page; nothing reaches an argv.
//! 3. Otherwise [`NativeMountError::Unsupported`]: the caller (hostexec-mount) runs mount(8).
//!
//! An unmount checks with `statx` on the descriptor that it is the root of a mount (else
//! `NotMounted`) and then calls `umount2` on its `/proc` link: the kernel unmounts the mount
//! that descriptor is on, whatever the path names by now. A network or FUSE filesystem, or a
//! type the host has a `/sbin/umount.TYPE` for, is `HelperRequired` instead; with
//! `UnmountRequest::move_to` the checked mount is moved (`move_mount` from the mount point
//! opened again and compared by mount ID) onto the caller's staging directory, where
//! umount(8) can be given a path no one else can swap.
//!
//! `/proc/self` of the *host* may show another PID namespace, so the links are reached through
//! a directory descriptor of this process's own `/proc/PID/fd`, opened before the namespaces
//! were joined: the host thread changes its working directory there for the one call and back
//! to the host root right after (its `fs_struct` is its own since `unshare(CLONE_FS)`).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::AsFd;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hostexec_api::{
    Atime, MountAttrs, MountKind, MountRequest, MountRoute, NativeMountError, PathError,
    Propagation, TargetLookup, UnmountRequest,
};
use hostexec_rootfs::{LocalMounts, RootFs};
use hostexec_sys::mount::{attr, propagation, MountAttr};
use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
use rustix::io::Errno;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, FsPickFlags, MountAttrFlags, MountFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

/// `statfs(2)` magics of filesystems whose unmount may wait for a server or daemon: NFS, SMB,
/// CIFS, SMB2, FUSE, Ceph, AFS (two), 9P, Coda, GFS2, OrangeFS, Lustre.
const REMOTE_MAGICS: &[u64] = &[
    0x6969,
    0x517b,
    0xff53_4d42,
    0xfe53_4d42,
    0x6573_5546,
    0x00c3_6400,
    0x5346_414f,
    0x6b41_4653,
    0x0102_1997,
    0x7375_7245,
    0x0116_1970,
    0x2003_0528,
    0x0bd0_0bd0,
];

/// Descriptors a mount call needs, opened by the walk. No path: the call acts on these.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) target: OwnedFd,
    pub(crate) source: Option<OwnedFd>,
}

/// Opens the target (and a bind source) by the request's lookup rule; first, a request made
/// `unless_helper` is refused with `HelperRequired` when one of its helper paths exists
/// (`stat`, as mount(8) finds its helper).
pub(crate) fn open_for_mount(
    root: &RootFs,
    req: &MountRequest,
) -> Result<Opened, NativeMountError> {
    for p in req.helper_paths() {
        if root.stat(&p, true).is_ok() {
            return Err(helper_required(req, &p));
        }
    }
    let (_, target) = root.open_mount_target(req.target(), req.get_lookup())?;
    let source = match req.kind() {
        MountKind::Bind { source, .. } => Some(root.open_mount_target(source, req.get_lookup())?.1),
        MountKind::Move { source } => {
            // The lookup crosses into what is mounted there: the fd is of that mount's root.
            let (_, fd) = root.open_mount_target(source, &TargetLookup::FollowFinalSymlink)?;
            if !is_mount_root(&fd).map_err(|e| PathError::from_io(source, e.into()))? {
                return Err(NativeMountError::NotMounted {
                    target: source.clone(),
                });
            }
            Some(fd)
        }
        _ => None,
    };
    Ok(Opened { target, source })
}

/// The host has mount(8)'s helper `helper` for the request's type.
fn helper_required(req: &MountRequest, helper: &Path) -> NativeMountError {
    NativeMountError::HelperRequired {
        target: req.target().to_path_buf(),
        reason: format!("mount(8) would run {}", helper.display()),
    }
}

/// [`open_for_mount`] from the kernel's lookup caches alone, on the caller's thread (no hop to
/// the file pool): the target and a bind source by
/// [`RootFs::open_mount_target_cached`], which never waits for a file system. `Ok(None)`
/// whenever the caches do not answer for certain (then [`open_for_mount`] runs on the pool and
/// gives the typed errors); a move always goes to the pool.
pub(crate) fn open_for_mount_cached(
    root: &RootFs,
    req: &MountRequest,
) -> Result<Option<Opened>, NativeMountError> {
    for p in req.helper_paths() {
        match root.exists_cached(&p)? {
            Some(true) => return Err(helper_required(req, &p)),
            Some(false) => {}
            None => return Ok(None),
        }
    }
    let lookup = req.get_lookup();
    let source = match req.kind() {
        MountKind::Filesystem { .. } | MountKind::Remount => None,
        MountKind::Bind { source, .. } => {
            match root.open_mount_target_cached(source, lookup, None)? {
                Some(fd) => Some(fd),
                None => return Ok(None),
            }
        }
        _ => return Ok(None),
    };
    let Some(target) = root.open_mount_target_cached(req.target(), lookup, None)? else {
        return Ok(None);
    };
    Ok(Some(Opened { target, source }))
}

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): the 64-bit mount ID `statmount(2)` takes.
pub(crate) const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

/// The mount-root flag, mount ID and whether it is a symlink, of `name` in `dir`, from the
/// kernel's cached attributes (`AT_STATX_DONT_SYNC`): a FUSE or NFS mount whose server is
/// gone is not asked, so this does not hang on it.
fn peek(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(bool, Option<u64>, bool), Errno> {
    let st = rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC | AtFlags::NO_AUTOMOUNT,
        StatxFlags::TYPE | StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )?;
    let unique = (st.stx_mask & STATX_MNT_ID_UNIQUE != 0).then_some(st.stx_mnt_id);
    Ok((
        st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        unique,
        rustix::fs::FileType::from_raw_mode(u32::from(st.stx_mode))
            == rustix::fs::FileType::Symlink,
    ))
}

/// The last name of `path` and the path of its directory; `None` when it ends in `.` or `..`.
fn split_last(path: &Path) -> Option<(PathBuf, std::ffi::OsString)> {
    let bytes = path.as_os_str().as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'/')? + 1;
    let trimmed = &bytes[..end];
    let cut = trimmed.iter().rposition(|&b| b == b'/')?;
    let name = &trimmed[cut + 1..];
    if name == b"." || name == b".." {
        return None;
    }
    let dir = if cut == 0 { &b"/"[..] } else { &trimmed[..cut] };
    Some((
        PathBuf::from(OsStr::from_bytes(dir)),
        OsStr::from_bytes(name).to_os_string(),
    ))
}

/// Opens the directory holding an unmount target and checks, without entering the mounted
/// filesystem, that the target is the root of a mount (a dead server's mount can be
/// unmounted). The target's final component is looked up by `lookup`'s rule.
pub(crate) fn open_for_unmount(
    root: &RootFs,
    req: &UnmountRequest,
) -> Result<UnmountTarget, NativeMountError> {
    open_for_unmount_retrying(root, req, SWAP_RETRIES)
}

/// How many times [`open_for_unmount`] looks again when the name it saw as a symlink is none
/// by the time its text is read (`readlinkat` answers EINVAL: swapped back meanwhile). A host
/// process swapping a directory and a symlink in a tight `RENAME_EXCHANGE` loop makes each
/// look close to a coin toss; with 8, EINVAL escaped as the answer in 1 of 30 runs of
/// tests/mount_race.rs at load ~7. Each look is a few system calls.
const SWAP_RETRIES: usize = 64;

/// [`open_for_unmount`] from the kernel's lookup caches alone, on the caller's thread: the
/// directory holding the target by [`RootFs::open_mount_target_cached`], which never waits for
/// a file system, kept only if `local` (the backend's mount-type map, keyed by the unique
/// mount ID the same `statx` reads) says the directory's mount is not a network or FUSE one:
/// a lookup of the name there does not wait for a server. The name is not looked at here: the
/// host thread's own `statx` of it (which it makes in any case, right before `umount2`) finds
/// the mount and its ID; anything but a plain mount root at the name, or a mount umount(8)
/// must handle (its canonical path is the pool walk's), sends the call back to
/// [`open_for_unmount`] on the pool ([`WalkFirst`]). No descriptor of the mount is ever
/// opened on this path: a copy of one in a child being spawned meanwhile (its descriptor
/// table is copied until it `exec`s) would make the `umount2` answer EBUSY. `Ok(None)` for a
/// path ending in `..`, a base to stay beneath, a directory not cached or not on a local
/// mount: the pool decides.
pub(crate) fn open_for_unmount_cached(
    root: &RootFs,
    req: &UnmountRequest,
    local: &dyn LocalMounts,
) -> Result<Option<UnmountTarget>, NativeMountError> {
    let Some((dir, name)) = split_last(req.target()) else {
        return Ok(None);
    };
    if matches!(req.get_lookup(), TargetLookup::Beneath(_)) || req.get_move_to().is_some() {
        return Ok(None);
    }
    let Some(parent) =
        root.open_mount_target_cached(&dir, &TargetLookup::FollowFinalSymlink, Some(local))?
    else {
        return Ok(None);
    };
    Ok(Some(UnmountTarget {
        path: None,
        parent,
        name,
        mnt_id: None,
        stage: None,
    }))
}

fn open_for_unmount_retrying(
    root: &RootFs,
    req: &UnmountRequest,
    retries: usize,
) -> Result<UnmountTarget, NativeMountError> {
    let asked = req.target();
    let path_err = |e: Errno| NativeMountError::from(PathError::from_io(asked, e.into()));
    let (dir, name) = match split_last(asked) {
        Some(s) => s,
        // `x/..`: what the walk finds (through healthy directories) is the target.
        None => {
            let canonical = root.resolve(asked, hostexec_api::Resolve::MustExist)?;
            split_last(&canonical).ok_or_else(|| path_err(Errno::BUSY))?
        }
    };
    let (dir_host, parent) = match req.get_lookup() {
        TargetLookup::Beneath(base) => {
            root.open_mount_target(&dir, &TargetLookup::Beneath(base.clone()))?
        }
        _ => root.open_resolved(&dir, true)?,
    };
    let (is_root, mnt_id, is_link) = peek(parent.as_fd(), &name).map_err(path_err)?;
    if is_link {
        if *req.get_lookup() == TargetLookup::FollowFinalSymlink {
            let canonical = root.resolve(asked, hostexec_api::Resolve::MustExist)?;
            let mut again = UnmountRequest::new(canonical)
                .lazy(req.is_lazy())
                .force(req.is_force());
            if let Some(stage) = req.get_move_to() {
                again = again.move_to(stage);
            }
            return open_for_unmount(root, &again).map_err(|e| match e {
                NativeMountError::NotMounted { .. } => NativeMountError::NotMounted {
                    target: asked.to_path_buf(),
                },
                e => e,
            });
        }
        let to = match rustix::fs::readlinkat(&parent, name.as_os_str(), Vec::new()) {
            Ok(to) => to,
            // No longer a symlink (swapped back meanwhile): look again, a bounded number of
            // times.
            Err(Errno::INVAL) if retries > 0 => {
                return open_for_unmount_retrying(root, req, retries - 1);
            }
            Err(e) => return Err(path_err(e)),
        };
        return Err(NativeMountError::Symlink {
            path: asked.to_path_buf(),
            points_to: PathBuf::from(std::ffi::OsString::from_vec(to.into_bytes())),
        });
    }
    let (true, Some(mnt_id)) = (is_root, mnt_id) else {
        if !is_root {
            return Err(NativeMountError::NotMounted {
                target: asked.to_path_buf(),
            });
        }
        return Err(NativeMountError::Unsupported {
            route: MountRoute::Mount2,
            reason: "the kernel gives no unique mount ID (statx STATX_MNT_ID_UNIQUE, Linux 6.8)"
                .into(),
            source: None,
        });
    };
    // The directory a mount is moved to instead (a staging directory, or the target it came
    // from): a final symlink is refused.
    let stage = match req.get_move_to() {
        Some(stage) => Some(
            root.open_mount_target(stage, &TargetLookup::RefuseFinalSymlink)?
                .1,
        ),
        None => None,
    };
    Ok(UnmountTarget {
        path: Some(dir_host.join(&name)),
        parent,
        name,
        mnt_id: Some(mnt_id),
        stage,
    })
}

fn is_mount_root(fd: &OwnedFd) -> Result<bool, Errno> {
    Ok(mount_root_and_id(fd)?.0)
}

fn mount_root_and_id(fd: &OwnedFd) -> Result<(bool, u64), Errno> {
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )?;
    Ok((
        st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT),
        st.stx_mnt_id,
    ))
}

/// What the host thread needs besides the descriptors.
#[derive(Debug)]
pub(crate) struct HostSide<'a> {
    /// This process's `/proc/PID/fd`, opened in the caller's view.
    pub(crate) proc_fds: BorrowedFd<'a>,
    /// The host's root, to return the working directory to.
    pub(crate) root: BorrowedFd<'a>,
    /// Skip the new API (tests of the fallback).
    pub(crate) new_api: bool,
}

fn kernel(
    call: &'static str,
    route: MountRoute,
    req_target: &Path,
    fstype: &str,
    messages: Vec<String>,
    e: Errno,
) -> NativeMountError {
    NativeMountError::Kernel {
        call,
        route,
        target: req_target.to_path_buf(),
        fstype: fstype.to_owned(),
        messages,
        source: e.into(),
    }
}

fn unsupported(route: MountRoute, what: &str, e: Errno) -> NativeMountError {
    NativeMountError::Unsupported {
        route,
        reason: format!("{what} refused"),
        source: Some(e.into()),
    }
}

/// ENOSYS (not in this kernel) or EPERM (filtered): the route is unavailable, not failed.
fn is_unavailable(e: Errno) -> bool {
    e == Errno::NOSYS || e == Errno::PERM
}

/// Runs on the host thread.
pub(crate) fn mount(
    host: &HostSide<'_>,
    req: &MountRequest,
    opened: &Opened,
) -> Result<MountRoute, NativeMountError> {
    if host.new_api {
        match mount_new_api(req, opened) {
            Err(Fallback) => {}
            Ok(r) => return r.map(|()| MountRoute::NewApi),
        }
    }
    with_proc_cwd(host, || mount2(req, opened)).map(|()| MountRoute::Mount2)
}

/// The new API's first call said ENOSYS/EPERM: nothing was changed.
struct Fallback;

/// The types whose new filesystem [`mount_prepared`] may make before the target is known:
/// their superblock is memory the kernel frees when the last descriptor closes, so one made
/// and thrown away (the target refused, a helper found) touched nothing outside this
/// process. Not block filesystems (a device is opened and read, a journal may be replayed),
/// network or FUSE ones (a server is asked), nor types whose options act globally (cgroup2's
/// root options).
const MADE_BEFORE_THE_TARGET: [&str; 2] = ["tmpfs", "ramfs"];

/// Whether `req` can take [`mount_prepared`]: a new filesystem of a type in
/// [`MADE_BEFORE_THE_TARGET`], with the new mount API, on a target the cached walk can open
/// (not [`TargetLookup::Beneath`], which always takes the walk on the pool).
pub(crate) fn prepares_alone(req: &MountRequest, new_api: bool) -> bool {
    new_api
        && !matches!(req.get_lookup(), TargetLookup::Beneath(_))
        && matches!(req.kind(), MountKind::Filesystem { fstype, .. }
            if MADE_BEFORE_THE_TARGET.contains(&fstype.as_str()))
}

/// [`mount_prepared`] got no target: the caller refused it, found a helper, or opens it on
/// the file pool. Nothing was attached (the detached mount, if made, is freed).
#[derive(Debug)]
pub(crate) struct NoTarget;

/// Runs on the host thread, for a request [`prepares_alone`] accepts: makes the new
/// filesystem, detached (`fsopen` … `fsmount`), while the caller opens the target from the
/// kernel's caches; then takes the target the caller hands over and attaches exactly as
/// [`mount`] does (the `mount(2)` fallback too). The mount's own system calls and the walk
/// overlap instead of following each other. A filesystem error is reported only once a
/// target came (the walk's error comes first, as on the other route).
pub(crate) fn mount_prepared(
    host: &HostSide<'_>,
    req: &MountRequest,
    target: &std::sync::mpsc::Receiver<Opened>,
) -> Result<Result<MountRoute, NativeMountError>, NoTarget> {
    let made = new_filesystem(req);
    let opened = crate::host_thread::handed(target).ok_or(NoTarget)?;
    Ok(match made {
        Ok(Ok(mnt)) => attach(req, &mnt, &opened).map(|()| MountRoute::NewApi),
        Ok(Err(e)) => Err(e),
        Err(Fallback) => with_proc_cwd(host, || mount2(req, &opened)).map(|()| MountRoute::Mount2),
    })
}

fn mount_new_api(
    req: &MountRequest,
    opened: &Opened,
) -> Result<Result<(), NativeMountError>, Fallback> {
    let route = MountRoute::NewApi;
    let target = req.target();
    let attrs = req.get_attrs();
    let mnt = match req.kind() {
        MountKind::Filesystem { .. } => match new_filesystem(req)? {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        },
        MountKind::Bind { recursive, .. } => {
            let Some(src) = &opened.source else {
                return Ok(Err(kernel(
                    "open_tree",
                    route,
                    target,
                    "",
                    vec![],
                    Errno::BADF,
                )));
            };
            let mut flags = OpenTreeFlags::OPEN_TREE_CLONE
                | OpenTreeFlags::OPEN_TREE_CLOEXEC
                | OpenTreeFlags::AT_EMPTY_PATH;
            if *recursive {
                flags |= OpenTreeFlags::AT_RECURSIVE;
            }
            let tree = match rustix::mount::open_tree(src, "", flags) {
                Ok(t) => t,
                Err(e) if is_unavailable(e) => return Err(Fallback),
                Err(e) => return Ok(Err(kernel("open_tree", route, target, "", vec![], e))),
            };
            let a = setattr_of(attrs, false);
            if a.attr_set | a.attr_clr != 0 {
                match hostexec_sys::mount::mount_setattr_fd(&tree, attrs.recursive, &a) {
                    Ok(()) => {}
                    // open_tree worked, so the kernel is ≥ 5.2; mount_setattr (5.12) is not
                    // there or filtered: nothing attached yet.
                    Err(e)
                        if e.raw_os_error()
                            .is_some_and(|n| is_unavailable(Errno::from_raw_os_error(n))) =>
                    {
                        return Err(Fallback)
                    }
                    Err(e) => return Ok(Err(io_kernel("mount_setattr", route, target, "", e))),
                }
            }
            tree
        }
        MountKind::Remount => return Ok(remount_new_api(req, opened)),
        MountKind::Move { .. } => {
            let Some(src) = &opened.source else {
                return Ok(Err(kernel(
                    "move_mount",
                    route,
                    target,
                    "",
                    vec![],
                    Errno::BADF,
                )));
            };
            return Ok(
                match rustix::mount::move_mount(
                    src,
                    "",
                    &opened.target,
                    "",
                    MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                        | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
                ) {
                    Ok(()) => Ok(()),
                    Err(e) if is_unavailable(e) => return Err(Fallback),
                    Err(e) => Err(kernel("move_mount", route, target, "", vec![], e)),
                },
            );
        }
        _ => {
            return Ok(Err(NativeMountError::Unsupported {
                route,
                reason: "this kind of mount has no native route".into(),
                source: None,
            }))
        }
    };
    Ok(attach(req, &mnt, opened))
}

/// The new API's detached mount of a new filesystem of the request's type: `fsopen`, its
/// `fsconfig`s, `fsmount`. Nothing is attached; dropping the descriptor frees it.
fn new_filesystem(req: &MountRequest) -> Result<Result<OwnedFd, NativeMountError>, Fallback> {
    let route = MountRoute::NewApi;
    let target = req.target();
    let attrs = req.get_attrs();
    let MountKind::Filesystem { fstype, source } = req.kind() else {
        return Ok(Err(unsupported(route, "a new filesystem", Errno::INVAL)));
    };
    let fs = match rustix::mount::fsopen(fstype.as_str(), FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fs) => fs,
        Err(e) if is_unavailable(e) => return Err(Fallback),
        Err(e) => return Ok(Err(kernel("fsopen", route, target, fstype, vec![], e))),
    };
    let fail = |call, e| kernel(call, route, target, fstype, messages(&fs, req), e);
    if let Some(src) = source {
        if let Err(e) = rustix::mount::fsconfig_set_string(&fs, "source", src.as_os_str()) {
            return Ok(Err(fail("fsconfig", e)));
        }
    }
    if attrs.read_only == Some(true) {
        // Read-only at the superblock too, as mount(8) -o ro: a block filesystem is then
        // never written (no journal replay).
        if let Err(e) = rustix::mount::fsconfig_set_flag(&fs, "ro") {
            return Ok(Err(fail("fsconfig", e)));
        }
    }
    for o in req.get_options() {
        let r = match o.value() {
            Some(v) => rustix::mount::fsconfig_set_string(&fs, o.key(), v),
            None => rustix::mount::fsconfig_set_flag(&fs, o.key()),
        };
        if let Err(e) = r {
            return Ok(Err(fail("fsconfig", e)));
        }
    }
    if let Err(e) = rustix::mount::fsconfig_create(&fs) {
        return Ok(Err(fail("fsconfig(FSCONFIG_CMD_CREATE)", e)));
    }
    Ok(
        rustix::mount::fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, fsmount_attrs(attrs))
            .map_err(|e| fail("fsmount", e)),
    )
}

/// Attaches the detached mount `mnt` onto the target descriptor (`move_mount`), remembers
/// the type of a new filesystem (`made`), then sets the propagation asked for.
fn attach(req: &MountRequest, mnt: &OwnedFd, opened: &Opened) -> Result<(), NativeMountError> {
    let route = MountRoute::NewApi;
    let target = req.target();
    let attrs = req.get_attrs();
    let fstype = req.fstype();
    if let Err(e) = rustix::mount::move_mount(
        mnt,
        "",
        &opened.target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    ) {
        return Err(kernel("move_mount", route, target, fstype, vec![], e));
    }
    if let MountKind::Filesystem { fstype, .. } = req.kind() {
        made::remember(mnt, fstype);
    }
    if attrs.propagation.is_some() {
        // Propagation is changed once attached (an anonymous namespace's mounts have none).
        let a = MountAttr {
            propagation: propagation_of(attrs.propagation),
            ..MountAttr::default()
        };
        if let Err(e) = hostexec_sys::mount::mount_setattr_fd(mnt, attrs.recursive, &a) {
            return Err(io_kernel("mount_setattr", route, target, fstype, e));
        }
    }
    Ok(())
}

fn remount_new_api(req: &MountRequest, opened: &Opened) -> Result<(), NativeMountError> {
    let route = MountRoute::NewApi;
    let target = req.target();
    if !is_mount_root(&opened.target).map_err(|e| kernel("statx", route, target, "", vec![], e))? {
        return Err(NativeMountError::NotMounted {
            target: target.to_path_buf(),
        });
    }
    if !req.get_options().is_empty() {
        let fs = rustix::mount::fspick(
            &opened.target,
            "",
            FsPickFlags::FSPICK_CLOEXEC | FsPickFlags::FSPICK_EMPTY_PATH,
        )
        .map_err(|e| kernel("fspick", route, target, "", vec![], e))?;
        let fail = |call, e| kernel(call, route, target, "", messages(&fs, req), e);
        for o in req.get_options() {
            match o.value() {
                Some(v) => rustix::mount::fsconfig_set_string(&fs, o.key(), v),
                None => rustix::mount::fsconfig_set_flag(&fs, o.key()),
            }
            .map_err(|e| fail("fsconfig", e))?;
        }
        rustix::mount::fsconfig_reconfigure(&fs)
            .map_err(|e| fail("fsconfig(FSCONFIG_CMD_RECONFIGURE)", e))?;
    }
    let a = setattr_of(req.get_attrs(), true);
    if a.attr_set | a.attr_clr | a.propagation != 0 {
        hostexec_sys::mount::mount_setattr_fd(&opened.target, req.get_attrs().recursive, &a)
            .map_err(|e| io_kernel("mount_setattr", route, target, "", e))?;
    }
    Ok(())
}

fn io_kernel(
    call: &'static str,
    route: MountRoute,
    target: &Path,
    fstype: &str,
    e: io::Error,
) -> NativeMountError {
    NativeMountError::Kernel {
        call,
        route,
        target: target.to_path_buf(),
        fstype: fstype.to_owned(),
        messages: vec![],
        source: e,
    }
}

/// The kernel's fs-context messages ("e tmpfs: Bad value for 'size'"), each without its
/// prefix, with any sensitive value of the request masked.
fn messages(fs: &OwnedFd, req: &MountRequest) -> Vec<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    for _ in 0..32 {
        match rustix::io::read(fs, &mut buf) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]);
                let text = text.trim_end();
                let mut msg = text
                    .strip_prefix("e ")
                    .or_else(|| text.strip_prefix("w "))
                    .or_else(|| text.strip_prefix("i "))
                    .unwrap_or(text)
                    .to_owned();
                for o in req.get_options().iter().filter(|o| o.is_sensitive()) {
                    if let Some(v) = o.value().map(OsStr::to_string_lossy) {
                        if !v.is_empty() {
                            msg = msg.replace(v.as_ref(), "<masked>");
                        }
                    }
                }
                out.push(msg);
            }
            _ => break,
        }
    }
    out
}

fn fsmount_attrs(a: &MountAttrs) -> MountAttrFlags {
    let mut f = MountAttrFlags::empty();
    let on = |o: Option<bool>| o == Some(true);
    if on(a.read_only) {
        f |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    if on(a.nosuid) {
        f |= MountAttrFlags::MOUNT_ATTR_NOSUID;
    }
    if on(a.nodev) {
        f |= MountAttrFlags::MOUNT_ATTR_NODEV;
    }
    if on(a.noexec) {
        f |= MountAttrFlags::MOUNT_ATTR_NOEXEC;
    }
    if on(a.nodiratime) {
        f |= MountAttrFlags::MOUNT_ATTR_NODIRATIME;
    }
    if on(a.nosymfollow) {
        f |= MountAttrFlags::MOUNT_ATTR_NOSYMFOLLOW;
    }
    match a.atime {
        Some(Atime::Never) => f |= MountAttrFlags::MOUNT_ATTR_NOATIME,
        Some(Atime::Strict) => f |= MountAttrFlags::MOUNT_ATTR_STRICTATIME,
        _ => {}
    }
    f
}

/// The `struct mount_attr` for `attrs`; propagation only `with_propagation`.
fn setattr_of(a: &MountAttrs, with_propagation: bool) -> MountAttr {
    let mut m = MountAttr::default();
    let mut bit = |o: Option<bool>, b: u64| match o {
        Some(true) => m.attr_set |= b,
        Some(false) => m.attr_clr |= b,
        None => {}
    };
    bit(a.read_only, attr::RDONLY);
    bit(a.nosuid, attr::NOSUID);
    bit(a.nodev, attr::NODEV);
    bit(a.noexec, attr::NOEXEC);
    bit(a.nodiratime, attr::NODIRATIME);
    bit(a.nosymfollow, attr::NOSYMFOLLOW);
    if let Some(at) = a.atime {
        m.attr_clr |= attr::ATIME_MASK;
        m.attr_set |= match at {
            Atime::Never => attr::NOATIME,
            Atime::Strict => attr::STRICTATIME,
            _ => attr::RELATIME,
        };
    }
    if with_propagation {
        m.propagation = propagation_of(a.propagation);
    }
    m
}

fn propagation_of(p: Option<Propagation>) -> u64 {
    match p {
        Some(Propagation::Shared) => propagation::SHARED,
        Some(Propagation::Slave) => propagation::SLAVE,
        Some(Propagation::Private) => propagation::PRIVATE,
        Some(Propagation::Unbindable) => propagation::UNBINDABLE,
        _ => 0,
    }
}

/// `MS_*` flags of `attrs` for `mount(2)`.
fn ms_flags(a: &MountAttrs) -> MountFlags {
    let mut f = MountFlags::empty();
    let on = |o: Option<bool>| o == Some(true);
    if on(a.read_only) {
        f |= MountFlags::RDONLY;
    }
    if on(a.nosuid) {
        f |= MountFlags::NOSUID;
    }
    if on(a.nodev) {
        f |= MountFlags::NODEV;
    }
    if on(a.noexec) {
        f |= MountFlags::NOEXEC;
    }
    if on(a.nodiratime) {
        f |= MountFlags::NODIRATIME;
    }
    if on(a.nosymfollow) {
        f |= MountFlags::NOSYMFOLLOW;
    }
    match a.atime {
        Some(Atime::Never) => f |= MountFlags::NOATIME,
        Some(Atime::Strict) => f |= MountFlags::STRICTATIME,
        Some(_) => f |= MountFlags::RELATIME,
        None => {}
    }
    f
}

/// The per-mount flags a `MS_REMOUNT` of the mount `fd` is on must carry to change only what
/// `a` sets. `mount(2)`'s remount replaces the user-settable flags (ro, nosuid, nodev, noexec,
/// nodiratime, nosymfollow) with the ones given, where `mount_setattr(2)` changes only what it
/// is asked to: so the unset ones are read back from the mount (`fstatfs`'s `f_flags`). The
/// kernel keeps the atime mode when none is given.
fn remount_flags(fd: &OwnedFd, a: &MountAttrs) -> Result<MountFlags, Errno> {
    use rustix::fs::StatVfsMountFlags as St;
    let current = rustix::fs::fstatvfs(fd)?.f_flag;
    let mut f = ms_flags(a);
    for (asked, st, ms) in [
        (a.read_only, St::RDONLY, MountFlags::RDONLY),
        (a.nosuid, St::NOSUID, MountFlags::NOSUID),
        (a.nodev, St::NODEV, MountFlags::NODEV),
        (a.noexec, St::NOEXEC, MountFlags::NOEXEC),
        (a.nodiratime, St::NODIRATIME, MountFlags::NODIRATIME),
        // ST_NOSYMFOLLOW (Linux 5.10), which rustix does not name.
        (
            a.nosymfollow,
            St::from_bits_retain(0x2000),
            MountFlags::NOSYMFOLLOW,
        ),
    ] {
        if asked.is_none() && current.contains(st) {
            f |= ms;
        }
    }
    Ok(f)
}

/// The last component of the path `fd`'s link in the `/proc/PID/fd` directory the thread is
/// in shows (the kernel's path of the object, in the host's view); `ENOENT` when it shows no
/// named object (a root, or not a path).
fn final_name(fd: &OwnedFd) -> Result<std::ffi::OsString, Errno> {
    let shown = rustix::fs::readlinkat(rustix::fs::CWD, link_name(fd).as_str(), Vec::new())?;
    let shown = shown.as_bytes();
    match shown.iter().rposition(|&b| b == b'/') {
        Some(cut) if shown.first() == Some(&b'/') && cut + 1 < shown.len() => {
            Ok(std::ffi::OsString::from_vec(shown[cut + 1..].to_vec()))
        }
        _ => Err(Errno::NOENT),
    }
}

/// Whether `a` and `b` name the same file (device and inode).
fn same_object(a: &OwnedFd, b: &OwnedFd) -> Result<bool, Errno> {
    let (x, y) = (rustix::fs::fstat(a)?, rustix::fs::fstat(b)?);
    Ok((x.st_dev, x.st_ino) == (y.st_dev, y.st_ino))
}

/// The name of `fd`'s link in the `/proc/PID/fd` directory the thread is in.
fn link_name(fd: &OwnedFd) -> String {
    fd.as_raw_fd().to_string()
}

/// Runs `f` with the host thread's working directory in this process's `/proc/PID/fd`, then
/// returns it to the host root.
fn with_proc_cwd<R>(
    host: &HostSide<'_>,
    f: impl FnOnce() -> Result<R, NativeMountError>,
) -> Result<R, NativeMountError> {
    rustix::process::fchdir(host.proc_fds)
        .map_err(|e| unsupported(MountRoute::Mount2, "changing to /proc/PID/fd", e))?;
    let r = f();
    // The root is a directory this thread entered before: returning cannot fail short of
    // the descriptor being gone, and then no later call is correct either.
    let back = rustix::process::fchdir(host.root);
    match (r, back) {
        (r, Ok(())) => r,
        (_, Err(e)) => Err(unsupported(
            MountRoute::Mount2,
            "returning to the host root",
            e,
        )),
    }
}

/// Route 2: `mount(2)` on the descriptors' `/proc` links (cwd is `/proc/PID/fd`).
fn mount2(req: &MountRequest, opened: &Opened) -> Result<(), NativeMountError> {
    let route = MountRoute::Mount2;
    let target = req.target();
    let t = link_name(&opened.target);
    let attrs = req.get_attrs();
    let fail = |e: Errno| -> NativeMountError {
        if is_unavailable(e) {
            unsupported(route, "mount(2)", e)
        } else {
            kernel("mount", route, target, req.fstype(), vec![], e)
        }
    };
    match req.kind() {
        MountKind::Filesystem { fstype, source } => {
            let mut data: Vec<u8> = Vec::new();
            for o in req.get_options() {
                if !data.is_empty() {
                    data.push(b',');
                }
                data.extend_from_slice(o.key().as_bytes());
                if let Some(v) = o.value() {
                    data.push(b'=');
                    data.extend_from_slice(v.as_bytes());
                }
            }
            let data = CString::new(data).map_err(|_| fail(Errno::INVAL))?;
            let source = source.clone().unwrap_or_else(|| fstype.clone().into());
            rustix::mount::mount(
                source.as_os_str(),
                t.as_str(),
                fstype.as_str(),
                ms_flags(attrs),
                Some(data.as_c_str()),
            )
            .map_err(fail)?;
        }
        MountKind::Bind { recursive, .. } => {
            let Some(src) = &opened.source else {
                return Err(fail(Errno::BADF));
            };
            let s = link_name(src);
            if *recursive {
                rustix::mount::mount_bind_recursive(s.as_str(), t.as_str()).map_err(fail)?;
            } else {
                rustix::mount::mount_bind(s.as_str(), t.as_str()).map_err(fail)?;
            }
            if !ms_flags(attrs).is_empty() {
                // The target's link names the directory under the new mount (the kernel does
                // not cross mounts after a link jump): reach the mount through the target's
                // parent and name, a lookup that does cross it. The name is the target's
                // last component as its link shows it now (this rare route reads it; the
                // walks do not compute it). A mount point cannot be renamed or replaced
                // meanwhile (EBUSY); what the lookup finds must be a mount root of the
                // source's own directory, the bind just made.
                let name = final_name(&opened.target).map_err(fail)?;
                let parent = rustix::fs::openat(
                    &opened.target,
                    "..",
                    rustix::fs::OFlags::PATH
                        | rustix::fs::OFlags::DIRECTORY
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(fail)?;
                let top = rustix::fs::openat(
                    &parent,
                    name.as_os_str(),
                    rustix::fs::OFlags::PATH
                        | rustix::fs::OFlags::NOFOLLOW
                        | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .map_err(fail)?;
                if !is_mount_root(&top).map_err(fail)? || !same_object(&top, src).map_err(fail)? {
                    return Err(fail(Errno::STALE));
                }
                let flags = remount_flags(&top, attrs).map_err(fail)?;
                rustix::mount::mount_remount(
                    link_name(&top).as_str(),
                    flags | MountFlags::BIND,
                    "",
                )
                .map_err(fail)?;
            }
        }
        MountKind::Remount => {
            if !is_mount_root(&opened.target).map_err(fail)? {
                return Err(NativeMountError::NotMounted {
                    target: target.to_path_buf(),
                });
            }
            if req.get_options().is_empty() {
                let flags = remount_flags(&opened.target, attrs).map_err(fail)?;
                rustix::mount::mount_remount(t.as_str(), flags | MountFlags::BIND, "")
                    .map_err(fail)?;
            } else {
                // Filesystem options: a superblock remount (which sets the per-mount flags
                // too); `ro`/`rw` among the options are MS_RDONLY or not.
                let mut flags = remount_flags(&opened.target, attrs).map_err(fail)?;
                let mut data: Vec<u8> = Vec::new();
                for o in req.get_options() {
                    match (o.key(), o.value()) {
                        ("ro", None) => flags |= MountFlags::RDONLY,
                        ("rw", None) => flags -= MountFlags::RDONLY,
                        (k, v) => {
                            if !data.is_empty() {
                                data.push(b',');
                            }
                            data.extend_from_slice(k.as_bytes());
                            if let Some(v) = v {
                                data.push(b'=');
                                data.extend_from_slice(v.as_bytes());
                            }
                        }
                    }
                }
                let data = CString::new(data).map_err(|_| fail(Errno::INVAL))?;
                rustix::mount::mount_remount(t.as_str(), flags, data.as_c_str()).map_err(fail)?;
            }
        }
        MountKind::Move { .. } => {
            let Some(src) = &opened.source else {
                return Err(fail(Errno::BADF));
            };
            rustix::mount::mount_move(link_name(src).as_str(), t.as_str()).map_err(fail)?;
        }
        _ => return Err(unsupported(route, "this kind of mount", Errno::OPNOTSUPP)),
    }
    if attrs.propagation.is_some() {
        let mut p = rustix::mount::MountPropagationFlags::empty();
        p |= match attrs.propagation {
            Some(Propagation::Shared) => rustix::mount::MountPropagationFlags::SHARED,
            Some(Propagation::Slave) => rustix::mount::MountPropagationFlags::DOWNSTREAM,
            Some(Propagation::Unbindable) => rustix::mount::MountPropagationFlags::UNBINDABLE,
            _ => rustix::mount::MountPropagationFlags::PRIVATE,
        };
        if attrs.recursive {
            p |= rustix::mount::MountPropagationFlags::REC;
        }
        rustix::mount::mount_change(t.as_str(), p).map_err(fail)?;
    }
    Ok(())
}

/// A verified unmount target: the directory holding the mount point, the mount point's name
/// in it, and the mount's ID.
#[derive(Debug)]
pub(crate) struct UnmountTarget {
    /// The canonical host path (for umount(8), when the filesystem needs it), from the walk
    /// on the pool; `None` from the cached walk, which computes none: a mount that needs
    /// umount(8) is then left to the walk on the pool ([`WalkFirst`]).
    path: Option<PathBuf>,
    parent: OwnedFd,
    name: std::ffi::OsString,
    /// The mount ID the walk on the pool saw at the name; `None` from the cached walk, which
    /// does not look at the name.
    mnt_id: Option<u64>,
    /// [`UnmountRequest::move_to`]'s directory, opened by the walk on the pool.
    stage: Option<OwnedFd>,
}

/// The host thread found no plain mount root at the name the cached walk left it (a symlink,
/// nothing mounted, no unique mount ID): nothing was changed, and the walk on the pool decides
/// (with the typed error).
#[derive(Debug)]
pub(crate) struct WalkFirst;

/// Runs on the host thread: `umount2(name, UMOUNT_NOFOLLOW)` relative to the mount point's
/// parent directory, after `statx` there shows the same mount ID as the walk on the pool saw
/// (or, after the cached walk, which does not look at the name, a plain mount root with a
/// unique ID; anything else is [`WalkFirst`]). The walk's descriptor is closed by then (an open descriptor on a mount makes
/// `umount2` answer EBUSY). Nothing can take the name's place in between: a mount point
/// cannot be renamed or replaced in its own namespace (EBUSY), and a symlink put there after
/// an unmount by someone else is refused by `UMOUNT_NOFOLLOW`.
pub(crate) fn unmount(
    host: &HostSide<'_>,
    req: &UnmountRequest,
    t: &UnmountTarget,
) -> Result<Result<MountRoute, NativeMountError>, WalkFirst> {
    let mut flags = UnmountFlags::NOFOLLOW;
    if req.is_lazy() {
        flags |= UnmountFlags::DETACH;
    }
    if req.is_force() {
        flags |= UnmountFlags::FORCE;
    }
    let route = MountRoute::Mount2;
    let not_mounted = || NativeMountError::NotMounted {
        target: req.target().to_path_buf(),
    };
    if let Err(e) = rustix::process::fchdir(&t.parent) {
        return Ok(Err(kernel("fchdir", route, req.target(), "", vec![], e)));
    }
    let r = (|| {
        // After the cached walk (no mount ID yet), the directory is on a local mount (the
        // caller's thread checked its type), so this lookup does not wait for a server.
        let peeked = peek(rustix::fs::CWD, &t.name);
        let mnt_id = match (t.mnt_id, peeked) {
            (Some(want), Ok((true, Some(got), _))) if got == want => want,
            (Some(_), Ok(_)) => return Ok(Err(not_mounted())),
            (Some(_), Err(e)) => {
                return Ok(Err(kernel("statx", route, req.target(), "", vec![], e)))
            }
            (None, Ok((true, Some(got), false))) => got,
            (None, _) => return Err(WalkFirst),
        };
        if let Some(stage) = &t.stage {
            return Ok(move_out(host, req, t, mnt_id, stage));
        }
        // A network or FUSE filesystem may block umount2 talking to its server, and this is
        // the one thread in the host's mount namespace: such mounts go to umount(8), which
        // runs under the caller's timeout; so do types the host has a `/sbin/umount.TYPE`
        // for (umount.nfs tells the server). statmount reads the type without asking the
        // filesystem; without it (Linux < 6.8) the type is unknown, and umount(8) is used.
        let helper = |reason: String| match &t.path {
            Some(path) => Ok(Err(NativeMountError::HelperRequired {
                target: path.clone(),
                reason,
            })),
            None => Err(WalkFirst),
        };
        // A mount this thread made knows its type (see `made`); any other is asked.
        let fstype = match made::type_of(mnt_id) {
            Some(fstype) => fstype,
            None => match hostexec_sys::mount::statmount_sb_magic_and_type(mnt_id) {
                Ok((magic, _)) if REMOTE_MAGICS.contains(&magic) => {
                    return helper(format!("a network or FUSE filesystem (magic {magic:#x})"));
                }
                Ok((_, fstype)) => fstype,
                Err(e) => {
                    return Ok(Err(NativeMountError::Unsupported {
                        route,
                        reason: "statmount could not tell the filesystem type".into(),
                        source: Some(e),
                    }))
                }
            },
        };
        if has_umount_helper(&fstype) {
            return helper(format!(
                "the host has an umount.{} helper",
                String::from_utf8_lossy(&fstype)
            ));
        }
        Ok(rustix::mount::unmount(t.name.as_os_str(), flags)
            .map(|()| {
                made::forget(mnt_id);
                route
            })
            .map_err(|e| match e {
                Errno::INVAL => not_mounted(),
                e if e == Errno::NOSYS => unsupported(route, "umount2", e),
                e => kernel("umount2", route, req.target(), "", vec![], e),
            }))
    })();
    let back = rustix::process::fchdir(host.root);
    match (r, back) {
        (Ok(r), Ok(())) => Ok(r),
        (Err(walk), Ok(())) => Err(walk),
        (_, Err(e)) => Ok(Err(unsupported(route, "returning to the host root", e))),
    }
}

/// Whether the host has a `/sbin/umount.TYPE` (or `/usr/sbin/…`) that umount(8) would run
/// for `fstype`. On the host thread, whose root is the host's: two lookups from the kernel's
/// caches, in the host's view.
fn has_umount_helper(fstype: &[u8]) -> bool {
    if fstype.is_empty() || fstype.contains(&b'/') {
        return false;
    }
    ["/sbin/umount.", "/usr/sbin/umount."].iter().any(|dir| {
        let mut p = dir.as_bytes().to_vec();
        p.extend_from_slice(fstype);
        rustix::fs::statx(
            rustix::fs::CWD,
            OsStr::from_bytes(&p),
            AtFlags::STATX_DONT_SYNC | AtFlags::NO_AUTOMOUNT,
            StatxFlags::TYPE,
        )
        .is_ok_and(|st| {
            rustix::fs::FileType::from_raw_mode(u32::from(st.stx_mode))
                == rustix::fs::FileType::RegularFile
        })
    })
}

/// [`UnmountRequest::move_to`], on the host thread with the working directory in the mount
/// point's parent: the name opened again (`O_PATH`, crossing into the mount without entering
/// its filesystem), its unique mount ID compared with the checked one (`mnt_id`), then
/// `move_mount` of exactly that mount onto the staging directory (`MS_MOVE` through the
/// descriptors' `/proc` links where the new API is missing or filtered). The kernel refuses
/// to move a mount whose parent mount is shared (`EINVAL`).
fn move_out(
    host: &HostSide<'_>,
    req: &UnmountRequest,
    t: &UnmountTarget,
    mnt_id: u64,
    stage: &OwnedFd,
) -> Result<MountRoute, NativeMountError> {
    let route = MountRoute::NewApi;
    let fail = |call, e| kernel(call, route, req.target(), "", vec![], e);
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        t.name.as_os_str(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| fail("openat", e))?;
    let st = rustix::fs::statx(
        &fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )
    .map_err(|e| fail("statx", e))?;
    if !st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT) || st.stx_mnt_id != mnt_id {
        return Err(NativeMountError::NotMounted {
            target: req.target().to_path_buf(),
        });
    }
    match rustix::mount::move_mount(
        &fd,
        "",
        stage,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    ) {
        Ok(()) => Ok(route),
        Err(e) if is_unavailable(e) => with_proc_cwd(host, || {
            rustix::mount::mount_move(link_name(&fd).as_str(), link_name(stage).as_str()).map_err(
                |e| {
                    kernel(
                        "mount(MS_MOVE)",
                        MountRoute::Mount2,
                        req.target(),
                        "",
                        vec![],
                        e,
                    )
                },
            )
        })
        .map(|()| MountRoute::Mount2),
        Err(e) => Err(fail("move_mount", e)),
    }
}

/// Opens this process's `/proc/PID/fd` (in the caller's view) as an `O_PATH` directory.
pub(crate) fn open_proc_fds() -> io::Result<OwnedFd> {
    let pid = std::process::id();
    Ok(rustix::fs::open(
        format!("/proc/{pid}/fd"),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// The types of the mounts this thread made with `fsopen(TYPE)`, by unique mount ID, so that
/// their unmount need not ask `statmount` for it: ~2.3 µs off each such unmount here, for one
/// `statx` of the new mount's descriptor when it is made (~0.4 µs).
///
/// Why an entry is always true: a unique mount ID (`STATX_MNT_ID_UNIQUE`, Linux 6.8) is
/// never reused while the system runs (statx(2)), and a mount's filesystem type never
/// changes, so the ID names that one mount and that type for as long as it exists. The name
/// kept is what `statmount` reports for it, the file system type the kernel looked up
/// (`get_fs_type` drops a `.subtype`). Remote and FUSE types ([`is_remote`](crate::fstypes::is_remote),
/// which covers every superblock magic the unmount sends to umount(8)) are never kept, so
/// they are asked as before; the host's `/sbin/umount.TYPE` helpers are still looked up on
/// every unmount. The map is the host thread's own (no lock), forgets a mount once it is
/// unmounted, and is emptied when it holds [`MAX`](made::MAX) entries (mounts made and unmounted by
/// others are then asked again).
mod made {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::os::fd::OwnedFd;

    use rustix::fs::{AtFlags, StatxFlags};

    use super::STATX_MNT_ID_UNIQUE;

    /// Entries kept before the map is emptied.
    pub(super) const MAX: usize = 1024;

    thread_local! {
        static MADE: RefCell<HashMap<u64, Box<[u8]>>> = RefCell::new(HashMap::new());
    }

    /// Records the type of the mount `mnt` (a descriptor from `fsmount`) made by
    /// `fsopen(fstype)`. Without the unique ID (before Linux 6.8) nothing is kept.
    pub(super) fn remember(mnt: &OwnedFd, fstype: &str) {
        let name = fstype.split('.').next().unwrap_or(fstype).as_bytes();
        if name.is_empty() || crate::fstypes::is_remote(name) {
            return;
        }
        let Ok(st) = rustix::fs::statx(
            mnt,
            c"",
            AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
            StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
        ) else {
            return;
        };
        if st.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
            return;
        }
        MADE.with_borrow_mut(|m| {
            if m.len() >= MAX {
                m.clear();
            }
            m.insert(st.stx_mnt_id, name.into());
        });
    }

    /// The type of the mount with unique ID `mnt_id`, if this thread made it.
    pub(super) fn type_of(mnt_id: u64) -> Option<Vec<u8>> {
        MADE.with_borrow(|m| m.get(&mnt_id).map(|t| t.to_vec()))
    }

    /// Forgets an unmounted mount.
    pub(super) fn forget(mnt_id: u64) {
        MADE.with_borrow_mut(|m| m.remove(&mnt_id));
    }
}
