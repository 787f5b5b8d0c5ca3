//! The kernel's mount tables, parsed: `/proc/PID/mountinfo` into [`MountInfo`], the
//! `/proc/PID/mounts` format into [`MountEntry`], and fstab files.
//!
//! Pure: no I/O here. The functions take the bytes of a table and return owned entries.
//!
//! # Kernel facts the parser rests on
//!
//! - Fields are separated by **one** space. A field may be empty: `mount -t tmpfs "" dir`
//!   prints an empty source (`- tmpfs  rw`, kernel 6.18). Go's `strings.Fields` collapses the
//!   two spaces and fails the whole table (kubernetes/kubernetes#66134); here the
//!   empty field is an empty [`MountInfo::source`].
//! - Paths (root, mount point, source, fs type) are escaped with `\ooo` octal for space, tab,
//!   newline and backslash (`\040 \011 \012 \134`); other bytes, including non-UTF-8 ones, are
//!   printed raw. Go never decoded the escapes (moby/moby#38458 is the same bug); here they are decoded to bytes and the
//!   paths are [`PathBuf`]s built from those bytes, never through a lossy UTF-8 step.
//! - Super options are escaped by `seq_show_option` (`,`, `=`, space, tab, newline, backslash in
//!   values), but some filesystems print quoted values with raw commas (SELinux
//!   `context="a,b"`): options are split on commas outside double quotes, then decoded.
//! - A bind mount of a file that was deleted has `//deleted` appended to its **root**
//!   (kernel 6.18); it is stripped into [`MountInfo::root_deleted`].
//!   A mount point whose directory was unlinked gets ` (deleted)` appended to the mount point;
//!   that is kept in the path (a directory may really be named so), and
//!   [`mount_point_matches`] accepts it.
//!
//! # Speed
//!
//! Reading a table costs the kernel ~2 µs per mount (~20 ms at 10,000 on kernel 6.18); the parse
//! is meant to add at most 30 % to that. [`parse_mountinfo`] makes **no allocation per entry**:
//! one buffer holds the text of the whole table (sized by the table, since decoding never
//! makes a field longer), one vector the entries (sized by counting lines first). Each
//! [`MountInfo`] shares that buffer and knows where its decoded paths, its source and fs type,
//! and its option fields and propagation tags (as printed) lie in it, and hands them out
//! through accessors; options and tags are split and decoded when read ([`Options`],
//! [`OptionalFields`]). Earlier layouts, an owned `PathBuf`/`String` per field and per option
//! (~12 allocations per entry), then one buffer per entry, spent ~45 % and then ~15 % of the
//! parse in malloc and free. Fields are found with a plain byte loop (they are short: the call
//! and set-up of a vectorised search cost more), lines and long fields with `memchr`, and a
//! field without a backslash is copied as it is. [`MountEntry`] (`/proc/mounts`, fstab) is
//! not on that path and keeps plain owned fields. [`parse_mountinfo_piece`] does the same for
//! one piece of a table (one buffer per piece): [`Mount::list`](crate::Mount::list) parses
//! the pieces while the backend reads the next, so that little of the parse follows the read.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One line of `/proc/PID/mountinfo` (proc(5)), decoded.
///
/// The numbers and the propagation tags are fields; the paths, the source, the filesystem
/// type and the two option fields are read through accessors ([`MountInfo::root`],
/// [`MountInfo::mount_point`], [`MountInfo::source`], [`MountInfo::fs_type`],
/// [`MountInfo::mount_options`], …) from **one** buffer per entry. That is what makes
/// [`list`](crate::Mount::list) cost little more than reading the table: an owned string per
/// path and per option made ~12 allocations per entry, and at 10,000 mounts malloc and free
/// took longer than the kernel took to print the table (measured with perf). Paths are
/// decoded once, at parse time; options are kept as printed and decoded when read.
///
/// [`MountInfoFields`] is the same entry as plain owned fields, to build one or take one
/// apart.
///
/// ```
/// use std::path::Path;
/// use hostexec_mount::mountinfo::{parse_mountinfo, OptionalField};
/// let table = b"36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n";
/// let m = &parse_mountinfo(table).unwrap()[0];
/// assert_eq!((m.id, m.parent_id, m.major, m.minor), (36, 35, 98, 0));
/// assert_eq!(m.mount_point(), Path::new("/mnt 2"));
/// assert_eq!(m.root(), Path::new("/mnt1"));
/// assert_eq!(m.optional_fields(), [OptionalField::Master(1)]);
/// assert_eq!(m.fs_type(), "ext3");
/// assert_eq!(m.source(), "/dev/root");
/// assert_eq!(m.super_options(), ["rw", "errors=continue"]);
/// assert!(m.mount_options().contains("noatime"));
/// ```
#[derive(Clone)]
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
    /// The bind-mounted file or directory was deleted (the kernel printed `//deleted`).
    pub root_deleted: bool,
    /// The text of the whole table this entry was parsed from, shared by its entries: per
    /// entry, root, mount point, source, fs type, subtype (decoded), then the per-mount
    /// options, the propagation tags and the superblock options (as printed), back to back.
    text: Shared,
    /// Where this entry's first part starts in `text`.
    start: usize,
    /// Where each of this entry's parts ends in `text`.
    ends: [usize; PARTS],
    /// A subtype was printed (`fuse.` has an empty one).
    has_subtype: bool,
}

/// The text buffer of a table, shared by its entries. Each entry takes its handle while the
/// table is parsed (the count is hot then, and the entry is written once); the text is set
/// when the last line is done.
type Shared = Arc<OnceLock<Vec<u8>>>;

/// The parts of [`MountInfo`]'s buffer, in order.
const ROOT: usize = 0;
const MOUNT_POINT: usize = 1;
const SOURCE: usize = 2;
const FS_TYPE: usize = 3;
const SUBTYPE: usize = 4;
const MOUNT_OPTIONS: usize = 5;
const OPTIONAL_FIELDS: usize = 6;
const SUPER_OPTIONS: usize = 7;
const PARTS: usize = 8;

/// A [`MountInfo`] as plain owned fields: to build an entry (tests, synthetic tables) or to
/// take one apart. `MountInfo::from(fields)` and [`MountInfo::to_fields`] convert.
///
/// `#[non_exhaustive]` (the kernel may add fields to mountinfo): start from
/// [`MountInfoFields::default`] and set the public fields.
///
/// ```
/// use std::path::Path;
/// use hostexec_mount::mountinfo::{MountInfo, MountInfoFields};
/// let mut f = MountInfoFields::default();
/// f.id = 40;
/// f.parent_id = 1;
/// f.mount_point = "/mnt/x".into();
/// f.fs_type = "tmpfs".into();
/// f.source = "scratch".into();
/// let m = MountInfo::from(f);
/// assert_eq!((m.id, m.mount_point()), (40, Path::new("/mnt/x")));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MountInfoFields {
    /// [`MountInfo::id`].
    pub id: u64,
    /// [`MountInfo::parent_id`].
    pub parent_id: u64,
    /// [`MountInfo::major`].
    pub major: u32,
    /// [`MountInfo::minor`].
    pub minor: u32,
    /// [`MountInfo::root`].
    pub root: PathBuf,
    /// [`MountInfo::root_deleted`].
    pub root_deleted: bool,
    /// [`MountInfo::mount_point`].
    pub mount_point: PathBuf,
    /// [`MountInfo::mount_options`], one per element.
    pub mount_options: Vec<String>,
    /// [`MountInfo::optional_fields`].
    pub optional_fields: Vec<OptionalField>,
    /// [`MountInfo::fs_type`].
    pub fs_type: String,
    /// [`MountInfo::fs_subtype`].
    pub fs_subtype: Option<OsString>,
    /// [`MountInfo::source`].
    pub source: OsString,
    /// [`MountInfo::super_options`], one per element, decoded.
    pub super_options: Vec<OsString>,
}

/// Fills the text buffer of one table (or one entry) part by part, entry after entry.
struct TextBuilder {
    text: Vec<u8>,
    /// Where the current entry starts.
    start: usize,
    /// Where the current entry's parts end.
    ends: [usize; PARTS],
    next: usize,
}

impl TextBuilder {
    fn with_capacity(n: usize) -> Self {
        TextBuilder {
            text: Vec::with_capacity(n),
            start: 0,
            ends: [0; PARTS],
            next: 0,
        }
    }

    /// Starts the next entry, after the text of the previous ones.
    fn begin(&mut self) {
        self.start = self.text.len();
        self.next = 0;
    }

    /// Drops the text of an entry that failed to parse.
    fn abandon(&mut self) {
        self.text.truncate(self.start);
    }

    fn end_part(&mut self) {
        if let Some(e) = self.ends.get_mut(self.next) {
            *e = self.text.len();
        }
        self.next += 1;
    }

    /// A decoded part from its escaped form.
    fn unescaped(&mut self, raw: &[u8]) {
        unescape_into(raw, &mut self.text);
        self.end_part();
    }

    /// A part as it is.
    fn raw(&mut self, raw: &[u8]) {
        self.text.extend_from_slice(raw);
        self.end_part();
    }

    /// The fs type: decoded, and made valid UTF-8 (lossy) so that it can be handed out as
    /// `&str`. The kernel's type names are ASCII.
    fn fs_type(&mut self, raw: &[u8]) {
        let start = self.text.len();
        unescape_into(raw, &mut self.text);
        let t = &self.text[start..];
        if !t.is_ascii() && std::str::from_utf8(t).is_err() {
            let fixed = String::from_utf8_lossy(&self.text[start..]).into_owned();
            self.text.truncate(start);
            self.text.extend_from_slice(fixed.as_bytes());
        }
        self.end_part();
    }
}

impl From<MountInfoFields> for MountInfo {
    fn from(f: MountInfoFields) -> MountInfo {
        let mut b = TextBuilder::with_capacity(64);
        b.begin();
        b.raw(f.root.as_os_str().as_bytes());
        b.raw(f.mount_point.as_os_str().as_bytes());
        b.raw(f.source.as_bytes());
        b.raw(f.fs_type.as_bytes());
        b.raw(
            f.fs_subtype
                .as_deref()
                .map(OsStr::as_bytes)
                .unwrap_or_default(),
        );
        write_option_list(f.mount_options.iter().map(|o| o.as_bytes()), &mut b.text);
        b.end_part();
        for (i, tag) in f.optional_fields.iter().enumerate() {
            use std::io::Write as _;
            let sep = if i > 0 { " " } else { "" };
            let _ = write!(b.text, "{sep}{tag}");
        }
        b.end_part();
        write_option_list(f.super_options.iter().map(|o| o.as_bytes()), &mut b.text);
        b.end_part();
        MountInfo {
            id: f.id,
            parent_id: f.parent_id,
            major: f.major,
            minor: f.minor,
            root_deleted: f.root_deleted,
            start: b.start,
            ends: b.ends,
            text: Arc::new(OnceLock::from(b.text)),
            has_subtype: f.fs_subtype.is_some(),
        }
    }
}

/// Options joined with commas, each escaped as the kernel would (commas, blanks, backslashes).
fn write_option_list<'a>(options: impl Iterator<Item = &'a [u8]>, out: &mut Vec<u8>) {
    let mut first = true;
    for o in options.filter(|o| !o.is_empty()) {
        if !first {
            out.push(b',');
        }
        first = false;
        escape_into(o, OPTION_SPECIALS, out);
    }
}

/// A propagation tag of a mount (the optional fields of mountinfo).
///
/// `#[non_exhaustive]`: a tag the kernel adds later may get its own variant (today it is
/// [`OptionalField::Other`]); match with a wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    fn part(&self, i: usize) -> &[u8] {
        let start = match i.checked_sub(1) {
            Some(prev) => self.ends.get(prev).copied().unwrap_or(self.start),
            None => self.start,
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.table().get(start..end).unwrap_or_default()
    }

    /// The text of the table this entry is from (set once the parse is done, before any
    /// entry is handed out).
    fn table(&self) -> &[u8] {
        self.text.get().map(Vec::as_slice).unwrap_or_default()
    }

    /// All of this entry's text.
    fn own_text(&self) -> &[u8] {
        let end = self.ends.last().copied().unwrap_or(self.start);
        self.table().get(self.start..end).unwrap_or_default()
    }

    /// The same entry parts relative to its own start: equal for equal entries wherever
    /// their text is.
    fn relative_ends(&self) -> [usize; PARTS] {
        self.ends.map(|e| e.saturating_sub(self.start))
    }

    /// The directory of the filesystem that forms the root of this mount (`/` unless a
    /// subdirectory or file was bind-mounted), with the `//deleted` marker removed.
    pub fn root(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.part(ROOT)))
    }

    /// Where the mount is, relative to the root of the process whose table this is.
    pub fn mount_point(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.part(MOUNT_POINT)))
    }

    /// The mount source (device, `server:/export`, `tmpfs`, …); may be empty.
    pub fn source(&self) -> &OsStr {
        OsStr::from_bytes(self.part(SOURCE))
    }

    /// The filesystem type, without the subtype (`fuse` for `fuse.sshfs`).
    pub fn fs_type(&self) -> &str {
        std::str::from_utf8(self.part(FS_TYPE)).unwrap_or_default()
    }

    /// The subtype, for filesystems that have one (`sshfs` for `fuse.sshfs`). It comes from
    /// user space (FUSE), so it may hold any byte.
    pub fn fs_subtype(&self) -> Option<&OsStr> {
        self.has_subtype
            .then(|| OsStr::from_bytes(self.part(SUBTYPE)))
    }

    /// Per-mount options (`rw`, `nosuid`, `relatime`, …): a fixed kernel vocabulary.
    pub fn mount_options(&self) -> Options<'_> {
        Options {
            raw: self.part(MOUNT_OPTIONS),
        }
    }

    /// Propagation tags (`shared:N`, `master:N`, `propagate_from:N`, `unbindable`), parsed
    /// when read.
    pub fn optional_fields(&self) -> OptionalFields<'_> {
        OptionalFields {
            raw: self.part(OPTIONAL_FIELDS),
        }
    }

    /// Per-superblock options; [`Options::iter`] splits them on commas outside double
    /// quotes and decodes each. Quotes are kept (`context="a,b"`).
    pub fn super_options(&self) -> Options<'_> {
        Options {
            raw: self.part(SUPER_OPTIONS),
        }
    }

    /// The entry as plain owned fields.
    pub fn to_fields(&self) -> MountInfoFields {
        MountInfoFields {
            id: self.id,
            parent_id: self.parent_id,
            major: self.major,
            minor: self.minor,
            root: self.root().to_path_buf(),
            root_deleted: self.root_deleted,
            mount_point: self.mount_point().to_path_buf(),
            mount_options: self
                .mount_options()
                .iter()
                .map(|o| o.to_string_lossy().into_owned())
                .collect(),
            optional_fields: self.optional_fields().iter().collect(),
            fs_type: self.fs_type().to_owned(),
            fs_subtype: self.fs_subtype().map(OsStr::to_os_string),
            source: self.source().to_os_string(),
            super_options: self
                .super_options()
                .iter()
                .map(std::borrow::Cow::into_owned)
                .collect(),
        }
    }

    /// The filesystem type as findmnt and the kernel print it: `fuse.sshfs`, `ext4`.
    pub fn fs_type_full(&self) -> OsString {
        let mut t = OsString::from(self.fs_type());
        if let Some(sub) = self.fs_subtype() {
            t.push(".");
            t.push(sub);
        }
        t
    }

    /// The peer group this mount is shared in, if any.
    pub fn shared_group(&self) -> Option<u64> {
        self.optional_fields().iter().find_map(|f| match f {
            OptionalField::Shared(n) => Some(n),
            _ => None,
        })
    }

    /// True if the per-mount options or the superblock options say `ro`.
    pub fn is_read_only(&self) -> bool {
        self.mount_options().contains("ro") || self.super_options().contains("ro")
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
        escape_into(self.part(ROOT), PATH_SPECIALS, out);
        if self.root_deleted {
            out.extend_from_slice(b"//deleted");
        }
        out.push(b' ');
        escape_into(self.part(MOUNT_POINT), PATH_SPECIALS, out);
        out.push(b' ');
        out.extend_from_slice(self.part(MOUNT_OPTIONS));
        let tags = self.part(OPTIONAL_FIELDS);
        if !tags.is_empty() {
            out.push(b' ');
            out.extend_from_slice(tags);
        }
        out.extend_from_slice(b" - ");
        write_fs_type(self.fs_type(), self.fs_subtype(), out);
        out.push(b' ');
        escape_into(self.part(SOURCE), PATH_SPECIALS, out);
        out.push(b' ');
        out.extend_from_slice(self.part(SUPER_OPTIONS));
        out.push(b'\n');
    }
}

impl PartialEq for MountInfo {
    /// Equal when every field is, options compared decoded.
    fn eq(&self, o: &Self) -> bool {
        (
            self.id,
            self.parent_id,
            self.major,
            self.minor,
            self.root_deleted,
        ) == (o.id, o.parent_id, o.major, o.minor, o.root_deleted)
            && self.optional_fields() == o.optional_fields()
            && self.has_subtype == o.has_subtype
            && ((self.relative_ends() == o.relative_ends() && self.own_text() == o.own_text())
                || ([ROOT, MOUNT_POINT, SOURCE, FS_TYPE, SUBTYPE]
                    .iter()
                    .all(|&p| self.part(p) == o.part(p))
                    && self.mount_options() == o.mount_options()
                    && self.super_options() == o.super_options()))
    }
}

impl Eq for MountInfo {}

impl std::hash::Hash for MountInfo {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.id,
            self.parent_id,
            self.major,
            self.minor,
            self.root_deleted,
        )
            .hash(state);
        for tag in self.optional_fields() {
            tag.hash(state);
        }
        for part in [ROOT, MOUNT_POINT, SOURCE, FS_TYPE] {
            self.part(part).hash(state);
        }
        self.fs_subtype().hash(state);
        self.mount_options().hash(state);
        self.super_options().hash(state);
    }
}

impl fmt::Debug for MountInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountInfo")
            .field("id", &self.id)
            .field("parent_id", &self.parent_id)
            .field("major", &self.major)
            .field("minor", &self.minor)
            .field("root", &self.root())
            .field("root_deleted", &self.root_deleted)
            .field("mount_point", &self.mount_point())
            .field("mount_options", &self.mount_options())
            .field("optional_fields", &self.optional_fields())
            .field("fs_type", &self.fs_type())
            .field("fs_subtype", &self.fs_subtype())
            .field("source", &self.source())
            .field("super_options", &self.super_options())
            .finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for MountInfo {
    /// The fields [`MountInfoFields`] has, strings decoded (non-UTF-8 bytes as U+FFFD).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = s.serialize_struct("MountInfo", 13)?;
        st.serialize_field("id", &self.id)?;
        st.serialize_field("parent_id", &self.parent_id)?;
        st.serialize_field("major", &self.major)?;
        st.serialize_field("minor", &self.minor)?;
        st.serialize_field("root", &self.root().to_string_lossy())?;
        st.serialize_field("root_deleted", &self.root_deleted)?;
        st.serialize_field("mount_point", &self.mount_point().to_string_lossy())?;
        st.serialize_field("mount_options", &self.mount_options())?;
        st.serialize_field("optional_fields", &self.optional_fields())?;
        st.serialize_field("fs_type", self.fs_type())?;
        st.serialize_field("fs_subtype", &self.fs_subtype().map(OsStr::to_string_lossy))?;
        st.serialize_field("source", &self.source().to_string_lossy())?;
        st.serialize_field("super_options", &self.super_options())?;
        st.end()
    }
}

/// A comma-separated option field of a [`MountInfo`], as the kernel printed it, decoded when
/// read: options are split on commas outside double quotes, empty ones skipped, and each
/// one's octal escapes decoded ([`unescape`]). Equality and hashing are on the decoded
/// options.
///
/// ```
/// use std::ffi::OsStr;
/// use hostexec_mount::mountinfo::{parse_mountinfo, Options};
/// let m = &parse_mountinfo(br#"1 0 8:1 / / rw - ext4 /dev/sda1 rw,context="a,b",label=x\040y"#).unwrap()[0];
/// let o: Options<'_> = m.super_options();
/// let v: Vec<_> = o.iter().collect();
/// assert_eq!(v[1], OsStr::new(r#"context="a,b""#));
/// assert!(o.contains("label=x y"));
/// assert_eq!(o, ["rw", r#"context="a,b""#, "label=x y"]);
/// assert_eq!(o.joined(), OsStr::new(r#"rw,context="a,b",label=x y"#));
/// assert_eq!(o.as_raw(), br#"rw,context="a,b",label=x\040y"#);
/// ```
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    raw: &'a [u8],
}

impl<'a> Options<'a> {
    /// The options as printed in mountinfo (escaped, comma-separated).
    pub fn from_raw(raw: &'a [u8]) -> Self {
        Options { raw }
    }

    /// The printed form.
    pub fn as_raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The options, decoded, in order (borrowed unless an option has an escape).
    pub fn iter(&self) -> OptionIter<'a> {
        OptionIter { rest: self.raw }
    }

    /// True if one option is exactly `name` (decoded).
    pub fn contains(&self, name: impl AsRef<OsStr>) -> bool {
        let name = name.as_ref().as_bytes();
        raw_options(self.raw).any(|raw| {
            if raw.contains(&b'\\') {
                unescape(raw) == name
            } else {
                raw == name
            }
        })
    }

    /// How many options there are.
    pub fn len(&self) -> usize {
        raw_options(self.raw).count()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        raw_options(self.raw).next().is_none()
    }

    /// The decoded options joined with commas, as findmnt prints them (borrowed when nothing
    /// needs decoding).
    pub fn joined(&self) -> Cow<'a, OsStr> {
        let raw = self.raw;
        // One pass that the compiler vectorises: no escape and no empty option.
        let doubled = raw
            .iter()
            .zip(raw.iter().skip(1))
            .fold(false, |acc, (&a, &b)| acc | ((a == b',') & (b == b',')));
        let plain = find_byte(b'\\', raw).is_none()
            && !raw.starts_with(b",")
            && !raw.ends_with(b",")
            && !doubled;
        if plain {
            return Cow::Borrowed(OsStr::from_bytes(raw));
        }
        let mut out = Vec::with_capacity(raw.len());
        for (i, o) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(o.as_bytes());
        }
        Cow::Owned(OsString::from_vec(out))
    }
}

/// The propagation tags of a [`MountInfo`], as printed, parsed when read.
///
/// ```
/// use hostexec_mount::mountinfo::{parse_mountinfo, OptionalField};
/// let m = &parse_mountinfo(b"1 0 8:1 / / rw shared:1 master:7 - ext4 /dev/sda1 rw").unwrap()[0];
/// assert_eq!(m.optional_fields(), [OptionalField::Shared(1), OptionalField::Master(7)]);
/// assert_eq!(m.optional_fields().len(), 2);
/// assert_eq!(m.shared_group(), Some(1));
/// ```
#[derive(Clone, Copy, Default)]
pub struct OptionalFields<'a> {
    raw: &'a [u8],
}

impl<'a> OptionalFields<'a> {
    /// The tags, in order.
    pub fn iter(&self) -> OptionalFieldIter<'a> {
        OptionalFieldIter { rest: self.raw }
    }

    /// How many tags there are.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

/// The tags of an [`OptionalFields`].
#[derive(Clone, Debug)]
pub struct OptionalFieldIter<'a> {
    rest: &'a [u8],
}

impl Iterator for OptionalFieldIter<'_> {
    type Item = OptionalField;

    fn next(&mut self) -> Option<OptionalField> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (tag, after) = match find_byte(b' ', self.rest) {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &self.rest[self.rest.len()..]),
            };
            self.rest = after;
            if !tag.is_empty() {
                return Some(parse_optional(tag));
            }
        }
    }
}

impl<'a> IntoIterator for OptionalFields<'a> {
    type Item = OptionalField;
    type IntoIter = OptionalFieldIter<'a>;
    fn into_iter(self) -> OptionalFieldIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &OptionalFields<'a> {
    type Item = OptionalField;
    type IntoIter = OptionalFieldIter<'a>;
    fn into_iter(self) -> OptionalFieldIter<'a> {
        self.iter()
    }
}

impl PartialEq for OptionalFields<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw || self.iter().eq(other.iter())
    }
}

impl Eq for OptionalFields<'_> {}

impl PartialEq<[OptionalField]> for OptionalFields<'_> {
    fn eq(&self, other: &[OptionalField]) -> bool {
        self.iter().eq(other.iter().cloned())
    }
}

impl<const N: usize> PartialEq<[OptionalField; N]> for OptionalFields<'_> {
    fn eq(&self, other: &[OptionalField; N]) -> bool {
        *self == other[..]
    }
}

impl PartialEq<Vec<OptionalField>> for OptionalFields<'_> {
    fn eq(&self, other: &Vec<OptionalField>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for OptionalFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for OptionalFields<'_> {
    /// A sequence of tags as printed (`"shared:1"`).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The first raw (still escaped) option of `rest` and what follows its comma: options are
/// split on commas outside double quotes, empty ones skipped.
fn next_raw_option(mut rest: &[u8]) -> Option<(&[u8], &[u8])> {
    loop {
        if rest.is_empty() {
            return None;
        }
        // A comma ends the option unless a double quote before it opened a quoted value.
        let comma = find_byte(b',', rest);
        let end = if find_byte(b'"', &rest[..comma.unwrap_or(rest.len())]).is_some() {
            let mut quoted = false;
            rest.iter().position(|&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                b == b',' && !quoted
            })
        } else {
            comma
        };
        let (item, after) = match end {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        if !item.is_empty() {
            return Some((item, after));
        }
        rest = after;
    }
}

/// The raw options of a field, in order.
fn raw_options(mut rest: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (item, after) = next_raw_option(rest)?;
        rest = after;
        Some(item)
    })
}

/// The decoded options of an [`Options`].
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Cow<'a, OsStr>;

    fn next(&mut self) -> Option<Self::Item> {
        let (item, after) = next_raw_option(self.rest)?;
        self.rest = after;
        Some(if item.contains(&b'\\') {
            Cow::Owned(OsString::from_vec(unescape(item)))
        } else {
            Cow::Borrowed(OsStr::from_bytes(item))
        })
    }
}

impl<'a> IntoIterator for Options<'a> {
    type Item = Cow<'a, OsStr>;
    type IntoIter = OptionIter<'a>;
    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Options<'a> {
    type Item = Cow<'a, OsStr>;
    type IntoIter = OptionIter<'a>;
    fn into_iter(self) -> OptionIter<'a> {
        self.iter()
    }
}

impl PartialEq for Options<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw || self.iter().eq(other.iter())
    }
}

impl Eq for Options<'_> {}

impl std::hash::Hash for Options<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for o in self.iter() {
            o.as_bytes().hash(state);
        }
    }
}

impl<S: AsRef<OsStr>> PartialEq<[S]> for Options<'_> {
    fn eq(&self, other: &[S]) -> bool {
        self.iter()
            .eq(other.iter().map(|s| Cow::Borrowed(s.as_ref())))
    }
}

impl<S: AsRef<OsStr>, const N: usize> PartialEq<[S; N]> for Options<'_> {
    fn eq(&self, other: &[S; N]) -> bool {
        *self == other[..]
    }
}

impl<S: AsRef<OsStr>> PartialEq<Vec<S>> for Options<'_> {
    fn eq(&self, other: &Vec<S>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl fmt::Display for Options<'_> {
    /// The decoded options joined with commas (lossy UTF-8).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.joined().to_string_lossy())
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Options<'_> {
    /// A sequence of decoded options (non-UTF-8 bytes as U+FFFD).
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(|o| o.to_string_lossy().into_owned()))
    }
}

/// One line of `/proc/PID/mounts` (the fstab format), decoded.
///
/// `#[non_exhaustive]`: build one with [`MountEntry::new`] (or [`MountEntry::default`]) and
/// set the other public fields.
///
/// ```
/// use hostexec_mount::mountinfo::MountEntry;
/// let mut e = MountEntry::new("scratch", "/mnt/x", "tmpfs");
/// e.options = vec!["rw".into(), "size=16m".into()];
/// let mut line = Vec::new();
/// e.write_line(&mut line);
/// assert_eq!(line, b"scratch /mnt/x tmpfs rw,size=16m 0 0\n");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
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
    /// `source` mounted on `mount_point` as `fs_type` (without a subtype: set
    /// [`fs_subtype`](Self::fs_subtype) for one), with no options and freq and pass 0.
    pub fn new(
        source: impl Into<OsString>,
        mount_point: impl Into<PathBuf>,
        fs_type: impl Into<String>,
    ) -> Self {
        MountEntry {
            source: source.into(),
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
            fs_subtype: None,
            options: Vec::new(),
            freq: 0,
            pass: 0,
        }
    }

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
#[non_exhaustive]
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
    /// Not the kernel's shape: a tab, or an empty field where the kernel prints one (two
    /// spaces in a row). The kernel separates fields with single spaces and escapes blanks
    /// inside them (`\040`, `\011`), so such a line was not printed by it, and splitting it
    /// would give nonsense fields.
    NotSingleSpaced,
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
            ParseErrorKind::NotSingleSpaced => {
                f.write_str("fields are not separated by single spaces as the kernel prints them")
            }
        }
    }
}

/// Parses the bytes of a `/proc/PID/mountinfo` file. Empty lines are skipped; any other line
/// that is not a mountinfo line fails the parse with its number and text.
///
/// The entries share one buffer holding the decoded text of the whole table (one allocation
/// for all of it, none per entry): cloning an entry is cheap, and an entry kept alive keeps
/// that buffer alive (about the size of the table). [`MountInfo::from`] a
/// [`MountInfo::to_fields`] gives an entry with a buffer of its own.
pub fn parse_mountinfo(table: &[u8]) -> Result<Vec<MountInfo>, ParseError> {
    // Decoding never makes a field longer, so the table's size is enough for all the text
    // (a non-UTF-8 fs type made lossy can grow it; the buffer then grows).
    let mut b = TextBuilder::with_capacity(table.len());
    let shared = Shared::default();
    let out = parse_lines(table, |line| {
        parse_mountinfo_into(line, &mut b, &shared).inspect_err(|_| b.abandon())
    })?;
    // Only this function sets it, once.
    let _ = shared.set(b.text);
    Ok(out)
}

/// Parses one piece of a `/proc/PID/mountinfo` file (whole lines, as
/// [`HostFs::read_mountinfo_pieces`](hostexec_api::HostFs::read_mountinfo_pieces) hands them
/// over), appending its entries to `out`. `lines` is the number of lines of the table before
/// this piece, and is advanced past it: a line that does not parse is reported with its
/// number in the whole table, as [`parse_mountinfo`] of the whole table would report it, and
/// `out` is left as it was.
///
/// The piece's entries share one buffer holding its decoded text (one allocation per piece,
/// none per entry). The pieces of a table parsed in order give the entries
/// [`parse_mountinfo`] gives for the table.
///
/// ```
/// use hostexec_mount::mountinfo::parse_mountinfo_piece;
/// let (mut lines, mut out) = (0, Vec::new());
/// parse_mountinfo_piece(b"1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", &mut lines, &mut out).unwrap();
/// let e = parse_mountinfo_piece(b"2 1 0:5 / /proc rw - proc\n", &mut lines, &mut out).unwrap_err();
/// assert_eq!((e.line_no, out.len()), (2, 1));
/// ```
pub fn parse_mountinfo_piece(
    piece: &[u8],
    lines: &mut usize,
    out: &mut Vec<MountInfo>,
) -> Result<(), ParseError> {
    let mut b = TextBuilder::with_capacity(piece.len());
    let shared = Shared::default();
    let kept = out.len();
    let newlines = parse_lines_into(piece, *lines, out, |line| {
        parse_mountinfo_into(line, &mut b, &shared)
    })
    .inspect_err(|_| out.truncate(kept))?;
    *lines += newlines;
    // Only this function sets it, once.
    let _ = shared.set(b.text);
    Ok(())
}

/// Parses one mountinfo line (without its newline).
pub fn parse_mountinfo_line(line: &[u8]) -> Result<MountInfo, ParseErrorKind> {
    let mut b = TextBuilder::with_capacity(line.len());
    let shared = Shared::default();
    let m = parse_mountinfo_into(line, &mut b, &shared)?;
    let _ = shared.set(b.text);
    Ok(m)
}

/// Parses one mountinfo line, appending its text to `b`; the entry's `text` is `text` (the
/// caller puts the finished buffer there).
fn parse_mountinfo_into(
    line: &[u8],
    b: &mut TextBuilder,
    text: &Shared,
) -> Result<MountInfo, ParseErrorKind> {
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
    let mount_options = f.next("mount options")?;
    // The tags up to the lone `-`, kept as printed (space-separated).
    let tags_from = f.rest.unwrap_or_default();
    let mut tags_len = 0;
    loop {
        match f.next_opt() {
            None => return Err(ParseErrorKind::MissingSeparator),
            Some(b"-") => break,
            Some(tag) => tags_len += tag.len() + 1,
        }
    }
    let optional_fields = &tags_from[..tags_len.saturating_sub(1)];
    let fs_type = f.next("filesystem type")?;
    let source = f.next("source")?;
    // The rest of the line: tolerant of raw spaces a filesystem might print.
    let super_options = f
        .rest()
        .ok_or(ParseErrorKind::MissingField("super options"))?;
    b.begin();
    b.unescaped(root_raw);
    b.unescaped(mount_point);
    b.unescaped(source);
    let (fs_type, subtype) = match fs_type.iter().position(|&c| c == b'.') {
        Some(i) => (&fs_type[..i], Some(&fs_type[i + 1..])),
        None => (fs_type, None),
    };
    b.fs_type(fs_type);
    b.unescaped(subtype.unwrap_or_default());
    b.raw(mount_options);
    b.raw(optional_fields);
    b.raw(super_options);
    Ok(MountInfo {
        id,
        parent_id,
        major,
        minor,
        root_deleted,
        text: Arc::clone(text),
        start: b.start,
        ends: b.ends,
        has_subtype: subtype.is_some(),
    })
}

/// Parses the bytes of a `/proc/PID/mounts` file: six fields separated by single spaces, as
/// the kernel prints them. A line of another shape (a tab, two spaces in a row other than
/// before an empty source) is [`ParseErrorKind::NotSingleSpaced`]; fstab files, which allow
/// runs of blanks, go through [`parse_fstab`].
pub fn parse_proc_mounts(table: &[u8]) -> Result<Vec<MountEntry>, ParseError> {
    parse_lines(table, parse_proc_mounts_line)
}

/// Parses one `/proc/PID/mounts` line (without its newline).
pub fn parse_proc_mounts_line(line: &[u8]) -> Result<MountEntry, ParseErrorKind> {
    if memchr::memchr(b'\t', line).is_some() {
        return Err(ParseErrorKind::NotSingleSpaced);
    }
    // Only the source may be empty (`mount -t tmpfs "" dir` prints a leading space).
    let non_empty = |f: &'_ [u8]| {
        if f.is_empty() {
            Err(ParseErrorKind::NotSingleSpaced)
        } else {
            Ok(())
        }
    };
    let mut f = Fields::new(line);
    let source = OsString::from_vec(unescape(f.next("source")?));
    let mount_point = f.next("mount point")?;
    non_empty(mount_point)?;
    let mount_point = path_from(unescape(mount_point));
    let fs_type = f.next("filesystem type")?;
    non_empty(fs_type)?;
    let (fs_type, fs_subtype) = parse_fs_type(fs_type);
    let rest = f.rest().ok_or(ParseErrorKind::MissingField("options"))?;
    // freq and pass are the last two fields; the options are what lies before them.
    let (rest, pass) = rsplit_field(rest).ok_or(ParseErrorKind::MissingField("pass"))?;
    let (options, freq) = rsplit_field(rest).ok_or(ParseErrorKind::MissingField("freq"))?;
    // Options may hold a raw space a filesystem printed unescaped, but never at either end.
    non_empty(options)?;
    if options.starts_with(b" ") || options.ends_with(b" ") {
        return Err(ParseErrorKind::NotSingleSpaced);
    }
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
        if path.starts_with(m.mount_point())
            && best.is_none_or(|b| {
                m.mount_point().as_os_str().len() >= b.mount_point().as_os_str().len()
            })
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
    let Ok(below) = path.strip_prefix(holder.mount_point()) else {
        return Vec::new();
    };
    let root = if below.as_os_str().is_empty() {
        holder.root().to_path_buf()
    } else {
        holder.root().join(below)
    };
    mounts
        .iter()
        .filter(|m| {
            m.id != holder.id
                && m.major == holder.major
                && m.minor == holder.minor
                && m.root() == root
        })
        .map(|m| m.mount_point().to_path_buf())
        .collect()
}

// ---- internals ----

/// Bytes the kernel escapes in paths, sources and fs types (`mangle`, `seq_path_root`).
const PATH_SPECIALS: &[u8] = hostexec_api::path::MOUNTINFO_SPECIALS;
/// Bytes escaped here in options: the path set plus the comma that separates them.
const OPTION_SPECIALS: &[u8] = b" \t\n\\,";

/// The first `needle` in `hay`: a plain loop over the first 32 bytes, where the short fields
/// of a table line end (it beats the call and set-up of a vectorised search), then `memchr`.
#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    let (head, tail) = hay.split_at(hay.len().min(32));
    match head.iter().position(|&b| b == needle) {
        Some(i) => Some(i),
        None if tail.is_empty() => None,
        None => memchr::memchr(needle, tail).map(|i| i + head.len()),
    }
}

fn parse_lines<T>(
    table: &[u8],
    parse: impl FnMut(&[u8]) -> Result<T, ParseErrorKind>,
) -> Result<Vec<T>, ParseError> {
    let mut out = Vec::new();
    parse_lines_into(table, 0, &mut out, parse)?;
    Ok(out)
}

/// Appends what `parse` makes of each non-empty line of `table` to `out`, the lines numbered
/// from `before + 1`; the number of newlines in `table`.
fn parse_lines_into<T>(
    table: &[u8],
    before: usize,
    out: &mut Vec<T>,
    mut parse: impl FnMut(&[u8]) -> Result<T, ParseErrorKind>,
) -> Result<usize, ParseError> {
    // Counting lines first sizes the result exactly: one allocation, no multi-megabyte copy
    // when a guess falls short.
    let newlines = memchr::memchr_iter(b'\n', table).count();
    out.reserve_exact(newlines + 1);
    let mut rest = table;
    let mut i = before;
    loop {
        let (line, after) = match memchr::memchr(b'\n', rest) {
            Some(n) => (&rest[..n], Some(&rest[n + 1..])),
            None => (rest, None),
        };
        i += 1;
        if !line.is_empty() {
            let v = parse(line).map_err(|kind| ParseError {
                line_no: i,
                line: String::from_utf8_lossy(line).into_owned(),
                kind,
            })?;
            out.push(v);
        }
        match after {
            Some(a) => rest = a,
            None => return Ok(newlines),
        }
    }
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
        match find_byte(b' ', rest) {
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
    let i = memchr::memrchr(b' ', s)?;
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

/// Options split on commas outside double quotes, empty ones dropped, each decoded.
fn split_options(raw: &[u8]) -> Vec<OsString> {
    raw_options(raw)
        .map(|o| OsString::from_vec(unescape(o)))
        .collect()
}

/// Decodes `\ooo` octal escapes (three octal digits, value ≤ 255); any other backslash is
/// kept as it is.
pub fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    unescape_into(raw, &mut out);
    out
}

/// [`unescape`], appending to `out`.
fn unescape_into(raw: &[u8], out: &mut Vec<u8>) {
    let Some(first) = find_byte(b'\\', raw) else {
        out.extend_from_slice(raw);
        return;
    };
    out.extend_from_slice(&raw[..first]);
    let mut i = first;
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
}

/// Appends `raw` with every byte of `specials` written as `\ooo`, as the kernel does (the
/// contract crate's [`mountinfo_escape`](hostexec_api::path::mountinfo_escape), which backends
/// rendering one mount's line use too).
pub use hostexec_api::path::mountinfo_escape as escape_into;

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
