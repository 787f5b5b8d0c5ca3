//! This process's descriptors, as `/proc/self/fdinfo` shows them.

/// `O_CLOEXEC` as fdinfo's octal `flags:` field shows it.
const O_CLOEXEC: u32 = 0o2_000_000;

/// Descriptors above 2 that this process holds without `FD_CLOEXEC`: every process it
/// starts by fork and exec inherits them (a job runner's pipe, say).
pub fn inheritable() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fdinfo") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A descriptor closed since the listing (the listing's own) has no fdinfo.
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let flags = info
            .lines()
            .find_map(|l| l.strip_prefix("flags:"))
            .and_then(|f| u32::from_str_radix(f.trim(), 8).ok());
        if fd > 2 && flags.is_some_and(|f| f & O_CLOEXEC == 0) {
            out.push(fd);
        }
    }
    out.sort_unstable();
    out
}

/// How many descriptors this process has open (the listing's own included, alike in every
/// sample).
pub fn count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    #[test]
    fn an_inheritable_descriptor_is_listed_and_a_cloexec_one_is_not() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // dup(2) gives a descriptor without FD_CLOEXEC.
        let plain = nix::unistd::dup(&w).unwrap();
        let fds = super::inheritable();
        assert!(fds.contains(&(plain.as_raw_fd() as u32)), "{fds:?}");
        assert!(!fds.contains(&(r.as_raw_fd() as u32)), "{fds:?}");
        assert!(!fds.contains(&(w.as_raw_fd() as u32)), "{fds:?}");
        let before = super::count();
        drop(plain);
        assert_eq!(super::count(), before - 1);
    }
}
