//! `posix_spawn(3)` with the file actions std's `Command` does not offer: every descriptor
//! above 2 closed in the child, whatever this process holds without `FD_CLOEXEC`.
//!
//! Why not std: std's `Command` takes the `posix_spawn` path (a `clone(CLONE_VM|CLONE_VFORK)`,
//! whose cost does not grow with the caller's memory) only without a `pre_exec` hook; closing
//! descriptors the caller leaked without `FD_CLOEXEC` needs one, and then std forks, which
//! costs ~40 ms per spawn with 1 GiB resident instead of ~1 ms. glibc ≥ 2.34 has
//! `posix_spawn_file_actions_addclosefrom_np(3)`, which closes them in the child (with
//! `close_range(2)`) and stays on the fast path. Where it is missing (another libc), the
//! fallback lists `/proc/self/fd` just before the spawn and adds one
//! `posix_spawn_file_actions_addclose` per descriptor above 2: still `posix_spawn`, but a
//! descriptor that another thread opens without `FD_CLOEXEC` between the listing and the
//! spawn may reach the child.
//!
//! The child also gets its own process group (`POSIX_SPAWN_SETPGROUP`, pgid 0), an empty
//! signal mask and the default action for every signal (`POSIX_SPAWN_SETSIGMASK`,
//! `POSIX_SPAWN_SETSIGDEF`: a signal the caller ignores stays ignored across `execve`
//! otherwise), and, when asked, a working directory (`posix_spawn_file_actions_addchdir_np`,
//! glibc ≥ 2.29, done in the child after the descriptors are set up).
//!
//! With a session terminal ([`SpawnRequest::session_tty`]) the child leads a new session
//! instead (`POSIX_SPAWN_SETSID`; its process group is then the session's, pgid = pid), and
//! the terminal is opened by a file action without `O_NOCTTY` onto descriptor 0 and duplicated
//! onto 1 and 2. glibc and musl call `setsid` before the file actions, so the open makes the
//! terminal the session's controlling terminal (open(2): "If the file is a terminal device
//! and O_NOCTTY is not set, it may become the process's controlling terminal"; on Linux it
//! does when the session has none). The terminal is never a descriptor of this process.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::ptr;

/// How the child loses the descriptors above 2 it would otherwise inherit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseOthers {
    /// `posix_spawn_file_actions_addclosefrom_np(3)` where the C library has it, else
    /// [`CloseOthers::Listed`].
    #[default]
    Auto,
    /// One close action per descriptor listed in `/proc/self/fd` just before the spawn (the
    /// fallback; also selectable, so that it is tested where the fast path exists).
    Listed,
}

/// What to spawn. Built by the caller; every string is already NUL-free (`CString`).
#[derive(Debug)]
pub struct SpawnRequest<'a> {
    /// The program, an absolute path in the spawning thread's view.
    pub program: &'a CStr,
    /// `argv`, `argv[0]` included.
    pub argv: &'a [CString],
    /// The whole environment, as `KEY=VALUE` strings.
    pub envp: &'a [CString],
    /// The working directory to change to in the child, if any.
    pub cwd: Option<&'a CStr>,
    /// The child's descriptors 0, 1 and 2: `None` inherits this process's.
    pub stdio: [Option<BorrowedFd<'a>>; 3],
    /// How other descriptors are closed.
    pub close_others: CloseOthers,
    /// A terminal to lead a new session on: opened in the child (as the spawning thread's
    /// mount namespace sees the path) as its controlling terminal and its 0, 1 and 2, which
    /// replace `stdio`. `None`: a new process group in the caller's session.
    pub session_tty: Option<&'a CStr>,
}

/// Frees the file actions when dropped.
struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        // SAFETY: posix_spawn_file_actions_init only writes the zeroed structure it is given;
        // the structure is plain data and zero is a valid bit pattern for it.
        let mut fa = FileActions(unsafe { std::mem::zeroed() });
        // SAFETY: `fa.0` is a valid, writable posix_spawn_file_actions_t.
        check(unsafe { libc::posix_spawn_file_actions_init(&mut fa.0) })?;
        Ok(fa)
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here, once.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

/// Frees the attributes when dropped.
struct Attr(libc::posix_spawnattr_t);

impl Attr {
    fn new() -> io::Result<Attr> {
        // SAFETY: as for FileActions::new: plain data, initialised by the call.
        let mut a = Attr(unsafe { std::mem::zeroed() });
        // SAFETY: `a.0` is a valid, writable posix_spawnattr_t.
        check(unsafe { libc::posix_spawnattr_init(&mut a.0) })?;
        Ok(a)
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` and destroyed only here, once.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// posix_spawn functions return the error number instead of setting errno.
fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A NULL-terminated array of pointers into `strings` (which must outlive its use).
fn pointers(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

/// Descriptors above 2 that this process has open now (for [`CloseOthers::Listed`]).
fn open_descriptors() -> Vec<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()))
        .filter(|&fd| fd > 2)
        .collect()
}

/// Spawns `req.program` with `posix_spawn(3)` and returns the child's PID (in the PID
/// namespace of this process; the child is born in the namespaces of the calling thread).
///
/// Errors are those of the spawn, including the child's failed `chdir` or `execve` (glibc
/// reports them to the parent: `ENOENT`, `EACCES`, `ENOEXEC`, …). The calling thread waits
/// until the child has called `execve` (or failed): on a hung mount that wait never ends,
/// which is why callers spawn from threads they can give up on.
pub fn spawn(req: &SpawnRequest<'_>) -> io::Result<u32> {
    // A standard stream given as a descriptor below 3 would be dup2'ed onto itself, which
    // does not clear its FD_CLOEXEC everywhere: give it a number above 2 first.
    let mut moved: Vec<OwnedFd> = Vec::new();
    let mut sources: [Option<RawFd>; 3] = [None; 3];
    for (i, fd) in req.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            let raw = if fd.as_raw_fd() < 3 {
                let d = rustix::io::fcntl_dupfd_cloexec(fd.as_fd(), 3)?;
                let raw = d.as_raw_fd();
                moved.push(d);
                raw
            } else {
                fd.as_raw_fd()
            };
            sources[i] = Some(raw);
        }
    }

    let mut fa = FileActions::new()?;
    if let Some(tty) = req.session_tty {
        // SAFETY: `fa` is initialised; glibc copies the NUL-terminated path. No O_NOCTTY:
        // the open after setsid makes it the controlling terminal; no O_CLOEXEC: it is the
        // child's standard input.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(&mut fa.0, 0, tty.as_ptr(), libc::O_RDWR, 0)
        })?;
        for target in [1, 2] {
            // SAFETY: `fa` is initialised; 0 is the descriptor the open action above makes.
            check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut fa.0, 0, target) })?;
        }
        sources = [None; 3];
        moved.clear();
    }
    for (target, src) in sources.iter().enumerate() {
        if let Some(src) = src {
            // SAFETY: `fa` is initialised; `src` is a descriptor held open (borrowed by the
            // request or in `moved`) until posix_spawn returns; target is 0, 1 or 2.
            check(unsafe {
                libc::posix_spawn_file_actions_adddup2(&mut fa.0, *src, target as libc::c_int)
            })?;
        }
    }
    add_close_others(&mut fa, req.close_others)?;
    if let Some(dir) = req.cwd {
        // SAFETY: `fa` is initialised; glibc copies the NUL-terminated path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut fa.0, dir.as_ptr()) })?;
    }

    let mut attr = Attr::new()?;
    // SAFETY: sigset_t is plain data; sigemptyset/sigfillset initialise it.
    let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both point to writable sigset_t values; the attribute setters copy them.
    unsafe {
        libc::sigemptyset(&mut empty);
        libc::sigfillset(&mut all);
        check(libc::posix_spawnattr_setsigmask(&mut attr.0, &empty))?;
        check(libc::posix_spawnattr_setsigdefault(&mut attr.0, &all))?;
        check(libc::posix_spawnattr_setpgroup(&mut attr.0, 0))?;
        let group = if req.session_tty.is_some() {
            libc::POSIX_SPAWN_SETSID as libc::c_int
        } else {
            libc::POSIX_SPAWN_SETPGROUP as libc::c_int
        };
        check(libc::posix_spawnattr_setflags(
            &mut attr.0,
            (group | libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF) as libc::c_short,
        ))?;
    }

    let argv = pointers(req.argv);
    let envp = pointers(req.envp);
    let mut pid: libc::pid_t = 0;
    // SAFETY: every pointer is valid for the call: `pid` is writable, `program` and the
    // strings behind `argv`/`envp` are NUL-terminated and outlive the call, both arrays end
    // in NULL, and `fa`/`attr` are initialised. glibc's posix_spawn (clone with CLONE_VM |
    // CLONE_VFORK) returns only after the child has exec'ed or failed, so nothing borrowed
    // here is used after it returns.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            req.program.as_ptr(),
            &fa.0,
            &attr.0,
            argv.as_ptr(),
            envp.as_ptr(),
        )
    };
    drop(moved);
    check(rc)?;
    u32::try_from(pid).map_err(|_| io::Error::other(format!("posix_spawn returned pid {pid}")))
}

#[cfg(target_env = "gnu")]
fn add_close_others(fa: &mut FileActions, how: CloseOthers) -> io::Result<()> {
    if how == CloseOthers::Auto {
        // SAFETY: `fa` is initialised; 3 is a valid lower bound.
        match check(unsafe { libc::posix_spawn_file_actions_addclosefrom_np(&mut fa.0, 3) }) {
            Ok(()) => return Ok(()),
            // Not supported by this C library at run time: fall back.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {}
            Err(e) => return Err(e),
        }
    }
    add_listed(fa)
}

#[cfg(not(target_env = "gnu"))]
fn add_close_others(fa: &mut FileActions, _how: CloseOthers) -> io::Result<()> {
    add_listed(fa)
}

fn add_listed(fa: &mut FileActions) -> io::Result<()> {
    for fd in open_descriptors() {
        // SAFETY: `fa` is initialised; closing a descriptor that is gone by then is ignored
        // by the child (EBADF for a valid number is not an error of the spawn).
        check(unsafe { libc::posix_spawn_file_actions_addclose(&mut fa.0, fd) })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// Spawns `sh -c script` with stdout on a pipe and returns what it printed.
    fn run(script: &str, close: CloseOthers, cwd: Option<&CStr>) -> io::Result<String> {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let argv = [c("sh"), c("-c"), c(script)];
        let envp = [c("PATH=/usr/bin:/bin"), c("X=a b")];
        let pid = spawn(&SpawnRequest {
            program: c"/bin/sh",
            argv: &argv,
            envp: &envp,
            cwd,
            stdio: [None, Some(w.as_fd()), None],
            close_others: close,
            session_tty: None,
        })?;
        drop(w);
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out)?;
        let st = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid as i32),
            rustix::process::WaitOptions::empty(),
        )?;
        assert!(st.is_some_and(|(_, s)| s.exit_status() == Some(0)));
        Ok(out)
    }

    #[test]
    fn a_leaked_descriptor_never_reaches_the_child_with_either_method() {
        // A descriptor without FD_CLOEXEC, as a shell or a Go parent may leave one.
        let leaked = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let n = leaked.as_raw_fd();
        for how in [CloseOthers::Auto, CloseOthers::Listed] {
            let out = run(
                &format!("ls /proc/self/fd; [ -e /proc/self/fd/{n} ] && echo LEAK; echo \"$X\""),
                how,
                None,
            )
            .unwrap();
            let fds: Vec<&str> = out.lines().collect();
            assert!(!out.contains("LEAK"), "{how:?}: {out}");
            // 0 1 2, the directory ls opened, and the variable.
            assert_eq!(fds.last(), Some(&"a b"), "{how:?}: {out}");
            assert!(
                fds.iter()
                    .filter(|l| l.parse::<i32>().is_ok_and(|f| f > 3))
                    .count()
                    == 0,
                "{how:?}: {out}"
            );
        }
    }

    #[test]
    fn own_process_group_and_working_directory() {
        let out = run(
            "cut -d' ' -f5 /proc/self/stat; echo $$; pwd",
            CloseOthers::Auto,
            Some(c"/usr"),
        )
        .unwrap();
        let l: Vec<&str> = out.lines().collect();
        // cut's pgid is the shell's pid: the shell leads a group of its own.
        assert_eq!(l[0], l[1], "{out}");
        assert_eq!(l[2], "/usr");
    }

    #[test]
    fn spawn_errors_come_back_as_errno() {
        let argv = [c("x")];
        let e = spawn(&SpawnRequest {
            program: c"/nonexistent/x",
            argv: &argv,
            envp: &[],
            cwd: None,
            stdio: [None, None, None],
            close_others: CloseOthers::Auto,
            session_tty: None,
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
        let e = spawn(&SpawnRequest {
            program: c"/bin/true",
            argv: &argv,
            envp: &[],
            cwd: Some(c"/nonexistent"),
            stdio: [None, None, None],
            close_others: CloseOthers::Listed,
            session_tty: None,
        })
        .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn a_session_tty_is_the_controlling_terminal_of_a_new_session() {
        use rustix::fs::{Mode, OFlags};
        let controller =
            rustix::pty::openpt(rustix::pty::OpenptFlags::RDWR | rustix::pty::OpenptFlags::NOCTTY)
                .unwrap();
        rustix::pty::grantpt(&controller).unwrap();
        rustix::pty::unlockpt(&controller).unwrap();
        let name = rustix::pty::ptsname(&controller, Vec::new()).unwrap();
        // Held so that reading the controller does not end before the child opens its side.
        let held = rustix::fs::open(
            name.as_c_str(),
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        let argv = [
            c("sh"),
            c("-c"),
            c(
                "tty; set -- $(cut -d' ' -f6,7 /proc/$$/stat); echo \"sid=$1 pid=$$ ttynr=$2\"; \
               ls /proc/self/fd | tr '\\n' ' '; echo",
            ),
        ];
        let envp = [c("PATH=/usr/bin:/bin")];
        let pid = spawn(&SpawnRequest {
            program: c"/bin/sh",
            argv: &argv,
            envp: &envp,
            cwd: None,
            stdio: [None, None, None],
            close_others: CloseOthers::Auto,
            session_tty: Some(name.as_c_str()),
        })
        .unwrap();
        let st = rustix::process::waitpid(
            rustix::process::Pid::from_raw(pid as i32),
            rustix::process::WaitOptions::empty(),
        )
        .unwrap();
        assert!(st.is_some_and(|(_, s)| s.exit_status() == Some(0)));
        drop(held);
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = rustix::io::read(&controller, &mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let out = String::from_utf8_lossy(&out);
        let l: Vec<&str> = out.lines().map(|l| l.trim_end_matches('\r')).collect();
        assert_eq!(l[0], name.to_str().unwrap(), "{out}");
        let stat = rustix::fs::stat(name.as_c_str()).unwrap();
        assert_eq!(
            l[1],
            format!("sid={pid} pid={pid} ttynr={}", stat.st_rdev),
            "{out}"
        );
        // ls: 0 1 2 (the terminal) and its own directory, nothing else.
        assert_eq!(l[2].split_whitespace().count(), 4, "{out}");
    }
}
