//! A process chrooted inside a sandbox host's mount namespace: a target whose root differs
//! from its namespace's root (a container runtime's process, a build sandbox).
//!
//! [`ChrootedProcess::start`] builds a small root under a directory of the sandbox's scratch
//! tmpfs — the machine's `/usr` and `/dev` bind-mounted (in the sandbox's namespace only), the
//! `/bin`, `/sbin`, `/lib`, `/lib64` links or bind mounts, a file `/inside` holding
//! [`INSIDE`], a link `/link -> /inside` and a directory `/work` holding an empty `here` —
//! then runs `chroot DIR /bin/sh -c 'cd /work && exec sleep …'` in the sandbox's mount
//! namespace. Dropping it kills and reaps the process.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::sandbox::SandboxHost;

/// The contents of `/inside` in the chrooted root.
pub const INSIDE: &[u8] = b"P's root\n";

/// A process chrooted into a subtree of a sandbox host, with `/work` as its working directory.
#[derive(Debug)]
pub struct ChrootedProcess {
    child: Child,
    dir: PathBuf,
}

impl ChrootedProcess {
    /// Builds the root at `dir` (a host path under the sandbox's scratch tmpfs) and starts the
    /// process in it.
    pub fn start(sb: &SandboxHost, dir: &Path) -> io::Result<ChrootedProcess> {
        build_root(sb, dir)?;
        let mut child = Command::new("nsenter")
            .args(["-t", &sb.pid().to_string(), "-m", "--", "chroot"])
            .arg(dir)
            .args([
                "/bin/sh",
                "-c",
                "cd /work && echo ready && exec sleep 100000",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let read = child
            .stdout
            .take()
            .map(|out| BufReader::new(out).read_line(&mut line));
        let p = ChrootedProcess {
            child,
            dir: dir.to_path_buf(),
        };
        if !matches!(read, Some(Ok(_))) || line != "ready\n" {
            return Err(io::Error::other(format!(
                "the chrooted process did not start: {line:?}"
            )));
        }
        Ok(p)
    }

    /// Its PID, in this process's PID namespace.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its root, as a path of the sandbox's namespace.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ChrootedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn build_root(sb: &SandboxHost, dir: &Path) -> io::Result<()> {
    for d in ["usr", "dev", "work"] {
        sb.mkdir_all(&dir.join(d))?;
    }
    sb.write_file(&dir.join("inside"), INSIDE)?;
    sb.write_file(&dir.join("work/here"), b"")?;
    sb.symlink("/inside", &dir.join("link"))?;
    let bind = |from: &Path, to: &Path| {
        let out = sb.oracle(&[
            "mount".as_ref(),
            "--bind".as_ref(),
            from.as_os_str(),
            to.as_os_str(),
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "mount --bind {} {}: {}",
                from.display(),
                to.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    bind(Path::new("/usr"), &dir.join("usr"))?;
    bind(Path::new("/dev"), &dir.join("dev"))?;
    for top in ["bin", "sbin", "lib", "lib64"] {
        let p = Path::new("/").join(top);
        match std::fs::read_link(&p) {
            Ok(target) => sb.symlink(&target, &dir.join(top))?,
            Err(_) if p.is_dir() => {
                sb.mkdir_all(&dir.join(top))?;
                bind(&p, &dir.join(top))?;
            }
            Err(_) => {}
        }
    }
    Ok(())
}
