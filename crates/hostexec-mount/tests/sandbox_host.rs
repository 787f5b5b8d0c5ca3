//! HostMounter on hostexec-nsenter against a real sandbox host (a process in its own mount
//! namespace), compared with util-linux run inside that host (findmnt, mountpoint).
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use hostexec_api::{CommandError, Executor, FileKind, HostCommand, HostFs, Output};
use hostexec_mount::format::{format_and_mount, DiskFormat, FormatAndMount};
use hostexec_mount::{HostMounter, Mount, MountExt, MountOptions, UnmountOptions};
use hostexec_nsenter::NsEnter;
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

type Mounter = HostMounter<NsEnter>;

fn start(test: &str) -> Option<(SandboxHost, NsEnter, Mounter)> {
    if skip_without_namespaces(test) {
        return None;
    }
    let sb = SandboxHost::start().unwrap();
    let ns = NsEnter::new(sb.target()).unwrap();
    let m = HostMounter::new(ns.clone());
    Some((sb, ns, m))
}

fn oracle(sb: &SandboxHost, argv: &[&OsStr]) -> std::process::Output {
    sb.oracle(argv)
}

/// `findmnt --json` for one mount point inside the sandbox, as JSON.
fn findmnt_at(sb: &SandboxHost, target: &Path) -> Option<serde_json::Value> {
    let out = oracle(
        sb,
        &[
            "findmnt".as_ref(),
            "--json".as_ref(),
            "-o".as_ref(),
            "TARGET,SOURCE,FSTYPE,OPTIONS,VFS-OPTIONS".as_ref(),
            "--mountpoint".as_ref(),
            target.as_os_str(),
        ],
    );
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["filesystems"].as_array().and_then(|a| a.last().cloned())
}

fn mountpoint_q(sb: &SandboxHost, p: &Path) -> i32 {
    oracle(sb, &["mountpoint".as_ref(), "-q".as_ref(), p.as_os_str()])
        .status
        .code()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tmpfs_with_options_is_seen_by_findmnt_inside_the_host() {
    let Some((sb, _ns, m)) = start("tmpfs_with_options") else {
        return;
    };
    let t = sb.scratch().join("t");
    m.create_dir_all(&t).await.unwrap();
    m.mount(
        "hx-src".as_ref(),
        &t,
        "tmpfs",
        &MountOptions::new().options(["size=1m", "mode=700"]),
    )
    .await
    .unwrap();
    let fm = findmnt_at(&sb, &t).expect("findmnt sees the mount inside the host");
    assert_eq!(fm["fstype"], "tmpfs");
    assert_eq!(fm["source"], "hx-src");
    let opts = fm["options"].as_str().unwrap();
    assert!(
        opts.contains("size=1024k") && opts.contains("mode=700"),
        "{opts}"
    );
    // Not in this process's namespace: the host's mount, not ours.
    let ours = std::fs::read("/proc/self/mountinfo").unwrap();
    assert!(!String::from_utf8_lossy(&ours).contains(t.to_str().unwrap()));
    // list() sees it, with the same options.
    let e = m
        .list()
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.mount_point() == t)
        .unwrap();
    assert_eq!(e.source(), "hx-src");
    assert!(e.super_options().contains("mode=700"));
    assert!(m.is_mount_point(&t).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_ro_is_read_only_and_keeps_the_source_restrictions() {
    let Some((sb, _ns, m)) = start("bind_ro") else {
        return;
    };
    let base = sb.scratch().join("nsd");
    sb.mkdir_all(&base).unwrap();
    sb.mount_tmpfs(&base, "nosuid,nodev").unwrap();
    let src = base.join("src");
    let dst = sb.scratch().join("dst");
    sb.mkdir_all(&src).unwrap();
    sb.mkdir_all(&dst).unwrap();
    sb.write_file(&src.join("f"), b"x").unwrap();
    m.mount(
        src.as_os_str(),
        &dst,
        "",
        &MountOptions::new().options(["bind", "ro"]),
    )
    .await
    .unwrap();
    let fm = findmnt_at(&sb, &dst).unwrap();
    let vfs = fm["vfs-options"].as_str().unwrap();
    let flags: Vec<&str> = vfs.split(',').collect();
    assert!(flags.contains(&"ro"), "{vfs}");
    assert!(
        flags.contains(&"nosuid") && flags.contains(&"nodev"),
        "source restrictions lost: {vfs}"
    );
    let w = oracle(&sb, &["touch".as_ref(), dst.join("new").as_os_str()]);
    assert!(!w.status.success());
    assert!(String::from_utf8_lossy(&w.stderr).contains("Read-only file system"));
    // The source stays writable.
    let w = oracle(&sb, &["touch".as_ref(), src.join("new").as_os_str()]);
    assert!(w.status.success());
}

/// Names that break naive parsers: spaces, tabs, newlines, backslashes, UTF-8, a dash.
fn awkward_name(i: usize) -> Vec<u8> {
    let flavours: [&[u8]; 8] = [
        b"plain",
        b"sp ace",
        b"t\tab",
        b"nl\nx",
        b"back\\slash",
        "\u{e9}t\u{e9} \u{65e5}\u{672c}".as_bytes(),
        b"-",
        b"a  b\\040c",
    ];
    let mut n = format!("{i:03}-").into_bytes();
    n.extend_from_slice(flavours[i % flavours.len()]);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_equals_findmnt_inside_the_host_over_500_mounts() {
    let Some((sb, _ns, m)) = start("list_equals_findmnt") else {
        return;
    };
    const N: usize = 520;
    let root = sb.scratch().join("many");
    sb.mkdir_all(&root).unwrap();
    // One shell inside the host makes them all: dirs and sources as arguments, never parsed.
    let mut argv: Vec<OsString> = vec![
        "sh".into(),
        "-c".into(),
        r#"set -e; while [ $# -gt 0 ]; do mkdir -p "$1"; mount -t tmpfs -o size=64k "$2" "$1"; shift 2; done"#.into(),
        "sh".into(),
    ];
    for i in 0..N {
        let mut p = root.as_os_str().as_bytes().to_vec();
        p.push(b'/');
        p.extend(awkward_name(i));
        argv.push(OsString::from_vec(p));
        // Some empty sources, some with spaces.
        argv.push(match i % 5 {
            0 => OsString::new(),
            1 => format!("src {i}").into(),
            _ => format!("src{i}").into(),
        });
    }
    let refs: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
    let out = oracle(&sb, &refs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ours = m.list().await.unwrap();
    let out = oracle(
        &sb,
        &[
            "findmnt".as_ref(),
            "--list".as_ref(),
            "--json".as_ref(),
            "--nofsroot".as_ref(),
            "-o".as_ref(),
            "ID,PARENT,TARGET,SOURCE,FSTYPE,MAJ:MIN,FSROOT,VFS-OPTIONS,FS-OPTIONS,PROPAGATION"
                .as_ref(),
        ],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let theirs = v["filesystems"].as_array().unwrap();
    assert!(ours.len() > N, "{}", ours.len());
    assert_eq!(ours.len(), theirs.len());
    let by_id: BTreeMap<u64, &serde_json::Value> = theirs
        .iter()
        .map(|f| (f["id"].as_u64().unwrap(), f))
        .collect();
    let mut awkward_seen = 0;
    for e in &ours {
        let f = by_id
            .get(&e.id)
            .unwrap_or_else(|| panic!("findmnt lacks {}", e.id));
        let s = |k: &str| f[k].as_str().unwrap_or("").to_owned();
        assert_eq!(f["parent"].as_u64().unwrap(), e.parent_id, "{e:?}");
        assert_eq!(
            s("target").as_bytes(),
            e.mount_point().as_os_str().as_bytes(),
            "{e:?}"
        );
        assert_eq!(s("source").as_bytes(), e.source().as_bytes(), "{e:?}");
        assert_eq!(s("fstype").as_bytes(), e.fs_type_full().as_bytes(), "{e:?}");
        assert_eq!(s("maj:min"), format!("{}:{}", e.major, e.minor));
        assert_eq!(
            s("fsroot").as_bytes(),
            e.root().as_os_str().as_bytes(),
            "{e:?}"
        );
        assert_eq!(s("vfs-options"), e.mount_options().to_string(), "{e:?}");
        let fs_opts: Vec<String> = e
            .super_options()
            .iter()
            .map(|o| o.to_string_lossy().into_owned())
            .collect();
        assert_eq!(s("fs-options"), fs_opts.join(","), "{e:?}");
        let shared = e.shared_group().is_some();
        assert_eq!(s("propagation").starts_with("shared"), shared, "{e:?}");
        if e.mount_point().starts_with(&root)
            && e.mount_point()
                .as_os_str()
                .as_bytes()
                .iter()
                .any(|b| b" \t\n\\".contains(b) || *b >= 0x80)
        {
            awkward_seen += 1;
        }
    }
    assert!(awkward_seen > 300, "{awkward_seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn is_mount_point_equals_mountpoint_q() {
    let Some((sb, _ns, m)) = start("is_mount_point_equals_mountpoint") else {
        return;
    };
    let s = sb.scratch().to_path_buf();
    let tmpfs = s.join("tmpfs dir");
    let plain = s.join("plain");
    let selfb = s.join("self");
    let file = s.join("file");
    let fileb = s.join("file-bind");
    let link = s.join("link");
    let missing = s.join("missing");
    for d in [&tmpfs, &plain, &selfb] {
        sb.mkdir_all(d).unwrap();
    }
    sb.write_file(&file, b"").unwrap();
    sb.write_file(&fileb, b"").unwrap();
    sb.mount_tmpfs(&tmpfs, "").unwrap();
    m.mount(
        selfb.as_os_str(),
        &selfb,
        "",
        &MountOptions::new().option("bind"),
    )
    .await
    .unwrap();
    m.mount(
        file.as_os_str(),
        &fileb,
        "",
        &MountOptions::new().option("bind"),
    )
    .await
    .unwrap();
    sb.symlink(&tmpfs, &link).unwrap();
    for p in [
        &tmpfs,
        &plain,
        &selfb,
        &file,
        &fileb,
        &link,
        &missing,
        &PathBuf::from("/"),
        &s,
    ] {
        let rc = mountpoint_q(&sb, p);
        match m.is_mount_point(p).await {
            Ok(true) => assert_eq!(rc, 0, "{}", p.display()),
            Ok(false) => assert_eq!(rc, 32, "{}", p.display()),
            Err(e) => {
                assert!(e.is_not_found(), "{}: {e}", p.display());
                assert_eq!(rc, 1, "{}", p.display());
            }
        }
        // The Go-parity heuristic agrees wherever the kernel tells mount roots.
        if let Ok(mp) = m.is_mount_point(p).await {
            assert_eq!(m.is_likely_not_mount_point(p).await.unwrap(), !mp);
        }
    }
    assert!(m.is_mount_point(&missing).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmount_lazy_and_not_mounted() {
    let Some((sb, _ns, m)) = start("unmount") else {
        return;
    };
    let a = sb.scratch().join("a");
    let b = sb.scratch().join("b");
    m.create_dir_all(&a).await.unwrap();
    m.create_dir_all(&b).await.unwrap();
    for d in [&a, &b] {
        m.mount("t".as_ref(), d, "tmpfs", &MountOptions::new())
            .await
            .unwrap();
    }
    m.unmount(&a, &UnmountOptions::new()).await.unwrap();
    assert!(findmnt_at(&sb, &a).is_none());
    // Lazy unmount of a busy mount: a process inside the host holds its cwd there.
    let busy = std::process::Command::new("nsenter")
        .args(["-t", &sb.pid().to_string(), "-m", "--", "sh", "-c"])
        .args([r#"cd "$1" && echo in && exec sleep 30"#, "sh"])
        .arg(&b)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut busy = Kill(busy);
    // Wait until the shell is in the directory.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(busy.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "in\n");
    let e = m.unmount(&b, &UnmountOptions::new()).await.unwrap_err();
    assert!(e.to_string().contains("busy"), "{e}");
    m.unmount(&b, &UnmountOptions::new().lazy()).await.unwrap();
    assert!(findmnt_at(&sb, &b).is_none());
    // Not mounted; missing.
    let e = m.unmount(&a, &UnmountOptions::new()).await.unwrap_err();
    assert!(e.is_not_mounted(), "{e:?}");
    let e = m
        .unmount(&sb.scratch().join("missing"), &UnmountOptions::new())
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_refs_and_rshared() {
    let Some((sb, _ns, m)) = start("cleanup_refs_rshared") else {
        return;
    };
    let src = sb.scratch().join("src");
    let one = sb.scratch().join("one");
    let two = sb.scratch().join("two");
    for d in [&src, &one, &two] {
        m.create_dir_all(d).await.unwrap();
    }
    m.mount("refs".as_ref(), &src, "tmpfs", &MountOptions::new())
        .await
        .unwrap();
    for d in [&one, &two] {
        m.mount(src.as_os_str(), d, "", &MountOptions::new().option("bind"))
            .await
            .unwrap();
    }
    let refs = m.mount_refs(&one).await.unwrap();
    assert!(
        refs.contains(&src) && refs.contains(&two) && !refs.contains(&one),
        "{refs:?}"
    );
    assert!(m
        .mount_refs(&sb.scratch().join("nope"))
        .await
        .unwrap()
        .is_empty());
    m.cleanup_mount_point(&one, &UnmountOptions::new())
        .await
        .unwrap();
    assert!(m.stat(&one, true).await.unwrap_err().is_not_found());
    assert!(findmnt_at(&sb, &one).is_none());
    // Cleanup of a plain directory removes it; of nothing is fine.
    let plain = sb.scratch().join("plain");
    m.create_dir_all(&plain).await.unwrap();
    m.cleanup_mount_point(&plain, &UnmountOptions::new())
        .await
        .unwrap();
    assert!(m.stat(&plain, true).await.unwrap_err().is_not_found());
    m.cleanup_mount_point(&plain, &UnmountOptions::new())
        .await
        .unwrap();
    // make_rshared on a plain directory: bind onto itself, then shared.
    let sh = sb.scratch().join("shared");
    m.create_dir_all(&sh).await.unwrap();
    m.make_rshared(&sh).await.unwrap();
    let e = m
        .list()
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.mount_point() == sh)
        .unwrap();
    assert!(e.shared_group().is_some(), "{e:?}");
    m.make_rshared(&sh).await.unwrap();
    // The host's files through the mounter's HostFs.
    let f = sb.scratch().join("f");
    m.create_file(&f).await.unwrap();
    assert_eq!(m.stat(&f, true).await.unwrap().kind, FileKind::File);
    assert_eq!(m.stat(&sh, true).await.unwrap().kind, FileKind::Dir);
    assert_eq!(
        m.stat(Path::new("/dev/null"), true).await.unwrap().kind,
        FileKind::CharDevice
    );
}

/// Records every command, then runs it on the real backend.
struct Recording {
    inner: NsEnter,
    calls: Mutex<Vec<HostCommand>>,
}

#[async_trait]
impl Executor for Recording {
    async fn run(&self, cmd: HostCommand) -> Result<Output, CommandError> {
        self.calls.lock().unwrap().push(cmd.clone());
        self.inner.run(cmd).await
    }
    async fn look_path(&self, name: &OsStr) -> Result<PathBuf, CommandError> {
        self.inner.look_path(name).await
    }
    async fn supports_systemd(&self) -> bool {
        self.inner.supports_systemd().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_a_broken_systemd_run_still_mounts() {
    let Some((sb, ns, _)) = start("broken_systemd_run") else {
        return;
    };
    // This machine: the binary is there, systemd is not PID 1.
    if ns.look_path("systemd-run".as_ref()).await.is_err() {
        panic!("this test needs a host with a systemd-run binary");
    }
    assert!(
        !ns.supports_systemd().await,
        "systemd-run works here; the test proves nothing"
    );
    let rec = Arc::new(Recording {
        inner: ns.clone(),
        calls: Mutex::new(Vec::new()),
    });
    let m = HostMounter::with_parts(rec.clone(), ns.clone());
    let t = sb.scratch().join("sd");
    m.create_dir_all(&t).await.unwrap();
    m.mount("sd".as_ref(), &t, "tmpfs", &MountOptions::new())
        .await
        .unwrap();
    assert!(findmnt_at(&sb, &t).is_some());
    let calls = rec.calls.lock().unwrap();
    assert!(
        calls.iter().all(|c| c.get_program() != "systemd-run"),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_and_mount_on_a_loop_device() {
    let Some((sb, ns, m)) = start("format_and_mount_loop") else {
        return;
    };
    let img = sb.scratch().join("disk.img");
    let out = oracle(
        &sb,
        &[
            "truncate".as_ref(),
            "-s".as_ref(),
            "24M".as_ref(),
            img.as_os_str(),
        ],
    );
    assert!(out.status.success());
    let out = oracle(
        &sb,
        &[
            "losetup".as_ref(),
            "-f".as_ref(),
            "--show".as_ref(),
            img.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dev = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    struct Detach<'a>(&'a SandboxHost, PathBuf);
    impl Drop for Detach<'_> {
        fn drop(&mut self) {
            let _ = self
                .0
                .oracle(&["losetup".as_ref(), "-d".as_ref(), self.1.as_os_str()]);
        }
    }
    let _detach = Detach(&sb, dev.clone());
    let t = sb.scratch().join("fmt");
    m.create_dir_all(&t).await.unwrap();
    let job = FormatAndMount::new(&dev, &t).fstype("ext4");
    let r = format_and_mount(&m, &ns, &job).await.unwrap();
    assert_eq!(r.found, DiskFormat::Unformatted);
    assert!(r.formatted);
    let fm = findmnt_at(&sb, &t).unwrap();
    assert_eq!(fm["fstype"], "ext4");
    assert_eq!(fm["source"].as_str().unwrap(), dev.to_str().unwrap());
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    // Second time: already ext4, checked by fsck, not formatted again.
    let r = format_and_mount(&m, &ns, &job).await.unwrap();
    assert_eq!(r.found, DiskFormat::Filesystem("ext4".into()));
    assert!(!r.formatted);
    assert_eq!(r.fsck_code, Some(0));
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    // Read-only needs no fsck and mounts read-only.
    // An empty type means the default, ext4.
    let ro = FormatAndMount::new(&dev, &t)
        .fstype("")
        .mount_options(MountOptions::new().option("ro"));
    let r = format_and_mount(&m, &ns, &ro).await.unwrap();
    assert_eq!(r.fsck_code, None);
    let fm = findmnt_at(&sb, &t).unwrap();
    assert!(fm["vfs-options"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|o| o == "ro"));
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();

    // A tmpfs onto a directory the kernel's lookup caches no longer hold (on the ext4, after
    // the dentries were dropped): the host thread's early tmpfs gets no target, is freed,
    // and the walk on the file pool opens the target; one tmpfs ends up there.
    let r = format_and_mount(&m, &ns, &job).await.unwrap();
    assert!(!r.formatted);
    let d = t.join("cold");
    m.create_dir_all(&d).await.unwrap();
    // The sandbox host already needs CAP_SYS_ADMIN, which is what this write needs too.
    std::fs::write("/proc/sys/vm/drop_caches", "2")
        .expect("dropping the dentry cache (/proc/sys/vm/drop_caches) with CAP_SYS_ADMIN");
    assert_eq!(
        ns.root_fs().exists_cached(&d).unwrap(),
        None,
        "still in the dentry cache: the test would not reach the walk on the pool"
    );
    m.mount("hx-cold".as_ref(), &d, "tmpfs", &MountOptions::new())
        .await
        .unwrap();
    let stack = findmnt_stack(&sb, &d);
    assert_eq!(stack.len(), 1, "{stack:?}");
    assert_eq!(stack[0]["source"], "hx-cold");
    assert_eq!(stack[0]["fstype"], "tmpfs");
    m.unmount(&d, &UnmountOptions::new()).await.unwrap();
    assert!(findmnt_stack(&sb, &d).is_empty());
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_utf8_targets_are_byte_exact() {
    let Some((sb, _ns, m)) = start("non_utf8_targets") else {
        return;
    };
    let mut p = sb.scratch().as_os_str().as_bytes().to_vec();
    p.extend_from_slice(b"/bad\xff\xfe name\tx");
    let t = PathBuf::from(OsString::from_vec(p));
    m.create_dir_all(&t).await.unwrap();
    m.mount(
        OsStr::from_bytes(b"src\xff"),
        &t,
        "tmpfs",
        &MountOptions::new(),
    )
    .await
    .unwrap();
    let e = m
        .list()
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.mount_point() == t)
        .expect("list() has the exact bytes");
    assert_eq!(e.source().as_bytes(), b"src\xff");
    assert!(m.is_mount_point(&t).await.unwrap());
    assert_eq!(mountpoint_q(&sb, &t), 0);
    let out = oracle(
        &sb,
        &[
            "findmnt".as_ref(),
            "--raw".as_ref(),
            "-n".as_ref(),
            "-o".as_ref(),
            "TARGET,SOURCE".as_ref(),
            "--mountpoint".as_ref(),
            t.as_os_str(),
        ],
    );
    assert!(out.status.success());
    let line = out.stdout.strip_suffix(b"\n").unwrap();
    let sp = line.iter().rposition(|&b| b == b' ').unwrap();
    assert_eq!(
        hostexec_testing::unescape_findmnt(&line[..sp]),
        t.as_os_str().as_bytes()
    );
    assert_eq!(
        hostexec_testing::unescape_findmnt(&line[sp + 1..]),
        b"src\xff"
    );
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    assert!(!m.is_mount_point(&t).await.unwrap());
}

/// The mounts findmnt sees at `target` inside the host, bottom to top, as JSON.
fn findmnt_stack(sb: &SandboxHost, target: &Path) -> Vec<serde_json::Value> {
    let out = oracle(
        sb,
        &[
            "findmnt".as_ref(),
            "--json".as_ref(),
            "-o".as_ref(),
            "TARGET,SOURCE,FSTYPE,VFS-OPTIONS".as_ref(),
            "--mountpoint".as_ref(),
            target.as_os_str(),
        ],
    );
    if !out.status.success() {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["filesystems"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_that_look_like_options_are_mounted_literally() {
    let Some((sb, _ns, m)) = start("option_like_sources") else {
        return;
    };
    // A mount point already there: `mount -t tmpfs -oremount,ro T` would remount it ro.
    let t = sb.scratch().join("t");
    sb.mkdir_all(&t).unwrap();
    sb.mount_tmpfs(&t, "").unwrap();
    m.mount(
        "-oremount,ro".as_ref(),
        &t,
        "tmpfs",
        &MountOptions::new().option("size=1m"),
    )
    .await
    .unwrap();
    let stack = findmnt_stack(&sb, &t);
    assert_eq!(
        stack.len(),
        2,
        "a new mount on top, not a remount: {stack:?}"
    );
    for (fm, source) in stack.iter().zip(["hostexec-sandbox", "-oremount,ro"]) {
        assert_eq!(fm["source"], source, "{stack:?}");
        assert_eq!(fm["fstype"], "tmpfs");
        let vfs = fm["vfs-options"].as_str().unwrap();
        assert!(vfs.split(',').any(|o| o == "rw"), "{vfs}");
    }
    // unmount goes through `umount -- T`: the top one goes, the one below stays.
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    let stack = findmnt_stack(&sb, &t);
    assert_eq!(stack.len(), 1, "{stack:?}");
    assert_eq!(stack[0]["source"], "hostexec-sandbox");

    // A directory named like an option, bind-mounted read-only.
    let src = sb.scratch().join("-oremount,ro");
    let dst = sb.scratch().join("dst");
    sb.mkdir_all(&src).unwrap();
    sb.mkdir_all(&dst).unwrap();
    sb.write_file(&src.join("f"), b"x").unwrap();
    m.mount(
        src.as_os_str(),
        &dst,
        "",
        &MountOptions::new().options(["bind", "ro"]),
    )
    .await
    .unwrap();
    let fm = findmnt_at(&sb, &dst).unwrap();
    assert!(
        fm["source"].as_str().unwrap().ends_with("[/-oremount,ro]"),
        "{fm}"
    );
    let cat = oracle(&sb, &["cat".as_ref(), dst.join("f").as_os_str()]);
    assert_eq!(cat.stdout, b"x");
    assert!(fm["vfs-options"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|o| o == "ro"));
}

/// Makes the sandbox host's `/sbin` writable for installing helpers: an overlay on the
/// directory `/sbin` resolves to (`/usr/sbin` where it is a link), inside the sandbox only.
/// Returns that directory.
fn writable_sbin(sb: &SandboxHost) -> PathBuf {
    let layer = sb.scratch().join("layer");
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    sb.mkdir_all(&upper).unwrap();
    sb.mkdir_all(&work).unwrap();
    let sbin = std::fs::canonicalize("/sbin").unwrap();
    let mut lower = OsString::from("lowerdir=");
    lower.push(&sbin);
    lower.push(",upperdir=");
    lower.push(&upper);
    lower.push(",workdir=");
    lower.push(&work);
    let out = oracle(
        sb,
        &[
            "mount".as_ref(),
            "-t".as_ref(),
            "overlay".as_ref(),
            "-o".as_ref(),
            lower.as_os_str(),
            "hx-sbin".as_ref(),
            sbin.as_os_str(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sbin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_helper_never_receives_a_source_that_looks_like_an_option() {
    let Some((sb, _ns, m)) = start("option_like_source_helper") else {
        return;
    };
    // A host with a /sbin/mount.hxtest helper that records its argv and mounts a tmpfs at
    // its target, as a real helper mounts there.
    let sbin = writable_sbin(&sb);
    let log = sb.scratch().join("helper.log");
    let helper = sbin.join("mount.hxtest");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\n\
         exec mount -i -t tmpfs -o size=1m hx-mounted \"$2\"\n",
        log.display()
    );
    sb.write_file(&helper, script.as_bytes()).unwrap();
    let chmod = oracle(&sb, &["chmod".as_ref(), "755".as_ref(), helper.as_os_str()]);
    assert!(chmod.status.success());
    let t = sb.scratch().join("t");
    sb.mkdir_all(&t).unwrap();
    let read_log = || std::fs::read_to_string(sb.local(&log)).unwrap_or_default();

    // The helper works: an ordinary source reaches it as argv[1]; its target is a staging
    // directory, whose mount is then moved onto t.
    m.mount("hx-src".as_ref(), &t, "hxtest", &MountOptions::new())
        .await
        .unwrap();
    let lines: Vec<String> = read_log().lines().map(str::to_owned).collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("hx-src"),
        "{lines:?}"
    );
    assert!(
        lines
            .get(1)
            .is_some_and(|p| Path::new(p).starts_with(hostexec_mount::STAGING_DIR)),
        "{lines:?}"
    );
    assert_eq!(
        findmnt_at(&sb, &t).expect("moved onto the target")["source"],
        "hx-mounted"
    );
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    sb.remove_file(&log).unwrap();

    // A source starting with '-' does not: mount(8) would have passed it as the helper's
    // argv[1], where a getopt-permuting helper reads it as `-o remount,ro`. The kernel has
    // no hxtest, so the mount fails, and says so.
    let e = m
        .mount("-oremount,ro".as_ref(), &t, "hxtest", &MountOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, hostexec_mount::MountError::MountFailed(f)
            if f.stderr.contains("unknown filesystem type")),
        "{e:?}"
    );
    assert_eq!(read_log(), "", "the helper ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_umount_helper_installed_after_a_native_mount_is_used_for_its_unmount() {
    let Some((sb, _ns, m)) = start("umount_helper_after_native_mount") else {
        return;
    };
    // A native tmpfs mount: the host thread made it and knows its type without asking
    // statmount at the unmount. The host's umount helpers must still be looked up then.
    let t = sb.scratch().join("t");
    sb.mkdir_all(&t).unwrap();
    m.mount("hx-native".as_ref(), &t, "tmpfs", &MountOptions::new())
        .await
        .unwrap();
    assert_eq!(findmnt_at(&sb, &t).expect("mounted")["source"], "hx-native");

    // Then the host gets a /sbin/umount.tmpfs that records its argv and unmounts with
    // umount(8) itself (`-i`: no helper again).
    let sbin = writable_sbin(&sb);
    let log = sb.scratch().join("umount-helper.log");
    let helper = sbin.join("umount.tmpfs");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\n\
         exec umount -i \"$1\"\n",
        log.display()
    );
    sb.write_file(&helper, script.as_bytes()).unwrap();
    let chmod = oracle(&sb, &["chmod".as_ref(), "755".as_ref(), helper.as_os_str()]);
    assert!(chmod.status.success());

    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    let lines: Vec<String> = std::fs::read_to_string(sb.local(&log))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    // umount(8) ran the helper, on the staging directory the mount was moved to.
    assert!(
        lines
            .first()
            .is_some_and(|p| Path::new(p).starts_with(hostexec_mount::STAGING_DIR)),
        "{lines:?}"
    );
    assert!(findmnt_at(&sb, &t).is_none(), "still mounted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tmpfs_helper_on_the_host_makes_the_mount_and_the_native_one_made_early_is_dropped() {
    let Some((sb, _ns, m)) = start("tmpfs_helper_takes_the_mount") else {
        return;
    };
    // The host thread makes a new tmpfs while the caller opens the target and looks for
    // helpers; a /sbin/mount.tmpfs found then must get the mount, and the tmpfs made early
    // must never be attached anywhere.
    let sbin = writable_sbin(&sb);
    let log = sb.scratch().join("tmpfs-helper.log");
    let helper = sbin.join("mount.tmpfs");
    let script = format!(
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> '{}'\n\
         exec mount -i -t tmpfs -o size=1m hx-by-helper \"$2\"\n",
        log.display()
    );
    sb.write_file(&helper, script.as_bytes()).unwrap();
    let chmod = oracle(&sb, &["chmod".as_ref(), "755".as_ref(), helper.as_os_str()]);
    assert!(chmod.status.success());
    let t = sb.scratch().join("t");
    sb.mkdir_all(&t).unwrap();
    let before = findmnt_stack(&sb, &t).len();

    m.mount("hx-native".as_ref(), &t, "tmpfs", &MountOptions::new())
        .await
        .unwrap();
    let lines: Vec<String> = std::fs::read_to_string(sb.local(&log))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines.first().map(String::as_str),
        Some("hx-native"),
        "{lines:?}"
    );
    let stack = findmnt_stack(&sb, &t);
    assert_eq!(stack.len(), before + 1, "{stack:?}");
    assert_eq!(stack.last().unwrap()["source"], "hx-by-helper");
    let table = oracle(
        &sb,
        &[
            "findmnt".as_ref(),
            "-rn".as_ref(),
            "-o".as_ref(),
            "SOURCE".as_ref(),
        ],
    );
    assert!(
        !String::from_utf8_lossy(&table.stdout)
            .lines()
            .any(|l| l == "hx-native"),
        "the tmpfs made before the helper was found is mounted somewhere"
    );
    m.unmount(&t, &UnmountOptions::new()).await.unwrap();
    assert_eq!(findmnt_stack(&sb, &t).len(), before);
}
