//! What `hostexec` prints: paths as raw bytes, the mount table, the JSON schema of
//! `mounts --json`.
//!
//! Paths are written as the bytes they are, never through a lossy UTF-8 conversion, so a
//! non-UTF-8 host path printed by `realpath` or `which` can be fed back byte for byte. The
//! mount table escapes control characters (`\xHH`, as findmnt does) so that a hostile mount
//! point name holding a newline cannot forge a row; JSON escapes them by its own rules.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use hostexec_mount::mountinfo::{MountInfo, OptionalField};
use serde::Serialize;

/// Writes `bytes` and a newline.
pub(crate) fn line(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.write_all(b"\n")
}

/// Writes an OS string and a newline, byte for byte.
pub(crate) fn os_line(out: &mut impl Write, s: &OsStr) -> io::Result<()> {
    line(out, s.as_bytes())
}

/// `bytes` with every control character (and DEL) as `\xHH`; everything else unchanged.
pub(crate) fn escape_controls(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b < 0x20 || b == 0x7f {
            out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
    out
}

/// One mount as `mounts --json` prints it. Paths are decoded (no `\040`); bytes that are not
/// UTF-8 become U+FFFD, since JSON strings cannot hold them.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct MountJson {
    /// Mount ID (mountinfo field 1, statx `stx_mnt_id`).
    pub(crate) id: u64,
    /// Parent mount ID.
    pub(crate) parent_id: u64,
    /// Mount point, in the host's view.
    pub(crate) target: String,
    /// Mount source (device, `server:/export`, `tmpfs`); may be empty.
    pub(crate) source: String,
    /// File system type with subtype (`fuse.sshfs`).
    pub(crate) fstype: String,
    /// The directory of the file system mounted here (`/` unless a bind of a subdirectory).
    pub(crate) root: String,
    /// Per-mount (VFS) options, comma-separated.
    pub(crate) options: String,
    /// Per-superblock options, comma-separated.
    pub(crate) super_options: String,
    /// findmnt's PROPAGATION: `shared` or `private`, then `,slave`, `,unbindable`.
    pub(crate) propagation: String,
    /// Device major number.
    pub(crate) major: u32,
    /// Device minor number.
    pub(crate) minor: u32,
    /// The raw propagation tags (`shared:1`, `master:2`, …).
    pub(crate) optional_fields: Vec<String>,
}

fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// findmnt's PROPAGATION column for these tags.
pub(crate) fn propagation(fields: &[OptionalField]) -> String {
    let has = |f: fn(&OptionalField) -> bool| fields.iter().any(f);
    let mut p = String::from(if has(|f| matches!(f, OptionalField::Shared(_))) {
        "shared"
    } else {
        "private"
    });
    if has(|f| matches!(f, OptionalField::Master(_))) {
        p.push_str(",slave");
    }
    if has(|f| matches!(f, OptionalField::Unbindable)) {
        p.push_str(",unbindable");
    }
    p
}

impl From<&MountInfo> for MountJson {
    fn from(m: &MountInfo) -> MountJson {
        MountJson {
            id: m.id,
            parent_id: m.parent_id,
            target: lossy(m.mount_point().as_os_str()),
            source: lossy(m.source()),
            fstype: lossy(&m.fs_type_full()),
            root: lossy(m.root().as_os_str()),
            options: lossy(&m.mount_options().joined()),
            super_options: lossy(&m.super_options().joined()),
            propagation: propagation(&m.optional_fields().iter().collect::<Vec<_>>()),
            major: m.major,
            minor: m.minor,
            optional_fields: m.optional_fields().iter().map(|f| f.to_string()).collect(),
        }
    }
}

/// Writes any value as pretty JSON and a newline.
pub(crate) fn json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// Writes the mounts as a JSON array.
pub(crate) fn mounts_json(out: &mut impl Write, mounts: &[MountInfo]) -> io::Result<()> {
    let rows: Vec<MountJson> = mounts.iter().map(MountJson::from).collect();
    json(out, &rows)
}

/// One path of `realpath --json`: `{"path", "resolved"}` or `{"path", "error"}`.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RealpathJson {
    /// The path as given.
    path: String,
    /// The host path it resolves to.
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved: Option<String>,
    /// Why it does not resolve (the strerror text).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl RealpathJson {
    /// A path that resolved.
    pub(crate) fn resolved(path: &std::path::Path, real: &std::path::Path) -> Self {
        RealpathJson {
            path: lossy(path.as_os_str()),
            resolved: Some(lossy(real.as_os_str())),
            error: None,
        }
    }

    /// A path that failed, with the error line `PATH: text` (the text alone is kept).
    pub(crate) fn failed(path: &std::path::Path, line: &str) -> Self {
        let shown = format!("{}: ", path.display());
        RealpathJson {
            path: lossy(path.as_os_str()),
            resolved: None,
            error: Some(line.strip_prefix(&shown).unwrap_or(line).to_owned()),
        }
    }
}

/// The OPTIONS column: the per-mount options, then the superblock options not already there
/// (findmnt merges them the same way, so `rw` shows once).
fn all_options(m: &MountInfo) -> Vec<u8> {
    let mut out = m.mount_options().joined().as_bytes().to_vec();
    for o in m.super_options() {
        if m.mount_options().contains(&o) {
            continue;
        }
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(o.as_bytes());
    }
    out
}

/// Writes the mounts as a table: TARGET SOURCE FSTYPE OPTIONS, columns padded with spaces,
/// control characters escaped.
pub(crate) fn mounts_table(out: &mut impl Write, mounts: &[MountInfo]) -> io::Result<()> {
    let rows: Vec<[Vec<u8>; 4]> = mounts
        .iter()
        .map(|m| {
            [
                escape_controls(m.mount_point().as_os_str().as_bytes()),
                escape_controls(m.source().as_bytes()),
                escape_controls(m.fs_type_full().as_bytes()),
                escape_controls(&all_options(m)),
            ]
        })
        .collect();
    let header: [&[u8]; 4] = [b"TARGET", b"SOURCE", b"FSTYPE", b"OPTIONS"];
    let mut width = header.map(<[u8]>::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut write_row = |cells: [&[u8]; 4]| -> io::Result<()> {
        let mut buf = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            buf.extend_from_slice(cell);
            if i + 1 < cells.len() {
                buf.resize(buf.len() + width[i] - cell.len() + 1, b' ');
            }
        }
        line(out, &buf)
    };
    write_row(header)?;
    for r in &rows {
        write_row([&r[0], &r[1], &r[2], &r[3]])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostexec_mount::mountinfo::parse_mountinfo;

    const TABLE: &[u8] = b"\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
88 22 0:40 / /tmp/sp\\040ace\\012x rw,nosuid master:2 unbindable - tmpfs tm\\011p rw,size=1024k\n\
89 22 0:41 /sub /mnt/b rw - fuse.sshfs me@h:/ rw,user_id=0\n";

    #[test]
    fn json_schema_decodes_paths_and_names_propagation() {
        let mounts = parse_mountinfo(TABLE).unwrap();
        let mut out = Vec::new();
        mounts_json(&mut out, &mounts).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["propagation"], "shared");
        assert_eq!(rows[1]["target"], "/tmp/sp ace\nx");
        assert_eq!(rows[1]["source"], "tm\tp");
        assert_eq!(rows[1]["propagation"], "private,slave,unbindable");
        assert_eq!(rows[1]["options"], "rw,nosuid");
        assert_eq!(rows[1]["super_options"], "rw,size=1024k");
        assert_eq!(rows[1]["parent_id"], 22);
        assert_eq!(rows[2]["fstype"], "fuse.sshfs");
        assert_eq!(rows[2]["root"], "/sub");
        for key in [
            "id",
            "parent_id",
            "target",
            "source",
            "fstype",
            "root",
            "options",
            "super_options",
            "propagation",
        ] {
            assert!(rows.iter().all(|r| r.get(key).is_some()), "{key} missing");
        }
    }

    #[test]
    fn table_escapes_control_characters_so_rows_cannot_be_forged() {
        let mounts = parse_mountinfo(TABLE).unwrap();
        let mut out = Vec::new();
        mounts_table(&mut out, &mounts).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("TARGET"));
        assert!(lines[2].starts_with("/tmp/sp ace\\x0ax "), "{}", lines[2]);
        assert!(lines[2].contains("tm\\x09p"));
        // The superblock's rw is not repeated.
        assert!(lines[1].ends_with("rw,relatime"), "{}", lines[1]);
        // Columns line up.
        let col = lines[0].find("SOURCE").unwrap();
        assert_eq!(&lines[1][col..col + 8], "/dev/vda");
    }

    #[test]
    fn non_utf8_paths_are_written_as_bytes() {
        let mut out = Vec::new();
        os_line(&mut out, OsStr::from_bytes(b"/a/\xff\xfe")).unwrap();
        assert_eq!(out, b"/a/\xff\xfe\n");
    }
}
