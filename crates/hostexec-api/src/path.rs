//! Pure helpers on host paths: input checks, lexical normalisation, and the host-path →
//! local-path mapping (Go's `KubeletPath`, without its escape through `..`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::PathError;

/// The longest path the kernel accepts, counting the terminating NUL (`PATH_MAX`).
pub const PATH_MAX: usize = 4096;

/// The bytes `/proc/PID/mountinfo` writes as `\ooo` in paths, sources and filesystem types:
/// space, tab, newline and backslash (`mangle` and `seq_path_root` in the kernel's
/// `fs/proc_namespace.c`). A backend that renders a mount table line, as
/// [`HostFs::read_mount_entry`](crate::HostFs::read_mount_entry) asks, escapes with these.
pub const MOUNTINFO_SPECIALS: &[u8] = b" \t\n\\";

/// Appends `raw` to `out` with every byte of `specials` written as a backslash and three octal
/// digits, as the kernel writes mountinfo fields (see [`MOUNTINFO_SPECIALS`]).
///
/// ```
/// use hostexec_api::path::{mountinfo_escape, MOUNTINFO_SPECIALS};
/// let mut out = Vec::new();
/// mountinfo_escape(b"/mnt/a b\\c", MOUNTINFO_SPECIALS, &mut out);
/// assert_eq!(out, b"/mnt/a\\040b\\134c");
/// ```
pub fn mountinfo_escape(raw: &[u8], specials: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        if specials.contains(&b) {
            out.extend_from_slice(&[
                b'\\',
                b'0' + (b >> 6),
                b'0' + ((b >> 3) & 7),
                b'0' + (b & 7),
            ]);
        } else {
            out.push(b);
        }
    }
}

/// Checks what every resolver requires of its input: absolute, no NUL byte, shorter than
/// [`PATH_MAX`].
///
/// ```
/// use std::path::Path;
/// use hostexec_api::{path::check_host_path, PathError};
/// assert!(check_host_path(Path::new("/var/lib")).is_ok());
/// assert!(matches!(check_host_path(Path::new("var/lib")), Err(PathError::NotAbsolute { .. })));
/// ```
pub fn check_host_path(path: &Path) -> Result<(), PathError> {
    let b = path.as_os_str().as_bytes();
    if b.contains(&0) {
        return Err(PathError::ContainsNul { path: path.into() });
    }
    if b.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute { path: path.into() });
    }
    if b.len() >= PATH_MAX {
        return Err(PathError::NameTooLong { path: path.into() });
    }
    Ok(())
}

/// The components of an absolute path after lexical normalisation: empty and `.` components
/// dropped, `..` removing the previous one and clamped at `/`.
pub fn normal_components(path: &Path) -> Vec<&OsStr> {
    let mut out: Vec<&OsStr> = Vec::new();
    for c in path.as_os_str().as_bytes().split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(OsStr::from_bytes(c)),
        }
    }
    out
}

/// Lexical normalisation of an absolute path (`//a/./b/../c` → `/a/c`; `/..` → `/`).
/// Symlinks are not looked at: use a [`PathResolver`](crate::PathResolver) for that.
///
/// ```
/// use std::path::Path;
/// use hostexec_api::path::normalize;
/// assert_eq!(normalize(Path::new("//a/./b/../c/")), Path::new("/a/c"));
/// assert_eq!(normalize(Path::new("/../../etc")), Path::new("/etc"));
/// ```
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in normal_components(path) {
        out.push(c);
    }
    out
}

/// The path through which this process reaches `host_path`: `local_root` joined with the
/// normalised host path. It never leaves `local_root`, whatever `..` the input holds (Go's
/// `filepath.Join("/rootfs", "/../etc")` gives `/etc`; this gives `/rootfs/etc`).
///
/// ```
/// use std::path::Path;
/// use hostexec_api::path::host_to_local;
/// let root = Path::new("/rootfs");
/// assert_eq!(host_to_local(root, Path::new("/some/path")).unwrap(), Path::new("/rootfs/some/path"));
/// assert_eq!(host_to_local(root, Path::new("/../etc")).unwrap(), Path::new("/rootfs/etc"));
/// assert_eq!(host_to_local(root, Path::new("/")).unwrap(), Path::new("/rootfs"));
/// ```
pub fn host_to_local(local_root: &Path, host_path: &Path) -> Result<PathBuf, PathError> {
    check_host_path(host_path)?;
    let mut out = local_root.to_path_buf();
    for c in normal_components(host_path) {
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checks() {
        assert!(matches!(
            check_host_path(Path::new("")),
            Err(PathError::NotAbsolute { .. })
        ));
        assert!(matches!(
            check_host_path(Path::new(OsStr::from_bytes(b"/a\0b"))),
            Err(PathError::ContainsNul { .. })
        ));
        let long = format!("/{}", "a/".repeat(2048));
        assert!(matches!(
            check_host_path(Path::new(&long)),
            Err(PathError::NameTooLong { .. })
        ));
        assert!(check_host_path(Path::new(OsStr::from_bytes(b"/\xff"))).is_ok());
    }

    #[test]
    fn kubelet_path_vectors() {
        // k8s.io/utils nsenter's KubeletPath test vectors, with the `..` escape fixed.
        let cases = [
            ("/rootfs", "/some/path", "/rootfs/some/path"),
            ("/rootfs/", "//some/path", "/rootfs/some/path"),
            ("/rootfs", "/../etc", "/rootfs/etc"),
            ("/rootfs", "/a/../../../b", "/rootfs/b"),
        ];
        for (root, p, want) in cases {
            assert_eq!(
                host_to_local(Path::new(root), Path::new(p)).unwrap(),
                Path::new(want),
                "{root} + {p}"
            );
        }
        assert!(host_to_local(Path::new("/rootfs"), Path::new("../../etc")).is_err());
        assert!(host_to_local(Path::new("/rootfs"), Path::new("")).is_err());
    }

    proptest! {
        #[test]
        fn mapping_never_leaves_the_root(parts in proptest::collection::vec(
            prop_oneof![Just(".."), Just("."), Just(""), Just("a"), Just("b c"), Just("\u{e9}")], 0..12)) {
            let p = format!("/{}", parts.join("/"));
            let local = host_to_local(Path::new("/rootfs"), Path::new(&p)).unwrap();
            prop_assert!(local.starts_with("/rootfs"));
            prop_assert!(!local.components().any(|c| c.as_os_str() == ".."));
            let n = normalize(Path::new(&p));
            prop_assert_eq!(normalize(&n), n.clone());
        }
    }
}
