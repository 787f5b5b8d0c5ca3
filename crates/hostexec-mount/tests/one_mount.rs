//! One mount read alone (`MountExt::mount_of`: `statmount(2)` through `hostexec-nsenter`'s
//! host thread) against the whole table parsed (`mount_of_by_table`, the fallback and the
//! reference) and against util-linux `findmnt --target` run inside a sandbox host, on the
//! cases that break naive answers: spaces, tabs, newlines and backslashes in mount points, a
//! bind mount of a subdirectory (its root is not `/`), a mount shadowed by a later one on the
//! same point, per-mount flags, tmpfs `size=`, shared and slave propagation, a path inside a
//! mount rather than its mount point, and every other mount of the host's table.
//!
//! Skipped, with a printed reason, only without CAP_SYS_ADMIN, and never with CI=true.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use hostexec_api::HostFs;
use hostexec_mount::{HostMounter, Mount, MountExt, MountInfo};
use hostexec_nsenter::{Launcher, NsEnter};
use hostexec_testing::sandbox::{skip_without_namespaces, SandboxHost};

fn join(base: &Path, name: &[u8]) -> PathBuf {
    let mut p = base.as_os_str().as_bytes().to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    PathBuf::from(OsString::from_vec(p))
}

/// Runs `script` with `args` in the sandbox host (the arguments are never parsed by a shell).
fn sh(sb: &SandboxHost, script: &str, args: &[&OsStr]) {
    let mut argv: Vec<&OsStr> = vec!["sh".as_ref(), "-c".as_ref(), script.as_ref(), "sh".as_ref()];
    argv.extend_from_slice(args);
    let out = sb.oracle(&argv);
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `findmnt` inside the host for the mount holding `p`: (id, target, source, fstype, fsroot,
/// vfs-options, fs-options, propagation). `--target` names the mount point; of the mounts
/// there, the last one (on top) is the one the path reaches (`findmnt --target` itself
/// reports the first of a stack, one the path no longer reaches).
fn findmnt_target(sb: &SandboxHost, p: &Path) -> [String; 8] {
    let ask = |how: &str, p: &OsStr| {
        let out = sb.oracle(&[
            "findmnt".as_ref(),
            "--json".as_ref(),
            "--nofsroot".as_ref(),
            "-o".as_ref(),
            "ID,TARGET,SOURCE,FSTYPE,FSROOT,VFS-OPTIONS,FS-OPTIONS,PROPAGATION".as_ref(),
            how.as_ref(),
            p,
        ]);
        assert!(out.status.success(), "findmnt {how} {p:?}: {out:?}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["filesystems"]
            .as_array()
            .and_then(|a| a.last().cloned())
            .unwrap()
    };
    let at = ask("--target", p.as_os_str());
    let point = at["target"].as_str().unwrap().to_owned();
    let f = &ask("--mountpoint", point.as_ref());
    let s = |k: &str| match &f[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    [
        s("id"),
        s("target"),
        s("source"),
        s("fstype"),
        s("fsroot"),
        s("vfs-options"),
        s("fs-options"),
        s("propagation"),
    ]
}

fn as_findmnt(m: &MountInfo) -> [String; 8] {
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let fs_opts: Vec<String> = m
        .super_options()
        .iter()
        .map(|o| o.to_string_lossy().into_owned())
        .collect();
    // findmnt's PROPAGATION: shared or private, then ",slave", ",unbindable".
    let mut propagation = if m.shared_group().is_some() {
        "shared".to_string()
    } else {
        "private".to_string()
    };
    for f in m.optional_fields() {
        match f {
            hostexec_mount::OptionalField::Master(_) => propagation.push_str(",slave"),
            hostexec_mount::OptionalField::Unbindable => propagation.push_str(",unbindable"),
            _ => {}
        }
    }
    [
        m.id.to_string(),
        lossy(m.mount_point().as_os_str().as_bytes()),
        lossy(m.source().as_bytes()),
        lossy(m.fs_type_full().as_bytes()),
        lossy(m.root().as_os_str().as_bytes()),
        m.mount_options().to_string(),
        fs_opts.join(","),
        propagation,
    ]
}

async fn by(m: &HostMounter<NsEnter>, p: &Path) -> MountInfo {
    m.mount_of(p).await.unwrap_or_else(|e| panic!("{p:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mount_by_statmount_equals_the_table_and_findmnt() {
    if skip_without_namespaces("one_mount_by_statmount_equals_the_table_and_findmnt") {
        return;
    }
    let sb = SandboxHost::start().unwrap();
    let base = sb.scratch().join("one");
    sb.mkdir_all(&base).unwrap();
    let names: [&[u8]; 4] = [b"sp ace", b"t\tab", b"nl\nx", b"back\\slash"];
    let awkward: Vec<PathBuf> = names.iter().map(|n| join(&base, n)).collect();
    let src = base.join("src");
    let sub = src.join("sub");
    let bind = base.join("bind");
    let shadow = base.join("shadow");
    let flags = base.join("flags");
    let shared = base.join("shared");
    let slave = base.join("slave");
    // One shell inside the host: each path an argument.
    let mut args: Vec<&OsStr> = awkward.iter().map(|p| p.as_os_str()).collect();
    for p in [&src, &sub, &bind, &shadow, &flags, &shared, &slave] {
        args.push(p.as_os_str());
    }
    sh(
        &sb,
        r#"set -e
for p in "$1" "$2" "$3" "$4"; do mkdir -p "$p"; mount -t tmpfs -o size=1m,mode=700 "src of $p" "$p"; done
mkdir -p "$5" "$6" "$7" "$8" "$9" "${10}" "${11}"
echo x > "$6/file"
mount --bind "$6" "$7"
mount -t tmpfs -o size=64k below "$8"
mount -t tmpfs -o size=128k,nr_inodes=100 above "$8"
mount -t tmpfs -o noatime,nosuid,nodev,noexec,ro flagged "$9"
mount -t tmpfs peer "${10}"
mount --make-shared "${10}"
mount --bind "${10}" "${11}"
mount --make-slave "${11}"
touch "$1/file in it""#,
        &args,
    );

    for launcher in [Launcher::HostThread, Launcher::NsenterBinary] {
        let ns = NsEnter::builder(sb.target())
            .launcher(launcher)
            .build()
            .unwrap();
        let one_alone = ns.read_mount_entry(&base).await;
        match launcher {
            // The host thread reads one mount (Linux >= 6.8, which CI has).
            Launcher::HostThread => assert!(one_alone.is_ok(), "{one_alone:?}"),
            // No host thread: Unsupported, and mount_of falls back to the table.
            _ => assert!(
                matches!(&one_alone, Err(hostexec_api::PathError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::Unsupported),
                "{one_alone:?}"
            ),
        }
        let m = HostMounter::new(ns.clone());
        let mut cases: Vec<PathBuf> = awkward.clone();
        cases.push(join(&awkward[0], b"file in it"));
        cases.extend([
            bind.clone(),
            bind.join("file"),
            shadow.clone(),
            flags.clone(),
            shared.clone(),
            slave.clone(),
            base.clone(),
            PathBuf::from("/"),
        ]);
        for p in &cases {
            let one = m.mount_of(p).await.unwrap_or_else(|e| panic!("{p:?}: {e}"));
            let table = m.mount_of_by_table(p).await.unwrap();
            assert_eq!(one.to_fields(), table.to_fields(), "{launcher:?} {p:?}");
            assert_eq!(
                as_findmnt(&one),
                findmnt_target(&sb, p),
                "{launcher:?} {p:?}: findmnt --target disagrees"
            );
        }
        // What each case must show, beyond agreeing.
        for (p, n) in awkward.iter().zip(names) {
            let e = by(&m, p).await;
            assert_eq!(e.mount_point(), p.as_path());
            assert_eq!(
                e.source().as_bytes(),
                [b"src of ", p.as_os_str().as_bytes()].concat()
            );
            assert!(
                e.super_options()
                    .iter()
                    .any(|o| o.to_string_lossy() == "size=1024k"),
                "{n:?}: {e:?}"
            );
        }
        let inside = by(&m, &join(&awkward[0], b"file in it")).await;
        assert_eq!(inside.mount_point(), awkward[0].as_path());
        let b = by(&m, &bind).await;
        assert_eq!(b.mount_point(), bind.as_path());
        assert!(b.root().ends_with("one/src/sub"), "{b:?}");
        let top = by(&m, &shadow).await;
        assert_eq!(top.source(), "above");
        assert!(
            top.super_options()
                .iter()
                .any(|o| o.to_string_lossy() == "size=128k"),
            "{top:?}"
        );
        assert!(
            top.super_options()
                .iter()
                .any(|o| o.to_string_lossy() == "nr_inodes=100"),
            "{top:?}"
        );
        let f = by(&m, &flags).await;
        for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
            assert!(f.mount_options().contains(o), "{o}: {f:?}");
        }
        assert!(by(&m, &shared).await.shared_group().is_some());
        assert!(by(&m, &slave)
            .await
            .optional_fields()
            .iter()
            .any(|f| matches!(f, hostexec_mount::OptionalField::Master(_))));

        // Every mount of the host's table that is on top of its mount point: the same
        // entry read alone and found in the table.
        let all = m.list().await.unwrap();
        let mut compared = 0;
        for e in &all {
            let top = all
                .iter()
                .rev()
                .find(|o| o.mount_point() == e.mount_point())
                .map(|o| o.id);
            if top != Some(e.id) {
                continue;
            }
            let (Ok(one), Ok(table)) = (
                m.mount_of(e.mount_point()).await,
                m.mount_of_by_table(e.mount_point()).await,
            ) else {
                continue;
            };
            assert_eq!(one.to_fields(), table.to_fields(), "{launcher:?} {e:?}");
            compared += 1;
        }
        assert!(compared > 10, "{compared} of {}", all.len());
    }
}
