//! A shared library that marks every process that loads it: to prove that a caller's
//! `LD_PRELOAD` never reaches a host command.
//!
//! [`MarkingLibrary::in_sandbox`] builds it with `cc -shared -fPIC` *in a sandbox host's view*
//! (its private tmpfs), so that the library exists for the host only, as a path a container's
//! `LD_PRELOAD` could name; [`MarkingLibrary::local`] builds one in this process's view. Its
//! constructor appends the PID of the process that loaded it to a mark file; [`MarkingLibrary::pids`]
//! reads them. Both constructors first prove, with the loader itself as the oracle, that
//! `env LD_PRELOAD=… true` leaves exactly one mark, so a test that then finds none is not
//! fooled by a library that never works.

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sandbox::SandboxHost;

/// A library whose constructor appends the loading process's PID to a mark file.
#[derive(Debug)]
pub struct MarkingLibrary {
    /// The library, in the view it was built in.
    pub so: PathBuf,
    /// The mark file, in the view it was built in.
    pub mark: PathBuf,
    /// The mark file as this process reaches it.
    pub mark_local: PathBuf,
}

/// The C source: `mark` is spelled byte by byte, so any path works.
fn source(mark: &Path) -> Vec<u8> {
    let mut c_string = String::new();
    for b in mark.as_os_str().as_bytes() {
        c_string.push_str(&format!("\\x{b:02x}"));
    }
    format!(
        r#"#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((constructor)) static void hostexec_marking_library(void) {{
    char line[32];
    int fd = open("{c_string}", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (n > 0) (void)!write(fd, line, (size_t)n);
    close(fd);
}}
"#
    )
    .into_bytes()
}

fn check(out: io::Result<std::process::Output>, what: &str) -> io::Result<()> {
    let out = out?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{what}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn preload_var(so: &Path) -> OsString {
    let mut v = OsString::from("LD_PRELOAD=");
    v.push(so);
    v
}

impl MarkingLibrary {
    /// Builds the library in the sandbox's directory `dir` (a host path under its scratch
    /// tmpfs, created if missing) with the host's `cc`; it exists in the host's view only.
    pub fn in_sandbox(sb: &SandboxHost, dir: &Path) -> io::Result<MarkingLibrary> {
        sb.mkdir_all(dir)?;
        let (c, so, mark) = (
            dir.join("marking.c"),
            dir.join("marking.so"),
            dir.join("marks"),
        );
        sb.write_file(&c, &source(&mark))?;
        let cc = sb.oracle(&[
            "cc".as_ref(),
            "-shared".as_ref(),
            "-fPIC".as_ref(),
            "-o".as_ref(),
            so.as_os_str(),
            c.as_os_str(),
        ]);
        check(Ok(cc), "cc in the sandbox")?;
        let lib = MarkingLibrary {
            mark_local: sb.local(&mark),
            so,
            mark,
        };
        let out = sb.oracle(&["env".as_ref(), &preload_var(&lib.so), "true".as_ref()]);
        check(Ok(out), "env LD_PRELOAD=… true in the sandbox")?;
        lib.expect_one_mark()?;
        lib.clear()?;
        Ok(lib)
    }

    /// Builds the library in `dir`, a directory of this process's view.
    pub fn local(dir: &Path) -> io::Result<MarkingLibrary> {
        let (c, so, mark) = (
            dir.join("marking.c"),
            dir.join("marking.so"),
            dir.join("marks"),
        );
        std::fs::write(&c, source(&mark))?;
        check(
            Command::new("cc")
                .args(["-shared", "-fPIC", "-o"])
                .arg(&so)
                .arg(&c)
                .output(),
            "cc",
        )?;
        let lib = MarkingLibrary {
            mark_local: mark.clone(),
            so,
            mark,
        };
        check(
            Command::new("env")
                .arg(preload_var(&lib.so))
                .arg("true")
                .output(),
            "env LD_PRELOAD=… true",
        )?;
        lib.expect_one_mark()?;
        lib.clear()?;
        Ok(lib)
    }

    fn expect_one_mark(&self) -> io::Result<()> {
        match self.pids().len() {
            1 => Ok(()),
            n => Err(io::Error::other(format!(
                "the library at {} left {n} marks for one `true` (expected 1)",
                self.so.display()
            ))),
        }
    }

    /// The PIDs of the processes that loaded the library so far.
    pub fn pids(&self) -> Vec<u32> {
        match std::fs::read_to_string(&self.mark_local) {
            Ok(t) => t.lines().filter_map(|l| l.parse().ok()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Forgets the marks so far.
    pub fn clear(&self) -> io::Result<()> {
        match std::fs::remove_file(&self.mark_local) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// A library at known paths, built by another process (a test's parent): `so` and `mark`
    /// in the view it was built in, `mark_local` as this process reaches the mark.
    pub fn at(so: PathBuf, mark: PathBuf, mark_local: PathBuf) -> MarkingLibrary {
        MarkingLibrary {
            so,
            mark,
            mark_local,
        }
    }
}
