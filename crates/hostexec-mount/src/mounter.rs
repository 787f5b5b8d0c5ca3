//! The [`Mount`] trait and [`HostMounter`], its implementation on any hostexec backend.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use hostexec_api::path::check_host_path;
use hostexec_api::{
    stderr_excerpt, CommandError, Executor, FileKind, FileStat, HostCommand, HostFs, MountRequest,
    NativeMount, NativeMountError, Output, PathError, PathResolver, Propagation, Resolve,
    TargetLookup, UnmountRequest,
};

use crate::error::MountError;
use crate::mountinfo::{self, MountInfo, OptionalField};
use crate::options::{is_opt, scrub, MountOptions, UnmountOptions};

/// The host's mounts: list, check, mount, unmount — on top of a host view.
///
/// A `Mount` is a [`HostFs`] (and so a [`PathResolver`](hostexec_api::PathResolver)) that can
/// also mount: the host's files are reached through the supertrait (`create_dir_all`,
/// `create_file`, `stat`, …), the mounts through the five essential methods here. Everything
/// that can be derived from those lives in [`MountExt`](crate::MountExt), implemented for
/// every `Mount` (`mount_refs`, `cleanup_mount_point`, `is_likely_not_mount_point`), so an
/// implementation writes only the essentials and the conveniences stay the same everywhere.
///
/// Implemented by [`HostMounter`], and for `&T`, `Box<T>` and `Arc<T>` of any `Mount`; with
/// the `mock` feature, `MockMount` (mockall) lets downstream code mock the mounter itself, as
/// Go users do with `FakeMounter`.
///
/// Paths are host paths: absolute, in the host's view.
///
/// # Contract
///
/// - [`Mount::list`] is the **target host's** table, never the caller's own.
/// - [`Mount::is_mount_point`] is exact (bind mounts included) and follows symlinks in the
///   host's view; a missing path is an error, not `false`.
/// - [`Mount::mount`] and [`Mount::unmount`] are bounded in time ([`MountOptions`] and
///   [`UnmountOptions`] carry the bounds), never pass an argument through a shell, and keep
///   sensitive options out of logs, errors and `Debug`.
#[async_trait]
pub trait Mount: HostFs {
    /// The target host's mount table (its `/proc/PID/mountinfo`), never the caller's own.
    async fn list(&self) -> Result<Vec<MountInfo>, MountError>;

    /// Whether `path` (symlinks followed, as mountpoint(1) does) is the root of a mount.
    /// `/` is. A missing path is an error ([`MountError::is_not_found`]), not `false`.
    async fn is_mount_point(&self, path: &Path) -> Result<bool, MountError>;

    /// Mounts `source` on `target` (in [`HostMounter`]: natively where the host allows it,
    /// else through the host's mount(8)). An empty `fstype` leaves the type to mount(8); an
    /// empty `source` is left out of the argv.
    async fn mount(
        &self,
        source: &OsStr,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
    ) -> Result<(), MountError>;

    /// Unmounts `target` (in [`HostMounter`]: natively where the host allows it, else through
    /// the host's umount(8)), bounded in time.
    async fn unmount(&self, target: &Path, options: &UnmountOptions) -> Result<(), MountError>;

    /// Makes the mount at `path` recursively shared, bind-mounting `path` onto itself first if
    /// it is not a mount point.
    async fn make_rshared(&self, path: &Path) -> Result<(), MountError>;
}

/// Where mount(8) mounts before the result is moved onto the target: a private tmpfs of mode
/// 0700 that hostexec mounts here in the host's mount namespace, one directory per call.
pub const STAGING_DIR: &str = "/run/hostexec/staging";

/// Makes the per-call staging directory names unique within this process.
static STAGING_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The description of the systemd scope a mount runs in (mount-utils: "Kubernetes transient
/// mount for").
pub const SYSTEMD_DESCRIPTION: &str = "hostexec transient mount for";

/// [`Mount`] on any hostexec backend: commands through `E`, file operations and the mount table
/// through `F`'s in-process host view.
///
/// With `hostexec-nsenter`, one `NsEnter` (a cheap handle) is both:
/// `HostMounter::new(ns)`. With `hostexec-fake`, the executor and the host view are two
/// values: `HostMounter::with_parts(FakeExecutor::new(), FakeHost::new()?)`.
///
/// Its [`HostFs`] methods are `F`'s.
#[derive(Debug, Clone)]
pub struct HostMounter<E, F = E> {
    exec: E,
    fs: F,
    consistent_reads: usize,
}

impl<H: Executor + HostFs + NativeMount + Clone> HostMounter<H, H> {
    /// A mounter on `host`, one value that is both the executor and the host view (such as
    /// `hostexec_nsenter::NsEnter`, or a reference or `Arc` to one).
    pub fn new(host: H) -> Self {
        HostMounter::with_parts(host.clone(), host)
    }
}

impl<E: Executor, F: HostFs + NativeMount> HostMounter<E, F> {
    /// A mounter that runs commands with `exec` and looks at the host through `fs`.
    pub fn with_parts(exec: E, fs: F) -> Self {
        HostMounter {
            exec,
            fs,
            consistent_reads: 0,
        }
    }

    /// Reads the mount table until two reads agree, re-reading at most `attempts` times
    /// (for hosts older than 5.8, where reads could tear under churn: kubernetes/kubernetes#103754).
    /// The default is a single read.
    pub fn with_consistent_reads(mut self, attempts: usize) -> Self {
        self.consistent_reads = attempts;
        self
    }

    /// The executor, for utilities built on top (see [`crate::format`]).
    pub fn executor(&self) -> &E {
        &self.exec
    }

    /// The host view.
    pub fn host_fs(&self) -> &F {
        &self.fs
    }

    /// The argv mount(8) gets for one step, as mount-utils' `MakeMountArgsSensitive`
    /// in mount-utils: flags, `-t fstype` if any, `-o options` if any (sensitive ones
    /// masked when shown), then `--`, source if any, target always.
    ///
    /// The `--` ends mount(8)'s options, so a source such as `-oremount,ro` is a source and
    /// not a remount (util-linux and busybox mount both parse with getopt). mount(8) does not
    /// pass a `--` on to a `/sbin/mount.TYPE` helper, though: it runs `mount.TYPE SOURCE
    /// TARGET -o …`, and helpers that parse with GNU getopt's permutation (ntfs-3g, cifs)
    /// would read a source starting with `-` as an option again. Such a source therefore also
    /// gets `--internal-only`: no helper runs, and the kernel receives the source as it is.
    /// Real helper sources (`/dev/…`, `server:/export`, `//server/share`) never start with
    /// `-`; the sources that do are labels of virtual filesystems such as tmpfs, which need no
    /// helper.
    fn mount_command(
        &self,
        program: OsString,
        source: &OsStr,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
    ) -> HostCommand {
        let mut cmd = HostCommand::new(program).args(options.get_flags());
        if source.as_bytes().first() == Some(&b'-') {
            cmd = cmd.arg("--internal-only");
        }
        if !fstype.is_empty() {
            cmd = cmd.arg("-t").arg(fstype);
        }
        if let Some((real, shown)) = options.joined() {
            cmd = cmd.arg("-o");
            cmd = if options.sensitive_count() > 0 {
                cmd.arg_masked(real, shown)
            } else {
                cmd.arg(real)
            };
        }
        cmd = cmd.arg("--");
        if !source.is_empty() {
            cmd = cmd.arg(source);
        }
        cmd.arg(target)
    }

    async fn mount_step(
        &self,
        source: &OsStr,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
        systemd: bool,
    ) -> Result<(), MountError> {
        let cmd = if systemd {
            // systemd-run execs the command itself: give it the host's mount by path.
            let mount = self
                .exec
                .look_path(OsStr::new("mount"))
                .await
                .map_err(|e| MountError::command("mount", target, e))?;
            let inner = self.mount_command(mount.into(), source, target, fstype, options);
            let mut desc = OsString::from(format!("--description={SYSTEMD_DESCRIPTION} "));
            desc.push(target.as_os_str());
            let mut cmd = HostCommand::new("systemd-run")
                .arg(desc)
                .args(["--scope", "--"])
                .arg(inner.get_program());
            // Copy the arguments with their masking.
            let shown = inner.display_args();
            for (real, shown) in inner.get_args().zip(shown) {
                cmd = if real.to_string_lossy() == shown {
                    cmd.arg(real)
                } else {
                    cmd.arg_masked(real, shown)
                };
            }
            cmd
        } else {
            self.mount_command("mount".into(), source, target, fstype, options)
        };
        let cmd = cmd.env("LC_ALL", "C").timeout(options.get_timeout());
        tracing::debug!(command = %cmd, "mounting");
        let out = self
            .exec
            .run(cmd)
            .await
            .map_err(|e| MountError::command("mount", target, e))?;
        if out.success() {
            return Ok(());
        }
        let secrets = options.secrets();
        // Scrubbed whole, before the excerpt is cut from its end; a capture cut at its limit
        // may end inside a secret, which `truncated` makes scrub look for.
        let mut msg = scrub(&out.stderr, &secrets, out.stderr_truncated);
        if msg.is_empty() {
            msg = scrub(&out.stdout, &secrets, out.stdout_truncated);
        }
        let err = MountError::MountFailed(Box::new(crate::error::MountFailure {
            mount_source: source.to_os_string(),
            target: target.to_path_buf(),
            fstype: fstype.to_owned(),
            options: options.shown(),
            status: out.status,
            stderr: stderr_excerpt(&msg),
        }));
        tracing::debug!(error = %err, "mount failed");
        Err(err)
    }

    /// The restrictions of the mount holding `source` that a `bind,remount` must repeat, or
    /// they are lost (mount-utils reads them with statfs(2)). Fixed order
    /// (Go's came from map iteration, so its argv changed from run to run); one the caller chose in the same group wins.
    async fn source_restrictions(
        &self,
        source: &OsStr,
        options: &MountOptions,
    ) -> Result<Vec<&'static str>, MountError> {
        let src = self
            .fs
            .resolve(Path::new(source), Resolve::MustExist)
            .await?;
        let table = self.list().await?;
        let Some(holder) = mountinfo::mount_holding(&table, &src) else {
            return Ok(Vec::new());
        };
        const GROUPS: &[(&str, &[&str])] = &[
            ("ro", &["ro", "rw"]),
            ("nodev", &["nodev", "dev"]),
            ("noexec", &["noexec", "exec"]),
            ("nosuid", &["nosuid", "suid"]),
            ("noatime", &["noatime", "relatime", "strictatime", "atime"]),
            ("relatime", &["noatime", "relatime", "strictatime", "atime"]),
            ("nodiratime", &["nodiratime", "diratime"]),
        ];
        let chosen = |names: &[&str]| {
            options
                .get_options()
                .iter()
                .any(|o| names.iter().any(|n| is_opt(o, n)))
        };
        let mut out = Vec::new();
        for (flag, group) in GROUPS {
            let set = if *flag == "ro" {
                holder.is_read_only()
            } else {
                holder.mount_options().contains(flag)
            };
            if set && !chosen(group) {
                out.push(*flag);
            }
        }
        Ok(out)
    }

    async fn umount_once(
        &self,
        target: &Path,
        lazy: bool,
        force: bool,
        timeout: Duration,
    ) -> Result<Output, CommandError> {
        let mut cmd = HostCommand::new("umount");
        if force {
            cmd = cmd.arg("-f");
        }
        if lazy {
            cmd = cmd.arg("-l");
        }
        // `--`: whatever the target is, umount(8) takes it for a target, never an option.
        let cmd = cmd
            .arg("--")
            .arg(target)
            .env("LC_ALL", "C")
            .timeout(timeout);
        tracing::debug!(command = %cmd, "unmounting");
        self.exec.run(cmd).await
    }

    /// Tries the native route. `Ok(true)`: mounted; `Ok(false)`: unavailable here (logged),
    /// use mount(8).
    async fn mount_natively(
        &self,
        req: &MountRequest,
        timeout: Duration,
    ) -> Result<bool, MountError> {
        tracing::debug!(request = ?req, "mounting natively");
        match tokio::time::timeout(timeout, self.fs.mount_native(req)).await {
            Err(_) => Err(MountError::MountTimedOut {
                target: req.target().to_path_buf(),
                timeout,
            }),
            Ok(Ok(route)) => {
                tracing::debug!(target = %req.target().display(), fstype = req.fstype(), %route, "mounted natively");
                Ok(true)
            }
            Ok(Err(e)) if e.is_unsupported() => {
                tracing::debug!(target = %req.target().display(), error = %e, "no native route; using mount(8)");
                Ok(false)
            }
            Ok(Err(e)) => Err(MountError::native("mount", req.shown_options(), e)),
        }
    }

    /// The lookup rule for the mount(8) route, checked before mount(8) runs (mount(8) itself
    /// follows every link): a final symlink is refused unless followed by choice, and below a
    /// trusted base the path must resolve to itself (no symlink on the way).
    async fn check_helper_target(
        &self,
        path: &Path,
        lookup: &TargetLookup,
    ) -> Result<(), MountError> {
        match lookup {
            TargetLookup::FollowFinalSymlink => Ok(()),
            TargetLookup::Beneath(base) => {
                let resolved = self.fs.resolve(path, Resolve::MustExist).await?;
                let lexical = hostexec_api::path::normalize(path);
                let base_resolved = self.fs.resolve(base, Resolve::MustExist).await?;
                let rest = lexical
                    .strip_prefix(hostexec_api::path::normalize(base))
                    .ok();
                if rest.map(|r| base_resolved.join(r)) == Some(resolved) {
                    Ok(())
                } else {
                    Err(MountError::Native {
                        op: "mount",
                        options: String::new(),
                        source: Box::new(NativeMountError::NotBeneath {
                            path: path.to_path_buf(),
                            base: base.clone(),
                            source: std::io::Error::from_raw_os_error(40),
                        }),
                    })
                }
            }
            _ => {
                let st = self.fs.stat(path, false).await?;
                if st.kind != FileKind::Symlink {
                    return Ok(());
                }
                let points_to = self.fs.resolve(path, Resolve::AllowMissing).await?;
                Err(MountError::Native {
                    op: "mount",
                    options: String::new(),
                    source: Box::new(NativeMountError::Symlink {
                        path: path.to_path_buf(),
                        points_to,
                    }),
                })
            }
        }
    }

    /// The umount(8) route on `on` (the target, or the staging directory it was moved to):
    /// bounded, forced after `force_after` if asked; errors name `target`.
    async fn unmount_helper(
        &self,
        target: &Path,
        on: &Path,
        options: &UnmountOptions,
        start: tokio::time::Instant,
    ) -> Result<(), MountError> {
        let overall = options.get_timeout();
        // The native attempt (if any) used part of the bound.
        let left = overall.saturating_sub(start.elapsed());
        let first = options.get_force_after().map_or(left, |f| f.min(left));
        let timed_out = || MountError::UnmountTimedOut {
            target: target.to_path_buf(),
            timeout: overall,
        };
        let mut r = self.umount_once(on, options.is_lazy(), false, first).await;
        if matches!(r, Err(CommandError::TimedOut { .. })) && options.get_force_after().is_some() {
            let left = overall.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(timed_out());
            }
            tracing::warn!(target = %target.display(), "unmount hung; forcing");
            r = self.umount_once(on, options.is_lazy(), true, left).await;
        }
        match r {
            Ok(out) => unmount_result(target, out),
            Err(CommandError::TimedOut { .. }) => Err(timed_out()),
            Err(e) => Err(MountError::command("umount", target, e)),
        }
    }

    /// umount(8) for a mount the backend checked (`checked`, its canonical path) but leaves
    /// to a helper: the mount is first moved by descriptor onto a fresh staging directory
    /// (`UnmountRequest::move_to`: the very mount the check found, whatever the path names by
    /// now), and umount(8) runs on that path, which no unprivileged host user can reach or
    /// swap. If umount(8) fails, the mount is moved back onto the target the same way (a
    /// final symlink there refused). Where the move cannot be made (no staging tmpfs; the kernel refuses to
    /// move a mount whose parent mount is shared, `EINVAL`), umount(8) gets `checked`.
    async fn staged_unmount(
        &self,
        req: &UnmountRequest,
        checked: &Path,
        options: &UnmountOptions,
        start: tokio::time::Instant,
    ) -> Result<(), MountError> {
        let target = req.target();
        let Some(stage) = self.staging_dir().await? else {
            return self.unmount_helper(target, checked, options, start).await;
        };
        if let Err(e) = self.fs.unmount_native(&req.clone().move_to(&stage)).await {
            let _ = self.fs.remove_dir(&stage).await;
            if e.is_unsupported() || e.raw_os_error() == Some(EINVAL) {
                tracing::debug!(target = %target.display(), error = %e, "the mount cannot be moved to a staging directory; umount(8) on the checked path");
                return self.unmount_helper(target, checked, options, start).await;
            }
            return Err(MountError::native("unmount", String::new(), e));
        }
        tracing::debug!(target = %target.display(), stage = %stage.display(), "umount(8) on a staging directory");
        let r = self.unmount_helper(target, &stage, options, start).await;
        if r.is_err() {
            // Back by the same checks, without entering the filesystem (it may hang); the
            // target's final component may not be a symlink.
            let back = UnmountRequest::new(&stage).move_to(target);
            if let Err(e) = self.fs.unmount_native(&back).await {
                tracing::warn!(target = %target.display(), stage = %stage.display(), error = %e, "umount(8) failed and the mount could not be moved back: it is on the staging directory");
            }
        }
        self.remove_stage(&stage).await;
        r
    }

    /// Removes a call's staging directory (empty once its mount moved away or failed); one
    /// left behind (a mount stuck on it) is only logged: it is on the private staging tmpfs.
    async fn remove_stage(&self, stage: &Path) {
        if let Err(e) = self.fs.remove_dir(stage).await {
            tracing::debug!(stage = %stage.display(), error = %e, "staging directory left behind");
        }
    }

    /// A fresh directory for one mount(8) run, on the private staging tmpfs ([`STAGING_DIR`],
    /// mounted natively on first use: mode 0700, so no unprivileged host user can reach what
    /// is mounted below it, and private, so the result can be moved out). `None` when the
    /// backend cannot mount natively: mount(8) then mounts on the target itself.
    async fn staging_dir(&self) -> Result<Option<PathBuf>, MountError> {
        let base = Path::new(STAGING_DIR);
        let mounted = match self.is_mount_point(base).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => {
                self.fs.create_dir_all(base).await?;
                false
            }
            Err(e) => return Err(e),
        };
        if !mounted {
            let mut attrs = hostexec_api::MountAttrs::new();
            attrs.propagation = Some(Propagation::Private);
            attrs.nosuid = Some(true);
            attrs.nodev = Some(true);
            attrs.noexec = Some(true);
            let req = MountRequest::filesystem("tmpfs", base)
                .source("hostexec-staging")
                .option("mode", Some("0700"))
                .option("size", Some("1m"))
                .attrs(attrs);
            match self.fs.mount_native(&req).await {
                Ok(_) => {}
                Err(e) if e.is_unsupported() => return Ok(None),
                Err(e) => return Err(MountError::native("mount", String::new(), e)),
            }
        }
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seq = STAGING_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = base.join(format!("{}-{seq}-{nanos}", std::process::id()));
        self.fs.create_dir_all(&dir).await?;
        Ok(Some(dir))
    }

    /// Runs mount(8) (both steps of a bind) on `on`.
    async fn helper_mount(
        &self,
        source: &OsStr,
        on: &Path,
        fstype: &str,
        options: &MountOptions,
        systemd: bool,
    ) -> Result<(), MountError> {
        if options.is_bind() {
            let keep = self.source_restrictions(source, options).await?;
            let (first, second) = options.bind_steps(&keep);
            self.mount_step(source, on, fstype, &first, systemd).await?;
            return self.mount_step(source, on, fstype, &second, systemd).await;
        }
        self.mount_step(source, on, fstype, options, systemd).await
    }

    /// mount(8) on a staging directory, then the result moved onto the target by descriptor
    /// (`move_mount`, the target looked up by the caller's rule): mount(8) never resolves the
    /// target, so a target swapped for a symlink meanwhile cannot redirect it.
    async fn staged_mount(
        &self,
        stage: &Path,
        source: &OsStr,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
        systemd: bool,
    ) -> Result<(), MountError> {
        let mounted = self
            .helper_mount(source, stage, fstype, options, systemd)
            .await;
        let moved = match mounted {
            Ok(()) => {
                let req =
                    MountRequest::move_mount(stage, target).lookup(options.get_lookup().clone());
                let r = self.fs.mount_native(&req).await;
                if r.is_err() {
                    // Take down what mount(8) made; the move's error is the one reported.
                    let _ = self
                        .fs
                        .unmount_native(&UnmountRequest::new(stage).lazy(true))
                        .await;
                }
                r.map(|_| ())
                    .map_err(|e| MountError::native("mount", options.shown(), e))
            }
            Err(e) => Err(e),
        };
        self.remove_stage(stage).await;
        moved
    }

    /// For a cifs or smb3 mount through mount(8) whose sensitive options hold credentials:
    /// writes them to `STAGE.cred` (mode 0600, created exclusively by the backend, on the
    /// staging tmpfs no unprivileged host user can reach) in mount.cifs(8)'s credentials
    /// format, and returns the options with `credentials=STAGE.cred` in their place, and the
    /// guard that removes the file. `None` for other mounts.
    async fn cifs_credentials(
        &self,
        stage: &Path,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
    ) -> Result<Option<(MountOptions, SecretFile<'_, F>)>, MountError> {
        if !takes_cifs_credentials(fstype, options) {
            return Ok(None);
        }
        let mut path = stage.as_os_str().to_os_string();
        path.push(".cred");
        let path = PathBuf::from(path);
        let (with_file, lines) = match options.with_cifs_credentials_file(&path) {
            Ok(Some(split)) => split,
            Ok(None) => return Ok(None),
            Err(reason) => {
                return Err(MountError::InvalidInput {
                    path: target.to_path_buf(),
                    reason,
                })
            }
        };
        self.fs
            .create_secret_file(&path, &hostexec_api::SecretBytes::new(lines))
            .await?;
        tracing::debug!(file = %path.display(), "cifs credentials in a 0600 file");
        Ok(Some((with_file, SecretFile { fs: &self.fs, path })))
    }

    async fn resolve_existing(&self, path: &Path) -> Result<PathBuf, MountError> {
        check_host_path(path)?;
        Ok(self.fs.resolve(path, Resolve::MustExist).await?)
    }
}

/// A secret file of the backend's ([`NativeMount::create_secret_file`]), removed when this
/// is dropped: after the mount, on an error, on a timeout, and when the mount's future is
/// dropped while its helper runs ([`NativeMount::remove_secret_file`] is synchronous).
struct SecretFile<'a, F: NativeMount> {
    fs: &'a F,
    path: PathBuf,
}

impl<F: NativeMount> Drop for SecretFile<'_, F> {
    fn drop(&mut self) {
        if let Err(e) = self.fs.remove_secret_file(&self.path) {
            tracing::warn!(file = %self.path.display(), error = %e, "a credentials file was left behind");
        }
    }
}

/// `EINVAL`: among others, what `move_mount(2)` answers for a mount whose parent is shared.
const EINVAL: i32 = 22;

/// Filesystems mounted through mount(8) and its `/sbin/mount.TYPE` helper (network and FUSE
/// filesystems: the helper resolves names, talks to servers, starts daemons).
fn is_helper_fs(fstype: &str) -> bool {
    matches!(
        fstype,
        "nfs"
            | "nfs4"
            | "cifs"
            | "smb3"
            | "smbfs"
            | "ceph"
            | "glusterfs"
            | "fuse"
            | "fuseblk"
            | "sshfs"
            | "davfs"
            | "lustre"
    ) || fstype.starts_with("fuse.")
}

/// True for a mount(8) run that makes a new mount (staged, then moved onto the target), false
/// for one that changes the mount at the target (`remount`, `bind,remount`, `--make-*`,
/// `--move`), which acts on the target itself in one run.
/// A cifs or smb3 mount (not a bind) with sensitive options, which may be credentials
/// ([`MountOptions::with_cifs_credentials_file`] tells).
fn takes_cifs_credentials(fstype: &str, options: &MountOptions) -> bool {
    matches!(fstype, "cifs" | "smb3") && !options.is_bind() && options.sensitive_count() > 0
}

fn makes_new_mount(source: &OsStr, options: &MountOptions) -> bool {
    !source.is_empty()
        && !options.has("remount")
        && !options.get_flags().iter().any(|f| {
            let f = f.as_bytes();
            f.starts_with(b"--make-") || f == b"--move" || f == b"-M"
        })
}

fn check_target(target: &Path) -> Result<(), MountError> {
    check_host_path(target)?;
    Ok(())
}

fn unmount_result(target: &Path, out: Output) -> Result<(), MountError> {
    if out.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr);
    // util-linux 2.38 (LC_ALL=C): "umount: X: not mounted." rc 32; a missing path:
    // "umount: X: no mount point specified." rc 32.
    if text.contains("not mounted") {
        return Err(MountError::NotMounted {
            target: target.to_path_buf(),
        });
    }
    if text.contains("no mount point specified") || text.contains("No such file or directory") {
        return Err(PathError::NotFound {
            path: target.to_path_buf(),
        }
        .into());
    }
    Err(MountError::UnmountFailed {
        target: target.to_path_buf(),
        status: out.status,
        stderr: stderr_excerpt(&out.stderr),
    })
}

fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

#[async_trait]
impl<E: Executor, F: HostFs + NativeMount> Mount for HostMounter<E, F> {
    async fn list(&self) -> Result<Vec<MountInfo>, MountError> {
        if self.consistent_reads == 0 {
            // In pieces, parsed while the backend reads the next.
            let mut all = Vec::new();
            crate::read_mount_table(&self.fs, |piece| all.append(piece)).await?;
            return Ok(all);
        }
        // Whole reads, compared.
        let bytes = crate::consistent_read(self.consistent_reads, || self.fs.read_mountinfo())
            .await
            .map_err(|e| match e {
                crate::ConsistentReadError::Read(e) => MountError::Path(e),
                crate::ConsistentReadError::Inconsistent { attempts } => {
                    MountError::InconsistentTable { attempts }
                }
            })?;
        Ok(mountinfo::parse_mountinfo(&bytes)?)
    }

    async fn is_mount_point(&self, path: &Path) -> Result<bool, MountError> {
        check_host_path(path)?;
        // 1. The kernel says (statx STATX_ATTR_MOUNT_ROOT, 5.8+): exact, bind mounts included,
        //    symlinks followed in the host's view as mountpoint(1) does, one backend call.
        //    A missing path fails here with NotFound.
        let st = self.fs.stat(path, true).await?;
        if let Some(root) = st.mount_root {
            return Ok(root);
        }
        let resolved = self.resolve_existing(path).await?;
        if resolved == Path::new("/") {
            return Ok(true);
        }
        // 2. Mount IDs differ from the parent's (systemd's fallback).
        if let Some(id) = st.mount_id {
            if let Some(parent_id) = self.fs.stat(parent_of(&resolved), true).await?.mount_id {
                return Ok(id != parent_id);
            }
        }
        // 3. The table, by decoded path.
        let table = self.list().await?;
        Ok(table
            .iter()
            .any(|m| mountinfo::mount_point_matches(m.mount_point(), &resolved)))
    }

    async fn mount(
        &self,
        source: &OsStr,
        target: &Path,
        fstype: &str,
        options: &MountOptions,
    ) -> Result<(), MountError> {
        check_target(target)?;
        if source.as_bytes().contains(&0) || fstype.as_bytes().contains(&0) {
            return Err(MountError::InvalidInput {
                path: target.to_path_buf(),
                reason: "the source or the filesystem type contains a NUL byte",
            });
        }
        if options.contains_nul() {
            return Err(MountError::InvalidInput {
                path: target.to_path_buf(),
                reason: "a mount option contains a NUL byte",
            });
        }
        if options.is_bind() || !is_helper_fs(fstype) {
            if let Some(req) = options.native_request(source, target, fstype) {
                // A host with a `/sbin/mount.TYPE` (or `/usr/sbin/…`) helper for the type:
                // mount(8) would run it, so the mount goes through mount(8). The backend
                // looks in the step that opens the target (`HelperRequired`, logged).
                let req = if options.is_bind() {
                    req
                } else {
                    req.unless_helper(fstype)
                };
                if self.mount_natively(&req, options.get_timeout()).await? {
                    return Ok(());
                }
            }
        }
        self.check_helper_target(target, options.get_lookup())
            .await?;
        let new_mount = makes_new_mount(source, options);
        if new_mount && (options.is_bind() || options.has("rbind")) {
            self.check_helper_target(Path::new(source), options.get_lookup())
                .await?;
        }
        let systemd = options.allows_systemd() && self.exec.supports_systemd().await;
        if !new_mount {
            // A cifs remount with credentials: the file goes next to a staging directory
            // made for the call (the remount itself runs on the target), as for a new mount.
            if takes_cifs_credentials(fstype, options) {
                if let Some(stage) = self.staging_dir().await? {
                    let remounted = async {
                        let creds = self
                            .cifs_credentials(&stage, target, fstype, options)
                            .await?;
                        let options = creds.as_ref().map_or(options, |(o, _)| o);
                        self.mount_step(source, target, fstype, options, systemd)
                            .await
                    }
                    .await;
                    self.remove_stage(&stage).await;
                    return remounted;
                }
            }
            return self
                .mount_step(source, target, fstype, options, systemd)
                .await;
        }
        if let Some(stage) = self.staging_dir().await? {
            tracing::debug!(target = %target.display(), stage = %stage.display(), "mount(8) on a staging directory");
            // cifs credentials: in a 0600 file next to the staging directory, not the argv;
            // the guard removes it on every way out, a dropped future included.
            let creds = self
                .cifs_credentials(&stage, target, fstype, options)
                .await?;
            let options = creds.as_ref().map_or(options, |(o, _)| o);
            return self
                .staged_mount(&stage, source, target, fstype, options, systemd)
                .await;
        }
        self.helper_mount(source, target, fstype, options, systemd)
            .await
    }

    async fn unmount(&self, target: &Path, options: &UnmountOptions) -> Result<(), MountError> {
        check_target(target)?;
        let overall = options.get_timeout();
        let start = tokio::time::Instant::now();
        if !options.is_helper_only() {
            let req = UnmountRequest::new(target)
                .lazy(options.is_lazy())
                .lookup(options.get_lookup().clone());
            match tokio::time::timeout(overall, self.fs.unmount_native(&req)).await {
                Err(_) => {
                    return Err(MountError::UnmountTimedOut {
                        target: target.to_path_buf(),
                        timeout: overall,
                    })
                }
                Ok(Ok(route)) => {
                    tracing::debug!(target = %target.display(), %route, "unmounted natively");
                    return Ok(());
                }
                Ok(Err(NativeMountError::HelperRequired {
                    target: checked,
                    reason,
                })) => {
                    // Checked by the backend without entering the filesystem (which may hang):
                    // umount(8) gets a staging path the mount was moved to by descriptor.
                    tracing::debug!(target = %target.display(), %reason, "unmounting through umount(8)");
                    return self.staged_unmount(&req, &checked, options, start).await;
                }
                Ok(Err(e)) if e.is_unsupported() => {
                    tracing::debug!(target = %target.display(), error = %e, "no native route; using umount(8)");
                }
                Ok(Err(e)) => return Err(MountError::native("unmount", String::new(), e)),
            }
        }
        self.check_helper_target(target, options.get_lookup())
            .await?;
        self.unmount_helper(target, target, options, start).await
    }

    async fn make_rshared(&self, path: &Path) -> Result<(), MountError> {
        let resolved = self.resolve_existing(path).await?;
        // Natively: bind the directory onto itself if it is no mount point, then
        // mount_setattr(MS_SHARED, AT_RECURSIVE) on it.
        let mut shared = hostexec_api::MountAttrs::new();
        shared.propagation = Some(Propagation::Shared);
        shared.recursive = true;
        let timeout = crate::DEFAULT_MOUNT_TIMEOUT;
        let native = if self.is_mount_point(&resolved).await? {
            true
        } else {
            self.mount_natively(&MountRequest::bind(&resolved, &resolved, false), timeout)
                .await?
        };
        if native
            && self
                .mount_natively(&MountRequest::remount(&resolved).attrs(shared), timeout)
                .await?
        {
            return Ok(());
        }
        // The mount on top at `resolved`, read alone where the backend can (statmount).
        let holder = crate::MountExt::mount_of(self, &resolved).await?;
        let top = Some(&holder).filter(|m| m.mount_point() == resolved);
        if let Some(m) = top {
            if m.optional_fields()
                .iter()
                .any(|f| matches!(f, OptionalField::Shared(_)))
            {
                return Ok(());
            }
        } else {
            self.mount_step(
                resolved.as_os_str(),
                &resolved,
                "",
                &MountOptions::new().flag("--bind").without_systemd(),
                false,
            )
            .await?;
        }
        self.mount_step(
            OsStr::new(""),
            &resolved,
            "",
            &MountOptions::new().flag("--make-rshared").without_systemd(),
            false,
        )
        .await
    }
}

#[async_trait]
impl<E: Executor, F: HostFs> PathResolver for HostMounter<E, F> {
    async fn resolve(&self, path: &Path, mode: Resolve) -> Result<PathBuf, PathError> {
        self.fs.resolve(path, mode).await
    }
    fn local_path(&self, host_path: &Path) -> Result<PathBuf, PathError> {
        self.fs.local_path(host_path)
    }
}

#[async_trait]
impl<E: Executor, F: HostFs> HostFs for HostMounter<E, F> {
    async fn stat(&self, path: &Path, follow: bool) -> Result<FileStat, PathError> {
        self.fs.stat(path, follow).await
    }
    async fn read_file(&self, path: &Path, limit: usize) -> Result<Vec<u8>, PathError> {
        self.fs.read_file(path, limit).await
    }
    async fn create_dir_all(&self, path: &Path) -> Result<(), PathError> {
        self.fs.create_dir_all(path).await
    }
    async fn create_file(&self, path: &Path) -> Result<(), PathError> {
        self.fs.create_file(path).await
    }
    async fn remove_dir(&self, path: &Path) -> Result<(), PathError> {
        self.fs.remove_dir(path).await
    }
    async fn read_mountinfo(&self) -> Result<Vec<u8>, PathError> {
        self.fs.read_mountinfo().await
    }
    async fn read_mount_entry(&self, path: &Path) -> Result<Vec<u8>, PathError> {
        self.fs.read_mount_entry(path).await
    }
}

macro_rules! forward_mount {
    ($($ptr:ty),*) => {$(
        #[async_trait]
        impl<T: Mount + ?Sized> Mount for $ptr {
            async fn list(&self) -> Result<Vec<MountInfo>, MountError> {
                (**self).list().await
            }
            async fn is_mount_point(&self, path: &Path) -> Result<bool, MountError> {
                (**self).is_mount_point(path).await
            }
            async fn mount(
                &self,
                source: &OsStr,
                target: &Path,
                fstype: &str,
                options: &MountOptions,
            ) -> Result<(), MountError> {
                (**self).mount(source, target, fstype, options).await
            }
            async fn unmount(
                &self,
                target: &Path,
                options: &UnmountOptions,
            ) -> Result<(), MountError> {
                (**self).unmount(target, options).await
            }
            async fn make_rshared(&self, path: &Path) -> Result<(), MountError> {
                (**self).make_rshared(path).await
            }
        }
    )*};
}

forward_mount!(&T, Box<T>, std::sync::Arc<T>);
