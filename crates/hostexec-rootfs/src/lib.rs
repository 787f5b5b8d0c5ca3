//! # hostexec-rootfs: host paths resolved, and files touched, through a root directory fd
//!
//! Both hostexec backends have to answer "what does `/var/lib/kubelet/pods/x` mean *on the
//! host*?": `hostexec-nsenter` with a root fd for the host's `/` (opened on a thread that joined
//! the host's mount namespace, or an fd of `/rootfs` or `/proc/PID/root`), `hostexec-fake` with a
//! temp directory. This crate is the **one** implementation of that algorithm, so that fuzzing
//! it covers both backends.
//!
//! ## Why not do what Go did
//!
//! Go's `nsenter.EvalSymlinks` (`k8s.io/utils/nsenter`) spawns `nsenter` + `realpath -e`/`-m`
//! for every call, drops realpath's stderr so that "missing", "loop" and "permission denied"
//! look the same (kubernetes/kubernetes#69565), and with `realpath -m` does not see symlink
//! loops or permission errors at all (kubernetes/kubernetes#63143). Resolving a host path
//! through `/rootfs` with ordinary syscalls is no better: the kernel reads an absolute symlink
//! target against the *caller's* root and lets `..` climb out of `/rootfs`.
//!
//! ## The algorithm
//!
//! [`RootFs::resolve`] walks the path one component at a time, holding a stack of `O_PATH`
//! directory fds that starts at the root fd:
//!
//! - `openat(top, name, O_PATH|O_NOFOLLOW|O_CLOEXEC)`, then `fstat` of that fd: the type is
//!   learnt from the object that was opened, atomically; the kernel never follows a symlink for
//!   us and no path string is ever walked again from the root, so a concurrent rename cannot
//!   move the walk outside the root.
//! - A directory is pushed. `..` pops the stack and, at the root, stays there (the kernel's `..`
//!   is never used). `.` and empty components (`//`) stay.
//! - A symlink is read with `readlinkat(fd, "")`; its target is spliced in front of the
//!   components still to walk. An absolute target restarts at the **root fd**, never at the
//!   caller's `/`. More than [`MAX_SYMLINK_HOPS`] links in one resolution is
//!   [`PathError::Loop`], as the kernel's `MAXSYMLINKS`.
//! - A non-directory followed by more components (`file/x`, `file/`, `file/.`, `file/..`) is
//!   `ENOTDIR`, as for the kernel and GNU `realpath -e`.
//!
//! [`Resolve::MustExist`] is `realpath -e`. [`Resolve::AllButLast`] is GNU `realpath`'s default
//! (`realpath -E`, `readlink -f`): `realpath -e`, except that the last component may be missing
//! when nothing but slashes follows it, including the target of a dangling link.
//! [`Resolve::AllowMissing`] is `realpath -m`, checked
//! against GNU coreutils by experiment and by this crate's differential fuzzing: from the first
//! component that does not exist (or that is not a directory but is used as one) the names are
//! kept as written; a later `..` removes a kept name, and once none is left the walk goes on
//! from the real directory above (`missing/../link` follows `link`). The contract's intended
//! differences from GNU are:
//!
//! | case | GNU `realpath` | here |
//! |---|---|---|
//! | symlink loop with `-m` | returns the unresolved path | [`PathError::Loop`] |
//! | a chain of more than 40 links | followed | [`PathError::Loop`] (the kernel's rule) |
//! | a link that grows its own path (`a -> a/b`) | never ends, memory grows (coreutils 9.1: its loop check looks for a repeated link *and rest of path*) | [`PathError::Loop`] after 40 hops |
//! | `EACCES` with `-m` | hidden, the name is kept | [`PathError::PermissionDenied`] |
//! | `..` at the root | goes to the caller's parent of the root directory | stays at the root |
//! | absolute link target | read against the caller's `/` | read against the root fd |
//! | component longer than `NAME_MAX` with `-m` | kept | [`PathError::NameTooLong`] |
//! | a symlink on a `nosymfollow` mount | followed | [`PathError::Loop`] (the kernel's rule) |
//! | a final symlink `fs.protected_symlinks` protects | followed | [`PathError::PermissionDenied`] (the kernel's rule) |
//!
//! Everything else agrees with GNU coreutils 9.1 byte for byte, errors included (`file/../x`
//! is `ENOTDIR` for both), as the differential fuzz tests check over random trees.
//!
//! With [`Resolve::MustExist`] the answer also equals the kernel's own
//! `openat2(root, path, RESOLVE_IN_ROOT)`, which the fuzz tests use as a second oracle (see
//! "What the host kernel refuses to follow" below for the links GNU follows and the kernel
//! does not).
//!
//! ## The kernel's answer
//!
//! [`RootFs::resolve_by_kernel`] asks the kernel instead: one
//! `openat2(root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` (Linux ≥ 5.6), then
//! the object's path as `/proc/self/fd/N` shows it (the kernel's `d_path`), mapped back into
//! the root, trusted only if it is a plain path that leads with `RESOLVE_NO_SYMLINKS` to the
//! same object; any error gives `None`. [`RootFs::resolve`] takes it for
//! [`Resolve::MustExist`] and falls back to the walk whenever it gives `None` (errors, which
//! the walk then reports with its exact rules; `ENOSYS`, `EAGAIN` from a racing rename,
//! `EXDEV`, a path that cannot be mapped back or checked), and for the other modes. The
//! differential fuzzers check, query by query, that both paths give the same answer.
//!
//! Under a concurrent rename the two can differ, and both are correct answers. Neither is
//! atomic: the walk's answer lists the names it went through, each valid when it was
//! crossed, though perhaps no longer (a directory on the way may be a symlink by the time the
//! walk returns). The kernel's answer is the object's name when it was checked: a path that
//! at that instant led, inside the root and without any symlink, to the very object the
//! query reached. After a `RENAME_EXCHANGE` of a directory on the way that can be the
//! object's new name, never given by any resolution of the query, but it names the same
//! object and is canonical when it is checked. The safety property holds for both, and is
//! what the race tests check: the answer lies inside the root and names an object some
//! resolution of the query reaches.
//!
//! [`RootFs::resolve_cached`] is the same answer with `RESOLVE_CACHED`: an RCU path walk
//! that never sleeps and never asks a file system (`EAGAIN` for a name not in the dentry
//! cache), so a backend can run it on a thread that must not block.
//!
//! ## What the host kernel refuses to follow
//!
//! Resolution follows a symlink only where the host kernel would, when a process opens the
//! path (namei.c `pick_link`), so that [`Resolve::MustExist`] equals what the host gets from
//! open(2), and mount targets cannot be steered through links the host refuses:
//!
//! - a symlink on a `nosymfollow` mount (mount(8), Linux ≥ 5.10) is [`PathError::Loop`]
//!   (`ELOOP`), wherever it is on the path;
//! - with `fs.protected_symlinks = 1` (proc_sys_fs(5)), a symlink that is the last component
//!   (trailing slashes allowed, or the last component of a final link's target), in a sticky
//!   world-writable directory, owned neither by this process's effective uid nor by the
//!   directory's owner, is [`PathError::PermissionDenied`] (`EACCES`).
//!
//! GNU `realpath` reads links with readlink(2) and follows them regardless, so on such paths
//! it answers where resolution fails (rows in the table above). The fast path agrees by
//! construction (the kernel walks); the walk checks the same conditions (one `statfs` per
//! mount a followed link is on, and the directory's owner and mode for a final link of
//! another owner), and the tests compare both with the kernel on such a mount and with the
//! sysctl on and off.
//!
//! Names are bytes: non-UTF-8 names round-trip byte for byte. Errors are [`PathError`]s naming
//! the path that was asked about, never an inner component.
//!
//! ## Example
//!
//! ```
//! use std::path::Path;
//! use hostexec_api::{PathError, Resolve};
//! use hostexec_rootfs::RootFs;
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::create_dir_all(dir.path().join("usr/bin"))?;
//! std::os::unix::fs::symlink("usr/bin", dir.path().join("bin"))?;
//! // An absolute target is read against the root, not against this process's `/`.
//! std::os::unix::fs::symlink("/usr/../../../../etc", dir.path().join("escape"))?;
//! std::os::unix::fs::symlink("loop", dir.path().join("loop"))?;
//!
//! let root = RootFs::open(dir.path())?;
//! assert_eq!(root.resolve(Path::new("/bin//"), Resolve::MustExist)?, Path::new("/usr/bin"));
//! assert_eq!(root.resolve(Path::new("/escape/x"), Resolve::AllowMissing)?, Path::new("/etc/x"));
//! assert_eq!(root.resolve(Path::new("/no/../bin"), Resolve::AllowMissing)?, Path::new("/usr/bin"));
//! // GNU `realpath -m` would print `/loop/x` here.
//! assert!(matches!(
//!     root.resolve(Path::new("/loop/x"), Resolve::AllowMissing),
//!     Err(PathError::Loop { path }) if path == Path::new("/loop/x")
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## File operations
//!
//! They walk the same way and then act on the directory fd the walk ended in, by name, with
//! `O_NOFOLLOW`: what they touch is what was resolved, inside the root.
//! [`create_dir_all`](RootFs::create_dir_all) creates missing directories *during* the walk
//! (`mkdir -p`, including names a later `..` undoes), [`create_file`](RootFs::create_file)
//! follows open(2)'s `O_CREAT` rules, [`remove_dir`](RootFs::remove_dir) rmdir(2)'s, and
//! [`read_file`](RootFs::read_file) checks that the file it opened is the object the walk saw.
//!
//! A walk holds one fd per directory level of the path it is on (for `..`), so a path with more
//! real directory levels than the fd limit allows fails with `EMFILE`; `PATH_MAX` allows at most
//! 2048 levels.
//!
//! All methods block (a few syscalls each). Async backends call them from their host thread or
//! `spawn_blocking`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use hostexec_api::path::{check_host_path, normalize, PATH_MAX};
use hostexec_api::{
    CommandError, FileKind, FileStat, NativeMountError, PathError, Resolve, TargetLookup,
    MAX_SYMLINK_HOPS,
};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxAttributes, StatxFlags};
use rustix::io::Errno;

/// The longest single name the kernel accepts (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// How often an operation that lost a race with a concurrent change starts again.
const RACE_RETRIES: usize = 8;

/// A root directory, held as an `O_PATH|O_DIRECTORY|O_CLOEXEC` fd; every path handed to its
/// methods is a *host* path, absolute as seen from inside this root.
#[derive(Debug)]
pub struct RootFs {
    fd: OwnedFd,
    guard: Option<Arc<dyn MountGuard>>,
    /// The root's own path as `/proc/self/fd` shows it (for the kernel fast path), once read.
    shown: OnceLock<Option<Vec<u8>>>,
}

/// Told about each mount a walk enters, before the walk asks that mount's file system
/// anything that could wait for it (a backend uses it to refuse mounts that stopped answering,
/// and to know where a call that never returned was; see [`RootFs::with_guard`]).
///
/// The walk learns the mount of each component it opens with
/// `statx(fd, "", AT_EMPTY_PATH|AT_STATX_DONT_SYNC, STATX_TYPE|STATX_MNT_ID)`: opening a mount
/// root `O_PATH` and that `statx` are answered from the kernel's caches, without a request to
/// the file system (checked on a FUSE mount whose daemon never answers, where `fstat` blocks),
/// so the guard hears of a mount before anything can hang in it.
pub trait MountGuard: Send + Sync + std::fmt::Debug {
    /// The walk is about to look inside, or at, an object on the mount `mnt_id`
    /// (`STATX_MNT_ID`, mountinfo's first field), while working on `path` (the path the
    /// operation was asked about). Called whenever the mount changes from one component to
    /// the next. An error stops the walk and is the operation's error.
    fn entering(&self, mnt_id: u64, path: &Path) -> Result<(), PathError>;

    /// Whether [`RootFs::resolve`] may take the kernel fast path (one `openat2`, which cannot
    /// tell the guard about the mounts on the way until it has returned). A guard that
    /// refuses some mount now says no, and the walk asks it at each mount. Default: yes.
    /// [`RootFs::resolve_cached`] and [`RootFs::stat_cached`] do not ask: their lookups use
    /// only the kernel's caches and never wait for a file system; they put the object's
    /// mount to [`entering`](MountGuard::entering) like the walk does.
    fn allows_fast_path(&self) -> bool {
        true
    }
}

/// Which mounts the cache-only calls ([`RootFs::stat_cached`], [`RootFs::resolve_cached`])
/// may answer for: those whose file system answers from memory (a backend's rule, e.g. "not
/// remote, not FUSE"). The calls read the object's mount ID with `statx(AT_STATX_DONT_SYNC)`,
/// which does not ask the file system, and put it to [`local`](LocalMounts::local).
pub trait LocalMounts: Sync {
    /// Whether [`local`](Self::local) takes unique mount IDs (statx `STATX_MNT_ID_UNIQUE`,
    /// Linux 6.8: never reused) rather than mountinfo's (`STATX_MNT_ID`, reused after an
    /// unmount). A kernel that does not fill the kind asked for makes the calls answer
    /// `Ok(None)`.
    fn unique_ids(&self) -> bool;

    /// For the mount `mnt_id` (of the kind [`unique_ids`](Self::unique_ids) says): its
    /// mountinfo ID (`STATX_MNT_ID`, what the guard and [`FileStat::mount_id`] carry) when its
    /// file system answers from memory, `None` when it may block or is not known.
    fn local(&self, mnt_id: u64) -> Option<u64>;
}

/// The state of one walk: what [`RootFs::walk`] found.
#[derive(Debug)]
struct Walk {
    /// Real directories below the root, outermost first: their names and `O_PATH` fds.
    dirs: Vec<(OsString, OwnedFd)>,
    /// The final object when it is not a directory (not followed when it is a symlink).
    leaf: Option<Leaf>,
    /// The names kept as written from the first missing component on ([`Missing::Keep`]), or
    /// the missing last name ([`Missing::Last`]).
    missing: Vec<OsString>,
}

/// What a walk does with a component that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missing {
    /// `NotFound` ([`Resolve::MustExist`]).
    Fail,
    /// Keep it and the rest as written ([`Resolve::AllowMissing`]); a non-directory used as a
    /// directory is kept too.
    Keep,
    /// Only the last component may be missing (open(2) with `O_CREAT`).
    Last,
    /// Only the last component may be missing, and slashes may follow it
    /// ([`Resolve::AllButLast`], GNU `realpath`'s default).
    AllButLast,
    /// Create it as a directory and walk on (`mkdir -p`).
    Create,
}

impl From<Resolve> for Missing {
    fn from(mode: Resolve) -> Missing {
        match mode {
            Resolve::MustExist => Missing::Fail,
            Resolve::AllowMissing => Missing::Keep,
            Resolve::AllButLast => Missing::AllButLast,
            // `Resolve` is non-exhaustive: a mode this walk does not know yet gets the
            // strictest treatment, never a laxer one.
            _ => Missing::Fail,
        }
    }
}

#[derive(Debug)]
struct Leaf {
    name: OsString,
    fd: OwnedFd,
}

impl Walk {
    fn host_path(&self) -> PathBuf {
        let mut out = Vec::with_capacity(64);
        let names = self
            .dirs
            .iter()
            .map(|(n, _)| n)
            .chain(self.leaf.as_ref().map(|l| &l.name))
            .chain(self.missing.iter());
        for n in names {
            out.push(b'/');
            out.extend_from_slice(n.as_bytes());
        }
        if out.is_empty() {
            out.push(b'/');
        }
        PathBuf::from(OsString::from_vec(out))
    }

    /// The directory the leaf (or the first missing name) is in.
    fn parent<'a>(&'a self, root: &'a OwnedFd) -> BorrowedFd<'a> {
        self.dirs.last().map_or(root.as_fd(), |(_, fd)| fd.as_fd())
    }
}

/// Splits a path or link target into the pieces between slashes, dropping the leading empty
/// piece of an absolute one. Empty pieces (from `//` or a trailing `/`) are kept: they make the
/// component before them "used as a directory", as `.` does.
fn pieces(bytes: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    let rest = bytes.strip_prefix(b"/").unwrap_or(bytes);
    rest.split(|&b| b == b'/')
}

fn kind_of(ft: FileType) -> FileKind {
    match ft {
        FileType::Directory => FileKind::Dir,
        FileType::Symlink => FileKind::Symlink,
        FileType::CharacterDevice => FileKind::CharDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Fifo => FileKind::Fifo,
        FileType::Socket => FileKind::Socket,
        _ => FileKind::File,
    }
}

/// What the walk learns of each object it opens.
#[derive(Clone, Copy, Debug)]
struct Seen {
    kind: FileType,
    /// The whole `st_mode` (permission and sticky bits included).
    mode: u32,
    uid: u32,
    /// `STATX_MNT_ID`, where the kernel reports it.
    mount: Option<u64>,
}

/// The type, mode, owner and mount of the object `fd` names, from the kernel's caches only
/// (`AT_STATX_DONT_SYNC`: a file's type never changes, and a remote or FUSE file system is
/// not asked); `fstat` where there is no `statx` (ENOSYS).
fn kind_and_mount(fd: BorrowedFd<'_>) -> Result<Seen, Errno> {
    match rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::UID | StatxFlags::MNT_ID,
    ) {
        Ok(st) => Ok(Seen {
            kind: FileType::from_raw_mode(u32::from(st.stx_mode)),
            mode: u32::from(st.stx_mode),
            uid: st.stx_uid,
            mount: StatxFlags::from_bits_retain(st.stx_mask)
                .contains(StatxFlags::MNT_ID)
                .then_some(st.stx_mnt_id),
        }),
        Err(Errno::NOSYS) => {
            let st = rustix::fs::fstat(fd)?;
            Ok(Seen {
                kind: FileType::from_raw_mode(st.st_mode),
                mode: st.st_mode,
                uid: st.st_uid,
                mount: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// `ST_NOSYMFOLLOW` of statfs(2)'s `f_flags` (Linux ≥ 5.10): the mount refuses to follow
/// symlinks (mount(8) `nosymfollow`).
const ST_NOSYMFOLLOW: u64 = 0x2000;

/// Whether the kernel would refuse to follow the symlink `link` (seen as `seen`) found in the
/// directory `dir`, as it does when a process opens the path (namei.c `pick_link`):
///
/// - `ELOOP` when the link is on a `nosymfollow` mount (statfs(2) `ST_NOSYMFOLLOW`; asked once
///   per mount and walk, remembered in `nosymfollow`), wherever the link is on the path;
/// - `EACCES` under `fs.protected_symlinks = 1` (proc_sys_fs(5), namei.c `may_follow_link`)
///   for a `trailing` link (the last component, trailing slashes allowed, or the last
///   component of the target of a trailing link): the link is in a sticky world-writable
///   directory, and owned neither by the follower (this process's effective uid) nor by the
///   directory's owner.
fn kernel_refuses_link(
    dir: BorrowedFd<'_>,
    link: &OwnedFd,
    seen: &Seen,
    trailing: bool,
    nosymfollow: &mut Option<(Option<u64>, bool)>,
) -> Result<(), Errno> {
    let refused = match nosymfollow {
        Some((mnt, refused)) if *mnt == seen.mount && seen.mount.is_some() => *refused,
        _ => {
            let flags = rustix::fs::fstatfs(link)?.f_flags;
            #[allow(clippy::cast_sign_loss)] // a bit mask, whatever its C type
            let refused = (flags as u64) & ST_NOSYMFOLLOW != 0;
            *nosymfollow = Some((seen.mount, refused));
            refused
        }
    };
    if refused {
        return Err(Errno::LOOP);
    }
    if !trailing || seen.uid == rustix::process::geteuid().as_raw() {
        return Ok(());
    }
    const STICKY_AND_WORLD_WRITABLE: u32 = 0o1002;
    let parent = kind_and_mount(dir)?;
    if parent.mode & STICKY_AND_WORLD_WRITABLE != STICKY_AND_WORLD_WRITABLE
        || parent.uid == seen.uid
    {
        return Ok(());
    }
    if protected_symlinks() {
        return Err(Errno::ACCESS);
    }
    Ok(())
}

/// `fs.protected_symlinks` now (`/proc/sys/fs/protected_symlinks`, one host-wide value);
/// unreadable counts as on, the kernel's default since Linux 3.6 on most distributions.
fn protected_symlinks() -> bool {
    std::fs::read("/proc/sys/fs/protected_symlinks")
        .map(|v| v.first() != Some(&b'0'))
        .unwrap_or(true)
}

/// statx `STATX_MNT_ID_UNIQUE` (Linux 6.8), which rustix 1.1 does not name.
const STATX_MNT_ID_UNIQUE: StatxFlags = StatxFlags::from_bits_retain(0x4000);

/// The statx mask bit of the kind of mount ID asked for: unique or mountinfo's.
fn mnt_id_flag(unique: bool) -> StatxFlags {
    if unique {
        STATX_MNT_ID_UNIQUE
    } else {
        StatxFlags::MNT_ID
    }
}

/// The mount ID of the kind `asked` from a statx answer, if the kernel filled that kind.
fn mnt_id_of(st: &rustix::fs::Statx, asked: StatxFlags) -> Option<u64> {
    StatxFlags::from_bits_retain(st.stx_mask)
        .contains(asked)
        .then_some(st.stx_mnt_id)
}

/// Device, inode and mount of `fd` (unique ID with `unique`, else mountinfo's), from the
/// kernel's caches (`AT_STATX_DONT_SYNC`: they never change for an open object, and a hung
/// file system is not asked).
fn identity(fd: &OwnedFd, unique: bool) -> Option<((u32, u32), u64, Option<u64>)> {
    let asked = mnt_id_flag(unique);
    let st = rustix::fs::statx(
        fd,
        c"",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::INO | asked,
    )
    .ok()?;
    Some((
        (st.stx_dev_major, st.stx_dev_minor),
        st.stx_ino,
        mnt_id_of(&st, asked),
    ))
}

/// What `/proc/self/fd/N` shows for `fd`: the kernel's `d_path` of the object, read through
/// a descriptor of this process's `/proc/self/fd` opened once.
fn proc_fd_path(fd: &OwnedFd) -> Option<Vec<u8>> {
    static FDS: OnceLock<Option<OwnedFd>> = OnceLock::new();
    let dir = FDS
        .get_or_init(|| {
            rustix::fs::open(
                "/proc/self/fd",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .ok()
        })
        .as_ref()?;
    let name = itoa_fd(fd);
    let shown = rustix::fs::readlinkat(dir, name.as_str(), Vec::with_capacity(128)).ok()?;
    let bytes = shown.into_bytes();
    // Not a path in a mount namespace this process can name (a pipe, an anonymous inode,
    // an unreachable mount shown relative to nothing): no answer.
    (bytes.first() == Some(&b'/')).then_some(bytes)
}

fn itoa_fd(fd: &OwnedFd) -> String {
    use std::os::fd::AsRawFd;
    fd.as_raw_fd().to_string()
}

/// `openat2` with `RESOLVE_CACHED` added to `resolve`, tried twice on `EAGAIN`: that is the
/// answer for a name not in the dentry cache, and also for an RCU path walk that had to be
/// dropped because a sequence count moved under it (a concurrent rename, or a mount or
/// unmount anywhere on the system), which the kernel would redo as a reference walk but
/// `RESOLVE_CACHED` refuses (`path_init` in the kernel's `fs/namei.c`); a second walk
/// usually does not meet one. A real miss costs one more cached walk before the caller's hop.
fn cached_openat2(
    root: &OwnedFd,
    path: &Path,
    flags: OFlags,
    resolve: ResolveFlags,
) -> Result<OwnedFd, Errno> {
    let open = || {
        rustix::fs::openat2(
            root,
            path,
            flags,
            Mode::empty(),
            resolve | ResolveFlags::CACHED,
        )
    };
    match open() {
        Err(Errno::AGAIN) => open(),
        r => r,
    }
}

/// The [`FileStat`] of the object `fd` names (`statx`, asking its file system).
fn stat_fd(fd: &OwnedFd, path: &Path) -> Result<FileStat, PathError> {
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS | StatxFlags::MNT_ID,
    )
    .map_err(|e| errno_err(path, e))?;
    Ok(file_stat(&st))
}

/// A `statx` answer as a [`FileStat`].
fn file_stat(st: &rustix::fs::Statx) -> FileStat {
    let mode = u32::from(st.stx_mode);
    let mount_root = st
        .stx_attributes_mask
        .contains(StatxAttributes::MOUNT_ROOT)
        .then(|| st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    let mount_id = StatxFlags::from_bits_retain(st.stx_mask)
        .contains(StatxFlags::MNT_ID)
        .then_some(st.stx_mnt_id);
    let mut stat = FileStat::new(kind_of(FileType::from_raw_mode(mode)));
    stat.mode = mode;
    stat.uid = st.stx_uid;
    stat.gid = st.stx_gid;
    stat.size = st.stx_size;
    stat.dev = (st.stx_dev_major, st.stx_dev_minor);
    stat.rdev = (st.stx_rdev_major, st.stx_rdev_minor);
    stat.ino = st.stx_ino;
    stat.mount_root = mount_root;
    stat.mount_id = mount_id;
    stat
}

/// Whether two fds are the same file (device and inode).
fn same_object(a: &OwnedFd, b: &OwnedFd) -> Result<bool, Errno> {
    let (sa, sb) = (rustix::fs::fstat(a)?, rustix::fs::fstat(b)?);
    Ok(sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino)
}

fn errno_err(path: &Path, e: Errno) -> PathError {
    PathError::from_io(path, e.into())
}

impl RootFs {
    /// Opens `local_root` (a path in this process's view) as the root.
    pub fn open(local_root: &Path) -> std::io::Result<RootFs> {
        let fd = rustix::fs::open(
            local_root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(RootFs::from_fd(fd))
    }

    /// Takes `fd` as the root. The caller guarantees it is a directory fd (ideally `O_PATH`,
    /// and `O_CLOEXEC` like every fd hostexec holds).
    pub fn from_fd(fd: OwnedFd) -> RootFs {
        RootFs {
            fd,
            guard: None,
            shown: OnceLock::new(),
        }
    }

    /// The same root, whose walks tell `guard` about each mount they enter (see
    /// [`MountGuard`]); every operation of this handle, and of its clones, walks that way.
    pub fn with_guard(self, guard: Arc<dyn MountGuard>) -> RootFs {
        RootFs {
            guard: Some(guard),
            ..self
        }
    }

    /// Another handle on the same root without the guard (for a backend's own probes of a
    /// mount its guard refuses).
    pub fn try_clone_unguarded(&self) -> std::io::Result<RootFs> {
        Ok(RootFs::from_fd(self.fd.try_clone()?))
    }

    /// The root directory fd.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Another handle on the same root (`F_DUPFD_CLOEXEC`).
    pub fn try_clone(&self) -> std::io::Result<RootFs> {
        Ok(RootFs {
            guard: self.guard.clone(),
            ..RootFs::from_fd(self.fd.try_clone()?)
        })
    }

    /// The canonical host path of `path` (see the crate docs for the rules): for
    /// [`Resolve::MustExist`] the kernel's answer ([`resolve_by_kernel`](Self::resolve_by_kernel))
    /// where it gives one, otherwise (other modes, errors, any doubt) the walk.
    pub fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        check_host_path(path)?;
        if mode == Resolve::MustExist && self.fast_path_allowed() {
            if let Some(p) = self.kernel_path(path, ResolveFlags::empty(), None)? {
                return Ok(p);
            }
        }
        self.resolve_by_walk(path, mode)
    }

    /// [`Resolve::MustExist`] from the kernel's lookup caches alone, for a caller that must
    /// not block: the kernel's answer with `RESOLVE_CACHED` on both lookups (an RCU path walk
    /// that never asks a file system; `EAGAIN` when a name is not cached), kept only if
    /// `local` says the object's mount is of a type that answers from memory. `Ok(None)`
    /// whenever any of that does not hold, and then the caller resolves where a block is
    /// allowed. An `Err` is an input error or the guard's refusal.
    pub fn resolve_cached(
        &self,
        path: &Path,
        local: &dyn LocalMounts,
    ) -> Result<Option<PathBuf>, PathError> {
        check_host_path(path)?;
        // No `fast_path_allowed` here: a cached lookup never waits for a file system, so a
        // mount marked unresponsive cannot stall it; the object's own mount is still put to
        // the guard, which refuses a marked one.
        self.kernel_path(path, ResolveFlags::CACHED, Some(local))
    }

    fn fast_path_allowed(&self) -> bool {
        self.guard.as_ref().is_none_or(|g| g.allows_fast_path())
    }

    /// [`resolve`](Self::resolve) by the walk alone (the reference the kernel's answer,
    /// [`resolve_by_kernel`](Self::resolve_by_kernel), is compared with).
    pub fn resolve_by_walk(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        Ok(self.walk(path, mode.into(), true)?.host_path())
    }

    /// The kernel's answer to [`Resolve::MustExist`] (see the crate docs, "The kernel's
    /// answer"): `Ok(None)` whenever it cannot answer for certain (any error, no `openat2`, a
    /// path it cannot map back). An `Err` only comes from the guard.
    pub fn resolve_by_kernel(&self, path: &Path) -> Result<Option<PathBuf>, PathError> {
        self.kernel_path(path, ResolveFlags::empty(), None)
    }

    /// The kernel's answer, with `extra` resolve flags on both lookups; with `local`, only
    /// for an object on a mount it accepts.
    fn kernel_path(
        &self,
        path: &Path,
        extra: ResolveFlags,
        local: Option<&dyn LocalMounts>,
    ) -> Result<Option<PathBuf>, PathError> {
        let Some(prefix) = self.shown().as_deref() else {
            return Ok(None);
        };
        let in_root = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | extra;
        let oflags = OFlags::PATH | OFlags::CLOEXEC;
        let first = if extra.contains(ResolveFlags::CACHED) {
            cached_openat2(&self.fd, path, oflags, in_root)
        } else {
            rustix::fs::openat2(&self.fd, path, oflags, Mode::empty(), in_root)
        };
        let Ok(fd) = first else {
            return Ok(None);
        };
        let unique = local.is_some_and(|l| l.unique_ids());
        let Some((dev, ino, mnt)) = identity(&fd, unique) else {
            return Ok(None);
        };
        if self.judge_mount(mnt, local, path)?.is_none() {
            return Ok(None);
        }
        let Some(shown) = proc_fd_path(&fd) else {
            return Ok(None);
        };
        // The path below the root: the root's own shown path stripped ("/" shows as itself).
        let rest = if prefix == b"/" {
            &shown[..]
        } else {
            match shown.strip_prefix(prefix) {
                Some(r) if r.is_empty() || r.starts_with(b"/") => r,
                _ => return Ok(None),
            }
        };
        let canonical = if rest.is_empty() { &b"/"[..] } else { rest };
        // Trust it only if it is a plain path that leads, without any symlink, to the very
        // object the kernel found (not e.g. a name since renamed, or shown " (deleted)").
        let plain = canonical
            .split(|&b| b == b'/')
            .skip(1)
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
            || canonical == b"/";
        if !plain || canonical.len() >= PATH_MAX {
            return Ok(None);
        }
        let canonical = Path::new(OsStr::from_bytes(canonical));
        let again = rustix::fs::openat2(
            &self.fd,
            canonical,
            oflags,
            Mode::empty(),
            in_root | ResolveFlags::NO_SYMLINKS,
        );
        match again.ok().as_ref().and_then(|fd| identity(fd, unique)) {
            Some((d, i, _)) if (d, i) == (dev, ino) => Ok(Some(canonical.to_path_buf())),
            _ => Ok(None),
        }
    }

    /// The mountinfo ID of the mount an object found from the kernel's caches is on, put to
    /// the guard: `mnt` is statx's mount ID, of the kind `local` takes when given (then a
    /// mount it does not accept, or no ID at all, is `Ok(None)`: the caller answers nothing),
    /// else mountinfo's (`Ok(Some(None))` when the kernel gave none: nothing to judge).
    fn judge_mount(
        &self,
        mnt: Option<u64>,
        local: Option<&dyn LocalMounts>,
        path: &Path,
    ) -> Result<Option<Option<u64>>, PathError> {
        let mnt = match local {
            Some(local) => match mnt.and_then(|m| local.local(m)) {
                Some(m) => Some(m),
                None => return Ok(None),
            },
            None => mnt,
        };
        if let (Some(guard), Some(mnt)) = (&self.guard, mnt) {
            guard.entering(mnt, path)?;
        }
        Ok(Some(mnt))
    }

    /// The root's path as `/proc/self/fd/N` shows it, read once.
    fn shown(&self) -> &Option<Vec<u8>> {
        self.shown.get_or_init(|| proc_fd_path(&self.fd))
    }

    /// [`resolve`](Self::resolve), also telling whether a `..` stayed at the root on the way
    /// (also when the resolution then failed). That is where GNU `realpath`, run on the root
    /// directory itself, climbs above it and so must differ: differential tests against GNU use
    /// the flag to tell that intended difference from a bug.
    pub fn resolve_clamped(
        &self,
        path: &Path,
        mode: Resolve,
    ) -> (Result<PathBuf, PathError>, bool) {
        let mut clamped = false;
        let r = self.walk_noting_clamps(path, mode.into(), true, &mut clamped);
        (r.map(|w| w.host_path()), clamped)
    }

    /// Resolves `path` ([`Resolve::MustExist`]) and returns its canonical host path with an
    /// `O_PATH|O_CLOEXEC` fd of the object itself. With `follow_final`, a final symlink is
    /// followed; without, the fd is of the symlink (a trailing `/` always follows, as for the
    /// kernel).
    pub fn open_resolved(
        &self,
        path: &Path,
        follow_final: bool,
    ) -> Result<(PathBuf, OwnedFd), PathError> {
        let mut w = self.walk(path, Missing::Fail, follow_final)?;
        let host = w.host_path();
        let fd = match (w.leaf.take(), w.dirs.pop()) {
            (Some(leaf), _) => leaf.fd,
            (None, Some((_, fd))) => fd,
            (None, None) => self
                .fd
                .try_clone()
                .map_err(|e| PathError::from_io(path, e))?,
        };
        Ok((host, fd))
    }

    /// Opens a mount target or bind source as an `O_PATH|O_CLOEXEC` descriptor by `lookup`'s
    /// rule, with its canonical host path; nothing is resolved again by path afterwards.
    ///
    /// - [`TargetLookup::RefuseFinalSymlink`]: the walk of [`open_resolved`](Self::open_resolved)
    ///   without following the final component; a symlink there is
    ///   [`NativeMountError::Symlink`] with the link's text.
    /// - [`TargetLookup::FollowFinalSymlink`]: the final symlink followed inside the root.
    /// - [`TargetLookup::Beneath`]: `path` must be lexically below the base; the base is opened
    ///   by the walk, the rest with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
    ///   RESOLVE_NO_MAGICLINKS)`: a symlink anywhere below the base, or a `..` above it, is
    ///   [`NativeMountError::NotBeneath`].
    pub fn open_mount_target(
        &self,
        path: &Path,
        lookup: &TargetLookup,
    ) -> Result<(PathBuf, OwnedFd), NativeMountError> {
        match lookup {
            TargetLookup::FollowFinalSymlink => Ok(self.open_resolved(path, true)?),
            TargetLookup::Beneath(base) => self.open_beneath(path, base),
            _ => {
                let (host, fd) = self.open_resolved(path, false)?;
                let st = rustix::fs::fstat(&fd).map_err(|e| errno_err(path, e))?;
                if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
                    let to = rustix::fs::readlinkat(&fd, "", Vec::new())
                        .map_err(|e| errno_err(path, e))?;
                    return Err(NativeMountError::Symlink {
                        path: path.to_path_buf(),
                        points_to: PathBuf::from(OsString::from_vec(to.into_bytes())),
                    });
                }
                Ok((host, fd))
            }
        }
    }

    /// [`open_mount_target`](Self::open_mount_target) from the kernel's lookup caches alone,
    /// for a caller that must not block: one `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
    /// | RESOLVE_CACHED)` (an RCU path walk that never asks a file system; `O_NOFOLLOW` under
    /// [`TargetLookup::RefuseFinalSymlink`]) and one `statx(AT_STATX_DONT_SYNC)` of the
    /// descriptor for its type and mount ID. It opens the object the walk would open (a lookup
    /// the caches can answer needs no file system to answer it), and returns only the
    /// descriptor: a mount or unmount acts on that, never on a path again, so no canonical
    /// path is computed (that is [`resolve_cached`](Self::resolve_cached)'s `readlinkat` and
    /// check `openat2`, not needed to hold the object).
    ///
    /// What still holds without them: `RESOLVE_IN_ROOT` keeps the lookup inside the root
    /// (absolute links and `..` are clamped to it, and a rename or mount racing a `..` makes
    /// it fail with `EAGAIN`); a final symlink is refused by the type of what was opened; the
    /// guard judges the object's mount, as [`stat_cached`](Self::stat_cached) does; with
    /// `local`, the object must be on a mount it calls local (the unmount's directory, where
    /// the host thread then looks up a name).
    ///
    /// `Ok(None)` whenever that does not answer for certain (a name not cached, any error, a
    /// final symlink under [`TargetLookup::RefuseFinalSymlink`], a mount `local` does not
    /// accept, and [`TargetLookup::Beneath`] always): the caller then takes
    /// [`open_mount_target`](Self::open_mount_target) where a block is allowed, which also
    /// gives the typed errors. An `Err` is an input error or the guard's refusal of the
    /// object's mount.
    pub fn open_mount_target_cached(
        &self,
        path: &Path,
        lookup: &TargetLookup,
        local: Option<&dyn LocalMounts>,
    ) -> Result<Option<OwnedFd>, NativeMountError> {
        check_host_path(path)?;
        let follow = match lookup {
            TargetLookup::FollowFinalSymlink => true,
            TargetLookup::RefuseFinalSymlink => false,
            _ => return Ok(None),
        };
        // One statx for both checks: the type (a symlink is there only under O_NOFOLLOW) and
        // the mount ID the guard and `local` judge.
        let Some((fd, st, _)) = self.cached_open_statx(path, follow, StatxFlags::TYPE, local)?
        else {
            return Ok(None);
        };
        if FileType::from_raw_mode(u32::from(st.stx_mode)) == FileType::Symlink {
            return Ok(None);
        }
        Ok(Some(fd))
    }

    /// The object `path` names, from the kernel's lookup caches alone, and what the caches
    /// say of it: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_CACHED)` (an RCU
    /// path walk that never asks a file system; `O_NOFOLLOW` unless `follow`), then one
    /// `statx(AT_STATX_DONT_SYNC)` of the descriptor (a remote or FUSE file system is not
    /// asked) for `mask` and the mount ID, which [`judge_mount`](Self::judge_mount) puts to
    /// the guard and to `local`. `Ok(None)` when any of that does not answer; an `Err` is the
    /// guard's refusal. Returns the descriptor, the answer and the judged mount ID.
    fn cached_open_statx(
        &self,
        path: &Path,
        follow: bool,
        mask: StatxFlags,
        local: Option<&dyn LocalMounts>,
    ) -> Result<Option<(OwnedFd, rustix::fs::Statx, Option<u64>)>, PathError> {
        let mut flags = OFlags::PATH | OFlags::CLOEXEC;
        if !follow {
            flags |= OFlags::NOFOLLOW;
        }
        let Ok(fd) = cached_openat2(
            &self.fd,
            path,
            flags,
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) else {
            return Ok(None);
        };
        let asked = mnt_id_flag(local.is_some_and(|l| l.unique_ids()));
        // An empty path with AT_EMPTY_PATH takes the kernel's descriptor fast path (Linux
        // 6.11: one read of the path's first byte, no name lookup); a NULL path would save
        // that read, measured at ~20 ns of ~350 here, and fails with EFAULT before 6.11.
        let Ok(st) = rustix::fs::statx(
            &fd,
            c"",
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
            mask | asked,
        ) else {
            return Ok(None);
        };
        Ok(self
            .judge_mount(mnt_id_of(&st, asked), local, path)?
            .map(|mnt| (fd, st, mnt)))
    }

    /// Whether `path` (a final symlink followed) exists in the root's view, from the kernel's
    /// lookup caches alone (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS |
    /// RESOLVE_CACHED)`, which never asks a file system): `Some(true)` it does, `Some(false)` a
    /// cached lookup found no such name (`ENOENT`, `ENOTDIR`: a negative entry the kernel
    /// trusts without asking, as the walk's lookup would), `None` the caches cannot tell (a
    /// name not cached, any other error): the caller then asks [`stat`](Self::stat) where a
    /// block is allowed.
    pub fn exists_cached(&self, path: &Path) -> Result<Option<bool>, PathError> {
        check_host_path(path)?;
        match cached_openat2(
            &self.fd,
            path,
            OFlags::PATH | OFlags::CLOEXEC,
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Ok(_) => Ok(Some(true)),
            Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(Some(false)),
            Err(_) => Ok(None),
        }
    }

    fn open_beneath(
        &self,
        path: &Path,
        base: &Path,
    ) -> Result<(PathBuf, OwnedFd), NativeMountError> {
        check_host_path(path)?;
        check_host_path(base)?;
        let not_beneath = |e: Errno| NativeMountError::NotBeneath {
            path: path.to_path_buf(),
            base: base.to_path_buf(),
            source: e.into(),
        };
        let rest = normalize(path)
            .strip_prefix(normalize(base))
            .map(Path::to_path_buf)
            .map_err(|_| not_beneath(Errno::XDEV))?;
        let (base_host, base_fd) = self.open_resolved(base, true)?;
        if rest.as_os_str().is_empty() {
            return Ok((base_host, base_fd));
        }
        let fd = rustix::fs::openat2(
            &base_fd,
            &rest,
            // No O_NOFOLLOW: with it, O_PATH would open a final symlink itself;
            // without it, RESOLVE_NO_SYMLINKS refuses that one too (ELOOP).
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )
        .map_err(|e| match e {
            Errno::LOOP | Errno::XDEV => not_beneath(e),
            e => errno_err(path, e).into(),
        })?;
        Ok((base_host.join(rest), fd))
    }

    /// Stats `path` in the root's view with statx: a final symlink is followed only with
    /// `follow`. `mount_root` is `None` when the kernel does not report `STATX_ATTR_MOUNT_ROOT`,
    /// `mount_id` when it does not fill `STATX_MNT_ID`.
    pub fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
        let (_, fd) = self.open_resolved(path, follow)?;
        stat_fd(&fd, path)
    }

    /// [`stat`](Self::stat) from the kernel's lookup caches, on a local file system only:
    /// `openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_CACHED)` (a final symlink not
    /// followed without `follow`), then one `statx(AT_STATX_DONT_SYNC)` of the descriptor,
    /// kept if `local` says the object's mount (read without asking the file system) is on a
    /// file system that answers from memory. `Ok(None)` whenever any of that does not hold (a
    /// name not cached, a remote or FUSE mount, any error): the caller then takes
    /// [`stat`](Self::stat) where a block is allowed. It never waits for a remote or FUSE
    /// file system.
    pub fn stat_cached(
        &self,
        path: &Path,
        follow: bool,
        local: &dyn LocalMounts,
    ) -> Result<Option<FileStat>, PathError> {
        check_host_path(path)?;
        // As in `resolve_cached`: no blocking lookup, so no `fast_path_allowed`; the guard
        // still judges the object's mount. On a local file system the caches are the truth,
        // so the cached answer is the stat; on any other, `local` drops it and the caller
        // asks where it may block.
        let Some((_, st, mnt)) =
            self.cached_open_statx(path, follow, StatxFlags::BASIC_STATS, Some(local))?
        else {
            return Ok(None);
        };
        let mut stat = file_stat(&st);
        stat.mount_id = mnt;
        Ok(Some(stat))
    }

    /// Reads the whole file at `path` (final symlink followed), at most `limit` bytes: a longer
    /// file is [`PathError::Io`] with `EFBIG`; a directory is `EISDIR`. The file is opened
    /// `O_NONBLOCK|O_NOFOLLOW` by name in the directory the walk found, and checked to be the
    /// object the walk saw (same device and inode).
    pub fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
        let fail = |e: Errno| errno_err(path, e);
        for _ in 0..RACE_RETRIES {
            let w = self.walk(path, Missing::Fail, true)?;
            let Some(leaf) = &w.leaf else {
                return Err(fail(Errno::ISDIR));
            };
            let opened = rustix::fs::openat(
                w.parent(&self.fd),
                leaf.name.as_os_str(),
                OFlags::RDONLY
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::empty(),
            );
            let fd = match opened {
                Ok(fd) => fd,
                // Replaced by a symlink or removed since the walk: walk again.
                Err(Errno::LOOP) | Err(Errno::NOENT) => continue,
                Err(e) => return Err(fail(e)),
            };
            if !same_object(&fd, &leaf.fd).map_err(fail)? {
                continue;
            }
            let mut buf = Vec::new();
            let want = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
            std::fs::File::from(fd)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| PathError::from_io(path, e))?;
            if buf.len() > limit {
                return Err(fail(Errno::FBIG));
            }
            return Ok(buf);
        }
        Err(fail(Errno::AGAIN))
    }

    /// `mkdir -p path`: creates each missing directory on the way (mode 0755, less the umask,
    /// as mkdir), in the walk itself: a name later undone by `..` is created too, as by
    /// `mkdir -p`, so that afterwards `path` resolves ([`Resolve::MustExist`]) to a directory.
    /// A directory (or symlink) that appears meanwhile (`EEXIST`) is opened and walked like any
    /// other; symlinks are followed inside the root. An existing non-directory at `path` is
    /// [`PathError::AlreadyExists`]; one on the way is [`PathError::NotADirectory`].
    pub fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
        let w = self.walk(path, Missing::Create, true)?;
        if w.leaf.is_some() {
            return Err(errno_err(path, Errno::EXIST));
        }
        Ok(())
    }

    /// `touch path` without the time update: creates an empty file (mode 0644, less the umask)
    /// if nothing is there, with open(2)'s `O_CREAT` rules: every component but the last must
    /// exist ([`PathError::NotFound`] otherwise); a dangling final symlink gets its target
    /// created, inside the root. An existing file of any kind, directories included, is left
    /// alone.
    pub fn create_file(&self, path: &Path) -> Result<(), PathError> {
        let fail = |e: Errno| errno_err(path, e);
        for _ in 0..RACE_RETRIES {
            let w = self.walk(path, Missing::Last, true)?;
            let Some(name) = w.missing.first() else {
                return Ok(());
            };
            let created = rustix::fs::openat(
                w.parent(&self.fd),
                name.as_os_str(),
                OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::NOFOLLOW
                    | OFlags::NONBLOCK
                    | OFlags::NOCTTY
                    | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            );
            match created {
                Ok(_) => return Ok(()),
                // A symlink appeared there meanwhile: follow it properly.
                Err(Errno::LOOP) => continue,
                // A directory appeared (or a fifo without reader): something is there.
                Err(Errno::ISDIR) | Err(Errno::NXIO) => return Ok(()),
                Err(e) => return Err(fail(e)),
            }
        }
        Err(fail(Errno::AGAIN))
    }

    /// Creates `path` as a new file of mode 0600 (whatever the umask) holding `contents`:
    /// every component but the last resolved by the walk, the last created relative to its
    /// directory's descriptor with `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC`, so anything
    /// already there (a symlink included) is [`PathError::AlreadyExists`] and left alone. A
    /// write that fails removes the file again. For secrets a helper reads from a file
    /// (`hostexec_api::NativeMount::create_secret_file`); errors name the path only.
    pub fn create_secret_file(&self, path: &Path, contents: &[u8]) -> Result<(), PathError> {
        use std::io::Write;
        let fail = |e: Errno| errno_err(path, e);
        let w = self.walk(path, Missing::Last, false)?;
        let Some(name) = w.missing.first() else {
            return Err(fail(Errno::EXIST));
        };
        let parent = w.parent(&self.fd);
        let fd = rustix::fs::openat(
            parent,
            name.as_os_str(),
            OFlags::WRONLY
                | OFlags::CREATE
                | OFlags::EXCL
                | OFlags::NOFOLLOW
                | OFlags::NOCTTY
                | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(fail)?;
        let written = rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))
            .map_err(std::io::Error::from)
            .and_then(|()| std::fs::File::from(fd).write_all(contents));
        if let Err(e) = written {
            let _ = rustix::fs::unlinkat(parent, name.as_os_str(), AtFlags::empty());
            return Err(PathError::from_io(path, e));
        }
        Ok(())
    }

    /// `unlink path`: removes a file, with unlink(2)'s rules: a final symlink is removed
    /// itself, never followed; a directory is `EISDIR`.
    pub fn remove_file(&self, path: &Path) -> Result<(), PathError> {
        let w = self.walk(path, Missing::Fail, false)?;
        let Some(leaf) = &w.leaf else {
            return Err(errno_err(path, Errno::ISDIR));
        };
        rustix::fs::unlinkat(w.parent(&self.fd), leaf.name.as_os_str(), AtFlags::empty())
            .map_err(|e| errno_err(path, e))
    }

    /// `rmdir path`: removes an empty directory, with rmdir(2)'s rules: trailing slashes are
    /// ignored, a final symlink is not followed (it is [`PathError::NotADirectory`], also as
    /// `link/`), a final `.` is `EINVAL` and a final `..` `ENOTEMPTY`; the root is `EBUSY`.
    pub fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
        let fail = |e: Errno| errno_err(path, e);
        check_host_path(path)?;
        let bytes = path.as_os_str().as_bytes();
        let trimmed = match bytes.iter().rposition(|&b| b != b'/') {
            Some(end) => &bytes[..=end],
            None => return Err(fail(Errno::BUSY)),
        };
        match pieces(trimmed).next_back() {
            Some(b".") => return Err(fail(Errno::INVAL)),
            Some(b"..") => return Err(fail(Errno::NOTEMPTY)),
            _ => {}
        }
        let mut w = self
            .walk(Path::new(OsStr::from_bytes(trimmed)), Missing::Fail, false)
            .map_err(|e| e.with_path(path))?;
        if w.leaf.is_some() {
            return Err(fail(Errno::NOTDIR));
        }
        let Some((name, _)) = w.dirs.pop() else {
            return Err(fail(Errno::BUSY));
        };
        rustix::fs::unlinkat(w.parent(&self.fd), name.as_os_str(), AtFlags::REMOVEDIR).map_err(fail)
    }

    /// Where the program `name` is: the first of `dirs` (host paths, in order) that holds an
    /// executable regular file `name`, symlinks followed inside the root. The answer is Go's
    /// `AbsHostPath` form, `<dir>/<name>` normalised (`/mount` for dir `/`), not the resolved
    /// target, so that the program sees the name it was called by. A missing program is
    /// [`CommandError::NotFound`] listing `dirs`; a name with a `/` or a NUL, or an empty one,
    /// is [`CommandError::InvalidInput`].
    pub fn look_path(&self, name: &OsStr, dirs: &[&str]) -> Result<PathBuf, CommandError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.contains(&b'/') || bytes.contains(&0) || bytes == b".." {
            return Err(CommandError::InvalidInput {
                program: name.to_owned(),
                reason: "a program to look up must be a bare file name".into(),
            });
        }
        for dir in dirs {
            let candidate = normalize(&Path::new(dir).join(name));
            match self.is_executable_file(&candidate) {
                Ok(true) => return Ok(candidate),
                Ok(false) => {}
                // Could not look (EMFILE, EIO, …): that is no "not found".
                Err(e) => {
                    let source = match e.raw_os_error() {
                        Some(errno) => std::io::Error::from_raw_os_error(errno),
                        None => e.into(),
                    };
                    return Err(CommandError::Io {
                        program: name.to_owned(),
                        source,
                    });
                }
            }
        }
        Err(CommandError::NotFound {
            program: name.to_owned(),
            searched: dirs.iter().map(PathBuf::from).collect(),
        })
    }

    /// `Ok(false)` when nothing usable is there (missing, not a directory on the way, a loop,
    /// no permission, not an executable regular file); an error when the check itself failed.
    fn is_executable_file(&self, path: &Path) -> Result<bool, PathError> {
        match self.stat(path, true) {
            Ok(st) => Ok(st.kind == FileKind::File && st.mode & 0o111 != 0),
            Err(
                PathError::NotFound { .. }
                | PathError::NotADirectory { .. }
                | PathError::Loop { .. }
                | PathError::PermissionDenied { .. }
                | PathError::NameTooLong { .. },
            ) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The walk behind every operation. Errors name `path`.
    fn walk(&self, path: &Path, mode: Missing, follow_final: bool) -> Result<Walk, PathError> {
        self.walk_noting_clamps(path, mode, follow_final, &mut false)
    }

    /// [`walk`](Self::walk), setting `clamped` when a `..` stays at the root.
    fn walk_noting_clamps(
        &self,
        path: &Path,
        mode: Missing,
        follow_final: bool,
        clamped: &mut bool,
    ) -> Result<Walk, PathError> {
        check_host_path(path)?;
        let fail = |e: Errno| errno_err(path, e);
        let mut w = Walk {
            dirs: Vec::new(),
            leaf: None,
            missing: Vec::new(),
        };
        let mut todo: VecDeque<Vec<u8>> = pieces(path.as_os_str().as_bytes())
            .map(<[u8]>::to_vec)
            .collect();
        let mut hops = 0usize;
        let mut created = 0usize;
        let mut last_mount = None;
        let mut nosymfollow = None;
        while let Some(piece) = todo.pop_front() {
            // Anything after a component, even an empty piece, uses it as a directory.
            let more = !todo.is_empty();
            match piece.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if w.missing.pop().is_none() && w.dirs.pop().is_none() {
                        *clamped = true;
                    }
                    continue;
                }
                _ => {}
            }
            if piece.len() > NAME_MAX {
                return Err(fail(Errno::NAMETOOLONG));
            }
            let name = OsString::from_vec(piece);
            if !w.missing.is_empty() {
                w.missing.push(name);
                continue;
            }
            let opened = rustix::fs::openat(
                w.parent(&self.fd),
                name.as_os_str(),
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            );
            let fd = match (opened, mode) {
                (Ok(fd), _) => fd,
                (Err(Errno::NOENT), Missing::Keep) => {
                    w.missing.push(name);
                    continue;
                }
                (Err(Errno::NOENT), Missing::Last) if !more => {
                    w.missing.push(name);
                    continue;
                }
                // GNU canonicalize (CAN_ALL_BUT_LAST): missing is fine when nothing but
                // slashes follows; the empty pieces left are skipped.
                (Err(Errno::NOENT), Missing::AllButLast) if todo.iter().all(|p| p.is_empty()) => {
                    w.missing.push(name);
                    todo.clear();
                    continue;
                }
                (Err(Errno::NOENT), Missing::Create) => {
                    created += 1;
                    if created > PATH_MAX {
                        return Err(fail(Errno::AGAIN));
                    }
                    let mode_0755 = Mode::from_raw_mode(0o755);
                    match rustix::fs::mkdirat(w.parent(&self.fd), name.as_os_str(), mode_0755) {
                        // Made here or meanwhile: open it as any other name, next time round.
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(fail(e)),
                    }
                    todo.push_front(name.into_vec());
                    continue;
                }
                (Err(e), _) => return Err(fail(e)),
            };
            let seen = kind_and_mount(fd.as_fd()).map_err(fail)?;
            if let (Some(guard), Some(id)) = (&self.guard, seen.mount) {
                if last_mount != Some(id) {
                    guard.entering(id, path)?;
                    last_mount = Some(id);
                }
            }
            match seen.kind {
                FileType::Directory => w.dirs.push((name, fd)),
                FileType::Symlink if more || follow_final => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(fail(Errno::LOOP));
                    }
                    let trailing = todo.iter().all(|p| p.is_empty());
                    kernel_refuses_link(w.parent(&self.fd), &fd, &seen, trailing, &mut nosymfollow)
                        .map_err(fail)?;
                    let target = rustix::fs::readlinkat(&fd, "", Vec::new())
                        .map_err(fail)?
                        .into_bytes();
                    if target.is_empty() {
                        return Err(fail(Errno::NOENT));
                    }
                    if target.first() == Some(&b'/') {
                        w.dirs.clear();
                    }
                    for p in pieces(&target).rev() {
                        todo.push_front(p.to_vec());
                    }
                }
                _ if more => {
                    if mode != Missing::Keep {
                        return Err(fail(Errno::NOTDIR));
                    }
                    w.missing.push(name);
                }
                _ => w.leaf = Some(Leaf { name, fd }),
            }
        }
        if w.host_path().as_os_str().len() >= PATH_MAX {
            return Err(fail(Errno::NAMETOOLONG));
        }
        Ok(w)
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

/// Held by tests that ask `openat2(RESOLVE_IN_ROOT)` as an oracle, and by the test that keeps
/// renaming directories: any rename on the system makes a racing `..` there fail with EAGAIN.
#[cfg(test)]
fn kernel_oracle_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
