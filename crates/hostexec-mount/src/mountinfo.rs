//! The kernel's mount tables, parsed: `/proc/PID/mountinfo` into [`MountInfo`], the
//! `/proc/PID/mounts` format into [`MountEntry`], and fstab files.
//!
//! Pure: no I/O here. The functions take the bytes of a table and return owned entries.
//!
//! # Kernel facts the parser rests on
//!
//! - Fields are separated by **one** space. A field may be empty: `mount -t tmpfs "" dir`
//!   prints an empty source (`- tmpfs  rw`, kernel 6.18). Go's `strings.Fields` collapses the
//!   two spaces and fails the whole table (kubernetes#66134, go-originals.md §3 #16); here the
//!   empty field is an empty [`MountInfo::source`].
//! - Paths (root, mount point, source, fs type) are escaped with `\ooo` octal for space, tab,
//!   newline and backslash (`\040 \011 \012 \134`); other bytes, including non-UTF-8 ones, are
//!   printed raw. Go never decoded the escapes (§3 #15); here they are decoded to bytes and the
//!   paths are [`PathBuf`]s built from those bytes, never through a lossy UTF-8 step.
//! - Super options are escaped by `seq_show_option` (`,`, `=`, space, tab, newline, backslash in
//!   values), but some filesystems print quoted values with raw commas (SELinux
//!   `context="a,b"`): options are split on commas outside double quotes, then decoded.
//! - A bind mount of a file that was deleted has `//deleted` appended to its **root**
//!   (kernel 6.18, go-originals.md §2.1); it is stripped into [`MountInfo::root_deleted`].
//!   A mount point whose directory was unlinked gets ` (deleted)` appended to the mount point;
//!   that is kept in the path (a directory may really be named so), and
//!   [`mount_point_matches`] accepts it.
//!
//! # Speed
//!
//! A table is parsed in one pass over the bytes, without splitting it into intermediate
//! vectors: the only allocations are the ones the result keeps (each path, option and source
//! once). Fields without a backslash are copied as they are.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// One line of `/proc/PID/mountinfo` (proc(5)), decoded.
///
/// ```
/// use hostexec_mount::mountinfo::{parse_mountinfo, OptionalField};
/// let table = b"36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n";
/// let m = &parse_mountinfo(table).unwrap()[0];
/// assert_eq!((m.id, m.parent_id, m.major, m.minor), (36, 35, 98, 0));
/// assert_eq!(m.mount_point, std::path::Path::new("/mnt 2"));
/// assert_eq!(m.optional_fields, [OptionalField::Master(1)]);
/// assert_eq!(m.super_options, ["rw", "errors=continue"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MountInfo {
    /// The mount ID (unique while mounted; may be reused after unmount). Equals statx
    /// `stx_mnt_id`.
    pub id: u64,
    /// The ID of the parent mount (itself for the root of the namespace's tree).
    pub parent_id: u64,
    /// Major number of the device (`st_dev`) of the filesystem.
    pub major: u32,
    /// Minor number of the device of the filesystem.
    pub minor: u32,
    /// The directory of the filesystem that forms the root of this mount (`/` unless a
    /// subdirectory or file was bind-mounted), with the `//deleted` marker removed.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::path"))]
    pub root: PathBuf,
    /// The bind-mounted file or directory was deleted (the kernel printed `//deleted`).
    pub root_deleted: bool,
    /// Where the mount is, relative to the root of the process whose table this is.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::path"))]
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, `relatime`, …): a fixed kernel vocabulary.
    pub mount_options: Vec<String>,
    /// Propagation tags (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`).
    pub optional_fields: Vec<OptionalField>,
    /// The filesystem type, without the subtype (`fuse` for `fuse.sshfs`).
    pub fs_type: String,
    /// The subtype, for filesystems that have one (`sshfs` for `fuse.sshfs`). It comes from
    /// user space (FUSE), so it may hold any byte.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::opt_os"))]
    pub fs_subtype: Option<OsString>,
    /// The mount source (device, `server:/export`, `tmpfs`, …); may be empty.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::os"))]
    pub source: OsString,
    /// Per-superblock options, split on commas outside double quotes, then decoded. Quotes
    /// are kept (`context="a,b"`).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::os_vec"))]
    pub super_options: Vec<OsString>,
}

/// A propagation tag of a mount (the optional fields of mountinfo).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OptionalField {
    /// `shared:N`: the mount is in peer group N.
    Shared(u64),
    /// `master:N`: the mount is a slave of peer group N.
    Master(u64),
    /// `propagate_from:N`: the mount receives from peer group N (the nearest dominant group
    /// reachable in this namespace).
    PropagateFrom(u64),
    /// `unbindable`.
    Unbindable,
    /// A tag this parser does not know, kept as printed (lossy UTF-8: the kernel only prints
    /// ASCII here).
    Other(String),
}

impl fmt::Display for OptionalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionalField::Shared(n) => write!(f, "shared:{n}"),
            OptionalField::Master(n) => write!(f, "master:{n}"),
            OptionalField::PropagateFrom(n) => write!(f, "propagate_from:{n}"),
            OptionalField::Unbindable => f.write_str("unbindable"),
            OptionalField::Other(s) => f.write_str(s),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for OptionalField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl MountInfo {
    /// The filesystem type as findmnt and the kernel print it: `fuse.sshfs`, `ext4`.
    pub fn fs_type_full(&self) -> OsString {
        let mut t = OsString::from(&self.fs_type);
        if let Some(sub) = &self.fs_subtype {
            t.push(".");
            t.push(sub);
        }
        t
    }

    /// The peer group this mount is shared in, if any.
    pub fn shared_group(&self) -> Option<u64> {
        self.optional_fields.iter().find_map(|f| match f {
            OptionalField::Shared(n) => Some(*n),
            _ => None,
        })
    }

    /// True if the per-mount options or the superblock options say `ro`.
    pub fn is_read_only(&self) -> bool {
        self.mount_options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }

    /// Appends this entry to `out` as the kernel prints it in mountinfo, newline included.
    /// [`parse_mountinfo`] of the result gives the entry back.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        // Writing to a Vec cannot fail.
        let _ = write!(
            out,
            "{} {} {}:{} ",
            self.id, self.parent_id, self.major, self.minor
        );
        escape_into(self.root.as_os_str().as_bytes(), PATH_SPECIALS, out);
        if self.root_deleted {
            out.extend_from_slice(b"//deleted");
        }
        out.push(b' ');
        escape_into(self.mount_point.as_os_str().as_bytes(), PATH_SPECIALS, out);
        out.push(b' ');
        out.extend_from_slice(self.mount_options.join(",").as_bytes());
        for f in &self.optional_fields {
            let _ = write!(out, " {f}");
        }
        out.extend_from_slice(b" - ");
        write_fs_type(&self.fs_type, self.fs_subtype.as_deref(), out);
        out.push(b' ');
        escape_into(self.source.as_bytes(), PATH_SPECIALS, out);
        out.push(b' ');
        write_options(&self.super_options, out);
        out.push(b'\n');
    }
}

/// One line of `/proc/PID/mounts` (the fstab format), decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct MountEntry {
    /// The mount source; may be empty.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::os"))]
    pub source: OsString,
    /// Where it is mounted.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::path"))]
    pub mount_point: PathBuf,
    /// The filesystem type without the subtype.
    pub fs_type: String,
    /// The subtype (`sshfs` of `fuse.sshfs`).
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::opt_os"))]
    pub fs_subtype: Option<OsString>,
    /// Per-mount and superblock options together, split on commas outside double quotes,
    /// decoded.
    #[cfg_attr(feature = "serde", serde(serialize_with = "ser::os_vec"))]
    pub options: Vec<OsString>,
    /// The dump frequency field (always 0 in `/proc/mounts`).
    pub freq: u32,
    /// The fsck pass field (always 0 in `/proc/mounts`).
    pub pass: u32,
}

impl MountEntry {
    /// Appends this entry to `out` as the kernel prints it in `/proc/PID/mounts`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        use std::io::Write as _;
        escape_into(self.source.as_bytes(), PATH_SPECIALS, out);
        out.push(b' ');
        escape_into(self.mount_point.as_os_str().as_bytes(), PATH_SPECIALS, out);
        out.push(b' ');
        write_fs_type(&self.fs_type, self.fs_subtype.as_deref(), out);
        out.push(b' ');
        write_options(&self.options, out);
        let _ = writeln!(out, " {} {}", self.freq, self.pass);
    }
}

/// A mount table that could not be parsed: which line, what it says, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mount table line {line_no}: {kind}: {line:?}")]
pub struct ParseError {
    /// The line number, from 1.
    pub line_no: usize,
    /// The line, as lossy text.
    pub line: String,
    /// What is wrong with it.
    pub kind: ParseErrorKind,
}

/// What is wrong with a mount table line.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The line ends before this field.
    MissingField(&'static str),
    /// This field should be a decimal number.
    BadNumber(&'static str),
    /// The `major:minor` field is not two numbers around a colon.
    BadDevice,
    /// No ` - ` separator after the optional fields.
    MissingSeparator,
    /// More fields than the format has.
    TooManyFields,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::MissingField(name) => write!(f, "no {name} field"),
            ParseErrorKind::BadNumber(name) => write!(f, "the {name} field is not a number"),
            ParseErrorKind::BadDevice => f.write_str("the major:minor field is malformed"),
            ParseErrorKind::MissingSeparator => {
                f.write_str("no \"-\" separator after the optional fields")
            }
            ParseErrorKind::TooManyFields => f.write_str("too many fields"),
        }
    }
}

/// Parses the bytes of a `/proc/PID/mountinfo` file. Empty lines are skipped; any other line
/// that is not a mountinfo line fails the parse with its number and text.
pub fn parse_mountinfo(table: &[u8]) -> Result<Vec<MountInfo>, ParseError> {
    parse_lines(table, parse_mountinfo_line)
}

/// Parses one mountinfo line (without its newline).
pub fn parse_mountinfo_line(line: &[u8]) -> Result<MountInfo, ParseErrorKind> {
    let mut f = Fields::new(line);
    let id = number(f.next("mount ID")?, "mount ID")?;
    let parent_id = number(f.next("parent ID")?, "parent ID")?;
    let dev = f.next("major:minor")?;
    let colon = dev
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseErrorKind::BadDevice)?;
    let major = number(&dev[..colon], "major").map_err(|_| ParseErrorKind::BadDevice)?;
    let minor = number(&dev[colon + 1..], "minor").map_err(|_| ParseErrorKind::BadDevice)?;
    let root_raw = f.next("root")?;
    let (root_raw, root_deleted) = match root_raw.strip_suffix(b"//deleted") {
        Some(r) if !r.is_empty() => (r, true),
        Some(_) => (&b"/"[..], true),
        None => (root_raw, false),
    };
    let mount_point = f.next("mount point")?;
    let mount_options = split_plain(f.next("mount options")?);
    let mut optional_fields = Vec::new();
    loop {
        match f.next_opt() {
            None => return Err(ParseErrorKind::MissingSeparator),
            Some(b"-") => break,
            Some(tag) => optional_fields.push(parse_optional(tag)),
        }
    }
    let (fs_type, fs_subtype) = parse_fs_type(f.next("filesystem type")?);
    let source = OsString::from_vec(unescape(f.next("source")?));
    // The rest of the line: tolerant of raw spaces a filesystem might print.
    let super_options = split_options(
        f.rest()
            .ok_or(ParseErrorKind::MissingField("super options"))?,
    );
    Ok(MountInfo {
        id,
        parent_id,
        major,
        minor,
        root: path_from(unescape(root_raw)),
        root_deleted,
        mount_point: path_from(unescape(mount_point)),
        mount_options,
        optional_fields,
        fs_type,
        fs_subtype,
        source,
        super_options,
    })
}

/// Parses the bytes of a `/proc/PID/mounts` file (fields separated by single spaces).
pub fn parse_proc_mounts(table: &[u8]) -> Result<Vec<MountEntry>, ParseError> {
    parse_lines(table, parse_proc_mounts_line)
}

/// Parses one `/proc/PID/mounts` line (without its newline).
pub fn parse_proc_mounts_line(line: &[u8]) -> Result<MountEntry, ParseErrorKind> {
    let mut f = Fields::new(line);
    let source = OsString::from_vec(unescape(f.next("source")?));
    let mount_point = path_from(unescape(f.next("mount point")?));
    let (fs_type, fs_subtype) = parse_fs_type(f.next("filesystem type")?);
    let rest = f.rest().ok_or(ParseErrorKind::MissingField("options"))?;
    // freq and pass are the last two fields; the options are what lies before them.
    let (rest, pass) = rsplit_field(rest).ok_or(ParseErrorKind::MissingField("pass"))?;
    let (options, freq) = rsplit_field(rest).ok_or(ParseErrorKind::MissingField("freq"))?;
    Ok(MountEntry {
        source,
        mount_point,
        fs_type,
        fs_subtype,
        options: split_options(options),
        freq: number(freq, "freq")?,
        pass: number(pass, "pass")?,
    })
}

/// Parses an fstab file (fstab(5)): fields separated by runs of blanks, `#` comments and blank
/// lines skipped, freq and pass optional (0 when missing), octal escapes decoded.
pub fn parse_fstab(table: &[u8]) -> Result<Vec<MountEntry>, ParseError> {
    let entries = parse_lines(table, |line| {
        let mut fields = line
            .split(|&b| b == b' ' || b == b'\t')
            .filter(|f| !f.is_empty())
            .peekable();
        if fields.peek().is_none_or(|f| f.starts_with(b"#")) {
            return Ok(None);
        }
        let mut next = |name| fields.next().ok_or(ParseErrorKind::MissingField(name));
        let source = OsString::from_vec(unescape(next("source")?));
        let mount_point = path_from(unescape(next("mount point")?));
        let (fs_type, fs_subtype) = parse_fs_type(next("filesystem type")?);
        let options = split_options(next("options")?);
        let freq = fields.next().map_or(Ok(0), |f| number(f, "freq"))?;
        let pass = fields.next().map_or(Ok(0), |f| number(f, "pass"))?;
        if fields.next().is_some() {
            return Err(ParseErrorKind::TooManyFields);
        }
        Ok(Some(MountEntry {
            source,
            mount_point,
            fs_type,
            fs_subtype,
            options,
            freq,
            pass,
        }))
    })?;
    Ok(entries.into_iter().flatten().collect())
}

/// True if a mount point from a table names `path`: equal, or equal once the ` (deleted)` the
/// kernel appends to an unlinked mount point is removed (mount-utils' `isMountPointMatch`, on
/// decoded paths).
pub fn mount_point_matches(mount_point: &Path, path: &Path) -> bool {
    if mount_point == path {
        return true;
    }
    mount_point
        .as_os_str()
        .as_bytes()
        .strip_suffix(b" (deleted)")
        .is_some_and(|p| p == path.as_os_str().as_bytes())
}

/// The mount that holds `path`: the last entry (the top of a stack) whose mount point is
/// `path` or one of its ancestors, the longest one winning. Lexical: pass a resolved path.
pub fn mount_holding<'a>(mounts: &'a [MountInfo], path: &Path) -> Option<&'a MountInfo> {
    let mut best: Option<&MountInfo> = None;
    for m in mounts {
        if path.starts_with(&m.mount_point)
            && best
                .is_none_or(|b| m.mount_point.as_os_str().len() >= b.mount_point.as_os_str().len())
        {
            best = Some(m);
        }
    }
    best
}

/// The other mount points of what is mounted at (or holds) `path`: mount-utils'
/// `SearchMountPoints` on decoded paths. Finds the mount holding `path`, works out which
/// directory of its filesystem `path` is, and returns the mount points of every *other* mount
/// with the same device and root, in table order. Lexical: pass a resolved path.
pub fn mount_refs(mounts: &[MountInfo], path: &Path) -> Vec<PathBuf> {
    let Some(holder) = mount_holding(mounts, path) else {
        return Vec::new();
    };
    let Ok(below) = path.strip_prefix(&holder.mount_point) else {
        return Vec::new();
    };
    let root = if below.as_os_str().is_empty() {
        holder.root.clone()
    } else {
        holder.root.join(below)
    };
    mounts
        .iter()
        .filter(|m| {
            m.id != holder.id
                && m.major == holder.major
                && m.minor == holder.minor
                && m.root == root
        })
        .map(|m| m.mount_point.clone())
        .collect()
}

/// Why [`consistent_read`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum ConsistentReadError<E> {
    /// A read failed.
    #[error(transparent)]
    Read(E),
    /// No two consecutive reads agreed.
    #[error("could not get consistent content after {attempts} attempts")]
    Inconsistent {
        /// The number of re-reads made.
        attempts: usize,
    },
}

/// Reads with `read` until two consecutive reads are byte-identical, re-reading at most
/// `attempts` times (at most `attempts + 1` reads, Go's `ConsistentRead`); `attempts == 0`
/// is a single read. Kernels before 5.8 could give torn reads of mount tables under churn
/// (go-originals.md §2.11).
pub async fn consistent_read<F, Fut, E>(
    attempts: usize,
    mut read: F,
) -> Result<Vec<u8>, ConsistentReadError<E>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Vec<u8>, E>>,
{
    let mut prev = read().await.map_err(ConsistentReadError::Read)?;
    if attempts == 0 {
        return Ok(prev);
    }
    for _ in 0..attempts {
        let next = read().await.map_err(ConsistentReadError::Read)?;
        if next == prev {
            return Ok(next);
        }
        prev = next;
    }
    Err(ConsistentReadError::Inconsistent { attempts })
}

// ---- internals ----

/// Bytes the kernel escapes in paths, sources and fs types (`mangle`, `seq_path_root`).
const PATH_SPECIALS: &[u8] = b" \t\n\\";
/// Bytes escaped here in options: the path set plus the comma that separates them.
const OPTION_SPECIALS: &[u8] = b" \t\n\\,";

fn parse_lines<T>(
    table: &[u8],
    mut parse: impl FnMut(&[u8]) -> Result<T, ParseErrorKind>,
) -> Result<Vec<T>, ParseError> {
    // Counting lines first (a vectorised byte count) sizes the result exactly: one allocation,
    // no multi-megabyte copy when a guess falls short.
    let lines = table.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut out = Vec::with_capacity(lines);
    for (i, line) in table.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match parse(line) {
            Ok(v) => out.push(v),
            Err(kind) => {
                return Err(ParseError {
                    line_no: i + 1,
                    line: String::from_utf8_lossy(line).into_owned(),
                    kind,
                })
            }
        }
    }
    Ok(out)
}

/// Single-space field cursor that can hand out the rest of the line.
struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8]) -> Self {
        Fields { rest: Some(line) }
    }

    fn next_opt(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        match rest.iter().position(|&b| b == b' ') {
            Some(i) => {
                self.rest = Some(&rest[i + 1..]);
                Some(&rest[..i])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    fn next(&mut self, name: &'static str) -> Result<&'a [u8], ParseErrorKind> {
        self.next_opt().ok_or(ParseErrorKind::MissingField(name))
    }

    fn rest(&mut self) -> Option<&'a [u8]> {
        self.rest.take()
    }
}

fn rsplit_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().rposition(|&b| b == b' ')?;
    Some((&s[..i], &s[i + 1..]))
}

fn number<T: TryFrom<u64>>(s: &[u8], name: &'static str) -> Result<T, ParseErrorKind> {
    if s.is_empty() || s.len() > 20 {
        return Err(ParseErrorKind::BadNumber(name));
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(ParseErrorKind::BadNumber(name));
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseErrorKind::BadNumber(name))?;
    }
    T::try_from(n).map_err(|_| ParseErrorKind::BadNumber(name))
}

fn parse_optional(tag: &[u8]) -> OptionalField {
    let num = |prefix: &[u8]| {
        tag.strip_prefix(prefix)
            .and_then(|n| number::<u64>(n, "").ok())
    };
    if let Some(n) = num(b"shared:") {
        OptionalField::Shared(n)
    } else if let Some(n) = num(b"master:") {
        OptionalField::Master(n)
    } else if let Some(n) = num(b"propagate_from:") {
        OptionalField::PropagateFrom(n)
    } else if tag == b"unbindable" {
        OptionalField::Unbindable
    } else {
        OptionalField::Other(String::from_utf8_lossy(tag).into_owned())
    }
}

fn parse_fs_type(raw: &[u8]) -> (String, Option<OsString>) {
    match raw.iter().position(|&b| b == b'.') {
        Some(i) => (
            lossy(unescape(&raw[..i])),
            Some(OsString::from_vec(unescape(&raw[i + 1..]))),
        ),
        None => (lossy(unescape(raw)), None),
    }
}

fn lossy(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn path_from(v: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(v))
}

/// Per-mount options: plain commas, a fixed ASCII vocabulary.
fn split_plain(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == b',')
        .filter(|o| !o.is_empty())
        .map(|o| String::from_utf8_lossy(o).into_owned())
        .collect()
}

/// Options split on commas outside double quotes, empty ones dropped, each decoded.
fn split_options(raw: &[u8]) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, &b) in raw.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                if i > start {
                    out.push(OsString::from_vec(unescape(&raw[start..i])));
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if raw.len() > start {
        out.push(OsString::from_vec(unescape(&raw[start..])));
    }
    out
}

/// Decodes `\ooo` octal escapes (three octal digits, value ≤ 255); any other backslash is
/// kept as it is.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&b'\\') {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\\' {
            if let Some(&[a, b, c]) = raw.get(i + 1..i + 4) {
                let octal = |d: u8| (b'0'..=b'7').contains(&d);
                if octal(a) && octal(b) && octal(c) {
                    let v =
                        u32::from(a - b'0') * 64 + u32::from(b - b'0') * 8 + u32::from(c - b'0');
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

/// Appends `raw` with every byte of `specials` written as `\ooo`, as the kernel does.
pub fn escape_into(raw: &[u8], specials: &[u8], out: &mut Vec<u8>) {
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

fn write_fs_type(fs_type: &str, subtype: Option<&OsStr>, out: &mut Vec<u8>) {
    escape_into(fs_type.as_bytes(), PATH_SPECIALS, out);
    if let Some(sub) = subtype {
        out.push(b'.');
        escape_into(sub.as_bytes(), PATH_SPECIALS, out);
    }
}

fn write_options(options: &[OsString], out: &mut Vec<u8>) {
    for (i, o) in options.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape_into(o.as_bytes(), OPTION_SPECIALS, out);
    }
}

/// Serialisation helpers: strings as findmnt `--json` prints them (decoded). findmnt writes
/// non-UTF-8 bytes raw, which is not valid JSON; here they become U+FFFD. Use the Rust API
/// for byte-exact paths.
#[cfg(feature = "serde")]
mod ser {
    use std::ffi::OsString;
    use std::path::Path;

    use serde::Serializer;

    pub(super) fn path<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string_lossy())
    }

    pub(super) fn os<S: Serializer>(p: &OsString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string_lossy())
    }

    pub(super) fn opt_os<S: Serializer>(p: &Option<OsString>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_some(&p.to_string_lossy()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn os_vec<S: Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|o| o.to_string_lossy()))
    }
}
