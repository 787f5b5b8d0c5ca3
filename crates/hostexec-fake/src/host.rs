//! [`FakeHost`]: a host made of a temp directory and a table of fake mounts.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use hostexec_api::path::{check_host_path, host_to_local};
use hostexec_api::{
    Atime, CommandError, ExitStatus, FileStat, HostCommand, HostFs, MountAttrs, MountKind,
    MountRequest, MountRoute, NativeMount, NativeMountError, Output, PathError, PathResolver,
    Propagation, Resolve, SecretBytes, UnmountRequest, HOST_BIN_DIRS,
};
use hostexec_mount::mountinfo::OptionalField;
use hostexec_mount::{MountInfo, MountInfoFields};
use hostexec_rootfs::RootFs;
use rustix::fs::{Mode, OFlags};

/// A fake host: a temp directory that stands for the host's `/`, and a table of fake mounts.
///
/// Paths given to it are *host* paths (`/var/lib/x`). They are resolved with the same
/// algorithm as the real backend's ([`hostexec_rootfs::RootFs`], one `O_PATH` root fd), so an
/// absolute symlink target is read against the fake root and `..` stops at it: nothing a test
/// builds, and nothing the code under test resolves, reaches the real `/`. Go's
/// `NewFakeNsenter` instead linked `<rootfs>/bin` to the real `/bin` (and `usr/bin`,
/// `usr/sbin` to the real ones).
///
/// ```
/// use std::path::Path;
/// use hostexec_api::{HostFs, PathResolver, Resolve};
/// use hostexec_fake::FakeHost;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let host = FakeHost::new()?;
/// host.dir("/var/lib/kubelet")?
///     .symlink("/var/lib/kubelet", "/kubelet")?
///     .file("/etc/hostname", b"node-1\n")?;
/// assert_eq!(
///     host.resolve(Path::new("/kubelet/../../../etc/hostname"), Resolve::MustExist).await?,
///     Path::new("/etc/hostname"),
/// );
/// assert_eq!(host.local_path(Path::new("/etc"))?, host.root().join("etc"));
///
/// host.add_mount("tmpfs", "/var/lib/kubelet", "tmpfs", "rw,size=1m")?;
/// assert_eq!(host.stat(Path::new("/kubelet"), true).await?.mount_root, Some(true));
/// assert_eq!(host.stat(Path::new("/etc"), true).await?.mount_root, Some(false));
/// # Ok(())
/// # }
/// ```
///
/// # Mounts
///
/// Nothing is really mounted: [`FakeHost::add_mount`] and [`FakeHost::remove_mount`] keep a
/// table that [`HostFs::read_mountinfo`] renders in the kernel's exact mountinfo format (octal
/// escapes `\040 \011 \012 \134` included) and that [`HostFs::stat`] consults: `mount_root` is
/// `Some(true)` for a mount point, `Some(false)` elsewhere, `mount_id` and `dev` are those of
/// the mount the file is on. `/` is always a mount. Unlike Go's `FakeMounter` (mount-utils,
/// which removed every entry stacked on the path, always succeeded, and rebuilt the remaining
/// entries without their options), unmounting removes only the topmost mount of a stack, fails
/// when nothing is mounted, and keeps the other entries' options. [`FakeHost::mount_handler`] lets a
/// [`FakeExecutor`](crate::FakeExecutor) answer `mount` and `umount` commands from the table.
#[derive(Clone)]
pub struct FakeHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    // Declared before `dir` so that the fd is closed before the directory is removed.
    rootfs: RootFs,
    dir: tempfile::TempDir,
    mounts: Mutex<MountTable>,
}

struct MountTable {
    entries: Vec<FakeMount>,
    next_id: u64,
    next_minor: u32,
    next_group: u64,
}

/// One entry of a [`FakeHost`]'s mount table, as its mountinfo line shows it.
///
/// `#[non_exhaustive]`: the fake builds these (mountinfo may gain fields it renders); read the
/// fields, do not build one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FakeMount {
    /// Mount ID (mountinfo field 1).
    pub id: u64,
    /// Parent mount ID (field 2).
    pub parent_id: u64,
    /// Device of the mounted filesystem (field 3).
    pub dev: (u32, u32),
    /// The directory of the filesystem that is mounted (field 4): `/`, or the bound
    /// subdirectory of a bind mount.
    pub root: PathBuf,
    /// The mount point, a canonical host path (field 5).
    pub target: PathBuf,
    /// Per-mount options (field 6): `rw` or `ro` and the generic flags.
    pub mount_options: String,
    /// Filesystem type (after the `-`).
    pub fstype: String,
    /// Mount source (after the type; may be empty).
    pub source: OsString,
    /// Superblock options (last field).
    pub super_options: String,
    /// Propagation (the optional fields): `shared:N`, `master:N`, `unbindable`; empty for a
    /// private mount.
    pub optional_fields: Vec<OptionalField>,
}

/// Mount options that are per-mount flags in mountinfo's sixth field; the rest are the
/// filesystem's (superblock) options.
const VFS_FLAGS: &[&str] = &[
    "nosuid",
    "nodev",
    "noexec",
    "noatime",
    "nodiratime",
    "relatime",
    "strictatime",
    "nosymfollow",
];

/// Options of the mount(8) command line that are not recorded as options at all.
const COMMAND_ONLY: &[&str] = &["bind", "rbind", "remount", "defaults", "rw", "ro", ""];

impl FakeMount {
    /// The entry as hostexec-mount's [`MountInfo`], the type real tables parse into.
    pub fn to_mount_info(&self) -> MountInfo {
        let (fs_type, fs_subtype) = match self.fstype.split_once('.') {
            Some((t, sub)) => (t.to_string(), Some(OsString::from(sub))),
            None => (self.fstype.clone(), None),
        };
        let mut f = MountInfoFields::default();
        f.id = self.id;
        f.parent_id = self.parent_id;
        (f.major, f.minor) = self.dev;
        f.root = self.root.clone();
        f.mount_point = self.target.clone();
        f.mount_options = self.mount_options.split(',').map(str::to_string).collect();
        f.optional_fields = self.optional_fields.clone();
        f.fs_type = fs_type;
        f.fs_subtype = fs_subtype;
        f.source = self.source.clone();
        f.super_options = self.super_options.split(',').map(OsString::from).collect();
        f.into()
    }

    /// The mountinfo line, with its newline, as the kernel prints it (octal escapes
    /// included): [`MountInfo::write_line`].
    pub fn mountinfo_line(&self) -> Vec<u8> {
        let mut l = Vec::new();
        self.to_mount_info().write_line(&mut l);
        l
    }
}

/// Splits mount(8) options into mountinfo's per-mount and superblock fields.
fn split_options(options: &str) -> (String, String) {
    let opts: Vec<&str> = options.split(',').collect();
    let rw = if opts.contains(&"ro") { "ro" } else { "rw" };
    let mut vfs = vec![rw];
    vfs.extend(VFS_FLAGS.iter().copied().filter(|f| opts.contains(f)));
    if !opts
        .iter()
        .any(|o| ["noatime", "relatime", "strictatime"].contains(o))
    {
        // The kernel's default atime mode.
        vfs.push("relatime");
    }
    let mut sup = vec![rw];
    sup.extend(
        opts.iter()
            .copied()
            .filter(|o| !VFS_FLAGS.contains(o) && !COMMAND_ONLY.contains(o)),
    );
    (vfs.join(","), sup.join(","))
}

/// The per-mount flags in the order the kernel shows them (after `ro`/`rw`).
const VFS_ORDER: &[&str] = &[
    "nosuid",
    "nodev",
    "noexec",
    "noatime",
    "nodiratime",
    "relatime",
    "nosymfollow",
];

/// `mount_options` (mountinfo's sixth field) with `a` applied, as `mount_setattr(2)` or a
/// `bind,remount` changes them: set, cleared or left per flag, the atime mode as one.
fn apply_attrs(mount_options: &str, a: &MountAttrs) -> String {
    let mut flags: Vec<String> = mount_options
        .split(',')
        .filter(|o| !o.is_empty() && *o != "ro" && *o != "rw")
        .map(str::to_owned)
        .collect();
    let mut ro = mount_options.split(',').any(|o| o == "ro");
    if let Some(r) = a.read_only {
        ro = r;
    }
    let mut toggle = |name: &str, v: Option<bool>| match v {
        Some(true) if !flags.iter().any(|f| f == name) => flags.push(name.to_owned()),
        Some(false) => flags.retain(|f| f != name),
        _ => {}
    };
    toggle("nosuid", a.nosuid);
    toggle("nodev", a.nodev);
    toggle("noexec", a.noexec);
    toggle("nodiratime", a.nodiratime);
    toggle("nosymfollow", a.nosymfollow);
    if let Some(at) = a.atime {
        flags.retain(|f| f != "noatime" && f != "relatime" && f != "strictatime");
        match at {
            Atime::Never => flags.push("noatime".into()),
            Atime::Strict => {}
            _ => flags.push("relatime".into()),
        }
    }
    flags.sort_by_key(|f| {
        VFS_ORDER
            .iter()
            .position(|o| o == f)
            .unwrap_or(VFS_ORDER.len())
    });
    let mut out = vec![if ro { "ro" } else { "rw" }.to_owned()];
    out.extend(flags);
    out.join(",")
}

/// `super_options` with filesystem options applied (`ro`/`rw` replace the first field, a
/// `key=value` replaces the same key, anything else is added).
fn apply_super(super_options: &str, fs_options: &[String]) -> String {
    let mut parts: Vec<String> = super_options.split(',').map(str::to_owned).collect();
    for o in fs_options {
        let key = o.split('=').next().unwrap_or_default();
        match key {
            "ro" | "rw" => {
                if let Some(first) = parts.first_mut() {
                    *first = key.to_owned();
                }
            }
            _ => match parts.iter_mut().find(|p| p.split('=').next() == Some(key)) {
                Some(p) => *p = o.clone(),
                None => parts.push(o.clone()),
            },
        }
    }
    parts.join(",")
}

fn lock(m: &Mutex<MountTable>) -> MutexGuard<'_, MountTable> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MountTable {
    /// The mount `path` (canonical) is on: the last-added entry whose target contains it.
    /// Changes one mount's propagation as the kernel's `change_mnt_propagation` does:
    /// shared joins a new peer group (a slave stays a slave of its master too); slave makes a
    /// shared mount with peers a slave of its group (without peers: private, keeping an
    /// earlier master); private and unbindable drop both.
    fn set_propagation(&mut self, id: u64, p: Propagation) {
        let group_of = |m: &FakeMount| {
            m.optional_fields.iter().find_map(|f| match f {
                OptionalField::Shared(g) => Some(*g),
                _ => None,
            })
        };
        let master_of = |m: &FakeMount| {
            m.optional_fields.iter().find_map(|f| match f {
                OptionalField::Master(g) => Some(*g),
                _ => None,
            })
        };
        let Some(m) = self.entries.iter().find(|m| m.id == id) else {
            return;
        };
        let (group, master) = (group_of(m), master_of(m));
        let fields = match p {
            Propagation::Shared => {
                let g = group.unwrap_or_else(|| {
                    let g = self.next_group;
                    self.next_group += 1;
                    g
                });
                let mut f = vec![OptionalField::Shared(g)];
                f.extend(master.map(OptionalField::Master));
                f
            }
            Propagation::Slave => {
                let peers = group.is_some_and(|g| {
                    self.entries
                        .iter()
                        .any(|o| o.id != id && group_of(o) == Some(g))
                });
                match (peers, group, master) {
                    (true, Some(g), _) => vec![OptionalField::Master(g)],
                    (_, _, Some(m)) => vec![OptionalField::Master(m)],
                    _ => Vec::new(),
                }
            }
            Propagation::Unbindable => vec![OptionalField::Unbindable],
            _ => Vec::new(),
        };
        if let Some(m) = self.entries.iter_mut().find(|m| m.id == id) {
            m.optional_fields = fields;
        }
    }

    fn containing(&self, path: &Path) -> Option<&FakeMount> {
        // max_by_key keeps the last of equals: the topmost of a stack.
        self.entries
            .iter()
            .filter(|m| path.starts_with(&m.target))
            .max_by_key(|m| m.target.components().count())
    }
}

/// The last component of `path` as a name to create, and its parent.
fn split_last(path: &Path) -> Result<(PathBuf, &OsStr), PathError> {
    check_host_path(path)?;
    let bytes = path.as_os_str().as_bytes();
    let cut = bytes.iter().rposition(|&b| b == b'/').unwrap_or(0);
    let name = &bytes[cut + 1..];
    if name.is_empty() || name == b"." || name == b".." {
        return Err(PathError::Io {
            path: path.into(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the path must end in a file name",
            ),
        });
    }
    let parent = if cut == 0 { &b"/"[..] } else { &bytes[..cut] };
    Ok((
        PathBuf::from(OsStr::from_bytes(parent)),
        OsStr::from_bytes(name),
    ))
}

impl FakeHost {
    /// A fake host with an empty root directory (a new temp directory, removed when the last
    /// clone is dropped) and a mount table holding only `/`.
    pub fn new() -> std::io::Result<FakeHost> {
        let dir = tempfile::Builder::new()
            .prefix("hostexec-fake-")
            .tempdir()?;
        let rootfs = RootFs::open(dir.path())?;
        let st = rustix::fs::fstat(rootfs.as_fd())?;
        let root_mount = FakeMount {
            id: 21,
            parent_id: 1,
            dev: (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev)),
            root: PathBuf::from("/"),
            target: PathBuf::from("/"),
            mount_options: "rw,relatime".into(),
            fstype: "ext4".into(),
            source: "/dev/root".into(),
            super_options: "rw".into(),
            optional_fields: Vec::new(),
        };
        Ok(FakeHost {
            inner: Arc::new(HostInner {
                rootfs,
                dir,
                mounts: Mutex::new(MountTable {
                    entries: vec![root_mount],
                    next_id: 22,
                    next_minor: 100,
                    next_group: 1,
                }),
            }),
        })
    }

    /// The local path of the fake host's `/` (the temp directory).
    pub fn root(&self) -> &Path {
        self.inner.dir.path()
    }

    /// The resolver and file operations behind this host.
    pub fn rootfs(&self) -> &RootFs {
        &self.inner.rootfs
    }

    /// Creates a directory and its parents (`mkdir -p`), symlinks followed inside the root.
    pub fn dir(&self, path: impl AsRef<Path>) -> Result<&Self, PathError> {
        self.inner.rootfs.create_dir_all(path.as_ref())?;
        Ok(self)
    }

    /// Opens the parent of `path` (created if missing) and returns its fd and the final name.
    fn parent_fd<'p>(
        &self,
        path: &'p Path,
    ) -> Result<(std::os::fd::OwnedFd, &'p OsStr), PathError> {
        let (parent, name) = split_last(path)?;
        self.inner
            .rootfs
            .create_dir_all(&parent)
            .map_err(|e| e.with_path(path))?;
        let (_, fd) = self
            .inner
            .rootfs
            .open_resolved(&parent, true)
            .map_err(|e| e.with_path(path))?;
        Ok((fd, name))
    }

    /// Writes a regular file (parents created), replacing the content of an existing one.
    /// A final symlink is not followed ([`PathError::Loop`]).
    pub fn file(
        &self,
        path: impl AsRef<Path>,
        content: impl AsRef<[u8]>,
    ) -> Result<&Self, PathError> {
        self.write(path.as_ref(), content.as_ref(), 0o644)?;
        Ok(self)
    }

    fn write(&self, path: &Path, content: &[u8], mode: u32) -> Result<(), PathError> {
        let (dir, name) = self.parent_fd(path)?;
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| PathError::from_io(path, e.into()))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| PathError::from_io(path, e.into()))?;
        std::fs::File::from(fd)
            .write_all(content)
            .map_err(|e| PathError::from_io(path, e))
    }

    /// Creates the symlink `link` (parents created) pointing at `target`, stored as given. An
    /// absolute `target` is read against the fake root when resolved through this host.
    pub fn symlink(
        &self,
        target: impl AsRef<Path>,
        link: impl AsRef<Path>,
    ) -> Result<&Self, PathError> {
        let link = link.as_ref();
        let (dir, name) = self.parent_fd(link)?;
        rustix::fs::symlinkat(target.as_ref(), &dir, name)
            .map_err(|e| PathError::from_io(link, e.into()))?;
        Ok(self)
    }

    /// Creates an executable stub `/usr/bin/<name>` (a shell script that exits 0) and returns
    /// its host path, so that [`FakeHost::look_path`] finds it.
    pub fn bin(&self, name: &str) -> Result<PathBuf, PathError> {
        let path = Path::new("/usr/bin").join(name);
        self.bin_at(&path)?;
        Ok(path)
    }

    /// Creates an executable stub at the host path `path`.
    pub fn bin_at(&self, path: impl AsRef<Path>) -> Result<&Self, PathError> {
        self.write(
            path.as_ref(),
            b"#!/bin/sh\n# hostexec-fake stub\nexit 0\n",
            0o755,
        )?;
        Ok(self)
    }

    /// Where the program `name` is among [`HOST_BIN_DIRS`] of the fake host (Go's
    /// `AbsHostPath`, which Go's fake never had).
    pub fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        self.inner.rootfs.look_path(name, HOST_BIN_DIRS)
    }

    /// Records a mount of `source` (of type `fstype`, with mount(8) `options`, comma-separated)
    /// on `target`, which must exist; returns the new mount's ID. With `bind` or `rbind` among
    /// the options, `source` is a host path whose mount the new entry shows, as the kernel does
    /// (same device, type and source; root = the bound directory).
    pub fn add_mount(
        &self,
        source: impl AsRef<OsStr>,
        target: impl AsRef<Path>,
        fstype: &str,
        options: &str,
    ) -> Result<u64, PathError> {
        let target = self
            .inner
            .rootfs
            .resolve(target.as_ref(), Resolve::MustExist)?;
        let source = source.as_ref();
        let is_bind = options.split(',').any(|o| o == "bind" || o == "rbind");
        let bound = if is_bind {
            Some(
                self.inner
                    .rootfs
                    .resolve(Path::new(source), Resolve::MustExist)?,
            )
        } else {
            None
        };
        let mut t = lock(&self.inner.mounts);
        let parent_id = t.containing(&target).map_or(1, |m| m.id);
        let (mount_options, super_options) = split_options(options);
        let id = t.next_id;
        let entry = match bound {
            Some(src) => {
                let Some(from) = t.containing(&src).cloned() else {
                    return Err(PathError::from_errno(src, 22));
                };
                let rel = src.strip_prefix(&from.target).unwrap_or(Path::new(""));
                let root = if rel.as_os_str().is_empty() {
                    from.root.clone()
                } else {
                    from.root.join(rel)
                };
                FakeMount {
                    id,
                    parent_id,
                    dev: from.dev,
                    root,
                    target,
                    mount_options,
                    fstype: from.fstype,
                    source: from.source,
                    super_options: from.super_options,
                    // A bind of a shared mount is its peer; of a slave, a slave of the same
                    // master (mount_namespaces(7)); `unbindable` is not copied.
                    optional_fields: from
                        .optional_fields
                        .iter()
                        .filter(|f| !matches!(f, OptionalField::Unbindable))
                        .cloned()
                        .collect(),
                }
            }
            None => {
                let minor = t.next_minor;
                t.next_minor += 1;
                FakeMount {
                    id,
                    parent_id,
                    dev: (0, minor),
                    root: PathBuf::from("/"),
                    target,
                    mount_options,
                    fstype: fstype.to_owned(),
                    source: source.to_os_string(),
                    super_options,
                    optional_fields: Vec::new(),
                }
            }
        };
        t.next_id += 1;
        t.entries.push(entry);
        Ok(id)
    }

    /// Removes the topmost mount on `target` (as `umount` does: one of a stack at a time).
    /// Nothing mounted there is `EINVAL` (umount's "not mounted"); `/` is `EBUSY`.
    pub fn remove_mount(&self, target: impl AsRef<Path>) -> Result<FakeMount, PathError> {
        let asked = target.as_ref();
        let target = self.inner.rootfs.resolve(asked, Resolve::MustExist)?;
        if target == Path::new("/") {
            return Err(PathError::from_errno(asked, 16));
        }
        let mut t = lock(&self.inner.mounts);
        let Some(i) = t.entries.iter().rposition(|m| m.target == target) else {
            return Err(PathError::from_errno(asked, 22));
        };
        Ok(t.entries.remove(i))
    }

    /// Changes the topmost mount on `target` as a remount does: per-mount flags from `attrs`
    /// (`mount_setattr(2)`, `bind,remount`), and superblock options from `fs_options`
    /// (`ro`/`rw`, `key=value`) on it. Nothing mounted there is `EINVAL`.
    pub fn remount(
        &self,
        target: impl AsRef<Path>,
        attrs: &MountAttrs,
        fs_options: &[String],
    ) -> Result<(), PathError> {
        let asked = target.as_ref();
        let target = self.inner.rootfs.resolve(asked, Resolve::MustExist)?;
        let mut t = lock(&self.inner.mounts);
        let Some(i) = t.entries.iter().rposition(|m| m.target == target) else {
            return Err(PathError::from_errno(asked, 22));
        };
        let m = &mut t.entries[i];
        m.mount_options = apply_attrs(&m.mount_options, attrs);
        m.super_options = apply_super(&m.super_options, fs_options);
        if let Some(p) = attrs.propagation {
            // The mount, and with `recursive` every mount below it.
            let ids: Vec<u64> = t
                .entries
                .iter()
                .enumerate()
                .filter(|(j, m)| {
                    *j == i
                        || attrs.recursive
                            && *j > i
                            && m.target != target
                            && m.target.starts_with(&target)
                })
                .map(|(_, m)| m.id)
                .collect();
            for id in ids {
                t.set_propagation(id, p);
            }
        }
        Ok(())
    }

    /// A copy of the mount table, in mount order.
    pub fn mounts(&self) -> Vec<FakeMount> {
        lock(&self.inner.mounts).entries.clone()
    }

    /// True if `path` resolves to a mount point of the table.
    pub fn is_mount_point(&self, path: &Path) -> Result<bool, PathError> {
        let p = self.inner.rootfs.resolve(path, Resolve::MustExist)?;
        Ok(lock(&self.inner.mounts)
            .entries
            .iter()
            .any(|m| m.target == p))
    }

    /// The mount table in `/proc/PID/mountinfo` format.
    pub fn mountinfo(&self) -> Vec<u8> {
        lock(&self.inner.mounts)
            .entries
            .iter()
            .flat_map(FakeMount::mountinfo_line)
            .collect()
    }

    /// An answer for [`Expectation::answer_with`](crate::Expectation::answer_with) that plays
    /// `mount` and `umount` against this host's table:
    ///
    /// - `mount [-t TYPE] [-o OPTS]... [--bind|-B|--rbind|-R] [-r|-w] [-i|-n|-c|-s|-v] [--]
    ///   SOURCE TARGET` records a mount; `-o remount` (alone or with others) only checks that
    ///   TARGET is mounted;
    /// - `umount [-l|-f|-i|-n|-c|-d|-r|-q|-v|-t T|-O O]... [--] TARGET` removes the topmost
    ///   mount on TARGET;
    /// - `systemd-run [OPTIONS] -- mount|umount ...` plays the wrapped command (the form mount
    ///   utilities use when [`Executor::supports_systemd`](hostexec_api::Executor) says yes).
    ///
    /// Both command lines are split as util-linux splits them (getopt_long with GNU
    /// permutation): options may come before, between or after the positionals, short ones
    /// cluster (`-nv`, `-oro`), long ones take `--name=ARG`, and `--` ends the options, so
    /// that `mount --internal-only -t tmpfs -- -oremount,ro /mnt/x` (the argv hostexec-mount's
    /// `HostMounter` builds for a source starting with `-`) mounts the source `-oremount,ro`.
    /// An unknown option is util-linux's usage error (exit 1).
    ///
    /// An argument added with [`HostCommand::arg_masked`] is recorded by its shown text
    /// (`password=<masked>`), so a secret never reaches the table, mountinfo, or a log of it.
    ///
    /// Failures answer as util-linux does: exit 32 with `mount: TARGET: mount point does not
    /// exist.` or `umount: TARGET: not mounted.` on stderr. Any other program, or a command
    /// line it does not understand, is exit 1 with a usage message.
    pub fn mount_handler(
        &self,
    ) -> impl Fn(&HostCommand) -> Result<Output, CommandError> + Send + Sync + 'static {
        let host = self.clone();
        move |cmd: &HostCommand| Ok(host.play_mount(cmd))
    }

    fn play_mount(&self, cmd: &HostCommand) -> Output {
        // Each argument with the text that may be shown for it: a masked argument (a password
        // in `-o`) is recorded in the table by its shown text, so that it never reaches
        // mountinfo, and from there a log.
        let args: Vec<(OsString, String)> = cmd
            .get_args()
            .map(OsStr::to_os_string)
            .zip(cmd.display_args())
            .collect();
        self.play(cmd.get_program(), &args)
    }

    fn play(&self, program: &OsStr, all: &[(OsString, String)]) -> Output {
        let base = Path::new(program)
            .file_name()
            .map(OsStr::as_bytes)
            .unwrap_or_default();
        let fail = |code: i32, msg: String| {
            Output::new(program, ExitStatus::Code(code)).with_stderr(msg.into_bytes())
        };
        let shown_args = || {
            all.iter()
                .map(|(_, s)| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        if base == b"systemd-run" {
            // `systemd-run [options] -- PROGRAM ARGS...`: play what runs in the scope.
            return match all.iter().position(|(a, _)| a == "--") {
                Some(i) if i + 1 < all.len() => self.play(&all[i + 1].0, &all[i + 2..]),
                _ => fail(1, format!("systemd-run: bad usage: {}\n", shown_args())),
            };
        }
        match base {
            b"mount" => {
                let parsed = match getopt("mount", MOUNT_OPTS, all) {
                    Ok(p) => p,
                    Err(msg) => return fail(1, msg),
                };
                let mut fstype = String::from("none");
                let mut opts: Vec<String> = Vec::new();
                for (name, value) in parsed.options {
                    match (name, value) {
                        ("types", Some(t)) => fstype = t,
                        ("options", Some(o)) => opts.push(o),
                        ("bind", _) => opts.push("bind".into()),
                        ("rbind", _) => opts.push("rbind".into()),
                        ("read-only", _) => opts.push("ro".into()),
                        ("rw" | "read-write", _) => opts.push("rw".into()),
                        _ => {}
                    }
                }
                let positional = parsed.positional;
                let options = opts.join(",");
                let (source, target) = match positional.as_slice() {
                    [s, t] => (s.as_os_str(), Path::new(t)),
                    [t] if options.split(',').any(|o| o == "remount") => {
                        (OsStr::new(""), Path::new(t))
                    }
                    _ => return fail(1, format!("mount: bad usage: {}\n", shown_args())),
                };
                let shown_target = target.display().to_string();
                if options.split(',').any(|o| o == "remount") {
                    // mount(8) splits the options: per-mount flags change the mount; with
                    // `bind` that is all, without it the rest (and ro/rw) go to the superblock.
                    let mut attrs = MountAttrs::new();
                    let mut fs_opts = Vec::new();
                    let bind = options.split(',').any(|o| o == "bind");
                    for o in options.split(',') {
                        if matches!(o, "remount" | "bind" | "defaults" | "") {
                            continue;
                        }
                        if attrs.apply_option(o) {
                            if !bind && (o == "ro" || o == "rw") {
                                fs_opts.push(o.to_owned());
                            }
                        } else if !bind {
                            fs_opts.push(o.to_owned());
                        }
                    }
                    return match self.remount(target, &attrs, &fs_opts) {
                        Ok(()) => Output::new(program, ExitStatus::Code(0)),
                        _ => fail(
                            32,
                            format!(
                                "mount: {shown_target}: mount point not mounted or bad option.\n"
                            ),
                        ),
                    };
                }
                if self
                    .inner
                    .rootfs
                    .resolve(target, Resolve::MustExist)
                    .is_err()
                {
                    return fail(
                        32,
                        format!("mount: {shown_target}: mount point does not exist.\n"),
                    );
                }
                let bind = options.split(',').any(|o| o == "bind" || o == "rbind");
                if bind
                    && self
                        .inner
                        .rootfs
                        .resolve(Path::new(source), Resolve::MustExist)
                        .is_err()
                {
                    return fail(
                        32,
                        format!(
                            "mount: {shown_target}: special device {} does not exist.\n",
                            Path::new(source).display()
                        ),
                    );
                }
                match self.add_mount(source, target, &fstype, &options) {
                    Ok(_) => Output::new(program, ExitStatus::Code(0)),
                    Err(e) if e.is_not_found() => fail(
                        32,
                        format!("mount: {shown_target}: mount point does not exist.\n"),
                    ),
                    Err(e) => fail(32, format!("mount: {shown_target}: {e}.\n")),
                }
            }
            b"umount" => {
                let parsed = match getopt("umount", UMOUNT_OPTS, all) {
                    Ok(p) => p,
                    Err(msg) => return fail(1, msg),
                };
                let [target] = parsed.positional.as_slice() else {
                    return fail(1, format!("umount: bad usage: {}\n", shown_args()));
                };
                let target = Path::new(target);
                let shown = target.display();
                match self.remove_mount(target) {
                    Ok(_) => Output::new(program, ExitStatus::Code(0)),
                    Err(e) if e.is_not_found() => {
                        fail(32, format!("umount: {shown}: no mount point specified.\n"))
                    }
                    Err(e) if e.raw_os_error() == Some(16) => {
                        fail(32, format!("umount: {shown}: target is busy.\n"))
                    }
                    Err(e) if e.raw_os_error() == Some(22) => {
                        fail(32, format!("umount: {shown}: not mounted.\n"))
                    }
                    Err(e) => fail(32, format!("umount: {shown}: {e}.\n")),
                }
            }
            _ => fail(
                1,
                format!(
                    "hostexec-fake mount handler: {} is neither mount nor umount\n",
                    program.to_string_lossy()
                ),
            ),
        }
    }
}

/// One option of a util-linux command line: its short letter, its long name, and whether it
/// takes an argument.
type OptSpec = (Option<u8>, &'static str, bool);

/// The options of util-linux mount(8) that the fake plays. `-i`/`--internal-only` (no
/// `/sbin/mount.TYPE` helper) changes nothing here: the fake has no helpers.
const MOUNT_OPTS: &[OptSpec] = &[
    (Some(b't'), "types", true),
    (Some(b'o'), "options", true),
    (Some(b'B'), "bind", false),
    (Some(b'R'), "rbind", false),
    (Some(b'r'), "read-only", false),
    (Some(b'w'), "rw", false),
    (None, "read-write", false),
    (Some(b'c'), "no-canonicalize", false),
    (Some(b'i'), "internal-only", false),
    (Some(b'n'), "no-mtab", false),
    (Some(b's'), "sloppy", false),
    (Some(b'v'), "verbose", false),
];

/// The options of util-linux umount(8) that the fake accepts (none changes what it does:
/// the table has no lazy or forced state).
const UMOUNT_OPTS: &[OptSpec] = &[
    (Some(b'f'), "force", false),
    (Some(b'l'), "lazy", false),
    (Some(b'c'), "no-canonicalize", false),
    (Some(b'i'), "internal-only", false),
    (Some(b'n'), "no-mtab", false),
    (Some(b'd'), "detach-loop", false),
    (Some(b'r'), "read-only", false),
    (Some(b'q'), "quiet", false),
    (Some(b'v'), "verbose", false),
    (Some(b't'), "types", true),
    (Some(b'O'), "test-opts", true),
];

/// A command line split as util-linux's `getopt_long` splits it.
#[derive(Default)]
struct Parsed {
    /// (long name, argument as shown) in order.
    options: Vec<(&'static str, Option<String>)>,
    /// The positional arguments; a masked one by its shown text.
    positional: Vec<OsString>,
}

/// Splits `all` (each argument with its shown text) as util-linux's `getopt_long` does with
/// GNU permutation: options may come anywhere until `--`, which ends them, and everything
/// after it is positional, even when it starts with `-`; a lone `-` is positional; short
/// options cluster (`-nv`) and take their argument attached (`-oro`) or as the next word;
/// long ones as `--name=ARG` or the next word. An option argument or positional that was
/// masked is kept by its shown text. The error is util-linux's message.
fn getopt(prog: &str, spec: &[OptSpec], all: &[(OsString, String)]) -> Result<Parsed, String> {
    let usage =
        |what: String| format!("{prog}: {what}\nTry '{prog} --help' for more information.\n");
    let masked = |(real, shown): &(OsString, String)| real.to_string_lossy() != shown.as_str();
    // The text an argument's bytes from `from` on stand for.
    let text_from = |arg: &(OsString, String), from: usize| -> String {
        if masked(arg) {
            arg.1.get(from..).unwrap_or(arg.1.as_str()).to_owned()
        } else {
            String::from_utf8_lossy(&arg.0.as_bytes()[from..]).into_owned()
        }
    };
    let mut out = Parsed::default();
    let mut it = all.iter();
    while let Some(arg) = it.next() {
        let a = arg.0.as_bytes();
        if a == b"--" {
            for rest in it.by_ref() {
                out.positional.push(positional(rest, masked(rest)));
            }
            break;
        }
        if let Some(long) = a.strip_prefix(b"--") {
            let (name, attached) = match long.iter().position(|&c| c == b'=') {
                Some(eq) => (&long[..eq], Some(text_from(arg, 2 + eq + 1))),
                None => (long, None),
            };
            let Some(&(_, name, takes)) = spec.iter().find(|(_, n, _)| n.as_bytes() == name) else {
                return Err(usage(format!(
                    "unrecognized option '{}'",
                    String::from_utf8_lossy(a)
                )));
            };
            let value = match (takes, attached) {
                (true, Some(v)) => Some(v),
                (true, None) => match it.next() {
                    Some(next) => Some(text_from(next, 0)),
                    None => return Err(usage(format!("option '--{name}' requires an argument"))),
                },
                (false, None) => None,
                (false, Some(_)) => {
                    return Err(usage(format!(
                        "option '--{name}' doesn't allow an argument"
                    )))
                }
            };
            out.options.push((name, value));
            continue;
        }
        if a.len() < 2 || a[0] != b'-' {
            out.positional.push(positional(arg, masked(arg)));
            continue;
        }
        // A cluster of short options.
        let mut k = 1;
        while k < a.len() {
            let c = a[k];
            let Some(&(_, name, takes)) = spec.iter().find(|(s, _, _)| *s == Some(c)) else {
                return Err(usage(format!("invalid option -- '{}'", char::from(c))));
            };
            k += 1;
            if !takes {
                out.options.push((name, None));
                continue;
            }
            let value = if k < a.len() {
                text_from(arg, k)
            } else {
                match it.next() {
                    Some(next) => text_from(next, 0),
                    None => {
                        return Err(usage(format!(
                            "option requires an argument -- '{}'",
                            char::from(c)
                        )))
                    }
                }
            };
            out.options.push((name, Some(value)));
            break;
        }
    }
    Ok(out)
}

fn positional((real, shown): &(OsString, String), masked: bool) -> OsString {
    if masked {
        OsString::from(shown)
    } else {
        real.clone()
    }
}

impl fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeHost")
            .field("root", &self.root())
            .field("mounts", &lock(&self.inner.mounts).entries.len())
            .finish()
    }
}

#[async_trait]
impl PathResolver for FakeHost {
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        // A few syscalls on a local temp directory: done inline.
        self.inner.rootfs.resolve(path, mode)
    }

    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
        host_to_local(self.root(), host_path)
    }
}

#[async_trait]
impl HostFs for FakeHost {
    async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
        let (canonical, _) = self.inner.rootfs.open_resolved(path, follow)?;
        let mut st = self.inner.rootfs.stat(path, follow)?;
        let t = lock(&self.inner.mounts);
        st.mount_root = Some(t.entries.iter().any(|m| m.target == canonical));
        if let Some(m) = t.containing(&canonical) {
            st.mount_id = Some(m.id);
            st.dev = m.dev;
        }
        Ok(st)
    }

    async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
        self.inner.rootfs.read_file(path, limit)
    }

    async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
        self.inner.rootfs.create_dir_all(path)
    }

    async fn create_file(&self, path: &Path) -> Result<(), PathError> {
        self.inner.rootfs.create_file(path)
    }

    async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
        let (canonical, _) = self.inner.rootfs.open_resolved(path, false)?;
        if lock(&self.inner.mounts)
            .entries
            .iter()
            .any(|m| m.target == canonical)
        {
            // rmdir(2) of a mount point in the caller's namespace.
            return Err(PathError::from_errno(path, 16));
        }
        self.inner.rootfs.remove_dir(path)
    }

    async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
        Ok(self.mountinfo())
    }
}

/// The table follows what the kernel would do for each request; the lookup rules
/// ([`hostexec_api::TargetLookup`]) are the real backend's ([`RootFs::open_mount_target`]), so
/// a final symlink is refused the same way. No command runs: a [`FakeExecutor`](crate::FakeExecutor)
/// needs no expectation for a native mount.
///
/// - a new filesystem: an entry with the request's type and source (`none` without one),
///   per-mount flags from the attributes, superblock options from `ro` and the filesystem
///   options (sensitive values as `key=<masked>`);
/// - a bind: an entry showing the source's mount (device, type, source, the bound directory
///   as root), with the *source mount's* per-mount flags changed by the attributes, as
///   `open_tree(OPEN_TREE_CLONE)` + `mount_setattr` do; `rbind` copies the mounts below the
///   source too;
/// - a remount: [`FakeHost::remount`];
/// - an unmount: [`FakeHost::remove_mount`] (not a mount root: `NotMounted`);
/// - propagation (`shared`, `slave`, `private`, `unbindable`, recursive or not) as the
///   kernel changes it, shown in the optional fields; a bind of a shared mount is its peer.
///   Not modelled: what propagates *to* peers and slaves (a mount under a shared mount is
///   not copied to its peers).
#[async_trait]
impl NativeMount for FakeHost {
    async fn mount_native(&self, request: &MountRequest) -> Result<MountRoute, NativeMountError> {
        let rootfs = &self.inner.rootfs;
        for p in request.helper_paths() {
            if rootfs.stat(&p, true).is_ok() {
                return Err(NativeMountError::HelperRequired {
                    target: request.target().to_path_buf(),
                    reason: format!("mount(8) would run {}", p.display()),
                });
            }
        }
        let (target, _) = rootfs.open_mount_target(request.target(), request.get_lookup())?;
        let attrs = request.get_attrs();
        let shown: Vec<String> = request.get_options().iter().map(|o| o.shown()).collect();
        match request.kind() {
            MountKind::Filesystem { fstype, source } => {
                let mut options = vec![apply_attrs("rw", attrs)];
                options.extend(shown.iter().cloned());
                let source = source.clone().unwrap_or_else(|| "none".into());
                self.add_mount(&source, &target, fstype, &options.join(","))?;
                // add_mount's split put ro/rw first; the superblock follows `ro`.
                let mut t = lock(&self.inner.mounts);
                if let Some(m) = t.entries.last_mut() {
                    m.mount_options = apply_attrs(&m.mount_options, attrs);
                }
            }
            MountKind::Bind { source, recursive } => {
                let (src, _) = rootfs.open_mount_target(source, request.get_lookup())?;
                self.add_mount(src.as_os_str(), &target, "", "bind")?;
                let mut t = lock(&self.inner.mounts);
                // Everything but the entry just added; max_by_key keeps the last of equals,
                // the topmost of a stack.
                let before = &t.entries[..t.entries.len().saturating_sub(1)];
                let from = before
                    .iter()
                    .filter(|m| src.starts_with(&m.target))
                    .max_by_key(|m| m.target.components().count())
                    .cloned();
                let below: Vec<FakeMount> = if *recursive {
                    before
                        .iter()
                        .filter(|m| m.target != src && m.target.starts_with(&src))
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                };
                let top_id = {
                    let Some(m) = t.entries.last_mut() else {
                        return Err(PathError::from_errno(&target, 22).into());
                    };
                    let base = from
                        .as_ref()
                        .map_or("rw,relatime", |f| f.mount_options.as_str());
                    m.mount_options = apply_attrs(base, attrs);
                    m.id
                };
                for sub in below {
                    let id = t.next_id;
                    t.next_id += 1;
                    let rel = sub.target.strip_prefix(&src).unwrap_or(Path::new(""));
                    let copy = FakeMount {
                        id,
                        parent_id: top_id,
                        target: target.join(rel),
                        mount_options: if attrs.recursive {
                            apply_attrs(&sub.mount_options, attrs)
                        } else {
                            sub.mount_options.clone()
                        },
                        ..sub
                    };
                    t.entries.push(copy);
                }
            }
            MountKind::Move { source } => {
                let src = rootfs.resolve(source, Resolve::MustExist)?;
                let mut t = lock(&self.inner.mounts);
                let Some(i) = t.entries.iter().rposition(|m| m.target == src) else {
                    return Err(NativeMountError::NotMounted {
                        target: source.clone(),
                    });
                };
                let parent_id = t.entries[..i]
                    .iter()
                    .filter(|m| target.starts_with(&m.target))
                    .max_by_key(|m| m.target.components().count())
                    .map_or(1, |m| m.id);
                let moved_id = t.entries[i].id;
                t.entries[i].parent_id = parent_id;
                // The moved mount and those mounted on it later (its submounts).
                for m in t.entries.iter_mut().skip(i) {
                    if m.id == moved_id || m.target.starts_with(&src) && m.target != src {
                        let rel = m
                            .target
                            .strip_prefix(&src)
                            .unwrap_or(Path::new(""))
                            .to_path_buf();
                        m.target = if rel.as_os_str().is_empty() {
                            target.clone()
                        } else {
                            target.join(rel)
                        };
                    }
                }
            }
            MountKind::Remount => {
                self.remount(&target, attrs, &shown).map_err(|e| {
                    if e.raw_os_error() == Some(22) {
                        NativeMountError::NotMounted {
                            target: request.target().to_path_buf(),
                        }
                    } else {
                        e.into()
                    }
                })?;
            }
            _ => {
                return Err(NativeMountError::Unsupported {
                    route: MountRoute::Fake,
                    reason: "this kind of mount is not modelled".into(),
                    source: None,
                })
            }
        }
        Ok(MountRoute::Fake)
    }

    async fn unmount_native(
        &self,
        request: &UnmountRequest,
    ) -> Result<MountRoute, NativeMountError> {
        let (target, _) = self
            .inner
            .rootfs
            .open_mount_target(request.target(), request.get_lookup())?;
        match self.remove_mount(&target) {
            Ok(_) => Ok(MountRoute::Fake),
            Err(e) if e.raw_os_error() == Some(22) => Err(NativeMountError::NotMounted {
                target: request.target().to_path_buf(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// A real file of mode 0600 in the fake's root, made as the real backend makes it.
    async fn create_secret_file(
        &self,
        path: &Path,
        contents: &SecretBytes,
    ) -> Result<(), PathError> {
        self.inner
            .rootfs
            .create_secret_file(path, contents.expose())
    }

    fn remove_secret_file(&self, path: &Path) -> Result<(), PathError> {
        self.inner.rootfs.remove_file(path)
    }
}
