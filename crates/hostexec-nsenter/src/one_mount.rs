//! One mount read alone: `statmount(2)` (Linux 6.8+) on the host thread, by the unique mount
//! ID (statx `STATX_MNT_ID_UNIQUE`) of a descriptor the walk opened, rendered as the line
//! `/proc/PID/mountinfo` has for that mount (`show_mountinfo` in the kernel's
//! `fs/proc_namespace.c`), so that `hostexec-mount` parses it as it parses the table.

use hostexec_api::path::{mountinfo_escape, MOUNTINFO_SPECIALS};
use hostexec_sys::mount::{attr, propagation, sb, StatMount};

/// `MOUNT_ATTR_IDMAP`.
const ATTR_IDMAP: u64 = 0x0010_0000;

/// Appends `raw` escaped as mountinfo escapes paths, the source and the type.
fn escaped(raw: &[u8], out: &mut Vec<u8>) {
    mountinfo_escape(raw, MOUNTINFO_SPECIALS, out);
}

/// The mountinfo line (without its newline) of the mount `sm` describes: the fields in the
/// kernel's order, the per-mount options as `show_mnt_opts` prints them, the propagation
/// tags, and the superblock options as `ro`/`rw`, `show_sb_opts`' flags, then the
/// filesystem's own (statmount's `mnt_opts`, already escaped by the filesystem).
pub(crate) fn render(sm: &StatMount) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(
        format!(
            "{} {} {}:{} ",
            sm.mnt_id_old, sm.parent_id_old, sm.dev.0, sm.dev.1
        )
        .as_bytes(),
    );
    escaped(&sm.root, &mut out);
    out.push(b' ');
    escaped(&sm.mount_point, &mut out);
    out.push(b' ');
    let a = sm.mnt_attr;
    out.extend_from_slice(if a & attr::RDONLY != 0 { b"ro" } else { b"rw" });
    let atime = a & attr::ATIME_MASK;
    for (on, name) in [
        (a & attr::NOSUID != 0, ",nosuid"),
        (a & attr::NODEV != 0, ",nodev"),
        (a & attr::NOEXEC != 0, ",noexec"),
        (atime == attr::NOATIME, ",noatime"),
        (a & attr::NODIRATIME != 0, ",nodiratime"),
        (atime == attr::RELATIME, ",relatime"),
        (a & attr::NOSYMFOLLOW != 0, ",nosymfollow"),
        (a & ATTR_IDMAP != 0, ",idmapped"),
    ] {
        if on {
            out.extend_from_slice(name.as_bytes());
        }
    }
    let p = sm.propagation;
    if p & propagation::SHARED != 0 {
        out.extend_from_slice(format!(" shared:{}", sm.peer_group).as_bytes());
    }
    if p & propagation::SLAVE != 0 {
        out.extend_from_slice(format!(" master:{}", sm.master).as_bytes());
        if sm.propagate_from != 0 && sm.propagate_from != sm.master {
            out.extend_from_slice(format!(" propagate_from:{}", sm.propagate_from).as_bytes());
        }
    }
    if p & propagation::UNBINDABLE != 0 {
        out.extend_from_slice(b" unbindable");
    }
    out.extend_from_slice(b" - ");
    escaped(&sm.fs_type, &mut out);
    if let Some(sub) = sm.fs_subtype.as_deref().filter(|s| !s.is_empty()) {
        out.push(b'.');
        escaped(sub, &mut out);
    }
    out.push(b' ');
    match sm.source.as_deref() {
        Some(src) if !src.is_empty() => escaped(src, &mut out),
        _ => out.extend_from_slice(b"none"),
    }
    out.push(b' ');
    let f = sm.sb_flags;
    out.extend_from_slice(if f & sb::RDONLY != 0 { b"ro" } else { b"rw" });
    for (bit, name) in [
        (sb::SYNCHRONOUS, ",sync"),
        (sb::DIRSYNC, ",dirsync"),
        (sb::LAZYTIME, ",lazytime"),
    ] {
        if f & bit != 0 {
            out.extend_from_slice(name.as_bytes());
        }
    }
    if let Some(opts) = sm.fs_options.as_deref().filter(|o| !o.is_empty()) {
        out.push(b',');
        out.extend_from_slice(opts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mount_of_this_process_renders_as_its_mountinfo_line() {
        let table = std::fs::read("/proc/self/mountinfo").expect("mountinfo");
        let mut checked = 0;
        for line in table.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            // The unique ID is not in mountinfo: reach the mount through its mount point.
            let text = String::from_utf8_lossy(line);
            let point = text.split(' ').nth(4).unwrap_or_default();
            if point.contains('\\') {
                continue;
            }
            let Ok(st) = rustix::fs::statx(
                rustix::fs::CWD,
                point,
                rustix::fs::AtFlags::STATX_DONT_SYNC | rustix::fs::AtFlags::NO_AUTOMOUNT,
                rustix::fs::StatxFlags::from_bits_retain(0x4000),
            ) else {
                continue;
            };
            let sm = match hostexec_sys::mount::statmount(st.stx_mnt_id) {
                Ok(sm) => sm,
                Err(e) if e.raw_os_error() == Some(38) => return,
                Err(e) => panic!("{point}: {e}"),
            };
            // A shadowed mount: the path reaches the one on top, compared with its own line.
            let own = table
                .split(|&b| b == b'\n')
                .find(|l| {
                    l.split(|&b| b == b' ').next() == Some(sm.mnt_id_old.to_string().as_bytes())
                })
                .expect("the mount on top is in the table");
            assert_eq!(
                String::from_utf8_lossy(&render(&sm)),
                String::from_utf8_lossy(own)
            );
            checked += 1;
        }
        assert!(checked > 0);
    }
}
