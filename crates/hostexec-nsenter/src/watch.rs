//! Mounts that stopped answering: marked when a call into one overran its deadline, refused
//! at once while marked, cleared when a background probe sees the mount answer again.
//!
//! The walk of [`hostexec_rootfs`] tells [`MountWatch`] (its [`MountGuard`]) the mount id
//! of every mount it enters, from the kernel's caches, before anything in that mount can
//! block. The watch records it as the running pool job's progress (so that a job that never
//! returns is known to be stuck *in that mount*) and refuses a marked mount with
//! [`PathError::Unresponsive`]. The mark is keyed by mount id (`STATX_MNT_ID`), so a link or
//! a bind mount leading to the same mount is refused too, and a new mount at the same place
//! is not.
//!
//! A call on the caller's thread (a `stat` or `resolve` answered from the kernel's caches, see
//! `fstypes`) never waits for a file system, so marks do not turn it off; the object's own
//! mount is still refused when marked. A call that overran before the walk told the
//! guard of any mount is *located*: the same path is walked on a thread of its own, and if
//! that walk has not returned after [`LOCATE_WAIT`], the mount it was last seen entering is
//! marked. One locate at a time; the locating thread stays in the kernel with the calls it
//! stands for.
//!
//! One probe thread per marked mount opens the mount point (`O_PATH`, which does not ask the
//! file system) and then waits in a `statx` with `AT_STATX_FORCE_SYNC` that does ask it. When
//! that returns — with an answer or with an error such as `ENOTCONN` from an aborted FUSE
//! connection; `ETIMEDOUT` from a soft NFS mount counts as no answer and is asked again after
//! [`PROBE_PAUSE`] — the mark is cleared. The probe may itself stay blocked as long as the
//! mount is hung: one thread per hung mount, outside the pool.

use std::collections::HashMap;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use hostexec_api::PathError;
use hostexec_rootfs::{MountGuard, RootFs};
use rustix::fs::{AtFlags, StatxFlags};
use rustix::io::Errno;

use crate::fs_pool;

/// How long a probe waits before asking again a mount that answered `ETIMEDOUT`.
pub(crate) const PROBE_PAUSE: Duration = Duration::from_millis(500);
/// How long a locating walk may take before the mount it is in is taken for the hung one.
pub(crate) const LOCATE_WAIT: Duration = Duration::from_millis(100);

/// The marks of one `NsEnter`. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct MountWatch {
    /// How many marks there are: the walk's check costs one atomic load while there are none.
    marked: AtomicUsize,
    /// Mount id → mount point (host path).
    marks: Mutex<HashMap<u64, PathBuf>>,
    /// The target's mount table (`/proc/PID/mountinfo`), to name a marked mount.
    mountinfo: PathBuf,
    /// The host root without this guard, for the probes.
    root: RootFs,
    /// A locating walk is under way.
    locating: std::sync::atomic::AtomicBool,
}

impl MountWatch {
    pub(crate) fn new(root: RootFs, mountinfo: PathBuf) -> MountWatch {
        MountWatch {
            marked: AtomicUsize::new(0),
            marks: Mutex::new(HashMap::new()),
            mountinfo,
            root,
            locating: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, PathBuf>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The mount points of the mounts marked now.
    pub(crate) fn marked(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.lock().values().cloned().collect();
        v.sort();
        v
    }

    /// A call overran its deadline in mount `mnt_id` (0: before entering any mount, e.g.
    /// queued, or in the root's own mount before the first component): marks it and starts
    /// its probe, unless it is marked already or no longer in the table.
    pub(crate) fn overran(self: &Arc<Self>, mnt_id: u64, about: Option<&Path>) {
        if mnt_id == 0 {
            if let Some(path) = about {
                self.locate(path);
            }
            return;
        }
        if self.lock().contains_key(&mnt_id) {
            return;
        }
        let Some(point) = mount_point_of(&self.mountinfo, mnt_id) else {
            return;
        };
        {
            let mut marks = self.lock();
            if marks.contains_key(&mnt_id) {
                return;
            }
            marks.insert(mnt_id, point.clone());
            self.marked.store(marks.len(), Ordering::Release);
        }
        tracing::warn!(mount = %point.display(), mnt_id, "a file call overran its deadline: the mount is marked unresponsive until it answers again");
        let probe_root = self.root.try_clone_unguarded();
        let watch = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("hostexec-probe".into())
            .spawn(move || probe(watch, probe_root.ok(), mnt_id, point));
        if spawned.is_err() {
            // No probe: do not refuse a mount nobody will ever clear.
            self.clear(mnt_id);
        }
    }

    /// Walks `path` on a thread of its own, noting the mounts it enters; marks the last one if
    /// the walk is still under way after [`LOCATE_WAIT`] (see the module docs).
    fn locate(self: &Arc<Self>, path: &Path) {
        if self.locating.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(root) = self.root.try_clone_unguarded() else {
            self.locating.store(false, Ordering::Release);
            return;
        };
        let watch = Arc::clone(self);
        let path = path.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("hostexec-locate".into())
            .spawn(move || {
                let cell = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let seen = Arc::clone(&cell);
                let (done, answered) = std::sync::mpsc::channel();
                let walker = std::thread::Builder::new()
                    .name("hostexec-locate".into())
                    .spawn(move || {
                        let note = NoteMounts(seen);
                        let root = root.with_guard(Arc::new(note));
                        let _ = root.resolve_by_walk(&path, hostexec_api::Resolve::MustExist);
                        let _ = done.send(());
                    });
                if walker.is_ok() && answered.recv_timeout(LOCATE_WAIT).is_err() {
                    let mnt = cell.load(Ordering::Relaxed);
                    if mnt != 0 {
                        watch.overran(mnt, None);
                    }
                }
                watch.locating.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.locating.store(false, Ordering::Release);
        }
    }

    fn clear(&self, mnt_id: u64) {
        let mut marks = self.lock();
        if let Some(point) = marks.remove(&mnt_id) {
            tracing::info!(mount = %point.display(), mnt_id, "the mount answers again");
        }
        self.marked.store(marks.len(), Ordering::Release);
    }
}

/// The guard of a locating walk: notes each mount entered, refuses nothing.
#[derive(Debug)]
struct NoteMounts(Arc<std::sync::atomic::AtomicU64>);

impl MountGuard for NoteMounts {
    fn entering(&self, mnt_id: u64, _: &Path) -> Result<(), PathError> {
        self.0.store(mnt_id, Ordering::Relaxed);
        Ok(())
    }
}

impl MountGuard for MountWatch {
    fn allows_fast_path(&self) -> bool {
        self.marked.load(Ordering::Acquire) == 0
    }

    fn entering(&self, mnt_id: u64, path: &Path) -> Result<(), PathError> {
        fs_pool::note_mount(mnt_id);
        if self.marked.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        match self.lock().get(&mnt_id) {
            Some(mount) => Err(PathError::Unresponsive {
                path: path.to_path_buf(),
                mount: mount.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// The probe thread of one marked mount (see the module docs).
fn probe(watch: Weak<MountWatch>, root: Option<RootFs>, mnt_id: u64, point: PathBuf) {
    let answered = || {
        if let Some(w) = watch.upgrade() {
            w.clear(mnt_id);
        }
    };
    // The mount point itself, not followed: opening it O_PATH does not ask its file system.
    let fd = match root.map(|r| r.open_resolved(&point, false)) {
        Some(Ok((_, fd))) => fd,
        // Gone (unmounted), or the way there failed: nothing left to refuse.
        _ => return answered(),
    };
    let same = rustix::fs::statx(
        &fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::MNT_ID,
    )
    .is_ok_and(|st| st.stx_mnt_id == mnt_id);
    if !same {
        return answered();
    }
    loop {
        let asked = rustix::fs::statx(
            &fd,
            "",
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_FORCE_SYNC,
            StatxFlags::BASIC_STATS,
        );
        match asked {
            Err(Errno::TIMEDOUT) | Err(Errno::INTR) => std::thread::sleep(PROBE_PAUSE),
            _ => return answered(),
        }
        if watch.strong_count() == 0 {
            return;
        }
    }
}

/// The mount point of mount `mnt_id` in the mount table at `mountinfo` (fields split on
/// single spaces; the point's `\ooo` escapes decoded), if it is there.
fn mount_point_of(mountinfo: &Path, mnt_id: u64) -> Option<PathBuf> {
    let table = std::fs::read(mountinfo).ok()?;
    let want = mnt_id.to_string();
    table.split(|&b| b == b'\n').find_map(|line| {
        let mut fields = line.split(|&b| b == b' ');
        if fields.next()? != want.as_bytes() {
            return None;
        }
        let point = fields.nth(3)?;
        Some(PathBuf::from(std::ffi::OsString::from_vec(unescape(point))))
    })
}

/// Decodes mountinfo's `\ooo` escapes.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).filter(|d| {
            field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)) && d[0] <= b'3'
        });
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn mount_points_are_found_by_id_and_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let table = dir.path().join("mountinfo");
        std::fs::write(
            &table,
            "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n\
             67 22 0:55 / /mnt/a\\040b\\134c rw,nosuid - fuse hostexec-hung rw\n\
             671 22 0:56 / /mnt/x rw - tmpfs t rw\n",
        )
        .unwrap();
        assert_eq!(
            mount_point_of(&table, 67).unwrap().as_os_str().as_bytes(),
            b"/mnt/a b\\c"
        );
        assert_eq!(mount_point_of(&table, 671), Some(PathBuf::from("/mnt/x")));
        assert_eq!(mount_point_of(&table, 6), None);
        assert_eq!(unescape(b"a\\011\\8x\\"), b"a\t\\8x\\".to_vec());
    }
}
