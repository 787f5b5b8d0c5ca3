//! What `hostexec` prints: paths as raw bytes, the mount table, the JSON schema of
//! `mounts --json`.
//!
//! Paths are written as the bytes they are, never through a lossy UTF-8 conversion, so a
//! non-UTF-8 host path printed by `realpath` or `which` can be fed back byte for byte. The
//! mount table escapes control characters (`\xHH`, as findmnt does) so that a hostile mount
//! point name holding a newline cannot forge a row; JSON escapes them by its own rules.
//!
//! The `mounts --json` schema, one object per mount (with `-o`, only the keys of the columns
//! asked for). Paths are decoded (no `\040`); bytes that are not UTF-8 become U+FFFD, since
//! JSON strings cannot hold them.
//!
//! | key | column | what |
//! |---|---|---|
//! | `id` | ID | mount ID (mountinfo field 1, statx `stx_mnt_id`) |
//! | `parent_id` | PARENT | the parent mount's ID |
//! | `target` | TARGET | mount point, in the host's view |
//! | `source` | SOURCE | device, `server:/export`, `tmpfs`; may be empty |
//! | `fstype` | FSTYPE | file system type with subtype (`fuse.sshfs`) |
//! | `root` | FSROOT | the directory of the file system mounted here (`/` unless a bind of a subdirectory) |
//! | `options` | OPTIONS | VFS then file system options, merged as findmnt's OPTIONS (`rw,relatime,size=1024k`) |
//! | `vfs_options` | VFS-OPTIONS | per-mount options only |
//! | `super_options` | FS-OPTIONS | per-superblock (file system) options only |
//! | `propagation` | PROPAGATION | findmnt's: `shared` or `private`, then `,slave`, `,unbindable` |
//! | `major`, `minor` | MAJ:MIN | the device numbers |
//! | `optional_fields` | (all columns) | the raw propagation tags (`shared:1`, `master:2`, …) |

use std::ffi::OsStr;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;

use hostexec_mount::mountinfo::{MountInfo, OptionalField};
use serde::Serialize;

use crate::cli::Column;

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

fn lossy(s: &OsStr) -> String {
    s.to_string_lossy().into_owned()
}

/// findmnt's PROPAGATION column for these tags.
pub(crate) fn propagation(fields: impl IntoIterator<Item = OptionalField>) -> &'static str {
    let (mut shared, mut slave, mut unbindable) = (false, false, false);
    for f in fields {
        match f {
            OptionalField::Shared(_) => shared = true,
            OptionalField::Master(_) => slave = true,
            OptionalField::Unbindable => unbindable = true,
            _ => {}
        }
    }
    match (shared, slave, unbindable) {
        (true, false, false) => "shared",
        (true, true, false) => "shared,slave",
        (true, false, true) => "shared,unbindable",
        (true, true, true) => "shared,slave,unbindable",
        (false, false, false) => "private",
        (false, true, false) => "private,slave",
        (false, false, true) => "private,unbindable",
        (false, true, true) => "private,slave,unbindable",
    }
}

/// Writes any value as pretty JSON and a newline.
pub(crate) fn json(out: &mut impl Write, value: &impl Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// True if `bytes` can be written inside a JSON string as they are: printable ASCII
/// without `"` or `\\`. Eight bytes at a time (the strings are short: a loop over words
/// beats both a byte loop and a vectorised search's set-up).
fn json_plain(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `w` is < 0x20, >= 0x7f, '"' or '\\' (exact as "any": a borrow or
    // carry only crosses into the next byte after a byte that matched already).
    let bad = |w: u64| {
        let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let high = (w.wrapping_add(ONES) | w) & HIGH;
        control | high | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
            != 0
    };
    let word = |w: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        u64::from_le_bytes(a)
    };
    if bytes.len() < 8 {
        return !bytes.iter().fold(false, |bad, &b| {
            bad | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
        });
    }
    let mut found = false;
    for w in bytes.chunks_exact(8) {
        found |= bad(word(w));
    }
    // The last eight bytes (overlapping the words above), which covers the tail.
    !(found | bad(word(&bytes[bytes.len() - 8..])))
}

/// Appends bytes as a JSON string (lossy for non-UTF-8), escaped by serde_json's rules.
///
/// The common case — printable ASCII without `"` or `\\` — is copied as it is, with no
/// conversion; anything else goes through serde_json, so both give the same text.
fn json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    if json_plain(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let text = String::from_utf8_lossy(bytes);
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
}

/// The `mounts --json` array, built a mount at a time in one buffer (no intermediate
/// values: this is the path scripts call in loops) and written whole by
/// [`finish`](Self::finish). `mounts` feeds it each piece of the table as the kernel hands
/// it over, so the rows are formatted while the rest of the table is still being read;
/// nothing is written before the whole table was read, so a failed read prints no partial
/// array.
pub(crate) struct JsonMounts {
    buf: Vec<u8>,
    scratch: Vec<u8>,
    num: Num,
    cols: Vec<Column>,
    /// Whether `optional_fields` is written (all columns, no `-o`).
    tags: bool,
    rows: usize,
}

impl JsonMounts {
    /// An empty array of rows with `columns` (all of them and the propagation tags when
    /// `None`).
    pub(crate) fn new(columns: Option<&[Column]>) -> JsonMounts {
        JsonMounts {
            buf: b"[".to_vec(),
            scratch: Vec::with_capacity(256),
            num: itoa_buf(),
            cols: columns.map_or_else(
                || Column::ALL.iter().map(|(c, _)| *c).collect(),
                <[Column]>::to_vec,
            ),
            tags: columns.is_none(),
            rows: 0,
        }
    }

    /// Appends one mount's object.
    pub(crate) fn push(&mut self, m: &MountInfo) {
        self.buf
            .extend_from_slice(if self.rows == 0 { b"\n  {" } else { b",\n  {" });
        json_row(
            &mut self.buf,
            &mut self.scratch,
            &mut self.num,
            m,
            &self.cols,
            self.tags,
        );
        self.buf.extend_from_slice(b"\n  }");
        self.rows += 1;
    }

    /// Closes the array and writes it to `out`.
    pub(crate) fn finish(mut self, out: &mut impl Write) -> io::Result<()> {
        self.buf
            .extend_from_slice(if self.rows == 0 { b"]\n" } else { b"\n]\n" });
        out.write_all(&self.buf)
    }
}

/// The mounts as a JSON array in the schema above, all at once ([`JsonMounts`] fed the
/// whole table).
#[cfg(test)]
pub(crate) fn mounts_json(
    out: &mut impl Write,
    mounts: &[&MountInfo],
    columns: Option<&[Column]>,
) -> io::Result<()> {
    let mut json = JsonMounts::new(columns);
    for m in mounts {
        json.push(m);
    }
    json.finish(out)
}

/// The keys and values of one mount's JSON object, appended to `buf` (`scratch` is reused
/// for values that are built first).
fn json_row(
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    num: &mut Num,
    m: &MountInfo,
    cols: &[Column],
    optional_fields: bool,
) {
    let mut first = true;
    // `k` is the key with what comes before and after it (`,\n    "id": `); the first key
    // of an object goes without the comma.
    let mut key = |buf: &mut Vec<u8>, k: &[u8]| {
        buf.extend_from_slice(if first {
            k.get(1..).unwrap_or_default()
        } else {
            k
        });
        first = false;
    };
    for c in cols {
        match c {
            Column::Id => {
                key(buf, b",\n    \"id\": ");
                buf.extend_from_slice(num.format(m.id));
            }
            Column::Parent => {
                key(buf, b",\n    \"parent_id\": ");
                buf.extend_from_slice(num.format(m.parent_id));
            }
            Column::Target => {
                key(buf, b",\n    \"target\": ");
                json_str(buf, m.mount_point().as_os_str().as_bytes());
            }
            Column::Source => {
                key(buf, b",\n    \"source\": ");
                json_str(buf, m.source().as_bytes());
            }
            Column::FsType => {
                key(buf, b",\n    \"fstype\": ");
                scratch.clear();
                fs_type_into(m, scratch);
                json_str(buf, scratch);
            }
            Column::FsRoot => {
                key(buf, b",\n    \"root\": ");
                json_str(buf, m.root().as_os_str().as_bytes());
            }
            Column::Options => {
                key(buf, b",\n    \"options\": ");
                scratch.clear();
                all_options_into(m, scratch);
                json_str(buf, scratch);
            }
            Column::VfsOptions => {
                key(buf, b",\n    \"vfs_options\": ");
                json_str(buf, m.mount_options().joined().as_bytes());
            }
            Column::FsOptions => {
                key(buf, b",\n    \"super_options\": ");
                json_str(buf, m.super_options().joined().as_bytes());
            }
            Column::Propagation => {
                key(buf, b",\n    \"propagation\": ");
                json_str(buf, propagation(m.optional_fields()).as_bytes());
            }
            Column::MajMin => {
                key(buf, b",\n    \"major\": ");
                buf.extend_from_slice(num.format(u64::from(m.major)));
                key(buf, b",\n    \"minor\": ");
                buf.extend_from_slice(num.format(u64::from(m.minor)));
            }
        }
    }
    if optional_fields {
        key(buf, b",\n    \"optional_fields\": ");
        buf.push(b'[');
        for (j, f) in m.optional_fields().iter().enumerate() {
            if j > 0 {
                buf.extend_from_slice(b", ");
            }
            scratch.clear();
            optional_field_into(&f, num, scratch);
            json_str(buf, scratch);
        }
        buf.push(b']');
    }
}

/// A propagation tag as mountinfo prints it (its `Display`), appended to `out` without the
/// formatting machinery for the common tags.
fn optional_field_into(f: &OptionalField, num: &mut Num, out: &mut Vec<u8>) {
    let (prefix, n): (&[u8], u64) = match f {
        OptionalField::Shared(n) => (b"shared:", *n),
        OptionalField::Master(n) => (b"master:", *n),
        OptionalField::PropagateFrom(n) => (b"propagate_from:", *n),
        other => {
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{other}");
            return;
        }
    };
    out.extend_from_slice(prefix);
    out.extend_from_slice(num.format(n));
}

/// A small decimal formatter that reuses one buffer.
struct Num([u8; 20], usize);

fn itoa_buf() -> Num {
    Num([0; 20], 0)
}

impl Num {
    fn format(&mut self, mut n: u64) -> &[u8] {
        let mut i = self.0.len();
        loop {
            i -= 1;
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.1 = i;
        &self.0[self.1..]
    }
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
    let mut out = Vec::new();
    all_options_into(m, &mut out);
    out
}

/// [`all_options`], appended to `out`.
fn all_options_into(m: &MountInfo, out: &mut Vec<u8>) {
    let vfs = m.mount_options();
    let start = out.len();
    let (vfs_raw, super_raw) = (vfs.as_raw(), m.super_options().as_raw());
    // The common case, no escapes and no quoted values: the options are what lies between
    // the commas, and the general path's decoding is not needed.
    let simple = |raw: &[u8]| !raw.iter().any(|&b| b == b'\\' || b == b'"');
    if simple(vfs_raw) && simple(super_raw) {
        let split = |raw| <[u8]>::split(raw, |&b| b == b',').filter(|o: &&[u8]| !o.is_empty());
        for o in split(vfs_raw).chain(split(super_raw).filter(|o| !split(vfs_raw).any(|v| v == *o)))
        {
            if out.len() > start {
                out.push(b',');
            }
            out.extend_from_slice(o);
        }
        return;
    }
    out.extend_from_slice(vfs.joined().as_bytes());
    for o in m.super_options() {
        if vfs.contains(&o) {
            continue;
        }
        if out.len() > start {
            out.push(b',');
        }
        out.extend_from_slice(o.as_bytes());
    }
}

/// The FSTYPE column (`fuse.sshfs`), appended to `out`.
fn fs_type_into(m: &MountInfo, out: &mut Vec<u8>) {
    out.extend_from_slice(m.fs_type().as_bytes());
    if let Some(sub) = m.fs_subtype() {
        out.push(b'.');
        out.extend_from_slice(sub.as_bytes());
    }
}

/// One cell of the table, control characters escaped.
fn cell(m: &MountInfo, c: Column) -> Vec<u8> {
    let raw: Vec<u8> = match c {
        Column::Target => m.mount_point().as_os_str().as_bytes().to_vec(),
        Column::Source => m.source().as_bytes().to_vec(),
        Column::FsType => m.fs_type_full().as_bytes().to_vec(),
        Column::Options => all_options(m),
        Column::VfsOptions => m.mount_options().joined().as_bytes().to_vec(),
        Column::FsOptions => m.super_options().joined().as_bytes().to_vec(),
        Column::Propagation => propagation(m.optional_fields()).as_bytes().to_vec(),
        Column::Id => m.id.to_string().into_bytes(),
        Column::Parent => m.parent_id.to_string().into_bytes(),
        Column::MajMin => format!("{}:{}", m.major, m.minor).into_bytes(),
        Column::FsRoot => m.root().as_os_str().as_bytes().to_vec(),
    };
    escape_controls(&raw)
}

/// Writes the mounts as a table (default columns TARGET SOURCE FSTYPE OPTIONS), columns
/// padded with spaces, control characters escaped.
pub(crate) fn mounts_table(
    out: &mut impl Write,
    mounts: &[&MountInfo],
    columns: &[Column],
) -> io::Result<()> {
    let rows: Vec<Vec<Vec<u8>>> = mounts
        .iter()
        .map(|m| columns.iter().map(|&c| cell(m, c)).collect())
        .collect();
    let header: Vec<&[u8]> = columns.iter().map(|c| c.heading().as_bytes()).collect();
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut write_row = |cells: &[&[u8]]| -> io::Result<()> {
        let mut buf = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            buf.extend_from_slice(cell);
            if i + 1 < cells.len() {
                buf.resize(buf.len() + width[i] - cell.len() + 1, b' ');
            }
        }
        line(out, &buf)
    };
    write_row(&header)?;
    for r in &rows {
        let cells: Vec<&[u8]> = r.iter().map(Vec::as_slice).collect();
        write_row(&cells)?;
    }
    Ok(())
}

/// An error as `mounts --json` and every other `--json` output reports it, on stdout:
/// `{"error": "<message>", "exit_code": N}`.
pub(crate) fn json_error(out: &mut impl Write, message: &str, exit_code: u8) -> io::Result<()> {
    json(
        out,
        &serde_json::json!({"error": message, "exit_code": exit_code}),
    )
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
    fn json_strings_match_serde_json_on_both_paths() {
        let cases: [&[u8]; 8] = [
            b"/var/lib/kubelet",
            b"",
            b"rw,relatime,size=1024k",
            b"quote\"d",
            b"back\\slash",
            b"new\nline\ttab\x7f",
            "caf\u{e9}".as_bytes(),
            b"not utf-8 \xff\xfe",
        ];
        for bytes in cases {
            let mut ours = Vec::new();
            json_str(&mut ours, bytes);
            let theirs = serde_json::to_vec(&String::from_utf8_lossy(bytes)).unwrap();
            assert_eq!(ours, theirs, "{bytes:?}");
        }
    }

    #[test]
    fn json_plain_agrees_with_the_byte_rule_for_every_byte_and_position() {
        let simple = |b: &[u8]| {
            b.iter()
                .all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\')
        };
        for len in 0..20 {
            for pos in 0..len {
                for c in 0..=255u8 {
                    let mut s = vec![b'x'; len];
                    s[pos] = c;
                    assert_eq!(json_plain(&s), simple(&s), "{s:?}");
                    // Next to the bytes around the ranges' edges.
                    for n in [0x1f, 0x20, 0x7e, 0x7f, 0xff, 0x00, b'"', b'\\'] {
                        if pos + 1 < len {
                            s[pos + 1] = n;
                            assert_eq!(json_plain(&s), simple(&s), "{s:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn propagation_tags_are_written_as_displayed() {
        let mut num = itoa_buf();
        for tag in [
            OptionalField::Shared(1),
            OptionalField::Master(18_446_744_073_709_551_615),
            OptionalField::PropagateFrom(0),
            OptionalField::Unbindable,
            OptionalField::Other("future:7".into()),
        ] {
            let mut out = Vec::new();
            optional_field_into(&tag, &mut num, &mut out);
            assert_eq!(out, tag.to_string().as_bytes());
        }
    }

    #[test]
    fn propagation_is_findmnts_for_every_combination() {
        let m = parse_mountinfo(TABLE).unwrap();
        assert_eq!(propagation(m[0].optional_fields()), "shared");
        assert_eq!(
            propagation(m[1].optional_fields()),
            "private,slave,unbindable"
        );
        assert_eq!(propagation(m[2].optional_fields()), "private");
        use OptionalField::{Master, Shared, Unbindable};
        assert_eq!(propagation([Shared(1), Master(2)]), "shared,slave");
        assert_eq!(propagation([Unbindable, Shared(3)]), "shared,unbindable");
    }

    #[test]
    fn json_schema_decodes_paths_and_names_propagation() {
        let mounts = parse_mountinfo(TABLE).unwrap();
        let mut out = Vec::new();
        let refs: Vec<&MountInfo> = mounts.iter().collect();
        mounts_json(&mut out, &refs, None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 3);
        // OPTIONS merges VFS and file system options as findmnt does: size= is there.
        assert_eq!(rows[1]["options"], "rw,nosuid,size=1024k");
        assert_eq!(rows[1]["vfs_options"], "rw,nosuid");
        assert_eq!(rows[0]["major"], 0);
        assert_eq!(rows[0]["minor"], 21);
        assert_eq!(rows[1]["optional_fields"][0], "master:2");
        // Only the columns asked for.
        let mut few = Vec::new();
        mounts_json(&mut few, &refs[..1], Some(&[Column::Target, Column::Id])).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&few).unwrap();
        assert_eq!(v, serde_json::json!([{"target": "/", "id": 22}]));
        let mut none = Vec::new();
        mounts_json(&mut none, &[], None).unwrap();
        assert_eq!(none, b"[]\n");
        assert_eq!(rows[0]["propagation"], "shared");
        assert_eq!(rows[1]["target"], "/tmp/sp ace\nx");
        assert_eq!(rows[1]["source"], "tm\tp");
        assert_eq!(rows[1]["propagation"], "private,slave,unbindable");
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
        let refs: Vec<&MountInfo> = mounts.iter().collect();
        mounts_table(&mut out, &refs, &Column::DEFAULT).unwrap();
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
        let mut out = Vec::new();
        mounts_table(&mut out, &refs, &[Column::MajMin, Column::Propagation]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "MAJ:MIN PROPAGATION",
                "0:21    shared",
                "0:40    private,slave,unbindable",
                "0:41    private"
            ]
        );
    }

    #[test]
    fn non_utf8_paths_are_written_as_bytes() {
        let mut out = Vec::new();
        os_line(&mut out, OsStr::from_bytes(b"/a/\xff\xfe")).unwrap();
        assert_eq!(out, b"/a/\xff\xfe\n");
    }
}
