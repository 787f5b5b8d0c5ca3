//! [`MountOptions`] and [`UnmountOptions`]: what a mount or unmount is asked to do.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::time::Duration;

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
/// `<masked>` for each (go-originals.md §2.6), and their values are scrubbed from mount's own
/// messages before those reach an error.
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
    flags: Vec<OsString>,
    no_systemd: bool,
    timeout: Option<Duration>,
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

    /// Kills the mount (its process group) after `timeout` (default
    /// [`DEFAULT_MOUNT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
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

    /// The timeout of each mount(8) run.
    pub fn get_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_MOUNT_TIMEOUT)
    }

    /// True if `name` is among the ordinary or the sensitive options, exactly.
    pub fn has(&self, name: &str) -> bool {
        self.options
            .iter()
            .chain(&self.sensitive)
            .any(|o| o == name)
    }

    /// True for a bind mount: an option is exactly `bind` (`rbind` does not count, as in
    /// mount-utils' `MakeBindOpts`, go-originals.md §2.3).
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
        parts.extend(self.sensitive.iter().map(|_| MASKED.to_owned()));
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

    /// The byte strings to scrub from mount(8)'s messages: each sensitive option and its value.
    pub(crate) fn secrets(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for s in &self.sensitive {
            let b = s.as_bytes();
            if b.is_empty() {
                continue;
            }
            out.push(b.to_vec());
            if let Some(eq) = b.iter().position(|&c| c == b'=') {
                if eq + 1 < b.len() {
                    out.push(b[eq + 1..].to_vec());
                }
            }
        }
        // Longest first, so a value inside a whole option does not leave the rest behind.
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out
    }

    /// The two steps of a bind mount (mount-utils' `MakeBindOptsSensitive`,
    /// go-originals.md §2.3): `bind[,_netdev]` with the sensitive options, then
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
            flags: self.flags.clone(),
            no_systemd: self.no_systemd,
            timeout: self.timeout,
        };
        (step(first), step(second))
    }
}

impl fmt::Debug for MountOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MountOptions")
            .field("options", &self.options)
            .field("sensitive", &vec![MASKED; self.sensitive.len()])
            .field("flags", &self.flags)
            .field("no_systemd", &self.no_systemd)
            .field("timeout", &self.timeout)
            .finish()
    }
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
    /// rest of the overall timeout (mount-utils' `UnmountWithForce`, but bounded:
    /// go-originals.md §3 #22).
    pub fn force_after(mut self, after: Duration) -> Self {
        self.force_after = Some(after);
        self
    }

    /// The bound on the whole unmount, force step included (default
    /// [`DEFAULT_UNMOUNT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
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

    /// The bound on the whole unmount.
    pub fn get_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_UNMOUNT_TIMEOUT)
    }
}

/// Replaces every occurrence of each secret in `text` with `<masked>`.
pub(crate) fn scrub(text: &[u8], secrets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = text.to_vec();
    for s in secrets {
        if s.is_empty() || out.len() < s.len() {
            continue;
        }
        let mut next = Vec::with_capacity(out.len());
        let mut i = 0;
        while i < out.len() {
            if out[i..].starts_with(s) {
                next.extend_from_slice(MASKED.as_bytes());
                i += s.len();
            } else {
                next.push(out[i]);
                i += 1;
            }
        }
        out = next;
    }
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
        // go-originals.md §2.6.
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
    fn bind_step_vectors() {
        // go-originals.md §2.3.
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
        );
        let out = String::from_utf8(out).unwrap();
        assert_eq!(out, "mount error: <masked> rejected; <masked>; <masked>");
    }
}
