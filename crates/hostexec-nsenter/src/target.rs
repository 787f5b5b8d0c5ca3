//! [`Target`]: which host to reach, and which of its namespaces to join.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A Linux namespace type that hostexec can join (nsenter's `-m -u -i -n -p -C -T`).
///
/// `FromStr` and `Display` use the names of the files in `/proc/PID/ns/`:
///
/// ```
/// use hostexec_nsenter::Namespace;
/// assert_eq!("mnt".parse::<Namespace>().unwrap(), Namespace::Mount);
/// assert_eq!(Namespace::Cgroup.to_string(), "cgroup");
/// assert!("user".parse::<Namespace>().is_err());
/// ```
///
/// `#[non_exhaustive]`: the kernel adds namespace types (time came in 5.6); match with a
/// wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Namespace {
    /// The mount namespace (`mnt`): the host's file system view.
    Mount,
    /// The UTS namespace (`uts`): host name and NIS domain name.
    Uts,
    /// The IPC namespace (`ipc`): System V IPC and POSIX message queues.
    Ipc,
    /// The network namespace (`net`).
    Net,
    /// The PID namespace (`pid`): applies to the children spawned after joining.
    Pid,
    /// The cgroup namespace (`cgroup`).
    Cgroup,
    /// The time namespace (`time`). A multithreaded process cannot join it: only
    /// [`Launcher::NsenterBinary`](crate::Launcher::NsenterBinary) can.
    Time,
}

impl Namespace {
    /// Every namespace in the order they are joined: util-linux nsenter's order (cgroup, ipc,
    /// uts, net, pid, mnt, time; the user namespace, which hostexec never joins, would come
    /// first or last). Mount comes late because after it the `/proc` paths of the caller are
    /// no longer reachable; all handles are opened before the first join anyway.
    pub const JOIN_ORDER: [Namespace; 7] = [
        Namespace::Cgroup,
        Namespace::Ipc,
        Namespace::Uts,
        Namespace::Net,
        Namespace::Pid,
        Namespace::Mount,
        Namespace::Time,
    ];

    /// The file name under `/proc/PID/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Uts => "uts",
            Namespace::Ipc => "ipc",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }

    /// The long option of util-linux nsenter that joins this namespace from a file
    /// (`--mount`, `--uts`, …).
    pub fn nsenter_option(self) -> &'static str {
        match self {
            Namespace::Mount => "--mount",
            Namespace::Uts => "--uts",
            Namespace::Ipc => "--ipc",
            Namespace::Net => "--net",
            Namespace::Pid => "--pid",
            Namespace::Cgroup => "--cgroup",
            Namespace::Time => "--time",
        }
    }

    /// The `CLONE_NEW*` flag of this namespace, as rustix names it.
    pub(crate) fn link_type(self) -> rustix::thread::LinkNameSpaceType {
        use rustix::thread::LinkNameSpaceType as L;
        match self {
            Namespace::Mount => L::Mount,
            Namespace::Uts => L::HostNameAndNISDomainName,
            Namespace::Ipc => L::InterProcessCommunication,
            Namespace::Net => L::Network,
            Namespace::Pid => L::ProcessID,
            Namespace::Cgroup => L::ControlGroup,
            Namespace::Time => L::Time,
        }
    }

    /// The flag for a pidfd `setns`.
    pub(crate) fn thread_type(self) -> rustix::thread::ThreadNameSpaceType {
        use rustix::thread::ThreadNameSpaceType as T;
        match self {
            Namespace::Mount => T::MOUNT,
            Namespace::Uts => T::HOST_NAME_AND_NIS_DOMAIN_NAME,
            Namespace::Ipc => T::INTER_PROCESS_COMMUNICATION,
            Namespace::Net => T::NETWORK,
            Namespace::Pid => T::PROCESS_ID,
            Namespace::Cgroup => T::CONTROL_GROUP,
            Namespace::Time => T::TIME,
        }
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.proc_name())
    }
}

/// The text was not one of `mnt`, `uts`, `ipc`, `net`, `pid`, `cgroup`, `time`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown namespace {0:?} (expected one of mnt, uts, ipc, net, pid, cgroup, time)")]
pub struct UnknownNamespace(pub String);

impl FromStr for Namespace {
    type Err = UnknownNamespace;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Namespace::JOIN_ORDER
            .into_iter()
            .find(|n| n.proc_name() == s)
            .ok_or_else(|| UnknownNamespace(s.to_owned()))
    }
}

/// Where the target's namespaces come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The files under `<root>/proc/1/ns/` (Go's `/rootfs/proc/1/ns/mnt`).
    HostRoot,
    /// A process, held through a pidfd.
    Pid(u32),
}

/// Which host to reach: how this process sees the host's root, where the host's namespaces
/// are, and which of them to join.
///
/// ## Root and working directory
///
/// - [`Target::pid`]`(P)`: **P's root and working directory**, as util-linux
///   `nsenter -t P -r -w` does. Commands run with P's root as their `/` and start in P's working
///   directory (unless [`HostCommand::current_dir`](hostexec_api::HostCommand::current_dir)
///   says otherwise, a path in P's root); path resolution, file operations, the lookup of bare
///   program names and [`local_path`](hostexec_api::PathResolver::local_path)
///   (`/proc/P/root/…`) use the same tree. For a process that is chrooted inside its mount
///   namespace this differs from the namespace's root. Both launchers agree: the host thread
///   enters P's root after joining (`fchdir` + `chroot`, on its own file system state), the
///   nsenter binary gets `--root=/proc/P/root --wd=/proc/P/cwd`. Both directories are opened
///   through `/proc/P` and then checked with the pidfd, so they are never a reused PID's.
///   Entering a root needs `CAP_SYS_CHROOT`; with the host-thread launcher, the root must hold
///   `/dev/null` (the standard streams of a command are opened there).
/// - [`Target::host_root`]: **the mount namespace's root**, where `setns` puts the joining
///   thread; commands start in `/`. Resolution uses [`Target::local_root`] (the host thread's
///   `/` when it joins the mount namespace), which is that root seen from this process.
///
/// ```
/// use std::path::Path;
/// use hostexec_nsenter::{Namespace, Target};
///
/// // Go's default: the host's root is mounted at /rootfs, its namespaces are PID 1's.
/// let t = Target::default();
/// assert_eq!(t.local_root(), Path::new("/rootfs"));
/// assert_eq!(t.ns_file(Namespace::Mount), Path::new("/rootfs/proc/1/ns/mnt"));
///
/// // A process: its root and its namespaces.
/// let t = Target::pid(4242).namespaces(&[Namespace::Mount, Namespace::Net]);
/// assert_eq!(t.local_root(), Path::new("/proc/4242/root"));
/// assert_eq!(t.ns_file(Namespace::Net), Path::new("/proc/4242/ns/net"));
/// assert_eq!(t.get_namespaces(), [Namespace::Net, Namespace::Mount]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub(crate) source: Source,
    local_root: PathBuf,
    namespaces: Vec<Namespace>,
    ns_paths: BTreeMap<Namespace, PathBuf>,
}

impl Target {
    /// A host whose root this process reaches at `root` (e.g. a bind mount of the host's `/`),
    /// with the namespaces of the host's PID 1 under `<root>/proc/1/ns/`.
    pub fn host_root(root: impl Into<PathBuf>) -> Target {
        Target {
            source: Source::HostRoot,
            local_root: root.into(),
            namespaces: vec![Namespace::Mount],
            ns_paths: BTreeMap::new(),
        }
    }

    /// The process `pid` (as this process numbers it): its root (`/proc/PID/root`), working
    /// directory and namespaces, held through a pidfd so that a reused PID is never joined.
    /// See [Root and working directory](Target#root-and-working-directory).
    pub fn pid(pid: u32) -> Target {
        Target {
            source: Source::Pid(pid),
            local_root: PathBuf::from(format!("/proc/{pid}/root")),
            namespaces: vec![Namespace::Mount],
            ns_paths: BTreeMap::new(),
        }
    }

    /// Which namespaces to join (default: only [`Namespace::Mount`]). Duplicates are ignored;
    /// the order given does not matter (see [`Namespace::JOIN_ORDER`]).
    pub fn namespaces(mut self, ns: &[Namespace]) -> Target {
        self.namespaces = Namespace::JOIN_ORDER
            .into_iter()
            .filter(|n| ns.contains(n))
            .collect();
        self
    }

    /// Joins `ns` from this file (a `/proc/PID/ns/*` file or a bind mount of one) instead of
    /// the default place; also adds `ns` to the namespaces joined.
    pub fn ns_path(mut self, ns: Namespace, path: impl Into<PathBuf>) -> Target {
        self.ns_paths.insert(ns, path.into());
        if !self.namespaces.contains(&ns) {
            let mut all = self.namespaces.clone();
            all.push(ns);
            self = self.namespaces(&all);
        }
        self
    }

    /// How this process reaches the host's root directory (`/rootfs`, `/proc/PID/root`).
    pub fn local_root(&self) -> &Path {
        &self.local_root
    }

    /// The namespaces joined, in join order.
    pub fn get_namespaces(&self) -> &[Namespace] {
        &self.namespaces
    }

    /// The PID of a [`Target::pid`] target.
    pub fn get_pid(&self) -> Option<u32> {
        match self.source {
            Source::Pid(p) => Some(p),
            Source::HostRoot => None,
        }
    }

    /// The explicit file given for `ns` with [`Target::ns_path`], if any.
    pub fn explicit_ns_path(&self, ns: Namespace) -> Option<&Path> {
        self.ns_paths.get(&ns).map(PathBuf::as_path)
    }

    /// The file from which `ns` is joined by path: the explicit one, else
    /// `<root>/proc/1/ns/<ns>` or `/proc/PID/ns/<ns>`.
    pub fn ns_file(&self, ns: Namespace) -> PathBuf {
        if let Some(p) = self.ns_paths.get(&ns) {
            return p.clone();
        }
        match self.source {
            Source::HostRoot => self.local_root.join("proc/1/ns").join(ns.proc_name()),
            Source::Pid(pid) => PathBuf::from(format!("/proc/{pid}/ns/{}", ns.proc_name())),
        }
    }

    /// The target's mount table as this process reads it: `/proc/PID/mountinfo` or
    /// `<root>/proc/1/mountinfo`.
    pub fn mountinfo_path(&self) -> PathBuf {
        match self.source {
            Source::HostRoot => self.local_root.join("proc/1/mountinfo"),
            Source::Pid(pid) => PathBuf::from(format!("/proc/{pid}/mountinfo")),
        }
    }
}

impl Default for Target {
    /// `Target::host_root("/rootfs")`, as Go's `nsenter.NewNsenter("/rootfs", …)`.
    fn default() -> Target {
        Target::host_root("/rootfs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in Namespace::JOIN_ORDER {
            assert_eq!(n.to_string().parse::<Namespace>().unwrap(), n);
        }
        assert_eq!(
            "bogus".parse::<Namespace>().unwrap_err().to_string(),
            "unknown namespace \"bogus\" (expected one of mnt, uts, ipc, net, pid, cgroup, time)"
        );
    }

    #[test]
    fn namespaces_sorted_and_deduplicated() {
        let t = Target::pid(7).namespaces(&[
            Namespace::Mount,
            Namespace::Uts,
            Namespace::Mount,
            Namespace::Cgroup,
        ]);
        assert_eq!(
            t.get_namespaces(),
            [Namespace::Cgroup, Namespace::Uts, Namespace::Mount]
        );
    }

    #[test]
    fn explicit_paths_win_and_add_the_namespace() {
        let t = Target::host_root("/host").ns_path(Namespace::Net, "/run/netns/x");
        assert_eq!(t.get_namespaces(), [Namespace::Net, Namespace::Mount]);
        assert_eq!(t.ns_file(Namespace::Net), Path::new("/run/netns/x"));
        assert_eq!(
            t.ns_file(Namespace::Mount),
            Path::new("/host/proc/1/ns/mnt")
        );
        assert_eq!(t.mountinfo_path(), Path::new("/host/proc/1/mountinfo"));
        assert_eq!(
            Target::pid(9).mountinfo_path(),
            Path::new("/proc/9/mountinfo")
        );
        assert_eq!(Target::pid(9).get_pid(), Some(9));
        assert_eq!(t.get_pid(), None);
    }
}
