//! [`MountOptions`] and [`UnmountOptions`]: what a mount or unmount is asked to do.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::time::Duration;

use hostexec_api::{MountAttrs, MountRequest, TargetLookup};

/// How long a mount may take by default before its process group is killed.
pub const DEFAULT_MOUNT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an unmount may take by default, force step included.
pub const DEFAULT_UNMOUNT_TIMEOUT: Duration = Duration::from_secs(60);

/// The text that stands for a sensitive option wherever options are shown.
pub const MASKED: &str = "<masked>";

/// The options of one mount: ordinary options, sensitive ones (passwords, keys), raw mount(8)
/// flags, whether a systemd scope may be used, and a timeout.
///
/// Sensitive options reach mount(8) and nothing else: `Debug`, errors and logs show
/// `<masked>` for each (as mount-utils' `MakeMountArgsSensitive` logs them), and they are scrubbed from mount's own
/// messages before those reach an error: each option whole, its value, each of its
/// comma-separated parts (mount(8) splits `-o` on commas) and their values, and, when the
/// capture was cut at its limit, a secret's prefix that ends it. A bare value shorter than 4
/// bytes (`u` of `user=u`) is masked only where it stands as a token of its own, so that
/// `refusing` keeps its `u`; `user=u` itself is masked everywhere.
///
/// ```
/// use hostexec_mount::MountOptions;
/// let o = MountOptions::new().option("vers=4").sensitive("password=hunter2");
/// assert_eq!(o.shown(), "vers=4,<masked>");
/// assert!(!format!("{o:?}").contains("hunter2"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MountOptions {
    options: Vec<OsString>,
    sensitive: Vec<OsString>,
    /// Sensitive options moved out of the argv into a credentials file: no longer passed,
    /// still masked when shown and scrubbed from mount(8)'s messages.
    moved: Vec<OsString>,
    flags: Vec<OsString>,
    no_systemd: bool,
    timeout: Option<Duration>,
    helper_only: bool,
    lookup: TargetLookup,
}

impl MountOptions {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an ordinary option (`ro`, `bind`, `size=1m`).
    pub fn option(mut self, opt: impl Into<OsString>) -> Self {
        self.options.push(opt.into());
        self
    }

    /// Adds ordinary options.
    pub fn options<I, S>(mut self, opts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.options.extend(opts.into_iter().map(Into::into));
        self
    }

    /// Adds a sensitive option: passed to mount(8), shown as `<masked>` everywhere else.
    pub fn sensitive(mut self, opt: impl Into<OsString>) -> Self {
        self.sensitive.push(opt.into());
        self
    }

    /// Adds a raw mount(8) flag that goes before `-t` (`--no-canonicalize`, `-n`).
    pub fn flag(mut self, flag: impl Into<OsString>) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// Never wraps the mount in a systemd scope (mount-utils' `MountSensitiveWithoutSystemd`).
    pub fn without_systemd(mut self) -> Self {
        self.no_systemd = true;
        self
    }

    /// The ordinary options.
    pub fn get_options(&self) -> &[OsString] {
        &self.options
    }

    /// How many sensitive options there are (their values are not handed out again).
    pub fn sensitive_count(&self) -> usize {
        self.sensitive.len()
    }

    /// The raw mount(8) flags.
    pub fn get_flags(&self) -> &[OsString] {
        &self.flags
    }

    /// True unless [`MountOptions::without_systemd`] was called.
    pub fn allows_systemd(&self) -> bool {
        !self.no_systemd
    }

    /// True if `name` is among the ordinary or the sensitive options, exactly.
    pub fn has(&self, name: &str) -> bool {
        self.options
            .iter()
            .chain(&self.sensitive)
            .any(|o| o == name)
    }

    /// True if an option, sensitive option or flag holds a NUL byte (no kernel or command
    /// interface can carry it).
    pub(crate) fn contains_nul(&self) -> bool {
        self.options
            .iter()
            .chain(&self.sensitive)
            .chain(&self.flags)
            .any(|o| o.as_bytes().contains(&0))
    }

    /// True for a bind mount: an option is exactly `bind` (`rbind` does not count, as in
    /// mount-utils' `MakeBindOpts`).
    pub fn is_bind(&self) -> bool {
        self.has("bind")
    }

    /// The options as they may be shown: ordinary ones joined with commas, then one
    /// `<masked>` per sensitive option (mount-utils' `sanitizedOptionsForLogging`).
    pub fn shown(&self) -> String {
        let mut parts: Vec<String> = self
            .options
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        parts.extend(
            self.sensitive
                .iter()
                .chain(&self.moved)
                .map(|_| MASKED.to_owned()),
        );
        parts.join(",")
    }

    /// The `-o` argument: (what mount(8) receives, what may be shown). `None` when there are
    /// no options at all.
    pub(crate) fn joined(&self) -> Option<(OsString, String)> {
        if self.options.is_empty() && self.sensitive.is_empty() {
            return None;
        }
        let mut real = Vec::new();
        for (i, o) in self.options.iter().chain(&self.sensitive).enumerate() {
            if i > 0 {
                real.push(b',');
            }
            real.extend_from_slice(o.as_bytes());
        }
        Some((OsString::from_vec(real), self.shown()))
    }

    /// What to scrub from mount(8)'s messages, by the rule documented at [`scrub`]: each
    /// sensitive option whole, its value, and, since mount(8) splits `-o` on commas, each
    /// comma-separated part of it and that part's value.
    pub(crate) fn secrets(&self) -> Vec<Secret> {
        let mut out: Vec<Secret> = Vec::new();
        let mut add = |bytes: &[u8]| {
            if !bytes.is_empty() && !out.iter().any(|s| s.bytes == bytes) {
                out.push(Secret::new(bytes));
            }
        };
        for s in self.sensitive.iter().chain(&self.moved) {
            let b = s.as_bytes();
            add(b);
            add(value_of(b));
            if b.contains(&b',') {
                for part in b.split(|&c| c == b',') {
                    add(part);
                    add(value_of(part));
                }
            }
        }
        out
    }

    /// The two steps of a bind mount (mount-utils' `MakeBindOptsSensitive`):
    /// `bind[,_netdev]` with the sensitive options, then
    /// `bind,remount,<options without bind/remount>,<extra>` with them. `extra` are the source's
    /// restrictions to keep (see `HostMounter::mount`).
    pub(crate) fn bind_steps(&self, extra: &[&str]) -> (MountOptions, MountOptions) {
        let not_bind = |o: &&OsString| *o != "bind" && *o != "remount";
        let sensitive: Vec<OsString> = self.sensitive.iter().filter(not_bind).cloned().collect();
        let mut first = vec![OsString::from("bind")];
        if self.has("_netdev") {
            first.push("_netdev".into());
        }
        let mut second: Vec<OsString> = vec!["bind".into(), "remount".into()];
        second.extend(self.options.iter().filter(not_bind).cloned());
        second.extend(extra.iter().map(OsString::from));
        let step = |options| MountOptions {
            options,
            sensitive: sensitive.clone(),
            moved: self.moved.clone(),
            flags: self.flags.clone(),
            no_systemd: self.no_systemd,
            timeout: self.timeout,
            helper_only: self.helper_only,
            lookup: self.lookup.clone(),
        };
        (step(first), step(second))
    }
}

/// The options mount.cifs(8) also reads from a `credentials=FILE`, and the name each has
/// there: its credentials file holds `username=`, `password=` and `domain=` lines.
const CIFS_CREDENTIALS: &[(&str, &str)] = &[
    ("username", "username"),
    ("user", "username"),
    ("password", "password"),
    ("pass", "password"),
    ("domain", "domain"),
    ("dom", "domain"),
    ("workgroup", "domain"),
];

/// Splits one `-o` argument on its commas, a doubled comma (`,,`) being a comma within a
/// value (the escape mount.cifs(8) and the kernel's cifs parser read in a password): the
/// parts as written, each with its unescaped form.
fn option_parts(opt: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let (mut raw, mut plain) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < opt.len() {
        match (opt[i], opt.get(i + 1)) {
            (b',', Some(b',')) => {
                raw.extend_from_slice(b",,");
                plain.push(b',');
                i += 2;
            }
            (b',', _) => {
                out.push((std::mem::take(&mut raw), std::mem::take(&mut plain)));
                i += 1;
            }
            (b, _) => {
                raw.push(b);
                plain.push(b);
                i += 1;
            }
        }
    }
    out.push((raw, plain));
    out
}

impl MountOptions {
    /// For a cifs (or smb3) mount on the mount(8) route: the sensitive credential options
    /// (`username=`/`user=`, `password=`/`pass=`, `domain=`/`dom=`/`workgroup=`) as the
    /// lines of a mount.cifs(8) credentials file, and these options with them replaced by
    /// `credentials=FILE` (they stay masked in [`shown`](Self::shown) and scrubbed from
    /// mount's messages). `Ok(None)` when no sensitive option is a credential. A value
    /// holding a newline cannot be one line of that file: `Err` with the reason.
    pub(crate) fn with_cifs_credentials_file(
        &self,
        file: &Path,
    ) -> Result<Option<(MountOptions, Vec<u8>)>, &'static str> {
        let mut lines = Vec::new();
        let mut kept: Vec<OsString> = Vec::new();
        let mut moved: Vec<OsString> = Vec::new();
        for opt in &self.sensitive {
            let mut rest: Vec<Vec<u8>> = Vec::new();
            for (raw, plain) in option_parts(opt.as_bytes()) {
                let eq = plain.iter().position(|&b| b == b'=');
                let name = eq.and_then(|eq| {
                    CIFS_CREDENTIALS
                        .iter()
                        .find(|(k, _)| k.as_bytes() == &plain[..eq])
                        .map(|(_, line)| *line)
                });
                match (name, eq) {
                    (Some(line), Some(eq)) => {
                        let value = &plain[eq + 1..];
                        if value.contains(&b'\n') {
                            return Err("a cifs credential holds a newline, which a credentials file line cannot");
                        }
                        lines.extend_from_slice(line.as_bytes());
                        lines.push(b'=');
                        lines.extend_from_slice(value);
                        lines.push(b'\n');
                        moved.push(OsString::from_vec(raw));
                    }
                    _ => rest.push(raw),
                }
            }
            if !rest.is_empty() {
                kept.push(OsString::from_vec(rest.join(&b',')));
            }
        }
        if lines.is_empty() {
            return Ok(None);
        }
        let mut credentials = OsString::from("credentials=");
        credentials.push(file.as_os_str());
        let mut o = self.clone();
        o.options.push(credentials);
        o.sensitive = kept;
        o.moved.extend(moved);
        Ok(Some((o, lines)))
    }
}

impl fmt::Debug for MountOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountOptions")
            .field("options", &self.options)
            .field("sensitive", &vec![MASKED; self.sensitive.len()])
            .field("moved", &vec![MASKED; self.moved.len()])
            .field("flags", &self.flags)
            .field("no_systemd", &self.no_systemd)
            .field("timeout", &self.timeout)
            .field("helper_only", &self.helper_only)
            .field("lookup", &self.lookup)
            .finish()
    }
}

/// Options of the mount(8) command line that concern mount(8) itself (fstab, the mtab,
/// helpers), never the kernel: the native route leaves them out, as mount(8) does.
const USERSPACE_ONLY: &[&str] = &[
    "defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser", "users", "owner", "group",
    "",
];

/// mount(8) flags the native route understands; any other flag sends the mount to mount(8).
fn native_flag(flag: &OsStr, attrs: &mut MountAttrs, bind: &mut bool, rbind: &mut bool) -> bool {
    match flag.to_str() {
        Some("--bind" | "-B") => *bind = true,
        Some("--rbind" | "-R") => *rbind = true,
        Some("-r" | "--read-only") => attrs.read_only = Some(true),
        Some("-w" | "--rw" | "--read-write") => attrs.read_only = Some(false),
        Some("-n" | "--no-mtab" | "-c" | "--no-canonicalize" | "-i" | "--internal-only") => {}
        Some(f) => match f.strip_prefix("--make-") {
            Some(p) => return attrs.apply_option(p) && attrs.propagation.is_some(),
            None => return false,
        },
        None => return false,
    }
    true
}

impl MountOptions {
    /// The native request for this mount, split as mount(8) splits `-o`: per-mount flags to
    /// [`MountAttrs`], `bind`/`rbind`/`remount` to the kind, mount(8)'s own options dropped,
    /// the rest to `fsconfig`. `None` when only mount(8) can do it: the route was forced, an
    /// unknown mount(8) flag, a loop device, no filesystem type (mount(8) probes one), a
    /// relative bind source, a non-UTF-8 option name, a sensitive flag without a value.
    pub(crate) fn native_request(
        &self,
        source: &OsStr,
        target: &Path,
        fstype: &str,
    ) -> Option<MountRequest> {
        if self.helper_only {
            return None;
        }
        let mut attrs = MountAttrs::new();
        let (mut bind, mut rbind, mut remount) = (false, false, false);
        for f in &self.flags {
            if !native_flag(f, &mut attrs, &mut bind, &mut rbind) {
                return None;
            }
        }
        // (key, value, sensitive), in order.
        let mut fs: Vec<(String, Option<OsString>, bool)> = Vec::new();
        let mut sb_ro_rw: Vec<String> = Vec::new();
        let parts = |o: &OsString| -> Vec<Vec<u8>> {
            o.as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::to_vec)
                .collect()
        };
        for (opt, sensitive) in self
            .options
            .iter()
            .map(|o| (o, false))
            .chain(self.sensitive.iter().map(|o| (o, true)))
        {
            for part in parts(opt) {
                let (key, value) = match part.iter().position(|&b| b == b'=') {
                    Some(eq) => (&part[..eq], Some(OsStr::from_bytes(&part[eq + 1..]))),
                    None => (&part[..], None),
                };
                let key = std::str::from_utf8(key).ok()?;
                if sensitive {
                    fs.push((key.to_owned(), Some(value?.to_os_string()), true));
                    continue;
                }
                match key {
                    "bind" => bind = true,
                    "rbind" => rbind = true,
                    "remount" => remount = true,
                    k if USERSPACE_ONLY.contains(&k) || k.starts_with("x-") || k == "comment" => {}
                    "loop" | "offset" | "sizelimit" | "encryption" | "helper" => return None,
                    k if value.is_none() && attrs.apply_option(k) => {
                        if k == "ro" || k == "rw" {
                            sb_ro_rw.push(k.to_owned());
                        }
                    }
                    k => fs.push((k.to_owned(), value.map(OsStr::to_os_string), false)),
                }
            }
        }
        let mut req = if remount {
            let mut r = MountRequest::remount(target);
            if !bind {
                // A plain remount reaches the superblock, ro/rw included (mount(8) -o
                // remount,ro); `bind,remount` changes the mount only.
                for k in sb_ro_rw {
                    r = r.option(k, None::<OsString>);
                }
                r = add_fs_options(r, fs);
            }
            r
        } else if bind || rbind {
            let src = Path::new(source);
            if !src.is_absolute() {
                return None;
            }
            MountRequest::bind(src, target, rbind)
        } else if attrs.propagation.is_some() && fstype.is_empty() {
            // --make-[r]shared and friends: a change of the mount at the target.
            MountRequest::remount(target)
        } else {
            if fstype.is_empty() {
                return None;
            }
            let mut r = MountRequest::filesystem(fstype, target);
            if !source.is_empty() {
                r = r.source(source);
            }
            add_fs_options(r, fs)
        };
        req = req.attrs(attrs).lookup(self.lookup.clone());
        Some(req)
    }
}

fn add_fs_options(mut r: MountRequest, fs: Vec<(String, Option<OsString>, bool)>) -> MountRequest {
    for (k, v, sensitive) in fs {
        r = match (v, sensitive) {
            (Some(v), true) => r.sensitive_option(k, v),
            (v, _) => r.option(k, v),
        };
    }
    r
}

/// How to unmount.
///
/// ```
/// use std::time::Duration;
/// use hostexec_mount::UnmountOptions;
/// let o = UnmountOptions::new().lazy().force_after(Duration::from_secs(5));
/// assert!(o.is_lazy());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnmountOptions {
    lazy: bool,
    force_after: Option<Duration>,
    timeout: Option<Duration>,
    helper_only: bool,
    lookup: TargetLookup,
}

impl UnmountOptions {
    /// A plain `umount TARGET` bounded by [`DEFAULT_UNMOUNT_TIMEOUT`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Detaches now and cleans up when no longer busy (`umount -l`).
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// If the unmount has not finished after `after`, kills it and runs `umount -f` for the
    /// rest of the overall timeout (mount-utils' `UnmountWithForce`, but bounded: there
    /// the force step had no timeout, kubernetes/kubernetes#96844).
    pub fn force_after(mut self, after: Duration) -> Self {
        self.force_after = Some(after);
        self
    }

    /// True for a lazy unmount.
    pub fn is_lazy(&self) -> bool {
        self.lazy
    }

    /// When the force step starts, if any.
    pub fn get_force_after(&self) -> Option<Duration> {
        self.force_after
    }
}

/// The timeout, route and target-lookup methods [`MountOptions`] and [`UnmountOptions`]
/// share: one text and one behaviour for both. `$bounded` says what the timeout bounds and
/// `$default` is its default; `$verb` and `$tool` name the operation; `$targets` says what
/// the lookup applies to.
macro_rules! timeout_route_and_lookup {
    ($ty:ident, $bounded:literal, $default:ident, $verb:literal, $tool:literal, $targets:literal) => {
        impl $ty {
            #[doc = concat!("Bounds ", $bounded, " by `timeout` (default [`", stringify!($default), "`]):")]
            /// a helper still running then is killed (its process group), a native call is
            /// given up ([`MountError::MountTimedOut`](crate::MountError::MountTimedOut)).
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.timeout = Some(timeout);
                self
            }

            #[doc = concat!("The bound on ", $bounded, ".")]
            pub fn get_timeout(&self) -> Duration {
                self.timeout.unwrap_or($default)
            }

            #[doc = concat!("Always ", $verb, " through the host's ", $tool, ", never natively")]
            /// (the route hostexec took before it mounted natively; also the CLI's
            /// `--route helper`).
            pub fn helper_only(mut self) -> Self {
                self.helper_only = true;
                self
            }

            #[doc = concat!("Follows a final symlink of ", $targets, ", inside the host root.")]
            /// By default such a target is refused
            /// ([`MountError::Native`](crate::MountError::Native) with
            /// [`NativeMountError::Symlink`](hostexec_api::NativeMountError::Symlink)): a
            /// target checked in one call and used in the next may have been swapped for a
            /// link meanwhile.
            pub fn follow_symlinks(mut self) -> Self {
                self.lookup = TargetLookup::FollowFinalSymlink;
                self
            }

            #[doc = concat!("Requires ", $targets, " to lie below the trusted host directory")]
            /// `base`, and follows no symlink at all below it (kubelet's subpath rule: mount
            /// at `pods/<uid>/volumes/x` beneath `/var/lib/kubelet`).
            pub fn beneath(mut self, base: impl Into<std::path::PathBuf>) -> Self {
                self.lookup = TargetLookup::Beneath(base.into());
                self
            }

            #[doc = concat!("True when [`", stringify!($ty), "::helper_only`] was called.")]
            pub fn is_helper_only(&self) -> bool {
                self.helper_only
            }

            /// How the target is looked up.
            pub fn get_lookup(&self) -> &TargetLookup {
                &self.lookup
            }
        }
    };
}

timeout_route_and_lookup!(
    MountOptions,
    "each mount(8) run",
    DEFAULT_MOUNT_TIMEOUT,
    "mounts",
    "mount(8)",
    "the target (and a bind source)"
);
timeout_route_and_lookup!(
    UnmountOptions,
    "the whole unmount, force step included,",
    DEFAULT_UNMOUNT_TIMEOUT,
    "unmounts",
    "umount(8)",
    "the target"
);

/// The value of a `key=value` option (after its first `=`); empty when there is none.
fn value_of(opt: &[u8]) -> &[u8] {
    match opt.iter().position(|&c| c == b'=') {
        Some(eq) => &opt[eq + 1..],
        None => &[],
    }
}

/// Bare values shorter than this are masked only as whole tokens (see [`scrub`]); a cut
/// secret's prefix at least this long is masked wherever it ends a truncated capture.
pub(crate) const SHORT_SECRET: usize = 4;

/// One byte string to scrub, and whether it is masked wherever it occurs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret {
    bytes: Vec<u8>,
    anywhere: bool,
}

impl Secret {
    fn new(bytes: &[u8]) -> Self {
        Secret {
            anywhere: bytes.contains(&b'=') || bytes.len() >= SHORT_SECRET,
            bytes: bytes.to_vec(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASKED)
    }
}

/// True for a byte that can be part of a word: a short secret next to one is not a token of
/// its own. Bytes of multi-byte UTF-8 characters count as word bytes.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// True if a token may start at `text[at]`: the byte before is no word byte, or there is none.
fn starts_token(text: &[u8], at: usize) -> bool {
    at == 0 || !is_word_byte(text[at - 1])
}

/// True if a token may end before `text[end]`: that byte is no word byte, or there is none.
fn ends_token(text: &[u8], end: usize) -> bool {
    end >= text.len() || !is_word_byte(text[end])
}

/// The start of each occurrence of `needle` in `hay` (overlapping ones included).
fn occurrences<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        let (&first, rest) = needle.split_first()?;
        while from + needle.len() <= hay.len() {
            let at = from
                + hay[from..=hay.len() - needle.len()]
                    .iter()
                    .position(|&b| b == first)?;
            from = at + 1;
            if hay[at + 1..at + needle.len()] == *rest {
                return Some(at);
            }
        }
        None
    })
}

/// Replaces the secrets in `text` (mount(8)'s or a helper's messages) with `<masked>`.
/// `truncated` says the capture was cut at its limit after `text`'s last byte.
///
/// The rule, which never shows a secret yet leaves ordinary words alone:
///
/// - A sensitive option whole, each of its comma-separated parts (mount(8) splits `-o` on
///   commas, and a helper may report the options it was given one by one), and any of these
///   holding a `=` (`password=A`) are masked wherever they occur.
/// - A bare value (after the first `=` of an option or of a part, or a part without `=`) of at
///   least [`SHORT_SECRET`] bytes is masked wherever it occurs, inside a word too.
/// - A shorter bare value (`u` of `user=u`) is masked only where it stands as a token of its
///   own: both neighbours are separators (anything but an ASCII letter or digit, `_` or a
///   non-ASCII byte: whitespace, `,`, `=`, quotes, `:`, line ends) or the ends of the text.
///   So `user u refused` loses the `u`, and `refusing` keeps its `u`. A value that short is
///   guessable by anyone and mostly a user name; inside a word it tells nothing.
/// - When the capture was `truncated`, a secret may have been cut in the middle: the longest
///   prefix of any secret above that ends the text is masked too, if it is at least
///   [`SHORT_SECRET`] bytes long or, shorter, starts on a boundary.
///
/// Overlapping or adjacent matches become one `<masked>`, so no piece is left between them.
pub(crate) fn scrub(text: &[u8], secrets: &[Secret], truncated: bool) -> Vec<u8> {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for s in secrets {
        let p = &s.bytes;
        for at in occurrences(text, p) {
            let end = at + p.len();
            if s.anywhere || (starts_token(text, at) && ends_token(text, end)) {
                ranges.push((at, end));
            }
        }
        if truncated {
            // Proper prefixes only: a whole secret at the end was found above.
            let longest = p.len().saturating_sub(1).min(text.len());
            let cut = (1..=longest).rev().find(|&n| {
                let at = text.len() - n;
                text.ends_with(&p[..n]) && (n >= SHORT_SECRET || starts_token(text, at))
            });
            if let Some(n) = cut {
                ranges.push((text.len() - n, text.len()));
            }
        }
    }
    if ranges.is_empty() {
        return text.to_vec();
    }
    ranges.sort_unstable();
    let mut out = Vec::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < ranges.len() {
        let (start, mut end) = ranges[i];
        i += 1;
        while i < ranges.len() && ranges[i].0 <= end {
            end = end.max(ranges[i].1);
            i += 1;
        }
        out.extend_from_slice(&text[copied..start]);
        out.extend_from_slice(MASKED.as_bytes());
        copied = end;
    }
    out.extend_from_slice(&text[copied..]);
    out
}

/// `OsStr` equality with a `&str`, for option names.
pub(crate) fn is_opt(o: &OsStr, name: &str) -> bool {
    o == name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn masking_vectors() {
        // mount-utils' MakeMountArgsSensitive test vectors.
        let cases: [(&[&str], &[&str], &str); 5] = [
            (&["o1", "o2"], &["s1"], "o1,o2,<masked>"),
            (&["o1", "o2"], &["s1", "s2"], "o1,o2,<masked>,<masked>"),
            (&[], &["s1", "s2"], "<masked>,<masked>"),
            (&["o1", "o2"], &[], "o1,o2"),
            (&[], &[], ""),
        ];
        for (o, s, want) in cases {
            let mut m = MountOptions::new().options(o.iter().copied());
            for x in s {
                m = m.sensitive(*x);
            }
            assert_eq!(m.shown(), want);
            let dbg = format!("{m:?}");
            assert!(!dbg.contains("s1") && !dbg.contains("s2"), "{dbg}");
        }
    }

    #[test]
    fn cifs_credentials_move_to_the_file_and_the_rest_stays() {
        let file = Path::new("/run/hostexec/staging/1.cred");
        let o = MountOptions::new()
            .option("vers=3.0")
            .sensitive("user=alice,seal")
            .sensitive("password=a,,b")
            .sensitive("workgroup=CORP")
            .sensitive("cache=strict");
        let (c, lines) = o.with_cifs_credentials_file(file).unwrap().unwrap();
        assert_eq!(lines, b"username=alice\npassword=a,b\ndomain=CORP\n");
        assert_eq!(
            c.joined().unwrap().0,
            "vers=3.0,credentials=/run/hostexec/staging/1.cred,seal,cache=strict"
        );
        // Still masked where shown, still scrubbed from mount's messages.
        assert_eq!(
            c.shown(),
            "vers=3.0,credentials=/run/hostexec/staging/1.cred,<masked>,<masked>,<masked>,<masked>,<masked>"
        );
        assert!(!format!("{c:?}").contains("alice"));
        let text = scrub(b"bad password a,,b for alice", &c.secrets(), false);
        assert_eq!(
            String::from_utf8_lossy(&text),
            "bad password <masked> for <masked>"
        );
        // No credential among the sensitive options: nothing to move.
        let none = MountOptions::new()
            .option("user=bob")
            .sensitive("cache=strict");
        assert!(none.with_cifs_credentials_file(file).unwrap().is_none());
        assert!(MountOptions::new()
            .sensitive("password=a\nusername=root")
            .with_cifs_credentials_file(file)
            .is_err());
    }

    #[test]
    fn bind_step_vectors() {
        // mount-utils' MakeBindOptsSensitive test vectors.
        let m = MountOptions::new().options(["bind", "vers=2", "ro", "_netdev"]);
        assert!(m.is_bind());
        let (a, b) = m.bind_steps(&[]);
        assert_eq!(a.options, os(&["bind", "_netdev"]));
        assert_eq!(
            b.options,
            os(&["bind", "remount", "vers=2", "ro", "_netdev"])
        );

        let m = MountOptions::new()
            .options(["vers=2", "ro", "_netdev"])
            .sensitive("user=foo")
            .sensitive("pass=bar")
            .sensitive("bind");
        assert!(m.is_bind());
        let (a, b) = m.bind_steps(&[]);
        assert_eq!(a.options, os(&["bind", "_netdev"]));
        assert_eq!(
            b.options,
            os(&["bind", "remount", "vers=2", "ro", "_netdev"])
        );
        assert_eq!(b.sensitive, os(&["user=foo", "pass=bar"]));
        assert_eq!(a.sensitive, b.sensitive);

        let m = MountOptions::new().options(["vers=2", "remount", "ro", "_netdev"]);
        assert!(!m.is_bind());
        let m = MountOptions::new().options(["rbind"]);
        assert!(!m.is_bind());

        let m = MountOptions::new()
            .options(["vers=2", "bind", "ro", "_netdev"])
            .sensitive("user=foo")
            .sensitive("remount")
            .sensitive("pass=bar");
        let (_, b) = m.bind_steps(&["nosuid"]);
        assert_eq!(
            b.options,
            os(&["bind", "remount", "vers=2", "ro", "_netdev", "nosuid"])
        );
        assert_eq!(b.sensitive, os(&["user=foo", "pass=bar"]));

        let (a, b) = MountOptions::new().option("bind").bind_steps(&[]);
        assert_eq!(a.options, os(&["bind"]));
        assert_eq!(b.options, os(&["bind", "remount"]));
    }

    #[test]
    fn scrub_removes_whole_options_and_values() {
        let m = MountOptions::new()
            .sensitive("password=hunter2")
            .sensitive("token");
        let s = m.secrets();
        let out = scrub(
            b"mount error: password=hunter2 rejected; hunter2; token",
            &s,
            false,
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "mount error: <masked> rejected; <masked>; <masked>");
    }

    fn scrubbed(sensitive: &[&str], text: &str, truncated: bool) -> String {
        let m = sensitive
            .iter()
            .fold(MountOptions::new(), |m, s| m.sensitive(*s));
        String::from_utf8(scrub(text.as_bytes(), &m.secrets(), truncated)).unwrap()
    }

    #[test]
    fn scrub_masks_each_comma_separated_part() {
        // mount(8) gets `password=A1b2c,D3e4f` as two options and a helper may print each.
        let s = ["password=A1b2c,D3e4f"];
        assert_eq!(
            scrubbed(&s, "bad option password=A1b2c\nbad option D3e4f\n", false),
            "bad option <masked>\nbad option <masked>\n"
        );
        assert_eq!(
            scrubbed(&s, "value A1b2c,D3e4f; password=A1b2c,D3e4f", false),
            "value <masked>; <masked>"
        );
        // A part that is itself key=value: the part and its value.
        let s = ["user=bob,domain=Example-Corp"];
        assert_eq!(
            scrubbed(&s, "domain=Example-Corp unknown; Example-Corp", false),
            "<masked> unknown; <masked>"
        );
        // Empty parts are no secrets.
        assert_eq!(
            scrubbed(&["pw=Abcde,,"], "a,,b pw=Abcde", false),
            "a,,b <masked>"
        );
    }

    #[test]
    fn scrub_masks_short_values_only_as_tokens() {
        let s = ["user=u"];
        assert_eq!(
            scrubbed(&s, "mount.x: refusing user=u for u (u) 'u',u=\nu", false),
            "mount.x: refusing <masked> for <masked> (<masked>) '<masked>',<masked>=\n<masked>"
        );
        assert_eq!(scrubbed(&s, "u", false), "<masked>");
        assert_eq!(
            scrubbed(&s, "ufo, sudo, u_x, uü", false),
            "ufo, sudo, u_x, uü"
        );
        // Three bytes: still a token rule; four: masked inside words too.
        assert_eq!(scrubbed(&["pw=abc"], "xabcx abc", false), "xabcx <masked>");
        assert_eq!(
            scrubbed(&["pw=abcd"], "xabcdx abcd", false),
            "x<masked>x <masked>"
        );
        // A short key=value is distinctive enough to mask anywhere.
        assert_eq!(scrubbed(&["u=x"], "au=xb", false), "a<masked>b");
        // A short sensitive option without a value follows the token rule.
        assert_eq!(scrubbed(&["sec"], "secure sec", false), "secure <masked>");
    }

    #[test]
    fn scrub_masks_a_secret_cut_at_the_end_of_a_truncated_capture() {
        let s = ["password=Cut-s3cret-0123"];
        // The whole option cut, the bare value cut, both at least SHORT_SECRET bytes.
        assert_eq!(scrubbed(&s, "xxxxpassword=Cut-s3", true), "xxxx<masked>");
        assert_eq!(
            scrubbed(&s, "xxxx value Cut-s3c", true),
            "xxxx value <masked>"
        );
        assert_eq!(scrubbed(&s, "xxxxCut-", true), "xxxx<masked>");
        // Shorter than SHORT_SECRET: masked when it starts a token.
        assert_eq!(scrubbed(&s, "xxxx Cu", true), "xxxx <masked>");
        assert_eq!(scrubbed(&s, "xxxxCu", true), "xxxxCu");
        // Not truncated: the end of the text is not a cut secret.
        assert_eq!(scrubbed(&s, "xxxx Cut-s3", false), "xxxx Cut-s3");
        // A whole secret at the end is masked either way, once.
        assert_eq!(scrubbed(&s, "x Cut-s3cret-0123", true), "x <masked>");
    }

    #[test]
    fn scrub_joins_overlapping_matches() {
        assert_eq!(
            scrubbed(&["a=abcd", "b=cdef"], "[abcdef]", false),
            "[<masked>]"
        );
        assert_eq!(scrubbed(&["pw=aaaa"], "aaaaaa", false), "<masked>");
        assert_eq!(scrubbed(&["pw=abcd"], "", true), "");
    }

    #[test]
    fn secret_debug_shows_nothing() {
        let s = MountOptions::new().sensitive("password=hunter2").secrets();
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
        ))]
        /// A value of at least SHORT_SECRET bytes, its parts, and a cut prefix of it never
        /// survive, wherever they are put in arbitrary text.
        #[test]
        fn no_secret_survives(
            value in "[a-c,]{4,12}",
            junk in proptest::collection::vec("[a-c ,=x]{0,6}", 1..6),
            cut in 0usize..64,
        ) {
            let opt = format!("pw={value}");
            let mut text = junk.join(&value);
            text.push_str(&opt);
            text.push_str(&junk.join(","));
            let cut = cut.min(text.len());
            let text = &text[..cut];
            let out = scrubbed(&[&opt], text, true);
            let long = |p: &&str| p.len() >= SHORT_SECRET;
            for secret in std::iter::once(value.as_str()).chain(value.split(',')).filter(long) {
                proptest::prop_assert!(!out.contains(secret), "{secret} in {out:?} from {text:?}");
                for n in SHORT_SECRET..secret.len() {
                    proptest::prop_assert!(!out.ends_with(&secret[..n]), "{secret} cut in {out:?}");
                }
            }
            proptest::prop_assert!(!out.contains(&opt));
        }
    }
}
